"""Checks of labs/04_adversarial_examples_lab.ipynb (taught in notebooks/04_adversarial_examples.ipynb)."""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from utils.attacks import evasion as attacks
from utils import training
from utils.course.grading import forbid, require
from . import Checker

#: The attack helpers Exercise 1 must not call (it asks for the step written by hand).
_ATTACK_HELPERS = (attacks.fgsm, attacks.pgd, attacks.square, attacks.run_torchattacks)

#: A grid of budgets too small to flip a confidently classified digit (Exercise 2's ``None`` case).
_TINY_GRID = (0.001, 0.002, 0.003)


def _number(value: Any, name: str) -> float:
    """``value`` as a finite float, or :class:`NotSolved` saying it is not one."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        require(False, f"{name} should be a number, got {type(value).__name__}")
    require(math.isfinite(v), f"{name} should be a finite number, got {v}")
    return v


def _exercise_1(targeted_fgsm: Callable[..., Any], model: Any, x: torch.Tensor, target: torch.Tensor) -> None:
    """The learner's targeted FGSM at ε = 0.2, written without utils.attacks, matches
    ``attacks.fgsm(..., targeted=True)``."""
    reference = attacks.fgsm(model, x, target, 0.2, targeted=True)
    with forbid(*_ATTACK_HELPERS, why="this exercise asks for the FGSM step written with torch.autograd.grad"):
        x_t = targeted_fgsm(model, x, target, 0.2)
    require(isinstance(x_t, torch.Tensor) and x_t.shape == x.shape,
            f"return a tensor shaped like x {tuple(x.shape)}")
    x_t = x_t.detach().to(x.device, x.dtype)
    require((x_t - x).abs().max() <= 0.2 + 1e-6 and x_t.min() >= 0 and x_t.max() <= 1,
            "the result must stay within eps of x and in [0, 1]")
    # Another way of writing the same step (summed loss, log-probability of the target, .backward())
    # can flip the sign of a gradient component that is zero up to rounding: allow a few such pixels.
    agree = ((x_t - reference).abs() <= 1e-5).float().mean().item()
    hits = (training.predict(model, x_t) == target.cpu().numpy()).mean()
    require(agree >= 0.999,
            f"your images differ from a targeted FGSM step on {1 - agree:.1%} of the pixels "
            f"(they reach the target {hits:.1%} of the time)")


def _reference_flip(model: Any, x: torch.Tensor, y: torch.Tensor, eps_grid: Sequence[float],
                    against: int | None = None) -> float | None:
    """The first ε in eps_grid at which PGD (20 steps, seed 0) makes the model's prediction for x differ
    from its label (or from ``against``, the wrong reading of the exercise)."""
    other = int(y[0]) if against is None else against
    for eps in eps_grid:
        if training.predict(model, attacks.pgd(model, x, y, eps, steps=20, seed=0))[0] != other:
            return eps
    return None


def _exercise_2(smallest_flipping_eps: Callable[..., Any], model: Any, x: torch.Tensor, y: torch.Tensor,
                eps_grid: Sequence[float]) -> None:
    """The learner's smallest misclassifying ε agrees with the reference on test digits #0 and #7 with the
    lab's grid, on the first misclassified digit (where "prediction changed" and "misclassified" differ),
    and on a digit that no budget of a tiny grid flips (the answer is None)."""
    eps_grid = list(eps_grid)
    clean = training.predict(model, x)
    labels = y.cpu().numpy()
    cases = [(k, eps_grid, f"test digit #{k} (a {int(labels[k])})") for k in (0, 7)]
    # a digit the model already gets wrong: the label, not the clean prediction, decides
    for k in np.flatnonzero(clean != labels)[:10]:
        xk, yk = x[k:k + 1], y[k:k + 1]
        if _reference_flip(model, xk, yk, eps_grid) != _reference_flip(model, xk, yk, eps_grid, int(clean[k])):
            cases.append((int(k), eps_grid, f"test digit #{k} (a {int(labels[k])} the model already misclassifies)"))
            break
    # a digit that no budget of the tiny grid flips
    for k in np.flatnonzero(clean == labels)[:20]:
        if _reference_flip(model, x[k:k + 1], y[k:k + 1], _TINY_GRID) is None:
            cases.append((int(k), list(_TINY_GRID), f"test digit #{k} with eps_grid = {list(_TINY_GRID)}"))
            break
    for k, grid, name in cases:
        xk, yk = x[k:k + 1], y[k:k + 1]
        expected = _reference_flip(model, xk, yk, grid)
        got = smallest_flipping_eps(model, xk, yk, list(grid))
        if expected is None:
            require(got is None, f"{name}: no budget in that grid makes PGD misclassify it, and your function "
                                 f"returns {got!r}")
            continue
        require(got is not None, f"{name}: your function returns None, but a budget in the grid makes PGD "
                                 "misclassify it")
        value = _number(got, f"{name}: the returned ε")
        require(any(abs(value - e) < 1e-9 for e in grid), f"{name}: return a budget from eps_grid, got {got!r}")
        require(abs(value - expected) < 1e-9,
                f"{name}: your ε is not the first budget in the grid at which PGD makes the model misclassify it")


def _exercise_3(transfer_rate: Callable[..., Any], mlp: Any, cnn: Any, x: torch.Tensor, y: torch.Tensor,
                ds: Any = None) -> None:
    """The learner's transfer rate MLP → CNN (ε = 0.1) and CNN → MLP (ε = 0.15) matches one of the two
    usual definitions: among the source's successful examples, the share that fool the target; or the same
    among the inputs that both models classify correctly when clean. (``ds`` is accepted for older labs.)"""
    labels = y.cpu().numpy()
    for source, target, name, eps in [(mlp, cnn, "MLP → CNN", 0.1), (cnn, mlp, "CNN → MLP", 0.15)]:
        x_adv = attacks.pgd(source, x, y, eps, seed=0)
        fools_source = training.predict(source, x_adv) != labels
        fools_target = training.predict(target, x_adv) != labels
        clean_ok = (training.predict(source, x) == labels) & (training.predict(target, x) == labels)
        accepted = [fools_target[fools_source].mean(), fools_target[fools_source & clean_ok].mean()]
        got = _number(transfer_rate(source, target, x, y, eps), f"the transfer rate {name}")
        require(0 <= got <= 1, f"the transfer rate {name} should be a fraction in [0, 1], got {got:.4f}")
        require(any(abs(got - a) <= 1e-6 for a in accepted),
                f"transfer rate {name} at ε = {eps}: your value is not the share of the source's successful "
                "PGD examples that also fool the target")


def _exercise_4(worst_case_accuracy: Callable[..., Any], model: Any, x: torch.Tensor, y: torch.Tensor,
                adversarials: Sequence[torch.Tensor]) -> None:
    """The learner's worst-case accuracy counts the digits that survive every attack."""
    labels = y.cpu().numpy()
    expected = np.mean(np.all([training.predict(model, a) == labels for a in adversarials], axis=0))
    best_single = min(attacks.robust_accuracy(model, a, y) for a in adversarials)
    got = worst_case_accuracy(model, x, y, list(adversarials))
    require(got is not None, "return a number")
    got = _number(got, "the worst-case accuracy")
    require(abs(got - best_single) > 1e-9 or abs(expected - best_single) < 1e-9,
            f"{got:.3f} is the best single attack's robust accuracy: count, digit by digit, "
            "those that survive every attack")
    require(abs(got - expected) <= 1e-9,
            "your worst-case accuracy is not the share of digits the model classifies correctly under every attack")


check = Checker("lab04", {
    1: ("targeted FGSM", _exercise_1),
    2: ("smallest flipping eps", _exercise_2),
    3: ("transfer rate", _exercise_3),
    4: ("worst-case accuracy", _exercise_4),
})
