"""Governance and audit of the course's models (taught in 09_governance_and_audit).

- :mod:`utils.governance.trail`: an append-only, hash-chained audit trail, each entry signed
  with Ed25519, and a verifier that names the first tampered entry.
- :mod:`utils.governance.evidence`: the course's measurements, each recorded in the trail.
- :mod:`utils.governance.modelcard`: a model card (huggingface_hub's template) from those records.
- :mod:`utils.governance.risk`: the risk register, scored from measured effects, and its heat map.
- :mod:`utils.governance.release`: the release gate (``python -m utils.governance gate``).
- :mod:`utils.governance.incident`: incident response with the course's own logs.
- :mod:`utils.governance.frameworks`: the controls mapped to MITRE ATLAS, OWASP, NIST AI RMF, EU AI Act.
"""
from utils.governance import evidence, frameworks, incident, modelcard, release, risk, trail

__all__ = ["evidence", "frameworks", "incident", "modelcard", "release", "risk", "trail"]
