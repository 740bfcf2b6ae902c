"""``make run``: execute the whole course with papermill and write a report.

Run as ``python -m utils.tooling.runner [-p NAME VALUE ...] [--only PATTERN] [--warm]``,
or ``python -m utils.tooling.runner --seeds 0-9 --jobs 2`` for the seeds study (``make seeds``).

Every lesson in ``notebooks/`` and every solution in ``solutions/`` is
executed into ``build/``. By default each notebook gets its own empty model
cache, so the wall time measured is a cold run of that notebook alone (the
budget the course promises); ``--warm`` shares ``.cache/`` instead. Each
notebook's :func:`utils.course.report.record` call writes its headline metrics and
the kernel's peak memory; the runner adds wall time and status and writes
``build/metrics.json`` and ``build/report.md``.

The seeds study runs every lesson and solution for each seed (a lesson and its
solution share one model cache per seed; ``--jobs`` of them at a time), logs
every :func:`utils.course.report.expect` call without stopping at a miss, and writes
``build/seeds.json`` and ``build/seeds.md``: each stated number's range and its
min, median and max over the seeds. It fails if any seed falls outside a range,
misses a claim or stops with an error.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from utils.course.numerics import KERNEL_NAME
from utils.paths import ROOT

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


def run_one(path: Path, params: dict, warm: bool, timeout: int, root: Path | None = None,
            build: Path | None = None, cache: Path | None = None, env: dict | None = None) -> dict:
    """Execute one notebook into ``build`` (build/ by default); return its row of the report.

    ``cache`` is the model cache to use (default: an empty one for this notebook, or
    ``.cache/`` when ``warm``); ``env`` adds environment variables for its kernel.
    """
    import papermill as pm

    root = ROOT if root is None else root
    build = BUILD if build is None else build
    rel = path.relative_to(root)
    out = build / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    metrics_dir = build / "metrics" / rel.parent.name
    env_before = dict(os.environ)
    os.environ["MODELSEC_METRICS_DIR"] = str(metrics_dir)
    os.environ["MODELSEC_PROGRESS"] = "0"
    os.environ.update(env or {})
    if cache is not None:
        os.environ["MODELSEC_CACHE"] = str(cache)
    elif not warm:
        cold = build / "cache" / path.stem
        shutil.rmtree(cold, ignore_errors=True)
        os.environ["MODELSEC_CACHE"] = str(cold)
    t0 = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(str(path), str(out), parameters=params, kernel_name=KERNEL_NAME,
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
        row["error"] = "the notebook did not call utils.course.report.record(...)"
    return row


def write_report(rows: list[dict], params: dict, warm: bool) -> str:
    """build/metrics.json and build/report.md; returns the Markdown."""
    BUILD.mkdir(parents=True, exist_ok=True)
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


# --------------------------------------------------------------------------- seeds study


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"3"`` or ``"0,3,7"`` as a list of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: use a range such as 0-9 or a list such as 0,3,7") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: give at least one seed, none negative")
    return sorted(set(seeds))


def lesson_groups(paths: list[Path]) -> list[list[Path]]:
    """Notebooks grouped by lesson number (a lesson and its solution share a model cache)."""
    groups: dict[str, list[Path]] = {}
    for p in paths:
        groups.setdefault(p.name[:2], []).append(p)
    return [groups[k] for k in sorted(groups)]


def read_expectations(log: Path) -> list[dict]:
    """The expect() calls a notebook logged, in order; a name stated twice gets ``#2``, ``#3``."""
    if not log.exists():
        return []
    seen: dict[str, int] = {}
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        seen[entry["name"]] = seen.get(entry["name"], 0) + 1
        if seen[entry["name"]] > 1:
            entry["name"] = f"{entry['name']} #{seen[entry['name']]}"
        out.append(entry)
    return out


def solution_checks(executed: Path) -> dict:
    """A solution's lab checks as one stated number: every exercise solved, for this seed too."""
    import nbformat

    from utils.course.grading import parse_results

    nb = nbformat.read(str(executed), as_version=4)
    text = "\n".join("".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    results = dict(parse_results(text))  # the last result of each exercise
    n = len(results)
    return {"name": "lab checks passed (of all exercises)", "value": float(sum(results.values())),
            "low": float(n), "high": float(n), "ok": n > 0 and all(results.values())}


def _seed_job(seed: int, paths: list[Path], params: dict, timeout: int, root: Path, build: Path) -> list[dict]:
    """One lesson group for one seed (runs in a worker process)."""
    seed_build = build / "seeds" / f"seed{seed}"
    cache = seed_build / "cache" / paths[0].name[:2]
    shutil.rmtree(cache, ignore_errors=True)
    rows = []
    for p in paths:
        log = seed_build / "expect" / f"{p.parent.name}__{p.stem}.jsonl"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
        row = run_one(p, {**params, "seed": seed}, warm=False, timeout=timeout, root=root, build=seed_build,
                      cache=cache, env={"MODELSEC_EXPECT_LOG": str(log), "MODELSEC_EXPECT_MODE": "collect"})
        expectations = read_expectations(log)
        if p.parent.name == "solutions" and row["status"] == "ok":
            expectations.append(solution_checks(seed_build / p.relative_to(root)))
        row.update(seed=seed, expectations=expectations)
        rows.append(row)
    return rows


def summarize_seeds(rows: list[dict], seeds: list[int]) -> dict:
    """Per notebook and stated number: its range, the values per seed, min / median / max, failures."""
    claims: dict[tuple[str, str], dict] = {}
    for row in rows:
        for e in row["expectations"]:
            c = claims.setdefault((row["notebook"], e["name"]), {
                "notebook": row["notebook"], "name": e["name"], "low": e["low"], "high": e["high"], "values": {}})
            c["values"][str(row["seed"])] = e["value"]
            if not e["ok"]:
                c.setdefault("outside", []).append(row["seed"])
    failed_runs = [{"notebook": r["notebook"], "seed": r["seed"], "error": r["error"]}
                   for r in rows if r["status"] != "ok"]
    for c in claims.values():
        vals = [c["values"][str(s)] for s in seeds if str(s) in c["values"]]
        c.update(min=min(vals), median=round(statistics.median(vals), 4), max=max(vals),
                 missing=[s for s in seeds if str(s) not in c["values"]], outside=c.get("outside", []))
        c["ok"] = not c["outside"] and not c["missing"]
    ordered = sorted(claims.values(), key=lambda c: (c["notebook"], list(claims).index((c["notebook"], c["name"]))))
    return {"seeds": seeds, "claims": ordered, "failed_runs": failed_runs,
            "ok": all(c["ok"] for c in ordered) and not failed_runs}


def _fmt(v) -> str:
    return "" if v is None else f"{v:g}"


def write_seeds_report(summary: dict, build: Path) -> str:
    """build/seeds.json and build/seeds.md; returns the Markdown."""
    build.mkdir(parents=True, exist_ok=True)
    (build / "seeds.json").write_text(json.dumps(summary, indent=2))
    seeds = summary["seeds"]
    contiguous = seeds == list(range(seeds[0], seeds[-1] + 1))
    lines = [f"# ModelSec Workbench: every stated number over seeds "
             f"{f'{seeds[0]}-{seeds[-1]}' if contiguous else seeds}", "",
             "| notebook | stated number | range | min | median | max | seeds outside |",
             "|---|---|---|---|---|---|---|"]
    for c in summary["claims"]:
        bad = ", ".join(str(s) for s in c["outside"]) + (f" (missing: {c['missing']})" if c["missing"] else "")
        lines.append(f"| {c['notebook']} | {c['name']} | [{_fmt(c['low']) or '-inf'}, {_fmt(c['high']) or 'inf'}] "
                     f"| {c['min']:g} | {c['median']:g} | {c['max']:g} | {bad or '-'} |")
    n_bad = sum(not c["ok"] for c in summary["claims"])
    lines += ["", f"{len(summary['claims']) - n_bad} of {len(summary['claims'])} stated numbers hold for every seed."]
    for r in summary["failed_runs"]:
        lines.append(f"- {r['notebook']} failed for seed {r['seed']}: {r['error']}")
    text = "\n".join(lines) + "\n"
    (build / "seeds.md").write_text(text)
    return text


def run_seeds(paths: list[Path], seeds: list[int], params: dict, jobs: int, timeout: int) -> int:
    """The seeds study; returns the exit code."""
    if "seed" in params:
        print("--seeds sets the seed itself: drop -p seed")
        return 2
    jobs_list = [(s, g) for s in seeds for g in lesson_groups(paths)]
    rows: list[dict] = []
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_seed_job, s, g, params, timeout, ROOT, BUILD) for s, g in jobs_list]
        for n, fut in enumerate(futures, 1):
            for row in fut.result():
                rows.append(row)
                misses = [e["name"] for e in row["expectations"] if not e["ok"]]
                print(f"[{n}/{len(futures)}] seed {row['seed']} {row['notebook']}: {row['status']} in "
                      f"{row['wall_seconds']} s" + (f", outside: {misses}" if misses else "")
                      + (f": {row['error']}" if row["error"] else ""), flush=True)
    except BaseException:  # Ctrl-C or a crash: stop the workers too (their kernels exit with them)
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    summary = summarize_seeds(rows, seeds)
    summary.update(parameters=params, total_seconds=round(time.perf_counter() - t0, 1), jobs=jobs)
    print()
    print(write_seeds_report(summary, BUILD))
    print(f"wrote {BUILD / 'seeds.json'} and {BUILD / 'seeds.md'}")
    return 0 if summary["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.tooling.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a notebook parameter, e.g. -p fast True")
    parser.add_argument("--only", help="run only notebooks whose file name contains this text")
    parser.add_argument("--warm", action="store_true", help="share .cache/ instead of a cold cache each")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--seeds", type=parse_seeds, help="the seeds study for these seeds, e.g. 0-9")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at a time in the seeds study")
    parser.add_argument("--build", type=Path, help="write into this folder instead of build/")
    args = parser.parse_args(argv)
    if args.build is not None:
        global BUILD
        BUILD = args.build.resolve()
    params = {k: parse_value(v) for k, v in args.parameter}
    paths = course_notebooks(args.only)
    if not paths:
        print("no notebooks to run")
        return 1
    if args.seeds is not None:
        return run_seeds(paths, args.seeds, params, max(1, args.jobs), args.timeout)
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
