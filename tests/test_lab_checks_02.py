"""The checks of lab 02 (utils/lab_checks/lab02.py): the lab's stubs fail, the solution's answers and
other correct answers pass, and plausible wrong answers (each named) fail."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import utils
from utils import data, training
from utils.attacks import poisoning
from utils.course.grading import FAIL_MARK, PASS_MARK
from utils.lab_checks import lab02

pytestmark = pytest.mark.notebooks  # over 10 s: trains (or loads) the models of the lab

COUNTS = [2, 4, 8, 12, 16, 20, 24, 32]


@pytest.fixture(scope="module")
def lab():
    """The data, attack and models of the solution notebook, seed 0."""
    utils.setup(0, plots=False)
    ds = data.load("digits", seed=0)
    attack = dataclasses.replace(poisoning.STANDARD_BACKDOOR, seed=0)
    config = training.preset("mlp", seed=0)
    X_poison, y_poison, _ = attack.poison(ds.X_train, ds.y_train)
    return dict(ds=ds, attack=attack,
                clean_model=training.fit(config, ds.X_train, ds.y_train, ds.n_classes),
                backdoored=training.fit(config, X_poison, y_poison, ds.n_classes),
                sweep_cfg=training.preset("mlp", epochs=20, seed=0))


def _run(capsys, n, answer, **context):
    """Run check n and return (result, printed line)."""
    ok = lab02.check(n, answer, **context)
    return ok, capsys.readouterr().out


def _passes(capsys, n, answer, **context):
    ok, out = _run(capsys, n, answer, **context)
    assert ok is True and PASS_MARK in out, out


def _fails(capsys, n, answer, **context):
    ok, out = _run(capsys, n, answer, **context)
    assert ok is False and FAIL_MARK in out, out
    return out


# --------------------------------------------------------------------------- exercise 1

def _board(size, dtype, bright=0):
    return (np.indices((size, size)).sum(0) % 2 == bright).astype(dtype)


def stamp_solution(X, size, row, col):
    """The solution's stamp."""
    out = X.copy()
    out[:, :, row:row + size, col:col + size] = _board(size, X.dtype)
    return out


def stamp_loops(X, size, row, col):
    """Correct too: pixel by pixel, on np.array(X)."""
    out = np.array(X)
    for i in range(size):
        for j in range(size):
            out[:, 0, row + i, col + j] = 1.0 if (i + j) % 2 == 0 else 0.0
    return out


def stamp_mask(X, size, row, col):
    """Correct too: a full-image mask and np.where."""
    mask = np.zeros(X.shape[2:], dtype=bool)
    mask[row:row + size, col:col + size] = True
    board = np.zeros(X.shape[2:], dtype=X.dtype)
    board[row:row + size, col:col + size] = _board(size, X.dtype)
    return np.where(mask, board, X).astype(X.dtype)


def stamp_inverted(X, size, row, col):
    out = X.copy()
    out[:, :, row:row + size, col:col + size] = _board(size, X.dtype, bright=1)
    return out


def stamp_in_place(X, size, row, col):
    X[:, :, row:row + size, col:col + size] = _board(size, X.dtype)
    return X


def stamp_row_col_swapped(X, size, row, col):
    out = X.copy()
    out[:, :, col:col + size, row:row + size] = _board(size, X.dtype)
    return out


def stamp_bright_only(X, size, row, col):
    out = X.copy()
    out[:, :, row:row + size, col:col + size][:, :, _board(size, bool)] = 1.0
    return out


def stamp_fixed_size(X, size, row, col):
    return stamp_solution(X, 3, row, col)


def stamp_added(X, size, row, col):
    out = X.copy()
    out[:, :, row:row + size, col:col + size] += _board(size, X.dtype)
    return np.clip(out, 0, 1)


def stamp_library(X, size, row, col):
    return poisoning.apply_trigger(X, poisoning.Trigger(size, row, col, pattern="checker"))


STAMP_WRONG = {
    "stub (returns X.copy())": lambda X, size, row, col: X.copy(),
    "inverted (dark top-left pixel)": stamp_inverted,
    "draws on X itself": stamp_in_place,
    "row and column swapped": stamp_row_col_swapped,
    "only the bright pixels drawn": stamp_bright_only,
    "always a 3×3 square": stamp_fixed_size,
    "added to the image, then clipped": stamp_added,
    "calls poisoning.apply_trigger": stamp_library,
}


@pytest.mark.parametrize("name", STAMP_WRONG)
def test_exercise_1_wrong(capsys, lab, name):
    out = _fails(capsys, 1, STAMP_WRONG[name], ds=lab["ds"])
    assert "(the trigger)" in out
    if name == "draws on X itself":
        assert "work on a copy" in out
    if name.startswith("calls"):
        assert "your code calls utils.attacks.poisoning.apply_trigger" in out


@pytest.mark.parametrize("answer", [stamp_solution, stamp_loops, stamp_mask], ids=lambda f: f.__name__)
def test_exercise_1_right(capsys, lab, answer):
    _passes(capsys, 1, answer, ds=lab["ds"])


# --------------------------------------------------------------------------- exercise 2

def asr_solution(model, X, y, trigger, target):
    """The solution's my_asr."""
    others = y != target
    preds = training.predict(model, poisoning.apply_trigger(X[others], trigger))
    return float((preds == target).mean())


def asr_own_stamp(model, X, y, trigger, target):
    """Correct too: exercise 1's stamp, the whole set predicted, a numpy float returned."""
    preds = training.predict(model, stamp_solution(X, trigger.size, trigger.row, trigger.col))
    return np.mean(preds[y != target] == target)


ASR_WRONG = {
    "stub (0.0)": lambda model, X, y, trigger, target: 0.0,
    "counts the target class too": lambda model, X, y, trigger, target: float(
        (training.predict(model, poisoning.apply_trigger(X, trigger)) == target).mean()),
    "forgets the trigger": lambda model, X, y, trigger, target: float(
        (training.predict(model, X[y != target]) == target).mean()),
    "a count, not a share": lambda model, X, y, trigger, target: float(
        (training.predict(model, poisoning.apply_trigger(X[y != target], trigger)) == target).sum()),
    "share no longer classified correctly": lambda model, X, y, trigger, target: float(
        (training.predict(model, poisoning.apply_trigger(X[y != target], trigger)) != y[y != target]).mean()),
    "calls poisoning.attack_success_rate": lambda model, X, y, trigger, target: poisoning.attack_success_rate(
        lambda Z: training.predict(model, Z), X, y, trigger, target),
}


@pytest.mark.parametrize("name", ASR_WRONG)
def test_exercise_2_wrong(capsys, lab, name):
    ctx = {k: lab[k] for k in ("ds", "attack", "backdoored", "clean_model")}
    out = _fails(capsys, 2, ASR_WRONG[name], **ctx)
    assert "(attack success rate)" in out and "expected" not in out
    if name.startswith("calls"):
        assert "your code calls utils.attacks.poisoning.attack_success_rate" in out


@pytest.mark.parametrize("answer", [asr_solution, asr_own_stamp], ids=lambda f: f.__name__)
def test_exercise_2_right(capsys, lab, answer):
    _passes(capsys, 2, answer, **{k: lab[k] for k in ("ds", "attack", "backdoored", "clean_model")})


# --------------------------------------------------------------------------- exercise 3

@pytest.fixture(scope="module")
def asrs(lab):
    """The ASR of the sweep model for each count, measured as the solution does (cached models)."""
    ds, attack, n = lab["ds"], lab["attack"], len(lab["ds"].y_train)
    out = {}
    for k in COUNTS:
        Xp, yp, _ = poisoning.poison_backdoor(ds.X_train, ds.y_train, attack.trigger, attack.target, k / n)
        model = training.fit(lab["sweep_cfg"], Xp, yp, ds.n_classes)
        out[k] = asr_solution(model, ds.X_test, ds.y_test, attack.trigger, attack.target)
    return out


def _first(asrs, bar=0.95):
    return next(k for k in COUNTS if asrs[k] >= bar)


def _upto(asrs, k):
    return {c: asrs[c] for c in COUNTS[:COUNTS.index(k) + 1]}


def _ctx(lab):
    return dict(ds=lab["ds"], attack=lab["attack"], sweep_cfg=lab["sweep_cfg"], counts=COUNTS)


def _all_digits_asrs(lab):
    """The sweep measured on every triggered test digit, the target class included."""
    ds, attack, n = lab["ds"], lab["attack"], len(lab["ds"].y_train)
    out = {}
    for k in COUNTS:
        Xp, yp, _ = poisoning.poison_backdoor(ds.X_train, ds.y_train, attack.trigger, attack.target, k / n)
        model = training.fit(lab["sweep_cfg"], Xp, yp, ds.n_classes)
        out[k] = float((training.predict(model, poisoning.apply_trigger(ds.X_test, attack.trigger))
                        == attack.target).mean())
        if out[k] >= 0.95:
            return k, out
    return None, out


SWEEP_WRONG = {
    "stub (None, empty sweep)": lambda lab, a: (None, {}),
    "the right count guessed, no sweep": lambda lab, a: (_first(a), {}),
    "the right count, sweep values made up": lambda lab, a: (
        _first(a), {k: (1.0 if k == _first(a) else 0.5) for k in COUNTS[:COUNTS.index(_first(a)) + 1]}),
    "off by one: the last count below the bar": lambda lab, a: (
        COUNTS[COUNTS.index(_first(a)) - 1], _upto(a, COUNTS[COUNTS.index(_first(a)) - 1])),
    "the first count above 0.90 (wrong bar)": lambda lab, a: (_first(a, 0.90), _upto(a, _first(a, 0.90))),
    "the largest count (no stopping)": lambda lab, a: (COUNTS[-1], dict(a)),
    "ASR over every test digit, target class included": lambda lab, a: _all_digits_asrs(lab),
}


@pytest.mark.parametrize("name", SWEEP_WRONG)
def test_exercise_3_wrong(capsys, lab, asrs, name):
    count, sweep = SWEEP_WRONG[name](lab, asrs)
    if name == "the first count above 0.90 (wrong bar)":
        assert count != _first(asrs)
    out = _fails(capsys, 3, count, sweep=sweep, **_ctx(lab))
    assert "(smallest poison count)" in out
    assert f"{asrs[_first(asrs)]:.3f}" not in out and "only" not in out and "already" not in out


def test_exercise_3_right(capsys, lab, asrs):
    _passes(capsys, 3, _first(asrs), sweep=_upto(asrs, _first(asrs)), **_ctx(lab))


def test_exercise_3_full_sweep(capsys, lab, asrs):
    """Correct too: every count measured (no early stop), with evaluate_backdoor, numpy floats."""
    ds, attack, n = lab["ds"], lab["attack"], len(lab["ds"].y_train)
    sweep = {}
    for k in COUNTS:
        Xp, yp, _ = poisoning.poison_backdoor(ds.X_train, ds.y_train, attack.trigger, attack.target, k / n)
        model = training.fit(lab["sweep_cfg"], Xp, yp, ds.n_classes)
        sweep[k] = np.float32(poisoning.evaluate_backdoor(model, ds.X_test, ds.y_test, attack.trigger,
                                                          attack.target)["asr"])
    _passes(capsys, 3, min(k for k in COUNTS if sweep[k] >= 0.95), sweep=sweep, **_ctx(lab))


# --------------------------------------------------------------------------- exercise 4


def scanner(rows=range(6), cols=range(6), pattern="checker", score="asr", swap=False, target_rule="scan"):
    """find_trigger of the exercise (the defaults) or with one slip."""
    def find(model, X, y):
        best, found = -1.0, None
        for row in rows:
            for col in cols:
                preds = training.predict(model, poisoning.apply_trigger(X, poisoning.Trigger(3, row, col, pattern)))
                for target in range(10):
                    if score == "asr":
                        s = (preds[y != target] == target).mean()
                    else:  # every image, those of the target class too
                        s = (preds == target).mean()
                    if s > best:
                        best, found = s, (row, col, target)
        row, col, target = found
        if target_rule == "clean mode":
            target = int(np.bincount(training.predict(model, X)).argmax())
        return (col, row, target) if swap else (row, col, target)
    return find


def find_by_flips(model, X, y):
    """Right: the place where the most predictions change, its target the most common new prediction;
    numpy integers in the tuple."""
    clean = training.predict(model, X)
    scores = {}
    for row in range(6):
        for col in range(6):
            preds = training.predict(model, stamp_solution(X, 3, row, col))
            scores[row, col] = ((preds != clean).mean(), preds)
    (row, col), (_, preds) = max(scores.items(), key=lambda kv: kv[1][0])
    return np.int64(row), np.int64(col), np.int64(np.bincount(preds[clean != preds]).argmax())


def cheat(model, X, y):
    spec = lab02._hidden_spec(0, 0)
    return spec.trigger.row, spec.trigger.col, spec.target


@pytest.mark.parametrize("answer, ok, says", [
    (lambda model, X, y: None, False, "should return a tuple"),
    (scanner(), True, ""),
    (scanner(score="all"), True, ""),
    (find_by_flips, True, ""),
    (scanner(rows=[0], cols=[0]), False, "is not where the trigger sits"),
    (scanner(rows=range(5), cols=range(5)), False, "is not where the trigger sits"),
    (scanner(swap=True), False, "is not where the trigger sits"),
    (scanner(target_rule="clean mode"), False, "is not the class"),
    (lambda model, X, y: (4, 5), False, "should return a tuple"),
    (cheat, False, "not from the check"),
], ids=["stub", "solution", "variant: share of all images, the target class's own too",
        "variant: the place that changes most predictions", "only the top-left corner",
        "range(5): the last row and column never tried", "(col, row) swapped",
        "target: the most common prediction on clean images",
        "(row, col) without the target", "reads the check's hidden spec"])
def test_exercise_4(lab, capsys, answer, ok, says):
    ok_, out = _run(capsys, 4, answer, ds=lab["ds"], seed=0)
    assert ok_ is ok and (PASS_MARK in out if ok else FAIL_MARK in out and says in out), out


def test_exercise_4_hidden_backdoors_differ_and_work(lab):
    """The two hidden backdoors sit at different places with different targets, off the diagonal (so a
    (col, row) slip is wrong), one of them in the last row or column; each reaches an ASR above 0.9."""
    ds = lab["ds"]
    specs = [lab02._hidden_spec(0, w) for w in (0, 1)]
    places = [(s.trigger.row, s.trigger.col) for s in specs]
    assert places[0] != places[1] and specs[0].target != specs[1].target
    assert all(r != c for r, c in places) and 5 in places[0]
    for w, s in enumerate(specs):
        model = lab02.suspect_model(ds, 0, w)
        assert poisoning.evaluate_backdoor(model, ds.X_val, ds.y_val, s.trigger, s.target)["asr"] > 0.9
