"""utils.privacy: membership inference (threshold, LiRA), its metrics, DP-SGD with opacus."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from utils import training
from utils.course.setup import setup
from utils.privacy import dp
from utils.privacy import membership as mi


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MODELSEC_CACHE", str(tmp_path_factory.mktemp("privacy_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def overfit(cache):
    setup(0, plots=False)
    split = mi.digits_split(0, mi.OVERFIT_MEMBERS)
    return split, mi.train_target(split, mi.OVERFIT_CONFIG)


@pytest.fixture(scope="module")
def dp_models(cache):
    setup(0, plots=False)
    split = mi.digits_split(0)
    X, y = split.member_data()
    cfg = dp.DPConfig(epochs=3)
    return split, {s: dp.train_dp(cfg.with_(noise_multiplier=s), X, y, 10) for s in (0.8, 2.0)}


def test_split_design():
    split = mi.make_split(np.zeros((11, 3), np.float32), np.arange(11) % 2, seed=3)
    assert split.n_members == 5 and split.n_nonmembers == 6
    again = mi.make_split(np.zeros((11, 3), np.float32), np.arange(11) % 2, seed=3)
    assert np.array_equal(split.members, again.members)
    other = mi.make_split(np.zeros((11, 3), np.float32), np.arange(11) % 2, seed=4)
    assert not np.array_equal(split.members, other.members)
    assert mi.make_split(np.zeros((11, 3), np.float32), np.arange(11) % 2, n_members=3).n_members == 3


def test_threshold_attack_beats_chance_on_the_overfit_model(overfit):
    split, model = overfit
    assert split.n_members == 200 and split.n_nonmembers == len(split.y) - 200
    loss = mi.loss_scores(model, split.X, split.y)
    assert loss[split.members].mean() < loss[~split.members].mean()
    res = mi.evaluate(mi.threshold_scores(model, split.X, split.y), split.members)
    assert res.auc > 0.55 and res.false_positives_allowed == int(0.01 * split.n_nonmembers)
    conf = mi.evaluate(mi.threshold_scores(model, split.X, split.y, "confidence"), split.members)
    assert conf.auc > 0.55
    # shuffled membership labels: chance
    rng = np.random.default_rng(0)
    assert abs(mi.evaluate(-loss, rng.permutation(split.members)).auc - 0.5) < 0.05


def test_scores_agree_with_each_other(overfit):
    split, model = overfit
    X, y = split.X[:50], split.y[:50]
    p = mi.confidence_scores(model, X, y)
    np.testing.assert_allclose(mi.loss_scores(model, X, y), -np.log(p), rtol=1e-6, atol=1e-9)
    phi = mi.logit_confidence(model, X, y)
    ok = (p > 1e-6) & (p < 1 - 1e-6)
    np.testing.assert_allclose(phi[ok], np.log(p[ok] / (1 - p[ok])), rtol=1e-5, atol=1e-6)


def test_evaluate_on_made_up_scores():
    members = np.r_[np.ones(4, bool), np.zeros(200, bool)]
    scores = np.r_[[10.0, 9.0, 0.5, -1.0], np.linspace(0, 1, 200)]
    res = mi.evaluate(scores, members, fpr=0.01)
    # 2 of 200 non-members may be flagged: threshold at the 3rd-highest non-member keeps 10 and 9
    assert res.tpr == 0.5 and res.false_positives_allowed == 2
    # AUC by hand: 10 and 9 beat all 200, 0.5 beats 100 (linspace), -1 beats none
    assert math.isclose(res.auc, (200 + 200 + 100) / (4 * 200))
    assert mi.tpr_at_fpr([5.0, 6.0], np.arange(100.0), 0.01) == 0.0
    assert mi.tpr_at_fpr([500.0, 6.0], np.arange(100.0), 0.01) == 0.5


def test_tpr_refuses_an_fpr_below_one_false_positive():
    non = np.arange(719.0)
    assert mi.min_reportable_fpr(719) == pytest.approx(1 / 719)
    with pytest.raises(ValueError, match=r"tpr_at_fpr: fpr = 0.001 with 719 non-members allows no false positive"
                                         r".*give at least 1000 non-members"):
        mi.tpr_at_fpr([1000.0], non, 0.001)
    assert mi.tpr_at_fpr([1000.0], np.arange(1000.0), 0.001) == 1.0


def test_shadow_masks_put_every_example_in_half_of_the_shadows():
    m = mi.shadow_masks(50, 8, seed=1)
    assert m.shape == (8, 50) and (m.sum(0) == 4).all()
    assert (mi.shadow_masks(50, 8, n_in=2).sum(0) == 2).all()
    assert np.array_equal(m, mi.shadow_masks(50, 8, seed=1))


def test_lira_scores_on_a_known_case():
    rng = np.random.default_rng(0)
    K, N = 64, 400
    shadow_in = mi.shadow_masks(N, K, seed=0)
    # example n's phi: about mu_n + 2 when trained on, mu_n when not (sd 0.5)
    mu = rng.normal(0, 3, N)
    shadow_phi = mu + 2.0 * shadow_in + rng.normal(0, 0.5, (K, N))
    members = rng.random(N) < 0.5
    target_phi = mu + 2.0 * members + rng.normal(0, 0.5, N)
    for online in (True, False):
        for fixed in (True, False):
            s = mi.lira_scores(target_phi, shadow_phi, shadow_in, online=online, fixed_variance=fixed)
            assert mi.evaluate(s, members).auc > 0.97
    # the raw phi, blind to each example's own difficulty mu_n, does much worse
    assert mi.evaluate(target_phi, members).auc < 0.75
    # one example, exact: IN mean 2, OUT mean 0, shared sd 1, phi = 1.5
    sp = np.array([[2.0 - 1, 0 - 1], [2.0 + 1, 0 + 1], [0 - 1, 2.0 - 1], [0 + 1, 2.0 + 1]])
    si = np.array([[True, False], [True, False], [False, True], [False, True]])
    sd = math.sqrt(4 / 3)
    expected = (-(1.5 - 2) ** 2 + 1.5 ** 2) / (2 * sd ** 2)
    s = mi.lira_scores([1.5, 0.0], sp, si)
    assert s[0] == pytest.approx(expected)
    assert mi.lira_scores([1.5, 0.0], sp, si, online=False)[0] == pytest.approx(1.5 / sd)


def test_lira_end_to_end_on_the_overfit_model(overfit):
    split, model = overfit
    s = mi.lira_attack(model, split, n_shadows=4, config=mi.OVERFIT_CONFIG.with_(epochs=20), online=False)
    assert s.shape == (len(split.y),) and np.isfinite(s).all()
    assert mi.evaluate(s, split.members).auc > 0.55


def test_dp_sgd_reports_epsilon_that_falls_with_noise(dp_models):
    split, models = dp_models
    eps = {s: m.meta["epsilon"] for s, m in models.items()}
    assert all(math.isfinite(e) and e > 0 for e in eps.values())
    assert eps[2.0] < eps[0.8]
    for m in models.values():
        assert not m.training and type(m).__name__ == "MLP"
        assert training.accuracy(m, split.X_test, split.y_test) > 0.3  # learns something in 3 epochs


def test_dp_sgd_is_deterministic_and_cached(dp_models, tmp_path, monkeypatch):
    split, models = dp_models
    X, y = split.member_data()
    cfg = dp.DPConfig(epochs=3, noise_multiplier=0.8)
    again = dp.train_dp(cfg, X, y, 10)
    assert again.meta["from_cache"]
    monkeypatch.setenv("MODELSEC_CACHE", str(tmp_path))
    fresh = dp.train_dp(cfg, X, y, 10)
    assert not fresh.meta["from_cache"] and fresh.meta["epsilon"] == models[0.8].meta["epsilon"]
    for k, t in models[0.8].state_dict().items():
        assert torch.equal(t, fresh.state_dict()[k])
    other = dp.train_dp(cfg.with_(seed=1), X, y, 10)
    assert not torch.equal(other.state_dict()["head.weight"], fresh.state_dict()["head.weight"])
    assert dp.dp_cache_key(cfg, X, y, 10) != dp.dp_cache_key(cfg.with_(max_grad_norm=2.0), X, y, 10)


def test_validation_errors(overfit):
    split, model = overfit
    with pytest.raises(ValueError, match="make_split: the pool has 2 examples; give at least 4"):
        mi.make_split(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match="make_split: n_members = 9 is out of range"):
        mi.make_split(np.zeros((10, 3)), np.arange(10) % 2, n_members=9)
    with pytest.raises(ValueError, match="loss_scores: 3 labels for 2 inputs"):
        mi.loss_scores(model, split.X[:2], split.y[:3])
    with pytest.raises(ValueError, match="confidence_scores: labels go up to 12 but the model has 10 outputs"):
        mi.confidence_scores(model, split.X[:1], np.array([12]))
    with pytest.raises(ValueError, match="threshold_scores: kind = 'entropy' is not one of the choices"):
        mi.threshold_scores(model, split.X[:2], split.y[:2], kind="entropy")
    with pytest.raises(ValueError, match="train_target: split is a tuple; split must be a MembershipSplit"):
        mi.train_target((split.X, split.y))
    with pytest.raises(ValueError, match="lira_scores: shadow_in must be|lira_scores: shadow_in has dtype"):
        mi.lira_scores(np.zeros(3), np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="lira_scores: an example is IN in only 1 shadow models"):
        mi.lira_scores(np.zeros(2), np.zeros((4, 2)), np.array([[1, 0], [0, 1], [0, 1], [0, 0]], bool))
    with pytest.raises(ValueError, match="evaluate: 3 of 3 examples are members; give both"):
        mi.evaluate([1.0, 2.0, 3.0], np.ones(3, bool))
    X, y = split.member_data()
    with pytest.raises(ValueError, match="train_dp: noise_multiplier = 0 is out of range"):
        dp.train_dp(dp.DPConfig(noise_multiplier=0), X, y)
    with pytest.raises(ValueError, match="train_dp: delta = 1 is out of range"):
        dp.train_dp(dp.DPConfig(delta=1), X, y)
    with pytest.raises(ValueError, match="train_dp: batch_size = 500 for 200 examples"):
        dp.train_dp(dp.DPConfig(batch_size=500), X, y)
    with pytest.raises(ValueError, match="tradeoff_study: the split has no test set"):
        dp.tradeoff_study(mi.make_split(split.X, split.y, 10))
