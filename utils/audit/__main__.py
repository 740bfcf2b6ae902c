"""The workbench's command line (taught in 10_workbench).

    python -m utils.audit --model models/mine --data test.npz --out build/audit
    python -m utils.audit --model utils.models:build_model --kwargs '{"name": "mlp", "input_shape": [1, 8, 8],
        "n_classes": 10}' --weights weights.safetensors --data test.csv --out build/audit
    python -m utils.audit batch --models models/ --data test.npz --out build/batch [--scheduler tcp://host:8786]

Writes ``scorecard.json``, ``scorecard.md``, ``scorecard.html`` and ``drift_reference.npz`` (the
reference outputs for monitoring) into ``--out``; a progress bar goes to stderr. Exit code 0: every
gate passed; 1: a gate failed (``--fail-on`` chooses the gates); 2: bad input (a file the load gate
refuses, data of the wrong shape or range, too few examples), with the reason on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from utils.audit.checks import BUDGETS, CHECKS, DEFAULT_GATES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m utils.audit", description="Audit a model you bring (10_workbench).")
    p.add_argument("--model", required=True,
                   help="a model folder (model.json + weights.safetensors) or its model.json; with --weights, the "
                        "module code: 'package.module:Callable' or 'path/file.py:Callable'")
    p.add_argument("--weights", help="the safetensors weights (with --model naming the module code)")
    p.add_argument("--kwargs", default="{}", help="JSON object of the module's arguments (with --weights)")
    p.add_argument("--sha256", help="the pinned sha256 of the weights (with --weights)")
    p.add_argument("--signature", help="signature bundle of the weights (with --weights and --public-key)")
    p.add_argument("--public-key", help="the publisher's PEM public key")
    p.add_argument("--data", required=True, help="the evaluation set: .npz (x, y[, x_train, y_train]) or .csv (label last)")
    p.add_argument("--classes", help="class names, comma-separated (labels must lie in 0..len-1)")
    p.add_argument("--value-range", default="0,1", help="the data's value range LOW,HIGH (rescaled to [0, 1])")
    p.add_argument("--shape", help="C,H,W of one example when CSV rows are not square images")
    p.add_argument("--out", required=True, help="folder for scorecard.{json,md,html}")
    p.add_argument("--eps", type=float, default=0.1, help="L∞ budget of the robustness check (default 0.1)")
    p.add_argument("--norm", default="Linf", choices=["Linf"])
    p.add_argument("--budget", default="default", choices=list(BUDGETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checks", default="all", help=f"comma-separated among {','.join(CHECKS)} (default all)")
    p.add_argument("--fail-on", default=",".join(DEFAULT_GATES),
                   help=f"the gates: checks whose failure exits 1 (default {','.join(DEFAULT_GATES)}; 'all', 'none')")
    p.add_argument("--trail", help="append the scorecard to this governance audit trail (JSON lines)")
    p.add_argument("--trail-seed", type=int, default=0, help="seed of the trail's signing key")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _batch_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m utils.audit batch",
                                description="Audit a folder of models in parallel through Dask (10_workbench).")
    p.add_argument("--models", required=True, help="a folder with one model folder (model.json) per model")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--scheduler", help="an existing Dask scheduler (tcp://host:8786); default a local cluster")
    p.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    p.add_argument("--serial", action="store_true", help="in this process, one model after another")
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--budget", default="quick", choices=list(BUDGETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checks", default="all")
    p.add_argument("--fail-on", default=",".join(DEFAULT_GATES))
    p.add_argument("--quiet", action="store_true")
    return p


def _pair(text: str, name: str, n: int, cast=float):
    from utils import validation as v

    try:
        parts = tuple(cast(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != n:
        v.fail("python -m utils.audit", f"--{name} = {text!r}", f"--{name} must be {n} comma-separated numbers")
    return parts


def _bar(quiet: bool):
    from tqdm import tqdm

    if quiet:
        return None, None
    bar = tqdm(total=1, desc="audit", file=sys.stderr, unit="check")

    def progress(done: int, total: int, name: str = ""):
        bar.total = total
        bar.n = done
        bar.set_postfix_str(name)
        bar.refresh()
    return bar, progress


def main_audit(argv: list[str]) -> int:
    """The single-model command (taught in 10_workbench)."""
    import numpy as np

    from utils import validation as v
    from utils.audit.checks import reference_outputs
    from utils.audit.inputs import load_data, load_model, load_model_spec
    from utils.audit.scorecard import run_audit
    from utils.course.setup import setup

    args = _parser().parse_args(argv)
    setup(args.seed, plots=False)
    value_range = _pair(args.value_range, "value-range", 2)
    shape = None if args.shape is None else _pair(args.shape, "shape", 3, int)
    classes = None if args.classes is None else [c.strip() for c in args.classes.split(",")]
    if args.weights:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as e:
            v.fail("python -m utils.audit", f"--kwargs is not JSON ({e})", "give a JSON object, e.g. '{\"n_classes\": 10}'")
        model = load_model(args.model, args.weights, kwargs=kwargs, sha256=args.sha256, signature=args.signature,
                           public_key=args.public_key)
    else:
        model = load_model_spec(args.model)
    data = load_data(args.data, classes, value_range=value_range, shape=shape)
    bar, progress = _bar(args.quiet)
    try:
        card = run_audit(model, data, eps=args.eps, norm=args.norm, budget=args.budget, seed=args.seed,
                         checks=args.checks, fail_on=args.fail_on, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    card.to_json(out / "scorecard.json")
    card.to_markdown(out / "scorecard.md")
    card.to_html(out / "scorecard.html")
    np.savez(out / "drift_reference.npz", outputs=reference_outputs(model.model, data))
    if args.trail:
        from utils.governance import trail

        t = trail.AuditTrail(args.trail, trail.signing_key(args.trail_seed))
        entry = card.record(t)
        print(f"recorded in {args.trail}: entry {entry.hash[:16]}…")
    for c in card.checks:
        print(c.line())
    print(f"{'PASSED' if card.passed else 'FAILED'}" + ("" if card.passed else f": {', '.join(card.failed_gates)}")
          + f"; scorecard in {out}/scorecard.{{json,md,html}}")
    return 0 if card.passed else 1


def main_batch(argv: list[str]) -> int:
    """The batch command: every model of a folder, in parallel (taught in 10_workbench)."""
    from tqdm import tqdm

    from utils.audit.batch import audit_folder, summary_rows

    args = _batch_parser().parse_args(argv)
    bar = None if args.quiet else tqdm(total=1, desc="batch", file=sys.stderr, unit="model")

    def progress(done: int, total: int):
        if bar is not None:
            bar.total, bar.n = total, done
            bar.refresh()
    try:
        results = audit_folder(args.models, args.data, args.out, eps=args.eps, budget=args.budget, seed=args.seed,
                               checks=args.checks, fail_on=args.fail_on, address=args.scheduler,
                               n_workers=args.workers, serial=args.serial, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for row in summary_rows(results):
        print(f"{row['model']}: {row['result']}" + (f" ({row['failed_gates']})" if row["failed_gates"] else "")
              + (f" ({row['error']})" if row["error"] else ""))
    print(f"summary in {args.out}/batch.md")
    if any(not r.ok for r in results):
        return 2
    return 0 if all(r.value["passed"] for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (taught in 10_workbench)."""
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ["MODELSEC_PROGRESS"] = "0"  # one progress bar, the audit's: none for the copies it trains
    try:
        if argv[:1] == ["batch"]:
            return main_batch(argv[1:])
        return main_audit(argv)
    except ValueError as e:  # ValidationError and GateRefusal are ValueErrors: bad input
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
