"""utils.metrics: one threshold at an FPR, one precision/recall, one ROC for every detector of the course."""
from __future__ import annotations

import numpy as np
import pytest

from utils import metrics


@pytest.mark.parametrize("n", [20, 99, 100, 101, 1000])
@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.1, 0.5])
def test_threshold_flags_the_nominal_share_of_clean_scores(n, fpr):
    clean = np.random.default_rng(n).normal(size=n)
    t = metrics.threshold_at_fpr(clean, fpr)
    assert (clean > t).sum() == int(np.floor(fpr * n))  # exactly, when no scores tie


def test_threshold_at_5_percent_of_100_flags_5_not_4():
    """The nominal rate: a quantile with method='higher' would flag 4 of 100 here."""
    clean = np.arange(100.0)
    t = metrics.threshold_at_fpr(clean, 0.05)
    assert t == 94.0 and (clean > t).sum() == 5
    assert (clean > np.quantile(clean, 0.95, method="higher")).sum() == 4


def test_threshold_edges_and_ties():
    clean = np.array([1.0, 2.0, 3.0])
    assert metrics.threshold_at_fpr(clean, 0.0) == 3.0  # flags nothing clean
    assert metrics.threshold_at_fpr(clean, 1.0) == -np.inf  # flags everything
    ties = np.array([1.0, 1.0, 1.0, 1.0])
    assert (ties > metrics.threshold_at_fpr(ties, 0.5)).sum() <= 2  # never more than allowed
    assert metrics.threshold_at_fpr(np.arange(10.0).reshape(10, 1), 0.1) == 8.0  # a column counts as 1-D


@pytest.mark.parametrize("bad, match", [
    (([], 0.05), "threshold_at_fpr: clean scores have shape"),
    (([1.0, np.nan], 0.05), "NaN or infinite"),
    (([1.0, 2.0], 1.5), "fpr = 1.5 is out of range"),
    ((np.ones((2, 2)), 0.05), "must be a non-empty 1-D array"),
])
def test_threshold_refuses(bad, match):
    with pytest.raises(ValueError, match=match):
        metrics.threshold_at_fpr(*bad)


def test_detection_metrics_against_hand_counts():
    flags = np.array([True, True, False, False, True, False])
    truth = np.array([0, 2, 3])  # indices
    m = metrics.detection_metrics(flags, truth)
    # flagged 0, 1, 4; truth 0, 2, 3: one true positive, two false positives of three clean
    assert (m.flagged, m.true_positives, m.false_positives, m.poisoned, m.n) == (3, 1, 2, 3, 6)
    assert m.precision == pytest.approx(1 / 3) and m.recall == pytest.approx(1 / 3)
    assert m.fpr == pytest.approx(2 / 3)
    assert metrics.detection_metrics(flags, np.isin(np.arange(6), truth)) == m  # a mask or indices
    assert str(m) == "flagged 3 of 6: precision 0.333, recall 0.333, FPR 0.667"
    assert m.as_dict() == {"flagged": 3, "precision": m.precision, "recall": m.recall, "fpr": m.fpr}


def test_detection_metrics_zero_cases():
    none = metrics.detection_metrics(np.zeros(4, bool), [1])
    assert (none.precision, none.recall, none.fpr) == (0.0, 0.0, 0.0)
    nothing_to_find = metrics.detection_metrics(np.array([True, False]), [])
    assert (nothing_to_find.recall, nothing_to_find.fpr) == (0.0, 0.5)


@pytest.mark.parametrize("flags, truth, match", [
    (np.array([1, 0]), [0], "flags must be a 1-D boolean mask"),
    (np.zeros(0, bool), [], "flags are empty"),
    (np.zeros(3, bool), [5], r"indices must be in \[0, 2\]"),
    (np.zeros(3, bool), np.zeros(2, bool), r"must have shape \(3,\)"),
])
def test_detection_metrics_refuses(flags, truth, match):
    with pytest.raises(ValueError, match=match):
        metrics.detection_metrics(flags, truth)


def test_roc_perfect_random_and_refusals():
    perfect = metrics.roc([0.1, 0.2, 0.3], [0.8, 0.9])
    assert perfect["auc"] == 1.0 and perfect["fpr"][0] == 0 and perfect["tpr"][-1] == 1
    rng = np.random.default_rng(0)
    assert abs(metrics.roc(rng.normal(size=4000), rng.normal(size=4000))["auc"] - 0.5) < 0.03
    assert metrics.roc([0.9], [0.1])["auc"] == 0.0
    with pytest.raises(ValueError, match="roc: attack scores have shape"):
        metrics.roc([0.1], [])
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc([np.inf], [0.1])


def test_recall_at_fpr():
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.75])
    truth = np.array([0, 1, 2])
    recall, threshold = metrics.recall_at_fpr(scores, truth, max_fpr=0.0)
    assert recall == pytest.approx(2 / 3) and threshold == pytest.approx(0.8)  # the clean 0.75 outranks 0.7
    recall, threshold = metrics.recall_at_fpr(scores, truth, max_fpr=0.25)
    assert recall == 1.0 and threshold == pytest.approx(0.7)
    recall, _ = metrics.recall_at_fpr(np.array([0.9, 0.1, 0.8, 0.2]), [0, 1], max_fpr=0.0)
    assert recall == 0.5  # the poisoned 0.1 hides below a clean score
    with pytest.raises(ValueError, match="needs both"):
        metrics.recall_at_fpr(scores, np.arange(7))
    with pytest.raises(ValueError, match="max_fpr = 2 is out of range"):
        metrics.recall_at_fpr(scores, truth, 2)
