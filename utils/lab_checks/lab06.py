"""Checks of labs/06_model_theft_and_privacy_lab.ipynb (taught in notebooks/06_model_theft_and_privacy.ipynb).

Each check builds its own cases out of the learner's sight (budget curves, made-up and measured; answers
freshly queried from a reverse-sigmoid API under a quota; suspects the lab did not show; trigger sets with a
known number of agreements; membership scores with ties and at the edge of 1% of the non-members) and
compares the learner's code with a reference computed here (the tests name the plausible wrong answers:
tests/test_lab_checks_06.py). Failure messages say which case is wrong, never the answer.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy import stats

from utils import serving, training
from utils.course.grading import NotSolved, forbid, require
from utils.privacy import membership as mi
from utils.theft import extraction as ex
from utils.theft import ownership
from . import Checker
from . import call as _call


def watermarked_victim(ds, seed: int) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """The lab's victim, as the lesson builds it: the digits MLP trained with the owner's secret trigger set
    (30 noise images, ``ownership.trigger_set(seed=1000 + seed)``); returns (victim, X_trigger, y_trigger),
    cached (06_model_theft_and_privacy_lab)."""
    config = training.preset("mlp", seed=seed)
    X_trigger, y_trigger = ownership.trigger_set(30, ds.n_classes, seed=1000 + seed)
    victim = ownership.embed_watermark(config, ds.X_train, ds.y_train, X_trigger, y_trigger, ds.n_classes)
    return victim, X_trigger, y_trigger


def independent_models(ds, seed: int, offset: int = 100, n: int = 5) -> list[torch.nn.Module]:
    """``n`` models trained like the victim but without its trigger set, with seeds ``seed + offset + i``
    (the lesson's five independent models for ``offset=100``; cached; 06_model_theft_and_privacy_lab)."""
    config = training.preset("mlp", seed=seed)
    return [training.fit(config.with_(seed=seed + offset + i), ds.X_train, ds.y_train, ds.n_classes)
            for i in range(n)]


def _label_copy(victim: torch.nn.Module, X: np.ndarray, seed: int) -> torch.nn.Module:
    """A copy trained on the victim's top-1 labels of ``X`` (what a label-only API answers;
    06_model_theft_and_privacy_lab)."""
    return ex.steal(ex.Answers(X, training.predict(victim, X), None, "label"), seed=seed)


def suspects(victim: torch.nn.Module, ds, seed: int) -> dict[str, torch.nn.Module]:
    """The four suspect models of exercise 3 (06_model_theft_and_privacy_lab), under neutral names: a copy
    stolen with top-1 labels of 500 noise queries, the victim fine-tuned on 360 other digits, and two models
    trained independently (seeds ``seed + 300``, ``seed + 301``), in an order drawn from ``seed``. Which is
    which is for the learner's test to find."""
    tune = training.preset("mlp", epochs=5, seed=seed)
    models = [_label_copy(victim, ex.query_set("noise", 500, seed=seed), seed),
              ex.train_cached(tune, ds.X_val, ds.y_val, ds.n_classes, init=victim, tag="fine-tune"),
              *independent_models(ds, seed, offset=300, n=2)]
    order = np.random.default_rng([seed, 6, 3]).permutation(len(models))
    return {f"suspect {'ABCD'[i]}": models[j] for i, j in enumerate(order)}


# --------------------------------------------------------------------------- exercise 1

BUDGETS = (50, 100, 200, 350)


def _reference_quota(curve: list[dict], max_fidelity: float) -> int | None:
    """The largest measured budget such that no budget up to it reaches ``max_fidelity``
    (06_model_theft_and_privacy_lab)."""
    quota = None
    for row in sorted(curve, key=lambda r: r["queries"]):
        if row["fidelity"] >= max_fidelity:
            break
        quota = row["queries"]
    return quota


def _curve(pairs, accuracy_shift: float = -0.02) -> list[dict]:
    return [{"queries": q, "fidelity": f, "accuracy": round(f + accuracy_shift, 3)} for q, f in pairs]


def _made_up_curves() -> list[tuple[str, list[dict], float]]:
    """(what, curve, max_fidelity): rising, dipping, shuffled, at equality, reached at once, never reached
    (06_model_theft_and_privacy_lab)."""
    return [
        ("a rising curve", _curve([(50, 0.62), (100, 0.78), (200, 0.86), (400, 0.93), (800, 0.97)]), 0.9),
        ("a curve that dips after reaching the bound", _curve([(50, 0.7), (100, 0.91), (200, 0.88), (300, 0.95)]), 0.9),
        ("a shuffled curve", _curve([(400, 0.96), (50, 0.55), (200, 0.84), (100, 0.71), (800, 0.98)]), 0.8),
        ("a curve that hits the bound exactly", _curve([(25, 0.5), (50, 0.75), (100, 0.8), (200, 0.9)]), 0.8),
        ("a curve whose accuracy crosses the bound first", _curve([(50, 0.6), (100, 0.74), (150, 0.79), (300, 0.85)],
                                                                  accuracy_shift=0.08), 0.8),
        ("a curve that is already over the bound at its smallest budget",
         _curve([(10, 0.96), (20, 0.97), (40, 0.99)]), 0.95),
        ("a curve that never reaches the bound", _curve([(100, 0.5), (200, 0.6), (300, 0.65)]), 0.7),
    ]


def _exercise_1(safe_quota: Callable, *, victim: torch.nn.Module, ds, seed: int) -> None:
    """safe_quota(curve, max_fidelity) on made-up curves and on a curve the check measures itself (copies from
    shuffled natural queries at 4 budgets, cached) (06_model_theft_and_privacy_lab)."""
    require(callable(safe_quota), "safe_quota should be a function (curve, max_fidelity) -> int or None")
    cases = _made_up_curves()
    rng = np.random.default_rng([seed, 6, 1])
    X = ds.X_val[rng.permutation(len(ds.X_val))[:max(BUDGETS)]]
    P = training.predict_proba(victim, X)
    answers = ex.Answers(X, P.argmax(1), P.astype(np.float32), "full")
    measured = ex.budget_curve(answers, victim, ds.X_test, ds.y_test, BUDGETS, seed=seed)
    fid = sorted(r["fidelity"] for r in measured)
    # a bound between the two largest fidelities: the answer is then one of the smaller budgets
    cases.append(("the check's measured curve", measured, (fid[-2] + fid[-1]) / 2 if fid[-1] > fid[-2] else fid[-1]))
    cases.append(("the check's measured curve, a bound it never reaches", measured, min(1.0, fid[-1] + 0.005)))
    for what, curve, bound in cases:
        given = [dict(r) for r in curve]
        out = _call(f"safe_quota on {what}", safe_quota, given, bound)
        expected = _reference_quota(curve, bound)
        if expected is None:
            require(out is None, f"on {what}, every budget is unsafe: safe_quota should return None, got {out!r}")
            continue
        require(isinstance(out, (int, np.integer)) and not isinstance(out, bool),
                f"safe_quota should return a number of queries (an int) or None, got {out!r} on {what}")
        require(int(out) == expected, f"safe_quota is wrong on {what}")


# --------------------------------------------------------------------------- exercise 2

#: The least fidelity exercise 2 accepts on the test digits. Over seeds 0-9, copies trained on the
#: reverse-sigmoid API's labels from 350 natural queries reach 0.939-0.964 (on the arg-max of its scores,
#: 0.925-0.958); copies trained on its perturbed scores reach 0.49-0.62, on the first 50 labels only 0.72-0.85.
MIN_FIDELITY = 0.90
BUDGET = 350


class _VictimUsed(Exception):
    pass


def _exercise_2(steal_despite_perturbation: Callable, *, victim: torch.nn.Module, ds, seed: int) -> None:
    """The check serves the victim with reverse-sigmoid scores and a quota of 350 images, queries it with
    350 natural digits of its own, and gives steal_despite_perturbation only those answers: the victim
    refuses to answer while the function runs. The copy must be a separately trained model with fidelity
    at least MIN_FIDELITY on the test digits (06_model_theft_and_privacy_lab)."""
    require(callable(steal_despite_perturbation), "steal_despite_perturbation should be a function (answers) -> model")
    rng = np.random.default_rng([seed, 6, 2])
    X = ds.X_val[rng.permutation(len(ds.X_val))[:BUDGET]]
    issuer = serving.TokenIssuer()
    settings = serving.ApiSettings(scores="reverse_sigmoid", rate="100000/minute", quota_images=BUDGET)
    with serving.ApiServer(serving.create_app(victim, issuer, settings), log_level="critical") as server:
        with serving.client(server.url, issuer.issue("lab06-thief", ["predict", "predict:scores"])) as api:
            answers = ex.query_api(api, X)
    require(answers.output == "reverse_sigmoid" and len(answers) == BUDGET, "the check's API answered unexpectedly")
    used = []

    def refuse(*_args, **_kwargs):
        used.append(1)
        raise _VictimUsed("the victim answers only through the answers you were given")

    victim.forward = refuse  # type: ignore[method-assign]
    try:
        copy = _call("steal_despite_perturbation on the check's 350 answers", steal_despite_perturbation, answers)
    except NotSolved:
        if used:
            raise NotSolved("steal_despite_perturbation used the victim (its outputs or an API behind it): the copy "
                            "must be learnt from the answers alone, within their 350 queries") from None
        raise
    finally:
        del victim.forward
    require(not used, "steal_despite_perturbation used the victim: the copy must be learnt from the answers alone")
    require(isinstance(copy, torch.nn.Module), f"steal_despite_perturbation should return a model, got {type(copy).__name__}")
    require(copy is not victim, "steal_despite_perturbation returned the victim itself, not a copy")
    theirs = [t.detach().cpu() for t in copy.state_dict().values()]
    ours = [t.detach().cpu() for t in victim.state_dict().values()]
    require(not (len(theirs) == len(ours) and all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(theirs, ours))),
            "steal_despite_perturbation returned the victim's weights: train a copy on the answers")
    copy.eval()
    try:
        fid = ex.fidelity(copy, victim, ds.X_test)
    except Exception as e:
        raise NotSolved(f"the copy cannot classify the test digits ({type(e).__name__}: {str(e)[:120]})") from None
    require(fid >= MIN_FIDELITY, f"the copy agrees with the victim on {fid:.3f} of the test digits; "
                                 f"it should reach at least {MIN_FIDELITY:.2f} with the 350 answers")


# --------------------------------------------------------------------------- exercise 3


def _labels_with_agreements(model: torch.nn.Module, X: np.ndarray, k: int, n_classes: int, seed: int) -> np.ndarray:
    """Labels for ``X`` that ``model`` gives on exactly ``k`` of them, at positions drawn from ``seed``
    (06_model_theft_and_privacy_lab)."""
    pred = training.predict(model, X)
    labels = (pred + 1 + np.random.default_rng(seed).integers(0, n_classes - 1, len(X))) % n_classes
    agree = np.random.default_rng(seed + 1).permutation(len(X))[:k]
    labels[agree] = pred[agree]
    return labels.astype(np.int64)


def _reference_claim(model, X, labels, chance, alpha) -> tuple[bool, float]:
    k, n = ownership.agreement(model, X, labels)
    p = float(stats.binom.sf(k - 1, n, chance))
    return p < alpha, p


def _exercise_3(is_ours: Callable, *, victim: torch.nn.Module, ds, seed: int) -> None:
    """is_ours(suspect, X_trigger, y_trigger, chance, alpha) -> (claim, p_value) on trigger sets with a known
    number of agreements and on suspects the lab did not show (another stolen copy, the victim fine-tuned
    on other digits, other independent models), against the chance rate of independent models; the p-value
    must be the one-sided binomial one (06_model_theft_and_privacy_lab)."""
    require(callable(is_ours), "is_ours should be a function (suspect, X_trigger, y_trigger, chance, alpha) -> (bool, float)")
    _, X_trigger, y_trigger = watermarked_victim(ds, seed)
    independent = independent_models(ds, seed)
    chance = max(ownership.chance_rate(independent, X_trigger, y_trigger), 1 / (2 * len(y_trigger)))
    tune = training.preset("mlp", epochs=5, seed=seed)
    hidden = {
        "a copy stolen with the labels of 400 blob images": _label_copy(victim, ex.query_set("blobs", 400, seed=seed + 7), seed),
        "the victim fine-tuned on the test digits": ex.train_cached(tune, ds.X_test, ds.y_test, ds.n_classes, init=victim,
                                                                    tag="fine-tune"),
        **{f"an independent model ({i + 1})": m for i, m in enumerate(independent_models(ds, seed, offset=400, n=2))},
    }
    X5 = X_trigger[:5]
    cases = [(f"{name} with the trigger set", m, X_trigger, y_trigger, chance, 0.01) for name, m in hidden.items()]
    cases += [
        ("2 agreements of 5 at chance 0.1", victim, X5, _labels_with_agreements(victim, X5, 2, ds.n_classes, 1), 0.1, 0.01),
        ("8 agreements of 30 at chance 0.25", victim, X_trigger,
         _labels_with_agreements(victim, X_trigger, 8, ds.n_classes, 2), 0.25, 0.01),
        ("0 agreements of 30 at chance 0.2", victim, X_trigger,
         _labels_with_agreements(victim, X_trigger, 0, ds.n_classes, 3), 0.2, 0.05),
        ("7 agreements of 30 at chance 0.1, alpha 0.05", victim, X_trigger,
         _labels_with_agreements(victim, X_trigger, 7, ds.n_classes, 4), 0.1, 0.05),
        ("7 agreements of 30 at chance 0.1, alpha 0.01", victim, X_trigger,
         _labels_with_agreements(victim, X_trigger, 7, ds.n_classes, 4), 0.1, 0.01),
        ("12 agreements of 30 at chance 0.15, alpha 0.001", victim, X_trigger,
         _labels_with_agreements(victim, X_trigger, 12, ds.n_classes, 5), 0.15, 0.001),
    ]
    references = [_reference_claim(m, X, y, c, a) for _, m, X, y, c, a in cases]
    with forbid(ownership.verify, ownership.claim_p_value, why="this exercise asks you to write the test yourself"):
        for (what, m, X, y, c, a), (claim, p) in zip(cases, references):
            out = _call(f"is_ours on {what}", is_ours, m, X.copy(), y.copy(), c, a)
            require(isinstance(out, tuple) and len(out) == 2, f"is_ours should return a pair (claim, p_value), got {out!r}")
            got_claim, got_p = out
            require(isinstance(got_claim, (bool, np.bool_)), f"the claim should be True or False, got {got_claim!r} on {what}")
            try:
                got_p = float(got_p)
            except (TypeError, ValueError):
                raise NotSolved(f"the p-value should be a number, got {got_p!r} on {what}") from None
            require(math.isfinite(got_p) and abs(got_p - p) <= 1e-9 + 1e-6 * p, f"the p-value is wrong on {what}")
            require(bool(got_claim) == claim, f"the claim is wrong on {what}")


# --------------------------------------------------------------------------- exercise 4


def _reference_tpr(member_scores, nonmember_scores) -> float:
    """TPR at 1% FPR: flag scores strictly above the (k+1)-th largest non-member score, k = floor(n / 100)
    (06_model_theft_and_privacy_lab)."""
    mem, non = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    k = len(non) // 100
    threshold = np.sort(non)[::-1][k]
    return float((mem > threshold).mean())


def _score_cases(seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(what, member scores, non-member scores) for exercise 4 (06_model_theft_and_privacy_lab)."""
    rng = np.random.default_rng([seed, 6, 4])
    non = rng.normal(0, 1, 150)
    srt = np.sort(non)
    # members placed between the 3rd and 2nd largest non-member: a threshold that flags 2 of 150 counts them
    between = rng.uniform(srt[-3], srt[-2], 10)
    mem = np.r_[rng.normal(0.8, 1, 40), between]
    ints_non = np.r_[np.zeros(180), np.ones(17), np.full(3, 2.0)]      # 200 non-members, ties at 1
    ints_mem = np.r_[np.zeros(60), np.ones(30), np.full(10, 2.0)]
    wide_non = rng.normal(0, 1, 400)
    wide_mem = rng.normal(3.0, 1, 100)                                 # members far above: pooling changes the cut
    split = mi.digits_split(seed, n_members=mi.OVERFIT_MEMBERS)
    scores = mi.threshold_scores(mi.train_target(split), split.X, split.y)
    return [
        ("150 made-up non-members with members near the cut", mem, non),
        ("integer scores with ties at the cut", ints_mem, ints_non),
        ("members far above the non-members", wide_mem, wide_non),
        ("exactly 100 non-members", rng.normal(1, 1, 30), rng.normal(0, 1, 100)),
        ("the loss-threshold scores of an overfit digits model", scores[split.members], scores[~split.members]),
    ]


def _exercise_4(tpr_at_1pct: Callable, *, seed: int) -> None:
    """tpr_at_1pct(member_scores, nonmember_scores) against the reference on made-up and measured scores,
    and a ValueError when fewer than 100 non-members allow no false positive (06_model_theft_and_privacy_lab)."""
    require(callable(tpr_at_1pct), "tpr_at_1pct should be a function (member_scores, nonmember_scores) -> float")
    for what, mem, non in _score_cases(seed):
        out = _call(f"tpr_at_1pct on {what}", tpr_at_1pct, mem.copy(), non.copy())
        try:
            value = float(out)
        except (TypeError, ValueError):
            raise NotSolved(f"tpr_at_1pct should return a number, got {out!r} on {what}") from None
        require(abs(value - _reference_tpr(mem, non)) <= 1e-9, f"tpr_at_1pct is wrong on {what}")
    rng = np.random.default_rng([seed, 6, 5])
    for n in (60, 99):
        try:
            out = tpr_at_1pct(rng.normal(1, 1, 40), rng.normal(0, 1, n))
        except ValueError:
            continue
        except Exception as e:
            raise NotSolved(f"with {n} non-members, tpr_at_1pct should raise a ValueError, "
                            f"not {type(e).__name__}") from None
        raise NotSolved(f"with {n} non-members, 1% of them is less than one false positive: tpr_at_1pct "
                        f"should refuse (raise a ValueError), not return {out!r}")


check = Checker("lab06", {
    1: ("the quota a defender can afford", _exercise_1),
    2: ("steal through the reverse sigmoid", _exercise_2),
    3: ("is this suspect ours?", _exercise_3),
    4: ("TPR at 1% FPR", _exercise_4),
})
