"""The risk-register panel of 09_governance_and_audit: the heat map with each control switched
on or off, every likelihood read from a measurement in the audit trail."""
from __future__ import annotations

import matplotlib.pyplot as plt

from utils import validation as v
from utils.widgets.core import figure_png, result_label


def risk_panel(evidence, risks=None, enabled=None):
    """One checkbox per control of the register and the heat maps with no control and with the
    ticked ones (taught in 09_governance_and_audit).

    Args:
        evidence: an :class:`~utils.governance.evidence.Evidence` holding every measurement the
            risks name.
        risks: the register's risks (default ``utils.governance.risk.RISKS``).
        enabled: the controls ticked first (default all).
    """
    import ipywidgets as widgets

    from utils.governance import risk as rk

    risks = tuple(rk.RISKS if risks is None else risks)
    if not risks:
        v.fail("risk_panel", "no risks", "give at least one Risk")
    controls = rk.all_controls(risks)
    on = set(controls if enabled is None else enabled)
    boxes = {c: widgets.Checkbox(value=c in on, description=c, indent=False) for c in controls}
    label = result_label()
    image = widgets.Image(format="png")

    def redraw(*_):
        ticked = [c for c, b in boxes.items() if b.value]
        scores = [rk.score(r, evidence, ticked) for r in risks]
        fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.8))
        rk.heatmap(scores, after=False, ax=axes[0], title="no controls")
        rk.heatmap(scores, after=True, ax=axes[1], title="with the ticked controls")
        axes[1].set_ylabel("")
        fig.tight_layout()
        image.value = figure_png(fig)
        worst = max(scores, key=lambda s: (s.score_after, s.risk.id))
        label.value = (f"total score {sum(s.score_before for s in scores)} → {sum(s.score_after for s in scores)}; "
                       f"highest remaining: {worst.risk.id} {worst.risk.threat} "
                       f"({worst.score_after}, {rk.band(worst.score_after)})")

    for b in boxes.values():
        b.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(list(boxes.values())[:3]), widgets.HBox(list(boxes.values())[3:]),
                         label, image])
