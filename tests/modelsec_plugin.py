"""pytest settings for this repository's tests.

Loaded through ``addopts = "-p modelsec_plugin"`` in pyproject.toml, so it is
active for every pytest run of this repository, whatever paths are given (a lone
``pytest --nbval notebooks/04_x.ipynb`` behaves like ``make test``), and for no
other project in the same environment:

- progress bars are off (``MODELSEC_PROGRESS=0``) for the kernels that nbval
  and nbclient start (they inherit the environment; MPLBACKEND is left alone
  so that kernels keep their inline backend and show figures);
- nbval executes cells with ``store_history=True``, as Jupyter does. IPython
  decides whether a trailing ``;`` silences a cell's result by reading the
  input history; with nbval's ``store_history=False``, ``plot(...);`` would
  show an extra ``<Figure ...>`` line that JupyterLab, papermill and the
  committed outputs do not have.
"""
from __future__ import annotations

import os

os.environ["MODELSEC_PROGRESS"] = "0"


def _nbval_store_history() -> None:
    try:
        from nbval.kernel import RunningKernel
    except ImportError:  # nbval not installed: nothing to adjust
        return

    def execute_cell_input(self, cell_input, allow_stdin=None):
        return self.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin)

    RunningKernel.execute_cell_input = execute_cell_input


_nbval_store_history()


def pytest_configure(config):
    config.addinivalue_line("markers", "notebooks: executes notebooks (slow)")
    config.addinivalue_line("markers", "ui: drives JupyterLab in a real browser")
