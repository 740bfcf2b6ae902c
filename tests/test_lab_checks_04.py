"""lab04's checks: the lab's stubs fail, the solution's answers pass, a plausible wrong answer fails."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import utils
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
    return ok, capsys.readouterr().out


# --- exercise 1: targeted FGSM -------------------------------------------------------------

def fgsm_solution(model, x, target, eps):
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), target)
    grad, = torch.autograd.grad(loss, x)
    return (x - eps * grad.sign()).clamp(0, 1).detach()


def fgsm_stub(model, x, target, eps):
    return x.clone()


def fgsm_wrong_sign(model, x, target, eps):
    x = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), target), x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


@pytest.mark.parametrize("answer, ok", [(fgsm_stub, False), (fgsm_wrong_sign, False), (fgsm_solution, True)])
def test_exercise_1(ctx, capsys, answer, ok):
    kw = dict(model=ctx["mlp"], x=ctx["X_test"], target=(ctx["y_test"] + 1) % 10)
    result, out = _run(capsys, 1, answer, **kw)
    assert result is ok
    assert ("✅ PASSED  Exercise 1 (targeted FGSM)" in out) if ok else (FAIL in out)


# --- exercise 2: smallest flipping eps --------------------------------------------------------

EPS_GRID = [round(0.01 * k, 2) for k in range(1, 31)]


def flip_solution(model, x, y, eps_grid):
    for eps in eps_grid:
        x_adv = attacks.pgd(model, x, y, eps, steps=20, seed=0)
        if training.predict(model, x_adv)[0] != int(y[0]):
            return eps
    return None


def flip_stub(model, x, y, eps_grid):
    return None


def flip_largest(model, x, y, eps_grid):
    return eps_grid[-1]


@pytest.mark.parametrize("answer, ok", [(flip_stub, False), (flip_largest, False), (flip_solution, True)])
def test_exercise_2(ctx, capsys, answer, ok):
    kw = dict(model=ctx["mlp"], x=ctx["X_test"], y=ctx["y_test"], eps_grid=EPS_GRID)
    result, out = _run(capsys, 2, answer, **kw)
    assert result is ok
    assert ("✅ PASSED  Exercise 2 (smallest flipping eps)" in out) if ok else (FAIL in out)


# --- exercise 3: transfer rate ----------------------------------------------------------------

def transfer_solution(source, target, x, y, eps):
    x_adv = attacks.pgd(source, x, y, eps, seed=0)
    labels = y.cpu().numpy()
    fools_source = training.predict(source, x_adv) != labels
    fools_target = training.predict(target, x_adv) != labels
    return float(fools_target[fools_source].mean())


def transfer_stub(source, target, x, y, eps):
    return 0.0


def transfer_unconditioned(source, target, x, y, eps):
    """Wrong: the target's error rate over all the examples, not just those that fool the source."""
    x_adv = attacks.pgd(source, x, y, eps, seed=0)
    return float((training.predict(target, x_adv) != y.cpu().numpy()).mean())


@pytest.mark.parametrize("answer, ok", [(transfer_stub, False), (transfer_unconditioned, False),
                                        (transfer_solution, True)])
def test_exercise_3(ctx, capsys, answer, ok):
    kw = dict(mlp=ctx["mlp"], cnn=ctx["cnn"], x=ctx["X_test"], y=ctx["y_test"], ds=ctx["ds"])
    result, out = _run(capsys, 3, answer, **kw)
    assert result is ok
    assert ("✅ PASSED  Exercise 3 (transfer rate)" in out) if ok else (FAIL in out)


# --- exercise 4: worst-case accuracy ----------------------------------------------------------

def worst_solution(model, x, y, adversarials):
    correct = np.ones(len(y), dtype=bool)
    for x_adv in adversarials:
        correct &= training.predict(model, x_adv) == y.cpu().numpy()
    return float(correct.mean())


def worst_stub(model, x, y, adversarials):
    return min(attacks.robust_accuracy(model, x_adv, y) for x_adv in adversarials)


def worst_mean(model, x, y, adversarials):
    return float(np.mean([attacks.robust_accuracy(model, a, y) for a in adversarials]))


@pytest.fixture(scope="module")
def adversarials(ctx):
    """The solution's attacks at ε = 0.1 (Square with fewer queries, to keep the test short)."""
    mlp, x, y = ctx["mlp"], ctx["X_test"], ctx["y_test"]
    advs = [attacks.fgsm(mlp, x, y, 0.1)]
    advs += [attacks.pgd(mlp, x, y, 0.1, seed=s) for s in (0, 1, 2)]
    advs += [attacks.square(mlp, x, y, 0.1, n_queries=100, seed=0)]
    return advs


@pytest.mark.parametrize("answer, ok", [(worst_stub, False), (worst_mean, False), (worst_solution, True)])
def test_exercise_4(ctx, adversarials, capsys, answer, ok):
    kw = dict(model=ctx["mlp"], x=ctx["X_test"], y=ctx["y_test"], adversarials=adversarials)
    result, out = _run(capsys, 4, answer, **kw)
    assert result is ok
    assert ("✅ PASSED  Exercise 4 (worst-case accuracy)" in out) if ok else (FAIL in out)


def test_unknown_exercise():
    with pytest.raises(ValueError):
        lab04.check(5, None)
