"""``make run``: execute the whole course with papermill and write a report.

Run as ``python -m utils.runner [-p NAME VALUE ...] [--only PATTERN] [--warm]``.

Every lesson in ``notebooks/`` and every solution in ``solutions/`` is
executed into ``build/``. By default each notebook gets its own empty model
cache, so the wall time measured is a cold run of that notebook alone (the
budget the course promises); ``--warm`` shares ``.cache/`` instead. Each
notebook's :func:`utils.report.record` call writes its headline metrics and
the kernel's peak memory; the runner adds wall time and status and writes
``build/metrics.json`` and ``build/report.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"


def parse_value(text: str):
    """papermill-style parameter values: ints, floats, booleans, None, else a string."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


def course_notebooks(only: str | None = None) -> list[Path]:
    """Lessons then solutions, in curriculum order."""
    paths = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
    if only:
        paths = [p for p in paths if only in p.name]
    return paths


def run_one(path: Path, params: dict, warm: bool, timeout: int) -> dict:
    """Execute one notebook into build/; return its row of the report."""
    import papermill as pm

    rel = path.relative_to(ROOT)
    out = BUILD / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    metrics_dir = BUILD / "metrics" / rel.parent.name
    env_before = dict(os.environ)
    os.environ["MODELSEC_METRICS_DIR"] = str(metrics_dir)
    os.environ["MODELSEC_PROGRESS"] = "0"
    if not warm:
        cold = BUILD / "cache" / path.stem
        shutil.rmtree(cold, ignore_errors=True)
        os.environ["MODELSEC_CACHE"] = str(cold)
    t0 = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(str(path), str(out), parameters=params, kernel_name="python3",
                            cwd=str(path.parent), progress_bar=False, execution_timeout=timeout,
                            # the kernel's own start-up warnings (loopback transport) are noise here;
                            # errors in cells still reach the executed notebook and fail the run
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    wall = time.perf_counter() - t0
    os.environ.clear()
    os.environ.update(env_before)
    row = {"notebook": str(rel), "status": "ok" if error is None else "failed",
           "wall_seconds": round(wall, 1), "error": error, "metrics": {}, "peak_rss_mb": None}
    recorded = metrics_dir / f"{path.stem}.json"
    if recorded.exists():
        data = json.loads(recorded.read_text())
        row["metrics"] = data["metrics"]
        row["peak_rss_mb"] = data["peak_rss_mb"]
    elif error is None:
        row["status"] = "no metrics"
        row["error"] = "the notebook did not call utils.report.record(...)"
    return row


def write_report(rows: list[dict], params: dict, warm: bool) -> str:
    """build/metrics.json and build/report.md; returns the Markdown."""
    BUILD.mkdir(exist_ok=True)
    summary = {"parameters": params, "cache": "warm" if warm else "cold (empty cache per notebook)",
               "total_seconds": round(sum(r["wall_seconds"] for r in rows), 1), "notebooks": rows}
    (BUILD / "metrics.json").write_text(json.dumps(summary, indent=2))
    lines = ["# ModelSec Workbench: course run", "",
             f"Parameters: {params or 'defaults'}; model cache: {summary['cache']}; "
             f"total {summary['total_seconds']} s.", "",
             "| notebook | status | wall s | peak MB | headline metrics |", "|---|---|---|---|---|"]
    for r in rows:
        m = ", ".join(f"{k}={v}" for k, v in r["metrics"].items()) or (r["error"] or "")
        lines.append(f"| {r['notebook']} | {r['status']} | {r['wall_seconds']} | {r['peak_rss_mb']} | {m} |")
    failed = [r for r in rows if r["status"] != "ok"]
    lines += ["", f"{len(rows) - len(failed)} of {len(rows)} notebooks ran cleanly."]
    for r in failed:
        lines.append(f"- {r['notebook']}: {r['error']} (see build/{r['notebook']})")
    text = "\n".join(lines) + "\n"
    (BUILD / "report.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a notebook parameter, e.g. -p fast True")
    parser.add_argument("--only", help="run only notebooks whose file name contains this text")
    parser.add_argument("--warm", action="store_true", help="share .cache/ instead of a cold cache each")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    params = {k: parse_value(v) for k, v in args.parameter}
    paths = course_notebooks(args.only)
    if not paths:
        print("no notebooks to run")
        return 1
    shutil.rmtree(BUILD / "metrics", ignore_errors=True)
    rows = []
    for p in paths:
        print(f"running {p.relative_to(ROOT)} ...", flush=True)
        row = run_one(p, params, args.warm, args.timeout)
        print(f"  {row['status']} in {row['wall_seconds']} s" + (f": {row['error']}" if row["error"] else ""),
              flush=True)
        rows.append(row)
    print()
    print(write_report(rows, params, args.warm))
    print(f"wrote {BUILD / 'metrics.json'} and {BUILD / 'report.md'}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
