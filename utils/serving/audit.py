"""The API's audit log: one JSON line per access decision (taught in 07_secure_deployment).

Each line holds the time (UTC, ISO 8601), the client, its scopes, the sha256 of the input,
the decision (``allow`` / ``deny``), the HTTP status, the reason, the number of images and
the classes answered. Lessons 08 (monitoring) and 09 (governance) read it back with
:func:`read_audit`. Lines are appended and flushed one at a time under a lock, so that
concurrent requests never interleave and a crash loses at most the line being written.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Iterable

from utils import validation as v

FIELDS = ("time", "client", "scopes", "input_sha256", "decision", "status", "reason", "n_images", "output_class")


def sha256_of(data: bytes) -> str:
    """The hex sha256 of some bytes (taught in 07_secure_deployment)."""
    return hashlib.sha256(data).hexdigest()


class AuditLog:
    """Append-only JSON-lines log of access decisions (taught in 07_secure_deployment).

    Args:
        path: the file; its folder is created. None keeps the entries in memory only.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, *, client: str | None, scopes: Iterable[str] = (), input_sha256: str | None = None,
               decision: str, status: int, reason: str, n_images: int | None = None,
               output_class: list[int] | None = None) -> dict[str, Any]:
        """Append one decision and return its entry."""
        v.choice(decision, "decision", "AuditLog.record", ("allow", "deny"))
        entry = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
                 "client": client, "scopes": sorted(scopes), "input_sha256": input_sha256,
                 "decision": decision, "status": int(status), "reason": str(reason),
                 "n_images": n_images, "output_class": output_class}
        line = json.dumps(entry, ensure_ascii=False)
        with self._lock:
            self.entries.append(entry)
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
                    f.flush()
        return entry

    def tail(self, n: int = 20) -> list[dict[str, Any]]:
        """The last ``n`` entries."""
        n = v.integer(n, "n", "AuditLog.tail", 0, 100_000)
        with self._lock:
            return list(self.entries[-n:]) if n else []


def read_audit(path: str | Path) -> list[dict[str, Any]]:
    """The entries of an audit log file; a line that is not a complete entry raises a
    ``ValidationError`` naming its line number (taught in 07_secure_deployment)."""
    path = Path(path)
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            v.fail("read_audit", f"{path.name} line {i} is not JSON ({e.msg})", "each line must be one JSON entry")
        missing = [k for k in FIELDS if k not in entry]
        if missing:
            v.fail("read_audit", f"{path.name} line {i} lacks {missing}", f"each entry has {list(FIELDS)}")
        out.append(entry)
    return out
