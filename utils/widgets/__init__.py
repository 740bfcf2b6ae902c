"""Every widget panel of the course, and the one figure renderer they share.

Panels are built from plain functions of :mod:`utils.attacks`,
:mod:`utils.defenses` and :mod:`utils.monitoring`, which never import
ipywidgets. Each panel names the lesson that shows it:

- :mod:`utils.widgets.core` – ``figure_png`` (the renderer), ``figure_widget``,
  ``result_label`` and the ``mistake_browser`` of 00_orientation_and_threat_model
- :mod:`utils.widgets.attacks` – the attack explorer of 04_adversarial_examples
"""
from __future__ import annotations

from utils.widgets.core import figure_png, figure_widget, mistake_browser, result_label

__all__ = ["figure_png", "figure_widget", "mistake_browser", "result_label"]
