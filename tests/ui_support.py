"""Browser end-to-end support: a private JupyterLab server driven by Chromium.

Used by ``tests/test_ui.py``. Everything here is generic: it finds the widget
cells (code cells tagged ``widget``) and the lab exercises by reading the
notebooks, then works through the JupyterLab interface the way a learner does
(menus, the cell editor, the widget controls), and waits on the kernel's state
(the server's ``/api/kernels`` and the notebook's kernel indicator) rather than
sleeping.

- :class:`JupyterServer`: JupyterLab on 127.0.0.1, a free port, a random token,
  isolated settings (autosave off, no news, kernels start unasked), stopped
  with its whole process tree even when a test fails.
- :func:`launch_chromium`: Debian's Chromium (``/usr/bin/chromium``) through
  Playwright, headless; Playwright never downloads a browser here.
- :class:`JupyterLab`: JupyterLab loaded once in a page; notebooks opened
  with File > Open from Path… and closed with File > Close Tab, "Discard".
- :class:`NotebookPage`: Run All, wait for the kernel, read outputs, move
  widgets (:class:`Slider`, :class:`Dropdown`, ...), edit a cell.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat

from utils.numerics import KERNEL_NAME, PINNED_ENV

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    # without these Chromium keeps calling home, which floods an offline network
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}

#: Seconds allowed for the server to answer, a notebook's Run All, one widget update.
SERVER_TIMEOUT = 90
RUN_ALL_TIMEOUT = 150
UPDATE_TIMEOUT = 30

# JupyterLab settings for the test server (the learner's own settings are never read).
LAB_SETTINGS = {
    # start the notebook's kernel without asking, even without kernelspec metadata
    # (the default windowing mode, contentVisibility, keeps every cell in the page)
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    # never write the notebooks under test
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # no news or update pop-ups (and no network)
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
PAGE_CONFIG = {"buildCheck": False, "buildAvailable": False}
SERVER_CONFIG = {
    "ServerApp": {"jpserver_extensions": {"jupyter_lsp": False, "jupyter_server_terminals": False}},
}


# --------------------------------------------------------------------------- notebooks


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def widget_cells(path: Path) -> list[int]:
    """Indices (among all cells) of the code cells tagged ``widget``."""
    nb = nbformat.read(str(path), as_version=4)
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "widget" in _tags(c)]


def widget_notebooks(folder: Path) -> list[Path]:
    """The notebooks in ``folder`` that have at least one widget cell, sorted."""
    return [p for p in sorted(folder.glob("*.ipynb")) if widget_cells(p)]


def code_cells_to_run(path: Path) -> list[int]:
    """Indices of the code cells Run All executes (JupyterLab skips empty ones)."""
    nb = nbformat.read(str(path), as_version=4)
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]


_BEGIN = re.compile(r"^\s*# BEGIN SOLUTION\s*$")
_END = re.compile(r"^\s*# END SOLUTION\s*$")
_STUB = re.compile(r"^\s*# STUB:")


@dataclass
class Exercise:
    cell: int           # index of the exercise cell (same in the lab and its solution)
    code: str           # the solution cell with its markers and stub lines removed
    check_cell: int     # index of the first check after it
    check_name: str     # the exercise name its check prints


def solution_code(source: str) -> str:
    """A solution cell as a learner would type it: markers and stub lines dropped."""
    lines = [ln for ln in source.splitlines()
             if not (_BEGIN.match(ln) or _END.match(ln) or _STUB.match(ln))]
    return "\n".join(lines).strip("\n")


def first_exercise(solution: Path) -> Exercise:
    """The first exercise of a solution notebook and the check that grades it."""
    nb = nbformat.read(str(solution), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if "# BEGIN SOLUTION" in cell.source or "solution" in _tags(cell):
            for j in range(i + 1, len(nb.cells)):
                later = nb.cells[j]
                m = re.search(r"""\b(lab\d\d)\.check\(\s*(\d+)""", later.source)
                if later.cell_type == "code" and m:  # a utils.lab_checks call: its title is in the module
                    import importlib

                    checker = importlib.import_module(f"utils.lab_checks.{m.group(1)}").check
                    n = int(m.group(2))
                    return Exercise(i, solution_code(cell.source), j, f"Exercise {n} ({checker.exercises[n][0]})")
            raise AssertionError(f"{solution.name}: no labNN.check(...) cell after exercise cell {i}")
    raise AssertionError(f"{solution.name}: no exercise cell (# BEGIN SOLUTION) found")


def first_lab(root: Path, prefer: str = "00_") -> tuple[Path, Path] | None:
    """(lab, solution) for the lab named ``prefer*`` or else the first lab with a solution."""
    pairs = [(lab, root / "solutions" / lab.name) for lab in sorted((root / "labs").glob("*.ipynb"))]
    pairs = [(lab, sol) for lab, sol in pairs if sol.exists()]
    preferred = [p for p in pairs if p[0].name.startswith(prefer)]
    return (preferred or pairs or [None])[0]


def _sanitizers() -> list[tuple[re.Pattern, str]]:
    """The regex/replace pairs of tests/sanitize.cfg (what truly varies, e.g. timings)."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tests" / "sanitize.cfg", encoding="utf-8")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()
            if "regex" in cfg[s] and "replace" in cfg[s]]


SANITIZERS = _sanitizers()


def sanitize(text: str) -> str:
    """A widget's result text with the parts nbval also ignores (timings, addresses) normalized."""
    for pattern, replacement in SANITIZERS:
        text = pattern.sub(replacement, text)
    return text


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    """JupyterLab on 127.0.0.1 with a token, serving ``root``; use as a context manager.

    The server runs in its own process group with its own settings, data and
    runtime folders (a temporary directory), so neither the learner's
    JupyterLab settings nor their kernels are touched; the notebooks run in the
    course kernel ``modelsec`` of the venv, which brings the pinned numerics itself.
    """

    def __init__(self, root: Path = ROOT, python: str = sys.executable):
        self.root = Path(root)
        self.python = python
        self.token = secrets.token_hex(24)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix="modelsec-ui-"))
        self.log_path = self.tmp / "jupyter.log"
        self._ready = False
        self._shutdowns: list[threading.Thread] = []

    # -- lifecycle
    def _prepare_dirs(self) -> dict:
        dirs = {name: self.tmp / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        for plugin, values in LAB_SETTINGS.items():
            f = dirs["settings"] / f"{plugin}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        (dirs["config"] / "labconfig").mkdir(exist_ok=True)
        (dirs["config"] / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
        env = dict(os.environ)
        env.update(
            MODELSEC_PROGRESS="0",  # kernels inherit it: no progress bars
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
            JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
            IPYTHONDIR=str(dirs["ipython"]),
            PYTHONUNBUFFERED="1",
        )
        # a learner's kernel draws figures inline; MPLBACKEND=Agg (set for nbval) would hide them
        env.pop("MPLBACKEND", None)
        env.pop("JUPYTER_PATH", None)
        # the server runs without the pinned numerics: the notebooks' kernel (its
        # kernel spec, installed by make) must bring them itself, as for a learner
        for name in PINNED_ENV:
            env.pop(name, None)
        return env

    def start(self) -> "JupyterServer":
        """Start the server (returns at once; :meth:`wait_ready` waits for it)."""
        env = self._prepare_dirs()
        self.port = free_port()
        cmd = [
            self.python, "-m", "jupyterlab",
            "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--LabApp.expose_app_in_browser=True",  # read-only checks of the cell model
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI containers run as root
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        return self

    def wait_ready(self, timeout: float = SERVER_TIMEOUT) -> None:
        if self._ready:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("api/status", timeout=2)
                self._ready = True
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise TimeoutError(f"JupyterLab did not answer /api/status within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Shut the kernels down, then end the server's whole process tree."""
        if self.proc is None:
            return
        try:
            for thread in self._shutdowns:
                thread.join(timeout=20)
            if self._ready and self.proc.poll() is None:
                with contextlib.suppress(Exception):
                    for kernel in self.api("api/kernels", timeout=3):
                        self.api(f"api/kernels/{kernel['id']}", method="DELETE", timeout=5)
            _kill_tree(self.proc)
        finally:
            self.proc = None
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "JupyterServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- HTTP API
    def url(self, path: str, **query) -> str:
        query["token"] = self.token
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?{urllib.parse.urlencode(query)}"

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def kernel_of(self, relpath: str) -> dict | None:
        """The kernel model (id, name, execution_state, last_activity) of a notebook's session."""
        for s in self.api("api/sessions"):
            if s.get("path") == relpath and s.get("kernel"):
                return s["kernel"]
        return None

    def shutdown_sessions(self) -> None:
        """End every session and its kernel, called after each test.

        The server takes a second or two to stop a kernel; that happens in a
        background thread while the next test starts (:meth:`stop` waits for it).
        """
        sessions = self.api("api/sessions")

        def delete():
            for s in sessions:
                with contextlib.suppress(Exception):
                    self.api(f"api/sessions/{s['id']}", method="DELETE", timeout=20)

        thread = threading.Thread(target=delete, daemon=True)
        thread.start()
        self._shutdowns.append(thread)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


def _die_with_parent() -> None:
    """In the server's process, before exec: be killed when the test process dies (Linux).

    So a test run that is killed outright (CI timeout, SIGKILL) leaves no
    server behind; its kernels notice their parent is gone and exit too
    (ipykernel watches JPY_PARENT_PID).
    """
    with contextlib.suppress(Exception):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While active, SIGTERM stops the test run like Ctrl-C, so fixtures tear down (main thread only)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave the signal alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _kill_tree(proc: subprocess.Popen, grace: float = 8) -> None:
    """SIGTERM the process group (the server shuts its kernels down), then SIGKILL what is left."""
    try:
        import psutil
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # psutil missing or the process already gone
        descendants = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # kernels run in sessions of their own: make sure none outlives the server
    for p in descendants:
        with contextlib.suppress(Exception):
            p.wait(timeout=0.5 if p.is_running() else 0)
        with contextlib.suppress(Exception):
            if p.is_running():
                p.kill()
                p.wait(timeout=5)


# --------------------------------------------------------------------------- browser


@contextlib.contextmanager
def launch_chromium():
    """Headless Debian Chromium through Playwright; closed (with Playwright) on exit."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install the Debian packages chromium and chromium-driver "
                           "(`apt-get install chromium chromium-driver`; `make test-ui` does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            with contextlib.suppress(Exception):
                browser.close()


# JavaScript run in the page (each takes the cell index where it says so).
_JS_CELLS = "() => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')"
_JS_STATE = """(codeCells) => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')];
  const prompts = codeCells.map(i => {
    const p = cells[i] && cells[i].querySelector('.jp-InputPrompt');
    return p ? p.textContent.trim() : null;
  });
  const errors = [...document.querySelectorAll(
      '.jp-NotebookPanel .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.textContent)
    .filter(t => /Traceback \\(most recent call last\\)|(^|\\n)[A-Za-z_.]*(Error|Exception): /.test(t));
  // utils.setup's warning when the kernel lacks the pinned numerics counts as an error
  document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output').forEach(e => {
    if (e.textContent.includes('pinned numerics are off')) errors.push(e.textContent);
  });
  const ind = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  return {nCells: cells.length, prompts, errors, status: ind ? ind.getAttribute('data-status') : null};
}"""
# The text a widget cell shows: its result lines (HTML widgets with the class
# ``modelsec-result``, see utils.widgets) when it has some, else all its outputs
# without the controls' own readouts, option lists and prompts, so that only
# what the widget computes is compared.
_JS_RESULT_TEXT = """(i) => {
  const cell = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')[i];
  const area = cell && cell.querySelector('.jp-Cell-outputArea');
  if (!area) return '';
  const results = [...area.querySelectorAll('.modelsec-result')];
  if (results.length) return results.map(e => e.textContent.replace(/\\s+/g, ' ').trim()).join(' | ');
  const clone = area.cloneNode(true);
  clone.querySelectorAll('.widget-readout, select, .jp-OutputPrompt, style, script')
       .forEach(e => e.remove());
  const parts = [];
  const walk = document.createTreeWalker(clone, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) parts.push(walk.currentNode.nodeValue);
  return parts.join(' ').replace(/\\s+/g, ' ').trim();
}"""
_JS_OUTPUT_TEXT = """(i) => {
  const cell = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')[i];
  const area = cell && cell.querySelector('.jp-Cell-outputArea');
  return area ? area.innerText : '';
}"""
_JS_MODEL_SOURCE = """(i) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  return nb.widgets[i].model.sharedModel.getSource();
}"""

# Widget fallbacks: the plain-text repr shown when the widget extension is missing,
# and the messages of a widget manager that cannot render a view.
WIDGET_FALLBACK = re.compile(
    r"\b[A-Z]\w*\((?:children|value|options|description)=|Loading widget\.\.\.|Error displaying widget"
    r"|Failed to load model class")


class JupyterLab:
    """JupyterLab loaded once in a browser page; notebooks are opened and closed in it.

    Loading JupyterLab is the costliest thing a browser does here, so one page
    serves every test; a page left in a bad state by a failed test is thrown
    away and the next test loads a fresh one (:meth:`close_notebooks`).
    """

    def __init__(self, context, server: JupyterServer):
        self.context = context
        self.server = server
        self.page = None
        self.page_errors: list[str] = []

    def ensure_loaded(self):
        if self.page is None or self.page.is_closed():
            self.server.wait_ready()
            self.page = self.context.new_page()
            self.page.set_default_timeout(30_000)
            self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
            # a fresh workspace: no tab is restored from an earlier run
            self.page.goto(self.server.url(f"lab/workspaces/ui-{secrets.token_hex(4)}", reset=""),
                           timeout=SERVER_TIMEOUT * 1000)
            self.page.locator('.lm-MenuBar-itemLabel:text-is("File")').wait_for(timeout=SERVER_TIMEOUT * 1000)
        return self.page

    def menu(self, top: str, item: str) -> None:
        """Click a menu bar entry, then one of its items (exact labels)."""
        self.page.locator(f'.lm-MenuBar-itemLabel:text-is("{top}")').click()
        self.page.locator(f'.lm-Menu-itemLabel:text-is("{item}")').click()

    def open(self, notebook: Path) -> "NotebookPage":
        """File > Open from Path…; wait until every cell is on the page and the kernel is idle."""
        page = self.ensure_loaded()
        nbp = NotebookPage(page, self.server, notebook)
        self.menu("File", "Open from Path…")
        dialog = page.locator(".jp-Dialog")
        dialog.locator("input").fill(nbp.relpath)
        dialog.locator("button.jp-mod-accept").click()
        page.wait_for_function(f"() => ({_JS_CELLS})().length === {nbp.n_cells}",
                               timeout=SERVER_TIMEOUT * 1000)
        nbp.wait_kernel_ready()
        return nbp

    def close_notebooks(self) -> None:
        """File > Close Tab for every open notebook, answering Discard: nothing is saved.

        If that fails (a failed test may leave a menu or dialog open), the
        page is closed, which saves nothing either, and the next test starts
        a new one.
        """
        if self.page is None or self.page.is_closed():
            return
        try:
            panels = self.page.locator(".jp-NotebookPanel")
            while panels.count():
                n = panels.count()
                self.page.keyboard.press("Escape")
                self.menu("File", "Close Tab")
                discard = self.page.locator(".jp-Dialog button", has_text="Discard")
                with contextlib.suppress(Exception):
                    discard.click(timeout=3000)
                self.page.wait_for_function(
                    f"() => document.querySelectorAll('.jp-NotebookPanel').length < {n}", timeout=10_000)
        except Exception:
            with contextlib.suppress(Exception):
                self.page.close()
            self.page = None

    def close(self) -> None:
        if self.page is not None:
            with contextlib.suppress(Exception):
                self.page.close()
        self.page = None


class NotebookPage:
    """One notebook opened in JupyterLab (see :meth:`JupyterLab.open`)."""

    def __init__(self, page, server: JupyterServer, notebook: Path):
        self.page = page
        self.server = server
        self.path = Path(notebook)
        self.relpath = self.path.resolve().relative_to(server.root.resolve()).as_posix()
        self.code_cells = code_cells_to_run(self.path)
        self.n_cells = len(nbformat.read(str(self.path), as_version=4).cells)

    def wait_kernel_ready(self, timeout: float = SERVER_TIMEOUT) -> None:
        """Wait until the notebook's kernel is started, connected and idle."""
        self.page.wait_for_selector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]',
                                    timeout=timeout * 1000)
        kernel = self._wait(lambda: self._server_kernel_idle(), timeout, "the kernel to start")
        assert kernel["name"] == KERNEL_NAME, f"{self.relpath} runs kernel {kernel['name']!r}, expected {KERNEL_NAME}"

    def _server_kernel_idle(self):
        k = self.server.kernel_of(self.relpath)
        return k if k and k.get("execution_state") == "idle" else None

    def _wait(self, condition, timeout: float, what: str, interval_ms: int = 250):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.relpath}: timed out after {timeout} s waiting for {what}")
            self.page.wait_for_timeout(interval_ms)

    def run_all(self, timeout: float = RUN_ALL_TIMEOUT) -> float:
        """Run > Run All Cells through the menu; wait until every cell ran and the kernel is idle."""
        t0 = time.monotonic()
        self.page.locator('.lm-MenuBar-itemLabel:text-is("Run")').click()
        self.page.locator('.lm-Menu-itemLabel:text-is("Run All Cells")').click()
        self._wait(self._all_ran, timeout, "Run All to finish (every cell numbered, kernel idle)", interval_ms=500)
        return time.monotonic() - t0

    def _all_ran(self) -> bool:
        state = self.page.evaluate(_JS_STATE, self.code_cells)
        if state["errors"]:
            raise AssertionError(f"{self.relpath}: a cell shows an error:\n{state['errors'][0][-3000:]}")
        done = all(p is not None and re.fullmatch(r"\[\d+\]:", p) for p in state["prompts"])
        if not (done and state["status"] == "idle"):
            return False
        return bool(self._server_kernel_idle())

    def errors(self) -> list[str]:
        return self.page.evaluate(_JS_STATE, self.code_cells)["errors"]

    # -- reading
    def cell(self, i: int):
        return self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(i)

    def output_area(self, i: int):
        return self.cell(i).locator(".jp-Cell-outputArea")

    def output_text(self, i: int) -> str:
        return self.page.evaluate(_JS_OUTPUT_TEXT, i)

    def result_text(self, i: int) -> str:
        """The widget cell's result line(s), sanitized like nbval output (timings normalized)."""
        return sanitize(self.page.evaluate(_JS_RESULT_TEXT, i))

    def model_source(self, i: int) -> str:
        return self.page.evaluate(_JS_MODEL_SOURCE, i)

    # -- widgets
    def assert_widget_rendered(self, i: int) -> None:
        area = self.output_area(i)
        n = area.locator(".jupyter-widgets").count()
        text = self.output_text(i)
        fallback = WIDGET_FALLBACK.search(text)
        assert n > 0 and not fallback, (
            f"{self.relpath}: the widget in cell {i} is not rendered as a widget "
            f"(is the ipywidgets JupyterLab extension installed?); the cell shows: {text[:500]!r}")
        assert area.locator(".jupyter-widgets-error-widget, .widget-error").count() == 0, \
            f"{self.relpath}: the widget in cell {i} shows an error: {text[:500]!r}"

    def controls(self, i: int) -> list["Control"]:
        """The controls of a widget cell in the order they should be tried."""
        area = self.output_area(i)
        found: list[Control] = []
        for k in range(area.locator(".widget-slider").count()):
            found.append(Slider(self, area.locator(".widget-slider").nth(k)))
        for k in range(area.locator(".widget-dropdown select, .widget-select select").count()):
            found.append(Dropdown(self, area.locator(".widget-dropdown select, .widget-select select").nth(k)))
        for k in range(area.locator(".widget-toggle-buttons").count()):
            found.append(ToggleButtons(self, area.locator(".widget-toggle-buttons").nth(k)))
        for k in range(area.locator(".widget-radio-box").count()):
            found.append(ToggleButtons(self, area.locator(".widget-radio-box").nth(k), "input[type=radio]"))
        for k in range(area.locator(".widget-checkbox input[type=checkbox]").count()):
            found.append(Clickable(self, area.locator(".widget-checkbox input[type=checkbox]").nth(k), "checkbox"))
        toggles = area.locator(".widget-toggle-button:not(.widget-toggle-buttons *)")
        for k in range(toggles.count()):
            found.append(Clickable(self, toggles.nth(k), "toggle button"))
        buttons = area.locator("button.jupyter-button:not(.widget-toggle-button):not(.widget-toggle-buttons *)")
        for k in range(buttons.count()):
            found.append(Clickable(self, buttons.nth(k), "button", restorable=False))
        return found

    def interact(self, cell: int, control: "Control", expect, back: bool = False,
                 timeout: float = UPDATE_TIMEOUT) -> str:
        """Move ``control`` (or move it ``back``), wait for the kernel, return the widget's new result text.

        The control must show its new state, the kernel's ``last_activity``
        must move on (the change reached the kernel) and the kernel must be
        idle again, on the server and in the notebook's indicator. Then the
        result text is read until ``expect(text)`` holds and two readings
        agree (or ``timeout`` passes: the caller's assertion then says why).
        """
        state = control.state()
        before = self.server.kernel_of(self.relpath)["last_activity"]
        (control.restore if back else control.move)()
        if control.has_state:
            self._wait(lambda: control.state() != state, 5, f"the {control.describe()} to change", interval_ms=100)

        def handled():
            k = self.server.kernel_of(self.relpath)
            return bool(k) and k["last_activity"] != before and k["execution_state"] == "idle"

        self._wait(handled, timeout, f"the kernel to handle the change of the {control.describe()}", interval_ms=100)
        self.page.wait_for_selector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]',
                                    timeout=timeout * 1000)
        last = None
        deadline = time.monotonic() + timeout
        while True:
            errors = self.errors()
            if errors:
                raise AssertionError(f"{self.relpath}: an error appeared after moving the {control.describe()}:"
                                     f"\n{errors[0][-3000:]}")
            text = self.result_text(cell)
            if (text == last and expect(text)) or time.monotonic() > deadline:
                return text
            last = text
            self.page.wait_for_timeout(150)

    # -- editing
    def set_cell_source(self, i: int, code: str) -> None:
        """Replace a code cell's source through its editor, as a learner would (select all, type)."""
        editor = self.cell(i).locator(".cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Escape")  # back to command mode


class Control:
    """A widget control that can be moved and (usually) moved back."""

    kind = "control"
    restorable = True   # moving it back should bring the first result back
    has_state = True    # it shows its state (value, selection, checked)

    def __init__(self, nbpage: NotebookPage, locator):
        self.nb = nbpage
        self.loc = locator

    def describe(self) -> str:
        label = self.loc.locator("xpath=ancestor-or-self::*[contains(@class,'widget-inline-hbox')][1]"
                                 "//label[contains(@class,'widget-label')]")
        text = label.first.text_content() if label.count() else ""
        return f"{self.kind} {text!r}" if text else self.kind

    def state(self) -> str:
        raise NotImplementedError

    def move(self) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        raise NotImplementedError


class Slider(Control):
    """An ipywidgets slider (noUiSlider): focus the handle and press an arrow key."""

    kind = "slider"

    def _handle(self):
        return self.loc.locator(".noUi-handle").last

    def state(self) -> str:
        readout = self.loc.locator(".widget-readout")
        return readout.text_content() if readout.count() else self._handle().get_attribute("aria-valuenow")

    def move(self) -> None:
        h = self._handle()
        at_max = h.get_attribute("aria-valuenow") == h.get_attribute("aria-valuemax")
        self._key = ("ArrowLeft", "ArrowRight") if at_max else ("ArrowRight", "ArrowLeft")
        h.focus()
        self.nb.page.keyboard.press(self._key[0])

    def restore(self) -> None:
        self._handle().focus()
        self.nb.page.keyboard.press(self._key[1])


class Dropdown(Control):
    """A dropdown (or select list): choose the next option."""

    kind = "dropdown"

    def state(self) -> str:
        return str(self.loc.evaluate("s => s.selectedIndex"))

    def move(self) -> None:
        n = self.loc.evaluate("s => s.options.length")
        self._orig = self.loc.evaluate("s => s.selectedIndex")
        if n < 2:
            raise AssertionError("a dropdown with fewer than two options cannot be moved")
        self.loc.select_option(index=(self._orig + 1) % n)

    def restore(self) -> None:
        self.loc.select_option(index=self._orig)


class ToggleButtons(Control):
    """ToggleButtons or RadioButtons: pick another option."""

    kind = "toggle buttons"

    def __init__(self, nbpage, locator, item: str = "button"):
        super().__init__(nbpage, locator)
        self.item = item

    def _items(self):
        return self.loc.locator(self.item)

    def _active(self) -> int:
        checked = "el => el.classList.contains('mod-active') || el.checked === true"
        for k in range(self._items().count()):
            if self._items().nth(k).evaluate(checked):
                return k
        return -1

    def state(self) -> str:
        return str(self._active())

    def move(self) -> None:
        self._orig = self._active()
        n = self._items().count()
        self._items().nth((self._orig + 1) % n).click()

    def restore(self) -> None:
        self._items().nth(max(self._orig, 0)).click()


class Clickable(Control):
    """A button, toggle button or checkbox: click it."""

    def __init__(self, nbpage, locator, kind: str, restorable: bool = True):
        super().__init__(nbpage, locator)
        self.kind = kind
        self.restorable = restorable
        self.has_state = restorable  # a plain button has no state to move back to

    def describe(self) -> str:
        text = (self.loc.text_content() or "").strip()
        return f"{self.kind} {text!r}" if text else super().describe()

    def state(self) -> str:
        return str(self.loc.evaluate("el => [el.checked, el.classList.contains('mod-active')]"))

    def move(self) -> None:
        self.loc.click()

    def restore(self) -> None:
        self.loc.click()
