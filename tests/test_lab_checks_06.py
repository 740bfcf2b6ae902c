"""lab06's checks: the lab's stubs fail, the solution's answers pass, named plausible wrong answers fail,
and other correct ways of writing each answer pass."""
from __future__ import annotations

import copy as copylib

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

import utils
from utils import data, metrics, training
from utils.models import build_model
from utils.privacy import membership as mi
from utils.theft import extraction as ex, ownership
from utils.lab_checks import lab06

FAIL = "NOT SOLVED YET"
SEED = 0


@pytest.fixture(scope="module")
def lab():
    utils.setup(SEED, plots=False)
    ds = data.load("digits", seed=SEED)
    victim, _, _ = lab06.watermarked_victim(ds, SEED)
    return ds, victim


def _judge(capsys, n, answer, ok, says="", **context):
    result = lab06.check(n, answer, **context)
    out = capsys.readouterr().out
    assert result is ok, out
    assert ("✅ PASSED" in out) if ok else (FAIL in out and says in out), out
    return out


# --------------------------------------------------------------------------- exercise 1

def quota_solution(curve, max_fidelity):
    quota = None
    for row in sorted(curve, key=lambda r: r["queries"]):
        if row["fidelity"] >= max_fidelity:
            break
        quota = row["queries"]
    return quota


def quota_first_reaching_minus_one(curve, max_fidelity):
    rows = sorted(curve, key=lambda r: r["queries"])
    first = next((i for i, r in enumerate(rows) if r["fidelity"] >= max_fidelity), len(rows))
    return None if first == 0 else int(rows[first - 1]["queries"])


def quota_numpy(curve, max_fidelity):
    q = np.array([r["queries"] for r in curve])
    f = np.array([r["fidelity"] for r in curve])
    order = np.argsort(q)
    q, f = q[order], f[order]
    unsafe = np.maximum.accumulate(f) >= max_fidelity
    return None if unsafe[0] else q[~unsafe].max()


def quota_stub(curve, max_fidelity):
    return max(r["queries"] for r in curve)


def quota_largest_below(curve, max_fidelity):  # ignores that a smaller budget already reached it
    below = [r["queries"] for r in curve if r["fidelity"] < max_fidelity]
    return max(below) if below else None


def quota_first_reaching(curve, max_fidelity):  # one budget too far: the thief's, not the defender's
    rows = sorted(curve, key=lambda r: r["queries"])
    return next((r["queries"] for r in rows if r["fidelity"] >= max_fidelity), None)


def quota_accuracy(curve, max_fidelity):
    return quota_solution([{**r, "fidelity": r["accuracy"]} for r in curve], max_fidelity)


def quota_unsorted(curve, max_fidelity):  # trusts the order the curve comes in
    quota = None
    for row in curve:
        if row["fidelity"] >= max_fidelity:
            break
        quota = row["queries"]
    return quota


def quota_strict(curve, max_fidelity):  # "reaching" read as "exceeding"
    quota = None
    for row in sorted(curve, key=lambda r: r["queries"]):
        if row["fidelity"] > max_fidelity:
            break
        quota = row["queries"]
    return quota


def quota_zero(curve, max_fidelity):  # 0 instead of None when no budget is safe
    return quota_solution(curve, max_fidelity) or 0


def quota_float(curve, max_fidelity):
    q = quota_solution(curve, max_fidelity)
    return None if q is None else float(q)


@pytest.mark.parametrize("fn", [quota_solution, quota_first_reaching_minus_one, quota_numpy],
                         ids=["solution", "index-before-first-reaching", "numpy-cumulative-max"])
def test_exercise_1_passes(capsys, lab, fn):
    ds, victim = lab
    _judge(capsys, 1, fn, True, victim=victim, ds=ds, seed=SEED)


@pytest.mark.parametrize("fn,says", [
    (quota_stub, "wrong"),
    (quota_largest_below, "dips"),
    (quota_first_reaching, "wrong"),
    (quota_accuracy, "is wrong"),
    (quota_unsorted, "shuffled"),
    (quota_strict, "exactly"),
    (quota_zero, "None"),
    (quota_float, "int"),
], ids=["stub", "largest-budget-below-the-bound", "first-budget-reaching-it", "accuracy-not-fidelity",
        "assumes-sorted", "strict-greater", "zero-not-none", "float-budget"])
def test_exercise_1_rejects(capsys, lab, fn, says):
    ds, victim = lab
    _judge(capsys, 1, fn, False, says, victim=victim, ds=ds, seed=SEED)


def test_exercise_1_cases_tell_the_wrong_answers_apart_for_every_seed():
    """The made-up curves alone reject each named wrong answer (the measured one changes with the seed)."""
    cases = lab06._made_up_curves()
    for fn in (quota_stub, quota_largest_below, quota_first_reaching, quota_accuracy, quota_unsorted,
               quota_strict, quota_zero):
        assert any(fn(c, b) != lab06._reference_quota(c, b) for _, c, b in cases), fn.__name__


# --------------------------------------------------------------------------- exercise 2

def steal_solution(answers):
    return ex.steal(answers, soft=False, seed=SEED)


def steal_argmax_of_scores(answers):  # the reverse sigmoid keeps (almost always) the arg-max
    return ex.train_cached(ex.copy_config(len(answers), SEED), answers.X, answers.probabilities.argmax(1), 10,
                           tag="argmax")


def steal_other_seed(answers):
    return ex.steal(answers, soft=False, seed=SEED + 5)


def steal_one_hot_targets(answers):
    Y = np.eye(10, dtype=np.float32)[answers.labels]
    return ex.train_cached(ex.copy_config(len(answers), SEED), answers.X, Y, 10, tag="one-hot")


def steal_stub(answers):  # the lesson's default: trained on the perturbed scores
    return ex.steal(answers, seed=SEED)


def steal_too_few(answers):
    return ex.steal(answers, 50, soft=False, seed=SEED)


def steal_untrained(answers):
    return build_model("mlp", (1, 8, 8), 10, seed=SEED).eval()


def make_victim_thief(victim):
    def steal_the_victim(answers):
        return victim
    return steal_the_victim


def make_weights_thief(victim):
    def copy_the_weights(answers):
        return copylib.deepcopy(victim)
    return copy_the_weights


def make_extra_queries(victim):
    def steal_with_more_queries(answers):  # labels the victim gives on 1,000 more images
        X = np.concatenate([answers.X, ex.query_set("noise", 1000, seed=3)])
        return ex.train_cached(ex.copy_config(len(X), SEED), X, training.predict(victim, X), 10, tag="more")
    return steal_with_more_queries


def make_relabel(victim):
    def relabel_with_victim(answers):  # asks the victim again instead of reading the answers
        return ex.train_cached(ex.copy_config(len(answers), SEED), answers.X, training.predict(victim, answers.X), 10,
                               tag="relabel")
    return relabel_with_victim


@pytest.mark.parametrize("fn", [steal_solution, steal_argmax_of_scores, steal_other_seed, steal_one_hot_targets],
                         ids=["solution", "argmax-of-perturbed-scores", "another-seed", "one-hot-soft-targets"])
def test_exercise_2_passes(capsys, lab, fn):
    ds, victim = lab
    _judge(capsys, 2, fn, True, victim=victim, ds=ds, seed=SEED)


@pytest.mark.parametrize("make,says", [
    (lambda v: steal_stub, "at least 0.90"),
    (lambda v: steal_too_few, "at least 0.90"),
    (lambda v: steal_untrained, "at least 0.90"),
    (make_victim_thief, "the victim itself"),
    (make_weights_thief, "weights"),
    (make_extra_queries, "used the victim"),
    (make_relabel, "used the victim"),
], ids=["stub-perturbed-scores", "first-50-queries-only", "untrained-model", "returns-the-victim",
        "deepcopy-of-the-victim", "queries-beyond-the-budget", "relabels-with-the-victim"])
def test_exercise_2_rejects(capsys, lab, make, says):
    ds, victim = lab
    _judge(capsys, 2, make(victim), False, says, victim=victim, ds=ds, seed=SEED)
    assert ex.fidelity(victim, victim, ds.X_test[:5]) == 1.0  # the victim answers again after the check


# --------------------------------------------------------------------------- exercise 3

def ours_solution(suspect, X, y, chance, alpha):
    k, n = ownership.agreement(suspect, X, y)
    p = float(stats.binom.sf(k - 1, n, chance))
    return p < alpha, p


def ours_binomtest(suspect, X, y, chance, alpha):
    k = int((training.predict(suspect, X) == y).sum())
    p = stats.binomtest(k, len(y), chance, alternative="greater").pvalue
    return bool(p < alpha), p


def ours_one_minus_cdf(suspect, X, y, chance, alpha):
    k, n = ownership.agreement(suspect, X, y)
    p = 1.0 - stats.binom.cdf(k - 1, n, chance)
    return p < alpha, p


def ours_stub(suspect, X, y, chance, alpha):
    return False, 1.0


def ours_above_one_tenth(suspect, X, y, chance, alpha):  # claims whenever agreement beats 1/10, whatever n
    k, n = ownership.agreement(suspect, X, y)
    return k / n > 0.1, float(stats.binom.sf(k - 1, n, chance))


def ours_one_tenth_chance(suspect, X, y, chance, alpha):  # 1/10 instead of the measured chance rate
    return ours_solution(suspect, X, y, 0.1, alpha)


def ours_two_sided(suspect, X, y, chance, alpha):
    k, n = ownership.agreement(suspect, X, y)
    p = stats.binomtest(k, n, chance).pvalue
    return bool(p < alpha), p


def ours_fixed_alpha(suspect, X, y, chance, alpha):  # ignores alpha
    return ours_solution(suspect, X, y, chance, 0.01)


def ours_fixed_alpha_05(suspect, X, y, chance, alpha):
    return ours_solution(suspect, X, y, chance, 0.05)


def ours_sf_k(suspect, X, y, chance, alpha):  # P(K > k) instead of P(K >= k)
    k, n = ownership.agreement(suspect, X, y)
    p = float(stats.binom.sf(k, n, chance))
    return p < alpha, p


def ours_pmf(suspect, X, y, chance, alpha):  # P(K = k) only
    k, n = ownership.agreement(suspect, X, y)
    p = float(stats.binom.pmf(k, n, chance))
    return p < alpha, p


def ours_verify(suspect, X, y, chance, alpha):
    r = ownership.verify(suspect, X, y, chance, alpha)
    return r["claimed"], r["p_value"]


@pytest.mark.parametrize("fn", [ours_solution, ours_binomtest, ours_one_minus_cdf],
                         ids=["solution", "binomtest-greater", "one-minus-cdf"])
def test_exercise_3_passes(capsys, lab, fn):
    ds, victim = lab
    _judge(capsys, 3, fn, True, victim=victim, ds=ds, seed=SEED)


@pytest.mark.parametrize("fn,says", [
    (ours_stub, "wrong"),
    (ours_above_one_tenth, "wrong"),
    (ours_one_tenth_chance, "wrong"),
    (ours_two_sided, "wrong"),
    (ours_fixed_alpha, "alpha 0.05"),
    (ours_fixed_alpha_05, "alpha 0.01"),
    (ours_sf_k, "p-value is wrong"),
    (ours_pmf, "p-value is wrong"),
    (ours_verify, "ownership.verify"),
], ids=["stub", "agreement-above-one-tenth", "one-tenth-as-chance", "two-sided-test", "ignores-alpha-0.01",
        "ignores-alpha-0.05", "sf-of-k-off-by-one", "pmf-not-tail", "calls-ownership-verify"])
def test_exercise_3_rejects(capsys, lab, fn, says):
    ds, victim = lab
    _judge(capsys, 3, fn, False, says, victim=victim, ds=ds, seed=SEED)


def test_suspects_hold_a_stolen_copy_and_independent_models(lab):
    ds, victim = lab
    _, X_trigger, y_trigger = lab06.watermarked_victim(ds, SEED)
    chance = ownership.chance_rate(lab06.independent_models(ds, SEED), X_trigger, y_trigger)
    found = {name: ownership.verify(m, X_trigger, y_trigger, max(chance, 1 / 60))["claimed"]
             for name, m in lab06.suspects(victim, ds, SEED).items()}
    assert sorted(found) == ["suspect A", "suspect B", "suspect C", "suspect D"]
    assert sum(found.values()) == 2, found  # the stolen copy and the fine-tuned victim


# --------------------------------------------------------------------------- exercise 4

def tpr_solution(member_scores, nonmember_scores):
    non = np.sort(np.asarray(nonmember_scores, dtype=float))[::-1]
    k = len(non) // 100
    if k == 0:
        raise ValueError("fewer than 100 non-members")
    return float((np.asarray(member_scores, dtype=float) > non[k]).mean())


def tpr_library(member_scores, nonmember_scores):  # the lesson's helper agrees
    if len(nonmember_scores) < 100:
        raise ValueError("fewer than 100 non-members")
    return mi.tpr_at_fpr(member_scores, nonmember_scores, 0.01)


def tpr_quantile_higher(member_scores, nonmember_scores):
    n = len(nonmember_scores)
    if n < 100:
        raise ValueError("too few")
    k = n // 100
    threshold = np.partition(np.asarray(nonmember_scores), n - k - 1)[n - k - 1]
    return float(np.mean(np.asarray(member_scores) > threshold))


def tpr_stub(member_scores, nonmember_scores):
    return 0.0


def tpr_percentile(member_scores, nonmember_scores):  # np.percentile interpolates: flags one too many
    if len(nonmember_scores) < 100:
        raise ValueError("too few")
    return float(np.mean(np.asarray(member_scores) > np.percentile(nonmember_scores, 99)))


def tpr_greater_equal(member_scores, nonmember_scores):
    non = np.sort(np.asarray(nonmember_scores, dtype=float))[::-1]
    k = len(non) // 100
    if k == 0:
        raise ValueError("too few")
    return float((np.asarray(member_scores) >= non[k]).mean())


def tpr_pooled_threshold(member_scores, nonmember_scores):  # the threshold set on every score, members too
    if len(nonmember_scores) < 100:
        raise ValueError("too few")
    pooled = np.sort(np.r_[member_scores, nonmember_scores])[::-1]
    return float(np.mean(np.asarray(member_scores) > pooled[len(pooled) // 100]))


def tpr_auc(member_scores, nonmember_scores):
    if len(nonmember_scores) < 100:
        raise ValueError("too few")
    y = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    return float(roc_auc_score(y, np.r_[member_scores, nonmember_scores]))


def tpr_never_refuses(member_scores, nonmember_scores):
    non = np.sort(np.asarray(nonmember_scores, dtype=float))[::-1]
    return float((np.asarray(member_scores) > non[len(non) // 100]).mean())


def tpr_refuses_at_100(member_scores, nonmember_scores):  # refuses 100 non-members too
    if len(nonmember_scores) <= 100:
        raise ValueError("too few")
    return tpr_solution(member_scores, nonmember_scores)


def tpr_returns_nan(member_scores, nonmember_scores):
    if len(nonmember_scores) < 100:
        return float("nan")
    return tpr_solution(member_scores, nonmember_scores)


@pytest.mark.parametrize("fn", [tpr_solution, tpr_library, tpr_quantile_higher],
                         ids=["solution", "mi.tpr_at_fpr", "partition-kth-largest"])
def test_exercise_4_passes(capsys, fn):
    _judge(capsys, 4, fn, True, seed=SEED)


@pytest.mark.parametrize("fn,says", [
    (tpr_stub, "wrong"),
    (tpr_percentile, "near the cut"),
    (tpr_greater_equal, "ties"),
    (tpr_pooled_threshold, "is wrong"),
    (tpr_auc, "wrong"),
    (tpr_never_refuses, "ValueError"),
    (tpr_refuses_at_100, "exactly 100"),
    (tpr_returns_nan, "ValueError"),
], ids=["stub", "interpolated-99th-percentile", "greater-or-equal", "threshold-from-members-too", "auc",
        "never-refuses", "refuses-100-non-members", "nan-instead-of-refusing"])
def test_exercise_4_rejects(capsys, fn, says):
    _judge(capsys, 4, fn, False, says, seed=SEED)


@pytest.mark.parametrize("seed", range(10))
def test_exercise_4_reference_is_the_libraries_for_every_seed(seed):
    for _, mem, non in lab06._score_cases(seed):
        assert lab06._reference_tpr(mem, non) == pytest.approx(mi.tpr_at_fpr(mem, non, 0.01), abs=1e-12)
        assert lab06._reference_tpr(mem, non) == pytest.approx(metrics.recall_at_fpr(
            np.r_[non, mem], np.r_[np.zeros(len(non), bool), np.ones(len(mem), bool)], 0.01)[0], abs=1e-12)


def test_check_rejects_an_unknown_exercise():
    with pytest.raises(ValueError):
        lab06.check(5, None)
