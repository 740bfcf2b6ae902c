"""utils.governance: evidence, the risk register, the model card, the framework map, incident response."""
from __future__ import annotations

import json

import numpy as np
import pytest

from utils import deployment, models, serving
from utils.course import threat_model
from utils.serving.audit import sha256_of
from utils.governance import evidence, frameworks, incident, modelcard, release, risk, trail
from utils.validation import ValidationError


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The course's evidence for seed 0, recorded in a fresh trail (about 10 s cold)."""
    work = tmp_path_factory.mktemp("gov")
    audit = trail.AuditTrail(work / "trail.jsonl", trail.signing_key(0), clock=trail.step_clock())
    ev = evidence.collect(audit, 0)
    return {"work": work, "trail": audit, "ev": ev}


# --------------------------------------------------------------------------- evidence

def test_every_measurement_is_an_evaluation_entry_with_its_value(recorded):
    audit, ev = recorded["trail"], recorded["ev"]
    for m in ev.measurements.values():
        entry = audit.by_hash(m.run)
        assert entry.kind == "evaluation" and entry.data["value"] == m.value and entry.data["model"] == m.model
        assert m.n >= 1 and m.lesson in {"00", "02", "03", "04", "05", "06", "07"}
    kinds = [e.kind for e in audit.entries()]
    assert kinds[0] == "data" and kinds.count("training") == 6 and kinds.count("evaluation") >= 20
    assert trail.verify(audit.path, audit.public_key).ok


def test_the_candidates_differ_where_the_gate_looks(recorded):
    ev = recorded["ev"]
    assert ev.value("robust_accuracy@v2") > ev.value("robust_accuracy@v1") + 0.3
    assert ev.value("backdoor_flagged@v3") > 0.04 and ev.value("backdoor_flagged@v1") == 0
    assert ev.value("backdoor_asr") > 0.95 and ev.value("backdoor_asr_cleaned") < 0.2
    assert ev.value("unsafe_file_ran") == 1 and ev.value("unsafe_file_ran_gated") == 0
    assert ev.value("extraction_fidelity_quota") < ev.value("extraction_fidelity_label_only") <= \
        ev.value("extraction_fidelity") + 0.02
    assert set(ev.gate_metrics("v2")) == {"clean_accuracy", "robust_accuracy", "backdoor_flagged", "membership_tpr"}
    assert ev.models["v1"] == evidence.weights_sha256(ev.objects["v1"]) != ev.models["v2"]


def test_evidence_refuses_what_it_does_not_hold(recorded):
    ev = recorded["ev"]
    with pytest.raises(ValidationError, match="no measurement 'accuracy'"):
        ev["accuracy"]
    with pytest.raises(ValidationError, match="no measurements of candidate 'v9'"):
        ev.gate_metrics("v9")
    with pytest.raises(ValidationError, match="eps"):
        evidence.collect(recorded["trail"], 0, eps=0)


def test_the_same_seed_records_the_same_evaluation_entries(recorded, tmp_path):
    again = trail.AuditTrail(tmp_path / "again.jsonl", trail.signing_key(0), clock=trail.step_clock())
    evidence.collect(again, 0)
    first = [e.line() for e in recorded["trail"].entries()[:len(again)]]
    assert [e.line() for e in again.entries()] == first


# --------------------------------------------------------------------------- risk register

@pytest.mark.parametrize("success, level", [(0.0, 1), (0.0499, 1), (0.05, 2), (0.19, 2), (0.2, 3), (0.49, 3),
                                            (0.5, 4), (0.79, 4), (0.8, 5), (1.0, 5)])
def test_likelihood_is_read_off_the_measured_success(success, level):
    assert risk.likelihood(success) == level


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.3"])
def test_likelihood_refuses_what_is_not_a_rate(bad):
    with pytest.raises(ValidationError, match="risk.likelihood"):
        risk.likelihood(bad)


def test_bands_cover_every_score():
    assert [risk.band(s) for s in (1, 4, 5, 9, 10, 14, 15, 25)] == ["low", "low", "medium", "medium", "high",
                                                                      "high", "critical", "critical"]
    with pytest.raises(ValidationError):
        risk.band(26)


def test_the_register_moves_only_with_measurements(recorded):
    ev = recorded["ev"]
    reg = risk.register(ev)
    assert list(reg.index) == ["R1", "R2", "R3", "R4", "R5"]
    r2 = risk.RISKS[1]
    s = risk.score(r2, ev)
    assert s.likelihood_before == risk.likelihood(1 - ev.value("robust_accuracy"))  # success = 1 - accuracy
    assert s.likelihood_after == risk.likelihood(1 - ev.value("robust_accuracy_hardened"))
    none = risk.register(ev, enabled=[])
    assert (none["L after"] == none["L"]).all() and (none["controls"] == "none").all()
    assert reg["score after"].sum() < reg["score"].sum()


def test_an_unmeasured_combination_falls_back_to_the_largest_measured_one(recorded):
    r3 = next(r for r in risk.RISKS if r.id == "R3")
    assert r3.measurement_for(["query quota"]) == ("extraction_fidelity", ())  # the quota alone was not measured
    assert r3.measurement_for(["label-only output"]) == ("extraction_fidelity_label_only", ("label-only output",))
    assert r3.measurement_for(["label-only output", "query quota", "DP-SGD"])[0] == "extraction_fidelity_quota"


@pytest.mark.parametrize("change, says", [
    ({"id": "6"}, "ids are R"), ({"atlas": ("T0043",)}, "ATLAS ids look like"), ({"owasp": ("ML11",)}, "ML01 ... ML10"),
    ({"owasp": ()}, "at least one of each"), ({"impact": 6}, "impact"), ({"impact_why": "bad"}, "why the impact"),
    ({"success": "inverse"}, "success"), ({"measured": ((("firewall",), "x"),)}, "does not list"),
    ({"threat": ""}, "describe the threat"),
], ids=["id", "atlas", "owasp", "no owasp", "impact", "why", "success", "unknown control", "threat"])
def test_a_malformed_risk_is_refused_with_the_reason(change, says):
    base = dict(id="R6", threat="a new threat here", atlas=("AML.T0029",), owasp=("ML09",), impact=3,
                impact_why="an outage of the scoring service", measure="m", controls=(("rate limits", "07"),))
    with pytest.raises(ValidationError, match=says):
        risk.Risk(**{**base, **change})


def test_the_heat_map_places_each_risk_in_its_cell(recorded):
    import matplotlib.pyplot as plt

    scores = [risk.score(r, recorded["ev"]) for r in risk.RISKS]
    ax = risk.heatmap(scores, after=False)
    placed = {t.get_text(): t.get_position() for t in ax.texts}
    plt.close("all")
    r5 = next(s for s in scores if s.risk.id == "R5")
    assert any("R5" in k and v == (r5.risk.impact, r5.likelihood_before) for k, v in placed.items())


# --------------------------------------------------------------------------- model card

def test_the_card_has_the_template_sections_and_no_untraced_number(recorded):
    ev, audit = recorded["ev"], recorded["trail"]
    card = str(modelcard.model_card(ev, "v2", trail_head="abc"))
    for heading in ("## Model Details", "## Uses", "## Evaluation", "### Results", "## Model Examination"):
        assert heading in card
    assert "model-index" in card and ev["robust_accuracy@v2"].short() in card
    assert modelcard.untraceable(card, audit.entries()) == []


def test_untraceable_catches_edited_typed_and_foreign_numbers(recorded):
    ev, audit = recorded["ev"], recorded["trail"]
    card = str(modelcard.model_card(ev, "v1"))
    clean = ev["clean_accuracy@v1"]
    edited = card.replace(clean.short(), f"{clean.value + 0.01:.3f} [run {clean.run[:8]}]")
    assert any("the entry recorded" in p for p in modelcard.untraceable(edited, audit.entries()))
    typed = card + "\nAccuracy in the field: 0.991.\n"
    assert modelcard.untraceable(typed, audit.entries()) == ["0.991: a number with no run"]
    forged = card + "\n- extra 0.5 [run deadbeef]\n"
    assert modelcard.untraceable(forged, audit.entries()) == ["0.5 [run deadbeef]: no evaluation entry has that hash"]
    settings = "PGD at eps=0.25, see https://arxiv.org/abs/1810.03993, torch 2.13.0"
    assert modelcard.untraceable(settings, audit.entries()) == []
    with pytest.raises(ValidationError, match="candidate 'v7'"):
        modelcard.model_card(ev, "v7")


# --------------------------------------------------------------------------- frameworks

def test_the_framework_map_names_only_known_ids():
    assert frameworks.check() == []
    mapped = {i for c in frameworks.CONTROLS for i in c.atlas}
    assert mapped <= set(threat_model.ATLAS) and {"AML.M0024", "AML.M0014", "AML.M0013"} <= mapped
    assert set(frameworks.by_function()) == {"GOVERN", "MAP", "MEASURE", "MANAGE"}
    assert all(v > 0 for v in frameworks.by_function().values())
    table = frameworks.table()
    assert len(table) == len(frameworks.CONTROLS) and "Art. 12" in table.loc["hash-chained, signed audit trail", "EU AI Act"]
    assert {q.split("(")[0] for q in frameworks.EU_AI_ACT_QUOTES} <= set(frameworks.EU_AI_ACT)


# --------------------------------------------------------------------------- incident response

def _release(audit, sha, decision="promoted", version="2"):
    return audit.append("release", {"decision": decision, "model": {"name": "m", "version": version, "sha256": sha},
                                    "rules": [], "failed": []})


def test_a_deployment_around_the_gate_is_found(tmp_path):
    audit = trail.AuditTrail(tmp_path / "t.jsonl", trail.signing_key(1), clock=trail.step_clock())
    _release(audit, "a" * 64)
    _release(audit, "b" * 64, decision="blocked", version="3")
    audit.append("deployment", {"model": "v2", "weights_sha256": "a" * 64})
    rogue = audit.append("deployment", {"model": "v3", "weights_sha256": "b" * 64})
    assert [e.index for e in incident.unreleased_deployments(audit.entries())] == [rogue.index]
    assert incident.last_promoted(audit.entries()).data["model"]["sha256"] == "a" * 64
    with pytest.raises(ValidationError, match="no promoted release"):
        incident.last_promoted(audit.entries(), excluding=["a" * 64])


def test_rollback_loads_only_the_released_signed_file_and_records_it(tmp_path):
    audit = trail.AuditTrail(tmp_path / "t.jsonl", trail.signing_key(2), clock=trail.step_clock())
    (tmp_path / "keys").mkdir()
    keys = deployment.make_keypair(tmp_path / "keys")
    good, other = models.build_model("mlp", (1, 8, 8), 10, seed=0), models.build_model("mlp", (1, 8, 8), 10, seed=1)
    sha = deployment.save_weights(good, tmp_path / "good.safetensors")
    deployment.save_weights(other, tmp_path / "other.safetensors")
    sig = deployment.sign(tmp_path / "good.safetensors", keys.private, tmp_path / "good.sig")
    released = _release(audit, sha)
    case = incident.open_incident(audit, "backdoor", "a model reached production around the gate")
    factory = lambda: models.build_model("mlp", (1, 8, 8), 10)  # noqa: E731
    model, entry = incident.rollback(audit, released, tmp_path / "good.safetensors", public_key=keys.public,
                                     signature=sig, model_factory=factory, incident=case)
    assert evidence.weights_sha256(model) == evidence.weights_sha256(good)
    assert entry.kind == "rollback" and entry.data["release"] == released.hash and entry.data["incident"] == case.hash
    n = len(audit)
    with pytest.raises(deployment.GateRefusal, match="step 'hash'"):
        incident.rollback(audit, released, tmp_path / "other.safetensors", public_key=keys.public, signature=sig,
                          model_factory=factory)
    assert len(audit) == n  # a refused rollback records nothing as rolled back
    with pytest.raises(ValidationError, match="not a promoted release"):
        incident.rollback(audit, case, tmp_path / "good.safetensors", public_key=keys.public, signature=sig,
                          model_factory=factory)


def test_suspects_are_the_clients_prada_flags(tmp_path):
    from utils import data, training
    from utils.theft import extraction

    ds = data.load("digits", seed=0)
    model = training.fit(training.preset("mlp", seed=0), ds.X_train, ds.y_train, ds.n_classes)
    log_path = tmp_path / "api.jsonl"
    log = serving.AuditLog(log_path)
    X_by_sha = {}
    streams = {"alice": ds.X_test[:200], "mallory": extraction.query_set("steps", 200, ds.X_val, seed=0)}
    for client, X in streams.items():
        for batch in np.array_split(X, 10):
            sha = sha256_of(np.asarray(batch, dtype=np.float32).tobytes())
            X_by_sha[sha] = batch
            log.record(client=client, scopes=["predict"], input_sha256=sha, decision="allow", status=200,
                       reason="allowed", n_images=len(batch), output_class=training.predict(model, batch).tolist())
    found = incident.suspects(serving.read_audit(log_path), X_by_sha)
    assert list(found) == ["mallory"] and found["mallory"]["images"] == 200
    audit = trail.AuditTrail(tmp_path / "t.jsonl", trail.signing_key(3), clock=trail.step_clock())
    case = incident.open_incident(audit, "extraction", "PRADA flags a client", clients=list(found))
    issuer = serving.TokenIssuer()
    token = issuer.issue("mallory")
    entry = incident.revoke(audit, issuer, "mallory", case)
    assert entry.kind == "revocation" and entry.data["incident"] == case.hash
    with pytest.raises(serving.AuthError, match="revoked"):
        issuer.verify(token)
    for bad, says in ((dict(kind="fire"), "kind"), (dict(summary="short"), "say in a sentence")):
        with pytest.raises(ValidationError, match=says):
            incident.open_incident(audit, **{"kind": "extraction", "summary": "a long enough summary", **bad})


def test_each_playbook_has_the_five_steps():
    for kind in incident.PLAYBOOKS:
        assert list(incident.playbook(kind).index) == ["detect", "scope", "contain", "recover", "record"]


# --------------------------------------------------------------------------- widget

def test_the_risk_panel_follows_its_checkboxes(recorded):
    from utils.widgets import risk_panel

    panel = risk_panel(recorded["ev"])
    boxes = [w for row in panel.children[:2] for w in row.children]
    label = panel.children[2]
    assert [b.description for b in boxes] == list(risk.all_controls())
    with_all = label.value
    for b in boxes:
        b.value = False
    reg = risk.register(recorded["ev"])
    assert f"total score {reg['score'].sum()} → {reg['score'].sum()}" in label.value != with_all
    assert panel.children[3].value[:4] == b"\x89PNG"
