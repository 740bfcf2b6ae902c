"""The course's controls mapped to MITRE ATLAS, the OWASP ML Top 10, the NIST AI RMF and the EU AI Act.

A map, not legal advice: it says which duty or function a control *serves*, not that using it
makes a system compliant. ATLAS and OWASP ids are the course's own (``utils.course.threat_model``).
For the NIST AI RMF 1.0 (NIST AI 100-1, 2023) the map names the four functions and, where the
fit is direct, a subcategory. For the EU AI Act (Regulation (EU) 2024/1689) it names articles of
Chapter III, Section 2 (requirements for high-risk AI systems) and of Chapter IX; only the
short passages in :data:`EU_AI_ACT_QUOTES` are quoted, each checked against the regulation's
text. Taught in 09_governance_and_audit.
"""
from __future__ import annotations

from dataclasses import dataclass

from utils.course import threat_model

#: The NIST AI RMF's four functions, in the framework's own order.
NIST_FUNCTIONS: dict[str, str] = {
    "GOVERN": "a culture of risk management: policies, roles, accountability",
    "MAP": "context is recognised and risks related to it are identified",
    "MEASURE": "identified risks are assessed, analysed or tracked",
    "MANAGE": "risks are prioritised and acted upon based on projected impact",
}

#: NIST AI RMF subcategories the map cites (paraphrased; see NIST AI 100-1, Tables 1-4).
NIST_SUBCATEGORIES: dict[str, str] = {
    "MEASURE 2.1": "test sets, metrics and details about the tools used during test and evaluation are documented",
    "MEASURE 2.7": "AI system security and resilience are evaluated and documented",
    "MEASURE 2.10": "privacy risk of the AI system is examined and documented",
    "MEASURE 3.1": "approaches, personnel and documentation are in place to identify and track existing, "
                   "unanticipated and emergent AI risks",
    "MANAGE 4.1": "post-deployment monitoring plans are implemented",
}

#: EU AI Act articles the map names, with their titles.
EU_AI_ACT: dict[str, str] = {
    "Art. 9": "Risk management system",
    "Art. 10": "Data and data governance",
    "Art. 11": "Technical documentation",
    "Art. 12": "Record-keeping",
    "Art. 13": "Transparency and provision of information to deployers",
    "Art. 15": "Accuracy, robustness and cybersecurity",
    "Art. 72": "Post-market monitoring by providers and post-market monitoring plan for high-risk AI systems",
    "Art. 73": "Reporting of serious incidents",
}

#: The only passages quoted, word for word.
EU_AI_ACT_QUOTES: dict[str, str] = {
    "Art. 12(1)": "High-risk AI systems shall technically allow for the automatic recording of events (logs) "
                  "over the lifetime of the system.",
    "Art. 15(5)": "The technical solutions to address AI specific vulnerabilities shall include, where "
                  "appropriate, measures to prevent, detect, respond to, resolve and control for attacks "
                  "trying to manipulate the training data set (data poisoning), or pre-trained components "
                  "used in training (model poisoning), inputs designed to cause the AI model to make a "
                  "mistake (adversarial examples or model evasion), confidentiality attacks or model flaws.",
}


@dataclass(frozen=True)
class Control:
    """One control of the course and what it serves (taught in 09_governance_and_audit)."""

    name: str
    lesson: str
    atlas: tuple[str, ...]
    owasp: tuple[str, ...]
    nist: tuple[str, ...]
    eu_ai_act: tuple[str, ...]


CONTROLS: tuple[Control, ...] = (
    Control("data cleaning (activation clustering, spectral signatures)", "03", ("AML.M0007",), ("ML02", "ML10"),
            ("MEASURE 2.7", "MANAGE"), ("Art. 10", "Art. 15")),
    Control("adversarial training", "05", ("AML.M0003",), ("ML01",), ("MEASURE 2.7", "MANAGE"), ("Art. 15",)),
    Control("adversarial input detection (feature squeezing)", "05", ("AML.M0015",), ("ML01",),
            ("MEASURE 2.7",), ("Art. 15",)),
    Control("label-only or coarse outputs", "06", ("AML.M0002",), ("ML05", "ML04", "ML03"),
            ("MEASURE 2.10", "MANAGE"), ("Art. 15",)),
    Control("DP-SGD training", "06", (), ("ML04", "ML03"), ("MEASURE 2.10", "MANAGE"), ("Art. 15",)),
    Control("watermark and fingerprint of the model", "06", (), ("ML05",), ("MEASURE 2.7",), ()),
    Control("per-client rate limits and quotas", "07", ("AML.M0004",), ("ML05",), ("MANAGE",), ("Art. 15",)),
    Control("tokens with scopes, strict input validation", "07", ("AML.M0019", "AML.M0005"), ("ML09", "ML01"),
            ("MANAGE",), ("Art. 15",)),
    Control("safe weights format and model-file scanners", "07", ("AML.M0016",), ("ML06",), ("MEASURE 2.7",),
            ("Art. 15",)),
    Control("model signing", "07", ("AML.M0013",), ("ML06", "ML10"), ("MANAGE",), ("Art. 15",)),
    Control("load gate (hash, signature, scan, strict load)", "07", ("AML.M0014",), ("ML06", "ML10"),
            ("MANAGE",), ("Art. 15",)),
    Control("ML bill of materials (CycloneDX)", "07", ("AML.M0023",), ("ML06",), ("GOVERN", "MAP"),
            ("Art. 11",)),
    Control("monitoring of drift and traffic, alerts", "08", ("AML.M0024",), ("ML08", "ML01", "ML05"),
            ("MANAGE 4.1", "MEASURE 3.1"), ("Art. 72", "Art. 12")),
    Control("hash-chained, signed audit trail", "09", ("AML.M0024", "AML.M0025"), ("ML02", "ML10"),
            ("GOVERN", "MEASURE 2.1"), ("Art. 12",)),
    Control("model card from recorded metrics", "09", (), ("ML10",), ("GOVERN", "MAP", "MEASURE 2.1"),
            ("Art. 11", "Art. 13")),
    Control("risk register scored from measurements", "09", (), ("ML02", "ML01", "ML05", "ML04", "ML06"),
            ("MAP", "MEASURE 3.1", "MANAGE"), ("Art. 9",)),
    Control("release gate", "09", ("AML.M0014",), ("ML06", "ML10"), ("MEASURE 2.7", "MANAGE"),
            ("Art. 9", "Art. 15")),
    Control("incident response (revoke, roll back, record)", "09", (), ("ML05", "ML10"), ("MANAGE",),
            ("Art. 73", "Art. 72")),
)


def table():
    """The map as a DataFrame, one row a control, ids with their names (taught in 09_governance_and_audit)."""
    import pandas as pd

    rows = []
    for c in CONTROLS:
        rows.append({"control": c.name, "lesson": c.lesson,
                     "MITRE ATLAS": ", ".join(c.atlas) or "–",
                     "OWASP ML Top 10": ", ".join(c.owasp),
                     "NIST AI RMF": ", ".join(c.nist),
                     "EU AI Act": ", ".join(c.eu_ai_act) or "–"})
    return pd.DataFrame(rows).set_index("control")


def check() -> list[str]:
    """Problems of the map: unknown ATLAS, OWASP, NIST or EU AI Act references (empty when sound;
    taught in 09_governance_and_audit)."""
    problems = []
    for c in CONTROLS:
        problems += [f"{c.name}: unknown ATLAS id {i}" for i in c.atlas if i not in threat_model.ATLAS]
        problems += [f"{c.name}: unknown OWASP id {o}" for o in c.owasp if o not in threat_model.OWASP_ML_TOP10]
        for n in c.nist:
            if n not in NIST_FUNCTIONS and n not in NIST_SUBCATEGORIES:
                problems.append(f"{c.name}: unknown NIST reference {n}")
        problems += [f"{c.name}: unknown EU AI Act article {a}" for a in c.eu_ai_act if a not in EU_AI_ACT]
    return problems


def by_function():
    """How many controls serve each NIST AI RMF function (a subcategory counts for its function;
    taught in 09_governance_and_audit)."""
    counts = {f: 0 for f in NIST_FUNCTIONS}
    for c in CONTROLS:
        for f in {n.split()[0] for n in c.nist}:
            counts[f] += 1
    return counts
