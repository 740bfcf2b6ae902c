"""PRADA (Juuti et al., 2019): detect a model-extraction client from its query stream
(taught in 06_model_theft_and_privacy).

For each client, each new query's minimum L2 distance to that client's earlier queries of
the same predicted class is recorded; natural queries give distances that look normally
distributed, synthetic ones (small steps from a few seeds, or noise far from everything)
do not. Once a client has sent ``min_queries`` queries, a Shapiro–Wilk test on its distance
set flags it as soon as ``W < delta``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from utils import validation as v


@dataclass
class Prada:
    """The per-client PRADA state (taught in 06_model_theft_and_privacy).

    ``delta``: flag when the Shapiro–Wilk statistic of the distance set falls below it;
    ``min_queries``: the least number of distances before the test is applied.

    Following the paper, a query joins its class's growing set only when its distance exceeds
    the class threshold ``T_c = max(T_c, mean - std)`` of the distances that added points to
    that set; every query's distance joins the tested set ``D``.
    """

    delta: float = 0.9
    min_queries: int = 100
    growing: dict = field(default_factory=dict)       # class -> list of vectors
    grow_dists: dict = field(default_factory=dict)    # class -> distances that added points
    threshold: dict = field(default_factory=dict)     # class -> T_c
    distances: list = field(default_factory=list)
    n_queries: int = 0
    flagged_at: int | None = None
    last_w: float = float("nan")

    def __post_init__(self):
        self.delta = v.real(self.delta, "delta", "Prada", 0.0, 1.0)
        self.min_queries = v.integer(self.min_queries, "min_queries", "Prada", 3, 10**6)

    def observe(self, x: np.ndarray, label: int) -> bool:
        """Add one query and its predicted ``label``; return whether the client is flagged."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        label = int(label)
        self.n_queries += 1
        G = self.growing.get(label)
        if G is None:
            self.growing[label] = [x]
            self.grow_dists[label] = []
            self.threshold[label] = 0.0
        else:
            d = float(np.sqrt(((np.asarray(G) - x) ** 2).sum(1)).min())
            self.distances.append(d)
            if d > self.threshold[label]:
                G.append(x)
                gd = self.grow_dists[label]
                gd.append(d)
                self.threshold[label] = max(self.threshold[label], float(np.mean(gd) - np.std(gd)))
        if len(self.distances) >= self.min_queries:
            D = np.asarray(self.distances)
            self.last_w = 0.0 if np.ptp(D) == 0 else float(stats.shapiro(D).statistic)
            if self.flagged_at is None and self.last_w < self.delta:
                self.flagged_at = self.n_queries
        return self.flagged_at is not None


def prada_stream(X: np.ndarray, labels: np.ndarray, delta: float = 0.9, min_queries: int = 100) -> dict:
    """Run PRADA over one client's stream (taught in 06_model_theft_and_privacy).

    Returns ``flagged`` (bool), ``flagged_at`` (the query count when first flagged, or None),
    ``w`` (the last Shapiro–Wilk statistic) and ``distances``.
    """
    where = "prada_stream"
    X = v.features(X, where, name="queries")
    labels = v.labels(labels, where, n=len(X))
    det = Prada(delta, min_queries)
    for x, c in zip(X, labels):
        det.observe(x, c)
    return {"flagged": det.flagged_at is not None, "flagged_at": det.flagged_at, "w": det.last_w,
            "distances": np.asarray(det.distances)}


def prada_log(log, X_by_sha: dict, delta: float = 0.9, min_queries: int = 100) -> dict:
    """PRADA per client over an audit log (taught in 06_model_theft_and_privacy).

    ``log``: entries as :func:`utils.serving.read_audit` returns them (dicts with ``client``,
    ``decision``, ``input_sha256`` and ``output_class``); ``X_by_sha``: the batch of images of
    each ``input_sha256`` (the log keeps hashes, not images). Returns ``{client: result}``
    as :func:`prada_stream`, for the allowed requests in log order.
    """
    where = "prada_log"
    streams: dict[str, tuple[list, list]] = {}
    for e in log:
        if e.get("decision") != "allow":
            continue
        sha = e.get("input_sha256")
        if sha not in X_by_sha:
            v.fail(where, f"no images for the logged input {str(sha)[:12]}...",
                   "give X_by_sha with the images of every allowed request")
        xs, ls = streams.setdefault(e["client"], ([], []))
        xs.extend(np.asarray(X_by_sha[sha]))
        ls.extend(e["output_class"])
    return {c: prada_stream(np.asarray(xs), np.asarray(ls, dtype=np.int64), delta, min_queries)
            for c, (xs, ls) in streams.items()}
