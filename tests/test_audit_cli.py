"""python -m utils.audit end to end: a course model passes, a backdoored one fails naming its target,
bad input exits 2 with a message, and the batch command audits a folder on a two-worker cluster."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from utils import audit

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "MODELSEC_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "utils.audit", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import utils

    utils.setup(0, plots=False)
    root = tmp_path_factory.mktemp("cli")
    return {"root": root,
            "clean": audit.inputs.course_example(root / "models" / "clean", "clean"),
            "backdoor": audit.inputs.course_example(root / "models" / "backdoor", "backdoor"),
            "data": audit.inputs.course_data(root / "test.npz"),
            "data_bd": audit.inputs.course_data(root / "test_bd.npz", kind="backdoor")}


def test_a_course_model_passes_and_the_scorecard_is_written(files, tmp_path):
    out = tmp_path / "out"
    r = _cli("--model", str(files["clean"]), "--data", str(files["data"]), "--out", str(out), "--budget", "quick")
    assert r.returncode == 0, r.stderr
    assert "PASSED" in r.stdout and "Clean accuracy: 0.9" in r.stdout
    for name in ("scorecard.json", "scorecard.md", "scorecard.html", "drift_reference.npz"):
        assert (out / name).is_file(), name
    card = audit.Scorecard.from_json(out / "scorecard.json")  # valid against the schema
    assert card.passed and card.settings["budget"] == "quick"
    assert np.load(out / "drift_reference.npz")["outputs"].shape == (360, 10)
    assert "audit" in r.stderr and "check" in r.stderr  # the progress bar goes to stderr


def test_a_backdoored_model_fails_the_gate_and_its_target_is_named(files, tmp_path):
    out = tmp_path / "out"
    r = _cli("--model", str(files["backdoor"]), "--data", str(files["data_bd"]), "--out", str(out),
             "--budget", "quick", "--quiet")
    assert r.returncode == 1, r.stderr
    assert "FAILED: backdoor" in r.stdout
    record = json.loads((out / "scorecard.json").read_text())
    bd = next(c for c in record["checks"] if c["name"] == "backdoor")
    assert bd["passed"] is False and bd["details"]["target_class"] == 0
    assert "flags class 0" in (out / "scorecard.md").read_text()


def test_fail_on_chooses_the_gates(files, tmp_path):
    r = _cli("--model", str(files["backdoor"]), "--data", str(files["data_bd"]), "--out", str(tmp_path),
             "--budget", "quick", "--quiet", "--checks", "clean_accuracy,backdoor", "--fail-on", "clean_accuracy")
    assert r.returncode == 0, r.stderr
    assert "Backdoor scan" in r.stdout and "FAIL" in r.stdout and "PASSED" in r.stdout


def test_module_code_and_weights_given_separately(files, tmp_path):
    spec = json.loads((files["clean"] / "model.json").read_text())
    r = _cli("--model", spec["module"], "--kwargs", json.dumps(spec["kwargs"]),
             "--weights", str(files["clean"] / "weights.safetensors"), "--sha256", spec["sha256"],
             "--data", str(files["data"]), "--out", str(tmp_path), "--checks", "clean_accuracy", "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "scorecard.json").read_text())["model"]["provenance"] == "pinned"


def _bad(case: str, files: dict, tmp: Path) -> tuple[list[str], str]:
    """The arguments of a bad run and the message expected on stderr."""
    d = audit.load_data(files["data"])
    model = ["--model", str(files["clean"])]
    data = tmp / "bad.npz"
    if case == "wrong_shape":
        np.savez(data, x=np.zeros((200, 1, 5, 5), np.float32), y=d.y[:200])
        return model + ["--data", str(data)], "does not take inputs of shape (1, 5, 5)"
    if case == "out_of_range":
        np.savez(data, x=d.X * 16, y=d.y)
        return model + ["--data", str(data)], "inputs have values in [0.000, 16.000]"
    if case == "labels_beyond_classes":
        return model + ["--data", str(files["data"]), "--classes", "a,b,c"], "labels must be class indices in [0, 2]"
    if case == "too_few":
        np.savez(data, x=d.X[:40], y=d.y[:40])
        return model + ["--data", str(data)], "clean_accuracy needs at least 100 evaluation examples"
    if case == "malicious_pickle":
        from utils.deployment.serialization import make_malicious_pickle

        marker = Path(tempfile.mkdtemp()) / "ran"
        evil = make_malicious_pickle(tmp / "evil.pt", marker)
        return (["--model", "utils.models:build_model", "--kwargs", json.dumps(audit.inputs.COURSE_KWARGS),
                 "--weights", str(evil), "--data", str(files["data"])], "refused at step 'scan'")
    if case == "tampered":
        import shutil

        folder = shutil.copytree(files["clean"], tmp / "tampered")
        (folder / "weights.safetensors").write_bytes(b"\0" * 100)
        return ["--model", str(folder), "--data", str(files["data"])], "refused at step 'hash'"
    if case == "no_such_data":
        return model + ["--data", str(tmp / "missing.npz")], "is not an existing file"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["wrong_shape", "out_of_range", "labels_beyond_classes", "too_few",
                                  "malicious_pickle", "tampered", "no_such_data"])
def test_bad_input_exits_2_with_a_message(files, tmp_path, case):
    args, message = _bad(case, files, tmp_path)
    r = _cli(*args, "--out", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert message in r.stderr and r.stderr.startswith("error: ")
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "scorecard.json").exists()


def test_batch_on_a_two_worker_cluster_equals_the_serial_run(files, tmp_path):
    out = tmp_path / "batch"
    r = _cli("batch", "--models", str(files["root"] / "models"), "--data", str(files["data"]), "--out", str(out),
             "--workers", "2", "--checks", "clean_accuracy,backdoor", "--quiet")
    assert r.returncode == 1, r.stderr  # the backdoored model fails its gate
    assert "backdoor: FAIL (backdoor)" in r.stdout and "clean: PASS" in r.stdout
    serial = audit.audit_folder(files["root"] / "models", files["data"], checks="clean_accuracy,backdoor",
                                serial=True)
    for res in serial:
        name = Path(res.item["model"]).name
        par = audit.Scorecard.from_json(out / name / "scorecard.json")
        assert par.comparable() == audit.Scorecard.from_dict(res.value).comparable(), name
    rows = json.loads((out / "batch.json").read_text())
    assert [row["backdoor_target"] for row in rows] == [0, None]


def test_the_scorecard_is_recorded_in_the_governance_trail(files, tmp_path):
    trail = pytest.importorskip("utils.governance.trail")
    path = tmp_path / "trail.jsonl"
    r = _cli("--model", str(files["clean"]), "--data", str(files["data"]), "--out", str(tmp_path / "out"),
             "--checks", "clean_accuracy", "--quiet", "--trail", str(path), "--trail-seed", "3")
    assert r.returncode == 0, r.stderr
    entries = trail.read_entries(path)
    assert [e.kind for e in entries] == ["scorecard"] and entries[0].actor == "workbench"
    card = audit.Scorecard.from_json(tmp_path / "out" / "scorecard.json")
    assert entries[0].data["scorecard_sha256"] == card.sha256()
    assert f"entry {entries[0].hash[:16]}" in r.stdout
