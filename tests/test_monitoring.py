"""Unit tests of utils.monitoring (08_monitoring): stream simulation, drift tests, attack scores, alerts."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from utils import metrics
from utils import monitoring as mon
from utils.validation import ValidationError


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pool():
    """120 tiny 'digits': a bright bar whose position is the class (4 classes), on a dark background."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    X = np.zeros((120, 1, 8, 8), dtype=np.float32)
    for i, c in enumerate(y):
        X[i, 0, 1:7, 2 * c] = rng.uniform(0.6, 1.0)
        X[i, 0, 1:7, 2 * c + 1] = rng.uniform(0.3, 0.6)
    return X, y


def toy_proba(X):
    """A fixed 'model': softmax over the brightness of the four column pairs."""
    X = np.asarray(X).reshape(len(X), 8, 8)
    score = np.stack([X[:, :, 2 * c:2 * c + 2].sum((1, 2)) for c in range(4)], 1)
    e = np.exp(score - score.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def naive_mmd2(X, Y, bw):
    k = lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * bw ** 2))  # noqa: E731
    n, m = len(X), len(Y)
    xx = sum(k(X[i], X[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(Y[i], Y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(X[i], Y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


# --------------------------------------------------------------------------- drift simulation


@pytest.mark.parametrize("kind,level", [("noise", 0.2), ("blur", 0.8), ("rotation", 25.0), ("none", 0.0),
                                        ("prior", 0.5)])
def test_apply_drift_shape_range_copy_and_determinism(pool, kind, level):
    X, _ = pool
    before = X.copy()
    out = mon.apply_drift(X[:10], kind, level, seed=3)
    assert out.shape == (10, 1, 8, 8) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert np.array_equal(X, before), "the input was modified"
    assert np.array_equal(out, mon.apply_drift(X[:10], kind, level, seed=3))
    if kind in ("none", "prior"):
        assert np.array_equal(out, X[:10])
    else:
        assert not np.allclose(out, X[:10])


def test_apply_drift_per_sample_levels_ramp(pool):
    X, _ = pool
    out = mon.apply_drift(X[:4], "blur", np.array([0.0, 0.0, 1.0, 1.0]))
    assert np.array_equal(out[:2], X[:2])
    assert np.allclose(out[2:], mon.apply_drift(X[2:4], "blur", 1.0))


def test_apply_drift_rejects_bad_input(pool):
    X, _ = pool
    with pytest.raises(ValidationError, match="apply_drift: kind = 'fog' is not one of the choices; kind must be one of"):
        mon.apply_drift(X, "fog", 1.0)
    with pytest.raises(ValidationError, match=r"shape \(120, 64\); images must have shape \(N, C, H, W\)"):
        mon.apply_drift(X.reshape(len(X), -1), "noise", 0.1)
    with pytest.raises(ValidationError, match="empty"):
        mon.apply_drift(X[:0], "noise", 0.1)
    with pytest.raises(ValidationError, match="level = -0.1 is negative for 'noise'; level must be >= 0"):
        mon.apply_drift(X, "noise", -0.1)
    # new refusals: 0-255 pixels (the result would be clipped to 1 silently), a level per image of the wrong length
    with pytest.raises(ValidationError, match=r"apply_drift: images have values in \[0.000, 254.715\]; images must be in \[0, 1\] \(divide 0-255 pixels by 255\)"):
        mon.apply_drift(X * 255, "noise", 0.1)
    with pytest.raises(ValidationError, match="level = .* is neither a number nor 120 numbers"):
        mon.apply_drift(X, "blur", np.ones(3))
    with pytest.raises(ValidationError, match="level = 'a' is neither a number"):
        mon.apply_drift(X, "blur", "a")
    with pytest.raises(ValidationError, match="seed = -1 is out of range"):
        mon.apply_drift(X, "noise", 0.1, seed=-1)


def test_prior_weights(pool):
    _, y = pool
    w0 = mon.prior_weights(y, 0.0, classes=(0,))
    assert np.isclose(w0.sum(), 1) and np.allclose(w0, 1 / len(y))
    w1 = mon.prior_weights(y, 1.0, classes=(0,))
    assert np.isclose(w1[y == 0].sum(), 1) and w1[y != 0].sum() == 0
    with pytest.raises(ValidationError, match=r"prior_weights: level \(a share of traffic\) = 1.5 is out of range"):
        mon.prior_weights(y, 1.5)
    with pytest.raises(ValidationError, match="none of the classes"):
        mon.prior_weights(y, 0.5, classes=(7,))
    with pytest.raises(ValidationError, match="y have dtype float64; y must be integer class indices"):
        mon.prior_weights(y.astype(float), 0.5)


def test_sample_window(pool):
    X, y = pool
    Xw, yw = mon.sample_window(X, y, 50, seed=1)
    Xw2, _ = mon.sample_window(X, y, 50, seed=1)
    assert Xw.shape == (50, 1, 8, 8) and yw.shape == (50,)
    assert np.array_equal(Xw, Xw2)
    assert len(np.unique(Xw.reshape(50, -1), axis=0)) == 50, "a window without replacement has no duplicates"
    _, yp = mon.sample_window(X, y, 60, "prior", 1.0, seed=1)
    assert set(yp) <= {0, 1, 2}
    with pytest.raises(ValidationError, match=r"n \(the window length\) = 1 is out of range; .* must be an integer >= 2"):
        mon.sample_window(X, y, 1)
    with pytest.raises(ValidationError, match="n .* = 10.0 is not an integer"):
        mon.sample_window(X, y, 10.0)
    with pytest.raises(ValidationError, match="without replacement"):
        mon.sample_window(X, y, 500)
    with pytest.raises(ValidationError, match="119 y_pool for 120 pool images; give one label per pool image"):
        mon.sample_window(X, y[:-1], 10)


def test_level_for_and_describe():
    assert mon.level_for("noise", 0.5) == pytest.approx(0.15)
    assert mon.describe_drift("rotation", 20) == "rotation 20°"
    assert mon.describe_drift("noise", 0) == "no drift"
    with pytest.raises(ValidationError, match=r"level_for: strength = 2 is out of range; strength must be a number in \[0, 1\]"):
        mon.level_for("noise", 2)
    # was a bare TypeError from comparing a string with 0
    with pytest.raises(ValidationError, match="level_for: strength = 'a' is not a finite number; strength must be"):
        mon.level_for("noise", "a")
    with pytest.raises(ValidationError, match="level_for: kind = 'fog' is not one of the choices"):
        mon.level_for("fog", 0.5)
    with pytest.raises(ValidationError, match="describe_drift: kind = 'fog'"):
        mon.describe_drift("fog", 1)


def test_extraction_queries(pool):
    X, _ = pool
    q = mon.extraction_queries(X, 21, seed=0)
    assert q.shape == (21, 1, 8, 8) and q.min() >= 0 and q.max() <= 1
    assert np.array_equal(q, mon.extraction_queries(X, 21, seed=0))


def test_simulate_stream(pool):
    X, y = pool
    segs = [mon.Segment("normal", 100), mon.Segment("ramp", 60, "noise", 0.0, 0.3),
            mon.Segment("attacks", 80, adversarial=0.25, extraction=0.25)]
    attack = lambda Xa, ya: np.clip(Xa + 0.1, 0, 1)  # noqa: E731
    s = mon.simulate_stream(X, y, segs, attack=attack, seed=5, n_clients=5)
    assert len(s) == 240 and s.X.shape == (240, 1, 8, 8) and np.all(np.diff(s.time) > 0)
    assert [(g["start"], g["end"]) for g in s.segments] == [(0, 100), (100, 160), (160, 240)]
    assert [g["name"] for g in s.onsets()] == ["ramp", "attacks"]
    assert set(s.source[:160]) == {"benign"} and {"adversarial", "extraction"} <= set(s.source[160:])
    assert (s.y[s.source == "extraction"] == -1).all()
    assert s.level[100] == 0 and s.level[159] == pytest.approx(0.3)
    assert s.client[s.source == "extraction"][0] not in set(s.client[s.source == "benign"])
    # normal traffic walks through the pool: no image twice in 100 requests
    assert len(np.unique(s.X[:100].reshape(100, -1), axis=0)) == 100
    again = mon.simulate_stream(X, y, segs, attack=attack, seed=5, n_clients=5)
    assert np.array_equal(s.X, again.X) and np.array_equal(s.client, again.client)
    frame = s.frame()
    assert list(frame.columns[:4]) == ["index", "time", "client", "source"] and len(frame) == 240
    with pytest.raises(ValidationError, match="pass attack"):
        mon.simulate_stream(X, y, segs, seed=5)
    with pytest.raises(ValidationError, match="at least one Segment"):
        mon.simulate_stream(X, y, [])
    with pytest.raises(ValidationError, match=r"n_clients = 99 is out of range; n_clients must be an integer in \[1, 98\]"):
        mon.simulate_stream(X, y, segs[:1], n_clients=99)
    with pytest.raises(ValidationError, match="rate .* = 0 is out of range"):
        mon.simulate_stream(X, y, segs[:1], rate=0)
    with pytest.raises(ValidationError, match="Segment 'x': kind = 'fog' is not one of the choices"):
        mon.Segment("x", 10, "fog")
    with pytest.raises(ValidationError, match="Segment 'x': n = 0 is out of range"):
        mon.Segment("x", 0)
    with pytest.raises(ValidationError, match="the attack shares must add up to at most 1"):
        mon.Segment("x", 10, adversarial=0.6, extraction=0.6)


# --------------------------------------------------------------------------- drift detectors


def test_ks_statistic_matches_scipy():
    rng = np.random.default_rng(0)
    cases = [(rng.normal(size=30), rng.normal(0.5, 1, size=45)),
             (rng.integers(0, 4, size=25).astype(float), rng.integers(0, 5, size=35).astype(float)),
             (np.array([1.0, 2.0]), np.array([1.0, 2.0]))]
    for a, b in cases:
        assert mon.ks_statistic(a, b) == pytest.approx(scipy.stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_ks_test_bonferroni_and_decision():
    rng = np.random.default_rng(0)
    ref, same = rng.dirichlet(np.ones(4), size=80), rng.dirichlet(np.ones(4), size=60)
    shifted = rng.dirichlet([3.0, 1, 1, 1], size=60)
    ref_before = ref.copy()
    r = mon.ks_test(ref, shifted, 0.05)
    p_cols = [scipy.stats.ks_2samp(ref[:, k], shifted[:, k]).pvalue for k in range(4)]
    assert r.p_value == pytest.approx(min(1, 4 * min(p_cols)))
    assert r.details["p_uncorrected"] == pytest.approx(min(p_cols))
    assert r.drift and r.detector == "ks"
    assert not mon.ks_test(ref, same, 0.05).drift
    assert np.array_equal(ref, ref_before)


@pytest.mark.parametrize("detector", [mon.ks_test, mon.mmd_test, mon.c2st])
def test_detectors_reject_bad_input(detector):
    rng = np.random.default_rng(0)
    a = rng.random((20, 4))
    name = detector.__name__
    with pytest.raises(ValidationError, match=f"{name}: reference samples have 0 rows; reference samples need at least 2"):
        detector(a[:0], a)
    with pytest.raises(ValidationError, match="feature dimensions differ"):
        detector(a, rng.random((20, 5)))
    with pytest.raises(ValidationError, match="current samples need at least 2"):
        detector(a, a[:1])
    with pytest.raises(ValidationError, match="NaN"):
        detector(a, np.full((5, 4), np.nan))
    with pytest.raises(ValidationError, match=r"alpha \(the significance level\) = 1.5 is out of range; .* in \(0, 1\)"):
        detector(a, a, alpha=1.5)
    with pytest.raises(ValidationError, match="alpha .* = True is not a finite number"):
        detector(a, a, alpha=True)
    with pytest.raises(ValidationError, match="current samples have dtype <U1"):
        detector(a, np.full((5, 4), "x"))


def test_mmd2_matches_a_naive_implementation():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(7, 3)), rng.normal(0.4, 1, size=(9, 3))
    assert mon.mmd2(X, Y, bandwidth=1.3) == pytest.approx(naive_mmd2(X, Y, 1.3), rel=1e-10)
    Z = np.concatenate([X, Y])
    d = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1))[np.triu_indices(16, 1)]
    assert mon.median_bandwidth(Z) == pytest.approx(np.median(d))
    assert mon.mmd2(X, Y) == pytest.approx(naive_mmd2(X, Y, np.median(d)), rel=1e-10)


def test_mmd_test_permutations():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 5))
    Xc = X.copy()
    same = mon.mmd_test(X, rng.normal(size=(30, 5)), n_permutations=99, seed=0)
    moved = mon.mmd_test(X, rng.normal(1.0, 1, size=(30, 5)), n_permutations=99, seed=0)
    assert np.array_equal(X, Xc)
    assert moved.drift and moved.p_value == pytest.approx(1 / 100)
    assert not same.drift and 0 < same.p_value <= 1
    assert same.p_value * 100 == pytest.approx(round(same.p_value * 100)), "p = (1 + count) / (1 + permutations)"
    assert mon.mmd_test(X, X[::-1] + 0.01, 50, seed=4).p_value == mon.mmd_test(X, X[::-1] + 0.01, 50, seed=4).p_value
    with pytest.raises(ValidationError, match="mmd_test: n_permutations = 0 is out of range"):
        mon.mmd_test(X, X, n_permutations=0)
    with pytest.raises(ValidationError, match="mmd_test: n_permutations = 9.5 is not an integer"):
        mon.mmd_test(X, X, n_permutations=9.5)
    with pytest.raises(ValidationError, match="bandwidth = 0 is out of range"):
        mon.mmd2(X, X, bandwidth=0)
    with pytest.raises(ValidationError, match="rbf_kernel: bandwidth = -1 is out of range"):
        mon.rbf_kernel(X, -1)


def test_c2st():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4))
    moved = mon.c2st(X, rng.normal(1.5, 1, size=(60, 4)), seed=0)
    same = mon.c2st(X, rng.normal(size=(60, 4)), seed=0)
    assert moved.drift and moved.statistic > 0.75
    assert not same.drift
    expected = scipy.stats.binomtest(round(moved.statistic * 60), 60, 0.5, alternative="greater").pvalue
    assert moved.p_value == pytest.approx(expected)


def test_sliding_windows_scan_delay_and_false_alarms():
    assert mon.sliding_windows(10, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    with pytest.raises(ValidationError, match="sliding_windows: window = 1 is out of range; window must be an integer >= 2"):
        mon.sliding_windows(10, 1)
    with pytest.raises(ValidationError, match="window = 20 is longer than the stream"):
        mon.sliding_windows(10, 20)
    with pytest.raises(ValidationError, match="step = 0 is out of range"):
        mon.sliding_windows(10, 4, 0)
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(60, 2))
    stream = np.concatenate([rng.normal(size=(100, 2)), rng.normal(3, 1, size=(60, 2))])
    scan = mon.scan_stream(ref, stream, "ks", window=40, step=20)
    assert list(scan.columns) == ["start", "end", "detector", "statistic", "p_value", "threshold", "drift"]
    assert len(scan) == 7 and not scan["drift"].iloc[0] and scan["drift"].iloc[-1]
    delay = mon.detection_delay(scan, onset=100)
    assert delay is not None and 0 < delay <= 60
    assert mon.detection_delay(scan.assign(drift=False), onset=100) is None
    segments = [{"start": 0, "end": 100, "normal": True}, {"start": 100, "end": 160, "normal": False}]
    normal = mon.normal_windows(scan, segments)
    assert normal.tolist() == [True, True, True, True, False, False, False]
    assert mon.stream_false_alarms(scan.assign(drift=True), segments) == 4
    mmd_scan = mon.scan_stream(ref, stream, "mmd", window=40, step=60, n_permutations=20, seed=1)
    assert len(mmd_scan) == 3 and mmd_scan["detector"].eq("mmd").all()
    with pytest.raises(ValidationError, match="feature dimensions"):
        mon.scan_stream(ref, stream[:, :1], "ks", window=40)
    with pytest.raises(ValidationError, match="scan_stream: detector = 'kl' is not one of the choices"):
        mon.scan_stream(ref, stream, "kl", window=40)
    with pytest.raises(ValidationError, match="scan_stream: window = 400 is longer than the stream"):
        mon.scan_stream(ref, stream, "ks", window=400)


def test_false_alarm_rate():
    r = [mon.DriftResult("ks", 0.1, p, 0.05, p < 0.05) for p in (0.01, 0.5, 0.2, 0.04)]
    assert mon.false_alarm_rate(r) == 0.5
    with pytest.raises(ValidationError, match="at least one"):
        mon.false_alarm_rate([])


def test_window_for_budget(pool):
    X, y = pool
    stat = lambda Xw: float(Xw.mean())  # noqa: E731  (noise clipped at 0 raises the mean)
    w, threshold, power = mon.window_for_budget(stat, X, y, (10, 40), 0.05, 0.9, "noise", 0.2, n=40)
    assert w in (10, 40) and power >= 0.9
    null = [stat(mon.sample_window(X, y, w, seed=1000 + k)[0]) for k in range(40)]
    assert np.mean(np.array(null) > threshold) <= 0.05
    assert mon.window_for_budget(stat, X, y, (10,), 0.05, 0.9, "noise", 0.0, n=20) == (None, None, None)
    # no shift at all: no window reaches the power target; the longest candidate is kept when asked
    w, threshold, power = mon.window_for_budget(stat, X, y, (10, 20), 0.05, 0.9, "noise", 0.0, n=20,
                                                longest_if_none=True)
    assert w == 20 and threshold is not None and power < 0.9
    with pytest.raises(ValidationError, match="window_for_budget: budget = 0 is out of range"):
        mon.window_for_budget(stat, X, y, (10,), 0, 0.9, "noise", 0.1, n=5)
    with pytest.raises(ValidationError, match="a candidate window = 1 is out of range"):
        mon.window_for_budget(stat, X, y, (1,), 0.05, 0.9, "noise", 0.1, n=5)


# --------------------------------------------------------------------------- attack detection


def test_squeeze_score_of_a_prediction_api(pool):
    """08_monitoring squeezes requests through the API (a NumPy predict_proba), not a torch model."""
    from utils.defenses import adversarial as ad

    X, _ = pool
    scores = ad.squeeze_score(toy_proba, X[:5], ad.BitDepth(2))
    assert scores.shape == (5,) and (scores >= 0).all() and (scores <= 2).all() and scores.max() > 0
    expected = np.abs(toy_proba(X[:5]) - toy_proba(np.round(X[:5] * 3) / 3)).sum(1)
    assert np.allclose(scores, expected, atol=1e-6)
    sq = np.round(X[:5])  # already 1-bit: squeezing to 1 bit changes nothing
    assert np.allclose(ad.squeeze_score(toy_proba, sq, ad.BitDepth(1)), 0)


def test_novelty_scores(pool):
    X, _ = pool
    ref, queries = X[:30], X[30:40]
    brute = np.sqrt(((queries.reshape(10, 1, -1) - ref.reshape(1, 30, -1)) ** 2).sum(-1)).min(1)
    assert np.allclose(mon.novelty_score(queries, ref, batch=3), brute)
    assert np.allclose(mon.novelty_score(ref, ref), 0)
    loo = mon.reference_novelty(ref)
    assert (loo > 0).all() and len(loo) == 30
    with pytest.raises(ValidationError, match="novelty_score: feature dimensions differ"):
        mon.novelty_score(queries[:, :, :4], ref)
    with pytest.raises(ValidationError, match="novelty_score: batch = 0 is out of range"):
        mon.novelty_score(queries, ref, batch=0)
    with pytest.raises(ValidationError, match="reference_novelty: reference inputs have 1 rows"):
        mon.reference_novelty(ref[:1])


def test_lesson_thresholds_and_precision_recall(pool):
    """08_monitoring sets its thresholds with metrics.threshold_at_fpr and scores flags with
    metrics.detection_metrics (monitoring's own copies are gone)."""
    X, _ = pool
    assert not hasattr(mon, "threshold_for") and not hasattr(mon, "precision_recall")
    clean = mon.novelty_score(X[20:], X[:20])  # 100 clean requests' novelty scores, no two alike
    assert len(np.unique(clean)) == 100
    for fpr in (0.05, 0.01):
        t = metrics.threshold_at_fpr(clean, fpr)
        assert int((clean > t).sum()) == int(fpr * 100), "exactly the nominal share of clean requests is flagged"
    m = metrics.detection_metrics(np.array([True, True, False, False]), np.array([True, False, True, False]))
    assert (m.precision, m.recall) == (0.5, 0.5)
    m = metrics.detection_metrics(np.array([False, False]), np.array([True, False]))
    assert (m.precision, m.recall) == (0.0, 0.0)


def test_client_report_flags_the_odd_client():
    rng = np.random.default_rng(5)
    clients = np.array(["a"] * 100 + ["b"] * 100 + ["t"] * 60)
    flag = np.r_[rng.random(200) < 0.01, rng.random(60) < 0.5]
    log = pd.DataFrame({"client": clients, "time": np.arange(260.0), "novel": flag})
    report = mon.client_report(log, {"novel": 0.01}, alpha=0.01)
    assert set(report.loc[report["flag_novel"], "client"]) == {"t"}
    assert report["requests"].sum() == 260
    with pytest.raises(ValidationError, match="lacks the columns"):
        mon.client_report(log.drop(columns="time"), {"novel": 0.01})
    with pytest.raises(ValidationError, match="empty"):
        mon.client_report(log.iloc[:0], {"novel": 0.01})
    with pytest.raises(ValidationError, match="client_report: the expected share of 'novel' = 0 is out of range"):
        mon.client_report(log, {"novel": 0})
    with pytest.raises(ValidationError, match="client_report: alpha .* = 0 is out of range"):
        mon.client_report(log, {"novel": 0.01}, alpha=0)


def test_embeddings_are_the_mlps_last_hidden_layer(pool):
    """08_monitoring runs MMD on models.hidden_activations(model, X): for the MLP, model.embed exactly."""
    import torch

    from utils.models import build_model, hidden_activations

    X, _ = pool
    assert not hasattr(mon, "embed")
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 3, hidden=(6, 5)).eval()
    e = hidden_activations(model, X[:7], batch_size=3)
    with torch.no_grad():
        expected = model.embed(torch.as_tensor(X[:7])).numpy()
    assert e.shape == (7, 5) and np.array_equal(e, expected.astype(np.float64))


# --------------------------------------------------------------------------- alerts and labels


def test_severity_and_alert_json(tmp_path):
    assert [mon.severity(p, 0.05) for p in (1e-4, 0.01, 0.2)] == ["critical", "warning", "info"]
    a = mon.Alert(index=250, time=12.345678912, detector="ks", severity="warning", statistic=np.float64(0.21),
                  p_value=0.0123456789, threshold=0.05, evidence={"window": (50, 250), "column": np.int64(3)})
    line = json.loads(a.to_json())
    assert set(line) == {"index", "time", "detector", "severity", "statistic", "p_value", "threshold", "evidence"}
    assert line["p_value"] == 0.0123457 and line["evidence"] == {"window": [50, 250], "column": 3}
    with pytest.raises(ValidationError, match="Alert: severity = 'urgent' is not one of the choices"):
        mon.Alert(0, 0.0, "ks", "urgent", 0.1, 0.1, 0.05)
    with pytest.raises(ValidationError, match="Alert: index = -1 is out of range"):
        mon.Alert(-1, 0.0, "ks", "info", 0.1, 0.1, 0.05)
    with pytest.raises(ValidationError, match="severity: p_value = 1.5 is out of range"):
        mon.severity(1.5, 0.05)
    with pytest.raises(ValidationError, match="severity: alpha .* = 0 is out of range"):
        mon.severity(0.01, 0)
    log = mon.AlertLog()
    log.add(a)
    log.add(mon.Alert(300, 15.0, "mmd", "critical", 0.01, None, 0.05))
    assert log.counts() == {"info": 0, "warning": 1, "critical": 1}
    path = log.write(tmp_path / "alerts.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["p_value"] is None
    with pytest.raises(ValidationError, match="AlertLog.add: got a dict; add takes an Alert"):
        log.add({"detector": "ks"})


def test_incidents_and_drift_alerts():
    scan = pd.DataFrame({"start": [0, 10, 20, 30, 40], "end": [20, 30, 40, 50, 60], "detector": "ks",
                         "statistic": [0.1, 0.4, 0.5, 0.1, 0.3], "p_value": [0.5, 0.01, 1e-5, 0.6, 0.02],
                         "threshold": 0.05, "drift": [False, True, True, False, True]})
    inc = mon.incidents(scan)
    assert [(i["start"], i["end"], i["windows"]) for i in inc] == [(30, 40, 2), (60, 60, 1)]
    assert inc[0]["p_value"] == 1e-5 and inc[0]["statistic"] == 0.5
    alerts = mon.drift_alerts(scan, np.arange(60) * 0.5)
    assert [a.severity for a in alerts] == ["critical", "warning"]
    assert alerts[0].evidence["first_window"] == [10, 30] and alerts[0].time == 14.5
    with pytest.raises(ValidationError, match="drift_alerts: 10 timestamps for requests up to 60"):
        mon.drift_alerts(scan, np.arange(10.0))
    with pytest.raises(ValidationError, match=r"incidents: the scan lacks the columns \['p_value'\]"):
        mon.incidents(scan.drop(columns="p_value"))


def test_client_and_accuracy_alerts():
    log = pd.DataFrame({"index": np.arange(6), "time": np.arange(6.0), "client": list("aabbab")})
    report = pd.DataFrame({"client": ["a", "b"], "requests": [3, 3], "per_minute": [1.0, 1.0],
                           "share_novel": [0.0, 0.67], "p_novel": [1.0, 1e-6], "flag_novel": [False, True],
                           "share_squeezed": [0.67, 0.67], "p_squeezed": [0.001, 0.001],
                           "flag_squeezed": [True, True]})
    alerts = mon.client_alerts(report, log, {"novel": "extraction", "squeezed": "adversarial"}, alpha=0.01)
    assert [(a.detector, a.evidence["client"], a.index) for a in alerts] == [("adversarial", "a", 5),
                                                                            ("extraction", "b", 6)]
    acc = pd.DataFrame({"index": [10, 20, 30, 40, 50], "observed": [0.95, 0.85, 0.7, 0.95, 0.88],
                        "oracle": 0.9, "labels": 5})
    acc_alerts = mon.accuracy_alerts(acc, 0.9, np.arange(60.0))
    assert [(a.index, a.severity, a.statistic) for a in acc_alerts] == [(20, "critical", 0.7), (50, "warning", 0.88)]
    with pytest.raises(ValidationError, match="accuracy_alerts: floor = 1.5 is out of range"):
        mon.accuracy_alerts(acc, 1.5, np.arange(60.0))
    with pytest.raises(ValidationError, match=r"client_alerts: the report lacks the columns \['flag_novel'"):
        mon.client_alerts(report.drop(columns="flag_novel"), log, {"novel": "extraction"})


def test_delayed_labels():
    arrivals = mon.label_arrivals(500, 30, seed=0)
    assert (arrivals >= np.arange(500)).all()
    assert np.array_equal(arrivals, mon.label_arrivals(500, 30, seed=0))
    assert np.array_equal(mon.label_arrivals(5, 0), np.arange(5))
    correct = np.r_[np.ones(250), np.zeros(250)]
    acc = mon.delayed_accuracy(correct, arrivals, window=50, step=50)
    assert list(acc.columns) == ["index", "observed", "oracle", "labels"]
    at = acc.set_index("index")
    assert at.loc[300, "oracle"] == 0 and at.loc[300, "observed"] > 0, "the observed accuracy lags"
    assert at.loc[500, "observed"] < 0.5
    instant = mon.delayed_accuracy(correct, np.arange(500), window=50, step=50)
    assert np.allclose(instant["observed"].iloc[1:], instant["oracle"].iloc[1:])
    with pytest.raises(ValidationError, match="delayed_accuracy: lengths differ: correct has 500, arrivals has 10"):
        mon.delayed_accuracy(correct, arrivals[:10])
    with pytest.raises(ValidationError, match="delayed_accuracy: window = 600 is longer than the stream"):
        mon.delayed_accuracy(correct, arrivals, window=600)
    with pytest.raises(ValidationError, match=r"the boolean mask labelled has shape \(3,\)"):
        mon.delayed_accuracy(correct, arrivals, labelled=np.ones(3, bool))
    with pytest.raises(ValidationError, match=r"label_arrivals: mean_delay \(in requests\) = -1 is out of range"):
        mon.label_arrivals(5, -1)
    with pytest.raises(ValidationError, match="label_arrivals: n = 2.5 is not an integer"):
        mon.label_arrivals(2.5, 3)


# --------------------------------------------------------------------------- figures and panel


def test_dashboard_and_panel(pool):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = pool
    s = mon.simulate_stream(X, y, [mon.Segment("normal", 60), mon.Segment("blur", 60, "blur", 1.0)], seed=0)
    scan = mon.scan_stream(toy_proba(X[:40]), toy_proba(s.X), "ks", window=30, step=15)
    alerts = mon.drift_alerts(scan, s.time)
    flags = pd.DataFrame({"index": np.arange(len(s)), "novel": np.zeros(len(s), bool)})
    acc = mon.delayed_accuracy(np.ones(len(s)), np.arange(len(s)), window=30, step=30)
    fig = mon.plot_dashboard(s, [scan], alerts, flags=flags, accuracy=acc)
    assert len(fig.axes) == 3
    plt.close(fig)
    with pytest.raises(ValidationError, match="plot_dashboard: rolling = 0 is out of range"):
        mon.plot_dashboard(s, [scan], alerts, rolling=0)
    from utils.widgets import drift_panel

    panel = drift_panel(toy_proba, X[:40], X[40:], y[40:], window=30, n_permutations=20, value=("blur", 0.0))
    label = panel.children[1]
    first = label.value
    assert first.startswith("no drift →") and "KS p=" in first
    panel.children[0].children[1].value = 1.0
    assert label.value.startswith("blur σ=1.00 px") and label.value != first
    panel.children[0].children[1].value = 0.0
    assert label.value == first
    plt.close("all")
    with pytest.raises(ValidationError, match=r"drift_panel: value\[0\] \(the drift kind\) = 'none' is not one of"):
        drift_panel(toy_proba, X[:40], X[40:], y[40:], value=("none", 0.5))
    with pytest.raises(ValidationError, match=r"drift_panel: window = 500 is out of range; window must be an integer in \[8, 80\]"):
        drift_panel(toy_proba, X[:40], X[40:], y[40:], window=500)


def test_the_package_imports_no_ipywidgets():
    """Panels live in utils.widgets: importing utils.monitoring loads neither the widget library nor torch."""
    import subprocess
    import sys

    code = ("import sys; from utils import monitoring; "
            "print(sorted(m for m in ('ipywidgets', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=__import__("pathlib").Path(__file__).resolve().parent.parent).stdout
    assert out.strip() == "[]"

