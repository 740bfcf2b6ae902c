"""One place for detection metrics: thresholds at a false-positive rate,
precision and recall of flags, ROC curves.

Every detector of the course (poison detectors in 03_data_defenses,
adversarial-input detectors in 05_adversarial_defenses, traffic monitors in
08_monitoring) outputs a score per example, higher meaning more suspicious;
these functions turn scores into flags and flags into numbers the same way
for all of them. Each lesson still writes the idea once in its own cells.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from utils import validation as v


def _scores(scores: Any, where: str, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64) if not hasattr(scores, "detach") else \
        scores.detach().cpu().numpy().astype(np.float64)
    s = s.reshape(-1) if s.ndim > 1 and max(s.shape) == s.size else s
    if s.ndim != 1 or len(s) == 0:
        v.fail(where, f"{name} have shape {s.shape}", f"{name} must be a non-empty 1-D array, one per example")
    if not np.isfinite(s).all():
        v.fail(where, f"{name} contain NaN or infinite values", f"{name} must be finite numbers")
    return s


def threshold_at_fpr(clean_scores: Any, fpr: float = 0.05) -> float:
    """The threshold that flags at most a share ``fpr`` of clean examples.

    Flag an example when its score is *above* the threshold: of the ``n``
    clean scores, at most ``floor(fpr * n)`` are (exactly that many when no
    scores tie). Set it on held-out clean data, never on the attacks. Taught in
    05_adversarial_defenses (feature squeezing) and 08_monitoring (traffic).
    """
    clean = np.sort(_scores(clean_scores, "threshold_at_fpr", "clean scores"))
    fpr = v.unit(fpr, "fpr", "threshold_at_fpr")
    allowed = int(np.floor(fpr * len(clean)))  # clean examples allowed above the threshold
    return float(clean[len(clean) - 1 - allowed]) if allowed < len(clean) else float(-np.inf)


@dataclass(frozen=True)
class DetectionMetrics:
    """How well flags match the truth (taught in 03_data_defenses; computed with
    scikit-learn's metrics by :func:`detection_metrics`)."""

    precision: float
    recall: float
    fpr: float
    flagged: int
    true_positives: int
    false_positives: int
    poisoned: int
    n: int

    def __str__(self) -> str:
        return (f"flagged {self.flagged} of {self.n}: precision {self.precision:.3f}, "
                f"recall {self.recall:.3f}, FPR {self.fpr:.3f}")

    def as_dict(self) -> dict[str, float]:
        """The headline numbers as a dict (taught in 03_data_defenses)."""
        return {"flagged": self.flagged, "precision": self.precision, "recall": self.recall, "fpr": self.fpr}


def detection_metrics(flags: Any, truth: Any) -> DetectionMetrics:
    """Score a detector's flags against the truth (taught in 03_data_defenses and 08_monitoring).

    Args:
        flags: boolean mask (N,) of flagged examples.
        truth: the examples that really are poisoned, adversarial or malicious,
            as a boolean mask (N,) or integer indices.

    Returns:
        precision (share of flags that are right; 0 when nothing is flagged),
        recall (share of the truth flagged; 0 when there is nothing to find) and
        FPR (share of the other examples flagged).
    """
    from sklearn.metrics import confusion_matrix, precision_score, recall_score

    f = np.asarray(flags)
    if f.dtype != bool or f.ndim != 1:
        v.fail("detection_metrics", f"flags have dtype {f.dtype} and shape {f.shape}",
               "flags must be a 1-D boolean mask")
    if len(f) == 0:
        v.fail("detection_metrics", "flags are empty", "give one flag per example")
    t = v.mask(truth, len(f), "detection_metrics", name="truth")
    tn, fp, fn, tp = confusion_matrix(t, f, labels=[False, True]).ravel()
    precision = precision_score(t, f, zero_division=0)
    recall = recall_score(t, f, zero_division=0)
    fpr = fp / (fp + tn) if fp + tn else 0.0
    return DetectionMetrics(float(precision), float(recall), float(fpr), int(f.sum()), int(tp), int(fp),
                            int(t.sum()), len(f))


def roc(clean_scores: Any, attack_scores: Any) -> dict:
    """ROC curve and AUC of a detector that flags high scores (taught in 05_adversarial_defenses).

    Returns ``{"fpr", "tpr", "thresholds", "auc"}`` (arrays from
    ``sklearn.metrics.roc_curve`` and the area under the curve).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    clean = _scores(clean_scores, "roc", "clean scores")
    attack = _scores(attack_scores, "roc", "attack scores")
    truth = np.r_[np.zeros(len(clean)), np.ones(len(attack))]
    scores = np.r_[clean, attack]
    fpr, tpr, thresholds = roc_curve(truth, scores)
    return {"fpr": fpr, "tpr": tpr, "thresholds": thresholds, "auc": float(roc_auc_score(truth, scores))}


def recall_at_fpr(scores: Any, truth: Any, max_fpr: float = 0.05) -> tuple[float, float]:
    """The best recall any score threshold reaches with FPR <= ``max_fpr``, and
    that threshold (taught in 03_data_defenses)."""
    from sklearn.metrics import roc_curve

    s = _scores(scores, "recall_at_fpr")
    max_fpr = v.unit(max_fpr, "max_fpr", "recall_at_fpr")
    t = v.mask(truth, len(s), "recall_at_fpr", name="truth")
    if t.all() or not t.any():
        v.fail("recall_at_fpr", f"{int(t.sum())} of {len(t)} examples are in the truth",
               "it needs both flagged-worthy and clean examples")
    fpr, tpr, thr = roc_curve(t, s)
    ok = np.flatnonzero(fpr <= max_fpr)
    best = ok[np.argmax(tpr[ok])]
    return float(tpr[best]), float(thr[best])
