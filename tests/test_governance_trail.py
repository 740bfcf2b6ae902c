"""utils.governance.trail: the hash-chained, signed audit trail and its verifier (lesson 09)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from utils.governance import trail as T
from utils.validation import ValidationError

N = 10


def _fill(path, n=N, seed=0, clock=None):
    t = T.AuditTrail(path, T.signing_key(seed), clock=clock or T.step_clock())
    for i in range(n):
        t.append(T.KINDS[i % len(T.KINDS)], {"step": i, "value": round(0.5 + i / 100, 4), "tags": ["a", i]},
                 actor=f"actor-{i % 3}")
    return t


@pytest.fixture()
def clean(tmp_path):
    t = _fill(tmp_path / "trail.jsonl")
    return t, t.write_head(), t.public_key


def _kinds_at(result, index):
    return {p.kind for p in result.problems if p.index == index}


# --------------------------------------------------------------------------- a clean trail


def test_a_clean_trail_verifies_and_its_entries_chain(clean):
    t, head, pub = clean
    result = T.verify(t.path, pub, head)
    assert result.ok and result.entries == N and result.problems == [] and result.first_bad is None
    assert result.tail_checked and "tail checked" in result.summary() and result.summary().startswith("ok: 10")
    no_head = T.verify(t.path, T.public_key_hex(pub))
    assert no_head.ok and not no_head.tail_checked and "tail not checked" in no_head.summary()
    entries = t.entries()
    assert [e.index for e in entries] == list(range(N))
    assert entries[0].prev == "0" * 64
    assert all(b.prev == a.hash for a, b in zip(entries, entries[1:]))
    for e in entries:
        body = {k: getattr(e, k) for k in ("index", "time", "kind", "actor", "data", "prev")}
        assert e.hash == __import__("hashlib").sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        pub.verify(bytes.fromhex(e.signature), bytes.fromhex(e.hash))  # raises if not signed
    lines = t.path.read_text().splitlines()
    assert len(lines) == N and all(T.Entry.from_line(line) == e for line, e in zip(lines, entries))
    assert entries[1].time == "2026-01-05T09:01:00.000+00:00"


def test_append_returns_the_stored_entry_and_find_and_by_hash_look_it_up(tmp_path):
    t = T.AuditTrail(tmp_path / "t.jsonl", T.signing_key(1), clock=T.step_clock())
    a = t.append("evaluation", {"metric": "clean_accuracy", "value": 0.97, "shape": (2, 3)}, actor="ci")
    b = t.append("evaluation", {"metric": "robust_accuracy", "value": 0.81}, actor="ci")
    c = t.append("release", {"decision": "blocked"})
    assert a.data["shape"] == [2, 3] and t.entries()[0] == a  # stored as JSON (tuples become lists)
    assert [e.hash for e in t.find("evaluation")] == [a.hash, b.hash]
    assert t.find("evaluation", metric="robust_accuracy") == [b]
    assert t.find(decision="blocked") == [c] and t.find("access") == []
    assert t.by_hash(b.hash) == b and t.by_hash(b.hash[:10]) == b
    with pytest.raises(KeyError, match="no entry of 't.jsonl' has hash"):
        t.by_hash("ab" * 32)
    with pytest.raises(ValidationError, match="hex digits"):
        t.by_hash("xyz")
    assert len(t) == 3 and c.actor == "course"
    table = t.table()
    assert list(table.columns) == ["time", "kind", "actor", "hash", "data"] and list(table.index) == [0, 1, 2]
    assert table.loc[1, "data"] == "metric=robust_accuracy, value=0.81" and table.loc[1, "hash"] == b.hash[:12]


def test_reopening_continues_the_chain(tmp_path):
    path = tmp_path / "t.jsonl"
    key = T.signing_key(3)
    first = T.AuditTrail(path, key, clock=T.step_clock())
    first.append("data", {"n": 1})
    last = first.append("training", {"n": 2})
    again = T.AuditTrail(path, key, clock=T.step_clock("2026-02-01T00:00:00+00:00"))
    assert len(again) == 2
    e = again.append("evaluation", {"n": 3})
    assert e.index == 2 and e.prev == last.hash and e.time.startswith("2026-02-01")
    assert T.verify(path, key.public_key()).ok and len(T.read_entries(path)) == 3
    # the first object's view is stale now: it refuses instead of forking the chain
    with pytest.raises(ValidationError, match="changed since this trail last wrote it"):
        first.append("data", {"n": 4})


def test_reopening_a_tampered_trail_or_with_another_key_is_refused(clean, tmp_path):
    t, _, _ = clean
    with pytest.raises(ValidationError, match="does not verify with this key.*bad signature"):
        T.AuditTrail(t.path, T.signing_key(99))
    bad = T.tamper(t.path, tmp_path / "bad.jsonl", "delete", 4)
    with pytest.raises(ValidationError, match="does not verify.*deleted.*start a new trail"):
        T.AuditTrail(bad, T.signing_key(0))


def test_same_seed_and_clock_give_a_byte_identical_file(tmp_path):
    a = _fill(tmp_path / "a" / "t.jsonl", clock=T.step_clock("2026-03-01T12:00:00+00:00", 5))
    b = _fill(tmp_path / "b" / "t.jsonl", clock=T.step_clock("2026-03-01T12:00:00+00:00", 5))
    c = _fill(tmp_path / "c" / "t.jsonl", seed=1, clock=T.step_clock("2026-03-01T12:00:00+00:00", 5))
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.path.read_bytes() != c.path.read_bytes()  # another key: other signatures
    assert T.public_key_hex(T.signing_key(7)) == T.public_key_hex(T.signing_key(7))
    assert T.public_key_hex(T.signing_key()) != T.public_key_hex(T.signing_key())  # random without a seed
    assert a.head() == b.head()


# --------------------------------------------------------------------------- tampering, pinpointed


@pytest.mark.parametrize("index", [0, 1, 4, N - 2, N - 1])
def test_an_edited_entry_is_found_where_it_was_edited(clean, tmp_path, index):
    t, head, pub = clean
    out = T.tamper(t.path, tmp_path / "x.jsonl", "edit", index, changes={"value": 0.99})
    result = T.verify(out, pub, head)
    assert not result.ok and result.first_bad == index
    assert [(p.index, p.kind) for p in result.problems] == [(index, "edited")]
    assert "entry %d (line %d): edited" % (index, index + 1) in result.summary()
    assert t.path.read_text() != out.read_text() and T.verify(t.path, pub, head).ok  # the original is untouched


@pytest.mark.parametrize("index", [0, 3, N - 1])
def test_an_edit_with_a_recomputed_hash_fails_its_signature(clean, tmp_path, index):
    t, head, pub = clean
    out = T.tamper(t.path, tmp_path / "x.jsonl", "edit", index, rehash=True)
    result = T.verify(out, pub, head)
    assert result.first_bad == index and "bad signature" in _kinds_at(result, index)
    if index < N - 1:  # the next entry still points to the original hash
        assert "edited" in _kinds_at(result, index)


@pytest.mark.parametrize("index", [0, 1, 3, N - 2])
def test_a_deleted_entry_is_found_where_it_is_missing(clean, tmp_path, index):
    t, head, pub = clean
    out = T.tamper(t.path, tmp_path / "x.jsonl", "delete", index)
    for h in (head, None):  # the chain shows it, with or without the head
        result = T.verify(out, pub, h)
        assert [(p.index, p.kind) for p in result.problems] == [(index, "deleted")], result.problems
        assert result.first_bad == index and result.entries == N - 1


def test_deleting_the_last_entry_needs_the_head(clean, tmp_path):
    t, head, pub = clean
    out = T.tamper(t.path, tmp_path / "x.jsonl", "delete", N - 1)
    assert T.verify(out, pub).ok  # a shorter chain is still a chain
    result = T.verify(out, pub, head)
    assert [(p.index, p.kind) for p in result.problems] == [(N - 1, "truncated")]


@pytest.mark.parametrize("index", [0, 1, 5, N - 1])
def test_a_forged_entry_is_found_where_it_was_inserted(clean, tmp_path, index):
    t, head, pub = clean
    out = T.tamper(t.path, tmp_path / "x.jsonl", "insert", index)
    result = T.verify(out, pub, head)
    assert result.first_bad == index
    assert {p.index for p in result.problems} == {index}
    assert _kinds_at(result, index) == {"bad signature", "inserted"}


def test_a_forged_entry_appended_at_the_end_fails_its_signature(clean, tmp_path):
    t, head, pub = clean
    out = T.tamper(t.path, tmp_path / "x.jsonl", "insert", N)
    result = T.verify(out, pub, head)
    assert [(p.index, p.kind) for p in result.problems] == [(N, "bad signature")]


def test_a_replayed_genuine_entry_is_an_insertion(clean, tmp_path):
    t, head, pub = clean
    lines = t.path.read_text().splitlines()
    lines.insert(6, lines[2])  # a copy of a real, correctly signed entry
    out = tmp_path / "replay.jsonl"
    out.write_text("\n".join(lines) + "\n")
    result = T.verify(out, pub, head)
    assert result.first_bad == 6 and [(p.index, p.kind) for p in result.problems] == [(6, "inserted")]


@pytest.mark.parametrize("index,other", [(0, 1), (3, 4), (N - 2, N - 1), (2, 7), (0, N - 1)])
def test_swapped_entries_are_reordered_from_the_first_one_moved(clean, tmp_path, index, other):
    t, head, pub = clean
    out = T.tamper(t.path, tmp_path / "x.jsonl", "swap", index, other=other)
    result = T.verify(out, pub, head)
    assert result.first_bad == index and "reordered" in _kinds_at(result, index)
    assert set(result.kinds()) == {"reordered"}


@pytest.mark.parametrize("index", [0, 1, 5, N - 2])
def test_a_cut_trail_is_truncated_against_the_signed_head(clean, tmp_path, index):
    t, head, pub = clean
    out = T.tamper(t.path, tmp_path / "x.jsonl", "truncate", index)
    assert T.verify(out, pub).ok  # without the head the tail cannot be checked
    result = T.verify(out, pub, head)
    assert [(p.index, p.kind) for p in result.problems] == [(index, "truncated")]
    assert result.first_bad == index


def test_entries_appended_after_the_head_are_fine_and_a_forged_head_is_caught(clean, tmp_path):
    t, head, pub = clean
    t.append("incident", {"what": "later"})
    assert T.verify(t.path, pub, head).ok
    forged = json.loads(head.read_text())
    forged["count"] = 3
    result = T.verify(t.path, pub, forged)
    assert not result.ok and not result.tail_checked
    assert [(p.index, p.kind) for p in result.problems] == [(None, "bad signature")]
    assert "the head" in result.summary()


@pytest.mark.parametrize("line", ["not json at all", '{"index": 3}', "[1, 2]", ""])
def test_a_malformed_line_is_named(clean, tmp_path, line):
    t, head, pub = clean
    lines = t.path.read_text().splitlines()
    lines[4] = line
    out = tmp_path / "m.jsonl"
    out.write_text("\n".join(lines) + "\n")
    result = T.verify(out, pub, head)
    assert result.first_bad == 4 and [(p.index, p.kind) for p in result.problems] == [(4, "malformed")]
    assert "line 5" in result.problems[0].detail
    with pytest.raises(ValidationError, match="m.jsonl line 5 is not a trail entry"):
        T.read_entries(out)


def test_another_key_sees_bad_signatures_everywhere(clean):
    t, head, _ = clean
    result = T.verify(t.path, T.signing_key(5).public_key())
    assert result.first_bad == 0 and set(result.kinds()) == {"bad signature"} and len(result.problems) == N


def test_verification_tables_show_the_entries_and_the_problems(clean, tmp_path):
    t, head, pub = clean
    result = T.verify(T.tamper(t.path, tmp_path / "x.jsonl", "insert", 2), pub, head)
    df = result.problems_table()
    assert list(df.columns) == ["index", "kind", "detail"] and list(df["kind"]) == ["bad signature", "inserted"]
    rows = result.table()
    assert list(rows.columns) == ["index", "time", "kind", "actor", "hash", "data", "problem"]
    assert len(rows) == N + 1 and rows.loc[2, "problem"] == "bad signature, inserted"
    assert (rows.drop(index=2)["problem"] == "").all() and "forged" in rows.loc[2, "data"]
    cut = T.verify(T.tamper(t.path, tmp_path / "y.jsonl", "truncate", 8), pub, head).table()
    assert len(cut) == 9 and cut.loc[8, "data"] == "(missing)" and cut.loc[8, "problem"] == "truncated"


# --------------------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors(tmp_path):
    t = T.AuditTrail(tmp_path / "t.jsonl", T.signing_key(0))
    with pytest.raises(ValidationError, match="AuditTrail.append: kind = 'training-run' is not one of the choices"):
        t.append("training-run", {})
    with pytest.raises(ValidationError, match="data is not JSON-serialisable"):
        t.append("data", {"x": object()})
    with pytest.raises(ValidationError, match="data is not JSON-serialisable"):
        t.append("data", {"x": float("nan")})
    with pytest.raises(ValidationError, match="data is a list"):
        t.append("data", [1, 2])
    with pytest.raises(ValidationError, match="non-string keys"):
        t.append("data", {1: "a"})
    with pytest.raises(ValidationError, match="actor must be a non-empty string"):
        t.append("data", {}, actor=" ")
    with pytest.raises(ValidationError, match="at most 65536 bytes"):
        t.append("data", {"blob": "x" * 70_000})
    assert len(t) == 0 and not t.path.exists()  # nothing was written
    with pytest.raises(ValidationError, match="key must be an Ed25519 private key"):
        T.AuditTrail(tmp_path / "u.jsonl", T.public_key_hex(T.signing_key(0)))
    with pytest.raises(ValidationError, match="clock must be a callable"):
        T.AuditTrail(tmp_path / "u.jsonl", T.signing_key(0), clock="now")
    naive = T.AuditTrail(tmp_path / "v.jsonl", T.signing_key(0), clock=lambda: dt.datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="time zone"):
        naive.append("data", {})
    with pytest.raises(ValidationError, match="not 64 hex digits"):
        T.load_public_key("abc")
    with pytest.raises(ValidationError, match="public_key must be an Ed25519 public key"):
        T.verify(_fill(tmp_path / "w.jsonl", 1).path, 42)
    with pytest.raises(ValidationError, match="is not an existing file"):
        T.verify(tmp_path / "missing.jsonl", T.signing_key(0).public_key())
    with pytest.raises(ValidationError, match="seed must be an integer >= 0"):
        T.signing_key(-1)


def test_tamper_rejects_bad_input_and_never_writes_in_place(clean, tmp_path):
    t, _, _ = clean
    before = t.path.read_bytes()
    with pytest.raises(ValidationError, match="out is the trail itself"):
        T.tamper(t.path, t.path, "edit", 0)
    with pytest.raises(ValidationError, match="how = 'shuffle' is not one of the choices"):
        T.tamper(t.path, tmp_path / "x.jsonl", "shuffle", 0)
    with pytest.raises(ValidationError, match="index = 10 is out of range"):
        T.tamper(t.path, tmp_path / "x.jsonl", "delete", N)
    with pytest.raises(ValidationError, match="unknown options"):
        T.tamper(t.path, tmp_path / "x.jsonl", "delete", 0, rehash=True)
    assert t.path.read_bytes() == before


# --------------------------------------------------------------------------- the API's access log


def test_import_access_log_appends_every_decision(tmp_path):
    from utils.serving.audit import AuditLog

    log = AuditLog(tmp_path / "api" / "audit.jsonl")
    log.record(client="alice", scopes=["predict"], input_sha256="a" * 64, decision="allow", status=200,
               reason="ok", n_images=2, output_class=[3, 7])
    log.record(client=None, decision="deny", status=401, reason="no token")
    log.record(client="mallory", scopes=["predict"], decision="deny", status=429, reason="rate limit")
    t = T.AuditTrail(tmp_path / "trail.jsonl", T.signing_key(0), clock=T.step_clock())
    t.append("deployment", {"model": "digits-mlp"})
    assert T.import_access_log(t, log.path) == 3
    access = t.find("access")
    assert [e.actor for e in access] == ["alice", "anonymous", "mallory"]
    assert [e.data["decision"] for e in access] == ["allow", "deny", "deny"]
    assert access[0].data["output_class"] == [3, 7] and access[0].data["log"] == "audit.jsonl"
    assert access[1].data["time"] == log.entries[1]["time"]  # the API's own time is kept
    assert t.find("access", status=429) == [access[2]]
    assert T.verify(t.path, t.public_key).ok
    broken = tmp_path / "broken.jsonl"
    broken.write_text(log.path.read_text() + "{not json\n")
    with pytest.raises(ValidationError, match="broken.jsonl line 4 is not JSON"):
        T.import_access_log(t, broken)


# --------------------------------------------------------------------------- speed


def test_a_thousand_entries_append_and_verify(tmp_path):
    t = T.AuditTrail(tmp_path / "big.jsonl", T.signing_key(0), clock=T.step_clock(step_seconds=1))
    for i in range(1000):
        t.append("access", {"i": i, "decision": "allow"}, actor="client")
    result = T.verify(t.path, t.public_key, t.write_head())
    assert result.ok and result.entries == 1000
    out = T.tamper(t.path, tmp_path / "x.jsonl", "delete", 777)
    assert T.verify(out, t.public_key).first_bad == 777


def test_random_tampering_is_always_caught_at_the_first_changed_line(clean, tmp_path):
    """Flipped characters, replayed, deleted, swapped, shuffled and cut lines, and mixtures:
    each is caught, and the first bad entry is exactly the first line that differs."""
    import random

    t, head, pub = clean
    lines = t.path.read_text().splitlines()
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        tampered, how = list(lines), rng.choice(["flip", "replay", "delete", "swap", "shuffle", "cut", "mix"])
        if how == "flip":
            i = rng.randrange(N)
            j = rng.randrange(len(tampered[i]))
            tampered[i] = tampered[i][:j] + chr(rng.randrange(32, 127)) + tampered[i][j + 1:]
        elif how == "replay":
            tampered.insert(rng.randrange(N + 1), tampered[rng.randrange(N)])
        elif how == "delete":
            del tampered[rng.randrange(N)]
        elif how == "swap":
            i, j = rng.sample(range(N), 2)
            tampered[i], tampered[j] = tampered[j], tampered[i]
        elif how == "shuffle":
            rng.shuffle(tampered)
        elif how == "cut":
            tampered = tampered[:rng.randrange(N)]
        else:
            for _ in range(2):
                i, j = rng.sample(range(len(tampered)), 2)
                tampered[i], tampered[j] = tampered[j], tampered[i]
            del tampered[rng.randrange(len(tampered))]
        if tampered == lines:
            continue
        out = tmp_path / "x.jsonl"
        out.write_text("".join(line + "\n" for line in tampered))
        result = T.verify(out, pub, head)
        first = next((i for i, (a, b) in enumerate(zip(tampered, lines)) if a != b), min(len(tampered), N))
        assert not result.ok and result.first_bad == first, (how, first, result.problems)
        seen.add(how)
    assert len(seen) == 7
