"""Attack traffic for 08_monitoring: per-request scores and per-client evidence.

:func:`novelty_score` (distance to the nearest reference input, for a model
thief's synthetic queries) and :func:`reference_novelty` (the same for the
reference itself, leave one out) score requests; :func:`client_report` adds
the flags up per client with a binomial test. Feature squeezing, for
adversarial inputs, is :func:`utils.defenses.adversarial.squeeze_score`, and
thresholds at a false-positive rate are :func:`utils.metrics.threshold_at_fpr`.
Taught in 08_monitoring.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from utils import validation as v
from utils.course.numerics import single_threaded
from utils.monitoring.drift import _alpha, _pair, _sq_dists


@single_threaded
def novelty_score(X: np.ndarray, X_ref: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Euclidean distance from each input to its nearest reference input (taught in 08_monitoring).

    For the reference inputs themselves use :func:`reference_novelty` (leave one out).
    """
    where = "novelty_score"
    batch = v.integer(batch, "batch", where, low=1)
    R, Q = _pair(X_ref, X, where, min_rows=1, names=("reference inputs", "inputs"))
    rsq = (R ** 2).sum(1)
    out = np.empty(len(Q))
    for s in range(0, len(Q), batch):
        q = Q[s:s + batch]
        d2 = (q ** 2).sum(1)[:, None] + rsq[None, :] - 2.0 * q @ R.T
        out[s:s + batch] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


@single_threaded
def reference_novelty(X_ref: np.ndarray) -> np.ndarray:
    """:func:`novelty_score` of each reference input against the others (leave one
    out; taught in 08_monitoring)."""
    R = v.features(X_ref, "reference_novelty", name="reference inputs", min_rows=2)
    d2 = _sq_dists(R)
    np.fill_diagonal(d2, np.inf)
    return np.sqrt(d2.min(1))


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

    where = "client_report"
    alpha = _alpha(alpha, where)
    if not isinstance(flags, dict) or not flags:
        v.fail(where, f"flags = {flags!r}", "flags must be a non-empty dict {flag column: expected share}")
    flags = {name: v.probability(expected, f"the expected share of {name!r}", where)
             for name, expected in flags.items()}
    missing = [c for c in ("client", "time", *flags) if c not in getattr(log, "columns", ())]
    if missing:
        v.fail(where, f"the log lacks the columns {missing}",
               "give a DataFrame with client, time and one boolean column per flag")
    if len(log) == 0:
        v.fail(where, "the request log is empty", "give at least one request")
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
