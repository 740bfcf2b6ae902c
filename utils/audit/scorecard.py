"""The scorecard: one audit as a JSON record, a Markdown twin and one page of HTML, and
:func:`run_audit`, which makes it (taught in 10_workbench).

The JSON follows one versioned schema, ``modelsec-scorecard/1``, written down as a JSON Schema in
``utils/audit/schema/scorecard-1.json`` and validated on every write and read. A scorecard can be
recorded in the governance audit trail (:meth:`Scorecard.record`) and compared with another
(:func:`diff`: before and after a defense).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch import nn

from utils import validation as v
from utils.audit import checks as ck
from utils.audit.inputs import AuditData, LoadedModel

SCHEMA = "modelsec-scorecard/1"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "scorecard-1.json"


def schema() -> dict:
    """The JSON Schema of ``modelsec-scorecard/1`` (taught in 10_workbench)."""
    return json.loads(SCHEMA_PATH.read_text())


def validate_record(record: dict, where: str = "scorecard") -> dict:
    """Check a scorecard dict against the schema; a :class:`utils.validation.ValidationError`
    names the first problem and where it is (taught in 10_workbench)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        at = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        v.fail(where, f"the record does not follow {SCHEMA} at {at}: {e.message}",
               f"it must follow the schema {SCHEMA_PATH.name}")
    return record


@dataclass
class Scorecard:
    """One audit's results (taught in 10_workbench). See ``schema/scorecard-1.json`` for each field."""

    model: dict
    data: dict
    settings: dict
    checks: list[ck.CheckResult]
    created: str
    environment: dict = field(default_factory=dict)
    schema: str = SCHEMA

    # ------------------------------------------------------------------ verdict
    @property
    def failed_gates(self) -> list[str]:
        """Gates whose check failed (a check that did not run fails no gate)."""
        return [c.name for c in self.checks if c.gate and c.passed is False]

    @property
    def passed(self) -> bool:
        return not self.failed_gates

    def check(self, name: str) -> ck.CheckResult:
        """The result of one check by name (taught in 10_workbench)."""
        for c in self.checks:
            if c.name == name:
                return c
        v.fail("Scorecard.check", f"no check named {name!r} in this scorecard",
               f"checks here: {', '.join(c.name for c in self.checks)}")

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """The JSON record (validated; taught in 10_workbench)."""
        d = {"schema": self.schema, "created": self.created, "model": ck._plain(self.model),
             "data": ck._plain(self.data), "settings": ck._plain(self.settings),
             "checks": [c.to_dict() for c in self.checks], "passed": self.passed,
             "failed_gates": self.failed_gates, "environment": ck._plain(self.environment)}
        return validate_record(d, "Scorecard.to_dict")

    def comparable(self) -> dict:
        """The record without what varies between identical runs (creation time, seconds): two
        audits of the same model and data with the same settings give equal dicts (taught in 10_workbench)."""
        d = self.to_dict()
        d.pop("created")
        d.pop("environment")
        for c in d["checks"]:
            c["cost"] = {"queries": c["cost"]["queries"]}
            if c["name"] == "robustness":
                for a in c["details"]["attacks"].values():
                    a.pop("seconds", None)
        return d

    def to_json(self, path: str | Path) -> Path:
        """Write the validated record as JSON (taught in 10_workbench)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, d: dict) -> "Scorecard":
        """A scorecard from its record, validated first (taught in 10_workbench)."""
        validate_record(d, "Scorecard.from_dict")
        return cls(d["model"], d["data"], d["settings"], [ck.CheckResult.from_dict(c) for c in d["checks"]],
                   d["created"], d.get("environment", {}), d["schema"])

    @classmethod
    def from_json(cls, path: str | Path) -> "Scorecard":
        """Read and validate a scorecard JSON file (taught in 10_workbench)."""
        from utils.deployment.serialization import existing_file

        p = existing_file(path, "path", "Scorecard.from_json")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            v.fail("Scorecard.from_json", f"'{p.name}' is not JSON ({e})", f"give a scorecard written by to_json")
        if not isinstance(d, dict):
            v.fail("Scorecard.from_json", f"'{p.name}' holds a {type(d).__name__}", "a scorecard is a JSON object")
        return cls.from_dict(d)

    def sha256(self) -> str:
        """The sha256 of the canonical JSON of :meth:`comparable` (taught in 10_workbench)."""
        return hashlib.sha256(json.dumps(self.comparable(), sort_keys=True).encode()).hexdigest()

    # ------------------------------------------------------------------ Markdown
    def table(self, seconds: bool = True):
        """One row per check: value, interval, n, threshold, result, queries and (unless
        ``seconds=False``: they vary between runs) CPU seconds, as a pandas DataFrame (taught in 10_workbench)."""
        import pandas as pd

        rows = []
        for c in self.checks:
            rows.append({"check": c.name, "value": None if c.value is None else round(c.value, 3),
                         "interval": "" if c.interval is None else f"[{c.interval[0]:.3f}, {c.interval[1]:.3f}]",
                         "n": c.n, "threshold": f"{c.direction} {c.threshold:g}",
                         "result": _verdict(c), "gate": "yes" if c.gate else "no",
                         "queries": c.cost["queries"], "cpu_s": c.cost["cpu_seconds"]})
            if not seconds:
                rows[-1].pop("cpu_s")
        return pd.DataFrame(rows)

    def to_markdown(self, path: str | Path | None = None) -> str:
        """The scorecard as Markdown (written to ``path`` when given). Times are printed as
        ``⏱ 1.2 s`` (taught in 10_workbench)."""
        s = self.settings
        out = [f"# Security scorecard: {self.model.get('name', 'model')}", "",
               f"**{'PASSED' if self.passed else 'FAILED'}**"
               + ("" if self.passed else f": gates failed: {', '.join(self.failed_gates)}"), "",
               f"- model: `{Path(self.model['source']).name}`, sha256 `{self.model['sha256'][:16]}…`, "
               f"provenance: {self.model['provenance']}",
               f"- data: `{Path(self.data['source']).name}`, {self.data['n']} examples of shape "
               f"{tuple(self.data['shape'])}, {len(self.data['classes'])} classes"
               + (", with training examples" if self.data["has_training_data"] else ", no training examples"),
               f"- settings: ε = {s['eps']:g} ({s['norm']}), budget {s['budget']}, seed {s['seed']}; "
               f"gates: {', '.join(s['fail_on']) or 'none'}", "",
               "| check | value | 95% interval | n | threshold | result | gate | queries | CPU |",
               "|---|---|---|---|---|---|---|---|---|"]
        for c in self.checks:
            value = "–" if c.value is None else f"{c.value:.3f}"
            ci = "–" if c.interval is None else f"[{c.interval[0]:.3f}, {c.interval[1]:.3f}]"
            out.append(f"| {c.title} | {value} | {ci} | {c.n} | {c.direction} {c.threshold:g} | {_verdict(c)} | "
                       f"{'yes' if c.gate else 'no'} | {c.cost['queries']:,} | ⏱ {c.cost['cpu_seconds']:.1f} s |")
        out += ["", "## Findings", ""]
        out += [f"- {line}" for line in findings(self)]
        out += ["", "## Load gate", ""]
        out += [f"- {r['step']}: {_step(r)} ({r['detail']})" for r in self.model["gate"]]
        if not self.model["gate"]:
            out.append("- not used: the model was given in memory")
        text = "\n".join(out) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # ------------------------------------------------------------------ HTML
    def to_html(self, path: str | Path) -> Path:
        """One self-contained HTML page: the table, the findings and a figure per check, embedded as
        PNG data URIs (no scripts, no network; taught in 10_workbench)."""
        rows = "".join(
            f"<tr class='{_verdict(c).lower().replace(' ', '-')}'><td>{html.escape(c.title)}</td>"
            f"<td>{'–' if c.value is None else f'{c.value:.3f}'}</td>"
            f"<td>{'–' if c.interval is None else f'[{c.interval[0]:.3f}, {c.interval[1]:.3f}]'}</td>"
            f"<td>{c.n}</td><td>{html.escape(c.direction)} {c.threshold:g}</td><td>{_verdict(c)}</td>"
            f"<td>{'yes' if c.gate else 'no'}</td><td>{c.cost['queries']:,}</td><td>{c.cost['cpu_seconds']:.1f} s</td></tr>"
            for c in self.checks)
        figs = "".join(f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,"
                          f"{base64.b64encode(png).decode()}'><figcaption>{html.escape(t)}</figcaption></figure>"
                          for t, png in figures(self))
        items = "".join(f"<li>{html.escape(x)}</li>" for x in findings(self))
        gate = "".join(f"<li>{html.escape(r['step'])}: {_step(r)} "
                       f"({html.escape(r['detail'])})</li>" for r in self.model["gate"])
        s = self.settings
        verdict = "PASSED" if self.passed else "FAILED: " + ", ".join(self.failed_gates)
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Scorecard: {html.escape(self.model.get('name', 'model'))}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}}
.fail td{{background:#fde2e1}}.pass td{{background:#e6f4ea}}.verdict{{font-size:1.3rem;font-weight:bold}}
figure{{display:inline-block;margin:.5rem}}img{{max-width:28rem}}</style></head><body>
<h1>Security scorecard: {html.escape(self.model.get('name', 'model'))}</h1>
<p class="verdict">{html.escape(verdict)}</p>
<p>Model <code>{html.escape(Path(self.model['source']).name)}</code> (sha256 <code>{self.model['sha256'][:16]}…</code>,
{html.escape(self.model['provenance'])}); data <code>{html.escape(Path(self.data['source']).name)}</code>,
{self.data['n']} examples; ε = {s['eps']:g} ({html.escape(s['norm'])}), budget {html.escape(s['budget'])},
seed {s['seed']}; schema {html.escape(self.schema)}; created {html.escape(self.created)}.</p>
<table><tr><th>check</th><th>value</th><th>95% interval</th><th>n</th><th>threshold</th><th>result</th><th>gate</th>
<th>queries</th><th>CPU</th></tr>{rows}</table>
<h2>Findings</h2><ul>{items}</ul><h2>Figures</h2>{figs}<h2>Load gate</h2><ul>{gate}</ul>
</body></html>
"""
        path = Path(path)
        path.write_text(page, encoding="utf-8")
        return path

    # ------------------------------------------------------------------ governance
    def record(self, trail, actor: str = "workbench"):
        """Append a ``"scorecard"`` entry to a governance audit trail
        (``utils.governance.trail.AuditTrail``): the verdict, each check's value and result, the
        model's and data's sha256 and the scorecard's own sha256. Returns the trail's entry
        (taught in 10_workbench)."""
        if not hasattr(trail, "append"):
            v.fail("Scorecard.record", f"trail is a {type(trail).__name__}",
                   "give a utils.governance.trail.AuditTrail")
        data = {"schema": self.schema, "scorecard_sha256": self.sha256(), "passed": self.passed,
                "failed_gates": self.failed_gates, "model_sha256": self.model["sha256"],
                "data_sha256": self.data["sha256"], "settings": ck._plain(self.settings),
                "checks": {c.name: {"value": ck._plain(c.value), "passed": c.passed} for c in self.checks}}
        return trail.append("scorecard", data, actor=actor)


def _step(row: dict) -> str:
    """A gate step in words: passed, not checked (nothing pinned or signed) or REFUSED."""
    if not row["passed"]:
        return "REFUSED"
    return "not checked" if row["detail"].startswith(("not given", "not pinned")) else "passed"


def _verdict(c: ck.CheckResult) -> str:
    return {True: "PASS", False: "FAIL", None: "NOT RUN"}[c.passed]


def findings(card: Scorecard) -> list[str]:
    """One sentence per check, in words (taught in 10_workbench)."""
    out = []
    for c in card.checks:
        d = c.details
        if c.passed is None:
            out.append(f"{c.title}: not run: {c.note}.")
            continue
        if c.name == "clean_accuracy":
            out.append(f"Clean accuracy {c.value:.3f} [{c.interval[0]:.3f}, {c.interval[1]:.3f}] on {c.n} examples.")
        elif c.name == "robustness":
            per = ", ".join(f"{k} {a['accuracy']:.3f}" for k, a in d["attacks"].items())
            out.append(f"At ε = {d['eps']:g} ({d['norm']}): clean {d['clean_accuracy']:.3f}, robust {c.value:.3f} "
                       f"[{c.interval[0]:.3f}, {c.interval[1]:.3f}] (worst case per example; {per}) on {c.n} examples.")
        elif c.name == "backdoor":
            if d["target_class"] is not None:
                out.append(f"Backdoor suspected: the trigger search flags class {d['target_class']} "
                           f"(anomaly index {c.value:.1f} > 2); its reversed trigger sends "
                           f"{d['transfer_success']:.0%} of {d['transfer_n']} other inputs there.")
            else:
                out.append(f"No backdoor found by the trigger search (largest anomaly index {c.value:.1f} <= 2).")
            if "activation_clustering" in d:
                ac = d["activation_clustering"]["flagged_classes"]
                out.append("Activation clustering (trusted reference): "
                           + (f"flags classes {ac}." if ac else "flags no class."))
        elif c.name == "membership":
            out.append(f"Loss-threshold membership attack: TPR {c.value:.3f} [{c.interval[0]:.3f}, {c.interval[1]:.3f}] "
                       f"at {d['fpr']:.0%} FPR, AUC {d['auc']:.3f} ({d['n_members']} members, "
                       f"{d['n_nonmembers']} non-members).")
        elif c.name == "extraction":
            per = ", ".join(f"{p} {r['fidelity']:.3f}" for p, r in d["policies"].items())
            out.append(f"A copy trained on {d['queries']} queries agrees with the model on {c.value:.3f} of held-out "
                       f"inputs under the best policy ({d['best_policy']}); per policy: {per}.")
        elif c.name == "drift_baseline":
            out.append(f"Drift reference of {d['n_reference']} outputs; split-half KS p = {c.value:.3f} "
                       f"(mean confidence {d['confidence_mean']:.3f}).")
        if c.note:
            out.append(f"{c.title}: {c.note}.")
    return out


def figures(card: Scorecard) -> list[tuple[str, bytes]]:
    """The scorecard's figures as (title, PNG bytes), drawn from its details (taught in 10_workbench)."""
    import matplotlib.pyplot as plt

    from utils.widgets.core import figure_png

    out = []
    for c in card.checks:
        d = c.details
        if c.passed is None:
            continue
        if c.name == "robustness":
            fig, ax = plt.subplots(figsize=(4.5, 3))
            names = ["clean"] + list(d["attacks"]) + ["worst case"]
            vals = [d["clean_accuracy"]] + [a["accuracy"] for a in d["attacks"].values()] + [c.value]
            ax.bar(names, vals, color=["#4c72b0"] + ["#dd8452"] * len(d["attacks"]) + ["#c44e52"])
            ax.set_ylim(0, 1)
            ax.set_ylabel("accuracy")
            ax.set_title(f"accuracy at ε = {d['eps']:g} (n = {c.n})")
            out.append(("Robustness", figure_png(fig)))
        elif c.name == "backdoor":
            fig, axes = plt.subplots(1, 2, figsize=(7, 3), gridspec_kw={"width_ratios": [2, 1]})
            ai = np.asarray(d["anomaly_index"])
            axes[0].bar(range(len(ai)), ai, color=["#c44e52" if a > c.threshold else "#4c72b0" for a in ai])
            axes[0].axhline(c.threshold, color="k", ls="--", lw=1)
            axes[0].set_xlabel("target class")
            axes[0].set_ylabel("anomaly index")
            axes[0].set_xticks(range(len(ai)))
            mask = np.asarray(d["trigger_mask"])
            pattern = np.asarray(d["trigger_pattern"])
            axes[1].imshow((mask[None] * pattern).mean(0), cmap="gray_r", vmin=0, vmax=1)
            axes[1].set_title(f"reversed trigger, class {d['most_anomalous']}", fontsize=9)
            axes[1].axis("off")
            out.append(("Backdoor scan (trigger search)", figure_png(fig)))
        elif c.name == "membership":
            fig, ax = plt.subplots(figsize=(3.5, 3.2))
            ax.plot(d["roc_fpr"], d["roc_tpr"])
            ax.plot([0, 1], [0, 1], "k--", lw=1)
            ax.set_xscale("symlog", linthresh=0.01)
            ax.set_xlabel("FPR")
            ax.set_ylabel("TPR")
            ax.set_title(f"loss-threshold attack, AUC {d['auc']:.3f}")
            out.append(("Membership inference (ROC)", figure_png(fig)))
        elif c.name == "extraction":
            fig, ax = plt.subplots(figsize=(4.5, 3))
            pol = list(d["policies"])
            vals = [d["policies"][p]["fidelity"] for p in pol]
            err = np.array([[vals[i] - d["policies"][p]["interval"][0], d["policies"][p]["interval"][1] - vals[i]]
                            for i, p in enumerate(pol)]).T
            ax.bar(pol, vals, yerr=err, capsize=3)
            ax.set_ylim(0, 1)
            ax.set_ylabel("fidelity")
            ax.set_title(f"copy after {d['queries']} queries")
            out.append(("Extraction cost", figure_png(fig)))
        elif c.name == "drift_baseline":
            fig, ax = plt.subplots(figsize=(4.5, 3))
            ax.bar(range(len(d["predicted_shares"])), d["predicted_shares"])
            ax.set_xlabel("predicted class")
            ax.set_ylabel("share")
            ax.set_title("drift reference: predicted classes")
            out.append(("Drift baseline", figure_png(fig)))
    return out


# --------------------------------------------------------------------------- diff


def diff(before: Scorecard, after: Scorecard):
    """Two scorecards side by side (before and after a defense), one row per check they share:
    value before and after, the change, and each verdict, as a pandas DataFrame (taught in 10_workbench)."""
    import pandas as pd

    for name, card in (("before", before), ("after", after)):
        if not isinstance(card, Scorecard):
            v.fail("diff", f"{name} is a {type(card).__name__}", "give two Scorecards (run_audit or from_json)")
    rows = []
    names = [c.name for c in before.checks if c.name in {d.name for d in after.checks}]
    for name in names:
        a, b = before.check(name), after.check(name)
        change = None if a.value is None or b.value is None else round(b.value - a.value, 3)
        rows.append({"check": name, "before": None if a.value is None else round(a.value, 3),
                     "after": None if b.value is None else round(b.value, 3), "change": change,
                     "before_result": _verdict(a), "after_result": _verdict(b)})
        if name == "robustness":
            rows.append({"check": "robustness: clean accuracy (subset)",
                         "before": round(a.details["clean_accuracy"], 3), "after": round(b.details["clean_accuracy"], 3),
                         "change": round(b.details["clean_accuracy"] - a.details["clean_accuracy"], 3),
                         "before_result": "", "after_result": ""})
    return pd.DataFrame(rows)


def diff_markdown(before: Scorecard, after: Scorecard) -> str:
    """:func:`diff` as a Markdown table (taught in 10_workbench)."""
    df = diff(before, after)
    head = (f"Before: {before.model.get('name')} ({'passed' if before.passed else 'failed'}); "
            f"after: {after.model.get('name')} ({'passed' if after.passed else 'failed'})\n\n")
    lines = ["| check | before | after | change | before result | after result |", "|---|---|---|---|---|---|"]
    fmt = (lambda x: "–" if x is None or (isinstance(x, float) and np.isnan(x)) else  # noqa: E731
           (f"{x:+.3f}" if isinstance(x, float) and x != abs(x) else str(x)))
    for r in df.to_dict("records"):
        change = "–" if r["change"] is None or np.isnan(r["change"]) else f"{r['change']:+.3f}"
        lines.append(f"| {r['check']} | {fmt(r['before'])} | {fmt(r['after'])} | {change} | {r['before_result']} | "
                     f"{r['after_result']} |")
    return head + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the audit


def _names(value: Any, name: str, where: str, default: Sequence[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        value = {"all": ck.CHECKS, "none": ()}.get(value, [x.strip() for x in value.split(",") if x.strip()])
    value = tuple(value)
    unknown = [x for x in value if x not in ck.CHECKS]
    if unknown:
        v.fail(where, f"{name} names {unknown}", f"{name} must be among {', '.join(ck.CHECKS)} (or 'all', 'none')")
    return tuple(x for x in ck.CHECKS if x in value)


def run_audit(model: nn.Module | LoadedModel, data: AuditData, *, eps: float = 0.1, norm: str = "Linf",
              budget: str = "default", seed: int = 0, checks: Sequence[str] | str | None = None,
              fail_on: Sequence[str] | str | None = None,
              progress: Callable[[int, int, str], None] | None = None,
              clock: Callable[[], _dt.datetime] | None = None) -> Scorecard:
    """Audit a model against a data set: every check of :mod:`utils.audit.checks`, one scorecard
    (taught in 10_workbench).

    Args:
        model: a :class:`~utils.audit.inputs.LoadedModel` (from the load gate) or an ``nn.Module``
            in eval mode (recorded as provenance "in memory").
        data: an :class:`~utils.audit.inputs.AuditData` from ``load_data``.
        eps, norm: the L∞ budget of the robustness check (inputs in [0, 1]); only ``"Linf"``.
        budget: ``"quick"``, ``"default"`` or ``"full"`` (:data:`utils.audit.checks.BUDGETS`).
        seed: seeds every draw (subsets, attacks, the trigger search, bootstrap, copies).
        checks: which checks (default all, :data:`~utils.audit.checks.CHECKS`); a list or "a,b".
        fail_on: which checks are gates (default :data:`~utils.audit.checks.DEFAULT_GATES`; "all", "none").
        progress: called as ``progress(done, total, name)`` before and after each check.
        clock: returns the creation time (default now, UTC).

    Raises:
        ValidationError: bad arguments, a model that does not fit the data, or too few examples
        for a requested claim (:data:`~utils.audit.checks.MIN_SAMPLES`), before any check runs.
    """
    import torch

    where = "run_audit"
    if isinstance(model, LoadedModel):
        loaded = model
    elif isinstance(model, nn.Module):
        from utils import training

        with torch.no_grad():
            digest = training.data_hash(*(t.detach().cpu().numpy() for t in model.state_dict().values()))
        loaded = LoadedModel(model, [], digest, "in memory", "in memory", type(model).__name__)
    else:
        v.fail(where, f"model is a {type(model).__name__}", "give a torch.nn.Module or load_model(...)'s result")
    if not isinstance(data, AuditData):
        v.fail(where, f"data is a {type(data).__name__}", "give load_data(path) or data_from_arrays(X, y)")
    net = loaded.model
    v.eval_mode(net, where)
    eps = v.unit(eps, "eps", where)
    v.choice(norm, "norm", where, ck.NORMS)
    v.choice(budget, "budget", where, ck.BUDGETS)
    seed = v.seed(seed, where)
    names = _names(checks, "checks", where, ck.CHECKS)
    if not names:
        v.fail(where, "no checks chosen", f"choose some of {', '.join(ck.CHECKS)}")
    gates = _names(fail_on, "fail_on", where, ck.DEFAULT_GATES)
    try:
        with torch.no_grad():
            out = net(torch.as_tensor(data.X[:2]))
    except RuntimeError as e:
        v.fail(where, f"the model does not take inputs of shape {tuple(data.X.shape[1:])} ({str(e).splitlines()[0]})",
               "give data of the shape the model was trained on")
    if out.ndim != 2 or out.shape[1] != data.n_classes:
        v.fail(where, f"the model has {out.shape[1] if out.ndim == 2 else tuple(out.shape)} outputs but the data "
                      f"{data.n_classes} classes",
               "give the model's class list (classes=...) or labels in [0, number of outputs)")
    for name in names:
        need = ck.MIN_SAMPLES[name]
        if data.n < need:
            v.fail(where, f"{name} needs at least {need} evaluation examples for its claim; the data has {data.n}",
                   f"give at least {need} examples (then a 95% interval of a proportion is at most ±0.10 wide), "
                   f"or leave {name} out (checks=...)")
    if "membership" in names and data.has_training_data and len(data.y_train) < ck.MIN_SAMPLES["membership"]:
        v.fail(where, f"membership needs at least {ck.MIN_SAMPLES['membership']} training examples; "
                      f"{len(data.y_train)} given", "give more training examples or leave membership out")
    results = []
    for i, name in enumerate(names):
        if progress is not None:
            progress(i, len(names), name)
        fn = ck.CHECK_FUNCTIONS[name]
        kwargs: dict[str, Any] = {"eps": eps, "budget": budget, "seed": seed}
        if name == "robustness":
            kwargs["norm"] = norm
        r = fn(net, data, **kwargs)
        r.gate = name in gates
        results.append(r)
    if progress is not None:
        progress(len(names), len(names), "done")
    now = (clock or (lambda: _dt.datetime.now(_dt.timezone.utc)))()
    model_info = {"name": loaded.name, "source": loaded.source, "sha256": loaded.sha256,
                  "provenance": loaded.provenance, "gate": loaded.gate_rows(), "spec": loaded.spec}
    data_info = {"source": data.source, "sha256": data.sha256 or _array_hash(data), "n": data.n,
                 "shape": list(data.X.shape[1:]), "classes": list(data.classes),
                 "has_training_data": data.has_training_data,
                 "n_train": 0 if data.y_train is None else len(data.y_train)}
    settings = {"eps": eps, "norm": norm, "budget": budget, "seed": seed, "checks": list(names),
                "fail_on": list(gates), "thresholds": {k: list(ck.THRESHOLDS[k]) for k in names}}
    env = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    return Scorecard(model_info, data_info, settings, results, now.isoformat(timespec="seconds"), env)


def _array_hash(data: AuditData) -> str:
    from utils import training

    arrays = [data.X, data.y] + ([data.X_train, data.y_train] if data.has_training_data else [])
    return training.data_hash(*arrays)
