"""A default run makes no network connection; bad parameters stop a notebook early."""
from __future__ import annotations

import socket
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from notebook_exec import execute

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "00_orientation_and_threat_model.ipynb"

# Runs first in the kernel: any attempt to open a network connection or to
# resolve a host name raises, so the notebook fails if it touches the network.
BLOCK_NETWORK = '''
import socket as _socket
class NetworkBlocked(RuntimeError):
    pass
def _blocked(*args, **kwargs):
    raise NetworkBlocked(f"network access attempted: {args[1:] if len(args) > 1 else args}")
_socket.socket.connect = _blocked
_socket.socket.connect_ex = _blocked
_socket.socket.sendto = _blocked
_socket.create_connection = _blocked
_socket.getaddrinfo = _blocked
'''


def test_the_guard_really_blocks(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9', timeout=1)")])
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(CellExecutionError, match="NetworkBlocked"):
        execute(path, prepend=BLOCK_NETWORK, timeout=60)


@pytest.mark.notebooks
def test_default_run_of_lesson_00_is_offline():
    nb = execute(LESSON, prepend=BLOCK_NETWORK)
    assert any("Headline metrics" in (o.get("text") or "") for c in nb.cells for o in c.get("outputs", []))


def _with_parameters(path: Path, tmp_path: Path, assignment: str) -> Path:
    nb = nbformat.read(str(path), as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(idx + 1, nbformat.v4.new_code_cell(assignment))  # as papermill injects them
    out = tmp_path / path.name
    nbformat.write(nb, str(out))
    return out


@pytest.mark.notebooks
@pytest.mark.parametrize("assignment,message", [
    ("seed = 'one'", "parameter 'seed' = 'one' (str) is not allowed"),
    ("device = 'tpu'", "parameter 'device' = 'tpu'"),
    ("model_name = 'resnet'", "parameter 'model_name' = 'resnet'"),
])
def test_bad_parameter_stops_the_notebook_in_its_first_cells(tmp_path, assignment, message):
    path = _with_parameters(LESSON, tmp_path, assignment)
    with pytest.raises(CellExecutionError) as err:
        execute(path, timeout=120)
    assert message in str(err.value)
    # the failing cell is the one right after the parameters: nothing was trained
    assert "utils.check_parameters" in str(err.value) or "utils.setup" in str(err.value)
