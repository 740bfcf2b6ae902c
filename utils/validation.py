"""One place for input checks: every public function of :mod:`utils` validates here.

Each check returns the cleaned value (an ``int``, a ``float``, an array or a
tensor) or raises :class:`ValidationError`, a ``ValueError`` whose message
always has the same three parts::

    where: what was wrong; what is allowed

for example ``fgsm: eps = 1.5 is out of range; eps must be a number in [0, 1]``
or ``apply_trigger: images have values in [0.000, 255.000]; images must be in
[0, 1] (divide 0-255 pixels by 255)``. Nothing is clipped, cast or reshaped
behind the caller's back, and the caller's array is never modified.

Taught in 00_orientation_and_threat_model (bad input gets a clear error, never
a silent change). Imports no torch: tensor checks load it only when given one.
"""
from __future__ import annotations

import math
import numbers
import os
import sys
from pathlib import Path
from typing import Any, Iterable, NoReturn

import numpy as np


class ValidationError(ValueError):
    """Bad input to a utils function: ``where``, what was ``wrong``, what is ``allowed``.

    A ``ValueError``, so ``except ValueError`` catches it (taught in
    00_orientation_and_threat_model).
    """

    def __init__(self, where: str, wrong: str, allowed: str):
        self.where, self.wrong, self.allowed = where, wrong, allowed
        super().__init__(f"{where}: {wrong}; {allowed}")


def fail(where: str, wrong: str, allowed: str) -> NoReturn:
    """Raise :class:`ValidationError` with the three parts of the message style
    (taught in 00_orientation_and_threat_model)."""
    raise ValidationError(where, wrong, allowed)


# --------------------------------------------------------------------------- numbers


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool (taught in 00_orientation_and_threat_model)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite real number (Python or NumPy), not a bool (taught in 00_orientation_and_threat_model)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _interval(low, high, open_low: bool = False, open_high: bool = False) -> str:
    def text(bound) -> str:
        return str(int(bound)) if is_int(bound) or float(bound).is_integer() else f"{bound:g}"

    lo = "-inf" if low is None else text(low)
    hi = "inf" if high is None else text(high)
    return f"{'(' if open_low or low is None else '['}{lo}, {hi}{')' if open_high or high is None else ']'}"


def integer(value: Any, name: str, where: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound may be ``None``)
    (taught in 00_orientation_and_threat_model)."""
    if low is not None and high is None:
        allowed = f"{name} must be an integer >= {low}"
    else:
        allowed = f"{name} must be an integer in {_interval(low, high)}"
    if not is_int(value):
        fail(where, f"{name} = {value!r} is not an integer", allowed)
    if (low is not None and value < low) or (high is not None and value > high):
        fail(where, f"{name} = {value!r} is out of range", allowed)
    return int(value)


def real(value: Any, name: str, where: str, low: float | None = None, high: float | None = None, *,
         open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a finite ``float`` in the interval ``[low, high]``; ``open_low`` /
    ``open_high`` exclude a bound (taught in 00_orientation_and_threat_model)."""
    allowed = f"{name} must be a number in {_interval(low, high, open_low, open_high)}"
    if not is_real(value):
        fail(where, f"{name} = {value!r} is not a finite number", allowed)
    v = float(value)
    if low is not None and (v <= low if open_low else v < low):
        fail(where, f"{name} = {value!r} is out of range", allowed)
    if high is not None and (v >= high if open_high else v > high):
        fail(where, f"{name} = {value!r} is out of range", allowed)
    return v


def unit(value: Any, name: str, where: str) -> float:
    """A number in [0, 1]: a perturbation budget on [0, 1] images, a rate, a share
    (taught in 04_adversarial_examples)."""
    return real(value, name, where, 0.0, 1.0)


def probability(value: Any, name: str, where: str) -> float:
    """A number strictly between 0 and 1: a significance level or a target
    false-positive rate (taught in 08_monitoring)."""
    return real(value, name, where, 0.0, 1.0, open_low=True, open_high=True)


def seed(value: Any, where: str, name: str = "seed") -> int:
    """A random seed: an integer >= 0 (taught in 00_orientation_and_threat_model)."""
    return integer(value, name, where, low=0)


def choice(value: Any, name: str, where: str, options: Iterable[Any]) -> Any:
    """``value`` if it is one of ``options`` (taught in 00_orientation_and_threat_model)."""
    options = list(options)
    try:
        ok = value in options
    except TypeError:  # an unhashable or incomparable value
        ok = False
    if not ok:
        fail(where, f"{name} = {value!r} is not one of the choices",
             f"{name} must be one of {', '.join(map(repr, options))}")
    return value


# --------------------------------------------------------------------------- arrays


def existing_file(path: Any, name: str, where: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` to an existing regular file (taught in 07_secure_deployment)."""
    if not isinstance(path, (str, os.PathLike)):
        fail(where, f"{name} is a {type(path).__name__}", f"{name} must be a path (str or pathlib.Path)")
    p = Path(path)
    if not p.is_file():
        fail(where, f"{name} = '{p}' is not an existing file", f"{name} must name a file that exists")
    return p


def _torch():
    return sys.modules.get("torch")


def _is_tensor(x: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def _numpy(x: Any) -> np.ndarray:
    if _is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _check_unit_range(lo: float, hi: float, finite: bool, name: str, where: str) -> None:
    if not finite:
        fail(where, f"{name} contain NaN or infinite values", f"{name} must be finite numbers in [0, 1]")
    if lo < 0.0 or hi > 1.0:
        hint = " (divide 0-255 pixels by 255)" if hi > 1.0 and hi <= 255.0 and lo >= 0.0 else ""
        fail(where, f"{name} have values in [{lo:.3f}, {hi:.3f}]", f"{name} must be in [0, 1]{hint}")


def _shape_text(ndim: int | None) -> str:
    return {4: "(N, C, H, W)", 2: "(N, d)", None: "(N, ...) with a batch dimension"}.get(ndim, f"{ndim}-D")


def images(x: Any, where: str, *, ndim: int | None = 4, name: str = "images",
           unit_range: bool = True, allow_empty: bool = True) -> np.ndarray:
    """A float32 NumPy batch of images: shape ``(N, C, H, W)`` (``ndim=None``: any
    shape with a batch dimension), finite, in [0, 1] unless ``unit_range=False``.
    A copy only where a cast is needed (taught in 01_data_poisoning)."""
    a = _numpy(x)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        fail(where, f"{name} have dtype {a.dtype}", f"{name} must be real numbers")
    if (ndim is not None and a.ndim != ndim) or a.ndim < 2:
        fail(where, f"{name} have shape {tuple(a.shape)}", f"{name} must have shape {_shape_text(ndim)}")
    if not allow_empty and len(a) == 0:
        fail(where, f"{name} are empty", "give at least one of them")
    a = a.astype(np.float32, copy=False)
    if a.size:
        if not np.isfinite(a).all():
            fail(where, f"{name} contain NaN or infinite values",
                 f"{name} must be finite numbers" + (" in [0, 1]" if unit_range else ""))
        if unit_range:
            _check_unit_range(float(a.min()), float(a.max()), True, name, where)
    return a


def image_tensor(x: Any, where: str, device=None, *, ndim: int | None = 4, name: str = "images"):
    """A float32 torch batch of images on ``device`` (default: where it is): the
    checks of :func:`images`. A tensor keeps its autograd graph; callers never
    write into the result (taught in 04_adversarial_examples)."""
    import torch

    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or t.dtype in (
            torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        fail(where, f"{name} have dtype {t.dtype}", f"{name} must be real numbers")
    t = t.to(dtype=torch.float32, device=device if device is not None else t.device)
    if (ndim is not None and t.ndim != ndim) or t.ndim < 2:
        fail(where, f"{name} have shape {tuple(t.shape)}", f"{name} must have shape {_shape_text(ndim)}")
    if t.numel():
        lo, hi = (float(v) for v in torch.aminmax(t.detach()))  # one pass; NaN fails the range test
        if not (lo >= 0.0 and hi <= 1.0):
            _check_unit_range(lo, hi, bool(torch.isfinite(t.detach()).all()), name, where)
    return t


def labels(y: Any, where: str, *, n: int | None = None, n_classes: int | None = None,
           name: str = "labels", what: str = "inputs", allow_empty: bool = False) -> np.ndarray:
    """Integer class indices as a 1-D int64 NumPy array (a copy): ``n`` of them
    when given (one per input), each in ``[0, n_classes)`` when ``n_classes`` is
    given, else ``>= 0`` (taught in 01_data_poisoning)."""
    a = _numpy(y)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        fail(where, f"{name} have dtype {a.dtype}", f"{name} must be integer class indices")
    if a.ndim != 1:
        fail(where, f"{name} have shape {tuple(a.shape)}", f"{name} must be a 1-D array, one per example")
    if n is not None and len(a) != n:
        fail(where, f"{len(a)} {name} for {n} {what}", f"give one label per {what[:-1] if what.endswith('s') else what}")
    if not allow_empty and len(a) == 0:
        fail(where, f"{name} are empty", "give at least one example")
    if n_classes is not None:
        n_classes = integer(n_classes, "n_classes", where, low=1)
    if len(a):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or (n_classes is not None and hi >= n_classes):
            allowed = (f"{name} must be class indices in [0, {n_classes - 1}]" if n_classes is not None
                       else f"{name} must be class indices >= 0")
            fail(where, f"{name} have values in [{lo}, {hi}]", allowed)
    return a.astype(np.int64)


def label_tensor(y: Any, where: str, n: int, device=None, *, n_classes: int | None = None,
                 name: str = "labels", what: str = "images"):
    """:func:`labels` as an int64 torch tensor on ``device`` (taught in 04_adversarial_examples)."""
    import torch

    t = y.detach() if isinstance(y, torch.Tensor) else None
    if t is not None and (t.dtype == torch.bool or t.is_floating_point() or t.is_complex()):
        fail(where, f"{name} have dtype {t.dtype}", f"{name} must be integer class indices")
    a = labels(y, where, n=n, n_classes=n_classes, name=name, what=what, allow_empty=True)
    return torch.as_tensor(a, dtype=torch.long, device=device if device is not None else (
        t.device if t is not None else None))


def features(x: Any, where: str, *, name: str = "features", min_rows: int = 1) -> np.ndarray:
    """A finite float64 ``(N, d)`` array, one row per example (images and other
    shapes are flattened per example; a copy) (taught in 03_data_defenses)."""
    a = _numpy(x)
    if a.ndim < 2:
        fail(where, f"{name} have shape {tuple(a.shape)}", f"{name} must have shape (N, d), one row per example")
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        fail(where, f"{name} have dtype {a.dtype}", f"{name} must be real numbers")
    if len(a) < min_rows:
        fail(where, f"{name} have {len(a)} rows", f"{name} need at least {min_rows} rows (examples)")
    f = a.reshape(len(a), -1).astype(np.float64)
    if not np.isfinite(f).all():
        fail(where, f"{name} contain NaN or infinite values", f"{name} must be finite numbers")
    return f


def same_length(where: str, **arrays: Any) -> int:
    """The common length of the named arrays (taught in 01_data_poisoning)."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        fail(where, "lengths differ: " + ", ".join(f"{k} has {v}" for k, v in lengths.items()),
             "give one row per example in each")
    return next(iter(lengths.values()), 0)


def mask(flags_or_indices: Any, n: int, where: str, name: str = "poisoned") -> np.ndarray:
    """A boolean mask of length ``n`` from a boolean mask or from integer indices
    (a copy) (taught in 03_data_defenses)."""
    p = _numpy(flags_or_indices)
    if p.dtype == bool:
        if p.shape != (n,):
            fail(where, f"the boolean mask {name} has shape {p.shape}", f"it must have shape ({n},)")
        return p.copy()
    if p.size == 0:
        return np.zeros(n, dtype=bool)
    if p.ndim != 1 or not np.issubdtype(p.dtype, np.integer):
        fail(where, f"{name} has dtype {p.dtype} and shape {p.shape}",
             f"{name} must be a boolean mask of shape ({n},) or 1-D integer indices")
    if p.min() < 0 or p.max() >= n:
        fail(where, f"{name} has indices in [{p.min()}, {p.max()}]", f"indices must be in [0, {n - 1}]")
    if len(np.unique(p)) != len(p):
        fail(where, f"{name} repeats indices", "each index may appear once")
    out = np.zeros(n, dtype=bool)
    out[p] = True
    return out


# --------------------------------------------------------------------------- models


def eval_mode(model: Any, where: str) -> None:
    """Refuse a model with any submodule in training mode: an evaluation, an attack
    or a detector must see the model as it is deployed (taught in 04_adversarial_examples).

    Code that crafts attacks *during* training switches the model to evaluation
    mode for the attack (:func:`utils.attacks.evasion.eval_mode`) and back.
    """
    modules = model.modules() if hasattr(model, "modules") else []
    if any(getattr(m, "training", False) for m in modules):
        fail(where, "the model is in training mode",
             "call model.eval() first (dropout and batch-norm behave differently in training mode)")
