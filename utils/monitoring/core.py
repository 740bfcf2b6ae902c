"""Monitoring a deployed model: drift, attacks in live traffic, alerts (taught in 08_monitoring).

A model in production sees a stream of requests. This module simulates one
from the course data and watches it:

- **Stream simulation**: :func:`apply_drift` (Gaussian noise, blur, rotation),
  class-prior shift in :func:`sample_window`, and :func:`simulate_stream`, which
  strings :class:`Segment` s together (normal traffic, gradual and sudden drift,
  adversarial inputs, extraction-style queries) with clients and timestamps.
- **Drift detection** on windows of the stream against a reference window:
  :func:`ks_test` (Kolmogorov–Smirnov on each softmax output, Bonferroni
  corrected; black-box shift detection), :func:`mmd_test` (maximum mean
  discrepancy, RBF kernel with the median heuristic, permutation test) and
  :func:`c2st` (classifier two-sample test: a held-out accuracy against chance
  with a binomial test). :func:`scan_stream` runs one over sliding windows,
  :func:`detection_delay` and :func:`false_alarm_rate` measure it.
- **Attack detection**: :func:`squeeze_score` (feature squeezing, for
  adversarial inputs) and :func:`novelty_score` (distance to the reference data,
  for extraction queries), thresholds calibrated on reference data, and
  :func:`client_report`, per-client evidence from the request log.
- **Alerting**: :class:`Alert` (one JSON line each), :class:`AlertLog`,
  :func:`incidents` (merge consecutive flagged windows), and
  :func:`plot_dashboard`, the stream with its alerts.
- **Delayed labels**: :func:`delayed_accuracy`, accuracy over time once the
  labels arrive.

All randomness comes from explicit seeds; inputs are never modified in place.
"""
from __future__ import annotations

import functools
import inspect
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy import ndimage, stats
from utils.paths import ROOT


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
SEVERITIES = ("info", "warning", "critical")


# --------------------------------------------------------------------------- one BLAS thread

_CONTROLLER = None


def _one_blas_thread(fn):
    """Run ``fn`` with NumPy's BLAS on one thread.

    The kernel matrices here are small: threads gain little, lose much when
    the cores are busy, and may change the order of float sums between machines.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _CONTROLLER
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        with _CONTROLLER.limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return wrapper


# --------------------------------------------------------------------------- input checks


def _array(x: Any, name: str, min_rows: int = 1) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 0:
        raise ValueError(f"{name} must be an array with one row per sample, got a scalar")
    if len(a) == 0:
        raise ValueError(f"{name} is empty: it needs at least {min_rows} samples")
    if len(a) < min_rows:
        raise ValueError(f"{name} has {len(a)} samples; at least {min_rows} are needed")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _pair(ref: Any, cur: Any, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current samples as 2-D float arrays with the same number of features."""
    ref = _array(ref, "reference", min_rows)
    cur = _array(cur, "current window", min_rows)
    ref2 = ref.reshape(len(ref), -1).astype(np.float64)
    cur2 = cur.reshape(len(cur), -1).astype(np.float64)
    if ref2.shape[1] != cur2.shape[1]:
        raise ValueError(f"feature dimensions differ: the reference has {ref2.shape[1]} features per "
                         f"sample (shape {ref.shape}), the current window {cur2.shape[1]} (shape {cur.shape})")
    return ref2, cur2


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha < 1:
        raise ValueError(f"alpha (the significance level) must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def _check_window(window: int, n: int | None = None) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window must be an integer >= 2 (a test needs at least 2 samples), got {window!r}")
    if n is not None and window > n:
        raise ValueError(f"window = {window} is longer than the stream ({n} samples)")
    return int(window)


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# --------------------------------------------------------------------------- simulating drift


def level_for(kind: str, strength: float) -> float:
    """The ``level`` of a drift kind at a strength in [0, 1] (the widget's slider)."""
    if kind not in DRIFT_KINDS:
        raise ValueError(f"unknown drift kind {kind!r}; known kinds: {', '.join(DRIFT_KINDS)}")
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    return STRENGTH_SCALE[kind] * float(strength)


def describe_drift(kind: str, level: float) -> str:
    """A short label such as ``"noise σ=0.15"`` or ``"rotation 20°"``."""
    if kind == "none" or level == 0:
        return "no drift"
    return {"noise": f"noise σ={level:.2f}", "blur": f"blur σ={level:.2f} px",
            "rotation": f"rotation {level:.0f}°", "prior": f"prior shift {level:.2f}"}[kind]


def apply_drift(X: np.ndarray, kind: str, level: float | np.ndarray,
                seed: int | np.random.Generator = 0) -> np.ndarray:
    """A drifted copy of images ``X`` (N, 1, H, W) in [0, 1].

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
    if kind not in DRIFT_KINDS:
        raise ValueError(f"unknown drift kind {kind!r}; known kinds: {', '.join(DRIFT_KINDS)}")
    X = _array(X, "X")
    if X.ndim != 4:
        raise ValueError(f"apply_drift needs images of shape (N, C, H, W), got {X.shape}")
    levels = np.broadcast_to(np.asarray(level, dtype=np.float64), (len(X),))
    if (levels < 0).any() and kind != "rotation":
        raise ValueError(f"level must be >= 0 for {kind!r}, got {levels.min()}")
    out = X.astype(np.float32, copy=True)
    if kind in ("none", "prior") or not levels.any():
        return out
    if kind == "noise":
        noise = _rng(seed).standard_normal(X.shape) * levels[:, None, None, None]
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
    """Sampling probabilities over a pool that move a share ``level`` of the traffic to ``classes``.

    With ``level = 0`` every class keeps its share of the pool; with ``level = 1``
    only ``classes`` arrive.
    """
    y = _array(y, "y")
    if not 0 <= level <= 1:
        raise ValueError(f"a prior-shift level is a share of traffic in [0, 1], got {level!r}")
    labels = np.unique(y)
    chosen = np.isin(y, classes)
    if not chosen.any():
        raise ValueError(f"none of the classes {tuple(classes)} is in the pool")
    per_class = {c: (y == c).sum() for c in labels}
    target = {c: (1 - level) / len(labels) + level * (c in classes) / len(set(classes) & set(labels))
              for c in labels}
    w = np.array([target[c] / per_class[c] for c in y])
    return w / w.sum()


def sample_window(X_pool: np.ndarray, y_pool: np.ndarray, n: int, kind: str = "none",
                  level: float = 0.0, seed: int | np.random.Generator = 0,
                  replace: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` inputs drawn from a pool (seeded), with a drift applied.

    ``kind="prior"`` draws by :func:`prior_weights` instead of uniformly; the
    other kinds draw uniformly and then call :func:`apply_drift`.
    Returns ``(X, y)``; the pool is not modified.
    """
    X_pool = _array(X_pool, "X_pool")
    y_pool = _array(y_pool, "y_pool")
    if len(X_pool) != len(y_pool):
        raise ValueError(f"X_pool has {len(X_pool)} rows but y_pool has {len(y_pool)} labels")
    _check_window(n)
    if not replace and n > len(X_pool):
        raise ValueError(f"cannot draw {n} samples without replacement from a pool of {len(X_pool)}")
    if kind not in DRIFT_KINDS:
        raise ValueError(f"unknown drift kind {kind!r}; known kinds: {', '.join(DRIFT_KINDS)}")
    rng = _rng(seed)
    p = prior_weights(y_pool, level) if kind == "prior" else None
    if p is not None and not replace and (p > 0).sum() < n:
        replace = True
    idx = rng.choice(len(X_pool), size=n, replace=replace, p=p)
    return apply_drift(X_pool[idx], kind, level, rng), y_pool[idx].copy()


def extraction_queries(X_pool: np.ndarray, n: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Synthetic queries of a model thief without training data (AML.T0024.002).

    Half are uniform random images, half blends of two pool images with fresh
    noise: inputs that probe the decision boundaries, not digits a user would send.
    """
    X_pool = _array(X_pool, "X_pool")
    rng = _rng(seed)
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
    """A stretch of the simulated stream.

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

    @property
    def is_normal(self) -> bool:
        """No drift (kind "none" or level 0 throughout) and no attack traffic."""
        no_drift = self.kind == "none" or (self.level == 0 and not self.level_end)
        return no_drift and self.adversarial == 0 and self.extraction == 0


@dataclass
class Stream:
    """A simulated stream of requests with the ground truth of the simulation.

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
    X_pool = _array(X_pool, "X_pool")
    y_pool = _array(y_pool, "y_pool")
    if len(X_pool) != len(y_pool):
        raise ValueError(f"X_pool has {len(X_pool)} rows but y_pool has {len(y_pool)} labels")
    if not segments:
        raise ValueError("simulate_stream needs at least one Segment")
    if not 1 <= n_clients <= 98:
        raise ValueError(f"n_clients must be in [1, 98], got {n_clients}")
    if rate <= 0:
        raise ValueError(f"rate must be > 0 requests per second, got {rate}")
    rng = np.random.default_rng(seed)
    cursor = _PoolCursor(len(X_pool), rng)
    ids = np.array([f"c{k:02d}" for k in rng.permutation(100)])
    benign_ids, adv_id, ext_id = ids[:n_clients], ids[n_clients], ids[n_clients + 1]
    share = 1.0 / np.arange(1, n_clients + 1) ** 0.7
    share /= share.sum()
    parts: dict[str, list] = {k: [] for k in ("X", "y", "client", "source", "drift", "level")}
    meta, start = [], 0
    for seg in segments:
        if seg.kind not in DRIFT_KINDS:
            raise ValueError(f"segment {seg.name!r}: unknown drift kind {seg.kind!r}")
        if seg.n < 1 or seg.adversarial < 0 or seg.extraction < 0 or seg.adversarial + seg.extraction > 1:
            raise ValueError(f"segment {seg.name!r}: n must be >= 1 and the attack shares in [0, 1]")
        if seg.adversarial > 0 and attack is None:
            raise ValueError(f"segment {seg.name!r} has adversarial requests: pass attack=...")
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
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return Stream(X=cat["X"], y=cat["y"], time=time, client=cat["client"], source=cat["source"],
                  drift=cat["drift"], level=cat["level"].astype(float), segments=meta)


# --------------------------------------------------------------------------- drift detectors


@dataclass(frozen=True)
class DriftResult:
    """One two-sample test of a current window against the reference."""

    detector: str
    statistic: float
    p_value: float
    threshold: float
    drift: bool
    details: dict = field(default_factory=dict)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov–Smirnov statistic: the largest gap between two ECDFs.

    ``D = max_x |F_a(x) - F_b(x)|``, evaluated at every observed value (the
    ECDFs only jump there). Matches ``scipy.stats.ks_2samp(a, b).statistic``.
    """
    a = np.sort(_array(a, "a").ravel().astype(np.float64))
    b = np.sort(_array(b, "b").ravel().astype(np.float64))
    values = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, values, side="right") / len(a)
    cdf_b = np.searchsorted(b, values, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def ks_test(ref: np.ndarray, cur: np.ndarray, alpha: float = 0.05) -> DriftResult:
    """Black-box shift detection: KS on each model output, Bonferroni corrected.

    ``ref`` and ``cur`` are (N, K) softmax outputs (or any features). Each of
    the K columns gets a two-sample KS test; the window drifts when the
    smallest p-value times K is below ``alpha`` (Rabanser et al., 2019).
    ``statistic`` is the largest per-column D, ``p_value`` the corrected one.

    The statistics come from :func:`ks_statistic`; for fixed sample sizes the
    p-value only falls as D grows, so ``scipy.stats.ks_2samp`` (exact when it
    can be) is called once, on the column with the largest D.
    """
    alpha = _check_alpha(alpha)
    ref, cur = _pair(ref, cur)
    k = ref.shape[1]
    d = np.array([ks_statistic(ref[:, j], cur[:, j]) for j in range(k)])
    j = int(d.argmax())
    p_min = float(stats.ks_2samp(ref[:, j], cur[:, j]).pvalue)
    p_corr = float(min(1.0, p_min * k))
    return DriftResult("ks", float(d[j]), p_corr, alpha, p_corr < alpha,
                       {"column": j, "p_uncorrected": p_min, "d_per_column": np.round(d, 4).tolist()})


@_one_blas_thread
def median_bandwidth(Z: np.ndarray) -> float:
    """The median heuristic: the median pairwise Euclidean distance of the pooled sample."""
    Z = _array(Z, "Z", 2).reshape(len(Z), -1).astype(np.float64)
    return _median_from_sq(_sq_dists(Z))


def _median_from_sq(d2: np.ndarray) -> float:
    med = float(np.median(np.sqrt(d2[np.triu_indices(len(d2), 1)])))
    return med if med > 0 else 1.0


def _sq_dists(Z: np.ndarray) -> np.ndarray:
    sq = (Z ** 2).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0)


@_one_blas_thread
def rbf_kernel(Z: np.ndarray, bandwidth: float) -> np.ndarray:
    """``k(z, z') = exp(-||z - z'||² / (2 σ²))`` for all pairs of rows of ``Z`` (σ = bandwidth)."""
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
    return np.exp(-_sq_dists(np.asarray(Z, dtype=np.float64)) / (2.0 * bandwidth ** 2))


def _pooled_kernel(X: np.ndarray, Y: np.ndarray, bandwidth: float | None) -> tuple[np.ndarray, float]:
    d2 = _sq_dists(np.concatenate([X, Y]))
    bw = _median_from_sq(d2) if bandwidth is None else float(bandwidth)
    if not bw > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
    return np.exp(-d2 / (2.0 * bw ** 2)), bw


def _mmd2_from_kernel(K: np.ndarray, members: np.ndarray, n: int) -> np.ndarray:
    """Unbiased MMD² for each row of ``members`` (0/1 masks of the first sample) at once."""
    N = K.shape[0]
    m = N - n
    a = members.astype(np.float64)
    row = K.sum(1)
    aKa = ((a @ K) * a).sum(1)
    aK1 = a @ row
    aKb = aK1 - aKa
    bKb = row.sum() - 2.0 * aK1 + aKa
    diag_a = a @ np.diag(K)
    diag_b = np.trace(K) - diag_a
    return ((aKa - diag_a) / (n * (n - 1)) + (bKb - diag_b) / (m * (m - 1))
            - 2.0 * aKb / (n * m))


@_one_blas_thread
def mmd2(X: np.ndarray, Y: np.ndarray, bandwidth: float | None = None) -> float:
    """The unbiased squared maximum mean discrepancy with an RBF kernel (Gretton et al., 2012).

    ``bandwidth`` defaults to the median heuristic on the pooled sample.
    """
    X2, Y2 = _pair(X, Y)
    K, _ = _pooled_kernel(X2, Y2, bandwidth)
    mask = np.zeros((1, len(K)))
    mask[0, :len(X2)] = 1
    return float(_mmd2_from_kernel(K, mask, len(X2))[0])


@_one_blas_thread
def mmd_test(ref: np.ndarray, cur: np.ndarray, n_permutations: int = 200, alpha: float = 0.05,
             seed: int = 0, bandwidth: float | None = None) -> DriftResult:
    """MMD two-sample test with a seeded permutation test, all permutations at once.

    The kernel matrix of the pooled sample is computed once; each permutation
    is a 0/1 mask of who is "reference", so MMD² for every permutation is a few
    matrix products. ``p = (1 + #{perm >= observed}) / (1 + n_permutations)``.
    """
    alpha = _check_alpha(alpha)
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) \
            or n_permutations < 1:
        raise ValueError(f"n_permutations must be an integer >= 1, got {n_permutations!r}")
    X, Y = _pair(ref, cur)
    n, N = len(X), len(X) + len(Y)
    K, bw = _pooled_kernel(X, Y, bandwidth)
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_permutations + 1, N))
    masks[0, :n] = 1
    order = rng.permuted(np.tile(np.arange(N), (n_permutations, 1)), axis=1)[:, :n]
    np.put_along_axis(masks[1:], order, 1.0, axis=1)
    values = _mmd2_from_kernel(K, masks, n)
    observed, null = values[0], values[1:]
    p = float((1 + np.sum(null >= observed)) / (1 + n_permutations))
    return DriftResult("mmd", float(observed), p, alpha, p < alpha,
                       {"bandwidth": round(bw, 4), "n_permutations": int(n_permutations)})


@_one_blas_thread
def c2st(ref: np.ndarray, cur: np.ndarray, alpha: float = 0.05, seed: int = 0,
         test_size: float = 0.5) -> DriftResult:
    """Classifier two-sample test (Lopez-Paz & Oquab, 2017).

    Label the reference 0 and the window 1, train a logistic regression on a
    seeded stratified half and count correct answers on the other half. If the
    two samples are alike, that count is Binomial(n_test, 1/2), so a one-sided
    ``scipy.stats.binomtest`` gives the p-value. ``statistic`` is the held-out accuracy.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    alpha = _check_alpha(alpha)
    X, Y = _pair(ref, cur)
    Z = np.concatenate([X, Y])
    labels = np.r_[np.zeros(len(X), int), np.ones(len(Y), int)]
    Ztr, Zte, ytr, yte = train_test_split(Z, labels, test_size=test_size, stratify=labels,
                                          random_state=seed)
    scaler = StandardScaler().fit(Ztr)
    clf = LogisticRegression(C=0.1, solver="newton-cholesky", max_iter=100).fit(scaler.transform(Ztr), ytr)
    correct = int((clf.predict(scaler.transform(Zte)) == yte).sum())
    # the chance level is the majority share, 1/2 for windows as large as the reference
    chance = max(yte.mean(), 1 - yte.mean())
    p = float(stats.binomtest(correct, len(yte), chance, alternative="greater").pvalue)
    return DriftResult("c2st", correct / len(yte), p, alpha, p < alpha,
                       {"n_test": int(len(yte)), "chance": round(float(chance), 4)})


DETECTORS: dict[str, Callable[..., DriftResult]] = {"ks": ks_test, "mmd": mmd_test, "c2st": c2st}


def sliding_windows(n: int, window: int, step: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of windows of ``window`` samples every ``step`` samples over ``n``."""
    window = _check_window(window, n)
    step = window if step is None else step
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step must be an integer >= 1, got {step!r}")
    return [(s, s + window) for s in range(0, n - window + 1, step)]


@_one_blas_thread
def scan_stream(ref: np.ndarray, features: np.ndarray, detector: str | Callable[..., DriftResult],
                window: int = 200, step: int = 50, alpha: float = 0.05, **kwargs):
    """Test every sliding window of a stream's features against the reference.

    Args:
        ref: reference features (e.g. softmax outputs of validation data).
        features: the same features for every request of the stream, in order.
        detector: ``"ks"``, ``"mmd"``, ``"c2st"`` or a function like them.
        window, step: window length and stride in requests.
        kwargs: passed to the detector (e.g. ``n_permutations``); ``seed``
            is offset by the window number so each window has its own permutations.

    Returns:
        a DataFrame with one row per window: start, end, detector, statistic,
        p_value, threshold, drift.
    """
    import pandas as pd

    fn = DETECTORS[detector] if isinstance(detector, str) else detector
    ref, feats = _pair(ref, features)
    rows = []
    base_seed = kwargs.pop("seed", 0)
    seeded = "seed" in inspect.signature(fn).parameters
    for i, (s, e) in enumerate(sliding_windows(len(feats), window, step)):
        extra = dict(kwargs)
        if seeded:
            extra["seed"] = base_seed + i
        r = fn(ref, feats[s:e], alpha=alpha, **extra)
        rows.append({"start": s, "end": e, "detector": r.detector, "statistic": r.statistic,
                     "p_value": r.p_value, "threshold": r.threshold, "drift": r.drift})
    return pd.DataFrame(rows)


def false_alarm_rate(results: Sequence[DriftResult]) -> float:
    """Share of no-drift tests that said "drift"."""
    if len(results) == 0:
        raise ValueError("false_alarm_rate needs at least one test result")
    return float(np.mean([r.drift for r in results]))


def window_for_budget(statistic: Callable[[np.ndarray], float], X_pool: np.ndarray, y_pool: np.ndarray,
                      candidates: Sequence[int], budget: float, target: float, kind: str, level: float,
                      n: int = 100, seed: int = 0, longest_if_none: bool = False
                      ) -> tuple[int | None, float | None, float | None]:
    """The smallest window that meets a false-alarm budget and a power target (08_monitoring lab).

    For each candidate window length, in order: the threshold is the
    ``1 - budget`` quantile (``method="higher"``) of ``statistic`` over ``n``
    seeded no-drift windows (seeds ``seed + 1000 + k``), so at most a share
    ``budget`` of them exceed it; the power is the share of ``n`` windows with
    the shift ``(kind, level)`` (seeds ``seed + 2000 + k``) that exceed it.

    Returns:
        ``(window, threshold, power)`` for the first candidate whose power is
        at least ``target``; if none reaches it, those of the last (longest)
        candidate when ``longest_if_none``, else ``(None, None, None)``.
    """
    if not 0 < budget < 1 or not 0 < target <= 1:
        raise ValueError(f"budget must be in (0, 1) and target in (0, 1], got {budget!r} and {target!r}")
    for w in candidates:
        _check_window(w)
        null = np.array([statistic(sample_window(X_pool, y_pool, w, seed=seed + 1000 + k)[0]) for k in range(n)])
        threshold = float(np.quantile(null, 1 - budget, method="higher"))
        shifted = np.array([statistic(sample_window(X_pool, y_pool, w, kind, level, seed=seed + 2000 + k)[0])
                            for k in range(n)])
        power = float(np.mean(shifted > threshold))
        if power >= target:
            return int(w), threshold, power
    if longest_if_none and len(candidates):
        return int(w), threshold, power
    return None, None, None


def detection_delay(scan, onset: int, end: int | None = None) -> int | None:
    """Requests from a drift's onset to the end of the first window that flags it.

    Only windows that end after ``onset`` (and, if given, start before
    ``end``, the drift's last request) count. ``None`` when it is never flagged.
    """
    hit = scan[(scan["end"] > onset) & scan["drift"]]
    if end is not None:
        hit = hit[hit["start"] < end]
    if hit.empty:
        return None
    return int(hit["end"].iloc[0] - onset)


def normal_windows(scan, segments: Sequence[dict]) -> np.ndarray:
    """For each window of a scan, whether it lies wholly inside normal traffic (no drift, no attack)."""
    out = []
    for start, end in zip(scan["start"], scan["end"]):
        overlaps = [s for s in segments if s["start"] < end and start < s["end"]]
        out.append(all(s["normal"] for s in overlaps))
    return np.array(out, dtype=bool)


def stream_false_alarms(scan, segments: Sequence[dict]) -> int:
    """Flagged windows lying wholly inside normal traffic (no drift, no attack)."""
    return int((scan["drift"].to_numpy(bool) & normal_windows(scan, segments)).sum())


# --------------------------------------------------------------------------- attack detection


def embed(model, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """A model's penultimate activations (``model.embed``) as a NumPy array, e.g. for MMD."""
    import torch

    from utils.training import to_tensor

    if not hasattr(model, "embed"):
        raise ValueError(f"{type(model).__name__} has no embed() method; use the MLP or the CNN")
    X = _array(X, "X")
    device = next(model.parameters()).device
    with torch.no_grad():
        return np.concatenate([model.embed(to_tensor(X[s:s + batch_size], device)).cpu().numpy()
                               for s in range(0, len(X), batch_size)])


def squeeze(X: np.ndarray, bits: int = 2) -> np.ndarray:
    """Bit-depth reduction: round each pixel to one of ``2**bits`` levels (a copy)."""
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer in [1, 8], got {bits!r}")
    levels = 2 ** bits - 1
    return (np.round(np.asarray(X, dtype=np.float32) * levels) / levels).astype(np.float32)


def squeeze_score(predict_proba: Callable[[np.ndarray], np.ndarray], X: np.ndarray,
                  bits: int = 2) -> np.ndarray:
    """Feature squeezing (Xu et al., 2018): L1 distance between the model's outputs
    on an input and on its bit-depth-reduced copy. Adversarial inputs, tuned to
    the exact pixel values, tend to move more than natural ones."""
    X = _array(X, "X")
    p = np.asarray(predict_proba(X))
    q = np.asarray(predict_proba(squeeze(X, bits)))
    return np.abs(p - q).sum(1)


@_one_blas_thread
def novelty_score(X: np.ndarray, X_ref: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Euclidean distance from each input to its nearest reference input.

    For the reference inputs themselves use :func:`reference_novelty` (leave one out).
    """
    R, Q = _pair(X_ref, X, min_rows=1)
    rsq = (R ** 2).sum(1)
    out = np.empty(len(Q))
    for s in range(0, len(Q), batch):
        q = Q[s:s + batch]
        d2 = (q ** 2).sum(1)[:, None] + rsq[None, :] - 2.0 * q @ R.T
        out[s:s + batch] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


@_one_blas_thread
def reference_novelty(X_ref: np.ndarray) -> np.ndarray:
    """:func:`novelty_score` of each reference input against the others (leave one out)."""
    R = _array(X_ref, "reference", 2).reshape(len(X_ref), -1).astype(np.float64)
    d2 = _sq_dists(R)
    np.fill_diagonal(d2, np.inf)
    return np.sqrt(d2.min(1))


def threshold_for(ref_scores: np.ndarray, fpr: float = 0.05) -> float:
    """The score above which only a share ``fpr`` of reference (clean) inputs lie."""
    ref_scores = _array(ref_scores, "reference scores")
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must be in (0, 1), got {fpr!r}")
    return float(np.quantile(ref_scores, 1 - fpr, method="higher"))


def precision_recall(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Precision and recall of boolean flags against boolean ground truth."""
    flagged = np.asarray(flagged, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if flagged.shape != truth.shape:
        raise ValueError(f"flags have shape {flagged.shape} but the truth has {truth.shape}")
    tp = int((flagged & truth).sum())
    precision = tp / flagged.sum() if flagged.any() else 0.0
    recall = tp / truth.sum() if truth.any() else 0.0
    return float(precision), float(recall)


def client_report(log, flags: dict[str, float], alpha: float = 0.01):
    """Per-client evidence from a request log (taught in 08_monitoring).

    Args:
        log: DataFrame with columns ``client``, ``time`` and one boolean column
            per name in ``flags`` (e.g. ``"novel"``: the request looked unlike
            the reference data).
        flags: for each flag column, the share of clean requests expected to
            raise it (the false-positive rate its threshold was set for).
        alpha: family-wise level; Bonferroni over clients × flags.

    Returns:
        a DataFrame, one row per client: requests, requests per minute, the
        share of each flag, a one-sided binomial p-value for each flag (is the
        share above what clean traffic gives?) and ``flag_<name>`` decisions.
    """
    import pandas as pd

    alpha = _check_alpha(alpha)
    missing = [c for c in ("client", "time", *flags) if c not in log.columns]
    if missing:
        raise ValueError(f"the log lacks the columns {missing}")
    if len(log) == 0:
        raise ValueError("the request log is empty")
    n_tests = log["client"].nunique() * len(flags)
    rows = []
    for client, g in log.groupby("client", sort=True):
        span = float(g["time"].max() - g["time"].min())
        row = {"client": client, "requests": len(g),
               "per_minute": len(g) / max(span / 60.0, 1.0)}
        for name, expected in flags.items():
            k = int(g[name].sum())
            p = float(stats.binomtest(k, len(g), expected, alternative="greater").pvalue)
            row[f"share_{name}"] = k / len(g)
            row[f"p_{name}"] = min(1.0, p * n_tests)
            row[f"flag_{name}"] = row[f"p_{name}"] < alpha
        rows.append(row)
    return pd.DataFrame(rows).sort_values("requests", ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------- alerts


def severity(p_value: float, alpha: float) -> str:
    """``"critical"`` when p < alpha / 100, ``"warning"`` when p < alpha, else ``"info"``."""
    alpha = _check_alpha(alpha)
    if p_value < alpha / 100:
        return "critical"
    if p_value < alpha:
        return "warning"
    return "info"


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (list, dict)):
        v = v.item()
    if isinstance(v, float):
        return float(f"{v:.6g}") if math.isfinite(v) else None
    return v


@dataclass(frozen=True)
class Alert:
    """A structured alert: what fired, when, how sure, and why.

    ``index`` is the request number that raised it (a window's end), ``time``
    its timestamp in seconds; ``evidence`` holds whatever an on-call engineer
    needs to judge it (window, client, shares, ...).
    """

    index: int
    time: float
    detector: str
    severity: str
    statistic: float
    p_value: float | None
    threshold: float
    evidence: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    def to_json(self) -> str:
        """One JSON line (keys sorted, floats to 6 significant digits)."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)


@dataclass
class AlertLog:
    """Alerts in memory; written to a JSON-lines file only when asked."""

    alerts: list[Alert] = field(default_factory=list)

    def add(self, alert: Alert) -> Alert:
        if not isinstance(alert, Alert):
            raise TypeError(f"AlertLog.add takes an Alert, got {type(alert).__name__}")
        self.alerts.append(alert)
        return alert

    def __len__(self) -> int:
        return len(self.alerts)

    def to_jsonl(self) -> str:
        return "".join(a.to_json() + "\n" for a in self.alerts)

    def counts(self) -> dict[str, int]:
        """Alerts per severity."""
        return {s: sum(a.severity == s for a in self.alerts) for s in SEVERITIES}

    def write(self, path: str | Path | None = None) -> Path:
        """Write the alerts as JSON lines (default ``build/alerts.jsonl`` in the repository)."""
        path = Path(path) if path is not None else ROOT / "build" / "alerts.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_jsonl(), encoding="utf-8")
        return path


def incidents(scan) -> list[dict]:
    """Merge runs of consecutive flagged windows into incidents (one alert each, not dozens).

    Returns dicts with ``start`` (first flagged window's end), ``end`` (last
    flagged window's end), ``windows`` and the smallest ``p_value`` and its
    ``statistic``.
    """
    out: list[dict] = []
    prev = False
    for _, row in scan.iterrows():
        if row["drift"]:
            if prev:
                cur = out[-1]
                cur["end"] = int(row["end"])
                cur["windows"] += 1
                if row["p_value"] < cur["p_value"]:
                    cur["p_value"], cur["statistic"] = float(row["p_value"]), float(row["statistic"])
            else:
                out.append({"detector": row["detector"], "start": int(row["end"]), "end": int(row["end"]),
                            "windows": 1, "p_value": float(row["p_value"]),
                            "statistic": float(row["statistic"]), "threshold": float(row["threshold"])})
        prev = bool(row["drift"])
    return out


def drift_alerts(scan, times: np.ndarray) -> list[Alert]:
    """One :class:`Alert` per incident of a stream scan (see :func:`incidents`).

    The alert is raised at the end of the incident's first flagged window;
    its severity comes from the incident's smallest p-value (:func:`severity`).
    """
    times = np.asarray(times)
    if scan.empty:
        return []
    length = int(scan["end"].iloc[0] - scan["start"].iloc[0])
    alerts = []
    for inc in incidents(scan):
        alerts.append(Alert(index=inc["start"], time=float(times[inc["start"] - 1]),
                            detector=inc["detector"], severity=severity(inc["p_value"], inc["threshold"]),
                            statistic=inc["statistic"], p_value=inc["p_value"], threshold=inc["threshold"],
                            evidence={"first_window": [inc["start"] - length, inc["start"]],
                                      "last_window_end": inc["end"], "windows": inc["windows"]}))
    return alerts


def client_alerts(report, log, detectors: dict[str, str], alpha: float = 0.01) -> list[Alert]:
    """One :class:`Alert` per client that :func:`client_report` flagged.

    Args:
        report: the output of :func:`client_report`.
        log: the request log it was computed from (columns ``index``, ``time``, ``client``).
        detectors: ``{flag name: detector name}`` in order of priority, e.g.
            ``{"novel": "extraction", "squeezed": "adversarial"}``: a client
            flagged by both is reported under the first.
        alpha: the level ``client_report`` used.
    """
    alerts = []
    for _, row in report.iterrows():
        for flag, name in detectors.items():
            if not row[f"flag_{flag}"]:
                continue
            mine = log[log["client"] == row["client"]]
            evidence = {"client": row["client"], "requests": int(row["requests"]),
                        "per_minute": round(float(row["per_minute"]), 2),
                        "first_request": int(mine["index"].min())}
            evidence.update({f"share_{f}": round(float(row[f"share_{f}"]), 3) for f in detectors})
            alerts.append(Alert(index=int(mine["index"].max()) + 1, time=float(mine["time"].max()),
                                detector=name, severity=severity(row[f"p_{flag}"], alpha),
                                statistic=float(row[f"share_{flag}"]), p_value=float(row[f"p_{flag}"]),
                                threshold=alpha, evidence=evidence))
            break
    return sorted(alerts, key=lambda a: a.index)


def accuracy_alerts(accuracy, floor: float, times: np.ndarray) -> list[Alert]:
    """Alerts for stretches where the accuracy seen through delayed labels falls below ``floor``.

    ``accuracy`` is the output of :func:`delayed_accuracy`; one alert per run of
    checkpoints below the floor, ``"critical"`` if it falls 10 points below.
    """
    times = np.asarray(times)
    alerts, run = [], []
    for r in accuracy.to_dict("records") + [None]:
        if r is not None and r["observed"] < floor:
            run.append(r)
            continue
        if run:
            worst = min(run, key=lambda x: x["observed"])
            start = int(run[0]["index"])
            alerts.append(Alert(index=start, time=float(times[start - 1]), detector="accuracy",
                                severity="critical" if worst["observed"] < floor - 0.1 else "warning",
                                statistic=float(worst["observed"]), p_value=None, threshold=float(floor),
                                evidence={"labels": int(run[0]["labels"]), "checkpoints": len(run),
                                          "until": int(run[-1]["index"])}))
            run = []
    return alerts


# --------------------------------------------------------------------------- delayed labels


def label_arrivals(n: int, mean_delay: float, seed: int = 0) -> np.ndarray:
    """The request index by which each request's true label is known (exponential delays)."""
    if mean_delay < 0:
        raise ValueError(f"mean_delay must be >= 0 requests, got {mean_delay}")
    rng = np.random.default_rng(seed)
    return np.arange(n) + np.ceil(rng.exponential(mean_delay, size=n)).astype(int) if mean_delay else np.arange(n)


def delayed_accuracy(correct: np.ndarray, arrivals: np.ndarray, window: int = 200, step: int = 50,
                     labelled: np.ndarray | None = None):
    """Accuracy over time as labels arrive (taught in 08_monitoring).

    At each checkpoint ``t`` (every ``step`` requests) it averages ``correct``
    over the last ``window`` requests whose labels have arrived by ``t``
    (``arrivals <= t``), next to the accuracy an oracle with instant labels
    would see. Requests with ``labelled=False`` (no true label) are skipped.

    Returns:
        DataFrame with columns index, observed (delayed), oracle, labels (how
        many labels the observed accuracy rests on).
    """
    import pandas as pd

    correct = np.asarray(correct, dtype=float)
    arrivals = np.asarray(arrivals)
    if correct.shape != arrivals.shape:
        raise ValueError(f"correct has shape {correct.shape} but arrivals {arrivals.shape}")
    window = _check_window(window, len(correct))
    keep = np.ones(len(correct), bool) if labelled is None else np.asarray(labelled, bool)
    rows = []
    for t in range(window, len(correct) + 1, step):
        known = np.flatnonzero(keep[:t] & (arrivals[:t] < t))[-window:]
        recent = np.flatnonzero(keep[:t])[-window:]
        rows.append({"index": t,
                     "observed": float(correct[known].mean()) if len(known) else np.nan,
                     "oracle": float(correct[recent].mean()) if len(recent) else np.nan,
                     "labels": len(known)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- figures and panel


def plot_dashboard(stream: Stream, scans, alerts: Sequence[Alert], flags=None, accuracy=None,
                   rolling: int = 100):
    """The monitoring dashboard of a stream, with its alerts marked (taught in 08_monitoring).

    Panels, sharing the request axis, with the drift and attack segments shaded:
    the drift detectors' −log10 p per window (the dashed line is the threshold);
    if ``flags`` (a DataFrame with ``index`` and boolean columns) is given, the
    rolling share of flagged requests; if ``accuracy`` (from
    :func:`delayed_accuracy`) is given, accuracy with instant and delayed labels.
    Alerts are triangles at the request that raised them (red: critical).
    Returns the Figure.
    """
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    scans = pd.concat(list(scans), ignore_index=True) if not isinstance(scans, pd.DataFrame) else scans
    panels = ["drift"] + (["attacks"] if flags is not None else []) + (["accuracy"] if accuracy is not None else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels) + 0.4), sharex=True, squeeze=False)
    axes = dict(zip(panels, axes[:, 0]))
    colors = {"critical": "red", "warning": "orange", "info": "grey"}

    def mark(ax, chosen, y):
        for a in chosen:
            ax.scatter([a.index], [y(a)], marker="v", s=70, color=colors[a.severity], zorder=5,
                       edgecolor="black", lw=0.5)

    ax = axes["drift"]
    data = scans.assign(score=-np.log10(np.clip(scans["p_value"].astype(float), 1e-10, 1)))
    sns.lineplot(data=data, x="end", y="score", hue="detector", ax=ax, lw=1.2)
    ax.axhline(-np.log10(float(scans["threshold"].iloc[0])), color="grey", ls="--", lw=1)
    drift_names = set(scans["detector"])
    mark(ax, [a for a in alerts if a.detector in drift_names],
         lambda a: -np.log10(max(a.p_value, 1e-10)) + 0.5)
    ax.set(ylabel="−log10 p (capped at 10)", ylim=(-0.3, 12.8),
           title="drift detectors over the stream (▼ alerts; dashed: threshold)")
    for seg in stream.onsets():
        ax.text((seg["start"] + seg["end"]) / 2, 12.4, seg["name"], ha="center", va="top", fontsize=8)
    ax.legend(loc="center left", fontsize=8)
    if flags is not None:
        ax = axes["attacks"]
        cols = [c for c in flags.columns if c != "index"]
        roll = flags[cols].astype(float).rolling(rolling, min_periods=1).mean().assign(index=flags["index"])
        long = roll.melt(id_vars="index", var_name="flag", value_name="share")
        sns.lineplot(data=long, x="index", y="share", hue="flag", ax=ax, lw=1.2)
        others = [a for a in alerts if a.detector not in drift_names and a.detector != "accuracy"]
        top = ax.get_ylim()[1]
        ax.set_ylim(0, top * 1.25)
        mark(ax, others, lambda a: top * 1.15)
        for k, a in enumerate(others):
            ax.annotate(f"{a.evidence.get('client', '')}: {a.detector}", (a.index, top * 1.15),
                        textcoords="offset points", xytext=(-8, -12 * k - 3), ha="right", va="top", fontsize=8)
        ax.set(ylabel=f"share of last {rolling}", title="requests flagged by the attack scores (▼ client alerts)")
        ax.legend(loc="upper left", fontsize=8)
    if accuracy is not None:
        ax = axes["accuracy"]
        acc = accuracy.melt(id_vars="index", value_vars=["oracle", "observed"], var_name="labels",
                            value_name="accuracy")
        acc["labels"] = acc["labels"].map({"oracle": "instant (oracle)", "observed": "delayed"})
        sns.lineplot(data=acc, x="index", y="accuracy", hue="labels", ax=ax, lw=1.2)
        mark(ax, [a for a in alerts if a.detector == "accuracy"], lambda a: a.statistic - 0.03)
        ax.set(title="accuracy as true labels arrive")
        ax.legend(loc="lower left", fontsize=8)
    for ax in axes.values():
        for seg in stream.onsets():
            ax.axvspan(seg["start"], seg["end"], color="grey", alpha=0.12, lw=0)
    axes[panels[-1]].set_xlabel("request")
    fig.tight_layout()
    return fig


def drift_panel(predict_proba: Callable[[np.ndarray], np.ndarray], X_ref: np.ndarray,
                X_pool: np.ndarray, y_pool: np.ndarray, window: int = 200, alpha: float = 0.05,
                n_permutations: int = 100, seed: int = 0, value: tuple[str, float] = ("noise", 0.5)):
    """A drift-kind dropdown and a strength slider showing the three detectors (08_monitoring).

    Each setting draws the same seeded window of ``window`` requests from the
    pool, drifts it, runs :func:`ks_test` on the softmax outputs and
    :func:`mmd_test` and :func:`c2st` on the inputs, and prints one line such as
    ``"noise σ=0.15 → KS p=0.000 ALERT · MMD p=0.005 ALERT · C2ST p=0.000 ALERT"``
    above a figure (example inputs, the predicted-class mix, −log10 p bars).
    Returns the panel (an ipywidgets VBox).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from utils.widgets import figure_png, result_label

    kinds = [k for k in DRIFT_KINDS if k != "none"]
    if value[0] not in kinds:
        raise ValueError(f"drift_panel: value[0] must be one of {kinds}, got {value[0]!r}")
    X_ref = _array(X_ref, "X_ref", 2)
    p_ref = np.asarray(predict_proba(X_ref))
    kind = widgets.Dropdown(options=[(DRIFT_KINDS[k], k) for k in kinds], value=value[0], description="drift")
    strength = widgets.FloatSlider(value=value[1], min=0.0, max=1.0, step=0.05, description="strength",
                                   readout_format=".2f")
    label = result_label()
    picture = widgets.Image(format="png")

    def redraw(*_):
        level = level_for(kind.value, strength.value)
        X, _ = sample_window(X_pool, y_pool, window, kind.value, level, seed=seed)
        p = np.asarray(predict_proba(X))
        results = [ks_test(p_ref, p, alpha), mmd_test(X_ref, X, n_permutations, alpha, seed=seed),
                   c2st(X_ref, X, alpha, seed=seed)]
        names = ["KS", "MMD", "C2ST"]
        parts = [f"{n} p={r.p_value:.3f}{' ALERT' if r.drift else ''}" for n, r in zip(names, results)]
        label.value = f"{describe_drift(kind.value, level)} → " + " · ".join(parts)
        fig = plt.figure(figsize=(9, 4.2))
        grid = fig.add_gridspec(2, 8, height_ratios=[1, 2.2])
        for i in range(8):
            ax = fig.add_subplot(grid[0, i])
            ax.imshow(X[i, 0], cmap="gray_r", vmin=0, vmax=1)
            ax.axis("off")
        ax1 = fig.add_subplot(grid[1, :4])
        k = p_ref.shape[1]
        mix = pd.DataFrame({"class": np.tile(np.arange(k), 2),
                            "share": np.r_[np.bincount(p_ref.argmax(1), minlength=k) / len(p_ref),
                                           np.bincount(p.argmax(1), minlength=k) / len(p)],
                            "window": ["reference"] * k + ["current"] * k})
        sns.barplot(data=mix, x="class", y="share", hue="window", palette=["grey", "tab:red"], ax=ax1)
        ax1.set(xlabel="predicted class", title="what the model answers")
        ax1.legend(fontsize=8)
        ax2 = fig.add_subplot(grid[1, 5:])
        scores = [-np.log10(max(r.p_value, 1e-4)) for r in results]
        ax2.bar(names, scores, color=["tab:red" if r.drift else "tab:grey" for r in results])
        ax2.axhline(-np.log10(alpha), color="black", ls="--", lw=1)
        ax2.set(ylim=(0, 4.2), ylabel="−log10 p", title="detectors (dashed: threshold)")
        fig.suptitle(describe_drift(kind.value, level))
        picture.value = figure_png(fig)

    kind.observe(redraw, names="value")
    strength.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([kind, strength]), label, picture])


__all__ = [
    "DRIFT_KINDS", "PRIOR_CLASSES", "Segment", "Stream", "DriftResult", "Alert", "AlertLog",
    "level_for", "describe_drift", "apply_drift", "prior_weights", "sample_window",
    "extraction_queries", "simulate_stream", "ks_statistic", "ks_test", "median_bandwidth",
    "rbf_kernel", "mmd2", "mmd_test", "c2st", "sliding_windows", "scan_stream",
    "false_alarm_rate", "window_for_budget", "detection_delay", "normal_windows",
    "stream_false_alarms", "embed", "squeeze", "squeeze_score", "novelty_score",
    "reference_novelty", "threshold_for", "precision_recall", "client_report", "severity",
    "incidents", "drift_alerts", "client_alerts", "accuracy_alerts", "label_arrivals",
    "delayed_accuracy", "plot_dashboard", "drift_panel",
]
