"""The risk register: lesson 00's threats, scored from measurements, before and after the controls.

A risk's **likelihood** (1–5) is not typed in: it is read off the measured success of the
attack against the model, on a fixed scale (:data:`LIKELIHOOD_BOUNDS`): below 5% of attempts
succeed → 1 (rare), below 20% → 2, below 50% → 3, below 80% → 4, else 5 (almost certain).
Its **impact** (1–5) is a judgement about consequences, so it is stated with its reason.
Score = likelihood × impact. A control's effect is the same attack measured again with the
control in place (an entry of the audit trail), so the register moves only when a
measurement does (taught in 09_governance_and_audit).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from utils import validation as v

#: Upper bounds of attack success for likelihood 1, 2, 3 and 4 (5 above the last).
LIKELIHOOD_BOUNDS = (0.05, 0.20, 0.50, 0.80)
LIKELIHOOD_NAMES = ("rare", "unlikely", "possible", "likely", "almost certain")
IMPACT_NAMES = ("negligible", "minor", "moderate", "major", "severe")
#: Score bands of the heat map: low up to 4, medium up to 9, high up to 14, critical above.
BANDS = ((4, "low"), (9, "medium"), (14, "high"), (25, "critical"))
_ATLAS = re.compile(r"AML\.[TM]\d{4}(\.\d{3})?")
_OWASP = re.compile(r"ML(0[1-9]|10)")


def likelihood(success: float) -> int:
    """Likelihood 1–5 of a measured attack success rate in [0, 1] (taught in 09_governance_and_audit)."""
    s = v.unit(success, "success", "risk.likelihood")
    return 1 + sum(s >= b for b in LIKELIHOOD_BOUNDS)


def band(score: int) -> str:
    """"low", "medium", "high" or "critical" for a score 1–25 (taught in 09_governance_and_audit)."""
    score = v.integer(score, "score", "risk.band", 1, 25)
    return next(name for top, name in BANDS if score <= top)


@dataclass(frozen=True)
class Risk:
    """One row of the register (taught in 09_governance_and_audit).

    Attributes:
        id, threat: e.g. ``"R1"``, ``"backdoor planted through the training data"``.
        atlas, owasp: MITRE ATLAS technique ids and OWASP ML Top 10 ids of the threat.
        impact, impact_why: the judged impact 1–5 and why.
        measure: the measurement of the attack with no control (an :class:`~utils.governance.evidence.Measurement` name).
        success: ``"value"`` when the measurement is the attack's success rate, ``"1-value"``
            when it is what survives (an accuracy under attack).
        controls: control name → lesson that teaches it.
        measured: the measurement for a set of controls in place, as
            ``((control, ...), measurement name)`` pairs.
    """

    id: str
    threat: str
    atlas: tuple[str, ...]
    owasp: tuple[str, ...]
    impact: int
    impact_why: str
    measure: str
    success: str = "value"
    controls: tuple[tuple[str, str], ...] = ()
    measured: tuple[tuple[tuple[str, ...], str], ...] = ()

    def __post_init__(self):
        where = f"Risk {self.id!r}"
        if not isinstance(self.id, str) or not re.fullmatch(r"R\d+", self.id):
            v.fail("Risk", f"id = {self.id!r}", "ids are R followed by a number, e.g. 'R6'")
        if not isinstance(self.threat, str) or len(self.threat.strip()) < 5:
            v.fail(where, f"threat = {self.threat!r}", "describe the threat in a few words")
        for i in self.atlas:
            if not isinstance(i, str) or not _ATLAS.fullmatch(i):
                v.fail(where, f"ATLAS id {i!r}", "ATLAS ids look like 'AML.T0043' or 'AML.T0024.002'")
        for o in self.owasp:
            if not isinstance(o, str) or not _OWASP.fullmatch(o):
                v.fail(where, f"OWASP id {o!r}", "OWASP ML Top 10 ids are ML01 ... ML10")
        if not self.atlas or not self.owasp:
            v.fail(where, "no ATLAS or no OWASP id", "name at least one of each")
        v.integer(self.impact, "impact", where, 1, 5)
        if not isinstance(self.impact_why, str) or len(self.impact_why.strip()) < 10:
            v.fail(where, f"impact_why = {self.impact_why!r}", "say in a sentence why the impact is what it is")
        v.choice(self.success, "success", where, ("value", "1-value"))
        names = {c for c, _ in self.controls}
        for combo, _ in self.measured:
            unknown = set(combo) - names
            if unknown:
                v.fail(where, f"measured names controls {sorted(unknown)} it does not list",
                       f"controls are {sorted(names)}")

    @property
    def control_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.controls)

    def measurement_for(self, enabled: Iterable[str]) -> tuple[str, tuple[str, ...]]:
        """The measurement that applies with the ``enabled`` controls: the one measured with the
        largest set of them (none: the attack with no control), and that set."""
        on = set(enabled) & set(self.control_names)
        best: tuple[tuple[str, ...], str] = ((), self.measure)
        for combo, name in self.measured:
            if set(combo) <= on and len(combo) > len(best[0]):
                best = (tuple(combo), name)
        return best[1], best[0]


#: The course's register: one risk per attack family of lessons 01–07, each with the control
#: its lesson measured. Impacts are the course's judgement for a digit classifier that gates a
#: decision (say, routing cheques); change them for your own system.
RISKS: tuple[Risk, ...] = (
    Risk("R1", "backdoor planted through the training data", ("AML.T0020", "AML.T0018"), ("ML02", "ML10"),
         4, "whoever knows the trigger chooses the model's answer, and clean tests do not show it",
         "backdoor_asr", controls=(("data cleaning", "03"),),
         measured=((("data cleaning",), "backdoor_asr_cleaned"),)),
    Risk("R2", "evasion with adversarial examples", ("AML.T0043", "AML.T0015"), ("ML01",),
         3, "one input at a time is misread; an attacker needs the model's gradients or many queries",
         "robust_accuracy", success="1-value", controls=(("adversarial training", "05"),),
         measured=((("adversarial training",), "robust_accuracy_hardened"),)),
    Risk("R3", "model extraction through the API", ("AML.T0024.002", "AML.T0040"), ("ML05",),
         3, "a copy leaks the model's value and becomes a white-box base for evasion",
         "extraction_fidelity", controls=(("label-only output", "06"), ("query quota", "07")),
         measured=((("label-only output",), "extraction_fidelity_label_only"),
                   (("label-only output", "query quota"), "extraction_fidelity_quota"))),
    Risk("R4", "membership inference on the training data", ("AML.T0024.000",), ("ML04",),
         3, "reveals who is in the training data; severe for personal data, minor for digits",
         "membership_tpr", controls=(("DP-SGD", "06"),), measured=((("DP-SGD",), "membership_tpr_dp"),)),
    Risk("R5", "an unsafe model file runs code when loaded", ("AML.T0010", "AML.T0011"), ("ML06",),
         5, "code execution on the serving host: every model, key and data set there is exposed",
         "unsafe_file_ran", controls=(("load gate", "07"),), measured=((("load gate",), "unsafe_file_ran_gated"),)),
)


@dataclass(frozen=True)
class RiskScore:
    """A risk scored from measurements, without and with controls (taught in 09_governance_and_audit)."""

    risk: Risk
    before_value: float
    before_run: str
    likelihood_before: int
    after_value: float
    after_run: str
    likelihood_after: int
    controls_applied: tuple[str, ...] = field(default=())

    @property
    def score_before(self) -> int:
        return self.likelihood_before * self.risk.impact

    @property
    def score_after(self) -> int:
        return self.likelihood_after * self.risk.impact


def _success(risk: Risk, value: float) -> float:
    return 1.0 - value if risk.success == "1-value" else value


def score(risk: Risk, evidence, enabled: Iterable[str] | None = None) -> RiskScore:
    """Score one risk from ``evidence`` (an :class:`~utils.governance.evidence.Evidence`) with the
    ``enabled`` controls (default: all of its controls) (taught in 09_governance_and_audit)."""
    if not isinstance(risk, Risk):
        v.fail("risk.score", f"risk is a {type(risk).__name__}", "give a Risk")
    enabled = risk.control_names if enabled is None else tuple(enabled)
    before = evidence[risk.measure]
    name, applied = risk.measurement_for(enabled)
    after = evidence[name]
    return RiskScore(risk, before.value, before.run, likelihood(_success(risk, before.value)), after.value,
                     after.run, likelihood(_success(risk, after.value)), applied)


def register(evidence, risks: Iterable[Risk] = RISKS, enabled: Iterable[str] | None = None):
    """The register as a DataFrame, one row a risk: ids, impact, the measurement and likelihood
    with no control and with the ``enabled`` controls (default all), both scores and bands,
    and the runs (trail hashes) the likelihoods rest on (taught in 09_governance_and_audit)."""
    import pandas as pd

    rows = []
    for r in risks:
        s = score(r, evidence, None if enabled is None else enabled)
        rows.append({"risk": r.id, "threat": r.threat, "ATLAS": ", ".join(r.atlas), "OWASP": ", ".join(r.owasp),
                     "impact": r.impact, "measured": round(s.before_value, 3), "L": s.likelihood_before,
                     "score": s.score_before, "band": band(s.score_before),
                     "controls": ", ".join(f"{c} ({les})" for c, les in r.controls if c in s.controls_applied) or "none",
                     "measured after": round(s.after_value, 3), "L after": s.likelihood_after,
                     "score after": s.score_after, "band after": band(s.score_after),
                     "runs": f"{s.before_run[:8]} / {s.after_run[:8]}"})
    return pd.DataFrame(rows).set_index("risk")


def all_controls(risks: Iterable[Risk] = RISKS) -> tuple[str, ...]:
    """Every control the register names, in order (taught in 09_governance_and_audit)."""
    seen: list[str] = []
    for r in risks:
        seen += [c for c in r.control_names if c not in seen]
    return tuple(seen)


def heatmap(scores: Iterable[RiskScore], *, after: bool = True, ax=None, title: str | None = None):
    """A 5×5 likelihood × impact heat map with each risk's id in its cell (taught in
    09_governance_and_audit); ``after`` picks the scores with controls."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.8))
    grid = np.outer(np.arange(1, 6), np.arange(1, 6))  # likelihood rows x impact columns
    bands = np.vectorize(lambda s: [n for _, n in BANDS].index(band(int(s))))(grid)
    cmap = ListedColormap(["#cfe8cf", "#fff2b3", "#ffc98a", "#f59a8f"])
    ax.imshow(bands, origin="lower", cmap=cmap, vmin=0, vmax=3, extent=(0.5, 5.5, 0.5, 5.5))
    cells: dict[tuple[int, int], list[str]] = {}
    for s in scores:
        lk = s.likelihood_after if after else s.likelihood_before
        cells.setdefault((lk, s.risk.impact), []).append(s.risk.id)
    for (lk, im), ids in cells.items():
        ax.text(im, lk, "\n".join(ids), ha="center", va="center", fontsize=9, weight="bold")
    ax.set_xticks(range(1, 6), [f"{i}" for i in range(1, 6)])
    ax.set_yticks(range(1, 6), [f"{i} {n}" for i, n in zip(range(1, 6), LIKELIHOOD_NAMES)], fontsize=8)
    ax.set_xlabel("impact")
    ax.set_ylabel("likelihood (from the measured attack success)")
    ax.set_title(title or ("with controls" if after else "no controls"))
    for k in np.arange(0.5, 6):
        ax.axhline(k, color="white", lw=1)
        ax.axvline(k, color="white", lw=1)
    return ax
