"""The shape of the course: names, alignment, cleanliness, parameters, citations."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from utils.tooling import notebooks
from utils.course import threat_model

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LABS = sorted((ROOT / "labs").glob("*.ipynb"))
ALL = LESSONS + SOLUTIONS + LABS
#: Lessons without a lab of their own: the workbench is a tool; the capstone (11) is its exercise.
LAB_LESS = {"10_workbench": "11_capstone"}


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def test_names_follow_nn_snake_case():
    bad = [p.name for p in ALL if not notebooks.NAME_RE.match(p.name)]
    assert not bad, f"notebook names must be NN_snake_case.ipynb: {bad}"
    assert all(notebooks.LAB_RE.match(p.name) for p in SOLUTIONS + LABS)


def test_lessons_labs_and_solutions_line_up():
    lessons = {p.stem for p in LESSONS}
    labs = {p.stem.removesuffix("_lab") for p in LABS}
    sols = {p.stem.removesuffix("_lab") for p in SOLUTIONS}
    assert labs == sols, f"labs/ and solutions/ differ: {sorted(labs ^ sols)}"
    assert labs == lessons - set(LAB_LESS), f"every lesson needs a lab and every lab a lesson: {sorted(labs ^ lessons)}"
    assert set(LAB_LESS) <= lessons and set(LAB_LESS.values()) <= labs
    numbers = [p.name[:2] for p in LESSONS]
    assert len(numbers) == len(set(numbers)), "two lessons share a number"


def test_notebooks_are_clean():
    changed = notebooks.clean_paths(ALL, check=True)
    assert not changed, f"run `make clean-notebooks`: {[str(p.relative_to(ROOT)) for p in changed]}"


def test_labs_have_no_outputs_and_lessons_do():
    for p in LABS:
        nb = nbformat.read(str(p), as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), p.name
    for p in LESSONS + SOLUTIONS:
        nb = nbformat.read(str(p), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert sum(bool(c.outputs) for c in code) >= len(code) // 3, f"{p.name} looks unexecuted"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{p.name} was committed with an error output"


@pytest.mark.parametrize("path", LESSONS + SOLUTIONS, ids=_ids(LESSONS + SOLUTIONS))
def test_parameters_cell_then_setup(path):
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert params, "no cell tagged 'parameters'"
    src = code[params[0]].source
    for name in ("seed", "fast", "device"):
        assert re.search(rf"^{name}\s*=", src, re.M), f"parameters cell lacks {name!r}"
    after = "\n".join(c.source for c in code[params[0] + 1:params[0] + 3])
    assert "utils.setup(" in after, "utils.setup(...) must follow the parameters cell"


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_no_path_hacks_or_unsafe_loading(path):
    src = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells)
    assert "sys.path.append" not in src and "sys.path.insert" not in src
    assert "import robustbench" not in src and "from robustbench" not in src


@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lessons_have_the_fixed_shape_and_cite_the_threat_model(path):
    nb = nbformat.read(str(path), as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    first = nb.cells[0].source
    assert first.startswith(f"# {path.name[:2]}"), "the first cell is the title '# NN · ...'"
    for heading in ("What to take away", "Further reading"):
        assert heading in text, f"missing section {heading!r}"
    lab = LAB_LESS.get(path.stem, path.stem)
    assert f"labs/{lab}_lab.ipynb" in text, f"the lesson points to its lab, labs/{lab}_lab.ipynb"
    assert f'report.record("{path.stem}"' in text, "the lesson records its headline metrics"
    number = path.name[:2]
    if number != "00":
        lesson = threat_model.lesson(number)
        cited_atlas = set(re.findall(r"AML\.[TM]\d{4}(?:\.\d{3})?", text))
        cited_owasp = set(re.findall(r"\bML(?:0[1-9]|10)\b", text))
        assert cited_atlas & set(lesson.atlas), f"cites none of its ATLAS ids {lesson.atlas}"
        assert cited_owasp & set(lesson.owasp), f"cites none of its OWASP entries {lesson.owasp}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_solutions_record_or_summarize(path):
    text = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells)
    assert "summary()" in text, "a lab ends with utils.course.grading.summary()"


#: What a fresh clone must hold for `make run` and `make test` to work, and to be usable.
MUST_EXIST = ("notebooks/", "labs/", "solutions/", "datasets/", "utils/", "tests/", "environment.yml",
              "Makefile", "README.md", "pyproject.toml", "requirements.lock", "LICENSE", ".ci/run", ".gitignore")

#: What must never be committed: build output, caches, environments, editor files,
#: model weights and pickles (the course trains and caches them), secrets.
MUST_NOT_COMMIT = re.compile(
    r"(^|/)(\.ipynb_checkpoints|__pycache__|\.venv|build|\.cache|\.pytest_cache|[^/]*\.egg-info)/"
    r"|(^|/)Untitled[^/]*\.ipynb$|\.py[co]$"
    r"|\.(safetensors|pt|pth|ckpt|pkl|pickle|joblib|onnx)$"
    r"|(^|/)\.env$|\.(pem|key)$|(^|/)id_(rsa|ed25519)$")

#: Outside datasets/ (whose files MANIFEST.json lists with their sha256), no file this big.
MAX_FILE_BYTES = 2_000_000


def _tracked() -> list[str]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.splitlines()
    if not tracked:
        pytest.skip("not a git checkout")
    return tracked


def test_what_must_exist_is_committed():
    tracked = set(_tracked())
    missing = [p for p in MUST_EXIST
               if not (any(t.startswith(p) for t in tracked) if p.endswith("/") else p in tracked)]
    assert not missing, f"a fresh clone would lack: {missing}"


def test_license_matches_pyproject():
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License"), "LICENSE must be the license pyproject.toml declares"


def test_nothing_that_must_not_be_committed_is_tracked():
    tracked = _tracked()
    stray = [p for p in tracked if MUST_NOT_COMMIT.search(p)]
    assert not stray, f"tracked files that must not be committed: {stray}"
    big = [p for p in tracked if not p.startswith("datasets/") and (ROOT / p).is_file()
           and (ROOT / p).stat().st_size > MAX_FILE_BYTES]
    assert not big, f"files over {MAX_FILE_BYTES} bytes outside datasets/: {big}"


@pytest.mark.parametrize("path", ["build/x.ipynb", "a/__pycache__/m.pyc", "utils/x.pyc", ".venv/bin/python",
                                  "notebooks/.ipynb_checkpoints/a.ipynb", "Untitled1.ipynb", "model.safetensors",
                                  "w.pt", "x/y.pkl", ".env", "keys/server.key", "modelsec_workbench.egg-info/PKG-INFO",
                                  ".cache/models/a.json"])
def test_must_not_commit_catches(path):
    assert MUST_NOT_COMMIT.search(path)


@pytest.mark.parametrize("path", ["notebooks/04_adversarial_examples.ipynb", "utils/attacks/evasion.py", "LICENSE",
                                  "datasets/MANIFEST.json", "tests/test_course.py", "utils/course/report.py",
                                  "binder/postBuild", "examples/ci.yml"])
def test_must_not_commit_allows(path):
    assert not MUST_NOT_COMMIT.search(path)


def test_gitignore_keeps_build_output_out():
    ignored = set((ROOT / ".gitignore").read_text().split())
    assert {".venv/", "build/", ".cache/", "__pycache__/"} <= ignored


def test_lessons_save_the_state_of_the_widgets_they_show():
    """Read without a kernel (GitHub, nbviewer), a lesson shows its panels, not VBox(children=...)."""
    for path in LESSONS:
        nb = json.loads(path.read_text())
        shown = {o["data"][notebooks.WIDGET_VIEW]["model_id"] for c in nb["cells"] for o in c.get("outputs", [])
                 if notebooks.WIDGET_VIEW in o.get("data", {})}
        if not shown:
            continue
        state = nb["metadata"].get("widgets", {}).get(notebooks.WIDGET_STATE, {}).get("state", {})
        assert shown <= set(state), f"{path.name}: widget outputs without saved state: {sorted(shown - set(state))}"


def test_no_check_code_stands_in_a_lab():
    """A lab's checks live in utils.lab_checks: no check function or reference answer in the notebook."""
    import nbformat

    for path in sorted((ROOT / "labs").glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        found = [w for w in ("def _check", "require(", "require_close(", "hashlib") if w in code]
        assert not found, f"{path.name}: check code stands in the lab ({found}); move it into utils/lab_checks"
        module = f"lab{path.name[:2]}"
        assert f"from utils.lab_checks import {module}" in code and f"{module}.check(" in code, path.name
