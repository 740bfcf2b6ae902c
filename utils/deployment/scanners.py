"""Three model-file scanners behind one verdict: modelscan, picklescan and fickling.

Each reads the pickle opcodes of a file *without* unpickling it and judges the callables
it names (a deny list for modelscan and picklescan, an analysis of the decompiled program
for fickling). :func:`scan` runs one by name, :func:`scan_all` all three; each returns a
:class:`Verdict` (``safe`` / ``unsafe`` / ``error``, the findings, and whether the scanner
looked inside the file at all). Scanners are useful and fallible: a callable missing from
a deny list passes (see ``via="pathlib.Path.touch"`` in
:func:`utils.deployment.serialization.make_malicious_pickle`), and fickling flags every
ordinary torch checkpoint because tensors are rebuilt by torch functions.

All three run through their Python APIs, offline. Taught in 07_secure_deployment.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from utils import validation as v
from utils.deployment.serialization import existing_file

SCANNERS = ("modelscan", "picklescan", "fickling")
VERDICTS = ("safe", "unsafe", "error")


@dataclass(frozen=True)
class Verdict:
    """One scanner's judgement of one file (taught in 07_secure_deployment).

    Attributes:
        scanner: ``"modelscan"``, ``"picklescan"`` or ``"fickling"``.
        verdict: ``"safe"`` (nothing the scanner counts as dangerous), ``"unsafe"`` or
            ``"error"`` (the scanner could not read the file).
        findings: one line per thing the scanner reported (dangerous or merely suspicious).
        scanned: whether the scanner found something to look at (modelscan skips formats
            it does not know, e.g. safetensors, and then says nothing).
    """

    scanner: str
    verdict: str
    findings: tuple[str, ...] = field(default_factory=tuple)
    scanned: bool = True

    @property
    def safe(self) -> bool:
        """``verdict == "safe"``."""
        return self.verdict == "safe"


def scan_modelscan(path: str | Path) -> Verdict:
    """Scan a file with ProtectAI's modelscan (``ModelScan().scan``): ``unsafe`` when it reports
    any issue, ``error`` when it reports an error (taught in 07_secure_deployment)."""
    path = existing_file(path, "path", "scan_modelscan")
    from modelscan.modelscan import ModelScan

    logging.getLogger("modelscan").setLevel(logging.ERROR)
    report = ModelScan().scan(str(path))
    issues = report.get("issues", [])
    errors = report.get("errors", [])
    findings = sorted(f"{i.get('severity')}: {i.get('module')}.{i.get('operator')} ({i.get('source')})"
                      for i in issues)
    findings += [f"error: {e.get('description', e)}" for e in errors]
    scanned = report.get("summary", {}).get("scanned", {}).get("total_scanned", 0) > 0
    if not scanned and not issues and not errors:
        findings.append(f"not scanned: modelscan does not scan this format ({path.suffix or 'no suffix'})")
    verdict = "unsafe" if issues else "error" if errors else "safe"
    return Verdict("modelscan", verdict, tuple(findings), scanned)


def scan_picklescan(path: str | Path, *, strict: bool = False) -> Verdict:
    """Scan a file with picklescan (``scan_file_path``): ``unsafe`` when it finds a dangerous
    global (with ``strict=True`` also a merely *suspicious* one: any callable not on its
    allow list), ``error`` when it cannot parse the file (taught in 07_secure_deployment)."""
    where = "scan_picklescan"
    path = existing_file(path, "path", where)
    if not isinstance(strict, bool):
        v.fail(where, f"strict = {strict!r}", "strict must be True or False")
    from picklescan.scanner import SafetyLevel, scan_file_path

    logging.getLogger("picklescan").setLevel(logging.CRITICAL)
    result = scan_file_path(str(path), strict=strict)
    findings = sorted(f"{g.safety.value}: {g.module}.{g.name}" for g in result.globals
                      if g.safety != SafetyLevel.Innocuous)
    if result.scan_err:
        findings.append("error: picklescan could not parse the file")
    if result.scan_err and not result.infected_files:
        verdict = "error"
    else:
        verdict = "unsafe" if result.infected_files or result.issues_count else "safe"
    return Verdict("picklescan", verdict, tuple(findings), bool(result.globals) or result.scanned_files > 0)


def scan_fickling(path: str | Path) -> Verdict:
    """Scan a torch checkpoint with Trail of Bits' fickling (``fickling.pytorch.PyTorchModelWrapper``
    and its default safety analysis): ``safe`` only when the analysis says *likely safe*;
    ``error`` when the file is not a PyTorch file fickling can open (taught in 07_secure_deployment)."""
    path = existing_file(path, "path", "scan_fickling")
    from fickling.analysis import Severity, check_safety
    from fickling.pytorch import PyTorchModelWrapper

    try:
        pickled = PyTorchModelWrapper(path).pickled
    except Exception as e:  # fickling raises assorted errors on a file it cannot open
        why = type(e).__name__ + (f": {str(e).splitlines()[0][:200]}" if str(e).strip() else "")
        return Verdict("fickling", "error", (f"error: fickling could not open the file as a PyTorch file ({why})",),
                       False)
    results = check_safety(pickled)
    findings = [f"{r.severity.name}: {r.message}" for r in results.results if r.severity > Severity.LIKELY_SAFE]
    findings.insert(0, f"severity {results.severity.name}")
    verdict = "safe" if results.severity == Severity.LIKELY_SAFE else "unsafe"
    return Verdict("fickling", verdict, tuple(findings))


_SCAN = {"modelscan": scan_modelscan, "picklescan": scan_picklescan, "fickling": scan_fickling}


def scan(path: str | Path, scanner: str = "picklescan") -> Verdict:
    """Scan ``path`` with one of :data:`SCANNERS` (taught in 07_secure_deployment)."""
    v.choice(scanner, "scanner", "scan", SCANNERS)
    return _SCAN[scanner](path)


def scan_all(path: str | Path) -> dict[str, Verdict]:
    """Every scanner's :class:`Verdict` on ``path``, by scanner name (taught in 07_secure_deployment)."""
    existing_file(path, "path", "scan_all")
    return {name: _SCAN[name](path) for name in SCANNERS}


def verdict_table(files: dict[str, str | Path]) -> list[dict[str, str]]:
    """One row per file: its name and each scanner's verdict (taught in 07_secure_deployment)."""
    if not isinstance(files, dict) or not files:
        v.fail("verdict_table", f"files is {type(files).__name__}", "files must be a non-empty dict name -> path")
    rows = []
    for name, path in files.items():
        verdicts = scan_all(path)
        rows.append({"file": str(name), **{s: verdicts[s].verdict for s in SCANNERS}})
    return rows

