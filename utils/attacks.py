"""Evasion attacks: adversarial examples (taught in 04_adversarial_examples).

Inputs are images in [0, 1]; ``eps`` is an L∞ budget on that scale. The
notebook writes FGSM out in a few lines so the idea is visible; these are the
tested, batched versions. Every attack checks its inputs, runs the model in
eval mode and leaves the model's mode as it found it.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def _check_eps(eps: float, name: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not 0.0 <= float(eps) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1] (inputs are in [0, 1]), got {eps!r}")
    return float(eps)


def _as_tensors(model: nn.Module, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32).to(device)
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).to(device).long()
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"labels must have shape ({len(x)},) to match the {len(x)} inputs, got {tuple(y.shape)}")
    if len(x) and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"inputs must be in [0, 1], got values in [{x.min().item():.3f}, {x.max().item():.3f}]")
    return x, y


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Run the model in eval mode inside the block, then restore its mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def fgsm(model: nn.Module, x, y, eps: float, targeted: bool = False) -> torch.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al., 2015).

    One step of size ``eps`` along the sign of the loss gradient; with
    ``targeted=True``, ``y`` holds the target classes and the step goes down
    their loss instead.
    """
    eps = _check_eps(eps)
    x, y = _as_tensors(model, x, y)
    with eval_mode(model):
        x_adv = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        grad, = torch.autograd.grad(loss, x_adv)
        step = -eps if targeted else eps
        return (x + step * grad.sign()).clamp(0, 1).detach()


def pgd(model: nn.Module, x, y, eps: float, alpha: float | None = None, steps: int = 10,
        random_start: bool = True, targeted: bool = False, seed: int | None = 0) -> torch.Tensor:
    """Projected Gradient Descent under L∞ (Madry et al., 2018).

    ``steps`` signed-gradient steps of size ``alpha`` (default ``2.5 * eps / steps``),
    each projected back into the ``eps``-ball around ``x`` and into [0, 1].
    ``seed`` fixes the random start without touching the global RNG.
    """
    eps = _check_eps(eps)
    alpha = _check_eps(2.5 * eps / max(steps, 1) if alpha is None else alpha, "alpha")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    x, y = _as_tensors(model, x, y)
    with eval_mode(model):
        x_adv = x.clone()
        if random_start and eps > 0:
            gen = torch.Generator(device=x.device)
            if seed is not None:
                gen.manual_seed(seed)
            noise = torch.rand(x.shape, generator=gen, device=x.device) * 2 * eps - eps
            x_adv = (x + noise).clamp(0, 1)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y)
            grad, = torch.autograd.grad(loss, x_adv)
            step = -alpha if targeted else alpha
            x_adv = x_adv.detach() + step * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
        return x_adv.detach()


@torch.no_grad()
def robust_accuracy(model: nn.Module, x_adv, y) -> float:
    """Accuracy on (adversarial) inputs."""
    x_adv, y = _as_tensors(model, x_adv, y)
    with eval_mode(model):
        return float((model(x_adv).argmax(1) == y).float().mean())
