"""The monitoring dashboard of 08_monitoring: one matplotlib figure of a stream.

:func:`plot_dashboard` draws the drift detectors' p-values per window, the
share of requests flagged by the attack scores and the accuracy as labels
arrive, on one request axis, with the simulated drifts shaded and the alerts
marked. A figure, not a widget (the interactive panel of the lesson is
:func:`utils.widgets.drift_panel`). Taught in 08_monitoring.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from utils import validation as v
from utils.monitoring.alerts import Alert
from utils.monitoring.stream import Stream


def plot_dashboard(stream: Stream, scans, alerts: Sequence[Alert], flags=None, accuracy=None,
                   rolling: int = 100):
    """The monitoring dashboard of a stream, with its alerts marked (taught in 08_monitoring).

    Panels, sharing the request axis, with the drift and attack segments shaded:
    the drift detectors' −log10 p per window (the dashed line is the threshold);
    if ``flags`` (a DataFrame with ``index`` and boolean columns) is given, the
    rolling share of flagged requests; if ``accuracy`` (from
    :func:`utils.monitoring.delayed_accuracy`) is given, accuracy with instant and delayed labels.
    Alerts are triangles at the request that raised them (red: critical).
    Returns the Figure.
    """
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    where = "plot_dashboard"
    if not isinstance(stream, Stream):
        v.fail(where, f"stream is a {type(stream).__name__}", "pass the Stream simulate_stream returns")
    rolling = v.integer(rolling, "rolling", where, low=1)
    alerts = list(alerts)
    if not all(isinstance(a, Alert) for a in alerts):
        v.fail(where, "alerts holds something other than Alert objects", "pass a list of Alert (AlertLog.alerts)")
    scans = pd.concat(list(scans), ignore_index=True) if not isinstance(scans, pd.DataFrame) else scans
    missing = [c for c in ("end", "detector", "p_value", "threshold") if c not in scans.columns]
    if missing:
        v.fail(where, f"the scans lack the columns {missing}", "pass the DataFrames scan_stream returns")
    if flags is not None and "index" not in flags.columns:
        v.fail(where, "flags has no column 'index'", "flags must have an index column and boolean flag columns")
    panels = ["drift"] + (["attacks"] if flags is not None else []) + (["accuracy"] if accuracy is not None else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels) + 0.4), sharex=True, squeeze=False)
    axes = dict(zip(panels, axes[:, 0]))
    colors = {"critical": "red", "warning": "orange", "info": "grey"}

    def mark(ax, chosen, y):
        for a in chosen:
            ax.scatter([a.index], [y(a)], marker="v", s=70, color=colors[a.severity], zorder=5,
                       edgecolor="black", lw=0.5)

    ax = axes["drift"]
    data = scans.assign(score=-np.log10(np.clip(scans["p_value"].astype(float), 1e-10, 1)))
    sns.lineplot(data=data, x="end", y="score", hue="detector", ax=ax, lw=1.2)
    ax.axhline(-np.log10(float(scans["threshold"].iloc[0])), color="grey", ls="--", lw=1)
    drift_names = set(scans["detector"])
    mark(ax, [a for a in alerts if a.detector in drift_names],
         lambda a: -np.log10(max(a.p_value, 1e-10)) + 0.5)
    ax.set(ylabel="−log10 p (capped at 10)", ylim=(-0.3, 12.8),
           title="drift detectors over the stream (▼ alerts; dashed: threshold)")
    for seg in stream.onsets():
        ax.text((seg["start"] + seg["end"]) / 2, 12.4, seg["name"], ha="center", va="top", fontsize=8)
    ax.legend(loc="center left", fontsize=8)
    if flags is not None:
        ax = axes["attacks"]
        cols = [c for c in flags.columns if c != "index"]
        roll = flags[cols].astype(float).rolling(rolling, min_periods=1).mean().assign(index=flags["index"])
        long = roll.melt(id_vars="index", var_name="flag", value_name="share")
        sns.lineplot(data=long, x="index", y="share", hue="flag", ax=ax, lw=1.2)
        others = [a for a in alerts if a.detector not in drift_names and a.detector != "accuracy"]
        top = ax.get_ylim()[1]
        ax.set_ylim(0, top * 1.25)
        mark(ax, others, lambda a: top * 1.15)
        for k, a in enumerate(others):
            ax.annotate(f"{a.evidence.get('client', '')}: {a.detector}", (a.index, top * 1.15),
                        textcoords="offset points", xytext=(-8, -12 * k - 3), ha="right", va="top", fontsize=8)
        ax.set(ylabel=f"share of last {rolling}", title="requests flagged by the attack scores (▼ client alerts)")
        ax.legend(loc="upper left", fontsize=8)
    if accuracy is not None:
        ax = axes["accuracy"]
        acc = accuracy.melt(id_vars="index", value_vars=["oracle", "observed"], var_name="labels",
                            value_name="accuracy")
        acc["labels"] = acc["labels"].map({"oracle": "instant (oracle)", "observed": "delayed"})
        sns.lineplot(data=acc, x="index", y="accuracy", hue="labels", ax=ax, lw=1.2)
        mark(ax, [a for a in alerts if a.detector == "accuracy"], lambda a: a.statistic - 0.03)
        ax.set(title="accuracy as true labels arrive")
        ax.legend(loc="lower left", fontsize=8)
    for ax in axes.values():
        for seg in stream.onsets():
            ax.axvspan(seg["start"], seg["end"], color="grey", alpha=0.12, lw=0)
    axes[panels[-1]].set_xlabel("request")
    fig.tight_layout()
    return fig
