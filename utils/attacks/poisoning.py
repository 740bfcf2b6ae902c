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
target that is not a class, inputs and labels of different lengths, images
outside [0, 1]) raise a ``ValueError`` from :mod:`utils.validation` that says
where, what was wrong and what is allowed. The panels of both lessons are in
:mod:`utils.widgets.poisoning`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from utils import validation as v

#: The label-flipping strategies :func:`flip_labels` knows.
FLIP_STRATEGIES = ("random", "boundary", "confident", "class")


# --------------------------------------------------------------------------- checks


def _labels_and_classes(y, where: str, n_classes: int | None = None, *, n: int | None = None,
            what: str = "inputs") -> tuple[np.ndarray, int]:
    """1-D integer labels (a copy) and the number of classes (``y.max() + 1``, at least 2, unless given)."""
    y = v.labels(y, where, n=n, what=what)
    if n_classes is None:
        return y, max(int(y.max()) + 1, 2)
    n_classes = v.integer(n_classes, "n_classes", where, low=2)
    return v.labels(y, where, n_classes=n_classes), n_classes


def _class(value, name: str, n_classes: int, where: str) -> int:
    """A class index in [0, n_classes - 1]."""
    return v.integer(value, name, where, 0, n_classes - 1)


def _rate(rate, where: str) -> float:
    return v.unit(rate, "poison_rate", where)


def _count(rate: float, n: int) -> int:
    return int(round(rate * n))


def _proba(proba, where: str) -> np.ndarray:
    """Class probabilities (n, n_classes >= 2) as a finite float64 array (a copy)."""
    a = np.asarray(proba)
    if a.ndim != 2 or a.shape[1] < 2:
        v.fail(where, f"proba has shape {a.shape}", "proba must have shape (n, n_classes) with n_classes >= 2")
    return v.features(a, where, name="proba")


def n_poisoned(poison_rate: float, n: int) -> int:
    """How many of ``n`` examples a poison rate means: ``round(poison_rate * n)``
    (taught in 01_data_poisoning)."""
    return _count(_rate(poison_rate, "n_poisoned"), v.integer(n, "n", "n_poisoned", low=0))


# --------------------------------------------------------------------------- label flipping (01)


def _draw(candidates: np.ndarray, m: int, seed: int, where: str, too_many: str, allowed: str) -> np.ndarray:
    """``m`` sorted indices drawn without replacement from ``candidates`` by ``seed``.

    Fails with ``where: too_many; allowed`` when there are fewer than ``m`` candidates.
    """
    if m > len(candidates):
        v.fail(where, too_many, allowed)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=m, replace=False))


def random_flip(y: np.ndarray, poison_rate: float, n_classes: int | None = None, seed: int = 0,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Flip a random ``poison_rate`` share of the labels, each to a random *other* class.

    Taught in 01_data_poisoning: the baseline, no smarter than label noise.

    Returns:
        (y_poisoned, flipped_indices): a new label array and the sorted indices that changed.
    """
    where = "random_flip"
    y, n_classes = _labels_and_classes(y, where, n_classes)
    m = _count(_rate(poison_rate, where), len(y))
    rng = np.random.default_rng(v.seed(seed, where))
    idx = np.sort(rng.choice(len(y), size=m, replace=False))
    yp = y.copy()
    yp[idx] = (y[idx] + rng.integers(1, n_classes, size=m)) % n_classes
    return yp, idx


def margins(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How sure a model is of each true label: p(true class) − max p(other class).

    Near −1 or 1 far from the decision boundary, near 0 on it (taught in 01_data_poisoning).
    """
    where = "margins"
    proba = _proba(proba, where)
    y, _ = _labels_and_classes(y, where, proba.shape[1], n=len(proba), what="probability rows")
    rows = np.arange(len(y))
    others = proba.copy()
    others[rows, y] = -np.inf
    return proba[rows, y] - others.max(1)


def runner_up(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The most probable class other than the true one: the most plausible wrong label
    (taught in 01_data_poisoning)."""
    where = "runner_up"
    proba = _proba(proba, where)
    y, _ = _labels_and_classes(y, where, proba.shape[1], n=len(proba), what="probability rows")
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
    where = "targeted_flip"
    y, n_classes = _labels_and_classes(y, where, n_classes)
    scores = np.asarray(scores)
    if scores.ndim != 1:
        v.fail(where, f"scores have shape {scores.shape}", "scores must be 1-D, one per example")
    v.same_length(where, labels=y, scores=scores)
    scores = v.features(scores[:, None], where, name="scores")[:, 0]
    rate = _rate(poison_rate, where)
    if new_labels is None:
        if n_classes != 2:
            v.fail(where, f"no new_labels for {n_classes} classes",
                   "say which label each flipped example gets: pass new_labels (e.g. runner_up(proba, y))")
        new_labels = 1 - y
    new_labels = v.labels(new_labels, where, n=len(y), n_classes=n_classes, name="new_labels",
                          what="examples", allow_empty=True)
    m = _count(rate, len(y))
    idx = np.sort(np.argsort(-scores, kind="stable")[:m])
    same = idx[new_labels[idx] == y[idx]]
    if len(same):
        v.fail(where, f"new_labels equal the true label at index {int(same[0])} (label {int(y[same[0]])})",
               "new_labels must differ from the true labels of the flipped examples")
    yp = y.copy()
    yp[idx] = new_labels[idx]
    return yp, idx


def class_flip(y: np.ndarray, source: int, target: int, poison_rate: float, seed: int = 0,
               n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Relabel random examples of class ``source`` as ``target``.

    ``poison_rate`` is a share of the whole set, like everywhere in this module
    (taught in 01_data_poisoning: a targeted attack on one class).
    """
    where = "class_flip"
    y, n_classes = _labels_and_classes(y, where, n_classes)
    source = _class(source, "source", n_classes, where)
    target = _class(target, "target", n_classes, where)
    if source == target:
        v.fail(where, f"source and target are both {source}", "source and target labels must differ")
    rate = _rate(poison_rate, where)
    seed = v.seed(seed, where)
    m = _count(rate, len(y))
    candidates = np.flatnonzero(y == source)
    idx = _draw(candidates, m, seed, where,
                f"poison_rate {poison_rate} asks for {m} flipped labels, but class {source} "
                f"has only {len(candidates)} examples",
                f"poison_rate must be at most {len(candidates) / len(y):.3f}")
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
    where = "flip_labels"
    strategy = v.choice(strategy, "strategy", where, FLIP_STRATEGIES)
    if strategy == "random":
        return random_flip(y, poison_rate, n_classes, seed)
    if strategy == "class":
        if source is None or target is None:
            v.fail(where, "strategy 'class' without source= and target=", "give the source and target labels")
        return class_flip(y, source, target, poison_rate, seed, n_classes)
    if proba is None:
        v.fail(where, f"strategy {strategy!r} without proba=",
               "give proba=, a clean model's class probabilities on these examples")
    proba = _proba(proba, where)
    if n_classes is not None and proba.shape[1] != n_classes:
        v.fail(where, f"proba has {proba.shape[1]} columns but n_classes is {n_classes}",
               "give one probability column per class")
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

    from utils.training import accuracy

    where = "flip_sweep"
    X_train, X_test = np.asarray(X_train), np.asarray(X_test)
    _, n_classes = _labels_and_classes(y_train, where, n_classes, n=len(X_train), what="training inputs")
    v.labels(y_test, where, n=len(X_test), what="test inputs")
    rates = [_rate(r, where) for r in rates]
    strategies = [v.choice(s, "strategy", where, FLIP_STRATEGIES) for s in strategies]
    def poison(strategy, rate):
        yp, idx = flip_labels(y_train, rate, strategy, proba=proba, source=source, target=target,
                              seed=seed, n_classes=n_classes)
        return X_train, yp, len(idx)

    rows, models = [], {}
    for strategy, rate, model, n in _sweep(config, X_train, y_train, n_classes, strategies, rates, poison):
        models[(strategy, rate)] = model
        rows.append({"strategy": strategy, "poison_rate": rate, "n_flipped": n,
                     "test_accuracy": accuracy(model, X_test, y_test)})
    return pd.DataFrame(rows), models


def _sweep(config, X_train, y_train, n_classes: int, variants, rates, poison):
    """Yield ``(variant, rate, model, n_poisoned)`` for every variant and rate: ``poison(variant,
    rate)`` gives the training set ``(X, y, n_poisoned)``; rate 0 is the clean model, trained once."""
    from utils.training import fit

    clean = None
    for variant in variants:
        for rate in rates:
            if rate == 0.0:
                if clean is None:
                    clean = fit(config, X_train, y_train, n_classes)
                yield variant, rate, clean, 0
            else:
                Xp, yp, n = poison(variant, rate)
                yield variant, rate, fit(config, Xp, yp, n_classes), n


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

    def mask_and_patch(self, height: int, width: int, where: str = "Trigger") -> tuple[np.ndarray, np.ndarray]:
        """The (H, W) mask of trigger pixels (weights in [0, 1]) and the (H, W) patch values
        (taught in 02_backdoors); ``where`` names the caller in error messages."""
        size = v.integer(self.size, "trigger size", where, low=1)
        row = v.integer(self.row, "trigger row", where)
        col = v.integer(self.col, "trigger col", where)
        if size > min(height, width):
            v.fail(where, f"a trigger of size {size} is larger than the {height}×{width} image",
                   f"trigger size must be at most {min(height, width)}")
        if row < 0 or col < 0 or row + size > height or col + size > width:
            v.fail(where, f"a trigger of size {size} at (row={row}, col={col}) does not fit in a "
                          f"{height}×{width} image",
                   f"it needs 0 <= row <= {height - size} and 0 <= col <= {width - size}")
        alpha = v.real(self.alpha, "trigger alpha", where, 0.0, 1.0, open_low=True)
        value = v.unit(self.value, "trigger value", where)
        pattern = v.choice(self.pattern, "trigger pattern", where, ("checker", "solid", "noise"))
        mask = np.zeros((height, width), dtype=np.float32)
        mask[row:row + size, col:col + size] = alpha
        if pattern == "checker":
            ii, jj = np.indices((height, width))
            patch = ((ii - row + jj - col) % 2 == 0).astype(np.float32) * value
        elif pattern == "solid":
            patch = np.full((height, width), value, dtype=np.float32)
        else:
            rng = np.random.default_rng(v.seed(self.pattern_seed, where, "pattern_seed"))
            patch = (rng.random((height, width)) * value).astype(np.float32)
        return mask, patch


#: Where :func:`trigger_at` can put a patch.
POSITIONS = ("top-left", "top-right", "centre", "bottom-left", "bottom-right")


def trigger_at(size: int, position: str = "bottom-right", image_size: int = 8,
               pattern: str = "checker") -> Trigger:
    """A ``size``×``size`` patch trigger at a named position of a square image (taught in 02_backdoors)."""
    where = "trigger_at"
    image_size = v.integer(image_size, "image_size", where, low=1)
    size = v.integer(size, "size", where, 1, image_size)
    position = v.choice(position, "position", where, POSITIONS)
    pattern = v.choice(pattern, "pattern", where, ("checker", "solid", "noise"))
    far, mid = image_size - size, (image_size - size) // 2
    places = {"top-left": (0, 0), "top-right": (0, far), "centre": (mid, mid),
              "bottom-left": (far, 0), "bottom-right": (far, far)}
    row, col = places[position]
    return Trigger(size=size, row=row, col=col, pattern=pattern)


def blended_trigger(alpha: float = 0.2, image_size: int = 8, seed: int = 0) -> Trigger:
    """A blended trigger (Chen et al., 2017): a fixed random pattern mixed into the whole image.

    ``x' = (1 − alpha)·x + alpha·pattern``: faint everywhere instead of bright
    in one corner (taught in 02_backdoors).
    """
    where = "blended_trigger"
    alpha = v.real(alpha, "alpha", where, 0.0, 1.0, open_low=True)
    image_size = v.integer(image_size, "image_size", where, low=1)
    seed = v.seed(seed, where)
    return Trigger(size=image_size, row=0, col=0, pattern="noise", alpha=alpha, pattern_seed=seed)


@dataclass(frozen=True)
class BackdoorSpec:
    """A complete backdoor attack: which trigger, which target label, how much poison.

    ``spec.poison(X, y)`` applies it with :func:`poison_backdoor` (taught in 02_backdoors).
    """

    trigger: Trigger
    target: int
    poison_rate: float
    seed: int = 0

    def poison(self, X: np.ndarray, y: np.ndarray, n_classes: int | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X_poisoned, y_poisoned, poisoned_indices) for this attack; the inputs are untouched
        (taught in 02_backdoors)."""
        return poison_backdoor(X, y, self.trigger, self.target, self.poison_rate, seed=self.seed,
                               n_classes=n_classes)


#: The course's standard backdoor (taught in 02_backdoors, defended against in 03):
#: a 3×3 checkerboard at (5, 5), all-to-one to class 0, 5% of the training set poisoned.
#: With ``preset("mlp")`` on the digits (seed 0) it keeps clean accuracy at 0.969
#: (0.967 without poison) and reaches an attack success rate of 1.0.
STANDARD_BACKDOOR = BackdoorSpec(trigger=Trigger(size=3, row=5, col=5, pattern="checker"),
                                 target=0, poison_rate=0.05, seed=0)


def apply_trigger(X: np.ndarray, trigger: Trigger) -> np.ndarray:
    """A copy of the images (N, C, H, W) in [0, 1] with the trigger stamped on every one
    (taught in 02_backdoors). Images on another scale (0-255) are refused, not clipped."""
    return _stamp(v.images(X, "apply_trigger"), trigger, "apply_trigger")


def _stamp(X: np.ndarray, trigger: Trigger, where: str) -> np.ndarray:
    """The trigger on checked float32 images (a new array)."""
    mask, patch = trigger.mask_and_patch(X.shape[2], X.shape[3], where)
    out = X * (1 - mask) + patch * mask
    return np.clip(out, 0.0, 1.0).astype(X.dtype)  # float round-off only: both sides are in [0, 1]


def _trainset(X, y, trigger: Trigger, target, poison_rate, seed, n_classes, where: str):
    """Checked images, labels, class count, target, rate and seed of a poisoning call."""
    X = v.images(X, where)
    y, n_classes = _labels_and_classes(y, where, n_classes, n=len(X), what="images")
    rate = _rate(poison_rate, where)
    target = _class(target, "target", n_classes, where)
    seed = v.seed(seed, where)
    trigger.mask_and_patch(X.shape[2], X.shape[3], where)  # a trigger that does not fit fails even at rate 0
    return X, y, n_classes, target, rate, seed


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
    where = "poison_backdoor"
    X, y, n_classes, target, rate, seed = _trainset(X, y, trigger, target, poison_rate, seed, n_classes, where)
    candidates = np.flatnonzero(y != target)
    n_poison = _count(rate, len(y))
    idx = _draw(candidates, n_poison, seed, where,
                f"poison_rate {rate} asks for {n_poison} poisoned examples, but only "
                f"{len(candidates)} are not already of the target class {target}",
                f"poison_rate must be at most {len(candidates) / len(y):.3f}")
    Xp, yp = X.copy(), y.copy()
    if n_poison:
        Xp[idx] = _stamp(X[idx], trigger, where)
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
    where = "clean_label_poison"
    X, y, n_classes, target, rate, seed = _trainset(X, y, trigger, target, poison_rate, seed, n_classes, where)
    if X_hard is not None:
        X_hard = v.images(X_hard, where, name="X_hard")
        if X_hard.shape != X.shape:
            v.fail(where, f"X_hard has shape {X_hard.shape}", f"X_hard must have the shape of X, {X.shape}")
    candidates = np.flatnonzero(y == target)
    n_poison = _count(rate, len(y))
    idx = _draw(candidates, n_poison, seed, where,
                f"poison_rate {rate} asks for {n_poison} poisoned examples, but class {target} "
                f"has only {len(candidates)}",
                f"poison_rate must be at most {len(candidates) / len(y):.3f}")
    Xp = X.copy()
    if n_poison:
        source = X_hard if X_hard is not None else X
        Xp[idx] = _stamp(source[idx], trigger, where)
    return Xp, y.copy(), idx


def attack_success_rate(predict: Callable[[np.ndarray], np.ndarray], X_test: np.ndarray, y_test: np.ndarray,
                        trigger: Trigger, target: int) -> float:
    """Share of triggered test images of other classes that are classified as ``target``.

    ``predict`` maps images to predicted labels, e.g.
    ``lambda X: utils.training.predict(model, X)`` (taught in 02_backdoors).
    """
    where = "attack_success_rate"
    if not callable(predict):
        v.fail(where, f"predict is a {type(predict).__name__}", "predict must be a function from images to labels")
    X_test = v.images(X_test, where)
    y_test = v.labels(y_test, where, n=len(X_test), what="images")
    target = v.integer(target, "target", where, low=0)
    keep = y_test != target
    if not keep.any():
        v.fail(where, f"no test examples outside the target class {target}",
               "give test images of other classes too")
    preds = np.asarray(predict(_stamp(X_test[keep], trigger, where)))
    return float((preds == target).mean())


def evaluate_backdoor(model, X_test: np.ndarray, y_test: np.ndarray, trigger: Trigger, target: int,
                      ) -> dict[str, float]:
    """``{"clean_accuracy": ..., "asr": ...}`` of a model in eval mode on a test set (taught in 02_backdoors)."""
    from utils.training import accuracy, predict

    v.eval_mode(model, "evaluate_backdoor")
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

    where = "backdoor_sweep"
    X_train = v.images(X_train, where)
    y_train, n_classes = _labels_and_classes(y_train, where, n_classes, n=len(X_train), what="images")
    v.labels(y_test, where, n=len(np.asarray(X_test)), what="test images")
    target = _class(target, "target", n_classes, where)
    rates = [_rate(r, where) for r in rates]
    def poison(name, rate):
        Xp, yp, idx = poison_backdoor(X_train, y_train, triggers[name], target, rate, seed=seed, n_classes=n_classes)
        return Xp, yp, len(idx)

    rows, models = [], {}
    for name, rate, model, n in _sweep(config, X_train, y_train, n_classes, list(triggers), rates, poison):
        trigger = triggers[name]
        models[(name, float(rate))] = model
        scores = evaluate_backdoor(model, X_test, y_test, trigger, target)
        rows.append({"trigger": name, "size": trigger.size, "row": trigger.row, "col": trigger.col,
                     "poison_rate": float(rate), "n_poisoned": n, **scores})
    return pd.DataFrame(rows), models


__all__ = ["FLIP_STRATEGIES", "n_poisoned", "random_flip", "margins", "runner_up", "targeted_flip",
           "class_flip", "flip_labels", "flip_sweep", "Trigger", "blended_trigger", "BackdoorSpec",
           "STANDARD_BACKDOOR", "POSITIONS", "trigger_at", "backdoor_sweep", "apply_trigger", "poison_backdoor", "clean_label_poison",
           "attack_success_rate", "evaluate_backdoor"]
