"""Notebook housekeeping: the cleaner, the lab generator and in-place execution.

Run as ``python -m utils.tooling.notebooks COMMAND``:

- ``clean [--check] [PATHS]``: normalize execution counts, scrub run metadata, widget
  state and memory addresses from notebooks (all of notebooks/, labs/ and
  solutions/ by default). With ``--check`` nothing is written and the exit
  code says whether anything would change.
- ``labs [--check]``: write ``labs/NN_x_lab.ipynb`` from ``solutions/NN_x_lab.ipynb``
  (see :func:`make_lab`); ``--check`` fails if a committed lab differs.
- ``execute PATHS``: run notebooks in place (progress bars off) and clean
  them: how committed outputs are refreshed after a lesson changes.

Lab markers, written once in the solution (taught in 00_orientation_and_threat_model):

- In code, the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` are
  replaced by ``# TODO: your code here`` at the same indentation, and a
  comment line ``# STUB: <code>`` becomes ``<code>`` (the runnable placeholder).
- In Markdown, ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` is
  removed and ``<!-- STUB: text -->`` becomes ``text``.
- A cell tagged ``solution`` is replaced by an empty answer cell.
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from utils.course.numerics import KERNEL_NAME, NOTEBOOK_KERNELSPEC
from utils.paths import ROOT

FOLDERS = ("notebooks", "labs", "solutions")
NAME_RE = re.compile(r"^\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb$")
LAB_RE = re.compile(r"^\d\d_[a-z0-9]+(_[a-z0-9]+)*_lab\.ipynb$")
ADDRESS_RE = re.compile(r" at 0x[0-9a-fA-F]+")
KEEP_CELL_METADATA = ("tags",)
KEEP_NB_METADATA = ("kernelspec", "language_info")
#: The saved widget state: kept in an executed notebook, so a reader without a live
#: kernel (GitHub, nbviewer, JupyterLab before running) sees the panels, not ``VBox(...)``.
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

_CODE_BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION\s*$")
_CODE_END = re.compile(r"^\s*# END SOLUTION\s*$")
_CODE_STUB = re.compile(r"^(\s*)# STUB: ?(.*)$")
_MD_BEGIN = re.compile(r"^(\s*)<!-- BEGIN SOLUTION -->\s*$")
_MD_END = re.compile(r"^\s*<!-- END SOLUTION -->\s*$")
_MD_STUB = re.compile(r"^(\s*)<!-- STUB: ?(.*?) ?-->\s*$")


class LabMarkerError(ValueError):
    """Unbalanced or misplaced solution markers in a solution notebook."""


# --------------------------------------------------------------------------- cleaning


def _scrub_text(value):
    if isinstance(value, str):
        return ADDRESS_RE.sub(" at 0x...", value)
    if isinstance(value, list):
        return [_scrub_text(v) for v in value]
    return value


def _merge_streams(outputs: list) -> list:
    """Join consecutive stdout (or stderr) chunks: how a kernel splits them depends on timing."""
    merged: list = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            prev = merged[-1]
            prev["text"] = "".join(prev["text"]) + "".join(out["text"])
        else:
            merged.append(out)
    return merged


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with normalized execution counts, the course kernel
    (:data:`utils.course.numerics.NOTEBOOK_KERNELSPEC`), and no run metadata or addresses. The
    widget state is kept only when the notebook has outputs showing one of its widgets."""
    nb = copy.deepcopy(nb)
    widget_state = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
    nb.metadata = nbformat.NotebookNode({k: nb.metadata[k] for k in KEEP_NB_METADATA if k in nb.metadata})
    # every course notebook runs in the kernel that carries the pinned numerics
    nb.metadata["kernelspec"] = nbformat.NotebookNode(NOTEBOOK_KERNELSPEC)
    if "language_info" in nb.metadata:
        nb.metadata["language_info"] = nbformat.NotebookNode(
            {k: v for k, v in nb.metadata["language_info"].items() if k in ("name", "pygments_lexer")})
    # nbval only compares cells that have an execution count, so an executed
    # notebook gets counts 1, 2, 3, ... in cell order (the same after every run)
    # and a notebook without outputs (a lab) gets none.
    executed = any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    count = 0
    for cell in nb.cells:
        cell.metadata = nbformat.NotebookNode(
            {k: cell.metadata[k] for k in KEEP_CELL_METADATA if cell.metadata.get(k)})
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        count += 1
        cell.execution_count = count if executed else None
        cell.outputs = _merge_streams(cell.get("outputs", []))
        for out in cell.get("outputs", []):
            if "execution_count" in out:
                out["execution_count"] = cell.execution_count
            if "text" in out:
                out["text"] = _scrub_text(out["text"])
            if "data" in out:
                for mime in ("text/plain", "text/html"):
                    if mime in out["data"]:
                        out["data"][mime] = _scrub_text(out["data"][mime])
    shown = {out["data"][WIDGET_VIEW].get("model_id") for c in nb.cells for out in c.get("outputs", [])
             if WIDGET_VIEW in out.get("data", {})}
    if executed and widget_state and shown & set(widget_state.get("state", {})):
        nb.metadata["widgets"] = nbformat.NotebookNode({WIDGET_STATE: widget_state})
    return nb


def _write(nb: nbformat.NotebookNode, path: Path) -> None:
    text = nbformat.writes(nb, version=4) + "\n"
    path.write_text(text, encoding="utf-8")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def all_notebooks(folders=FOLDERS) -> list[Path]:
    """Every committed notebook in the course folders, sorted."""
    return sorted(p for f in folders for p in (ROOT / f).glob("*.ipynb"))


def clean_paths(paths: list[Path], check: bool = False) -> list[Path]:
    """Clean notebooks in place; return those that changed (or would, with ``check``)."""
    changed = []
    for path in paths:
        before = path.read_text(encoding="utf-8")
        after = nbformat.writes(clean_notebook(nbformat.reads(before, as_version=4)), version=4) + "\n"
        if after != before:
            changed.append(path)
            if not check:
                path.write_text(after, encoding="utf-8")
    return changed


# --------------------------------------------------------------------------- labs


@dataclass(frozen=True)
class _Markers:
    """How solution blocks are marked in one kind of cell."""

    begin: re.Pattern
    end: re.Pattern
    stub: re.Pattern
    begin_text: str
    end_text: str
    todo: str | None  # what a solution block becomes in the lab (None: nothing)


_CODE = _Markers(_CODE_BEGIN, _CODE_END, _CODE_STUB, "# BEGIN SOLUTION", "# END SOLUTION", "# TODO: your code here")
_MARKDOWN = _Markers(_MD_BEGIN, _MD_END, _MD_STUB, "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->", None)


def _strip(source: str, where: str, markers: _Markers) -> str:
    """A cell's source with its solution blocks dropped (or turned into a TODO) and its stubs uncovered."""
    out, inside = [], False
    for n, line in enumerate(source.splitlines(), 1):
        m = markers.begin.match(line)
        if m:
            if inside:
                raise LabMarkerError(f"{where}, line {n}: {markers.begin_text} inside another solution block")
            inside = True
            if markers.todo is not None:
                out.append(f"{m.group(1)}{markers.todo}")
            continue
        if markers.end.match(line):
            if not inside:
                raise LabMarkerError(f"{where}, line {n}: {markers.end_text} without {markers.begin_text}")
            inside = False
            continue
        if inside:
            continue
        s = markers.stub.match(line)
        out.append(f"{s.group(1)}{s.group(2)}" if s else line)
    if inside:
        raise LabMarkerError(f"{where}: {markers.begin_text} is never closed by {markers.end_text}")
    return "\n".join(out)


def make_lab(solution: nbformat.NotebookNode, name: str = "solution") -> nbformat.NotebookNode:
    """The lab notebook for a solution notebook: solutions replaced by stubs, outputs cleared."""
    lab = clean_notebook(solution)
    markers = 0
    for i, cell in enumerate(lab.cells):
        where = f"{name}, cell {i}"
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            markers += 1
            cell.metadata["tags"] = [t for t in tags if t != "solution"]
            if not cell.metadata["tags"]:
                del cell.metadata["tags"]
            cell.source = "*Write your answer here.*" if cell.cell_type == "markdown" else "# TODO: your code here"
        elif cell.cell_type == "code":
            if "# BEGIN SOLUTION" in cell.source:
                markers += 1
            cell.source = _strip(cell.source, where, _CODE)
        elif cell.cell_type == "markdown":
            cell.source = _strip(cell.source, where, _MARKDOWN)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    if markers == 0:
        raise LabMarkerError(f"{name}: no solution markers found; a lab needs at least one exercise")
    return lab


def lab_pairs() -> list[tuple[Path, Path]]:
    """(solution, lab) paths for every solution notebook."""
    return [(s, ROOT / "labs" / s.name) for s in sorted((ROOT / "solutions").glob("*.ipynb"))]


def build_labs(check: bool = False) -> list[Path]:
    """Write every lab from its solution; return the labs that changed (or would)."""
    changed = []
    for sol, lab_path in lab_pairs():
        lab = make_lab(_read(sol), name=str(sol.relative_to(ROOT)))
        text = nbformat.writes(lab, version=4) + "\n"
        if not lab_path.exists() or lab_path.read_text(encoding="utf-8") != text:
            changed.append(lab_path)
            if not check:
                lab_path.parent.mkdir(exist_ok=True)
                lab_path.write_text(text, encoding="utf-8")
    return changed


# --------------------------------------------------------------------------- execution


def execute_in_place(path: Path, timeout: int = 600) -> None:
    """Execute a notebook in its folder with progress bars off, then clean and save it."""
    from nbclient import NotebookClient

    os.environ["MODELSEC_PROGRESS"] = "0"
    nb = _read(path)
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    _write(clean_notebook(nb), path)


def _report(changed: list[Path], verb: str, check: bool, fix: str) -> int:
    for p in changed:
        print(f"{verb}: {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}")
    if check and changed:
        print(fix)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.tooling.notebooks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_clean = sub.add_parser("clean", help="scrub notebooks")
    p_clean.add_argument("--check", action="store_true")
    p_clean.add_argument("paths", nargs="*", type=Path)
    p_labs = sub.add_parser("labs", help="generate labs/ from solutions/")
    p_labs.add_argument("--check", action="store_true")
    p_exec = sub.add_parser("execute", help="execute notebooks in place and clean them")
    p_exec.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)

    if args.command == "clean":
        changed = clean_paths([p.resolve() for p in args.paths] or all_notebooks(), check=args.check)
        return _report(changed, "would change" if args.check else "cleaned", args.check,
                       "run `python -m utils.tooling.notebooks clean` (or `make clean-notebooks`) and commit")
    if args.command == "labs":
        return _report(build_labs(check=args.check), "out of sync" if args.check else "wrote", args.check,
                       "labs/ is not in sync with solutions/: run `make labs` and commit")
    for p in args.paths:
        print(f"executing {p} ...", flush=True)
        execute_in_place(p.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
