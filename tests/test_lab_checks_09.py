"""lab09's checks: the lab's stubs fail, the solution's answers pass, named plausible wrong answers fail,
and other correct ways of writing each answer pass; and the lab's material is what the exercises say."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import utils
from utils.governance import evidence, modelcard, release, risk, trail
from utils.lab_checks import lab09
from utils.validation import ValidationError

FAIL = "NOT SOLVED YET"
SEED = 0


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The lab's material for seed 0, as the lab's cells build it (the models come from the cache)."""
    utils.setup(SEED, plots=False)
    work = tmp_path_factory.mktemp("lab09")
    audit = trail.AuditTrail(work / "trail.jsonl", trail.signing_key(SEED), clock=trail.step_clock())
    ev = evidence.collect(audit, SEED)
    received = lab09.tampered_trail(audit, work / "received", SEED)
    lab09.candidate_v4(audit, ev, SEED)
    bundles, publisher = lab09.release_bundles(audit, ev, ("v2", "v4"), work / "release", SEED)
    lab09.measure_clean_label(audit, ev, SEED)
    return {"work": work, "audit": audit, "ev": ev, "received": received, "bundles": bundles,
            "publisher": publisher}


@pytest.fixture
def fresh_trail(lab, tmp_path):
    """A copy of the lab's trail to append to (each exercise 2 test records its own decisions)."""
    path = tmp_path / "trail.jsonl"
    shutil.copyfile(lab["audit"].path, path)
    return trail.AuditTrail(path, trail.signing_key(SEED), clock=trail.step_clock("2026-02-01T00:00:00+00:00"))


def _judge(capsys, n, answer, ok, says="", **context):
    result = lab09.check(n, *answer, **context)
    out = capsys.readouterr().out
    assert result is ok, out
    assert ("✅ PASSED" in out) if ok else (FAIL in out and says in out), out
    return out


# --------------------------------------------------------------------------- the lab's material


def test_received_copy_is_tampered_as_drawn(lab):
    r = lab["received"]
    assert trail.verify(r.intact, r.public_key, head=r.head).ok
    assert not trail.verify(r.path, r.public_key, head=r.head).ok


@pytest.mark.parametrize("seed", range(10))
def test_hidden_tamperings_are_found_where_they_were_made(lab, tmp_path, seed):
    """For every seed, the verifier's first bad entry is the planned position of every case."""
    cases = lab09._cases(lab["audit"], tmp_path, seed)
    kinds = {kind for *_, kind in cases}
    assert kinds == set(lab09.KINDS) | {None}
    key = lab["received"].public_key
    for what, path, head, pos, kind in cases:
        check = trail.verify(path, key, head=head)
        assert check.ok == (pos is None), what
        assert check.first_bad == pos, what


def test_v4_passes_the_default_gate_and_shows_its_poison(lab):
    ev, b = lab["ev"], lab["bundles"]
    kw = {"trail_path": lab["audit"].path, "public_key": lab["audit"].public_key, "publisher_key": lab["publisher"]}
    assert release.evaluate(b["v4"], release.DEFAULT_RULES, **kw).passed
    assert release.evaluate(b["v2"], release.DEFAULT_RULES, **kw).passed
    assert ev.value("backdoor_flagged@v4") > ev.value("backdoor_flagged@v2")


def test_clean_label_measurements_are_recorded(lab):
    ev, entries = lab["ev"], {e.hash: e for e in lab["audit"].entries()}
    for name in lab09.CLEAN_LABEL:
        m = ev[name]
        assert entries[m.run].kind == "evaluation" and entries[m.run].data["metric"] == name
        assert 0.0 <= m.value <= 1.0 and m.n > 0


def test_material_builders_refuse_bad_input(lab, tmp_path):
    with pytest.raises(ValidationError, match="tampered_trail"):
        lab09.tampered_trail("trail.jsonl", tmp_path, SEED)
    with pytest.raises(ValidationError, match="seed"):
        lab09.tampered_trail(lab["audit"], tmp_path, -1)
    with pytest.raises(ValidationError, match="evidence"):
        lab09.candidate_v4(lab["audit"], {}, SEED)
    with pytest.raises(ValidationError, match="no model"):
        lab09.release_bundles(lab["audit"], lab["ev"], ("v9",), tmp_path, SEED)
    with pytest.raises(ValidationError, match="measure_clean_label"):
        lab09.measure_clean_label(None, lab["ev"], SEED)


# --------------------------------------------------------------------------- exercise 1

FIELDS = ("index", "time", "kind", "actor", "data", "prev")


def finder(*, content=True, signatures=True, chain=True, head=True, line_numbers=False, entry_index=False,
           forged_means_insert=False, break_means_delete=False, kind_names=None, verify_head=False):
    """A find_tampering with some of its checks switched off or changed: the solution with every default."""
    names = kind_names or {k: k for k in lab09.KINDS}

    def find_tampering(path, public_key, head_path):
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        signed_head = head_path if isinstance(head_path, dict) else json.loads(Path(head_path).read_text())
        entries = [json.loads(line) for line in Path(path).read_text().splitlines()]
        hashes = {e["hash"] for e in entries}

        def signed(h, sig):
            try:
                key.verify(bytes.fromhex(sig), bytes.fromhex(h))
                return True
            except InvalidSignature:
                return False

        if verify_head:
            body = {k: v for k, v in signed_head.items() if k != "signature"}
            h = hashlib.sha256(trail.canonical(body).encode()).hexdigest()
            if not signed(h, signed_head["signature"]):
                raise ValueError("the head is not signed by the trail's key")

        def answer(i, kind):
            pos = entries[i]["index"] if entry_index and i < len(entries) else i
            return (pos + 1 if line_numbers else pos), names[kind]

        for i, e in enumerate(entries):
            body = {k: e[k] for k in FIELDS}
            if content and hashlib.sha256(trail.canonical(body).encode()).hexdigest() != e["hash"]:
                return answer(i, "edit")
            if signatures and not signed(e["hash"], e["signature"]):
                if forged_means_insert:
                    return answer(i, "insert")
                if i + 1 < len(entries):
                    return answer(i, "insert" if entries[i + 1]["prev"] == e["prev"] else "edit")
                return answer(i, "insert" if len(entries) > signed_head["count"] else "edit")
            if chain and e["prev"] != (entries[i - 1]["hash"] if i else "0" * 64):
                return answer(i, "delete" if break_means_delete or e["prev"] not in hashes else "swap")
        if head and len(entries) < signed_head["count"]:
            return len(entries) + (1 if line_numbers else 0), names["truncate"]
        return None, None

    return find_tampering


def find_with_library_reads(path, public_key, head):
    """Another correct way: trail.read_entries, trail.load_public_key, numpy ints, the verifier's words."""
    key = trail.load_public_key(public_key)
    count = json.loads(Path(head).read_text())["count"]
    entries = trail.read_entries(path)
    for i, e in enumerate(entries):
        body = dataclasses.asdict(e)
        h = hashlib.sha256(trail.canonical({k: body[k] for k in FIELDS}).encode()).hexdigest()
        if h != e.hash:
            return np.int64(i), "edited"
        try:
            key.verify(bytes.fromhex(e.signature), bytes.fromhex(e.hash))
        except InvalidSignature:
            nxt = entries[i + 1] if i + 1 < len(entries) else None
            forged = nxt.prev == e.prev if nxt is not None else len(entries) > count
            return np.int64(i), "Inserted" if forged else "edited"
        expected = entries[i - 1].hash if i else trail.GENESIS
        if e.prev != expected:
            return np.int64(i), "reordered" if any(x.hash == e.prev for x in entries) else "deleted"
    return (np.int64(len(entries)), "truncated") if len(entries) < count else (None, None)


def find_stub(path, public_key, head):
    return None, None


def find_always_last(path, public_key, head):
    return len(Path(path).read_text().splitlines()) - 1, "edit"


def find_with_verify(path, public_key, head):
    result = trail.verify(path, public_key, head=head)
    if result.ok:
        return None, None
    return result.first_bad, {"edited": "edit", "bad signature": "edit", "deleted": "delete", "inserted": "insert",
                              "reordered": "swap", "truncated": "truncate"}[result.problems[0].kind]


def find_with_audit_trail(path, public_key, head):
    trail.AuditTrail(path, trail.signing_key(SEED))  # refuses a trail that does not verify
    return None, None


def find_with_content_hash(path, public_key, head):
    for i, e in enumerate(trail.read_entries(path)):
        if e.content_hash() != e.hash:
            return i, "edit"
    return None, None


def find_as_list(path, public_key, head):
    return list(finder()(path, public_key, head))


@pytest.mark.parametrize("fn", [finder(), find_with_library_reads, finder(verify_head=True),
                                finder(kind_names={"edit": "Edit", "delete": "deleted", "insert": "forged",
                                                   "swap": "moved", "truncate": "cut"})],
                         ids=["solution", "read-entries-numpy-verifier-words", "also-verifies-the-head",
                              "other-spellings"])
def test_exercise_1_passes(capsys, lab, fn):
    _judge(capsys, 1, (fn,), True, trail=lab["audit"], received=lab["received"], seed=SEED)


@pytest.mark.parametrize("fn,says", [
    (find_stub, "finds nothing wrong"),
    (finder(line_numbers=True), "the index is not the position"),
    (finder(signatures=False, head=False), "copy"),
    (finder(signatures=False), "copy"),
    (finder(head=False), "finds nothing wrong"),
    (finder(content=False, signatures=False), "copy"),
    (find_always_last, "copy"),
    (finder(entry_index=True), "the index is not the position"),
    (finder(forged_means_insert=True), "the kind of tampering is not"),
    (finder(break_means_delete=True), "the kind of tampering is not"),
    (find_with_verify, "your code calls utils.governance.trail.verify"),
    (find_with_audit_trail, "your code calls utils.governance.trail.AuditTrail"),
    (find_with_content_hash, "your code calls utils.governance.trail.Entry.content_hash"),
    (find_as_list, "should return a tuple"),
], ids=["stub", "line-number-not-index", "hashes-and-links-only", "no-signatures", "no-head-so-no-truncation",
        "links-only", "always-the-last-entry", "entry-index-field-not-position", "bad-signature-always-insert",
        "broken-link-always-delete", "calls-verify", "calls-audit-trail", "calls-content-hash", "a-list"])
def test_exercise_1_rejects(capsys, lab, fn, says):
    _judge(capsys, 1, (fn,), False, says, trail=lab["audit"], received=lab["received"], seed=SEED)


@pytest.mark.parametrize("seed", [3, 7])
def test_exercise_1_other_seeds(capsys, lab, tmp_path, seed):
    """The check draws other cases for other seeds (on the same trail): the solution still passes, a
    checker without signatures still fails."""
    received = lab09.tampered_trail(lab["audit"], tmp_path / "received", seed)
    _judge(capsys, 1, (finder(),), True, trail=lab["audit"], received=received, seed=seed)
    _judge(capsys, 1, (finder(signatures=False),), False, "copy", trail=lab["audit"], received=received, seed=seed)


def test_exercise_1_tolerates_a_learner_error(capsys, lab):
    def broken(path, public_key, head):
        raise KeyError("hash")
    _judge(capsys, 1, (broken,), False, "raised KeyError", trail=lab["audit"], received=lab["received"], seed=SEED)


# --------------------------------------------------------------------------- exercise 2

WHY = "the scan flags at most a few in a thousand of a clean training set (03)"
CLEAN_SET = release.Rule("clean training set", "backdoor_flagged", "<=", 0.005, WHY)


def _ex2(capsys, lab, audit, rules, ok, says="", promote=("v4",), promote_rules=None):
    for name in promote:
        chosen = ([rules] if isinstance(rules, release.Rule) else rules) if promote_rules is None else promote_rules
        release.promote(audit, lab["bundles"][name], chosen,
                        publisher_key=lab["publisher"])
    _judge(capsys, 2, (rules,), ok, says, trail=audit, bundles=lab["bundles"], publisher_key=lab["publisher"])


@pytest.mark.parametrize("rules,promote", [
    ([*release.DEFAULT_RULES, CLEAN_SET], ("v4",)),
    ([CLEAN_SET], ("v4",)),
    ([*release.DEFAULT_RULES, CLEAN_SET], ("v2", "v4")),
    ([r if r.metric != "backdoor_flagged" else dataclasses.replace(r, threshold=0.002) for r in release.DEFAULT_RULES],
     ("v4",)),
    ((*release.DEFAULT_RULES, release.Rule("nothing flagged", "backdoor_flagged", "==", 0.0, WHY)), ("v4",)),
    (CLEAN_SET, ("v4",)),
], ids=["solution", "own-rule-only", "promotes-v2-too", "tightened-default-scan", "nothing-flagged-tuple",
        "a-single-rule"])
def test_exercise_2_passes(capsys, lab, fresh_trail, rules, promote):
    _ex2(capsys, lab, fresh_trail, rules, True, promote=promote)


@pytest.mark.parametrize("rules,says,promote,promote_rules", [
    (list(release.DEFAULT_RULES), "your rules promote v4", (), None),
    ([*release.DEFAULT_RULES, release.Rule("no scan findings", "backdoor_flagged", "<", 0.0, WHY)],
     "your rules block v2 too", ("v4",), None),
    ([*release.DEFAULT_RULES, release.Rule("accurate", "clean_accuracy", ">=", 0.975, "be at least as good as v2")],
     "not about the measurement", ("v4",), None),
    ([*release.DEFAULT_RULES, release.Rule("private", "membership_tpr", "<=", 0.005, "leak less than v2 does")],
     "not about the measurement", ("v4",), None),
    ([*release.DEFAULT_RULES, release.Rule("scan again", "backdoor_flagged", "<=", 0.02, WHY)],
     "your rules promote v4", ("v4",), None),
    ([*release.DEFAULT_RULES, release.Rule("typo", "backdoor_flag", "<=", 0.005, WHY)],
     "not about the measurement", ("v4",), None),
    ([*release.DEFAULT_RULES, CLEAN_SET], "holds no blocked release of v4", (), None),
    ([*release.DEFAULT_RULES, CLEAN_SET], "holds no blocked release of v4", ("v4",), release.DEFAULT_RULES),
    ([*release.DEFAULT_RULES, release.Rule("clean", "backdoor_flagged", "<=", 0.005, "clean")],
     "say in its why", ("v4",), None),
    (None, "non-empty list of release.Rule", (), None),
], ids=["stub", "blocks-everything", "wrong-metric-accuracy", "wrong-metric-membership", "threshold-lets-v4-pass",
        "misspelt-metric", "no-trail-record", "promoted-with-the-default-rules", "no-real-why", "no-rules"])
def test_exercise_2_rejects(capsys, lab, fresh_trail, rules, says, promote, promote_rules):
    _ex2(capsys, lab, fresh_trail, rules, False, says, promote=promote, promote_rules=promote_rules)


# --------------------------------------------------------------------------- exercise 3

def section_solution(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return (f"- Clean accuracy: {modelcard.traced(clean)} on {clean.n} held-out test digits.\n"
            f"- Robust accuracy under {robust.method}: {modelcard.traced(robust)} on the first {robust.n} test digits.")


def section_table(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    rows = ["| metric | value | test digits | attack |", "|---|---|---|---|",
            f"| clean accuracy | {clean.value:.4f} [run {clean.run[:8]}] | {clean.n} | none |",
            f"| robust accuracy | {robust.value:.4f} [run {robust.run[:8]}] | {robust.n} | PGD, eps=0.1, 20 steps |"]
    return "\n".join(rows)


def section_short(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return f"Accuracy {clean.short()} (n={clean.n}); under PGD with ε=0.1, {robust.short()} (n={robust.n})."


def section_stub(ev, cand):
    return ""


def section_typed(ev, cand):
    # the numbers typed in from the lab's table (v2's, seed 0), the run tags copied from the evidence
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return (f"- Clean accuracy: 0.981 [run {clean.run[:8]}] on 360 test digits.\n"
            f"- Robust accuracy under PGD-20, Linf eps=0.1: 0.760 [run {robust.run[:8]}] on 200 test digits.")


def section_no_runs(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return (f"- Clean accuracy: {clean.value:.3f} on {clean.n} test digits.\n"
            f"- Robust accuracy under {robust.method}: {robust.value:.3f} on {robust.n} test digits.")


def section_always_v2(ev, cand):
    return section_solution(ev, "v2")


def section_two_decimals(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return (f"- Clean accuracy: {clean.value:.2f} [run {clean.run[:8]}] on {clean.n} test digits.\n"
            f"- Robust accuracy under {robust.method}: {robust.value:.2f} [run {robust.run[:8]}] on {robust.n} test digits.")


def section_truncated(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return (f"- Clean accuracy: {int(clean.value * 100) / 100:.3f} [run {clean.run[:8]}] on {clean.n} test digits.\n"
            f"- Robust accuracy under {robust.method}: {int(robust.value * 100) / 100:.3f} [run {robust.run[:8]}] "
            f"on {robust.n} test digits.")


def section_swapped_runs(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return (f"- Clean accuracy: {clean.value:.3f} [run {robust.run[:8]}] on {clean.n} test digits.\n"
            f"- Robust accuracy under {robust.method}: {robust.value:.3f} [run {clean.run[:8]}] on {robust.n} test digits.")


def section_percent(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return (f"- Clean accuracy: {100 * clean.value:.1f}% ({clean.short()}) on {clean.n} test digits.\n"
            f"- Robust accuracy under {robust.method}: {100 * robust.value:.1f}% ({robust.short()}) on {robust.n}.")


def section_no_attack(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return (f"- Clean accuracy: {clean.short()} on {clean.n} test digits.\n"
            f"- Robust accuracy: {robust.short()} on {robust.n} test digits.")


def section_no_n(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return f"- Clean accuracy: {clean.short()}.\n- Robust accuracy under {robust.method}: {robust.short()}."


def section_library(ev, cand):
    return modelcard.performance_section(ev, cand)


def section_clean_only(ev, cand):
    clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
    return f"- Clean accuracy: {clean.short()} on {clean.n} test digits; robust accuracy under {robust.method} on {robust.n}."


@pytest.mark.parametrize("fn", [section_solution, section_table, section_short],
                         ids=["solution", "markdown-table-four-decimals", "one-line-epsilon"])
def test_exercise_3_passes(capsys, lab, fn):
    _judge(capsys, 3, (fn,), True, ev=lab["ev"], trail=lab["audit"])


@pytest.mark.parametrize("fn,says", [
    (section_stub, "should return Markdown text"),
    (section_typed, "does not trace"),
    (section_no_runs, "a number with no run"),
    (section_always_v2, "does not state the clean accuracy of v1"),
    (section_two_decimals, "three decimals"),
    (section_truncated, "does not trace"),
    (section_swapped_runs, "does not trace"),
    (section_percent, "a number with no run"),
    (section_no_attack, "does not name the attack"),
    (section_no_n, "on how many test digits"),
    (section_library, "your code calls utils.governance.modelcard.performance_section"),
    (section_clean_only, "robust accuracy of v1"),
], ids=["stub", "typed-in-numbers", "no-run-tags", "another-candidates-numbers", "two-decimals",
        "truncated-not-rounded", "runs-swapped", "percentages", "no-attack-named", "no-n",
        "calls-performance-section", "robust-accuracy-missing"])
def test_exercise_3_rejects(capsys, lab, fn, says):
    _judge(capsys, 3, (fn,), False, says, ev=lab["ev"], trail=lab["audit"])


# --------------------------------------------------------------------------- exercise 4

def r6(**changes):
    fields = dict(id="R6", threat="clean-label backdoor planted through correctly labelled training data",
                  atlas=("AML.T0020", "AML.T0018"), owasp=("ML02", "ML10"), impact=4,
                  impact_why="whoever knows the trigger chooses the answer; review and the scans miss it",
                  measure="clean_label_asr", success="value", controls=(("data cleaning", "03"),),
                  measured=((("data cleaning",), "clean_label_asr_cleaned"),))
    fields.update(changes)
    return risk.Risk(**fields)


def place_solution(r, ev):
    s = risk.score(r, ev)
    return s.likelihood_after, r.impact


def place_register(r, ev):
    row = risk.register(ev, [r]).loc[r.id]
    return row["L after"], row["impact"]


def place_by_hand(r, ev):
    name, _ = r.measurement_for(r.control_names)
    return risk.likelihood(ev.value(name)), r.impact


def place_stub(r, ev):
    return 1, 1


def place_typed(r, ev):
    return 4, r.impact


def place_before(r, ev):
    return risk.score(r, ev).likelihood_before, r.impact


def place_typed_impact(r, ev):
    return risk.score(r, ev).likelihood_after, 4


def place_swapped(r, ev):
    s = risk.score(r, ev)
    return r.impact, s.likelihood_after


def place_floats(r, ev):
    s = risk.score(r, ev)
    return float(s.likelihood_after), float(r.impact)


@pytest.mark.parametrize("risk_,place", [
    (r6(), place_solution),
    (r6(), place_register),
    (r6(atlas=("AML.T0020",), owasp=("ML02",), impact=5), place_by_hand),
    (r6(controls=(("activation clustering with a trusted reference", "03"),),
        measured=((("activation clustering with a trusted reference",), "clean_label_asr_cleaned"),)), place_solution),
], ids=["solution", "from-the-register-table", "fewer-ids-impact-5-by-hand", "other-control-name"])
def test_exercise_4_passes(capsys, lab, risk_, place):
    _judge(capsys, 4, (risk_, place), True, ev=lab["ev"])


@pytest.mark.parametrize("risk_,place,says", [
    (None, place_stub, "r6 should be a risk.Risk"),
    (r6(success="1-value"), place_solution, "do not follow the measured success"),
    (r6(measure="clean_label_asr_cleaned", measured=((("data cleaning",), "clean_label_asr"),)), place_solution,
     "with no control in place"),
    (r6(atlas=("AML.T0043",), owasp=("ML01",)), place_solution, "none of the risk's ATLAS ids"),
    (r6(atlas=("AML.T0020", "AML.T0043")), place_solution, "names another threat"),
    (r6(owasp=("ML02", "ML01")), place_solution, "names another threat"),
    (r6(measure="backdoor_asr", measured=((("data cleaning",), "backdoor_asr_cleaned"),)), place_solution,
     "not a measurement of this threat"),
    (r6(id="R1"), place_solution, "'R6'"),
    (r6(measured=()), place_solution, "lists no measurement"),
    (r6(controls=(("data cleaning", "02"),)), place_solution, "lesson that teaches it"),
    (r6(), place_stub, "of the cell is not"),
    (r6(), place_typed, "the likelihood of the cell"),
    (r6(), place_before, "the likelihood of the cell"),
    (r6(), place_typed_impact, "the impact of the cell"),
    (r6(), place_swapped, "the impact of the cell"),
    (r6(), place_floats, "two integers"),
], ids=["stub", "success-1-value", "cleaned-as-before", "evasion-ids", "an-evasion-atlas-id-too",
        "an-evasion-owasp-id-too", "badnets-measurements", "id-taken", "no-measured", "wrong-lesson",
        "place-stub", "likelihood-typed-in", "likelihood-before-controls", "impact-typed-in",
        "likelihood-and-impact-swapped", "floats"])
def test_exercise_4_rejects(capsys, lab, risk_, place, says):
    _judge(capsys, 4, (risk_, place), False, says, ev=lab["ev"])
