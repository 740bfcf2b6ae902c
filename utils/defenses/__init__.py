"""Defenses: what the course teaches against the attacks of :mod:`utils.attacks`.

- :mod:`utils.defenses.data` – data validation, poison detectors and retraining
  on cleaned data (taught in 03_data_defenses).
- :mod:`utils.defenses.adversarial` – adversarial training, input
  transformations, detection and honest evaluation (05_adversarial_defenses).
"""
