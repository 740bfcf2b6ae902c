"""The course in a real browser: JupyterLab and the widgets, end to end.

One JupyterLab server (127.0.0.1, a free port, a token) and one headless
Debian Chromium driven by Playwright, with JupyterLab loaded once in a page,
serve every test of this file (per pytest-xdist worker):

- every lesson in notebooks/ with a code cell tagged ``widget``: open it, Run
  All from the menu, check each widget renders as a widget (not its plain-text
  fallback) with no error anywhere in the notebook, move each control (slider:
  arrow key on the handle; dropdown: the next option; toggle buttons: another
  option; a plain button only when there is nothing else), check that the
  result the widget prints changes and that moving the control back brings
  the first result back. Screenshots: build/ui/<notebook>_before.png, _after.png.
- the lab workflow: open the first lab (00 when present), type the solution of
  its first exercise into the exercise cell through the editor, Run All, see
  that exercise's check print "✅ PASSED", close the lab answering "Discard",
  and find the lab file on disk untouched.

Needs /usr/bin/chromium (Debian packages chromium, chromium-driver). Without it
the tests are skipped, except under CI (env CI set), where they fail.
Run them alone with ``make test-ui`` (two workers, each with its own server
and browser) or ``pytest -m ui tests/test_ui.py``.
"""
from __future__ import annotations

import contextlib
import os

import pytest

import ui_support as ui
from utils import grading

ROOT = ui.ROOT
WIDGET_NOTEBOOKS = ui.widget_notebooks(ROOT / "notebooks")
# controls whose every move must change the printed result; a plain button is
# only tried when a widget has none of these
VALUE_CONTROLS = ("slider", "dropdown", "toggle buttons")

pytestmark = [pytest.mark.ui, pytest.mark.notebooks]
if not ui.CHROMIUM.exists() and not os.environ.get("CI"):
    pytestmark.append(pytest.mark.skip(
        reason=f"{ui.CHROMIUM} not found: install the Debian packages chromium and chromium-driver "
               "(`make test-ui` does); under CI these tests run and fail instead"))


@pytest.fixture(scope="module")
def server():
    """JupyterLab for this module; started at once, stopped with its kernels at the end."""
    with ui.sigterm_as_interrupt(), ui.JupyterServer(ROOT) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(server):
    with ui.launch_chromium() as b:  # launches while the server is still starting
        yield b


@pytest.fixture(scope="module")
def jupyterlab(browser, server):
    """JupyterLab loaded in one page for all the tests of this module."""
    context = browser.new_context(viewport=ui.VIEWPORT)
    app = ui.JupyterLab(context, server)
    try:
        yield app
    finally:
        app.close()
        context.close()


@pytest.fixture
def lab(jupyterlab, server):
    """JupyterLab, ready; afterwards its notebooks are closed unsaved and their kernels shut down."""
    jupyterlab.ensure_loaded()
    try:
        yield jupyterlab
    finally:
        jupyterlab.close_notebooks()
        with contextlib.suppress(Exception):
            server.shutdown_sessions()


@contextlib.contextmanager
def evidence(lab, name: str):
    """On failure: a screenshot build/ui/<name>_failure.png, the page errors and the server log."""
    ui.BUILD.mkdir(parents=True, exist_ok=True)
    shot = ui.BUILD / f"{name}_failure.png"
    shot.unlink(missing_ok=True)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            lab.page.screenshot(path=str(shot))
            print(f"screenshot of the failure: {shot.relative_to(ROOT)}")
        if lab.page_errors:
            print("errors in the page:\n" + "\n".join(lab.page_errors[-5:]))
        print("JupyterLab server log (end):\n" + lab.server.log_tail())
        raise


@pytest.mark.parametrize("notebook", WIDGET_NOTEBOOKS, ids=[p.stem for p in WIDGET_NOTEBOOKS])
def test_widget_updates_its_result(notebook, lab):
    with evidence(lab, notebook.stem):
        nbp = lab.open(notebook)
        seconds = nbp.run_all()
        print(f"{notebook.name}: Run All took {seconds:.1f} s")
        for n, cell in enumerate(ui.widget_cells(notebook)):
            name = notebook.stem if n == 0 else f"{notebook.stem}_cell{cell}"
            nbp.assert_widget_rendered(cell)
            before = nbp.result_text(cell)
            assert before, f"{notebook.name}, cell {cell}: the widget shows no text result"
            nbp.output_area(cell).screenshot(path=str(ui.BUILD / f"{name}_before.png"))

            controls = nbp.controls(cell)
            assert controls, f"{notebook.name}, cell {cell}: no slider, dropdown or button found in the widget"
            to_move = [c for c in controls if c.kind in VALUE_CONTROLS] or controls[:1]
            for k, control in enumerate(to_move):
                what = control.describe()
                after = nbp.interact(cell, control, expect=lambda text: text != before)
                assert after != before, \
                    f"{notebook.name}: moving the {what} did not change the widget's result: {before!r}"
                print(f"{what}: {before!r} -> {after!r}")
                if k == 0:
                    nbp.output_area(cell).screenshot(path=str(ui.BUILD / f"{name}_after.png"))
                if control.restorable:
                    back = nbp.interact(cell, control, expect=lambda text: text == before, back=True)
                    assert back == before, (f"{notebook.name}: moving the {what} back did not bring the first "
                                            f"result back: {before!r} then {back!r}")
            nbp.assert_widget_rendered(cell)
        errors = nbp.errors()
        assert not errors, f"{notebook.name}: an error appeared while using the widget:\n{errors[0][-3000:]}"


def test_lab_exercise_passes_when_solved_in_the_editor(lab):
    pair = ui.first_lab(ROOT)
    if pair is None:
        pytest.skip("no lab with a solution in labs/ yet")
    lab_path, solution = pair
    exercise = ui.first_exercise(solution)
    digest = ui.sha256(lab_path)
    try:
        with evidence(lab, lab_path.stem):
            nbp = lab.open(lab_path)
            nbp.set_cell_source(exercise.cell, exercise.code)
            assert nbp.model_source(exercise.cell) == exercise.code, "the editor does not hold the typed solution"
            nbp.run_all()
            check_output = nbp.output_text(exercise.check_cell)
            assert f"{grading.PASS_MARK}  {exercise.check_name}" in check_output, (
                f"{lab_path.name}: with the solution typed in, the check of {exercise.check_name!r} says: "
                f"{check_output!r}")
            results = grading.parse_results("\n".join(nbp.output_text(i) for i in range(nbp.n_cells)))
            assert results and results[0] == (exercise.check_name, True), \
                f"{lab_path.name}: the first check the lab prints is not the passing {exercise.check_name!r}: {results}"
            print(f"{lab_path.name} checks after solving the first exercise: {results}")
            nbp.cell(exercise.cell).scroll_into_view_if_needed()
            lab.page.screenshot(path=str(ui.BUILD / f"{lab_path.stem}_solved.png"))
    finally:
        lab.close_notebooks()  # File > Close Tab, "Discard": the edit is never saved
    assert ui.sha256(lab_path) == digest, f"{lab_path.name} changed on disk during the browser test"
