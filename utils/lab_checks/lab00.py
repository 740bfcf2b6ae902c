"""Checks of labs/00_orientation_and_threat_model_lab.ipynb (taught in notebooks/00_orientation_and_threat_model.ipynb)."""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Sequence

import numpy as np

from utils.course import threat_model
from utils import training
from utils.course.grading import require, require_close
from . import Checker


def _exercise_1(my_accuracy: Callable[[Any, Any], float], *, ds: Any, pred: Any, model: Any) -> None:
    """my_accuracy matches the mean of equal labels and rejects arrays of different lengths."""
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    require_close("my_accuracy on random labels", my_accuracy(a, b), float((a == b).mean()), 1e-9)
    require_close("my_accuracy on the test set", my_accuracy(ds.y_test, pred),
                  training.accuracy(model, ds.X_test, ds.y_test), 1e-9)
    try:
        my_accuracy([1, 2, 3], [1, 2])
    except ValueError:
        return
    raise AssertionError("my_accuracy should raise ValueError for arrays of different lengths")


def _exercise_2(most_confused: Callable[[Any, Any], tuple[int, int]], *, ds: Any, pred: Any) -> None:
    """most_confused returns the largest off-diagonal cell of the confusion matrix."""
    from sklearn.metrics import confusion_matrix
    for yt, yp in [(ds.y_test, pred), (np.array([1, 1, 2, 2, 2, 0]), np.array([2, 2, 1, 1, 0, 0]))]:
        m = confusion_matrix(yt, yp)
        np.fill_diagonal(m, 0)
        expected = tuple(int(v) for v in np.unravel_index(np.argmax(m), m.shape))
        got = most_confused(yt, yp)
        require(tuple(got) == expected, f"most_confused gave {got}, expected {expected}")


def _exercise_3(answers: Sequence[Any], *, scenarios: Sequence[str]) -> None:
    """One OWASP ML Top 10 id per scenario, compared by hash."""
    require(len(answers) == len(scenarios), f"give one answer per scenario ({len(scenarios)})")
    unknown = [a for a in answers if a not in threat_model.OWASP_ML_TOP10]
    require(not unknown, f"not OWASP ML Top 10 ids: {unknown}")
    # compared by hash, so the answers are not printed here
    digest = hashlib.sha256(",".join(answers).encode()).hexdigest()[:12]
    require(digest == "780d83b2a680", "at least one scenario is mapped to the wrong entry")


def _exercise_4(logreg_acc: Any, *, ds: Any, seed: int) -> None:
    """logreg_acc is the test accuracy of the logistic-regression preset trained with seed."""
    require(logreg_acc is not None, "logreg_acc is still None")
    reference = training.fit(training.preset("logreg", seed=seed), ds.X_train, ds.y_train, ds.n_classes)
    require_close("logreg_acc", logreg_acc, training.accuracy(reference, ds.X_test, ds.y_test), 1e-9)


check = Checker("lab00", {
    1: ("accuracy by hand", _exercise_1),
    2: ("most confused pair", _exercise_2),
    3: ("name the threat", _exercise_3),
    4: ("logistic regression", _exercise_4),
})
