"""Monitoring a deployed model: drift, attacks in live traffic, alerts (taught in 08_monitoring).

A model in production sees a stream of requests. This package simulates one
from the course data and watches it; a notebook writes
``from utils import monitoring as mon`` and calls ``mon.ks_test(...)``. The
submodules, one concern each:

- :mod:`utils.monitoring.stream` – **stream simulation**: :func:`apply_drift`
  (Gaussian noise, blur, rotation), class-prior shift in :func:`sample_window`,
  and :func:`simulate_stream`, which strings :class:`Segment` s together (normal
  traffic, gradual and sudden drift, adversarial inputs, :func:`extraction_queries`)
  into a :class:`Stream` with clients and timestamps.
- :mod:`utils.monitoring.drift` – **drift detection** on windows of the stream
  against a reference window: :func:`ks_test` (Kolmogorov–Smirnov on each
  softmax output, Bonferroni corrected; black-box shift detection),
  :func:`mmd_test` (maximum mean discrepancy, RBF kernel with the median
  heuristic, permutation test) and :func:`c2st` (classifier two-sample test: a
  held-out accuracy against chance with a binomial test). :func:`scan_stream`
  runs one over sliding windows; :func:`false_alarm_rate`,
  :func:`detection_delay` and :func:`window_for_budget` measure it.
- :mod:`utils.monitoring.traffic` – **attack traffic**: :func:`novelty_score`
  (distance to the reference data, for extraction queries) and
  :func:`client_report`, per-client evidence from the request log. Feature
  squeezing is :func:`utils.defenses.adversarial.squeeze_score`, thresholds at a
  false-positive rate :func:`utils.metrics.threshold_at_fpr`, precision and
  recall :func:`utils.metrics.detection_metrics`, embeddings
  :func:`utils.models.hidden_activations`.
- :mod:`utils.monitoring.alerts` – **alerting**: :class:`Alert` (one JSON line
  each), :class:`AlertLog`, :func:`severity`, :func:`incidents` (merge
  consecutive flagged windows), :func:`drift_alerts`, :func:`client_alerts`,
  :func:`accuracy_alerts`.
- :mod:`utils.monitoring.labels` – **delayed labels**: :func:`label_arrivals`
  and :func:`delayed_accuracy`, accuracy over time once the labels arrive.
- :mod:`utils.monitoring.dashboard` – :func:`plot_dashboard`, the stream with
  its alerts (a matplotlib figure; the widget panel is
  :func:`utils.widgets.drift_panel`).

All randomness comes from explicit seeds; inputs are never modified in place;
bad input raises :class:`utils.validation.ValidationError`. No widget code
and no torch here: panels live in :mod:`utils.widgets`.
"""
from __future__ import annotations

from utils.monitoring.alerts import (
    SEVERITIES,
    Alert,
    AlertLog,
    accuracy_alerts,
    client_alerts,
    drift_alerts,
    incidents,
    severity,
)
from utils.monitoring.dashboard import plot_dashboard
from utils.monitoring.drift import (
    DETECTORS,
    DriftResult,
    c2st,
    detection_delay,
    false_alarm_rate,
    ks_statistic,
    ks_test,
    median_bandwidth,
    mmd2,
    mmd_test,
    normal_windows,
    rbf_kernel,
    scan_stream,
    sliding_windows,
    stream_false_alarms,
    window_for_budget,
)
from utils.monitoring.labels import delayed_accuracy, label_arrivals
from utils.monitoring.stream import (
    DRIFT_KINDS,
    PRIOR_CLASSES,
    STRENGTH_SCALE,
    Segment,
    Stream,
    apply_drift,
    describe_drift,
    extraction_queries,
    level_for,
    prior_weights,
    sample_window,
    simulate_stream,
)
from utils.monitoring.traffic import client_report, novelty_score, reference_novelty

__all__ = [
    "DRIFT_KINDS", "PRIOR_CLASSES", "STRENGTH_SCALE", "SEVERITIES", "DETECTORS",
    "Segment", "Stream", "DriftResult", "Alert", "AlertLog",
    "level_for", "describe_drift", "apply_drift", "prior_weights", "sample_window",
    "extraction_queries", "simulate_stream", "ks_statistic", "ks_test", "median_bandwidth",
    "rbf_kernel", "mmd2", "mmd_test", "c2st", "sliding_windows", "scan_stream",
    "false_alarm_rate", "window_for_budget", "detection_delay", "normal_windows",
    "stream_false_alarms", "novelty_score", "reference_novelty", "client_report", "severity",
    "incidents", "drift_alerts", "client_alerts", "accuracy_alerts", "label_arrivals",
    "delayed_accuracy", "plot_dashboard",
]
