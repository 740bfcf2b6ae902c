"""Where the course lives on disk: the repository root, for build/, .cache/ and the notebooks.

Imports nothing heavy (used by the tooling as well as the library).
"""
from __future__ import annotations

from pathlib import Path

#: The repository's top folder (the one holding ``notebooks/`` and ``utils/``).
ROOT = Path(__file__).resolve().parent.parent
