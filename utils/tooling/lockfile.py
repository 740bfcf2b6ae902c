"""The lock file: exact versions of every package the course installs.

``requirements.lock`` is written by ``make lock`` (``uv pip compile`` over
``pyproject.toml``, for every platform and Python the project supports); never
by hand. ``make`` installs in two steps:

1. torch, from the package index (or from ``TORCH_INDEX``, e.g. PyTorch's
   CPU-only wheels). torch pins its own accelerator libraries (``nvidia-*``, ``cuda-*``,
   ``triton``) exactly, so they are the lock's versions when they are installed
   at all, and a CPU-only torch has none;
2. every other locked package, with ``--no-deps``: exactly the lock, nothing
   resolved anew.

``environment.yml`` (conda, mamba, Binder) lists the same pins; it is written
from the lock by ``python -m utils.tooling.lockfile environment`` and a test checks
that the two agree.

This module imports no torch.
"""
from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path
from utils.paths import ROOT

LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"

#: Packages installed by the torch step rather than from the lock.
TORCH_STACK = re.compile(r"^(torch|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)$")
#: torchattacks is installed without its declared dependencies (see the Makefile).
TORCHATTACKS = "torchattacks==3.5.1"
#: The Python version environment.yml asks conda for.
CONDA_PYTHON = "3.11"

_REQ = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)\s*(;\s*(?P<marker>.+))?$")


class LockError(ValueError):
    """The lock file or environment.yml is malformed or out of date."""


def normalize(name: str) -> str:
    """A distribution name as the package index compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path | None = None) -> list[str]:
    """The requirement lines of the lock (``name==version`` with an optional ``; marker``)."""
    path = LOCK if path is None else path
    if not Path(path).is_file():
        raise LockError(f"{path} is missing: run `make lock`")
    lines = []
    for n, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not _REQ.match(line):
            raise LockError(f"{path}, line {n}: {line!r} is not an exact pin 'name==version [; marker]'")
        lines.append(line)
    return lines


def parse(line: str) -> tuple[str, str, str | None]:
    """(normalized name, version, marker or None) of one lock line."""
    m = _REQ.match(line)
    if not m:
        raise LockError(f"{line!r} is not an exact pin 'name==version [; marker]'")
    return normalize(m["name"]), m["version"], m["marker"]


def applies(marker: str | None) -> bool:
    """Whether a lock line's environment marker holds for this interpreter and platform."""
    if not marker:
        return True
    from packaging.markers import Marker

    return Marker(marker).evaluate()


def without_torch(lines: list[str] | None = None) -> list[str]:
    """The lock lines installed in the second step (everything but torch's own stack)."""
    return [l for l in (requirements() if lines is None else lines) if not TORCH_STACK.match(parse(l)[0])]


def locked_version(name: str) -> str:
    """The locked version of a package that applies here."""
    for line in requirements():
        n, version, marker = parse(line)
        if n == normalize(name) and applies(marker):
            return version
    raise LockError(f"{name} is not in {LOCK.name} for this platform")


def environment_yml(lines: list[str] | None = None) -> str:
    """The text of environment.yml for the locked requirements."""
    lines = requirements() if lines is None else lines
    head = [
        "# For conda / mamba / Binder users. Written from requirements.lock by",
        "# `python -m utils.tooling.lockfile environment` (make lock): edit pyproject.toml, never this file.",
        "#   mamba env create -f environment.yml && conda activate modelsec",
        f"#   pip install --no-deps {TORCHATTACKS}",
        "#   python -m utils.course.numerics install-kernel",
        "name: modelsec",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={CONDA_PYTHON}",
        "  - pip",
        "  - pip:",
    ]
    body = [f'      - "{l}"' for l in lines] + ["      - -e ."]
    return "\n".join(head + body) + "\n"


def environment_requirements(path: Path | None = None) -> list[str]:
    """The pip requirements environment.yml lists (without ``-e .``)."""
    path = ENVIRONMENT if path is None else path
    out, inside = [], False
    for line in Path(path).read_text().splitlines():
        if line.strip() == "- pip:":
            inside = True
            continue
        if inside:
            m = re.match(r'^\s+- "?(.*?)"?\s*$', line)
            if not m:
                break
            if m.group(1) != "-e .":
                out.append(m.group(1))
    return out


def installed_mismatches() -> list[str]:
    """Locked packages (that apply here) whose installed version differs or that are missing."""
    problems = []
    for line in requirements():
        name, version, marker = parse(line)
        if not applies(marker):
            continue
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            if TORCH_STACK.match(name) and name != "torch":
                continue  # a CPU-only torch brings no accelerator libraries
            problems.append(f"{name}: locked {version}, not installed")
            continue
        if have.split("+")[0] != version:  # torch 2.13.0+cpu is the locked 2.13.0
            problems.append(f"{name}: locked {version}, installed {have}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.tooling.lockfile", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_env = sub.add_parser("environment", help="write environment.yml from requirements.lock")
    p_env.add_argument("--check", action="store_true", help="only say whether it is in sync")
    p_rest = sub.add_parser("without-torch", help="write the lock lines installed after torch to OUT")
    p_rest.add_argument("out", type=Path)
    sub.add_parser("verify", help="check that the installed versions are the locked ones")
    args = parser.parse_args(argv)
    try:
        if args.command == "environment":
            text = environment_yml()
            if args.check:
                ok = ENVIRONMENT.read_text() == text
                print("environment.yml agrees with requirements.lock" if ok else
                      "environment.yml is out of date: run `python -m utils.tooling.lockfile environment`")
                return 0 if ok else 1
            ENVIRONMENT.write_text(text)
            print(f"wrote {ENVIRONMENT.name} from {LOCK.name}")
            return 0
        if args.command == "without-torch":
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text("\n".join(without_torch()) + "\n")
            return 0
        problems = installed_mismatches()
        for p in problems:
            print(p)
        print("installed packages match requirements.lock" if not problems else
              f"{len(problems)} packages differ from requirements.lock: run `make venv` (or `rm -rf .venv`)")
        return 0 if not problems else 1
    except LockError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
