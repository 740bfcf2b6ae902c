"""Checks of labs/01_data_poisoning_lab.ipynb (taught in notebooks/01_data_poisoning.ipynb)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from utils.attacks import poisoning
from utils import training
from utils.course.grading import require
from . import Checker


def _exercise_1(random_flip: Callable[..., Any], *, ds: Any) -> None:
    """Random flips: the right number of changed labels, seeded, on a copy, no repeats."""
    y = ds.y_train.copy()
    first, _ = random_flip(y, 0.1, 10, seed=1)
    for rate in (0.1, 0.35):
        new, idx = random_flip(y, rate, 10, seed=1)
        require(np.array_equal(y, ds.y_train), "random_flip changed its input y: work on a copy")
        k = round(rate * len(y))
        changed = np.flatnonzero(np.asarray(new) != y)
        require(len(changed) == k, f"at rate {rate}, {len(changed)} labels changed; expected {k}")
        require(np.array_equal(np.sort(idx), changed), "the returned indices are not the labels that changed")
        require(np.asarray(new).min() >= 0 and np.asarray(new).max() <= 9, "new labels must be classes 0-9")
        again, _ = random_flip(y, rate, 10, seed=1)
        require(np.array_equal(new, again), "the same seed must give the same flips")
    other, _ = random_flip(y, 0.1, 10, seed=2)
    require(not np.array_equal(other, first), "another seed should give other flips")
    counts = np.bincount(idx, minlength=len(y))
    require(counts.max() <= 1, "an example was chosen twice: draw without replacement")


def _exercise_2(flip_nearest: Callable[..., Any], *, moons: Any, moons_proba: np.ndarray) -> None:
    """Targeted flips: the same labels as poisoning.flip_labels(..., "boundary")."""
    y = moons.y_train.copy()
    for rate in (0.05, 0.2):
        mine = np.asarray(flip_nearest(y, moons_proba, rate))
        require(np.array_equal(y, moons.y_train), "flip_nearest changed its input y: work on a copy")
        expected, idx = poisoning.flip_labels(y, rate, "boundary", proba=moons_proba)
        require(mine.shape == y.shape, f"expected {len(y)} labels, got shape {mine.shape}")
        wrong = np.flatnonzero(mine != expected)
        require(len(wrong) == 0, f"at rate {rate}, {len(wrong)} labels differ from the reference "
                                 f"(flip exactly the {len(idx)} points with the smallest |margin|)")


def _cost(rate: float, *, ds: Any, digit_cfg: Any, digit_proba: np.ndarray, clean_acc: float) -> float:
    """Test-accuracy cost of boundary flips at ``rate`` for a ``digit_cfg`` model (cached training)."""
    y_p, _ = poisoning.flip_labels(ds.y_train, rate, "boundary", proba=digit_proba)
    model = training.fit(digit_cfg, ds.X_train, y_p, ds.n_classes)
    return clean_acc - training.accuracy(model, ds.X_test, ds.y_test)


def _exercise_3(smallest_rate: Any, *, grid: Sequence[float], ds: Any, digit_cfg: Any,
                digit_proba: np.ndarray, clean_acc: float) -> None:
    """Smallest costly rate: it costs at least 0.10 and the rate before it in ``grid`` does not."""
    def cost(rate):
        return _cost(rate, ds=ds, digit_cfg=digit_cfg, digit_proba=digit_proba, clean_acc=clean_acc)

    require(smallest_rate in grid, f"smallest_rate should be one of {grid}, got {smallest_rate!r}")
    require(cost(smallest_rate) >= 0.10, f"rate {smallest_rate} costs only {cost(smallest_rate):.3f}")
    k = grid.index(smallest_rate)
    require(k == 0 or cost(grid[k - 1]) < 0.10,
            f"a smaller rate, {grid[k - 1]}, already costs {cost(grid[k - 1]):.3f}")


def _exercise_4(recall_drop: Any, worst_class: Any, flipped_per_class: Any, *, ds: Any,
                digit_clean: Any, poisoned: Any, flipped_conf: np.ndarray) -> None:
    """Which classes suffer: per-class recall drop, the worst class, flips per class."""
    from sklearn.metrics import recall_score

    ref = (recall_score(ds.y_test, training.predict(digit_clean, ds.X_test), average=None)
           - recall_score(ds.y_test, training.predict(poisoned, ds.X_test), average=None))
    mine = np.asarray(recall_drop, dtype=float)
    require(mine.shape == (10,), f"recall_drop should hold 10 numbers, got shape {mine.shape}")
    require(np.allclose(mine, ref, atol=1e-6),
            f"recall_drop differs from the reference in classes {np.flatnonzero(~np.isclose(mine, ref, atol=1e-6)).tolist()}")
    require(worst_class == int(np.argmax(ref)), f"worst_class should be the class with the largest drop, got {worst_class}")
    require(np.array_equal(np.asarray(flipped_per_class), np.bincount(ds.y_train[flipped_conf], minlength=10)),
            "flipped_per_class should count the flipped training labels of each class")


check = Checker("lab01", {
    1: ("random flips", _exercise_1),
    2: ("targeted flips", _exercise_2),
    3: ("smallest costly rate", _exercise_3),
    4: ("which classes suffer", _exercise_4),
})
