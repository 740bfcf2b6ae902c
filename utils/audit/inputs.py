"""What the workbench audits: a model you bring and a data set you bring, both checked first
(taught in 10_workbench).

- :func:`load_model`: module code (``"package.module:Callable"`` or ``"path/file.py:Callable"``,
  a class or a factory that returns an ``nn.Module``) plus *safetensors* weights, loaded only
  through the load gate of 07_secure_deployment (:func:`utils.deployment.gate.load_gate`):
  hash, signature, scan, safe load. Without a signature the same steps run with the signature
  step recorded as *not given* (the scorecard then says the provenance is unverified).
  The module code is your own code, imported as given; only the weights file is untrusted.
- TorchScript is refused. A TorchScript archive is a zip holding pickles (``data.pkl``,
  ``constants.pkl``) and TorchScript code that ``torch.jit.load`` unpickles and runs; no scanner
  verdict makes that safe, and the gate never unpickles. Export the ``state_dict`` with
  :func:`utils.deployment.serialization.save_weights` and give the module code instead.
- :func:`load_data`: a NumPy ``.npz`` (``x``, ``y``; optionally ``x_train``, ``y_train``, training
  examples for the membership check and the training-set part of the backdoor scan) or a CSV
  (one row an example, the last column its label), checked: shapes, values in [0, 1] (or a stated
  ``value_range``, rescaled), integer labels within the classes.
- :func:`save_model` / :func:`load_model_spec`: a model folder (``weights.safetensors`` and
  ``model.json`` naming the module, its arguments, the pinned sha256 and, if signed, the
  signature), the unit the command line and the batch audit take.
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import importlib.util
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch import nn

from utils import validation as v

#: The name of a model folder's description file.
SPEC_NAME = "model.json"
#: The name of a model folder's weights file.
WEIGHTS_NAME = "weights.safetensors"


# --------------------------------------------------------------------------- models


@dataclass
class LoadedModel:
    """A model that passed the load gate (taught in 10_workbench).

    Attributes:
        model: the ``nn.Module`` in eval mode.
        record: the gate's steps (``utils.deployment.gate.GateStep``), in order.
        sha256: the weights file's sha256.
        provenance: ``"signed"`` (signature verified), ``"pinned"`` (the sha256 was given and
            matched, no signature) or ``"unpinned"`` (neither: the bytes are whatever the file holds).
        source: where it came from (the weights path, or the model folder).
        name: a short name (the folder's or the file's).
    """

    model: nn.Module
    record: list
    sha256: str
    provenance: str
    source: str
    name: str
    spec: dict = field(default_factory=dict)

    def gate_rows(self) -> list[dict]:
        """The gate's steps as plain dicts (step, passed, detail) for the scorecard (taught in 10_workbench)."""
        return [{"step": s.step, "passed": bool(s.passed), "detail": s.detail} for s in self.record]


def _resolve(module: Any, where: str) -> Callable[..., nn.Module]:
    """The callable ``module`` names: ``"pkg.mod:Name"`` or ``"path/to/file.py:Name"``."""
    if callable(module) and not isinstance(module, str):
        return module
    if not isinstance(module, str) or module.count(":") != 1 or not all(module.split(":")):
        v.fail(where, f"module = {module!r}",
               "module must be 'package.module:Callable' or 'path/to/file.py:Callable' (a class or a "
               "function that returns a torch.nn.Module)")
    target, name = module.split(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            v.fail(where, f"module file '{path}' does not exist", "give the path of the .py file defining the model")
        spec = importlib.util.spec_from_file_location(f"_modelsec_user_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # the user's own model code, imported as given
    else:
        try:
            mod = importlib.import_module(target)
        except ImportError as e:
            v.fail(where, f"module '{target}' cannot be imported ({e})", "give an importable module or a .py file")
    fn = getattr(mod, name, None)
    if not callable(fn):
        v.fail(where, f"'{target}' has no callable '{name}'", "name a class or a function defined there")
    return fn


def _is_torchscript(data: bytes) -> bool:
    """A zip whose entries look like a TorchScript (or torch.save) archive."""
    if not data.startswith(b"PK"):
        return False
    import io

    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return False
    return any(n.endswith(("constants.pkl", "data.pkl")) or "/code/" in n for n in names)


def _gate_without_signature(path: Path, data: bytes, sha256: str | None, factory) -> tuple[nn.Module, list]:
    """The steps of :func:`utils.deployment.gate.load_gate` for a file that comes with no signature:
    the hash against the pin (if any), the signature recorded as not given, the scan, the safe load."""
    from utils.deployment.gate import GateRefusal, GateStep, load_gate  # noqa: F401  (same record types)
    from utils.deployment.scanners import scan_picklescan
    from utils.deployment.serialization import weights_mismatch
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    record: list = []

    def refuse(step: str, reason: str):
        record.append(GateStep(step, False, reason))
        raise GateRefusal(path, step, reason, list(record))

    actual = hashlib.sha256(data).hexdigest()
    if sha256 is None:
        record.append(GateStep("hash", True, f"not pinned: sha256 {actual[:16]}… recorded, not checked"))
    elif actual != sha256.lower():
        refuse("hash", f"its sha256 is {actual[:16]}…, the pinned one is {sha256.lower()[:16]}…")
    else:
        record.append(GateStep("hash", True, f"sha256 {actual[:16]}… equals the pinned one"))
    record.append(GateStep("signature", True, "not given: the publisher is not verified"))
    try:
        state = load_bytes(data)
    except (SafetensorError, ValueError, OSError):
        state = None
    if state is None:
        verdict = scan_picklescan(path, strict=True)
        if not verdict.safe:
            refuse("scan", f"picklescan says {verdict.verdict}" +
                   (f" ({'; '.join(verdict.findings)})" if verdict.findings else ""))
        record.append(GateStep("scan", True, "not safetensors; picklescan (strict) found nothing"))
        refuse("load", "not a safetensors file: the gate never unpickles a file, even one the scanners passed")
    record.append(GateStep("scan", True, "a safetensors file (tensors and a JSON header, no code): nothing to scan"))
    model = factory()
    if not isinstance(model, nn.Module):
        v.fail("load_model", f"the module code returned a {type(model).__name__}", "it must return a torch.nn.Module")
    problems = weights_mismatch(state, model)
    if problems:
        refuse("load", "the tensors do not fit the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    record.append(GateStep("load", True, f"{len(state)} tensors loaded (keys, shapes and dtypes match)"))
    return model.eval(), record


def load_model(module: Any, weights_path: str | Path, *, kwargs: dict | None = None, sha256: str | None = None,
               signature: str | Path | None = None, public_key: str | Path | None = None,
               name: str | None = None) -> LoadedModel:
    """Build the model from its code and load its weights through the load gate (taught in 10_workbench).

    Args:
        module: ``"package.module:Callable"`` or ``"path/to/file.py:Callable"`` (or the callable itself):
            a class or function that, called with ``kwargs``, returns an untrained ``nn.Module``.
        weights_path: the weights, a safetensors file. A pickle (``.pt``, ``.pth``, ``.bin``) or a
            TorchScript archive is refused by the gate (see the module docstring for why).
        kwargs: the arguments of ``module``.
        sha256: the pinned sha256 of the weights (64 hex digits); checked when given.
        signature, public_key: a signature bundle of ``utils.deployment.signing.sign`` and the
            publisher's PEM key; both or neither. With both, :func:`utils.deployment.gate.load_gate` runs.

    Raises:
        utils.deployment.gate.GateRefusal: the gate refused the file (a ``ValueError``: the step and why).
        utils.validation.ValidationError: bad arguments.
    """
    from utils.deployment.gate import GateRefusal, load_gate
    from utils.deployment.serialization import existing_file

    where = "load_model"
    path = existing_file(weights_path, "weights_path", where)
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        v.fail(where, f"kwargs is a {type(kwargs).__name__}", "kwargs must be a dict of the module's arguments")
    if sha256 is not None and not (isinstance(sha256, str) and len(sha256) == 64
                                   and all(c in "0123456789abcdef" for c in sha256.lower())):
        v.fail(where, f"sha256 = {sha256!r} is not a sha256", "sha256 must be 64 hex digits")
    if (signature is None) != (public_key is None):
        v.fail(where, "only one of signature and public_key given", "give both (a signed model) or neither")
    fn = _resolve(module, where)
    factory = lambda: fn(**kwargs)  # noqa: E731
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    try:
        if signature is not None:
            model, record = load_gate(path, sha256=sha256 or actual, public_key=public_key, signature=signature,
                                      model_factory=factory)
            if sha256 is None:
                from utils.deployment.gate import GateStep

                record[0] = GateStep("hash", True, f"not pinned: sha256 {actual[:16]}… (the signature covers the bytes)")
            provenance = "signed"
        else:
            model, record = _gate_without_signature(path, data, sha256, factory)
            provenance = "pinned" if sha256 is not None else "unpinned"
    except GateRefusal as e:
        if _is_torchscript(data):
            e.args = (e.args[0] + "; this is a TorchScript/torch.save zip, which holds pickles and code that "
                      "torch.jit.load runs: export the state_dict as safetensors "
                      "(utils.deployment.serialization.save_weights) and give the module code",)
        raise
    return LoadedModel(model, record, actual, provenance, str(path), name or path.stem,
                       {"module": module if isinstance(module, str) else getattr(module, "__qualname__", "?"),
                        "kwargs": kwargs})


def save_model(model: nn.Module, folder: str | Path, *, module: str, kwargs: dict | None = None,
               private_key: str | Path | None = None, public_key: str | Path | None = None) -> Path:
    """Write a model folder: ``weights.safetensors`` and ``model.json`` (module, kwargs, the pinned
    sha256, and the signature when ``private_key`` and ``public_key`` are given). Returns the folder
    (taught in 10_workbench)."""
    from utils.deployment.serialization import save_weights

    where = "save_model"
    if not isinstance(model, nn.Module):
        v.fail(where, f"model is a {type(model).__name__}", "model must be a torch.nn.Module")
    _resolve(module, where)
    if (private_key is None) != (public_key is None):
        v.fail(where, "only one of private_key and public_key given", "give both to sign, or neither")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_NAME
    digest = save_weights(model, weights)
    spec: dict[str, Any] = {"module": module, "kwargs": kwargs or {}, "weights": WEIGHTS_NAME, "sha256": digest}
    if private_key is not None:
        from utils.deployment.signing import sign

        sig = sign(weights, private_key, folder / "weights.sig")
        spec.update(signature=sig.name, public_key=str(Path(public_key).resolve()))
    (folder / SPEC_NAME).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
    return folder


def load_model_spec(path: str | Path) -> LoadedModel:
    """Load a model folder written by :func:`save_model` (or its ``model.json``) through
    :func:`load_model` (taught in 10_workbench)."""
    where = "load_model_spec"
    p = Path(path)
    spec_path = p / SPEC_NAME if p.is_dir() else p
    if not spec_path.is_file():
        v.fail(where, f"'{p}' has no {SPEC_NAME}", f"give a model folder with {SPEC_NAME} (see save_model) "
                                                 "or the module and weights separately")
    try:
        spec = json.loads(spec_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        v.fail(where, f"'{spec_path}' is not JSON ({e})", f"{SPEC_NAME} must be a JSON object")
    if not isinstance(spec, dict) or not {"module", "weights"} <= set(spec):
        v.fail(where, f"'{spec_path}' lacks 'module' or 'weights'", f"{SPEC_NAME} needs module, weights (kwargs, sha256, "
                                                                   "signature, public_key optional)")
    base = spec_path.parent
    sig = spec.get("signature")
    key = spec.get("public_key")
    return load_model(spec["module"], base / spec["weights"], kwargs=spec.get("kwargs") or {},
                      sha256=spec.get("sha256"), signature=None if sig is None else base / sig,
                      public_key=None if key is None else base / key, name=base.name if p.is_dir() else p.stem)


# --------------------------------------------------------------------------- data


@dataclass
class AuditData:
    """A checked data set to audit against (taught in 10_workbench).

    ``X`` (N, C, H, W) float32 in [0, 1] and ``y`` int64 in ``[0, n_classes)``: the evaluation set,
    never seen in training. ``X_train``, ``y_train``: optional training examples (members).
    """

    X: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    X_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    source: str = "arrays"
    sha256: str = ""

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def has_training_data(self) -> bool:
        return self.X_train is not None

    def summary(self) -> str:
        """One line: source, size, shape, classes and training examples (taught in 10_workbench)."""
        extra = f"; {len(self.y_train)} training examples" if self.has_training_data else "; no training examples"
        return (f"{Path(self.source).name}: {self.n} examples of shape {tuple(self.X.shape[1:])}, "
                f"{self.n_classes} classes{extra}")


def _image_values(X: Any, where: str, name: str, value_range, shape) -> np.ndarray:
    a = np.asarray(X)
    if a.dtype == object or a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        v.fail(where, f"{name} have dtype {a.dtype}", f"{name} must be real numbers")
    if shape is not None:
        shape = tuple(v.integer(s, "shape entry", where, low=1) for s in shape)
        if a.ndim < 2 or math.prod(a.shape[1:]) != math.prod(shape):
            v.fail(where, f"{name} have shape {tuple(a.shape)}, which does not fit shape = {shape}",
                   f"each example must have {math.prod(shape)} values")
        a = a.reshape((len(a),) + shape)
    elif a.ndim == 2:
        side = math.isqrt(a.shape[1])
        if side * side != a.shape[1]:
            v.fail(where, f"{name} have shape {tuple(a.shape)}: {a.shape[1]} values per example are not a square image",
                   "give shape=(C, H, W) (--shape C,H,W); the workbench audits image classifiers")
        a = a.reshape(len(a), 1, side, side)
    elif a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        v.fail(where, f"{name} have shape {tuple(a.shape)}", f"{name} must have shape (N, C, H, W), (N, H, W) or (N, H*W)")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        v.fail(where, f"{name} contain NaN or infinite values", f"{name} must be finite numbers")
    lo, hi = value_range
    if a.size and (a.min() < lo or a.max() > hi):
        hint = " (for 0-255 pixels pass value_range=(0, 255), --value-range 0,255)" if a.max() <= 255 and a.min() >= 0 else ""
        v.fail(where, f"{name} have values in [{a.min():.3f}, {a.max():.3f}]",
               f"{name} must lie in [{lo:g}, {hi:g}]{hint}")
    if (lo, hi) != (0.0, 1.0):
        a = (a - lo) / (hi - lo)
    return a


def _label_values(y: Any, where: str, name: str, n: int, n_classes: int | None) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim == 1 and np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() and (a == np.round(a)).all():
        a = a.astype(np.int64)  # a CSV's labels read as floats (3.0)
    return v.labels(a, where, n=n, n_classes=n_classes, name=name, what="examples")


def data_from_arrays(X: Any, y: Any, classes: Sequence[str] | None = None, *, X_train: Any = None,
                     y_train: Any = None, value_range: tuple[float, float] = (0.0, 1.0),
                     shape: Sequence[int] | None = None, source: str = "arrays", sha256: str = "") -> AuditData:
    """The checks of :func:`load_data` on arrays (taught in 10_workbench)."""
    where = "load_data"
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
            or not all(v.is_real(b) for b in value_range) or not value_range[0] < value_range[1]):
        v.fail(where, f"value_range = {value_range!r}", "value_range must be two numbers (low, high) with low < high")
    value_range = (float(value_range[0]), float(value_range[1]))
    X = _image_values(X, where, "inputs", value_range, shape)
    if classes is not None:
        classes = tuple(str(c) for c in classes)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            v.fail(where, f"classes = {list(classes)[:12]}", "classes must be at least two distinct names")
    y = _label_values(y, where, "labels", len(X), None if classes is None else len(classes))
    if classes is None:
        classes = tuple(str(c) for c in range(max(2, int(y.max()) + 1)))
    Xt = yt = None
    if (X_train is None) != (y_train is None):
        v.fail(where, "only one of x_train and y_train given", "give both (training examples) or neither")
    if X_train is not None:
        Xt = _image_values(X_train, where, "training inputs", value_range, shape)
        if Xt.shape[1:] != X.shape[1:]:
            v.fail(where, f"training inputs have shape {Xt.shape[1:]} per example, inputs {X.shape[1:]}",
                   "both must have the same shape")
        yt = _label_values(y_train, where, "training labels", len(Xt), len(classes))
    return AuditData(X, y, tuple(classes), Xt, yt, source, sha256)


def _read_csv(path: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r]
    if rows and not all(_is_number(c) for c in rows[0]):
        rows = rows[1:]  # a header
    if not rows:
        v.fail(where, f"'{path.name}' has no data rows", "give one row per example, the label in the last column")
    widths = {len(r) for r in rows}
    if len(widths) != 1 or widths.pop() < 2:
        v.fail(where, f"'{path.name}' has rows of different lengths or a single column",
               "every row needs the same number of values, the label last")
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        bad = next(i for i, r in enumerate(rows, 1) if not all(_is_number(c) for c in r))
        v.fail(where, f"'{path.name}' row {bad} holds a value that is not a number", "every value must be a number")
    return table[:, :-1], table[:, -1]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_data(path: str | Path, classes: Sequence[str] | None = None, *,
              value_range: tuple[float, float] = (0.0, 1.0), shape: Sequence[int] | None = None) -> AuditData:
    """Load and check an evaluation set (taught in 10_workbench).

    Args:
        path: a ``.npz`` with arrays ``x`` (or ``X``) and ``y`` (optionally ``x_train``, ``y_train``),
            or a ``.csv`` (one row an example, the label last; a header row is skipped).
        classes: the class names; labels must then lie in ``[0, len(classes))`` (default: 0..max label).
        value_range: the scale of the values; they must lie in it and are rescaled to [0, 1].
        shape: the (C, H, W) of one example when the rows are flat and not a square.

    Raises:
        utils.validation.ValidationError: "load_data: what was wrong; what is allowed".
    """
    from utils.deployment.serialization import existing_file, sha256_file

    where = "load_data"
    p = existing_file(path, "path", where)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        try:
            npz = np.load(p, allow_pickle=False)  # never unpickle object arrays
            arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            v.fail(where, f"'{p.name}' cannot be read as a NumPy .npz without pickles ({e})",
                   "save plain numeric arrays with numpy.savez(path, x=..., y=...)")
        x = arrays.get("x", arrays.get("X"))
        if x is None or "y" not in arrays:
            v.fail(where, f"'{p.name}' holds arrays {sorted(arrays)}", "it must hold 'x' (inputs) and 'y' (labels)")
        return data_from_arrays(x, arrays["y"], classes, X_train=arrays.get("x_train"), y_train=arrays.get("y_train"),
                                value_range=value_range, shape=shape, source=str(p), sha256=sha256_file(p))
    if suffix == ".csv":
        X, y = _read_csv(p, where)
        return data_from_arrays(X, y, classes, value_range=value_range, shape=shape, source=str(p),
                                sha256=sha256_file(p))
    v.fail(where, f"'{p.name}' has the suffix '{p.suffix}'", "give a .npz (x, y) or a .csv (label last)")


def save_data(path: str | Path, X: np.ndarray, y: np.ndarray, *, X_train: np.ndarray | None = None,
              y_train: np.ndarray | None = None) -> Path:
    """Write an evaluation set as ``.npz`` (``x``, ``y``, optionally ``x_train``, ``y_train``) that
    :func:`load_data` reads (taught in 10_workbench)."""
    path = Path(path)
    arrays = {"x": np.asarray(X, dtype=np.float32), "y": np.asarray(y, dtype=np.int64)}
    if X_train is not None:
        arrays.update(x_train=np.asarray(X_train, dtype=np.float32), y_train=np.asarray(y_train, dtype=np.int64))
    np.savez(path, **arrays)
    return path


# --------------------------------------------------------------------------- the course's examples

#: Module code and arguments of the course MLP on the 8×8 digits, as a model folder names them.
COURSE_MODULE = "utils.models:build_model"
COURSE_KWARGS = {"name": "mlp", "input_shape": [1, 8, 8], "n_classes": 10}
#: The kinds of :func:`course_example`.
EXAMPLE_KINDS = ("clean", "backdoor", "adversarial")


def course_example(folder: str | Path, kind: str = "clean", seed: int = 0) -> Path:
    """Train (cached, :func:`utils.training.fit`) a course MLP on the digits and save it as a model
    folder (taught in 10_workbench): ``"clean"``; ``"backdoor"``, BadNets-poisoned with the course's
    standard backdoor (:data:`utils.attacks.poisoning.STANDARD_BACKDOOR`: a 3×3 checkerboard, target
    class 0, 5% of the training set); ``"adversarial"``, adversarially trained (PGD, ε = 0.1,
    :func:`utils.defenses.adversarial.adversarial_training`)."""
    from utils import data as course_data
    from utils import training
    from utils.attacks import poisoning

    where = "course_example"
    v.choice(kind, "kind", where, EXAMPLE_KINDS)
    seed = v.seed(seed, where)
    ds = course_data.load("digits", seed=seed)
    config = training.preset("mlp", seed=seed)
    if kind == "clean":
        model = training.fit(config, ds.X_train, ds.y_train, ds.n_classes)
    elif kind == "backdoor":
        Xp, yp, _ = poisoning.STANDARD_BACKDOOR.poison(ds.X_train, ds.y_train, ds.n_classes)
        model = training.fit(config, Xp, yp, ds.n_classes)
    else:
        from utils.defenses import adversarial

        model = adversarial.adversarial_training(config, ds.X_train, ds.y_train, eps=0.1, n_classes=ds.n_classes)
    return save_model(model, folder, module=COURSE_MODULE, kwargs=dict(COURSE_KWARGS))


def course_data(path: str | Path, seed: int = 0, kind: str = "clean", with_training: bool = True) -> Path:
    """The digits' test split as an evaluation ``.npz`` (taught in 10_workbench), with the training
    split as ``x_train``/``y_train`` (the members; for ``kind="backdoor"`` the poisoned training set
    that model was trained on)."""
    from utils import data as cdata
    from utils.attacks import poisoning

    v.choice(kind, "kind", "course_data", EXAMPLE_KINDS)
    ds = cdata.load("digits", seed=v.seed(seed, "course_data"))
    Xt, yt = ds.X_train, ds.y_train
    if kind == "backdoor":
        Xt, yt, _ = poisoning.STANDARD_BACKDOOR.poison(ds.X_train, ds.y_train, ds.n_classes)
    return save_data(path, ds.X_test, ds.y_test, X_train=Xt if with_training else None,
                     y_train=yt if with_training else None)
