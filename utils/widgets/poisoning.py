"""Panels of 01_data_poisoning (:func:`flip_panel`) and 02_backdoors (:func:`backdoor_panel`).

Both look up results computed beforehand (models trained by the lesson), so
moving a control only redraws: a figure rendered by
:func:`utils.widgets.core.figure_png` and a one-line text result
(:func:`utils.widgets.core.result_label`). The attacks themselves are in
:mod:`utils.attacks.poisoning`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from utils import validation as v
from utils.attacks.poisoning import apply_trigger
from utils.widgets.core import figure_png, result_label


def _missing(results: dict, keys: list, where: str) -> None:
    missing = [k for k in keys if k not in results]
    if missing:
        v.fail(where, f"no precomputed result for {missing[:3]}",
               "results must hold an entry for every value the controls offer")


def flip_panel(results: dict, X: np.ndarray, strategies: dict[str, str], rates: Sequence[float],
               value: tuple[str, float] | None = None):
    """A poison-rate slider and an attack dropdown over precomputed label-flipping results
    (taught in 01_data_poisoning).

    Args:
        results: ``{(strategy, rate): {"model", "y", "flipped", "accuracy"}}`` for every
            strategy and rate offered: the model (in eval mode) trained on labels ``y``
            whose ``flipped`` indices were changed, and its test accuracy.
        X: the 2-D training points the models were trained on.
        strategies: ``{strategy: label shown in the dropdown}``.
        rates: the slider's values, each in [0, 1].
        value: the (strategy, rate) shown first.
    Returns:
        the panel (an ipywidgets VBox); every update only looks results up and redraws.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from utils.course.plots import decision_boundary
    from utils.training import predict_proba

    where = "flip_panel"
    if not strategies:
        v.fail(where, "no strategies given", "give at least one strategy to show")
    rates = [round(v.unit(r, "rate", where), 4) for r in rates]
    if not rates:
        v.fail(where, "no rates given", "give at least one poison rate")
    _missing(results, [(s, r) for s in strategies for r in rates], where)
    for s in strategies:
        for r in rates:
            v.eval_mode(results[(s, r)]["model"], where)
    first_s, first_r = value or (next(iter(strategies)), rates[len(rates) // 2])
    first_s = v.choice(first_s, "the first strategy", where, list(strategies))
    first_r = v.choice(round(v.unit(first_r, "the first rate", where), 4), "the first rate", where, rates)
    attack = widgets.Dropdown(options=[(label, s) for s, label in strategies.items()], value=first_s,
                              description="attack")
    rate = widgets.SelectionSlider(options=[(f"{r:.2f}", r) for r in rates], value=first_r,
                                   description="poison rate")
    label = result_label()
    image = widgets.Image(format="png")

    def redraw(*_):
        s, r = attack.value, rate.value
        res = results[(s, r)]
        label.value = (f"{strategies[s]}, poison rate {r:.2f} → test accuracy {res['accuracy']:.3f} "
                       f"({len(res['flipped'])} of {len(res['y'])} labels flipped)")
        fig, ax = plt.subplots(figsize=(4.8, 3.6))
        decision_boundary(lambda Z: predict_proba(res["model"], Z), X, res["y"], ax=ax, resolution=120,
                          highlight=res["flipped"] if len(res["flipped"]) else None, highlight_label="flipped",
                          title=f"{strategies[s]}, rate {r:.2f}")
        fig.tight_layout()
        image.value = figure_png(fig)

    attack.observe(redraw, names="value")
    rate.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([attack, rate]), label, image])


def backdoor_panel(results: dict, X_test: np.ndarray, y_test: np.ndarray, target: int,
                   sizes: Sequence[int], positions: Sequence[str], value: tuple[int, str] | None = None,
                   n_examples: int = 8):
    """A trigger-size slider and a position dropdown over precomputed backdoored models
    (taught in 02_backdoors).

    Args:
        results: ``{(size, position): {"model", "trigger", "asr", "clean_accuracy"}}``,
            each model in eval mode.
        X_test, y_test: test images in [0, 1] and labels; the panel shows the first
            ``n_examples`` test digits not of class ``target``, triggered, with the model's answers.
        sizes, positions: the slider's and the dropdown's values.
    Returns:
        the panel (an ipywidgets VBox); every update only looks results up and redraws.
    """
    import ipywidgets as widgets

    from utils.course.plots import image_grid
    from utils.training import predict

    where = "backdoor_panel"
    X_test = v.images(X_test, where)
    y_test = v.labels(y_test, where, n=len(X_test), what="images")
    target = v.integer(target, "target", where, low=0)
    n_examples = v.integer(n_examples, "n_examples", where, low=1)
    sizes, positions = list(sizes), list(positions)
    if not sizes or not positions:
        v.fail(where, "no sizes or no positions given", "give at least one trigger size and one position")
    _missing(results, [(s, p) for s in sizes for p in positions], where)
    for s in sizes:
        for p in positions:
            v.eval_mode(results[(s, p)]["model"], where)
    first_s, first_p = value or (sizes[0], positions[0])
    first_s = v.choice(first_s, "the first size", where, sizes)
    first_p = v.choice(first_p, "the first position", where, positions)
    size = widgets.SelectionSlider(options=[(f"{s}×{s}", s) for s in sizes], value=first_s,
                                   description="trigger size")
    place = widgets.Dropdown(options=positions, value=first_p, description="position")
    label = result_label()
    image = widgets.Image(format="png")
    keep = np.flatnonzero(y_test != target)[:n_examples]

    def redraw(*_):
        res = results[(size.value, place.value)]
        t = res["trigger"]
        label.value = (f"{t.size}×{t.size} trigger at {place.value} (row {t.row}, col {t.col}) → "
                       f"attack success rate {res['asr']:.3f}, clean accuracy {res['clean_accuracy']:.3f}")
        Xt = apply_trigger(X_test[keep], t)
        fig = image_grid(Xt, y_test[keep], predict(res["model"], Xt), ncols=n_examples,
                         suptitle=f"triggered test digits: true→predicted (target {target})")
        image.value = figure_png(fig)

    size.observe(redraw, names="value")
    place.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([size, place]), label, image])


__all__ = ["flip_panel", "backdoor_panel"]
