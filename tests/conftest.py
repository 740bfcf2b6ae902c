"""Shared test settings: quiet progress bars and a headless plotting backend.

Kernels started by nbval and nbclient inherit this environment, so executed
notebooks print exactly what their committed outputs show.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ["MODELSEC_PROGRESS"] = "0"
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "notebooks: executes notebooks (slow)")
