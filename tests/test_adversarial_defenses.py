"""Unit tests of utils.defenses.adversarial (lesson 05): small models, tiny data, a few seconds."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from utils.defenses import adversarial as ad
from utils import data, training
from utils.models import build_model

EPS = 0.1


@pytest.fixture(scope="module")
def digits():
    ds = data.load("digits", seed=0)
    return ds.X_train[:64].copy(), ds.y_train[:64].copy()


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return build_model("mlp", (1, 8, 8), 10, seed=0, hidden=(32,)).eval()


def _batch(digits, n=16):
    x, y = digits
    return torch.tensor(x[:n]), torch.tensor(y[:n])


# --------------------------------------------------------------------------- batch hooks


@pytest.mark.parametrize("make", [lambda: ad.pgd_hook(EPS, steps=3), lambda: ad.fgsm_rs_hook(EPS)])
def test_hooks_stay_in_budget_raise_loss_and_keep_inputs(make, model, digits):
    hook = make()
    xb, yb = _batch(digits)
    x0, y0 = xb.clone(), yb.clone()
    torch.manual_seed(0)
    x_adv, y_adv = hook(model, xb, yb)
    assert torch.equal(xb, x0) and torch.equal(yb, y0)  # never modified in place
    assert torch.equal(y_adv, yb)
    assert x_adv.shape == xb.shape and not x_adv.requires_grad
    assert (x_adv - xb).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        assert F.cross_entropy(model(x_adv), yb) > F.cross_entropy(model(xb), yb)


@pytest.mark.parametrize("make", [lambda: ad.pgd_hook(EPS, steps=3), lambda: ad.fgsm_rs_hook(EPS)])
def test_hooks_are_seeded_by_the_global_generator(make, model, digits):
    hook = make()
    xb, yb = _batch(digits)
    torch.manual_seed(1)
    a, _ = hook(model, xb, yb)
    torch.manual_seed(1)
    b, _ = hook(model, xb, yb)
    c, _ = hook(model, xb, yb)
    assert torch.equal(a, b)
    assert not torch.equal(b, c)  # the next batch gets another random start


@pytest.mark.parametrize("make", [lambda: ad.pgd_hook(EPS, steps=2), lambda: ad.fgsm_rs_hook(EPS)])
def test_hooks_handle_a_model_in_training_mode(make, digits):
    net = build_model("mlp", (1, 8, 8), 10, seed=0, hidden=(16,))
    net.head = torch.nn.Sequential(torch.nn.Dropout(0.5), net.head)  # mode matters now
    net.train()
    xb, yb = _batch(digits, 8)
    torch.manual_seed(0)
    a, _ = make()(net, xb, yb)
    assert net.training and all(m.training for m in net.modules())  # mode given back
    net.eval()
    torch.manual_seed(0)
    b, _ = make()(net, xb, yb)
    assert torch.equal(a, b)  # crafted in eval mode both times


def test_fgsm_rs_matches_its_definition(model, digits):
    xb, yb = _batch(digits)
    torch.manual_seed(3)
    got, _ = ad.fgsm_rs_hook(EPS)(model, xb, yb)
    torch.manual_seed(3)
    delta = torch.empty_like(xb).uniform_(-EPS, EPS).requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model((xb + delta).clamp(0, 1)), yb), delta)
    want = (xb + (delta.detach() + 1.25 * EPS * grad.sign()).clamp(-EPS, EPS)).clamp(0, 1)
    assert torch.allclose(got, want)


def test_hook_tags_name_their_settings():
    assert ad.pgd_hook(0.1, steps=10).tag == "pgd-at eps=0.1 steps=10 alpha=0.025"
    assert ad.fgsm_rs_hook(0.1).tag == "fgsm-rs eps=0.1 alpha=0.125"


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": -0.1}, "eps must be a number in \\[0, 1\\]"),
    ({"eps": 1.5}, "eps must be a number in \\[0, 1\\]"),
    ({"eps": True}, "eps must be a number"),
    ({"eps": 0.1, "steps": 0}, "steps must be an integer >= 1"),
    ({"eps": 0.1, "steps": 2.5}, "steps must be an integer"),
    ({"eps": 0.1, "alpha": 2.0}, "alpha must be a number in \\[0, 1\\]"),
])
def test_pgd_hook_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ad.pgd_hook(**kwargs)


def test_fgsm_rs_hook_rejects_bad_settings():
    with pytest.raises(ValueError, match="eps"):
        ad.fgsm_rs_hook(-0.01)
    with pytest.raises(ValueError, match="alpha"):
        ad.fgsm_rs_hook(0.1, alpha=-1.0)


@pytest.mark.parametrize("make", [lambda: ad.pgd_hook(EPS, steps=2), lambda: ad.fgsm_rs_hook(EPS)])
def test_hooks_reject_bad_batches(make, model, digits):
    xb, yb = _batch(digits, 8)
    hook = make()
    with pytest.raises(ValueError, match="images must be in \\[0, 1\\]"):
        hook(model, xb * 2 + 0.1, yb)
    with pytest.raises(ValueError, match="labels must have shape \\(8,\\)"):
        hook(model, xb, yb[:5])
    with pytest.raises(ValueError, match="labels must have shape"):
        hook(model, xb, yb.view(8, 1))
    with pytest.raises(ValueError, match="shape \\(N, C, H, W\\)"):
        hook(model, xb.flatten(1), yb)


def test_adversarial_training_trains_once_then_loads(tmp_path, monkeypatch, digits):
    monkeypatch.setenv("MODELSEC_CACHE", str(tmp_path))
    x, y = digits[0][:32], digits[1][:32]
    x0 = x.copy()
    config = training.preset("logreg", epochs=1)
    a = ad.adversarial_training(config, x, y, 10, method="fgsm_rs", eps=EPS)
    b = ad.adversarial_training(config, x, y, 10, method="fgsm_rs", eps=EPS)
    c = ad.adversarial_training(config, x, y, 10, method="pgd", eps=EPS, steps=2)
    assert np.array_equal(x, x0)
    assert not a.training and a.meta["tag"] == "fgsm-rs eps=0.1 alpha=0.125"
    assert not a.meta["from_cache"] and b.meta["from_cache"]
    assert b.meta["train_seconds"] == a.meta["train_seconds"] > 0
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert c.meta["key"] != a.meta["key"]  # another hook, another cache entry


def test_adversarial_training_rejects_bad_input(digits):
    x, y = digits
    config = training.preset("logreg", epochs=1)
    with pytest.raises(ValueError, match="method must be one of"):
        ad.adversarial_training(config, x, y, method="trades")
    with pytest.raises(ValueError, match="images must be in \\[0, 1\\]"):
        ad.adversarial_training(config, x * 255, y, cache=False)
    with pytest.raises(ValueError, match="eps must be a number in \\[0, 1\\]"):
        ad.adversarial_training(config, x, y, eps=2.0, cache=False)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        ad.adversarial_training(config, x, y, steps=0, cache=False)


# --------------------------------------------------------------------------- squeezers


def test_bit_depth_levels_and_zero_gradient():
    x = torch.linspace(0, 1, 64).view(1, 1, 8, 8)
    one = ad.BitDepth(1)(x)
    assert set(one.unique().tolist()) == {0.0, 1.0}
    three = ad.BitDepth(3)(x)
    assert torch.allclose(three * 7, (three * 7).round()) and (three - x).abs().max() <= 1 / 14 + 1e-6
    xr = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(ad.BitDepth(3)(xr).sum(), xr)
    assert torch.count_nonzero(grad) == 0  # rounding masks the gradient
    assert repr(ad.BitDepth(3)) == "BitDepth(bits=3)"


@pytest.mark.parametrize("bits", [0, 17, 2.0, True])
def test_bit_depth_rejects_bad_bits(bits):
    with pytest.raises(ValueError, match="bits must be an integer in \\[1, 16\\]"):
        ad.BitDepth(bits)


def test_median_filter_matches_scipy(digits):
    x = digits[0][:4]
    for size in (2, 3):
        got = ad.MedianFilter(size)(torch.tensor(x)).numpy()
        if size == 3:
            want = ndimage.median_filter(x, size=(1, 1, 3, 3), mode="nearest")
        else:  # 2×2 window reaching right and down, lower middle value
            p = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)), mode="edge")
            win = np.stack([p[..., :-1, :-1], p[..., :-1, 1:], p[..., 1:, :-1], p[..., 1:, 1:]], -1)
            want = np.sort(win, -1)[..., 1]
        np.testing.assert_allclose(got, want, atol=1e-7)
    assert ad.MedianFilter(1)(torch.tensor(x)).numpy().tolist() == x.tolist()


def test_squeezers_reject_bad_images():
    with pytest.raises(ValueError, match="images must be in \\[0, 1\\]"):
        ad.BitDepth(2)(torch.full((1, 1, 8, 8), 1.5))
    with pytest.raises(ValueError, match="NaN"):
        ad.MedianFilter(2)(torch.full((1, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="shape \\(N, C, H, W\\)"):
        ad.MedianFilter(2)(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="larger than the images"):
        ad.MedianFilter(9)(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="size must be an integer"):
        ad.MedianFilter(0)


def test_random_bit_depth_is_seeded():
    x = torch.full((2, 1, 8, 8), 0.5)
    sq = ad.RandomBitDepth(2, spread=0.2, seed=5)
    a, b = sq(x), sq(x)
    assert not torch.equal(a, b)
    assert torch.equal(sq.reseed()(x), a)
    assert torch.allclose(a * 3, (a * 3).round())
    with pytest.raises(ValueError, match="spread"):
        ad.RandomBitDepth(2, spread=-0.1)


def test_bpda_keeps_the_forward_pass_and_passes_gradients_straight_through(model, digits):
    xb, yb = _batch(digits)
    plain = ad.SqueezedModel(model, ad.BitDepth(3)).eval()
    bpda = ad.SqueezedModel(model, ad.BitDepth(3), bpda=True).eval()
    with torch.no_grad():
        assert torch.equal(plain(xb), bpda(xb))
    assert np.all(ad.input_gradient_norms(plain, xb, yb) == 0)  # masked
    xr = xb.clone().requires_grad_(True)
    g_bpda, = torch.autograd.grad(F.cross_entropy(bpda(xr), yb, reduction="sum"), xr)
    z = ad.BitDepth(3)(xb).requires_grad_(True)
    g_model, = torch.autograd.grad(F.cross_entropy(model(z), yb, reduction="sum"), z)
    assert torch.allclose(g_bpda, g_model)  # the model's gradient at the squeezed input
    with pytest.raises(ValueError, match="squeezer must be callable"):
        ad.SqueezedModel(model, 3)


def test_eot_averages_log_probabilities(model, digits):
    xb, _ = _batch(digits, 4)
    with torch.no_grad():
        assert torch.allclose(ad.EOT(model, 3)(xb), F.log_softmax(model(xb), 1), atol=1e-6)
        noisy = ad.SqueezedModel(model, ad.RandomBitDepth(3, 0.1, seed=0))
        eot = ad.EOT(noisy, 4)(xb)
        noisy.squeezer.reseed()
        want = torch.stack([F.log_softmax(noisy(xb), 1) for _ in range(4)]).mean(0)
        assert torch.allclose(eot, want)
    with pytest.raises(ValueError, match="samples must be an integer >= 1"):
        ad.EOT(model, 0)


# --------------------------------------------------------------------------- detection


def test_squeeze_score_range_and_zero_on_squeezed_images(model, digits):
    x = digits[0][:16]
    x0 = x.copy()
    s = ad.squeeze_score(model, x, [ad.BitDepth(2), ad.MedianFilter(2)])
    assert s.shape == (16,) and np.all(s >= 0) and np.all(s <= 2)
    assert np.array_equal(x, x0)
    already = ad.BitDepth(2)(torch.tensor(x))
    assert np.allclose(ad.squeeze_score(model, already, ad.BitDepth(2)), 0, atol=1e-6)
    single = ad.squeeze_score(model, x, [ad.BitDepth(2)])
    both = ad.squeeze_score(model, x, [ad.BitDepth(2), ad.MedianFilter(2)])
    assert np.all(both >= single - 1e-7)  # the max over squeezers


def test_squeeze_score_rejects_bad_input(model, digits):
    x = digits[0][:4]
    with pytest.raises(ValueError, match="give one or more squeezers"):
        ad.squeeze_score(model, x, [])
    with pytest.raises(ValueError, match="images must be in \\[0, 1\\]"):
        ad.squeeze_score(model, x - 0.5, [ad.BitDepth(2)])
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        ad.squeeze_score(model, x, [ad.BitDepth(2)])


def test_detection_roc_and_threshold():
    perfect = ad.detection_roc([0.0, 0.1, 0.2], [0.5, 0.9])
    assert perfect["auc"] == 1.0 and perfect["tpr"][-1] == 1.0
    assert ad.detection_roc([0.5, 0.9], [0.0, 0.1])["auc"] == 0.0
    with pytest.raises(ValueError, match="scores of both kinds"):
        ad.detection_roc([], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        ad.detection_roc([np.nan], [0.1])
    clean = np.arange(100) / 100
    t = ad.threshold_at_fpr(clean, 0.05)
    assert (clean > t).mean() <= 0.05 and (clean >= t).mean() > 0.05
    with pytest.raises(ValueError, match="fpr must be a number in \\[0, 1\\]"):
        ad.threshold_at_fpr(clean, 1.5)


# --------------------------------------------------------------------------- evaluation


def test_worst_case_accuracy_counts_an_image_once_any_attack_wins(model, digits):
    x, y = _batch(digits, 8)
    ok = ad.correct(model, x, y)
    assert ad.worst_case_accuracy(model, x, y, x) == ok.mean()
    flipped = x.clone()
    flipped[:4] = 1 - flipped[:4]
    want = (ok & ad.correct(model, flipped, y)).mean()
    assert ad.worst_case_accuracy(model, x, y, x, flipped) == want
    with pytest.raises(ValueError, match="at least one set"):
        ad.worst_case_accuracy(model, x, y)
    with pytest.raises(ValueError, match="attack 0 gives 4 images for 8"):
        ad.worst_case_accuracy(model, x, y, x[:4])


def test_evaluate_reports_worst_case_and_is_deterministic(model, digits):
    x, y = digits[0][:24], digits[1][:24]
    x0 = x.copy()
    a = ad.evaluate(model, x, y, EPS, pgd_steps=3, square_queries=20)
    b = ad.evaluate(model, x, y, EPS, pgd_steps=3, square_queries=20)
    assert a == b and set(a) == {"clean", "pgd", "square", "worst"}
    assert a["worst"] <= min(a["clean"], a["pgd"], a["square"])
    assert np.array_equal(x, x0)
    masked = ad.SqueezedModel(model, ad.BitDepth(3)).eval()
    plain = ad.evaluate(masked, x, y, 0.3, pgd_steps=5, square_queries=5)
    bpda = ad.evaluate(masked, x, y, 0.3, pgd_steps=5, square_queries=5,
                       crafting_model=ad.SqueezedModel(model, ad.BitDepth(3), bpda=True))
    assert bpda["pgd"] < plain["pgd"]  # the adaptive attack sees through the masking


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": -0.1}, "eps must be a number in \\[0, 1\\]"),
    ({"eps": 1.01}, "eps must be a number in \\[0, 1\\]"),
    ({"pgd_steps": 0}, "pgd_steps must be an integer >= 1"),
    ({"square_queries": 0}, "square_queries must be an integer >= 1"),
])
def test_evaluate_rejects_bad_settings(model, digits, kwargs, match):
    x, y = digits[0][:4], digits[1][:4]
    args = {"eps": EPS, **kwargs}
    with pytest.raises(ValueError, match=match):
        ad.evaluate(model, x, y, **args)


def test_evaluation_functions_reject_bad_data(model, digits):
    x, y = digits[0][:4], digits[1][:4]
    with pytest.raises(ValueError, match="images must be in \\[0, 1\\]"):
        ad.evaluate(model, x + 1, y, EPS)
    with pytest.raises(ValueError, match="labels must have shape \\(4,\\)"):
        ad.evaluate(model, x, y[:3], EPS)
    with pytest.raises(ValueError, match="integer class indices"):
        ad.correct(model, x, y.astype(float))
    with pytest.raises(ValueError, match="labels must have shape"):
        ad.input_gradient_norms(model, x, y[:, None])
    model.train()
    for fn in (lambda: ad.evaluate(model, x, y, EPS), lambda: ad.correct(model, x, y),
               lambda: ad.input_gradient_norms(model, x, y)):
        with pytest.raises(ValueError, match="training mode; call model.eval\\(\\) first"):
            fn()


# --------------------------------------------------------------------------- widget


def test_comparison_panel_shows_a_result_line_that_follows_the_controls(model, digits):
    x, y = digits[0][:4], digits[1][:4]
    other = build_model("mlp", (1, 8, 8), 10, seed=1, hidden=(32,)).eval()
    panel = ad.comparison_panel({"a": model, "b": other}, x, y, eps_values=[0.0, 0.1], steps=2)
    controls, label, picture = panel.children
    digit, budget, against = controls.children
    first = label.value
    assert first.startswith(f"digit {digit.value} (true ") and "ε = 0.100, PGD-2 against a → a: " in first
    assert " · b: " in first
    assert picture.value[:4] == b"\x89PNG"
    digit.value = 2
    budget.value = 0.0
    assert label.value.startswith("digit 2 (true ") and "ε = 0.000" in label.value
    against.value = "b"
    assert "against b" in label.value
    again = ad.comparison_panel({"a": model, "b": other}, x, y, eps_values=[0.0, 0.1], steps=2)
    assert again.children[1].value == first  # deterministic
    with pytest.raises(ValueError, match="eps must be a number"):
        ad.comparison_panel({"a": model}, x, y, eps_values=[-0.1])
    with pytest.raises(ValueError, match="labels must have shape"):
        ad.comparison_panel({"a": model}, x, y[:2], eps_values=[0.1])
