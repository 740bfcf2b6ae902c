"""The workshop kit: binder/ (what repo2docker installs, the lock's pins), hub/config.yaml
(yamllint-clean, sized from the measured memory), and the instructor guide (every lesson,
the commands it names exist)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from utils.paths import ROOT
from utils.tooling import binder, lockfile

R2D = Path(sys.executable).parent / "jupyter-repo2docker"
YAMLLINT = Path(sys.executable).parent / "yamllint"
GUIDE = ROOT / "docs" / "instructor-guide.md"
LINT_RULES = "{extends: default, rules: {line-length: {max: 110}}}"


# --------------------------------------------------------------------------- binder/


def test_binder_files_are_what_the_lock_gives():
    assert binder.out_of_date() == [], "run `python -m utils.tooling.binder`"
    assert binder.main(["--check"]) == 0


def test_binder_requirements_pin_every_locked_version_and_a_cpu_torch():
    text = (ROOT / "binder" / "requirements.txt").read_text()
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert lines[0] == f"--extra-index-url {binder.TORCH_CPU_INDEX}"
    pins = {lockfile.parse(l)[0]: lockfile.parse(l)[1:] for l in lines[1:]}
    locked = {lockfile.parse(l)[0]: lockfile.parse(l)[1:] for l in lockfile.requirements()}
    assert pins.pop("torch") == (locked["torch"][0] + "+cpu", None)
    for name, (version, marker) in locked.items():
        if lockfile.TORCH_STACK.match(name):
            assert name not in pins  # no CUDA libraries in the image
        else:
            assert pins[name] == (version, marker), name
    assert set(pins) <= set(locked)
    assert "torchattacks" not in pins  # installed without its declared dependencies, in postBuild


def test_a_changed_lock_makes_the_check_fail(tmp_path, monkeypatch):
    binder.write(tmp_path)
    assert binder.out_of_date(tmp_path) == []
    lines = lockfile.requirements()
    changed = [re.sub(r"==[^ ;]+", "==0.0.1", l) if l.startswith("numpy==") else l for l in lines]
    monkeypatch.setattr(lockfile, "requirements", lambda path=None: changed)
    assert binder.out_of_date(tmp_path) == ["requirements.txt"]
    (tmp_path / "postBuild").chmod(0o644)
    assert "postBuild (not executable)" in binder.out_of_date(tmp_path)


def test_postbuild_repeats_the_makefiles_install_steps():
    post = (ROOT / "binder" / "postBuild").read_text()
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^TORCHATTACKS := (\S+)", make, re.M)[1] == lockfile.TORCHATTACKS
    for step in (f"pip install --no-cache-dir --no-deps {lockfile.TORCHATTACKS}",
                 "pip install --no-cache-dir --no-deps -e .",
                 "python -m utils.tooling.lockfile verify", "python -m utils.course.numerics install-kernel"):
        assert step in post
    assert (ROOT / "binder" / "runtime.txt").read_text() == f"python-{lockfile.CONDA_PYTHON}\n"
    bash = shutil.which("bash")
    assert subprocess.run([bash, "-n", str(ROOT / "binder" / "postBuild")]).returncode == 0


def _clean_copy(tmp_path: Path) -> Path:
    """The repository as a fresh clone would have it, with the working tree's binder/ files."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no fresh clone to make")
    dest = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{ROOT}", str(dest)], check=True)
    shutil.rmtree(dest / "binder", ignore_errors=True)
    shutil.copytree(ROOT / "binder", dest / "binder")
    return dest


def _dockerfile(repo: Path, *extra: str) -> str:
    out = subprocess.run([str(R2D), "--no-build", "--debug", "--user-id", "1000", "--user-name", "jovyan", *extra,
                          str(repo)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, out.stderr  # the Dockerfile, the log


@pytest.mark.skipif(not R2D.exists(), reason="jupyter-repo2docker is not installed")
def test_repo2docker_would_install_python_311_the_binder_requirements_and_run_postbuild(tmp_path):
    text, log = _dockerfile(_clean_copy(tmp_path))
    assert "Building conda environment for python=3.11" in log
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in text
    assert "RUN ./binder/postBuild" in text
    assert "COPY --chown=1000:1000 src/ ${REPO_DIR}/" in text  # the learner owns the files
    # binder/ wins: the top-level environment.yml (conda) is not what gets installed
    assert "environment.yml" not in text
    steps = ('-r "binder/requirements.txt"', "COPY --chown=1000:1000 src/ ", "./binder/postBuild")
    order = [text.index(s) for s in steps]
    assert order == sorted(order)


@pytest.mark.skipif(not R2D.exists(), reason="jupyter-repo2docker is not installed")
def test_the_hub_image_command_adds_nbgitpuller_to_the_same_image(tmp_path):
    readme = (ROOT / "hub" / "README.md").read_text()
    appendix = re.search(r"--appendix '([^']+)'", readme)[1]
    assert re.fullmatch(r"RUN pip install --no-cache-dir nbgitpuller==[0-9.]+", appendix)
    text, _ = _dockerfile(_clean_copy(tmp_path), "--target-repo-dir", "/srv/modelsec-workbench", "--appendix", appendix)
    assert text.rstrip().endswith(appendix) and "RUN ./binder/postBuild" in text


# --------------------------------------------------------------------------- hub/


def test_hub_config_is_yamllint_clean():
    out = subprocess.run([str(YAMLLINT), "-s", "-d", LINT_RULES, str(ROOT / "hub" / "config.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_yamllint_would_catch_a_broken_config(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text((ROOT / "hub" / "config.yaml").read_text().replace("  cpu:\n", "  cpu:\n   \tbroken: [\n", 1))
    assert subprocess.run([str(YAMLLINT), "-s", "-d", LINT_RULES, str(bad)], capture_output=True).returncode != 0


def _bytes(spec: str) -> int:
    """JupyterHub's byte specification: K, M, G, T are powers of 1024."""
    m = re.fullmatch(r"([0-9.]+)([KMGT])", spec)
    return int(float(m[1]) * 1024 ** ("KMGT".index(m[2]) + 1))


def test_hub_config_sizes_each_learner_from_the_measured_peaks():
    cfg = yaml.safe_load((ROOT / "hub" / "config.yaml").read_text())
    single = cfg["singleuser"]
    assert single["image"]["name"] and single["cmd"] == "jupyterhub-singleuser" and single["defaultUrl"] == "/lab"
    readme = (ROOT / "hub" / "README.md").read_text()
    lesson_peak = float(re.search(r"lesson kernel peak: ([0-9.]+) MB", readme)[1])
    lab_peak = float(re.search(r"lab kernel peak: ([0-9.]+) MB", readme)[1])
    server = float(re.search(r"Jupyter server: ([0-9.]+) MB", readme)[1])
    busiest = (lesson_peak + lab_peak + server) * 2**20
    guarantee, limit = _bytes(single["memory"]["guarantee"]), _bytes(single["memory"]["limit"])
    assert busiest <= guarantee <= 1.2 * busiest and limit >= guarantee + lesson_peak * 2**20
    assert 0 < single["cpu"]["guarantee"] <= single["cpu"]["limit"] <= 2
    assert single["extraEnv"]["ATEN_CPU_CAPABILITY"] == "default" and single["extraEnv"]["MKL_CBWR"] == "COMPATIBLE"
    cull = cfg["cull"]
    assert cull["enabled"] is True and 1800 <= cull["timeout"] <= 2 * 3600 and 60 <= cull["every"] <= cull["timeout"]
    assert cfg["prePuller"]["continuous"]["enabled"] is True


def test_the_measured_peaks_in_the_hub_readme_are_the_runs():
    """The README's figures are build/metrics.json's maxima (when a `make run` is there to compare)."""
    import json

    metrics = ROOT / "build" / "metrics.json"
    if not metrics.exists():
        pytest.skip("no build/metrics.json: run `make run` first")
    rows = json.loads(metrics.read_text())["notebooks"]
    readme = (ROOT / "hub" / "README.md").read_text()
    for folder, label in (("notebooks", "lesson"), ("solutions", "lab")):
        peaks = [r["peak_rss_mb"] for r in rows if r["notebook"].startswith(folder) and r["peak_rss_mb"]]
        stated = float(re.search(rf"{label} kernel peak: ([0-9.]+) MB", readme)[1])
        assert stated >= max(peaks) and stated - max(peaks) < 50, (label, stated, max(peaks))


def test_capacity_arithmetic_follows_from_the_config():
    cfg = yaml.safe_load((ROOT / "hub" / "config.yaml").read_text())
    readme = (ROOT / "hub" / "README.md").read_text()
    cpu, mem = (float(x) for x in re.search(r"allocatable: ([0-9.]+) CPU and ([0-9.]+) GiB", readme).groups())
    per_node = min(int(cpu // cfg["singleuser"]["cpu"]["guarantee"]),
                   int(mem * 2**30 // _bytes(cfg["singleuser"]["memory"]["guarantee"])))
    assert f"{per_node} learners per node" in readme
    for learners in (30, 100):
        nodes = -(-learners // per_node)
        assert f"{learners} learners: {nodes} user nodes" in readme


def test_nbgitpuller_links_in_the_docs_are_well_formed():
    text = (ROOT / "hub" / "README.md").read_text() + GUIDE.read_text()
    links = re.findall(r"https://[^\s)`]+/hub/user-redirect/git-pull\?[^\s)`]+", text)
    assert links
    for link in links:
        assert re.search(r"[?&]repo=https%3A%2F%2F", link) and "urlpath=lab%2Ftree%2F" in link and "branch=" in link


# --------------------------------------------------------------------------- the instructor guide


def test_the_guide_covers_every_lesson_and_both_schedules():
    text = GUIDE.read_text()
    planned: set[str] = set()  # a lesson being written gets a short planned entry
    lessons = sorted({p.name[:2] for p in (ROOT / "notebooks").glob("*.ipynb")} | {f"{n:02d}" for n in range(10)})
    for nn in lessons:
        section = re.search(rf"^### {nn} · (.+?)$(.*?)(?=^### |^## |\Z)", text, re.M | re.S)
        assert section, f"no section for lesson {nn}"
        body = section[2]
        if nn not in planned:
            for part in ("Core", "Optional", "Discuss", "Misconceptions", "On the projector"):
                assert f"**{part}" in body, f"lesson {nn}: no {part}"
            assert len(re.findall(r"^\s*\d\. ", body.split("**Discuss")[1].split("**")[1], re.M)) == 3
    assert "## One-day workshop" in text and "## Two-day workshop" in text


def test_the_guide_names_commands_that_exist():
    text = GUIDE.read_text()
    make = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"`make (\w[\w-]*)", text)):
        assert re.search(rf"^{target}:", make, re.M), f"the guide names `make {target}`"
    for module in set(re.findall(r"python -m (utils(?:\.\w+)+)", text)):
        path = ROOT / module.replace(".", "/")
        assert path.with_suffix(".py").exists() or (path / "__main__.py").exists(), module
    for stem in set(re.findall(r"\b(\d\d_[a-z_]+?)(?:_lab)?\.ipynb", text)):
        assert list(ROOT.glob(f"notebooks/{stem}.ipynb")), stem
