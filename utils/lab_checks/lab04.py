"""Checks of labs/04_adversarial_examples_lab.ipynb (taught in notebooks/04_adversarial_examples.ipynb)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from utils.attacks import evasion as attacks
from utils import training
from utils.course.grading import require, require_close
from . import Checker


def _exercise_1(targeted_fgsm: Callable[..., Any], model: Any, x: torch.Tensor, target: torch.Tensor) -> None:
    """The learner's targeted FGSM at ε = 0.2 matches ``attacks.fgsm(..., targeted=True)``."""
    x_t = targeted_fgsm(model, x, target, 0.2)
    require(isinstance(x_t, torch.Tensor) and x_t.shape == x.shape,
            f"return a tensor shaped like x {tuple(x.shape)}")
    require((x_t - x).abs().max() <= 0.2 + 1e-6 and x_t.min() >= 0 and x_t.max() <= 1,
            "the result must stay within eps of x and in [0, 1]")
    reference = attacks.fgsm(model, x, target, 0.2, targeted=True)
    hits = (training.predict(model, x_t) == target.cpu().numpy()).mean()
    require(torch.allclose(x_t, reference, atol=1e-5),
            f"your images differ from a targeted FGSM (they reach the target {hits:.1%} of the time): "
            "step *down* the loss of the target class")


def _reference_flip(model: Any, x: torch.Tensor, y: torch.Tensor, eps_grid: Sequence[float]) -> float | None:
    """The first ε in eps_grid at which PGD (20 steps, seed 0) changes the prediction for x."""
    for eps in eps_grid:
        if training.predict(model, attacks.pgd(model, x, y, eps, steps=20, seed=0))[0] != int(y[0]):
            return eps
    return None


def _exercise_2(smallest_flipping_eps: Callable[..., Any], model: Any, x: torch.Tensor, y: torch.Tensor,
                eps_grid: Sequence[float]) -> None:
    """The learner's smallest flipping ε agrees with the reference on test digits #0 and #7."""
    for k in (0, 7):
        xk, yk = x[k:k + 1], y[k:k + 1]
        got, expected = smallest_flipping_eps(model, xk, yk, eps_grid), _reference_flip(model, xk, yk, eps_grid)
        require(got == expected, f"test digit #{k} (a {int(yk[0])}): you return {got}, but PGD first "
                                 f"flips it at ε = {expected}")


def _exercise_3(transfer_rate: Callable[..., Any], mlp: Any, cnn: Any, x: torch.Tensor, y: torch.Tensor,
                ds: Any) -> None:
    """The learner's transfer rate matches the reference MLP → CNN (ε = 0.1) and CNN → MLP (ε = 0.15)."""
    for source, target, name, eps in [(mlp, cnn, "MLP → CNN", 0.1), (cnn, mlp, "CNN → MLP", 0.15)]:
        x_adv = attacks.pgd(source, x, y, eps, seed=0)
        fs = training.predict(source, x_adv) != ds.y_test
        expected = (training.predict(target, x_adv) != ds.y_test)[fs].mean()
        require_close(f"transfer rate {name} at ε = {eps}", transfer_rate(source, target, x, y, eps),
                      expected, 1e-6)


def _exercise_4(worst_case_accuracy: Callable[..., Any], model: Any, x: torch.Tensor, y: torch.Tensor,
                adversarials: Sequence[torch.Tensor]) -> None:
    """The learner's worst-case accuracy counts the digits that survive every attack."""
    labels = y.cpu().numpy()
    expected = np.mean(np.all([training.predict(model, a) == labels for a in adversarials], axis=0))
    best_single = min(attacks.robust_accuracy(model, a, y) for a in adversarials)
    got = worst_case_accuracy(model, x, y, adversarials)
    require(got is not None, "return a number")
    require(abs(float(got) - best_single) > 1e-9 or abs(expected - best_single) < 1e-9,
            f"{float(got):.3f} is the best single attack's robust accuracy: count, digit by digit, "
            "those that survive every attack")
    require_close("worst-case accuracy", got, expected, 1e-9)


check = Checker("lab04", {
    1: ("targeted FGSM", _exercise_1),
    2: ("smallest flipping eps", _exercise_2),
    3: ("transfer rate", _exercise_3),
    4: ("worst-case accuracy", _exercise_4),
})
