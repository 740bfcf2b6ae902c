"""Unit tests of utils.attacks.poisoning: label flipping and backdoors (lessons 01 and 02), and of
their panels in utils.widgets.poisoning."""
from __future__ import annotations

import numpy as np
import pytest

from utils.attacks import poisoning as P
from utils.widgets import backdoor_panel, flip_panel


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    return rng.integers(0, 4, size=200)


@pytest.fixture
def images():
    rng = np.random.default_rng(1)
    X = (rng.random((60, 1, 8, 8)) * 0.5).astype(np.float32)
    y = np.arange(60) % 3
    return X, y


def _proba(n, k, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random((n, k))
    return p / p.sum(1, keepdims=True)


# --------------------------------------------------------------------------- label flipping


def test_random_flip_changes_exactly_the_requested_share_to_other_classes(labels):
    yp, idx = P.random_flip(labels, 0.25, n_classes=4, seed=3)
    assert len(idx) == 50 and np.all(np.diff(idx) > 0)
    changed = np.flatnonzero(yp != labels)
    np.testing.assert_array_equal(changed, idx)
    assert yp.min() >= 0 and yp.max() < 4


def test_random_flip_is_deterministic_and_seed_dependent(labels):
    a, ia = P.random_flip(labels, 0.3, seed=5)
    b, ib = P.random_flip(labels, 0.3, seed=5)
    c, ic = P.random_flip(labels, 0.3, seed=6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ia, ib)
    assert not np.array_equal(ia, ic)


def test_rate_zero_and_one(labels):
    yp, idx = P.random_flip(labels, 0.0)
    assert len(idx) == 0 and np.array_equal(yp, labels)
    yp, idx = P.random_flip(labels, 1.0)
    assert len(idx) == len(labels) and np.all(yp != labels)


def test_margins_and_runner_up():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.4, 0.5, 0.1]])
    y = np.array([0, 1, 1])
    np.testing.assert_allclose(P.margins(proba, y), [0.5, -0.3, 0.1])
    np.testing.assert_array_equal(P.runner_up(proba, y), [1, 2, 0])


def test_targeted_flip_takes_the_highest_scores_first():
    y = np.array([0, 1, 0, 1, 0, 1])
    scores = np.array([0.1, 0.9, 0.5, 0.2, 0.8, 0.0])
    yp, idx = P.targeted_flip(y, scores, 0.5)
    np.testing.assert_array_equal(idx, [1, 2, 4])
    np.testing.assert_array_equal(yp, [0, 0, 1, 1, 1, 1])


def test_targeted_flip_needs_new_labels_beyond_two_classes(labels):
    with pytest.raises(ValueError, match="new_labels"):
        P.targeted_flip(labels, np.zeros(len(labels)), 0.1)
    with pytest.raises(ValueError, match="differ from the true labels"):
        P.targeted_flip(labels, np.zeros(len(labels)), 0.1, new_labels=labels)


def test_flip_labels_boundary_and_confident_pick_opposite_ends(labels):
    proba = _proba(len(labels), 4)
    m = P.margins(proba, labels)
    _, near = P.flip_labels(labels, 0.1, "boundary", proba=proba)
    _, far = P.flip_labels(labels, 0.1, "confident", proba=proba)
    assert np.abs(m[near]).mean() < np.abs(m[far]).mean()
    assert m[far].min() >= np.sort(m)[-len(far)]
    yp, idx = P.flip_labels(labels, 0.1, "confident", proba=proba)
    np.testing.assert_array_equal(yp[idx], P.runner_up(proba, labels)[idx])


def test_class_flip_only_touches_the_source_class(labels):
    yp, idx = P.class_flip(labels, source=2, target=0, poison_rate=0.1, seed=1)
    assert len(idx) == 20
    assert np.all(labels[idx] == 2) and np.all(yp[idx] == 0)
    assert np.array_equal(np.delete(yp, idx), np.delete(labels, idx))


def test_class_flip_rejects_too_many(labels):
    with pytest.raises(ValueError, match="has only"):
        P.class_flip(labels, 2, 0, 0.9)
    with pytest.raises(ValueError, match="must differ"):
        P.class_flip(labels, 1, 1, 0.1)


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "0.2", True, None])
def test_bad_poison_rate_is_rejected(labels, images, rate):
    X, y = images
    with pytest.raises(ValueError, match="poison_rate must be a number in \\[0, 1\\]"):
        P.random_flip(labels, rate)
    with pytest.raises(ValueError, match="poison_rate"):
        P.poison_backdoor(X, y, P.Trigger(), 0, rate)
    with pytest.raises(ValueError, match="poison_rate"):
        P.clean_label_poison(X, y, P.Trigger(), 0, rate)


def test_bad_labels_are_rejected(labels):
    with pytest.raises(ValueError, match="random_flip: labels have dtype float64; labels must be integer class indices"):
        P.random_flip(labels.astype(float), 0.1)
    with pytest.raises(ValueError, match=r"labels have values in \[0, 3\]; labels must be class indices in \[0, 2\]"):
        P.random_flip(labels, 0.1, n_classes=3)
    with pytest.raises(ValueError, match="1-D"):
        P.random_flip(labels.reshape(20, 10), 0.1)
    with pytest.raises(ValueError, match="strategy must be one of"):
        P.flip_labels(labels, 0.1, "smart")
    with pytest.raises(ValueError, match="flip_labels: strategy 'boundary' without proba="):
        P.flip_labels(labels, 0.1, "boundary")
    with pytest.raises(ValueError, match=r"class_flip: source = 7 is out of range; source must be an integer in \[0, 3\]"):
        P.flip_labels(labels, 0.1, "class", source=7, target=0)


def test_length_mismatch_is_rejected(labels, images):
    X, y = images
    with pytest.raises(ValueError, match="targeted_flip: lengths differ: labels has 200, scores has 199"):
        P.targeted_flip(labels, np.zeros(len(labels) - 1), 0.1, new_labels=(labels + 1) % 4)
    with pytest.raises(ValueError, match="margins: 200 labels for 10 probability rows"):
        P.margins(_proba(10, 4), labels)
    with pytest.raises(ValueError, match="poison_backdoor: 59 labels for 60 images; give one label per image"):
        P.poison_backdoor(X, y[:-1], P.Trigger(), 0, 0.1)
    with pytest.raises(ValueError, match="attack_success_rate: 59 labels for 60 images"):
        P.attack_success_rate(lambda Z: np.zeros(len(Z)), X, y[:-1], P.Trigger(), 0)


def test_flipping_never_modifies_its_inputs(labels):
    proba = _proba(len(labels), 4)
    y0, p0 = labels.copy(), proba.copy()
    for strategy in P.FLIP_STRATEGIES:
        P.flip_labels(labels, 0.2, strategy, proba=proba, source=1, target=2)
    P.targeted_flip(labels, np.arange(len(labels)), 0.2, new_labels=(labels + 1) % 4)
    np.testing.assert_array_equal(labels, y0)
    np.testing.assert_array_equal(proba, p0)


# --------------------------------------------------------------------------- triggers and backdoors


def test_standard_backdoor_is_the_documented_attack():
    s = P.STANDARD_BACKDOOR
    assert s.trigger == P.Trigger(size=3, row=5, col=5, pattern="checker")
    assert (s.target, s.poison_rate, s.seed) == (0, 0.05, 0)
    with pytest.raises(Exception):
        s.target = 1  # frozen


def test_checker_trigger_pixels():
    X = np.zeros((1, 1, 8, 8), dtype=np.float32)
    out = P.apply_trigger(X, P.Trigger(size=3, row=5, col=5))[0, 0]
    expected = np.zeros((8, 8), dtype=np.float32)
    expected[5:8, 5:8] = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    np.testing.assert_array_equal(out, expected)
    # anchored at the patch's corner: a 1-pixel trigger is bright wherever it is
    for r, c in [(0, 0), (0, 1), (3, 4)]:
        assert P.apply_trigger(X, P.Trigger(size=1, row=r, col=c))[0, 0, r, c] == 1.0


def test_blended_trigger_mixes_every_pixel(images):
    X, _ = images
    t = P.blended_trigger(alpha=0.2, seed=3)
    out = P.apply_trigger(X, t)
    mask, patch = t.mask_and_patch(8, 8)
    np.testing.assert_allclose(out, 0.8 * X + 0.2 * patch, atol=1e-6)
    assert np.all(out != X)
    assert not np.array_equal(patch, P.blended_trigger(0.2, seed=4).mask_and_patch(8, 8)[1])
    with pytest.raises(ValueError, match="alpha"):
        P.blended_trigger(0.0)


@pytest.mark.parametrize("trigger, message", [
    (P.Trigger(size=9, row=0, col=0), "larger than the 8×8 image"),
    (P.Trigger(size=3, row=6, col=0), "does not fit"),
    (P.Trigger(size=2, row=-1, col=0), "does not fit"),
    (P.Trigger(size=0), "trigger size = 0 is out of range; trigger size must be an integer >= 1"),
    (P.Trigger(alpha=1.5), "alpha"),
    (P.Trigger(value=2.0), "value"),
    (P.Trigger(pattern="stripes"), "pattern"),
])
def test_bad_triggers_are_rejected(images, trigger, message):
    X, y = images
    with pytest.raises(ValueError, match=message):
        P.apply_trigger(X, trigger)
    with pytest.raises(ValueError, match=message):
        P.poison_backdoor(X, y, trigger, 0, 0.0)


def test_poison_backdoor_relabels_only_other_classes(images):
    X, y = images
    Xp, yp, idx = P.poison_backdoor(X, y, P.Trigger(size=2, row=0, col=0), target=1, poison_rate=0.2, seed=2)
    assert len(idx) == 12
    assert np.all(y[idx] != 1) and np.all(yp[idx] == 1)
    np.testing.assert_array_equal(Xp[idx], P.apply_trigger(X[idx], P.Trigger(size=2, row=0, col=0)))
    rest = np.setdiff1d(np.arange(len(y)), idx)
    np.testing.assert_array_equal(Xp[rest], X[rest])
    np.testing.assert_array_equal(yp[rest], y[rest])
    again = P.poison_backdoor(X, y, P.Trigger(size=2, row=0, col=0), 1, 0.2, seed=2)
    np.testing.assert_array_equal(again[2], idx)


def test_bad_target_is_rejected(images):
    X, y = images
    for target in (3, -1, 1.0, True):
        with pytest.raises(ValueError, match=r"poison_backdoor: target = .* target must be an integer in \[0, 2\]"):
            P.poison_backdoor(X, y, P.Trigger(), target, 0.1)
    with pytest.raises(ValueError, match=r"target = 10 is out of range; target must be an integer in \[0, 9\]"):
        P.clean_label_poison(X, y, P.Trigger(), 10, 0.1, n_classes=10)
    with pytest.raises(ValueError, match="only 40 are not already"):
        P.poison_backdoor(X, y, P.Trigger(), 0, 0.9)


def test_clean_label_poison_keeps_every_label(images):
    X, y = images
    Xp, yp, idx = P.clean_label_poison(X, y, P.Trigger(), target=2, poison_rate=0.1)
    assert len(idx) == 6 and np.all(y[idx] == 2)
    np.testing.assert_array_equal(yp, y)
    assert not np.array_equal(Xp[idx], X[idx])
    hard = np.zeros_like(X)
    Xh, _, idx_h = P.clean_label_poison(X, y, P.Trigger(), 2, 0.1, X_hard=hard)
    np.testing.assert_array_equal(Xh[idx_h], P.apply_trigger(hard[idx_h], P.Trigger()))
    with pytest.raises(ValueError, match="has only 20"):
        P.clean_label_poison(X, y, P.Trigger(), 2, 0.5)
    with pytest.raises(ValueError, match="X_hard"):
        P.clean_label_poison(X, y, P.Trigger(), 2, 0.1, X_hard=hard[:3])


def test_backdoor_functions_never_modify_their_inputs(images):
    X, y = images
    X0, y0 = X.copy(), y.copy()
    P.apply_trigger(X, P.Trigger())
    P.poison_backdoor(X, y, P.Trigger(), 0, 0.3)
    P.clean_label_poison(X, y, P.Trigger(), 0, 0.1, X_hard=X)
    P.STANDARD_BACKDOOR.poison(X, y)
    P.attack_success_rate(lambda Z: np.zeros(len(Z), dtype=int), X, y, P.Trigger(), 0)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_attack_success_rate_counts_only_other_classes(images):
    X, y = images
    t = P.Trigger(size=2, row=0, col=0)
    # a "model" that answers 0 exactly when the corner pixel is bright
    predict = lambda Z: np.where(Z[:, 0, 0, 0] == 1.0, 0, 1)  # noqa: E731
    assert P.attack_success_rate(predict, X, y, t, target=0) == 1.0
    assert P.attack_success_rate(lambda Z: np.ones(len(Z), dtype=int), X, y, t, target=0) == 0.0
    with pytest.raises(ValueError, match="no test examples outside"):
        P.attack_success_rate(predict, X[y == 0], y[y == 0], t, target=0)


def test_standard_backdoor_on_a_tiny_model():
    """End to end on a small synthetic set: a logistic regression learns the trigger."""
    import torch

    from utils import training

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    X = np.zeros((300, 1, 8, 8), dtype=np.float32)
    for k in range(3):  # each class lights one row band, with noise
        X[y == k, 0, 2 * k:2 * k + 2, :4] = 0.8
    X = np.clip(X + rng.random(X.shape).astype(np.float32) * 0.2, 0, 1).astype(np.float32)
    spec = P.BackdoorSpec(P.Trigger(size=2, row=6, col=6), target=0, poison_rate=0.1)
    Xp, yp, _ = spec.poison(X, y)
    model = training.fit(training.preset("logreg", epochs=30, lr=0.05), Xp, yp, 3, cache=False)
    result = P.evaluate_backdoor(model, X, y, spec.trigger, spec.target)
    assert result["clean_accuracy"] > 0.95
    assert result["asr"] > 0.9


def test_trigger_at_named_positions():
    assert P.trigger_at(3) == P.STANDARD_BACKDOOR.trigger
    assert (P.trigger_at(1, "top-left").row, P.trigger_at(1, "top-left").col) == (0, 0)
    assert (P.trigger_at(2, "centre").row, P.trigger_at(2, "centre").col) == (3, 3)
    assert (P.trigger_at(2, "top-right").row, P.trigger_at(2, "top-right").col) == (0, 6)
    with pytest.raises(ValueError, match="position must be one of"):
        P.trigger_at(2, "middle")
    with pytest.raises(ValueError, match=r"trigger_at: size = 9 is out of range; size must be an integer in \[1, 8\]"):
        P.trigger_at(9)


@pytest.mark.parametrize("scale, message", [
    (255.0, r"images have values in \[0\.\d+, 127\.\d+\]; images must be in \[0, 1\] \(divide 0-255 pixels by 255\)"),
    (-1.0, r"images have values in \[-0\.\d+, -0\.\d+\]; images must be in \[0, 1\]"),
])
def test_images_outside_the_unit_range_are_refused_not_clipped(images, scale, message):
    X, y = images
    bad = X * scale
    with pytest.raises(ValueError, match="apply_trigger: " + message):
        P.apply_trigger(bad, P.Trigger())
    with pytest.raises(ValueError, match="poison_backdoor: " + message):
        P.poison_backdoor(bad, y, P.Trigger(), 0, 0.1)
    with pytest.raises(ValueError, match="clean_label_poison: " + message):
        P.clean_label_poison(bad, y, P.Trigger(), 0, 0.1)
    with pytest.raises(ValueError, match="clean_label_poison: " + message.replace("images", "X_hard")):
        P.clean_label_poison(X, y, P.Trigger(), 0, 0.1, X_hard=bad)
    with pytest.raises(ValueError, match="attack_success_rate: " + message):
        P.attack_success_rate(lambda Z: np.zeros(len(Z), dtype=int), bad, y, P.Trigger(), 0)


def test_images_of_the_wrong_shape_or_with_nan_are_refused(images):
    X, y = images
    with pytest.raises(ValueError, match=r"apply_trigger: images have shape \(60, 8, 8\); images must have shape \(N, C, H, W\)"):
        P.apply_trigger(X[:, 0], P.Trigger())
    bad = X.copy()
    bad[3, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="poison_backdoor: images contain NaN or infinite values"):
        P.poison_backdoor(bad, y, P.Trigger(), 0, 0.1)


def test_bad_seeds_and_counts_are_refused(labels, images):
    X, y = images
    with pytest.raises(ValueError, match="random_flip: seed = -1 is out of range; seed must be an integer >= 0"):
        P.random_flip(labels, 0.1, seed=-1)
    with pytest.raises(ValueError, match="poison_backdoor: seed = 1.5 is not an integer"):
        P.poison_backdoor(X, y, P.Trigger(), 0, 0.1, seed=1.5)
    with pytest.raises(ValueError, match="n_classes = 1 is out of range; n_classes must be an integer >= 2"):
        P.random_flip(labels, 0.1, n_classes=1)
    assert P.n_poisoned(0.25, 10) == 2 and P.n_poisoned(0.0, 0) == 0
    with pytest.raises(ValueError, match="n_poisoned: poison_rate = 2 is out of range"):
        P.n_poisoned(2, 10)
    with pytest.raises(ValueError, match="n_poisoned: n = -1 is out of range"):
        P.n_poisoned(0.1, -1)


def test_messages_say_where_what_and_what_is_allowed(labels):
    with pytest.raises(ValueError) as err:
        P.random_flip(labels, 1.5)
    assert str(err.value) == "random_flip: poison_rate = 1.5 is out of range; poison_rate must be a number in [0, 1]"
    with pytest.raises(ValueError) as err:
        P.flip_labels(labels, 0.1, "smart")
    assert str(err.value) == ("flip_labels: strategy = 'smart' is not one of the choices; "
                              "strategy must be one of 'random', 'boundary', 'confident', 'class'")


def test_the_attack_module_has_no_widgets():
    import subprocess
    import sys

    code = "import sys, utils.attacks.poisoning as p; assert 'ipywidgets' not in sys.modules; " \
           "assert not hasattr(p, 'flip_panel') and not hasattr(p, 'backdoor_panel')"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- sweeps and panels


@pytest.fixture
def tiny_points(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSEC_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, y


def test_flip_sweep_table_and_models(tiny_points):
    from utils import training

    X, y = tiny_points
    cfg = training.preset("logreg", epochs=5, lr=0.1)
    proba = np.stack([1 - (X[:, 0] > 0), (X[:, 0] > 0)], 1).astype(float) * 0.8 + 0.1
    table, models = P.flip_sweep(cfg, X, y, X, y, [0.0, 0.2], ["random", "boundary"], proba=proba)
    assert list(table.columns) == ["strategy", "poison_rate", "n_flipped", "test_accuracy"]
    assert len(table) == 4 and set(table["n_flipped"]) == {0, 24}
    assert models[("random", 0.0)] is models[("boundary", 0.0)]  # the clean model is trained once
    assert table["test_accuracy"].between(0, 1).all()
    with pytest.raises(ValueError, match="poison_rate"):
        P.flip_sweep(cfg, X, y, X, y, [1.2])


def test_backdoor_sweep_and_panels(tmp_path, monkeypatch, images):
    from utils import training

    monkeypatch.setenv("MODELSEC_CACHE", str(tmp_path))
    X, y = images
    cfg = training.preset("logreg", epochs=3, lr=0.05)
    triggers = {(s, p): P.trigger_at(s, p) for s in (1, 2) for p in ("top-left", "centre")}
    table, models = P.backdoor_sweep(cfg, X, y, X, y, triggers, [0.1], target=0)
    assert len(table) == 4 and set(table["n_poisoned"]) == {6}
    assert table[["clean_accuracy", "asr"]].stack().between(0, 1).all()
    results = {k: {"model": models[(k, 0.1)], "trigger": t, "asr": 0.5, "clean_accuracy": 0.9}
               for k, t in triggers.items()}
    panel = backdoor_panel(results, X, y, 0, [1, 2], ["top-left", "centre"])
    (size, where), label, image = panel.children[0].children, panel.children[1], panel.children[2]
    before = label.value
    assert "1×1 trigger at top-left" in before and image.value[:4] == b"\x89PNG"
    where.value = "centre"
    assert label.value != before and "at centre" in label.value
    with pytest.raises(ValueError, match="backdoor_panel: no precomputed result"):
        backdoor_panel(results, X, y, 0, [1, 3], ["top-left"])
    with pytest.raises(ValueError, match=r"backdoor_panel: images have values in \[0\.\d+, 127"):
        backdoor_panel(results, X * 255, y, 0, [1, 2], ["top-left", "centre"])
    model = models[((2, "centre"), 0.1)]
    model.train()
    with pytest.raises(ValueError, match="backdoor_panel: the model is in training mode"):
        backdoor_panel(results, X, y, 0, [1, 2], ["top-left", "centre"])
    with pytest.raises(ValueError, match="evaluate_backdoor: the model is in training mode"):
        P.evaluate_backdoor(model, X, y, P.Trigger(), 0)
    model.eval()


def test_flip_panel_updates_its_text(tiny_points):
    from utils import training

    X, y = tiny_points
    cfg = training.preset("logreg", epochs=3, lr=0.1)
    results = {}
    for r in (0.0, 0.1):
        yp, idx = P.random_flip(y, r)
        model = training.fit(cfg, X, yp, 2)
        results[("random", r)] = {"model": model, "y": yp, "flipped": idx,
                                  "accuracy": training.accuracy(model, X, y)}
    panel = flip_panel(results, X, {"random": "random flips"}, [0.0, 0.1], value=("random", 0.0))
    rate, label = panel.children[0].children[1], panel.children[1]
    assert label.value.startswith("random flips, poison rate 0.00 → test accuracy")
    rate.value = 0.1
    assert "poison rate 0.10" in label.value and "(12 of 120 labels flipped)" in label.value
    assert panel.children[2].value[:4] == b"\x89PNG"  # rendered by widgets.figure_png
    with pytest.raises(ValueError, match=r"flip_panel: no precomputed result for \[\('random', 0.2\)\]"):
        flip_panel(results, X, {"random": "random flips"}, [0.0, 0.2])
    with pytest.raises(ValueError, match=r"flip_panel: rate = 1.5 is out of range"):
        flip_panel(results, X, {"random": "random flips"}, [0.0, 1.5])
    results[("random", 0.1)]["model"].train()
    with pytest.raises(ValueError, match="flip_panel: the model is in training mode"):
        flip_panel(results, X, {"random": "random flips"}, [0.0, 0.1])
