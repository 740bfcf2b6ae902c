"""Panels of the defense lessons.

- :func:`threshold_panel` (03_data_defenses): the precision / recall trade-off
  of poison-suspicion scores as the share of flagged examples moves.
- :func:`comparison_panel` (05_adversarial_defenses): the same adversarial
  digit shown to every model.

Both are built from plain functions of :mod:`utils.defenses`, :mod:`utils.metrics`
and :mod:`utils.attacks`; each shows a one-line result (:func:`result_label`)
above a figure rendered by :func:`figure_png`.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from utils import metrics
from utils import validation as v
from utils.models import device_of
from utils.widgets.core import figure_png, figure_widget, result_label


# --------------------------------------------------------------------------- 03_data_defenses


def _named_scores(scores: dict[str, Any], where: str) -> dict[str, np.ndarray]:
    """Named score arrays, all 1-D, finite and of one length."""
    if not scores:
        v.fail(where, "no scores given", "give at least one named score array")
    arrays = {}
    for name, s in scores.items():
        a = np.asarray(s, dtype=np.float64)
        if a.ndim != 1 or len(a) == 0:
            v.fail(where, f"scores {name!r} have shape {a.shape}", "scores must be non-empty 1-D arrays, one per example")
        if not np.isfinite(a).all():
            v.fail(where, f"scores {name!r} contain NaN or infinite values", "scores must be finite numbers")
        arrays[name] = a
    v.same_length(where, **{f"scores {k!r}": a for k, a in arrays.items()})
    return arrays


def _threshold_figure(s: np.ndarray, truth: np.ndarray, flagged: np.ndarray, curve, point) -> bytes:
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(8, 2.8))
    bins = np.linspace(s.min(), s.max(), 40)
    a0.hist(s[~truth], bins=bins, alpha=0.6, label="clean")
    a0.hist(s[truth], bins=bins, alpha=0.6, label="poisoned")
    if flagged.any():
        a0.axvline(s[flagged].min(), color="k", ls="--", lw=1)
    a0.set_yscale("log")
    a0.set_xlabel("suspicion score")
    a0.legend(fontsize=8)
    precision, recall = curve
    a1.plot(recall, precision)
    a1.plot([point.recall], [point.precision], "o", color="crimson")
    a1.set_xlabel("recall")
    a1.set_ylabel("precision")
    a1.set_xlim(0, 1.02)
    a1.set_ylim(0, 1.02)
    fig.tight_layout()
    return figure_png(fig)


def threshold_panel(scores: dict[str, Any], poisoned: Any, *, max_share: float = 0.2, step: float = 0.005,
                    share: float = 0.075):
    """A panel to explore the precision / recall trade-off of suspicion scores
    (taught in 03_data_defenses).

    Choose a detector's scores and the share of the training set to flag (the
    most suspicious first, :func:`utils.defenses.data.flag_top`); a text line
    (:func:`result_label`) reads e.g. ``"spectral signatures: top 7.5% flagged
    (81) → precision 0.62, recall 0.93, FPR 0.030"`` (also printed once, so the
    notebook keeps it as text) and the figure shows the score distributions and
    the precision-recall curve with the current point.

    Args:
        scores: detector name → one suspicion score per training example.
        poisoned: the truth, a boolean mask or the indices of the poisoned examples.
        max_share, step, share: the slider's maximum, step and starting value.
    Returns:
        the panel (an ipywidgets VBox) to display.
    """
    import ipywidgets as widgets
    from sklearn.metrics import precision_recall_curve

    from utils.defenses.data import flag_top

    where = "threshold_panel"
    arrays = _named_scores(scores, where)
    names = list(arrays)
    n = len(arrays[names[0]])
    truth = v.mask(poisoned, n, where)
    max_share = v.real(max_share, "max_share", where, 0.0, 1.0, open_low=True)
    step = v.real(step, "step", where, 0.0, max_share, open_low=True)
    share = v.real(share, "share", where, 0.0, max_share)
    curves = {k: precision_recall_curve(truth, a)[:2] for k, a in arrays.items()}

    pick = widgets.Dropdown(options=names, value=names[0], description="scores")
    slider = widgets.FloatSlider(value=share, min=0.0, max=max_share, step=step, description="flag top",
                                 readout_format=".1%", continuous_update=False)
    label = result_label()
    image = figure_widget()

    def text() -> tuple[str, metrics.DetectionMetrics]:
        m = metrics.detection_metrics(flag_top(arrays[pick.value], slider.value), truth)
        return (f"{pick.value}: top {slider.value:.1%} flagged ({m.flagged}) → precision {m.precision:.2f}, "
                f"recall {m.recall:.2f}, FPR {m.fpr:.3f}"), m

    def redraw(*_):
        line, m = text()
        label.value = line
        s = arrays[pick.value]
        image.value = _threshold_figure(s, truth, flag_top(s, slider.value), curves[pick.value], m)

    pick.observe(redraw, names="value")
    slider.observe(redraw, names="value")
    redraw()
    print(text()[0])
    return widgets.VBox([widgets.HBox([pick, slider]), label, image])


# --------------------------------------------------------------------------- 05_adversarial_defenses


def _comparison_figure(clean: np.ndarray, adv: np.ndarray, eps: float, proba: dict[str, np.ndarray],
                       labels: list[str]) -> bytes:
    names = list(proba)
    fig, axes = plt.subplots(1, 3, figsize=(8.4, 2.4), gridspec_kw={"width_ratios": [1, 1, 2.4]})
    for ax, img, title in ((axes[0], clean, "clean"), (axes[1], adv, f"ε = {eps:.3f}")):
        ax.imshow(img[0], cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    width = 0.8 / len(names)
    for j, n in enumerate(names):
        axes[2].bar(np.arange(len(labels)) + (j - (len(names) - 1) / 2) * width, proba[n], width, label=n)
    axes[2].set_xticks(range(len(labels)), labels)
    axes[2].set_ylim(0, 1)
    axes[2].set_ylabel("probability")
    axes[2].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return figure_png(fig)


def comparison_panel(models: dict, x, y, eps_values, steps: int = 20, seed: int = 0,
                     classes=None):
    """The same adversarial digit shown to every model (taught in 05_adversarial_defenses).

    Controls pick a digit, a budget ``eps`` and the model the white-box PGD
    attack is crafted against; the panel shows the clean and the adversarial
    digit, every model's class probabilities on the adversarial one, and a line
    such as ``"digit 3 (true 5), ε = 0.100, PGD-20 against standard → standard:
    8 (p = 0.97) ✗ · PGD-AT: 5 (p = 0.88) ✓"``. Every adversarial image is
    computed up front (``len(models) × len(eps_values)`` runs of
    :func:`utils.attacks.evasion.pgd` on ``x``), so a change only redraws. The
    panel opens at the middle ``eps`` on the first digit the models disagree on.

    Args:
        models: name → model in eval mode, e.g. ``{"standard": m0, "PGD-AT": m1}``.
        x, y: a few images in [0, 1] and their labels.
        eps_values: the budgets the slider offers, each in [0, 1].
    Returns:
        the panel (an ipywidgets VBox) to display.
    """
    import ipywidgets as widgets
    import torch
    import torch.nn.functional as F

    from utils.attacks import evasion as attacks

    where = "comparison_panel"
    if not models:
        v.fail(where, "no models given", "give at least one model, e.g. {'standard': model}")
    for name, m in models.items():
        v.eval_mode(m, f"{where} ({name})")
    eps_values = [v.unit(e, "eps", where) for e in eps_values]
    if not eps_values:
        v.fail(where, "no eps values given", "give at least one budget")
    steps = v.integer(steps, "steps", where, low=1)
    seed = v.seed(seed, where)
    first = next(iter(models.values()))
    device = device_of(first)
    x = v.image_tensor(x.detach() if isinstance(x, torch.Tensor) else x, where, device)
    y = v.label_tensor(y, where, len(x), x.device)
    if len(x) == 0:
        v.fail(where, "no images given", "give at least one image")
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
        picture.value = _comparison_figure(images[i], adv[c, e][i], e, {n: p[n][i] for n in names}, labels)

    for control in (digit, budget, against):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([digit, budget, against]), label, picture])


__all__ = ["threshold_panel", "comparison_panel"]
