"""Incident response with the course's own records: find, contain, recover, record.

Two playbooks (:data:`PLAYBOOKS`), walked through in lesson 09:

- **extraction**: find the client in the API's audit log (PRADA over each client's queries,
  lesson 06), revoke its tokens (the API answers 401 from then on), record both in the trail;
- **backdoor**: find a deployment no promoted release covers (the trail shows every
  deployment and every gate decision), confirm with the recorded scan, roll back to the
  last promoted, signed version through the load gate (lesson 07), record it.

Every step appends an entry to the audit trail, so the response is itself auditable.
Taught in 09_governance_and_audit.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from utils import validation as v

#: The steps of each playbook, in order: (step, what it does, the course's tool).
PLAYBOOKS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "extraction": (
        ("detect", "PRADA flags a client whose queries are unlike natural data", "theft.prada_log on the API log"),
        ("scope", "list the client's requests: how many images, which outputs it got", "serving.read_audit"),
        ("contain", "revoke the client's tokens; its next request gets 401", "TokenIssuer.revoke"),
        ("recover", "assume a copy exists: check the watermark of suspect models later", "theft.verify"),
        ("record", "incident and revocation entries in the audit trail", "governance.incident"),
    ),
    "backdoor": (
        ("detect", "a deployment that no promoted release covers, or a scan that flags the training set",
         "incident.unreleased_deployments"),
        ("scope", "which version, since when, what the gate's scan recorded for it", "trail.find"),
        ("contain", "stop serving it: roll back to the last promoted, signed version", "incident.rollback"),
        ("recover", "clean the data (lesson 03) and send the retrained model through the gate again",
         "release.promote"),
        ("record", "incident and rollback entries in the audit trail", "governance.incident"),
    ),
}


def playbook(kind: str):
    """One playbook as a DataFrame: step, action, tool (taught in 09_governance_and_audit)."""
    import pandas as pd

    kind = v.choice(kind, "kind", "incident.playbook", sorted(PLAYBOOKS))
    return pd.DataFrame(PLAYBOOKS[kind], columns=["step", "action", "tool"]).set_index("step")


def open_incident(trail, kind: str, summary: str, **data: Any):
    """Append an ``"incident"`` entry (kind, summary, evidence) and return it (taught in 09_governance_and_audit)."""
    where = "open_incident"
    kind = v.choice(kind, "kind", where, sorted(PLAYBOOKS))
    if not isinstance(summary, str) or len(summary.strip()) < 10:
        v.fail(where, f"summary = {summary!r}", "say in a sentence what happened")
    return trail.append("incident", {"kind": kind, "summary": summary, **data}, actor="incident-response")


def suspects(log: Iterable[dict], X_by_sha: dict, *, delta: float = 0.9, min_queries: int = 100) -> dict[str, dict]:
    """Clients of an API audit log that PRADA flags, with when and how many images they sent
    (taught in 09_governance_and_audit)."""
    from utils.theft import detection

    log = list(log)
    results = detection.prada_log(log, X_by_sha, delta=delta, min_queries=min_queries)
    sent: dict[str, int] = {}
    for e in log:
        if e.get("decision") == "allow":
            sent[e["client"]] = sent.get(e["client"], 0) + int(e.get("n_images") or 0)
    return {c: {"flagged_at": r["flagged_at"], "images": sent.get(c, 0), "w": round(float(r["w"]), 4)}
            for c, r in results.items() if r["flagged"]}


def revoke(trail, issuer, client: str, incident, *, reason: str = "extraction suspected"):
    """Revoke every token of ``client`` at ``issuer`` and record it, pointing at the incident
    entry (taught in 09_governance_and_audit)."""
    issuer.revoke(client)
    return trail.append("revocation", {"client": client, "reason": reason, "incident": incident.hash},
                        actor="incident-response")


def unreleased_deployments(entries: Iterable) -> list:
    """``"deployment"`` entries whose weights no earlier ``"release"`` entry promoted (taught in
    09_governance_and_audit): a model that reached production around the gate."""
    promoted: set[str] = set()
    out = []
    for e in entries:
        if e.kind == "release" and e.data.get("decision") == "promoted":
            promoted.add(str(e.data.get("model", {}).get("sha256")))
        elif e.kind == "deployment" and str(e.data.get("weights_sha256")) not in promoted:
            out.append(e)
    return out


def last_promoted(entries: Iterable, *, excluding: Iterable[str] = ()):
    """The latest ``"release"`` entry that promoted a version, skipping the weights in
    ``excluding`` (taught in 09_governance_and_audit); a clear error when there is none."""
    skip = set(excluding)
    found = [e for e in entries if e.kind == "release" and e.data.get("decision") == "promoted"
             and e.data.get("model", {}).get("sha256") not in skip]
    if not found:
        v.fail("last_promoted", "no promoted release in the trail", "promote a version through the gate first")
    return found[-1]


def rollback(trail, release, weights: str | Path, *, public_key: str | Path, signature: str | Path,
             model_factory: Callable[[], Any], incident=None, replaces: str | None = None):
    """Load the version a ``"release"`` entry promoted, through the load gate (pinned to the
    release's sha256, the publisher's signature verified), and record a ``"rollback"`` entry
    (taught in 09_governance_and_audit). Returns ``(model, entry)``; a file that is not the
    released one is refused by the gate (:class:`~utils.deployment.GateRefusal`) and nothing is
    recorded as rolled back."""
    from utils import deployment

    if getattr(release, "kind", None) != "release" or release.data.get("decision") != "promoted":
        v.fail("rollback", "the entry given is not a promoted release", "give a result of last_promoted(...)")
    sha = release.data["model"]["sha256"]
    model, steps = deployment.load_gate(weights, sha256=sha, public_key=public_key, signature=signature,
                                        model_factory=model_factory)
    entry = trail.append("rollback", {"to": release.data["model"], "release": release.hash,
                                      "replaces": replaces, "incident": None if incident is None else incident.hash,
                                      "gate": [s.step for s in steps]}, actor="incident-response")
    return model, entry
