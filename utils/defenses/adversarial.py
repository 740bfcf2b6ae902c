"""Defenses against adversarial examples, and how to evaluate them (taught in 05_adversarial_defenses).

Three families, each with the MITRE ATLAS mitigation it implements:

- **Adversarial training** (AML.M0003 Model Hardening): :func:`pgd_hook` (Madry
  et al., 2018) and :func:`fgsm_rs_hook` (FGSM from a random start, Wong et al.,
  2020) are batch hooks for :func:`utils.training.fit`; :func:`adversarial_training`
  trains through the cache with the right tag.
- **Input sanitization** (AML.M0010 Input Restoration, AML.M0015 Adversarial
  Input Detection): the feature squeezers :class:`BitDepth` and :class:`MedianFilter`
  (Xu et al., 2018), used as a transform (:class:`SqueezedModel`) or as a
  detector (:func:`squeeze_score`, :func:`detection_roc`).
- **Honest evaluation**: :class:`SqueezedModel` with ``bpda=True`` is the
  straight-through gradient of BPDA, :class:`EOT` averages a randomized
  defense (:class:`RandomBitDepth`) over draws (Athalye et al., 2018);
  :func:`evaluate` reports the per-image worst case over PGD and the black-box
  Square attack; :func:`input_gradient_norms` shows masked gradients.

Inputs are images in [0, 1] with shape (N, C, H, W); ``eps`` is an L∞ budget on
that scale. Bad input (``eps`` outside [0, 1], ``steps < 1``, images outside
[0, 1], labels of the wrong shape) raises ``ValueError`` saying what was wrong.
A model in training mode is refused by the evaluation functions (call
``model.eval()``) and *handled* by the batch hooks, which :func:`~utils.training.fit`
calls on a model in training mode: they craft the batch in eval mode and give
the model back in the mode it was in. Inputs are never modified in place.
"""
from __future__ import annotations

import numbers
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.attacks import evasion as attacks
from utils import training

BatchHook = Callable[[nn.Module, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]

#: Adversarial-training methods :func:`adversarial_training` knows.
METHODS = ("pgd", "fgsm_rs")


# --------------------------------------------------------------------------- input checks


def _check_eps(eps, name: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0.0 <= float(eps) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1] (images are in [0, 1]), got {eps!r}")
    return float(eps)


def _check_int(value, name: str, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low \
            or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    return int(value)


def _check_images(x, where: str, device: torch.device | None = None) -> torch.Tensor:
    """A float32 tensor of images in [0, 1] with shape (N, C, H, W), still in the autograd graph.

    Callers never write into it, so the caller's array or tensor is never modified.
    """
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
    t = t.to(dtype=torch.float32, device=device if device is not None else t.device)
    if t.ndim != 4:
        raise ValueError(f"{where}: images must have shape (N, C, H, W), got {tuple(t.shape)}")
    if t.numel():
        lo, hi = (float(v) for v in torch.aminmax(t.detach()))  # one pass; NaN fails the test below
        if not (lo >= 0.0 and hi <= 1.0):
            if not torch.isfinite(t.detach()).all():
                raise ValueError(f"{where}: images contain NaN or infinite values")
            raise ValueError(f"{where}: images must be in [0, 1], got values in [{lo:.3f}, {hi:.3f}]")
    return t


def _check_labels(y, n: int, where: str, device: torch.device | None = None) -> torch.Tensor:
    t = y.detach() if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ValueError(f"{where}: labels must be integer class indices, got dtype {t.dtype}")
    if t.ndim != 1 or len(t) != n:
        raise ValueError(f"{where}: labels must have shape ({n},) to match the {n} images, got {tuple(t.shape)}")
    return t.to(dtype=torch.long, device=device if device is not None else t.device)


def _device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _check_eval(model: nn.Module, where: str) -> None:
    if any(m.training for m in model.modules()):
        raise ValueError(f"{where}: the model is in training mode; call model.eval() first "
                         f"(an evaluation must see the model as it is deployed)")


# --------------------------------------------------------------------------- adversarial training


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)


def pgd_hook(eps: float, steps: int = 10, alpha: float | None = None) -> BatchHook:
    """A batch hook for PGD adversarial training (Madry et al., 2018).

    Each batch is replaced by PGD adversarial examples: a random start in the
    ``eps``-ball, then ``steps`` signed-gradient steps of size ``alpha``
    (default ``2.5 * eps / steps``), each projected back into the ball and [0, 1].
    This is the inner maximization of ``min_θ E[max_{‖δ‖∞ ≤ ε} L(θ, x + δ, y)]``.

    The random start draws from torch's global generator, which
    :func:`utils.training.fit` seeds with ``config.seed``, so training is
    reproducible. The hook crafts in eval mode and restores the model's mode.
    """
    eps = _check_eps(eps)
    steps = _check_int(steps, "steps")
    alpha = _check_eps(2.5 * eps / steps if alpha is None else alpha, "alpha")

    def hook(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor):
        x = _check_images(xb, "pgd_hook")
        y = _check_labels(yb, len(x), "pgd_hook", x.device)
        with attacks.eval_mode(model):
            x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
            for _ in range(steps):
                x_adv.requires_grad_(True)
                grad, = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
                x_adv = _project(x_adv.detach() + alpha * grad.sign(), x, eps)
        return x_adv.detach(), yb

    hook.tag = f"pgd-at eps={eps:g} steps={steps} alpha={alpha:g}"  # type: ignore[attr-defined]
    return hook


def fgsm_rs_hook(eps: float, alpha: float | None = None) -> BatchHook:
    """A batch hook for fast adversarial training: FGSM from a random start (Wong et al., 2020).

    A uniform random start ``δ`` in the ``eps``-ball, one signed-gradient step of
    size ``alpha`` (default ``1.25 * eps``, the paper's choice), then ``δ`` is
    clipped back to the ball. One gradient per batch instead of PGD's ``steps``.
    Seeding, eval mode and the model's mode as in :func:`pgd_hook`.
    """
    eps = _check_eps(eps)
    alpha = _check_eps(1.25 * eps if alpha is None else alpha, "alpha")

    def hook(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor):
        x = _check_images(xb, "fgsm_rs_hook")
        y = _check_labels(yb, len(x), "fgsm_rs_hook", x.device)
        with attacks.eval_mode(model):
            delta = torch.empty_like(x).uniform_(-eps, eps).requires_grad_(True)
            grad, = torch.autograd.grad(F.cross_entropy(model((x + delta).clamp(0, 1)), y), delta)
            delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
        return (x + delta).clamp(0, 1), yb

    hook.tag = f"fgsm-rs eps={eps:g} alpha={alpha:g}"  # type: ignore[attr-defined]
    return hook


def adversarial_training(config: training.TrainConfig, X: np.ndarray, y: np.ndarray,
                         n_classes: int | None = None, method: str = "pgd", eps: float = 0.1,
                         steps: int = 10, alpha: float | None = None, **fit_kwargs) -> nn.Module:
    """Train (or load from the cache) an adversarially trained model.

    Args:
        config: model and optimization settings, as for :func:`utils.training.fit`.
        X, y: clean training images in [0, 1] and labels (never modified).
        method: ``"pgd"`` (:func:`pgd_hook`, ``steps`` steps) or ``"fgsm_rs"``
            (:func:`fgsm_rs_hook`; ``steps`` is not used).
        eps, alpha: the training budget and step size.
        fit_kwargs: passed to :func:`utils.training.fit` (``device``, ``cache``).

    Returns:
        the model in eval mode; ``model.meta["train_seconds"]`` is the training
        time measured when it was trained and ``model.meta["tag"]`` names the hook.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    _check_images(X, "adversarial_training")
    hook = pgd_hook(eps, steps, alpha) if method == "pgd" else fgsm_rs_hook(eps, alpha)
    return training.fit(config, X, y, n_classes, batch_hook=hook, tag=hook.tag, **fit_kwargs)


# --------------------------------------------------------------------------- feature squeezing


class BitDepth(nn.Module):
    """Reduce each pixel to ``bits`` bits: ``2**bits`` evenly spaced levels in [0, 1].

    Rounding has a zero gradient almost everywhere: a model behind it gives a
    gradient attack nothing to follow (see :class:`SqueezedModel`).
    """

    def __init__(self, bits: int):
        super().__init__()
        self.bits = _check_int(bits, "bits", 1, 16)
        self.levels = 2 ** self.bits - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_images(x, "BitDepth")
        return torch.round(x * self.levels) / self.levels

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


class MedianFilter(nn.Module):
    """Replace each pixel by the median of the ``size × size`` window at it (edges replicated).

    For an even ``size`` the window reaches right and down (as in Xu et al.'s
    2×2 filter) and the lower of the two middle values is taken.
    """

    def __init__(self, size: int = 2):
        super().__init__()
        self.size = _check_int(size, "size", 1, 15)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_images(x, "MedianFilter")
        k = self.size
        if k > min(x.shape[-2:]):
            raise ValueError(f"MedianFilter: size {k} is larger than the images ({tuple(x.shape[-2:])})")
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
    """

    def __init__(self, bits: int, spread: float, seed: int = 0):
        super().__init__()
        self.squeeze = BitDepth(bits)
        self.spread = _check_eps(spread, "spread")
        self.seed = _check_int(seed, "seed", 0)
        self.generator = torch.Generator()
        self.reseed()

    def reseed(self, seed: int | None = None) -> "RandomBitDepth":
        """Restart the noise from ``seed`` (default: the seed given at construction)."""
        self.generator.manual_seed(self.seed if seed is None else _check_int(seed, "seed", 0))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_images(x, "RandomBitDepth")
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
    the plain one to *evaluate* them.
    """

    def __init__(self, model: nn.Module, squeezer: Callable[[torch.Tensor], torch.Tensor], bpda: bool = False):
        super().__init__()
        if not callable(squeezer):
            raise ValueError(f"squeezer must be callable (e.g. BitDepth(3)), got {squeezer!r}")
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
    instead of one draw's noise.
    """

    def __init__(self, model: nn.Module, samples: int = 8):
        super().__init__()
        self.model = model
        self.samples = _check_int(samples, "samples")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([F.log_softmax(self.model(x), dim=1) for _ in range(self.samples)]).mean(0)

    def extra_repr(self) -> str:
        return f"samples={self.samples}"


@torch.no_grad()
def squeeze_score(model: nn.Module, x, squeezers, batch_size: int = 512) -> np.ndarray:
    """Feature-squeezing detection score (Xu et al., 2018), one per image.

    The largest L1 distance, over the squeezers, between the model's softmax
    output on the image and on its squeezed version: a clean image barely
    changes prediction when squeezed, an adversarial one often does. Values in [0, 2].
    """
    _check_eval(model, "squeeze_score")
    squeezers = list(squeezers) if not callable(squeezers) else [squeezers]
    if not squeezers or not all(callable(s) for s in squeezers):
        raise ValueError("squeeze_score: give one or more squeezers, e.g. [BitDepth(2), MedianFilter(2)]")
    x = _check_images(x, "squeeze_score", _device(model))
    batch_size = _check_int(batch_size, "batch_size")
    scores = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        p = F.softmax(model(xb), dim=1)
        diffs = [(p - F.softmax(model(s(xb)), dim=1)).abs().sum(1) for s in squeezers]
        scores.append(torch.stack(diffs).amax(0).cpu())
    return torch.cat(scores).numpy() if scores else np.zeros(0, dtype=np.float32)


def detection_roc(scores_clean, scores_adv) -> dict:
    """ROC curve and AUC of a detector that flags high scores as adversarial.

    Returns ``{"fpr", "tpr", "thresholds", "auc"}`` (arrays from
    ``sklearn.metrics.roc_curve`` and the area under the curve).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    clean = np.asarray(scores_clean, dtype=float).ravel()
    adv = np.asarray(scores_adv, dtype=float).ravel()
    if len(clean) == 0 or len(adv) == 0:
        raise ValueError(f"detection_roc needs scores of both kinds, got {len(clean)} clean and {len(adv)} adversarial")
    if not (np.isfinite(clean).all() and np.isfinite(adv).all()):
        raise ValueError("detection_roc: scores contain NaN or infinite values")
    truth = np.r_[np.zeros(len(clean)), np.ones(len(adv))]
    scores = np.r_[clean, adv]
    fpr, tpr, thresholds = roc_curve(truth, scores)
    return {"fpr": fpr, "tpr": tpr, "thresholds": thresholds, "auc": float(roc_auc_score(truth, scores))}


def threshold_at_fpr(scores_clean, fpr: float = 0.05) -> float:
    """The detection threshold that flags at most a fraction ``fpr`` of clean images.

    Set it on held-out clean data (the validation split), never on the attacks.
    """
    clean = np.sort(np.asarray(scores_clean, dtype=float).ravel())
    if len(clean) == 0:
        raise ValueError("threshold_at_fpr: no clean scores")
    fpr = _check_eps(fpr, "fpr")
    allowed = int(np.floor(fpr * len(clean)))  # clean images allowed above the threshold
    return float(clean[len(clean) - 1 - allowed]) if allowed < len(clean) else float(-np.inf)


# --------------------------------------------------------------------------- honest evaluation


def input_gradient_norms(model: nn.Module, x, y) -> np.ndarray:
    """The L1 norm of the loss gradient with respect to each input image.

    All zeros (or tiny) while the model still classifies well is the signature
    of gradient masking: a gradient attack has nothing to follow, which says
    nothing about robustness.
    """
    _check_eval(model, "input_gradient_norms")
    x = _check_images(x, "input_gradient_norms", _device(model))
    y = _check_labels(y, len(x), "input_gradient_norms", x.device)
    x = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return grad.flatten(1).abs().sum(1).detach().cpu().numpy()


@torch.no_grad()
def correct(model: nn.Module, x, y) -> np.ndarray:
    """A boolean per image: does ``model`` classify it as ``y``?"""
    _check_eval(model, "correct")
    x = _check_images(x, "correct", _device(model))
    y = _check_labels(y, len(x), "correct", x.device)
    return (model(x).argmax(1) == y).cpu().numpy()


def worst_case_accuracy(model: nn.Module, x, y, *x_advs) -> float:
    """Accuracy when each image counts as correct only if every attack failed on it.

    ``x_advs`` are adversarial versions of ``x`` (one per attack, same order);
    the clean ``x`` counts too. This per-image worst case is the number to report.
    """
    if not x_advs:
        raise ValueError("worst_case_accuracy: give at least one set of adversarial images")
    n = len(x)
    ok = correct(model, x, y)
    for i, xa in enumerate(x_advs):
        if len(xa) != n:
            raise ValueError(f"worst_case_accuracy: attack {i} gives {len(xa)} images for {n} inputs")
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
    """
    _check_eval(model, "evaluate")
    eps = _check_eps(eps)
    pgd_steps = _check_int(pgd_steps, "pgd_steps")
    square_queries = _check_int(square_queries, "square_queries")
    x = _check_images(x, "evaluate", _device(model))
    y = _check_labels(y, len(x), "evaluate", x.device)
    crafter = model if crafting_model is None else crafting_model
    x_pgd = attacks.pgd(crafter, x, y, eps, steps=pgd_steps, random_start=True, seed=seed)
    x_sq = attacks.square(model, x, y, eps, n_queries=square_queries, seed=seed)
    ok_clean, ok_pgd, ok_sq = correct(model, x, y), correct(model, x_pgd, y), correct(model, x_sq, y)
    return {"clean": float(ok_clean.mean()), "pgd": float(ok_pgd.mean()), "square": float(ok_sq.mean()),
            "worst": float((ok_clean & ok_pgd & ok_sq).mean())}


# --------------------------------------------------------------------------- widget


def comparison_panel(models: dict, x, y, eps_values, steps: int = 20, seed: int = 0,
                     classes=None):
    """Widget of 05_adversarial_defenses: the same adversarial digit shown to every model.

    Controls pick a digit, a budget ``eps`` and the model the white-box PGD
    attack is crafted against; the panel shows the clean and the adversarial
    digit, every model's class probabilities on the adversarial one, and a line
    such as ``"digit 3 (true 5), ε = 0.100, PGD-20 against standard → standard:
    8 (p = 0.97) ✗ · PGD-AT: 5 (p = 0.88) ✓"``. Every adversarial image is
    computed up front (``len(models) × len(eps_values)`` PGD runs on ``x``), so a
    change only redraws. The panel opens at the middle ``eps`` on the first digit
    the models disagree on.

    Args:
        models: name → model in eval mode, e.g. ``{"standard": m0, "PGD-AT": m1}``.
        x, y: a few images in [0, 1] and their labels.
        eps_values: the budgets the slider offers, each in [0, 1].
    Returns:
        the panel (an ipywidgets VBox) to display.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from utils.widgets import figure_png, figure_widget, result_label

    if not models:
        raise ValueError("comparison_panel: give at least one model")
    for name, m in models.items():
        _check_eval(m, f"comparison_panel ({name})")
    eps_values = [_check_eps(e) for e in eps_values]
    if not eps_values:
        raise ValueError("comparison_panel: give at least one eps value")
    steps = _check_int(steps, "steps")
    first = next(iter(models.values()))
    x = _check_images(x, "comparison_panel", _device(first)).detach()
    y = _check_labels(y, len(x), "comparison_panel", x.device)
    if len(x) == 0:
        raise ValueError("comparison_panel: no images")
    names = list(models)
    with torch.no_grad():
        n_classes = int(first(x[:1]).shape[1])
    labels = list(classes) if classes is not None else [str(i) for i in range(n_classes)]
    images = x.cpu().numpy()
    truth = y.cpu().numpy()
    adv, proba = {}, {}
    for crafter in names:
        for e in eps_values:
            xa = attacks.pgd(models[crafter], x, y, e, steps=steps, seed=seed) if e > 0 else x.clone()
            adv[crafter, e] = xa.cpu().numpy()
            with torch.no_grad():
                proba[crafter, e] = {n: F.softmax(m(xa), dim=1).cpu().numpy() for n, m in models.items()}

    start_eps = eps_values[len(eps_values) // 2]
    # start on the first digit the models disagree on (attack crafted on the first model, middle ε)
    preds = np.stack([proba[names[0], start_eps][n].argmax(1) == truth for n in names])
    disagree = np.flatnonzero(preds.any(0) & ~preds.all(0))
    digit = widgets.IntSlider(value=int(disagree[0]) if len(disagree) else 0, min=0, max=len(x) - 1,
                              description="digit")
    budget = widgets.SelectionSlider(options=[(f"{e:.3f}", e) for e in eps_values], value=start_eps,
                                     description="ε")
    against = widgets.Dropdown(options=names, value=names[0], description="crafted on")
    label = result_label()
    picture = figure_widget()

    def redraw(*_):
        i, e, c = digit.value, budget.value, against.value
        p = proba[c, e]
        parts = []
        for n in names:
            k = int(p[n][i].argmax())
            parts.append(f"{n}: {labels[k]} (p = {p[n][i][k]:.2f}) {'✓' if k == truth[i] else '✗'}")
        label.value = (f"digit {i} (true {labels[truth[i]]}), ε = {e:.3f}, PGD-{steps} against {c} → "
                       + " · ".join(parts))
        fig, axes = plt.subplots(1, 3, figsize=(8.4, 2.4), gridspec_kw={"width_ratios": [1, 1, 2.4]})
        for ax, img, title in ((axes[0], images[i], "clean"), (axes[1], adv[c, e][i], f"ε = {e:.3f}")):
            ax.imshow(img[0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        width = 0.8 / len(names)
        for j, n in enumerate(names):
            axes[2].bar(np.arange(len(labels)) + (j - (len(names) - 1) / 2) * width, p[n][i], width, label=n)
        axes[2].set_xticks(range(len(labels)), labels)
        axes[2].set_ylim(0, 1)
        axes[2].set_ylabel("probability")
        axes[2].legend(fontsize=8, loc="upper right")
        fig.tight_layout()
        picture.value = figure_png(fig)

    for control in (digit, budget, against):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([digit, budget, against]), label, picture])


__all__ = ["pgd_hook", "fgsm_rs_hook", "adversarial_training", "METHODS", "BitDepth", "MedianFilter",
           "RandomBitDepth", "SqueezedModel", "EOT", "squeeze_score", "detection_roc", "threshold_at_fpr",
           "input_gradient_norms", "correct", "worst_case_accuracy", "evaluate", "comparison_panel"]
