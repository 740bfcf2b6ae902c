"""utils.lab_checks.lab01: the lab's stubs fail, the solution's answers pass, a wrong answer fails."""
from __future__ import annotations

import numpy as np
import pytest

import utils
from utils import data, training
from utils.attacks import poisoning
from utils.course.grading import FAIL_MARK, PASS_MARK
from utils.lab_checks import lab01

pytestmark = pytest.mark.notebooks  # about 17 s: trains (or loads) the solution's models

GRID = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]


@pytest.fixture(scope="module")
def ctx():
    """The data and models of the solution notebook (seed 0; training is cached)."""
    utils.setup(0, plots=False)
    moons = data.load("moons", seed=0)
    mlp_cfg = training.preset("mlp", epochs=150, lr=0.03, batch_size=360, seed=0,
                              model_kwargs=(("hidden", (32, 32)),))
    moons_mlp = training.fit(mlp_cfg, moons.X_train, moons.y_train, 2)
    ds = data.load("digits", seed=0)
    digit_cfg = training.preset("mlp", epochs=20, seed=0)
    digit_clean = training.fit(digit_cfg, ds.X_train, ds.y_train, ds.n_classes)
    digit_proba = training.predict_proba(digit_clean, ds.X_train)
    y_conf, flipped_conf = poisoning.flip_labels(ds.y_train, 0.4, "confident", proba=digit_proba)
    return dict(
        moons=moons, moons_proba=training.predict_proba(moons_mlp, moons.X_train),
        ds=ds, digit_cfg=digit_cfg, digit_clean=digit_clean, digit_proba=digit_proba,
        clean_acc=training.accuracy(digit_clean, ds.X_test, ds.y_test),
        poisoned=training.fit(digit_cfg, ds.X_train, y_conf, ds.n_classes), flipped_conf=flipped_conf,
    )


def _passes(capsys, n, *args, **kwargs):
    ok = lab01.check(n, *args, **kwargs)
    out = capsys.readouterr().out
    mark = PASS_MARK if ok else FAIL_MARK
    assert out.startswith(f"{mark}  Exercise {n} ("), out
    return ok


# -- exercise 1 ---------------------------------------------------------------
def random_flip_solution(y, rate, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    k = round(rate * len(y))
    idx = np.sort(rng.choice(len(y), size=k, replace=False))
    flipped = y.copy()
    flipped[idx] = (y[idx] + rng.integers(1, n_classes, size=k)) % n_classes
    return flipped, idx


def random_flip_stub(y, rate, n_classes, seed=0):
    return y.copy(), np.array([], dtype=int)


def random_flip_in_place(y, rate, n_classes, seed=0):
    new, idx = random_flip_solution(y, rate, n_classes, seed)
    y[idx] = new[idx]
    return y, idx


def test_exercise_1(ctx, capsys):
    ds = ctx["ds"]
    assert _passes(capsys, 1, random_flip_solution, ds=ds)
    assert not _passes(capsys, 1, random_flip_stub, ds=ds)
    assert not _passes(capsys, 1, random_flip_in_place, ds=ds)


# -- exercise 2 ---------------------------------------------------------------
def flip_nearest_solution(y, proba, rate):
    rows = np.arange(len(y))
    margin = proba[rows, y] - proba[rows, 1 - y]
    nearest = np.argsort(np.abs(margin), kind="stable")[:round(rate * len(y))]
    flipped = y.copy()
    flipped[nearest] = 1 - flipped[nearest]
    return flipped


def flip_nearest_farthest(y, proba, rate):
    """Wrong: flips the points farthest from the boundary."""
    rows = np.arange(len(y))
    margin = proba[rows, y] - proba[rows, 1 - y]
    far = np.argsort(-np.abs(margin), kind="stable")[:round(rate * len(y))]
    flipped = y.copy()
    flipped[far] = 1 - flipped[far]
    return flipped


def test_exercise_2(ctx, capsys):
    kw = dict(moons=ctx["moons"], moons_proba=ctx["moons_proba"])
    assert _passes(capsys, 2, flip_nearest_solution, **kw)
    assert not _passes(capsys, 2, lambda y, proba, rate: y.copy(), **kw)
    assert not _passes(capsys, 2, flip_nearest_farthest, **kw)


# -- exercise 3 ---------------------------------------------------------------
def test_exercise_3(ctx, capsys):
    kw = dict(grid=GRID, ds=ctx["ds"], digit_cfg=ctx["digit_cfg"], digit_proba=ctx["digit_proba"],
              clean_acc=ctx["clean_acc"])
    assert _passes(capsys, 3, 0.35, **kw)
    assert not _passes(capsys, 3, None, **kw)
    assert not _passes(capsys, 3, 0.4, **kw)  # costly, but 0.35 already is


# -- exercise 4 ---------------------------------------------------------------
def _exercise_4_solution(ctx):
    ds = ctx["ds"]
    pred_clean = training.predict(ctx["digit_clean"], ds.X_test)
    pred_poisoned = training.predict(ctx["poisoned"], ds.X_test)
    recall_drop = np.zeros(10)
    for c in range(10):
        mask = ds.y_test == c
        recall_drop[c] = (pred_clean[mask] == c).mean() - (pred_poisoned[mask] == c).mean()
    return recall_drop, int(np.argmax(recall_drop)), np.bincount(ds.y_train[ctx["flipped_conf"]], minlength=10)


def test_exercise_4(ctx, capsys):
    kw = {k: ctx[k] for k in ("ds", "digit_clean", "poisoned", "flipped_conf")}
    recall_drop, worst_class, flipped_per_class = _exercise_4_solution(ctx)
    assert _passes(capsys, 4, recall_drop, worst_class, flipped_per_class, **kw)
    assert not _passes(capsys, 4, np.zeros(10), None, np.zeros(10, dtype=int), **kw)
    # wrong: the class with the smallest drop
    assert not _passes(capsys, 4, recall_drop, int(np.argmin(recall_drop)), flipped_per_class, **kw)
