"""An ML bill of materials: what went into a model, as a CycloneDX 1.6 document.

:func:`mlbom` describes the model file (a ``machine-learning-model`` component with its
sha256, the training configuration as properties), each data set (a ``data`` component
with its sha256) and the Python packages it was built with (``library`` components with
the installed version and a ``pkg:pypi`` package URL), records that the model depends on
all of them, and validates the JSON against the CycloneDX 1.6 schema
(``cyclonedx-python-lib``'s ``JsonStrictValidator``, offline). :func:`validate_mlbom`
checks a document again, e.g. after it was edited or read back.

Taught in 07_secure_deployment.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import re
import uuid
from pathlib import Path
from typing import Any, Iterable

from utils import validation as v
from utils.deployment.serialization import existing_file, sha256_file
from utils.paths import ROOT

LOCK_FILE = ROOT / "requirements.lock"
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


def locked_packages(lock_file: str | Path = LOCK_FILE) -> dict[str, str]:
    """The ``name==version`` pins of a uv/pip lock file, by name (taught in 07_secure_deployment)."""
    lock_file = existing_file(lock_file, "lock_file", "locked_packages")
    pins = {}
    for line in lock_file.read_text().splitlines():
        m = _LOCK_LINE.match(line.strip())
        if m:
            pins[m.group(1)] = m.group(2)
    return pins


def _packages(packages: Iterable[str] | None, where: str) -> list[tuple[str, str, str | None]]:
    """(name, installed version, locked version or None) for each installed distribution."""
    locked = locked_packages() if LOCK_FILE.is_file() else {}
    if packages is None:
        names = sorted(locked)
    else:
        if isinstance(packages, str) or not all(isinstance(p, str) and p for p in packages):
            v.fail(where, f"packages = {packages!r}", "packages must be a list of distribution names, or None")
        names = sorted(set(packages))
    normalized = {re.sub(r"[-_.]+", "-", k).lower(): val for k, val in locked.items()}
    out = []
    for name in names:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if packages is not None:
                v.fail(where, f"package '{name}' is not installed", "name installed distributions only")
            continue  # a lock entry for another platform (e.g. appnope on macOS)
        out.append((name, version, normalized.get(re.sub(r"[-_.]+", "-", name).lower())))
    return out


def _prop_value(value: Any, where: str, key: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        v.fail(where, f"config['{key}'] is a {type(value).__name__}",
               "config values must be JSON values (numbers, strings, lists, dicts)")


def mlbom(model_path: str | Path, datasets: dict[str, str | Path], config: dict[str, Any],
          packages: Iterable[str] | None = None, *, name: str | None = None, version: str = "1",
          timestamp: _dt.datetime | None = None) -> dict[str, Any]:
    """A CycloneDX 1.6 ML-BOM of a model file, validated against the schema.

    Args:
        model_path: the model file (e.g. safetensors); its sha256 goes in the document.
        datasets: data set name -> file; each becomes a ``data`` component with its sha256.
        config: the training configuration (name -> JSON value); each entry becomes a
            property ``modelsec:config:<name>`` of the model component.
        packages: distribution names to list; ``None``: every distribution pinned in
            ``requirements.lock`` that is installed here (installed version, and the locked
            one as a property).
        name: the model's name (default: the file name); ``version``: its version.
        timestamp: the document's time (default: now, UTC).

    Returns:
        the document as a dict (``json.dumps`` it to write it). The serial number is derived
        from the model's sha256 and the timestamp.

    Taught in 07_secure_deployment.
    """
    where = "mlbom"
    model_path = existing_file(model_path, "model_path", where)
    if not isinstance(datasets, dict):
        v.fail(where, f"datasets is a {type(datasets).__name__}", "datasets must be a dict name -> file path")
    if not isinstance(config, dict) or not all(isinstance(k, str) and k for k in config):
        v.fail(where, f"config = {config!r}", "config must be a dict with non-empty string keys")
    if timestamp is None:
        timestamp = _dt.datetime.now(_dt.timezone.utc)
    elif not isinstance(timestamp, _dt.datetime):
        v.fail(where, f"timestamp is a {type(timestamp).__name__}", "timestamp must be a datetime or None")
    if not isinstance(version, str) or not version:
        v.fail(where, f"version = {version!r}", "version must be a non-empty string")
    name = model_path.name if name is None else name
    if not isinstance(name, str) or not name:
        v.fail(where, f"name = {name!r}", "name must be a non-empty string or None")
    data_files = {}
    for dname, dpath in datasets.items():
        if not isinstance(dname, str) or not dname:
            v.fail(where, f"data set name {dname!r}", "data set names must be non-empty strings")
        data_files[dname] = existing_file(dpath, f"datasets['{dname}']", where)
    props = {k: _prop_value(val, where, k) for k, val in config.items()}
    libs = _packages(packages, where)

    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    model_sha = sha256_file(model_path, where)
    model = Component(
        name=name, version=version, type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref=f"model:{name}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=model_sha)],
        properties=[Property(name=f"modelsec:config:{k}", value=val) for k, val in props.items()]
        + [Property(name="modelsec:file", value=model_path.name)])
    data = [Component(name=dname, type=ComponentType.DATA, bom_ref=f"data:{dname}",
                      hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha256_file(p, where))],
                      properties=[Property(name="modelsec:file", value=p.name)])
            for dname, p in data_files.items()]
    library = [Component(name=lname, version=lversion, type=ComponentType.LIBRARY, bom_ref=f"pypi:{lname}",
                         purl=PackageURL(type="pypi", name=lname.lower(), version=lversion),
                         properties=[Property(name="modelsec:locked_version", value=locked)] if locked else None)
               for lname, lversion, locked in libs]
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"modelsec-mlbom:{model_sha}:{timestamp.isoformat()}")
    bom = Bom(serial_number=serial, metadata=BomMetaData(component=model, timestamp=timestamp),
              components=data + library)
    bom.register_dependency(model, data + library)
    text = JsonV1Dot6(bom).output_as_string(indent=1)
    doc = json.loads(text)
    validate_mlbom(doc)
    return doc


def validate_mlbom(doc: dict[str, Any] | str) -> None:
    """Validate a CycloneDX 1.6 JSON document (a dict or its text) against the schema, strictly
    (no unknown fields); raises a :class:`utils.validation.ValidationError` naming the first
    problem (taught in 07_secure_deployment)."""
    where = "validate_mlbom"
    if isinstance(doc, dict):
        text = json.dumps(doc)
    elif isinstance(doc, str):
        text = doc
    else:
        v.fail(where, f"doc is a {type(doc).__name__}", "doc must be a dict or a JSON string")
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        detail = getattr(error, "data", None)
        message = getattr(detail, "message", None) or str(error)
        v.fail(where, f"the document does not follow the CycloneDX 1.6 schema ({message[:300]})",
               "it must validate against CycloneDX 1.6 (make it with mlbom)")

