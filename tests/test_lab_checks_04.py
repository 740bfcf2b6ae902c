"""lab04's checks: the lab's stubs fail, the solution's answers pass, named plausible wrong answers fail,
and other correct ways of writing each answer pass."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import utils
from utils import attacks as attacks_pkg
from utils.attacks import evasion as attacks
from utils import data, training
from utils.lab_checks import lab04

pytestmark = pytest.mark.notebooks  # 12–30 s: trains (or loads) the MLP and CNN, runs PGD and Square

FAIL = "NOT SOLVED YET"


@pytest.fixture(scope="module")
def ctx():
    """The lab's data and models, as in solutions/04_adversarial_examples_lab.ipynb."""
    dev = utils.setup(0, plots=False)
    ds = data.load("digits", seed=0)
    X_test = training.to_tensor(ds.X_test, dev)
    y_test = torch.as_tensor(ds.y_test, device=dev)
    mlp = training.fit(training.preset("mlp", seed=0), ds.X_train, ds.y_train, ds.n_classes)
    cnn = training.fit(training.preset("cnn", seed=0), ds.X_train, ds.y_train, ds.n_classes)
    return dict(ds=ds, X_test=X_test, y_test=y_test, mlp=mlp, cnn=cnn)


def _run(capsys, n, answer, **kwargs):
    """(the check's result, its printed line)."""
    ok = lab04.check(n, answer, **kwargs)
    out = capsys.readouterr().out
    assert ("✅ PASSED" in out) == ok and (FAIL in out) == (not ok), out
    return ok, out


# --- exercise 1: targeted FGSM -------------------------------------------------------------

def fgsm_solution(model, x, target, eps):
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), target)
    grad, = torch.autograd.grad(loss, x)
    return (x - eps * grad.sign()).clamp(0, 1).detach()


def fgsm_stub(model, x, target, eps):
    return x.clone()


def fgsm_sum_backward(model, x, target, eps):
    """Right: a summed loss and .backward(); the sign of the gradient is the same."""
    x = x.clone().requires_grad_(True)
    F.cross_entropy(model(x), target, reduction="sum").backward()
    return torch.clamp(x.detach() - eps * x.grad.sign(), 0.0, 1.0)


def fgsm_log_probability(model, x, target, eps):
    """Right: step *up* the log-probability of the target class."""
    x = x.clone().requires_grad_(True)
    logp = F.log_softmax(model(x), dim=1).gather(1, target[:, None]).sum()
    grad, = torch.autograd.grad(logp, x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def fgsm_wrong_sign(model, x, target, eps):
    x = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), target), x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def fgsm_raw_gradient(model, x, target, eps):
    x = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), target), x)
    step = eps * grad / grad.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12)
    return (x - step).clamp(0, 1).detach()


def fgsm_untargeted_on_prediction(model, x, target, eps):
    """Steps up the loss of the model's own prediction: any wrong class, not the target."""
    with torch.no_grad():
        pred = model(x).argmax(1)
    x = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), pred), x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def fgsm_library_call(model, x, target, eps):
    """Calls the helper the exercise forbids (it would give exactly the right numbers)."""
    return attacks_pkg.fgsm(model, x, target, eps, targeted=True)


def fgsm_library_pgd(model, x, target, eps):
    return attacks.pgd(model, x, target, eps, steps=1, random_start=False, alpha=eps, targeted=True)


@pytest.mark.parametrize("answer, ok, says", [
    (fgsm_stub, False, "differ from a targeted FGSM"),
    (fgsm_wrong_sign, False, "differ from a targeted FGSM"),
    (fgsm_raw_gradient, False, "differ from a targeted FGSM"),
    (fgsm_untargeted_on_prediction, False, "differ from a targeted FGSM"),
    (fgsm_library_call, False, "your code calls utils.attacks.evasion.fgsm"),
    (fgsm_library_pgd, False, "your code calls utils.attacks.evasion.pgd"),
    (fgsm_solution, True, ""),
    (fgsm_sum_backward, True, ""),
    (fgsm_log_probability, True, ""),
], ids=["stub", "steps up the target's loss (wrong sign)", "raw gradient instead of its sign",
        "untargeted step away from the prediction", "calls attacks.fgsm(targeted=True)",
        "calls attacks.pgd with one step", "solution", "variant: summed loss and backward",
        "variant: ascend the target's log-probability"])
def test_exercise_1(ctx, capsys, answer, ok, says):
    kw = dict(model=ctx["mlp"], x=ctx["X_test"], target=(ctx["y_test"] + 1) % 10)
    result, out = _run(capsys, 1, answer, **kw)
    assert result is ok
    assert ("✅ PASSED  Exercise 1 (targeted FGSM)" in out) if ok else (says in out), out


def test_exercise_1_forbid_is_lifted(ctx):
    """The forbidden helpers work again after the check."""
    lab04.check(1, fgsm_library_call, model=ctx["mlp"], x=ctx["X_test"], target=(ctx["y_test"] + 1) % 10)
    x_adv = attacks_pkg.fgsm(ctx["mlp"], ctx["X_test"][:4], ctx["y_test"][:4], 0.1)
    assert x_adv.shape == ctx["X_test"][:4].shape


# --- exercise 2: smallest flipping eps --------------------------------------------------------

EPS_GRID = [round(0.01 * k, 2) for k in range(1, 31)]


def _pgd_pred(model, x, y, eps):
    return training.predict(model, attacks.pgd(model, x, y, eps, steps=20, seed=0))[0]


def flip_solution(model, x, y, eps_grid):
    for eps in eps_grid:
        x_adv = attacks.pgd(model, x, y, eps, steps=20, seed=0)
        if training.predict(model, x_adv)[0] != int(y[0]):
            return eps
    return None


def flip_next(model, x, y, eps_grid):
    """Right: a generator expression, the logits' argmax, and a NumPy float."""
    def wrong(eps):
        x_adv = attacks.pgd(model, x, y, eps, steps=20, seed=0)
        with torch.no_grad():
            return int(model(x_adv).argmax(1)[0]) != int(y.item())
    found = next((e for e in eps_grid if wrong(e)), None)
    return None if found is None else np.float64(found)


def flip_stub(model, x, y, eps_grid):
    return None


def flip_largest(model, x, y, eps_grid):
    return eps_grid[-1]


def flip_last_instead_of_none(model, x, y, eps_grid):
    """Right scan, but falls back on the largest budget when nothing flips."""
    found = flip_solution(model, x, y, eps_grid)
    return eps_grid[-1] if found is None else found


def flip_vs_clean_prediction(model, x, y, eps_grid):
    """Compares with the clean prediction instead of the label."""
    clean = training.predict(model, x)[0]
    for eps in eps_grid:
        if _pgd_pred(model, x, y, eps) != clean:
            return eps
    return None


def flip_one_too_late(model, x, y, eps_grid):
    """Returns the budget after the first one that flips."""
    for i, eps in enumerate(eps_grid):
        if _pgd_pred(model, x, y, eps) != int(y[0]):
            return eps_grid[min(i + 1, len(eps_grid) - 1)]
    return None


def flip_index(model, x, y, eps_grid):
    """Returns the position in the grid instead of the budget."""
    for i, eps in enumerate(eps_grid):
        if _pgd_pred(model, x, y, eps) != int(y[0]):
            return i
    return None


@pytest.mark.parametrize("answer, ok, says", [
    (flip_stub, False, "returns None"),
    (flip_largest, False, ""),
    (flip_last_instead_of_none, False, "no budget in that grid"),
    (flip_vs_clean_prediction, False, "already misclassifies"),
    (flip_one_too_late, False, "not the first budget"),
    (flip_index, False, "return a budget from eps_grid"),
    (flip_solution, True, ""),
    (flip_next, True, ""),
], ids=["stub", "always eps_grid[-1]", "eps_grid[-1] instead of None", "compares with the clean prediction",
        "one budget too late", "the index, not the budget", "solution",
        "variant: next() over the grid, argmax, NumPy float"])
def test_exercise_2(ctx, capsys, answer, ok, says):
    kw = dict(model=ctx["mlp"], x=ctx["X_test"], y=ctx["y_test"], eps_grid=EPS_GRID)
    result, out = _run(capsys, 2, answer, **kw)
    assert result is ok
    assert ("✅ PASSED  Exercise 2 (smallest flipping eps)" in out) if ok else (says in out), out
    assert "PGD first flips it at" not in out  # no expected value in the message


def test_exercise_2_has_the_cases(ctx):
    """At seed 0 the model misclassifies some test digits, and the tiny grid flips none of digit #0's budgets."""
    mlp, x, y = ctx["mlp"], ctx["X_test"], ctx["y_test"]
    assert (training.predict(mlp, x) != y.numpy()).any()
    assert lab04._reference_flip(mlp, x[:1], y[:1], lab04._TINY_GRID) is None


# --- exercise 3: transfer rate ----------------------------------------------------------------

def _attack(source, target, x, y, eps):
    x_adv = attacks.pgd(source, x, y, eps, seed=0)
    labels = y.cpu().numpy()
    return x_adv, labels, training.predict(source, x_adv) != labels, training.predict(target, x_adv) != labels


def transfer_solution(source, target, x, y, eps):
    x_adv = attacks.pgd(source, x, y, eps, seed=0)
    labels = y.cpu().numpy()
    fools_source = training.predict(source, x_adv) != labels
    fools_target = training.predict(target, x_adv) != labels
    return float(fools_target[fools_source].mean())


def transfer_clean_correct(source, target, x, y, eps):
    """Right (the usual definition in papers): only inputs both models get right when clean."""
    x_adv, labels, fs, ft = _attack(source, target, x, y, eps)
    ok = (training.predict(source, x) == labels) & (training.predict(target, x) == labels)
    return float(ft[fs & ok].sum() / (fs & ok).sum())


def transfer_stub(source, target, x, y, eps):
    return 0.0


def transfer_unconditioned(source, target, x, y, eps):
    """Wrong: the target's error rate over all the examples, not just those that fool the source."""
    x_adv = attacks.pgd(source, x, y, eps, seed=0)
    return float((training.predict(target, x_adv) != y.cpu().numpy()).mean())


def transfer_source_success(source, target, x, y, eps):
    """Wrong: the white-box success rate on the source."""
    _, _, fs, _ = _attack(source, target, x, y, eps)
    return float(fs.mean())


def transfer_both_fooled_over_all(source, target, x, y, eps):
    """Wrong: the share of all examples that fool both, not a conditional rate."""
    _, _, fs, ft = _attack(source, target, x, y, eps)
    return float((fs & ft).mean())


def transfer_swapped(source, target, x, y, eps):
    """Wrong: crafts on the target and sends to the source."""
    return transfer_solution(target, source, x, y, eps)


def transfer_target_survives(source, target, x, y, eps):
    """Wrong: the share the target still classifies correctly."""
    return 1.0 - transfer_solution(source, target, x, y, eps)


@pytest.mark.parametrize("answer, ok", [
    (transfer_stub, False), (transfer_unconditioned, False), (transfer_source_success, False),
    (transfer_both_fooled_over_all, False), (transfer_swapped, False), (transfer_target_survives, False),
    (transfer_solution, True), (transfer_clean_correct, True),
], ids=["stub", "target error rate over all examples", "source's own success rate",
        "fools both, over all examples", "source and target swapped", "the target survives (1 - rate)",
        "solution (among the source's successes)", "variant: only inputs both models classify correctly"])
def test_exercise_3(ctx, capsys, answer, ok):
    kw = dict(mlp=ctx["mlp"], cnn=ctx["cnn"], x=ctx["X_test"], y=ctx["y_test"], ds=ctx["ds"])
    result, out = _run(capsys, 3, answer, **kw)
    assert result is ok
    assert ("✅ PASSED  Exercise 3 (transfer rate)" in out) if ok else (FAIL in out)
    assert "expected" not in out


def test_exercise_3_definitions_differ(ctx):
    """The two accepted definitions give different numbers here, so both are really tested."""
    for s, t, eps in [(ctx["mlp"], ctx["cnn"], 0.1), (ctx["cnn"], ctx["mlp"], 0.15)]:
        a = transfer_solution(s, t, ctx["X_test"], ctx["y_test"], eps)
        b = transfer_clean_correct(s, t, ctx["X_test"], ctx["y_test"], eps)
        assert abs(a - b) > 1e-3


# --- exercise 4: worst-case accuracy ----------------------------------------------------------

def worst_solution(model, x, y, adversarials):
    correct = np.ones(len(y), dtype=bool)
    for x_adv in adversarials:
        correct &= training.predict(model, x_adv) == y.cpu().numpy()
    return float(correct.mean())


def worst_any_fooled(model, x, y, adversarials):
    """Right: one minus the share that at least one attack fools."""
    labels = y.cpu().numpy()
    fooled = np.stack([training.predict(model, a) != labels for a in adversarials]).any(axis=0)
    return 1 - fooled.sum() / len(labels)


def worst_stub(model, x, y, adversarials):
    return min(attacks.robust_accuracy(model, x_adv, y) for x_adv in adversarials)


def worst_mean(model, x, y, adversarials):
    return float(np.mean([attacks.robust_accuracy(model, a, y) for a in adversarials]))


def worst_any_survives(model, x, y, adversarials):
    """Wrong: counts a digit that survives at least one attack (OR instead of AND)."""
    labels = y.cpu().numpy()
    return float(np.any([training.predict(model, a) == labels for a in adversarials], axis=0).mean())


def worst_product(model, x, y, adversarials):
    """Wrong: multiplies the robust accuracies, as if the attacks were independent."""
    return float(np.prod([attacks.robust_accuracy(model, a, y) for a in adversarials]))


def worst_clean(model, x, y, adversarials):
    """Wrong: the clean accuracy."""
    return training.accuracy(model, x, y)


@pytest.fixture(scope="module")
def adversarials(ctx):
    """The solution's attacks at ε = 0.1 (Square with fewer queries, to keep the test short)."""
    mlp, x, y = ctx["mlp"], ctx["X_test"], ctx["y_test"]
    advs = [attacks.fgsm(mlp, x, y, 0.1)]
    advs += [attacks.pgd(mlp, x, y, 0.1, seed=s) for s in (0, 1, 2)]
    advs += [attacks.square(mlp, x, y, 0.1, n_queries=100, seed=0)]
    return advs


@pytest.mark.parametrize("answer, ok", [
    (worst_stub, False), (worst_mean, False), (worst_any_survives, False), (worst_product, False),
    (worst_clean, False), (worst_solution, True), (worst_any_fooled, True),
], ids=["stub (best single attack)", "mean over attacks", "survives any attack (OR)",
        "product of robust accuracies", "clean accuracy", "solution", "variant: 1 - share fooled by any"])
def test_exercise_4(ctx, adversarials, capsys, answer, ok):
    kw = dict(model=ctx["mlp"], x=ctx["X_test"], y=ctx["y_test"], adversarials=adversarials)
    result, out = _run(capsys, 4, answer, **kw)
    assert result is ok
    assert ("✅ PASSED  Exercise 4 (worst-case accuracy)" in out) if ok else (FAIL in out)
    assert "expected" not in out


def test_unknown_exercise():
    with pytest.raises(ValueError):
        lab04.check(5, None)
