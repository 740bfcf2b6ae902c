"""ModelSec Workbench: the shared package behind the course notebooks.

Import it as ``utils``. Each module covers one concern and each public helper
names the notebook that teaches the idea behind it:

- :mod:`utils.course.setup` – ``setup()``: seeds, determinism, threads, device, plots
- :mod:`utils.course.params` – validation of notebook parameters
- :mod:`utils.data` – the data-set registry, sha256 manifest, optional MNIST
- :mod:`utils.models` – small models for the course data
- :mod:`utils.training` – cached, seeded training and evaluation
- :mod:`utils.course.report` – headline metrics that ``make run`` collects
- :mod:`utils.course.grading` – lab checks
- :mod:`utils.course.plots` – image grids, confusion matrices, decision boundaries
"""
from __future__ import annotations

from utils.course.params import ParameterError, check_parameters

# ``utils.setup`` is loaded on first use, so that tooling (the notebook cleaner,
# the lock-file and numerics commands) runs without importing torch.


def __getattr__(name: str):
    if name == "setup":
        from utils.course.setup import setup

        return setup
    raise AttributeError(f"module 'utils' has no attribute {name!r}")


__all__ = ["setup", "check_parameters", "ParameterError"]
__version__ = "0.1.0"
