"""Training-data attacks: label flipping and backdoors (taught in 01_data_poisoning and 02_backdoors).

- Label flipping (01): :func:`random_flip`, :func:`targeted_flip` (flip the
  points a score ranks first, e.g. those nearest the boundary, see
  :func:`margins`), :func:`class_flip` (one class into another),
  :func:`flip_labels` (all of them by name) and :func:`flip_sweep` (test
  accuracy against poison rate).
- Backdoors (02): :class:`Trigger` (a BadNets patch, or a blended pattern via
  :func:`blended_trigger`), :func:`apply_trigger`, :func:`poison_backdoor`
  (all-to-one, dirty label), :func:`clean_label_poison` (labels untouched),
  :func:`attack_success_rate`, :func:`evaluate_backdoor`, :func:`backdoor_sweep`,
  :func:`trigger_at` (a patch at a named position), and the course's
  standard attack :data:`STANDARD_BACKDOOR`, reused by 03_data_defenses.

Every function returns new arrays and never modifies its inputs; bad
parameters (a poison rate outside [0, 1], a trigger larger than the image, a
target that is not a class, inputs and labels of different lengths) raise a
``ValueError`` that says what was wrong.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

#: The label-flipping strategies :func:`flip_labels` knows.
FLIP_STRATEGIES = ("random", "boundary", "confident", "class")


# --------------------------------------------------------------------------- checks


def _check_rate(rate: float, name: str = "poison_rate") -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {rate!r}")
    return float(rate)


def _check_xy(X: np.ndarray, y: np.ndarray) -> None:
    if len(X) != len(y):
        raise ValueError(f"inputs and labels differ in length: {len(X)} inputs, {len(y)} labels")


def _check_images(X: np.ndarray) -> None:
    if X.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {X.shape}")


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_target(target: int, n_classes: int, name: str = "target label") -> int:
    if not _is_int(target) or not 0 <= int(target) < n_classes:
        raise ValueError(f"{name} must be a class index in [0, {n_classes - 1}], got {target!r}")
    return int(target)


def _check_labels(y: np.ndarray, n_classes: int | None = None) -> tuple[np.ndarray, int]:
    """1-D integer labels and the number of classes (``y.max() + 1`` unless given)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {y.shape}")
    if len(y) == 0:
        raise ValueError("labels are empty")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if n_classes is None:
        n_classes = max(int(y.max()) + 1, 2)
    if not _is_int(n_classes) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must be in [0, {n_classes - 1}], got values in [{y.min()}, {y.max()}]")
    return y, int(n_classes)


def _check_seed(seed: int) -> int:
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def n_poisoned(poison_rate: float, n: int) -> int:
    """How many of ``n`` examples a poison rate means: ``round(poison_rate * n)``."""
    return int(round(_check_rate(poison_rate) * n))


# --------------------------------------------------------------------------- label flipping (01)


def _draw(candidates: np.ndarray, m: int, seed: int, too_many: str) -> np.ndarray:
    """``m`` sorted indices drawn without replacement from ``candidates`` by ``seed``.

    Raises ``ValueError(too_many)`` when there are fewer than ``m`` candidates.
    """
    if m > len(candidates):
        raise ValueError(too_many)
    rng = np.random.default_rng(_check_seed(seed))
    return np.sort(rng.choice(candidates, size=m, replace=False))


def random_flip(y: np.ndarray, poison_rate: float, n_classes: int | None = None, seed: int = 0,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Flip a random ``poison_rate`` share of the labels, each to a random *other* class.

    Taught in 01_data_poisoning: the baseline, no smarter than label noise.

    Returns:
        (y_poisoned, flipped_indices): a new label array and the sorted indices that changed.
    """
    y, n_classes = _check_labels(y, n_classes)
    m = n_poisoned(poison_rate, len(y))
    rng = np.random.default_rng(_check_seed(seed))
    idx = np.sort(rng.choice(len(y), size=m, replace=False))
    yp = y.copy()
    yp[idx] = (y[idx] + rng.integers(1, n_classes, size=m)) % n_classes
    return yp, idx


def margins(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How sure a model is of each true label: p(true class) − max p(other class).

    Near −1 or 1 far from the decision boundary, near 0 on it (taught in 01_data_poisoning).
    """
    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"proba must have shape (n, n_classes) with n_classes >= 2, got {proba.shape}")
    _check_xy(proba, y)
    y, _ = _check_labels(y, proba.shape[1])
    rows = np.arange(len(y))
    others = proba.copy()
    others[rows, y] = -np.inf
    return proba[rows, y] - others.max(1)


def runner_up(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The most probable class other than the true one: the most plausible wrong label."""
    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"proba must have shape (n, n_classes) with n_classes >= 2, got {proba.shape}")
    _check_xy(proba, y)
    y, _ = _check_labels(y, proba.shape[1])
    others = proba.copy()
    others[np.arange(len(y)), y] = -np.inf
    return others.argmax(1)


def targeted_flip(y: np.ndarray, scores: np.ndarray, poison_rate: float,
                  new_labels: np.ndarray | None = None, n_classes: int | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Flip the labels of the ``poison_rate`` share of points with the highest ``scores``.

    Taught in 01_data_poisoning. With ``scores = -abs(margins(proba, y))``
    the points nearest the boundary go first; with ``scores = margins(proba, y)``
    the ones the model is surest of. Ties go to the lower index.

    Args:
        y: labels (never modified).
        scores: one number per example; higher means flipped first.
        poison_rate: share of the whole set to flip, in [0, 1].
        new_labels: the label each example gets if flipped (e.g. :func:`runner_up`);
            for two classes it defaults to the other class.

    Returns:
        (y_poisoned, flipped_indices), the indices sorted.
    """
    y, n_classes = _check_labels(y, n_classes)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D (one per example), got shape {scores.shape}")
    _check_xy(scores, y)
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    if new_labels is None:
        if n_classes != 2:
            raise ValueError(f"with {n_classes} classes, say which label each flipped example gets: "
                             f"pass new_labels (e.g. runner_up(proba, y))")
        new_labels = 1 - y
    new_labels = np.asarray(new_labels)
    _check_xy(new_labels, y)
    new_labels, _ = _check_labels(new_labels, n_classes)
    m = n_poisoned(poison_rate, len(y))
    idx = np.sort(np.argsort(-scores, kind="stable")[:m])
    same = idx[new_labels[idx] == y[idx]]
    if len(same):
        raise ValueError(f"new_labels must differ from the true labels of the flipped examples; "
                         f"they are equal at index {int(same[0])} (label {int(y[same[0]])})")
    yp = y.copy()
    yp[idx] = new_labels[idx]
    return yp, idx


def class_flip(y: np.ndarray, source: int, target: int, poison_rate: float, seed: int = 0,
               n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Relabel random examples of class ``source`` as ``target``.

    ``poison_rate`` is a share of the whole set, like everywhere in this module
    (taught in 01_data_poisoning: a targeted attack on one class).
    """
    y, n_classes = _check_labels(y, n_classes)
    source = _check_target(source, n_classes, "source label")
    target = _check_target(target, n_classes, "target label")
    if source == target:
        raise ValueError(f"source and target labels must differ, both are {source}")
    m = n_poisoned(poison_rate, len(y))
    candidates = np.flatnonzero(y == source)
    idx = _draw(candidates, m, seed,
                f"poison_rate {poison_rate} asks for {m} flipped labels, but class {source} "
                f"has only {len(candidates)} examples (at most {len(candidates) / len(y):.3f})")
    yp = y.copy()
    yp[idx] = target
    return yp, idx


def flip_labels(y: np.ndarray, poison_rate: float, strategy: str = "random", *,
                proba: np.ndarray | None = None, source: int | None = None, target: int | None = None,
                seed: int = 0, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Label flipping by name (taught in 01_data_poisoning).

    - ``"random"``: :func:`random_flip`.
    - ``"boundary"``: the points nearest a clean model's boundary (smallest
      absolute margin), each to its runner-up class; needs ``proba``.
    - ``"confident"``: the points the clean model is surest of (largest margin),
      each to its runner-up class; needs ``proba``. An availability attack.
    - ``"class"``: ``source`` examples relabelled ``target`` (:func:`class_flip`).

    ``proba`` is the clean model's class probabilities on the same examples.
    """
    if strategy not in FLIP_STRATEGIES:
        raise ValueError(f"strategy must be one of {list(FLIP_STRATEGIES)}, got {strategy!r}")
    if strategy == "random":
        return random_flip(y, poison_rate, n_classes, seed)
    if strategy == "class":
        if source is None or target is None:
            raise ValueError("strategy 'class' needs source= and target= labels")
        return class_flip(y, source, target, poison_rate, seed, n_classes)
    if proba is None:
        raise ValueError(f"strategy {strategy!r} needs proba=, a clean model's probabilities on these examples")
    proba = np.asarray(proba)
    if n_classes is not None and proba.ndim == 2 and proba.shape[1] != n_classes:
        raise ValueError(f"proba has {proba.shape[1]} columns but n_classes is {n_classes}")
    m = margins(proba, y)
    scores = -np.abs(m) if strategy == "boundary" else m
    return targeted_flip(y, scores, poison_rate, runner_up(proba, y), n_classes=proba.shape[1])


def flip_sweep(config, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
               rates: Sequence[float], strategies: Sequence[str] = ("random", "boundary"), *,
               proba: np.ndarray | None = None, n_classes: int | None = None, seed: int = 0,
               source: int | None = None, target: int | None = None):
    """Train one model per (strategy, poison rate) and measure its test accuracy.

    Taught in 01_data_poisoning. Models come from the cache of
    :func:`utils.training.fit` when they were trained before; rate 0 is trained
    once and shared by every strategy.

    Returns:
        (table, models): a pandas DataFrame with columns ``strategy``,
        ``poison_rate``, ``n_flipped``, ``test_accuracy``, and a dict
        ``{(strategy, rate): model}``.
    """
    import pandas as pd

    from utils.training import accuracy, fit

    X_train, X_test = np.asarray(X_train), np.asarray(X_test)
    _check_xy(X_train, y_train)
    _check_xy(X_test, y_test)
    _, n_classes = _check_labels(y_train, n_classes)
    for r in rates:
        _check_rate(r)
    rows, models, clean = [], {}, None
    for strategy in strategies:
        for rate in rates:
            if float(rate) == 0.0:
                if clean is None:
                    clean = fit(config, X_train, y_train, n_classes)
                model, n = clean, 0
            else:
                yp, idx = flip_labels(y_train, rate, strategy, proba=proba, source=source, target=target,
                                      seed=seed, n_classes=n_classes)
                model, n = fit(config, X_train, yp, n_classes), len(idx)
            models[(strategy, float(rate))] = model
            rows.append({"strategy": strategy, "poison_rate": float(rate), "n_flipped": n,
                         "test_accuracy": accuracy(model, X_test, y_test)})
    return pd.DataFrame(rows), models


# --------------------------------------------------------------------------- backdoors (02)


@dataclass(frozen=True)
class Trigger:
    """A BadNets-style patch trigger: a ``size``×``size`` square at (``row``, ``col``).

    ``pattern`` ``"checker"`` alternates ``value`` and 0, starting with
    ``value`` in the patch's top-left corner (distinct from pen strokes);
    ``"solid"`` is all ``value``; ``"noise"`` is a fixed random pattern drawn
    from ``pattern_seed`` (used by :func:`blended_trigger`). ``alpha`` < 1
    blends the patch into the image instead of pasting it.
    (Taught in 02_backdoors.)
    """

    size: int = 3
    row: int = 5
    col: int = 5
    pattern: str = "checker"
    value: float = 1.0
    alpha: float = 1.0
    pattern_seed: int = 0

    def mask_and_patch(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The (H, W) mask of trigger pixels (weights in [0, 1]) and the (H, W) patch values."""
        if not _is_int(self.size) or self.size < 1:
            raise ValueError(f"trigger size must be a positive integer, got {self.size!r}")
        if not _is_int(self.row) or not _is_int(self.col):
            raise ValueError(f"trigger row and col must be integers, got row={self.row!r}, col={self.col!r}")
        if self.size > min(height, width):
            raise ValueError(f"trigger of size {self.size} is larger than the {height}×{width} image")
        if self.row < 0 or self.col < 0 or self.row + self.size > height or self.col + self.size > width:
            raise ValueError(
                f"trigger of size {self.size} at (row={self.row}, col={self.col}) does not fit in a "
                f"{height}×{width} image: it needs 0 <= row <= {height - self.size} and "
                f"0 <= col <= {width - self.size}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real) or not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"trigger alpha must be in (0, 1], got {self.alpha!r}")
        if isinstance(self.value, bool) or not isinstance(self.value, numbers.Real) or not 0.0 <= self.value <= 1.0:
            raise ValueError(f"trigger value must be in [0, 1] (images are in [0, 1]), got {self.value!r}")
        mask = np.zeros((height, width), dtype=np.float32)
        mask[self.row:self.row + self.size, self.col:self.col + self.size] = self.alpha
        if self.pattern == "checker":
            ii, jj = np.indices((height, width))
            patch = ((ii - self.row + jj - self.col) % 2 == 0).astype(np.float32) * self.value
        elif self.pattern == "solid":
            patch = np.full((height, width), self.value, dtype=np.float32)
        elif self.pattern == "noise":
            rng = np.random.default_rng(_check_seed(self.pattern_seed))
            patch = (rng.random((height, width)) * self.value).astype(np.float32)
        else:
            raise ValueError(f"trigger pattern must be 'checker', 'solid' or 'noise', got {self.pattern!r}")
        return mask, patch


#: Where :func:`trigger_at` can put a patch.
POSITIONS = ("top-left", "top-right", "centre", "bottom-left", "bottom-right")


def trigger_at(size: int, position: str = "bottom-right", image_size: int = 8,
               pattern: str = "checker") -> Trigger:
    """A ``size``×``size`` patch trigger at a named position of a square image (taught in 02_backdoors)."""
    if not _is_int(size) or not 1 <= size <= image_size:
        raise ValueError(f"trigger size must be an integer in [1, {image_size}] for a {image_size}×{image_size} "
                         f"image, got {size!r}")
    far, mid = image_size - size, (image_size - size) // 2
    places = {"top-left": (0, 0), "top-right": (0, far), "centre": (mid, mid),
              "bottom-left": (far, 0), "bottom-right": (far, far)}
    if position not in places:
        raise ValueError(f"position must be one of {list(POSITIONS)}, got {position!r}")
    row, col = places[position]
    return Trigger(size=int(size), row=row, col=col, pattern=pattern)


def blended_trigger(alpha: float = 0.2, image_size: int = 8, seed: int = 0) -> Trigger:
    """A blended trigger (Chen et al., 2017): a fixed random pattern mixed into the whole image.

    ``x' = (1 − alpha)·x + alpha·pattern``: faint everywhere instead of bright
    in one corner (taught in 02_backdoors).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    if not _is_int(image_size) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    return Trigger(size=image_size, row=0, col=0, pattern="noise", alpha=float(alpha), pattern_seed=seed)


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
    """A copy of the images (N, C, H, W) with the trigger stamped on every one (taught in 02_backdoors)."""
    X = np.asarray(X)
    _check_images(X)
    mask, patch = trigger.mask_and_patch(X.shape[2], X.shape[3])
    out = X * (1 - mask) + patch * mask
    return np.clip(out, 0.0, 1.0).astype(X.dtype)


def poison_backdoor(X: np.ndarray, y: np.ndarray, trigger: Trigger, target: int, poison_rate: float,
                    seed: int = 0, n_classes: int | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All-to-one BadNets poisoning of a training set (taught in 02_backdoors).

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
    y, n_classes = _check_labels(y, n_classes)
    target = _check_target(target, n_classes)
    trigger.mask_and_patch(X.shape[2], X.shape[3])  # a trigger that does not fit fails even at rate 0
    candidates = np.flatnonzero(y != target)
    n_poison = n_poisoned(rate, len(y))
    idx = _draw(candidates, n_poison, seed,
                f"poison_rate {rate} asks for {n_poison} poisoned examples, but only "
                f"{len(candidates)} are not already of the target class {target}")
    Xp, yp = X.copy(), y.copy()
    if n_poison:
        Xp[idx] = apply_trigger(X[idx], trigger)
        yp[idx] = target
    return Xp, yp, idx


def clean_label_poison(X: np.ndarray, y: np.ndarray, trigger: Trigger, target: int, poison_rate: float,
                       seed: int = 0, n_classes: int | None = None, X_hard: np.ndarray | None = None,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean-label backdoor poisoning (Turner et al., 2019), taught in 02_backdoors.

    A fraction ``poison_rate`` of the whole training set, drawn among the
    examples *of* class ``target``, gets the trigger; every label stays true, so
    a person checking labels finds nothing wrong. ``X_hard`` (same shape as
    ``X``) can replace those examples before the trigger is stamped, e.g. by
    versions that are hard to classify without the trigger (adversarially
    perturbed), which makes the model lean on the trigger.

    Returns:
        (X_poisoned, y, poisoned_indices): new arrays, the inputs untouched (the labels a copy).
    """
    X, y = np.asarray(X), np.asarray(y)
    _check_xy(X, y)
    _check_images(X)
    rate = _check_rate(poison_rate)
    y, n_classes = _check_labels(y, n_classes)
    target = _check_target(target, n_classes)
    trigger.mask_and_patch(X.shape[2], X.shape[3])
    if X_hard is not None:
        X_hard = np.asarray(X_hard)
        if X_hard.shape != X.shape:
            raise ValueError(f"X_hard must have the shape of X {X.shape}, got {X_hard.shape}")
    candidates = np.flatnonzero(y == target)
    n_poison = n_poisoned(rate, len(y))
    idx = _draw(candidates, n_poison, seed,
                f"poison_rate {rate} asks for {n_poison} poisoned examples, but class {target} "
                f"has only {len(candidates)} (at most {len(candidates) / len(y):.3f})")
    Xp = X.copy()
    if n_poison:
        source = X_hard if X_hard is not None else X
        Xp[idx] = apply_trigger(source[idx], trigger)
    return Xp, y.copy(), idx


def attack_success_rate(predict: Callable[[np.ndarray], np.ndarray], X_test: np.ndarray, y_test: np.ndarray,
                        trigger: Trigger, target: int) -> float:
    """Share of triggered test images of other classes that are classified as ``target``.

    ``predict`` maps images to predicted labels, e.g.
    ``lambda X: utils.training.predict(model, X)`` (taught in 02_backdoors).
    """
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    _check_xy(X_test, y_test)
    if not _is_int(target):
        raise ValueError(f"target label must be a class index, got {target!r}")
    keep = y_test != target
    if not keep.any():
        raise ValueError(f"no test examples outside the target class {target}")
    preds = np.asarray(predict(apply_trigger(X_test[keep], trigger)))
    return float((preds == target).mean())


def evaluate_backdoor(model, X_test: np.ndarray, y_test: np.ndarray, trigger: Trigger, target: int,
                      ) -> dict[str, float]:
    """``{"clean_accuracy": ..., "asr": ...}`` of a model on a test set (taught in 02_backdoors)."""
    from utils.training import accuracy, predict

    return {"clean_accuracy": accuracy(model, X_test, y_test),
            "asr": attack_success_rate(lambda Z: predict(model, Z), X_test, y_test, trigger, target)}


def backdoor_sweep(config, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
                   triggers: dict, rates: Sequence[float], target: int = 0, seed: int = 0,
                   n_classes: int | None = None):
    """Train one backdoored model per (trigger, poison rate); measure clean accuracy and ASR.

    Taught in 02_backdoors. ``triggers`` maps a name of your choice to a
    :class:`Trigger`. Rate 0 is the clean model (trained once), evaluated with
    each trigger. Models come from the cache of :func:`utils.training.fit`
    when they were trained before.

    Returns:
        (table, models): a pandas DataFrame with columns ``trigger``, ``size``,
        ``row``, ``col``, ``poison_rate``, ``n_poisoned``, ``clean_accuracy``,
        ``asr``, and a dict ``{(name, rate): model}``.
    """
    import pandas as pd

    from utils.training import fit

    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    _check_xy(X_train, y_train)
    _check_xy(X_test, y_test)
    _, n_classes = _check_labels(y_train, n_classes)
    target = _check_target(target, n_classes)
    for r in rates:
        _check_rate(r)
    rows, models, clean = [], {}, None
    for name, trigger in triggers.items():
        for rate in rates:
            if float(rate) == 0.0:
                if clean is None:
                    clean = fit(config, X_train, y_train, n_classes)
                model, n = clean, 0
            else:
                Xp, yp, idx = poison_backdoor(X_train, y_train, trigger, target, rate, seed=seed, n_classes=n_classes)
                model, n = fit(config, Xp, yp, n_classes), len(idx)
            models[(name, float(rate))] = model
            scores = evaluate_backdoor(model, X_test, y_test, trigger, target)
            rows.append({"trigger": name, "size": trigger.size, "row": trigger.row, "col": trigger.col,
                         "poison_rate": float(rate), "n_poisoned": n, **scores})
    return pd.DataFrame(rows), models


# --------------------------------------------------------------------------- widget panels


def _result_label(text: str = ""):
    import ipywidgets as widgets

    label = widgets.HTML(value=text)
    label.add_class("modelsec-result")
    return label


def _png(fig) -> bytes:
    """A figure as PNG bytes (shown in an ``ipywidgets.Image``: nothing leaks into the cell output)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def flip_panel(results: dict, X: np.ndarray, strategies: dict[str, str], rates: Sequence[float],
               value: tuple[str, float] | None = None):
    """A poison-rate slider and an attack dropdown over precomputed label-flipping results (01).

    Args:
        results: ``{(strategy, rate): {"model", "y", "flipped", "accuracy"}}`` for every
            strategy and rate offered: the model trained on labels ``y`` whose
            ``flipped`` indices were changed, and its test accuracy.
        X: the 2-D training points the models were trained on.
        strategies: ``{strategy: label shown in the dropdown}``.
        rates: the slider's values.
        value: the (strategy, rate) shown first.
    Returns:
        the panel (an ipywidgets VBox); every update only looks results up and redraws.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from utils.course.plots import decision_boundary
    from utils.training import predict_proba

    rates = [round(float(r), 4) for r in rates]
    missing = [(s, r) for s in strategies for r in rates if (s, r) not in results]
    if missing:
        raise ValueError(f"flip_panel: no precomputed result for {missing[:3]}")
    first_s, first_r = value or (next(iter(strategies)), rates[len(rates) // 2])
    attack = widgets.Dropdown(options=[(label, s) for s, label in strategies.items()], value=first_s,
                              description="attack")
    rate = widgets.SelectionSlider(options=[(f"{r:.2f}", r) for r in rates], value=round(float(first_r), 4),
                                   description="poison rate")
    label = _result_label()
    image = widgets.Image(format="png")

    def redraw(*_):
        s, r = attack.value, rate.value
        res = results[(s, r)]
        label.value = (f"{strategies[s]}, poison rate {r:.2f} → test accuracy {res['accuracy']:.3f} "
                       f"({len(res['flipped'])} of {len(res['y'])} labels flipped)")
        fig, ax = plt.subplots(figsize=(4.8, 3.6))
        decision_boundary(lambda Z: predict_proba(res["model"], Z), X, res["y"], ax=ax, resolution=120,
                          highlight=res["flipped"] if len(res["flipped"]) else None, highlight_label="flipped",
                          title=f"{strategies[s]}, rate {r:.2f}")
        fig.tight_layout()
        image.value = _png(fig)

    attack.observe(redraw, names="value")
    rate.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([attack, rate]), label, image])


def backdoor_panel(results: dict, X_test: np.ndarray, y_test: np.ndarray, target: int,
                   sizes: Sequence[int], positions: Sequence[str], value: tuple[int, str] | None = None,
                   n_examples: int = 8):
    """A trigger-size slider and a position dropdown over precomputed backdoored models (02).

    Args:
        results: ``{(size, position): {"model", "trigger", "asr", "clean_accuracy"}}``.
        X_test, y_test: test images and labels; the panel shows the first
            ``n_examples`` test digits not of class ``target``, triggered, with the model's answers.
        sizes, positions: the slider's and the dropdown's values.
    Returns:
        the panel (an ipywidgets VBox); every update only looks results up and redraws.
    """
    import ipywidgets as widgets

    from utils.course.plots import image_grid
    from utils.training import predict

    missing = [(s, p) for s in sizes for p in positions if (s, p) not in results]
    if missing:
        raise ValueError(f"backdoor_panel: no precomputed result for {missing[:3]}")
    first_s, first_p = value or (sizes[0], positions[0])
    size = widgets.SelectionSlider(options=[(f"{s}×{s}", s) for s in sizes], value=first_s,
                                   description="trigger size")
    where = widgets.Dropdown(options=list(positions), value=first_p, description="position")
    label = _result_label()
    image = widgets.Image(format="png")
    keep = np.flatnonzero(np.asarray(y_test) != target)[:n_examples]

    def redraw(*_):
        res = results[(size.value, where.value)]
        t = res["trigger"]
        label.value = (f"{t.size}×{t.size} trigger at {where.value} (row {t.row}, col {t.col}) → "
                       f"attack success rate {res['asr']:.3f}, clean accuracy {res['clean_accuracy']:.3f}")
        Xt = apply_trigger(X_test[keep], t)
        fig = image_grid(Xt, y_test[keep], predict(res["model"], Xt), ncols=n_examples,
                         suptitle=f"triggered test digits: true→predicted (target {target})")
        image.value = _png(fig)

    size.observe(redraw, names="value")
    where.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([size, where]), label, image])


__all__ = ["FLIP_STRATEGIES", "n_poisoned", "random_flip", "margins", "runner_up", "targeted_flip",
           "class_flip", "flip_labels", "flip_sweep", "Trigger", "blended_trigger", "BackdoorSpec",
           "STANDARD_BACKDOOR", "POSITIONS", "trigger_at", "backdoor_sweep", "apply_trigger", "poison_backdoor", "clean_label_poison",
           "attack_success_rate", "evaluate_backdoor", "flip_panel", "backdoor_panel"]
