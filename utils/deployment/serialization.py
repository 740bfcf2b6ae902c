"""Unsafe and safe model files: a pickle that runs code when loaded, and safetensors that cannot.

A PyTorch ``.pt`` file is a zip holding a *pickle*, and unpickling calls whatever
callables the file names (``__reduce__``). :func:`make_malicious_pickle` writes such a
file, but its payload only ever creates one marker file inside the system's temporary
folder, so a learner can see the code run without anything being harmed.
:func:`unsafe_load_in_subprocess` loads it with ``torch.load(weights_only=False)`` in a
separate Python process (the notebook's kernel never unpickles it) and says whether the
marker appeared; :func:`weights_only_refusal` shows that ``torch.load(weights_only=True)``
(the default since torch 2.6) refuses it. :func:`save_weights` / :func:`load_weights`
store a model's ``state_dict`` as safetensors (tensors and a JSON header, no code) and load
it back strictly (every key, shape and dtype must match).

Taught in 07_secure_deployment.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import pickle
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from utils import validation as v
from utils.validation import existing_file  # noqa: F401  (callers import it from here too)

#: The callables a malicious pickle can use to create its marker: ``builtins.exec`` (on every
#: scanner's deny list) and ``pathlib.Path.touch`` (a less-common callable that some miss).
PAYLOADS = ("builtins.exec", "pathlib.Path.touch")


def sha256_file(path: str | Path, where: str = "sha256_file") -> str:
    """The hex sha256 of a file's bytes, read in chunks (taught in 07_secure_deployment)."""
    path = existing_file(path, "path", where)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def new_file(path: Any, name: str, where: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` whose folder exists (the file may exist and is
    overwritten) (taught in 07_secure_deployment)."""
    if not isinstance(path, (str, os.PathLike)):
        v.fail(where, f"{name} is a {type(path).__name__}", f"{name} must be a path (str or pathlib.Path)")
    p = Path(path)
    if p.is_dir():
        v.fail(where, f"{name} = '{p}' is a folder", f"{name} must be a file path")
    if not p.parent.is_dir():
        v.fail(where, f"the folder of {name} = '{p}' does not exist", "create the folder first")
    return p


def _module(model: Any, where: str) -> nn.Module:
    if not isinstance(model, nn.Module):
        v.fail(where, f"model is a {type(model).__name__}", "model must be a torch.nn.Module")
    return model


def _marker(marker: Any, where: str) -> Path:
    """A marker path inside the temporary folder that does not exist yet."""
    if not isinstance(marker, (str, os.PathLike)):
        v.fail(where, f"marker is a {type(marker).__name__}", "marker must be a path (str or pathlib.Path)")
    m = Path(marker).absolute()
    temp = Path(tempfile.gettempdir()).resolve()
    try:
        m.parent.resolve().relative_to(temp)
    except ValueError:
        v.fail(where, f"marker = '{m}' is outside the temporary folder",
               f"the marker must be inside {temp} (e.g. in tempfile.mkdtemp()): the payload writes nowhere else")
    if not m.parent.is_dir():
        v.fail(where, f"the folder of marker = '{m}' does not exist", "create the folder first")
    if m.exists():
        v.fail(where, f"marker = '{m}' exists already",
               "give a path that does not exist yet, so that its appearance proves the payload ran")
    return m


class _MarkerPayload:
    """Pickles as a call that creates one empty file, ``marker``, and does nothing else."""

    def __init__(self, marker: Path, via: str):
        self.marker, self.via = str(marker), via

    def __reduce__(self):
        if self.via == "pathlib.Path.touch":
            return (pathlib.Path.touch, (pathlib.Path(self.marker),))
        # "x": create the file, fail if it exists; the only statement this payload runs
        return (exec, (f"open({self.marker!r}, 'x').close()",))


def make_malicious_pickle(path: str | Path, marker: str | Path, *, model: nn.Module | None = None,
                          via: str = "builtins.exec") -> Path:
    """Write a torch checkpoint (``torch.save``, a zip with a pickle) whose payload creates ``marker``.

    Loading it with ``torch.load(path, weights_only=False)`` (or ``pickle``) runs the payload:
    it creates the empty file ``marker`` and nothing else. ``marker`` must be inside the
    system's temporary folder and must not exist yet.

    Args:
        path: the checkpoint to write.
        marker: the file the payload creates.
        model: if given, its ``state_dict`` rides along, so the file looks like a real checkpoint.
        via: the callable the payload uses, one of :data:`PAYLOADS`: ``"builtins.exec"`` (runs
            one fixed statement, ``open(marker, 'x').close()``) or ``"pathlib.Path.touch"``.

    Returns:
        ``path``. Taught in 07_secure_deployment.
    """
    where = "make_malicious_pickle"
    path = new_file(path, "path", where)
    marker = _marker(marker, where)
    v.choice(via, "via", where, PAYLOADS)
    checkpoint: dict[str, Any] = {}
    if model is not None:
        checkpoint["state_dict"] = {k: t.detach().cpu() for k, t in _module(model, where).state_dict().items()}
    checkpoint["config"] = _MarkerPayload(marker, via)
    # torch's default pickle protocol (2) reaches ``Path.touch`` through ``builtins.getattr``, which
    # every scanner flags; protocol 4 names ``pathlib Path.touch`` directly (what an attacker would do)
    torch.save(checkpoint, path, pickle_protocol=4 if via == "pathlib.Path.touch" else 2)
    return path


def make_benign_checkpoint(path: str | Path, model: nn.Module) -> Path:
    """Write ``model``'s ``state_dict`` with ``torch.save`` (a pickle, but of tensors only)
    and return ``path`` (taught in 07_secure_deployment)."""
    where = "make_benign_checkpoint"
    path = new_file(path, "path", where)
    model = _module(model, where)
    torch.save({k: t.detach().cpu() for k, t in model.state_dict().items()}, path)
    return path


_UNSAFE_LOAD = "import sys, torch; torch.load(sys.argv[1], weights_only=False)"


def unsafe_load_in_subprocess(path: str | Path, marker: str | Path, *, timeout: float = 120.0) -> bool:
    """Load ``path`` with ``torch.load(weights_only=False)`` in a separate Python process and
    say whether ``marker`` appeared (the payload ran).

    The calling process (a notebook's kernel) never unpickles the file. ``marker`` must not
    exist before the call. Taught in 07_secure_deployment.
    """
    where = "unsafe_load_in_subprocess"
    path = existing_file(path, "path", where)
    marker = _marker(marker, where)
    timeout = v.real(timeout, "timeout", where, 1.0, 600.0)
    try:
        subprocess.run([sys.executable, "-c", _UNSAFE_LOAD, str(path.absolute())], capture_output=True,
                       timeout=timeout, cwd=marker.parent, check=False)
    except subprocess.TimeoutExpired:
        v.fail(where, f"loading '{path.name}' took longer than {timeout:g} s", "give a larger timeout")
    return marker.exists()


def weights_only_refusal(path: str | Path) -> str | None:
    """Why ``torch.load(path, weights_only=True)`` refuses the file, or ``None`` if it loads.

    The restricted unpickler only rebuilds tensors and plain containers; a payload's callable
    is refused before anything is called, so this is safe to run in the notebook's kernel.
    Taught in 07_secure_deployment.
    """
    path = existing_file(path, "path", "weights_only_refusal")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols other than 2
            warnings.simplefilter("ignore", UserWarning)
            torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        text = " ".join(str(e).split())
        named = re.search(r"Unsupported global: .*? by default\.", text)
        if named:
            return named.group(0)
        named = re.search(r"WeightsUnpickler error: (.*?)\s*(Check the documentation|$)", text)
        return named.group(1) if named and named.group(1) else (text[:300] or type(e).__name__)
    except Exception as e:  # not a torch file at all (torch.load also reads by suffix, e.g. .safetensors)
        return f"not a loadable torch file ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
    return None


# --------------------------------------------------------------------------- safetensors


def is_safetensors(path: str | Path) -> bool:
    """Whether ``path`` parses as a safetensors file (an 8-byte length, a JSON header and raw
    tensor bytes); reading the header runs no code (taught in 07_secure_deployment)."""
    path = existing_file(path, "path", "is_safetensors")
    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError):
        return False
    return True


def save_weights(model: nn.Module, path: str | Path) -> str:
    """Save ``model``'s ``state_dict`` as safetensors and return the file's sha256
    (taught in 07_secure_deployment)."""
    where = "save_weights"
    model = _module(model, where)
    path = new_file(path, "path", where)
    save_file({k: t.detach().cpu().contiguous() for k, t in model.state_dict().items()}, str(path))
    return sha256_file(path, where)


def weights_mismatch(state: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    """What differs between a ``state_dict`` read from a file and ``model``'s: missing and
    unexpected keys, and each tensor with another shape or dtype (empty: they fit)
    (taught in 07_secure_deployment)."""
    model = _module(model, "weights_mismatch")
    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    for k in sorted(set(expected) & set(state)):
        a, b = state[k], expected[k]
        if tuple(a.shape) != tuple(b.shape):
            problems.append(f"'{k}' has shape {tuple(a.shape)}, the model expects {tuple(b.shape)}")
        elif a.dtype != b.dtype:
            problems.append(f"'{k}' has dtype {a.dtype}, the model expects {b.dtype}")
    return problems


def load_weights(path: str | Path, model: nn.Module) -> nn.Module:
    """Load a safetensors file into ``model`` strictly (every key, shape and dtype must match)
    and return the model in eval mode (taught in 07_secure_deployment)."""
    where = "load_weights"
    path = existing_file(path, "path", where)
    model = _module(model, where)
    if not is_safetensors(path):
        v.fail(where, f"'{path.name}' is not a safetensors file", "load_weights reads safetensors files only")
    state = load_file(str(path))
    problems = weights_mismatch(state, model)
    if problems:
        v.fail(where, f"'{path.name}' does not fit the model: " + "; ".join(problems),
               "the file must hold exactly the model's state_dict (same keys, shapes and dtypes)")
    model.load_state_dict(state, strict=True)
    return model.eval()


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models have exactly the same ``state_dict`` (same keys, dtypes and values,
    bit for bit) (taught in 07_secure_deployment)."""
    sa, sb = _module(a, "same_weights").state_dict(), _module(b, "same_weights").state_dict()
    return sa.keys() == sb.keys() and all(
        sa[k].dtype == sb[k].dtype and sa[k].shape == sb[k].shape and torch.equal(sa[k].cpu(), sb[k].cpu())
        for k in sa)
