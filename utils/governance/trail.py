"""An append-only audit trail: hash-chained JSON lines, each entry signed with Ed25519.

Every entry of the trail records one event of a model's life (a data set, a training run,
an evaluation, a signature, a deployment, an access decision, an incident, a release) as
one JSON line::

    {"index": 3, "time": "...", "kind": "evaluation", "actor": "ci", "data": {...},
     "prev": <hash of entry 2>, "hash": <sha256 of this entry>, "signature": <Ed25519 over hash>}

``hash`` is the sha256 of the canonical JSON (sorted keys, no spaces) of the entry without
``hash`` and ``signature``; ``prev`` is the hash of the entry before ("0" * 64 for the first),
so changing, removing, adding or moving any entry breaks the chain, and only the holder of
the private key can sign a new entry. A signed *head* (the count and the last hash) lets a
verifier notice entries cut off the end, which a chain alone cannot show.

:class:`AuditTrail` appends (the file is opened in append mode and each entry flushed and
fsynced); :func:`verify` checks a file and names the first bad entry and what was done to it;
:func:`tamper` writes tampered copies for the lesson and the lab. Only ``cryptography`` and
the standard library are imported (pandas only for :func:`table`).

Taught in 09_governance_and_audit.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from utils import validation as v

#: The kinds of entry a trail holds.
KINDS = ("data", "training", "evaluation", "signature", "deployment", "access", "incident", "release",
         "rollback", "revocation", "scorecard")
#: The kinds of problem :func:`verify` reports.
PROBLEMS = ("malformed", "edited", "bad signature", "deleted", "inserted", "reordered", "truncated")
#: The fields of an entry, in order; the hash covers all but the last two.
FIELDS = ("index", "time", "kind", "actor", "data", "prev", "hash", "signature")
GENESIS = "0" * 64
#: The largest ``data`` of one entry, as canonical JSON.
MAX_DATA_BYTES = 64 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_SEED_LABEL = b"modelsec-workbench/governance/trail-key/"


# --------------------------------------------------------------------------- keys and clocks


def signing_key(seed: int | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key: derived from ``seed`` (the sha256 of a fixed label and the seed,
    so the course's trails are the same on every machine), or random when ``seed`` is None
    (what a real trail uses; keep it secret) (taught in 09_governance_and_audit)."""
    if seed is None:
        return Ed25519PrivateKey.generate()
    seed = v.seed(seed, "signing_key")
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(_SEED_LABEL + str(seed).encode()).digest())


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The 32-byte raw public key as 64 hex digits: what a verifier is given (taught in
    09_governance_and_audit). A private key gives its public key."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        v.fail("public_key_hex", f"key is a {type(key).__name__}", "key must be an Ed25519 key (from signing_key)")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_public_key(text: str) -> Ed25519PublicKey:
    """The Ed25519 public key written by :func:`public_key_hex` (64 hex digits) (taught in
    09_governance_and_audit)."""
    where = "load_public_key"
    if not isinstance(text, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", text.strip()):
        shown = text if not isinstance(text, str) else (text[:20] + "..." if len(text) > 20 else text)
        v.fail(where, f"public key {shown!r} is not 64 hex digits",
               "give the raw Ed25519 public key as 64 hex digits (public_key_hex)")
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.strip()))


def _public_key(key: Any, where: str) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PrivateKey):
        return key.public_key()
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, str):
        return load_public_key(key)
    v.fail(where, f"public_key is a {type(key).__name__}",
           "public_key must be an Ed25519 public key or its 64 hex digits (public_key_hex)")


def _private_key(key: Any, where: str) -> Ed25519PrivateKey:
    if not isinstance(key, Ed25519PrivateKey):
        v.fail(where, f"key is a {type(key).__name__}", "key must be an Ed25519 private key (from signing_key)")
    return key


def utc_now() -> _dt.datetime:
    """The current time in UTC: the default clock of a trail (taught in 09_governance_and_audit)."""
    return _dt.datetime.now(_dt.timezone.utc)


def _datetime(value: Any, name: str, where: str) -> _dt.datetime:
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value)
        except ValueError:
            v.fail(where, f"{name} = {value!r} is not an ISO 8601 time",
                   f"{name} must be like '2026-01-01T00:00:00+00:00'")
    if not isinstance(value, _dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        v.fail(where, f"{name} = {value!r} is not a time zone-aware datetime",
               f"{name} must be a datetime with a time zone (e.g. datetime.timezone.utc)")
    return value.astimezone(_dt.timezone.utc)


def step_clock(start: _dt.datetime | str = "2026-01-05T09:00:00+00:00",
               step_seconds: float = 60.0) -> Callable[[], _dt.datetime]:
    """A clock for reproducible trails: the first call returns ``start``, each next call
    ``step_seconds`` later (taught in 09_governance_and_audit)."""
    where = "step_clock"
    start = _datetime(start, "start", where)
    step = v.real(step_seconds, "step_seconds", where, 0.0, 86_400.0 * 366)
    state = {"n": 0}
    lock = threading.Lock()

    def clock() -> _dt.datetime:
        with lock:
            n = state["n"]
            state["n"] += 1
        return start + _dt.timedelta(seconds=step * n)

    return clock


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------- entries


def canonical(obj: Any) -> str:
    """The canonical JSON the trail hashes: sorted keys, no spaces, no NaN (taught in
    09_governance_and_audit)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One entry of an audit trail (taught in 09_governance_and_audit).

    ``index`` (0, 1, ...), ``time`` (ISO 8601, UTC), ``kind`` (one of :data:`KINDS`),
    ``actor``, ``data`` (a JSON object), ``prev`` (the hash of the entry before, "0" * 64
    for the first), ``hash`` (sha256 of the canonical JSON of the fields before it) and
    ``signature`` (Ed25519 over the hash, hex)."""

    index: int
    time: str
    kind: str
    actor: str
    data: dict
    prev: str
    hash: str
    signature: str

    def __hash__(self) -> int:
        return hash(self.hash)

    def body(self) -> dict[str, Any]:
        """The fields the hash covers."""
        return {"index": self.index, "time": self.time, "kind": self.kind, "actor": self.actor,
                "data": self.data, "prev": self.prev}

    def content_hash(self) -> str:
        """The hash recomputed from the content (equal to ``hash`` unless someone edited it)."""
        return _sha256(canonical(self.body()))

    def line(self) -> str:
        """The entry as the one JSON line the file holds."""
        return canonical(asdict(self))

    def summary(self, width: int = 80) -> str:
        """A one-line summary of ``data``: ``key=value, ...`` cut to ``width`` characters."""
        parts = []
        for k, val in self.data.items():
            text = val if isinstance(val, str) else canonical(val)
            parts.append(f"{k}={text}")
        text = ", ".join(parts)
        return text if len(text) <= width else text[:width - 1] + "…"

    @classmethod
    def from_line(cls, line: str) -> "Entry":
        """An entry read back from its JSON line; raises ``ValueError`` naming what is wrong
        (not JSON, a missing field, a field of the wrong type)."""
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"not JSON ({e.msg})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"a JSON {type(raw).__name__}, not an object")
        missing = [f for f in FIELDS if f not in raw]
        if missing:
            raise ValueError(f"lacks the fields {missing}")
        extra = sorted(set(raw) - set(FIELDS))
        if extra:
            raise ValueError(f"has unknown fields {extra}")
        if not v.is_int(raw["index"]) or raw["index"] < 0:
            raise ValueError(f"index = {raw['index']!r} is not an integer >= 0")
        for name in ("time", "kind", "actor"):
            if not isinstance(raw[name], str):
                raise ValueError(f"{name} is not a string")
        if not isinstance(raw["data"], dict):
            raise ValueError("data is not a JSON object")
        for name in ("prev", "hash"):
            if not isinstance(raw[name], str) or not _HEX64.fullmatch(raw[name]):
                raise ValueError(f"{name} is not 64 hex digits")
        if not isinstance(raw["signature"], str) or not _HEX128.fullmatch(raw["signature"]):
            raise ValueError("signature is not 128 hex digits")
        return cls(**{f: raw[f] for f in FIELDS})


def _sign(key: Ed25519PrivateKey, hash_hex: str) -> str:
    return key.sign(bytes.fromhex(hash_hex)).hex()


def _signed(key: Ed25519PublicKey, hash_hex: str, signature_hex: str) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), bytes.fromhex(hash_hex))
        return True
    except (InvalidSignature, ValueError):
        return False


def make_entry(key: Ed25519PrivateKey, index: int, time: str, kind: str, actor: str, data: dict,
               prev: str) -> Entry:
    """Build and sign one entry (no checks: :meth:`AuditTrail.append` is the checked way in;
    :func:`tamper` uses this to forge) (taught in 09_governance_and_audit)."""
    body = {"index": index, "time": time, "kind": kind, "actor": actor, "data": data, "prev": prev}
    h = _sha256(canonical(body))
    return Entry(index, time, kind, actor, data, prev, h, _sign(key, h))


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_entries(path: str | Path) -> list[Entry]:
    """The entries of a trail file, without checking the chain or the signatures (use
    :func:`verify` for that); a line that is not an entry raises a ``ValidationError`` naming
    its line number (taught in 09_governance_and_audit)."""
    path = v.existing_file(path, "path", "read_entries")
    out = []
    for i, line in enumerate(_lines(path), start=1):
        try:
            out.append(Entry.from_line(line))
        except ValueError as e:
            v.fail("read_entries", f"{path.name} line {i} is not a trail entry: {e}",
                   "each line must be one entry as AuditTrail.append writes it")
    return out




# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a trail (taught in 09_governance_and_audit): ``index`` is the
    0-based position in the file (line number - 1) where it was found (for ``deleted`` and
    ``truncated``: where the missing entries belong; None for a problem of the head itself),
    ``kind`` one of :data:`PROBLEMS`, ``detail`` what was seen."""

    index: int | None
    kind: str
    detail: str


@dataclass
class Verification:
    """What :func:`verify` found (taught in 09_governance_and_audit): ``ok``, the number of
    ``entries`` (lines) read, the ``problems`` in file order, ``first_bad`` (the position of the
    first bad entry, None when ok), ``tail_checked`` (whether a signed head was given, so
    that entries cut off the end would have been seen) and ``lines``, each line as parsed (an
    :class:`Entry`, or None for a malformed line), for :meth:`table`."""

    ok: bool
    entries: int
    problems: list[Problem] = field(default_factory=list)
    first_bad: int | None = None
    tail_checked: bool = False

    def summary(self) -> str:
        """One line: ``ok`` with the count, or the number of problems and the first one."""
        tail = "tail checked against the signed head" if self.tail_checked else \
            "tail not checked: no signed head given"
        if self.ok:
            return f"ok: {self.entries} entries, chain and signatures verify ({tail})"
        first = min(self.problems, key=lambda p: (p.index is None, p.index or 0))
        where = "the head" if first.index is None else f"entry {first.index} (line {first.index + 1})"
        return (f"NOT ok: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}, first at "
                f"{where}: {first.kind} ({first.detail}); {tail}")

    lines: list = field(default_factory=list, repr=False)

    def table(self):
        """The entries as read, one row a line of the file, for display: the position (``line``
        - 1), index, time, kind, actor, short hash, a one-line summary of the data, and
        ``problem`` (the kinds of problem found there, empty when none)."""
        import pandas as pd

        at: dict[int, list[str]] = {}
        for p in self.problems:
            if p.index is not None:
                at.setdefault(p.index, []).append(p.kind)
        rows = []
        for i, e in enumerate(self.lines):
            base = {"position": i, "index": None, "time": "", "kind": "", "actor": "", "hash": "",
                    "data": "(not an entry)"}
            if e is not None:
                base.update(index=e.index, time=e.time, kind=e.kind, actor=e.actor, hash=e.hash[:12],
                            data=e.summary())
            rows.append({**base, "problem": ", ".join(dict.fromkeys(at.get(i, [])))})
        for i in sorted(k for k in at if k >= len(self.lines)):  # missing from the end
            rows.append({"position": i, "index": None, "time": "", "kind": "", "actor": "", "hash": "",
                         "data": "(missing)", "problem": ", ".join(at[i])})
        columns = ["position", "index", "time", "kind", "actor", "hash", "data", "problem"]
        return pd.DataFrame(rows, columns=columns).set_index("position")

    def problems_table(self):
        """The problems as a DataFrame (index, kind, detail), for display."""
        import pandas as pd

        return pd.DataFrame([asdict(p) for p in self.problems], columns=["index", "kind", "detail"])

    def kinds(self) -> list[str]:
        """The kinds of problem found, in file order, each once."""
        return list(dict.fromkeys(p.kind for p in self.problems))


def _load_head(head: Any, where: str) -> dict[str, Any]:
    if isinstance(head, (str, os.PathLike)):
        p = v.existing_file(head, "head", where)
        try:
            head = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            v.fail(where, f"head file '{p.name}' is not JSON ({e.msg})",
                   "head must be written by AuditTrail.write_head")
    if not isinstance(head, dict):
        v.fail(where, f"head is a {type(head).__name__}", "head must be a dict or a file from AuditTrail.write_head")
    need = {"count": int, "last_hash": str, "time": str, "signature": str}
    for k, t in need.items():
        if k not in head or not isinstance(head[k], t) or (t is int and isinstance(head[k], bool)):
            v.fail(where, f"head lacks a valid '{k}'", f"head must hold {sorted(need)} (AuditTrail.head)")
    return head


def _head_body(head: dict[str, Any]) -> dict[str, Any]:
    return {k: val for k, val in head.items() if k != "signature"}


def verify(path: str | Path, public_key: Any, head: dict | str | Path | None = None) -> Verification:
    """Check a trail file: every line an entry, every hash matching its content, every
    signature made by ``public_key``'s holder, every entry linked to the one before; report
    the first bad entry and what was done to it (taught in 09_governance_and_audit).

    Problems (``Problem.kind``), each at the position (0-based line) where it shows first:

    - ``malformed``: a line that is not JSON or lacks a field (the line is named);
    - ``edited``: an entry's hash does not match its content (its data, time, kind, actor,
      index or prev was changed); or an entry whose hash was recomputed after a change, seen
      because the next entry still points to the original hash;
    - ``bad signature``: the signature is not by ``public_key`` (a forged or re-hashed entry);
    - ``deleted``: an entry points to a predecessor that is not in the file and indices are
      missing (reported where the missing entries belong);
    - ``inserted``: an entry that does not fit between two entries that link to each other;
    - ``reordered``: an entry whose true predecessor is elsewhere in the file (a swap or move);
    - ``truncated``: fewer entries, or another hash at the head's last position, than the
      signed ``head`` says.

    Without ``head`` the end of the file cannot be checked: cutting entries off the end (or
    deleting the last one) leaves a valid shorter chain, and ``Verification.tail_checked`` is
    False. Entries appended after the head was written are checked like the others.
    """
    where = "verify"
    path = v.existing_file(path, "path", where)
    key = _public_key(public_key, where)
    head = None if head is None else _load_head(head, where)
    lines = _lines(path)
    n = len(lines)
    problems: list[Problem] = []
    entries: list[Entry | None] = []
    for i, line in enumerate(lines):
        try:
            entries.append(Entry.from_line(line))
        except ValueError as e:
            entries.append(None)
            problems.append(Problem(i, "malformed", f"line {i + 1} is not a trail entry: {e}"))

    content_bad: set[int] = set()
    for i, e in enumerate(entries):
        if e is None:
            continue
        if e.content_hash() != e.hash:
            content_bad.add(i)
            problems.append(Problem(i, "edited", f"entry at line {i + 1}: its hash does not match its content"))
        elif not _signed(key, e.hash, e.signature):
            content_bad.add(i)
            problems.append(Problem(i, "bad signature",
                                    f"entry at line {i + 1}: its signature is not by the trail's key"))

    # where each entry's true predecessor is: the position of the entry whose hash it points to
    # (with the index before its own), -1 for the first entry
    by_hash: dict[str, int] = {}
    index_count: dict[int, int] = {}
    for i, e in enumerate(entries):
        if e is not None:
            by_hash.setdefault(e.hash, i)
            index_count[e.index] = index_count.get(e.index, 0) + 1

    def links(a: int, b: int) -> bool:
        """Entry at position b follows entry at position a (a = -1: b is the first entry)."""
        if b >= n or entries[b] is None:
            return False
        if a == -1:
            return entries[b].index == 0 and entries[b].prev == GENESIS
        if a < 0 or entries[a] is None:
            return False
        return entries[b].prev == entries[a].hash and entries[b].index == entries[a].index + 1

    def predecessor(b: int) -> int | None:
        e = entries[b]
        if e.index == 0 and e.prev == GENESIS:
            return -1
        q = by_hash.get(e.prev)
        if q is not None and entries[q].index + 1 == e.index:
            return q
        return None

    inserted: set[int] = set()
    for p, e in enumerate(entries):
        if e is None or (p > 0 and entries[p - 1] is None) or links(p - 1, p):
            continue
        if p - 1 in inserted and links(p - 2, p):
            continue  # the entry before was found to be an intruder: this link is fine
        expected = 0 if p == 0 else entries[p - 1].index + 1
        pred = predecessor(p)
        if by_hash[e.hash] != p:  # a copy of an entry seen earlier in the file: a replay
            inserted.add(p)
            problems.append(Problem(p, "inserted", f"the entry at line {p + 1} repeats the one at line "
                                                   f"{by_hash[e.hash] + 1} (a replayed copy)"))
        elif pred is not None and pred > p - 1:
            problems.append(Problem(p, "reordered", f"entry {e.index} at line {p + 1} comes before the entry it "
                                                    f"follows (line {pred + 1})"))
        elif pred is not None and pred < p - 1 and index_count.get(e.index, 0) == 1:
            problems.append(Problem(p, "reordered", f"entry {e.index} at line {p + 1} follows the entry at line "
                                                    f"{pred + 1}, not the one before it"))
        elif links(p - 1, p + 1):
            if p not in inserted:
                inserted.add(p)
                problems.append(Problem(p, "inserted", f"the entry at line {p + 1} does not belong between "
                                                       f"lines {p} and {p + 2}, which link to each other"))
        elif p >= 1 and links(p - 2, p):
            if p - 1 not in inserted:
                inserted.add(p - 1)
                problems.append(Problem(p - 1, "inserted", f"the entry at line {p} does not belong between "
                                                           f"lines {p - 1} and {p + 1}, which link to each other"))
        elif pred is None and e.index > expected:
            missing = f"entry {expected}" if e.index == expected + 1 else f"entries {expected} to {e.index - 1}"
            problems.append(Problem(p, "deleted", f"{missing} missing before line {p + 1} (entry {e.index} "
                                                  f"points to a predecessor that is not in the file)"))
        elif p - 1 in content_bad:
            problems.append(Problem(p - 1, "edited", f"entry at line {p} was changed and its hash recomputed: "
                                                     f"the next entry still points to its original hash"))
        else:
            problems.append(Problem(p, "inserted", f"entry at line {p + 1} (index {e.index}) does not follow the "
                                                   f"entry before it"))

    tail_checked = False
    if head is not None:
        if not _signed(key, _sha256(canonical(_head_body(head))), head["signature"]):
            problems.append(Problem(None, "bad signature", "the head's signature is not by the trail's key, "
                                                           "so the end of the trail cannot be checked"))
        else:
            tail_checked = True
            count = head["count"]
            # the head's last entry still in the file (perhaps moved by a problem found above): not cut
            if count > 0 and head["last_hash"] not in by_hash:
                if n < count:
                    problems.append(Problem(n, "truncated", f"the signed head counts {count} entries and ends "
                                                            f"with {head['last_hash'][:12]}, the file holds {n} "
                                                            f"without that entry"))
                else:
                    problems.append(Problem(count - 1, "truncated", f"the entry at line {count} is not the last "
                                                                    f"entry of the signed head (another hash)"))

    order = sorted(problems, key=lambda q: (q.index is None, q.index if q.index is not None else 0))
    bad = [q.index for q in order if q.index is not None]
    return Verification(ok=not order, entries=n, problems=order, first_bad=bad[0] if bad else None,
                        tail_checked=tail_checked, lines=entries)


# --------------------------------------------------------------------------- the trail


class NotInTrail(v.ValidationError, KeyError):
    """No entry of the trail has the hash asked for (a ``ValidationError`` and a
    ``KeyError``) (taught in 09_governance_and_audit)."""

    __str__ = BaseException.__str__


class AuditTrail:
    """An append-only, hash-chained, signed audit trail in a JSON-lines file (taught in
    09_governance_and_audit).

    Args:
        path: the file; created (with its folder) if missing. An existing file is verified
            with ``key``'s public key and continued; one that does not verify is refused.
        key: the Ed25519 private key that signs every entry (:func:`signing_key`).
        clock: a callable returning a time zone-aware datetime, e.g. :func:`step_clock` for
            reproducible trails (default: the current UTC time).

    One writer per file: an append refuses when the file changed since this object last
    wrote or read it.
    """

    def __init__(self, path: str | Path, key: Ed25519PrivateKey, *,
                 clock: Callable[[], _dt.datetime] | None = None):
        where = "AuditTrail"
        if not isinstance(path, (str, os.PathLike)):
            v.fail(where, f"path is a {type(path).__name__}", "path must be a path (str or pathlib.Path)")
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            v.fail(where, f"path = '{self.path}' is not a file", "path must be a trail file (JSON lines) or a new name")
        self.key = _private_key(key, where)
        if clock is not None and not callable(clock):
            v.fail(where, f"clock is a {type(clock).__name__}",
                   "clock must be a callable returning a datetime, or None")
        self.clock = clock or utc_now
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._last: Entry | None = None
        self._count = 0
        if self.path.is_file() and self.path.stat().st_size > 0:
            check = verify(self.path, self.key.public_key())
            if not check.ok:
                v.fail(where, f"'{self.path.name}' does not verify with this key: {check.summary()}",
                       "append only to an intact trail signed with the same key (keep the tampered "
                       "file as evidence and start a new trail)")
            entries = read_entries(self.path)
            self._last, self._count = entries[-1], len(entries)
        self._size = self.path.stat().st_size if self.path.is_file() else 0

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public key that verifies this trail."""
        return self.key.public_key()

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"AuditTrail('{self.path}', {self._count} entries)"

    def _time(self, where: str) -> str:
        return _iso(_datetime(self.clock(), "clock()", where))

    def append(self, kind: str, data: dict[str, Any], actor: str = "course") -> Entry:
        """Sign and append one entry; returns it (taught in 09_governance_and_audit).

        ``kind`` is one of :data:`KINDS`; ``data`` a dict with string keys of JSON values (no
        NaN), at most :data:`MAX_DATA_BYTES` as JSON; ``actor`` who or what acted (non-empty).
        ``Entry.data`` is the data as stored (tuples become lists)."""
        where = "AuditTrail.append"
        v.choice(kind, "kind", where, KINDS)
        if not isinstance(actor, str) or not actor.strip():
            v.fail(where, f"actor = {actor!r}", "actor must be a non-empty string (who or what acted)")
        if not isinstance(data, dict):
            v.fail(where, f"data is a {type(data).__name__}", "data must be a dict of JSON values")
        bad_keys = [k for k in data if not isinstance(k, str)]
        if bad_keys:
            v.fail(where, f"data has non-string keys {bad_keys[:3]!r}", "data keys must be strings")
        try:
            text = canonical(data)
        except (TypeError, ValueError) as e:
            v.fail(where, f"data is not JSON-serialisable ({e})",
                   "data values must be strings, finite numbers, booleans, None, lists or dicts")
        if len(text.encode("utf-8")) > MAX_DATA_BYTES:
            v.fail(where, f"data is {len(text.encode('utf-8'))} bytes as JSON",
                   f"data must be at most {MAX_DATA_BYTES} bytes (record a file's sha256, not the file)")
        stored = json.loads(text)
        with self._lock:
            size = self.path.stat().st_size if self.path.is_file() else 0
            if size != self._size:
                v.fail(where, f"'{self.path.name}' changed since this trail last wrote it "
                              f"({self._size} -> {size} bytes)",
                       "one writer per trail file: reopen it with AuditTrail(path, key) to continue")
            index = 0 if self._last is None else self._last.index + 1
            prev = GENESIS if self._last is None else self._last.hash
            entry = make_entry(self.key, index, self._time(where), kind, actor, stored, prev)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(entry.line() + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._last, self._count = entry, self._count + 1
            self._size = self.path.stat().st_size
        return entry

    def entries(self) -> list[Entry]:
        """Every entry, read back from the file (taught in 09_governance_and_audit)."""
        if not self.path.is_file():
            return []
        return read_entries(self.path)

    def head(self) -> dict[str, Any]:
        """The signed head: ``count``, ``last_hash``, ``time``, ``public_key`` and ``signature``
        (Ed25519 over the canonical JSON of the rest). Give it to :func:`verify` so that
        entries cut off the end are noticed (taught in 09_governance_and_audit)."""
        with self._lock:
            body = {"count": self._count, "last_hash": GENESIS if self._last is None else self._last.hash,
                    "time": self._time("AuditTrail.head"), "public_key": public_key_hex(self.key),
                    "trail": self.path.name}
        return {**body, "signature": _sign(self.key, _sha256(canonical(body)))}

    def write_head(self, path: str | Path | None = None) -> Path:
        """Write :meth:`head` as JSON to ``path`` (default ``<trail>.head.json``); returns the
        path (taught in 09_governance_and_audit)."""
        out = self.path.with_name(self.path.name + ".head.json") if path is None else Path(path)
        if out.absolute() == self.path.absolute():
            v.fail("AuditTrail.write_head", "path is the trail file", "write the head to another file")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.head(), indent=1) + "\n", encoding="utf-8")
        return out

    def find(self, kind: str | None = None, **match: Any) -> list[Entry]:
        """The entries of ``kind`` (any kind when None) whose ``data`` has every ``key=value``
        of ``match`` (taught in 09_governance_and_audit)."""
        if kind is not None:
            v.choice(kind, "kind", "AuditTrail.find", KINDS)
        return [e for e in self.entries() if (kind is None or e.kind == kind)
                and all(k in e.data and e.data[k] == val for k, val in match.items())]

    def by_hash(self, h: str) -> Entry:
        """The entry with hash ``h`` (a full hash, or a unique prefix of at least 8 hex digits);
        raises :class:`NotInTrail` when there is none (taught in 09_governance_and_audit)."""
        where = "AuditTrail.by_hash"
        if not isinstance(h, str) or not re.fullmatch(r"[0-9a-f]{8,64}", h):
            v.fail(where, f"hash {h!r} is not 8 to 64 lowercase hex digits", "give an entry's hash (Entry.hash)")
        found = [e for e in self.entries() if e.hash.startswith(h)]
        if len(found) > 1:
            v.fail(where, f"hash prefix {h!r} matches {len(found)} entries", "give more hex digits")
        if not found:
            raise NotInTrail(where, f"no entry of '{self.path.name}' has hash {h[:16]}…",
                             f"the trail has {self._count} entries; use find() to list them")
        return found[0]

    def table(self):
        """The entries as a DataFrame for display (see :func:`table`)."""
        return table(self.entries())


def table(source: "AuditTrail | str | Path | Iterable[Entry]"):
    """The entries of a trail as a DataFrame for display: index, time, kind, actor, short hash
    and a one-line summary of the data (taught in 09_governance_and_audit). ``source`` is an
    :class:`AuditTrail`, a trail file (read without verifying) or a list of entries."""
    import pandas as pd

    if isinstance(source, AuditTrail):
        entries = source.entries()
    elif isinstance(source, (str, os.PathLike)):
        entries = read_entries(source)
    else:
        entries = list(source)
        if not all(isinstance(e, Entry) for e in entries):
            v.fail("table", "source holds items that are not entries", "source must be a trail, a file or entries")
    rows = [{"index": e.index, "time": e.time, "kind": e.kind, "actor": e.actor, "hash": e.hash[:12],
             "data": e.summary()} for e in entries]
    return pd.DataFrame(rows, columns=["index", "time", "kind", "actor", "hash", "data"]).set_index("index")


# --------------------------------------------------------------------------- access log


def import_access_log(trail: AuditTrail, audit_log_path: str | Path) -> int:
    """Append every decision of the model API's audit log (:mod:`utils.serving.audit`, lesson
    07) to ``trail`` as ``"access"`` entries, in order; returns how many (taught in
    09_governance_and_audit). Each entry's actor is the client (``"anonymous"`` when none), its
    data the log line (with the API's own time as ``time``) and the log file's name as ``log``.
    Each call appends every decision again: import a log once."""
    where = "import_access_log"
    if not isinstance(trail, AuditTrail):
        v.fail(where, f"trail is a {type(trail).__name__}", "trail must be an AuditTrail")
    path = v.existing_file(audit_log_path, "audit_log_path", where)
    from utils.serving.audit import read_audit

    decisions = read_audit(path)
    for d in decisions:
        client = d.get("client")
        trail.append("access", {**d, "log": path.name}, actor=str(client) if client else "anonymous")
    return len(decisions)


# --------------------------------------------------------------------------- tampering (lesson and lab)

TAMPERING = ("edit", "delete", "insert", "swap", "truncate")


def tamper(path: str | Path, out: str | Path, how: str, index: int, **kw: Any) -> Path:
    """Write a tampered copy of a trail to ``out`` (``path`` is never modified); returns ``out``
    (taught in 09_governance_and_audit).

    ``how``:

    - ``"edit"``: change entry ``index``'s data: ``changes`` (a dict merged into it, default
      ``{"tampered": True}``); ``rehash=True`` also recomputes its hash (the signature then fails);
    - ``"delete"``: remove entry ``index``;
    - ``"insert"``: put a forged entry at position ``index`` (0 to the number of entries), fitted
      to the chain (index and prev of the entry before) and signed with another key (``key``,
      default ``signing_key(666)``); ``kind`` (default ``"evaluation"``), ``data``, ``actor``;
    - ``"swap"``: exchange entries ``index`` and ``other`` (default ``index + 1``);
    - ``"truncate"``: cut every entry from ``index`` on.
    """
    where = "tamper"
    path = v.existing_file(path, "path", where)
    if not isinstance(out, (str, os.PathLike)):
        v.fail(where, f"out is a {type(out).__name__}", "out must be a path (str or pathlib.Path)")
    out = Path(out)
    if out.absolute() == path.absolute():
        v.fail(where, "out is the trail itself", "tamper writes a copy: give another file as out")
    v.choice(how, "how", where, TAMPERING)
    lines = _lines(path)
    n = len(lines)
    high = n if how in ("insert", "truncate") else n - 1
    if high < 0:
        v.fail(where, f"'{path.name}' has no entries", "tamper with a trail that has entries")
    index = v.integer(index, "index", where, 0, high)
    allowed = {"edit": {"changes", "rehash"}, "delete": set(), "insert": {"key", "kind", "data", "actor"},
               "swap": {"other"}, "truncate": set()}[how]
    unknown = sorted(set(kw) - allowed)
    if unknown:
        v.fail(where, f"unknown options {unknown} for how = {how!r}",
               f"options of {how!r}: {sorted(allowed) or 'none'}")
    if how == "edit":
        changes = kw.get("changes", {"tampered": True})
        if not isinstance(changes, dict):
            v.fail(where, f"changes is a {type(changes).__name__}", "changes must be a dict merged into the data")
        raw = json.loads(lines[index])
        raw["data"] = {**raw["data"], **changes}
        if kw.get("rehash", False):
            raw["hash"] = _sha256(canonical({k: raw[k] for k in FIELDS[:6]}))
        lines[index] = canonical(raw)
    elif how == "delete":
        del lines[index]
    elif how == "insert":
        key = kw.get("key", signing_key(666))
        key = _private_key(key, where)
        kind = v.choice(kw.get("kind", "evaluation"), "kind", where, KINDS)
        data = kw.get("data", {"metric": "clean_accuracy", "value": 0.99, "note": "forged"})
        before = Entry.from_line(lines[index - 1]) if index > 0 else None
        after_time = before.time if before else Entry.from_line(lines[0]).time if n else _iso(utc_now())
        forged = make_entry(key, 0 if before is None else before.index + 1, after_time, kind,
                            kw.get("actor", "course"), json.loads(canonical(data)),
                            GENESIS if before is None else before.hash)
        lines.insert(index, forged.line())
    elif how == "swap":
        other = v.integer(kw.get("other", index + 1), "other", where, 0, n - 1)
        if other == index:
            v.fail(where, f"other = index = {index}", "swap two different entries")
        lines[index], lines[other] = lines[other], lines[index]
    else:
        lines = lines[:index]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return out
