"""utils.lab_checks.lab00: the lab's stubs fail, the solution passes, named wrong answers fail,
legitimate variants pass."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import utils
from utils import data, training
from utils.course.grading import FAIL_MARK, PASS_MARK
from utils.lab_checks import lab00

SEED = 0
SCENARIOS = ["stickers", "mislabels", "queries", "membership"]


@pytest.fixture(scope="module")
def ctx():
    utils.setup(SEED, plots=False)
    ds = data.load("digits", seed=SEED)
    model = training.fit(training.preset("mlp", seed=SEED), ds.X_train, ds.y_train, ds.n_classes)
    logreg = training.fit(training.preset("logreg", seed=SEED), ds.X_train, ds.y_train, ds.n_classes)
    return {"ds": ds, "model": model, "pred": training.predict(model, ds.X_test), "logreg": logreg}


def _run(capsys, n, *args, **kwargs):
    ok = lab00.check(n, *args, **kwargs)
    return ok, capsys.readouterr().out


def _passes(capsys, n, title, *args, **kwargs):
    ok, out = _run(capsys, n, *args, **kwargs)
    assert ok is True and out == f"{PASS_MARK}  Exercise {n} ({title})\n", out


def _fails(capsys, n, *args, **kwargs):
    ok, out = _run(capsys, n, *args, **kwargs)
    assert ok is False and out.startswith(f"{FAIL_MARK}  Exercise {n} ("), out
    return out


# -- exercise 1 ---------------------------------------------------------------
def accuracy_solution(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    return float((y_true == y_pred).mean())


def accuracy_loop(y_true, y_pred):
    if len(y_true) != len(y_pred):
        raise ValueError("different lengths")
    return sum(int(a == b) for a, b in zip(y_true, y_pred)) / len(y_true)


def accuracy_validation(y_true, y_pred):
    from utils import validation
    validation.same_length("my_accuracy", y_true=np.asarray(y_true), y_pred=np.asarray(y_pred))
    return np.count_nonzero(np.asarray(y_true) == np.asarray(y_pred)) / len(y_true)


def accuracy_broadcasts(y_true, y_pred):  # NumPy raises for 3 vs 2, but broadcasts 1 vs n
    return float((np.asarray(y_true) == np.asarray(y_pred)).mean())


def accuracy_zip(y_true, y_pred):  # zip stops at the shorter one
    return sum(a == b for a, b in zip(y_true, y_pred)) / len(y_true)


def accuracy_assert(y_true, y_pred):
    assert len(y_true) == len(y_pred)
    return float((np.asarray(y_true) == np.asarray(y_pred)).mean())


def accuracy_count(y_true, y_pred):
    accuracy_solution(y_true, y_pred)
    return int((np.asarray(y_true) == np.asarray(y_pred)).sum())


def accuracy_percent(y_true, y_pred):
    return 100 * accuracy_solution(y_true, y_pred)


def accuracy_sklearn(y_true, y_pred):
    from sklearn.metrics import accuracy_score
    return accuracy_score(y_true, y_pred)


def accuracy_lists_compared(y_true, y_pred):  # Python lists compare as a whole
    if len(y_true) != len(y_pred):
        raise ValueError("different lengths")
    return float(np.mean(y_true == y_pred))


@pytest.mark.parametrize("variant", [accuracy_solution, accuracy_loop, accuracy_validation],
                         ids=["solution", "loop over zip with a length check", "validation.same_length"])
def test_exercise_1_passes(ctx, capsys, variant):
    _passes(capsys, 1, "accuracy by hand", variant, ds=ctx["ds"], pred=ctx["pred"], model=ctx["model"])


@pytest.mark.parametrize("wrong, why", [
    (lambda y_true, y_pred: 0.0, "share of equal labels"),
    (accuracy_broadcasts, "should raise ValueError"),
    (accuracy_zip, "should raise ValueError"),
    (accuracy_assert, "raises AssertionError"),
    (accuracy_count, "share of equal labels"),
    (accuracy_percent, "share of equal labels"),
    (accuracy_sklearn, "by hand"),
    (lambda y_true, y_pred: training.accuracy(None, None, None), "by hand"),
    (accuracy_lists_compared, "given as Python lists"),
], ids=["the stub", "broadcasting a length-1 input", "zip without a length check", "assert instead of ValueError",
        "a count", "a percentage", "sklearn accuracy_score", "training.accuracy", "== on Python lists"])
def test_exercise_1_rejects(ctx, capsys, wrong, why):
    out = _fails(capsys, 1, wrong, ds=ctx["ds"], pred=ctx["pred"], model=ctx["model"])
    assert why in out


def test_exercise_1_rejects_the_library_function_itself(ctx, capsys):
    from sklearn.metrics import accuracy_score
    assert "write it yourself" in _fails(capsys, 1, accuracy_score, ds=ctx["ds"], pred=ctx["pred"],
                                         model=ctx["model"])


def test_exercise_1_broadcasting_answer_agrees_on_equal_lengths(ctx):
    """The broadcasting answer is right wherever lengths agree: only the length-1 case exposes it."""
    a = np.array([1, 2, 3, 3, 3])
    assert accuracy_broadcasts(a, a[::-1]) == accuracy_solution(a, a[::-1])
    assert accuracy_broadcasts([3], a) == pytest.approx(0.6)
    with pytest.raises(ValueError):
        accuracy_broadcasts([1, 2, 3], [1, 2])


# -- exercise 2 ---------------------------------------------------------------
def most_confused_solution(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = int(max(y_true.max(), y_pred.max())) + 1
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    np.fill_diagonal(counts, 0)
    t, p = np.unravel_index(np.argmax(counts), counts.shape)
    return int(t), int(p)


def most_confused_sklearn(y_true, y_pred):
    from sklearn.metrics import confusion_matrix
    labels = np.arange(int(max(np.max(y_true), np.max(y_pred))) + 1)
    m = confusion_matrix(y_true, y_pred, labels=labels)
    np.fill_diagonal(m, 0)
    return tuple(np.unravel_index(np.argmax(m), m.shape))


def most_confused_counter(y_true, y_pred):
    mistakes = Counter((int(t), int(p)) for t, p in zip(y_true, y_pred) if t != p)
    top = max(mistakes.values())
    return min(pair for pair, c in mistakes.items() if c == top)


def most_confused_with_diagonal(y_true, y_pred):  # forgets to ignore correct predictions
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = int(max(y_true.max(), y_pred.max())) + 1
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    t, p = np.unravel_index(np.argmax(counts), counts.shape)
    return int(t), int(p)


def most_confused_swapped(y_true, y_pred):  # (predicted, true)
    t, p = most_confused_solution(y_true, y_pred)
    return p, t


def most_confused_most_common(y_true, y_pred):  # a tie goes to the first mistake seen
    mistakes = Counter((int(t), int(p)) for t, p in zip(y_true, y_pred) if t != p)
    return mistakes.most_common(1)[0][0]


def most_confused_matrix_indices(y_true, y_pred):  # sklearn's indices, not class labels
    from sklearn.metrics import confusion_matrix
    m = confusion_matrix(y_true, y_pred)
    np.fill_diagonal(m, 0)
    t, p = np.unravel_index(np.argmax(m), m.shape)
    return int(t), int(p)


def most_confused_true_classes_only(y_true, y_pred):  # sizes the matrix from y_true alone
    n = int(np.max(y_true)) + 1
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    np.fill_diagonal(counts, 0)
    t, p = np.unravel_index(np.argmax(counts), counts.shape)
    return int(t), int(p)


@pytest.mark.parametrize("variant", [most_confused_solution, most_confused_sklearn, most_confused_counter],
                         ids=["solution", "sklearn confusion_matrix with labels", "Counter, min of the ties"])
def test_exercise_2_passes(ctx, capsys, variant):
    _passes(capsys, 2, "most confused pair", variant, ds=ctx["ds"], pred=ctx["pred"])


@pytest.mark.parametrize("wrong", [
    lambda y_true, y_pred: (0, 0), most_confused_with_diagonal, most_confused_swapped, most_confused_most_common,
    most_confused_matrix_indices, most_confused_true_classes_only, lambda y_true, y_pred: "3,5",
], ids=["the stub", "diagonal included", "(predicted, true)", "Counter.most_common tie-break",
        "confusion_matrix indices as classes", "matrix sized from y_true only", "a string"])
def test_exercise_2_rejects(ctx, capsys, wrong):
    out = _fails(capsys, 2, wrong, ds=ctx["ds"], pred=ctx["pred"])
    assert "expected" not in out


# -- exercise 3 ---------------------------------------------------------------
@pytest.mark.parametrize("answers", [["ML01", "ML02", "ML05", "ML04"], ("ML01", "ML02", "ML05", "ML04"),
                                     np.array(["ML01", "ML02", "ML05", "ML04"])],
                         ids=["solution", "a tuple", "a NumPy array of strings"])
def test_exercise_3_passes(capsys, answers):
    _passes(capsys, 3, "name the threat", answers, scenarios=SCENARIOS)


@pytest.mark.parametrize("answers, why", [
    ([None] * 4, "not OWASP ML Top 10 ids"),
    (["ML01", "ML02", "ML03", "ML04"], "wrong entry"),
    (["ML01", "ML10", "ML05", "ML04"], "wrong entry"),
    (["ML01", "ML02", "ML05", "ML03"], "wrong entry"),
    (["ML02", "ML01", "ML05", "ML04"], "wrong entry"),
    (["ML01"], "one answer per scenario (4)"),
    (["ml01", "ml02", "ml05", "ml04"], "not OWASP ML Top 10 ids"),
    ("ML01ML02ML05ML04", "one answer per scenario (4)"),
], ids=["the stub", "model inversion for the copied model", "model poisoning for the mislabels",
        "model inversion for membership", "first two swapped", "one answer only", "lowercase ids", "one string"])
def test_exercise_3_rejects(capsys, answers, why):
    out = _fails(capsys, 3, answers, scenarios=SCENARIOS)
    assert why in out


# -- exercise 4 ---------------------------------------------------------------
def test_exercise_4_passes(ctx, capsys):
    ds, logreg = ctx["ds"], ctx["logreg"]
    acc = training.accuracy(logreg, ds.X_test, ds.y_test)
    _passes(capsys, 4, "logistic regression", logreg, acc, ds=ds, seed=SEED)
    # legitimate variants: n_classes left to fit, the accuracy counted by hand
    again = training.fit(training.preset("logreg", seed=SEED), ds.X_train, ds.y_train)
    by_hand = float((training.predict(again, ds.X_test) == ds.y_test).mean())
    _passes(capsys, 4, "logistic regression", again, by_hand, ds=ds, seed=SEED)


def test_exercise_4_the_mlp_scores_the_same(ctx):
    """Why the check needs the model: for seed 0 the MLP in scope scores what the logistic regression scores."""
    ds = ctx["ds"]
    assert training.accuracy(ctx["model"], ds.X_test, ds.y_test) == training.accuracy(ctx["logreg"], ds.X_test, ds.y_test)


@pytest.mark.parametrize("wrong, why", [
    ("stub", "still None"),
    ("the MLP in scope", "not a logistic regression"),
    ("another seed", "seed"),
    ("other epochs", "preset's settings"),
    ("trained on the test split", "training split"),
    ("training accuracy", "logreg_acc is not"),
    ("accuracy in percent", "logreg_acc is not"),
    ("an accuracy one example off", "logreg_acc is not"),
])
def test_exercise_4_rejects(ctx, capsys, wrong, why):
    ds, logreg, mlp = ctx["ds"], ctx["logreg"], ctx["model"]
    acc = training.accuracy(logreg, ds.X_test, ds.y_test)
    cfg = training.preset("logreg", seed=SEED)
    answer = {
        "stub": lambda: (None, None),
        "the MLP in scope": lambda: (mlp, training.accuracy(mlp, ds.X_test, ds.y_test)),
        "another seed": lambda: (training.fit(cfg.with_(seed=SEED + 1), ds.X_train, ds.y_train, 10), acc),
        "other epochs": lambda: (training.fit(cfg.with_(epochs=5), ds.X_train, ds.y_train, 10), acc),
        "trained on the test split": lambda: (training.fit(cfg, ds.X_test, ds.y_test, 10), acc),
        "training accuracy": lambda: (logreg, training.accuracy(logreg, ds.X_train, ds.y_train)),
        "accuracy in percent": lambda: (logreg, 100 * acc),
        "an accuracy one example off": lambda: (logreg, acc + 1 / 360),
    }[wrong]()
    out = _fails(capsys, 4, *answer, ds=ds, seed=SEED)
    assert why in out and f"{acc:.3f}" not in out


def test_unknown_exercise():
    with pytest.raises(ValueError):
        lab00.check(5)
