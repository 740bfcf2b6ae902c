"""The harness of the browser tests (tests/test_ui.py): a private JupyterLab and a few page helpers.

:func:`jupyterlab_server` starts JupyterLab on 127.0.0.1 (a free port, a token,
throwaway settings: autosave off, kernels start unasked, no news) and stops it
with its kernels. The helpers work in a Playwright page the way a learner does
(the URL of a notebook, the Run menu, the cell editor) and let Playwright do the
waiting (``expect``, ``wait_for_function``). Nothing here imports ``utils``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KERNEL = "modelsec"                          # the course kernel; it brings the pinned numerics itself,
PINNED = ("ATEN_CPU_CAPABILITY", "MKL_CBWR")  # so the server runs without them, as for a learner
PASS_MARK = "✅ PASSED"
RUN_ALL_MS = 150_000

LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},  # never write a notebook under test
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
SERVER_ARGS = ["--no-browser", "--ip=127.0.0.1", "--port-retries=0", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True"]

CELLS = ".jp-NotebookPanel .jp-Notebook .jp-Cell"
# the name of the open notebook's kernel once it is connected and idle (the toolbar's indicator says
# "idle" before a kernel exists), read from the app the server exposes (--LabApp.expose_app_in_browser)
_JS_KERNEL_IDLE = """(() => { const k = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
  return k && k.connectionStatus === 'connected' && k.status === 'idle' ? k.name : null; })()"""
# error outputs (tracebacks) and stderr lines naming an exception (a lesson may print one on stdout on
# purpose); utils.setup's warning that the kernel lacks the pinned numerics counts as an error too.
# textContent, not innerText: innerText is empty for the cells JupyterLab leaves unrendered out of view.
_JS_ERRORS = r"""[...document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output')]
  .filter(e => e.textContent.includes('pinned numerics are off') || e.dataset.mimeType === 'application/vnd.jupyter.stderr'
               && /Traceback \(most recent call last\)|(^|\n)[A-Za-z_.]*(Error|Exception): /.test(e.textContent))
  .map(e => e.textContent)"""
_JS_PROMPTS = "codeCells.map(i => document.querySelectorAll(%r)[i]?.querySelector('.jp-InputPrompt')?.textContent.trim())" % CELLS
# the text repr shown when the widget extension is missing, or a widget manager's failure to render
WIDGET_FALLBACK = re.compile(r"\b[A-Z]\w*\((?:children|value|options|description)=|Loading widget\.\.\."
                             r"|Error displaying widget|Failed to load model class")


@dataclass
class Server:
    base: str
    token: str
    log: Path
    root: Path

    def url(self, path: str) -> str:
        return f"{self.base}/{path}{'&' if '?' in path else '?'}token={self.token}"

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def _die_with_parent() -> None:  # Linux: a killed test run leaves no server behind
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def jupyterlab_server(root: Path = ROOT, timeout: float = 90):
    """JupyterLab serving ``root``, ready to answer; on exit its kernels and processes are gone."""
    import psutil

    with tempfile.TemporaryDirectory(prefix="modelsec-ui-") as tmp:
        tmp = Path(tmp)
        for plugin, values in LAB_SETTINGS.items():
            (tmp / "settings" / plugin).parent.mkdir(parents=True, exist_ok=True)
            (tmp / "settings" / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))
        (tmp / "config" / "labconfig").mkdir(parents=True)
        (tmp / "config" / "labconfig" / "page_config.json").write_text('{"buildCheck": false, "buildAvailable": false}')
        (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps(
            {"ServerApp": {"jpserver_extensions": {"jupyter_lsp": False, "jupyter_server_terminals": False}}}))
        env = {k: v for k, v in os.environ.items() if k not in (*PINNED, "MPLBACKEND", "JUPYTER_PATH")}
        env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), IPYTHONDIR=str(tmp / "ipython"),
                   MODELSEC_PROGRESS="0")  # no progress bars in the kernels
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = Server(f"http://127.0.0.1:{port}", secrets.token_hex(24), tmp / "jupyter.log", Path(root).resolve())
        cmd = [sys.executable, "-m", "jupyterlab", *SERVER_ARGS, f"--port={port}",
               f"--IdentityProvider.token={server.token}", f"--ServerApp.root_dir={root}"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        with open(server.log, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    urllib.request.urlopen(server.url("api/status"), timeout=2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"JupyterLab did not start:\n{server.log_tail()}") from None
                    time.sleep(0.25)
            yield server
        finally:
            kernels = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
            proc.terminate()  # JupyterLab shuts its kernels down on SIGTERM
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for p in psutil.wait_procs(kernels, timeout=5)[1]:
                p.kill()


# --------------------------------------------------------------------------- notebooks on disk


def widget_cells(path: Path) -> list[int]:
    """Indices of the code cells tagged ``widget``."""
    nb = nbformat.read(str(path), as_version=4)
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "widget" in c.metadata.get("tags", [])]


@dataclass
class Exercise:
    cell: int        # the exercise cell (the same index in the lab and in its solution)
    code: str        # the solution, as a learner would type it
    check_cell: int  # the cell that checks it
    number: int      # its number in ``labNN.check(number, ...)``


def first_exercise(solution: Path) -> Exercise:
    """The first exercise of a solution notebook and the ``labNN.check(n, ...)`` cell after it."""
    cells = nbformat.read(str(solution), as_version=4).cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and ("# BEGIN SOLUTION" in cell.source or "solution" in cell.metadata.get("tags", [])):
            code = "\n".join(ln for ln in cell.source.splitlines()
                             if not re.match(r"\s*# (BEGIN SOLUTION|END SOLUTION|STUB:)", ln)).strip("\n")
            for j in range(i + 1, len(cells)):
                m = re.search(r"\blab\d\d\.check\(\s*(\d+)", cells[j].source)
                if cells[j].cell_type == "code" and m:
                    return Exercise(i, code, j, int(m.group(1)))
            raise AssertionError(f"{solution.name}: no labNN.check(...) cell after exercise cell {i}")
    raise AssertionError(f"{solution.name}: no exercise cell (# BEGIN SOLUTION)")


# --------------------------------------------------------------------------- in the page


def open_notebook(page, server: Server, path: Path) -> list[int]:
    """Load JupyterLab with ``path`` open (a fresh workspace); wait for its cells and an idle ``modelsec`` kernel.

    Returns the indices of the code cells Run All executes (the non-empty ones).
    """
    rel = path.resolve().relative_to(server.root).as_posix()
    cells = nbformat.read(str(path), as_version=4).cells
    page.goto(server.url(f"lab/workspaces/ui-{secrets.token_hex(4)}/tree/{rel}?reset"), timeout=90_000)
    expect(page.locator(CELLS)).to_have_count(len(cells), timeout=90_000)
    kernel = page.wait_for_function(f"() => {_JS_KERNEL_IDLE}", polling=250, timeout=90_000).json_value()
    assert kernel == KERNEL, f"{rel} runs the kernel {kernel!r}, expected {KERNEL!r}"
    return [i for i, c in enumerate(cells) if c.cell_type == "code" and c.source.strip()]


def run_all(page, code_cells: list[int], timeout_ms: int = RUN_ALL_MS) -> list[str]:
    """Edit > Clear Outputs of All Cells, Run > Run All Cells; wait until every code cell is
    numbered again and the kernel idle, or until an error shows.

    Returns the error outputs on the page (empty: no traceback anywhere).
    """
    menu(page, "Edit", "Clear Outputs of All Cells")  # the committed prompts are numbered too
    expect(page.locator(".jp-OutputArea-output")).to_have_count(0)
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(
        f"""codeCells => ({_JS_ERRORS}).length > 0
                 || ({_JS_PROMPTS}.every(p => /^\\[\\d+\\]:$/.test(p)) && {_JS_KERNEL_IDLE} !== null)""",
        arg=code_cells, polling=500, timeout=timeout_ms)
    return errors(page)


def menu(page, top: str, item: str) -> None:
    page.locator(f'.lm-MenuBar-itemLabel:text-is("{top}")').click()
    page.locator(f'.lm-Menu-itemLabel:text-is("{item}")').click()


def errors(page) -> list[str]:
    return page.evaluate(f"() => {_JS_ERRORS}")


def output_area(page, cell: int):
    return page.locator(CELLS).nth(cell).locator(".jp-Cell-outputArea")


def expect_widget(page, cell: int, timeout_ms: int = 15_000):
    """The cell's output is a live widget view, not its text repr or a widget error; returns the output area."""
    area = output_area(page, cell)
    expect(area.locator(".jupyter-widgets").first, f"cell {cell} shows no widget view").to_be_visible(timeout=timeout_ms)
    expect(area, f"cell {cell} shows a widget as text or an error").not_to_contain_text(WIDGET_FALLBACK, timeout=timeout_ms)
    expect(area.locator(".jupyter-widgets-error-widget, .widget-error")).to_have_count(0)
    return area


def type_into_cell(page, cell: int, code: str) -> None:
    """Replace a cell's source through its editor, as a learner does (select all, type)."""
    page.locator(CELLS).nth(cell).locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(code)
    page.keyboard.press("Escape")


def screenshot(locator, name: str) -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(BUILD / f"{name}.png"))
    return BUILD / f"{name}.png"
