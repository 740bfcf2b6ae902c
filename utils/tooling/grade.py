"""``make grade``: execute a class's submitted labs in sandboxes and collect one table.

Run as ``python -m utils.tooling.grade SUBMISSIONS [--out build/grade] [--timeout S]
[--memory MB] [--output-mb MB] [--workers N] [--scheduler ADDR] [--cache DIR]``.

``SUBMISSIONS`` is a folder with one of two layouts (both may be mixed):

- ``<learner>/NN_topic_lab.ipynb``: a folder per learner (what an LMS export or a hub's
  home folders give);
- ``<learner>__NN_topic_lab.ipynb``: flat files, learner and lab joined by two underscores.

The lab's file name must be one of ``labs/`` (a learner may hand in several labs). Any
other file is reported as "not a notebook". Each notebook runs through
:func:`utils.tooling.sandbox.run` (its own process tree: time, memory and output limits,
no network, no ``solutions/``), in parallel through :func:`utils.parallel.map_tasks`, the
Dask engine of the workbench's batch audits (a local cluster, or ``--scheduler``). The
labs' checks write their results through ``MODELSEC_LABS_DIR`` (one folder per run); the
grader reads them back and writes, under ``--out``:

- ``grades.csv``: a row per learner and lab: status, reasons, passed / total, one column
  per exercise (1 passed, 0 not solved, empty not reached), seconds, peak memory;
- ``grades.html``: one self-contained page: per lab a chart of each exercise's pass rate,
  then a row per learner, each bad submission with its reason;
- ``grades.json``: everything, with the audit log of each run;
- ``notebooks/<learner>__<lab>.ipynb``: each executed notebook, to hand back.

A submission that crashes, loops, runs out of memory, prints too much or reaches for the
network or the solutions is a row of the table, never the grader's failure. This module
imports no torch.
"""
from __future__ import annotations

import argparse
import csv
import html
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from utils.paths import ROOT
from utils.tooling import sandbox

LAB_NAME = re.compile(r"^(?P<number>\d\d)_[a-z0-9_]+_lab\.ipynb$")
LEARNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
#: Submissions larger than this are not run (a lab notebook with outputs is well under 1 MB).
MAX_BYTES = 20 * 2**20


@dataclass(frozen=True)
class Submission:
    """One file of the submissions folder: who, which lab, where; ``problem`` when it is not gradable."""

    learner: str
    lab: str
    path: str
    problem: str = ""


def known_labs() -> dict[str, str]:
    """File name -> lab number of every lab in ``labs/``."""
    return {p.name: p.name[:2] for p in sorted((ROOT / "labs").glob("*_lab.ipynb"))}


def exercises(lab_file: str) -> list[str]:
    """The exercises of a lab, in order, read from its solution's committed outputs (each solution
    passes every check, so each exercise's PASSED line names it)."""
    import nbformat

    from utils.course.grading import parse_results

    nb = nbformat.read(str(ROOT / "solutions" / lab_file), as_version=4)
    text = "\n".join("".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    names: list[str] = []
    for name, _ in parse_results(text):
        if name not in names:
            names.append(name)
    return names


def discover(folder: Path) -> list[Submission]:
    """Every file of the submissions folder as a :class:`Submission`, sorted by learner and lab."""
    labs = known_labs()
    out = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue  # .ipynb_checkpoints, .DS_Store
        if len(rel.parts) == 2:
            learner, name = rel.parts
        elif len(rel.parts) == 1 and "__" in rel.name:
            learner, name = rel.name.split("__", 1)
        else:
            learner, name = rel.parts[0] if len(rel.parts) > 1 else rel.stem, rel.name
            out.append(Submission(learner, "", str(path), f"not a notebook: {rel} is not laid out as "
                                  "<learner>/NN_topic_lab.ipynb or <learner>__NN_topic_lab.ipynb"))
            continue
        if path.is_symlink():
            out.append(Submission(learner, name, str(path), "not a notebook: a symbolic link"))
        elif not LEARNER.match(learner):
            out.append(Submission(learner, name, str(path), "not a notebook: the learner's name has characters "
                                  "other than letters, digits, '.', '_', '@' and '-'"))
        elif name not in labs:
            out.append(Submission(learner, name, str(path), f"not a notebook: {name!r} is not the file name of "
                                  "a lab of this course (see labs/)"))
        elif path.stat().st_size > MAX_BYTES:
            out.append(Submission(learner, name, str(path), f"malformed: {path.stat().st_size // 2**20} MB, "
                                  f"over the {MAX_BYTES // 2**20} MB a submission may have"))
        else:
            out.append(Submission(learner, name, str(path)))
    return sorted(out, key=lambda s: (s.learner, s.lab, s.path))


def grade_one(job: dict) -> dict:
    """One submission in its sandbox (a Dask task): its row of the class table."""
    sub = Submission(**job["submission"])
    row = {"learner": sub.learner, "lab": sub.lab, "file": sub.path}
    if sub.problem:
        reason, detail = sub.problem.split(": ", 1)
        return {**row, "status": "failed", "reasons": [reason], "detail": detail, "seconds": 0.0,
                "peak_mb": None, "exercises": {}, "audit": [], "executed": None, "enforcement": {}}
    limits = sandbox.Limits(**job["limits"])
    keep = Path(job["out"]) / "notebooks" / f"{sub.learner}__{sub.lab}"
    outcome = sandbox.run(Path(sub.path), limits, hide=[Path(h) for h in job["hide"]],
                          cache=Path(job["cache"]) if job.get("cache") else None, keep=keep)
    number = sub.lab[:2]
    results = outcome.labs.get(number, {}).get("exercises", {})
    return {**row, "status": outcome.status, "reasons": outcome.reasons, "detail": outcome.detail,
            "seconds": outcome.seconds, "peak_mb": outcome.peak_mb,
            "exercises": {k: {"passed": bool(v.get("passed")), "reason": str(v.get("reason", ""))[:300]}
                          for k, v in results.items() if isinstance(v, dict)},
            "audit": outcome.audit, "executed": outcome.executed, "enforcement": outcome.enforcement}


def grade(folder: Path, out: Path, limits: sandbox.Limits, workers: int = 2, scheduler: str | None = None,
          cache: Path | None = None, progress=None) -> dict:
    """Grade every submission in ``folder``; write grades.csv, grades.html and grades.json into ``out``."""
    from utils import parallel

    folder, out = Path(folder).resolve(), Path(out).resolve()
    if not folder.is_dir():
        raise SystemExit(f"grade: {folder} is not a folder of submissions")
    out.mkdir(parents=True, exist_ok=True)
    subs = discover(folder)
    jobs = [{"submission": s.__dict__, "limits": limits.__dict__, "out": str(out),
             "cache": str(cache) if cache else None, "hide": [str(folder), str(out)]} for s in subs]
    t0 = time.perf_counter()
    results = parallel.map_tasks(grade_one, jobs, address=scheduler, n_workers=workers, progress=progress)
    rows = []
    for job, r in zip(jobs, results):
        if r.ok:
            rows.append(r.value)
        else:  # the task itself failed (a worker lost): still a row
            s = job["submission"]
            rows.append({"learner": s["learner"], "lab": s["lab"], "file": s["path"], "status": "failed",
                         "reasons": ["crash"], "detail": f"grader task failed: {r.error}", "seconds": r.seconds,
                         "peak_mb": None, "exercises": {}, "audit": [], "executed": None, "enforcement": {}})
    labs = sorted({r["lab"] for r in rows if r["lab"] in known_labs()})
    table = {"labs": {lab: exercises(lab) for lab in labs}, "rows": rows,
             "limits": limits.__dict__, "capabilities": sandbox.capabilities(),
             "seconds": round(time.perf_counter() - t0, 1), "workers": workers, "scheduler": scheduler}
    (out / "grades.json").write_text(json.dumps(table, indent=2, ensure_ascii=False))
    write_csv(table, out / "grades.csv")
    (out / "grades.html").write_text(html_page(table), encoding="utf-8")
    return table


def passed(row: dict) -> int:
    """How many of a row's exercises passed."""
    return sum(1 for e in row["exercises"].values() if e["passed"])


def write_csv(table: dict, path: Path) -> None:
    """grades.csv: a row per learner and lab, a column per exercise of every lab graded."""
    columns = [f"{lab[:2]}: {ex}" for lab, exs in table["labs"].items() for ex in exs]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["learner", "lab", "status", "reasons", "passed", "total", *columns, "seconds", "peak_mb", "detail"])
        for r in table["rows"]:
            exs = table["labs"].get(r["lab"], [])
            cells = []
            for lab, names in table["labs"].items():
                for ex in names:
                    e = r["exercises"].get(ex) if lab == r["lab"] else None
                    cells.append("" if e is None else int(e["passed"]))
            w.writerow([r["learner"], r["lab"], r["status"], "; ".join(r["reasons"]), passed(r), len(exs), *cells,
                        r["seconds"], "" if r["peak_mb"] is None else r["peak_mb"], r["detail"]])


def _bar_chart(names: list[str], rates: list[float], graded: int) -> str:
    """An inline SVG: one horizontal bar per exercise, its pass rate."""
    h, width, label_w = 26, 640, 300
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h * len(names) + 24}" '
             f'role="img" aria-label="pass rate per exercise">']
    for i, (name, rate) in enumerate(zip(names, rates)):
        y = i * h + 4
        bar = (width - label_w - 60) * rate
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="13">{html.escape(name)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{width - label_w - 60}" height="{h - 8}" fill="#eee"/>'
                     f'<rect x="{label_w}" y="{y}" width="{bar:.1f}" height="{h - 8}" fill="#2a7"/>'
                     f'<text x="{width - 52}" y="{y + 15}" font-size="13">{rate:.0%}</text>')
    parts.append(f'<text x="{label_w}" y="{h * len(names) + 18}" font-size="12" fill="#555">pass rate over '
                 f'{graded} submissions</text></svg>')
    return "".join(parts)


def html_page(table: dict) -> str:
    """grades.html: self-contained (inline CSS and SVG, nothing fetched); every learner-given text escaped."""
    e = html.escape
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>"
           "<title>ModelSec Workbench: class results</title>",
           "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
           "td,th{border:1px solid #ccc;padding:.3em .6em;font-size:14px}th{background:#f4f4f4}"
           ".ok{color:#176}.no{color:#a22}.failed{background:#fde8e8}.flagged{background:#fff5d6}</style></head><body>",
           "<h1>Class results</h1>",
           f"<p>{len(table['rows'])} submissions, graded in {table['seconds']} s with {table['workers']} workers. "
           f"Limits per submission: {table['limits']['timeout']:g} s, {table['limits']['memory_mb']} MB memory, "
           f"{table['limits']['output_mb']} MB of output; no network, no solutions.</p>"]
    for lab, names in table["labs"].items():
        rows = [r for r in table["rows"] if r["lab"] == lab]
        ran = [r for r in rows if r["exercises"]]
        rates = [sum(1 for r in rows if r["exercises"].get(n, {}).get("passed")) / len(rows) if rows else 0.0
                 for n in names]
        out.append(f"<h2>Lab {e(lab[:2])}: {e(lab)}</h2>")
        out.append(_bar_chart(names, rates, len(rows)))
        out.append(f"<p>{len(ran)} of {len(rows)} submissions reached the checks.</p>")
        out.append("<table><tr><th>learner</th><th>status</th><th>passed</th>"
                   + "".join(f"<th title='{e(n)}'>{e(n.split(' (')[0])}</th>" for n in names)
                   + "<th>seconds</th><th>reason</th></tr>")
        for r in rows:
            cells = "".join(
                "<td></td>" if n not in r["exercises"] else
                ("<td class='ok'>✔</td>" if r["exercises"][n]["passed"] else
                 f"<td class='no' title='{e(r['exercises'][n]['reason'])}'>✘</td>") for n in names)
            why = "; ".join(r["reasons"]) + (f": {r['detail']}" if r["detail"] else "")
            out.append(f"<tr class='{e(r['status'])}'><td>{e(r['learner'])}</td><td>{e(r['status'])}</td>"
                       f"<td>{passed(r)} / {len(names)}</td>{cells}<td>{r['seconds']}</td><td>{e(why)}</td></tr>")
        out.append("</table>")
    other = [r for r in table["rows"] if r["lab"] not in table["labs"]]
    if other:
        out.append("<h2>Files that are not lab notebooks</h2>"
                   "<table><tr><th>learner</th><th>file</th><th>reason</th></tr>")
        out += [f"<tr class='failed'><td>{e(r['learner'])}</td><td>{e(Path(r['file']).name)}</td>"
                f"<td>{e('; '.join(r['reasons']))}: {e(r['detail'])}</td></tr>" for r in other]
        out.append("</table>")
    caps = table["capabilities"]
    out.append(f"<p>Enforcement on this machine: namespaces {'yes' if caps['namespaces'] else 'NO'}, "
               f"memory by {e(caps['memory'])}.</p></body></html>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.tooling.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", type=Path, help="folder of <learner>/NN_topic_lab.ipynb or "
                        "<learner>__NN_topic_lab.ipynb files")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "grade", help="where the table goes")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a submission may run (default 300)")
    parser.add_argument("--memory", type=int, default=2048, help="MB of memory per submission (default 2048)")
    parser.add_argument("--output-mb", type=int, default=20, help="MB a submission may print (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="submissions at a time on this machine (default 2)")
    parser.add_argument("--scheduler", help="an existing Dask scheduler (tcp://host:8786) instead of local workers")
    parser.add_argument("--cache", type=Path, help="a warm model cache (e.g. .cache) copied into each run")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.memory < 256 or args.output_mb < 1 or not 1 <= args.workers <= 64:
        parser.error("--timeout > 0, --memory >= 256, --output-mb >= 1 and --workers 1-64")
    caps = sandbox.capabilities()
    if not caps["namespaces"]:
        print("warning: unshare --net/--mount is not available: submissions run WITHOUT a network or mount "
              "namespace (the audit hook still reports network and solutions access)", file=sys.stderr)
    limits = sandbox.Limits(timeout=args.timeout, memory_mb=args.memory, output_mb=args.output_mb)

    def progress(done, total):
        print(f"  graded {done} of {total}", flush=True)

    table = grade(args.submissions, args.out, limits, args.workers, args.scheduler, args.cache, progress)
    for r in table["rows"]:
        total = len(table["labs"].get(r["lab"], []))
        why = f" ({'; '.join(r['reasons'])}: {r['detail']})" if r["reasons"] else ""
        print(f"{r['learner']:<20} {r['lab'][:2] or '--'}  {r['status']:<8} {passed(r)}/{total}  "
              f"{r['seconds']:>6} s{why}")
    print(f"wrote {args.out}/grades.csv, grades.html, grades.json ({table['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
