"""Widget panels shared by lessons (first used in 00_orientation_and_threat_model).

Each panel shows a one-line text result (an ``HTML`` widget with the CSS class
``modelsec-result``) next to its figure, so a reader, and the browser tests,
can see what changed when a control moves.

Figures go into an ``ipywidgets.Image`` (PNG bytes from :func:`figure_png`),
not into an ``Output`` widget: what an ``Output`` widget captures leaks into
the cell's own outputs when a notebook is executed without a browser (nbval),
so the committed outputs would not match. ``interact`` uses ``Output`` too.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np


def figure_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (so it is not shown
    twice): the one renderer of every panel's figure, the same bytes for the same
    figure (no software stamp). Taught in 00_orientation_and_threat_model."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def figure_widget(fig=None):
    """An ``ipywidgets.Image`` showing a figure; update it with ``w.value = figure_png(fig)`` (taught in 00_orientation_and_threat_model)."""
    import ipywidgets as widgets

    return widgets.Image(value=figure_png(fig) if fig is not None else b"", format="png")


def result_label(text: str = ""):
    """The text line a panel updates (an ipywidgets.HTML with class ``modelsec-result``) (taught in 00_orientation_and_threat_model; every panel shows one)."""
    import ipywidgets as widgets

    label = widgets.HTML(value=text)
    label.add_class("modelsec-result")
    return label


def mistake_browser(images: np.ndarray, y_true: Sequence[int], proba: np.ndarray,
                    classes: Sequence[str] | None = None):
    """Browse a classifier's mistakes: pick a true class, step through its errors.

    Shows the image, the class probabilities as bars and a line such as
    ``"mistake 2 of 5 (true 8): predicted 1 with p = 0.62"``.

    Args:
        images: (N, 1, H, W) or (N, H, W) images in [0, 1].
        y_true: the true labels.
        proba: (N, n_classes) predicted probabilities.
    Returns:
        the panel (an ipywidgets VBox) to display.

    Taught in 00_orientation_and_threat_model.
    """
    import ipywidgets as widgets

    from utils import validation as v

    images = np.asarray(images)
    proba = np.asarray(proba)
    v.same_length("mistake_browser", images=images, labels=y_true, probabilities=proba)
    y_true = v.labels(y_true, "mistake_browser", n=len(images), n_classes=proba.shape[1] if proba.ndim == 2 else None)
    n_classes = proba.shape[1]
    names = list(classes) if classes is not None else [str(i) for i in range(n_classes)]
    pred = proba.argmax(1)
    wrong = np.flatnonzero(pred != y_true)
    options = [("all classes", -1)] + [(f"true {names[c]}", c) for c in range(n_classes)
                                       if (y_true[wrong] == c).any()]
    klass = widgets.Dropdown(options=options, value=-1, description="show")
    step = widgets.IntSlider(value=1, min=1, max=max(len(wrong), 1), description="mistake")
    label = result_label()
    picture = figure_widget()

    def selected() -> np.ndarray:
        return wrong if klass.value == -1 else wrong[y_true[wrong] == klass.value]

    def redraw(*_):
        idx = selected()
        step.max = max(len(idx), 1)
        if len(idx) == 0:
            label.value = "no mistakes to show"
            return
        i = idx[min(step.value, len(idx)) - 1]
        label.value = (f"mistake {min(step.value, len(idx))} of {len(idx)} (true {names[y_true[i]]}): "
                       f"predicted {names[pred[i]]} with p = {proba[i, pred[i]]:.2f}")
        fig, (a0, a1) = plt.subplots(1, 2, figsize=(6, 2.4), gridspec_kw={"width_ratios": [1, 2]})
        img = images[i][0] if images[i].ndim == 3 else images[i]
        a0.imshow(img, cmap="gray_r", vmin=0, vmax=1)
        a0.axis("off")
        a0.set_title(f"true {names[y_true[i]]}")
        colors = ["crimson" if c == pred[i] else ("seagreen" if c == y_true[i] else "grey")
                  for c in range(n_classes)]
        a1.bar(range(n_classes), proba[i], color=colors)
        a1.set_xticks(range(n_classes), names)
        a1.set_ylim(0, 1)
        a1.set_ylabel("probability")
        fig.tight_layout()
        picture.value = figure_png(fig)

    klass.observe(lambda change: (setattr(step, "value", 1), redraw()), names="value")
    step.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([klass, step]), label, picture])
