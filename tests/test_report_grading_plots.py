"""utils.course.report, utils.course.grading, utils.course.plots, utils.widgets and utils.course.threat_model."""
from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from utils import widgets  # noqa: E402
from utils.course import grading, plots, report, threat_model  # noqa: E402
from utils.course.setup import setup  # noqa: E402


def test_record_prints_and_writes_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODELSEC_METRICS_DIR", str(tmp_path))
    report.record("99_demo", accuracy=np.float32(0.912345), n=3, ok=True)
    out = capsys.readouterr().out
    assert "99_demo" in out and "0.9123" in out
    payload = json.loads((tmp_path / "99_demo.json").read_text())
    assert payload["metrics"] == {"accuracy": 0.9123, "n": 3, "ok": True}
    assert payload["peak_rss_mb"] > 10


def test_record_without_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELSEC_METRICS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    report.record("99_demo", a=1)
    assert list(tmp_path.iterdir()) == []


def test_record_rejects_bad_values():
    with pytest.raises(ValueError, match="at least one metric"):
        report.record("x")
    with pytest.raises(ValueError, match="not finite"):
        report.record("x", a=float("nan"))
    with pytest.raises(ValueError, match="record: a metric value has type .*; metric values must be numbers, strings or booleans"):
        report.record("x", a=[1, 2])


def test_expect_fails_in_full_mode_and_notes_in_fast_mode(capsys):
    setup(0, plots=False)
    assert report.expect("accuracy", 0.97, 0.95, 1.0) == 0.97
    with pytest.raises(report.ExpectationError, match=r"0.95 <= accuracy <= 1, got 0.9000"):
        report.expect("accuracy", 0.90, 0.95, 1.0)
    setup(0, fast=True, plots=False)
    report.expect("accuracy", 0.90, 0.95, 1.0)
    assert "note (fast mode)" in capsys.readouterr().out
    setup(0, plots=False)


def test_check_reports_pass_and_reasons(capsys):
    grading.RESULTS.clear()
    assert grading.check("Exercise 1 (a)", lambda: None)
    assert not grading.check("Exercise 2 (b)", lambda: grading.require(False, "value is 3, expected 4"))

    def stub():
        raise NotImplementedError

    assert not grading.check("Exercise 3 (c)", stub)
    assert not grading.check("Exercise 4 (d)", lambda: None + 1)
    assert not grading.check("Exercise 5 (e)", lambda: grading.require_close("x", None, 1.0, 0.1))
    assert not grading.check("Exercise 6 (f)", lambda: grading.require_close("x", 1.5, 1.0, 0.1))
    grading.summary()
    out = capsys.readouterr().out
    assert "✅ PASSED  Exercise 1 (a)" in out
    assert "❌ NOT SOLVED YET  Exercise 2 (b): value is 3, expected 4" in out
    assert "NotImplementedError" in out and "TypeError" in out
    assert "x should be a number" in out and "x = 1.5000, expected 1.0000" in out
    assert "1 of 6 exercises solved" in out
    parsed = grading.parse_results(out)
    assert parsed == [("Exercise 1 (a)", True), ("Exercise 2 (b)", False), ("Exercise 3 (c)", False),
                      ("Exercise 4 (d)", False), ("Exercise 5 (e)", False), ("Exercise 6 (f)", False)]


def test_rerunning_a_check_replaces_its_result(capsys):
    grading.RESULTS.clear()
    grading.check("Exercise 1 (a)", lambda: grading.require(False, "not yet"))
    grading.check("Exercise 2 (b)", lambda: None)
    assert grading.summary() == "1 of 2 exercises solved"
    grading.check("Exercise 1 (a)", lambda: None)  # the learner fixed it and re-ran the cell
    grading.check("Exercise 2 (b)", lambda: None)  # and re-ran a solved one
    assert grading.summary() == "2 of 2 exercises solved" and grading.solved() == 2
    grading.check("Exercise 2 (b)", lambda: grading.require(False, "broken again"))
    assert grading.summary() == "1 of 2 exercises solved"
    assert list(grading.RESULTS) == ["Exercise 1 (a)", "Exercise 2 (b)"]
    assert grading.RESULTS["Exercise 2 (b)"] == (False, "broken again")


def test_image_grid_titles_and_errors():
    imgs = np.random.default_rng(0).random((5, 1, 8, 8))
    fig = plots.image_grid(imgs, [1, 2, 3, 4, 5], [1, 2, 0, 4, 5], ncols=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["1→1", "2→2", "3→0", "4→4", "5→5"]
    assert fig.axes[2].title.get_color() == "crimson"
    plt.close(fig)
    with pytest.raises(ValueError, match="image_grid: lengths differ: images has 5, labels has 2"):
        plots.image_grid(imgs, [1, 2])
    with pytest.raises(ValueError, match="shape"):
        plots.image_grid(np.zeros((3, 2, 2, 2, 2)))


def test_confusion_matrix_counts():
    ax = plots.confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1])
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["1", "1", "0", "2"]
    plt.close("all")
    with pytest.raises(ValueError, match="confusion_matrix: 1 predictions for 2 true labels"):
        plots.confusion_matrix([0, 1], [0])


def test_decision_boundary_draws_and_checks_shapes():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    y = np.array([0, 1, 1])
    calls = []

    def proba(Z):
        calls.append(Z.shape)
        p1 = (Z.sum(1) > 0.5).astype(float)
        return np.c_[1 - p1, p1]

    ax = plots.decision_boundary(proba, X, y, resolution=20, highlight=np.array([True, False, False]))
    assert calls == [(400, 2)] and ax.get_legend() is not None
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1", "poisoned"]
    assert ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")
    with pytest.raises(ValueError, match=r"decision_boundary: points have shape .*; points must have shape \(n, 2\)"):
        plots.decision_boundary(proba, np.zeros((3, 3)), y)


def test_mistake_browser_updates_its_text_line():
    rng = np.random.default_rng(0)
    images = rng.random((6, 1, 8, 8))
    y = np.array([0, 1, 2, 0, 1, 2])
    proba = np.eye(3)[[0, 2, 1, 1, 1, 2]] * 0.7 + 0.1
    panel = widgets.mistake_browser(images, y, proba)
    (klass, step), label, picture = panel.children[0].children, panel.children[1], panel.children[2]
    assert label.value.startswith("mistake 1 of 3 (true 1): predicted 2 with p = 0.80")
    assert picture.value[:4] == b"\x89PNG"
    step.value = 2
    assert label.value.startswith("mistake 2 of 3 (true 2)")
    klass.value = 0
    assert label.value.startswith("mistake 1 of 1 (true 0): predicted 1")
    assert "modelsec-result" in label._dom_classes
    with pytest.raises(ValueError, match="mistake_browser: lengths differ: images has 6, labels has 5"):
        widgets.mistake_browser(images, y[:5], proba)


def test_threat_model_covers_lessons_01_to_11_with_known_ids():
    numbers = [les.number for les in threat_model.CURRICULUM]
    assert numbers == [f"{i:02d}" for i in range(1, 12)]
    for les in threat_model.CURRICULUM:
        assert les.atlas and les.owasp
        assert all(i in threat_model.ATLAS for i in les.atlas)
        assert all(o in threat_model.OWASP_ML_TOP10 for o in les.owasp)
    table = threat_model.table()
    assert table.shape == (11, 4) and "ML02 Data Poisoning Attack" in table.loc["01 data poisoning", "OWASP ML Top 10"]
    with pytest.raises(ValueError, match="threat_model.lesson: number = '12' is not one of the choices; "
                                         "number must be one of '01'"):
        threat_model.lesson("12")
    assert threat_model.lesson("04").number == "04"


def test_every_owasp_entry_is_covered_by_a_lesson_or_said_not_to_be():
    mapped = {o for les in threat_model.CURRICULUM for o in les.owasp}
    assert set(threat_model.OWASP_ML_TOP10) == mapped | set(threat_model.NOT_COVERED)
    assert not mapped & set(threat_model.NOT_COVERED), "an entry cannot be both covered and not covered"
    from pathlib import Path

    lesson00 = (Path(__file__).resolve().parent.parent / "notebooks" / "00_orientation_and_threat_model.ipynb").read_text()
    assert all(o in lesson00 for o in threat_model.NOT_COVERED), "lesson 00 must name what it does not cover"


def test_forbid_makes_every_binding_of_a_helper_refuse_and_restores_it(monkeypatch):
    import types

    from utils import attacks as attacks_package
    from utils.attacks import evasion

    learner = types.ModuleType("learner_notebook")
    learner.fgsm = evasion.fgsm  # as if the learner wrote `from utils.attacks import fgsm`
    monkeypatch.setitem(sys.modules, "learner_notebook", learner)
    original = evasion.fgsm
    with grading.forbid(evasion.fgsm, why="write the step yourself"):
        for call in (evasion.fgsm, attacks_package.fgsm, learner.fgsm):
            with pytest.raises(grading.NotSolved, match="your code calls utils.attacks.evasion.fgsm; write the step"):
                call(None, None, None, 0.1)
        assert evasion.pgd is not None and evasion.pgd.__name__ == "pgd"  # others untouched
    assert evasion.fgsm is original and attacks_package.fgsm is original and learner.fgsm is original


def test_forbid_restores_after_an_error():
    from utils.attacks import evasion

    original = evasion.fgsm
    with pytest.raises(RuntimeError):
        with grading.forbid(evasion.fgsm):
            raise RuntimeError("boom")
    assert evasion.fgsm is original


def test_lab_checks_write_their_results_and_a_rerun_replaces_them(tmp_path, monkeypatch, capsys):
    import json

    from utils.lab_checks import Checker

    monkeypatch.setenv("MODELSEC_LABS_DIR", str(tmp_path))
    monkeypatch.setattr(grading, "_STARTED", set())
    (tmp_path / "97.json").write_text(json.dumps({"lab": "97", "exercises": {"old": {"passed": True}}}))
    check = Checker("lab97", {1: ("one", lambda x: grading.require(x == 1, "x should be 1")),
                              2: ("two", lambda: None)})
    assert not check(1, 0)
    record = json.loads((tmp_path / "97.json").read_text())
    assert list(record["exercises"]) == ["Exercise 1 (one)"]  # a new kernel starts the file afresh
    entry = record["exercises"]["Exercise 1 (one)"]
    assert entry["passed"] is False and entry["reason"] == "x should be 1" and entry["when"][:2] == "20"
    assert check(1, 1) and check(2)
    record = json.loads((tmp_path / "97.json").read_text())
    assert {k: e["passed"] for k, e in record["exercises"].items()} == {"Exercise 1 (one)": True,
                                                                          "Exercise 2 (two)": True}
    assert record["exercises"]["Exercise 1 (one)"]["reason"] == ""
