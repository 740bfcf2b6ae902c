"""Checks of labs/02_backdoors_lab.ipynb (taught in notebooks/02_backdoors.ipynb)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from utils.attacks import poisoning
from utils import training
from utils.course.grading import require, require_close
from . import Checker


def _exercise_1(stamp: Callable[..., Any], *, ds: Any) -> None:
    """``stamp`` draws the reference checkerboard at several sizes and places, on a copy."""
    X = ds.X_test[:20].copy()
    for size, row, col in [(3, 5, 5), (2, 0, 0), (1, 3, 4), (4, 1, 2)]:
        mine = np.asarray(stamp(X, size, row, col))
        require(np.array_equal(X, ds.X_test[:20]), "stamp changed its input X: work on a copy")
        ref = poisoning.apply_trigger(X, poisoning.Trigger(size, row, col, pattern="checker"))
        require(mine.shape == ref.shape, f"expected shape {ref.shape}, got {mine.shape}")
        bad = np.argwhere(~np.isclose(mine[0, 0], ref[0, 0]))
        require(np.allclose(mine, ref), f"size {size} at ({row}, {col}): pixels {bad[:3].tolist()} "
                                        f"differ from the reference trigger")


def _exercise_2(my_asr: Callable[..., Any], *, ds: Any, attack: Any, backdoored: Any, clean_model: Any) -> None:
    """``my_asr`` matches the reference ASR of both models for two targets."""
    for name, model in [("backdoored", backdoored), ("clean", clean_model)]:
        for target in (0, 3):
            ref = poisoning.attack_success_rate(lambda Z: training.predict(model, Z), ds.X_test, ds.y_test,
                                                attack.trigger, target)
            require_close(f"ASR of the {name} model for target {target}",
                          my_asr(model, ds.X_test, ds.y_test, attack.trigger, target), ref, 1e-9)


def _exercise_3(smallest_count: Any, *, ds: Any, attack: Any, sweep_cfg: Any, counts: Sequence[int]) -> None:
    """``smallest_count`` is the first count in ``counts`` whose sweep model reaches an ASR of 0.95."""
    n = len(ds.y_train)

    def asr_with(k):
        """The ASR of the sweep model trained with exactly ``k`` poisoned digits."""
        Xp, yp, idx = poisoning.poison_backdoor(ds.X_train, ds.y_train, attack.trigger, attack.target, k / n)
        model = training.fit(sweep_cfg, Xp, yp, ds.n_classes)
        return poisoning.evaluate_backdoor(model, ds.X_test, ds.y_test, attack.trigger, attack.target)["asr"]

    require(smallest_count in counts, f"smallest_count should be one of {counts}, got {smallest_count!r}")
    require(asr_with(smallest_count) >= 0.95, f"with {smallest_count} digits the ASR is only {asr_with(smallest_count):.3f}")
    i = counts.index(smallest_count)
    require(i == 0 or asr_with(counts[i - 1]) < 0.95,
            f"fewer digits, {counts[i - 1]}, already reach an ASR of {asr_with(counts[i - 1]):.3f}")


check = Checker("lab02", {
    1: ("the trigger", _exercise_1),
    2: ("attack success rate", _exercise_2),
    3: ("smallest poison count", _exercise_3),
})
