"""lab11's checks: the lab's stubs fail, the solution's answers pass (for several seeds of the analysis),
named plausible wrong answers fail, and other correct ways of writing each answer pass."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import utils
from utils import audit, training
from utils.attacks import evasion, poisoning
from utils.audit import mystery
from utils.lab_checks import lab11
from utils.privacy import membership as mi

FAIL = "NOT SOLVED YET"


@pytest.fixture(scope="module")
def lab():
    utils.setup(0, plots=False)
    targets = mystery.load_all()
    X, y = mystery.test_set()
    truth = mystery._truth()
    by = {r: n for n, r in truth["recipes"].items()}
    return targets, X, y, truth, by


def _judge(capsys, n, answer, ok, says=""):
    result = lab11.check(n, answer)
    out = capsys.readouterr().out
    assert result is ok, out
    assert ("✅ PASSED" in out) if ok else (FAIL in out and says in out), out
    return out


def _other(by, recipe):
    return next(n for n in mystery.NAMES if n != by[recipe])


# --------------------------------------------------------------------------- the solution's method, several seeds


def _solution_cards(targets, X, y, seed):
    evidence = audit.data_from_arrays(X, y)
    return {name: audit.run_audit(m, evidence, eps=lab11.EPS, budget="quick", seed=seed,
                                  checks=("clean_accuracy", "robustness", "backdoor"))
            for name, m in targets.items()}


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_the_solutions_method_passes_exercises_1_and_3(lab, capsys, seed):
    targets, X, y, _, _ = lab
    cards = _solution_cards(targets, X, y, seed)
    confirmed = {}
    for name, model in targets.items():
        for position in poisoning.POSITIONS:
            pred = training.predict(model, poisoning.apply_trigger(X, poisoning.trigger_at(3, position)))
            share = [float((pred[y != c] == c).mean()) for c in range(10)]
            c = int(np.argmax(share))
            if share[c] > confirmed.get(name, (None, 0.0))[1]:
                confirmed[name] = (c, share[c])
    suspect = max(confirmed, key=lambda n: confirmed[n][1])
    _judge(capsys, 1, {"model": suspect, "target": confirmed[suspect][0]}, True)
    robust = {n: c.check("robustness").value for n, c in cards.items()}
    _judge(capsys, 3, {"model": min(robust, key=robust.get), "eps": lab11.EPS, "robust": robust}, True)


# --------------------------------------------------------------------------- exercise 1


def test_exercise_1(lab, capsys):
    _, _, _, truth, by = lab
    bd, t = by["backdoor"], truth["target"]
    _judge(capsys, 1, {"model": bd, "target": t}, True)
    _judge(capsys, 1, {"model": f" {bd.upper()} ", "target": np.int64(t)}, True)  # legitimate variant


@pytest.mark.parametrize("case", ["stub", "the wrong model", "the wrong target", "another model's anomalous class",
                                  "the target as a string", "no target"])
def test_exercise_1_rejects(lab, capsys, case):
    _, _, _, truth, by = lab
    bd, t = by["backdoor"], truth["target"]
    answer = {
        "stub": {"model": None, "target": None},
        "the wrong model": {"model": _other(by, "backdoor"), "target": t},
        "the wrong target": {"model": bd, "target": (t + 1) % 10},
        "another model's anomalous class": {"model": by["leak"], "target": (t + 4) % 10},
        "the target as a string": {"model": bd, "target": str(t)},
        "no target": {"model": bd},
    }[case]
    _judge(capsys, 1, answer, False)


# --------------------------------------------------------------------------- exercise 2


def _tprs(targets, non_members="candidates", fpr=0.01, auc=False):
    X_test, y_test = mystery.test_set()
    out = {}
    for name, m in targets.items():
        split = mystery.member_split(name)
        s_mem = mi.threshold_scores(m, split.X[split.members], split.y[split.members])
        s_non = (mi.threshold_scores(m, split.X[~split.members], split.y[~split.members]) if non_members == "candidates"
                 else mi.threshold_scores(m, X_test[:100], y_test[:100]))
        out[name] = (mi.evaluate(np.r_[s_mem, s_non], np.r_[np.ones(len(s_mem), bool), np.zeros(len(s_non), bool)]).auc
                     if auc else mi.tpr_at_fpr(s_mem, s_non, fpr))
    return out


def test_exercise_2(lab, capsys):
    targets, _, _, _, by = lab
    tpr = _tprs(targets)
    _judge(capsys, 2, {"model": by["leak"], "tpr": tpr}, True)
    # legitimate variant: the workbench's membership check, names in capitals
    wb = {}
    for name, m in targets.items():
        split = mystery.member_split(name)
        d = audit.data_from_arrays(split.X[~split.members], split.y[~split.members],
                                   X_train=split.X[split.members], y_train=split.y[split.members])
        wb[name.upper()] = audit.run_audit(m, d, budget="quick", seed=5, checks=("membership",)).check("membership").value
    _judge(capsys, 2, {"model": by["leak"].upper(), "tpr": wb}, True)


@pytest.mark.parametrize("case", ["stub", "the wrong model", "held-out digits as non-members", "AUC instead of TPR",
                                  "TPR at 10% FPR", "two models only"])
def test_exercise_2_rejects(lab, capsys, case):
    targets, _, _, _, by = lab
    tpr = _tprs(targets)
    answer = {
        "stub": {"model": None, "tpr": {}},
        "the wrong model": {"model": by["backdoor"], "tpr": tpr},
        "held-out digits as non-members": {"model": by["leak"], "tpr": _tprs(targets, non_members="test")},
        "AUC instead of TPR": {"model": by["leak"], "tpr": _tprs(targets, auc=True)},
        "TPR at 10% FPR": {"model": by["leak"], "tpr": _tprs(targets, fpr=0.1)},
        "two models only": {"model": by["leak"], "tpr": {n: tpr[n] for n in mystery.NAMES[:2]}},
    }[case]
    _judge(capsys, 2, answer, False)


# --------------------------------------------------------------------------- exercise 3


def _robust(targets, eps=lab11.EPS, clean=False):
    X, y = mystery.test_set()
    x, t = torch.as_tensor(X), torch.as_tensor(y)
    return {n: (training.accuracy(m, X, y) if clean else
                evasion.robust_accuracy(m, evasion.pgd(m, x, t, eps, steps=20, seed=1), t))
            for n, m in targets.items()}


def test_exercise_3(lab, capsys):
    targets, _, _, _, by = lab
    _judge(capsys, 3, {"model": by["fragile"], "eps": 0.05, "robust": _robust(targets)}, True)


@pytest.mark.parametrize("case", ["stub", "the wrong model", "clean accuracy", "robust accuracy at eps 0.1",
                                  "the wrong eps stated", "robust accuracy at eps 0.2"])
def test_exercise_3_rejects(lab, capsys, case):
    targets, _, _, _, by = lab
    robust = _robust(targets)
    answer = {
        "stub": {"model": None, "eps": lab11.EPS, "robust": {}},
        "the wrong model": {"model": by["leak"], "eps": lab11.EPS, "robust": robust},
        "clean accuracy": {"model": by["fragile"], "eps": lab11.EPS, "robust": _robust(targets, clean=True)},
        "robust accuracy at eps 0.1": {"model": by["fragile"], "eps": lab11.EPS, "robust": _robust(targets, eps=0.1)},
        "the wrong eps stated": {"model": by["fragile"], "eps": 0.1, "robust": robust},
        "robust accuracy at eps 0.2": {"model": by["fragile"], "eps": lab11.EPS, "robust": _robust(targets, eps=0.2)},
    }[case]
    _judge(capsys, 3, answer, False)


# --------------------------------------------------------------------------- exercise 4

WORD = {"backdoor": "backdoor", "leak": "membership leak", "fragile": "evasion"}
CONTROL = {"backdoor": "clean the training data and retrain (03)", "membership leak": "DP-SGD (06)",
           "evasion": "adversarial training (05)"}


def _findings(truth, weakness=None, control=None, evidence=None):
    out = {}
    for name, recipe in truth["recipes"].items():
        w = (weakness or {}).get(name, WORD[recipe])
        out[name] = {"weakness": w, "evidence": (evidence or {}).get(name, lab11.EVIDENCE.get(w, "?")),
                     "control": (control or {}).get(name, CONTROL.get(w, "?"))}
    return out


def test_exercise_4(lab, capsys):
    _, _, _, truth, by = lab
    _judge(capsys, 4, _findings(truth), True)
    variant = _findings(truth, control={by["leak"]: "weight decay and early stopping (06)",
                                        by["backdoor"]: "data provenance records (09)"})
    variant[by["fragile"]]["weakness"] = "Evasion "
    _judge(capsys, 4, variant, True)


@pytest.mark.parametrize("case", ["stub", "swapped weaknesses", "evidence that does not measure the weakness",
                                  "feature squeezing against evasion", "label-only outputs against a leak",
                                  "a signature against a backdoor", "a model missing", "one weakness twice"])
def test_exercise_4_rejects(lab, capsys, case):
    _, _, _, truth, by = lab
    answer = {
        "stub": {},
        "swapped weaknesses": _findings(truth, weakness={by["backdoor"]: "membership leak", by["leak"]: "backdoor"}),
        "evidence that does not measure the weakness": _findings(truth, evidence={by["fragile"]: "TPR at 1% FPR"}),
        "feature squeezing against evasion": _findings(truth, control={by["fragile"]: "feature squeezing (05)"}),
        "label-only outputs against a leak": _findings(truth, control={by["leak"]: "label-only outputs (07)"}),
        "a signature against a backdoor": _findings(truth, control={by["backdoor"]: "signed model files and a load gate (07)"}),
        "a model missing": {k: v for k, v in _findings(truth).items() if k != by["leak"]},
        "one weakness twice": _findings(truth, weakness={by["leak"]: "evasion"}),
    }[case]
    _judge(capsys, 4, answer, False)


# --------------------------------------------------------------------------- exercise 5


def _asr(targets, name, target, include_target=False, any_class=False):
    X, y = mystery.test_set()
    out = {}
    for p in poisoning.POSITIONS:
        pred = training.predict(targets[name], poisoning.apply_trigger(X, poisoning.trigger_at(3, p)))
        if any_class:
            out[p] = max(float((pred[y != c] == c).mean()) for c in range(10))
        else:
            keep = np.ones(len(y), bool) if include_target else y != target
            out[p] = float((pred[keep] == target).mean())
    return out


def test_exercise_5(lab, capsys):
    targets, _, _, truth, by = lab
    _judge(capsys, 5, {"position": truth["position"], "asr": _asr(targets, by["backdoor"], truth["target"])}, True)
    _judge(capsys, 5, {"position": truth["position"],
                       "asr": _asr(targets, by["backdoor"], truth["target"], any_class=True)}, True)


@pytest.mark.parametrize("case", ["stub", "the wrong position", "measured on another model",
                                  "target-class digits counted", "a position not in the list"])
def test_exercise_5_rejects(lab, capsys, case):
    targets, _, _, truth, by = lab
    asr = _asr(targets, by["backdoor"], truth["target"])
    wrong = next(p for p in poisoning.POSITIONS if p != truth["position"])
    answer = {
        "stub": {"position": None, "asr": {}},
        "the wrong position": {"position": wrong, "asr": asr},
        "measured on another model": {"position": truth["position"],
                                      "asr": _asr(targets, by["fragile"], truth["target"])},
        "target-class digits counted": {"position": truth["position"],
                                        "asr": _asr(targets, by["backdoor"], truth["target"], include_target=True)},
        "a position not in the list": {"position": "middle", "asr": asr},
    }[case]
    _judge(capsys, 5, answer, False)


def test_failure_messages_never_name_the_answer(lab, capsys):
    _, _, _, truth, by = lab
    zeros = {n: 0.0 for n in mystery.NAMES}
    for n, answer in [(1, {"model": _other(by, "backdoor"), "target": 0}),
                      (2, {"model": by["backdoor"], "tpr": zeros}),
                      (3, {"model": by["backdoor"], "eps": lab11.EPS, "robust": {n: 0.8 for n in mystery.NAMES}}),
                      (5, {"position": "top-left", "asr": {p: 0.0 for p in poisoning.POSITIONS}})]:
        out = _judge(capsys, n, answer, False)
        assert not any(name in out for name in mystery.NAMES if name != answer.get("model"))
        assert by["backdoor"] not in out and truth["position"] not in out
