"""The release gate: a model version is promoted only when every rule holds on traceable evidence.

Evidence is one JSON document::

    {"model": {"name": "digits-mlp", "version": "2", "weights": "model.safetensors", "sha256": "..."},
     "metrics": {"clean_accuracy": {"value": 0.964, "run": "<hash of the trail entry>"}, ...},
     "signature": "model.sig", "mlbom": "model.mlbom.json", "publisher_key": "publisher.pub.pem"}

(paths relative to the evidence file). :func:`evaluate` checks each :class:`Rule`:

- a *metric* rule reads ``metrics[metric]``; with a trail, the number counts only when its
  ``run`` is an ``"evaluation"`` entry of a trail that verifies, and that entry records the
  same metric and value (and, when it names one, the same model sha256): a number typed into
  the evidence is "not traceable" and fails. A missing metric fails, never passes silently.
- an *artefact* rule (:data:`ARTEFACTS`) is measured by the gate itself: the weights' sha256
  equals the evidence's, the signature verifies (:func:`utils.deployment.signing.verify`,
  local key, lesson 07), the ML-BOM is a valid CycloneDX 1.6 document
  (:func:`utils.deployment.mlbom.validate_mlbom`) that describes these weights.

:func:`promote` evaluates and appends a ``"release"`` entry (promoted or blocked, and why) to
the trail, so a blocked attempt leaves its record. ``python -m utils.governance gate`` is the
same gate for CI (exit 0 promoted, 1 blocked, 2 bad input).

Taught in 09_governance_and_audit.
"""
from __future__ import annotations

import hashlib
import json
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from utils import validation as v
from utils.governance import trail as _trail

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
#: The metrics the gate measures itself (never read from the evidence's ``metrics``).
ARTEFACTS = ("weights_sha256_match", "signature_valid", "mlbom_valid")
#: The L∞ budget (pixels in [0, 1]) at which ``robust_accuracy`` is measured (PGD, lesson 05).
ROBUST_EPS = 0.1
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Rule:
    """One release rule: ``metric op threshold`` must hold, with the reason it exists
    (taught in 09_governance_and_audit). ``op`` is one of ``>=, <=, >, <, ==``; ``threshold``
    a finite number, or True/False with ``==`` (artefact rules: :data:`ARTEFACTS`)."""

    name: str
    metric: str
    op: str
    threshold: float | bool
    why: str

    def __post_init__(self):
        where = "Rule"
        for k in ("name", "metric", "why"):
            val = getattr(self, k)
            if not isinstance(val, str) or not val.strip():
                v.fail(where, f"{k} = {val!r}", f"{k} must be a non-empty string")
        v.choice(self.op, "op", where, tuple(OPS))
        if isinstance(self.threshold, bool):
            if self.op != "==":
                v.fail(where, f"threshold = {self.threshold} with op {self.op!r}",
                       "a True/False threshold needs op '=='")
        elif not v.is_real(self.threshold):
            v.fail(where, f"threshold = {self.threshold!r} ({self.name})",
                   "threshold must be a finite number or True/False")
        if self.metric in ARTEFACTS and self.threshold is not True:
            v.fail(where, f"artefact rule {self.name!r} has threshold {self.threshold!r}",
                   f"rules on {', '.join(ARTEFACTS)} must be '== True'")

    @property
    def artefact(self) -> bool:
        """Whether the gate measures this rule's metric itself (:data:`ARTEFACTS`)."""
        return self.metric in ARTEFACTS

    def holds(self, value: Any) -> bool:
        """Whether ``value op threshold`` (False for a missing or non-numeric value)."""
        if isinstance(self.threshold, bool):
            return isinstance(value, bool) and value == self.threshold
        if not v.is_real(value):
            return False
        return bool(OPS[self.op](float(value), float(self.threshold)))

    def text(self) -> str:
        """``clean_accuracy >= 0.9``."""
        t = self.threshold if isinstance(self.threshold, bool) else f"{self.threshold:g}"
        return f"{self.metric} {self.op} {t}"


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("clean accuracy", "clean_accuracy", ">=", 0.90,
         "the model must do its job: accuracy on the held-out test digits (00, 01)"),
    Rule("robust accuracy", "robust_accuracy", ">=", 0.70,
         f"accuracy under PGD at L∞ eps = {ROBUST_EPS} (05): a standard model falls far below, an "
         f"adversarially trained one stays above"),
    Rule("backdoor scan", "backdoor_flagged", "<=", 0.02,
         "share of the training set that activation clustering against a trusted reference flags "
         "(03): a clean set is flagged at most a few in a thousand"),
    Rule("membership leakage", "membership_tpr", "<=", 0.10,
         "membership attack's TPR at 1% FPR (06): at most 10x the rate of guessing"),
    Rule("weights hash", "weights_sha256_match", "==", True,
         "the weights file is the one the evidence (and every measurement) is about"),
    Rule("signature", "signature_valid", "==", True,
         "the publisher's signature over the weights verifies with the pinned key (07)"),
    Rule("ML-BOM", "mlbom_valid", "==", True,
         "a valid CycloneDX 1.6 ML-BOM that names these weights' sha256 (07)"),
)


def rules_from(items: Iterable[dict[str, Any]] | str | Path) -> list[Rule]:
    """Rules from a list of dicts (``name, metric, op, threshold, why``) or a JSON file holding
    one (taught in 09_governance_and_audit)."""
    where = "rules_from"
    if isinstance(items, (str, os.PathLike)):
        p = v.existing_file(items, "rules", where)
        try:
            items = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            v.fail(where, f"'{p.name}' is not JSON ({e.msg}, line {e.lineno})", "rules must be a JSON list of rules")
    if not isinstance(items, list) or not items:
        v.fail(where, f"rules is a {type(items).__name__}" + (" (empty)" if items == [] else ""),
               "rules must be a non-empty list of {name, metric, op, threshold, why}")
    out = []
    keys = {"name", "metric", "op", "threshold", "why"}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != keys:
            got = sorted(item) if isinstance(item, dict) else type(item).__name__
            v.fail(where, f"rule {i} has {got}", f"each rule must have exactly {sorted(keys)}")
        out.append(Rule(**item))
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        v.fail(where, "two rules share a name", "give every rule its own name")
    return out


# --------------------------------------------------------------------------- evidence




def load_evidence(evidence: dict[str, Any] | str | Path, base: str | Path | None = None) -> dict[str, Any]:
    """Read and check release evidence (a dict or a JSON file); returns a clean copy whose paths
    are absolute (relative ones are taken from ``base``, default the evidence file's folder or
    the current one). Raises a ``ValidationError`` naming the bad field (taught in
    09_governance_and_audit).

    Fields: ``model`` (``name``, ``version``, ``weights`` path, ``sha256``: 64 hex digits),
    ``metrics`` (name -> ``{"value": number, "run": trail entry hash or null}``),
    ``signature`` and ``mlbom`` (paths or null), optional ``publisher_key`` (a PEM public key
    path, used when the gate is not given one)."""
    where = "load_evidence"
    if isinstance(evidence, (str, os.PathLike)):
        p = v.existing_file(evidence, "evidence", where)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            v.fail(where, f"'{p.name}' is not JSON ({e.msg}, line {e.lineno})", "evidence must be one JSON object")
        except UnicodeDecodeError:
            v.fail(where, f"'{p.name}' is not UTF-8 text", "evidence must be a JSON file")
        base = p.parent if base is None else base
    elif isinstance(evidence, dict):
        doc = evidence
    else:
        v.fail(where, f"evidence is a {type(evidence).__name__}", "evidence must be a dict or a JSON file")
    base = Path.cwd() if base is None else Path(base)
    if not isinstance(doc, dict):
        v.fail(where, f"evidence is a JSON {type(doc).__name__}", "evidence must be a JSON object")
    allowed = {"model", "metrics", "signature", "mlbom", "publisher_key"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        v.fail(where, f"evidence has unknown fields {unknown}", f"fields are {sorted(allowed)}")
    for k in ("model", "metrics", "signature", "mlbom"):
        if k not in doc:
            v.fail(where, f"evidence lacks '{k}'", "evidence needs model, metrics, signature and mlbom "
                                                  "(signature and mlbom may be null)")

    def path_field(value: Any, name: str, nullable: bool = True) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value:
            v.fail(where, f"{name} = {value!r}",
                   f"{name} must be a file path (string)" + (" or null" if nullable else ""))
        p = Path(value)
        return str(p if p.is_absolute() else (base / p).resolve())

    model = doc["model"]
    if not isinstance(model, dict):
        v.fail(where, f"model is a {type(model).__name__}",
               "model must be an object with name, version, weights, sha256")
    missing = [k for k in ("name", "version", "weights", "sha256") if k not in model]
    if missing:
        v.fail(where, f"model lacks {missing}", "model must have name, version, weights and sha256")
    for k in ("name", "version"):
        if not isinstance(model[k], str) or not model[k]:
            v.fail(where, f"model.{k} = {model[k]!r}", f"model.{k} must be a non-empty string")
    if not isinstance(model["sha256"], str) or not _HEX64.fullmatch(model["sha256"]):
        v.fail(where, f"model.sha256 = {model['sha256']!r}", "model.sha256 must be 64 lowercase hex digits")
    clean_model = {**model, "weights": path_field(model["weights"], "model.weights", nullable=False)}

    metrics = doc["metrics"]
    if not isinstance(metrics, dict):
        v.fail(where, f"metrics is a {type(metrics).__name__}", "metrics must be an object name -> {value, run}")
    clean_metrics = {}
    for name, m in metrics.items():
        if name in ARTEFACTS:
            v.fail(where, f"metrics.{name} is given", f"the gate measures {name} itself: remove it from metrics")
        if not isinstance(m, dict) or "value" not in m or not set(m) <= {"value", "run"}:
            v.fail(where, f"metrics.{name} = {m!r}",
                   f"metrics.{name} must be {{\"value\": number, \"run\": hash or null}}")
        if not v.is_real(m["value"]):
            v.fail(where, f"metrics.{name}.value = {m['value']!r}", f"metrics.{name}.value must be a finite number")
        run = m.get("run")
        if run is not None and (not isinstance(run, str) or not _HEX64.fullmatch(run)):
            v.fail(where, f"metrics.{name}.run = {run!r}", f"metrics.{name}.run must be a trail entry hash "
                                                           f"(64 lowercase hex digits) or null")
        clean_metrics[name] = {"value": float(m["value"]), "run": run}
    out = {"model": clean_model, "metrics": clean_metrics,
           "signature": path_field(doc["signature"], "signature"), "mlbom": path_field(doc["mlbom"], "mlbom")}
    if doc.get("publisher_key") is not None:
        out["publisher_key"] = path_field(doc["publisher_key"], "publisher_key")
    return out


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class RuleResult:
    """One rule checked: the ``rule``, the ``value`` found (None when missing), whether it
    ``passed``, and the ``reason`` (taught in 09_governance_and_audit)."""

    rule: Rule
    value: Any
    passed: bool
    reason: str


@dataclass
class GateDecision:
    """The gate's verdict: ``passed`` (promote) and one :class:`RuleResult` per rule (taught in
    09_governance_and_audit)."""

    passed: bool
    results: list[RuleResult] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[RuleResult]:
        """The rules that failed."""
        return [r for r in self.results if not r.passed]

    def table(self):
        """A DataFrame, one row a rule: rule, check, value, passed, reason."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=["rule", "check", "value", "passed", "reason"]).set_index("rule")

    def rows(self) -> list[dict[str, Any]]:
        """The table's rows as dicts (no pandas needed)."""
        return [{"rule": r.rule.name, "check": r.rule.text(), "value": r.value, "passed": r.passed,
                 "reason": r.reason} for r in self.results]

    def summary(self) -> str:
        """``PROMOTED: 7 of 7 rules hold`` or ``BLOCKED by 2 of 7 rules: ...``."""
        name = f"{self.model.get('name', '?')} v{self.model.get('version', '?')}"
        n = len(self.results)
        if self.passed:
            return f"PROMOTED {name}: {n} of {n} rules hold"
        failed = self.failed
        return (f"BLOCKED {name} by {len(failed)} of {n} rules: "
                + "; ".join(f"{r.rule.name} ({r.reason})" for r in failed))

    def text(self) -> str:
        """A plain-text table and the summary, as the command line prints it."""
        rows = [("rule", "check", "value", "ok", "reason")]
        for r in self.rows():
            val = r["value"]
            shown = "-" if val is None else (f"{val:.4g}" if isinstance(val, float) else str(val))
            rows.append((r["rule"], r["check"], shown, "yes" if r["passed"] else "NO", r["reason"]))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]
        return "\n".join(lines + ["", self.summary()])


def _matches(entry_data: dict[str, Any], metric: str, value: float) -> tuple[bool, str]:
    """Whether an evaluation entry's data records ``metric`` = ``value``."""
    recorded = _recorded(entry_data, metric)
    if recorded is None:
        return False, f"the entry records no {metric}"
    if not v.is_real(recorded) or float(recorded) != float(value):
        return False, f"the entry records {metric} = {recorded!r}, the evidence says {value!r}"
    return True, ""


def _pinned_model(entry_data: dict[str, Any]) -> str | None:
    for k in ("model", "model_sha256", "sha256", "weights_sha256"):
        val = entry_data.get(k)
        if isinstance(val, str) and _HEX64.fullmatch(val):
            return val
        if isinstance(val, dict) and isinstance(val.get("sha256"), str):
            return val["sha256"]
    return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _artefacts(ev: dict[str, Any], publisher_key: Any) -> dict[str, tuple[bool, str]]:
    """The gate's own measurements: (value, reason) for each of :data:`ARTEFACTS`."""
    out = {}
    weights = Path(ev["model"]["weights"])
    sha = ev["model"]["sha256"]
    if not weights.is_file():
        out["weights_sha256_match"] = (False, f"weights '{weights.name}' not found")
    else:
        actual = _sha256_file(weights)
        out["weights_sha256_match"] = (actual == sha, f"sha256 {actual[:12]} matches" if actual == sha else
                                       f"'{weights.name}' has sha256 {actual[:12]}, the evidence says {sha[:12]}")
    # signature
    key = publisher_key if publisher_key is not None else ev.get("publisher_key")
    if ev["signature"] is None:
        out["signature_valid"] = (False, "no signature in the evidence")
    elif not Path(ev["signature"]).is_file():
        out["signature_valid"] = (False, f"signature '{Path(ev['signature']).name}' not found")
    elif key is None:
        out["signature_valid"] = (False, "no publisher public key to verify against")
    elif not weights.is_file():
        out["signature_valid"] = (False, "no weights file to verify")
    else:
        from utils.deployment.signing import SignatureError, verify as verify_signature

        try:
            verify_signature(weights, key, ev["signature"])
            source = "the gate's pinned key" if publisher_key is not None else "the key the evidence names"
            out["signature_valid"] = (True, f"verifies with {source}")
        except SignatureError as e:
            out["signature_valid"] = (False, e.reason)
        except v.ValidationError as e:
            out["signature_valid"] = (False, str(e))
    # ML-BOM
    if ev["mlbom"] is None:
        out["mlbom_valid"] = (False, "no ML-BOM in the evidence")
    elif not Path(ev["mlbom"]).is_file():
        out["mlbom_valid"] = (False, f"ML-BOM '{Path(ev['mlbom']).name}' not found")
    else:
        try:
            doc = json.loads(Path(ev["mlbom"]).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            out["mlbom_valid"] = (False, f"ML-BOM is not JSON ({e})")
        else:
            from utils.deployment.mlbom import validate_mlbom

            try:
                validate_mlbom(doc)
            except v.ValidationError as e:
                out["mlbom_valid"] = (False, e.wrong)
            else:
                hashes = [h.get("content") for h in doc.get("metadata", {}).get("component", {}).get("hashes", [])]
                if sha in hashes:
                    out["mlbom_valid"] = (True, "valid CycloneDX 1.6, names these weights")
                else:
                    out["mlbom_valid"] = (False, "valid CycloneDX 1.6 but about another model (sha256 differs)")
    return out


def evaluate(evidence: dict[str, Any] | str | Path, rules: Sequence[Rule] = DEFAULT_RULES, *,
             trail_path: str | Path | None = None, public_key: Any = None,
             publisher_key: str | Path | None = None, head: Any = None) -> GateDecision:
    """Check every rule on the evidence; ``passed`` only when all hold (taught in
    09_governance_and_audit).

    Args:
        evidence: a dict or JSON file (:func:`load_evidence`).
        rules: the rules (default :data:`DEFAULT_RULES`).
        trail_path: the audit trail the metrics' ``run`` hashes point into. Given, every metric
            must be traceable: the trail verifies with ``public_key`` (and ``head``, if given),
            and ``run`` is an ``"evaluation"`` entry recording that metric with that value (and
            the evidence's model sha256, when the entry names a model). Without a trail, values
            are checked as given and the reason says "untraced".
        public_key: the trail's Ed25519 public key (needed with ``trail_path``).
        publisher_key: the PEM public key the weights' signature must verify with; pin it here
            (the evidence's own ``publisher_key`` is used only when this is None, and an
            attacker who writes the evidence can name their own key).
        head: the trail's signed head (dict or file), so that a cut-off trail fails too.
    """
    where = "evaluate"
    ev = load_evidence(evidence)
    rules = list(rules)
    if not rules or not all(isinstance(r, Rule) for r in rules):
        v.fail(where, "rules is empty or holds items that are not Rule", "rules must be a non-empty list of Rule")
    entries: dict[str, _trail.Entry] = {}
    trail_problem = None
    if trail_path is not None:
        if public_key is None:
            v.fail(where, "trail_path given without public_key", "give the trail's public key to verify it")
        check = _trail.verify(trail_path, public_key, head=head)
        if not check.ok:
            trail_problem = f"not traceable: the trail does not verify ({check.summary()})"
        else:
            entries = {e.hash: e for e in _trail.read_entries(trail_path)}
    artefacts = _artefacts(ev, publisher_key) if any(r.artefact for r in rules) else {}
    results = []
    sha = ev["model"]["sha256"]
    for rule in rules:
        if rule.artefact:
            value, reason = artefacts[rule.metric]
            results.append(RuleResult(rule, value, rule.holds(value), reason))
            continue
        m = ev["metrics"].get(rule.metric)
        if m is None:
            results.append(RuleResult(rule, None, False, f"missing: the evidence has no {rule.metric}"))
            continue
        value = m["value"]
        traced = "untraced (no trail given)"
        if trail_path is not None:
            if trail_problem is not None:
                results.append(RuleResult(rule, value, False, trail_problem))
                continue
            entry = entries.get(m["run"]) if m["run"] else None
            if m["run"] is None:
                problem = "no run hash"
            elif entry is None:
                problem = f"run {m['run'][:12]} is not an entry of the trail"
            elif entry.kind != "evaluation":
                problem = f"run {m['run'][:12]} is a {entry.kind!r} entry, not an evaluation"
            else:
                ok, problem = _matches(entry.data, rule.metric, value)
                pinned = _pinned_model(entry.data)
                if ok and pinned is not None and pinned != sha:
                    ok, problem = False, f"measured on model {pinned[:12]}, the evidence is about {sha[:12]}"
                if ok:
                    problem = None
            if problem is not None:
                results.append(RuleResult(rule, value, False, f"not traceable: {problem}"))
                continue
            traced = f"traced to entry {entry.index} ({entry.hash[:12]})"
        ok = rule.holds(value)
        reason = traced if ok else f"{value:.4g} fails {rule.text()}; {traced}"
        results.append(RuleResult(rule, value, ok, reason))
    return GateDecision(passed=all(r.passed for r in results), results=results, model=dict(ev["model"]))


def promote(trail: _trail.AuditTrail, evidence: dict[str, Any] | str | Path, rules: Sequence[Rule] = DEFAULT_RULES,
            *, actor: str = "release-gate", **kw: Any) -> GateDecision:
    """Evaluate the gate against ``trail`` and append a ``"release"`` entry with the outcome
    (``promoted`` or ``blocked``, each failing rule and its reason); a blocked promotion
    leaves its record too. ``kw`` go to :func:`evaluate` (``trail_path`` and ``public_key``
    default to ``trail``'s) (taught in 09_governance_and_audit)."""
    where = "promote"
    if not isinstance(trail, _trail.AuditTrail):
        v.fail(where, f"trail is a {type(trail).__name__}", "trail must be an AuditTrail")
    kw.setdefault("trail_path", trail.path)
    kw.setdefault("public_key", trail.public_key)
    decision = evaluate(evidence, rules, **kw)
    data = release_record(decision)
    trail.append("release", data, actor=actor)
    return decision


def release_record(decision: GateDecision) -> dict[str, Any]:
    """The data of the ``"release"`` entry that records a decision: ``decision`` (promoted or
    blocked), the model (name, version, sha256), the rules checked, and each failing rule with
    its check, value and reason (taught in 09_governance_and_audit)."""
    if not isinstance(decision, GateDecision):
        v.fail("release_record", f"decision is a {type(decision).__name__}", "decision must be a GateDecision")
    model = decision.model

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        return float(value) if v.is_real(value) else str(value)

    return {"decision": "promoted" if decision.passed else "blocked",
            "model": {k: model.get(k) for k in ("name", "version", "sha256")},
            "rules": [r.rule.name for r in decision.results],
            "failed": [{"rule": r.rule.name, "check": r.rule.text(), "value": plain(r.value), "reason": r.reason}
                       for r in decision.failed]}


# --------------------------------------------------------------------------- evidence from a trail


def evidence_from_trail(trail_path: str | Path, public_key: Any, *, weights: str | Path, name: str, version: str,
                        signature: str | Path | None = None, mlbom: str | Path | None = None,
                        publisher_key: str | Path | None = None,
                        metrics: Iterable[str] | None = None) -> dict[str, Any]:
    """Release evidence built from a verified trail: for each metric, the latest
    ``"evaluation"`` entry that records it for these weights (``data["model"]`` = their
    sha256), with its value and hash as ``run`` (taught in 09_governance_and_audit).

    ``metrics``: the names to collect (default: those of :data:`DEFAULT_RULES`); a metric no
    entry records is left out (and the gate fails it as missing). Raises a ``ValidationError``
    when the trail does not verify."""
    where = "evidence_from_trail"
    check = _trail.verify(trail_path, public_key)
    if not check.ok:
        v.fail(where, f"the trail does not verify: {check.summary()}", "build evidence from an intact trail only")
    weights = v.existing_file(weights, "weights", where)
    sha = _sha256_file(weights)
    wanted = [r.metric for r in DEFAULT_RULES if not r.artefact] if metrics is None else list(metrics)
    found: dict[str, dict[str, Any]] = {}
    for e in _trail.read_entries(trail_path):
        if e.kind != "evaluation" or _pinned_model(e.data) != sha:
            continue
        for metric in wanted:
            value = _recorded(e.data, metric)
            if v.is_real(value):
                found[metric] = {"value": float(value), "run": e.hash}
    doc = {"model": {"name": name, "version": version, "weights": str(Path(weights).resolve()), "sha256": sha},
           "metrics": found, "signature": None if signature is None else str(Path(signature).resolve()),
           "mlbom": None if mlbom is None else str(Path(mlbom).resolve())}
    if publisher_key is not None:
        doc["publisher_key"] = str(Path(publisher_key).resolve())
    return load_evidence(doc)


def _recorded(data: dict[str, Any], metric: str) -> Any:
    """The value an evaluation entry's data records for ``metric``: ``{"metric": "<metric>" or
    "<metric>@<candidate>", "value": x}``, ``{"metrics": {metric: x or {"value": x}}}`` or
    ``{metric: x}``; None when it records none."""
    name = data.get("metric")
    if isinstance(name, str) and (name == metric or name.startswith(metric + "@")) and "value" in data:
        return data["value"]
    if isinstance(data.get("metrics"), dict) and metric in data["metrics"]:
        m = data["metrics"][metric]
        return m.get("value") if isinstance(m, dict) else m
    return data.get(metric)
