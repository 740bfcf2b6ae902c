"""The checks of lab 02 (utils/lab_checks/lab02.py): the lab's stubs fail, the solution's answers pass."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import utils
from utils import data, training
from utils.attacks import poisoning
from utils.course.grading import FAIL_MARK, PASS_MARK
from utils.lab_checks import lab02

pytestmark = pytest.mark.notebooks  # over 10 s: trains (or loads) the models of the lab

COUNTS = [2, 4, 8, 12, 16, 20, 24, 32]


@pytest.fixture(scope="module")
def lab():
    """The data, attack and models of the solution notebook, seed 0."""
    utils.setup(0, plots=False)
    ds = data.load("digits", seed=0)
    attack = dataclasses.replace(poisoning.STANDARD_BACKDOOR, seed=0)
    config = training.preset("mlp", seed=0)
    X_poison, y_poison, _ = attack.poison(ds.X_train, ds.y_train)
    return dict(ds=ds, attack=attack,
                clean_model=training.fit(config, ds.X_train, ds.y_train, ds.n_classes),
                backdoored=training.fit(config, X_poison, y_poison, ds.n_classes),
                sweep_cfg=training.preset("mlp", epochs=20, seed=0))


def _run(capsys, n, answer, **context):
    """Run check n and return (result, printed line)."""
    ok = lab02.check(n, answer, **context)
    return ok, capsys.readouterr().out


def _passes(capsys, n, answer, **context):
    ok, out = _run(capsys, n, answer, **context)
    assert ok is True and PASS_MARK in out, out


def _fails(capsys, n, answer, **context):
    ok, out = _run(capsys, n, answer, **context)
    assert ok is False and FAIL_MARK in out, out
    return out


def stamp_solution(X, size, row, col):
    """The solution's stamp."""
    out = X.copy()
    board = (np.indices((size, size)).sum(0) % 2 == 0).astype(X.dtype)
    out[:, :, row:row + size, col:col + size] = board
    return out


def stamp_inverted(X, size, row, col):
    """Wrong: the dark pixel in the top-left corner."""
    out = X.copy()
    out[:, :, row:row + size, col:col + size] = (np.indices((size, size)).sum(0) % 2 == 1).astype(X.dtype)
    return out


def stamp_in_place(X, size, row, col):
    """Wrong: draws on X itself."""
    X[:, :, row:row + size, col:col + size] = (np.indices((size, size)).sum(0) % 2 == 0).astype(X.dtype)
    return X


def test_exercise_1(capsys, lab):
    ds = lab["ds"]
    assert "(the trigger)" in _fails(capsys, 1, lambda X, size, row, col: X.copy(), ds=ds)
    _fails(capsys, 1, stamp_inverted, ds=ds)
    assert "work on a copy" in _fails(capsys, 1, stamp_in_place, ds=ds)
    _passes(capsys, 1, stamp_solution, ds=ds)


def asr_solution(model, X, y, trigger, target):
    """The solution's my_asr."""
    others = y != target
    preds = training.predict(model, poisoning.apply_trigger(X[others], trigger))
    return float((preds == target).mean())


def asr_all_images(model, X, y, trigger, target):
    """Wrong: counts the images of the target class too."""
    return float((training.predict(model, poisoning.apply_trigger(X, trigger)) == target).mean())


def test_exercise_2(capsys, lab):
    ctx = {k: lab[k] for k in ("ds", "attack", "backdoored", "clean_model")}
    assert "(attack success rate)" in _fails(capsys, 2, lambda model, X, y, trigger, target: 0.0, **ctx)
    _fails(capsys, 2, asr_all_images, **ctx)
    _passes(capsys, 2, asr_solution, **ctx)


def test_exercise_3(capsys, lab):
    ctx = dict(ds=lab["ds"], attack=lab["attack"], sweep_cfg=lab["sweep_cfg"], counts=COUNTS)
    assert "(smallest poison count)" in _fails(capsys, 3, None, **ctx)
    assert "ASR is only" in _fails(capsys, 3, 16, **ctx)
    assert "already reach" in _fails(capsys, 3, 24, **ctx)
    _passes(capsys, 3, 20, **ctx)
