"""Checks of labs/08_monitoring_lab.ipynb (taught in notebooks/08_monitoring.ipynb)."""
from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import scipy.stats

from utils import monitoring as mon
from utils.course.grading import require, require_close
from . import Checker


def _exercise_1(my_ks_statistic: Callable, my_ks_test: Callable, *, api: Callable, P_ref: np.ndarray,
                X_pool: np.ndarray, y_pool: np.ndarray, window: int, alpha: float) -> None:
    """The KS statistic against scipy, and the Bonferroni KS test against mon.ks_test."""
    rng = np.random.default_rng(1)
    samples = [(rng.normal(size=50), rng.normal(0.3, 1, size=80)),
               (rng.integers(0, 5, size=40).astype(float), rng.integers(0, 6, size=60).astype(float)),  # ties
               (P_ref[:, 3], api(X_pool[:150])[:, 3])]
    for a, b in samples:
        mine, ref = my_ks_statistic(a, b), scipy.stats.ks_2samp(a, b).statistic
        require_close("my_ks_statistic", mine, ref, 1e-9)
    clean, _ = mon.sample_window(X_pool, y_pool, window, seed=7)
    noisy, _ = mon.sample_window(X_pool, y_pool, window, "noise", 0.15, seed=7)
    for name, Xw, drift in [("a no-drift window", clean, False), ("a noise σ=0.15 window", noisy, True)]:
        P = api(Xw)
        d, p, flagged = my_ks_test(P_ref, P, alpha)
        expected = mon.ks_test(P_ref, P, alpha)
        require_close(f"largest D on {name}", d, expected.statistic, 1e-9)
        require_close(f"corrected p-value on {name}", p, expected.p_value, 1e-9)
        require(bool(flagged) == drift, f"on {name} the detector should say drift={drift}, it says {flagged}")


def _exercise_2(chosen_window: Any, chosen_threshold: Any, chosen_power: Any, *, max_d: Callable,
                X_pool: np.ndarray, y_pool: np.ndarray, candidates: tuple, budget: float, target: float) -> None:
    """The window, threshold and power against mon.window_for_budget on the same simulation."""
    require(chosen_window in candidates, f"chosen_window should be one of {candidates}, got {chosen_window!r}")
    require(chosen_threshold is not None and chosen_power is not None, "set chosen_threshold and chosen_power too")
    w, threshold, power = mon.window_for_budget(max_d, X_pool, y_pool, candidates, budget, target, "noise", 0.1,
                                                longest_if_none=True)
    require(chosen_window == w, f"window {chosen_window} is not the smallest that reaches power {target} "
                                f"(or, if none does, the longest)")
    require_close("chosen_threshold", chosen_threshold, threshold, 1e-9)
    require_close("chosen_power", chosen_power, power, 1e-9)


def _exercise_3(find_extraction_clients: Callable, *, log_a, truth_a, log_b, truth_b) -> None:
    """The flagged clients of both logs are exactly the extraction clients of the simulation."""
    for name, log, truth in [("log A", log_a, truth_a), ("log B", log_b, truth_b)]:
        thieves = set(log["client"][truth == "extraction"])
        found = find_extraction_clients(log)
        require(isinstance(found, (set, frozenset)), f"return a set of client ids, got {type(found).__name__}")
        missed, accused = thieves - set(found), set(found) - thieves
        require(not missed, f"{name}: the thief {sorted(missed)} was not found")
        require(not accused, f"{name}: honest clients {sorted(accused)} were accused")
    rates = log_a.groupby("client").size()
    thief = next(iter(set(log_a["client"][truth_a == "extraction"])))
    print(f"the thief sent {rates[thief]} requests; the busiest client {rates.max()}")


def _exercise_4(make_alert: Callable, *, api: Callable, P_ref: np.ndarray, X_pool: np.ndarray,
                y_pool: np.ndarray, window: int, alpha: float) -> None:
    """The alerts of four drift results against the fields, severity and evidence they should carry."""
    windows = [mon.sample_window(X_pool, y_pool, window, kind, level, seed=3)[0]
               for kind, level in [("none", 0), ("noise", 0.12), ("rotation", 20.0)]]
    results = [mon.ks_test(P_ref, api(Xw), alpha) for Xw in windows]
    results.append(mon.DriftResult("ks", 0.2, 0.003, 0.05, True, {"column": 4}))
    for k, r in enumerate(results):
        a = make_alert(r, 100 * k, 100 * k + window, 50.0 * k)
        require(isinstance(a, mon.Alert), f"make_alert should return a mon.Alert, got {type(a).__name__}")
        line = json.loads(a.to_json())
        expected = {"index": 100 * k + window, "time": 50.0 * k, "detector": "ks",
                    "severity": mon.severity(r.p_value, r.threshold), "threshold": r.threshold}
        for key, value in expected.items():
            require(line[key] == value, f"alert {k}: {key} = {line[key]!r}, expected {value!r}")
        require_close(f"alert {k} p_value", line["p_value"], r.p_value, 1e-5 * max(r.p_value, 1e-300))  # JSON keeps 6 digits
        require(line["evidence"] == {"window": [100 * k, 100 * k + window], "column": r.details["column"]},
                f"alert {k}: evidence should be the window and the column, got {line['evidence']}")


check = Checker("lab08", {
    1: ("KS detector", _exercise_1),
    2: ("window for a budget", _exercise_2),
    3: ("extraction client", _exercise_3),
    4: ("structured alert", _exercise_4),
})
