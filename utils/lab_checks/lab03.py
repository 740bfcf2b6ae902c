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


def _budget_reference(H: np.ndarray, y: np.ndarray, y_ref: np.ndarray, factor: float) -> dict[int, tuple[np.ndarray, set[int]]]:
    """Per class: its rows sorted by decreasing spectral score, and the allowed flag counts
    (factor × ε_c × n_c rounded down or up, ε_c the class's excess share over the trusted set, at least 0)."""
    scores = dd.spectral_signature_scores(H, y)
    n_classes = int(max(y.max(), y_ref.max())) + 1
    shares, ref_shares = dd.class_shares(y, n_classes), dd.class_shares(y_ref, n_classes)
    out = {}
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        eps = max(0.0, 1.0 - ref_shares[c] / shares[c])
        x = factor * eps * len(rows)
        # rounded down or up, with room for float round-off when x is (nearly) a whole number
        allowed = {min(len(rows), k) for k in range(max(0, int(np.floor(x - 1e-6))), int(np.ceil(x + 1e-6)) + 1)}
        if eps == 0:
            allowed = {0}
        out[int(c)] = (rows[np.argsort(-scores[rows], kind="stable")], allowed)
    return out


def _exercise_2(spectral_budget_flags: Callable[..., Any], H: np.ndarray, yp: np.ndarray, ds: Any) -> None:
    """Spectral signatures with a per-class removal budget from the class balance: in each class, the
    factor × ε_c × n_c highest scores, ε_c = 1 − (trusted share)/(training share), at least 0. Checked
    on the lab's activations and on made-up ones (other factor, other sizes), without
    ``dd.spectral_signatures``."""
    rng = np.random.default_rng(5)
    y_other = rng.choice(4, size=240, p=[0.4, 0.2, 0.2, 0.2])
    H_other = rng.normal(size=(240, 12)) + np.eye(4, 12)[y_other] * 3
    y_ref_other = rng.choice(4, size=80)
    cases = [("the lab's activations (factor 1.5)", H, yp, ds.y_val, 1.5),
             ("activations the check makes up (factor 2)", H_other, y_other, y_ref_other, 2.0)]
    for what, F, y, y_ref, factor in cases:
        ref = _budget_reference(F, y, y_ref, factor)
        with forbid(dd.spectral_signatures, why="this exercise asks you to apply the removal budget yourself"):
            got = np.asarray(spectral_budget_flags(F.copy(), y.copy(), y_ref.copy(), factor=factor))
        require(got.dtype == bool and got.shape == (len(y),),
                f"on {what}: return a boolean mask with one entry per row ({len(y)}), "
                f"got dtype {got.dtype} and shape {got.shape}")
        wrong_count, wrong_rows = [], []
        for c, (order, allowed) in ref.items():
            k = int(got[y == c].sum())
            if k not in allowed:
                wrong_count.append(c)
            elif not got[order[:k]].all():
                wrong_rows.append(c)
        require(not wrong_count, f"on {what}: classes {wrong_count} flag the wrong number of rows "
                                 "(the budget is factor × ε × the class size, ε from the class shares)")
        require(not wrong_rows, f"on {what}: in classes {wrong_rows} the flagged rows are not the highest scores")


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


# --------------------------------------------------------------------------- exercise 5

#: Exercise 5: the most of the training set an attacker may poison, the most of the poison each
#: defense may find for the attack to count as evading it (the lesson: 2% poison already gives an
#: ASR of 0.86 or more, so four fifths of the poison left keeps a backdoor), and what the backdoor
#: must still do.
MAX_POISON_RATE = 0.20
MAX_EVADED_RECALL = 0.20
MIN_ASR = 0.80
MIN_ACCURACY = 0.94
#: The defenses of exercise 5 (layer 0, as in the lesson and exercise 4).
EVADED = ("spectral signatures", "activation clustering + trusted reference")


def attack_outcome(spec: Any, ds: Any, config: Any, seed: int) -> dict[str, Any]:
    """Train (cached) on ``spec``'s poisoned training set and measure the backdoor and the two
    defenses of exercise 5 (the paper's spectral rule with ε = 5%, activation clustering with the
    size test and the trusted reference). Used by exercises 5 and 6 (taught in 03_data_defenses)."""
    from utils import models, training
    from utils.attacks import poisoning

    Xp, yp, poisoned = spec.poison(ds.X_train, ds.y_train)
    model = training.fit(config, Xp, yp, ds.n_classes)
    scores = poisoning.evaluate_backdoor(model, ds.X_test, ds.y_test, spec.trigger, spec.target)
    found = dd.standard_detectors(model, Xp, yp, ds.X_val, ds.y_val, n_classes=ds.n_classes, layer=0,
                                  max_size=MAX_SIZE, seed=seed, only=EVADED)
    return dict(Xp=Xp, yp=yp, poisoned=poisoned, model=model, asr=scores["asr"],
                accuracy=scores["clean_accuracy"],
                H=models.hidden_activations(model, Xp, layer=0),
                H_val=models.hidden_activations(model, ds.X_val, layer=0),
                recall={name: d.metrics(poisoned).recall for name, d in found.items()})


def _attack(evasive: Any) -> Any:
    from utils.attacks import poisoning

    if not isinstance(evasive, poisoning.BackdoorSpec):
        raise NotSolved(f"evasive is a {type(evasive).__name__}: make it a poisoning.BackdoorSpec "
                        "(trigger, target, poison_rate)")
    require(0 < evasive.poison_rate <= MAX_POISON_RATE,
            f"poison_rate {evasive.poison_rate} is outside (0, {MAX_POISON_RATE}]: the attacker controls at most "
            f"{MAX_POISON_RATE:.0%} of the training set")
    return evasive


def _exercise_5(evasive: Any, *, ds: Any, config: Any, seed: int) -> None:
    """The learner's attack keeps a working backdoor (ASR, clean accuracy) on a model trained on its
    poisoned set, while both defenses find at most a fifth of its poison."""
    out = attack_outcome(_attack(evasive), ds, config, seed)
    require(out["asr"] >= MIN_ASR, f"the backdoor's attack success rate is {out['asr']:.3f}, not >= {MIN_ASR}: "
                                   "an attack that evades by not working is no attack")
    require(out["accuracy"] >= MIN_ACCURACY, f"clean test accuracy is {out['accuracy']:.3f}, not >= {MIN_ACCURACY}: "
                                             "the backdoor must stay hidden")
    caught = [f"{name} (recall {r:.2f})" for name, r in out["recall"].items() if r > MAX_EVADED_RECALL]
    require(not caught, f"not evaded: {', '.join(caught)} finds more than {MAX_EVADED_RECALL:.0%} of the poison")


# --------------------------------------------------------------------------- exercise 6

#: Exercise 6: what the repaired detector must achieve.
MIN_REPAIR_RECALL = 0.90
MAX_REPAIR_FPR = 0.05
MAX_REPAIR_ASR = 0.20


def _repair_flags(detector: Callable[..., Any], H: np.ndarray, y: np.ndarray, H_ref: np.ndarray,
                  y_ref: np.ndarray, seed: int, what: str) -> np.ndarray:
    flags = np.asarray(detector(H.copy(), y.copy(), H_ref.copy(), y_ref.copy(), seed))
    require(flags.dtype == bool and flags.shape == (len(y),),
            f"on {what}: return a boolean mask with one entry per training row ({len(y)}), "
            f"got dtype {flags.dtype} and shape {flags.shape}")
    return flags


def _exercise_6(repaired_detector: Callable[..., Any], *, evasive: Any, ds: Any, config: Any, H: np.ndarray,
                H_val: np.ndarray, yp: np.ndarray, poisoned: np.ndarray, seed: int) -> None:
    """The learner's detector finds the evasive attack of exercise 5 again (recall, FPR, ASR after
    retraining), still finds the lab's standard attack, and flags few digits of a clean training set."""
    from utils import models, training

    out = attack_outcome(_attack(evasive), ds, config, seed)
    if out["asr"] < MIN_ASR or max(out["recall"].values()) > MAX_EVADED_RECALL:
        raise NotSolved("solve exercise 5 first: evasive must be an attack that evades both defenses")
    clean_model = training.fit(config, ds.X_train, ds.y_train, ds.n_classes)
    cases = [("your evasive attack", out["H"], out["yp"], out["H_val"], out["poisoned"]),
             ("the lab's standard attack", H, yp, H_val, poisoned),
             ("a clean training set", models.hidden_activations(clean_model, ds.X_train, layer=0), ds.y_train,
              models.hidden_activations(clean_model, ds.X_val, layer=0), None)]
    evasive_flags = None
    for what, F, y, F_ref, truth in cases:
        flags = _repair_flags(repaired_detector, F, y, F_ref, ds.y_val, seed, what)
        if truth is None:
            fpr = flags.mean()
            require(fpr <= MAX_REPAIR_FPR, f"on {what}: {fpr:.1%} of the digits flagged, more than {MAX_REPAIR_FPR:.0%}")
            continue
        m = metrics.detection_metrics(flags, truth)
        require(m.recall >= MIN_REPAIR_RECALL, f"on {what}: recall {m.recall:.2f}, not >= {MIN_REPAIR_RECALL}")
        require(m.fpr <= MAX_REPAIR_FPR, f"on {what}: false-positive rate {m.fpr:.3f}, not <= {MAX_REPAIR_FPR}")
        if evasive_flags is None:
            evasive_flags = flags
    result = dd.retrain_without(config, out["Xp"], out["yp"], evasive_flags, ds.X_test, ds.y_test, backdoor=evasive)
    require(result.asr <= MAX_REPAIR_ASR, f"after retraining without what it flags on your evasive attack, the "
                                          f"attack success rate is {result.asr:.3f}, not <= {MAX_REPAIR_ASR}")


check = Checker("lab03", {
    1: ("class-balance gaps", _exercise_1),
    2: ("spectral removal budget", _exercise_2),
    3: ("precision, recall, FPR", _exercise_3),
    4: ("remove the backdoor", _exercise_4),
    5: ("break the defense", _exercise_5),
    6: ("repair the defense", _exercise_6),
})
