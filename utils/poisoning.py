"""Training-data attacks: label flipping and backdoors (taught in 01_data_poisoning and 02_backdoors).

Every function returns new arrays and never modifies its inputs; bad
parameters (a poison rate outside [0, 1], a trigger larger than the image, a
target that is not a class, inputs and labels of different lengths) raise a
``ValueError`` that says what was wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check_rate(rate: float, name: str = "poison_rate") -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {rate!r}")
    return float(rate)


def _check_xy(X: np.ndarray, y: np.ndarray) -> None:
    if len(X) != len(y):
        raise ValueError(f"inputs and labels differ in length: {len(X)} inputs, {len(y)} labels")


def _check_images(X: np.ndarray) -> None:
    if X.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {X.shape}")


def _check_target(target: int, n_classes: int) -> int:
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= int(target) < n_classes:
        raise ValueError(f"target label must be a class index in [0, {n_classes - 1}], got {target!r}")
    return int(target)


@dataclass(frozen=True)
class Trigger:
    """A BadNets-style patch trigger: a ``size``×``size`` square at (``row``, ``col``).

    ``pattern`` ``"checker"`` alternates 1 and 0 (distinct from pen strokes);
    ``"solid"`` is all ``value``. ``alpha`` < 1 blends the patch into the image
    instead of pasting it.
    """

    size: int = 3
    row: int = 5
    col: int = 5
    pattern: str = "checker"
    value: float = 1.0
    alpha: float = 1.0

    def mask_and_patch(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The (H, W) mask of trigger pixels and the (H, W) patch values."""
        if not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise ValueError(f"trigger size must be a positive integer, got {self.size!r}")
        if self.row < 0 or self.col < 0 or self.row + self.size > height or self.col + self.size > width:
            raise ValueError(
                f"trigger of size {self.size} at (row={self.row}, col={self.col}) does not fit in a "
                f"{height}×{width} image: it needs row + size <= {height} and col + size <= {width}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"trigger alpha must be in (0, 1], got {self.alpha!r}")
        mask = np.zeros((height, width), dtype=np.float32)
        mask[self.row:self.row + self.size, self.col:self.col + self.size] = self.alpha
        patch = np.full((height, width), self.value, dtype=np.float32)
        if self.pattern == "checker":
            ii, jj = np.indices((height, width))
            patch = ((ii + jj) % 2 == 0).astype(np.float32) * self.value
        elif self.pattern != "solid":
            raise ValueError(f"trigger pattern must be 'checker' or 'solid', got {self.pattern!r}")
        return mask, patch


@dataclass(frozen=True)
class BackdoorSpec:
    """A complete backdoor attack: which trigger, which target label, how much poison.

    ``spec.poison(X, y)`` applies it with :func:`poison_backdoor`.
    """

    trigger: Trigger
    target: int
    poison_rate: float
    seed: int = 0

    def poison(self, X: np.ndarray, y: np.ndarray, n_classes: int | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X_poisoned, y_poisoned, poisoned_indices) for this attack; the inputs are untouched."""
        return poison_backdoor(X, y, self.trigger, self.target, self.poison_rate, seed=self.seed,
                               n_classes=n_classes)


#: The course's standard backdoor (taught in 02_backdoors, defended against in 03):
#: a 3×3 checkerboard at (5, 5), all-to-one to class 0, 5% of the training set poisoned.
#: With ``preset("mlp")`` on the digits (seed 0) it keeps clean accuracy at 0.969
#: (0.967 without poison) and reaches an attack success rate of 1.0.
STANDARD_BACKDOOR = BackdoorSpec(trigger=Trigger(size=3, row=5, col=5, pattern="checker"),
                                 target=0, poison_rate=0.05, seed=0)


def apply_trigger(X: np.ndarray, trigger: Trigger) -> np.ndarray:
    """A copy of the images (N, C, H, W) with the trigger stamped on every one."""
    X = np.asarray(X)
    _check_images(X)
    mask, patch = trigger.mask_and_patch(X.shape[2], X.shape[3])
    out = X * (1 - mask) + patch * mask
    return np.clip(out, 0.0, 1.0).astype(X.dtype)


def poison_backdoor(X: np.ndarray, y: np.ndarray, trigger: Trigger, target: int, poison_rate: float,
                    seed: int = 0, n_classes: int | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All-to-one BadNets poisoning of a training set.

    A fraction ``poison_rate`` of the whole training set, drawn among the
    examples whose label is not ``target``, gets the trigger and the label
    ``target``.

    Returns:
        (X_poisoned, y_poisoned, poisoned_indices): new arrays, the inputs untouched.
    """
    X, y = np.asarray(X), np.asarray(y)
    _check_xy(X, y)
    _check_images(X)
    rate = _check_rate(poison_rate)
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    target = _check_target(target, n_classes)
    candidates = np.flatnonzero(y != target)
    n_poison = int(round(rate * len(y)))
    if n_poison > len(candidates):
        raise ValueError(f"poison_rate {rate} asks for {n_poison} poisoned examples, but only "
                         f"{len(candidates)} are not already of the target class {target}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(candidates, size=n_poison, replace=False))
    Xp, yp = X.copy(), y.copy()
    if n_poison:
        Xp[idx] = apply_trigger(X[idx], trigger)
        yp[idx] = target
    return Xp, yp, idx


def attack_success_rate(predict, X_test: np.ndarray, y_test: np.ndarray, trigger: Trigger,
                        target: int) -> float:
    """Share of triggered test images of other classes that are classified as ``target``.

    ``predict`` maps images to predicted labels, e.g.
    ``lambda X: utils.training.predict(model, X)``.
    """
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    _check_xy(X_test, y_test)
    keep = y_test != target
    if not keep.any():
        raise ValueError(f"no test examples outside the target class {target}")
    preds = np.asarray(predict(apply_trigger(X_test[keep], trigger)))
    return float((preds == target).mean())
