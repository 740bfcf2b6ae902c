"""Evasion attacks: adversarial examples (taught in 04_adversarial_examples).

Inputs are images in [0, 1]; ``eps`` is an L∞ budget on that scale. The
notebook writes FGSM out in a few lines so the idea is visible; these are the
tested, batched versions:

- :func:`fgsm`, :func:`pgd`: white-box L∞ attacks, written here and
  cross-checked against torchattacks in ``tests/test_attacks.py``.
- :func:`run_torchattacks`: one bridge to torchattacks ("FGSM", "PGD", "CW",
  "Square", "APGD", "AutoAttack") that hides its quirks (see its docstring);
  :func:`square` is the black-box Square attack through that bridge.
- :func:`robust_accuracy`, :func:`perturbation_norms`, :func:`robustness_curve`:
  measuring the result; :func:`project_linf` puts an unbounded result (C&W) on a budget.

Every attack checks its inputs (``eps`` in [0, 1], images in [0, 1] and
finite, one integer label per image, ``steps >= 1``) and raises ``ValueError``
saying what was wrong. A model in training mode is *handled*: the attack runs it
in eval mode (dropout and batch-norm off) and gives it back in the mode it was
in. Inputs are never modified in place.
"""
from __future__ import annotations

import contextlib
import numbers
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

#: Attacks :func:`run_torchattacks` knows, by name.
TORCHATTACKS_NAMES = ("FGSM", "PGD", "CW", "Square", "APGD", "AutoAttack")
#: Those of them that accept target labels.
TARGETED_NAMES = ("FGSM", "PGD", "CW", "Square")


def _check_eps(eps: float, name: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(eps) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1] (inputs are in [0, 1]), got {eps!r}")
    return float(eps)


def _check_int(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _device_of(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _labels(y, n: int, device: torch.device, name: str = "labels") -> torch.Tensor:
    y = y.detach() if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise ValueError(f"{name} must be integer class indices, got dtype {y.dtype}")
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must have shape ({n},) to match the {n} inputs, got {tuple(y.shape)}")
    if n and int(y.min()) < 0:
        raise ValueError(f"{name} must be class indices >= 0, got {int(y.min())}")
    return y.to(device=device, dtype=torch.long)


def _as_tensors(model: nn.Module, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated float32 images and int64 labels on the model's device (copies, never views to modify)."""
    device = _device_of(model)
    x = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
    x = x.to(device=device, dtype=torch.float32)
    if x.ndim < 2:
        raise ValueError(f"inputs must have a batch dimension, e.g. (N, 1, 8, 8); got shape {tuple(x.shape)}")
    if x.numel():
        lo, hi = (float(v) for v in torch.aminmax(x))  # one pass; NaN fails both tests below
        if not (lo >= 0.0 and hi <= 1.0):
            if not torch.isfinite(x).all():
                raise ValueError("inputs contain NaN or infinite values")
            raise ValueError(f"inputs must be in [0, 1], got values in [{lo:.3f}, {hi:.3f}]")
    return x, _labels(y, len(x), device)


def _check_label_range(y: torch.Tensor, n_classes: int, name: str = "labels") -> None:
    if len(y) and int(y.max()) >= n_classes:
        raise ValueError(f"{name} must be class indices in [0, {n_classes - 1}] for this model, "
                         f"got {int(y.max())}")


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy; a label the model has no class for gets a clear ValueError."""
    try:
        return F.cross_entropy(logits, y)
    except (IndexError, RuntimeError):
        _check_label_range(y, logits.shape[1])
        raise


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Run the model in eval mode inside the block, then restore the mode of each of its modules.

    Only modules found in training mode are switched and switched back, so a
    model already in eval mode costs one walk over its modules.
    """
    training = [m for m in model.modules() if m.training]
    if training:
        model.eval()
    try:
        yield model
    finally:
        for m in training:
            m.training = True


def fgsm(model: nn.Module, x, y, eps: float, targeted: bool = False) -> torch.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al., 2015).

    One step of size ``eps`` along the sign of the loss gradient; with
    ``targeted=True``, ``y`` holds the target classes and the step goes down
    their loss instead. Returns the adversarial images (same shape as ``x``).
    """
    eps = _check_eps(eps)
    x, y = _as_tensors(model, x, y)
    with eval_mode(model):
        x_adv = x.clone().requires_grad_(True)
        loss = _loss(model(x_adv), y)
        grad, = torch.autograd.grad(loss, x_adv)
        step = -eps if targeted else eps
        return (x + step * grad.sign()).clamp(0, 1).detach()


def pgd(model: nn.Module, x, y, eps: float, alpha: float | None = None, steps: int = 10,
        random_start: bool = True, targeted: bool = False, seed: int | None = 0) -> torch.Tensor:
    """Projected Gradient Descent under L∞ (Madry et al., 2018).

    ``steps`` signed-gradient steps of size ``alpha`` (default ``2.5 * eps / steps``),
    each projected back into the ``eps``-ball around ``x`` and into [0, 1].
    ``seed`` fixes the random start without touching the global RNG.
    """
    eps = _check_eps(eps)
    steps = _check_int(steps, "steps")
    alpha = _check_eps(2.5 * eps / steps if alpha is None else alpha, "alpha")
    x, y = _as_tensors(model, x, y)
    with eval_mode(model):
        x_adv = x.clone()
        if random_start and eps > 0:
            gen = torch.Generator(device=x.device)
            if seed is not None:
                gen.manual_seed(seed)
            noise = torch.rand(x.shape, generator=gen, device=x.device) * 2 * eps - eps
            x_adv = (x + noise).clamp(0, 1)
        lower, upper = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
        step = -alpha if targeted else alpha
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = _loss(model(x_adv), y)
            grad, = torch.autograd.grad(loss, x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + step * grad.sign(), lower), upper)
        return x_adv.detach()


@torch.no_grad()
def robust_accuracy(model: nn.Module, x_adv, y) -> float:
    """Accuracy on (adversarial) inputs (the model runs in eval mode; its mode is restored)."""
    x_adv, y = _as_tensors(model, x_adv, y)
    if len(y) == 0:
        raise ValueError("robust_accuracy needs at least one input")
    with eval_mode(model):
        logits = model(x_adv)
    _check_label_range(y, logits.shape[1])
    return float((logits.argmax(1) == y).float().mean())


def project_linf(x, x_adv, eps: float) -> torch.Tensor:
    """``x_adv`` clipped into the L∞ ball of radius ``eps`` around ``x`` and into [0, 1].

    How an attack without an L∞ budget (C&W) is compared at a budget: run it once,
    then project its result for each ε (taught in 04_adversarial_examples).
    """
    eps = _check_eps(eps)
    x = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
    x_adv = x_adv.detach() if isinstance(x_adv, torch.Tensor) else torch.as_tensor(np.asarray(x_adv, dtype=np.float32))
    if x.shape != x_adv.shape:
        raise ValueError(f"x and x_adv must have the same shape, got {tuple(x.shape)} and {tuple(x_adv.shape)}")
    x_adv = x_adv.to(device=x.device, dtype=x.dtype)
    return torch.min(torch.max(x_adv, (x - eps).clamp(min=0)), (x + eps).clamp(max=1))


def perturbation_norms(x, x_adv) -> dict[str, np.ndarray]:
    """Per-image size of ``x_adv - x``: ``{"linf": ..., "l2": ...}`` as NumPy arrays."""
    x = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x.detach()
    x_adv = torch.as_tensor(np.asarray(x_adv)) if not isinstance(x_adv, torch.Tensor) else x_adv.detach()
    if x.shape != x_adv.shape:
        raise ValueError(f"x and x_adv must have the same shape, got {tuple(x.shape)} and {tuple(x_adv.shape)}")
    d = (x_adv.cpu().float() - x.cpu().float()).flatten(1)
    return {"linf": d.abs().amax(1).numpy() if d.shape[1] else np.zeros(len(d)),
            "l2": d.norm(dim=1).numpy()}


def robustness_curve(model: nn.Module, x, y, attack_fns: dict[str, Callable[..., torch.Tensor]],
                     eps_values: Sequence[float]):
    """Robust accuracy of each attack at each ε, as a tidy pandas DataFrame.

    Args:
        attack_fns: name -> ``fn(model, x, y, eps)`` returning adversarial images,
            e.g. ``{"FGSM": fgsm, "PGD": functools.partial(pgd, steps=20)}``.
        eps_values: L∞ budgets in [0, 1]; at ε = 0 no attack runs (the clean accuracy).
    Returns:
        columns ``attack``, ``eps``, ``robust_accuracy``, ``n`` (one row per pair),
        ready for ``seaborn.lineplot(data=..., x="eps", y="robust_accuracy", hue="attack")``.
    """
    import pandas as pd

    eps_values = [_check_eps(e) for e in eps_values]
    if not attack_fns or not eps_values:
        raise ValueError("robustness_curve needs at least one attack and one eps value")
    x, y = _as_tensors(model, x, y)
    clean = robust_accuracy(model, x, y)
    rows = []
    for name, fn in attack_fns.items():
        for eps in eps_values:
            acc = clean if eps == 0 else robust_accuracy(model, fn(model, x, y, eps), y)
            rows.append({"attack": name, "eps": eps, "robust_accuracy": acc, "n": len(x)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- torchattacks bridge


def _torchattacks():
    # Only the attack classes: never torchattacks' optional `robustbench` package.
    import torchattacks

    return torchattacks


def _build_attack(ta, name: str, model: nn.Module, eps: float, seed: int, n_classes: int, kwargs: dict):
    kwargs = dict(kwargs)
    if name == "FGSM":
        return ta.FGSM(model, eps=eps, **kwargs)
    if name == "PGD":  # the same defaults as pgd()
        steps = kwargs.pop("steps", 10)
        alpha = kwargs.pop("alpha", min(1.0, 2.5 * eps / steps))
        return ta.PGD(model, eps=eps, alpha=alpha, steps=steps, **kwargs)
    if name == "CW":
        return ta.CW(model, **kwargs)
    if name == "Square":
        return ta.Square(model, eps=eps, seed=seed, **kwargs)
    if name == "APGD":
        return ta.APGD(model, eps=eps, seed=seed, **kwargs)
    return ta.AutoAttack(model, eps=eps, seed=seed, n_classes=n_classes, **kwargs)


def run_torchattacks(name: str, model: nn.Module, x, y, eps: float, seed: int = 0,
                     targeted: bool = False, target_labels=None, **kwargs) -> torch.Tensor:
    """Run a torchattacks attack with the course's conventions (taught in 04_adversarial_examples).

    Args:
        name: ``"FGSM"``, ``"PGD"``, ``"CW"``, ``"Square"``, ``"APGD"`` or ``"AutoAttack"``.
        model: a classifier returning logits, for images in [0, 1] (no normalization layer needed).
        x, y: images in [0, 1] and their true labels (never modified).
        eps: L∞ budget in [0, 1]. Every attack's result lies in the ``eps``-ball
            around ``x`` and in [0, 1]. C&W is an L2 attack without a budget: its
            result is projected onto that ball (``eps=1`` keeps it as found).
        seed: seeds the attack's random draws (PGD's random start, Square's
            squares, APGD/AutoAttack's starting points, random targets).
        targeted: aim at ``target_labels`` instead of away from ``y``
            (FGSM, PGD, CW and Square; APGD and AutoAttack are untargeted only).
        target_labels: one target class per image; ``None`` with ``targeted=True``
            draws a random class other than ``y`` for each image (seeded).
        kwargs: passed to the torchattacks class, e.g. ``steps``, ``alpha``,
            ``random_start`` (PGD), ``c``, ``kappa``, ``lr`` (CW), ``n_queries``,
            ``p_init`` (Square), ``version`` (AutoAttack). PGD defaults to the same
            ``alpha = 2.5 * eps / steps`` and ``steps = 10`` as :func:`pgd`.

    Returns:
        the adversarial images, a new tensor shaped like ``x`` on the model's device.

    torchattacks' quirks, handled here so that notebooks never see them:

    - Square, APGD and AutoAttack call ``torch.manual_seed`` on the *global*
      generator, and PGD/CW/random targets draw from it: the global RNG state is
      saved before and restored after the call, so the rest of a notebook draws
      the same numbers whether or not an attack ran. The attack itself is seeded
      with ``seed`` (AutoAttack's own default seeds from the clock).
    - Targeted-mode setters print a line unless told ``quiet=True``.
    - torchattacks puts the model in eval mode but restores training mode only
      when the attack returns normally; here the mode is restored in every case.
    - C&W works in tanh space, where a pixel at exactly 0 or 1 maps to ±∞ and can
      never move (most of a digit's background is exactly 0): the inputs are
      nudged by 1e-6 into (0, 1) for C&W (as in Carlini and Wagner's own code),
      and every pixel C&W moved by at most 1e-5 is returned exactly as given.
    - AutoAttack and APGD need the number of classes: read from the model's output.
    """
    if name not in TORCHATTACKS_NAMES:
        raise ValueError(f"unknown attack {name!r}; known: {', '.join(TORCHATTACKS_NAMES)}")
    eps = _check_eps(eps)
    seed = _check_int(seed, "seed", low=0)
    for key in ("steps", "n_queries", "n_restarts"):
        if key in kwargs:
            kwargs[key] = _check_int(kwargs[key], key)
    if "alpha" in kwargs:
        kwargs["alpha"] = _check_eps(kwargs["alpha"], "alpha")
    x, y = _as_tensors(model, x, y)
    if targeted and name not in TARGETED_NAMES:
        raise ValueError(f"{name} in torchattacks is untargeted only; targeted attacks: {', '.join(TARGETED_NAMES)}")
    if target_labels is not None and not targeted:
        raise ValueError("target_labels given with targeted=False: pass targeted=True to aim at them")
    if len(x) == 0:
        return x.clone()
    ta = _torchattacks()
    device = x.device
    cuda_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with eval_mode(model), torch.random.fork_rng(devices=cuda_ids):
        torch.manual_seed(seed)
        with torch.no_grad():
            n_classes = int(model(x[:1]).shape[1])
        _check_label_range(y, n_classes)
        if targeted:
            if target_labels is None:
                gen = torch.Generator().manual_seed(seed)
                shift = torch.randint(1, n_classes, (len(y),), generator=gen).to(device)
                target_labels = (y + shift) % n_classes
            else:
                target_labels = _labels(target_labels, len(x), device, "target_labels")
                _check_label_range(target_labels, n_classes, "target_labels")
        x_in = x.clamp(1e-6, 1 - 1e-6) if name == "CW" else x
        try:
            atk = _build_attack(ta, name, model, eps, seed, n_classes, kwargs)
        except TypeError as err:  # an option the torchattacks class does not take
            raise ValueError(f"{name}: {err}; see torchattacks.{name} for its options") from None
        if targeted:
            atk.set_mode_targeted_by_label(quiet=True)
        x_adv = atk(x_in, target_labels if targeted else y).detach()
    if name == "CW":  # pixels C&W left alone come back exactly (no nudge, no tanh round-off)
        x_adv = torch.where((x_adv - x).abs() <= 1e-5, x, x_adv)
    # Projection onto the budget (C&W has none; the others only fix float round-off).
    return project_linf(x, x_adv, eps)


def square(model: nn.Module, x, y, eps: float, n_queries: int = 1000, seed: int = 0,
           **kwargs) -> torch.Tensor:
    """Square attack (Andriushchenko et al., 2020): black-box, only queries the model's outputs.

    Random square-shaped L∞ changes, kept when they lower the margin of the true
    class; at most ``n_queries`` queries per image. Taught in 04_adversarial_examples.
    """
    return run_torchattacks("Square", model, x, y, eps, seed=seed,
                            n_queries=_check_int(n_queries, "n_queries"), **kwargs)


__all__ = ["fgsm", "pgd", "robust_accuracy", "perturbation_norms", "project_linf", "robustness_curve", "eval_mode",
           "run_torchattacks", "square", "TORCHATTACKS_NAMES", "TARGETED_NAMES"]
