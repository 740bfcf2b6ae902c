"""The workbench: audit a model you bring against a data set you bring (taught in 10_workbench).

- :mod:`utils.audit.inputs`: ``load_model`` (module code + safetensors weights through the load
  gate of 07_secure_deployment; pickles and TorchScript refused), ``load_model_spec`` /
  ``save_model`` (a model folder), ``load_data`` (``.npz`` or CSV, checked);
- :mod:`utils.audit.checks`: the checks (clean accuracy, robustness, backdoor scan with a trigger
  search, membership inference, extraction cost, drift baseline), their thresholds and budgets;
- :mod:`utils.audit.scorecard`: ``run_audit`` -> ``Scorecard`` (JSON ``modelsec-scorecard/1``,
  Markdown, HTML, the audit trail), ``diff``;
- :mod:`utils.audit.batch`: a folder of models audited in parallel through Dask (``utils.parallel``);
- ``python -m utils.audit``: the command line.
"""
from utils.audit.batch import audit_folder, audit_task
from utils.audit.checks import (BUDGETS, CHECKS, DEFAULT_GATES, MIN_SAMPLES, THRESHOLDS, CheckResult, anomaly_index,
                                bootstrap, reference_outputs, trigger_search, wilson)
from utils.audit.inputs import (AuditData, LoadedModel, data_from_arrays, load_data, load_model, load_model_spec,
                                save_data, save_model)
from utils.audit.scorecard import SCHEMA, Scorecard, diff, diff_markdown, run_audit, schema, validate_record

__all__ = ["AuditData", "BUDGETS", "CHECKS", "CheckResult", "DEFAULT_GATES", "LoadedModel", "MIN_SAMPLES", "SCHEMA",
           "Scorecard", "THRESHOLDS", "anomaly_index", "audit_folder", "audit_task", "bootstrap", "data_from_arrays",
           "diff", "diff_markdown", "load_data", "load_model", "load_model_spec", "reference_outputs", "run_audit",
           "save_data", "save_model", "schema", "trigger_search", "validate_record", "wilson"]
