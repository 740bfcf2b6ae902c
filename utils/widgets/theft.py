"""The query-budget panel of 06_model_theft_and_privacy: how far a thief gets with a budget
under each output policy, and what the query-log detector says."""
from __future__ import annotations

import matplotlib.pyplot as plt

from utils import validation as v
from utils.widgets.core import figure_png, result_label


def theft_panel(curves: dict, verdicts: dict, value: tuple[str, int] | None = None):
    """A policy dropdown and a query-budget slider over precomputed extraction curves
    (taught in 06_model_theft_and_privacy).

    Args:
        curves: output policy -> list of ``{"queries", "fidelity", "accuracy"}`` rows (one per budget,
            the same budgets for every policy), as :func:`utils.theft.extraction.budget_curve` returns.
        verdicts: output policy -> the detector's verdict on that thief's queries (a short text).
        value: the (policy, budget) shown first.
    """
    import ipywidgets as widgets

    where = "theft_panel"
    if not isinstance(curves, dict) or not curves:
        v.fail(where, "curves is empty or not a dict", "give {policy: budget_curve rows}")
    budgets = [r["queries"] for r in next(iter(curves.values()))]
    for name, rows in curves.items():
        if [r["queries"] for r in rows] != budgets:
            v.fail(where, f"the budgets of {name!r} differ from the others'", "give every policy the same budgets")
        if name not in verdicts:
            v.fail(where, f"no detector verdict for {name!r}", "give verdicts for every policy")
    first = value or (next(iter(curves)), budgets[-1])
    policy = widgets.Dropdown(options=list(curves), value=first[0], description="policy")
    budget = widgets.SelectionSlider(options=budgets, value=first[1], description="queries")
    label = result_label()
    image = widgets.Image(format="png")

    def redraw(*_):
        rows = curves[policy.value]
        row = rows[budgets.index(budget.value)]
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        for name, rs in curves.items():
            ax.plot([r["queries"] for r in rs], [r["fidelity"] for r in rs], marker="o",
                    alpha=1.0 if name == policy.value else 0.25, label=name)
        ax.plot([row["queries"]], [row["fidelity"]], "k*", markersize=14)
        ax.set(xlabel="queries", ylabel="fidelity (agreement with the victim)", ylim=(0, 1.02),
               title="copy stolen through the API")
        ax.legend(fontsize=8, loc="lower right")
        image.value = figure_png(fig)
        label.value = (f"{policy.value}, {budget.value} queries: the copy agrees with the victim on "
                       f"{row['fidelity']:.1%} of test digits (accuracy {row['accuracy']:.1%}); "
                       f"detector: {verdicts[policy.value]}")

    policy.observe(redraw, names="value")
    budget.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([policy, budget]), label, image])
