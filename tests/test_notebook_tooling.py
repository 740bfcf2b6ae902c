"""utils.tooling.notebooks (cleaner, lab generator) and utils.tooling.runner (make run)."""
from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from utils.tooling import notebooks, runner


def solution_nb():
    cells = [
        new_markdown_cell("# Lab\n<!-- BEGIN SOLUTION -->\nsolution text\n<!-- END SOLUTION -->\n"
                          "<!-- STUB: Fill in the TODOs. -->"),
        new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
        new_code_cell("def f(x):\n    \"\"\"Double x.\"\"\"\n    # BEGIN SOLUTION\n    y = 2 * x\n    return y\n"
                      "    # END SOLUTION\n    # STUB: return None\n\nprint(f(2))"),
        new_markdown_cell("the answer", metadata={"tags": ["solution"]}),
    ]
    cells[2].outputs = [new_output("stream", name="stdout", text="4\n")]
    cells[2].execution_count = 7
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "P",
                                                              "language": "python"}})


def test_make_lab_replaces_solutions_with_runnable_stubs():
    lab = notebooks.make_lab(solution_nb())
    md, params, code, answer = lab.cells
    assert md.source == "# Lab\nFill in the TODOs."
    assert params.metadata["tags"] == ["parameters"]
    assert code.source == "def f(x):\n    \"\"\"Double x.\"\"\"\n    # TODO: your code here\n    return None\n\nprint(f(2))"
    assert code.outputs == [] and code.execution_count is None
    assert answer.source == "*Write your answer here.*" and "tags" not in answer.metadata
    compile(code.source, "lab", "exec")


@pytest.mark.parametrize("source,message", [
    ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n# END SOLUTION\n", "# END SOLUTION without # BEGIN SOLUTION"),
    ("<!-- END SOLUTION -->\n", "<!-- END SOLUTION --> without <!-- BEGIN SOLUTION -->"),
    ("<!-- BEGIN SOLUTION -->\nx\n", "<!-- BEGIN SOLUTION --> is never closed"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside another"),
])
def test_unbalanced_markers_are_errors(source, message):
    cell = new_markdown_cell(source) if source.startswith("<!--") else new_code_cell(source)
    nb = new_notebook(cells=[cell])
    with pytest.raises(notebooks.LabMarkerError, match=message):
        notebooks.make_lab(nb, name="x.ipynb")


def test_a_solution_without_exercises_is_an_error():
    with pytest.raises(notebooks.LabMarkerError, match="no solution markers"):
        notebooks.make_lab(new_notebook(cells=[new_code_cell("x = 1")]))


def _widget_nb(executed: bool, model_id: str = "m1"):
    nb = solution_nb()
    nb.metadata["widgets"] = {notebooks.WIDGET_STATE: {"state": {"m1": {"model_name": "VBoxModel"}},
                                                       "version_major": 2, "version_minor": 0}}
    if executed:
        nb.cells[2].outputs = [new_output("display_data", data={
            "text/plain": "VBox(...)", notebooks.WIDGET_VIEW: {"model_id": model_id, "version_major": 2}})]
    return nb


def test_clean_keeps_the_widget_state_a_reader_needs_and_only_that():
    kept = notebooks.clean_notebook(_widget_nb(executed=True))
    assert kept.metadata["widgets"][notebooks.WIDGET_STATE]["state"] == {"m1": {"model_name": "VBoxModel"}}
    assert "widgets" not in notebooks.clean_notebook(_widget_nb(executed=False)).metadata  # a lab: no outputs
    assert "widgets" not in notebooks.clean_notebook(_widget_nb(True, model_id="other")).metadata  # stale state


def test_clean_normalizes_counts_and_scrubs_noise():
    nb = solution_nb()
    nb.metadata["widgets"] = {"state": {}}
    nb.metadata["papermill"] = {"duration": 3.2}
    nb.cells[2].metadata["papermill"] = {"duration": 1.0}
    nb.cells[2].metadata["execution"] = {"iopub.status.busy": "2026"}
    nb.cells[2].outputs = [new_output("execute_result", data={"text/plain": "<Foo at 0x7f3a2b>"},
                                      execution_count=12)]
    clean = notebooks.clean_notebook(nb)
    assert set(clean.metadata) == {"kernelspec"}
    assert clean.cells[1].execution_count == 1 and clean.cells[2].execution_count == 2
    assert clean.cells[2].outputs[0]["execution_count"] == 2
    assert clean.cells[2].metadata == {}
    assert clean.cells[2].outputs[0]["data"]["text/plain"] == "<Foo at 0x...>"
    assert notebooks.clean_notebook(clean) == clean  # idempotent


def test_clean_joins_consecutive_stream_chunks():
    nb = solution_nb()
    nb.cells[2].outputs = [new_output("stream", name="stdout", text="a\n"),
                           new_output("stream", name="stdout", text="b\n"),
                           new_output("stream", name="stderr", text="warn\n"),
                           new_output("stream", name="stdout", text="c\n")]
    outs = notebooks.clean_notebook(nb).cells[2].outputs
    assert [(o.name, o.text) for o in outs] == [("stdout", "a\nb\n"), ("stderr", "warn\n"), ("stdout", "c\n")]


def test_clean_paths_check_mode(tmp_path):
    p = tmp_path / "01_x.ipynb"
    nbformat.write(solution_nb(), str(p))
    before = p.read_text()
    assert notebooks.clean_paths([p], check=True) == [p]
    assert p.read_text() == before
    assert notebooks.clean_paths([p]) == [p]
    assert notebooks.clean_paths([p], check=True) == []


def test_runner_parses_papermill_style_values():
    assert runner.parse_value("3") == 3 and runner.parse_value("0.1") == 0.1
    assert runner.parse_value("True") is True and runner.parse_value("None") is None
    assert runner.parse_value("cpu") == "cpu"


def test_runner_executes_records_and_reports(tmp_path, monkeypatch):
    root = tmp_path
    (root / "notebooks").mkdir()
    (root / "solutions").mkdir()
    nb = new_notebook(cells=[
        new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
        new_code_cell("import utils\nutils.setup(seed, plots=False)\n"
                      "from utils.course import report\nreport.record('01_demo', seed_seen=seed)"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, str(root / "notebooks" / "01_demo.ipynb"))
    bad = new_notebook(cells=[new_code_cell("raise ValueError('boom')")], metadata=nb.metadata)
    nbformat.write(bad, str(root / "solutions" / "01_demo_lab.ipynb"))
    monkeypatch.setattr(runner, "ROOT", root)
    monkeypatch.setattr(runner, "BUILD", root / "build")
    code = runner.main(["-p", "seed", "4"])
    assert code == 1  # the failing solution fails the run
    metrics = json.loads((root / "build" / "metrics.json").read_text())
    rows = {r["notebook"]: r for r in metrics["notebooks"]}
    ok, failed = rows["notebooks/01_demo.ipynb"], rows["solutions/01_demo_lab.ipynb"]
    assert ok["status"] == "ok" and ok["metrics"] == {"seed_seen": 4} and ok["peak_rss_mb"] > 0
    assert failed["status"] == "failed" and "boom" in failed["error"]
    assert metrics["parameters"] == {"seed": 4}
    report_md = (root / "build" / "report.md").read_text()
    assert "| notebooks/01_demo.ipynb | ok |" in report_md and "1 of 2 notebooks ran cleanly" in report_md


def _demo_course(root, claim_high: float):
    from utils.course.numerics import NOTEBOOK_KERNELSPEC

    (root / "notebooks").mkdir()
    (root / "solutions").mkdir()
    meta = {"kernelspec": dict(NOTEBOOK_KERNELSPEC)}
    lesson = new_notebook(cells=[
        new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
        new_code_cell("import utils\nutils.setup(seed, plots=False)\nfrom utils.course import report\n"
                      f"report.expect('seed as stated', seed, 0, {claim_high})\n"
                      "report.expect('twice', 1.0, 0, 2)\nreport.expect('twice', 1.5, 0, 2)\n"
                      "report.record('01_demo', seed_seen=seed)"),
    ], metadata=meta)
    nbformat.write(lesson, str(root / "notebooks" / "01_demo.ipynb"))
    sol = new_notebook(cells=[
        new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
        new_code_cell("import utils\nutils.setup(seed, plots=False)\nfrom utils.course import grading, report\n"
                      "grading.check('Exercise 1 (x)', lambda: grading.require(seed < 1, 'seed too big'))\n"
                      "grading.check('Exercise 1 (x)', lambda: grading.require(seed < 1, 'seed too big'))\n"
                      "report.record('01_demo_lab', solved=grading.solved())"),
    ], metadata=meta)
    nbformat.write(sol, str(root / "solutions" / "01_demo_lab.ipynb"))


@pytest.mark.notebooks
def test_seeds_study_reports_every_claim_and_fails_on_a_seed_outside(tmp_path, monkeypatch):
    _demo_course(tmp_path, claim_high=0)  # "seed <= 0": true for seed 0 only
    monkeypatch.setattr(runner, "ROOT", tmp_path)
    monkeypatch.setattr(runner, "BUILD", tmp_path / "build")
    assert runner.main(["--seeds", "0-1", "--jobs", "2"]) == 1
    summary = json.loads((tmp_path / "build" / "seeds.json").read_text())
    claims = {(c["notebook"], c["name"]): c for c in summary["claims"]}
    seed_claim = claims[("notebooks/01_demo.ipynb", "seed as stated")]
    assert seed_claim["values"] == {"0": 0, "1": 1} and seed_claim["outside"] == [1] and not seed_claim["ok"]
    assert (seed_claim["min"], seed_claim["median"], seed_claim["max"]) == (0, 0.5, 1)
    assert claims[("notebooks/01_demo.ipynb", "twice #2")]["values"] == {"0": 1.5, "1": 1.5}
    # the solution's lab check fails for seed 1; re-running the check counts once
    checks = claims[("solutions/01_demo_lab.ipynb", "lab checks passed (of all exercises)")]
    assert checks["values"] == {"0": 1, "1": 0} and checks["outside"] == [1]
    assert summary["failed_runs"] == [] and summary["ok"] is False
    md = (tmp_path / "build" / "seeds.md").read_text()
    assert "| notebooks/01_demo.ipynb | seed as stated | [0, 0] | 0 | 0.5 | 1 | 1 |" in md
    assert "2 of 4 stated numbers hold for every seed." in md


@pytest.mark.notebooks
def test_seeds_study_passes_when_every_claim_holds(tmp_path, monkeypatch):
    _demo_course(tmp_path, claim_high=5)
    (tmp_path / "solutions" / "01_demo_lab.ipynb").unlink()
    monkeypatch.setattr(runner, "ROOT", tmp_path)
    monkeypatch.setattr(runner, "BUILD", tmp_path / "build")
    assert runner.main(["--seeds", "0,3", "--jobs", "1"]) == 0
    md = (tmp_path / "build" / "seeds.md").read_text()
    assert "3 of 3 stated numbers hold for every seed." in md and "| 0 | 1.5 | 3 | - |" in md


def test_seeds_argument_is_checked():
    assert runner.parse_seeds("0-9") == list(range(10)) and runner.parse_seeds("3,0,3") == [0, 3]
    for bad in ("a-b", "", "-1"):
        with pytest.raises(Exception, match="--seeds"):
            runner.parse_seeds(bad)
