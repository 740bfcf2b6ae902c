"""utils.validation: every check, its message style, and that nothing is changed behind the caller's back."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from utils import validation as v

STYLE = r"^[\w.]+: [^;]+; [^;]+$"  # where: what was wrong; what is allowed


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(v.ValidationError) as err:
        fn(*args, **kwargs)
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert err.value.where and err.value.wrong and err.value.allowed
    assert msg == f"{err.value.where}: {err.value.wrong}; {err.value.allowed}"
    return msg


def test_numbers():
    assert v.integer(3, "steps", "pgd", low=1) == 3 and type(v.integer(np.int64(3), "steps", "pgd")) is int
    assert _message(v.integer, 0, "steps", "pgd", low=1) == "pgd: steps = 0 is out of range; steps must be an integer >= 1"
    assert "is not an integer" in _message(v.integer, True, "steps", "pgd", low=1)
    assert "is not an integer" in _message(v.integer, 2.0, "steps", "pgd")
    assert "in [1, 8]" in _message(v.integer, 9, "bits", "BitDepth", 1, 8)
    assert v.real(0.5, "x", "f", 0, 1) == 0.5
    assert "is not a finite number" in _message(v.real, float("nan"), "x", "f")
    assert "is not a finite number" in _message(v.real, "0.5", "x", "f")
    assert "(0, 1]" in _message(v.real, 0.0, "x", "f", 0, 1, open_low=True)
    assert v.unit(0, "eps", "fgsm") == 0.0 and v.unit(1, "eps", "fgsm") == 1.0
    assert _message(v.unit, 1.5, "eps", "fgsm") == "fgsm: eps = 1.5 is out of range; eps must be a number in [0, 1]"
    assert "(0, 1)" in _message(v.probability, 1.0, "alpha", "ks_test")
    assert "(0, 1)" in _message(v.probability, 0.0, "alpha", "ks_test")
    assert v.seed(0, "f") == 0
    assert "seed must be an integer >= 0" in _message(v.seed, -1, "f")
    assert v.choice("pgd", "method", "f", ["pgd", "fgsm_rs"]) == "pgd"
    assert "method must be one of 'pgd', 'fgsm_rs'" in _message(v.choice, "x", "method", "f", ["pgd", "fgsm_rs"])
    assert "not one of" in _message(v.choice, [1], "method", "f", ["pgd"])  # unhashable: still a clear error


def test_numpy_images():
    x = np.random.default_rng(0).random((3, 1, 4, 4)).astype(np.float32)
    out = v.images(x, "f")
    assert out is x  # already float32: no copy
    assert v.images(x.astype(np.float64), "f").dtype == np.float32
    msg = _message(v.images, x * 255, "apply_trigger")
    assert msg.startswith("apply_trigger: images have values in [") and "(divide 0-255 pixels by 255)" in msg
    assert "must be in [0, 1]" in _message(v.images, x - 0.5, "f")
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    assert "NaN or infinite" in _message(v.images, bad, "f")
    assert "(N, C, H, W)" in _message(v.images, x[0], "f")
    assert "real numbers" in _message(v.images, x > 0.5, "f")
    assert v.images(x * 255, "f", unit_range=False).max() > 1  # a check, not a clip
    assert v.images(x.reshape(3, 16), "f", ndim=None).shape == (3, 16)
    assert "empty" in _message(v.images, x[:0], "f", allow_empty=False)


def test_tensor_images_keep_the_graph_and_move_to_the_device():
    x = torch.rand(2, 1, 4, 4, requires_grad=True)
    out = v.image_tensor(x, "pgd")
    assert out is x and out.requires_grad
    assert v.image_tensor(np.zeros((2, 1, 4, 4)), "pgd").dtype == torch.float32
    assert "values in [0.000, 255.000]" in _message(v.image_tensor, torch.tensor([[[[0.0, 255.0]]]]), "fgsm")
    assert "NaN or infinite" in _message(v.image_tensor, torch.full((1, 1, 2, 2), float("inf")), "fgsm")
    assert "(N, C, H, W)" in _message(v.image_tensor, torch.rand(4, 4), "fgsm")


def test_labels():
    y = np.array([0, 2, 1])
    out = v.labels(y, "fit", n=3, n_classes=3)
    assert out.dtype == np.int64 and out.tolist() == [0, 2, 1]
    out[0] = 9
    assert y[0] == 0  # a copy: the caller's labels are untouched
    assert v.labels(torch.tensor([1, 0]), "fit").tolist() == [1, 0]
    assert _message(v.labels, y.astype(float), "fit") == "fit: labels have dtype float64; labels must be integer class indices"
    assert "dtype bool" in _message(v.labels, y > 0, "fit")
    assert "must be a 1-D array" in _message(v.labels, y[:, None], "fit")
    assert _message(v.labels, y, "fit", n=4) == "fit: 3 labels for 4 inputs; give one label per input"
    assert "class indices in [0, 1]" in _message(v.labels, y, "fit", n_classes=2)
    assert "class indices >= 0" in _message(v.labels, np.array([-1, 0]), "fit")
    assert "empty" in _message(v.labels, np.array([], dtype=int), "fit")
    t = v.label_tensor([1, 0], "pgd", 2)
    assert t.dtype == torch.long and t.tolist() == [1, 0]
    assert "dtype torch.float32" in _message(v.label_tensor, torch.tensor([1.0]), "pgd", 1)
    assert "for 2 images" in _message(v.label_tensor, [1], "pgd", 2)


def test_features_mask_and_lengths():
    f = v.features(np.ones((3, 2, 2)), "spectral")
    assert f.shape == (3, 4) and f.dtype == np.float64
    assert "(N, d)" in _message(v.features, np.ones(3), "spectral")
    assert "NaN" in _message(v.features, np.array([[np.nan, 1.0]]), "spectral")
    assert "at least 2 rows" in _message(v.features, np.ones((1, 2)), "mmd", min_rows=2)
    assert v.mask([0, 2], 4, "f").tolist() == [True, False, True, False]
    m = np.array([True, False])
    assert v.mask(m, 2, "f") is not m
    assert v.mask([], 3, "f").tolist() == [False] * 3
    assert "indices must be in [0, 3]" in _message(v.mask, [4], 4, "f")
    assert "repeats" in _message(v.mask, [1, 1], 4, "f")
    assert "shape (4,)" in _message(v.mask, m, 4, "f")
    assert "boolean mask" in _message(v.mask, [0.5], 4, "f")
    assert v.same_length("f", a=[1, 2], b=[3, 4]) == 2
    assert _message(v.same_length, "f", X=[1, 2], y=[1]) == "f: lengths differ: X has 2, y has 1; give one row per example in each"


def test_eval_mode_looks_at_every_submodule():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    model.eval()
    v.eval_mode(model, "predict")
    model[1].train()  # the top module says eval, a submodule still trains
    assert model.training is False
    assert _message(v.eval_mode, model, "predict").startswith("predict: the model is in training mode; call model.eval()")


@pytest.mark.parametrize("call", [
    lambda: v.integer("3", "n", "f"), lambda: v.unit(-0.1, "eps", "f"), lambda: v.labels([0.5], "f"),
    lambda: v.images(np.ones((1, 1, 2, 2)) * 2, "f"), lambda: v.mask([9], 2, "f"),
    lambda: v.features(np.ones(2), "f"), lambda: v.choice(3, "k", "f", [1, 2]),
])
def test_every_message_has_the_three_parts(call):
    import re

    with pytest.raises(v.ValidationError) as err:
        call()
    assert re.match(STYLE, str(err.value)), str(err.value)
