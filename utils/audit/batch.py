"""Audit a folder of models at once through Dask distributed (taught in 10_workbench).

Each model folder (``model.json`` + ``weights.safetensors``, see :func:`utils.audit.save_model`)
becomes one task of :func:`utils.parallel.map_tasks`: on a local cluster by default, or on an
existing scheduler (``address="tcp://host:8786"``, or ``$MODELSEC_DASK_SCHEDULER``) with no code
change. Every worker loads the model through the load gate, audits it with the same settings and
writes its scorecard; a refused or failing model is one failed result, not a failed batch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from utils import validation as v
from utils.audit.inputs import SPEC_NAME


def model_folders(models_dir: str | Path) -> list[Path]:
    """The model folders under ``models_dir`` (each holding ``model.json``), sorted by name
    (taught in 10_workbench)."""
    root = Path(models_dir)
    if not root.is_dir():
        v.fail("audit_folder", f"models = '{root}' is not a folder", "give a folder with one sub-folder per model")
    found = sorted(p.parent for p in root.glob(f"*/{SPEC_NAME}"))
    if not found:
        v.fail("audit_folder", f"'{root}' holds no model folders (*/{SPEC_NAME})",
               "save each model with utils.audit.save_model(model, folder, module=...)")
    return found


def audit_task(item: dict) -> dict:
    """One model's audit, run on a worker: load through the gate, audit, write the scorecard
    (JSON, Markdown, HTML) into ``item["out"]``; returns the scorecard's record (taught in 10_workbench).

    ``item``: ``model`` (folder), ``data`` (path), ``out`` (folder or None), ``eps``, ``budget``,
    ``seed``, ``checks``, ``fail_on``.
    """
    import torch

    from utils.audit.inputs import load_data, load_model_spec
    from utils.audit.scorecard import run_audit
    from utils.course.setup import setup

    setup(item.get("seed", 0), plots=False)  # one thread, deterministic: the same numbers as a serial run
    torch.set_num_threads(1)
    model = load_model_spec(item["model"])
    data = load_data(item["data"], value_range=tuple(item.get("value_range", (0.0, 1.0))))
    card = run_audit(model, data, eps=item.get("eps", 0.1), budget=item.get("budget", "quick"),
                     seed=item.get("seed", 0), checks=item.get("checks"), fail_on=item.get("fail_on"))
    if item.get("out"):
        out = Path(item["out"])
        out.mkdir(parents=True, exist_ok=True)
        card.to_json(out / "scorecard.json")
        card.to_markdown(out / "scorecard.md")
        card.to_html(out / "scorecard.html")
    return card.to_dict()


def audit_folder(models_dir: str | Path, data_path: str | Path, out_dir: str | Path | None = None, *,
                 eps: float = 0.1, budget: str = "quick", seed: int = 0, checks: Any = None, fail_on: Any = None,
                 address: str | None = None, n_workers: int = 2, client: Any = None, serial: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> list:
    """Audit every model folder under ``models_dir`` against one data set (taught in 10_workbench).

    Returns one :class:`utils.parallel.TaskResult` per model (in name order): ``value`` is the
    scorecard's record (``Scorecard.from_dict`` rebuilds it), ``error`` why a model failed (a load
    gate refusal, bad data). ``serial=True`` runs in this process, one after another (the
    reference the parallel run must equal). With ``out_dir``, each model's scorecard goes to
    ``out_dir/<model folder name>/`` and a summary to ``out_dir/batch.json`` and ``batch.md``.
    """
    from utils import parallel

    folders = model_folders(models_dir)
    data_path = Path(data_path)
    if not data_path.is_file():
        v.fail("audit_folder", f"data = '{data_path}' is not a file", "give the evaluation set (.npz or .csv)")
    items = [{"model": str(f.resolve()), "data": str(data_path.resolve()), "eps": eps, "budget": budget, "seed": seed,
              "checks": checks, "fail_on": fail_on,
              "out": None if out_dir is None else str((Path(out_dir) / f.name).resolve())} for f in folders]
    if serial:
        results = parallel.serial_tasks(audit_task, items)
    else:
        import warnings

        with warnings.catch_warnings():  # a busy dashboard port moves elsewhere; nothing to act on
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            results = parallel.map_tasks(audit_task, items, client=client, address=address, n_workers=n_workers,
                                         progress=progress)
    if out_dir is not None:
        write_summary(results, out_dir)
    return results


def summary_rows(results: list) -> list[dict]:
    """One row per model: name, verdict, failed gates and each check's value (taught in 10_workbench)."""
    rows = []
    for r in results:
        name = Path(r.item["model"]).name
        if not r.ok:
            rows.append({"model": name, "result": "ERROR", "failed_gates": "", "error": r.error})
            continue
        row = {"model": name, "result": "PASS" if r.value["passed"] else "FAIL",
               "failed_gates": ", ".join(r.value["failed_gates"]), "error": ""}
        for c in r.value["checks"]:
            row[c["name"]] = c["value"]
        row["backdoor_target"] = next((c["details"].get("target_class") for c in r.value["checks"]
                                       if c["name"] == "backdoor"), None)
        rows.append(row)
    return rows


def write_summary(results: list, out_dir: str | Path) -> Path:
    """``batch.json`` and ``batch.md`` in ``out_dir``: the summary rows (taught in 10_workbench)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(results)
    (out / "batch.json").write_text(json.dumps(rows, indent=1) + "\n")
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join("" if r.get(c) is None else
                                       (f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r[c])) for c in cols) + " |")
    (out / "batch.md").write_text("\n".join(lines) + "\n")
    return out / "batch.md"
