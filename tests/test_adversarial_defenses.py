"""Unit tests of utils.defenses.adversarial and the comparison panel (lesson 05): small models,
tiny data, a few seconds. The ROC and the threshold it uses are tested in tests/test_metrics.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from utils.attacks import evasion
from utils.defenses import adversarial as ad
from utils import data, training
from utils.models import build_model
from utils.widgets import comparison_panel

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


@pytest.mark.parametrize("eps", [EPS, 0.3, 0.8])
def test_fgsm_rs_matches_its_definition(model, digits, eps):
    """Bit for bit: projecting with evasion.project_linf is clipping δ to the ball, then x + δ to [0, 1]."""
    xb, yb = _batch(digits, 64)
    torch.manual_seed(3)
    got, _ = ad.fgsm_rs_hook(eps)(model, xb, yb)
    torch.manual_seed(3)
    delta = torch.empty_like(xb).uniform_(-eps, eps).requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model((xb + delta).clamp(0, 1)), yb), delta)
    want = (xb + (delta.detach() + 1.25 * eps * grad.sign()).clamp(-eps, eps)).clamp(0, 1)
    assert torch.equal(got, want)


@pytest.mark.parametrize("eps, steps", [(EPS, 3), (0.3, 5), (0.8, 2)])
def test_pgd_hook_matches_its_definition(model, digits, eps, steps):
    """Bit for bit the PGD of the lesson (05's pgd_batch): a random start from the global generator,
    signed steps, each clipped to the ball around x and to [0, 1] (the hook is evasion.pgd drawing
    from the global generator); and the global generator moves on exactly as much."""
    xb, yb = _batch(digits, 64)
    alpha = 2.5 * eps / steps
    torch.manual_seed(3)
    got, _ = ad.pgd_hook(eps, steps=steps)(model, xb, yb)
    after_hook = torch.rand(4)
    torch.manual_seed(3)
    x_adv = (xb + torch.empty_like(xb).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(x_adv), yb), x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), xb - eps), xb + eps).clamp(0, 1)
    assert torch.equal(got, x_adv)
    assert torch.equal(torch.rand(4), after_hook)


def test_pgd_hook_is_evasion_pgd_from_the_same_start(model, digits):
    """The steps are evasion.pgd's: with the start it would draw (a generator seeded with 5), they agree."""
    xb, yb = _batch(digits, 32)
    torch.manual_seed(5)
    got, _ = ad.pgd_hook(EPS, steps=4)(model, xb, yb)
    want = evasion.pgd(model, xb, yb, EPS, steps=4, seed=5)
    assert torch.equal(got, want)


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
    where = "pgd_hook" if "pgd" in hook.tag else "fgsm_rs_hook"
    with pytest.raises(ValueError, match=f"{where}: images have values in .*; images must be in \\[0, 1\\]"):
        hook(model, xb * 2 + 0.1, yb)
    with pytest.raises(ValueError, match=f"{where}: 5 labels for 8 images; give one label per image"):
        hook(model, xb, yb[:5])
    with pytest.raises(ValueError, match="labels have shape \\(8, 1\\)"):
        hook(model, xb, yb.view(8, 1))
    with pytest.raises(ValueError, match="labels have dtype torch.float32"):
        hook(model, xb, yb.float())
    with pytest.raises(ValueError, match="shape \\(N, C, H, W\\)"):
        hook(model, xb.flatten(1), yb)
    with pytest.raises(ValueError, match="images contain NaN"):
        hook(model, torch.full_like(xb, float("nan")), yb)


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
    with pytest.raises(ValueError, match="adversarial_training: 10 labels for 64 inputs"):
        ad.adversarial_training(config, x, y[:10], cache=False)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 4\]"):
        ad.adversarial_training(config, x, y, 5, cache=False)


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
    flat = x.reshape(1, 64)  # any batch shape: flat rows too (a black-box API's inputs)
    assert torch.equal(ad.BitDepth(3)(flat), three.reshape(1, 64))


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


def toy_proba(X):
    """A black-box 'API': NumPy in, probabilities out (softmax of fixed pixel weights)."""
    W = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)
    z = np.asarray(X, dtype=np.float32).reshape(len(X), -1) @ W
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("shape", [(16, 1, 8, 8), (16, 64)])
@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_squeeze_score_of_a_predict_proba_callable_is_the_monitoring_formula(digits, shape, bits):
    """08_monitoring's squeeze score: |p(X) - p(round(X * (2^b - 1)) / (2^b - 1))|, summed over classes."""
    X = digits[0][:16].reshape(shape)
    X0 = X.copy()
    got = ad.squeeze_score(toy_proba, X, ad.BitDepth(bits))
    levels = 2 ** bits - 1
    want = np.abs(toy_proba(X) - toy_proba(np.round(X * levels) / levels)).sum(1)
    assert got.shape == (16,) and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)  # float32 precision
    np.testing.assert_array_equal(got, want)  # in fact bit for bit
    assert np.array_equal(X, X0)
    assert (got > 0).any()  # the check means something


def test_squeeze_score_of_a_callable_and_of_a_model_agree(model, digits):
    """The same idea both ways: a model, or its predict_proba seen as a black box."""
    x = digits[0][:16]

    def api(X):
        with torch.no_grad():
            return F.softmax(model(torch.as_tensor(X)), dim=1).numpy()

    for squeezers in (ad.BitDepth(2), [ad.BitDepth(2), ad.MedianFilter(2)]):
        np.testing.assert_allclose(ad.squeeze_score(api, x, squeezers), ad.squeeze_score(model, x, squeezers),
                                   rtol=1e-5, atol=1e-6)
    assert ad.squeeze_score(api, x[:0], ad.BitDepth(2)).shape == (0,)


def test_squeeze_score_refuses_bad_callables_and_inputs(digits):
    x = digits[0][:4]
    with pytest.raises(ValueError, match=r"squeeze_score: predict_proba gave an array of shape \(4,\) for 4 inputs"):
        ad.squeeze_score(lambda X: np.ones(len(X)), x, ad.BitDepth(2))
    with pytest.raises(ValueError, match="squeeze_score: model is a str; give an nn.Module or a predict_proba"):
        ad.squeeze_score("api", x, ad.BitDepth(2))
    with pytest.raises(ValueError, match="squeeze_score: images have values in .*divide 0-255 pixels by 255"):
        ad.squeeze_score(toy_proba, x * 255, ad.BitDepth(2))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        ad.squeeze_score(toy_proba, x, ad.BitDepth(2), batch_size=0)


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
    model.train()
    with pytest.raises(ValueError, match="worst_case_accuracy: the model is in training mode"):
        ad.worst_case_accuracy(model, x, y, x)


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
                       crafting_model=ad.SqueezedModel(model, ad.BitDepth(3), bpda=True).eval())
    assert bpda["pgd"] < plain["pgd"]  # the adaptive attack sees through the masking
    crafter = ad.SqueezedModel(model, ad.BitDepth(3), bpda=True).train()
    with pytest.raises(ValueError, match="evaluate: the model is in training mode"):  # the crafter too
        ad.evaluate(masked, x, y, 0.3, pgd_steps=1, square_queries=1, crafting_model=crafter)


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": -0.1}, "eps must be a number in \\[0, 1\\]"),
    ({"eps": 1.01}, "eps must be a number in \\[0, 1\\]"),
    ({"pgd_steps": 0}, "pgd_steps must be an integer >= 1"),
    ({"square_queries": 0}, "square_queries must be an integer >= 1"),
    ({"seed": -1}, "seed must be an integer >= 0"),
])
def test_evaluate_rejects_bad_settings(model, digits, kwargs, match):
    x, y = digits[0][:4], digits[1][:4]
    args = {"eps": EPS, **kwargs}
    with pytest.raises(ValueError, match=match):
        ad.evaluate(model, x, y, **args)


def test_evaluation_functions_reject_bad_data(model, digits):
    x, y = digits[0][:4], digits[1][:4]
    with pytest.raises(ValueError, match="evaluate: images have values in .*; images must be in \\[0, 1\\]"):
        ad.evaluate(model, x + 1, y, EPS)
    with pytest.raises(ValueError, match="evaluate: 3 labels for 4 images"):
        ad.evaluate(model, x, y[:3], EPS)
    with pytest.raises(ValueError, match="correct: labels have dtype float64; labels must be integer class indices"):
        ad.correct(model, x, y.astype(float))
    with pytest.raises(ValueError, match="labels have shape \\(4, 1\\)"):
        ad.input_gradient_norms(model, x, y[:, None])
    with pytest.raises(ValueError, match="labels must be class indices >= 0"):
        ad.correct(model, x, y - 10)
    model.train()
    for fn in (lambda: ad.evaluate(model, x, y, EPS), lambda: ad.correct(model, x, y),
               lambda: ad.input_gradient_norms(model, x, y)):
        with pytest.raises(ValueError, match="training mode; call model.eval\\(\\) first"):
            fn()


# --------------------------------------------------------------------------- widget


def test_comparison_panel_shows_a_result_line_that_follows_the_controls(model, digits):
    x, y = digits[0][:4], digits[1][:4]
    other = build_model("mlp", (1, 8, 8), 10, seed=1, hidden=(32,)).eval()
    panel = comparison_panel({"a": model, "b": other}, x, y, eps_values=[0.0, 0.1], steps=2)
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
    again = comparison_panel({"a": model, "b": other}, x, y, eps_values=[0.0, 0.1], steps=2)
    assert again.children[1].value == first  # deterministic
    with pytest.raises(ValueError, match="comparison_panel: eps = -0.1 is out of range; eps must be a number"):
        comparison_panel({"a": model}, x, y, eps_values=[-0.1])
    with pytest.raises(ValueError, match="comparison_panel: 2 labels for 4 images"):
        comparison_panel({"a": model}, x, y[:2], eps_values=[0.1])
    with pytest.raises(ValueError, match="comparison_panel: no eps values given"):
        comparison_panel({"a": model}, x, y, eps_values=[])
    with pytest.raises(ValueError, match="comparison_panel: no models given"):
        comparison_panel({}, x, y, eps_values=[0.1])
    with pytest.raises(ValueError, match="comparison_panel: images have values in"):
        comparison_panel({"a": model}, x * 255, y, eps_values=[0.1])
    other.train()
    with pytest.raises(ValueError, match=r"comparison_panel \(b\): the model is in training mode"):
        comparison_panel({"a": model, "b": other}, x, y, eps_values=[0.1])


# --------------------------------------------------------------------------- FGSM from zero, detector-aware PGD


def test_fgsm_without_random_start_is_fgsm_clipped_to_the_ball(model, digits):
    """random_start=False: the step starts at δ = 0 (plain FGSM of size alpha, clipped to the eps-ball),
    draws no random numbers, and gets its own tag (another cache entry)."""
    xb, yb = _batch(digits, 32)
    hook = ad.fgsm_rs_hook(EPS, random_start=False)
    assert hook.tag == "fgsm-zero eps=0.1 alpha=0.125"
    state = torch.get_rng_state()
    got, _ = hook(model, xb, yb)
    assert torch.equal(torch.get_rng_state(), state)
    x = xb.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), yb), x)
    want = (xb + (1.25 * EPS * grad.sign()).clamp(-EPS, EPS)).clamp(0, 1)
    assert torch.allclose(got, want, atol=1e-7)
    assert torch.allclose(got, evasion.fgsm(model, xb, yb, EPS), atol=1e-7)  # clipped, the step is FGSM's


def test_fgsm_zero_hook_rejects_a_non_bool_start_and_pgd_refuses_it(digits):
    with pytest.raises(ValueError, match="random_start must be True or False"):
        ad.fgsm_rs_hook(EPS, random_start="no")
    x, y = digits
    with pytest.raises(ValueError, match="random_start is an option of 'fgsm_rs' only"):
        ad.adversarial_training(training.preset("logreg", epochs=1), x, y, method="pgd", random_start=False,
                                cache=False)


def test_detector_aware_pgd_with_no_weight_is_plain_pgd(model, digits):
    xb, yb = _batch(digits, 32)
    got = ad.detector_aware_pgd(model, xb, yb, EPS, ad.BitDepth(2), weight=0.0, steps=5, seed=3)
    want = evasion.pgd(model, xb, yb, EPS, steps=5, seed=3)
    assert torch.equal(got, want)


def test_detector_aware_pgd_stays_in_budget_and_lowers_the_detection_score(digits):
    """On a trained model: the output lies in the eps-ball and [0, 1], the input is untouched, the penalty
    lowers the squeezing score of the adversarial images, and the run is deterministic."""
    ds = data.load("digits", seed=0)
    net = training.fit(training.preset("mlp", seed=0, epochs=5), ds.X_train, ds.y_train, ds.n_classes, cache=False)
    x, y = torch.tensor(ds.X_test[:64]), torch.tensor(ds.y_test[:64])
    x0 = x.clone()
    squeeze = [ad.BitDepth(2)]
    plain = ad.detector_aware_pgd(net, x, y, EPS, squeeze, weight=0.0, steps=20)
    aware = ad.detector_aware_pgd(net, x, y, EPS, squeeze, weight=3.0, steps=20)
    assert torch.equal(x, x0)
    for xa in (plain, aware):
        assert (xa - x).abs().max() <= EPS + 1e-6 and xa.min() >= 0 and xa.max() <= 1
    assert ad.squeeze_score(net, aware, squeeze).mean() < 0.5 * ad.squeeze_score(net, plain, squeeze).mean()
    assert torch.equal(aware, ad.detector_aware_pgd(net, x, y, EPS, squeeze, weight=3.0, steps=20))


def test_detector_aware_pgd_rejects_bad_input(model, digits):
    xb, yb = _batch(digits, 8)
    with pytest.raises(ValueError, match="weight must be a number in \\[0, inf\\)|weight"):
        ad.detector_aware_pgd(model, xb, yb, EPS, ad.BitDepth(2), weight=-1.0)
    with pytest.raises(ValueError, match="eps must be a number in \\[0, 1\\]"):
        ad.detector_aware_pgd(model, xb, yb, 1.5, ad.BitDepth(2))
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        ad.detector_aware_pgd(model, xb, yb, EPS, ad.BitDepth(2), steps=0)
    with pytest.raises(ValueError, match="give one or more squeezers"):
        ad.detector_aware_pgd(model, xb, yb, EPS, [])
    with pytest.raises(ValueError, match="5 labels for 8 images"):
        ad.detector_aware_pgd(model, xb, yb[:5], EPS, ad.BitDepth(2))
    with pytest.raises(ValueError, match="images must be in \\[0, 1\\]"):
        ad.detector_aware_pgd(model, xb * 2 + 0.1, yb, EPS, ad.BitDepth(2))
    with pytest.raises(ValueError, match="eval"):
        ad.detector_aware_pgd(model.train(), xb, yb, EPS, ad.BitDepth(2))
