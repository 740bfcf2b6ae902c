"""utils.audit: inputs checked, the checks, the scorecard (schema, Markdown, HTML, trail, diff), batch audits."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from utils import audit, training
from utils.audit import checks as ck
from utils.deployment.gate import GateRefusal
from utils.validation import ValidationError


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Model folders (the course MLP, a BadNets-poisoned one, a logistic regression) and the digits'
    test split as evaluation sets (with the clean or the poisoned training split as x_train)."""
    import utils
    from utils import data

    utils.setup(0, plots=False)
    root = tmp_path_factory.mktemp("audit")
    models = root / "models"
    clean = audit.inputs.course_example(models / "a_clean", "clean")
    backdoor = audit.inputs.course_example(models / "b_backdoor", "backdoor")
    ds = data.load("digits", seed=0)
    logreg = training.fit(training.preset("logreg"), ds.X_train, ds.y_train, 10)
    small = audit.save_model(logreg, models / "c_logreg", module="utils.models:build_model",
                             kwargs={"name": "logreg", "input_shape": [1, 8, 8], "n_classes": 10})
    return {"root": root, "models": models, "clean": clean, "backdoor": backdoor, "logreg": small, "ds": ds,
            "data": audit.inputs.course_data(root / "test.npz"),
            "data_bd": audit.inputs.course_data(root / "test_bd.npz", kind="backdoor"),
            "data_plain": audit.inputs.course_data(root / "test_plain.npz", with_training=False)}


@pytest.fixture(scope="module")
def clean_card(zoo):
    return audit.run_audit(audit.load_model_spec(zoo["clean"]), audit.load_data(zoo["data"]), budget="quick")


@pytest.fixture(scope="module")
def backdoor_card(zoo):
    return audit.run_audit(audit.load_model_spec(zoo["backdoor"]), audit.load_data(zoo["data_bd"]), budget="quick")


# --------------------------------------------------------------------------- intervals


def test_wilson_matches_the_formula_and_stays_inside_0_1():
    lo, hi = audit.wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert audit.wilson(0, 10)[0] == 0.0 and audit.wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert audit.wilson(10, 10)[1] == 1.0 and audit.wilson(10, 10)[0] < 1.0
    # 100 examples: the interval of a proportion is at most ±0.10 wide (the MIN_SAMPLES rule)
    lo, hi = audit.wilson(50, 100)
    assert hi - lo <= 0.2 < (lambda a: a[1] - a[0])(audit.wilson(25, 50))
    with pytest.raises(ValidationError, match="k = 11 is out of range"):
        audit.wilson(11, 10)


def test_bootstrap_interval_covers_the_statistic_and_is_seeded():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    lo, hi = audit.bootstrap(np.mean, a, n_boot=200, seed=1)
    assert lo < a.mean() < hi and hi - lo < 0.4
    assert audit.bootstrap(np.mean, a, n_boot=200, seed=1) == (lo, hi)


def test_anomaly_index_is_the_mad_rule():
    sizes = np.array([10.0, 9, 11, 10, 12, 8, 10, 9, 11, 2])
    ai = audit.anomaly_index(sizes, mad_floor=0)
    med, mad = 10.0, 1.4826 * 1.0
    assert ai[-1] == pytest.approx((med - 2) / mad)
    assert int(np.argmax(ai)) == 9 and (ai[:-1] <= 2).all()
    assert (audit.anomaly_index(np.full(5, 3.0)) == 0).all()
    # the floor: sizes that agree to ±0.1 do not turn a 10% smaller class into an outlier
    close = np.array([10.0, 10.1, 9.9, 10.0, 10.1, 9.9, 10.0, 10.1, 9.9, 9.0])
    assert audit.anomaly_index(close, mad_floor=0)[-1] > 6
    assert audit.anomaly_index(close)[-1] == pytest.approx(1.0 / (1.4826 * 1.0))
    assert audit.anomaly_index(sizes)[-1] == pytest.approx(ai[-1])  # a real MAD above the floor is kept


# --------------------------------------------------------------------------- data


def test_load_data_reads_npz_and_csv_alike(zoo, tmp_path):
    d = audit.load_data(zoo["data"])
    assert d.X.shape == (360, 1, 8, 8) and d.X.dtype == np.float32 and d.n_classes == 10 and d.has_training_data
    rows = np.c_[d.X.reshape(len(d.X), -1), d.y]
    path = tmp_path / "test.csv"
    np.savetxt(path, rows, delimiter=",", header=",".join([f"p{i}" for i in range(64)] + ["label"]), comments="")
    c = audit.load_data(path)
    np.testing.assert_allclose(c.X, d.X, atol=1e-6)
    assert (c.y == d.y).all() and not c.has_training_data
    scaled = tmp_path / "scaled.npz"
    np.savez(scaled, x=d.X * 255, y=d.y)
    np.testing.assert_allclose(audit.load_data(scaled, value_range=(0, 255)).X, d.X, atol=1e-6)


@pytest.mark.parametrize("case, message", [
    ("wrong_shape", "7 values per example are not a square image"),
    ("five_d", "must have shape (N, C, H, W)"),
    ("out_of_range", "for 0-255 pixels pass value_range"),
    ("nan", "NaN or infinite"),
    ("labels_beyond_classes", "labels must be class indices in [0, 2]"),
    ("float_labels", "labels have dtype float64"),
    ("label_count", "359 labels for 360 examples"),
    ("missing_y", "it must hold 'x' (inputs) and 'y' (labels)"),
    ("object_array", "cannot be read as a NumPy .npz without pickles"),
    ("suffix", "give a .npz (x, y) or a .csv"),
], ids=lambda x: x if isinstance(x, str) and " " not in x else None)
def test_bad_data_is_refused_with_what_is_allowed(zoo, tmp_path, case, message):
    d = audit.load_data(zoo["data_plain"])
    path, classes = tmp_path / "bad.npz", None
    if case == "wrong_shape":
        np.savez(path, x=np.zeros((10, 7), np.float32), y=np.zeros(10, int))
    elif case == "five_d":
        np.savez(path, x=np.zeros((10, 1, 1, 8, 8), np.float32), y=np.zeros(10, int))
    elif case == "out_of_range":
        np.savez(path, x=d.X * 255, y=d.y)
    elif case == "nan":
        x = d.X.copy()
        x[0, 0, 0, 0] = np.nan
        np.savez(path, x=x, y=d.y)
    elif case == "labels_beyond_classes":
        np.savez(path, x=d.X, y=d.y)
        classes = ["a", "b", "c"]
    elif case == "float_labels":
        np.savez(path, x=d.X, y=d.y + 0.5)
    elif case == "label_count":
        np.savez(path, x=d.X, y=d.y[:-1])
    elif case == "missing_y":
        np.savez(path, x=d.X)
    elif case == "object_array":
        np.savez(path, x=np.array([object()] * 3, dtype=object), y=np.zeros(3, int))
    else:
        path = tmp_path / "bad.txt"
        path.write_text("1,2\n")
    with pytest.raises(ValidationError, match=f"^load_data: .*{_re(message)}"):
        audit.load_data(path, classes)


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_too_few_examples_for_a_claim_are_refused_naming_the_minimum(zoo):
    d = audit.load_data(zoo["data_plain"])
    few = audit.data_from_arrays(d.X[:40], d.y[:40])
    model = audit.load_model_spec(zoo["clean"])
    with pytest.raises(ValidationError, match="robustness needs at least 100 evaluation examples.*has 40"):
        audit.run_audit(model, few, checks=["robustness"])
    assert ck.MIN_SAMPLES["robustness"] == 100


def test_a_model_that_does_not_fit_the_data_is_refused(zoo):
    d = audit.load_data(zoo["data_plain"])
    model = audit.load_model_spec(zoo["clean"])
    three = audit.data_from_arrays(d.X[:200], d.y[:200] % 3)
    with pytest.raises(ValidationError, match="the model has 10 outputs but the data 3 classes"):
        audit.run_audit(model, three, checks=["clean_accuracy"])
    wide = audit.data_from_arrays(np.zeros((200, 1, 4, 4), np.float32), d.y[:200])
    with pytest.raises(ValidationError, match=r"does not take inputs of shape \(1, 4, 4\)"):
        audit.run_audit(model, wide, checks=["clean_accuracy"])
    with pytest.raises(ValidationError, match="checks names"):
        audit.run_audit(model, d, checks=["nope"])


# --------------------------------------------------------------------------- models through the load gate


def test_a_model_folder_loads_through_the_gate(zoo):
    m = audit.load_model_spec(zoo["clean"])
    assert m.provenance == "pinned" and [s.step for s in m.record] == ["hash", "signature", "scan", "load"]
    assert not m.model.training
    ref = training.fit(training.preset("mlp"), zoo["ds"].X_train, zoo["ds"].y_train, 10)
    x = torch.as_tensor(zoo["ds"].X_test[:5])
    assert torch.equal(m.model(x), ref(x))


def test_a_tampered_weights_file_is_refused_at_the_hash(zoo, tmp_path):
    import shutil

    folder = shutil.copytree(zoo["clean"], tmp_path / "tampered")
    w = folder / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    with pytest.raises(GateRefusal, match="refused at step 'hash'"):
        audit.load_model_spec(folder)


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path):
    from utils.deployment.serialization import make_malicious_pickle
    from utils.models import build_model

    import tempfile

    marker = Path(tempfile.mkdtemp()) / "ran"
    evil = make_malicious_pickle(tmp_path / "evil.pt", marker, model=build_model("mlp", (1, 8, 8), 10))
    with pytest.raises(GateRefusal, match="refused at step 'scan'") as e:
        audit.load_model("utils.models:build_model", evil, kwargs=audit.inputs.COURSE_KWARGS)
    assert not marker.exists()
    assert "TorchScript/torch.save zip" in str(e.value)


def test_torchscript_is_refused_with_the_reason(tmp_path):
    from utils.models import build_model

    path = tmp_path / "model.ts"
    torch.jit.script(build_model("mlp", (1, 8, 8), 10)).save(str(path))
    with pytest.raises(GateRefusal, match="holds pickles and code that torch.jit.load runs"):
        audit.load_model("utils.models:build_model", path, kwargs=audit.inputs.COURSE_KWARGS)


def test_a_signed_model_verifies_and_a_wrong_key_is_refused(zoo, tmp_path):
    from utils.deployment import signing

    (tmp_path / "keys").mkdir()
    keys = signing.make_keypair(tmp_path / "keys")
    other = signing.make_keypair(tmp_path / "keys", name="other")
    m = audit.load_model_spec(zoo["clean"])
    folder = audit.save_model(m.model, tmp_path / "signed", module="utils.models:build_model",
                              kwargs=audit.inputs.COURSE_KWARGS, private_key=keys.private,
                              public_key=keys.public)
    assert audit.load_model_spec(folder).provenance == "signed"
    with pytest.raises(GateRefusal, match="refused at step 'signature'"):
        audit.load_model("utils.models:build_model", folder / "weights.safetensors", kwargs=audit.inputs.COURSE_KWARGS,
                         signature=folder / "weights.sig", public_key=other.public)


@pytest.mark.parametrize("module, message", [("nope", "module must be 'package.module:Callable'"),
                                             ("utils.models:Nope", "has no callable 'Nope'"),
                                             ("missing.py:Net", "does not exist")])
def test_bad_module_code_is_refused(zoo, module, message):
    with pytest.raises(ValidationError, match=_re(message)):
        audit.load_model(module, zoo["clean"] / "weights.safetensors")


def test_module_code_from_a_file(zoo, tmp_path):
    code = tmp_path / "net.py"
    code.write_text("from utils.models import build_model\n\ndef Net():\n"
                    "    return build_model('mlp', (1, 8, 8), 10)\n")
    m = audit.load_model(f"{code}:Net", zoo["clean"] / "weights.safetensors")
    assert m.provenance == "unpinned" and m.record[0].detail.startswith("not pinned")


# --------------------------------------------------------------------------- the checks


def test_the_course_model_passes_every_gate(zoo, clean_card):
    card = clean_card
    assert card.passed and card.failed_gates == []
    acc = card.check("clean_accuracy")
    ref = training.accuracy(audit.load_model_spec(zoo["clean"]).model, zoo["ds"].X_test, zoo["ds"].y_test)
    assert acc.value == pytest.approx(ref) and acc.n == 360 and acc.interval[0] < acc.value < acc.interval[1]
    assert acc.cost["queries"] == 360
    rob = card.check("robustness")
    attacks = rob.details["attacks"]
    assert set(attacks) == {"PGD", "Square"} and rob.n == 100
    # robust accuracy is the worst case per example: at most every single attack's accuracy
    assert rob.value <= min(a["accuracy"] for a in attacks.values()) <= rob.details["clean_accuracy"]
    assert rob.cost["queries"] == 100 + 100 * 11 + 100 * 100
    assert card.check("backdoor").details["target_class"] is None
    mem = card.check("membership")
    assert mem.passed and mem.n == 720 and 0.4 < mem.details["auc"] < 0.7
    ext = card.check("extraction")
    assert set(ext.details["policies"]) == {"full", "rounded", "reverse_sigmoid", "label"}
    assert ext.value == min(p["fidelity"] for p in ext.details["policies"].values())
    for c in card.checks:
        assert c.cost["cpu_seconds"] >= 0 and c.passed is not None


def test_the_backdoored_model_is_flagged_with_its_target_class(backdoor_card):
    card = backdoor_card
    bd = card.check("backdoor")
    assert not card.passed and "backdoor" in card.failed_gates
    assert bd.details["target_class"] == 0 and bd.value > 2
    assert bd.details["transfer_success"] > 0.5
    assert "flags class 0" in card.to_markdown()


def test_membership_without_training_data_says_what_it_needs(zoo):
    card = audit.run_audit(audit.load_model_spec(zoo["clean"]), audit.load_data(zoo["data_plain"]),
                           budget="quick", checks=["membership", "clean_accuracy"])
    m = card.check("membership")
    assert m.passed is None and m.value is None and "x_train" in m.note
    assert card.passed  # a check that could not run fails no gate
    assert "NOT RUN" in card.to_markdown()


def test_trigger_search_names_the_target_of_a_backdoor(zoo):
    m = audit.load_model_spec(zoo["backdoor"]).model
    ds = zoo["ds"]
    idx = ck._subset(len(ds.y_test), 64, 0)  # the images the backdoor check searches with (seed 0)
    found = audit.trigger_search(m, ds.X_test[idx], ds.y_test[idx], 10, steps=300)
    assert int(np.argmax(found["anomaly_index"])) == 0
    assert found["masks"].shape == (10, 8, 8) and found["patterns"].shape == (10, 1, 8, 8)
    assert all(p.requires_grad for p in m.parameters())  # weights untouched, gradients restored


def test_the_same_seed_gives_the_same_scorecard(zoo, clean_card):
    again = audit.run_audit(audit.load_model_spec(zoo["clean"]), audit.load_data(zoo["data"]), budget="quick")
    assert again.comparable() == clean_card.comparable()
    other = audit.run_audit(audit.load_model_spec(zoo["clean"]), audit.load_data(zoo["data"]), budget="quick",
                            seed=1, checks=["robustness"])
    assert other.check("robustness").details != clean_card.check("robustness").details


# --------------------------------------------------------------------------- the scorecard


def test_the_scorecard_round_trips_through_validated_json(clean_card, tmp_path):
    path = clean_card.to_json(tmp_path / "card.json")
    record = json.loads(path.read_text())
    assert record["schema"] == "modelsec-scorecard/1" and len(record["checks"]) == 6
    back = audit.Scorecard.from_json(path)
    assert back.comparable() == clean_card.comparable()
    assert audit.schema()["properties"]["schema"]["const"] == audit.SCHEMA


@pytest.mark.parametrize("tamper, message", [
    (lambda r: r.update(schema="modelsec-scorecard/2"), "at schema"),
    (lambda r: r.pop("checks"), "'checks' is a required property"),
    (lambda r: r["checks"][0].update(value="high"), "at checks/0/value"),
    (lambda r: r["checks"][0].update(direction="=="), "at checks/0/direction"),
    (lambda r: r["checks"][1]["cost"].pop("queries"), "at checks/1/cost"),
    (lambda r: r["settings"].update(budget="huge"), "at settings/budget"),
], ids=["version", "no_checks", "value_type", "direction", "cost", "budget"])
def test_a_record_off_the_schema_is_refused_on_read(clean_card, tmp_path, tamper, message):
    record = clean_card.to_dict()
    tamper(record)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(record))
    with pytest.raises(ValidationError, match=_re(message)):
        audit.Scorecard.from_json(path)


def test_markdown_and_html_say_the_same_and_the_page_is_self_contained(backdoor_card, tmp_path):
    md = backdoor_card.to_markdown(tmp_path / "card.md")
    assert md.startswith("# Security scorecard: b_backdoor") and "**FAILED**: gates failed: backdoor" in md
    assert md.count("\n| ") == 7  # header and six checks
    page = backdoor_card.to_html(tmp_path / "card.html").read_text()
    assert page.count("src='data:image/png;base64,") == 5  # one figure per check that ran, but accuracy
    for remote in ("http://", "https://", "<script", "<link"):
        assert remote not in page
    assert "FAILED: backdoor" in page and "flags class 0" in page


class _Trail:
    """A stand-in with the governance trail's append API (the real one is tested below when present)."""

    def __init__(self):
        self.entries = []

    def append(self, kind, data, actor="?"):
        self.entries.append((kind, data, actor))
        return type("Entry", (), {"hash": f"{len(self.entries):064x}"})()


def test_record_appends_a_scorecard_entry_to_the_trail(clean_card):
    t = _Trail()
    entry = clean_card.record(t)
    kind, data, actor = t.entries[0]
    assert kind == "scorecard" and actor == "workbench" and entry.hash
    assert data["passed"] is True and data["scorecard_sha256"] == clean_card.sha256()
    assert data["checks"]["clean_accuracy"]["value"] == pytest.approx(clean_card.check("clean_accuracy").value)
    json.dumps(data)  # plain JSON


def test_record_in_the_real_audit_trail(clean_card, tmp_path):
    trail = pytest.importorskip("utils.governance.trail")
    t = trail.AuditTrail(tmp_path / "trail.jsonl", trail.signing_key(0))
    entry = clean_card.record(t)
    assert len(entry.hash) >= 32


def test_diff_shows_each_change_before_and_after(clean_card, backdoor_card):
    df = audit.diff(clean_card, backdoor_card)
    row = df.set_index("check").loc["backdoor"]
    assert row["before_result"] == "PASS" and row["after_result"] == "FAIL"
    assert row["change"] == pytest.approx(round(backdoor_card.check("backdoor").value
                                                - clean_card.check("backdoor").value, 3), abs=1e-3)
    assert "robustness: clean accuracy (subset)" in set(df["check"])
    md = audit.diff_markdown(clean_card, backdoor_card)
    assert "| backdoor |" in md and "PASS | FAIL" in md
    with pytest.raises(ValidationError, match="give two Scorecards"):
        audit.diff(clean_card, {})


# --------------------------------------------------------------------------- many models


def test_a_two_worker_batch_equals_the_serial_run(zoo, tmp_path):
    from utils import parallel

    kwargs = {"budget": "quick", "checks": "clean_accuracy,robustness,backdoor"}
    serial = audit.audit_folder(zoo["models"], zoo["data"], tmp_path / "serial", serial=True, **kwargs)
    with parallel.engine(n_workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        par = audit.audit_folder(zoo["models"], zoo["data"], tmp_path / "par", client=client, **kwargs)
    assert [Path(r.item["model"]).name for r in par] == ["a_clean", "b_backdoor", "c_logreg"]
    assert all(r.ok for r in par), [r.error for r in par]
    for a, b in zip(serial, par):
        assert audit.Scorecard.from_dict(a.value).comparable() == audit.Scorecard.from_dict(b.value).comparable()
    assert [r.value["passed"] for r in par] == [True, False, True]
    assert (tmp_path / "par" / "b_backdoor" / "scorecard.html").is_file()
    assert "b_backdoor | FAIL" in (tmp_path / "par" / "batch.md").read_text()


def test_a_batch_reports_a_refused_model_without_failing_the_others(zoo, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(zoo["logreg"], models / "ok")
    bad = shutil.copytree(zoo["logreg"], models / "tampered")
    (bad / "weights.safetensors").write_bytes(b"not weights")
    results = audit.audit_folder(models, zoo["data"], serial=True, checks="clean_accuracy")
    assert [r.ok for r in results] == [True, False]
    assert "refused at step 'hash'" in results[1].error
    with pytest.raises(ValidationError, match="holds no model folders"):
        audit.audit_folder(tmp_path, zoo["data"], serial=True)


def test_budgets_grow_and_name_their_costs():
    q, d, f = (ck.BUDGETS[b] for b in ("quick", "default", "full"))
    for key in ("robust_n", "pgd_steps", "square_queries", "nc_steps", "queries"):
        assert q[key] <= d[key] <= f[key]
    assert f["autoattack"] and not d["autoattack"]
    assert set(ck.THRESHOLDS) == set(ck.CHECKS) == set(ck.MIN_SAMPLES)
    assert math.isclose(ck.THRESHOLDS["backdoor"][0], 2.0)


# --------------------------------------------------------------------------- the panel


def test_the_workbench_panel_redraws_on_each_control(zoo):
    from utils.widgets.workbench import PANEL_ATTACKS, workbench_panel

    m = audit.load_model_spec(zoo["clean"]).model
    ds = zoo["ds"]
    panel = workbench_panel(m, ds.X_test, ds.y_test, eps=0.1, n=20)
    first_png, first = panel.children[1].value, panel.result.value
    assert first.startswith("FGSM at ε = 0.10: accuracy") and "on 20 examples" in first
    assert first_png[:4] == b"\x89PNG"
    panel.controls["eps"].value = 0.0
    assert "ε = 0.00" in panel.result.value and panel.result.value.endswith(
        f"(clean {panel.result.value.split('accuracy ')[1].split(' ')[0]})")  # at ε = 0 the attack is the clean run
    panel.controls["attack"].value = "PGD (10 steps)"
    panel.controls["eps"].value = 0.2
    assert panel.result.value.startswith("PGD (10 steps) at ε = 0.20") and panel.children[1].value != first_png
    assert list(panel.controls["attack"].options) == list(PANEL_ATTACKS)
    with pytest.raises(ValidationError, match="n = 3 is out of range"):
        workbench_panel(m, ds.X_test, ds.y_test, n=3)
