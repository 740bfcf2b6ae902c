"""utils.lab_checks.lab05: the lab's stub answers fail, the solution's pass, a plausible wrong answer fails."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import utils
from utils.defenses import adversarial as ad
from utils.attacks import evasion as attacks
from utils import data, metrics, training
from utils.lab_checks import lab05

SEED = 0
EPS = 0.1


@pytest.fixture(scope="module")
def ctx():
    dev = utils.setup(SEED, plots=False)
    ds = data.load("digits", seed=SEED)
    base = training.preset("mlp", seed=SEED, model_kwargs=(("hidden", (256, 128)),))
    standard = training.fit(base, ds.X_train, ds.y_train, ds.n_classes)
    xe = training.to_tensor(ds.X_test[:200], dev)
    ye = torch.as_tensor(ds.y_test[:200], device=dev)
    x_adv = attacks.pgd(standard, xe, ye, EPS, steps=50, seed=SEED)
    fooled = training.predict(standard, x_adv) != ye.cpu().numpy()
    masked = ad.SqueezedModel(standard, ad.BitDepth(3)).eval()
    return dict(dev=dev, ds=ds, standard=standard, xe=xe, ye=ye, x_adv=x_adv, fooled=fooled, masked=masked)


def _run(capsys, n, answer, **context):
    ok = lab05.check(n, answer, **context)
    out = capsys.readouterr().out
    assert ("✅ PASSED" in out) == ok and ("❌ NOT SOLVED YET" in out) == (not ok), out
    return ok, out


# --------------------------------------------------------------------------- exercise 1: FGSM-RS step

def fgsm_rs_solution(model, xb, yb, eps, alpha):
    delta = torch.empty_like(xb).uniform_(-eps, eps).requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model((xb + delta).clamp(0, 1)), yb), delta)
    delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
    return (xb + delta).clamp(0, 1)


def fgsm_rs_stub(model, xb, yb, eps, alpha):
    return xb.clone()


def fgsm_rs_no_clip(model, xb, yb, eps, alpha):
    """Forgets to clip delta back to the ball (alpha > eps, so it leaves it)."""
    delta = torch.empty_like(xb).uniform_(-eps, eps).requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model((xb + delta).clamp(0, 1)), yb), delta)
    return (xb + delta.detach() + alpha * grad.sign()).clamp(0, 1)


def test_exercise_1(ctx, capsys):
    kw = dict(model=ctx["standard"], ds=ctx["ds"], dev=ctx["dev"], seed=SEED, epsilon=EPS)
    ok, out = _run(capsys, 1, fgsm_rs_stub, **kw)
    assert not ok and "Exercise 1 (FGSM-RS step)" in out and "differs from FGSM-RS" in out
    ok, out = _run(capsys, 1, fgsm_rs_no_clip, **kw)
    assert not ok and "within eps" in out
    ok, out = _run(capsys, 1, fgsm_rs_solution, **kw)
    assert ok and out.strip() == "✅ PASSED  Exercise 1 (FGSM-RS step)"


# --------------------------------------------------------------------------- exercise 2: squeezing detector

def _squeeze_solution(dev):
    def squeeze_detect_score(model, x, bits=2):
        x = training.to_tensor(x, dev)
        levels = 2 ** bits - 1
        with torch.no_grad():
            p = F.softmax(model(x), dim=1)
            q = F.softmax(model(torch.round(x * levels) / levels), dim=1)
        return (p - q).abs().sum(1).cpu().numpy()
    return squeeze_detect_score


def squeeze_stub(model, x, bits=2):
    return np.zeros(len(x))


def _squeeze_levels_wrong(dev):
    """Rounds to 2**bits - 1 ... with 2**bits levels in the divisor: an off-by-one squeezer."""
    def squeeze_detect_score(model, x, bits=2):
        x = training.to_tensor(x, dev)
        with torch.no_grad():
            p = F.softmax(model(x), dim=1)
            q = F.softmax(model(torch.round(x * 2 ** bits) / 2 ** bits), dim=1)
        return (p - q).abs().sum(1).cpu().numpy()
    return squeeze_detect_score


def _ex2(ctx, capsys, answer):
    xe, x_adv, fooled, standard = ctx["xe"], ctx["x_adv"], ctx["fooled"], ctx["standard"]
    auc = metrics.roc(answer(standard, xe), answer(standard, x_adv[fooled]))["auc"]
    return _run(capsys, 2, answer, model=standard, xe=xe, x_adv=x_adv, auc=auc)


def test_exercise_2(ctx, capsys):
    ok, out = _ex2(ctx, capsys, squeeze_stub)
    assert not ok and "Exercise 2 (squeezing detector)" in out and "differ from the reference" in out
    ok, out = _ex2(ctx, capsys, _squeeze_levels_wrong(ctx["dev"]))
    assert not ok and "differ from the reference" in out
    ok, out = _ex2(ctx, capsys, _squeeze_solution(ctx["dev"]))
    assert ok and out.strip() == "✅ PASSED  Exercise 2 (squeezing detector)"


# --------------------------------------------------------------------------- exercise 3: BPDA

class BPDASolution(torch.nn.Module):
    def __init__(self, model, squeeze):
        super().__init__()
        self.model, self.squeeze = model, squeeze

    def forward(self, x):
        return self.model(x + (self.squeeze(x) - x).detach())


class BPDAStub(BPDASolution):
    def forward(self, x):
        return self.model(self.squeeze(x))


class BPDANoSqueeze(BPDASolution):
    """Skips the squeezer altogether: the right gradient's idea, the wrong forward pass."""
    def forward(self, x):
        return self.model(x)


def _ex3(ctx, capsys, answer):
    xe, ye, eps, masked, standard = ctx["xe"], ctx["ye"], EPS, ctx["masked"], ctx["standard"]
    bpda_acc = attacks.robust_accuracy(masked, attacks.pgd(answer(standard, ad.BitDepth(3)).eval(), xe, ye, eps,
                                                           steps=50, seed=SEED), ye)
    return _run(capsys, 3, answer, model=standard, masked=masked, xe=xe, ye=ye, bpda_acc=bpda_acc)


def test_exercise_3(ctx, capsys):
    ok, out = _ex3(ctx, capsys, BPDAStub)
    assert not ok and "Exercise 3 (BPDA)" in out and "gradient through your BPDA is zero" in out
    ok, out = _ex3(ctx, capsys, BPDANoSqueeze)
    assert not ok and "forward pass must be the defended model's" in out
    ok, out = _ex3(ctx, capsys, BPDASolution)
    assert ok and out.strip() == "✅ PASSED  Exercise 3 (BPDA)"


# --------------------------------------------------------------------------- exercise 4: EOT

class EOTSolution(torch.nn.Module):
    def __init__(self, model, samples=8):
        super().__init__()
        self.model, self.samples = model, samples

    def forward(self, x):
        return torch.stack([F.log_softmax(self.model(x), dim=1) for _ in range(self.samples)]).mean(0)


class EOTStub(EOTSolution):
    def forward(self, x):
        return F.log_softmax(self.model(x), dim=1)


class EOTLogits(EOTSolution):
    """Averages the logits instead of the log-probabilities."""
    def forward(self, x):
        return torch.stack([self.model(x) for _ in range(self.samples)]).mean(0)


def _ex4(ctx, capsys, answer):
    xe, ye, standard = ctx["xe"], ctx["ye"], ctx["standard"]
    noisy = ad.SqueezedModel(standard, ad.RandomBitDepth(3, spread=0.07, seed=SEED)).eval()
    crafter = ad.SqueezedModel(standard, ad.RandomBitDepth(3, spread=0.07, seed=SEED + 1), bpda=True).eval()
    eot_acc = attacks.robust_accuracy(noisy, attacks.pgd(answer(crafter, 8).eval(), xe, ye, EPS, steps=50,
                                                         seed=SEED), ye)
    return _run(capsys, 4, answer, model=standard, xe=xe, eot_acc=eot_acc)


def test_exercise_4(ctx, capsys):
    ok, out = _ex4(ctx, capsys, EOTStub)
    assert not ok and "Exercise 4 (EOT)" in out and "mean of `samples` log-softmax" in out
    ok, out = _ex4(ctx, capsys, EOTLogits)
    assert not ok and "mean of `samples` log-softmax" in out
    ok, out = _ex4(ctx, capsys, EOTSolution)
    assert ok and out.strip() == "✅ PASSED  Exercise 4 (EOT)"


def test_unknown_exercise():
    with pytest.raises(ValueError):
        lab05.check(5, None)
