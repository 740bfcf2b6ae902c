"""Seeded, cached training and evaluation (taught in 00_orientation_and_threat_model).

:func:`fit` trains a model from :mod:`utils.models` with a progress bar and
caches the result in ``.cache/models/``, keyed by a hash of the full
configuration *and of the training data*: the first call trains, every later
call with the same inputs loads the weights (saved as safetensors, never as a
pickle). Poisoned data, a different seed or another batch hook give another key.

Set the environment variable ``MODELSEC_PROGRESS=0`` to hide progress bars
(the tests do, so that executed notebooks print the same thing every time).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from utils import validation as v
from utils.models import build_model, device_of
from utils.course.setup import current_device, numerics_signature
from utils.paths import ROOT

#: Bump when training code changes in a way that changes the weights.
CACHE_VERSION = 1

BatchHook = Callable[[nn.Module, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


def cache_dir() -> Path:
    """Where trained models are cached (``MODELSEC_CACHE`` or ``.cache/`` in the repository);
    taught in 00_orientation_and_threat_model."""
    return Path(os.environ.get("MODELSEC_CACHE", ROOT / ".cache")) / "models"


def progress_enabled() -> bool:
    """Progress bars are on unless ``MODELSEC_PROGRESS=0`` (taught in 00_orientation_and_threat_model)."""
    return os.environ.get("MODELSEC_PROGRESS", "1") != "0"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (besides the data).

    ``model_kwargs`` is a tuple of (name, value) pairs so the config stays hashable,
    e.g. ``(("hidden", (64,)),)``. Taught in 00_orientation_and_threat_model.
    """

    model: str = "mlp"
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    optimizer: str = "adam"
    seed: int = 0
    model_kwargs: tuple = field(default=())

    def with_(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (taught in 00_orientation_and_threat_model)."""
        return replace(self, **changes)


#: Settings that reach >= 95% test accuracy on the digits in a few seconds on a CPU.
PRESETS: dict[str, TrainConfig] = {
    "logreg": TrainConfig("logreg", epochs=60, lr=1e-2),
    "mlp": TrainConfig("mlp", epochs=40, lr=2e-3),
    "cnn": TrainConfig("cnn", epochs=20, lr=2e-3),
}


def preset(model: str = "mlp", **changes) -> TrainConfig:
    """The course's default config for a model, with optional changes (e.g. ``seed=1``);
    taught in 00_orientation_and_threat_model."""
    return PRESETS[v.choice(model, "model", "preset", PRESETS)].with_(**changes)


def _check_config(config: TrainConfig, where: str) -> None:
    if not isinstance(config, TrainConfig):
        v.fail(where, f"config is a {type(config).__name__}", "config must be a TrainConfig (e.g. preset('mlp'))")
    v.integer(config.epochs, "epochs", where, low=1)
    v.integer(config.batch_size, "batch_size", where, low=1)
    v.real(config.lr, "lr", where, 0.0, open_low=True)
    v.real(config.weight_decay, "weight_decay", where, 0.0)
    v.choice(config.optimizer, "optimizer", where, ("adam", "sgd"))
    v.seed(config.seed, where)


def _inputs(X, where: str):
    """A non-empty batch of finite inputs (images, rows or points; any scale): a float32
    NumPy array, or a tensor as given (its values are checked, it is not copied)."""
    if isinstance(X, torch.Tensor):
        if X.ndim < 2 or len(X) == 0:
            v.fail(where, f"inputs have shape {tuple(X.shape)}", "inputs must be a non-empty batch (N, ...)")
        if X.is_complex() or X.dtype == torch.bool or not torch.isfinite(X.detach()).all():
            v.fail(where, "inputs contain NaN, infinite or non-real values", "inputs must be finite numbers")
        return X
    return v.images(X, where, ndim=None, name="inputs", unit_range=False, allow_empty=False)


def data_hash(*arrays: np.ndarray) -> str:
    """sha256 over the shapes, dtypes and bytes of some arrays (taught in 00_orientation_and_threat_model)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cache_key(config: TrainConfig, X: np.ndarray, y: np.ndarray, n_classes: int,
              tag: str | None = None) -> str:
    """The cache key: a hash of the config, the hook tag, the data, the versions, the
    device and the numerics settings (weights trained on a GPU or without the pin of
    :mod:`utils.course.numerics` are other weights). Taught in 00_orientation_and_threat_model."""
    blob = json.dumps({
        "config": asdict(config), "tag": tag, "n_classes": n_classes,
        "data": data_hash(X, y), "cache_version": CACHE_VERSION, "torch": torch.__version__,
        "device": current_device().type, "numerics": numerics_signature(),
    }, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def to_tensor(X: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """A float32 tensor on ``device`` (the notebook's device by default); taught in
    00_orientation_and_threat_model."""
    device = device or current_device()
    if isinstance(X, torch.Tensor):
        return X.to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)


def _make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if v.choice(config.optimizer, "optimizer", "fit", ("adam", "sgd")) == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def train_loop(model: nn.Module, config: TrainConfig, X: np.ndarray, y: np.ndarray,
               device: torch.device, batch_hook: BatchHook | None = None,
               desc: str = "training") -> list[float]:
    """Plain minibatch training, seeded by ``config.seed``; returns the loss per epoch.

    Called by :func:`fit` with checked data (taught in 00_orientation_and_threat_model;
    the ``batch_hook`` of adversarial training in 05_adversarial_defenses). The model
    is in training mode during the updates, so a hook that crafts attacks wraps
    them in :func:`utils.attacks.evasion.eval_mode`.
    """
    _check_config(config, "train_loop")
    Xt = torch.as_tensor(X)
    yt = torch.as_tensor(y)
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # batch hooks that draw random numbers see a fixed stream
    opt = _make_optimizer(config, model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    history: list[float] = []
    bar = tqdm(range(config.epochs), desc=desc, disable=not progress_enabled(), leave=False)
    for _ in bar:
        order = torch.randperm(len(Xt), generator=gen)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            xb, yb = Xt[idx].to(device), yt[idx].to(device)
            if batch_hook is not None:
                xb, yb = batch_hook(model, xb, yb)
            model.train()
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        history.append(total / len(Xt))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    model.eval()
    return history



def save_cached(model: nn.Module, weights: Path, meta_path: Path, meta: dict) -> None:
    """Write a model's weights (safetensors) and its metadata (JSON) into the cache, each to a
    temporary name first and then renamed, so that parallel runs never read half a file
    (taught in 00_orientation_and_threat_model; every cached model goes through it)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    state = {k: t.detach().cpu().contiguous() for k, t in model.state_dict().items()}
    tmp_w = weights.with_name(f"{weights.name}.{os.getpid()}.tmp")
    tmp_m = meta_path.with_name(f"{meta_path.name}.{os.getpid()}.tmp")
    save_file(state, str(tmp_w))
    tmp_m.write_text(json.dumps(meta, default=str))
    tmp_w.replace(weights)
    tmp_m.replace(meta_path)


def fit(config: TrainConfig, X: np.ndarray, y: np.ndarray, n_classes: int | None = None, *,
        device: torch.device | str | None = None, batch_hook: BatchHook | None = None,
        tag: str | None = None, cache: bool = True) -> nn.Module:
    """Train a model on ``(X, y)``, or load it from the cache if it was trained before.

    Args:
        config: the model and the optimisation settings.
        X, y: training inputs and integer labels (never modified).
        n_classes: number of classes (default: ``y.max() + 1``).
        device: where to train (default: the device chosen by ``utils.setup``).
        batch_hook: ``hook(model, xb, yb) -> (xb, yb)`` applied to every batch
            before the update, e.g. to train on adversarial examples (05).
        tag: a name for what the hook does; required with a hook, since it is
            part of the cache key.
        cache: load from / save to ``.cache/models``.

    Returns:
        the model in eval mode, with ``model.meta`` holding the config, the loss
        history, the training time in seconds (measured when it was trained) and
        whether it came from the cache.

    Taught in 00_orientation_and_threat_model.
    """
    where = "fit"
    _check_config(config, where)
    X = v.images(X, where, ndim=None, name="inputs", unit_range=False, allow_empty=False)
    y = v.labels(y, where, n=len(X))
    if n_classes is None:
        n_classes = int(y.max()) + 1
    else:
        n_classes = v.integer(n_classes, "n_classes", where, low=2)
        y = v.labels(y, where, n_classes=n_classes)
    if batch_hook is not None and not callable(batch_hook):
        v.fail(where, f"batch_hook is a {type(batch_hook).__name__}",
               "batch_hook must be a function (model, xb, yb) -> (xb, yb)")
    if batch_hook is not None and not tag:
        v.fail(where, "a batch_hook without a tag",
               "give tag=, a name for what the hook does (it is part of the cache key)")
    device = torch.device(device) if device is not None else current_device()
    model = build_model(config.model, X.shape[1:], n_classes, seed=config.seed,
                        **dict(config.model_kwargs))
    key = cache_key(config, X, y, n_classes, tag)
    weights = cache_dir() / f"{key}.safetensors"
    meta_path = cache_dir() / f"{key}.json"
    if cache and weights.exists() and meta_path.exists():
        model.load_state_dict(load_file(str(weights)))
        meta = json.loads(meta_path.read_text())
        meta["from_cache"] = True
    else:
        model.to(device)
        t0 = time.perf_counter()
        history = train_loop(model, config, X, y, device, batch_hook, desc=f"training {config.model}")
        seconds = time.perf_counter() - t0
        meta = {"config": asdict(config), "tag": tag, "history": history,
                "train_seconds": seconds, "key": key}
        if cache:
            save_cached(model, weights, meta_path, meta)
        meta["from_cache"] = False
    model.to(device).eval()
    model.meta = meta  # type: ignore[attr-defined]
    return model


@torch.no_grad()
def _proba(model: nn.Module, X, batch_size: int, where: str) -> np.ndarray:
    v.eval_mode(model, where)
    X = _inputs(X, where)
    batch_size = v.integer(batch_size, "batch_size", where, low=1)
    device = device_of(model)
    out = []
    for start in range(0, len(X), batch_size):
        xb = to_tensor(X[start:start + batch_size], device)
        out.append(torch.softmax(model(xb), dim=1).cpu())
    return torch.cat(out).numpy()


def predict_proba(model: nn.Module, X: np.ndarray | torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (softmax of the logits) as a NumPy array, from a model in eval
    mode (taught in 00_orientation_and_threat_model)."""
    return _proba(model, X, batch_size, "predict_proba")


def predict(model: nn.Module, X: np.ndarray | torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Predicted class indices of a model in eval mode (taught in 00_orientation_and_threat_model)."""
    return _proba(model, X, batch_size, "predict").argmax(1)


def accuracy(model: nn.Module, X: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Fraction of ``X`` classified as ``y`` by a model in eval mode (taught in
    00_orientation_and_threat_model)."""
    where = "accuracy"
    v.eval_mode(model, where)
    X = _inputs(X, where)
    y = v.labels(y, where, n=len(X))
    return float((_proba(model, X, 512, where).argmax(1) == y).mean())
