"""utils.attacks.evasion (04_adversarial_examples): cross-checks against torchattacks, the bridge's
quirk handling, bad input, determinism; plus utils.tooling.benchmarks and utils.widgets.attacks."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torchattacks
from torch import nn

import utils
from utils.widgets import attack_explorer
from utils.attacks import evasion as attacks
from utils.tooling import benchmarks
from utils import data, training

EPS = 0.1


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", seed=0)


@pytest.fixture(scope="module")
def tiny(digits):
    """A small MLP (one hidden layer of 32) trained for a few epochs, not cached."""
    utils.setup(0, plots=False)  # one thread, deterministic algorithms
    config = training.preset("mlp", epochs=8, model_kwargs=(("hidden", (32,)),))
    model = training.fit(config, digits.X_train, digits.y_train, 10, device="cpu", cache=False)
    x = torch.as_tensor(digits.X_test[:120])
    y = torch.as_tensor(digits.y_test[:120])
    assert attacks.robust_accuracy(model, x, y) > 0.8  # a real classifier, so the checks mean something
    return model, x, y


def _acc(model, x_adv, y):
    return attacks.robust_accuracy(model, x_adv, y)


# --------------------------------------------------------------------------- cross-checks


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2])
def test_fgsm_matches_torchattacks(tiny, eps):
    model, x, y = tiny
    ours = attacks.fgsm(model, x, y, eps)
    theirs = torchattacks.FGSM(model, eps=eps)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert abs(_acc(model, ours, y) - _acc(model, theirs, y)) <= 0.01
    assert _acc(model, ours, y) < _acc(model, x, y)


@pytest.mark.parametrize("eps,steps", [(0.05, 5), (0.1, 10), (0.2, 20)])
def test_pgd_matches_torchattacks_without_random_start(tiny, eps, steps):
    model, x, y = tiny
    alpha = 2.5 * eps / steps
    ours = attacks.pgd(model, x, y, eps, alpha=alpha, steps=steps, random_start=False)
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    assert (ours - theirs).abs().max() <= 1e-5
    assert abs(_acc(model, ours, y) - _acc(model, theirs, y)) <= 0.01


def test_pgd_with_random_start_agrees_with_torchattacks(tiny, digits):
    model = tiny[0]
    x, y = torch.as_tensor(digits.X_test), torch.as_tensor(digits.y_test)
    ours = attacks.pgd(model, x, y, EPS, alpha=0.025, steps=10, seed=0)
    torch.manual_seed(0)
    theirs = torchattacks.PGD(model, eps=EPS, alpha=0.025, steps=10, random_start=True)(x, y)
    assert not torch.equal(ours, theirs)  # different random starts ...
    assert abs(_acc(model, ours, y) - _acc(model, theirs, y)) <= 0.01  # ... the same strength


def test_bridge_fgsm_and_pgd_equal_the_utils_versions(tiny):
    model, x, y = tiny
    assert torch.allclose(attacks.run_torchattacks("FGSM", model, x, y, EPS), attacks.fgsm(model, x, y, EPS), atol=1e-6)
    via_bridge = attacks.run_torchattacks("PGD", model, x, y, EPS, steps=7, random_start=False)
    assert (via_bridge - attacks.pgd(model, x, y, EPS, steps=7, random_start=False)).abs().max() <= 1e-5


def test_pgd_is_at_least_as_strong_as_fgsm(tiny):
    model, x, y = tiny
    assert _acc(model, attacks.pgd(model, x, y, EPS), y) <= _acc(model, attacks.fgsm(model, x, y, EPS), y)


# --------------------------------------------------------------------------- the bridge

FAST_KWARGS = {"FGSM": {}, "PGD": {"steps": 5}, "CW": {"steps": 20, "lr": 0.1}, "Square": {"n_queries": 30},
               "APGD": {"steps": 5}}


@pytest.mark.parametrize("name", list(FAST_KWARGS))
def test_bridge_respects_the_budget_and_the_pixel_range(tiny, name):
    model, x, y = tiny
    x_adv = attacks.run_torchattacks(name, model, x, y, EPS, **FAST_KWARGS[name])
    assert x_adv.shape == x.shape and x_adv.dtype == torch.float32
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert _acc(model, x_adv, y) <= _acc(model, x, y)


@pytest.mark.parametrize("name", list(FAST_KWARGS))
def test_bridge_restores_the_global_rng_and_is_deterministic(tiny, name):
    model, x, y = tiny
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = attacks.run_torchattacks(name, model, x[:20], y[:20], EPS, seed=3, **FAST_KWARGS[name])
    assert torch.equal(torch.get_rng_state(), state), f"{name} changed torch's global RNG state"
    again = attacks.run_torchattacks(name, model, x[:20], y[:20], EPS, seed=3, **FAST_KWARGS[name])
    assert torch.equal(first, again)


def test_bridge_seed_changes_random_attacks(tiny):
    model, x, y = tiny
    a = attacks.run_torchattacks("Square", model, x[:20], y[:20], EPS, seed=0, n_queries=20)
    b = attacks.run_torchattacks("Square", model, x[:20], y[:20], EPS, seed=1, n_queries=20)
    assert not torch.equal(a, b)


def test_autoattack_is_seeded_quiet_and_strong(tiny, capsys):
    model, x, y = tiny
    # at ε = 0.3 APGD alone fools every digit of this small model, so AutoAttack returns quickly
    first = attacks.run_torchattacks("AutoAttack", model, x[:12], y[:12], 0.3)
    assert _acc(model, first, y[:12]) == 0.0
    assert torch.equal(first, attacks.run_torchattacks("AutoAttack", model, x[:12], y[:12], 0.3, seed=0))
    assert capsys.readouterr().out == ""


def test_square_convenience(tiny):
    model, x, y = tiny
    x_adv = attacks.square(model, x[:30], y[:30], 0.2, n_queries=50)
    assert torch.equal(x_adv, attacks.run_torchattacks("Square", model, x[:30], y[:30], 0.2, n_queries=50))
    assert _acc(model, x_adv, y[:30]) < _acc(model, x[:30], y[:30])
    with pytest.raises(ValueError, match="n_queries"):
        attacks.square(model, x[:5], y[:5], 0.1, n_queries=0)


@pytest.mark.parametrize("name", ["FGSM", "PGD", "CW", "Square"])
def test_bridge_targeted_mode_is_quiet_and_reaches_targets(tiny, name, capsys):
    model, x, y = tiny
    target = (y + 1) % 10
    kwargs = {"Square": {"n_queries": 100}, "CW": {"c": 10.0, "lr": 0.1, "steps": 50}}.get(name, {})
    eps = 1.0 if name == "CW" else 0.3  # C&W is an L2 attack: no L∞ limit here
    x_adv = attacks.run_torchattacks(name, model, x, y, eps, targeted=True, target_labels=target, **kwargs)
    assert capsys.readouterr().out == "", "targeted-mode setters must be called with quiet=True"
    hit = (training.predict(model, x_adv) == target.numpy()).mean()
    assert hit > (training.predict(model, x) == target.numpy()).mean() + 0.2


def test_utils_targeted_attacks_reach_targets(tiny):
    model, x, y = tiny
    target = (y + 1) % 10
    for x_adv in (attacks.fgsm(model, x, target, 0.3, targeted=True),
                  attacks.pgd(model, x, target, 0.3, steps=20, targeted=True)):
        assert (training.predict(model, x_adv) == target.numpy()).mean() > 0.3


def test_bridge_random_targets_differ_from_labels(tiny):
    model, x, y = tiny
    x_adv = attacks.run_torchattacks("PGD", model, x, y, 0.3, targeted=True, steps=10)
    assert (training.predict(model, x_adv) != y.numpy()).mean() > 0.5


def test_bridge_rejects_bad_targeting(tiny):
    model, x, y = tiny
    with pytest.raises(ValueError, match="untargeted only"):
        attacks.run_torchattacks("APGD", model, x, y, EPS, targeted=True, target_labels=y)
    with pytest.raises(ValueError, match="untargeted only"):
        attacks.run_torchattacks("AutoAttack", model, x, y, EPS, targeted=True)
    with pytest.raises(ValueError, match="targeted=False"):
        attacks.run_torchattacks("PGD", model, x, y, EPS, target_labels=y)
    with pytest.raises(ValueError, match="run_torchattacks: 3 target_labels for 120 images; give one label per image"):
        attacks.run_torchattacks("PGD", model, x, y, EPS, targeted=True, target_labels=y[:3])
    with pytest.raises(ValueError, match=r"target_labels must be class indices in \[0, 9\]"):
        attacks.run_torchattacks("PGD", model, x, y, EPS, targeted=True, target_labels=y + 10)
    with pytest.raises(ValueError, match="name = 'DeepFool' is not one of the choices; name must be one of 'FGSM'"):
        attacks.run_torchattacks("DeepFool", model, x, y, EPS)
    with pytest.raises(ValueError, match="PGD: .*'step'"):
        attacks.run_torchattacks("PGD", model, x, y, EPS, step=5)


def test_cw_moves_pixels_that_are_exactly_zero(tiny):
    model, x, y = tiny
    kwargs = {"c": 1.0, "lr": 0.1, "steps": 100}
    x_adv = attacks.run_torchattacks("CW", model, x, y, 1.0, **kwargs)
    raw = torchattacks.CW(model, **kwargs)(x, y)  # torchattacks alone: atanh(-1) = -inf, stuck
    zero = x == 0
    assert zero.float().mean() > 0.3  # digits: a third or more of the pixels are background
    assert not ((raw - x).abs() > 0.01)[zero].any()
    assert ((x_adv - x).abs() > 0.01)[zero].float().mean() > 0.05, "pixels at exactly 0 must be able to move"
    small = (x_adv - x).abs() <= 1e-5
    assert torch.equal(x_adv[small], x[small]), "pixels C&W did not move come back exactly"
    assert (training.predict(model, x_adv) != y.numpy()).mean() > 0.9


def test_cw_is_projected_onto_the_linf_budget(tiny):
    model, x, y = tiny
    x_adv = attacks.run_torchattacks("CW", model, x, y, 0.05, steps=20, lr=0.1)
    assert (x_adv - x).abs().max() <= 0.05 + 1e-6


# --------------------------------------------------------------------------- bad input


def _callers(model):
    return {
        "fgsm": lambda x, y, eps=EPS: attacks.fgsm(model, x, y, eps),
        "pgd": lambda x, y, eps=EPS: attacks.pgd(model, x, y, eps, steps=2),
        "bridge PGD": lambda x, y, eps=EPS: attacks.run_torchattacks("PGD", model, x, y, eps, steps=2),
        "square": lambda x, y, eps=EPS: attacks.square(model, x, y, eps, n_queries=5),
    }


@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan"), True, "0.1", None])
def test_bad_eps_is_rejected(tiny, eps):
    model, x, y = tiny
    for name, call in _callers(model).items():
        with pytest.raises(ValueError, match=r"eps must be a number in \[0, 1\]"):
            call(x[:4], y[:4], eps)


@pytest.mark.parametrize("steps", [0, -3, 1.5, True])
def test_bad_steps_are_rejected(tiny, steps):
    model, x, y = tiny
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        attacks.pgd(model, x[:4], y[:4], EPS, steps=steps)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        attacks.run_torchattacks("PGD", model, x[:4], y[:4], EPS, steps=steps)


def test_bad_alpha_is_rejected(tiny):
    model, x, y = tiny
    with pytest.raises(ValueError, match="alpha"):
        attacks.pgd(model, x[:4], y[:4], EPS, alpha=2.0)
    with pytest.raises(ValueError, match="alpha"):
        attacks.run_torchattacks("PGD", model, x[:4], y[:4], EPS, alpha=-0.1)


@pytest.mark.parametrize("make_bad,message", [
    (lambda x: x * 255, r"images have values in \[0.000, 255.000\]; images must be in \[0, 1\] \(divide 0-255"),
    (lambda x: x - 0.5, r"images have values in \[-0.500, 0.500\]; images must be in \[0, 1\]$"),
    (lambda x: torch.where(x > 0.5, torch.tensor(float("nan")), x), "NaN or infinite"),
    (lambda x: x.flatten()[:64], "batch dimension"),
])
def test_images_outside_the_unit_range_are_rejected(tiny, make_bad, message):
    model, x, y = tiny
    bad = make_bad(x[:4])
    for name, call in _callers(model).items():
        with pytest.raises(ValueError, match=message):
            call(bad, y[:4])
    with pytest.raises(ValueError, match=message):
        attacks.robust_accuracy(model, bad, y[:4])


@pytest.mark.parametrize("make_bad,message", [
    (lambda y: y[:3], r"3 labels for 4 images; give one label per image"),
    (lambda y: y[:, None], r"labels have shape \(4, 1\); labels must be a 1-D array"),
    (lambda y: y.float(), "labels must be integer class indices"),
    (lambda y: y - 100, "labels must be class indices >= 0"),
    (lambda y: y + 10, r"labels must be class indices in \[0, 9\]"),
])
def test_labels_of_the_wrong_shape_or_range_are_rejected(tiny, make_bad, message):
    model, x, y = tiny
    bad = make_bad(y[:4])
    for name, call in _callers(model).items():
        with pytest.raises(ValueError, match=message):
            call(x[:4], bad)
    with pytest.raises(ValueError, match=message):
        attacks.robust_accuracy(model, x[:4], bad)


def test_numpy_inputs_are_accepted(tiny):
    model, x, y = tiny
    ours = attacks.fgsm(model, x.numpy(), y.numpy(), EPS)
    assert torch.equal(ours, attacks.fgsm(model, x, y, EPS))


def test_inputs_are_never_modified(tiny):
    model, x, y = tiny
    xn, yn = x[:10].numpy().copy(), y[:10].numpy().copy()
    xt, yt = x[:10].clone(), y[:10].clone()
    for call in _callers(model).values():
        call(xt, yt)
        call(xn, yn)
    attacks.run_torchattacks("CW", model, xt, yt, EPS, steps=5)
    assert torch.equal(xt, x[:10]) and torch.equal(yt, y[:10])
    assert np.array_equal(xn, x[:10].numpy()) and np.array_equal(yn, y[:10].numpy())


# --------------------------------------------------------------------------- model mode


class _WithDropout(nn.Module):
    def __init__(self, base):
        super().__init__()
        self.base, self.drop = base, nn.Dropout(0.5)

    def forward(self, x):
        return self.base(self.drop(x))


def _evaluators(model):
    """Every public function here that runs the model (besides the attacks of _callers)."""
    return {
        "robust_accuracy": lambda x, y: attacks.robust_accuracy(model, x, y),
        "robustness_curve": lambda x, y: attacks.robustness_curve(model, x, y, {"FGSM": attacks.fgsm}, [0.1]),
        "run_torchattacks": lambda x, y: attacks.run_torchattacks("FGSM", model, x, y, EPS),
        "predict_proba": lambda x, y: training.predict_proba(model, x),
        "accuracy": lambda x, y: training.accuracy(model, x, y),
    }


@pytest.mark.parametrize("which", ["top module", "one submodule"])
def test_a_model_in_training_mode_is_refused(tiny, which):
    base, x, y = tiny
    model = _WithDropout(base).eval()
    if which == "top module":
        model.train()
    else:
        model.drop.train()  # the top module says eval, dropout would still be active
    modes = [m.training for m in model.modules()]
    try:
        calls = {**_callers(model), **_evaluators(model)}
        for name, call in calls.items():
            where = name.split()[-1] if name != "bridge PGD" else "run_torchattacks"
            with pytest.raises(ValueError, match=rf"^{where}: the model is in training mode; call model.eval\(\) first"):
                call(x[:4], y[:4])
            assert [m.training for m in model.modules()] == modes, f"{name} changed the model's mode"
    finally:
        base.eval()


def test_eval_mode_crafts_during_training_and_restores_the_mode(tiny):
    """What adversarial training does (05): craft in eval mode inside the block, train mode after."""
    base, x, y = tiny
    model = _WithDropout(base).eval()
    expected = {name: call(x[:20], y[:20]) for name, call in _callers(model).items()}
    model.train()
    try:
        for name, call in _callers(model).items():
            with attacks.eval_mode(model):
                got = call(x[:20], y[:20])
            assert torch.equal(got, expected[name]), f"{name}: dropout was active during the attack"
            assert model.training and model.drop.training and base.training, f"{name}: mode not restored"
    finally:
        model.eval()


def test_mixed_modes_are_restored_exactly(tiny):
    base, x, y = tiny
    model = _WithDropout(base).eval()
    model.drop.train()
    with attacks.eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.drop.training and not model.training and not base.training
    model.drop.eval()


def test_mode_is_restored_when_the_attack_fails(tiny):
    base, x, y = tiny
    base.train()
    try:
        with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 9\]"):
            with attacks.eval_mode(base):
                attacks.run_torchattacks("PGD", base, x[:4], y[:4] + 10, EPS)
        assert base.training
        with pytest.raises(RuntimeError):
            with attacks.eval_mode(base):
                raise RuntimeError("boom")
        assert base.training
    finally:
        base.eval()


def test_messages_say_where_what_and_what_is_allowed(tiny):
    model, x, y = tiny
    with pytest.raises(ValueError) as err:
        attacks.fgsm(model, x[:4], y[:4], 1.5)
    assert str(err.value) == "fgsm: eps = 1.5 is out of range; eps must be a number in [0, 1]"
    with pytest.raises(ValueError) as err:
        attacks.square(model, x[:4] * 255, y[:4], EPS, n_queries=5)
    assert str(err.value) == ("square: images have values in [0.000, 255.000]; "
                              "images must be in [0, 1] (divide 0-255 pixels by 255)")
    with pytest.raises(ValueError) as err:
        attacks.pgd(model, x[:4], y[:4], EPS, seed=-1)
    assert str(err.value) == "pgd: seed = -1 is out of range; seed must be an integer >= 0"


# --------------------------------------------------------------------------- determinism and helpers


def test_pgd_is_seeded_without_touching_the_global_rng(tiny):
    model, x, y = tiny
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = attacks.pgd(model, x, y, EPS, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, attacks.pgd(model, x, y, EPS, seed=1))
    assert not torch.equal(a, attacks.pgd(model, x, y, EPS, seed=2))


def test_eps_zero_changes_nothing(tiny):
    model, x, y = tiny
    assert torch.equal(attacks.fgsm(model, x, y, 0.0), x)
    assert torch.equal(attacks.pgd(model, x, y, 0.0), x)


def test_perturbation_norms(tiny):
    _, x, _ = tiny
    d = torch.zeros_like(x[:3])
    d[0, 0, 0, 0] = 0.3
    d[1] = 0.1
    n = attacks.perturbation_norms(x[:3], (x[:3] + d).clamp(0, 1))
    assert n["linf"][2] == 0 and n["l2"][2] == 0
    assert math.isclose(float(n["l2"][1]), float(((x[1] + 0.1).clamp(0, 1) - x[1]).norm()), rel_tol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        attacks.perturbation_norms(x[:3], x[:2])


def test_project_linf(tiny):
    model, x, y = tiny
    x_cw = attacks.run_torchattacks("CW", model, x[:20], y[:20], 1.0, steps=20, lr=0.1)
    for eps in (0.0, 0.05, 0.3):
        p = attacks.project_linf(x[:20], x_cw, eps)
        assert (p - x[:20]).abs().max() <= eps + 1e-6 and p.min() >= 0 and p.max() <= 1
    assert torch.equal(attacks.project_linf(x[:20], x_cw, 0.05),
                       attacks.run_torchattacks("CW", model, x[:20], y[:20], 0.05, steps=20, lr=0.1))
    with pytest.raises(ValueError, match="same shape"):
        attacks.project_linf(x[:2], x[:3], 0.1)
    with pytest.raises(ValueError, match="eps"):
        attacks.project_linf(x[:2], x[:2], -1)


def test_robustness_curve(tiny):
    model, x, y = tiny
    curve = attacks.robustness_curve(model, x[:50], y[:50], {"FGSM": attacks.fgsm}, [0.0, 0.1, 0.3])
    assert list(curve.columns) == ["attack", "eps", "robust_accuracy", "n"]
    assert curve["robust_accuracy"].iloc[0] == attacks.robust_accuracy(model, x[:50], y[:50])
    assert curve["robust_accuracy"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="eps"):
        attacks.robustness_curve(model, x, y, {"FGSM": attacks.fgsm}, [0.1, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        attacks.robustness_curve(model, x, y, {}, [0.1])


def test_robust_accuracy_needs_inputs(tiny):
    model, x, y = tiny
    with pytest.raises(ValueError, match="robust_accuracy: no images given; give at least one image"):
        attacks.robust_accuracy(model, x[:0], y[:0])


# --------------------------------------------------------------------------- benchmarks and panels


def test_benchmark_cross_check_row(tiny):
    model, x, y = tiny
    row = benchmarks.cross_check(model, x, y, "PGD", steps=3, repeats=1, min_seconds=0.0)
    assert row["acc_gap"] <= 0.01 and row["n"] == len(x)
    assert row["seconds_utils"] > 0 and row["seconds_torchattacks"] > 0 and row["time_ratio"] > 0
    with pytest.raises(ValueError, match="FGSM"):
        benchmarks.cross_check(model, x, y, "CW")


def test_benchmark_report_and_verdicts(tmp_path):
    row = {"model": "mlp", "attack": "PGD", "settings": "s", "n": 360, "robust_acc_utils": 0.35,
           "robust_acc_torchattacks": 0.33, "acc_gap": 0.02, "seconds_utils": 0.02,
           "seconds_torchattacks": 0.01, "time_ratio": 2.0}
    result = {"torch": "x", "torchattacks": "y", "threads": 1, "repeats": 1, "cross_checks": [row],
              "slow_attacks": [{"model": "mlp", "attack": "CW", "n": 5, "settings": "", "robust_acc": 0.1,
                                "seconds": 1.0}]}
    misses = benchmarks.verdicts(result)
    assert len(misses) == 2 and "gap" in misses[0] and "ratio" in misses[1]
    table = benchmarks.format_table(result)
    assert "| mlp | PGD |" in table and "Bounds missed" in table
    json.dumps(result)  # what main writes is plain JSON
    with pytest.raises(ValueError, match="repeats"):
        benchmarks.time_calls({"f": lambda: None}, repeats=0)


def test_attack_explorer_updates_its_text(tiny):
    model, x, y = tiny
    panel = attack_explorer(model, x[:3], y[:3], {"FGSM": attacks.fgsm}, eps=0.05)
    slider, label = panel.children[1], panel.children[2]
    before = label.value
    assert before.startswith("FGSM at ε = 0.05: true ")
    slider.value = 0.25
    assert label.value != before and "ε = 0.25" in label.value
    slider.value = 0.05
    assert label.value == before
    assert panel.children[3].value[:4] == b"\x89PNG"  # rendered by widgets.figure_png
    with pytest.raises(ValueError, match=r"attack_explorer: eps = 2.0 is out of range"):
        attack_explorer(model, x[:3], y[:3], eps=2.0)
    with pytest.raises(ValueError, match="attack_explorer: 2 labels for 3 images"):
        attack_explorer(model, x[:3], y[:2])
    with pytest.raises(ValueError, match=r"attack_explorer: images have values in \[0.000, 255.000\]"):
        attack_explorer(model, x[:3] * 255, y[:3])
    model.train()
    try:
        with pytest.raises(ValueError, match="attack_explorer: the model is in training mode"):
            attack_explorer(model, x[:3], y[:3])
    finally:
        model.eval()


def test_the_widget_uses_the_public_checks_only():
    import inspect

    from utils.widgets import attacks as widget_module

    assert "attacks._" not in inspect.getsource(widget_module)


def test_show_adversarial_scales_the_perturbation_to_what_is_shown():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils.widgets.attacks import show_adversarial

    x = np.full((1, 8, 8), 0.5, dtype=np.float32)
    x_adv = x.copy()
    x_adv[0, 0, 0] += 0.1
    x_adv[0, 1, 1] -= 0.05
    p = np.full(10, 0.1)
    fig = show_adversarial(x, x_adv, p, p, 3)
    assert fig.axes[1].images[0].get_clim() == pytest.approx((-0.1, 0.1), abs=1e-6)
    fig = show_adversarial(x, x_adv, p, p, 3, delta_range=0.3)
    assert fig.axes[1].images[0].get_clim() == pytest.approx((-0.3, 0.3))
    plt.close("all")
