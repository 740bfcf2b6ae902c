"""DP-SGD with opacus and the privacy / utility trade-off (taught in 06_model_theft_and_privacy).

DP-SGD (Abadi et al. 2016) clips each example's gradient to ``max_grad_norm`` and
adds Gaussian noise of standard deviation ``noise_multiplier * max_grad_norm`` to
the sum; with Poisson sampling of the batches, a privacy accountant (here opacus'
RDP accountant, Mironov 2017) bounds (epsilon, delta). :func:`train_dp` trains the
course's models so, deterministically for a seed on a CPU (no secure mode: opacus'
noise and sampling generators are seeded; a real deployment sets
``secure_mode=True`` and loses the determinism), and caches the weights as
safetensors next to :func:`utils.training.fit`'s, keyed by every setting and the
data hash.

:func:`tradeoff_study` trains a non-private baseline, a regularised one (weight
decay), an early-stopped one and DP-SGD at a few noise levels, and measures test
accuracy, epsilon and the threshold attack (loss) on each; the threshold attack
needs no shadow models, so it is the one that fits the lesson's time (LiRA against
each defense would need shadows trained with that defense).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from utils import training
from utils import validation as v
from utils.models import build_model
from utils.course.setup import current_device, numerics_signature
from utils.privacy import membership as mi

#: Bump when the DP training code changes in a way that changes the weights.
DP_CACHE_VERSION = 1


@dataclass(frozen=True)
class DPConfig:
    """Everything that determines a DP-SGD model besides the data (taught in
    06_model_theft_and_privacy). ``batch_size`` is the *expected* batch size of
    Poisson sampling (sample rate ``batch_size / N``)."""

    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0
    epochs: int = 15
    batch_size: int = 64
    lr: float = 0.1
    delta: float = 1e-5
    seed: int = 0
    model: str = "mlp"
    model_kwargs: tuple = field(default=())

    def with_(self, **changes) -> "DPConfig":
        """A copy with some fields changed (taught in 06_model_theft_and_privacy)."""
        from dataclasses import replace

        return replace(self, **changes)


def _check(config: DPConfig, where: str) -> DPConfig:
    if not isinstance(config, DPConfig):
        v.fail(where, f"config is a {type(config).__name__}", "config must be a DPConfig")
    v.real(config.noise_multiplier, "noise_multiplier", where, 0.0, open_low=True)
    v.real(config.max_grad_norm, "max_grad_norm", where, 0.0, open_low=True)
    v.integer(config.epochs, "epochs", where, low=1)
    v.integer(config.batch_size, "batch_size", where, low=1)
    v.real(config.lr, "lr", where, 0.0, open_low=True)
    v.probability(config.delta, "delta", where)
    v.seed(config.seed, where)
    return config


def dp_cache_key(config: DPConfig, X: np.ndarray, y: np.ndarray, n_classes: int) -> str:
    """The DP cache key: every setting, the data hash, the versions (torch, opacus), the
    device and the numerics, as in :func:`utils.training.cache_key` (taught in
    06_model_theft_and_privacy)."""
    import opacus

    blob = json.dumps({
        "dp_config": asdict(config), "n_classes": n_classes, "data": training.data_hash(X, y),
        "cache_version": DP_CACHE_VERSION, "torch": torch.__version__, "opacus": opacus.__version__,
        "device": current_device().type, "numerics": numerics_signature(),
    }, sort_keys=True, default=str)
    return "dp-" + hashlib.sha256(blob.encode()).hexdigest()[:24]


def _train(model: nn.Module, config: DPConfig, X: np.ndarray, y: np.ndarray, device) -> tuple[float, list]:
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(config.seed)
    loader = DataLoader(TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), batch_size=config.batch_size,
                        generator=torch.Generator().manual_seed(config.seed))
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus warns that secure_mode is off: it is, on purpose
        engine = PrivacyEngine(accountant="rdp", secure_mode=False)
        dp_model, dp_opt, dp_loader = engine.make_private(
            module=model, optimizer=opt, data_loader=loader, noise_multiplier=config.noise_multiplier,
            max_grad_norm=config.max_grad_norm, poisson_sampling=True,
            noise_generator=torch.Generator(device=device).manual_seed(config.seed + 1))
    bar = training.tqdm(range(config.epochs), desc="DP-SGD", disable=not training.progress_enabled(), leave=False)
    with warnings.catch_warnings():
        # opacus' hooks fire on the first layer, whose inputs need no gradient: harmless
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        history = _epochs(dp_model, dp_opt, dp_loader, bar, device)
    epsilon = float(engine.get_epsilon(config.delta))
    dp_model.eval()
    return epsilon, history


def _epochs(dp_model, dp_opt, dp_loader, bar, device) -> list:
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for _ in bar:
        dp_model.train()
        total, count = 0.0, 0
        for xb, yb in dp_loader:
            if len(xb) == 0:
                continue
            xb, yb = xb.to(device), yb.to(device)
            dp_opt.zero_grad()
            loss = loss_fn(dp_model(xb), yb)
            loss.backward()
            dp_opt.step()
            total, count = total + loss.item() * len(xb), count + len(xb)
        history.append(total / max(count, 1))
    return history


def train_dp(config: DPConfig, X, y, n_classes: int | None = None, *, cache: bool = True) -> nn.Module:
    """Train with DP-SGD (opacus ``PrivacyEngine.make_private``, RDP accountant) or load
    from the cache; returns the plain model in eval mode with ``model.meta`` holding
    ``epsilon`` (at ``config.delta``), the settings, the loss history, the training
    seconds and ``from_cache`` (taught in 06_model_theft_and_privacy)."""
    where = "train_dp"
    config = _check(config, where)
    X = v.images(X, where, ndim=None, name="inputs", unit_range=False, allow_empty=False)
    y = v.labels(y, where, n=len(X))
    n_classes = int(y.max()) + 1 if n_classes is None else v.integer(n_classes, "n_classes", where, low=2)
    y = v.labels(y, where, n_classes=n_classes)
    if config.batch_size > len(X):
        v.fail(where, f"batch_size = {config.batch_size} for {len(X)} examples",
               "batch_size must be at most the number of examples")
    device = current_device()
    model = build_model(config.model, X.shape[1:], n_classes, seed=config.seed, **dict(config.model_kwargs))
    key = dp_cache_key(config, X, y, n_classes)
    weights, meta_path = training.cache_dir() / f"{key}.safetensors", training.cache_dir() / f"{key}.json"
    if cache and weights.exists() and meta_path.exists():
        model.load_state_dict(load_file(str(weights)))
        meta = json.loads(meta_path.read_text()) | {"from_cache": True}
    else:
        model.to(device)
        t0 = time.perf_counter()
        epsilon, history = _train(model, config, X, y, device)
        meta = {"dp_config": asdict(config), "epsilon": epsilon, "delta": config.delta, "history": history,
                "train_seconds": time.perf_counter() - t0, "key": key}
        if cache:
            training.save_cached(model, weights, meta_path, meta)
        meta["from_cache"] = False
    model.to(device).eval()
    model.meta = meta  # type: ignore[attr-defined]
    return model


@dataclass(frozen=True)
class TradeoffRow:
    """One defense in the trade-off study (taught in 06_model_theft_and_privacy):
    ``epsilon`` is ``inf`` for the non-private ones; ``attack`` is the loss threshold
    attack's result on the pool."""

    name: str
    epsilon: float
    accuracy: float
    attack: mi.AttackResult
    seconds: float

    def __str__(self) -> str:
        eps = "inf" if math.isinf(self.epsilon) else f"{self.epsilon:.2f}"
        return f"{self.name:<22} eps {eps:>6}  accuracy {self.accuracy:.3f}  {self.attack}"


#: The non-private variants of the study: the course target, weight decay, early stopping.
DEFENSES: dict[str, training.TrainConfig] = {
    "no defense": mi.TARGET_CONFIG,
    "weight decay 1e-2": mi.TARGET_CONFIG.with_(weight_decay=1e-2),
    "early stopping (8 ep)": mi.TARGET_CONFIG.with_(epochs=8),
}


def tradeoff_study(split: mi.MembershipSplit, noise_multipliers=(0.6, 1.0, 2.0),
                   dp_config: DPConfig = DPConfig(), fpr: float = 0.01) -> list[TradeoffRow]:
    """Epsilon, test accuracy and the loss threshold attack's AUC and TPR at ``fpr`` for
    :data:`DEFENSES` and DP-SGD at each noise multiplier, all trained on the split's
    members and cached (taught in 06_model_theft_and_privacy)."""
    where = "tradeoff_study"
    split = mi._check_split(split, where)
    if len(split.y_test) == 0:
        v.fail(where, "the split has no test set", "give X_test, y_test to make_split (digits_split does)")
    noise = [v.real(n, "noise multiplier", where, 0.0, open_low=True) for n in noise_multipliers]
    X, y = split.member_data()
    rows = []

    def row(name, model, eps, t0):
        scores = mi.threshold_scores(model, split.X, split.y)
        rows.append(TradeoffRow(name, eps, training.accuracy(model, split.X_test, split.y_test),
                                mi.evaluate(scores, split.members, fpr), time.perf_counter() - t0))

    for name, cfg in DEFENSES.items():
        t0 = time.perf_counter()
        row(name, mi.train_target(split, cfg), math.inf, t0)
    for sigma in noise:
        t0 = time.perf_counter()
        model = train_dp(_check(dp_config, where).with_(noise_multiplier=sigma, seed=split.seed), X, y, split.n_classes)
        row(f"DP-SGD noise {sigma:g}", model, model.meta["epsilon"], t0)
    return rows
