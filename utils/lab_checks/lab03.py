"""Checks of labs/03_data_defenses_lab.ipynb (taught in notebooks/03_data_defenses.ipynb)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from utils import metrics
from utils.defenses import data as dd
from utils.course.grading import require, require_close
from . import Checker


def _exercise_1(balance_gaps: Callable[..., Any], yp: np.ndarray, ds: Any, suspect: Any, spec: Any) -> None:
    """Class-balance gaps match the share differences and point at the backdoor's target class."""
    expected = dd.class_shares(yp, ds.n_classes) - dd.class_shares(ds.y_val, ds.n_classes)
    got = np.asarray(balance_gaps(yp, ds.y_val, ds.n_classes), dtype=float)
    require(got.shape == (ds.n_classes,), f"expected {ds.n_classes} gaps, got shape {got.shape}")
    for c in range(ds.n_classes):
        require_close(f"gap of class {c}", got[c], expected[c], 1e-9)
    require(suspect == spec.target, f"the suspect should be class {spec.target}, got {suspect}")


def _exercise_2(spectral_scores: Callable[..., Any], H: np.ndarray, yp: np.ndarray) -> None:
    """Spectral-signature scores match the reference definition."""
    expected = dd.spectral_signature_scores(H, yp)
    got = np.asarray(spectral_scores(H, yp), dtype=float)
    require(got.shape == expected.shape, f"expected {len(expected)} scores, got shape {got.shape}")
    require(np.allclose(got, expected, rtol=1e-6, atol=1e-9),
            f"scores differ from the definition (largest gap {np.abs(got - expected).max():.3g})")


def _exercise_3(precision_recall_fpr: Callable[..., Any], H: np.ndarray, yp: np.ndarray, poisoned: np.ndarray) -> None:
    """Precision, recall and FPR match the reference on three flag masks."""
    rng = np.random.default_rng(0)
    cases = [dd.spectral_signatures(H, yp, expected_fraction=0.35, classes=[0]).flags,
             rng.random(len(yp)) < 0.2, np.zeros(len(yp), dtype=bool)]
    for flags in cases:
        m = metrics.detection_metrics(flags, poisoned)
        got = precision_recall_fpr(flags, poisoned)
        require(len(got) == 3, "return three numbers: (precision, recall, fpr)")
        for name, value, want in zip(("precision", "recall", "FPR"), got, (m.precision, m.recall, m.fpr)):
            require_close(f"{name} with {m.flagged} flagged", value, want, 1e-9)


def _exercise_4(flags: Any, config: Any, Xp: np.ndarray, yp: np.ndarray, ds: Any, spec: Any) -> None:
    """Retraining without the flagged digits removes the backdoor and keeps the accuracy."""
    mask = np.asarray(flags)
    require(mask.dtype == bool and mask.shape == (len(yp),), "flags must be a boolean mask over the training set")
    require(mask.sum() <= 0.10 * len(yp), f"{mask.sum()} examples removed, more than 10% of the training set")
    result = dd.retrain_without(config, Xp, yp, mask, ds.X_test, ds.y_test, backdoor=spec)
    require(result.asr <= 0.20, f"attack success rate after retraining is {result.asr:.3f}, not <= 0.20")
    require(result.accuracy >= 0.94, f"test accuracy after retraining is {result.accuracy:.3f}, not >= 0.94")


check = Checker("lab03", {
    1: ("class-balance gaps", _exercise_1),
    2: ("spectral scores", _exercise_2),
    3: ("precision, recall, FPR", _exercise_3),
    4: ("remove the backdoor", _exercise_4),
})
