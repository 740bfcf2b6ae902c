"""Figures and the widget of 04_adversarial_examples (taught there).

- :func:`fgsm_equation`: the picture ``x + ε·sign(∇) = x_adv`` with the predictions.
- :func:`show_adversarial`: an image, its perturbation, the adversarial image
  and the class probabilities before and after, side by side.
- :func:`attack_explorer`: an ε slider, an attack and a digit to choose; the
  adversarial digit, its perturbation and the probabilities update, with a
  one-line text result (class ``modelsec-result``).
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from utils import validation as v
from utils.attacks import evasion as attacks
from utils.widgets.core import figure_png, result_label

AttackFn = Callable[..., torch.Tensor]  # (model, x, y, eps) -> x_adv

#: The attacks the explorer offers by default (each runs on one digit in well under a second);
#: shown in 04_adversarial_examples.
EXPLORER_ATTACKS: dict[str, AttackFn] = {
    "FGSM": attacks.fgsm,
    "PGD (20 steps)": functools.partial(attacks.pgd, steps=20),
    "C&W (L2, clipped to ε)": functools.partial(attacks.run_torchattacks, "CW", c=1.0, lr=0.1, steps=100),
    "Square (black-box, 300 queries)": functools.partial(attacks.square, n_queries=300),
}


def _image(a) -> np.ndarray:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return a.reshape(a.shape[-2:]) if a.ndim >= 2 else a


def fgsm_equation(x, grad_sign, x_adv, pred: int, p: float, pred_adv: int, p_adv: float, eps: float):
    """``x + ε · sign(∇ₓ loss) = x_adv`` as three images with the model's answers. Returns the Figure
    (taught in 04_adversarial_examples)."""
    eps = v.unit(eps, "eps", "fgsm_equation")
    fig, axes = plt.subplots(1, 5, figsize=(8, 2.7), gridspec_kw={"width_ratios": [1, 0.4, 1, 0.25, 1]})
    panels = [(_image(x), "gray_r", (0, 1), f"x: predicted {int(pred)} (p = {p:.2f})"),
              (_image(grad_sign), "RdBu_r", (-1, 1), "sign(∇ₓ loss)"),
              (_image(x_adv), "gray_r", (0, 1), f"x_adv: predicted {int(pred_adv)} (p = {p_adv:.2f})")]
    for ax, (img, cmap, (lo, hi), title) in zip(axes[::2], panels):
        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
    for ax, sign in zip(axes[1::2], (f"+ {eps:g} ×", "=")):
        ax.text(0.5, 0.5, sign, ha="center", va="center", fontsize=13, transform=ax.transAxes)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def show_adversarial(x, x_adv, p_clean: np.ndarray, p_adv: np.ndarray, label: int,
                     classes: Sequence[str] | None = None, title: str | None = None,
                     delta_range: float | None = None, axes=None):
    """An image, its perturbation, the adversarial image and both probability vectors
    (taught in 04_adversarial_examples).

    Args:
        x, x_adv: one image each, (1, H, W) or (H, W), in [0, 1].
        p_clean, p_adv: the model's class probabilities for each.
        label: the true class.
        delta_range: the perturbation's colour scale runs from -delta_range to +delta_range
            (default: the largest pixel change, so the scale fits the perturbation shown).
        axes: four Axes to draw on (default: a new figure).
    Returns the Figure.
    """
    where = "show_adversarial"
    p_clean, p_adv = np.asarray(p_clean), np.asarray(p_adv)
    if p_clean.ndim != 1 or p_clean.shape != p_adv.shape:
        v.fail(where, f"p_clean has shape {p_clean.shape} and p_adv {p_adv.shape}",
               "give one probability vector (n_classes,) for each image")
    if delta_range is None:
        change = np.abs(np.asarray(x_adv.detach().cpu() if hasattr(x_adv, "detach") else x_adv, dtype=float)
                        - np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=float))
        delta_range = max(float(change.max()) if change.size else 0.0, 1e-3)
    delta_range = v.real(delta_range, "delta_range", where, 0.0, open_low=True)
    n = len(p_clean)
    names = list(classes) if classes is not None else [str(i) for i in range(n)]
    if axes is None:
        fig, axes = plt.subplots(1, 4, figsize=(10, 2.6), gridspec_kw={"width_ratios": [1, 1, 1, 2.2]})
    else:
        fig = axes[0].figure
    img, adv = _image(x), _image(x_adv)
    a0, a1, a2, a3 = axes
    a0.imshow(img, cmap="gray_r", vmin=0, vmax=1)
    a0.set_title(f"clean: {names[int(p_clean.argmax())]} ({p_clean.max():.2f})", fontsize=9)
    im = a1.imshow(adv - img, cmap="RdBu_r", vmin=-delta_range, vmax=delta_range)
    a1.set_title(f"perturbation (L∞ {np.abs(adv - img).max():.2f})", fontsize=9)
    fig.colorbar(im, ax=a1, fraction=0.046, pad=0.04)
    a2.imshow(adv, cmap="gray_r", vmin=0, vmax=1)
    pred = int(p_adv.argmax())
    a2.set_title(f"adversarial: {names[pred]} ({p_adv.max():.2f})", fontsize=9,
                 color="crimson" if pred != int(label) else "black")
    for ax in (a0, a1, a2):
        ax.axis("off")
    pos = np.arange(n)
    a3.bar(pos - 0.2, p_clean, width=0.4, label="clean", color="tab:blue")
    a3.bar(pos + 0.2, p_adv, width=0.4, label="adversarial", color="crimson")
    a3.set_xticks(pos, names)
    a3.set_ylim(0, 1)
    a3.set_ylabel("probability")
    a3.set_xlabel(f"class (true {names[int(label)]})")
    a3.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def explain(model, x, y: int, x_adv, name: str, eps: float) -> str:
    """The explorer's text line, e.g. ``"PGD at ε = 0.10: true 8 → predicted 1 (p = 0.93); ..."``
    (taught in 04_adversarial_examples)."""
    from utils.training import predict_proba

    v.eval_mode(model, "explain")
    eps = v.unit(eps, "eps", "explain")
    p = predict_proba(model, torch.as_tensor(x_adv).reshape(1, *np.shape(x)))[0]
    norms = attacks.perturbation_norms(torch.as_tensor(x)[None], torch.as_tensor(x_adv).reshape(1, *np.shape(x)))
    verdict = "fooled" if int(p.argmax()) != int(y) else "not fooled"
    return (f"{name} at ε = {eps:.2f}: true {int(y)} → predicted {int(p.argmax())} (p = {p.max():.2f}), "
            f"{verdict}; L∞ = {norms['linf'][0]:.2f}, L2 = {norms['l2'][0]:.2f}")


def attack_explorer(model, images, labels, attack_fns: dict[str, AttackFn] | None = None,
                    eps: float = 0.1, eps_max: float = 0.3, eps_step: float = 0.01,
                    classes: Sequence[str] | None = None):
    """Widget: pick an attack, ε and a digit; see the adversarial digit, its perturbation and the probabilities
    (taught in 04_adversarial_examples).

    Args:
        model: the classifier to attack (eval mode).
        images, labels: the digits to choose from (a few; one attack runs per change).
        attack_fns: name -> ``fn(model, x, y, eps)`` (default :data:`EXPLORER_ATTACKS`).
        eps, eps_max, eps_step: the slider's start, end and step (L∞, inputs in [0, 1]).
    Returns the panel (an ipywidgets VBox).
    """
    import ipywidgets as widgets

    from utils.training import predict_proba

    where = "attack_explorer"
    v.eval_mode(model, where)
    attack_fns = dict(EXPLORER_ATTACKS if attack_fns is None else attack_fns)
    if not attack_fns:
        v.fail(where, "no attacks given", "give at least one attack in attack_fns")
    eps_max = v.unit(eps_max, "eps_max", where)
    eps = v.unit(eps, "eps", where)
    eps_step = v.real(eps_step, "eps_step", where, 0.0, open_low=True)
    images = torch.as_tensor(v.images(images, where, ndim=None, allow_empty=False))
    labels = v.labels(labels, where, n=len(images), what="images")
    attack = widgets.Dropdown(options=list(attack_fns), description="attack")
    slider = widgets.FloatSlider(value=eps, min=0.0, max=eps_max, step=eps_step, description="ε",
                                 readout_format=".2f", continuous_update=False)
    digit = widgets.Dropdown(options=[(f"#{i}: a {int(c)}", i) for i, c in enumerate(labels)], value=0,
                             description="digit")
    label = result_label()
    # The figure is rendered to a PNG inside an Image widget (not shown through an Output
    # widget), so executing the cell prints nothing besides the panel, with or without a browser.
    picture = widgets.Image(format="png")
    p_all = predict_proba(model, images)

    def redraw(*_):
        i, e, name = digit.value, float(slider.value), attack.value
        x, y = images[i:i + 1], torch.as_tensor(labels[i:i + 1])
        x_adv = x.clone() if e == 0 else attack_fns[name](model, x, y, e).cpu()
        label.value = explain(model, x[0], int(labels[i]), x_adv[0], name, e)
        p_adv = predict_proba(model, x_adv)[0]
        picture.value = figure_png(show_adversarial(x[0], x_adv[0], p_all[i], p_adv, int(labels[i]), classes,
                                                       delta_range=max(eps_max, 1e-3)))

    for w in (attack, slider, digit):
        w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([attack, digit]), slider, label, picture])


__all__ = ["fgsm_equation", "show_adversarial", "explain", "attack_explorer", "EXPLORER_ATTACKS"]
