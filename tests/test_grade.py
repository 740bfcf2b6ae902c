"""``make grade`` (utils.tooling.grade, utils.tooling.sandbox): a class of submissions of lab 00,
built here from the committed lab and solution (no copies of notebooks in the repository),
graded in sandboxes through the Dask engine: the table has each learner's pass count, each
bad submission its reason, and the grader survives them all."""
from __future__ import annotations

import copy
import csv
import json
import os
import resource
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from utils.paths import ROOT
from utils.tooling import grade, sandbox

LAB = "00_orientation_and_threat_model_lab.ipynb"
TIMEOUT = 60  # seconds a submission may run: lab 00 takes about 13 s cold alone, 2-3 times that on a busy machine

pytestmark = pytest.mark.skipif(not sandbox.capabilities()["namespaces"],
                                reason="unshare --net --mount --pid is not available on this machine")


def _cell(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source)


def _insert_after_check(nb, exercise: int, source: str):
    """A copy of ``nb`` with a code cell added right after exercise ``exercise``'s check cell."""
    nb = copy.deepcopy(nb)
    idx = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and f"lab00.check({exercise}," in c.source)
    nb.cells.insert(idx + 1, _cell(source))
    return nb


def build_class(folder: Path, port: int) -> dict[str, dict]:
    """The submissions of a small class, each with what the grader must say about it."""
    lab = nbformat.read(str(ROOT / "labs" / LAB), as_version=4)
    sol = nbformat.read(str(ROOT / "solutions" / LAB), as_version=4)
    for nb in (lab, sol):
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
    assert len(lab.cells) == len(sol.cells)
    half = copy.deepcopy(lab)  # exercises 1 and 3 solved, 2 and 4 left as the lab has them
    for i, c in enumerate(sol.cells):
        if c.cell_type == "code" and ("def my_accuracy" in c.source or "answers = [" in c.source):
            half.cells[i] = copy.deepcopy(c)
    solution_path = ROOT / "solutions" / LAB
    subs = {
        "alice": (sol, {"status": "ok", "passed": 4, "reasons": []}),
        "bob": (half, {"status": "ok", "passed": 2, "reasons": []}),
        "carol": (lab, {"status": "ok", "passed": 0, "reasons": []}),
        "dave": (_insert_after_check(sol, 2, "while True:\n    pass"),
                 {"status": "failed", "passed": 2, "reasons": ["timeout"]}),
        "erin": (_insert_after_check(sol, 4, (
            "import socket\ntry:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'stolen')\n"
            "    print('connected')\nexcept OSError as e:\n    print('no network:', e)")),
                 {"status": "flagged", "passed": 4, "reasons": ["network attempt"]}),
        "frank": (_insert_after_check(lab, 1, (
            "import os, subprocess\n"
            f"print('umount:', subprocess.run(['umount', {str(solution_path.parent)!r}],\n"
            "                                 capture_output=True).returncode)\n"
            "try:\n"
            f"    print(open({str(solution_path)!r}).read()[:100])\n"
            "except OSError as e:\n    print('no solutions:', e)\n"
            "try:\n"
            f"    open({str(ROOT / 'utils' / 'lab_checks' / 'frank_was_here.py')!r}, 'w').write('x')\n"
            "except OSError as e:\n    print('read-only course:', e)")),
                  {"status": "flagged", "passed": 0, "reasons": ["solutions access"]}),
        "grace": (_insert_after_check(sol, 1, "for _ in range(100):\n    print('x' * 2**20)"),
                  {"status": "failed", "passed": 1, "reasons": ["output limit"]}),
        "heidi": (_insert_after_check(sol, 1, "hog = bytearray(3 * 2**30)\nhog[::4096] = b'x' * len(hog[::4096])"),
                  {"status": "failed", "passed": 1, "reasons": ["memory"]}),
    }
    expected = {}
    for learner, (nb, want) in subs.items():
        (folder / learner).mkdir(parents=True)
        nbformat.write(nb, str(folder / learner / LAB))
        expected[learner] = want
    (folder / f"ivan__{LAB}").write_text('{"cells": [ this is not a notebook')  # flat layout, malformed
    expected["ivan"] = {"status": "failed", "passed": 0, "reasons": ["malformed"]}
    (folder / "judy").mkdir()
    (folder / "judy" / "00_lab_answers.txt").write_text("I did it on paper")
    expected["judy"] = {"status": "failed", "passed": 0, "reasons": ["not a notebook"]}
    return expected


@pytest.fixture(scope="module")
def listener():
    """A TCP server on this machine's loopback that records whoever connects."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    seen: list = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, addr = server.accept()
                seen.append(addr)
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield server.getsockname()[1], seen
    stop.set()
    t.join(2)
    server.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, listener):
    port, _ = listener
    folder = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("grade")
    expected = build_class(folder, port)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = grade.main([str(folder), "--out", str(out), "--timeout", str(TIMEOUT), "--memory", "1536",
                       "--output-mb", "5", "--workers", "2"])
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"code": code, "out": out, "expected": expected, "rss": (rss_before, rss_after),
            "table": json.loads((out / "grades.json").read_text())}


def _rows(graded):
    return {r["learner"]: r for r in graded["table"]["rows"]}


def test_the_grader_survives_and_writes_the_table(graded):
    assert graded["code"] == 0
    for name in ("grades.csv", "grades.html", "grades.json"):
        assert (graded["out"] / name).stat().st_size > 0
    before, after = graded["rss"]  # ru_maxrss in KB: the 100 MB print and the 3 GB hog stayed outside
    assert after - before < 200 * 1024
    assert sorted(_rows(graded)) == sorted(graded["expected"])


@pytest.mark.parametrize("learner", ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
                                     "ivan", "judy"])
def test_each_submission_gets_its_pass_count_status_and_reason(graded, learner):
    row, want = _rows(graded)[learner], graded["expected"][learner]
    assert (row["status"], grade.passed(row), row["reasons"]) == (want["status"], want["passed"], want["reasons"]), row


def test_solved_exercises_are_the_right_ones_and_the_checks_reasons_are_kept(graded):
    bob = _rows(graded)["bob"]["exercises"]
    assert [name for name, e in bob.items() if e["passed"]] == ["Exercise 1 (accuracy by hand)",
                                                                "Exercise 3 (name the threat)"]
    assert "logreg is still None" in bob["Exercise 4 (logistic regression)"]["reason"]


def test_no_connection_left_the_sandbox_and_the_attempt_is_named(graded, listener):
    _, seen = listener
    assert seen == []  # the server on the grader's loopback was never reached
    erin = _rows(graded)["erin"]
    assert any(a["event"] == "socket.connect" and str(listener[0]) in a["what"] for a in erin["audit"])
    assert erin["detail"].startswith("tried socket.") and f"('127.0.0.1', {listener[0]})" in erin["detail"]
    executed = nbformat.read(erin["executed"], as_version=4)
    text = "\n".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "no network:" in text and "connected" not in text.replace("no network", "")


def test_the_solutions_are_hidden_not_only_watched(graded):
    frank = _rows(graded)["frank"]
    assert any(a["event"] == "open" and a["what"].endswith(LAB) for a in frank["audit"])
    assert f"tried open {ROOT / 'solutions' / LAB}" in frank["detail"]
    text = "\n".join(o.get("text", "") for c in nbformat.read(frank["executed"], as_version=4).cells
                     for o in c.get("outputs", []))
    assert "no solutions: [Errno 2]" in text and "BEGIN SOLUTION" not in text
    assert "umount: 0" not in text  # the notebook runs unprivileged: it cannot lift the cover
    assert "read-only course: [Errno 13]" in text and not (ROOT / "utils" / "lab_checks" / "frank_was_here.py").exists()


def test_the_looping_and_the_loud_submission_are_stopped_in_time_and_size(graded):
    rows = _rows(graded)
    assert rows["dave"]["detail"] == "a cell ran past the time limit"  # papermill's limit, before the kill
    assert rows["dave"]["seconds"] < TIMEOUT + sandbox.STARTUP_GRACE
    assert os.path.getsize(rows["grace"]["executed"]) < 7 * 2**20  # 100 MB printed, at most the cap kept


def test_the_csv_and_the_html_page_carry_every_row(graded):
    with open(graded["out"] / "grades.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by = {r["learner"]: r for r in rows}
    assert by["alice"]["passed"] == "4" and by["alice"]["total"] == "4"
    assert by["bob"]["00: Exercise 1 (accuracy by hand)"] == "1"
    assert by["bob"]["00: Exercise 2 (most confused pair)"] == "0"
    assert by["dave"]["reasons"] == "timeout" and by["dave"]["00: Exercise 4 (logistic regression)"] == ""
    page = (graded["out"] / "grades.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 1 and not any(tag in page for tag in ("<script", "<link", "src=", "href="))
    lab00 = [w for learner, w in graded["expected"].items() if learner != "judy"]  # judy's file is no lab
    assert f">{sum(w['passed'] >= 1 for w in lab00) / len(lab00):.0%}<" in page  # exercise 1's pass rate
    for learner in graded["expected"]:
        assert f"<td>{learner}</td>" in page


def test_discover_reads_both_layouts_and_refuses_odd_names(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / LAB).write_text("{}")
    (tmp_path / f"ben__{LAB}").write_text("{}")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "99_unknown_lab.ipynb").write_text("{}")
    (tmp_path / "d d").mkdir()
    (tmp_path / "d d" / LAB).write_text("{}")
    (tmp_path / "ann" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "ann" / ".ipynb_checkpoints" / LAB).write_text("{}")
    subs = {s.learner: s for s in grade.discover(tmp_path)}
    assert sorted(subs) == ["ann", "ben", "cat", "d d"]
    assert subs["ann"].lab == LAB and not subs["ann"].problem
    assert subs["ben"].lab == LAB and not subs["ben"].problem
    assert "not the file name of a lab" in subs["cat"].problem
    assert "learner's name" in subs["d d"].problem


def test_bad_options_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path), "--timeout", "0"])
    assert "--timeout > 0" in capsys.readouterr().err
