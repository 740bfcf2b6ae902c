"""Drift detection for 08_monitoring: two-sample tests of a window against a reference.

- :func:`ks_test`: Kolmogorov–Smirnov on each softmax output, Bonferroni
  corrected (black-box shift detection), built on :func:`ks_statistic`;
- :func:`mmd_test`: maximum mean discrepancy with an RBF kernel (median
  heuristic, :func:`median_bandwidth`, :func:`rbf_kernel`, :func:`mmd2`) and a
  seeded permutation test;
- :func:`c2st`: classifier two-sample test, a held-out accuracy against chance
  with a binomial test.

Over a stream: :func:`sliding_windows` and :func:`scan_stream`; measuring a
detector: :func:`false_alarm_rate`, :func:`window_for_budget` (the lab),
:func:`detection_delay`, :func:`normal_windows`, :func:`stream_false_alarms`.
Every result is a :class:`DriftResult`. Taught in 08_monitoring.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats

from utils import validation as v
from utils.course.numerics import single_threaded
from utils.monitoring.stream import DRIFT_KINDS, sample_window


def _pair(ref: Any, cur: Any, where: str, min_rows: int = 2,
          names: tuple[str, str] = ("reference samples", "current samples")) -> tuple[np.ndarray, np.ndarray]:
    """Two samples as (N, d) float64 arrays with the same number of features ``d``.

    Images and other shapes are flattened per sample; a 1-D array is one feature per sample.
    """
    out = []
    for x, name in zip((ref, cur), names):
        out.append(v.features(np.asarray(x)[:, None] if np.ndim(x) == 1 else x, where, name=name,
                              min_rows=min_rows))
    a, b = out
    if a.shape[1] != b.shape[1]:
        v.fail(where, f"feature dimensions differ: the {names[0]} have {a.shape[1]} features each "
                      f"(shape {np.shape(ref)}), the {names[1]} {b.shape[1]} (shape {np.shape(cur)})",
               "both samples need the same features")
    return a, b


def _alpha(alpha: Any, where: str) -> float:
    return v.probability(alpha, "alpha (the significance level)", where)


@dataclass(frozen=True)
class DriftResult:
    """One two-sample test of a current window against the reference (taught in 08_monitoring)."""

    detector: str
    statistic: float
    p_value: float
    threshold: float
    drift: bool
    details: dict = field(default_factory=dict)


def _sample(x: Any, name: str, where: str) -> np.ndarray:
    """A non-empty, finite 1-D sample (any shape is flattened)."""
    a = np.asarray(x)
    return v.features(a.reshape(-1, 1) if a.ndim else a.reshape(1, 1), where, name=name)[:, 0]


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov–Smirnov statistic: the largest gap between two ECDFs
    (taught in 08_monitoring).

    ``D = max_x |F_a(x) - F_b(x)|``, evaluated at every observed value (the
    ECDFs only jump there). Matches ``scipy.stats.ks_2samp(a, b).statistic``.
    """
    a = np.sort(_sample(a, "a", "ks_statistic"))
    b = np.sort(_sample(b, "b", "ks_statistic"))
    values = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, values, side="right") / len(a)
    cdf_b = np.searchsorted(b, values, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def ks_test(ref: np.ndarray, cur: np.ndarray, alpha: float = 0.05) -> DriftResult:
    """Black-box shift detection: KS on each model output, Bonferroni corrected
    (taught in 08_monitoring).

    ``ref`` and ``cur`` are (N, K) softmax outputs (or any features). Each of
    the K columns gets a two-sample KS test; the window drifts when the
    smallest p-value times K is below ``alpha`` (Rabanser et al., 2019).
    ``statistic`` is the largest per-column D, ``p_value`` the corrected one.

    The statistics come from :func:`ks_statistic`; for fixed sample sizes the
    p-value only falls as D grows, so ``scipy.stats.ks_2samp`` (exact when it
    can be) is called once, on the column with the largest D.
    """
    alpha = _alpha(alpha, "ks_test")
    ref, cur = _pair(ref, cur, "ks_test")
    k = ref.shape[1]
    d = np.array([ks_statistic(ref[:, j], cur[:, j]) for j in range(k)])
    j = int(d.argmax())
    p_min = float(stats.ks_2samp(ref[:, j], cur[:, j]).pvalue)
    p_corr = float(min(1.0, p_min * k))
    return DriftResult("ks", float(d[j]), p_corr, alpha, p_corr < alpha,
                       {"column": j, "p_uncorrected": p_min, "d_per_column": np.round(d, 4).tolist()})


@single_threaded
def median_bandwidth(Z: np.ndarray) -> float:
    """The median heuristic: the median pairwise Euclidean distance of the pooled
    sample (taught in 08_monitoring)."""
    Z = v.features(Z, "median_bandwidth", name="Z", min_rows=2)
    return _median_from_sq(_sq_dists(Z))


def _median_from_sq(d2: np.ndarray) -> float:
    med = float(np.median(np.sqrt(d2[np.triu_indices(len(d2), 1)])))
    return med if med > 0 else 1.0


def _sq_dists(Z: np.ndarray) -> np.ndarray:
    sq = (Z ** 2).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0)


def _bandwidth(bandwidth: Any, where: str) -> float:
    return v.real(bandwidth, "bandwidth", where, low=0.0, open_low=True)


@single_threaded
def rbf_kernel(Z: np.ndarray, bandwidth: float) -> np.ndarray:
    """``k(z, z') = exp(-||z - z'||² / (2 σ²))`` for all pairs of rows of ``Z``
    (σ = bandwidth; taught in 08_monitoring)."""
    Z = v.features(Z, "rbf_kernel", name="Z")
    bandwidth = _bandwidth(bandwidth, "rbf_kernel")
    return np.exp(-_sq_dists(Z) / (2.0 * bandwidth ** 2))


def _pooled_kernel(X: np.ndarray, Y: np.ndarray, bandwidth: float | None) -> tuple[np.ndarray, float]:
    d2 = _sq_dists(np.concatenate([X, Y]))
    bw = _median_from_sq(d2) if bandwidth is None else bandwidth
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


@single_threaded
def mmd2(X: np.ndarray, Y: np.ndarray, bandwidth: float | None = None) -> float:
    """The unbiased squared maximum mean discrepancy with an RBF kernel (Gretton et al.,
    2012; taught in 08_monitoring).

    ``bandwidth`` defaults to the median heuristic on the pooled sample.
    """
    X2, Y2 = _pair(X, Y, "mmd2", names=("samples X", "samples Y"))
    bandwidth = None if bandwidth is None else _bandwidth(bandwidth, "mmd2")
    K, _ = _pooled_kernel(X2, Y2, bandwidth)
    mask = np.zeros((1, len(K)))
    mask[0, :len(X2)] = 1
    return float(_mmd2_from_kernel(K, mask, len(X2))[0])


@single_threaded
def mmd_test(ref: np.ndarray, cur: np.ndarray, n_permutations: int = 200, alpha: float = 0.05,
             seed: int = 0, bandwidth: float | None = None) -> DriftResult:
    """MMD two-sample test with a seeded permutation test, all permutations at once
    (taught in 08_monitoring).

    The kernel matrix of the pooled sample is computed once; each permutation
    is a 0/1 mask of who is "reference", so MMD² for every permutation is a few
    matrix products. ``p = (1 + #{perm >= observed}) / (1 + n_permutations)``.
    """
    where = "mmd_test"
    alpha = _alpha(alpha, where)
    n_permutations = v.integer(n_permutations, "n_permutations", where, low=1)
    seed = v.seed(seed, where)
    bandwidth = None if bandwidth is None else _bandwidth(bandwidth, where)
    X, Y = _pair(ref, cur, where)
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
                       {"bandwidth": round(bw, 4), "n_permutations": n_permutations})


@single_threaded
def c2st(ref: np.ndarray, cur: np.ndarray, alpha: float = 0.05, seed: int = 0,
         test_size: float = 0.5) -> DriftResult:
    """Classifier two-sample test (Lopez-Paz & Oquab, 2017; taught in 08_monitoring).

    Label the reference 0 and the window 1, train a logistic regression on a
    seeded stratified half and count correct answers on the other half. If the
    two samples are alike, that count is Binomial(n_test, 1/2), so a one-sided
    ``scipy.stats.binomtest`` gives the p-value. ``statistic`` is the held-out accuracy.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    where = "c2st"
    alpha = _alpha(alpha, where)
    seed = v.seed(seed, where)
    test_size = v.probability(test_size, "test_size", where)
    X, Y = _pair(ref, cur, where)
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


#: The detectors :func:`scan_stream` knows by name.
DETECTORS: dict[str, Callable[..., DriftResult]] = {"ks": ks_test, "mmd": mmd_test, "c2st": c2st}


def _window(window: Any, n: int, where: str) -> int:
    """A window length: at least 2 samples (a test needs two), at most the stream's ``n``."""
    window = v.integer(window, "window", where, low=2)
    if window > n:
        v.fail(where, f"window = {window} is longer than the stream ({n} samples)",
               f"window must be at most {n}")
    return window


def sliding_windows(n: int, window: int, step: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of windows of ``window`` samples every ``step`` samples over ``n``
    (taught in 08_monitoring)."""
    where = "sliding_windows"
    n = v.integer(n, "n", where, low=0)
    window = _window(window, n, where)
    step = window if step is None else v.integer(step, "step", where, low=1)
    return [(s, s + window) for s in range(0, n - window + 1, step)]


@single_threaded
def scan_stream(ref: np.ndarray, features: np.ndarray, detector: str | Callable[..., DriftResult],
                window: int = 200, step: int = 50, alpha: float = 0.05, **kwargs):
    """Test every sliding window of a stream's features against the reference
    (taught in 08_monitoring).

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

    where = "scan_stream"
    if isinstance(detector, str):
        fn = DETECTORS[v.choice(detector, "detector", where, DETECTORS)]
    elif callable(detector):
        fn = detector
    else:
        v.fail(where, f"detector = {detector!r} is neither a name nor a function",
               f"detector must be one of {', '.join(map(repr, DETECTORS))} or a function like them")
    alpha = _alpha(alpha, where)
    ref, feats = _pair(ref, features, where, names=("reference features", "stream features"))
    window = _window(window, len(feats), where)
    step = v.integer(step, "step", where, low=1)
    rows = []
    base_seed = v.seed(kwargs.pop("seed", 0), where)
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
    """Share of no-drift tests that said "drift" (on drifted windows: the power;
    taught in 08_monitoring)."""
    results = list(results)
    if len(results) == 0:
        v.fail("false_alarm_rate", "no test results", "give at least one DriftResult")
    return float(np.mean([r.drift for r in results]))


def window_for_budget(statistic: Callable[[np.ndarray], float], X_pool: np.ndarray, y_pool: np.ndarray,
                      candidates: Sequence[int], budget: float, target: float, kind: str, level: float,
                      n: int = 100, seed: int = 0, longest_if_none: bool = False
                      ) -> tuple[int | None, float | None, float | None]:
    """The smallest window that meets a false-alarm budget and a power target (taught
    in 08_monitoring_lab).

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
    where = "window_for_budget"
    if not callable(statistic):
        v.fail(where, f"statistic = {statistic!r} is not callable", "statistic must be a function of a window")
    budget = v.probability(budget, "budget", where)
    target = v.real(target, "target", where, 0.0, 1.0, open_low=True)
    candidates = [v.integer(w, "a candidate window", where, low=2) for w in candidates]
    v.choice(kind, "kind", where, DRIFT_KINDS)
    n = v.integer(n, "n", where, low=1)
    seed = v.seed(seed, where)
    for w in candidates:
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


def _scan(scan: Any, where: str, columns: Sequence[str] = ("start", "end", "drift")):
    """A scan of :func:`scan_stream`: a DataFrame with (at least) ``columns``."""
    missing = [c for c in columns if c not in getattr(scan, "columns", ())]
    if missing:
        v.fail(where, f"the scan lacks the columns {missing}", "pass the DataFrame scan_stream returns")
    return scan


def detection_delay(scan, onset: int, end: int | None = None) -> int | None:
    """Requests from a drift's onset to the end of the first window that flags it
    (taught in 08_monitoring).

    Only windows that end after ``onset`` (and, if given, start before
    ``end``, the drift's last request) count. ``None`` when it is never flagged.
    """
    where = "detection_delay"
    scan = _scan(scan, where)
    onset = v.integer(onset, "onset", where, low=0)
    hit = scan[(scan["end"] > onset) & scan["drift"]]
    if end is not None:
        hit = hit[hit["start"] < v.integer(end, "end", where, low=onset)]
    if hit.empty:
        return None
    return int(hit["end"].iloc[0] - onset)


def normal_windows(scan, segments: Sequence[dict]) -> np.ndarray:
    """For each window of a scan, whether it lies wholly inside normal traffic (no
    drift, no attack; taught in 08_monitoring)."""
    scan = _scan(scan, "normal_windows", ("start", "end"))
    out = []
    for start, end in zip(scan["start"], scan["end"]):
        overlaps = [s for s in segments if s["start"] < end and start < s["end"]]
        out.append(all(s["normal"] for s in overlaps))
    return np.array(out, dtype=bool)


def stream_false_alarms(scan, segments: Sequence[dict]) -> int:
    """Flagged windows lying wholly inside normal traffic (no drift, no attack; taught
    in 08_monitoring)."""
    scan = _scan(scan, "stream_false_alarms")
    return int((scan["drift"].to_numpy(bool) & normal_windows(scan, segments)).sum())
