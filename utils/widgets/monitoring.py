"""The drift panel of 08_monitoring: choose a drift and its strength, watch three detectors.

Built on plain functions of :mod:`utils.monitoring` (which never imports
ipywidgets); the figure goes through :func:`utils.widgets.core.figure_png`,
the result line is :func:`utils.widgets.core.result_label`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from utils import monitoring as mon
from utils import validation as v
from utils.widgets.core import figure_png, figure_widget, result_label


def drift_panel(predict_proba: Callable[[np.ndarray], np.ndarray], X_ref: np.ndarray,
                X_pool: np.ndarray, y_pool: np.ndarray, window: int = 200, alpha: float = 0.05,
                n_permutations: int = 100, seed: int = 0, value: tuple[str, float] = ("noise", 0.5)):
    """A drift-kind dropdown and a strength slider showing the three detectors (taught in 08_monitoring).

    Each setting draws the same seeded window of ``window`` requests from the
    pool, drifts it, runs :func:`utils.monitoring.ks_test` on the softmax
    outputs and :func:`utils.monitoring.mmd_test` and :func:`utils.monitoring.c2st`
    on the inputs, and prints one line such as
    ``"noise σ=0.15 → KS p=0.000 ALERT · MMD p=0.005 ALERT · C2ST p=0.000 ALERT"``
    above a figure (example inputs, the predicted-class mix, −log10 p bars).
    Returns the panel (an ipywidgets VBox).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    where = "drift_panel"
    if not callable(predict_proba):
        v.fail(where, f"predict_proba = {predict_proba!r} is not callable",
               "predict_proba must be a function from images to class probabilities")
    kinds = [k for k in mon.DRIFT_KINDS if k != "none"]
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        v.fail(where, f"value = {value!r}", "value must be a pair (drift kind, strength)")
    v.choice(value[0], "value[0] (the drift kind)", where, kinds)
    v.unit(value[1], "value[1] (the strength)", where)
    X_ref = v.images(X_ref, where, name="X_ref", allow_empty=False)
    if len(X_ref) < 2:
        v.fail(where, f"X_ref has {len(X_ref)} image", "X_ref needs at least 2 images")
    X_pool = v.images(X_pool, where, name="X_pool", allow_empty=False)
    y_pool = v.labels(y_pool, where, n=len(X_pool), name="y_pool", what="pool images")
    window = v.integer(window, "window", where, 8, len(X_pool))  # the figure shows 8 of its images
    alpha = v.probability(alpha, "alpha", where)
    n_permutations = v.integer(n_permutations, "n_permutations", where, low=1)
    seed = v.seed(seed, where)
    p_ref = np.asarray(predict_proba(X_ref))
    kind = widgets.Dropdown(options=[(mon.DRIFT_KINDS[k], k) for k in kinds], value=value[0], description="drift")
    strength = widgets.FloatSlider(value=value[1], min=0.0, max=1.0, step=0.05, description="strength",
                                   readout_format=".2f")
    label = result_label()
    picture = figure_widget()

    def redraw(*_):
        level = mon.level_for(kind.value, strength.value)
        X, _ = mon.sample_window(X_pool, y_pool, window, kind.value, level, seed=seed)
        p = np.asarray(predict_proba(X))
        results = [mon.ks_test(p_ref, p, alpha), mon.mmd_test(X_ref, X, n_permutations, alpha, seed=seed),
                   mon.c2st(X_ref, X, alpha, seed=seed)]
        names = ["KS", "MMD", "C2ST"]
        parts = [f"{n} p={r.p_value:.3f}{' ALERT' if r.drift else ''}" for n, r in zip(names, results)]
        label.value = f"{mon.describe_drift(kind.value, level)} → " + " · ".join(parts)
        fig = plt.figure(figsize=(9, 4.2))
        grid = fig.add_gridspec(2, 8, height_ratios=[1, 2.2])
        for i in range(8):
            ax = fig.add_subplot(grid[0, i])
            ax.imshow(X[i, 0], cmap="gray_r", vmin=0, vmax=1)
            ax.axis("off")
        ax1 = fig.add_subplot(grid[1, :4])
        k = p_ref.shape[1]
        mix = pd.DataFrame({"class": np.tile(np.arange(k), 2),
                            "share": np.r_[np.bincount(p_ref.argmax(1), minlength=k) / len(p_ref),
                                           np.bincount(p.argmax(1), minlength=k) / len(p)],
                            "window": ["reference"] * k + ["current"] * k})
        sns.barplot(data=mix, x="class", y="share", hue="window", palette=["grey", "tab:red"], ax=ax1)
        ax1.set(xlabel="predicted class", title="what the model answers")
        ax1.legend(fontsize=8)
        ax2 = fig.add_subplot(grid[1, 5:])
        scores = [-np.log10(max(r.p_value, 1e-4)) for r in results]
        ax2.bar(names, scores, color=["tab:red" if r.drift else "tab:grey" for r in results])
        ax2.axhline(-np.log10(alpha), color="black", ls="--", lw=1)
        ax2.set(ylim=(0, 4.2), ylabel="−log10 p", title="detectors (dashed: threshold)")
        fig.suptitle(mon.describe_drift(kind.value, level))
        picture.value = figure_png(fig)

    kind.observe(redraw, names="value")
    strength.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([kind, strength]), label, picture])
