"""Defenses against adversarial examples, and how to evaluate them (taught in 05_adversarial_defenses).

Three families, each with the MITRE ATLAS mitigation it implements:

- **Adversarial training** (AML.M0003 Model Hardening): :func:`pgd_hook` (Madry
  et al., 2018) and :func:`fgsm_rs_hook` (FGSM from a random start, Wong et al.,
  2020) are batch hooks for :func:`utils.training.fit`; :func:`adversarial_training`
  trains through the cache with the right tag.
- **Input sanitization** (AML.M0010 Input Restoration, AML.M0015 Adversarial
  Input Detection): the feature squeezers :class:`BitDepth` and :class:`MedianFilter`
  (Xu et al., 2018), used as a transform (:class:`SqueezedModel`) or as a
  detector (:func:`squeeze_score`, for a model or for a black-box
  ``predict_proba``; its ROC and threshold come from :mod:`utils.metrics`);
  :func:`detector_aware_pgd` attacks the model and the detector together.
- **Honest evaluation**: :class:`SqueezedModel` with ``bpda=True`` is the
  straight-through gradient of BPDA, :class:`EOT` averages a randomized
  defense (:class:`RandomBitDepth`) over draws (Athalye et al., 2018);
  :func:`evaluate` reports the per-image worst case over PGD and the black-box
  Square attack; :func:`input_gradient_norms` shows masked gradients.

Inputs are images in [0, 1] with shape (N, C, H, W); ``eps`` is an L∞ budget on
that scale. Bad input (``eps`` outside [0, 1], ``steps < 1``, images outside
[0, 1], labels of the wrong shape) raises the ``ValueError`` of
:mod:`utils.validation` (``"where: what was wrong; what is allowed"``). A model
in training mode is refused by the evaluation functions (call ``model.eval()``)
and *handled* by the batch hooks, which :func:`~utils.training.fit` calls on a
model in training mode: they craft the batch inside
:func:`utils.attacks.evasion.eval_mode` and give the model back in the mode it
was in. Inputs are never modified in place. The comparison panel of the lesson
is :func:`utils.widgets.comparison_panel`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.attacks import evasion as attacks
from utils import training
from utils import validation as v
from utils.models import device_of

BatchHook = Callable[[nn.Module, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]

#: Adversarial-training methods :func:`adversarial_training` knows.
METHODS = ("pgd", "fgsm_rs")


# --------------------------------------------------------------------------- adversarial training


def pgd_hook(eps: float, steps: int = 10, alpha: float | None = None) -> BatchHook:
    """A batch hook for PGD adversarial training (Madry et al., 2018; taught in 05_adversarial_defenses).

    Each batch is replaced by PGD adversarial examples: a random start in the
    ``eps``-ball, then ``steps`` signed-gradient steps of size ``alpha``
    (default ``2.5 * eps / steps``), each projected back into the ball and [0, 1]
    (:func:`utils.attacks.evasion.project_linf`). This is the inner maximization
    of ``min_θ E[max_{‖δ‖∞ ≤ ε} L(θ, x + δ, y)]``.

    The hook is :func:`utils.attacks.evasion.pgd` itself, crafting inside
    :func:`utils.attacks.evasion.eval_mode` (the model's mode is restored after).
    Its random start draws from torch's *global* generator, which
    :func:`utils.training.fit` seeds with ``config.seed``, so training is
    reproducible and each batch gets another start.
    """
    eps = v.unit(eps, "eps", "pgd_hook")
    steps = v.integer(steps, "steps", "pgd_hook", low=1)
    alpha = v.unit(2.5 * eps / steps if alpha is None else alpha, "alpha", "pgd_hook")

    def hook(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor):
        x = v.image_tensor(xb, "pgd_hook")
        y = v.label_tensor(yb, "pgd_hook", len(x), x.device)
        generator = torch.default_generator if x.device.type == "cpu" else \
            torch.cuda.default_generators[x.device.index or 0]
        with attacks.eval_mode(model):
            x_adv = attacks.pgd(model, x, y, eps, alpha=alpha, steps=steps, generator=generator)
        return x_adv, yb

    hook.tag = f"pgd-at eps={eps:g} steps={steps} alpha={alpha:g}"  # type: ignore[attr-defined]
    return hook


def fgsm_rs_hook(eps: float, alpha: float | None = None, random_start: bool = True) -> BatchHook:
    """A batch hook for fast adversarial training: FGSM from a random start (Wong et al., 2020;
    taught in 05_adversarial_defenses).

    A uniform random start ``δ`` in the ``eps``-ball, one signed-gradient step of
    size ``alpha`` (default ``1.25 * eps``, the paper's choice), then the result is
    projected back into the ball and [0, 1] (:func:`utils.attacks.evasion.project_linf`,
    the same numbers as clipping ``δ`` to ``[-eps, eps]`` and ``x + δ`` to [0, 1]).
    One gradient per batch instead of PGD's ``steps``. Seeding, eval mode and the
    model's mode as in :func:`pgd_hook`.

    With ``random_start=False`` the step starts from ``δ = 0``: plain FGSM training
    (its tag says ``fgsm-zero``), the variant Wong et al. report to overfit
    catastrophically; Andriushchenko and Flammarion (2020) show that the random
    start alone does not reliably prevent that either.
    """
    eps = v.unit(eps, "eps", "fgsm_rs_hook")
    alpha = v.unit(1.25 * eps if alpha is None else alpha, "alpha", "fgsm_rs_hook")
    if not isinstance(random_start, bool):
        v.fail("fgsm_rs_hook", f"random_start = {random_start!r}", "random_start must be True or False")

    def hook(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor):
        x = v.image_tensor(xb, "fgsm_rs_hook")
        y = v.label_tensor(yb, "fgsm_rs_hook", len(x), x.device)
        with attacks.eval_mode(model):
            delta = torch.empty_like(x).uniform_(-eps, eps) if random_start else torch.zeros_like(x)
            delta.requires_grad_(True)
            grad, = torch.autograd.grad(F.cross_entropy(model((x + delta).clamp(0, 1)), y), delta)
        return attacks.project_linf(x, (x + (delta.detach() + alpha * grad.sign())).clamp(0, 1), eps), yb

    name = "fgsm-rs" if random_start else "fgsm-zero"
    hook.tag = f"{name} eps={eps:g} alpha={alpha:g}"  # type: ignore[attr-defined]
    return hook


def adversarial_training(config: training.TrainConfig, X: np.ndarray, y: np.ndarray,
                         n_classes: int | None = None, method: str = "pgd", eps: float = 0.1,
                         steps: int = 10, alpha: float | None = None, random_start: bool = True,
                         **fit_kwargs) -> nn.Module:
    """Train (or load from the cache) an adversarially trained model (taught in 05_adversarial_defenses).

    Args:
        config: model and optimization settings, as for :func:`utils.training.fit`.
        X, y: clean training images in [0, 1] and labels (never modified).
        method: ``"pgd"`` (:func:`pgd_hook`, ``steps`` steps) or ``"fgsm_rs"``
            (:func:`fgsm_rs_hook`; ``steps`` is not used).
        eps, alpha: the training budget and step size.
        random_start: for ``"fgsm_rs"`` only: ``False`` starts the FGSM step from zero
            (see :func:`fgsm_rs_hook`); PGD always starts at random.
        fit_kwargs: passed to :func:`utils.training.fit` (``device``, ``cache``).

    Returns:
        the model in eval mode; ``model.meta["train_seconds"]`` is the training
        time measured when it was trained and ``model.meta["tag"]`` names the hook.
    """
    where = "adversarial_training"
    v.choice(method, "method", where, METHODS)
    v.labels(y, where, n=len(v.images(X, where)), n_classes=n_classes)
    if method == "pgd" and random_start is not True:
        v.fail(where, f"random_start = {random_start!r} with method 'pgd'", "random_start is an option of 'fgsm_rs' only")
    hook = pgd_hook(eps, steps, alpha) if method == "pgd" else fgsm_rs_hook(eps, alpha, random_start)
    return training.fit(config, X, y, n_classes, batch_hook=hook, tag=hook.tag, **fit_kwargs)


# --------------------------------------------------------------------------- feature squeezing


class BitDepth(nn.Module):
    """Reduce each pixel to ``bits`` bits: ``2**bits`` evenly spaced levels in [0, 1]
    (taught in 05_adversarial_defenses).

    Rounding has a zero gradient almost everywhere: a model behind it gives a
    gradient attack nothing to follow (see :class:`SqueezedModel`). Any batch
    shape works, images ``(N, C, H, W)`` or flat rows ``(N, d)``.
    """

    def __init__(self, bits: int):
        super().__init__()
        self.bits = v.integer(bits, "bits", "BitDepth", 1, 16)
        self.levels = 2 ** self.bits - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = v.image_tensor(x, "BitDepth", ndim=None)
        return torch.round(x * self.levels) / self.levels

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


class MedianFilter(nn.Module):
    """Replace each pixel by the median of the ``size × size`` window at it (edges replicated).

    For an even ``size`` the window reaches right and down (as in Xu et al.'s
    2×2 filter) and the lower of the two middle values is taken. Taught in 05_adversarial_defenses.
    """

    def __init__(self, size: int = 2):
        super().__init__()
        self.size = v.integer(size, "size", "MedianFilter", 1, 15)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = v.image_tensor(x, "MedianFilter")
        k = self.size
        if k > min(x.shape[-2:]):
            v.fail("MedianFilter", f"size {k} is larger than the images ({tuple(x.shape[-2:])})",
                   "the window must fit in the image")
        before, after = (k - 1) // 2, k // 2
        padded = F.pad(x, (before, after, before, after), mode="replicate")
        windows = padded.unfold(2, k, 1).unfold(3, k, 1)  # (N, C, H, W, k, k)
        return windows.reshape(*windows.shape[:4], k * k).median(dim=-1).values

    def extra_repr(self) -> str:
        return f"size={self.size}"


class RandomBitDepth(nn.Module):
    """A randomized squeezer: uniform noise in ``[-spread, spread]``, then :class:`BitDepth`.

    The noise comes from the squeezer's own generator, seeded by ``seed``, so a
    notebook gets the same draws on every run (call :meth:`reseed` to restart them).
    Taught in 05_adversarial_defenses.
    """

    def __init__(self, bits: int, spread: float, seed: int = 0):
        super().__init__()
        self.squeeze = BitDepth(bits)
        self.spread = v.unit(spread, "spread", "RandomBitDepth")
        self.seed = v.seed(seed, "RandomBitDepth")
        self.generator = torch.Generator()
        self.reseed()

    def reseed(self, seed: int | None = None) -> "RandomBitDepth":
        """Restart the noise from ``seed`` (default: the seed given at construction)."""
        self.generator.manual_seed(self.seed if seed is None else v.seed(seed, "RandomBitDepth.reseed"))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = v.image_tensor(x, "RandomBitDepth", ndim=None)
        noise = (torch.rand(x.shape, generator=self.generator) * 2 - 1) * self.spread
        return self.squeeze((x + noise.to(x.device)).clamp(0, 1))

    def extra_repr(self) -> str:
        return f"spread={self.spread:g}, seed={self.seed}"


class SqueezedModel(nn.Module):
    """A model behind an input transform: ``model(squeezer(x))``.

    With ``bpda=True`` the forward pass is the same but the backward pass treats
    the squeezer as the identity (the straight-through estimator of BPDA,
    Backward Pass Differentiable Approximation, Athalye et al., 2018):
    ``z = x + (squeezer(x) - x).detach()``. Use that copy to *craft* attacks and
    the plain one to *evaluate* them. Taught in 05_adversarial_defenses.
    """

    def __init__(self, model: nn.Module, squeezer: Callable[[torch.Tensor], torch.Tensor], bpda: bool = False):
        super().__init__()
        if not callable(squeezer):
            v.fail("SqueezedModel", f"squeezer = {squeezer!r} is not callable",
                   "squeezer must be callable, e.g. BitDepth(3)")
        self.model = model
        self.squeezer = squeezer
        self.bpda = bool(bpda)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.squeezer(x)
        if self.bpda:
            z = x + (z - x).detach()
        return self.model(z)

    def extra_repr(self) -> str:
        return f"bpda={self.bpda}"


class EOT(nn.Module):
    """Expectation over Transformation: the mean log-probabilities of ``samples`` forward passes.

    A randomized defense answers differently at each call; attacking the
    average over draws (Athalye et al., 2018) follows the expected gradient
    instead of one draw's noise. Taught in 05_adversarial_defenses.
    """

    def __init__(self, model: nn.Module, samples: int = 8):
        super().__init__()
        self.model = model
        self.samples = v.integer(samples, "samples", "EOT", low=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([F.log_softmax(self.model(x), dim=1) for _ in range(self.samples)]).mean(0)

    def extra_repr(self) -> str:
        return f"samples={self.samples}"


def _squeezed_numpy(squeezer, X: np.ndarray) -> np.ndarray:
    """A squeezer (a torch module such as :class:`BitDepth`) applied to a NumPy batch, as float32 NumPy."""
    out = squeezer(torch.from_numpy(X))
    out = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    return out.astype(np.float32, copy=False)


def _probabilities(predict_proba, X: np.ndarray, where: str) -> np.ndarray:
    p = np.asarray(predict_proba(X))
    if p.ndim != 2 or len(p) != len(X):
        v.fail(where, f"predict_proba gave an array of shape {p.shape} for {len(X)} inputs",
               "predict_proba must return one row of class probabilities per input, shape (N, n_classes)")
    return p


@torch.no_grad()
def squeeze_score(model, x, squeezers, batch_size: int = 512) -> np.ndarray:
    """Feature-squeezing detection score (Xu et al., 2018), one per image (taught in
    05_adversarial_defenses and 08_monitoring).

    The largest L1 distance, over the squeezers, between the model's class
    probabilities on the image and on its squeezed version: a clean image barely
    changes prediction when squeezed, an adversarial one often does. Values in [0, 2].

    Args:
        model: a classifier returning logits (an ``nn.Module`` in eval mode; its
            softmax is taken, ``batch_size`` images at a time), or a black-box
            ``predict_proba`` callable: a float32 NumPy batch in, an ``(N, n_classes)``
            array of probabilities out (it sees the whole batch and the squeezed
            copy, once per squeezer, as a deployed API would).
        x: images in [0, 1]: ``(N, C, H, W)`` for a model; any batch shape the
            callable takes (e.g. flat rows ``(N, d)``) for a callable.
        squeezers: one squeezer or a list, e.g. ``BitDepth(2)`` or
            ``[BitDepth(2), MedianFilter(2)]``; they get a torch tensor.

    Returns:
        the scores as a NumPy array: float32 for a model, the callable's dtype for a callable.
    """
    where = "squeeze_score"
    squeezers = list(squeezers) if not callable(squeezers) else [squeezers]
    if not squeezers or not all(callable(s) for s in squeezers):
        v.fail(where, f"squeezers = {squeezers!r}", "give one or more squeezers, e.g. [BitDepth(2), MedianFilter(2)]")
    batch_size = v.integer(batch_size, "batch_size", where, low=1)
    if not isinstance(model, nn.Module):
        if not callable(model):
            v.fail(where, f"model is a {type(model).__name__}",
                   "give an nn.Module or a predict_proba callable (NumPy in, probabilities out)")
        X = v.images(x.detach().cpu() if isinstance(x, torch.Tensor) else x, where, ndim=None)
        if len(X) == 0:
            return np.zeros(0, dtype=np.float32)
        p = _probabilities(model, X, where)
        diffs = [np.abs(p - _probabilities(model, _squeezed_numpy(s, X), where)).sum(1) for s in squeezers]
        return diffs[0] if len(diffs) == 1 else np.max(np.stack(diffs), axis=0)
    v.eval_mode(model, where)
    x = v.image_tensor(x, where, device_of(model))
    scores = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        p = F.softmax(model(xb), dim=1)
        diffs = [(p - F.softmax(model(s(xb)), dim=1)).abs().sum(1) for s in squeezers]
        scores.append(torch.stack(diffs).amax(0).cpu())
    return torch.cat(scores).numpy() if scores else np.zeros(0, dtype=np.float32)


def detector_aware_pgd(model: nn.Module, x, y, eps: float, squeezers, weight: float = 1.0, steps: int = 50,
                       alpha: float | None = None, seed: int = 0) -> torch.Tensor:
    """PGD against a model and its feature-squeezing detector together (taught in 05_adversarial_defenses).

    The adaptive attack of Carlini and Wagner (2017), *Adversarial examples are
    not easily detected*: climb ``L(x') = CE(model(x'), y) - weight * s(x')``,
    where ``s`` is the detection score of :func:`squeeze_score` (the largest L1
    change of the softmax over ``squeezers``), so that the model is fooled *and*
    the detector stays quiet. The squeezers are differentiated with BPDA (the
    straight-through estimator of :class:`SqueezedModel`). ``weight = 0`` is
    plain PGD (:func:`utils.attacks.evasion.pgd` with the same ``seed``, ``steps``
    and ``alpha``: the same images). A random start in the ``eps``-ball drawn from
    a generator seeded with ``seed``, ``steps`` signed steps of ``alpha`` (default
    ``2.5 * eps / steps``), each projected into the ball and [0, 1]. The model
    must be in eval mode.

    Returns:
        the adversarial images, a new tensor shaped like ``x``.
    """
    where = "detector_aware_pgd"
    v.eval_mode(model, where)
    eps = v.unit(eps, "eps", where)
    weight = v.real(weight, "weight", where, 0.0)
    steps = v.integer(steps, "steps", where, low=1)
    alpha = min(1.0, 2.5 * eps / steps) if alpha is None else v.unit(alpha, "alpha", where)
    seed = v.seed(seed, where)
    squeezers = list(squeezers) if not callable(squeezers) else [squeezers]
    if not squeezers or not all(callable(s) for s in squeezers):
        v.fail(where, f"squeezers = {squeezers!r}", "give one or more squeezers, e.g. [BitDepth(2)]")
    x = v.image_tensor(x, where, device_of(model))
    y = v.label_tensor(y, where, len(x), x.device)
    x_adv = x.clone()
    if eps > 0:
        gen = torch.Generator(device=x.device).manual_seed(seed)
        noise = torch.rand(x.shape, generator=gen, device=x.device) * 2 * eps - eps
        x_adv = (x + noise).clamp(0, 1)
    lower, upper = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        loss = F.cross_entropy(logits, y)  # the mean, as in evasion.pgd (the same signs as per image)
        if weight > 0:
            p = F.softmax(logits, dim=1)
            score = torch.stack([(p - F.softmax(model(x_adv + (s(x_adv) - x_adv).detach()), dim=1)).abs().sum(1)
                                 for s in squeezers]).amax(0)
            loss = loss - weight * score.mean()
        grad, = torch.autograd.grad(loss, x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), lower), upper)
    return x_adv.detach()


# --------------------------------------------------------------------------- honest evaluation


def input_gradient_norms(model: nn.Module, x, y) -> np.ndarray:
    """The L1 norm of the loss gradient with respect to each input image.

    All zeros (or tiny) while the model still classifies well is the signature
    of gradient masking: a gradient attack has nothing to follow, which says
    nothing about robustness. Taught in 05_adversarial_defenses.
    """
    where = "input_gradient_norms"
    v.eval_mode(model, where)
    x = v.image_tensor(x, where, device_of(model))
    y = v.label_tensor(y, where, len(x), x.device)
    x = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return grad.flatten(1).abs().sum(1).detach().cpu().numpy()


@torch.no_grad()
def correct(model: nn.Module, x, y) -> np.ndarray:
    """A boolean per image: does ``model`` classify it as ``y``? (taught in 05_adversarial_defenses)"""
    v.eval_mode(model, "correct")
    x = v.image_tensor(x, "correct", device_of(model))
    y = v.label_tensor(y, "correct", len(x), x.device)
    return (model(x).argmax(1) == y).cpu().numpy()


def worst_case_accuracy(model: nn.Module, x, y, *x_advs) -> float:
    """Accuracy when each image counts as correct only if every attack failed on it.

    ``x_advs`` are adversarial versions of ``x`` (one per attack, same order);
    the clean ``x`` counts too. This per-image worst case is the number to report
    (taught in 05_adversarial_defenses).
    """
    where = "worst_case_accuracy"
    v.eval_mode(model, where)
    if not x_advs:
        v.fail(where, "no adversarial images given", "give at least one set of adversarial images")
    n = len(x)
    ok = correct(model, x, y)
    for i, xa in enumerate(x_advs):
        if len(xa) != n:
            v.fail(where, f"attack {i} gives {len(xa)} images for {n} inputs", "give one adversarial image per input")
        ok &= correct(model, xa, y)
    return float(ok.mean()) if n else float("nan")


def evaluate(model: nn.Module, x, y, eps: float, pgd_steps: int = 50, square_queries: int = 1000,
             seed: int = 0, crafting_model: nn.Module | None = None) -> dict[str, float]:
    """Clean and robust accuracy under white-box PGD and black-box Square.

    PGD runs ``pgd_steps`` steps of ``2.5 * eps / pgd_steps`` from a random start
    (:func:`utils.attacks.evasion.pgd`); Square makes at most ``square_queries`` queries
    per image (:func:`utils.attacks.evasion.square`). ``crafting_model`` (default
    ``model``) is what PGD differentiates, e.g. a BPDA copy of a squeezed model.

    Returns:
        ``{"clean", "pgd", "square", "worst"}``: accuracies, ``worst`` being
        :func:`worst_case_accuracy` over both attacks.

    Taught in 05_adversarial_defenses.
    """
    where = "evaluate"
    v.eval_mode(model, where)
    eps = v.unit(eps, "eps", where)
    pgd_steps = v.integer(pgd_steps, "pgd_steps", where, low=1)
    square_queries = v.integer(square_queries, "square_queries", where, low=1)
    seed = v.seed(seed, where)
    x = v.image_tensor(x, where, device_of(model))
    y = v.label_tensor(y, where, len(x), x.device)
    crafter = model if crafting_model is None else crafting_model
    v.eval_mode(crafter, where)
    x_pgd = attacks.pgd(crafter, x, y, eps, steps=pgd_steps, random_start=True, seed=seed)
    x_sq = attacks.square(model, x, y, eps, n_queries=square_queries, seed=seed)
    ok_clean, ok_pgd, ok_sq = correct(model, x, y), correct(model, x_pgd, y), correct(model, x_sq, y)
    return {"clean": float(ok_clean.mean()), "pgd": float(ok_pgd.mean()), "square": float(ok_sq.mean()),
            "worst": float((ok_clean & ok_pgd & ok_sq).mean())}


__all__ = ["pgd_hook", "fgsm_rs_hook", "adversarial_training", "METHODS", "BitDepth", "MedianFilter",
           "RandomBitDepth", "SqueezedModel", "EOT", "squeeze_score", "detector_aware_pgd",
           "input_gradient_norms", "correct", "worst_case_accuracy", "evaluate"]
