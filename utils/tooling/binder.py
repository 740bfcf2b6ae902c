"""The files repo2docker reads (Binder, and the image of a JupyterHub): ``binder/``.

Run as ``python -m utils.tooling.binder`` to write them from ``requirements.lock``, or with
``--check`` to say whether they are in sync (a test runs the check).

repo2docker reads only ``binder/`` when that folder exists (the ``environment.yml`` at the
top is then ignored), and installs in this order, the same as ``make``'s:

1. ``binder/runtime.txt``: the Python the committed outputs were made with (3.11);
2. ``binder/requirements.txt``: every locked pin, torch as PyTorch's CPU-only build
   (``torch==X+cpu`` from its CPU index: no CUDA libraries in the image);
3. ``binder/postBuild``: torchattacks without its declared dependencies, the course package
   (``pip install --no-deps -e .``), the check that the installed versions are the locked ones,
   and the course kernel with the pinned numerics.

This module imports no torch.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from utils.paths import ROOT
from utils.tooling import lockfile

BINDER = ROOT / "binder"
#: PyTorch's index of CPU-only wheels (the Makefile's TORCH_INDEX for a CPU install).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: The Python repo2docker installs (runtime.txt); the committed outputs were made with 3.11.
PYTHON = "3.11"


def requirements_txt(lines: list[str] | None = None) -> str:
    """binder/requirements.txt for the lock's lines: the CPU torch, then every other pin."""
    lines = lockfile.requirements() if lines is None else lines
    torch = [lockfile.parse(l)[1] for l in lines if lockfile.parse(l)[0] == "torch"]
    if len(torch) != 1:
        raise lockfile.LockError(f"the lock should pin torch once, found {len(torch)} torch lines")
    version = torch[0].split("+")[0]
    head = [
        "# Written from requirements.lock by `python -m utils.tooling.binder`: never edit by hand.",
        "# repo2docker (Binder, the hub image) installs it with pip; torch is PyTorch's CPU-only build.",
        "# torchattacks, the course package and its kernel come in binder/postBuild.",
        f"--extra-index-url {TORCH_CPU_INDEX}",
        f"torch=={version}+cpu",
    ]
    return "\n".join(head + lockfile.without_torch(lines)) + "\n"


def runtime_txt() -> str:
    """binder/runtime.txt: the Python version."""
    return f"python-{PYTHON}\n"


def post_build() -> str:
    """binder/postBuild: the Makefile's steps after the locked packages."""
    return "\n".join([
        "#!/bin/bash",
        "# Run by repo2docker after binder/requirements.txt, in the repository's root; written by",
        "# `python -m utils.tooling.binder`. The same steps as the Makefile's install.",
        "set -euo pipefail",
        "# torchattacks declares requests~=2.25.1 (clashes with JupyterLab) and torchvision (unused)",
        f"pip install --no-cache-dir --no-deps {lockfile.TORCHATTACKS}",
        "pip install --no-cache-dir --no-deps -e .",
        "python -m utils.tooling.lockfile verify",
        "# the course kernel (every notebook names it) with the pinned numerics, into the image's Python",
        "python -m utils.course.numerics install-kernel",
    ]) + "\n"


def files() -> dict[str, str]:
    """binder/ file name -> text."""
    return {"requirements.txt": requirements_txt(), "runtime.txt": runtime_txt(), "postBuild": post_build()}


def out_of_date(folder: Path | None = None) -> list[str]:
    """The binder/ files that differ from what the lock gives (empty when in sync)."""
    folder = BINDER if folder is None else Path(folder)
    stale = [name for name, text in files().items()
             if not (folder / name).is_file() or (folder / name).read_text() != text]
    post = folder / "postBuild"
    if post.is_file() and not post.stat().st_mode & 0o111:
        stale.append("postBuild (not executable)")
    return stale


def write(folder: Path | None = None) -> list[Path]:
    """Write binder/ (postBuild executable); returns the paths written."""
    folder = BINDER if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files().items():
        path = folder / name
        path.write_text(text)
        if name == "postBuild":
            path.chmod(0o755)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.tooling.binder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether binder/ agrees with the lock")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = out_of_date()
            print("binder/ agrees with requirements.lock" if not stale else
                  f"binder/ is out of date ({', '.join(stale)}): run `python -m utils.tooling.binder`")
            return 0 if not stale else 1
        for path in write():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    except lockfile.LockError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
