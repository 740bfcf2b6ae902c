"""Headline metrics of a notebook (taught in 00_orientation_and_threat_model).

Each notebook ends with one :func:`record` call. It shows the metrics as a
small table and, when ``make run`` executes the notebook (it sets
``MODELSEC_METRICS_DIR``), writes them to ``<dir>/<notebook>.json`` together
with the kernel's peak memory, for ``build/metrics.json`` and the report.

:func:`expect` states an expected number and checks it: notebooks say
"about 97% accuracy" in prose and assert it in code with this call. Every
stated number must hold for every seed: ``make seeds`` runs the course for
seeds 0-9 with ``MODELSEC_EXPECT_LOG`` set, so each call is logged (a JSON
line) and, with ``MODELSEC_EXPECT_MODE=collect``, a miss is logged and shown
instead of stopping the notebook, so that one run measures every claim.
"""
from __future__ import annotations

import json
import math
import os
import resource
import sys
from pathlib import Path
from typing import Any

from utils import validation
from utils.course.setup import is_fast


class ExpectationError(AssertionError):
    """A number stated in a notebook is not what the code computed (taught in 00_orientation_and_threat_model)."""


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _clean(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            validation.fail("record", f"metric value {value} is not finite", "metrics must be finite numbers")
        return round(value, 4)
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    validation.fail("record", f"a metric value has type {type(value).__name__}",
           "metric values must be numbers, strings or booleans")


def record(notebook: str, **metrics: Any) -> None:
    """Record a notebook's headline metrics (rounded to 4 decimals) and show them.

    Args:
        notebook: the notebook's name without ``.ipynb``, e.g. ``"00_orientation_and_threat_model"``.
        metrics: name=value pairs (numbers, strings or booleans).
    """
    if not metrics:
        validation.fail("record", "no metrics", "give at least one metric, e.g. record(name, test_accuracy=0.97)")
    clean = {k: _clean(v) for k, v in metrics.items()}
    width = max(len(k) for k in clean)
    print(f"Headline metrics of {notebook}:")
    for k, v in clean.items():
        print(f"  {k:<{width}}  {v}")
    out_dir = os.environ.get("MODELSEC_METRICS_DIR")
    if out_dir:
        path = Path(out_dir) / f"{notebook}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"notebook": notebook, "metrics": clean, "peak_rss_mb": round(_peak_rss_mb(), 1),
                   "fast": is_fast()}
        path.write_text(json.dumps(payload, indent=2))


def expect(name: str, value: float, low: float | None = None, high: float | None = None) -> float:
    """Check that a stated number holds: ``low <= value <= high``.

    In ``fast`` mode (``utils.setup(fast=True)``) models are trained less, so a
    miss prints a note instead of failing.

    Raises:
        ExpectationError: naming the quantity, its value and the expected range.

    Taught in 00_orientation_and_threat_model.
    """
    ok = (low is None or value >= low) and (high is None or value <= high)
    log = os.environ.get("MODELSEC_EXPECT_LOG")
    if log:
        entry = {"name": name, "value": _clean(float(value)), "ok": bool(ok),
                 "low": None if low is None else float(low), "high": None if high is None else float(high)}
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    if not ok:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        msg = f"expected {lo} <= {name} <= {hi}, got {value:.4f}"
        if os.environ.get("MODELSEC_EXPECT_MODE") == "collect":
            print(f"note (collecting for make seeds): {msg}")
        elif is_fast():
            print(f"note (fast mode): {msg}")
        else:
            raise ExpectationError(msg)
    return value
