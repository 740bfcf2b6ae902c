"""What an output policy costs honest users: accuracy and calibration (taught in
06_model_theft_and_privacy).

:func:`served` gives what a client sees under each policy of the API
(:func:`utils.serving.policy.shape_output`): full, rounded, reverse-sigmoid probabilities or
the top-1 label only (written here as a one-hot row, the arg-max applied per row of a batch).
:func:`expected_calibration_error` and :func:`brier_score` measure what the served scores
are worth as probabilities.
"""
from __future__ import annotations

import numpy as np

from utils import validation as v
from utils.serving import policy

#: The policies compared in the lesson.
POLICIES = ("full", "rounded", "reverse_sigmoid", "label")


def _proba(P, where: str, name: str = "probabilities") -> np.ndarray:
    P = v.features(P, where, name=name)
    if P.shape[1] < 2:
        v.fail(where, f"{name} have {P.shape[1]} column", f"{name} need one column per class (at least 2)")
    if P.min() < 0 or P.max() > 1:
        v.fail(where, f"{name} have values in [{P.min():.3g}, {P.max():.3g}]", f"{name} must lie in [0, 1]")
    return P


def top1(P) -> np.ndarray:
    """The top-1 policy: a one-hot row for the arg-max of each row (taught in
    06_model_theft_and_privacy)."""
    P = _proba(P, "top1")
    out = np.zeros_like(P)
    out[np.arange(len(P)), P.argmax(1)] = 1.0
    return out


def served(P, output: str, decimals: int = 1, beta: float = 1.0, gamma: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, scores)`` a client gets for probabilities ``P`` under ``output`` (taught in
    06_model_theft_and_privacy): the API's own :func:`~utils.serving.policy.shape_output`,
    with the one-hot :func:`top1` rows as the scores of the label-only policy."""
    where = "served"
    P = _proba(P, where)
    output = v.choice(output, "output", where, POLICIES)
    body = policy.shape_output(P, output, decimals, beta, gamma)
    labels = np.asarray(body["labels"], dtype=np.int64)
    scores = top1(P) if body["probabilities"] is None else np.asarray(body["probabilities"], dtype=np.float64)
    return labels, scores


def _pair(scores, y, where: str) -> tuple[np.ndarray, np.ndarray]:
    P = _proba(scores, where, "scores")
    y = v.labels(y, where, n=len(P), n_classes=P.shape[1])
    return P, y


def expected_calibration_error(scores, y, bins: int = 10) -> float:
    """Expected calibration error (Guo et al., 2017) of the top-1 confidence (taught in
    06_model_theft_and_privacy).

    The predictions are grouped by their confidence (the largest score of each row) into
    ``bins`` equal-width bins of (0, 1]; the ECE is the average, weighted by the bin's share, of
    ``|accuracy - mean confidence|`` in each bin. 0: confidences match accuracies.
    """
    where = "expected_calibration_error"
    P, y = _pair(scores, y, where)
    bins = v.integer(bins, "bins", where, 1, 1000)
    conf = P.max(1)
    correct = (P.argmax(1) == y).astype(np.float64)
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def brier_score(scores, y) -> float:
    """Multi-class Brier score: the mean over examples of the squared distance between the
    scores and the one-hot truth, from 0 (certain and right) to 2 (taught in
    06_model_theft_and_privacy)."""
    P, y = _pair(scores, y, "brier_score")
    onehot = np.zeros_like(P)
    onehot[np.arange(len(P)), y] = 1.0
    return float(((P - onehot) ** 2).sum(1).mean())


def honest_cost(P, y, outputs=POLICIES, **kwargs) -> list[dict]:
    """For each policy: the accuracy of the served labels, the accuracy of the arg-max of the
    served scores, the share of rows whose arg-max the policy kept, ECE and Brier score of the
    served scores (taught in 06_model_theft_and_privacy)."""
    where = "honest_cost"
    P = _proba(P, where)
    y = v.labels(y, where, n=len(P), n_classes=P.shape[1])
    rows = []
    for out in outputs:
        labels, S = served(P, out, **kwargs)
        rows.append({"policy": out, "accuracy": float((labels == y).mean()),
                     "score_accuracy": float((S.argmax(1) == y).mean()),
                     "argmax_kept": float((S.argmax(1) == P.argmax(1)).mean()),
                     "ece": expected_calibration_error(np.clip(S, 0, 1), y), "brier": brier_score(np.clip(S, 0, 1), y)})
    return rows
