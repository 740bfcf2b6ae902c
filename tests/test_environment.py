"""The environment: pyproject.toml and environment.yml agree; torchattacks 3.5.1 without torchvision."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_deps() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_name(d): d.replace(" ", "") for d in deps}


def environment_deps() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    deps = {}
    for line in lines[start + 1:]:
        m = re.match(r"^\s+- (.+)$", line)
        if not m:
            break
        item = m.group(1).split("#")[0].strip()
        if item.startswith("-e"):
            continue
        deps[_name(item)] = item.replace(" ", "")
    return deps


def test_environment_yml_matches_pyproject():
    a, b = pyproject_deps(), environment_deps()
    assert a == b, (f"only in pyproject.toml: {sorted(set(a) - set(b))}; only in environment.yml: "
                    f"{sorted(set(b) - set(a))}; different pins: "
                    f"{sorted(k for k in set(a) & set(b) if a[k] != b[k])}")


def test_torch_is_pinned():
    assert pyproject_deps()["torch"] == "torch==2.13.0"


def test_torchattacks_is_installed_as_a_second_step_without_its_declared_deps():
    makefile = (ROOT / "Makefile").read_text()
    assert "TORCHATTACKS := torchattacks==3.5.1" in makefile and "--no-deps $(TORCHATTACKS)" in makefile
    assert "torchattacks" not in pyproject_deps()


def test_torchattacks_351_imports_without_torchvision():
    code = ("import sys; sys.modules['torchvision'] = None\n"
            "import torchattacks; print(torchattacks.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3.5.1"
    assert importlib.util.find_spec("torchvision") is None


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in (ROOT / "README.md").read_text()
