"""Executing notebooks from tests (nbclient), and reading their outputs."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from utils.course.numerics import KERNEL_NAME


def execute(path: Path, prepend: str | None = None, timeout: int = 300) -> nbformat.NotebookNode:
    """Execute a notebook in its own folder and return it with outputs (the file is untouched)."""
    nb = nbformat.read(str(path), as_version=4)
    if prepend:
        nb.cells.insert(0, nbformat.v4.new_code_cell(prepend))
    NotebookClient(nb, timeout=timeout, kernel_name=KERNEL_NAME,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def output_text(nb: nbformat.NotebookNode) -> str:
    """All text a notebook printed or displayed, cell after cell."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                parts.append(out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(str(out["data"]["text/plain"]))
            elif out.get("output_type") == "error":
                parts.append(f"{out['ename']}: {out['evalue']}")
    return "\n".join(parts)
