"""Evasion attacks: adversarial examples (taught in 04_adversarial_examples).

Inputs are images in [0, 1]; ``eps`` is an L∞ budget on that scale. The
notebook writes FGSM out in a few lines so the idea is visible; these are the
tested, batched versions:

- :func:`fgsm`, :func:`pgd`: white-box L∞ attacks, written here and
  cross-checked against torchattacks in ``tests/test_attacks.py``.
- :func:`run_torchattacks`: one bridge to torchattacks ("FGSM", "PGD", "CW",
  "Square", "APGD", "AutoAttack") that hides its quirks (see its docstring);
  :func:`square` is the black-box Square attack through that bridge.
- :func:`robust_accuracy`, :func:`perturbation_norms`, :func:`robustness_curve`:
  measuring the result; :func:`project_linf` puts an unbounded result (C&W) on a budget.

Every function checks its inputs through :mod:`utils.validation` (``eps`` in
[0, 1], images in [0, 1] and finite, one integer label per image, ``steps >=
1``) and raises a ``ValueError`` of the form ``"fgsm: eps = 1.5 is out of range;
eps must be a number in [0, 1]"``. A model with any module in training mode is
refused: an attack, like an evaluation, must see the model as it is deployed.
Code that crafts attacks *during* training (adversarial training in
05_adversarial_defenses) wraps them in :func:`eval_mode`. Inputs are never
modified in place.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from utils import validation as v
from utils.models import device_of

#: Attacks :func:`run_torchattacks` knows, by name.
TORCHATTACKS_NAMES = ("FGSM", "PGD", "CW", "Square", "APGD", "AutoAttack")
#: Those of them that accept target labels.
TARGETED_NAMES = ("FGSM", "PGD", "CW", "Square")


def _prepare(model: nn.Module, x, y, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The model checked for eval mode; float32 images in [0, 1] and int64 labels on its
    device (detached; callers never write into them)."""
    v.eval_mode(model, where)
    device = device_of(model)
    x = v.image_tensor(x.detach() if isinstance(x, torch.Tensor) else x, where, device, ndim=None)
    return x, v.label_tensor(y, where, len(x), device)


def _check_classes(y: torch.Tensor, n_classes: int, where: str, name: str = "labels") -> None:
    """Labels the model has a class for (``n_classes`` read from its output)."""
    if len(y) and int(y.max()) >= n_classes:
        v.labels(y.cpu(), where, n_classes=n_classes, name=name)


def _loss(logits: torch.Tensor, y: torch.Tensor, where: str, check: bool = True) -> torch.Tensor:
    """Mean cross-entropy, after checking (unless ``check=False``: done already) that every
    label is one of the model's classes."""
    if check:
        _check_classes(y, logits.shape[1], where)
    return F.cross_entropy(logits, y)


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Run the model in eval mode inside the block, then restore the mode of each of its modules.

    For code that crafts attacks *during* training: the batch hooks of
    adversarial training (taught in 05_adversarial_defenses) call :func:`pgd`
    or their own steps inside ``with eval_mode(model):``. Every evaluating
    function (:func:`fgsm`, :func:`pgd`, :func:`robust_accuracy`,
    ``utils.training.predict_proba``, ...) refuses a model in training mode
    instead of switching it silently. Only modules found in training mode are
    switched and switched back, so a model already in eval mode costs one walk
    over its modules.
    """
    training = [m for m in model.modules() if m.training]
    if training:
        model.eval()
    try:
        yield model
    finally:
        for m in training:
            m.training = True


def fgsm(model: nn.Module, x, y, eps: float, targeted: bool = False) -> torch.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al., 2015), taught in 04_adversarial_examples.

    One step of size ``eps`` along the sign of the loss gradient; with
    ``targeted=True``, ``y`` holds the target classes and the step goes down
    their loss instead. Returns the adversarial images (same shape as ``x``).
    The model must be in eval mode.
    """
    where = "fgsm"
    eps = v.unit(eps, "eps", where)
    x, y = _prepare(model, x, y, where)
    x_adv = x.clone().requires_grad_(True)
    loss = _loss(model(x_adv), y, where)
    grad, = torch.autograd.grad(loss, x_adv)
    step = -eps if targeted else eps
    return (x + step * grad.sign()).clamp(0, 1).detach()


def pgd(model: nn.Module, x, y, eps: float, alpha: float | None = None, steps: int = 10,
        random_start: bool = True, targeted: bool = False, seed: int | None = 0,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected Gradient Descent under L∞ (Madry et al., 2018), taught in 04_adversarial_examples.

    ``steps`` signed-gradient steps of size ``alpha`` (default ``2.5 * eps / steps``,
    at most 1), each projected back into the ``eps``-ball around ``x`` and into [0, 1].
    ``seed`` fixes the random start without touching the global RNG; a
    ``generator`` (e.g. ``torch.default_generator``, as adversarial training in
    05_adversarial_defenses uses) is drawn from instead, continuing its stream.
    The model must be in eval mode.
    """
    where = "pgd"
    eps = v.unit(eps, "eps", where)
    steps = v.integer(steps, "steps", where, low=1)
    alpha = min(1.0, 2.5 * eps / steps) if alpha is None else v.unit(alpha, "alpha", where)
    if seed is not None:
        seed = v.seed(seed, where)
    x, y = _prepare(model, x, y, where)
    x_adv = x.clone()
    if random_start and eps > 0:
        gen = generator
        if gen is None:
            gen = torch.Generator(device=x.device)
            if seed is not None:
                gen.manual_seed(seed)
        noise = torch.rand(x.shape, generator=gen, device=x.device) * 2 * eps - eps
        x_adv = (x + noise).clamp(0, 1)
    lower, upper = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    step = -alpha if targeted else alpha
    for i in range(steps):
        x_adv.requires_grad_(True)
        loss = _loss(model(x_adv), y, where, check=i == 0)
        grad, = torch.autograd.grad(loss, x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + step * grad.sign(), lower), upper)
    return x_adv.detach()


@torch.no_grad()
def robust_accuracy(model: nn.Module, x_adv, y) -> float:
    """Accuracy on (adversarial) inputs of a model in eval mode (taught in 04_adversarial_examples)."""
    where = "robust_accuracy"
    x_adv, y = _prepare(model, x_adv, y, where)
    if len(y) == 0:
        v.fail(where, "no images given", "give at least one image")
    logits = model(x_adv)
    _check_classes(y, logits.shape[1], where)
    return float((logits.argmax(1) == y).float().mean())


def _project(x: torch.Tensor, x_adv: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.min(torch.max(x_adv, (x - eps).clamp(min=0)), (x + eps).clamp(max=1))


def _pair(x, x_adv, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean and adversarial images of the same shape, both in [0, 1], detached."""
    detach = (lambda t: t.detach() if isinstance(t, torch.Tensor) else t)  # noqa: E731
    x = v.image_tensor(detach(x), where, ndim=None)
    x_adv = v.image_tensor(detach(x_adv), where, x.device, ndim=None, name="adversarial images")
    if x.shape != x_adv.shape:
        v.fail(where, f"images have shape {tuple(x.shape)} but adversarial images {tuple(x_adv.shape)}",
               "x and x_adv must have the same shape, one adversarial image per image")
    return x, x_adv


def project_linf(x, x_adv, eps: float) -> torch.Tensor:
    """``x_adv`` clipped into the L∞ ball of radius ``eps`` around ``x`` and into [0, 1].

    How an attack without an L∞ budget (C&W) is compared at a budget: run it once,
    then project its result for each ε (taught in 04_adversarial_examples).
    """
    eps = v.unit(eps, "eps", "project_linf")
    x, x_adv = _pair(x, x_adv, "project_linf")
    return _project(x, x_adv, eps)


def perturbation_norms(x, x_adv) -> dict[str, np.ndarray]:
    """Per-image size of ``x_adv - x``: ``{"linf": ..., "l2": ...}`` as NumPy arrays
    (taught in 04_adversarial_examples)."""
    x, x_adv = _pair(x, x_adv, "perturbation_norms")
    d = (x_adv.cpu() - x.cpu()).flatten(1)
    return {"linf": d.abs().amax(1).numpy() if d.shape[1] else np.zeros(len(d)),
            "l2": d.norm(dim=1).numpy()}


def robustness_curve(model: nn.Module, x, y, attack_fns: dict[str, Callable[..., torch.Tensor]],
                     eps_values: Sequence[float]):
    """Robust accuracy of each attack at each ε, as a tidy pandas DataFrame (taught in 04_adversarial_examples).

    Args:
        model: the classifier, in eval mode.
        attack_fns: name -> ``fn(model, x, y, eps)`` returning adversarial images,
            e.g. ``{"FGSM": fgsm, "PGD": functools.partial(pgd, steps=20)}``.
        eps_values: L∞ budgets in [0, 1]; at ε = 0 no attack runs (the clean accuracy).
    Returns:
        columns ``attack``, ``eps``, ``robust_accuracy``, ``n`` (one row per pair),
        ready for ``seaborn.lineplot(data=..., x="eps", y="robust_accuracy", hue="attack")``.
    """
    import pandas as pd

    where = "robustness_curve"
    eps_values = [v.unit(e, "eps", where) for e in eps_values]
    if not attack_fns:
        v.fail(where, "no attacks given", "give at least one attack in attack_fns")
    if not eps_values:
        v.fail(where, "no eps values given", "give at least one eps value")
    x, y = _prepare(model, x, y, where)
    clean = robust_accuracy(model, x, y)
    rows = []
    for name, fn in attack_fns.items():
        for eps in eps_values:
            acc = clean if eps == 0 else robust_accuracy(model, fn(model, x, y, eps), y)
            rows.append({"attack": name, "eps": eps, "robust_accuracy": acc, "n": len(x)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- torchattacks bridge


def _torchattacks():
    # Only the attack classes: never torchattacks' optional `robustbench` package.
    import torchattacks

    return torchattacks


def _build_attack(ta, name: str, model: nn.Module, eps: float, seed: int, n_classes: int, kwargs: dict):
    kwargs = dict(kwargs)
    if name == "FGSM":
        return ta.FGSM(model, eps=eps, **kwargs)
    if name == "PGD":  # the same defaults as pgd()
        steps = kwargs.pop("steps", 10)
        alpha = kwargs.pop("alpha", min(1.0, 2.5 * eps / steps))
        return ta.PGD(model, eps=eps, alpha=alpha, steps=steps, **kwargs)
    if name == "CW":
        return ta.CW(model, **kwargs)
    if name == "Square":
        return ta.Square(model, eps=eps, seed=seed, **kwargs)
    if name == "APGD":
        return ta.APGD(model, eps=eps, seed=seed, **kwargs)
    return ta.AutoAttack(model, eps=eps, seed=seed, n_classes=n_classes, **kwargs)


def run_torchattacks(name: str, model: nn.Module, x, y, eps: float, seed: int = 0,
                     targeted: bool = False, target_labels=None, **kwargs) -> torch.Tensor:
    """Run a torchattacks attack with the course's conventions (taught in 04_adversarial_examples).

    Args:
        name: ``"FGSM"``, ``"PGD"``, ``"CW"``, ``"Square"``, ``"APGD"`` or ``"AutoAttack"``.
        model: a classifier returning logits, for images in [0, 1] (no normalization layer needed).
        x, y: images in [0, 1] and their true labels (never modified).
        eps: L∞ budget in [0, 1]. Every attack's result lies in the ``eps``-ball
            around ``x`` and in [0, 1]. C&W is an L2 attack without a budget: its
            result is projected onto that ball (``eps=1`` keeps it as found).
        seed: seeds the attack's random draws (PGD's random start, Square's
            squares, APGD/AutoAttack's starting points, random targets).
        targeted: aim at ``target_labels`` instead of away from ``y``
            (FGSM, PGD, CW and Square; APGD and AutoAttack are untargeted only).
        target_labels: one target class per image; ``None`` with ``targeted=True``
            draws a random class other than ``y`` for each image (seeded).
        kwargs: passed to the torchattacks class, e.g. ``steps``, ``alpha``,
            ``random_start`` (PGD), ``c``, ``kappa``, ``lr`` (CW), ``n_queries``,
            ``p_init`` (Square), ``version`` (AutoAttack). PGD defaults to the same
            ``alpha = 2.5 * eps / steps`` and ``steps = 10`` as :func:`pgd`.

    Returns:
        the adversarial images, a new tensor shaped like ``x`` on the model's device.

    The model must be in eval mode (a model in training mode is refused, as in
    every attack here).

    torchattacks' quirks, handled here so that notebooks never see them:

    - Square, APGD and AutoAttack call ``torch.manual_seed`` on the *global*
      generator, and PGD/CW/random targets draw from it: the global RNG state is
      saved before and restored after the call, so the rest of a notebook draws
      the same numbers whether or not an attack ran. The attack itself is seeded
      with ``seed`` (AutoAttack's own default seeds from the clock).
    - Targeted-mode setters print a line unless told ``quiet=True``.
    - torchattacks switches the model's mode and restores it only when the
      attack returns normally; here the mode is restored in every case.
    - C&W works in tanh space, where a pixel at exactly 0 or 1 maps to ±∞ and can
      never move (most of a digit's background is exactly 0): the inputs are
      nudged by 1e-6 into (0, 1) for C&W (as in Carlini and Wagner's own code),
      and every pixel C&W moved by at most 1e-5 is returned exactly as given.
    - AutoAttack and APGD need the number of classes: read from the model's output.
    """
    return _run(name, model, x, y, eps, seed, targeted, target_labels, kwargs, "run_torchattacks")


def _run(name: str, model: nn.Module, x, y, eps: float, seed: int, targeted: bool, target_labels,
         kwargs: dict, where: str) -> torch.Tensor:
    name = v.choice(name, "name", where, TORCHATTACKS_NAMES)
    eps = v.unit(eps, "eps", where)
    seed = v.seed(seed, where)
    for key in ("steps", "n_queries", "n_restarts"):
        if key in kwargs:
            kwargs[key] = v.integer(kwargs[key], key, where, low=1)
    if "alpha" in kwargs:
        kwargs["alpha"] = v.unit(kwargs["alpha"], "alpha", where)
    x, y = _prepare(model, x, y, where)
    if targeted and name not in TARGETED_NAMES:
        v.fail(where, f"targeted=True for {name}, which torchattacks runs untargeted only",
               f"targeted attacks: {', '.join(TARGETED_NAMES)}")
    if target_labels is not None and not targeted:
        v.fail(where, "target_labels given with targeted=False", "pass targeted=True to aim at them")
    device = x.device
    if target_labels is not None:
        target_labels = v.label_tensor(target_labels, where, len(x), device, name="target_labels")
    if len(x) == 0:
        return x.clone()
    ta = _torchattacks()
    cuda_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    # The model is in eval mode (checked); eval_mode restores it even if torchattacks fails midway.
    with eval_mode(model), torch.random.fork_rng(devices=cuda_ids):
        torch.manual_seed(seed)
        with torch.no_grad():
            n_classes = int(model(x[:1]).shape[1])
        _check_classes(y, n_classes, where)
        if targeted:
            if target_labels is None:
                gen = torch.Generator().manual_seed(seed)
                shift = torch.randint(1, n_classes, (len(y),), generator=gen).to(device)
                target_labels = (y + shift) % n_classes
            else:
                _check_classes(target_labels, n_classes, where, "target_labels")
        x_in = x.clamp(1e-6, 1 - 1e-6) if name == "CW" else x
        try:
            atk = _build_attack(ta, name, model, eps, seed, n_classes, kwargs)
        except TypeError as err:  # an option the torchattacks class does not take
            v.fail(where, f"{name}: {err}", f"see torchattacks.{name} for its options")
        if targeted:
            atk.set_mode_targeted_by_label(quiet=True)
        x_adv = atk(x_in, target_labels if targeted else y).detach()
    if name == "CW":  # pixels C&W left alone come back exactly (no nudge, no tanh round-off)
        x_adv = torch.where((x_adv - x).abs() <= 1e-5, x, x_adv)
    # Projection onto the budget (C&W has none; the others only fix float round-off).
    return _project(x, x_adv, eps)


def square(model: nn.Module, x, y, eps: float, n_queries: int = 1000, seed: int = 0,
           **kwargs) -> torch.Tensor:
    """Square attack (Andriushchenko et al., 2020): black-box, only queries the model's outputs.

    Random square-shaped L∞ changes, kept when they lower the margin of the true
    class; at most ``n_queries`` queries per image. Taught in 04_adversarial_examples.
    """
    return _run("Square", model, x, y, eps, seed, kwargs.pop("targeted", False), kwargs.pop("target_labels", None),
                {**kwargs, "n_queries": v.integer(n_queries, "n_queries", "square", low=1)}, "square")


__all__ = ["fgsm", "pgd", "robust_accuracy", "perturbation_norms", "project_linf", "robustness_curve", "eval_mode",
           "run_torchattacks", "square", "TORCHATTACKS_NAMES", "TARGETED_NAMES"]
