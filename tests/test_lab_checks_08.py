"""utils.lab_checks.lab08: the lab's stubs fail, the solution's answers pass, a wrong answer fails."""
from __future__ import annotations

import types

import numpy as np
import pytest
import scipy.stats

import utils
from utils import data, metrics, training
from utils import monitoring as mon
from utils.lab_checks import lab08

pytestmark = pytest.mark.notebooks  # about 15-30 s: it trains the MLP and runs the window simulation

WINDOW, ALPHA, BUDGET = 200, 0.05, 0.02
CANDIDATES, TARGET = (100, 200, 300), 0.9


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


def _passes(capsys, n, *answer, **context):
    ok = lab08.check(n, *answer, **context)
    out = capsys.readouterr().out
    assert ok is True and "✅ PASSED" in out, out
    return out


def _fails(capsys, n, *answer, **context):
    ok = lab08.check(n, *answer, **context)
    out = capsys.readouterr().out
    assert ok is False and "❌ NOT SOLVED YET" in out, out
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


def test_exercise_1(lab, capsys):
    ctx = dict(api=lab.api, P_ref=lab.P_ref, X_pool=lab.X_pool, y_pool=lab.y_pool, window=WINDOW, alpha=ALPHA)
    _fails(capsys, 1, lambda a, b: 0.0, lambda ref, cur, alpha=0.05: (0.0, 1.0, False), **ctx)
    _passes(capsys, 1, ks_statistic, ks_test, **ctx)
    # the gap between the means, not between the ECDFs
    mean_gap = lambda a, b: float(abs(np.mean(a) - np.mean(b)))  # noqa: E731
    assert "my_ks_statistic" in _fails(capsys, 1, mean_gap, ks_test, **ctx)
    # no Bonferroni correction
    def uncorrected(ref, cur, alpha=0.05):
        d, p, _ = ks_test(ref, cur, alpha)
        p = p / ref.shape[1]
        return d, p, p < alpha
    assert "corrected p-value" in _fails(capsys, 1, ks_statistic, uncorrected, **ctx)


# --------------------------------------------------------------------------- exercise 2


def test_exercise_2(lab, capsys):
    seen = {}

    def max_d(X):  # memoised: the check re-runs the same seeded windows
        key = X.tobytes()
        if key not in seen:
            seen[key] = mon.ks_test(lab.P_ref, lab.api(X)).statistic
        return seen[key]

    ctx = dict(max_d=max_d, X_pool=lab.X_pool, y_pool=lab.y_pool, candidates=CANDIDATES, budget=BUDGET, target=TARGET)
    _fails(capsys, 2, None, None, None, **ctx)
    w, threshold, power = mon.window_for_budget(max_d, lab.X_pool, lab.y_pool, CANDIDATES, BUDGET, TARGET,
                                                "noise", 0.1, longest_if_none=True)
    _passes(capsys, 2, w, threshold, power, **ctx)
    assert "chosen_threshold" in _fails(capsys, 2, w, threshold + 0.01, power, **ctx)


# --------------------------------------------------------------------------- exercise 3


def test_exercise_3(lab, capsys):
    def find(log, threshold=lab.novel_threshold, correct=True):
        flagged = set()
        groups = log.groupby("client")
        for client, g in groups:
            k = int((g["novelty"] > threshold).sum())
            p = scipy.stats.binomtest(k, len(g), 0.01, alternative="greater").pvalue
            if p * (groups.ngroups if correct else 1) < 0.01:
                flagged.add(client)
        return flagged

    ctx = dict(log_a=lab.log_a, truth_a=lab.truth_a, log_b=lab.log_b, truth_b=lab.truth_b)
    assert "was not found" in _fails(capsys, 3, lambda log: set(), **ctx)
    _passes(capsys, 3, find, **ctx)
    # the busiest clients, the naive guess for a thief
    busiest = lambda log: {log["client"].value_counts().index[0]}  # noqa: E731
    _fails(capsys, 3, busiest, **ctx)
    assert "return a set" in _fails(capsys, 3, lambda log: sorted(find(log)), **ctx)


# --------------------------------------------------------------------------- exercise 4


def make_alert(result, start, end, time, cut=100):
    if result.p_value < result.threshold / cut:
        severity = "critical"
    elif result.p_value < result.threshold:
        severity = "warning"
    else:
        severity = "info"
    return mon.Alert(index=end, time=time, detector=result.detector, severity=severity,
                     statistic=result.statistic, p_value=result.p_value, threshold=result.threshold,
                     evidence={"window": [start, end], "column": result.details["column"]})


def test_exercise_4(lab, capsys):
    ctx = dict(api=lab.api, P_ref=lab.P_ref, X_pool=lab.X_pool, y_pool=lab.y_pool, window=WINDOW, alpha=ALPHA)
    assert "should return a mon.Alert" in _fails(capsys, 4, lambda result, start, end, time: None, **ctx)
    _passes(capsys, 4, make_alert, **ctx)
    assert "severity" in _fails(capsys, 4, lambda r, s, e, t: make_alert(r, s, e, t, cut=10), **ctx)
