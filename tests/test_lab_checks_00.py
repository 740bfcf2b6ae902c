"""utils.lab_checks.lab00: the lab's stubs fail, the solution's answers pass."""
from __future__ import annotations

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
    return {"ds": ds, "model": model, "pred": training.predict(model, ds.X_test)}


def _accuracy(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError("different lengths")
    return float((y_true == y_pred).mean())


def _most_confused(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = int(max(y_true.max(), y_pred.max())) + 1
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    np.fill_diagonal(counts, 0)
    t, p = np.unravel_index(np.argmax(counts), counts.shape)
    return int(t), int(p)


def _with_diagonal(y_true, y_pred):  # forgets to ignore correct predictions
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = int(max(y_true.max(), y_pred.max())) + 1
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    t, p = np.unravel_index(np.argmax(counts), counts.shape)
    return int(t), int(p)


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


def test_exercise_1(ctx, capsys):
    kw = dict(ds=ctx["ds"], pred=ctx["pred"], model=ctx["model"])
    _passes(capsys, 1, "accuracy by hand", _accuracy, **kw)
    _fails(capsys, 1, lambda y_true, y_pred: 0.0, **kw)  # the stub
    no_check = lambda y_true, y_pred: float((np.asarray(y_true)[:len(y_pred)] == np.asarray(y_pred)).mean())
    assert "should raise ValueError" in _fails(capsys, 1, no_check, **kw)


def test_exercise_2(ctx, capsys):
    kw = dict(ds=ctx["ds"], pred=ctx["pred"])
    _passes(capsys, 2, "most confused pair", _most_confused, **kw)
    _fails(capsys, 2, lambda y_true, y_pred: (0, 0), **kw)  # the stub
    _fails(capsys, 2, _with_diagonal, **kw)


def test_exercise_3(capsys):
    _passes(capsys, 3, "name the threat", ["ML01", "ML02", "ML05", "ML04"], scenarios=SCENARIOS)
    assert "not OWASP ML Top 10 ids" in _fails(capsys, 3, [None] * 4, scenarios=SCENARIOS)  # the stub
    assert "wrong entry" in _fails(capsys, 3, ["ML01", "ML02", "ML03", "ML04"], scenarios=SCENARIOS)
    assert "one answer per scenario (4)" in _fails(capsys, 3, ["ML01"], scenarios=SCENARIOS)


def test_exercise_4(ctx, capsys):
    ds = ctx["ds"]
    logreg = training.fit(training.preset("logreg", seed=SEED), ds.X_train, ds.y_train, ds.n_classes)
    acc = training.accuracy(logreg, ds.X_test, ds.y_test)
    _passes(capsys, 4, "logistic regression", acc, ds=ds, seed=SEED)
    assert "still None" in _fails(capsys, 4, None, ds=ds, seed=SEED)  # the stub
    mlp_acc = training.accuracy(ctx["model"], ds.X_test, ds.y_test)
    if abs(mlp_acc - acc) > 1e-9:  # the MLP's accuracy instead of the logistic regression's
        _fails(capsys, 4, mlp_acc, ds=ds, seed=SEED)
    _fails(capsys, 4, acc + 0.01, ds=ds, seed=SEED)


def test_unknown_exercise():
    with pytest.raises(ValueError):
        lab00.check(5)
