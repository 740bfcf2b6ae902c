"""lab08's checks: the lab's stubs fail, the solution's answers pass, named plausible wrong answers fail,
and other correct ways of writing each answer pass."""
from __future__ import annotations

import types

import numpy as np
import pytest
import scipy.stats
from scipy.stats import ks_2samp

import utils
from utils import data, metrics, training
from utils import monitoring as mon
from utils.monitoring import drift as mon_drift
from utils.lab_checks import lab08

pytestmark = pytest.mark.notebooks  # about 20-40 s: it trains the MLP and runs the window simulation

WINDOW, ALPHA, BUDGET = 200, 0.05, 0.02
CANDIDATES, TARGET = (100, 200, 300), 0.9
FAIL = "NOT SOLVED YET"


@pytest.fixture(scope="module")
def lab():
    """The solution's set-up at seed 0: the API, the reference window, the pool and the two logs."""
    seed = 0
    utils.setup(seed, plots=False)
    ds = data.load("digits", seed=seed)
    model = training.fit(training.preset("mlp", seed=seed), ds.X_train, ds.y_train, ds.n_classes)

    def api(X):
        return training.predict_proba(model, X)

    rng = np.random.default_rng(seed)
    ref_idx = np.sort(rng.choice(len(ds.X_val), 200, replace=False))
    rest = np.setdiff1d(np.arange(len(ds.X_val)), ref_idx)
    X_ref = ds.X_val[ref_idx]
    X_pool = np.concatenate([ds.X_test, ds.X_val[rest]])
    y_pool = np.concatenate([ds.y_test, ds.y_val[rest]])
    P_ref = api(X_ref)
    novel_threshold = metrics.threshold_at_fpr(mon.reference_novelty(X_ref), 0.01)

    def make_log(stream_seed, extraction):
        segments = [mon.Segment("normal", 400), mon.Segment("review", 1000, extraction=extraction)]
        stream = mon.simulate_stream(X_pool, y_pool, segments, seed=stream_seed)
        log = stream.frame().iloc[-1000:].copy()
        log["novelty"] = mon.novelty_score(stream.X[-1000:], X_ref)
        return log.drop(columns=["source", "segment", "drift", "level", "label"]), stream.source[-1000:]

    log_a, truth_a = make_log(seed + 11, extraction=0.04)
    log_b, truth_b = make_log(seed + 12, extraction=0.0)
    return types.SimpleNamespace(api=api, P_ref=P_ref, X_pool=X_pool, y_pool=y_pool, novel_threshold=novel_threshold,
                                 log_a=log_a, truth_a=truth_a, log_b=log_b, truth_b=truth_b)


def _run(capsys, n, *answer, **context):
    """(the check's result, its printed line)."""
    ok = lab08.check(n, *answer, **context)
    out = capsys.readouterr().out
    assert ("✅ PASSED" in out) == ok and (FAIL in out) == (not ok), out
    return ok, out


def _judge(capsys, n, answer, ok, says, **context):
    result, out = _run(capsys, n, *answer, **context)
    assert result is ok, out
    assert ("✅ PASSED" in out) if ok else (says in out), out
    return out


# --------------------------------------------------------------------------- exercise 1


def ks_statistic(a, b):
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    values = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, values, side="right") / len(a)
    cdf_b = np.searchsorted(b, values, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def ks_test(ref, cur, alpha=0.05):
    k = ref.shape[1]
    d = [ks_statistic(ref[:, j], cur[:, j]) for j in range(k)]
    p = [scipy.stats.ks_2samp(ref[:, j], cur[:, j]).pvalue for j in range(k)]
    p_corrected = min(1.0, k * min(p))
    return max(d), p_corrected, p_corrected < alpha


def ks_stub(a, b):
    return 0.0


def ks_test_stub(ref, cur, alpha=0.05):
    return 0.0, 1.0, False


# --- wrong KS statistics
def ks_mean_gap(a, b):
    return float(abs(np.mean(a) - np.mean(b)))


def ks_at_a_only(a, b):
    a, b = np.sort(a), np.sort(b)
    return float(np.abs(np.searchsorted(a, a, side="right") / len(a) - np.searchsorted(b, a, side="right") / len(b)).max())


def ks_one_sided(a, b):
    a, b = np.sort(a), np.sort(b)
    values = np.concatenate([a, b])
    return float((np.searchsorted(a, values, side="right") / len(a) - np.searchsorted(b, values, side="right") / len(b)).max())


def ks_unsorted(a, b):
    values = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, values, side="right") / len(a)
                        - np.searchsorted(b, values, side="right") / len(b)).max())


def ks_pooled_denominator(a, b):
    a, b = np.sort(a), np.sort(b)
    values = np.concatenate([a, b])
    n = len(values)
    return float(np.abs(np.searchsorted(a, values, side="right") / n - np.searchsorted(b, values, side="right") / n).max())


def ks_calls_mon(a, b):
    return mon.ks_statistic(a, b)


def ks_calls_drift_module(a, b):
    return mon_drift.ks_statistic(a, b)


def ks_calls_scipy(a, b):
    return float(ks_2samp(a, b).statistic)


def ks_calls_kstest(a, b):
    return float(scipy.stats.kstest(a, b).statistic)


# --- right KS statistics, written differently
def ks_left_limits(a, b):
    """The ECDFs' left limits at the observed values reach the same largest gap."""
    a, b = np.sort(a), np.sort(b)
    values = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, values, side="left") / len(a)
                        - np.searchsorted(b, values, side="left") / len(b)).max())


def ks_broadcast(a, b):
    values = np.unique(np.concatenate([a, b]))
    fa = (np.asarray(a)[None, :] <= values[:, None]).mean(1)
    fb = (np.asarray(b)[None, :] <= values[:, None]).mean(1)
    return np.max(np.abs(fa - fb))  # a numpy float


def ks_loop(a, b):
    best = 0.0
    for x in sorted(set(a) | set(b)):
        best = max(best, abs(sum(v <= x for v in a) / len(a) - sum(v <= x for v in b) / len(b)))
    return best


# --- wrong KS tests
def _column_p(ref, cur):
    return [scipy.stats.ks_2samp(ref[:, j], cur[:, j]).pvalue for j in range(ref.shape[1])]


def ks_test_uncorrected(ref, cur, alpha=0.05):
    p = min(_column_p(ref, cur))
    return ks_test(ref, cur, alpha)[0], p, p < alpha


def ks_test_uncapped(ref, cur, alpha=0.05):
    p = ref.shape[1] * min(_column_p(ref, cur))
    return ks_test(ref, cur, alpha)[0], p, p < alpha


def ks_test_ten_classes(ref, cur, alpha=0.05):
    p = min(1.0, 10 * min(_column_p(ref, cur)))
    return ks_test(ref, cur, alpha)[0], p, p < alpha


def ks_test_rows(ref, cur, alpha=0.05):
    p = min(1.0, len(ref) * min(_column_p(ref, cur)))
    return ks_test(ref, cur, alpha)[0], p, p < alpha


def ks_test_mean_d(ref, cur, alpha=0.05):
    d, p, flagged = ks_test(ref, cur, alpha)
    return float(np.mean([ks_statistic(ref[:, j], cur[:, j]) for j in range(ref.shape[1])])), p, flagged


def ks_test_flag_on_raw_p(ref, cur, alpha=0.05):
    d, p, _ = ks_test(ref, cur, alpha)
    return d, p, min(_column_p(ref, cur)) < alpha


def ks_test_calls_mon(ref, cur, alpha=0.05):
    r = mon.ks_test(ref, cur, alpha)
    return r.statistic, r.p_value, r.drift


def ks_test_mon_statistic(ref, cur, alpha=0.05):
    d, p, flagged = ks_test(ref, cur, alpha)
    return max(mon.ks_statistic(ref[:, j], cur[:, j]) for j in range(ref.shape[1])), p, flagged


# --- right KS tests, written differently
def ks_test_scipy_statistic(ref, cur, alpha=0.05):
    """D and p both from ks_2samp; the comparison as p * K < alpha; a numpy bool."""
    res = [scipy.stats.ks_2samp(ref[:, j], cur[:, j]) for j in range(ref.shape[1])]
    p = np.minimum(1.0, ref.shape[1] * np.min([r.pvalue for r in res]))
    return np.max([r.statistic for r in res]), p, np.bool_(p < alpha)


def ks_test_argmax_column(ref, cur, alpha=0.05):
    """Like mon.ks_test: the p-value of the column with the largest D only."""
    d = np.array([ks_statistic(ref[:, j], cur[:, j]) for j in range(ref.shape[1])])
    j = int(d.argmax())
    p = min(1.0, ref.shape[1] * scipy.stats.ks_2samp(ref[:, j], cur[:, j]).pvalue)
    return float(d[j]), p, bool(p < alpha)


@pytest.mark.parametrize("answer, ok, says", [
    ((ks_stub, ks_test_stub), False, "my_ks_statistic"),
    ((ks_mean_gap, ks_test), False, "largest gap between the two empirical CDFs"),
    ((ks_at_a_only, ks_test), False, "shifted down"),
    ((ks_one_sided, ks_test), False, "shifted down"),
    ((ks_unsorted, ks_test), False, "my_ks_statistic"),
    ((ks_pooled_denominator, ks_test), False, "my_ks_statistic"),
    ((ks_calls_mon, ks_test), False, "your code calls utils.monitoring.drift.ks_statistic"),
    ((ks_calls_drift_module, ks_test), False, "your code calls utils.monitoring.drift.ks_statistic"),
    ((ks_calls_scipy, ks_test), False, "your code calls scipy.stats"),
    ((ks_calls_kstest, ks_test), False, "your code calls scipy.stats"),
    ((ks_statistic, ks_test_uncorrected), False, "the corrected p-value"),
    ((ks_statistic, ks_test_uncapped), False, "the corrected p-value on 5 softmax-like outputs"),
    ((ks_statistic, ks_test_ten_classes), False, "the corrected p-value on 3 outputs"),
    ((ks_statistic, ks_test_rows), False, "the corrected p-value"),
    ((ks_statistic, ks_test_mean_d), False, "the largest D"),
    ((ks_statistic, ks_test_flag_on_raw_p), False, "drift decision"),
    ((ks_statistic, ks_test_calls_mon), False, "your code calls utils.monitoring.drift.ks_test"),
    ((ks_statistic, ks_test_mon_statistic), False, "your code calls utils.monitoring.drift.ks_statistic"),
    ((ks_statistic, ks_test), True, ""),
    ((ks_left_limits, ks_test), True, ""),
    ((ks_broadcast, ks_test_scipy_statistic), True, ""),
    ((ks_loop, ks_test_argmax_column), True, ""),
], ids=["stub", "gap between the means", "ECDFs evaluated at a's values only", "one-sided D (no abs)",
        "searchsorted on unsorted samples", "ECDFs divided by the pooled size", "calls mon.ks_statistic",
        "calls utils.monitoring.drift.ks_statistic", "calls scipy's ks_2samp (imported name)",
        "calls scipy.stats.kstest", "no Bonferroni correction", "Bonferroni not capped at 1",
        "Bonferroni with K = 10 hard-coded", "Bonferroni over the rows", "mean D over the columns",
        "drift decided on the uncorrected p", "calls mon.ks_test", "D from mon.ks_statistic",
        "solution", "variant: left limits of the ECDFs", "variant: broadcast ECDFs, D and p from ks_2samp",
        "variant: plain loops, p of the argmax column"])
def test_exercise_1(lab, capsys, answer, ok, says):
    _judge(capsys, 1, answer, ok, says, api=lab.api, P_ref=lab.P_ref, X_pool=lab.X_pool, y_pool=lab.y_pool,
           window=WINDOW, alpha=ALPHA)


def test_exercise_1_cases_tell_the_cap_and_k_apart(lab):
    """The check's cases include one where K * min(p) > 1 and one where K = 10 gives another p below 1."""
    cases = {name: (ref, cur) for name, ref, cur in lab08._ks_test_cases(lab.api, lab.P_ref, lab.X_pool, lab.y_pool, WINDOW)}
    ref, cur = cases["5 softmax-like outputs from the same distribution"]
    assert ref.shape[1] * min(_column_p(ref, cur)) > 1
    ref, cur = cases["3 outputs, one of them shifted"]
    assert 10 * min(_column_p(ref, cur)) < 1


def test_exercise_1_forbid_is_lifted(lab, capsys):
    """The forbidden helpers work again after the check."""
    _run(capsys, 1, ks_calls_mon, ks_test_calls_mon, api=lab.api, P_ref=lab.P_ref, X_pool=lab.X_pool,
         y_pool=lab.y_pool, window=WINDOW, alpha=ALPHA)
    a, b = np.arange(5.0), np.arange(3.0)
    assert mon.ks_statistic(a, b) == ks_2samp(a, b).statistic == scipy.stats.ks_2samp(a, b).statistic
    assert mon.ks_test(lab.P_ref, lab.P_ref).p_value == 1.0


# --------------------------------------------------------------------------- exercise 2


@pytest.fixture(scope="module")
def budget(lab):
    seen = {}

    def max_d(X):  # memoised: the check re-runs the same seeded windows
        key = X.tobytes()
        if key not in seen:
            seen[key] = mon.ks_test(lab.P_ref, lab.api(X)).statistic
        return seen[key]

    def calibrate(w, method="higher", q=1 - BUDGET, strict=True, null_seed=1000):
        null = np.array([max_d(mon.sample_window(lab.X_pool, lab.y_pool, w, seed=null_seed + k)[0]) for k in range(100)])
        threshold = np.quantile(null, q, method=method)
        shifted = np.array([max_d(mon.sample_window(lab.X_pool, lab.y_pool, w, "noise", 0.1, seed=2000 + k)[0])
                            for k in range(100)])
        return threshold, np.mean(shifted > threshold if strict else shifted >= threshold)

    ctx = dict(max_d=max_d, X_pool=lab.X_pool, y_pool=lab.y_pool, candidates=CANDIDATES, budget=BUDGET, target=TARGET)
    return types.SimpleNamespace(ctx=ctx, calibrate=calibrate, max_d=max_d)


def choose(calibrate, stop=lambda power: power >= TARGET, **kw):
    for w in CANDIDATES:
        threshold, power = calibrate(w, **kw)
        if stop(power):
            break
    return w, threshold, power


def calibrate_with(method="higher", q=None, strict=True):
    """calibrate(null, shifted, budget) of the exercise (the defaults) or with one slip."""
    def calibrate(null, shifted, budget):
        threshold = np.quantile(null, 1 - budget if q is None else q(budget), method=method)
        return threshold, np.mean(shifted > threshold if strict else shifted >= threshold)
    return calibrate


def calibrate_sorted(null, shifted, budget):
    """Right: the quantile by hand (the value at rank ceil((n - 1) (1 - budget)) of the sorted null), numpy
    numbers, the power as a count over the length."""
    ranked = np.sort(null)
    threshold = ranked[int(np.ceil((len(ranked) - 1) * (1 - budget) - 1e-12))]
    return threshold, np.count_nonzero(shifted > threshold) / len(shifted)


RIGHT = calibrate_with()
EX2 = {
    "stub": lambda c: ((lambda null, shifted, budget: (None, None)), None, None, None),
    "solution": lambda c: (RIGHT, *choose(c)),
    "variant: a Python int and floats": lambda c: (RIGHT, *(lambda w, t, p: (int(w), float(t), float(p)))(*choose(c))),
    "variant: the quantile by hand": lambda c: (calibrate_sorted, *choose(c)),
    "first candidate, no power check": lambda c: (RIGHT, CANDIDATES[0], *c(CANDIDATES[0])),
    "the threshold by the default (linear) quantile": lambda c: (calibrate_with("linear"), *choose(c, method="linear")),
    "the budget quantile instead of 1 - budget": lambda c: (calibrate_with(q=lambda b: b), *choose(c, q=BUDGET)),
    ">= instead of > in the power": lambda c: (calibrate_with(strict=False), *choose(c, strict=False)),
    "null windows with the shifted windows' seeds": lambda c: (RIGHT, *choose(c, null_seed=2000)),
    "the threshold of the window before the chosen one": lambda c: (RIGHT, *(
        lambda w, t, p: (w, c(CANDIDATES[CANDIDATES.index(w) - 1])[0], p))(*choose(c))),
    "the power in percent": lambda c: (RIGHT, *(lambda w, t, p: (w, t, 100 * p))(*choose(c))),
    "a window one step too short, with its own threshold and power": lambda c: (RIGHT, *(
        lambda w: (w, *c(w)))(CANDIDATES[CANDIDATES.index(choose(c)[0]) - 1])),
}
EX2_SAYS = {"stub": "should be a number", "first candidate, no power check": "is not the first candidate",
            "a window one step too short, with its own threshold and power": "is not the first candidate",
            "the power in percent": "chosen_power", ">= instead of > in the power": "the power of calibrate",
            "the threshold by the default (linear) quantile": "the threshold of calibrate",
            "the budget quantile instead of 1 - budget": "the threshold of calibrate"}


@pytest.mark.parametrize("name", list(EX2))
def test_exercise_2(budget, capsys, name):
    answer = EX2[name](budget.calibrate)
    ok = name == "solution" or name.startswith("variant")
    _judge(capsys, 2, answer, ok, EX2_SAYS.get(name, "chosen_threshold"), **budget.ctx)


def test_exercise_2_ties_matter_only_in_the_made_up_cases(budget):
    """At seed 0 the lab's windows give '>=' the same chosen numbers as '>' (hence the made-up cases), and
    each made-up case but the distinct one has a shifted value exactly at the threshold."""
    assert choose(budget.calibrate) == choose(budget.calibrate, strict=False)
    cases = lab08._calibrate_cases(BUDGET)
    assert sum(RIGHT(n, s, b)[1] != calibrate_with(strict=False)(n, s, b)[1] for _, n, s, b in cases) >= 3


def test_exercise_2_message_does_not_leak(budget, capsys):
    w, threshold, power = choose(budget.calibrate)
    _, out = _run(capsys, 2, RIGHT, w, threshold + 0.01, power, **budget.ctx)
    assert f"{threshold:.4f}" not in out and f"{threshold:.3f}" not in out, out
    assert "expected" not in out, out


# --------------------------------------------------------------------------- exercise 3


def make_finder(threshold, rule="bonferroni"):
    """The exercise's procedure (``rule="bonferroni"``) and plausible wrong ones."""
    def find(log):
        groups = log.groupby("client")
        stats = {c: (len(g), int((g["novelty"] > threshold).sum())) for c, g in groups}
        p = {c: scipy.stats.binomtest(k, n, 0.01, alternative="greater").pvalue for c, (n, k) in stats.items()}
        if rule == "bonferroni":
            return {c for c in p if p[c] * groups.ngroups < 0.01}
        if rule == "no correction":
            return {c for c in p if p[c] < 0.01}
        if rule == "per request":
            return {c for c in p if p[c] * len(log) < 0.01}
        if rule == "20 clients":
            return {c for c in p if p[c] * 20 < 0.01}
        if rule == "two-sided":
            return {c for c, (n, k) in stats.items()
                    if scipy.stats.binomtest(k, n, 0.01).pvalue * groups.ngroups < 0.01}
        if rule == "share above 5%":
            return {c for c, (n, k) in stats.items() if k / n > 0.05}
        if rule == "3 or more novel":
            return {c for c, (n, k) in stats.items() if k >= 3}
        if rule == "most novel client":
            best = max(stats, key=lambda c: stats[c][1] / stats[c][0])
            return {best} if stats[best][1] > 0 else set()
        if rule == "smallest p":
            return {min(p, key=p.get)}
        if rule == "busiest":
            return {log["client"].value_counts().index[0]}
        if rule == "threshold from the log":
            cut = np.quantile(log["novelty"], 0.99)
            return {c for c, g in groups
                    if scipy.stats.binomtest(int((g["novelty"] > cut).sum()), len(g), 0.01,
                                             alternative="greater").pvalue * groups.ngroups < 0.01}
        raise ValueError(rule)
    return find


def find_binom_sf(threshold):
    """Right: the binomial tail by binom.sf, the level divided instead of the p-value multiplied, a frozenset."""
    def find(log):
        m = log["client"].nunique()
        out = []
        for c in log["client"].unique():
            novel = log.loc[log["client"] == c, "novelty"] > threshold
            if scipy.stats.binom.sf(novel.sum() - 1, len(novel), 0.01) < 0.01 / m:
                out.append(c)
        return frozenset(out)
    return find


def find_vectorised(threshold):
    """Right: one groupby aggregation."""
    def find(log):
        agg = log.assign(novel=log["novelty"] > threshold).groupby("client")["novel"].agg(["sum", "size"])
        p = [scipy.stats.binomtest(int(k), int(n), 0.01, alternative="greater").pvalue
             for k, n in zip(agg["sum"], agg["size"])]
        return set(agg.index[np.minimum(1, np.array(p) * len(agg)) < 0.01])
    return find


EX3 = ["stub", "solution", "variant: binom.sf and alpha / m", "variant: one groupby aggregation",
       "no Bonferroni correction", "Bonferroni over the requests", "Bonferroni over 20 clients hard-coded",
       "a two-sided binomial test",
       "share of novel requests above 5%", "3 or more novel requests", "the client with the largest novel share",
       "the client with the smallest p-value", "the busiest client", "the 99% novelty quantile of the log itself",
       "a sorted list instead of a set"]


@pytest.mark.parametrize("name", EX3)
def test_exercise_3(lab, capsys, name):
    t = lab.novel_threshold
    rules = {"no Bonferroni correction": "no correction", "Bonferroni over the requests": "per request",
             "Bonferroni over 20 clients hard-coded": "20 clients", "a two-sided binomial test": "two-sided",
             "share of novel requests above 5%": "share above 5%",
             "3 or more novel requests": "3 or more novel", "the client with the largest novel share": "most novel client",
             "the client with the smallest p-value": "smallest p", "the busiest client": "busiest",
             "the 99% novelty quantile of the log itself": "threshold from the log"}
    answer = {"stub": lambda log: set(), "solution": make_finder(t), "variant: binom.sf and alpha / m": find_binom_sf(t),
              "variant: one groupby aggregation": find_vectorised(t),
              "a sorted list instead of a set": lambda log: sorted(make_finder(t)(log))}.get(name)
    answer = answer or make_finder(t, rules[name])
    ok = name == "solution" or name.startswith("variant")
    says = {"stub": "was not found", "a sorted list instead of a set": "return a set"}.get(name, "")
    _judge(capsys, 3, (answer,), ok, says, log_a=lab.log_a, truth_a=lab.truth_a, log_b=lab.log_b,
           truth_b=lab.truth_b, novel_threshold=t)


@pytest.mark.parametrize("rule", ["no correction", "per request", "20 clients", "two-sided", "share above 5%",
                                  "3 or more novel",
                                  "most novel client", "smallest p", "busiest"])
def test_exercise_3_wrong_rules_fail_on_the_checks_own_logs(lab, rule):
    """Each wrong rule gives another answer than the exercise's on at least one of the check's logs
    (not only on the two lab logs, where some of them happen to agree)."""
    t = lab.novel_threshold
    logs = [lab08._synthetic_log(i, n, sizes, special, t) for i, (_, n, sizes, special) in enumerate(lab08._LOGS, 1)]
    right, wrong = make_finder(t), make_finder(t, rule)
    assert any(right(log) != wrong(log) for log in logs)
    assert all(right(log) == lab08._flagged(log, t) for log in logs)


# --------------------------------------------------------------------------- exercise 4


def make_alert(result, start, end, time):
    if result.p_value < result.threshold / 100:
        severity = "critical"
    elif result.p_value < result.threshold:
        severity = "warning"
    else:
        severity = "info"
    return mon.Alert(index=end, time=time, detector=result.detector, severity=severity,
                     statistic=result.statistic, p_value=result.p_value, threshold=result.threshold,
                     evidence={"window": [start, end], "column": result.details["column"]})


def alert_with(**change):
    """make_alert with one slip: a changed severity rule or a changed field."""
    def make(result, start, end, time):
        a = make_alert(result, start, end, time)
        fields = dict(a.__dict__)
        p, t = result.p_value, result.threshold
        rule = change.get("rule")
        if rule == "<=":
            fields["severity"] = "critical" if p <= t / 100 else "warning" if p <= t else "info"
        elif rule == "<= critical":
            fields["severity"] = "critical" if p <= t / 100 else "warning" if p < t else "info"
        elif rule == "<= warning":
            fields["severity"] = "critical" if p < t / 100 else "warning" if p <= t else "info"
        elif rule == "cut 10":
            fields["severity"] = "critical" if p < t / 10 else "warning" if p < t else "info"
        elif rule == "alpha 0.05":
            fields["severity"] = "critical" if p < 0.0005 else "warning" if p < 0.05 else "info"
        elif rule == "from drift":
            fields["severity"] = "warning" if result.drift else "info"
        for key in ("index", "time", "detector", "statistic", "evidence"):
            if key in change:
                fields[key] = change[key](result, start, end, time)
        return mon.Alert(**fields)
    return make


def alert_variant(result, start, end, time):
    """Right: mon.severity, a tuple window (JSON makes it a list), numpy numbers."""
    return mon.Alert(index=np.int64(end), time=np.float64(time), detector=result.detector,
                     severity=mon.severity(result.p_value, result.threshold), statistic=np.float64(result.statistic),
                     p_value=result.p_value, threshold=result.threshold,
                     evidence={"column": int(result.details["column"]), "window": (start, end)})


def alert_times_100(result, start, end, time):
    """Right: the same rule written as p * 100 < threshold."""
    a = make_alert(result, start, end, time)
    p, t = result.p_value, result.threshold
    return mon.Alert(**{**a.__dict__, "severity": "critical" if p * 100 < t else "warning" if p < t else "info"})


@pytest.mark.parametrize("answer, ok, says", [
    (lambda result, start, end, time: None, False, "should return a mon.Alert"),
    (alert_with(rule="<="), False, "exactly at"),
    (alert_with(rule="<= critical"), False, "exactly at threshold / 100"),
    (alert_with(rule="<= warning"), False, "exactly at the threshold"),
    (alert_with(rule="cut 10"), False, "severity"),
    (alert_with(rule="alpha 0.05"), False, "severity"),
    (alert_with(rule="from drift"), False, "severity"),
    (alert_with(index=lambda r, s, e, t: s), False, "index"),
    (alert_with(detector=lambda r, s, e, t: "ks"), False, "detector"),
    (alert_with(time=lambda r, s, e, t: float(e)), False, "time"),
    (alert_with(statistic=lambda r, s, e, t: r.p_value), False, "statistic"),
    (alert_with(evidence=lambda r, s, e, t: {"window": [s, e], "column": int(np.argmin(r.details.get("d_per_column", [0, 1])))}),
     False, "evidence"),
    (alert_with(evidence=lambda r, s, e, t: {"window": [s, e]}), False, "evidence"),
    (make_alert, True, ""),
    (alert_variant, True, ""),
    (alert_times_100, True, ""),
], ids=["stub", "<= at both boundaries", "<= at threshold / 100", "<= at the threshold", "critical below threshold / 10",
        "the threshold 0.05 hard-coded", "severity from result.drift", "index = start", "detector 'ks' hard-coded",
        "time = end", "statistic = p-value", "evidence column of the smallest gap", "evidence without the column",
        "solution", "variant: mon.severity, tuple window, numpy numbers", "variant: p * 100 < threshold"])
def test_exercise_4(lab, capsys, answer, ok, says):
    _judge(capsys, 4, (answer,), ok, says, api=lab.api, P_ref=lab.P_ref, X_pool=lab.X_pool, y_pool=lab.y_pool,
           window=WINDOW, alpha=ALPHA)


# --------------------------------------------------------------------------- exercises 5 and 6


@pytest.fixture(scope="module")
def sybil(lab):
    """The context of exercises 5 and 6, and the thief of log A."""
    utils.setup(0, plots=False)
    ds = data.load("digits", seed=0)
    rng = np.random.default_rng(0)
    X_ref = ds.X_val[np.sort(rng.choice(len(ds.X_val), 200, replace=False))]
    thief = str(lab.log_a["client"][lab.truth_a == "extraction"].iloc[0])
    ctx = dict(X_pool=lab.X_pool, y_pool=lab.y_pool, X_ref=X_ref, novel_threshold=lab.novel_threshold, seed=0)
    return types.SimpleNamespace(ctx=ctx, thief=thief, t=lab.novel_threshold)


def deal(log, thief, k, t, order="novel first", name="sybil", start=0):
    """The thief's requests dealt to k ids: novel ones first, in time order, or in contiguous blocks."""
    out = log.copy()
    rows = out.index[out["client"] == thief]
    novel = (out.loc[rows, "novelty"] > t).to_numpy()
    if order == "novel first":
        rows = list(rows[novel]) + list(rows[~novel])
        ids = [f"{thief}-{name}{start + i % k}" for i in range(len(rows))]
    elif order == "time":
        ids = [f"{thief}-{name}{start + i % k}" for i in range(len(rows))]
    else:  # blocks
        ids = [f"{thief}-{name}{start + i * k // len(rows)}" for i in range(len(rows))]
    out.loc[list(rows), "client"] = ids
    return out


def fewest(t, order="novel first", minus=0, **kw):
    def attack(log, thief):
        for k in range(1, (log["client"] == thief).sum() + 1):
            out = deal(log, thief, k, t, order, **kw)
            if not lab08._flagged(out, t) - set(log["client"]):
                return deal(log, thief, max(1, k - minus), t, order, **kw)
    return attack


def keep_own_id(t):
    def attack(log, thief):
        out = fewest(t)(log, thief)
        out.loc[out["client"] == f"{thief}-sybil0", "client"] = thief
        return out
    return attack


def to_honest_ids(t):
    def attack(log, thief):
        out = fewest(t)(log, thief)
        honest = sorted(set(log["client"]) - {thief})
        for i, c in enumerate(sorted(set(out["client"]) - set(log["client"]))):
            out.loc[out["client"] == c, "client"] = honest[i % len(honest)]
        return out
    return attack


def drop_novel(t):
    def attack(log, thief):
        return log[~((log["client"] == thief) & (log["novelty"] > t))].copy()
    return attack


def shuffled_novel(t):
    """Right: novel requests dealt in a random order, other names, plain loop."""
    def attack(log, thief):
        rng = np.random.default_rng(5)
        rows = log.index[log["client"] == thief]
        novel = [r for r in rows if log.at[r, "novelty"] > t]
        plain = [r for r in rows if log.at[r, "novelty"] <= t]
        order = list(rng.permutation(novel)) + list(rng.permutation(plain))
        k = 0
        while True:
            k += 1
            out = log.copy()
            for i, r in enumerate(order):
                out.at[r, "client"] = f"acct{i % k:03d}"
            if not lab08._flagged(out, t) & {f"acct{j:03d}" for j in range(k)}:
                return out
    return attack


EX5 = {
    "stub": (lambda t: lambda log, thief: log.copy(), "still sends requests"),
    "solution": (lambda t: fewest(t), ""),
    "variant: a random deal of the novel requests, other ids": (shuffled_novel, ""),
    "one new id per request": (lambda t: lambda log, thief: deal(log, thief, 10 ** 6, t), "fewer do too"),
    "contiguous blocks of the thief's requests": (lambda t: fewest(t, "blocks"), "fewer do too"),
    "an even deal over one id fewer than needed": (lambda t: fewest(t, minus=1), "still flags"),
    "five ids, always": (lambda t: lambda log, thief: deal(log, thief, 5, t), "still flags"),
    "the thief keeps its own id for one share": (keep_own_id, "own id"),
    "the requests moved to honest clients' ids": (to_honest_ids, "already were clients"),
    "the novel requests dropped": (drop_novel, "keep every request"),
}


@pytest.mark.parametrize("name", list(EX5))
def test_exercise_5(lab, sybil, capsys, name):
    make, says = EX5[name]
    ok = name == "solution" or name.startswith("variant")
    _judge(capsys, 5, (make(sybil.t),), ok, says, log_a=lab.log_a, truth_a=lab.truth_a, **sybil.ctx)


def test_exercise_5_the_even_deal_escapes_where_the_thief_was_caught(lab, sybil):
    """The premise: Ex3's test flags the thief of log A, and flags none of the even deal's ids."""
    t = sybil.t
    assert lab08._flagged(lab.log_a, t) == {sybil.thief}
    k = lab08._fewest_even(lab.log_a, sybil.thief, t)
    assert 2 <= k < (lab.log_a["client"] == sybil.thief).sum()
    assert not lab08._flagged(lab08._even_deal(lab.log_a, sybil.thief, k, t), t) - set(lab.log_a["client"])


def group_test(t, few=lab08.FEW, against="rest", alternative="greater", name="novel", group="small"):
    """The exercise's group test and plausible wrong ones."""
    def find(log):
        agg = log.assign(novel=log["novelty"] > t).groupby("client")["novel"].agg(["sum", "size"])
        small = (agg["size"] < few) if group == "small" else (agg["sum"] > 0)
        if not small.any() or small.all():
            return set()
        a, b = agg[small], agg[~small]
        if against == "rest":
            p = scipy.stats.fisher_exact([[a["sum"].sum(), a["size"].sum() - a["sum"].sum()],
                                          [b["sum"].sum(), b["size"].sum() - b["sum"].sum()]],
                                         alternative=alternative).pvalue
        elif against == "1%":
            p = scipy.stats.binomtest(int(a["sum"].sum()), int(a["size"].sum()), 0.01, alternative="greater").pvalue
        else:  # no test
            p = 0.0
        if p >= 0.01:
            return set()
        return set(a.index[a["sum"] > 0]) if name == "novel" else set(a.index)
    return find


def group_hypergeom(t):
    """Right: the one-sided Fisher p-value as a hypergeometric tail, the small accounts by value_counts."""
    def find(log):
        sizes = log["client"].value_counts()
        small = set(sizes.index[sizes < 10])
        if not small or len(small) == len(sizes):
            return frozenset()
        novel = log["novelty"] > t
        in_small = log["client"].isin(small)
        k, n_small, n_novel = int((novel & in_small).sum()), int(in_small.sum()), int(novel.sum())
        p = scipy.stats.hypergeom.sf(k - 1, len(log), n_novel, n_small)
        return frozenset(log["client"][novel & in_small]) if p < 0.01 else frozenset()
    return find


EX6 = {
    "stub": (lambda t: lambda log: set(), "were not found"),
    "solution": (lambda t: group_test(t), ""),
    "variant: a hypergeometric tail, a frozenset": (group_hypergeom, ""),
    "the per-client test of exercise 3": (lambda t: make_finder(t), "were not found"),
    "every small account with a novel request, no group test": (lambda t: group_test(t, against="none"), "names"),
    "the small accounts against the expected 1%": (lambda t: group_test(t, against="1%"), "names"),
    "a two-sided Fisher test": (lambda t: group_test(t, alternative="two-sided"), "names"),
    "every small account named": (lambda t: group_test(t, name="all"), "names"),
    "small as at most 10 requests": (lambda t: group_test(t, few=lab08.FEW + 1), "names"),
    "the group of clients with a novel request": (lambda t: group_test(t, group="novel"), "accused"),
    "a list instead of a set": (lambda t: lambda log: sorted(group_test(t)(log)), "return a set"),
}


@pytest.mark.parametrize("name", list(EX6))
def test_exercise_6(sybil, capsys, name):
    make, says = EX6[name]
    ok = name == "solution" or name.startswith("variant")
    _judge(capsys, 6, (make(sybil.t),), ok, says, **sybil.ctx)


@pytest.mark.parametrize("seed", [0, 1])
def test_exercise_6_the_group_test_separates_sybils_from_honest_clients(seed):
    """On the check's attacked logs the group test names exactly the Sybils, on honest logs nobody (two data
    seeds; the seeds 0-9 run of the lab covers the rest)."""
    utils.setup(seed, plots=False)
    ds = data.load("digits", seed=seed)
    rng = np.random.default_rng(seed)
    ref_idx = np.sort(rng.choice(len(ds.X_val), 200, replace=False))
    rest = np.setdiff1d(np.arange(len(ds.X_val)), ref_idx)
    X_ref = ds.X_val[ref_idx]
    X_pool, y_pool = np.concatenate([ds.X_test, ds.X_val[rest]]), np.concatenate([ds.y_test, ds.y_val[rest]])
    t = metrics.threshold_at_fpr(mon.reference_novelty(X_ref), 0.01)
    for _, log, thief in lab08._sybil_logs(X_pool, y_pool, X_ref, seed):
        attacked = lab08._even_deal(log, thief, lab08._fewest_even(log, thief, t), t)
        assert lab08._group_flagged(attacked, t) == set(attacked["client"]) - set(log["client"])
        assert lab08._group_flagged(log, t) == set()
