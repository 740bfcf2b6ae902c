"""utils.lab_checks.lab05: the lab's stub answers fail, the solution's pass, named plausible wrong answers fail,
and other correct ways of writing each answer pass."""
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

pytestmark = pytest.mark.notebooks  # about 20 s: trains (or loads) the MLP and runs PGD-50 a dozen times

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


def _expect(ok, out, passes, says, title):
    assert ok is passes, out
    if passes:
        assert out.strip() == f"✅ PASSED  {title}"
    else:
        assert title in out and says in out, out


# --------------------------------------------------------------------------- exercise 1: FGSM-RS step

def fgsm_rs_solution(model, xb, yb, eps, alpha):
    delta = torch.empty_like(xb).uniform_(-eps, eps).requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model((xb + delta).clamp(0, 1)), yb), delta)
    delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
    return (xb + delta).clamp(0, 1)


def fgsm_rs_backward_project(model, xb, yb, eps, alpha):
    """Right: .backward() on a summed loss, and attacks.project_linf for the last step."""
    delta = torch.empty_like(xb).uniform_(-eps, eps)
    delta.requires_grad_(True)
    F.cross_entropy(model(torch.clamp(xb + delta, 0, 1)), yb, reduction="sum").backward()
    x_step = (xb + delta.detach() + alpha * delta.grad.sign()).clamp(0, 1)
    return attacks.project_linf(xb, x_step, eps)


def fgsm_rs_stub(model, xb, yb, eps, alpha):
    return xb.clone()


def fgsm_rs_no_clip(model, xb, yb, eps, alpha):
    """Forgets to clip delta back to the ball (alpha > eps, so it leaves it)."""
    delta = torch.empty_like(xb).uniform_(-eps, eps).requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model((xb + delta).clamp(0, 1)), yb), delta)
    return (xb + delta.detach() + alpha * grad.sign()).clamp(0, 1)


def fgsm_rs_no_random_start(model, xb, yb, eps, alpha):
    """Plain FGSM from xb: no random start."""
    x = xb.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), yb), x)
    return attacks.project_linf(xb, (xb + alpha * grad.sign()).clamp(0, 1), eps)


def fgsm_rs_gradient_at_x(model, xb, yb, eps, alpha):
    """Draws the start but takes the gradient at xb instead of at the random start."""
    delta = torch.empty_like(xb).uniform_(-eps, eps)
    x = xb.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), yb), x)
    return (xb + (delta + alpha * grad.sign()).clamp(-eps, eps)).clamp(0, 1)


def fgsm_rs_descends(model, xb, yb, eps, alpha):
    """Steps down the loss."""
    delta = torch.empty_like(xb).uniform_(-eps, eps).requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model((xb + delta).clamp(0, 1)), yb), delta)
    return (xb + (delta.detach() - alpha * grad.sign()).clamp(-eps, eps)).clamp(0, 1)


def fgsm_rs_library(model, xb, yb, eps, alpha):
    """Calls the tested hook (it would give exactly the right numbers)."""
    return ad.fgsm_rs_hook(eps, alpha=alpha)(model, xb, yb)[0]


@pytest.mark.parametrize("answer, passes, says", [
    (fgsm_rs_stub, False, "differs from FGSM-RS"),
    (fgsm_rs_no_clip, False, "within eps"),
    (fgsm_rs_no_random_start, False, "differs from FGSM-RS"),
    (fgsm_rs_gradient_at_x, False, "differs from FGSM-RS"),
    (fgsm_rs_descends, False, "differs from FGSM-RS"),
    (fgsm_rs_library, False, "your code calls utils.defenses.adversarial.fgsm_rs_hook"),
    (fgsm_rs_solution, True, ""),
    (fgsm_rs_backward_project, True, ""),
], ids=["stub", "delta not clipped to the ball", "no random start", "gradient at xb, not at the start",
        "steps down the loss", "calls ad.fgsm_rs_hook", "solution", "variant: backward() and project_linf"])
def test_exercise_1(ctx, capsys, answer, passes, says):
    kw = dict(model=ctx["standard"], ds=ctx["ds"], dev=ctx["dev"], seed=SEED, epsilon=EPS)
    ok, out = _run(capsys, 1, answer, **kw)
    _expect(ok, out, passes, says, "Exercise 1 (FGSM-RS step)")


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


def squeeze_numpy(model, x, bits=2):
    """Right: NumPy rounding and training.predict_proba."""
    X = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    levels = 2 ** bits - 1
    p = training.predict_proba(model, X)
    q = training.predict_proba(model, (np.round(X * levels) / levels).astype(np.float32))
    return np.abs(p - q).sum(axis=1)


def squeeze_stub(model, x, bits=2):
    return np.zeros(len(x))


def _variant(dev, squeeze=None, distance=None, probs=True):
    """A squeezing score with one piece changed."""
    squeeze = squeeze or (lambda x, bits: torch.round(x * (2 ** bits - 1)) / (2 ** bits - 1))
    distance = distance or (lambda p, q: (p - q).abs().sum(1))

    def squeeze_detect_score(model, x, bits=2):
        x = training.to_tensor(x, dev)
        with torch.no_grad():
            f = (lambda z: F.softmax(model(z), dim=1)) if probs else model
            return distance(f(x), f(squeeze(x, bits))).cpu().numpy()
    return squeeze_detect_score


def squeeze_library(model, x, bits=2):
    """Writes the rounding but scores with ad.squeeze_score."""
    levels = 2 ** bits - 1
    return ad.squeeze_score(model, x, lambda z: torch.round(z * levels) / levels)


def squeeze_library_bitdepth(model, x, bits=2):
    """Writes the score but squeezes with ad.BitDepth."""
    with torch.no_grad():
        return (F.softmax(model(x), 1) - F.softmax(model(ad.BitDepth(bits)(x)), 1)).abs().sum(1).numpy()


SQUEEZE_WRONG = {
    "off-by-one levels (2**bits)": dict(squeeze=lambda x, b: torch.round(x * 2 ** b) / 2 ** b),
    "floor instead of round": dict(squeeze=lambda x, b: torch.floor(x * (2 ** b - 1)) / (2 ** b - 1)),
    "L2 instead of L1": dict(distance=lambda p, q: (p - q).norm(dim=1)),
    "largest change instead of the sum": dict(distance=lambda p, q: (p - q).abs().amax(1)),
    "logits instead of softmax": dict(probs=False),
}


@pytest.mark.parametrize("answer, passes, says", [
    ("stub", False, "differ from the reference"),
    *[(name, False, "differ from the reference") for name in SQUEEZE_WRONG],
    ("calls ad.squeeze_score", False, "your code calls utils.defenses.adversarial.squeeze_score"),
    ("calls ad.BitDepth", False, "your code calls utils.defenses.adversarial.BitDepth"),
    ("solution", True, ""),
    ("variant: NumPy and predict_proba", True, ""),
])
def test_exercise_2(ctx, capsys, answer, passes, says):
    xe, x_adv, fooled, standard, dev = ctx["xe"], ctx["x_adv"], ctx["fooled"], ctx["standard"], ctx["dev"]
    fn = {"stub": squeeze_stub, "calls ad.squeeze_score": squeeze_library,
          "calls ad.BitDepth": squeeze_library_bitdepth, "solution": _squeeze_solution(dev),
          "variant: NumPy and predict_proba": squeeze_numpy}.get(answer) or _variant(dev, **SQUEEZE_WRONG[answer])
    solution = _squeeze_solution(dev)  # the AUC of a right detector, so that only the scores decide
    auc = metrics.roc(solution(standard, xe), solution(standard, x_adv[fooled]))["auc"]
    ok, out = _run(capsys, 2, fn, model=standard, xe=xe, x_adv=x_adv, auc=auc)
    _expect(ok, out, passes, says, "Exercise 2 (squeezing detector)")


def test_exercise_2_low_auc_fails(ctx, capsys):
    ok, out = _run(capsys, 2, _squeeze_solution(ctx["dev"]), model=ctx["standard"], xe=ctx["xe"],
                   x_adv=ctx["x_adv"], auc=0.6)
    assert not ok and "AUC" in out


def test_exercise_2_forbid_is_lifted(ctx, capsys):
    _run(capsys, 2, squeeze_library, model=ctx["standard"], xe=ctx["xe"], x_adv=ctx["x_adv"], auc=1.0)
    assert ad.squeeze_score(ctx["standard"], ctx["xe"][:3], ad.BitDepth(2)).shape == (3,)


# --------------------------------------------------------------------------- exercise 3: BPDA

class BPDASolution(torch.nn.Module):
    def __init__(self, model, squeeze):
        super().__init__()
        self.model, self.squeeze = model, squeeze

    def forward(self, x):
        return self.model(x + (self.squeeze(x) - x).detach())


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, squeezed):
        return squeezed

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class BPDAFunction(BPDASolution):
    """Right: a custom autograd.Function whose backward is the identity."""
    def forward(self, x):
        with torch.no_grad():
            squeezed = self.squeeze(x)
        return self.model(_StraightThrough.apply(x, squeezed))


class BPDAStub(BPDASolution):
    def forward(self, x):
        return self.model(self.squeeze(x))


class BPDANoSqueeze(BPDASolution):
    """Skips the squeezer altogether: the right gradient's idea, the wrong forward pass."""
    def forward(self, x):
        return self.model(x)


class BPDADetached(BPDASolution):
    """Detaches the squeezed input: no gradient at all."""
    def forward(self, x):
        return self.model(self.squeeze(x).detach())


class BPDAOutputs(BPDASolution):
    """Straight-through on the outputs: the forward pass is right, the gradient is the model's at x."""
    def forward(self, x):
        clean = self.model(x)
        return clean + (self.model(self.squeeze(x)) - clean).detach()


class BPDALibrary(BPDASolution):
    def forward(self, x):
        return ad.SqueezedModel(self.model, self.squeeze, bpda=True)(x)


def _ex3(ctx, capsys, answer):
    xe, ye, eps, masked, standard = ctx["xe"], ctx["ye"], EPS, ctx["masked"], ctx["standard"]
    bpda_acc = attacks.robust_accuracy(masked, attacks.pgd(BPDASolution(standard, ad.BitDepth(3)).eval(), xe, ye,
                                                           eps, steps=50, seed=SEED), ye)
    return _run(capsys, 3, answer, model=standard, masked=masked, xe=xe, ye=ye, bpda_acc=bpda_acc)


@pytest.mark.parametrize("answer, passes, says", [
    (BPDAStub, False, "gradient through your BPDA is zero"),
    (BPDANoSqueeze, False, "forward pass must be the defended model's"),
    (BPDADetached, False, "gradient through your BPDA is zero"),
    (BPDAOutputs, False, "gradient at squeeze(x)"),
    (BPDALibrary, False, "your code calls utils.defenses.adversarial.SqueezedModel"),
    (BPDASolution, True, ""),
    (BPDAFunction, True, ""),
], ids=["stub (plain squeeze)", "no squeezer", "squeezed input detached", "straight-through on the outputs",
        "calls ad.SqueezedModel(bpda=True)", "solution", "variant: custom autograd.Function"])
def test_exercise_3(ctx, capsys, answer, passes, says):
    ok, out = _ex3(ctx, capsys, answer)
    _expect(ok, out, passes, says, "Exercise 3 (BPDA)")


def test_exercise_3_variant_breaks_the_defense(ctx):
    """The autograd.Function variant is as strong an attack as the solution."""
    xe, ye, masked, standard = ctx["xe"], ctx["ye"], ctx["masked"], ctx["standard"]
    acc = attacks.robust_accuracy(masked, attacks.pgd(BPDAFunction(standard, ad.BitDepth(3)).eval(), xe, ye, EPS,
                                                      steps=50, seed=SEED), ye)
    assert acc <= 0.35


# --------------------------------------------------------------------------- exercise 4: EOT

class EOTSolution(torch.nn.Module):
    def __init__(self, model, samples=8):
        super().__init__()
        self.model, self.samples = model, samples

    def forward(self, x):
        return torch.stack([F.log_softmax(self.model(x), dim=1) for _ in range(self.samples)]).mean(0)


class EOTLogits(EOTSolution):
    """Right: averages the logits (the same class probabilities as the mean log-probabilities)."""
    def forward(self, x):
        return torch.stack([self.model(x) for _ in range(self.samples)]).mean(0)


class EOTProbs(EOTSolution):
    """Right: averages the probabilities, in a running sum."""
    def forward(self, x):
        total = 0
        for _ in range(self.samples):
            total = total + F.softmax(self.model(x), dim=1)
        return total / self.samples


class EOTLogMeanProbs(EOTSolution):
    """Right: the log of the mean probabilities, with logsumexp."""
    def forward(self, x):
        logp = torch.stack([F.log_softmax(self.model(x), dim=1) for _ in range(self.samples)])
        return torch.logsumexp(logp, dim=0) - np.log(self.samples)


class EOTStub(EOTSolution):
    def forward(self, x):
        return F.log_softmax(self.model(x), dim=1)


class EOTOneDrawRepeated(EOTSolution):
    """Calls the model once and averages copies of that one draw."""
    def forward(self, x):
        out = F.log_softmax(self.model(x), dim=1)
        return torch.stack([out] * self.samples).mean(0)


class EOTSum(EOTSolution):
    """Sums the log-probabilities instead of averaging them."""
    def forward(self, x):
        return torch.stack([F.log_softmax(self.model(x), dim=1) for _ in range(self.samples)]).sum(0)


class EOTOneTooFew(EOTSolution):
    """range(1, samples): one draw too few."""
    def forward(self, x):
        return torch.stack([F.log_softmax(self.model(x), dim=1) for _ in range(1, self.samples)]).mean(0)


class EOTVotes(EOTSolution):
    """Averages one-hot votes (argmax), which has no gradient."""
    def forward(self, x):
        votes = [F.one_hot(self.model(x).argmax(1), 10).float() for _ in range(self.samples)]
        return torch.stack(votes).mean(0)


class EOTWrongAxis(EOTSolution):
    """Averages over the batch instead of over the draws."""
    def forward(self, x):
        return torch.cat([F.log_softmax(self.model(x), dim=1) for _ in range(self.samples)]).mean(0)


class EOTLibrary(EOTSolution):
    def forward(self, x):
        return ad.EOT(self.model, self.samples)(x)


def _eot_acc(ctx, answer):
    xe, ye, standard = ctx["xe"], ctx["ye"], ctx["standard"]
    noisy = ad.SqueezedModel(standard, ad.RandomBitDepth(3, spread=0.07, seed=SEED)).eval()
    crafter = ad.SqueezedModel(standard, ad.RandomBitDepth(3, spread=0.07, seed=SEED + 1), bpda=True).eval()
    return attacks.robust_accuracy(noisy, attacks.pgd(answer(crafter, 8).eval(), xe, ye, EPS, steps=50,
                                                      seed=SEED), ye)


@pytest.fixture(scope="module")
def solution_eot_acc(ctx):
    return _eot_acc(ctx, EOTSolution)


@pytest.mark.parametrize("answer, passes, says", [
    (EOTStub, False, "not an average over 8 calls"),
    (EOTOneDrawRepeated, False, "not an average over 8 calls"),
    (EOTSum, False, "not an average over 8 calls"),
    (EOTOneTooFew, False, "not an average over 8 calls"),
    (EOTVotes, False, "not an average over 8 calls"),
    (EOTWrongAxis, False, "return a tensor of shape"),
    (EOTLibrary, False, "your code calls utils.defenses.adversarial.EOT"),
    (EOTSolution, True, ""),
    (EOTLogits, True, ""),
    (EOTProbs, True, ""),
    (EOTLogMeanProbs, True, ""),
], ids=["stub (a single draw)", "one draw repeated", "sum instead of mean", "one draw too few",
        "averages argmax votes", "averages over the batch", "calls ad.EOT", "solution (mean log-probabilities)",
        "variant: mean logits", "variant: mean probabilities", "variant: log of the mean probabilities"])
def test_exercise_4(ctx, capsys, solution_eot_acc, answer, passes, says):
    ok, out = _run(capsys, 4, answer, model=ctx["standard"], xe=ctx["xe"], eot_acc=solution_eot_acc)
    _expect(ok, out, passes, says, "Exercise 4 (EOT)")


@pytest.mark.parametrize("answer", [EOTSolution, EOTLogits, EOTProbs, EOTLogMeanProbs],
                         ids=["solution", "mean logits", "mean probabilities", "log of the mean probabilities"])
def test_exercise_4_variants_break_the_defense(ctx, capsys, answer):
    """Each accepted average also makes the attack work, so the whole check passes with its own eot_acc."""
    eot_acc = _eot_acc(ctx, answer)
    ok, out = _run(capsys, 4, answer, model=ctx["standard"], xe=ctx["xe"], eot_acc=eot_acc)
    assert ok, (eot_acc, out)


def test_exercise_4_weak_attack_fails(ctx, capsys):
    ok, out = _run(capsys, 4, EOTSolution, model=ctx["standard"], xe=ctx["xe"], eot_acc=0.8)
    assert not ok and "keeps 0.800" in out


# --------------------------------------------------------------------------- exercise 5: a masked gradient

def _signed_ascent(loss_fn, steps=50, alpha_scale=2.5, project=True, random_start=False, sign=1.0):
    """PGD on loss_fn(logits, y); each wrong answer below changes one piece."""
    def attack(model, x, y, eps):
        alpha = alpha_scale * eps / steps
        x_adv = x.clone()
        if random_start:
            x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            grad, = torch.autograd.grad(loss_fn(model(x_adv), y), x_adv)
            x_adv = x_adv.detach() + sign * alpha * grad.sign()
            x_adv = (torch.min(torch.max(x_adv, x - eps), x + eps) if project else x_adv).clamp(0, 1)
        return x_adv.detach()
    return attack


def _margin(logits, y):
    true = logits.gather(1, y[:, None])[:, 0]
    return (logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), -float("inf")).amax(1) - true).sum()


def _best_wrong_log_prob(logits, y):
    return F.log_softmax(logits, 1).masked_fill(F.one_hot(y, logits.shape[1]).bool(), -float("inf")).amax(1).sum()


attack_solution = _signed_ascent(_margin)
attack_cross_entropy = _signed_ascent(lambda z, y: F.cross_entropy(z, y, reduction="sum"))
attack_fgsm = _signed_ascent(lambda z, y: F.cross_entropy(z, y, reduction="sum"), steps=1, alpha_scale=1.0)
attack_unprojected = _signed_ascent(_margin, alpha_scale=10.0, project=False)
attack_descends = _signed_ascent(_margin, sign=-1.0)


def attack_stub(model, x, y, eps):
    return x.clone()


def attack_noise(model, x, y, eps):
    """Random signs of size eps: no gradient at all."""
    return (x + eps * torch.empty_like(x).uniform_(-1, 1).sign()).clamp(0, 1)


def attack_library(model, x, y, eps):
    return attacks.pgd(model, x, y, eps, steps=50)


def attack_unscaled_cross_entropy(model, x, y, eps):
    """Right: the cross-entropy of the logits divided back by the scale."""
    return _signed_ascent(lambda z, y: F.cross_entropy(z / 1000.0, y, reduction="sum"))(model, x, y, eps)


@pytest.mark.parametrize("answer, passes, says", [
    (attack_stub, False, "keeps"),
    (attack_cross_entropy, False, "keeps"),
    (attack_fgsm, False, "keeps"),
    (attack_unprojected, False, "within eps"),
    (attack_noise, False, "keeps"),
    (attack_descends, False, "keeps"),
    (attack_library, False, "your code calls utils.attacks.evasion.pgd"),
    (attack_solution, True, ""),
    (_signed_ascent(_margin, steps=100, alpha_scale=3.0, random_start=True), True, ""),
    (_signed_ascent(_best_wrong_log_prob), True, ""),
    (attack_unscaled_cross_entropy, True, ""),
], ids=["stub", "PGD on the cross-entropy (saturated)", "FGSM", "leaves the eps-ball", "random noise",
        "descends the margin", "calls attacks.pgd", "solution (PGD on the logit margin)",
        "variant: margin, random start, 100 steps", "variant: best wrong log-probability",
        "variant: cross-entropy of the logits divided by the scale"])
def test_exercise_5(ctx, capsys, answer, passes, says):
    ok, out = _run(capsys, 5, answer, model=ctx["standard"], xe=ctx["xe"], ye=ctx["ye"], epsilon=EPS, seed=SEED)
    _expect(ok, out, passes, says, "Exercise 5 (breaking a masked gradient)")


def test_scaled_logits_keeps_predictions(ctx):
    """The scaled copy predicts like the model, leaves it unchanged, and masks PGD's gradient."""
    standard, xe, ye = ctx["standard"], ctx["xe"], ctx["ye"]
    before = [p.clone() for p in standard.parameters()]
    scaled = lab05.scaled_logits(standard)
    assert (training.predict(scaled, xe) == training.predict(standard, xe)).all()
    assert all(torch.equal(a, b) for a, b in zip(before, standard.parameters()))
    assert attacks.robust_accuracy(scaled, attacks.pgd(scaled, xe, ye, EPS, steps=50, seed=SEED), ye) >= 0.9


# --------------------------------------------------------------------------- exercise 6: repair

def _base():
    return training.preset("mlp", seed=SEED, model_kwargs=(("hidden", (256, 128)),))


def _noisy_copies(ds, sigma=0.1, copies=2):
    """The training digits and `copies` copies with Gaussian noise of std `sigma` (clipped to [0, 1])."""
    rng = np.random.default_rng(SEED)
    noisy = [np.clip(ds.X_train + sigma * rng.standard_normal(ds.X_train.shape), 0, 1).astype(np.float32)
             for _ in range(copies)]
    return np.concatenate([ds.X_train, *noisy]), np.concatenate([ds.y_train] * (copies + 1))


def _own_step_hook(model, xb, yb):
    """The solution's Exercise 1 step as a batch hook."""
    return fgsm_rs_solution(model, xb, yb, EPS, 1.25 * EPS), yb


def _train_mode(ctx):
    model = ad.adversarial_training(_base(), ctx["ds"].X_train, ctx["ds"].y_train, ctx["ds"].n_classes,
                                    method="fgsm_rs", eps=EPS)
    import copy
    return copy.deepcopy(model).train()


REPAIRS = {   # name: builder(ctx) -> answer; each trains once (cached by config)
    "stub (the scaled model)": lambda c: lab05.scaled_logits(c["standard"]),
    "the standard model": lambda c: c["standard"],
    "Gaussian-noise augmentation": lambda c: training.fit(_base(), *_noisy_copies(c["ds"]), c["ds"].n_classes),
    "adversarial training at eps = 0.01": lambda c: ad.adversarial_training(
        _base(), c["ds"].X_train, c["ds"].y_train, c["ds"].n_classes, method="fgsm_rs", eps=0.01),
    "3-bit squeezing of the standard model": lambda c: ad.SqueezedModel(c["standard"], ad.BitDepth(3)).eval(),
    "a smaller MLP, adversarially trained": lambda c: ad.adversarial_training(
        training.preset("mlp", seed=SEED, model_kwargs=(("hidden", (64,)),)), c["ds"].X_train, c["ds"].y_train,
        c["ds"].n_classes, method="fgsm_rs", eps=EPS),
    "fast AT left in train mode": _train_mode,
    "not a model (a state_dict)": lambda c: c["standard"].state_dict(),
    "solution (fast AT)": lambda c: ad.adversarial_training(_base(), c["ds"].X_train, c["ds"].y_train,
                                                            c["ds"].n_classes, method="fgsm_rs", eps=EPS),
    "variant: PGD-AT": lambda c: ad.adversarial_training(_base(), c["ds"].X_train, c["ds"].y_train,
                                                         c["ds"].n_classes, method="pgd", eps=EPS),
    "variant: own Exercise 1 step as a hook": lambda c: training.fit(
        _base(), c["ds"].X_train, c["ds"].y_train, c["ds"].n_classes, batch_hook=_own_step_hook,
        tag="my fgsm-rs eps=0.1"),
}


@pytest.mark.parametrize("name, passes, says", [
    ("stub (the scaled model)", False, "gradient is exactly zero"),
    ("the standard model", False, "keeps"),
    ("Gaussian-noise augmentation", False, "keeps"),
    ("adversarial training at eps = 0.01", False, "keeps"),
    ("3-bit squeezing of the standard model", False, "not a wrapper"),
    ("a smaller MLP, adversarially trained", False, "the same layers"),
    ("fast AT left in train mode", False, "eval mode"),
    ("not a model (a state_dict)", False, "torch.nn.Module"),
    ("solution (fast AT)", True, ""),
    ("variant: PGD-AT", True, ""),
    ("variant: own Exercise 1 step as a hook", True, ""),
])
def test_exercise_6(ctx, capsys, name, passes, says):
    answer = REPAIRS[name](ctx)
    ok, out = _run(capsys, 6, answer, model=ctx["standard"], my_attack=attack_solution, ds=ctx["ds"], xe=ctx["xe"],
                   ye=ctx["ye"], epsilon=EPS, seed=SEED)
    _expect(ok, out, passes, says, "Exercise 6 (repair)")


@pytest.mark.parametrize("my_attack", [attack_stub, attack_cross_entropy], ids=["stub attack", "cross-entropy PGD"])
def test_exercise_6_weak_attack_does_not_help(ctx, capsys, my_attack):
    """The check's own attacks decide: a weak my_attack neither lets the standard model pass nor fails fast AT."""
    kw = dict(model=ctx["standard"], my_attack=my_attack, ds=ctx["ds"], xe=ctx["xe"], ye=ctx["ye"], epsilon=EPS,
              seed=SEED)
    assert not _run(capsys, 6, ctx["standard"], **kw)[0]
    assert _run(capsys, 6, REPAIRS["solution (fast AT)"](ctx), **kw)[0]


def test_exercise_6_square_breaks_squeezing(ctx):
    """Without the architecture rule, the check's gradient-free Square attack alone rejects 3-bit squeezing."""
    masked, xe, ye = ctx["masked"], ctx["xe"], ctx["ye"]
    acc = attacks.robust_accuracy(masked, attacks.square(masked, xe, ye, EPS, n_queries=100, seed=SEED), ye)
    assert acc < lab05.REPAIR_ROBUST


def test_unknown_exercise():
    with pytest.raises(ValueError):
        lab05.check(7, None)
