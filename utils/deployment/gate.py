"""A load gate: four checks a model file passes, in order, before it becomes a model.

1. ``hash``: the file's sha256 equals the pinned one (the bytes are the ones you reviewed);
2. ``signature``: the publisher's signature verifies with their public key (the bytes are
   the ones *they* released);
3. ``scan``: a safetensors file needs no scanner (it holds no code) but must parse as one;
   anything else is scanned with picklescan (strict: any callable off its allow list counts)
   and modelscan, and refused if either objects;
4. ``load``: only safetensors are loaded, strictly, into the model from ``model_factory()``
   (every key, shape and dtype must match); a pickle is never unpickled, even one the
   scanners passed, since scanners miss payloads.

:func:`load_gate` stops at the first failing step with a :class:`GateRefusal`.
Taught in 07_secure_deployment.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from utils import validation as v
from utils.deployment.scanners import scan_modelscan, scan_picklescan
from utils.deployment.serialization import existing_file, weights_mismatch
from utils.deployment.signing import SignatureError, verify

STEPS = ("hash", "signature", "scan", "load")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _safetensors(data: bytes) -> dict | None:
    """The tensors of a safetensors file's bytes, or None if they are not one (parsing runs no code)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError, OSError):
        return None


@dataclass(frozen=True)
class GateStep:
    """One step of the gate: its name (one of :data:`STEPS`), whether it ``passed``, and
    ``detail``, what it checked or why it refused (taught in 07_secure_deployment)."""

    step: str
    passed: bool
    detail: str


class GateRefusal(ValueError):
    """The gate refused a file: ``.step`` (one of :data:`STEPS`), ``.reason``, and ``.record``,
    the steps up to and including the refusal (taught in 07_secure_deployment)."""

    def __init__(self, path: Path, step: str, reason: str, record: list[GateStep]):
        self.path, self.step, self.reason, self.record = Path(path), step, reason, record
        super().__init__(f"load_gate: '{self.path.name}' refused at step '{step}': {reason}")


def load_gate(path: str | Path, *, sha256: str, public_key: str | Path, signature: str | Path,
              model_factory: Callable[[], nn.Module]) -> tuple[nn.Module, list[GateStep]]:
    """Load a model file only if it passes every step of the gate (module docstring).

    Args:
        path: the model file.
        sha256: the pinned sha256 of the file (64 lowercase hex digits).
        public_key: the publisher's PEM public key.
        signature: the signature bundle the publisher made with :func:`utils.deployment.signing.sign`.
        model_factory: a function with no arguments that builds the (untrained) model to load into.

    Returns:
        ``(model, record)``: the model in eval mode and one :class:`GateStep` per step.

    Raises:
        GateRefusal: at the first failing step, with its reason. Bad arguments raise
        :class:`utils.validation.ValidationError` before any step runs.

    Taught in 07_secure_deployment.
    """
    where = "load_gate"
    path = existing_file(path, "path", where)
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256.lower()):
        v.fail(where, f"sha256 = {sha256!r} is not a sha256", "sha256 must be 64 hex digits (sha256_file(path))")
    public_key = existing_file(public_key, "public_key", where)
    signature = existing_file(signature, "signature", where)
    if not callable(model_factory) or isinstance(model_factory, nn.Module):
        v.fail(where, f"model_factory is a {type(model_factory).__name__}",
               "model_factory must be a function with no arguments that returns a torch.nn.Module")
    record: list[GateStep] = []

    def refuse(step: str, reason: str):
        record.append(GateStep(step, False, reason))
        raise GateRefusal(path, step, reason, list(record))

    # 1. hash pinned. The bytes hashed here are the bytes loaded in step 4 (read once: a file
    # swapped on disk between the steps cannot slip in)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(actual, sha256.lower()):
        refuse("hash", f"its sha256 is {actual[:16]}…, the pinned one is {sha256.lower()[:16]}…")
    record.append(GateStep("hash", True, f"sha256 {actual[:16]}… equals the pinned one"))

    # 2. signature verified
    try:
        verify(path, public_key, signature)
    except SignatureError as e:
        refuse("signature", e.reason)
    record.append(GateStep("signature", True, f"signature '{signature.name}' verifies with '{public_key.name}'"))

    # 3. scanner verdict
    state = _safetensors(data)
    safetensors = state is not None
    if safetensors:
        record.append(GateStep("scan", True, "a safetensors file (tensors and a JSON header, no code): "
                                             "nothing to scan"))
    else:
        verdicts = [scan_picklescan(path, strict=True), scan_modelscan(path)]
        objections = [f"{x.scanner} says {x.verdict}" + (f" ({'; '.join(x.findings)})" if x.findings else "")
                      for x in verdicts if not x.safe]
        if objections:
            refuse("scan", "; ".join(objections))
        record.append(GateStep("scan", True, "not safetensors; picklescan (strict) and modelscan found nothing"))

    # 4. safe load
    if not safetensors:
        refuse("load", "not a safetensors file: the gate never unpickles a file, even one the scanners passed")
    model = model_factory()
    if not isinstance(model, nn.Module):
        v.fail(where, f"model_factory() returned a {type(model).__name__}", "it must return a torch.nn.Module")
    problems = weights_mismatch(state, model)
    if problems:
        refuse("load", "the tensors do not fit the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    record.append(GateStep("load", True, f"{len(state)} tensors loaded (keys, shapes and dtypes match)"))
    return model.eval(), record
