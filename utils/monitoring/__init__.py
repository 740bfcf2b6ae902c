"""Monitoring a deployed model: drift, attacks in live traffic, alerts (taught in 08_monitoring).

A model in production sees a stream of requests. This module simulates one
from the course data and watches it:

- **Stream simulation**: :func:`apply_drift` (Gaussian noise, blur, rotation),
  class-prior shift in :func:`sample_window`, and :func:`simulate_stream`, which
  strings :class:`Segment` s together (normal traffic, gradual and sudden drift,
  adversarial inputs, extraction-style queries) with clients and timestamps.
- **Drift detection** on windows of the stream against a reference window:
  :func:`ks_test` (Kolmogorov–Smirnov on each softmax output, Bonferroni
  corrected; black-box shift detection), :func:`mmd_test` (maximum mean
  discrepancy, RBF kernel with the median heuristic, permutation test) and
  :func:`c2st` (classifier two-sample test: a held-out accuracy against chance
  with a binomial test). :func:`scan_stream` runs one over sliding windows,
  :func:`detection_delay` and :func:`false_alarm_rate` measure it.
- **Attack detection**: :func:`squeeze_score` (feature squeezing, for
  adversarial inputs) and :func:`novelty_score` (distance to the reference data,
  for extraction queries), thresholds calibrated on reference data, and
  :func:`client_report`, per-client evidence from the request log.
- **Alerting**: :class:`Alert` (one JSON line each), :class:`AlertLog`,
  :func:`incidents` (merge consecutive flagged windows), and
  :func:`plot_dashboard`, the stream with its alerts.
- **Delayed labels**: :func:`delayed_accuracy`, accuracy over time once the
  labels arrive.

All randomness comes from explicit seeds; inputs are never modified in place.
"""
from __future__ import annotations

from utils.monitoring.core import (  # noqa: F401
    Alert,
    AlertLog,
    DETECTORS,
    DRIFT_KINDS,
    DriftResult,
    PRIOR_CLASSES,
    SEVERITIES,
    STRENGTH_SCALE,
    Segment,
    Stream,
    accuracy_alerts,
    apply_drift,
    c2st,
    client_alerts,
    client_report,
    delayed_accuracy,
    describe_drift,
    detection_delay,
    drift_alerts,
    drift_panel,
    embed,
    extraction_queries,
    false_alarm_rate,
    incidents,
    ks_statistic,
    ks_test,
    label_arrivals,
    level_for,
    median_bandwidth,
    mmd2,
    mmd_test,
    normal_windows,
    novelty_score,
    plot_dashboard,
    precision_recall,
    prior_weights,
    rbf_kernel,
    reference_novelty,
    sample_window,
    scan_stream,
    severity,
    simulate_stream,
    sliding_windows,
    squeeze,
    squeeze_score,
    stream_false_alarms,
    threshold_for,
    window_for_budget,
)
