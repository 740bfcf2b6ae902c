"""Attacks on models: evasion at test time and poisoning at training time.

- :mod:`utils.attacks.evasion` – FGSM, PGD, Square, robustness curves and the
  torchattacks bridge (taught in 04_adversarial_examples); its functions are
  also importable from ``utils.attacks`` itself, so ``attacks.fgsm(...)`` reads well.
- :mod:`utils.attacks.poisoning` – label flipping (01_data_poisoning) and
  backdoors (02_backdoors).
"""
from __future__ import annotations

from utils.attacks.evasion import (
    TARGETED_NAMES,
    TORCHATTACKS_NAMES,
    eval_mode,
    fgsm,
    perturbation_norms,
    pgd,
    project_linf,
    robust_accuracy,
    robustness_curve,
    run_torchattacks,
    square,
)

__all__ = [
    "TARGETED_NAMES", "TORCHATTACKS_NAMES", "eval_mode", "fgsm", "perturbation_norms", "pgd",
    "project_linf", "robust_accuracy", "robustness_curve", "run_torchattacks", "square",
]
