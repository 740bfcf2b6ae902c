"""utils.models and utils.training: builds, accuracy target, cache, safetensors, bad input."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from utils import data, training
from utils.models import MODELS, build_model, count_parameters
from utils.course.setup import setup


@pytest.fixture(scope="module")
def digits():
    setup(0, plots=False)
    return data.load("digits", seed=0)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSEC_CACHE", str(tmp_path))
    return tmp_path / "models"


@pytest.mark.parametrize("name", MODELS)
def test_models_build_in_milliseconds_with_seeded_weights(name):
    t0 = time.perf_counter()
    a = build_model(name, (1, 8, 8), 10, seed=0)
    assert time.perf_counter() - t0 < 1.0  # generous: a build takes milliseconds
    b = build_model(name, (1, 8, 8), 10, seed=0)
    c = build_model(name, (1, 8, 8), 10, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert not a.training and count_parameters(a) > 0
    assert a(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_build_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    build_model("mlp", (4,), 2, seed=9)
    assert torch.equal(torch.rand(1), expected)


def test_build_errors():
    with pytest.raises(ValueError, match="build_model: name = 'resnet' is not one of the choices; "
                                         "name must be one of 'logreg', 'mlp', 'cnn'"):
        build_model("resnet", (1, 8, 8), 10)
    with pytest.raises(ValueError, match=r"build_model: input_shape = \(30,\); the CNN needs square images"):
        build_model("cnn", (30,), 2)
    with pytest.raises(ValueError, match="build_model: n_classes = 1 is out of range; n_classes must be an integer >= 2"):
        build_model("mlp", (4,), 1)
    with pytest.raises(ValueError, match="build_model: input_shape entry = 0 is out of range"):
        build_model("mlp", (0,), 2)
    with pytest.raises(ValueError, match="build_model: seed = -1"):
        build_model("mlp", (4,), 2, seed=-1)


@pytest.mark.parametrize("name", MODELS)
def test_every_preset_reaches_95_percent_on_digits(name, digits, cache):
    model = training.fit(training.preset(name), digits.X_train, digits.y_train, 10)
    assert training.accuracy(model, digits.X_test, digits.y_test) >= 0.95
    assert model.meta["train_seconds"] < 30  # a few seconds on a laptop; generous bound


def test_fit_caches_as_safetensors_and_loads(digits, cache):
    cfg = training.preset("logreg", epochs=5)
    m1 = training.fit(cfg, digits.X_train, digits.y_train, 10)
    files = sorted(p.suffix for p in cache.iterdir())
    assert files == [".json", ".safetensors"]
    assert not m1.meta["from_cache"]
    m2 = training.fit(cfg, digits.X_train, digits.y_train, 10)
    assert m2.meta["from_cache"]
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    meta = json.loads(next(cache.glob("*.json")).read_text())
    assert meta["config"]["model"] == "logreg" and len(meta["history"]) == 5


def test_cache_key_covers_config_data_and_hook(digits):
    cfg = training.preset("mlp")
    X, y = digits.X_train, digits.y_train
    base = training.cache_key(cfg, X, y, 10)
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 10
    assert training.cache_key(cfg, X, y2, 10) != base
    assert training.cache_key(cfg.with_(seed=1), X, y, 10) != base
    assert training.cache_key(cfg, X, y, 10, tag="adv") != base
    assert training.cache_key(cfg, X.copy(), y.copy(), 10) == base


def test_cache_key_covers_device_and_numerics(digits, monkeypatch):
    import torch

    from utils import setup

    setup(0, plots=False)
    cfg = training.preset("mlp")
    X, y = digits.X_train, digits.y_train
    base = training.cache_key(cfg, X, y, 10)
    assert training.numerics_signature() == "pinned"  # make and the course kernel pin them
    monkeypatch.setattr(training, "numerics_signature", lambda: "cpu=AVX512,mkl_cbwr=None,mkldnn=True")
    assert training.cache_key(cfg, X, y, 10) != base
    monkeypatch.undo()
    monkeypatch.setattr(training, "current_device", lambda: torch.device("cuda"))
    assert training.cache_key(cfg, X, y, 10) != base


def test_training_is_deterministic(digits, tmp_path, monkeypatch):
    cfg = training.preset("mlp", epochs=3)
    monkeypatch.setenv("MODELSEC_CACHE", str(tmp_path / "a"))
    a = training.fit(cfg, digits.X_train, digits.y_train, 10)
    monkeypatch.setenv("MODELSEC_CACHE", str(tmp_path / "b"))
    b = training.fit(cfg, digits.X_train, digits.y_train, 10)
    assert not b.meta["from_cache"]
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


def test_fit_never_modifies_its_inputs(digits, cache):
    X, y = digits.X_train.copy(), digits.y_train.copy()

    def hook(model, xb, yb):
        return (xb + 0.1).clamp(0, 1), yb

    training.fit(training.preset("logreg", epochs=1), X, y, 10, batch_hook=hook, tag="shift")
    np.testing.assert_array_equal(X, digits.X_train)
    np.testing.assert_array_equal(y, digits.y_train)


def test_fit_bad_input(digits, cache):
    cfg = training.preset("logreg", epochs=1)
    X, y = digits.X_train, digits.y_train
    with pytest.raises(ValueError, match="fit: 10 labels for 1077 inputs; give one label per input"):
        training.fit(cfg, X, y[:10])
    with pytest.raises(ValueError, match=r"fit: labels have values in \[1, 12\]; labels must be class indices in \[0, 9\]"):
        training.fit(cfg, X, np.where(y == 0, 12, y), 10)
    with pytest.raises(ValueError, match="fit: labels have dtype float64; labels must be integer class indices"):
        training.fit(cfg, X, y.astype(float))
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="fit: inputs contain NaN or infinite values; inputs must be finite numbers"):
        training.fit(cfg, bad, y)
    with pytest.raises(ValueError, match=r"fit: inputs have shape \(1077,\)"):
        training.fit(cfg, X[:, 0, 0, 0], y)
    with pytest.raises(ValueError, match="fit: a batch_hook without a tag; give tag="):
        training.fit(cfg, X, y, batch_hook=lambda m, a, b: (a, b))
    with pytest.raises(ValueError, match="fit: optimizer = 'lbfgs' is not one of the choices"):
        training.fit(cfg.with_(optimizer="lbfgs"), X, y)
    with pytest.raises(ValueError, match="fit: epochs = 0 is out of range; epochs must be an integer >= 1"):
        training.fit(cfg.with_(epochs=0), X, y)
    with pytest.raises(ValueError, match=r"fit: lr = -0.1 is out of range; lr must be a number in \(0, inf\)"):
        training.fit(cfg.with_(lr=-0.1), X, y)
    with pytest.raises(ValueError, match="fit: n_classes = 1 is out of range"):
        training.fit(cfg, X, y, 1)
    with pytest.raises(ValueError, match="preset: model = 'svm' is not one of the choices; model must be one of 'logreg'"):
        training.preset("svm")


def test_predictions_and_eval_mode(digits, cache):
    model = training.fit(training.preset("logreg", epochs=2), digits.X_train, digits.y_train, 10)
    p = training.predict_proba(model, digits.X_test[:7])
    assert p.shape == (7, 10) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert (training.predict(model, digits.X_test[:7]) == p.argmax(1)).all()
    assert training.accuracy(model, torch.as_tensor(digits.X_test[:7]), torch.as_tensor(digits.y_test[:7])) == \
        training.accuracy(model, digits.X_test[:7], digits.y_test[:7])
    with pytest.raises(ValueError, match="accuracy: 6 labels for 7 inputs; give one label per input"):
        training.accuracy(model, digits.X_test[:7], digits.y_test[:6])
    with pytest.raises(ValueError, match="predict_proba: inputs are empty"):
        training.predict_proba(model, digits.X_test[:0])
    with pytest.raises(ValueError, match="predict: inputs contain NaN"):
        training.predict(model, np.full((2, 1, 8, 8), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="predict_proba: batch_size = 0 is out of range"):
        training.predict_proba(model, digits.X_test[:2], batch_size=0)
    model.train()
    for name, call in [("predict", training.predict), ("predict_proba", training.predict_proba),
                       ("accuracy", lambda m, X: training.accuracy(m, X, digits.y_test[:2]))]:
        with pytest.raises(ValueError, match=rf"^{name}: the model is in training mode; call model.eval\(\) first"):
            call(model, digits.X_test[:2])


def test_a_submodule_in_training_mode_is_refused(digits, cache):
    """The top module in eval mode is not enough: dropout or batch-norm inside may still be training."""
    model = training.fit(training.preset("mlp", epochs=1), digits.X_train, digits.y_train, 10)
    model.features[0].train()
    assert not model.training
    with pytest.raises(ValueError, match="predict_proba: the model is in training mode"):
        training.predict_proba(model, digits.X_test[:2])
    with pytest.raises(ValueError, match="accuracy: the model is in training mode"):
        training.accuracy(model, digits.X_test[:2], digits.y_test[:2])
    model.eval()
    assert training.predict(model, digits.X_test[:2]).shape == (2,)


def test_progress_switch(monkeypatch):
    monkeypatch.setenv("MODELSEC_PROGRESS", "1")
    assert training.progress_enabled()
    monkeypatch.setenv("MODELSEC_PROGRESS", "0")
    assert not training.progress_enabled()
