"""Unit tests of utils.defenses.data, models.hidden_activations and the threshold panel
(lesson 03; tiny synthetic data, a few seconds in all). The metrics it uses are
tested in tests/test_metrics.py."""
from __future__ import annotations

import re

import numpy as np
import pytest

from utils.defenses import data as dd
from utils import metrics, models, training
from utils.widgets import threshold_panel


# --------------------------------------------------------------------------- fixtures


def blobs(n_per_class: int = 60, n_classes: int = 3, dim: int = 6, seed: int = 0):
    """Well-separated Gaussian classes."""
    centers = np.random.default_rng(0).normal(0, 6, size=(n_classes, dim))  # the same for every seed
    rng = np.random.default_rng(seed + 100)
    X = np.concatenate([c + rng.normal(0, 1, size=(n_per_class, dim)) for c in centers])
    y = np.repeat(np.arange(n_classes), n_per_class)
    return X, y


def backdoored_features(seed: int = 0):
    """Three classes; 15 examples of class 0 carry a strong extra direction ("the trigger")."""
    X, y = blobs(seed=seed)
    rng = np.random.default_rng(seed + 1)
    poisoned = np.sort(rng.choice(np.flatnonzero(y == 0), size=15, replace=False))
    X = X.copy()
    X[poisoned] += np.array([8.0, -8.0, 8.0, 0, 0, 0])
    return X, y, poisoned


def images(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 1, 4, 4)).astype(np.float32)
    y = np.arange(n) % 4
    return X, y


# --------------------------------------------------------------------------- validation


def test_validate_clean_data_passes_every_check():
    X, y = images()
    report = dd.validate(X, y, n_classes=4, input_shape=(1, 4, 4), reference=y)
    assert report.ok
    assert [f.check for f in report] == ["schema", "value range", "duplicates", "near-duplicates", "class balance"]
    assert all(f.status == "pass" for f in report)
    text = str(report)
    assert text.startswith("Data validation of 40 examples: 5 of 5 checks passed")
    assert "PASS  schema" in text


def test_validate_reports_each_problem_with_indices():
    X, y = images()
    X, y = X.copy(), y.copy()
    X[3, 0, 0, 0] = np.nan
    X[5] *= 255
    X[10], y[10] = X[11], (y[11] + 1) % 4
    X[20], y[20] = np.clip(X[21] + 0.01, 0, 1), (y[21] + 1) % 4
    report = dd.validate(X, y, n_classes=4, input_shape=(1, 4, 4), near_duplicate_distance=0.2)
    assert not report.ok
    assert report["value range"].status == "fail"
    assert report["value range"].indices == (3, 5)
    assert "NaN" in report["value range"].details and "outside [0, 1]" in report["value range"].details
    assert report["duplicates"].status == "fail" and report["duplicates"].indices == (10, 11)
    assert report["near-duplicates"].status == "fail" and report["near-duplicates"].indices == (20, 21)
    assert report["class balance"].status == "skip"
    assert "FAIL  duplicates" in str(report)


def test_validate_same_label_copies_warn():
    X, y = images()
    X = X.copy()
    X[10] = X[14]  # same label (10 % 4 == 14 % 4)
    report = dd.validate(X, y, n_classes=4)
    assert report["duplicates"].status == "warn"
    assert report["duplicates"].indices == (14,)
    assert report.ok  # warnings are not failures


def test_validate_schema_and_balance_failures():
    X, y = images()
    y = y.copy()
    y[0] = 7
    report = dd.validate(X, y, n_classes=4, input_shape=(1, 8, 8))
    assert report["schema"].status == "fail"
    assert "expected (1, 8, 8)" in report["schema"].details and "outside [0, 3]" in report["schema"].details
    assert report["schema"].indices == (0,)

    X, y = images(80)
    skewed = np.concatenate([y, np.zeros(20, dtype=y.dtype)])
    Xs = np.concatenate([X, X[:20] * 0.5])
    report = dd.validate(Xs, skewed, n_classes=4, reference=np.full(4, 0.25), balance_tolerance=0.05)
    assert report["class balance"].status == "fail"
    assert report["class balance"].indices == (0,)
    assert "class 0: 40.0% vs 25.0%" in report["class balance"].details


@pytest.mark.parametrize("kwargs, message", [
    ({"y": np.zeros(39, dtype=int)}, "validate: 39 labels for 40 inputs; give one label per input"),
    ({"X": np.zeros((0, 1, 4, 4)), "y": np.zeros(0, dtype=int)}, "X is empty"),
    ({"X": np.zeros(40)}, "X has shape (40,)"),
    ({"X": np.zeros((40, 4), dtype=complex)}, "inputs must be real numbers"),
    ({"y": np.zeros((40, 1), dtype=int)}, "labels must be a 1-D array"),
    ({"balance_tolerance": 1.5}, "balance_tolerance must be a number in [0, 1]"),
    ({"near_duplicate_distance": 0}, "near_duplicate_distance"),
    ({"value_range": (1, 0)}, "value_range"),
    ({"n_classes": 1}, "n_classes"),
    ({"reference": np.array([0.5, 0.6, 0.0, 0.0])}, "summing to 1"),
    ({"reference": np.array([0, 1, 4])}, "reference labels must be class indices in [0, 3]"),
])
def test_validate_bad_input_raises(kwargs, message):
    X, y = images()
    args = {"X": X, "y": y, "n_classes": 4, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        dd.validate(args.pop("X"), args.pop("y"), **args)


def test_validate_keeps_bad_values_as_findings_not_errors():
    """NaN, 0-255 pixels and float labels are what validate reports, so it must not refuse them."""
    X, y = images()
    X = X.copy()
    X[0, 0, 0, 0] = np.nan
    X[1] *= 255
    report = dd.validate(X, y.astype(float), n_classes=4)
    assert report["value range"].status == "fail" and report["schema"].status == "fail"
    assert "labels have dtype float64" in report["schema"].details


def test_finding_rejects_unknown_status():
    with pytest.raises(ValueError, match="Finding: status = 'ok' is not one of the choices"):
        dd.Finding("schema", "ok", "")


def test_class_shares():
    assert dd.class_shares(np.array([0, 0, 1, 2]), 4).tolist() == [0.5, 0.25, 0.25, 0.0]
    with pytest.raises(ValueError, match=r"class_shares: labels have values in \[0, 7\]; labels must be class "
                                         r"indices in \[0, 3\]"):
        dd.class_shares(np.array([0, 7]), 4)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        dd.class_shares(np.array([0, 0]), 1)


# --------------------------------------------------------------------------- metrics and thresholds


def test_flag_top():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.0])
    assert dd.flag_top(scores, 0.4).tolist() == [False, True, False, True, False]
    assert not dd.flag_top(scores, 0.0).any() and dd.flag_top(scores, 1.0).all()
    for bad in (-0.1, 1.1, float("nan"), True):
        with pytest.raises(ValueError, match="flag_top: fraction = .* fraction must be a number in"):
            dd.flag_top(scores, bad)
    with pytest.raises(ValueError, match="flag_top: scores contain NaN"):
        dd.flag_top(np.array([0.1, np.nan]), 0.5)
    with pytest.raises(ValueError, match="non-empty 1-D array"):
        dd.flag_top(np.zeros((2, 2)), 0.5)


def test_detection_is_read_only_and_checks_shapes():
    flags = np.array([True, False])
    det = dd.Detection("x", flags, np.array([1.0, 0.0]))
    flags[0] = False  # the detection keeps its own copy
    assert det.flags.tolist() == [True, False] and det.n_flagged == 1
    with pytest.raises(ValueError):
        det.flags[0] = False
    with pytest.raises(ValueError, match=r"Detection: scores have shape \(2,\) for 3 flags"):
        dd.Detection("x", np.zeros(3, bool), np.zeros(2))


# --------------------------------------------------------------------------- anomaly detection and labels


def test_isolation_forest_finds_outliers_deterministically():
    X, y = blobs()
    X = X.copy()
    X[[5, 70, 150]] += 40.0
    a = dd.isolation_forest(X, contamination=3 / len(X), seed=0)
    b = dd.isolation_forest(X, contamination=3 / len(X), seed=0)
    assert a.indices.tolist() == [5, 70, 150]
    np.testing.assert_array_equal(a.scores, b.scores)
    with pytest.raises(ValueError, match="contamination"):
        dd.isolation_forest(X, contamination=1.5)
    with pytest.raises(ValueError, match="isolation_forest_scores: features contain NaN"):
        dd.isolation_forest_scores(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match=r"seed = -1 is out of range; seed must be an integer in \[0, "):
        dd.isolation_forest_scores(X, seed=-1)
    with pytest.raises(ValueError, match="seed = 4294967296 is out of range"):  # what NumPy's seeding takes
        dd.isolation_forest_scores(X, seed=2**32)
    with pytest.raises(ValueError, match="n_estimators must be an integer >= 1"):
        dd.isolation_forest_scores(X, n_estimators=0)


def test_label_issues_and_knn_find_flipped_labels():
    X, y = blobs()
    y_bad = y.copy()
    flipped = np.array([3, 64, 130, 175])
    y_bad[flipped] = (y[flipped] + 1) % 3
    X_before, y_before = X.copy(), y_bad.copy()
    issues = dd.label_issues(X, y_bad)
    assert set(flipped) <= set(issues.indices.tolist())
    assert issues.metrics(flipped).fpr <= 0.02
    knn = dd.knn_label_disagreement(X, y_bad, k=5)
    assert knn.indices.tolist() == flipped.tolist()
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y_bad, y_before)


@pytest.mark.parametrize("fn", [dd.label_issues, dd.knn_label_disagreement, dd.spectral_signature_scores,
                                dd.activation_clustering, dd.out_of_fold_proba])
def test_defenses_reject_bad_input(fn):
    X, y = blobs()
    name = fn.__name__
    with pytest.raises(ValueError, match=f"{name}: 179 labels for 180 inputs; give one label per input"):
        fn(X, y[:-1])
    with pytest.raises(ValueError, match=f"{name}: features have 0 rows"):
        fn(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match=r"shape \(N, d\)"):
        fn(X[:, 0], y)
    with pytest.raises(ValueError, match="labels must be integer class indices"):
        fn(X, y.astype(float))
    with pytest.raises(ValueError, match="labels must be class indices >= 0"):
        fn(X, y - 1)
    with pytest.raises(ValueError, match="features contain NaN"):
        fn(np.where(X > 5, np.nan, X), y)


def test_option_ranges():
    X, y = blobs()
    with pytest.raises(ValueError, match="threshold"):
        dd.knn_label_disagreement(X, y, threshold=-0.5)
    with pytest.raises(ValueError, match="k must be"):
        dd.knn_label_disagreement(X, y, k=0)
    with pytest.raises(ValueError, match="k must be below the number of examples"):
        dd.knn_label_disagreement(X[:5], y[:5], k=5)
    with pytest.raises(ValueError, match="at least two classes"):
        dd.out_of_fold_proba(X[:60], y[:60])
    with pytest.raises(ValueError, match="n_folds must be an integer >= 2"):
        dd.out_of_fold_proba(X, y, n_folds=1)
    with pytest.raises(ValueError, match="factor"):
        dd.spectral_signatures(X, y, factor=0)
    with pytest.raises(ValueError, match="fewer than n_folds"):
        dd.out_of_fold_proba(X[:9], np.array([0, 0, 0, 1, 1, 1, 2, 2, 2]), n_folds=5)
    with pytest.raises(ValueError, match="expected_fraction"):
        dd.spectral_signatures(X, y, expected_fraction=2)
    with pytest.raises(ValueError, match="do not occur"):
        dd.spectral_signatures(X, y, classes=[7])
    with pytest.raises(ValueError, match="max_size"):
        dd.activation_clustering(X, y, max_size=0.8)
    with pytest.raises(ValueError, match="reference must be a pair"):
        dd.activation_clustering(X, y, reference=X)
    with pytest.raises(ValueError, match="columns"):
        dd.activation_clustering(X, y, reference=(X[:, :3], y))
    with pytest.raises(ValueError, match="7 labels for 180 inputs"):
        dd.activation_clustering(X, y, reference=(X, y[:7]))


# --------------------------------------------------------------------------- representation-based


def test_spectral_scores_match_the_definition_and_rank_poison_first():
    X, y, poisoned = backdoored_features()
    scores = dd.spectral_signature_scores(X, y)
    R = X[y == 0] - X[y == 0].mean(0)
    v = np.linalg.svd(R, full_matrices=False)[2][0]
    np.testing.assert_allclose(scores[y == 0], (R @ v) ** 2)
    assert set(np.argsort(-scores)[:15]) == set(poisoned)
    det = dd.spectral_signatures(X, y, expected_fraction=0.25, factor=1.0, classes=[0])
    assert det.n_flagged == 15 and det.metrics(poisoned).recall == 1.0
    everywhere = dd.spectral_signatures(X, y, expected_fraction=0.1)
    assert everywhere.n_flagged == 3 * 9  # ceil(1.5 * 0.1 * 60) per class


def test_activation_clustering_flags_the_poisoned_cluster():
    X, y, poisoned = backdoored_features()
    X0, y0 = X.copy(), y.copy()
    a = dd.activation_clustering(X, y, n_components=3, seed=0)
    b = dd.activation_clustering(X, y, n_components=3, seed=0)
    assert a.indices.tolist() == poisoned.tolist()
    np.testing.assert_array_equal(a.flags, b.flags)
    row0 = a.per_class[0]
    assert row0["flagged"] is True and row0["small_share"] == pytest.approx(0.25)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_activation_clustering_reference_spares_natural_substyles():
    X, y, sub = backdoored_features()
    # a trusted set where the same sub-cluster also occurs: a natural sub-style, not poison
    with_substyle = backdoored_features(seed=5)[:2]
    checked = dd.activation_clustering(X, y, n_components=3, reference=with_substyle)
    assert checked.n_flagged == 0
    assert checked.per_class[0]["reference_share"] == pytest.approx(0.25, abs=0.05)
    # a trusted set without it: the cluster is still flagged
    still = dd.activation_clustering(X, y, n_components=3, reference=blobs(seed=7))
    assert still.indices.tolist() == sub.tolist()
    assert still.per_class[0]["reference_share"] == 0.0


def tiny_mlp():
    return models.build_model("mlp", (1, 4, 4), 3, seed=0, hidden=(8, 5)).eval()


def test_hidden_activations_layers():
    """utils.models.hidden_activations (moved from utils.defenses.data; taught in 03_data_defenses)."""
    model = tiny_mlp()
    X, _ = images(10)
    X0 = X.copy()
    last = models.hidden_activations(model, X, layer=-1, batch_size=3)
    with training.torch.no_grad():
        # batches of 3 against one batch of 10: float32 sums in another order, so not bit-equal
        np.testing.assert_allclose(last, model.embed(training.to_tensor(X, "cpu")).numpy(), rtol=1e-5, atol=1e-7)
    assert models.hidden_activations(model, X, layer=0).shape == (10, 8)
    np.testing.assert_array_equal(X, X0)
    with pytest.raises(ValueError, match=r"layer must be an integer in \[-2, 1\]"):
        models.hidden_activations(model, X, layer=2)
    with pytest.raises(ValueError, match="non-empty batch"):
        models.hidden_activations(model, X[:0])
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        models.hidden_activations(model, X)



def test_standard_detectors_match_the_single_detectors():
    """dd.standard_detectors runs lesson 03's detectors by name with the lesson's settings."""
    model = tiny_mlp()
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(90, 1, 4, 4)).astype(np.float32)
    y = np.repeat(np.arange(3), 30)
    y[:6] = 0  # class 0 inflated against the reference
    X_ref = rng.uniform(0, 1, size=(30, 1, 4, 4)).astype(np.float32)
    y_ref = np.arange(30) % 3
    found = dd.standard_detectors(model, X, y, X_ref, y_ref, n_classes=3, seed=1)
    assert list(found) == list(dd.DETECTORS) and all(d.name == n for n, d in found.items())
    H, H_ref = models.hidden_activations(model, X, layer=0), models.hidden_activations(model, X_ref, layer=0)
    excess = 1 - dd.class_shares(y_ref, 3)[0] / dd.class_shares(y, 3)[0]
    expected = {
        "isolation forest, pixels": dd.isolation_forest(X, contamination=0.05, seed=1),
        "spectral signatures": dd.spectral_signatures(H, y, expected_fraction=0.05),
        "spectral signatures, suspect class": dd.spectral_signatures(H, y, expected_fraction=excess, classes=[0]),
        "activation clustering + trusted reference": dd.activation_clustering(H, y, reference=(H_ref, y_ref), seed=1),
    }
    for name, d in expected.items():
        np.testing.assert_array_equal(found[name].flags, d.flags)
    only = dd.standard_detectors(model, X, y, X_ref, y_ref, n_classes=3, layer=-1, max_size=0.5,
                                 only=["activation clustering"])
    assert list(only) == ["activation clustering"]
    np.testing.assert_array_equal(only["activation clustering"].flags, dd.activation_clustering(
        models.hidden_activations(model, X, layer=-1), y, max_size=0.5).flags)
    with pytest.raises(ValueError, match="standard_detectors: only = \\['nope'\\]; only must name some of"):
        dd.standard_detectors(model, X, y, X_ref, y_ref, n_classes=3, only=["nope"])
    with pytest.raises(ValueError, match="standard_detectors: 89 labels for 90"):
        dd.standard_detectors(model, X, y[:-1], X_ref, y_ref, n_classes=3)

# --------------------------------------------------------------------------- retraining and the widget


def test_retrain_without(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSEC_CACHE", str(tmp_path))
    X, y = blobs(n_per_class=20)
    X = X.astype(np.float32)
    config = training.preset("logreg", epochs=3)
    flags = np.zeros(len(y), bool)
    flags[:5] = True
    result = dd.retrain_without(config, X, y, flags, X, y)
    assert result.removed == 5 and 0.0 <= result.accuracy <= 1.0 and result.asr is None
    outcome = dd.evaluate_defense(dd.Detection("d", flags), np.arange(3), config, X, y, X, y, name="named")
    assert outcome.name == "named" and outcome.metrics.recall == 1.0
    assert outcome.retrained.accuracy == result.accuracy
    table = dd.outcomes_table([outcome])
    assert list(table.index) == ["named"] and table.loc["named", "precision"] == 0.6
    with pytest.raises(ValueError, match="boolean mask"):
        dd.retrain_without(config, X, y, flags[:-1], X, y)
    with pytest.raises(ValueError, match="boolean mask"):
        dd.retrain_without(config, X, y, np.arange(5), X, y)  # indices are not a mask here
    with pytest.raises(ValueError, match="every example is flagged"):
        dd.retrain_without(config, X, y, np.ones(len(y), bool), X, y)
    with pytest.raises(ValueError, match="retrain_without: 59 labels for 60 inputs"):
        dd.retrain_without(config, X, y[:-1], flags, X, y)
    with pytest.raises(ValueError, match=r"retrain_without: X has shape \(60,\)"):
        dd.retrain_without(config, X[:, 0], y, flags, X, y)
    with pytest.raises(ValueError, match="evaluate_defense: detection is a ndarray; give a Detection"):
        dd.evaluate_defense(flags, [0], config, X, y, X, y)
    with pytest.raises(ValueError, match="outcomes_table: no outcomes given"):
        dd.outcomes_table([])


def test_threshold_panel_text_follows_the_slider(capsys):
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    scores = rng.normal(size=100)
    poisoned = np.arange(10)
    scores[poisoned] += 3
    panel = threshold_panel({"s": scores}, poisoned, share=0.1)
    printed = capsys.readouterr().out
    label = panel.children[1]
    assert printed.strip() == label.value
    assert bytes(panel.children[2].value[:4]) == b"\x89PNG"
    assert label.value.startswith("s: top 10.0% flagged (10) → precision")
    slider = panel.children[0].children[1]
    slider.value = 0.2
    assert label.value.startswith("s: top 20.0% flagged (20) → precision 0.50, recall 1.00")
    assert metrics.detection_metrics(dd.flag_top(scores, 0.2), poisoned).precision == 0.5  # what it shows
    with pytest.raises(ValueError, match=r"threshold_panel: share = 0.5 is out of range; share must be a number "
                                         r"in \[0, 0.2\]"):
        threshold_panel({"s": scores}, poisoned, share=0.5)
    with pytest.raises(ValueError, match="threshold_panel: lengths differ"):
        threshold_panel({"s": scores, "t": scores[:50]}, poisoned)
    with pytest.raises(ValueError, match="threshold_panel: scores 's' contain NaN"):
        threshold_panel({"s": np.full(100, np.nan)}, poisoned)
    with pytest.raises(ValueError, match="threshold_panel: no scores given"):
        threshold_panel({}, poisoned)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 99\]"):
        threshold_panel({"s": scores}, np.array([100]))


def test_no_function_modifies_its_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSEC_CACHE", str(tmp_path))
    X, y, poisoned = backdoored_features()
    Xi, yi = images()
    ref = blobs(seed=7)
    arrays = [X, y, poisoned, Xi, yi, *ref]
    before = [a.copy() for a in arrays]
    dd.validate(Xi, yi, n_classes=4, reference=yi)
    dd.isolation_forest(X, 0.1)
    dd.label_issues(X, y)
    dd.knn_label_disagreement(X, y)
    dd.spectral_signatures(X, y, 0.2)
    dd.activation_clustering(X, y, n_components=3, reference=ref)
    flags = np.zeros(len(y), bool)
    metrics.detection_metrics(flags, poisoned)
    dd.flag_top(X[:, 0], 0.1)
    dd.class_shares(y, 3)
    dd.retrain_without(training.preset("logreg", epochs=1), X, y, flags, X, y)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)
    assert not flags.any()
