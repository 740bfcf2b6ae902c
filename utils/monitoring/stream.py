"""Stream simulation for 08_monitoring: drifted inputs, class-prior shift, attack traffic.

:func:`apply_drift` (Gaussian noise, blur, rotation) and :func:`sample_window`
(with a class-prior shift) draw windows of requests; :func:`simulate_stream`
strings :class:`Segment` s together into a :class:`Stream` with clients and
timestamps (normal traffic, gradual and sudden drift, adversarial inputs and
a model thief's :func:`extraction_queries`). Taught in 08_monitoring.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy import ndimage

from utils import validation as v

#: The kinds of input drift :func:`apply_drift` and :func:`sample_window` know, with the unit of ``level``.
DRIFT_KINDS: dict[str, str] = {
    "none": "",
    "noise": "Gaussian noise σ",
    "blur": "Gaussian blur σ (pixels)",
    "rotation": "rotation (degrees)",
    "prior": "share of traffic moved to classes 0–2",
}
#: Classes that gain weight under a class-prior shift.
PRIOR_CLASSES = (0, 1, 2)
#: ``level`` at widget strength 1.0 for each kind (see :func:`level_for`).
STRENGTH_SCALE = {"none": 0.0, "noise": 0.3, "blur": 1.0, "rotation": 30.0, "prior": 1.0}


def _rng(seed: int | np.random.Generator, where: str) -> np.random.Generator:
    """A generator as given, or a new one from a checked seed."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(v.seed(seed, where))


def _kind(kind: Any, where: str) -> str:
    return v.choice(kind, "kind", where, DRIFT_KINDS)


def _pool(X_pool: Any, y_pool: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A pool of images in [0, 1] and one class label per image."""
    X_pool = v.images(X_pool, where, ndim=None, name="X_pool", allow_empty=False)
    y_pool = v.labels(y_pool, where, n=len(X_pool), name="y_pool", what="pool images")
    return X_pool, y_pool


def level_for(kind: str, strength: float) -> float:
    """The ``level`` of a drift kind at a strength in [0, 1] (the widget's slider;
    taught in 08_monitoring)."""
    kind = _kind(kind, "level_for")
    strength = v.unit(strength, "strength", "level_for")
    return STRENGTH_SCALE[kind] * strength


def describe_drift(kind: str, level: float) -> str:
    """A short label such as ``"noise σ=0.15"`` or ``"rotation 20°"`` (taught in 08_monitoring)."""
    kind = _kind(kind, "describe_drift")
    level = v.real(level, "level", "describe_drift")
    if kind == "none" or level == 0:
        return "no drift"
    return {"noise": f"noise σ={level:.2f}", "blur": f"blur σ={level:.2f} px",
            "rotation": f"rotation {level:.0f}°", "prior": f"prior shift {level:.2f}"}[kind]


def _levels(level: Any, n: int, kind: str, where: str) -> np.ndarray:
    """One drift level per image from a number or an array of ``n`` numbers."""
    if v.is_real(level):
        levels = np.full(n, float(level))
    else:
        a = np.asarray(level)
        if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or a.ndim > 1 or a.size not in (1, n):
            v.fail(where, f"level = {level!r} is neither a number nor {n} numbers",
                   "level must be a number or one number per image")
        levels = np.broadcast_to(a.astype(np.float64), (n,))
        if not np.isfinite(levels).all():
            v.fail(where, "level contains NaN or infinite values", "level must be finite")
    if kind != "rotation" and (levels < 0).any():
        v.fail(where, f"level = {levels.min():g} is negative for {kind!r}",
               f"level must be >= 0 for {kind!r} (only a rotation has a sign)")
    return levels


def apply_drift(X: np.ndarray, kind: str, level: float | np.ndarray,
                seed: int | np.random.Generator = 0) -> np.ndarray:
    """A drifted copy of images ``X`` (N, 1, H, W) in [0, 1] (taught in 08_monitoring).

    Args:
        kind: ``"noise"`` (additive Gaussian, σ = level), ``"blur"`` (Gaussian
            blur, σ = level pixels), ``"rotation"`` (level degrees), or
            ``"none"`` / ``"prior"`` (inputs unchanged: a prior shift changes
            which inputs arrive, see :func:`sample_window`).
        level: one number, or one per image (a gradual drift).
        seed: seed or generator for the noise.

    Returns:
        new float32 images clipped to [0, 1]; ``X`` is not modified.
    """
    where = "apply_drift"
    kind = _kind(kind, where)
    X = v.images(X, where, allow_empty=False)
    levels = _levels(level, len(X), kind, where)
    rng = _rng(seed, where)
    out = X.astype(np.float32, copy=True)
    if kind in ("none", "prior") or not levels.any():
        return out
    if kind == "noise":
        noise = rng.standard_normal(X.shape) * levels[:, None, None, None]
        out = out + noise.astype(np.float32)
    else:
        for value in np.unique(levels):
            if value == 0:
                continue
            rows = levels == value
            if kind == "blur":
                out[rows] = ndimage.gaussian_filter(out[rows], sigma=(0, 0, value, value), mode="constant")
            else:
                out[rows] = ndimage.rotate(out[rows], value, axes=(3, 2), reshape=False, order=1,
                                           mode="constant")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def prior_weights(y: np.ndarray, level: float, classes: Sequence[int] = PRIOR_CLASSES) -> np.ndarray:
    """Sampling probabilities over a pool that move a share ``level`` of the traffic
    to ``classes`` (taught in 08_monitoring).

    With ``level = 0`` every class keeps its share of the pool; with ``level = 1``
    only ``classes`` arrive.
    """
    where = "prior_weights"
    y = v.labels(y, where, name="y")
    level = v.unit(level, "level (a share of traffic)", where)
    classes = [v.integer(c, "class", where, low=0) for c in classes]
    labels = np.unique(y)
    chosen = np.isin(y, classes)
    if not chosen.any():
        v.fail(where, f"none of the classes {tuple(classes)} is in the pool",
               f"classes must include some of the pool's classes {labels.tolist()}")
    per_class = {c: (y == c).sum() for c in labels}
    target = {c: (1 - level) / len(labels) + level * (c in classes) / len(set(classes) & set(labels))
              for c in labels}
    w = np.array([target[c] / per_class[c] for c in y])
    return w / w.sum()


def sample_window(X_pool: np.ndarray, y_pool: np.ndarray, n: int, kind: str = "none",
                  level: float = 0.0, seed: int | np.random.Generator = 0,
                  replace: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` inputs drawn from a pool (seeded), with a drift applied (taught in 08_monitoring).

    ``kind="prior"`` draws by :func:`prior_weights` instead of uniformly; the
    other kinds draw uniformly and then call :func:`apply_drift`.
    Returns ``(X, y)``; the pool is not modified.
    """
    where = "sample_window"
    X_pool, y_pool = _pool(X_pool, y_pool, where)
    n = v.integer(n, "n (the window length)", where, low=2)
    if not replace and n > len(X_pool):
        v.fail(where, f"cannot draw {n} samples without replacement from a pool of {len(X_pool)}",
               f"n must be at most {len(X_pool)}, or pass replace=True")
    kind = _kind(kind, where)
    rng = _rng(seed, where)
    p = prior_weights(y_pool, level) if kind == "prior" else None
    if p is not None and not replace and (p > 0).sum() < n:
        replace = True
    idx = rng.choice(len(X_pool), size=n, replace=replace, p=p)
    return apply_drift(X_pool[idx], kind, level, rng), y_pool[idx]


def extraction_queries(X_pool: np.ndarray, n: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Synthetic queries of a model thief without training data (AML.T0024.002; taught
    in 08_monitoring).

    Half are uniform random images, half blends of two pool images with fresh
    noise: inputs that probe the decision boundaries, not digits a user would send.
    """
    where = "extraction_queries"
    X_pool = v.images(X_pool, where, ndim=None, name="X_pool", allow_empty=False)
    n = v.integer(n, "n", where, low=1)
    rng = _rng(seed, where)
    n_noise = n // 2
    out = np.empty((n,) + X_pool.shape[1:], dtype=np.float32)
    out[:n_noise] = rng.random((n_noise,) + X_pool.shape[1:])
    a = X_pool[rng.integers(len(X_pool), size=n - n_noise)]
    b = X_pool[rng.integers(len(X_pool), size=n - n_noise)]
    lam = rng.uniform(0.3, 0.7, size=(n - n_noise,) + (1,) * (X_pool.ndim - 1))
    blend = lam * a + (1 - lam) * b + rng.normal(0, 0.15, size=a.shape)
    out[n_noise:] = np.clip(blend, 0, 1)
    return out[rng.permutation(n)]


@dataclass(frozen=True)
class Segment:
    """A stretch of the simulated stream (taught in 08_monitoring).

    ``kind``/``level`` describe the drift of normal traffic (a gradual drift
    ramps from ``level`` to ``level_end``); ``adversarial`` and ``extraction``
    are the shares of the segment's requests sent by the attacking clients.
    """

    name: str
    n: int
    kind: str = "none"
    level: float = 0.0
    level_end: float | None = None
    adversarial: float = 0.0
    extraction: float = 0.0

    def __post_init__(self):
        where = f"Segment {self.name!r}"
        v.integer(self.n, "n", where, low=1)
        _kind(self.kind, where)
        v.real(self.level, "level", where)
        if self.level_end is not None:
            v.real(self.level_end, "level_end", where)
        v.unit(self.adversarial, "adversarial", where)
        v.unit(self.extraction, "extraction", where)
        if self.adversarial + self.extraction > 1:
            v.fail(where, f"adversarial + extraction = {self.adversarial + self.extraction:g}",
                   "the attack shares must add up to at most 1")

    @property
    def is_normal(self) -> bool:
        """No drift (kind "none" or level 0 throughout) and no attack traffic."""
        no_drift = self.kind == "none" or (self.level == 0 and not self.level_end)
        return no_drift and self.adversarial == 0 and self.extraction == 0


@dataclass
class Stream:
    """A simulated stream of requests with the ground truth of the simulation (taught in 08_monitoring).

    ``source`` says who sent each request (``"benign"``, ``"adversarial"`` or
    ``"extraction"``); ``drift`` and ``level`` the drift applied to it.
    """

    X: np.ndarray
    y: np.ndarray
    time: np.ndarray
    client: np.ndarray
    source: np.ndarray
    drift: np.ndarray
    level: np.ndarray
    segments: list[dict]

    def __len__(self) -> int:
        return len(self.y)

    def onsets(self) -> list[dict]:
        """The segments that are not normal traffic, with their start and end."""
        return [s for s in self.segments if not s["normal"]]

    def frame(self):
        """The request log as a pandas DataFrame (no inputs): index, time, client, source, drift."""
        import pandas as pd

        seg = np.empty(len(self), dtype=object)
        for s in self.segments:
            seg[s["start"]:s["end"]] = s["name"]
        return pd.DataFrame({"index": np.arange(len(self)), "time": self.time, "client": self.client,
                             "source": self.source, "segment": seg, "drift": self.drift,
                             "level": self.level, "label": self.y})


class _PoolCursor:
    """Walks through shuffled passes over a pool, so nearby requests are distinct images.

    (Drawing with replacement puts duplicates in a window, and duplicates make
    two-sample tests raise false alarms: each copy counts as new evidence.)
    """

    def __init__(self, n: int, rng: np.random.Generator):
        self.n, self.rng, self.order, self.pos = n, rng, rng.permutation(n), 0

    def take(self, k: int) -> np.ndarray:
        out = []
        while k > 0:
            if self.pos == self.n:
                self.order, self.pos = self.rng.permutation(self.n), 0
            part = self.order[self.pos:self.pos + k]
            self.pos += len(part)
            k -= len(part)
            out.append(part)
        return np.concatenate(out)


def simulate_stream(X_pool: np.ndarray, y_pool: np.ndarray, segments: Sequence[Segment], *,
                    attack: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                    rate: float = 2.0, n_clients: int = 20, seed: int = 0) -> Stream:
    """Build a production stream from a pool of held-out inputs (taught in 08_monitoring).

    Args:
        X_pool, y_pool: the inputs traffic is drawn from: shuffled passes over the
            pool, so a window holds distinct images (a prior shift draws by weight).
        segments: the stream's stretches, in order.
        attack: ``attack(X, y) -> X_adv`` for the adversarial client's requests
            (e.g. PGD from :mod:`utils.attacks.evasion`); needed when a segment has ``adversarial > 0``.
        rate: requests per second (arrivals are a Poisson process).
        n_clients: benign clients; their shares of the traffic follow a Zipf law.
        seed: seeds everything.

    Client ids are ``"c00"`` ... ``"c99"`` in a seeded order: the attackers'
    ids say nothing about them (the truth is in ``Stream.source``).
    """
    where = "simulate_stream"
    X_pool, y_pool = _pool(X_pool, y_pool, where)
    segments = list(segments)
    if not segments:
        v.fail(where, "no segments", "give at least one Segment")
    for seg in segments:
        if not isinstance(seg, Segment):
            v.fail(where, f"a segment is a {type(seg).__name__}", "segments must be Segment objects")
        if seg.adversarial > 0 and attack is None:
            v.fail(where, f"segment {seg.name!r} has adversarial requests but no attack",
                   "pass attack=... (a function (X, y) -> adversarial X)")
    if attack is not None and not callable(attack):
        v.fail(where, f"attack = {attack!r} is not callable", "attack must be a function (X, y) -> adversarial X")
    rate = v.real(rate, "rate (requests per second)", where, low=0.0, open_low=True)
    n_clients = v.integer(n_clients, "n_clients", where, 1, 98)
    rng = np.random.default_rng(v.seed(seed, where))
    cursor = _PoolCursor(len(X_pool), rng)
    ids = np.array([f"c{k:02d}" for k in rng.permutation(100)])
    benign_ids, adv_id, ext_id = ids[:n_clients], ids[n_clients], ids[n_clients + 1]
    share = 1.0 / np.arange(1, n_clients + 1) ** 0.7
    share /= share.sum()
    parts: dict[str, list] = {k: [] for k in ("X", "y", "client", "source", "drift", "level")}
    meta, start = [], 0
    for seg in segments:
        n = seg.n
        levels = (np.full(n, seg.level) if seg.level_end is None
                  else np.linspace(seg.level, seg.level_end, n))
        if seg.kind == "prior":
            idx = rng.choice(len(X_pool), size=n, replace=True, p=prior_weights(y_pool, float(levels.mean())))
        else:
            idx = cursor.take(n)
        X = apply_drift(X_pool[idx], seg.kind, levels, rng)
        y = y_pool[idx].copy()
        source = rng.choice(np.array(["benign", "adversarial", "extraction"]), size=n,
                            p=[1 - seg.adversarial - seg.extraction, seg.adversarial, seg.extraction])
        adv = source == "adversarial"
        if adv.any():
            clean_idx = rng.choice(len(X_pool), size=adv.sum(), replace=True)
            X[adv] = np.asarray(attack(X_pool[clean_idx], y_pool[clean_idx]), dtype=np.float32)
            y[adv] = y_pool[clean_idx]
        ext = source == "extraction"
        if ext.any():
            X[ext] = extraction_queries(X_pool, int(ext.sum()), rng)
            y[ext] = -1  # a thief's synthetic queries have no true label
        client = np.array([str(benign_ids[k]) for k in rng.choice(n_clients, size=n, p=share)], dtype=object)
        client[adv] = str(adv_id)
        client[ext] = str(ext_id)
        drift = np.where(source == "benign", seg.kind, "none").astype(object)
        lev = np.where(source == "benign", levels, 0.0)
        for key, val in zip(parts, (X, y, client, source.astype(object), drift, lev)):
            parts[key].append(val)
        meta.append({"name": seg.name, "start": start, "end": start + n, "kind": seg.kind,
                     "level": seg.level, "level_end": seg.level_end, "adversarial": seg.adversarial,
                     "extraction": seg.extraction, "normal": seg.is_normal})
        start += n
    total = start
    time = np.cumsum(rng.exponential(1.0 / rate, size=total))
    cat = {k: np.concatenate(vals) for k, vals in parts.items()}
    return Stream(X=cat["X"], y=cat["y"], time=time, client=cat["client"], source=cat["source"],
                  drift=cat["drift"], level=cat["level"].astype(float), segments=meta)
