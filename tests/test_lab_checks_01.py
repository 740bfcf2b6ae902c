"""utils.lab_checks.lab01: the lab's stubs fail, the solution passes, named wrong answers fail,
legitimate variants pass."""
from __future__ import annotations

import random

import numpy as np
import pytest

import utils
from utils import data, training
from utils.attacks import poisoning
from utils.course.grading import FAIL_MARK, PASS_MARK
from utils.lab_checks import lab01

pytestmark = pytest.mark.notebooks  # about 20 s: trains (or loads) the solution's models

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
        y_conf=y_conf,
    )


def _out(capsys, n, *args, **kwargs):
    ok = lab01.check(n, *args, **kwargs)
    out = capsys.readouterr().out
    mark = PASS_MARK if ok else FAIL_MARK
    assert out.startswith(f"{mark}  Exercise {n} ("), out
    return ok, out


def _passes(capsys, n, *args, **kwargs):
    ok, out = _out(capsys, n, *args, **kwargs)
    assert ok, out


def _fails(capsys, n, *args, **kwargs):
    ok, out = _out(capsys, n, *args, **kwargs)
    assert not ok, out
    return out


# -- exercise 1 ---------------------------------------------------------------
def random_flip_solution(y, rate, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    k = round(rate * len(y))
    idx = np.sort(rng.choice(len(y), size=k, replace=False))
    flipped = y.copy()
    flipped[idx] = (y[idx] + rng.integers(1, n_classes, size=k)) % n_classes
    return flipped, idx


def random_flip_rejection(y, rate, n_classes, seed=0):  # draw again until the class differs
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(y))[:round(rate * len(y))])
    flipped = np.array(y, copy=True)
    for i in idx:
        new = y[i]
        while new == y[i]:
            new = rng.integers(n_classes)
        flipped[i] = new
    return flipped, idx


def random_flip_python(y, rate, n_classes, seed=0):  # the random module, a choice among the others
    r = random.Random(seed)
    idx = sorted(r.sample(range(len(y)), round(rate * len(y))))
    flipped = list(y)
    for i in idx:
        flipped[i] = r.choice([c for c in range(n_classes) if c != y[i]])
    return np.array(flipped), np.array(idx, dtype=int)


def random_flip_stub(y, rate, n_classes, seed=0):
    return y.copy(), np.array([], dtype=int)


def random_flip_deterministic(y, rate, n_classes, seed=0):
    flipped, idx = random_flip_solution(y, rate, n_classes, seed)
    flipped[idx] = (y[idx] + 1) % n_classes
    return flipped, idx


def random_flip_fixed_target(y, rate, n_classes, seed=0):  # everything to class 0 (class 0 to 1)
    flipped, idx = random_flip_solution(y, rate, n_classes, seed)
    flipped[idx] = np.where(y[idx] == 0, 1, 0)
    return flipped, idx


def random_flip_unsorted(y, rate, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    k = round(rate * len(y))
    idx = rng.choice(len(y), size=k, replace=False)
    flipped = y.copy()
    flipped[idx] = (y[idx] + rng.integers(1, n_classes, size=k)) % n_classes
    return flipped, idx


def random_flip_ten_classes(y, rate, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    k = round(rate * len(y))
    idx = np.sort(rng.choice(len(y), size=k, replace=False))
    flipped = y.copy()
    flipped[idx] = (y[idx] + rng.integers(1, 10, size=k)) % 10
    return flipped, idx


def random_flip_classes_from_y(y, rate, n_classes, seed=0):  # ignores n_classes
    return random_flip_solution(y, rate, int(y.max()) + 1, seed)


def random_flip_may_keep(y, rate, n_classes, seed=0):  # a random class, possibly its own
    rng = np.random.default_rng(seed)
    k = round(rate * len(y))
    idx = np.sort(rng.choice(len(y), size=k, replace=False))
    flipped = y.copy()
    flipped[idx] = rng.integers(0, n_classes, size=k)
    return flipped, idx


def random_flip_in_place(y, rate, n_classes, seed=0):
    new, idx = random_flip_solution(y, rate, n_classes, seed)
    y[idx] = new[idx]
    return y, idx


def random_flip_truncates(y, rate, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    k = int(rate * len(y))
    idx = np.sort(rng.choice(len(y), size=k, replace=False))
    flipped = y.copy()
    flipped[idx] = (y[idx] + rng.integers(1, n_classes, size=k)) % n_classes
    return flipped, idx


def random_flip_replacement(y, rate, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    k = round(rate * len(y))
    idx = np.sort(rng.choice(len(y), size=k, replace=True))
    flipped = y.copy()
    flipped[idx] = (y[idx] + rng.integers(1, n_classes, size=len(idx))) % n_classes
    return flipped, idx


def random_flip_unseeded(y, rate, n_classes, seed=0):
    return random_flip_solution(y, rate, n_classes, seed=None)


def random_flip_seed_ignored(y, rate, n_classes, seed=0):
    return random_flip_solution(y, rate, n_classes, seed=0)


def random_flip_first_k(y, rate, n_classes, seed=0):  # the first examples, not random ones
    rng = np.random.default_rng(seed)
    k = round(rate * len(y))
    idx = np.arange(k)
    flipped = y.copy()
    flipped[idx] = (y[idx] + rng.integers(1, n_classes, size=k)) % n_classes
    return flipped, idx


def random_flip_library(y, rate, n_classes, seed=0):
    return poisoning.flip_labels(y, rate, "random", n_classes=n_classes, seed=seed)


@pytest.mark.parametrize("variant", [random_flip_solution, random_flip_rejection, random_flip_python],
                         ids=["solution", "rejection sampling", "random module, choice among the others"])
def test_exercise_1_passes(ctx, capsys, variant):
    _passes(capsys, 1, variant, ds=ctx["ds"])


@pytest.mark.parametrize("wrong, why", [
    (random_flip_stub, "labels changed"),
    (random_flip_deterministic, "same new class"),
    (random_flip_fixed_target, "never appear as a new label"),
    (random_flip_unsorted, "not sorted"),
    (random_flip_ten_classes, "must be classes 0-2"),
    (random_flip_classes_from_y, "never appear as a new label"),
    (random_flip_may_keep, "labels changed"),
    (random_flip_in_place, "changed its input y"),
    (random_flip_truncates, "labels changed"),
    (random_flip_replacement, "labels changed"),
    (random_flip_unseeded, "same seed"),
    (random_flip_seed_ignored, "another seed"),
    (random_flip_first_k, "another seed"),
    (random_flip_library, "your code calls utils.attacks.poisoning"),
    (poisoning.random_flip, "write it yourself"),
], ids=["the stub", "deterministic (y+1) % n", "a fixed target class", "unsorted indices", "hard-coded 10 classes",
        "class count from y.max() + 1", "may draw its own class", "modifies y in place", "int() instead of round()",
        "drawn with replacement", "unseeded", "seed ignored", "the first k examples", "poisoning.flip_labels",
        "poisoning.random_flip itself"])
def test_exercise_1_rejects(ctx, capsys, wrong, why):
    assert why in _fails(capsys, 1, wrong, ds=ctx["ds"])


def test_exercise_1_deterministic_flips_pass_the_old_rules(ctx):
    """(y+1) % n changes the right labels, seeded, on a copy: only the randomness test catches it."""
    y = ctx["ds"].y_train
    new, idx = random_flip_deterministic(y, 0.1, 10, seed=1)
    assert len(np.flatnonzero(new != y)) == round(0.1 * len(y)) and np.array_equal(np.flatnonzero(new != y), idx)


# -- exercise 2 ---------------------------------------------------------------
def flip_nearest_solution(y, proba, rate):
    rows = np.arange(len(y))
    others = proba.copy()
    others[rows, y] = -np.inf
    margin = proba[rows, y] - others.max(axis=1)
    nearest = np.argsort(np.abs(margin), kind="stable")[:round(rate * len(y))]
    flipped = y.copy()
    flipped[nearest] = others[nearest].argmax(axis=1)
    return flipped


def flip_nearest_sorted_rows(y, proba, rate):  # correct too: sort each row, pick the best other class
    order = np.argsort(-proba, axis=1, kind="stable")
    top, second = order[:, 0], order[:, 1]
    rival = np.where(top == y, second, top)
    rows = np.arange(len(y))
    margin = proba[rows, y] - proba[rows, rival]
    chosen = sorted(range(len(y)), key=lambda i: (abs(margin[i]), i))[:round(rate * len(y))]
    flipped = np.array(y, copy=True)
    flipped[chosen] = rival[chosen]
    return flipped


def flip_nearest_masked(y, proba, rate):  # correct too: a boolean mask and np.where, lexsort
    mask = np.eye(proba.shape[1], dtype=bool)[y]
    others = np.where(mask, -1.0, proba)
    margin = proba[mask] - others.max(axis=1)
    nearest = np.lexsort((np.arange(len(y)), np.abs(margin)))[:round(rate * len(y))]
    flipped = y.copy()
    flipped[nearest] = others.argmax(axis=1)[nearest]
    return flipped


def _flip(y, proba, rate, *, order=None, k=None, new_label=None, rival="others"):
    """The solution with one part replaced (a plausible mistake)."""
    rows = np.arange(len(y))
    others = proba.copy()
    others[rows, y] = -np.inf
    if rival == "others":
        margin = proba[rows, y] - others.max(axis=1)
    elif rival == "second largest":  # the second largest probability, whatever its class
        margin = proba[rows, y] - np.sort(proba, axis=1)[:, -2]
    else:  # "binary": p(1 - y), the lesson's two-class margin
        margin = proba[rows, y] - proba[rows, np.clip(1 - y, 0, None)]
    order = order or (lambda m: np.argsort(np.abs(m), kind="stable"))
    chosen = order(margin)[:round(rate * len(y)) if k is None else k(rate, len(y))]
    flipped = y.copy()
    flipped[chosen] = others[chosen].argmax(axis=1) if new_label is None else new_label(y, proba, chosen)
    return flipped


def flip_nearest_binary_only(y, proba, rate):  # the lesson's two-class cell: 1 - y
    rows = np.arange(len(y))
    nearest = np.argsort(np.abs(proba[rows, y] - proba[rows, 1 - y] if proba.shape[1] == 2 else
                                proba[rows, y] - 0.5), kind="stable")[:round(rate * len(y))]
    flipped = y.copy()
    flipped[nearest] = 1 - flipped[nearest]
    return flipped


def flip_nearest_second_largest(y, proba, rate):  # runner-up = the second largest class overall
    return _flip(y, proba, rate, rival="second largest",
                 new_label=lambda y, p, c: np.argsort(-p, axis=1, kind="stable")[c, 1])


def flip_nearest_next_class(y, proba, rate):  # the right points, but (y + 1) % n as the new label
    return _flip(y, proba, rate, new_label=lambda y, p, c: (y[c] + 1) % p.shape[1])


def flip_nearest_top_class(y, proba, rate):  # the most probable class overall: often the true one
    return _flip(y, proba, rate, new_label=lambda y, p, c: p[c].argmax(axis=1))


def flip_nearest_farthest(y, proba, rate):
    return _flip(y, proba, rate, order=lambda m: np.argsort(-np.abs(m), kind="stable"))


def flip_nearest_signed(y, proba, rate):  # the smallest signed margin: the most misclassified
    return _flip(y, proba, rate, order=lambda m: np.argsort(m, kind="stable"))


def flip_nearest_unstable(y, proba, rate):
    return _flip(y, proba, rate, order=lambda m: np.argsort(np.abs(m)))


def flip_nearest_last_index(y, proba, rate):  # ties to the larger index
    return _flip(y, proba, rate, order=lambda m: np.lexsort((-np.arange(len(m)), np.abs(m))))


def flip_nearest_truncates(y, proba, rate):
    return _flip(y, proba, rate, k=lambda r, n: int(r * n))


def flip_nearest_in_place(y, proba, rate):
    new = flip_nearest_solution(y, proba, rate)
    y[:] = new
    return y


def flip_nearest_indices(y, proba, rate):  # returns the indices, not the labels
    rows = np.arange(len(y))
    return np.argsort(np.abs(proba[rows, y] - np.sort(proba, axis=1)[:, -2]), kind="stable")[:round(rate * len(y))]


def flip_nearest_library(y, proba, rate):
    return poisoning.flip_labels(y, rate, "boundary", proba=proba)[0]


def flip_nearest_margins_helper(y, proba, rate):
    nearest = np.argsort(np.abs(poisoning.margins(proba, y)), kind="stable")[:round(rate * len(y))]
    flipped = y.copy()
    flipped[nearest] = poisoning.runner_up(proba, y)[nearest]
    return flipped


def _ex2(ctx):
    return dict(moons=ctx["moons"], moons_proba=ctx["moons_proba"], ds=ctx["ds"], digit_proba=ctx["digit_proba"])


@pytest.mark.parametrize("variant", [flip_nearest_solution, flip_nearest_sorted_rows, flip_nearest_masked],
                         ids=["solution", "rows sorted, rival = top or second, sorted key",
                              "one-hot mask and np.where, lexsort"])
def test_exercise_2_passes(ctx, capsys, variant):
    _passes(capsys, 2, variant, **_ex2(ctx))


@pytest.mark.parametrize("wrong, why", [
    (lambda y, proba, rate: y.copy(), "changes 0 labels"),
    (flip_nearest_binary_only, "the digits (10 classes)"),
    (flip_nearest_second_largest, "should change"),
    (flip_nearest_next_class, "runner-up class"),
    (flip_nearest_top_class, "changes"),
    (flip_nearest_farthest, "smallest |margin|"),
    (flip_nearest_signed, "smallest |margin|"),
    (flip_nearest_unstable, "smaller index goes first"),
    (flip_nearest_last_index, "smaller index goes first"),
    (flip_nearest_truncates, "30 points"),
    (flip_nearest_in_place, "changed its input y"),
    (flip_nearest_indices, "should return"),
    (flip_nearest_library, "your code calls utils.attacks.poisoning.flip_labels"),
    (flip_nearest_margins_helper, "your code calls utils.attacks.poisoning.margins"),
], ids=["the stub", "two classes only (1 - y)", "runner-up = second largest overall", "new label (y + 1) % n",
        "new label = the top class", "farthest from the boundary", "smallest signed margin",
        "default (unstable) argsort", "ties to the larger index", "int() instead of round()",
        "modifies y in place", "returns the indices", "poisoning.flip_labels", "poisoning.margins"])
def test_exercise_2_rejects(ctx, capsys, wrong, why):
    out = _fails(capsys, 2, wrong, **_ex2(ctx))
    assert why in out
    assert "differ" not in out  # no count of wrong labels to hill-climb on


def test_exercise_2_wrong_answers_pass_on_the_moons_alone(ctx):
    """The two-class mistakes are right on the moons: only the multi-class cases catch them."""
    y, p = ctx["moons"].y_train, ctx["moons_proba"]
    want = poisoning.flip_labels(y, 0.2, "boundary", proba=p)[0]
    for wrong in (flip_nearest_binary_only, flip_nearest_next_class):
        assert np.array_equal(wrong(y.copy(), p, 0.2), want)


# -- exercise 3 ---------------------------------------------------------------
def _costs(ctx, rates, strategy="boundary"):
    ds, out = ctx["ds"], {}
    for rate in rates:
        y_p, _ = poisoning.flip_labels(ds.y_train, rate, strategy, proba=ctx["digit_proba"], n_classes=10)
        model = training.fit(ctx["digit_cfg"], ds.X_train, y_p, ds.n_classes)
        out[rate] = ctx["clean_acc"] - training.accuracy(model, ds.X_test, ds.y_test)
    return out


def _kw3(ctx):
    return dict(grid=GRID, ds=ctx["ds"], digit_cfg=ctx["digit_cfg"], digit_proba=ctx["digit_proba"],
                clean_acc=ctx["clean_acc"])


def _solution_3(ctx):
    costs = {}
    for rate in GRID:
        costs.update(_costs(ctx, [rate]))
        if costs[rate] >= 0.10:
            return rate, costs
    return None, costs


def test_exercise_3_passes(ctx, capsys):
    rate, costs = _solution_3(ctx)
    assert rate == 0.35  # seed 0
    _passes(capsys, 3, rate, costs, **_kw3(ctx))
    _passes(capsys, 3, rate, _costs(ctx, GRID), **_kw3(ctx))  # no break: every rate trained
    _passes(capsys, 3, rate, {float(r): float(c) for r, c in costs.items()}, **_kw3(ctx))


@pytest.mark.parametrize("wrong, why", [
    ("stub", "no entry for rates"),
    ("0.4, costly but not the first", "is not the first rate"),
    ("0.3, the rate before", "is not the first rate"),
    ("a guess with no costs", "no entry for rates"),
    ("a guess with made-up costs", "is not clean_acc minus"),
    ("accuracies instead of costs", "is not clean_acc minus"),
    ("costs in percentage points", "is not clean_acc minus"),
    ("random flips instead of boundary flips", "is not clean_acc minus"),
    ("a rate not in grid", "one of grid"),
])
def test_exercise_3_rejects(ctx, capsys, wrong, why):
    rate, costs = _solution_3(ctx)
    answer = {
        "stub": lambda: (None, {}),
        "0.4, costly but not the first": lambda: (0.4, _costs(ctx, GRID)),
        "0.3, the rate before": lambda: (0.3, {r: c for r, c in costs.items() if r <= 0.3}),
        "a guess with no costs": lambda: (0.35, {}),
        "a guess with made-up costs": lambda: (0.35, {r: 0.02 * i for i, r in enumerate(GRID[:7])}),
        "accuracies instead of costs": lambda: (rate, {r: ctx["clean_acc"] - c for r, c in costs.items()}),
        "costs in percentage points": lambda: (rate, {r: 100 * c for r, c in costs.items()}),
        "random flips instead of boundary flips": lambda: (rate, _costs(ctx, list(costs), "random")),
        "a rate not in grid": lambda: (0.33, costs),
    }[wrong]()
    out = _fails(capsys, 3, *answer, **_kw3(ctx))
    assert why in out
    for c in _costs(ctx, GRID).values():  # no cost is ever printed
        assert f"{c:.3f}" not in out and f"{c:.2f}" not in out


def test_exercise_3_messages_do_not_tell_the_direction(ctx, capsys):
    """Trying each rate of grid with empty costs gives the same message: nothing to bisect on."""
    outs = {r: _fails(capsys, 3, r, {}, **_kw3(ctx)) for r in GRID}
    assert all("no entry for rates" in o for o in outs.values())
    assert not any(word in o for o in outs.values() for word in ("smaller", "larger", "higher", "lower", "only"))


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


def _exercise_4_sklearn(ctx):
    from sklearn.metrics import confusion_matrix
    ds = ctx["ds"]
    def recall(model):
        m = confusion_matrix(ds.y_test, training.predict(model, ds.X_test), labels=range(10))
        return m.diagonal() / m.sum(1)
    drop = recall(ctx["digit_clean"]) - recall(ctx["poisoned"])
    changed = ctx["y_conf"] != ds.y_train
    return list(drop), np.argmax(drop), np.bincount(ds.y_train[changed], minlength=10).tolist()


def _kw4(ctx):
    return {k: ctx[k] for k in ("ds", "digit_clean", "poisoned", "flipped_conf")}


def test_exercise_4_passes(ctx, capsys):
    _passes(capsys, 4, *_exercise_4_solution(ctx), **_kw4(ctx))
    _passes(capsys, 4, *_exercise_4_sklearn(ctx), **_kw4(ctx))  # confusion matrix, lists, np.int64


@pytest.mark.parametrize("wrong, why", [
    ("stub", "recall_drop is not"),
    ("the class with the smallest drop", "worst_class"),
    ("poisoned minus clean", "recall_drop is not"),
    ("precision instead of recall", "recall_drop is not"),
    ("drop in percent", "recall_drop is not"),
    ("flips counted by their new label", "flipped_per_class"),
    ("class sizes instead of flips", "flipped_per_class"),
    ("worst class as a one-element list", "worst_class"),
])
def test_exercise_4_rejects(ctx, capsys, wrong, why):
    ds = ctx["ds"]
    recall_drop, worst_class, flipped_per_class = _exercise_4_solution(ctx)

    def precision_drop():
        from sklearn.metrics import precision_score
        p = [precision_score(ds.y_test, training.predict(m, ds.X_test), labels=range(10), average=None,
                             zero_division=0) for m in (ctx["digit_clean"], ctx["poisoned"])]
        return p[0] - p[1]

    answer = {
        "stub": lambda: (np.zeros(10), None, np.zeros(10, dtype=int)),
        "the class with the smallest drop": lambda: (recall_drop, int(np.argmin(recall_drop)), flipped_per_class),
        "poisoned minus clean": lambda: (-recall_drop, int(np.argmin(recall_drop)), flipped_per_class),
        "precision instead of recall": lambda: (precision_drop(), worst_class, flipped_per_class),
        "drop in percent": lambda: (100 * recall_drop, worst_class, flipped_per_class),
        "flips counted by their new label":
            lambda: (recall_drop, worst_class, np.bincount(ctx["y_conf"][ctx["flipped_conf"]], minlength=10)),
        "class sizes instead of flips": lambda: (recall_drop, worst_class, np.bincount(ds.y_train, minlength=10)),
        "worst class as a one-element list": lambda: (recall_drop, [worst_class], flipped_per_class),
    }[wrong]()
    assert why in _fails(capsys, 4, *answer, **_kw4(ctx))
