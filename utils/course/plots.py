"""Figures used across the course (introduced in 00_orientation_and_threat_model).

- :func:`image_grid`: images with their labels and, optionally, predictions
  (wrong ones in red).
- :func:`confusion_matrix`: a seaborn heat map of true vs predicted classes.
- :func:`decision_boundary`: the regions a 2-D classifier assigns to each class.

Each returns the matplotlib Axes (or Figure) so a notebook can add to it; end
the notebook line with ``;`` to keep the text output quiet.
"""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from utils import validation as v


def _as_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    if images.ndim == 4 and images.shape[1] in (1, 3):
        images = images.transpose(0, 2, 3, 1)
        if images.shape[-1] == 1:
            images = images[..., 0]
    if images.ndim not in (3, 4):
        v.fail("image_grid", f"images have shape {images.shape}",
               "images must have shape (N, H, W), (N, 1, H, W) or (N, 3, H, W)")
    return images


def image_grid(images: np.ndarray, labels: Sequence | None = None, preds: Sequence | None = None,
               ncols: int = 8, size: float = 1.1, titles: Sequence[str] | None = None,
               classes: Sequence[str] | None = None, suptitle: str | None = None,
               vmin: float | None = 0.0, vmax: float | None = 1.0, cmap: str = "gray_r"):
    """Show images in a grid with their labels and predictions.

    A title reads ``"7"`` (label only), ``"7→1"`` (label→prediction, red when
    wrong), or whatever ``titles`` gives. Returns the Figure.

    Taught in 00_orientation_and_threat_model.
    """
    images = _as_images(images)
    n = len(images)
    if n == 0:
        v.fail("image_grid", "no images", "give at least one image to show")
    for name, seq in (("labels", labels), ("preds", preds), ("titles", titles)):
        if seq is not None:
            v.same_length("image_grid", images=images, **{name: seq})
    name = (lambda c: str(classes[int(c)])) if classes is not None else (lambda c: str(int(c)))
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * (suptitle is not None)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
        color = "black"
        if titles is not None:
            title = str(titles[i])
        elif labels is not None and preds is not None:
            title = f"{name(labels[i])}→{name(preds[i])}"
            color = "black" if int(labels[i]) == int(preds[i]) else "crimson"
        elif labels is not None:
            title = name(labels[i])
        else:
            title = ""
        ax.set_title(title, fontsize=9, color=color)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str] | None = None,
                     ax=None, normalize: bool = False, title: str | None = None):
    """A seaborn heat map of true (rows) against predicted (columns) classes. Returns the Axes (taught in 00_orientation_and_threat_model)."""
    import seaborn as sns
    from sklearn.metrics import confusion_matrix as cm

    y_true = v.labels(y_true, "confusion_matrix", name="true labels")
    y_pred = v.labels(y_pred, "confusion_matrix", n=len(y_true), name="predictions", what="true labels")
    n = len(classes) if classes is not None else int(max(y_true.max(), y_pred.max())) + 1
    m = cm(y_true, y_pred, labels=list(range(n))).astype(float)
    if normalize:
        m = m / np.maximum(m.sum(1, keepdims=True), 1)
    ax = ax or plt.subplots(figsize=(5, 4.2))[1]
    names = list(classes) if classes is not None else [str(i) for i in range(n)]
    sns.heatmap(m, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues", cbar=False,
                xticklabels=names, yticklabels=names, ax=ax, annot_kws={"fontsize": 8})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return ax


def decision_boundary(predict_proba: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray,
                      ax=None, resolution: int = 200, margin: float = 0.5, title: str | None = None,
                      highlight: np.ndarray | None = None, highlight_label: str = "poisoned"):
    """Colour the plane by the class a 2-D classifier predicts, with the data on top.

    Args:
        predict_proba: maps an (n, 2) array to (n, n_classes) probabilities,
            e.g. ``lambda Z: utils.training.predict_proba(model, Z)``.
        X, y: 2-D points and their labels.
        highlight: optional boolean mask or indices of points to ring (e.g. poisoned ones).
    Returns the Axes.

    Taught in 01_data_poisoning.
    """
    X = v.features(X, "decision_boundary", name="points")
    if X.shape[1] != 2:
        v.fail("decision_boundary", f"points have shape {X.shape}", "points must have shape (n, 2): 2-D points")
    y = v.labels(y, "decision_boundary", n=len(X), what="points")
    ax = ax or plt.subplots(figsize=(5, 4))[1]
    (x0, y0), (x1, y1) = X.min(0) - margin, X.max(0) + margin
    xx, yy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(np.float32)
    proba = np.asarray(predict_proba(grid))
    zz = proba.argmax(1).reshape(xx.shape)
    n_classes = proba.shape[1]
    cmap = plt.get_cmap("coolwarm" if n_classes == 2 else "tab10")
    ax.contourf(xx, yy, zz, levels=np.arange(n_classes + 1) - 0.5, cmap=cmap, alpha=0.25)
    if n_classes == 2:
        ax.contour(xx, yy, proba[:, 1].reshape(xx.shape), levels=[0.5], colors="k", linewidths=1)
    top = max(n_classes - 1, 1)
    for c in np.unique(y):  # one scatter a class, so that the legend names the classes
        ax.scatter(X[y == c, 0], X[y == c, 1], color=cmap(c / top), s=12,
                   edgecolor="k", linewidth=0.3, label=f"class {c}")
    if highlight is not None:
        h = np.asarray(highlight)
        pts = X[h] if h.dtype != bool else X[h.astype(bool)]
        ax.scatter(pts[:, 0], pts[:, 1], s=60, facecolors="none", edgecolors="black", linewidth=1.2,
                   label=highlight_label)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    if title:
        ax.set_title(title)
    return ax
