"""Checks of labs/01_data_poisoning_lab.ipynb (taught in notebooks/01_data_poisoning.ipynb).

The learner's functions run inside :func:`utils.course.grading.forbid` for the
poisoning helpers that would answer the exercise, and no message reveals a
reference number (only what is wrong and in which case).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from utils.attacks import poisoning
from utils import training
from utils.course.grading import NotSolved, forbid, require
from . import Checker

#: The helpers that would do exercise 1 or 2 for the learner.
_FLIPPERS = (poisoning.random_flip, poisoning.flip_labels, poisoning.targeted_flip, poisoning.class_flip)


def _is_helper(fn: Any, helpers: Sequence[Callable[..., Any]]) -> bool:
    """Whether ``fn`` is one of ``helpers`` (or a functools.partial of one)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return any(fn is h for h in helpers)


def _int_array(value: Any, name: str) -> np.ndarray:
    a = np.asarray(value)
    require(a.ndim == 1, f"{name} should be a 1-D array, got shape {a.shape}")
    require(a.size == 0 or np.issubdtype(a.dtype, np.integer),
            f"{name} should hold integers, got dtype {a.dtype}")
    return a.astype(int)


# --------------------------------------------------------------------------- exercise 1
def _label_sets(ds: Any) -> list[tuple[str, np.ndarray, int]]:
    """The digits, and label sets with other class counts (and one whose labels do not use every class)."""
    rng = np.random.default_rng(12345)
    return [
        ("the digits (10 classes)", np.asarray(ds.y_train).copy(), int(ds.n_classes)),
        ("302 labels of 3 classes", rng.integers(0, 3, 302), 3),
        ("400 labels 0-3 with n_classes=6", rng.integers(0, 4, 400), 6),
        ("250 labels of 2 classes", rng.integers(0, 2, 250), 2),
    ]


def _one_flip(random_flip, y, rate, n_classes, seed, where):
    y_given = y.copy()
    out = random_flip(y_given, rate, n_classes, seed=seed)
    require(isinstance(out, tuple) and len(out) == 2,
            f"random_flip should return (new_labels, indices), got {type(out).__name__}")
    require(np.array_equal(y_given, y), f"random_flip changed its input y ({where}): work on a copy")
    new = _int_array(out[0], "new_labels")
    idx = _int_array(out[1], "the returned indices")
    require(new.shape == y.shape, f"new_labels should have shape {y.shape} ({where}), got {new.shape}")
    return new, idx


def _exercise_1(random_flip: Callable[..., Any], *, ds: Any) -> None:
    """Random flips: the right number of changed labels, each to a random other class of
    ``n_classes``, seeded, on a copy, sorted indices, no repeats; for any class count."""
    require(not _is_helper(random_flip, _FLIPPERS), "random_flip is poisoning's own function: write it yourself")
    with forbid(*_FLIPPERS, why="this exercise asks you to write the flips yourself"):
        for name, y, n in _label_sets(ds):
            for rate in (0.1, 0.35):
                where = f"{name}, rate {rate}"
                new, idx = _one_flip(random_flip, y, rate, n, 1, where)
                require(new.min() >= 0 and new.max() < n,
                        f"new labels must be classes 0-{n - 1} ({where}; n_classes={n})")
                k = round(rate * len(y))
                changed = np.flatnonzero(new != y)
                require(len(changed) == k, f"{where}: {len(changed)} labels changed; "
                                           f"round(rate * len(y)) = {k} should change")
                require(len(idx) == k and np.array_equal(np.sort(idx), changed),
                        f"the returned indices are not the labels that changed ({where})")
                require(np.array_equal(idx, changed), f"the returned indices are not sorted ({where})")
                again, again_idx = _one_flip(random_flip, y, rate, n, 1, where)
                require(np.array_equal(new, again) and np.array_equal(idx, again_idx),
                        f"the same seed must give the same flips ({where})")
                other, other_idx = _one_flip(random_flip, y, rate, n, 2, where)
                require(not np.array_equal(other_idx, idx),
                        f"another seed should choose other examples ({where})")
                if n > 2 and rate == 0.35:
                    _random_other_class(y[idx], new[idx], n, where)


def _random_other_class(old: np.ndarray, new: np.ndarray, n: int, where: str) -> None:
    """The new labels look drawn at random among the other classes (not a fixed map of the old one).

    With a few hundred flips a uniform draw reaches every class and, from each class
    flipped often enough, more than one other class, except with negligible probability.
    """
    require(set(np.unique(new).tolist()) == set(range(n)),
            f"some classes of n_classes={n} never appear as a new label ({where}): "
            f"draw the new label among all the other classes")
    for c in range(n):
        targets = new[old == c]
        if len(targets) >= 20:
            require(len(np.unique(targets)) > 1,
                    f"every flipped label of class {c} gets the same new class ({where}): "
                    f"draw the new label at random among the other classes")
    # each offset (new - old) % n in 1 … n-1 is about Binomial(k, 1/(n-1)): six of its standard
    # deviations above the mean is never reached by a uniform draw, a bias towards one offset is
    offsets = np.bincount((new - old) % n, minlength=n)
    mean = len(new) / (n - 1)
    require(offsets.max() <= mean + 6 * np.sqrt(mean),
            f"the new labels are not spread over the other classes ({where})")


# --------------------------------------------------------------------------- exercise 2
_MARGIN_HELPERS = _FLIPPERS + (poisoning.margins, poisoning.runner_up)


def _tied_case() -> tuple[np.ndarray, np.ndarray]:
    """200 points whose |margin| takes 3 values: the tie-break decides which are flipped."""
    rng = np.random.default_rng(7)
    p1 = rng.choice([0.25, 0.375, 0.625, 0.75, 0.5], size=200, p=[0.3, 0.2, 0.2, 0.2, 0.1])  # exact in binary
    return rng.integers(0, 2, 200), np.stack([1 - p1, p1], axis=1)


def _odd_case() -> tuple[np.ndarray, np.ndarray]:
    """30 points: rate 0.05 asks for round(1.5) = 2 flips (int() would give 1)."""
    rng = np.random.default_rng(8)
    p1 = rng.uniform(0, 1, 30)
    return rng.integers(0, 2, 30), np.stack([1 - p1, p1], axis=1)


def _misclassified_case() -> tuple[np.ndarray, np.ndarray]:
    """120 points of 4 classes, most of them misclassified: there the runner-up of the true
    class is the top class, not the second largest probability, and the margin is negative."""
    rng = np.random.default_rng(9)
    proba = rng.dirichlet(np.ones(4), size=120)
    return rng.integers(0, 4, 120), proba


def _exercise_2(flip_nearest: Callable[..., Any], *, moons: Any, moons_proba: np.ndarray, ds: Any,
                digit_proba: np.ndarray) -> None:
    """Flips nearest the boundary, for any number of classes: the same labels as
    poisoning.flip_labels(..., "boundary"): the round(rate * n) points of smallest
    |p(true) - max p(other)|, ties to the smaller index, each to its runner-up class."""
    require(not _is_helper(flip_nearest, _MARGIN_HELPERS), "flip_nearest is poisoning's own function: write it yourself")
    tied_y, tied_p = _tied_case()
    odd_y, odd_p = _odd_case()
    mis_y, mis_p = _misclassified_case()
    cases = [(f"the moons, rate {r}", np.asarray(moons.y_train), np.asarray(moons_proba), r) for r in (0.05, 0.2)]
    cases += [("200 points with tied margins, rate 0.3", tied_y, tied_p, 0.3),
              ("30 points, rate 0.05", odd_y, odd_p, 0.05)]
    cases += [(f"the digits (10 classes), rate {r}", np.asarray(ds.y_train), np.asarray(digit_proba), r)
              for r in (0.05, 0.2)]
    cases += [("120 points of 4 classes, most misclassified, rate 0.25", mis_y, mis_p, 0.25)]
    expected = [poisoning.flip_labels(y, r, "boundary", proba=p)[0] for _, y, p, r in cases]
    with forbid(*_MARGIN_HELPERS, why="this exercise asks you to compute the margins and flips yourself"):
        for (name, y, proba, rate), want in zip(cases, expected):
            n_classes = proba.shape[1]
            y_given = y.copy()
            mine = np.asarray(flip_nearest(y_given, proba.copy(), rate))
            require(np.array_equal(y_given, y), f"flip_nearest changed its input y ({name}): work on a copy")
            require(mine.shape == y.shape, f"flip_nearest should return {len(y)} labels ({name}), "
                                           f"got shape {mine.shape}")
            require(np.isin(mine, np.arange(n_classes)).all(),
                    f"the labels should stay classes 0-{n_classes - 1} ({name})")
            k = round(rate * len(y))
            changed = int((mine != y).sum())
            require(changed == k, f"{name}: flip_nearest changes {changed} labels; "
                                  f"round(rate * len(y)) = {k} should change")
            require(np.array_equal(mine != y, want != y),
                    f"{name}: the flipped points are not the {k} with the smallest |margin|"
                    + (" (on equal |margin|, the smaller index goes first)" if "tied" in name else "")
                    + (" (the margin compares the true class with the most probable *other* class)"
                       if n_classes > 2 else ""))
            require(np.array_equal(mine, want),
                    f"{name}: some flipped points do not get their runner-up class (the most probable "
                    f"class other than the true one)")


# --------------------------------------------------------------------------- exercise 3
def _cost(rate: float, *, ds: Any, digit_cfg: Any, digit_proba: np.ndarray, clean_acc: float) -> float:
    """Test-accuracy cost of boundary flips at ``rate`` for a ``digit_cfg`` model (cached training)."""
    y_p, _ = poisoning.flip_labels(ds.y_train, rate, "boundary", proba=digit_proba)
    model = training.fit(digit_cfg, ds.X_train, y_p, ds.n_classes)
    return clean_acc - training.accuracy(model, ds.X_test, ds.y_test)


def _exercise_3(smallest_rate: Any, costs: Any, *, grid: Sequence[float], ds: Any, digit_cfg: Any,
                digit_proba: np.ndarray, clean_acc: float) -> None:
    """Smallest costly rate: ``costs`` holds the accuracy cost of every rate the loop trained (at
    least every rate up to the answer), each right, and ``smallest_rate`` is the first rate of
    ``grid`` that costs at least 0.10 (None when none does, all of them tried).

    The messages say what is wrong, never a cost: trying rates one by one tells nothing
    without ``costs``, and ``costs`` can only be right by training the models.
    """
    grid = list(grid)
    require(isinstance(costs, dict), f"costs should be a dict {{rate: cost}}, got {type(costs).__name__}")
    extra = [r for r in costs if r not in grid]
    require(not extra, f"costs has keys that are not rates of grid: {extra}")
    require(smallest_rate is None or smallest_rate in grid,
            f"smallest_rate should be one of grid or None, got {smallest_rate!r}")
    upto = grid if smallest_rate is None else grid[:grid.index(smallest_rate) + 1]
    missing = [r for r in upto if r not in costs]
    require(not missing, f"costs has no entry for rates {missing}: record the cost of every rate "
                         f"you train, up to the answer")
    reference = {}
    for rate in grid:
        if rate not in costs:
            continue
        value = costs[rate]
        ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))
        require(ok, f"costs[{rate}] should be a number, got {value!r}")
        reference[rate] = _cost(rate, ds=ds, digit_cfg=digit_cfg, digit_proba=digit_proba, clean_acc=clean_acc)
        require(abs(float(value) - reference[rate]) <= 1e-9,
                f"costs[{rate}] is not clean_acc minus the test accuracy of digit_cfg trained on "
                f"boundary flips at rate {rate}")
    first = next((r for r in upto if reference[r] >= 0.10), None)
    if smallest_rate is None:
        require(first is None, "a rate of grid costs at least 0.10, but smallest_rate is None")
    else:
        require(first == smallest_rate,
                f"smallest_rate = {smallest_rate} is not the first rate of grid whose cost is at least 0.10")


# --------------------------------------------------------------------------- exercise 4
def _exercise_4(recall_drop: Any, worst_class: Any, flipped_per_class: Any, *, ds: Any,
                digit_clean: Any, poisoned: Any, flipped_conf: np.ndarray) -> None:
    """Which classes suffer: per-class recall drop, the worst class, flips per class."""
    from sklearn.metrics import recall_score

    n = int(ds.n_classes)
    labels = np.arange(n)
    ref = (recall_score(ds.y_test, training.predict(digit_clean, ds.X_test), labels=labels, average=None)
           - recall_score(ds.y_test, training.predict(poisoned, ds.X_test), labels=labels, average=None))
    try:
        mine = np.asarray(recall_drop, dtype=float)
    except (TypeError, ValueError):
        raise NotSolved(f"recall_drop should hold {n} numbers, got {recall_drop!r}") from None
    require(mine.shape == (n,), f"recall_drop should hold {n} numbers, got shape {mine.shape}")
    wrong = np.flatnonzero(~np.isclose(mine, ref, atol=1e-6, rtol=0)).tolist()
    require(not wrong, f"recall_drop is not the clean minus the poisoned recall in classes {wrong}")
    require(worst_class is not None and not isinstance(worst_class, (bool, np.bool_))
            and np.ndim(worst_class) == 0 and worst_class == int(np.argmax(ref)),
            f"worst_class should be the class with the largest drop, got {worst_class!r}")
    counts = np.asarray(flipped_per_class)
    require(counts.shape == (n,), f"flipped_per_class should hold {n} numbers, got shape {counts.shape}")
    require(np.array_equal(counts, np.bincount(np.asarray(ds.y_train)[flipped_conf], minlength=n)),
            "flipped_per_class should count, for each class, the training labels of that class the attack flipped")


check = Checker("lab01", {
    1: ("random flips", _exercise_1),
    2: ("boundary flips", _exercise_2),
    3: ("smallest costly rate", _exercise_3),
    4: ("which classes suffer", _exercise_4),
})
