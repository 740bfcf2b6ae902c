"""Alerting for 08_monitoring: structured, deduplicated alerts with evidence.

An :class:`Alert` is one JSON line (when, which detector, how severe, the
statistic, p-value and threshold, and the evidence); an :class:`AlertLog`
keeps them. :func:`severity` grades a p-value, :func:`incidents` merges runs of
flagged windows, and :func:`drift_alerts`, :func:`client_alerts` and
:func:`accuracy_alerts` turn a stream scan, a client report and the
delayed-label accuracy into alerts. Taught in 08_monitoring.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils import validation as v
from utils.monitoring.drift import _alpha, _scan
from utils.paths import ROOT

#: Alert severities, from least to most urgent.
SEVERITIES = ("info", "warning", "critical")


def severity(p_value: float, alpha: float) -> str:
    """``"critical"`` when p < alpha / 100, ``"warning"`` when p < alpha, else
    ``"info"`` (taught in 08_monitoring)."""
    alpha = _alpha(alpha, "severity")
    p_value = v.unit(p_value, "p_value", "severity")
    if p_value < alpha / 100:
        return "critical"
    if p_value < alpha:
        return "warning"
    return "info"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(y) for k, y in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(y) for y in x]
    if hasattr(x, "item") and not isinstance(x, (list, dict)):
        x = x.item()
    if isinstance(x, float):
        return float(f"{x:.6g}") if math.isfinite(x) else None
    return x


@dataclass(frozen=True)
class Alert:
    """A structured alert: what fired, when, how sure, and why (taught in 08_monitoring).

    ``index`` is the request number that raised it (a window's end), ``time``
    its timestamp in seconds; ``evidence`` holds whatever an on-call engineer
    needs to judge it (window, client, shares, ...).
    """

    index: int
    time: float
    detector: str
    severity: str
    statistic: float
    p_value: float | None
    threshold: float
    evidence: dict = field(default_factory=dict)

    def __post_init__(self):
        v.integer(self.index, "index", "Alert", low=0)
        v.choice(self.severity, "severity", "Alert", SEVERITIES)
        if not isinstance(self.evidence, dict):
            v.fail("Alert", f"evidence is a {type(self.evidence).__name__}", "evidence must be a dict")

    def to_dict(self) -> dict:
        """The alert as a dict of JSON values (floats to 6 significant digits)."""
        return _jsonable(asdict(self))

    def to_json(self) -> str:
        """One JSON line (keys sorted, floats to 6 significant digits)."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)


@dataclass
class AlertLog:
    """Alerts in memory; written to a JSON-lines file only when asked (taught in 08_monitoring)."""

    alerts: list[Alert] = field(default_factory=list)

    def add(self, alert: Alert) -> Alert:
        """Append an :class:`Alert` and return it."""
        if not isinstance(alert, Alert):
            v.fail("AlertLog.add", f"got a {type(alert).__name__}", "add takes an Alert")
        self.alerts.append(alert)
        return alert

    def __len__(self) -> int:
        return len(self.alerts)

    def to_jsonl(self) -> str:
        """The alerts as JSON lines, one per alert."""
        return "".join(a.to_json() + "\n" for a in self.alerts)

    def counts(self) -> dict[str, int]:
        """Alerts per severity."""
        return {s: sum(a.severity == s for a in self.alerts) for s in SEVERITIES}

    def write(self, path: str | Path | None = None) -> Path:
        """Write the alerts as JSON lines (default ``build/alerts.jsonl`` in the repository)."""
        path = Path(path) if path is not None else ROOT / "build" / "alerts.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_jsonl(), encoding="utf-8")
        return path


_SCAN_COLUMNS = ("start", "end", "detector", "statistic", "p_value", "threshold", "drift")


def incidents(scan) -> list[dict]:
    """Merge runs of consecutive flagged windows into incidents (one alert each, not
    dozens; taught in 08_monitoring).

    Returns dicts with ``start`` (first flagged window's end), ``end`` (last
    flagged window's end), ``windows`` and the smallest ``p_value`` and its
    ``statistic``.
    """
    scan = _scan(scan, "incidents", _SCAN_COLUMNS)
    out: list[dict] = []
    prev = False
    for _, row in scan.iterrows():
        if row["drift"]:
            if prev:
                cur = out[-1]
                cur["end"] = int(row["end"])
                cur["windows"] += 1
                if row["p_value"] < cur["p_value"]:
                    cur["p_value"], cur["statistic"] = float(row["p_value"]), float(row["statistic"])
            else:
                out.append({"detector": row["detector"], "start": int(row["end"]), "end": int(row["end"]),
                            "windows": 1, "p_value": float(row["p_value"]),
                            "statistic": float(row["statistic"]), "threshold": float(row["threshold"])})
        prev = bool(row["drift"])
    return out


def _times(times: Any, n: int, where: str) -> np.ndarray:
    """Request timestamps: a 1-D array covering the requests ``0 … n - 1``."""
    t = np.asarray(times)
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.number) or t.dtype == bool:
        v.fail(where, f"times have dtype {t.dtype} and shape {t.shape}", "times must be a 1-D array of seconds")
    if len(t) < n:
        v.fail(where, f"{len(t)} timestamps for requests up to {n}", "give one timestamp per request")
    return t


def drift_alerts(scan, times: np.ndarray) -> list[Alert]:
    """One :class:`Alert` per incident of a stream scan (see :func:`incidents`; taught
    in 08_monitoring).

    The alert is raised at the end of the incident's first flagged window;
    its severity comes from the incident's smallest p-value (:func:`severity`).
    """
    scan = _scan(scan, "drift_alerts", _SCAN_COLUMNS)
    if scan.empty:
        return []
    times = _times(times, int(scan["end"].max()), "drift_alerts")
    length = int(scan["end"].iloc[0] - scan["start"].iloc[0])
    alerts = []
    for inc in incidents(scan):
        alerts.append(Alert(index=inc["start"], time=float(times[inc["start"] - 1]),
                            detector=inc["detector"], severity=severity(inc["p_value"], inc["threshold"]),
                            statistic=inc["statistic"], p_value=inc["p_value"], threshold=inc["threshold"],
                            evidence={"first_window": [inc["start"] - length, inc["start"]],
                                      "last_window_end": inc["end"], "windows": inc["windows"]}))
    return alerts


def client_alerts(report, log, detectors: dict[str, str], alpha: float = 0.01) -> list[Alert]:
    """One :class:`Alert` per client that :func:`client_report` flagged (taught in 08_monitoring).

    Args:
        report: the output of :func:`client_report`.
        log: the request log it was computed from (columns ``index``, ``time``, ``client``).
        detectors: ``{flag name: detector name}`` in order of priority, e.g.
            ``{"novel": "extraction", "squeezed": "adversarial"}``: a client
            flagged by both is reported under the first.
        alpha: the level ``client_report`` used.
    """
    where = "client_alerts"
    alpha = _alpha(alpha, where)
    if not isinstance(detectors, dict) or not detectors:
        v.fail(where, f"detectors = {detectors!r}", "detectors must be a non-empty dict {flag name: detector name}")
    needed = ["client", "requests", "per_minute"] + [f"{c}_{f}" for f in detectors for c in ("flag", "p", "share")]
    missing = [c for c in needed if c not in getattr(report, "columns", ())]
    if missing:
        v.fail(where, f"the report lacks the columns {missing}", "pass the DataFrame client_report returns")
    missing = [c for c in ("index", "time", "client") if c not in getattr(log, "columns", ())]
    if missing:
        v.fail(where, f"the log lacks the columns {missing}", "pass the request log the report was computed from")
    alerts = []
    for _, row in report.iterrows():
        for flag, name in detectors.items():
            if not row[f"flag_{flag}"]:
                continue
            mine = log[log["client"] == row["client"]]
            evidence = {"client": row["client"], "requests": int(row["requests"]),
                        "per_minute": round(float(row["per_minute"]), 2),
                        "first_request": int(mine["index"].min())}
            evidence.update({f"share_{f}": round(float(row[f"share_{f}"]), 3) for f in detectors})
            alerts.append(Alert(index=int(mine["index"].max()) + 1, time=float(mine["time"].max()),
                                detector=name, severity=severity(row[f"p_{flag}"], alpha),
                                statistic=float(row[f"share_{flag}"]), p_value=float(row[f"p_{flag}"]),
                                threshold=alpha, evidence=evidence))
            break
    return sorted(alerts, key=lambda a: a.index)


def accuracy_alerts(accuracy, floor: float, times: np.ndarray) -> list[Alert]:
    """Alerts for stretches where the accuracy seen through delayed labels falls below
    ``floor`` (taught in 08_monitoring).

    ``accuracy`` is the output of :func:`delayed_accuracy`; one alert per run of
    checkpoints below the floor, ``"critical"`` if it falls 10 points below.
    """
    where = "accuracy_alerts"
    floor = v.unit(floor, "floor", where)
    missing = [c for c in ("index", "observed", "labels") if c not in getattr(accuracy, "columns", ())]
    if missing:
        v.fail(where, f"accuracy lacks the columns {missing}", "pass the DataFrame delayed_accuracy returns")
    times = _times(times, int(accuracy["index"].max()) if len(accuracy) else 0, where)
    alerts, run = [], []
    for r in accuracy.to_dict("records") + [None]:
        if r is not None and r["observed"] < floor:
            run.append(r)
            continue
        if run:
            worst = min(run, key=lambda x: x["observed"])
            start = int(run[0]["index"])
            alerts.append(Alert(index=start, time=float(times[start - 1]), detector="accuracy",
                                severity="critical" if worst["observed"] < floor - 0.1 else "warning",
                                statistic=float(worst["observed"]), p_value=None, threshold=float(floor),
                                evidence={"labels": int(run[0]["labels"]), "checkpoints": len(run),
                                          "until": int(run[-1]["index"])}))
            run = []
    return alerts
