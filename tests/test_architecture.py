"""The shape of utils: one place for each idea (README, "Where things are")."""
from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import utils

ROOT = Path(__file__).resolve().parent.parent
UTILS = ROOT / "utils"
STEMS = sorted({p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
               | {p.stem for p in (ROOT / "labs").glob("*.ipynb")})
STEM = re.compile(r"\b\d\d_[a-z0-9_]+\b")


def _modules(include_tooling: bool = False) -> list[str]:
    names = ["utils"] + [m.name for m in pkgutil.walk_packages(utils.__path__, "utils.")]
    return [n for n in names if include_tooling or not n.startswith("utils.tooling")]


def _sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in ((UTILS / f).rglob("*.py") if (UTILS / f).is_dir() else [UTILS / f]))


def _public_objects():
    for name in _modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) == name:
                yield f"{name}.{attr}", obj


def test_every_public_function_and_class_names_the_notebook_that_teaches_it():
    missing, unknown = [], []
    for qualname, obj in _public_objects():
        named = STEM.findall(inspect.getdoc(obj) or "")
        if not named:
            missing.append(qualname)
        unknown += [f"{qualname}: {s}" for s in named if s not in STEMS and not s.startswith(tuple(STEMS))]
    assert not missing, f"{len(missing)} public functions/classes name no notebook (e.g. '(taught in " \
                        f"04_adversarial_examples)'): {missing}"
    assert not unknown, f"docstrings name notebooks that do not exist: {unknown}"


def test_the_notebook_check_sees_enough_to_mean_something():
    objects = dict(_public_objects())
    assert len(objects) > 150, len(objects)  # the check walks every subpackage
    for name in ("utils.attacks.evasion.fgsm", "utils.metrics.threshold_at_fpr", "utils.validation.images",
                 "utils.course.report.expect", "utils.widgets.core.figure_png"):
        assert name in objects, name


def test_tooling_imports_no_ml_stack():
    """Cleaning a notebook or checking the lock must not load torch (nor numpy, sklearn, matplotlib)."""
    tooling = [n for n in _modules(include_tooling=True) if n.startswith("utils.tooling")]
    light = tooling + ["utils", "utils.course", "utils.course.numerics", "utils.course.params", "utils.paths"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in light)
            + "print(sorted(m for m in ('torch', 'numpy', 'sklearn', 'matplotlib', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", f"{light} loaded {out.stdout.strip()}"


#: Input checks that used to be written in each module; they live in utils.validation now.
CHECKER_NAMES = {"_is_int", "_is_real", "_check_eps", "_check_int", "_check_real", "_check_rate", "_check_seed",
                 "_check_target", "_check_labels", "_check_label_range", "_labels", "_check_images", "_as_tensors",
                 "_check_xy", "_check_eval", "_check_features", "_as_mask", "_check_alpha", "_check_window", "_array"}


def test_no_module_writes_its_own_input_checks():
    found = []
    for path in _sources("."):
        if path.name == "validation.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in CHECKER_NAMES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not found, f"use utils.validation instead: {found}"


def test_algorithm_modules_import_no_widgets():
    offenders = [str(p.relative_to(ROOT)) for p in _sources("attacks", "defenses", "monitoring", "data.py",
                                                             "models.py", "training.py", "metrics.py",
                                                             "validation.py")
                 if "ipywidgets" in p.read_text()]
    assert not offenders, f"widget code belongs in utils/widgets: {offenders}"


def test_one_figure_renderer_and_one_thread_limiter():
    savefig = [str(p.relative_to(ROOT)) for p in _sources(".") if ".savefig(" in p.read_text()
               and p != UTILS / "widgets" / "core.py"]
    assert not savefig, f"render figures with utils.widgets.core.figure_png: {savefig}"
    threadpool = [str(p.relative_to(ROOT)) for p in _sources(".") if "threadpoolctl" in p.read_text()
                  and p != UTILS / "course" / "numerics.py"]
    assert not threadpool, f"limit BLAS threads with utils.course.numerics: {threadpool}"


def test_the_test_plugin_is_this_repositorys_only():
    """No pytest11 entry point: other projects' pytest runs in the same environment stay untouched."""
    ours = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.value.startswith(("utils", "tests"))]
    assert not ours, ours
    assert "-p modelsec_plugin" in (ROOT / "pyproject.toml").read_text()
    assert "modelsec_plugin" in sys.modules, "pytest should have loaded tests/modelsec_plugin.py"


def test_readme_maps_every_subpackage():
    readme = (ROOT / "README.md").read_text()
    packages = sorted(p.parent.relative_to(ROOT).as_posix() + "/" for p in UTILS.glob("*/__init__.py"))
    missing = [p for p in packages if p not in readme]
    assert not missing, f"README's map of utils lacks {missing}"
