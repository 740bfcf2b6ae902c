"""Labs: generated from solutions, runnable as stubs, and graded both ways.

- labs/ is exactly what `python -m utils.tooling.notebooks labs` makes from solutions/.
- Each lab runs top to bottom without error and every check says NOT SOLVED YET.
- Each committed solution shows every check PASSED (and nbval re-executes the
  solutions and compares their outputs, so those lines are reproduced in every run).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from utils.course import grading
from utils.tooling import notebooks
from notebook_exec import execute, output_text

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
MIN_EXERCISES = 3


def test_there_are_labs():
    assert SOLUTIONS, "no solutions/*.ipynb found"


def test_labs_in_sync_with_solutions():
    changed = notebooks.build_labs(check=True)
    assert not changed, f"labs out of sync with solutions (run `make labs`): {changed}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_passes_every_check(solution):
    nb = nbformat.read(str(solution), as_version=4)
    results = grading.parse_results(output_text(nb))
    assert len(results) >= MIN_EXERCISES, f"{solution.name}: only {len(results)} checks found"
    failed = [name for name, ok in results if not ok]
    assert not failed, f"{solution.name}: checks not passing in the committed solution: {failed}"


def _lab_runs_and_reports_unsolved(solution: Path) -> None:
    lab = ROOT / "labs" / solution.name
    nb = execute(lab)  # raises CellExecutionError if a stub cell fails
    lab_results = grading.parse_results(output_text(nb))
    sol_results = grading.parse_results(output_text(nbformat.read(str(solution), as_version=4)))
    assert len(lab_results) >= MIN_EXERCISES
    solved = [name for name, ok in lab_results if ok]
    assert not solved, f"{lab.name}: a stub passes its check, so the check cannot fail: {solved}"
    assert [n for n, _ in lab_results] == [n for n, _ in sol_results], \
        "the lab and its solution run different checks"


# One test class per lab, so that pytest-xdist (--dist loadscope) spreads the
# lab executions over its workers instead of running them all in one.
for _sol in SOLUTIONS:
    _name = "TestLab" + "".join(w.title() for w in _sol.stem.split("_"))
    globals()[_name] = pytest.mark.notebooks(type(_name, (), {
        "test_lab_runs_and_reports_unsolved": lambda self, _s=_sol: _lab_runs_and_reports_unsolved(_s),
    }))
