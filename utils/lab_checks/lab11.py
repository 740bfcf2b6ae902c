"""Checks of labs/11_capstone_lab.ipynb (taught in notebooks/11_capstone.ipynb).

The lab's answers (which mystery model has which weakness, the backdoor's target class and trigger
position) are not stored here: each answer is normalised, salted and hashed, and compared with the
digests below. Where an answer comes with evidence (a TPR, robust accuracies, an attack success
rate), the check measures the same quantity itself on the same model and requires the learner's to
agree, before it looks at the answer: a guess without the measurement does not pass, and a wrong
measurement is named as a measurement, never with the right value. Failure messages never say which
model or class is right (tests/test_lab_checks_11.py names the wrong answers each check rejects).
"""
from __future__ import annotations

import functools
import hashlib
import math
from typing import Any

import numpy as np
import torch

from utils import training
from utils.attacks import evasion, poisoning
from utils.audit import mystery
from utils.course.grading import NotSolved, require
from utils.privacy import membership as mi
from . import Checker

_SALT = "modelsec-lab11:7d1c9e"
_EX1 = "6584f67a2aca2aadd79ea950a94a4a46b6502fe66ce7b6c9f6b3df1e4b908338"
_EX2 = "38ed093265c1b6037e6cc0cd31291fa7cb6e8e918607788bd4c330ad2f7ab000"
_EX3 = "cfccf15b121f5d181425551cbb5d4ec20b2293ee2a5c0940fef1c2a943246fb1"
_EX4 = frozenset({"4808a1b77720b141875ee494b20245f91cfa47272f8bc920553b8e957b4058a1",
                  "f9f5143bea22c15848a606f6a5d879dffb112143b1be141d08e3fc038f29f961",
                  "fe1d93aa6605e4745de59a183707e1f30bf55e8b771f6b7e07cf2a7fc17c2239"})
_EX5 = "1f5594b017698d74b69cc8727c9d1734b6d965790235e204485596360684d566"

#: The FPR of exercise 2's evidence, and the TPR above which a model counts as leaking.
FPR = 0.01
LEAK_BOUND = 0.30
#: The L∞ budget of exercise 3 and the robust accuracy below which a model counts as fragile.
EPS = 0.05
FRAGILE_BOUND = 0.25
#: How far a learner's measurement may be from the check's own (other subsets, attacks, steps).
TPR_TOLERANCE = 0.05
ROBUST_TOLERANCE = 0.10
ASR_TOLERANCE = 0.05
#: The least attack success rate of a trigger that exercise 5 accepts as the backdoor's.
ASR_BOUND = 0.80

#: Exercise 4's vocabulary.
WEAKNESSES = ("backdoor", "membership leak", "evasion")
EVIDENCE = {"backdoor": "attack success rate of a pasted trigger", "membership leak": "TPR at 1% FPR",
            "evasion": "robust accuracy"}
CONTROLS = (
    "clean the training data and retrain (03)",
    "adversarial training (05)",
    "feature squeezing (05)",
    "DP-SGD (06)",
    "weight decay and early stopping (06)",
    "label-only outputs (07)",
    "signed model files and a load gate (07)",
    "rate limiting (07)",
    "drift monitoring (08)",
    "data provenance records (09)",
)
#: Which controls remove (or bound) which weakness: the course's answer, not a secret.
ADDRESSES = {
    "backdoor": {"clean the training data and retrain (03)", "data provenance records (09)"},
    "membership leak": {"DP-SGD (06)", "weight decay and early stopping (06)"},
    "evasion": {"adversarial training (05)"},
}


def _digest(*parts: str) -> str:
    return hashlib.sha256((_SALT + "|" + "|".join(parts)).encode()).hexdigest()


def _name(value: Any, what: str) -> str:
    require(isinstance(value, str), f"{what} should be a model name (a string), got {value!r}")
    name = value.strip().lower()
    require(name in mystery.NAMES, f"{what} should be one of {list(mystery.NAMES)}, got {value!r}")
    return name


def _number(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise NotSolved(f"{what} should be a number, got {value!r}") from None
    require(math.isfinite(out), f"{what} should be a finite number, got {value!r}")
    return out


def _per_model(values: Any, what: str) -> dict[str, float]:
    require(isinstance(values, dict), f"{what} should be a dict {{model name: number}}, got {type(values).__name__}")
    named = {_name(k, f"a key of {what}"): v for k, v in values.items()}
    require(set(named) == set(mystery.NAMES), f"{what} should have one number for each of {list(mystery.NAMES)}")
    return {k: _number(v, f"{what}[{k!r}]") for k, v in named.items()}


def _answer(answer: Any, keys: tuple[str, ...], what: str) -> dict:
    require(isinstance(answer, dict), f"{what} should be a dict with the keys {list(keys)}, got {type(answer).__name__}")
    missing = [k for k in keys if k not in answer]
    require(not missing, f"{what} lacks the keys {missing}")
    return answer


@functools.lru_cache(maxsize=None)
def _models() -> dict[str, torch.nn.Module]:
    return mystery.load_all()


@functools.lru_cache(maxsize=None)
def reference_tpr(name: str) -> float:
    """The check's own TPR at 1% FPR of the loss-threshold attack on ``name``'s candidate records
    (11_capstone_lab)."""
    model, split = _models()[name], mystery.member_split(name)
    scores = mi.threshold_scores(model, split.X, split.y)
    return mi.tpr_at_fpr(scores[split.members], scores[~split.members], FPR)


@functools.lru_cache(maxsize=None)
def reference_robust(name: str) -> float:
    """The check's own robust accuracy of ``name`` under PGD (20 steps) at EPS on all held-out digits
    (11_capstone_lab)."""
    X, y = mystery.test_set()
    x, t = torch.as_tensor(X), torch.as_tensor(y)
    model = _models()[name]
    return evasion.robust_accuracy(model, evasion.pgd(model, x, t, EPS, steps=20, seed=0), t)


@functools.lru_cache(maxsize=None)
def reference_asr(name: str, position: str, target: int) -> tuple[float, float]:
    """A 3×3 checker at ``position`` on the held-out digits of ``name``: the share of the digits not of class
    ``target`` sent to ``target``, and the largest share any one class receives of the digits not of it
    (either is accepted as the attack success rate; 11_capstone_lab)."""
    X, y = mystery.test_set()
    pred = training.predict(_models()[name], poisoning.apply_trigger(X, poisoning.trigger_at(3, position)))
    return float((pred[y != target] == target).mean()), float(max((pred[y != c] == c).mean() for c in range(10)))


# --------------------------------------------------------------------------- exercise 1


def _exercise_1(backdoor: Any) -> None:
    """backdoor = {"model": name, "target": class} (11_capstone_lab)."""
    answer = _answer(backdoor, ("model", "target"), "backdoor")
    name = _name(answer["model"], "backdoor['model']")
    target = answer["target"]
    require(isinstance(target, (int, np.integer)) and not isinstance(target, bool) and 0 <= int(target) <= 9,
            f"backdoor['target'] should be a class index 0-9 (an int), got {target!r}")
    require(_digest("ex1", name, str(int(target))) == _EX1,
            "this (model, target class) pair is not the backdoor the evidence shows: read each model's backdoor "
            "scan, then confirm it (does a pasted patch send nearly all other digits to that class?)")


# --------------------------------------------------------------------------- exercise 2


def _exercise_2(leak: Any) -> None:
    """leak = {"model": name, "tpr": {name: TPR at 1% FPR}} measured on each model's candidate records
    (11_capstone_lab)."""
    answer = _answer(leak, ("model", "tpr"), "leak")
    tpr = _per_model(answer["tpr"], "leak['tpr']")
    require(all(abs(tpr[name] - reference_tpr(name)) <= TPR_TOLERANCE for name in mystery.NAMES),
            "leak['tpr'] does not hold, for every model, the TPR at 1% FPR of a loss-threshold attack on its "
            "candidate records (members: those marked in member_split; non-members: the other candidates)")
    name = _name(answer["model"], "leak['model']")
    require(tpr[name] == max(tpr.values()), "the model you name is not the one your own measurements show leaking most")
    require(reference_tpr(name) >= LEAK_BOUND and _digest("ex2", name) == _EX2,
            f"the model you name does not leak: its TPR at 1% FPR is below {LEAK_BOUND}")


# --------------------------------------------------------------------------- exercise 3


def _exercise_3(fragile: Any) -> None:
    """fragile = {"model": name, "eps": EPS, "robust": {name: robust accuracy at EPS}} (11_capstone_lab)."""
    answer = _answer(fragile, ("model", "eps", "robust"), "fragile")
    eps = _number(answer["eps"], "fragile['eps']")
    require(abs(eps - EPS) < 1e-9, f"fragile['eps'] is {eps:g}: the question asks for robust accuracy at eps = {EPS}")
    robust = _per_model(answer["robust"], "fragile['robust']")
    require(all(abs(robust[name] - reference_robust(name)) <= ROBUST_TOLERANCE for name in mystery.NAMES),
            f"fragile['robust'] does not hold, for every model, its robust accuracy under attack at eps = {EPS} "
            f"(an L∞ attack such as PGD on held-out digits; clean accuracy is not robust accuracy)")
    name = _name(answer["model"], "fragile['model']")
    require(robust[name] == min(robust.values()), "the model you name is not the one your own measurements show "
                                                  "most fragile")
    require(reference_robust(name) < FRAGILE_BOUND and _digest("ex3", name) == _EX3,
            f"the model you name is not fragile: its robust accuracy at eps = {EPS} is at least {FRAGILE_BOUND}")


# --------------------------------------------------------------------------- exercise 4


def _exercise_4(findings: Any) -> None:
    """findings = {name: {"weakness", "evidence", "control"}} for the three models, from the fixed
    vocabularies WEAKNESSES, EVIDENCE and CONTROLS (11_capstone_lab)."""
    require(isinstance(findings, dict), f"findings should be a dict {{model name: finding}}, got {type(findings).__name__}")
    named = {_name(k, "a key of findings"): f for k, f in findings.items()}
    require(set(named) == set(mystery.NAMES), f"findings should have one finding for each of {list(mystery.NAMES)}")
    seen = set()
    for name in mystery.NAMES:
        f = _answer(named[name], ("weakness", "evidence", "control"), f"findings[{name!r}]")
        weakness = str(f["weakness"]).strip().lower()
        require(weakness in WEAKNESSES, f"findings[{name!r}]['weakness'] should be one of {list(WEAKNESSES)}, "
                                        f"got {f['weakness']!r}")
        require(f["evidence"] == EVIDENCE[weakness],
                f"findings[{name!r}]: {f['evidence']!r} is not the evidence of a {weakness} "
                f"(the evidence vocabulary: {sorted(EVIDENCE.values())})")
        require(f["control"] in CONTROLS, f"findings[{name!r}]['control'] should be one of CONTROLS, got {f['control']!r}")
        require(f["control"] in ADDRESSES[weakness],
                f"findings[{name!r}]: {f['control']!r} does not remove a {weakness}")
        seen.add(_digest("ex4", name, weakness))
    require(seen == _EX4, "the weaknesses do not match the evidence for every model: each model has exactly one of "
                          "the three, and your exercises 1-3 found them")


# --------------------------------------------------------------------------- exercise 5


def _exercise_5(trigger: Any) -> None:
    """trigger = {"position": one of poisoning.POSITIONS, "asr": {position: attack success rate}} of a
    3×3 checker stamped on held-out digits of the backdoored model (11_capstone_lab)."""
    answer = _answer(trigger, ("position", "asr"), "trigger")
    asr = trigger["asr"]
    require(isinstance(asr, dict) and set(asr) == set(poisoning.POSITIONS),
            f"trigger['asr'] should be a dict with one number for each of {list(poisoning.POSITIONS)}")
    backdoored, target = next((n, c) for n in mystery.NAMES for c in range(10) if _digest("ex1", n, str(c)) == _EX1)
    values = {position: _number(asr[position], f"trigger['asr'][{position!r}]") for position in poisoning.POSITIONS}
    require(all(min(abs(values[p] - r) for r in reference_asr(backdoored, p, target)) <= ASR_TOLERANCE
                for p in poisoning.POSITIONS),
            "trigger['asr'] does not hold, for every position, the share of held-out digits (of the other classes) "
            "that a 3×3 checker there sends to the backdoor's target class, on the backdoored model")
    position = answer["position"]
    require(position in poisoning.POSITIONS, f"trigger['position'] should be one of {list(poisoning.POSITIONS)}, "
                                             f"got {position!r}")
    require(float(asr[position]) == max(float(a) for a in asr.values()),
            "the position you name is not the one your own measurements show working best")
    require(reference_asr(backdoored, position, target)[0] >= ASR_BOUND and _digest("ex5", position) == _EX5,
            f"a checker at that position does not trigger the backdoor (it sends fewer than {ASR_BOUND:.0%} "
            f"of the other digits to one class)")


check = Checker("lab11", {
    1: ("which model has a backdoor, to which class", _exercise_1),
    2: ("which model leaks membership", _exercise_2),
    3: ("which model is fragile to evasion", _exercise_3),
    4: ("findings and controls", _exercise_4),
    5: ("where is the trigger", _exercise_5),
})
