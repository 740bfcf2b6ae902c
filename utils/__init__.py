"""ModelSec Workbench: the shared package behind the course notebooks.

Import it as ``utils``; one subpackage or module a concern (README, "Where things are"):

- :mod:`utils.data`, :mod:`utils.models`, :mod:`utils.training` – data, models, cached training
- :mod:`utils.validation` – every input check; :mod:`utils.metrics` – detection metrics
- :mod:`utils.attacks` – evasion and poisoning; :mod:`utils.defenses` – data and adversarial defenses
- :mod:`utils.monitoring` – drift, traffic and alerts; :mod:`utils.widgets` – every panel
- :mod:`utils.course` – setup, parameters, report, grading, threat model, plots, pinned numerics
- :mod:`utils.lab_checks` – the labs' checks; :mod:`utils.tooling` – cleaner, runner, benchmarks, lock

``utils.setup`` is loaded on first use and nothing heavy is imported here, so
tooling (the notebook cleaner, the lock-file and numerics commands) runs
without importing torch.
"""
from __future__ import annotations

from utils.course.params import ParameterError, check_parameters


def __getattr__(name: str):
    if name == "setup":
        from utils.course.setup import setup

        return setup
    raise AttributeError(f"module 'utils' has no attribute {name!r}")


__all__ = ["setup", "check_parameters", "ParameterError"]
__version__ = "0.1.0"
