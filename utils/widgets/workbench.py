"""The workbench's panel (shown in 10_workbench): pick an attack and ε, see adversarial examples
of *your* model and its accuracy-vs-ε curve.

:func:`workbench_panel` follows the course's widget rules: the figure is an ``ipywidgets.Image``
(:func:`utils.widgets.core.figure_png`), the text a :func:`utils.widgets.core.result_label`; no
``Output`` widget. Curves are computed once per attack and kept.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from utils import validation as v
from utils.attacks import evasion
from utils.widgets.core import figure_png, result_label

#: The attacks the panel offers: name -> fn(model, x, y, eps) (shown in 10_workbench).
PANEL_ATTACKS: dict[str, Callable[..., torch.Tensor]] = {
    "FGSM": evasion.fgsm,
    "PGD (10 steps)": functools.partial(evasion.pgd, steps=10),
    "Square (black-box, 100 queries)": functools.partial(evasion.square, n_queries=100),
}
#: The ε values of the curve.
CURVE_EPS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)


def accuracy_curve(model, x: torch.Tensor, y: torch.Tensor, attack: Callable[..., torch.Tensor],
                   eps_values: Sequence[float] = CURVE_EPS) -> list[float]:
    """Accuracy of ``model`` under ``attack`` at each ε (ε = 0: clean) (shown in 10_workbench)."""
    out = []
    for eps in eps_values:
        x_adv = x if eps == 0 else attack(model, x, y, eps)
        out.append(evasion.robust_accuracy(model, x_adv, y))
    return out


def workbench_figure(x, x_adv, y, pred_adv, eps_values, curve, eps: float, attack: str, n_show: int = 6):
    """Clean and adversarial examples (top and bottom rows) beside the accuracy-vs-ε curve with the
    chosen ε marked. Returns the Figure (shown in 10_workbench)."""
    fig = plt.figure(figsize=(9, 3.2))
    grid = fig.add_gridspec(2, n_show + 3)
    for i in range(n_show):
        for row, img, title in ((0, x[i], f"{int(y[i])}"), (1, x_adv[i], f"→ {int(pred_adv[i])}")):
            ax = fig.add_subplot(grid[row, i])
            ax.imshow(np.asarray(img).reshape(np.asarray(img).shape[-2:]), cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(title, fontsize=9, color="C3" if row == 1 and int(pred_adv[i]) != int(y[i]) else "k")
            ax.axis("off")
    ax = fig.add_subplot(grid[:, n_show + 1:])
    ax.plot(eps_values, curve, marker="o")
    ax.axvline(eps, color="C3", ls="--", lw=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("ε (L∞)")
    ax.set_ylabel("accuracy")
    ax.set_title(attack, fontsize=9)
    return fig


def workbench_panel(model, X, y, *, attacks: dict[str, Callable[..., torch.Tensor]] | None = None,
                    eps: float = 0.1, n: int = 100, eps_values: Sequence[float] = CURVE_EPS, seed: int = 0):
    """A panel on the audited model: an attack menu, an ε slider, six examples before and after the
    attack and the accuracy-vs-ε curve on ``n`` examples (shown in 10_workbench).

    Returns an ``ipywidgets.VBox``; ``panel.controls`` holds the dropdown (``"attack"``) and slider
    (``"eps"``), ``panel.result`` the text line.
    """
    import ipywidgets as widgets

    where = "workbench_panel"
    attacks = dict(PANEL_ATTACKS if attacks is None else attacks)
    if not attacks:
        v.fail(where, "no attacks given", "give at least one attack, name -> fn(model, x, y, eps)")
    eps = v.unit(eps, "eps", where)
    n = v.integer(n, "n", where, low=6)
    X = v.images(X, where, allow_empty=False)
    y = v.labels(y, where, n=len(X))
    idx = np.sort(np.random.default_rng(v.seed(seed, where)).choice(len(X), min(n, len(X)), replace=False))
    x, yt = torch.as_tensor(X[idx]), torch.as_tensor(y[idx])
    eps_values = [v.unit(e, "eps", where) for e in eps_values]
    curves: dict[str, list[float]] = {}

    attack_w = widgets.Dropdown(options=list(attacks), description="attack")
    eps_w = widgets.FloatSlider(value=eps, min=0.0, max=max(eps_values), step=0.01, description="ε",
                                readout_format=".2f", continuous_update=False)
    image = widgets.Image(format="png")
    label = result_label()

    def redraw(*_):
        name, e = attack_w.value, float(eps_w.value)
        fn = attacks[name]
        if name not in curves:
            curves[name] = accuracy_curve(model, x, yt, fn, eps_values)
        x_adv = x if e == 0 else fn(model, x, yt, e)
        with torch.no_grad():
            pred = model(x_adv).argmax(1)
        acc = float((pred == yt).float().mean())
        image.value = figure_png(workbench_figure(x.numpy(), x_adv.detach().numpy(), yt.numpy(), pred.numpy(),
                                                  eps_values, curves[name], e, name))
        label.value = (f"{name} at ε = {e:.2f}: accuracy {acc:.3f} on {len(x)} examples "
                       f"(clean {curves[name][0]:.3f})")

    attack_w.observe(redraw, "value")
    eps_w.observe(redraw, "value")
    redraw()
    panel = widgets.VBox([widgets.HBox([attack_w, eps_w]), image, label])
    panel.controls = {"attack": attack_w, "eps": eps_w}
    panel.result = label
    return panel
