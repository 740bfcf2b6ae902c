"""Write the lines of requirements.lock that the served API needs (run inside the image build).

    python deploy/select_requirements.py requirements.lock deploy/serve-packages.txt OUT

Every name in serve-packages.txt must be in the lock (exit 1 otherwise); each matching lock line
is copied as it is, environment marker included, so that ``pip install --no-deps -r OUT`` installs
exactly the locked versions. Standard library only: it runs before anything is installed.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path


def normalize(name: str) -> str:
    """A distribution name as the package index compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wanted(packages: Path) -> list[str]:
    """The normalized names of a package list (one a line, ``#`` comments)."""
    names = [line.split("#", 1)[0].strip() for line in packages.read_text().splitlines()]
    return [normalize(n) for n in names if n]


def select(lock: Path, packages: Path) -> list[str]:
    """The lock lines for the names in ``packages``; ValueError naming any the lock lacks."""
    names = set(wanted(packages))
    lines, found = [], set()
    for raw in lock.read_text().splitlines():
        line = raw.strip()
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if m and normalize(m[1]) in names:
            lines.append(line)
            found.add(normalize(m[1]))
    missing = sorted(names - found)
    if missing:
        raise ValueError(f"{packages}: not in {lock}: {missing}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    lock, packages, out = map(Path, argv)
    try:
        lines = select(lock, packages)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
