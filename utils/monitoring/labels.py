"""Delayed labels for 08_monitoring: accuracy over time once the true labels arrive.

:func:`label_arrivals` draws when each request's label arrives (exponential
delays); :func:`delayed_accuracy` is the accuracy an operator can observe at
each checkpoint, next to what instant labels would show. Taught in 08_monitoring.
"""
from __future__ import annotations

import numpy as np

from utils import validation as v


def label_arrivals(n: int, mean_delay: float, seed: int = 0) -> np.ndarray:
    """The request index by which each request's true label is known (exponential
    delays with a mean of ``mean_delay`` requests; taught in 08_monitoring)."""
    where = "label_arrivals"
    n = v.integer(n, "n", where, low=0)
    mean_delay = v.real(mean_delay, "mean_delay (in requests)", where, low=0.0)
    rng = np.random.default_rng(v.seed(seed, where))
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

    where = "delayed_accuracy"
    correct, arrivals = np.asarray(correct), np.asarray(arrivals)
    for name, a in (("correct", correct), ("arrivals", arrivals)):
        if a.ndim != 1 or a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            v.fail(where, f"{name} has dtype {a.dtype} and shape {a.shape}", f"{name} must be a 1-D array, one per request")
    n = v.same_length(where, correct=correct, arrivals=arrivals)
    correct = correct.astype(float)
    window = v.integer(window, "window", where, low=2)
    if window > n:
        v.fail(where, f"window = {window} is longer than the stream ({n} requests)", f"window must be at most {n}")
    step = v.integer(step, "step", where, low=1)
    keep = np.ones(n, bool) if labelled is None else v.mask(labelled, n, where, name="labelled")
    rows = []
    for t in range(window, n + 1, step):
        known = np.flatnonzero(keep[:t] & (arrivals[:t] < t))[-window:]
        recent = np.flatnonzero(keep[:t])[-window:]
        rows.append({"index": t,
                     "observed": float(correct[known].mean()) if len(known) else np.nan,
                     "oracle": float(correct[recent].mean()) if len(recent) else np.nan,
                     "labels": len(known)})
    return pd.DataFrame(rows)
