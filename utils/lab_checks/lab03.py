"""Checks of labs/03_data_defenses_lab.ipynb (taught in notebooks/03_data_defenses.ipynb).

Every check runs the learner's function on data it builds itself as well as on the lab's (other
labels, other poisoned indices, shuffled rows, made-up activations), so an answer read off the
lab's variables, or off the ground truth, does not pass; the library function that would answer an
exercise in one call is refused while the learner's code runs (:func:`grading.forbid`). Failure
messages say which case fails, never the value expected.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from utils import metrics
from utils.defenses import data as dd
from utils.course.grading import NotSolved, forbid, require
from . import Checker

#: Exercise 4's detector, as in the lesson (``dd.activation_clustering``'s defaults).
MAX_SIZE = 0.35
MAX_REFERENCE_RATIO = 0.5


def _close(got: Any, want: Any, tol: float = 1e-9) -> bool:
    try:
        return bool(abs(float(got) - float(want)) <= tol)
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- exercise 1


def _exercise_1(balance_gaps: Callable[..., Any], yp: np.ndarray, ds: Any, suspect: Any, spec: Any) -> None:
    """Class-balance gaps match the share differences (on the lab's labels and on labels the check
    draws, with an absent class and sets of different sizes), and the suspect is the largest gap."""
    rng = np.random.default_rng(3)
    y_other = rng.choice(6, size=250, p=[0.3, 0.2, 0.2, 0.15, 0.15, 0.0])   # class 5 absent
    y_ref_other = rng.choice(6, size=90)
    cases = [("the lab's labels", yp, ds.y_val, ds.n_classes),
             ("labels the check draws (one class absent, sets of different sizes)", y_other, y_ref_other, 7)]
    for what, y, y_ref, n in cases:
        expected = dd.class_shares(y, n) - dd.class_shares(y_ref, n)
        got = np.asarray(balance_gaps(np.array(y), np.array(y_ref), n), dtype=float)
        require(got.shape == (n,), f"on {what}: expected one gap per class ({n}), got shape {got.shape}")
        wrong = [c for c in range(n) if not _close(got[c], expected[c])]
        require(not wrong, f"on {what}: the gaps of classes {wrong} are not (share in y) − (share in y_ref)")
    gaps = dd.class_shares(yp, ds.n_classes) - dd.class_shares(ds.y_val, ds.n_classes)
    require(suspect == int(np.argmax(gaps)), f"suspect = {suspect!r} is not the class whose share grew the most")


# --------------------------------------------------------------------------- exercise 2


def _exercise_2(spectral_scores: Callable[..., Any], H: np.ndarray, yp: np.ndarray) -> None:
    """Spectral-signature scores match the definition on the lab's activations and on made-up ones,
    without ``dd.spectral_signature_scores``."""
    rng = np.random.default_rng(5)
    H_other = rng.normal(size=(120, 16)) + rng.normal(size=16)
    y_other = rng.integers(0, 3, size=120)
    cases = [("the lab's activations", H, yp), ("activations the check makes up", H_other, y_other)]
    for what, F, y in cases:
        expected = dd.spectral_signature_scores(F, y)
        with forbid(dd.spectral_signature_scores, dd.spectral_signatures):
            got = np.asarray(spectral_scores(F.copy(), y.copy()), dtype=float)
        require(got.shape == expected.shape, f"on {what}: expected one score per row ({len(expected)}), "
                                             f"got shape {got.shape}")
        wrong = [int(c) for c in np.unique(y)
                 if not np.allclose(got[y == c], expected[y == c], rtol=1e-6, atol=1e-9)]
        require(not wrong, f"on {what}: the scores of classes {wrong} differ from the definition")


# --------------------------------------------------------------------------- exercise 3


def _exercise_3(precision_recall_fpr: Callable[..., Any], H: np.ndarray, yp: np.ndarray, poisoned: np.ndarray) -> None:
    """Precision, recall and FPR match the definition on flag masks and poisoned sets the check
    chooses, without ``metrics.detection_metrics``."""
    rng = np.random.default_rng(0)
    n = len(yp)
    other = np.sort(rng.choice(n, size=40, replace=False))
    cases = [("the top spectral scores of class 0", dd.spectral_signatures(H, yp, expected_fraction=0.35,
                                                                          classes=[0]).flags, poisoned),
             ("random flags", rng.random(n) < 0.2, poisoned),
             ("no flags at all", np.zeros(n, dtype=bool), poisoned),
             ("random flags against other poisoned indices", rng.random(n) < 0.1, other)]
    for what, flags, truth in cases:
        m = metrics.detection_metrics(flags, truth)
        with forbid(metrics.detection_metrics, why="this exercise asks you to compute the three rates yourself"):
            got = precision_recall_fpr(flags.copy(), np.array(truth))
        try:
            got = tuple(got)
        except TypeError:
            raise NotSolved("return three numbers: (precision, recall, fpr)") from None
        require(len(got) == 3, "return three numbers: (precision, recall, fpr)")
        wrong = [name for name, value, want in zip(("precision", "recall", "FPR"), got,
                                                   (m.precision, m.recall, m.fpr)) if not _close(value, want)]
        require(not wrong, f"with {what}: {', '.join(wrong)} wrong")


# --------------------------------------------------------------------------- exercise 4


def _reference_mask(H_c: np.ndarray, H_ref_c: np.ndarray, seed: int) -> np.ndarray:
    """The lesson's detector on one class: size test and trusted-reference test."""
    y, y_ref = np.zeros(len(H_c), dtype=int), np.zeros(len(H_ref_c), dtype=int)
    return dd.activation_clustering(H_c, y, max_size=MAX_SIZE, reference=(H_ref_c, y_ref),
                                    max_reference_ratio=MAX_REFERENCE_RATIO, seed=seed).flags


def _two_groups(rng: np.random.Generator, n_main: int, n_other: int, n_ref_main: int, n_ref_other: int,
                dim: int = 24, gap: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Made-up activations of one class: a main group and a second, well separated group, in the
    training rows and in the trusted rows (shuffled)."""
    direction = rng.normal(size=dim)
    direction *= gap / np.linalg.norm(direction)
    centre = rng.normal(size=dim)

    def draw(a, b):
        rows = np.vstack([centre + rng.normal(size=(a, dim)), centre + direction + rng.normal(size=(b, dim))])
        return rows[rng.permutation(len(rows))]
    return draw(n_main, n_other), draw(n_ref_main, n_ref_other)


def _learner_mask(suspicious_cluster: Callable[..., Any], H_c: np.ndarray, H_ref_c: np.ndarray, seed: int,
                  what: str) -> np.ndarray:
    with forbid(dd.activation_clustering, why="this exercise asks you to write the detector yourself"):
        mask = np.asarray(suspicious_cluster(H_c.copy(), H_ref_c.copy(), seed))
    require(mask.dtype == bool and mask.shape == (len(H_c),),
            f"on {what}: return a boolean mask with one entry per row of H_c ({len(H_c)}), "
            f"got dtype {mask.dtype} and shape {mask.shape}")
    return mask


def _compare(mine: np.ndarray, ref: np.ndarray, what: str) -> None:
    if np.array_equal(mine, ref):
        return
    if ref.any() and not mine.any():
        raise NotSolved(f"on {what}: the detector flags a cluster there, yours flags nothing")
    if mine.any() and not ref.any():
        raise NotSolved(f"on {what}: yours flags {mine.sum()} rows, the detector flags nothing there")
    raise NotSolved(f"on {what}: yours flags other rows than the detector's cluster")


def _exercise_4(suspicious_cluster: Callable[..., Any], *, H: np.ndarray, H_val: np.ndarray, yp: np.ndarray,
                ds: Any, config: Any, Xp: np.ndarray, spec: Any, seed: int) -> None:
    """The learner's one-class detector (size test + trusted reference) matches the lesson's on every
    class of the lab (rows shuffled, so the ground truth cannot be looked up) and on made-up classes
    (a trigger, a natural sub-style, a large split); retraining without what it flags on the
    suspect class removes the backdoor and keeps the accuracy."""
    rng = np.random.default_rng(1000 + int(seed))
    cases = []
    for c in range(ds.n_classes):
        rows = np.flatnonzero(yp == c)
        order = rng.permutation(len(rows))
        cases.append((f"the training activations of class {c} (rows shuffled)",
                      H[rows[order]], H_val[ds.y_val == c]))
    made_up = np.random.default_rng(7)
    cases.append(("a made-up class whose small cluster the trusted rows never join (a trigger)",
                  *_two_groups(made_up, 130, 40, 40, 0)))
    cases.append(("a made-up class whose small cluster the trusted rows join as often (a natural sub-style)",
                  *_two_groups(made_up, 130, 40, 30, 10)))
    cases.append(("a made-up class split in two large clusters, one the trusted rows never join",
                  *_two_groups(made_up, 100, 75, 40, 0)))
    for what, H_c, H_ref_c in cases:
        ref = _reference_mask(H_c, H_ref_c, seed)
        _compare(_learner_mask(suspicious_cluster, H_c, H_ref_c, seed, what), ref, what)

    rows = np.flatnonzero(yp == spec.target)
    flags = np.zeros(len(yp), dtype=bool)
    flags[rows] = _learner_mask(suspicious_cluster, H[rows], H_val[ds.y_val == spec.target], seed,
                                f"class {spec.target}")
    require(flags.sum() <= 0.10 * len(yp), f"{flags.sum()} examples removed, more than 10% of the training set")
    result = dd.retrain_without(config, Xp, yp, flags, ds.X_test, ds.y_test, backdoor=spec)
    require(result.asr <= 0.20, f"attack success rate after retraining is {result.asr:.3f}, not <= 0.20")
    require(result.accuracy >= 0.94, f"test accuracy after retraining is {result.accuracy:.3f}, not >= 0.94")


check = Checker("lab03", {
    1: ("class-balance gaps", _exercise_1),
    2: ("spectral scores", _exercise_2),
    3: ("precision, recall, FPR", _exercise_3),
    4: ("remove the backdoor", _exercise_4),
})
