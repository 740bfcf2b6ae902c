"""Defenses: what the course teaches against the attacks of :mod:`utils.attacks`.

- :mod:`utils.defenses.data` – data validation, poison detectors and retraining
  on cleaned data (taught in 03_data_defenses).
- :mod:`utils.defenses.adversarial` – adversarial training, input
  transformations, detection and honest evaluation (05_adversarial_defenses).

Their detectors' scores become flags and numbers through :mod:`utils.metrics`
(thresholds at a false-positive rate, precision / recall / FPR, ROC curves);
hidden activations come from :func:`utils.models.hidden_activations`; the
lessons' panels are in :mod:`utils.widgets.defenses`. Arguments are checked
by :mod:`utils.validation`.
"""
