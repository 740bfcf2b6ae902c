"""Checks of labs/00_orientation_and_threat_model_lab.ipynb (taught in notebooks/00_orientation_and_threat_model.ipynb).

No message reveals a reference answer: a check says what is wrong (which case,
which kind of mistake), never the number or pair it expected.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any, Callable, Sequence

import numpy as np

from utils.course import threat_model
from utils import training
from utils.course.grading import NotSolved, forbid, require
from . import Checker


def _number(name: str, value: Any) -> float:
    """``value`` as a float, or NotSolved saying it is not a number."""
    if isinstance(value, (bool, np.bool_)):
        raise NotSolved(f"{name} should be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise NotSolved(f"{name} should be a number, got {value!r}") from None


# --------------------------------------------------------------------------- exercise 1
def _accuracy_helpers() -> tuple[Callable[..., Any], ...]:
    from sklearn.metrics import accuracy_score

    return training.accuracy, accuracy_score


#: Label arrays of different lengths, including the ones NumPy would broadcast
#: silently (a single label against many, an empty array is refused by NumPy anyway).
_MISMATCHED = [
    ("3 labels against 2", [1, 2, 3], [1, 2]),
    ("1 label against 5", [3], [3, 3, 1, 3, 3]),
    ("5 labels against 1", np.array([3, 3, 1, 3, 3]), np.array([3])),
    ("0 labels against 4", np.array([], dtype=int), np.array([0, 1, 2, 3])),
]


def _exercise_1(my_accuracy: Callable[[Any, Any], float], *, ds: Any, pred: Any, model: Any) -> None:
    """my_accuracy is the share of equal labels, written by hand, and refuses arrays of different lengths."""
    helpers = _accuracy_helpers()
    require(not any(my_accuracy is h for h in helpers),
            "my_accuracy is a library accuracy function: write it yourself")
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    b[:250] = a[:250]  # about 55% equal: a count or a percentage cannot pass for it
    cases = [("random labels", a, b, float((a == b).mean())),
             ("random labels given as Python lists", a.tolist(), b.tolist(), float((a == b).mean())),
             ("the lab's test predictions", ds.y_test, pred, training.accuracy(model, ds.X_test, ds.y_test))]
    with forbid(*helpers, why="this exercise asks you to compute the accuracy by hand"):
        for name, yt, yp, expected in cases:
            got = _number(f"my_accuracy on {name}", my_accuracy(yt, yp))
            require(abs(got - expected) <= 1e-9,
                    f"my_accuracy on {name} gives {got:.4f}, which is not the share of equal labels")
        for name, yt, yp in _MISMATCHED:
            try:
                got = my_accuracy(yt, yp)
            except ValueError:
                continue
            except NotSolved:
                raise
            except Exception as e:  # e.g. an assert
                raise NotSolved(f"my_accuracy raises {type(e).__name__} for {name}; raise ValueError") from None
            note = " (NumPy broadcasts a single label silently)" if "1 label" in name else ""
            raise NotSolved(f"my_accuracy returns {got!r} for {name}: it should raise ValueError "
                            f"for arrays of different lengths{note}")


# --------------------------------------------------------------------------- exercise 2
def _most_confused_reference(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int]:
    n = int(max(y_true.max(), y_pred.max())) + 1
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    np.fill_diagonal(counts, 0)
    t, p = np.unravel_index(np.argmax(counts), counts.shape)
    return int(t), int(p)


def _pair(value: Any) -> tuple[int, int] | None:
    """``value`` as a pair of ints, or None when it is not one."""
    try:
        items = tuple(value)
        if len(items) != 2 or any(isinstance(i, (bool, np.bool_)) for i in items):
            return None
        if any(int(i) != i for i in items):
            return None
        return int(items[0]), int(items[1])
    except (TypeError, ValueError):
        return None


def _exercise_2(most_confused: Callable[[Any, Any], tuple[int, int]], *, ds: Any, pred: Any) -> None:
    """most_confused returns the largest off-diagonal cell of the confusion matrix (classes as labels)."""
    cases = [
        ("the lab's test predictions", np.asarray(ds.y_test), np.asarray(pred)),
        ("y_true=[0, 0, 0, 1, 2], y_pred=[1, 1, 1, 0, 2] (true class first)",
         np.array([0, 0, 0, 1, 2]), np.array([1, 1, 1, 0, 2])),
        ("y_true=[2, 2, 1, 1, 0], y_pred=[1, 1, 2, 2, 0] (a tie)",
         np.array([2, 2, 1, 1, 0]), np.array([1, 1, 2, 2, 0])),
        ("y_true=[3, 3, 5, 5, 5], y_pred=[5, 5, 3, 5, 5] (classes 0-2 and 4 absent)",
         np.array([3, 3, 5, 5, 5]), np.array([5, 5, 3, 5, 5])),
        ("y_true=[0, 0, 1], y_pred=[2, 2, 1] (a class only predicted)",
         np.array([0, 0, 1]), np.array([2, 2, 1])),
    ]
    for name, yt, yp in cases:
        got = most_confused(yt.copy(), yp.copy())
        pair = _pair(got)
        require(pair is not None, f"most_confused should return (true_class, predicted_class), got {got!r}")
        require(pair == _most_confused_reference(yt, yp),
                f"most_confused gives {pair} for {name}, which is not the most frequent mistake")


# --------------------------------------------------------------------------- exercise 3
def _exercise_3(answers: Sequence[Any], *, scenarios: Sequence[str]) -> None:
    """One OWASP ML Top 10 id per scenario, compared by hash."""
    try:
        answers = list(answers)
    except TypeError:
        raise NotSolved(f"answers should be a list of ids such as \"ML01\", got {answers!r}") from None
    require(len(answers) == len(scenarios), f"give one answer per scenario ({len(scenarios)})")
    unknown = [a for a in answers if not isinstance(a, str) or a not in threat_model.OWASP_ML_TOP10]
    require(not unknown, f"not OWASP ML Top 10 ids: {unknown} (the ids are \"ML01\" … \"ML10\")")
    # compared by hash, so the answers are not in this file; the message says neither
    # which scenario nor how many are wrong, so that trying ids does not narrow them down
    digest = hashlib.sha256(",".join(answers).encode()).hexdigest()[:12]
    require(digest == "780d83b2a680", "at least one scenario is mapped to the wrong entry")


# --------------------------------------------------------------------------- exercise 4
def _exercise_4(logreg: Any, logreg_acc: Any, *, ds: Any, seed: int) -> None:
    """logreg is the logistic-regression preset trained with seed on the training split;
    logreg_acc is its test accuracy."""
    require(logreg is not None, "logreg is still None: keep the trained model in logreg")
    require(logreg_acc is not None, "logreg_acc is still None")
    meta = getattr(logreg, "meta", None)
    config = meta.get("config") if isinstance(meta, dict) else None
    require(isinstance(config, dict), f"logreg should be a model returned by training.fit, got a {type(logreg).__name__}")
    require(config.get("model") == "logreg",
            f"logreg is a {config.get('model')!r} model, not a logistic regression")
    wanted = training.preset("logreg", seed=seed)
    require(config.get("seed") == wanted.seed, "logreg was not trained with this lab's seed")
    require(_plain(config) == _plain(asdict(wanted)),
            "logreg was not trained with the logistic-regression preset's settings")
    reference = training.fit(wanted, ds.X_train, ds.y_train, ds.n_classes)
    mine = training.predict_proba(logreg, ds.X_test)
    require(mine.shape == (len(ds.y_test), ds.n_classes) and
            np.allclose(mine, training.predict_proba(reference, ds.X_test), atol=1e-5),
            "logreg was not trained on the training split (ds.X_train, ds.y_train)")
    acc = _number("logreg_acc", logreg_acc)
    require(abs(acc - training.accuracy(reference, ds.X_test, ds.y_test)) <= 1e-9,
            "logreg_acc is not the share of the test set that logreg classifies correctly")


def _plain(config: dict) -> Any:
    """A config dict as JSON would give it back (a cached model's meta holds lists for tuples)."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


check = Checker("lab00", {
    1: ("accuracy by hand", _exercise_1),
    2: ("most confused pair", _exercise_2),
    3: ("name the threat", _exercise_3),
    4: ("logistic regression", _exercise_4),
})
