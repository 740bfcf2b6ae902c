"""utils.governance.release: the release gate, its command line and the CI workflow that runs it (lesson 09)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from utils import deployment as dep
from utils.governance import release as R
from utils.governance import trail as T
from utils.models import build_model
from utils.validation import ValidationError

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "ci" / "model-release.yml"
PYTHON = ROOT / ".venv" / "bin" / "python"
GOOD = {"clean_accuracy": 0.9634, "robust_accuracy": 0.8125, "backdoor_flagged": 0.0, "membership_tpr": 0.0412}
KEY_SEED = 11


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A small real release: safetensors weights, a signature, an ML-BOM, and a trail whose
    evaluation entries record the metrics (as utils.governance.evidence.record writes them)."""
    d = tmp_path_factory.mktemp("release")
    weights = d / "model.safetensors"
    sha = dep.save_weights(build_model("mlp", (1, 8, 8), 10, seed=0, hidden=(16,)), weights)
    keys = dep.make_keypair(d, "publisher")
    signature = dep.sign(weights, keys.private, d / "model.sig")
    data = d / "digits.npz"
    data.write_bytes(b"the training digits")
    bom = dep.mlbom(weights, {"digits": data}, {"model": "mlp", "hidden": [16]}, packages=["torch", "safetensors"],
                    name="digits-mlp", version="2")
    (d / "model.mlbom.json").write_text(json.dumps(bom))
    key = T.signing_key(KEY_SEED)
    t = T.AuditTrail(d / "trail.jsonl", key, clock=T.step_clock())
    t.append("training", {"model": sha, "config": {"model": "mlp"}}, actor="training")
    runs = {name: t.append("evaluation", {"metric": f"{name}@v2", "value": value, "n": 100, "model": sha},
                           actor="evaluation").hash for name, value in GOOD.items()}
    # a measurement of another model, and one in the {"metrics": {...}} form
    other = t.append("evaluation", {"metric": "clean_accuracy@v1", "value": 0.9634, "model": "e" * 64})
    both = t.append("evaluation", {"metrics": {"clean_accuracy": 0.9634, "robust_accuracy": 0.8125}, "model": sha})
    head = t.write_head()
    evidence = {"model": {"name": "digits-mlp", "version": "2", "weights": "model.safetensors", "sha256": sha},
                "metrics": {k: {"value": GOOD[k], "run": runs[k]} for k in GOOD},
                "signature": "model.sig", "mlbom": "model.mlbom.json"}
    (d / "evidence.json").write_text(json.dumps(evidence, indent=1))
    return {"dir": d, "weights": weights, "sha": sha, "keys": keys, "signature": signature, "trail": t,
            "key": key, "head": head, "evidence": evidence, "runs": runs, "other": other.hash, "both": both.hash}


def _write(release, tmp_path, name="evidence.json", **changes):
    """A copy of the good evidence in the release folder, with ``changes`` applied."""
    doc = json.loads(json.dumps(release["evidence"]))
    for k, val in changes.items():
        doc[k] = val
    path = release["dir"] / f"{tmp_path.name}-{name}"
    path.write_text(json.dumps(doc))
    return path


def _metric(release, name, value=None, run=None):
    doc = json.loads(json.dumps(release["evidence"]["metrics"]))
    if value is not None:
        doc[name]["value"] = value
    if run is not None:
        doc[name]["run"] = run
    return doc


def _evaluate(release, evidence=None, **kw):
    kw.setdefault("trail_path", release["trail"].path)
    kw.setdefault("public_key", release["key"].public_key())
    kw.setdefault("publisher_key", release["keys"].public)
    return R.evaluate(release["dir"] / "evidence.json" if evidence is None else evidence, R.DEFAULT_RULES, **kw)


def _failed(decision):
    return {r.rule.name: r.reason for r in decision.failed}


# --------------------------------------------------------------------------- rules and evidence


def test_rules_are_validated_and_checked():
    r = R.Rule("acc", "clean_accuracy", ">=", 0.9, "it must work")
    assert r.holds(0.9) and not r.holds(0.89) and not r.holds(None) and not r.holds(True) and r.text() == \
        "clean_accuracy >= 0.9"
    assert R.Rule("x", "m", "<", 0.1, "w").holds(0.05) and not R.Rule("x", "m", "==", 1, "w").holds(1.5)
    with pytest.raises(ValidationError, match="op = '=>' is not one of the choices"):
        R.Rule("acc", "clean_accuracy", "=>", 0.9, "w")
    with pytest.raises(ValidationError, match="threshold must be a finite number"):
        R.Rule("acc", "clean_accuracy", ">=", float("nan"), "w")
    with pytest.raises(ValidationError, match="why must be a non-empty string"):
        R.Rule("acc", "clean_accuracy", ">=", 0.9, "")
    with pytest.raises(ValidationError, match="needs op '=='"):
        R.Rule("sig", "signature_valid", ">=", True, "w")
    with pytest.raises(ValidationError, match="must be '== True'"):
        R.Rule("sig", "signature_valid", "==", False, "w")
    names = [r.metric for r in R.DEFAULT_RULES]
    assert names[:4] == ["clean_accuracy", "robust_accuracy", "backdoor_flagged", "membership_tpr"]
    assert set(R.ARTEFACTS) <= set(names) and "eps = 0.1" in R.DEFAULT_RULES[1].why
    assert R.rules_from([{"name": "a", "metric": "m", "op": "<=", "threshold": 1, "why": "w"}])[0].op == "<="
    with pytest.raises(ValidationError, match="rule 0 has"):
        R.rules_from([{"name": "a"}])


def test_load_evidence_names_the_bad_field(release, tmp_path):
    ev = R.load_evidence(release["dir"] / "evidence.json")
    assert ev["model"]["weights"] == str(release["weights"].resolve()) and ev["signature"].endswith("model.sig")
    good = release["evidence"]
    bad = [({**good, "model": {**good["model"], "sha256": "abc"}}, "model.sha256"),
           ({k: val for k, val in good.items() if k != "mlbom"}, "evidence lacks 'mlbom'"),
           ({**good, "metrics": {"clean_accuracy": {"value": "0.9"}}}, "metrics.clean_accuracy.value"),
           ({**good, "metrics": {"clean_accuracy": {"value": 0.9, "run": "xyz"}}}, "metrics.clean_accuracy.run"),
           ({**good, "metrics": {"signature_valid": {"value": 1.0}}}, "the gate measures signature_valid itself"),
           ({**good, "model": {"name": "m", "version": "1"}}, "model lacks"),
           ({**good, "extra": 1}, "unknown fields"),
           ({**good, "signature": 3}, "signature = 3")]
    for doc, message in bad:
        with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
            R.load_evidence(doc)
    broken = tmp_path / "broken.json"
    broken.write_text('{"model": ')
    with pytest.raises(ValidationError, match="'broken.json' is not JSON"):
        R.load_evidence(broken)


# --------------------------------------------------------------------------- the gate


def test_good_evidence_is_promoted_with_every_rule_traced(release):
    decision = _evaluate(release)
    assert decision.passed, decision.text()
    assert len(decision.results) == len(R.DEFAULT_RULES) and not decision.failed
    reasons = {r.rule.metric: r.reason for r in decision.results}
    assert reasons["clean_accuracy"].startswith("traced to entry 1")
    assert "pinned key" in reasons["signature_valid"] and "names these weights" in reasons["mlbom_valid"]
    assert decision.summary() == f"PROMOTED digits-mlp v2: {len(R.DEFAULT_RULES)} of {len(R.DEFAULT_RULES)} rules hold"
    table = decision.table()
    assert list(table.columns) == ["check", "value", "passed", "reason"] and table["passed"].all()
    # the {"metrics": {...}} form of an evaluation entry is traceable too
    metrics = _metric(release, "robust_accuracy", run=release["both"])
    assert _evaluate(release, {**R.load_evidence(release["dir"] / "evidence.json"), "metrics": metrics}).passed


@pytest.mark.parametrize("case", ["below threshold", "typed-in number", "unknown run", "another model's run",
                                  "not an evaluation", "missing metric", "no trail key"])
def test_metrics_below_threshold_or_not_traceable_fail(release, case):
    ev = R.load_evidence(release["dir"] / "evidence.json")
    failed_rule = "clean accuracy"
    if case == "below threshold":
        t = T.AuditTrail(release["dir"] / "low.jsonl", release["key"], clock=T.step_clock())
        low = t.append("evaluation", {"metric": "clean_accuracy@v2", "value": 0.85, "model": release["sha"]})
        ev["metrics"] = _metric(release, "clean_accuracy", 0.85, low.hash)
        decision = _evaluate(release, ev, trail_path=t.path)
        # the other metrics' runs are not in this trail: only the low one is traceable, and it fails its threshold
        expected = "0.85 fails clean_accuracy >= 0.9; traced to entry 0 (%s)" % low.hash[:12]
        assert _failed(decision)[failed_rule] == expected
        return
    if case == "typed-in number":
        ev["metrics"] = _metric(release, "clean_accuracy", 0.991)
        expected = "not traceable: the entry records clean_accuracy = 0.9634, the evidence says 0.991"
    elif case == "unknown run":
        ev["metrics"] = _metric(release, "clean_accuracy", run="ab" * 32)
        expected = "not traceable: run abababababab is not an entry of the trail"
    elif case == "another model's run":
        ev["metrics"] = _metric(release, "clean_accuracy", run=release["other"])
        expected = "not traceable: measured on model eeeeeeeeeeee"
    elif case == "not an evaluation":
        ev["metrics"] = _metric(release, "clean_accuracy", run=release["trail"].entries()[0].hash)
        expected = "not traceable: run %s is a 'training' entry" % release["trail"].entries()[0].hash[:12]
    elif case == "missing metric":
        del ev["metrics"]["membership_tpr"]
        failed_rule, expected = "membership leakage", "missing: the evidence has no membership_tpr"
    else:
        with pytest.raises(ValidationError, match="trail_path given without public_key"):
            _evaluate(release, ev, public_key=None)
        return
    decision = _evaluate(release, ev)
    assert not decision.passed and list(_failed(decision)) == [failed_rule]
    assert _failed(decision)[failed_rule].startswith(expected), _failed(decision)[failed_rule]
    assert decision.summary().startswith("BLOCKED digits-mlp v2 by 1 of 7 rules")


def test_without_a_trail_values_are_checked_as_given_and_say_so(release):
    decision = _evaluate(release, trail_path=None, public_key=None)
    assert decision.passed
    assert all(r.reason == "untraced (no trail given)" for r in decision.results if not r.rule.artefact)


@pytest.mark.parametrize("how", ["edit", "delete", "insert", "truncate"])
def test_a_tampered_trail_blocks_every_metric(release, tmp_path, how):
    index = 2 if how != "truncate" else 4
    bad = T.tamper(release["trail"].path, tmp_path / "bad.jsonl", how, index)
    decision = _evaluate(release, trail_path=bad, head=release["head"])
    failed = _failed(decision)
    assert set(failed) == {"clean accuracy", "robust accuracy", "backdoor scan", "membership leakage"}
    assert all(reason.startswith("not traceable: the trail does not verify (NOT ok") for reason in failed.values())


def test_artefacts_signature_hash_and_mlbom(release, tmp_path):
    ev = R.load_evidence(release["dir"] / "evidence.json")
    assert "no signature in the evidence" == _failed(_evaluate(release, {**ev, "signature": None}))["signature"]
    assert "no ML-BOM in the evidence" == _failed(_evaluate(release, {**ev, "mlbom": None}))["ML-BOM"]
    attacker = dep.make_keypair(tmp_path, "attacker")
    forged = dep.sign(release["weights"], attacker.private, tmp_path / "forged.sig")
    assert "another key" in _failed(_evaluate(release, {**ev, "signature": str(forged)}))["signature"]
    # the attacker names their own key in the evidence: a gate that pins the key still blocks
    named = {**ev, "signature": str(forged), "publisher_key": str(attacker.public)}
    assert "another key" in _failed(_evaluate(release, named))["signature"]
    assert _evaluate(release, named, publisher_key=None).passed  # ... which is why the key must be pinned
    assert "no publisher public key" in _failed(_evaluate(release, ev, publisher_key=None))["signature"]
    # other weights: the hash rule and the signature both fail (every metric stays traceable to the old sha)
    swapped = tmp_path / "swapped.safetensors"
    dep.save_weights(build_model("mlp", (1, 8, 8), 10, seed=1, hidden=(16,)), swapped)
    failed = _failed(_evaluate(release, {**ev, "model": {**ev["model"], "weights": str(swapped)}}))
    assert set(failed) == {"weights hash", "signature"} and "the evidence says" in failed["weights hash"]
    # an edited ML-BOM, and one about another model
    doc = json.loads(Path(ev["mlbom"]).read_text())
    (tmp_path / "edited.json").write_text(json.dumps({**doc, "surprise": True}))
    edited = _failed(_evaluate(release, {**ev, "mlbom": str(tmp_path / "edited.json")}))
    assert "CycloneDX 1.6 schema" in edited["ML-BOM"]
    doc["metadata"]["component"]["hashes"][0]["content"] = "f" * 64
    (tmp_path / "other.json").write_text(json.dumps(doc))
    assert "about another model" in _failed(_evaluate(release, {**ev, "mlbom": str(tmp_path / "other.json")}))["ML-BOM"]


def test_promote_records_promoted_and_blocked_releases(release, tmp_path):
    shutil.copy(release["trail"].path, tmp_path / "trail.jsonl")
    t = T.AuditTrail(tmp_path / "trail.jsonl", release["key"], clock=T.step_clock("2026-02-01T00:00:00+00:00"))
    good = R.promote(t, release["dir"] / "evidence.json", publisher_key=release["keys"].public)
    ev = R.load_evidence(release["dir"] / "evidence.json")
    ev["metrics"] = _metric(release, "clean_accuracy", 0.999)
    bad = R.promote(t, ev, publisher_key=release["keys"].public)
    assert good.passed and not bad.passed
    records = t.find("release")
    assert [e.data["decision"] for e in records] == ["promoted", "blocked"]
    assert records[0].data["failed"] == [] and records[0].data["model"]["sha256"] == release["sha"]
    failed = records[1].data["failed"]
    assert [f["rule"] for f in failed] == ["clean accuracy"] and failed[0]["value"] == 0.999
    assert failed[0]["reason"].startswith("not traceable")
    assert T.verify(t.path, t.public_key).ok and records[1].actor == "release-gate"


def test_evidence_from_trail_collects_the_latest_measurements(release, tmp_path):
    doc = R.evidence_from_trail(release["trail"].path, release["key"].public_key(), weights=release["weights"],
                                name="digits-mlp", version="2", signature=release["signature"],
                                mlbom=release["dir"] / "model.mlbom.json")
    assert {k: m["value"] for k, m in doc["metrics"].items()} == GOOD
    assert doc["metrics"]["robust_accuracy"]["run"] == release["both"]  # the latest entry that records it
    assert doc["metrics"]["clean_accuracy"]["run"] == release["both"]
    assert _evaluate(release, doc).passed
    bad = T.tamper(release["trail"].path, tmp_path / "bad.jsonl", "edit", 1)
    with pytest.raises(ValidationError, match="the trail does not verify"):
        R.evidence_from_trail(bad, release["key"].public_key(), weights=release["weights"], name="m", version="1")


# --------------------------------------------------------------------------- the command line


def _cli(*args, cwd=ROOT):
    return _wait(_start(*args, cwd=cwd))


def _start(*args, cwd=ROOT):
    return subprocess.Popen([str(PYTHON), "-m", "utils.governance", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def _wait(process):
    stdout, stderr = process.communicate(timeout=180)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _gate(release, evidence, *extra, trail=None, start=False):
    return (_start if start else _cli)("gate", "--evidence", evidence, "--trail", trail or release["trail"].path,
                "--public-key", T.public_key_hex(release["key"]), "--head", release["head"],
                "--publisher-key", release["keys"].public, *extra)


def test_cli_gate_blocks_bad_evidence(release, tmp_path):
    low_trail = tmp_path / "low.jsonl"
    shutil.copy(release["trail"].path, low_trail)
    t = T.AuditTrail(low_trail, release["key"])
    low = t.append("evaluation", {"metric": "robust_accuracy@v2", "value": 0.31, "model": release["sha"]})
    head = t.write_head()
    below = _write(release, tmp_path, "below.json", metrics=_metric(release, "robust_accuracy", 0.31, low.hash))
    tampered = T.tamper(release["trail"].path, tmp_path / "tampered.jsonl", "edit", 3, changes={"value": 0.99})
    unsigned = _write(release, tmp_path, "unsigned.json", signature=None)
    typed = _write(release, tmp_path, "typed.json", metrics=_metric(release, "membership_tpr", 0.0))
    started = {  # the four runs at once (each loads torch for the signature check)
        "below": _start("gate", "--evidence", below, "--trail", low_trail, "--public-key",
                        T.public_key_hex(release["key"]), "--head", head, "--publisher-key", release["keys"].public),
        "tampered": _gate(release, release["dir"] / "evidence.json", trail=tampered, start=True),
        "unsigned": _gate(release, unsigned, start=True),
        "typed": _gate(release, typed, start=True)}
    out = {k: _wait(p) for k, p in started.items()}
    assert {k: o.returncode for k, o in out.items()} == dict.fromkeys(started, 1), out
    assert "BLOCKED digits-mlp v2 by 1 of 7 rules: robust accuracy (0.31 fails" in out["below"].stdout
    assert "BLOCKED" in out["tampered"].stdout and "the trail does not verify" in out["tampered"].stdout
    assert "by 1 of 7 rules: signature (no signature in the evidence)" in out["unsigned"].stdout
    assert "by 1 of 7 rules: membership leakage (not traceable" in out["typed"].stdout


def test_cli_gate_exits_2_on_bad_input(release, tmp_path):
    malformed = release["dir"] / f"{tmp_path.name}-malformed.json"
    malformed.write_text('{"model": {"name": "m"')
    out = _gate(release, malformed)
    assert out.returncode == 2 and "is not JSON" in out.stderr and out.stdout == ""
    wrong_field = _write(release, tmp_path, "wrong.json", model={**release["evidence"]["model"], "sha256": "12"})
    out = _gate(release, wrong_field)
    assert out.returncode == 2 and "model.sha256" in out.stderr
    out = _gate(release, tmp_path / "missing.json")
    assert out.returncode == 2 and "--evidence" in out.stderr
    out = _cli("gate", "--evidence", release["dir"] / "evidence.json", "--trail", release["trail"].path,
               "--public-key", "not-a-key")
    assert out.returncode == 2 and "--public-key" in out.stderr
    out = _cli("gate", "--evidence", release["dir"] / "evidence.json")  # argparse: missing options
    assert out.returncode == 2 and "required" in out.stderr
    out = _gate(release, release["dir"] / "evidence.json", "--record", "--key-seed", KEY_SEED + 1)
    assert out.returncode == 2 and "does not make the key" in out.stderr


def test_cli_gate_promotes_and_records_and_verify_checks(release, tmp_path):
    trail_copy = tmp_path / "trail.jsonl"
    shutil.copy(release["trail"].path, trail_copy)
    pub = T.public_key_hex(release["key"])
    (tmp_path / "trail.pub").write_text(pub + "\n")
    out = _cli("gate", "--evidence", release["dir"] / "evidence.json", "--trail", trail_copy,
               "--public-key", tmp_path / "trail.pub", "--publisher-key", release["keys"].public,
               "--record", "--key-seed", KEY_SEED)
    assert out.returncode == 0 and "recorded as entry 7" in out.stdout, out.stdout + out.stderr
    assert "PROMOTED digits-mlp v2: 7 of 7 rules hold" in out.stdout
    assert "clean accuracy" in out.stdout and "traced to entry 1" in out.stdout
    assert T.read_entries(trail_copy)[-1].data["decision"] == "promoted"
    out = _cli("verify", "--trail", trail_copy, "--public-key", tmp_path / "trail.pub")
    assert out.returncode == 0 and out.stdout.startswith("ok: 8 entries")
    bad = T.tamper(trail_copy, tmp_path / "bad.jsonl", "swap", 2)
    out = _cli("verify", "--trail", bad, "--public-key", pub)
    assert out.returncode == 1 and "first at entry 2 (line 3): reordered" in out.stdout
    out = _cli("verify", "--trail", tmp_path / "nope.jsonl", "--public-key", pub)
    assert out.returncode == 2 and "--trail" in out.stderr


def test_cli_help_and_start_without_torch(release):
    out = _cli("--help")
    assert out.returncode == 0 and "gate" in out.stdout and "verify" in out.stdout
    out = _cli("gate", "--help")
    assert out.returncode == 0 and "--publisher-key" in out.stdout and "Exit status: 0 promoted" in out.stdout
    code = ("import sys, runpy; sys.argv = ['x', 'verify', '--trail', %r, '--public-key', %r]\n"
            "try:\n    runpy.run_module('utils.governance', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)") % (str(release["trail"].path), T.public_key_hex(release["key"]))
    out = subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr


# --------------------------------------------------------------------------- the CI workflow


@pytest.mark.parametrize("config", ["relaxed", "{extends: default, rules: {truthy: {check-keys: false}, "
                                              "document-start: disable}}"], ids=["relaxed", "default"])
def test_the_workflow_lints_clean(config):
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "yamllint"), "-s", "-f", "parsable", "-d", config,
                          str(WORKFLOW)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr


def test_the_workflow_installs_the_course_runs_the_gate_and_keeps_the_trail():
    flow = yaml.safe_load(WORKFLOW.read_text())
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    assert all(triggers[k]["paths"] for k in ("push", "pull_request"))
    (job,) = flow["jobs"].values()
    steps = job["steps"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert str(setup["with"]["python-version"]) == "3.11"
    runs = [s.get("run", "") for s in steps]
    assert any("make venv" in r for r in runs)
    assert flow["defaults"]["run"]["shell"] == "bash"  # -eo pipefail: `gate | tee` keeps the gate's status
    evidence = next(i for i, r in enumerate(runs) if "-m utils.governance evidence" in r)
    gate = next(i for i, r in enumerate(runs) if "-m utils.governance gate" in r)
    assert evidence < gate
    gate_step = steps[gate]
    assert "continue-on-error" not in gate_step and "|| true" not in gate_step["run"]
    for flag in ("--evidence", "--trail", "--public-key", "--publisher-key", "--head"):
        assert flag in gate_step["run"], flag
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload.get("if") == "always()" and "trail" in upload["with"]["path"]


def test_the_workflow_gate_command_runs_here(release, tmp_path):
    """The workflow's evidence and gate steps, run as written on a release laid out as it expects."""
    flow = yaml.safe_load(WORKFLOW.read_text())
    (job,) = flow["jobs"].values()
    env = {**flow.get("env", {}), **job.get("env", {})}
    models = tmp_path / env["RELEASE_DIR"]
    models.mkdir(parents=True)
    for src, name in ((release["weights"], "model.safetensors"), (release["signature"], "model.sig"),
                      (release["dir"] / "model.mlbom.json", "model.mlbom.json"),
                      (release["keys"].public, "publisher.pub.pem"), (release["trail"].path, "trail.jsonl"),
                      (release["head"], "trail.jsonl.head.json")):
        shutil.copy(src, models / name)
    (models / "trail.pub").write_text(T.public_key_hex(release["key"]) + "\n")
    runs = [s for s in job["steps"] if "-m utils.governance" in s.get("run", "")]
    assert len(runs) == 2
    for step in runs:
        command = step["run"].replace(".venv/bin/python", str(PYTHON))
        out = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env})
        assert out.returncode == 0, f"{step['name']}: {out.stdout}{out.stderr}"
    assert "PROMOTED" in out.stdout


def test_cli_main_in_process_records_nothing_on_a_tampered_trail(release, tmp_path, capsys):
    from utils.governance.__main__ import main

    bad = T.tamper(release["trail"].path, tmp_path / "bad.jsonl", "delete", 2)
    before = bad.read_bytes()
    args = ["gate", "--evidence", str(release["dir"] / "evidence.json"), "--trail", str(bad),
            "--public-key", T.public_key_hex(release["key"]), "--publisher-key", str(release["keys"].public)]
    assert main(args + ["--record", "--key-seed", str(KEY_SEED)]) == 1
    out = capsys.readouterr().out
    assert "BLOCKED" in out and "not recorded: AuditTrail: 'bad.jsonl' does not verify" in out
    assert bad.read_bytes() == before  # nothing appended to a tampered trail
    assert main(args + ["--key-seed", "3"]) == 2
    assert "--key-seed is only used with --record" in capsys.readouterr().err
    assert main(args + ["--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] is False and len(doc["results"]) == 7 and doc["recorded"] is None
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"name": "acc", "metric": "clean_accuracy", "op": ">=", "threshold": 0.95,
                                  "why": "stricter"}]))
    good = ["gate", "--evidence", str(release["dir"] / "evidence.json"), "--trail", str(release["trail"].path),
            "--public-key", T.public_key_hex(release["key"]), "--rules", str(rules)]
    assert main(good) == 0 and "PROMOTED digits-mlp v2: 1 of 1 rules hold" in capsys.readouterr().out
    rules.write_text("[]")
    assert main(good) == 2 and "rules must be a non-empty list" in capsys.readouterr().err
