"""Every widget panel of the course, and the one figure renderer they share.

Panels are built from plain functions of :mod:`utils.attacks`,
:mod:`utils.defenses` and :mod:`utils.monitoring`, which never import
ipywidgets. Each panel names the lesson that shows it:

- :mod:`utils.widgets.core` – ``figure_png`` (the renderer), ``figure_widget``,
  ``result_label`` and the ``mistake_browser`` of 00_orientation_and_threat_model
- :mod:`utils.widgets.poisoning` – ``flip_panel`` (01_data_poisoning), ``backdoor_panel`` (02_backdoors)
- :mod:`utils.widgets.defenses` – ``threshold_panel`` (03_data_defenses),
  ``comparison_panel`` (05_adversarial_defenses)
- :mod:`utils.widgets.attacks` – ``attack_explorer`` (04_adversarial_examples)
- :mod:`utils.widgets.monitoring` – ``drift_panel`` (08_monitoring)
- :mod:`utils.widgets.serving` – ``request_panel`` (07_secure_deployment)
- :mod:`utils.widgets.theft` – ``theft_panel`` (06_model_theft_and_privacy)
- :mod:`utils.widgets.governance` – ``risk_panel`` (09_governance_and_audit)
- :mod:`utils.widgets.workbench` – ``workbench_panel`` (10_workbench)

A notebook imports the panel it shows: ``from utils.widgets import flip_panel``.
"""
from __future__ import annotations

from utils.widgets.attacks import attack_explorer
from utils.widgets.core import figure_png, figure_widget, mistake_browser, result_label
from utils.widgets.defenses import comparison_panel, threshold_panel
from utils.widgets.governance import risk_panel
from utils.widgets.monitoring import drift_panel
from utils.widgets.poisoning import backdoor_panel, flip_panel
from utils.widgets.serving import request_panel
from utils.widgets.theft import theft_panel
from utils.widgets.workbench import workbench_panel

__all__ = [
    "attack_explorer", "backdoor_panel", "comparison_panel", "drift_panel", "figure_png", "figure_widget",
    "flip_panel", "mistake_browser", "request_panel", "result_label", "risk_panel", "theft_panel", "threshold_panel",
    "workbench_panel",
]
