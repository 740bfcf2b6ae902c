"""Checks of labs/02_backdoors_lab.ipynb (taught in notebooks/02_backdoors.ipynb).

Failure messages say which case fails, never the value expected, so that an answer cannot be
found by trying values until the check passes; the library function that would answer an
exercise in one call is refused while the learner's code runs (:func:`grading.forbid`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Sequence

import numpy as np

from utils.attacks import poisoning
from utils import training
from utils.course.grading import NotSolved, forbid, require
from . import Checker

#: The ASR a poison count must reach in exercise 3.
BAR = 0.95


def _exercise_1(stamp: Callable[..., Any], *, ds: Any) -> None:
    """``stamp`` draws the reference checkerboard at several sizes and places, on a copy, without
    ``poisoning.apply_trigger``."""
    X = ds.X_test[:20].copy()
    for size, row, col in [(3, 5, 5), (2, 0, 0), (1, 3, 4), (4, 1, 2), (3, 0, 5)]:
        ref = poisoning.apply_trigger(X, poisoning.Trigger(size, row, col, pattern="checker"))
        with forbid(poisoning.apply_trigger):
            mine = np.asarray(stamp(X, size, row, col))
        require(np.array_equal(X, ds.X_test[:20]), "stamp changed its input X: work on a copy")
        require(mine.shape == ref.shape, f"expected shape {ref.shape}, got {mine.shape}")
        differ = int((~np.isclose(mine, ref)).any(axis=0).sum())
        require(differ == 0, f"size {size} at (row {row}, col {col}): {differ} pixel positions differ from the "
                             f"checkerboard (bright top-left pixel, the pixels outside the square unchanged)")


def _exercise_2(my_asr: Callable[..., Any], *, ds: Any, attack: Any, backdoored: Any, clean_model: Any) -> None:
    """``my_asr`` matches the reference ASR of both models for two targets, without
    ``poisoning.attack_success_rate`` or ``poisoning.evaluate_backdoor``."""
    for name, model in [("backdoored", backdoored), ("clean", clean_model)]:
        for target in (0, 3):
            ref = poisoning.attack_success_rate(lambda Z: training.predict(model, Z), ds.X_test, ds.y_test,
                                                attack.trigger, target)
            with forbid(poisoning.attack_success_rate, poisoning.evaluate_backdoor):
                got = my_asr(model, ds.X_test.copy(), ds.y_test.copy(), attack.trigger, target)
            try:
                got = float(got)
            except (TypeError, ValueError):
                raise NotSolved(f"my_asr should return a number, got {got!r}") from None
            require(abs(got - ref) <= 1e-9, f"the ASR of the {name} model for target {target} is not the share of "
                                            f"triggered images of the other classes classified as {target}")


def _exercise_3(smallest_count: Any, *, sweep: Any, ds: Any, attack: Any, sweep_cfg: Any,
                counts: Sequence[int]) -> None:
    """``sweep`` holds the ASR measured for every count tried, at least up to ``smallest_count``,
    and ``smallest_count`` is the first count in ``counts`` whose sweep model reaches an ASR of 0.95."""
    n = len(ds.y_train)

    def asr_with(k):
        """The ASR of the sweep model trained with exactly ``k`` poisoned digits (cached)."""
        Xp, yp, _ = poisoning.poison_backdoor(ds.X_train, ds.y_train, attack.trigger, attack.target, k / n)
        model = training.fit(sweep_cfg, Xp, yp, ds.n_classes)
        return poisoning.evaluate_backdoor(model, ds.X_test, ds.y_test, attack.trigger, attack.target)["asr"]

    require(smallest_count in counts, f"smallest_count should be one of {list(counts)}, got {smallest_count!r}")
    require(isinstance(sweep, Mapping), f"sweep should be a dict {{count: ASR}}, got a {type(sweep).__name__}")
    i = list(counts).index(smallest_count)
    missing = [k for k in counts[:i + 1] if k not in sweep]
    require(not missing, f"sweep has no ASR for the counts {missing}: measure every count in order, "
                         f"up to the one you choose")
    for k in counts:
        if k not in sweep:
            continue
        try:
            value = float(sweep[k])
        except (TypeError, ValueError):
            raise NotSolved(f"sweep[{k}] should be an ASR (a number), got {sweep[k]!r}") from None
        require(abs(value - asr_with(k)) <= 1e-6,
                f"sweep[{k}] is not the ASR of the sweep model trained with exactly {k} poisoned digits "
                f"(triggered test images of the other classes classified as {attack.target})")
    require(float(sweep[smallest_count]) >= BAR and all(float(sweep[k]) < BAR for k in counts[:i]),
            f"smallest_count is not the first count whose ASR in your sweep reaches {BAR}")


# --------------------------------------------------------------------------- exercise 4

#: Where the hidden triggers of exercise 4 may sit: along the bottom or right edge (first model) and
#: along the top or left edge (second), never on the diagonal, where the pen strokes are rare enough
#: for a 3×3 trigger to take hold at 5% poison.
_EDGES = ([(r, c) for r in range(6) for c in range(6) if (r == 5 or c == 5) and r != c],
          [(r, c) for r in range(6) for c in range(6) if (r == 0 or c == 0) and r != c])


def _hidden_spec(seed: int, which: int) -> poisoning.BackdoorSpec:
    """The hidden backdoor of exercise 4 (``which`` 0: the lab's suspect, 1: the check's second model):
    a 3×3 checkerboard at a position and target drawn from the seed."""
    rng = np.random.default_rng([seed, 4])
    first, second = rng.integers(len(_EDGES[0])), rng.integers(len(_EDGES[1]))
    targets = rng.permutation(10)[:2]
    row, col = _EDGES[which][(first, second)[which]]
    return poisoning.BackdoorSpec(poisoning.Trigger(3, int(row), int(col), pattern="checker"),
                                  int(targets[which]), 0.05, seed=seed)


def suspect_model(ds: Any, seed: int, which: int = 0):
    """The backdoored MLP of exercise 4 (20 epochs, trained once and then loaded from the cache); where
    its trigger sits and which class it sends images to is for the learner to find (used in 02_backdoors_lab)."""
    spec = _hidden_spec(seed, which)
    X, y, _ = spec.poison(ds.X_train, ds.y_train)
    return training.fit(training.preset("mlp", epochs=20, seed=seed), X, y, ds.n_classes)


def _exercise_4(find_trigger: Callable[..., Any], *, ds: Any, seed: int) -> None:
    """``find_trigger`` returns the hidden (row, col, target) of the lab's suspect model and of a second
    model backdoored along other edges, on the validation images."""
    for which, name in [(0, "the lab's suspect"), (1, "the check's second suspect (another place and target)")]:
        spec = _hidden_spec(seed, which)
        model = suspect_model(ds, seed, which)
        with forbid(_hidden_spec, why="find the trigger from the model's answers, not from the check"):
            out = find_trigger(model, ds.X_val.copy(), ds.y_val.copy())
        require(isinstance(out, tuple) and len(out) == 3,
                f"find_trigger should return a tuple (row, col, target), got {out!r}")
        try:
            row, col, target = (int(x) for x in out)
        except (TypeError, ValueError):
            raise NotSolved(f"find_trigger should return three integers, got {out!r}") from None
        require((row, col) == (spec.trigger.row, spec.trigger.col),
                f"on {name}: ({row}, {col}) is not where the trigger sits")
        require(target == spec.target, f"on {name}: {target} is not the class the trigger sends images to")


check = Checker("lab02", {
    1: ("the trigger", _exercise_1),
    2: ("attack success rate", _exercise_2),
    3: ("smallest poison count", _exercise_3),
    4: ("find the trigger", _exercise_4),
})
