"""The course's threat model as data (taught in 00_orientation_and_threat_model).

Each lesson 01–11 is mapped to the lifecycle stage it attacks or defends, the
security property at stake (confidentiality, integrity, availability), MITRE
ATLAS technique ids and OWASP Machine Learning Security Top 10 (2023) entries.
Lessons cite the same ids, and a test keeps them consistent.
"""
from __future__ import annotations

from dataclasses import dataclass

#: OWASP Machine Learning Security Top 10 (2023).
OWASP_ML_TOP10: dict[str, str] = {
    "ML01": "Input Manipulation Attack",
    "ML02": "Data Poisoning Attack",
    "ML03": "Model Inversion Attack",
    "ML04": "Membership Inference Attack",
    "ML05": "Model Theft",
    "ML06": "AI Supply Chain Attacks",
    "ML07": "Transfer Learning Attack",
    "ML08": "Model Skewing",
    "ML09": "Output Integrity Attack",
    "ML10": "Model Poisoning",
}

#: OWASP entries no lesson covers, and why (lesson 00 says so rather than claiming the whole list).
NOT_COVERED: dict[str, str] = {
    "ML07": "every model of the course is trained from scratch, so no lesson attacks what a model "
            "inherits from a pre-trained one (lesson 02's backdoors come closest)",
}

#: MITRE ATLAS techniques and mitigations cited in the course.
ATLAS: dict[str, str] = {
    "AML.T0010": "ML Supply Chain Compromise",
    "AML.T0011": "User Execution (unsafe model files)",
    "AML.T0015": "Evade ML Model",
    "AML.T0018": "Backdoor ML Model",
    "AML.T0019": "Publish Poisoned Datasets",
    "AML.T0020": "Poison Training Data",
    "AML.T0024": "Exfiltration via ML Inference API",
    "AML.T0024.000": "Infer Training Data Membership",
    "AML.T0024.002": "Extract ML Model",
    "AML.T0029": "Denial of ML Service",
    "AML.T0031": "Erode ML Model Integrity",
    "AML.T0040": "ML Model Inference API Access",
    "AML.T0042": "Verify Attack",
    "AML.T0043": "Craft Adversarial Data",
    "AML.M0002": "Passive ML Output Obfuscation",
    "AML.M0007": "Sanitize Training Data",
    "AML.M0003": "Model Hardening",
    "AML.M0015": "Adversarial Input Detection",
    "AML.M0004": "Restrict Number of ML Model Queries",
    "AML.M0005": "Control Access to ML Models and Data at Rest",
    "AML.M0013": "Code Signing",
    "AML.M0014": "Verify ML Artifacts",
    "AML.M0019": "Control Access to ML Models and Data in Production",
    "AML.M0023": "AI Bill of Materials",
    "AML.M0016": "Vulnerability Scanning",
    "AML.M0024": "AI Telemetry Logging",
    "AML.M0025": "Maintain AI Dataset Provenance",
}


@dataclass(frozen=True)
class Lesson:
    """One row of the threat model: a lesson and what it covers (taught in 00_orientation_and_threat_model)."""

    number: str
    topic: str
    stage: str
    property: str
    atlas: tuple[str, ...]
    owasp: tuple[str, ...]


CURRICULUM: tuple[Lesson, ...] = (
    Lesson("01", "data poisoning", "data collection / training", "integrity, availability",
           ("AML.T0020", "AML.T0031"), ("ML02", "ML08")),
    Lesson("02", "backdoors", "data collection / training", "integrity",
           ("AML.T0018", "AML.T0020", "AML.T0019"), ("ML02", "ML10")),
    Lesson("03", "data defenses", "data collection / training", "integrity",
           ("AML.M0007", "AML.T0020", "AML.T0018"), ("ML02", "ML10")),
    Lesson("04", "adversarial examples", "inference", "integrity",
           ("AML.T0043", "AML.T0015", "AML.T0042", "AML.T0040"), ("ML01",)),
    Lesson("05", "adversarial defenses", "training / inference", "integrity",
           ("AML.M0003", "AML.M0015", "AML.T0043"), ("ML01",)),
    Lesson("06", "model theft and privacy", "inference API", "confidentiality",
           ("AML.T0024.002", "AML.T0024.000", "AML.T0040", "AML.M0002", "AML.M0004"), ("ML05", "ML04", "ML03")),
    Lesson("07", "secure deployment", "packaging / serving", "integrity, confidentiality, availability",
           ("AML.T0010", "AML.T0011", "AML.T0040", "AML.T0029", "AML.M0005", "AML.M0013", "AML.M0014",
            "AML.M0019", "AML.M0023"), ("ML06", "ML09")),
    Lesson("08", "monitoring", "operation", "integrity, availability, confidentiality",
           ("AML.M0024", "AML.T0015", "AML.T0024.002"), ("ML01", "ML05", "ML08")),
    Lesson("09", "governance and audit", "whole lifecycle", "integrity, confidentiality, availability",
           ("AML.M0024", "AML.M0025", "AML.M0014", "AML.M0013", "AML.M0016", "AML.T0010", "AML.T0018",
            "AML.T0024.002"), ("ML06", "ML10", "ML02", "ML05")),
    Lesson("10", "workbench", "before release (auditing a model you bring)", "integrity, confidentiality",
           ("AML.T0015", "AML.T0018", "AML.T0024.000", "AML.T0024.002", "AML.M0016"),
           ("ML01", "ML04", "ML05", "ML10")),
    Lesson("11", "capstone", "before release (penetration test)", "integrity, confidentiality",
           ("AML.T0018", "AML.T0015", "AML.T0024.000", "AML.T0042"), ("ML01", "ML04", "ML10")),
)


def table():
    """The threat model as a pandas DataFrame, one row a lesson, ids with their names (taught in 00_orientation_and_threat_model)."""
    import pandas as pd

    rows = []
    for les in CURRICULUM:
        rows.append({
            "lesson": f"{les.number} {les.topic}",
            "lifecycle stage": les.stage,
            "CIA": les.property,
            "MITRE ATLAS": "; ".join(f"{i} {ATLAS[i]}" for i in les.atlas),
            "OWASP ML Top 10": "; ".join(f"{o} {OWASP_ML_TOP10[o]}" for o in les.owasp),
        })
    return pd.DataFrame(rows).set_index("lesson")


def lesson(number: str) -> Lesson:
    """The row for a lesson number such as ``"04"`` (taught in 00_orientation_and_threat_model; every lesson cites its row)."""
    from utils import validation as v

    v.choice(number, "number", "threat_model.lesson", [les.number for les in CURRICULUM])
    return next(les for les in CURRICULUM if les.number == number)
