"""Checks of labs/09_governance_and_audit_lab.ipynb (taught in notebooks/09_governance_and_audit.ipynb).

The lab's own material is built here too, from the learner's seed and trail: a tampered copy of the
trail whose tampering is not shown (exercise 1), a fourth release candidate with a weakness the
default gate lets through and its release evidence (exercise 2), and the measurement of a threat the
course's register lacks (exercise 4). Each check compares the learner's answer with a reference
computed here, on cases of its own (the tests name the plausible wrong answers:
tests/test_lab_checks_09.py). Failure messages say which case is wrong, never the answer.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np

from utils import validation as v
from utils.course.grading import NotSolved, forbid, require
from utils.governance import evidence as E
from utils.governance import modelcard as MC
from utils.governance import release as R
from utils.governance import risk as RK
from utils.governance import trail as T
from . import Checker
from . import call as _call

#: The lab's tampering kinds, as the learner names them (those of :func:`utils.governance.trail.tamper`).
KINDS = T.TAMPERING
#: Other spellings a learner may use for the same kinds.
_SYNONYMS = {"edited": "edit", "changed": "edit", "deleted": "delete", "removed": "delete", "inserted": "insert",
             "forged": "insert", "swapped": "swap", "reordered": "swap", "moved": "swap", "truncated": "truncate",
             "cut": "truncate"}


# --------------------------------------------------------------------------- exercise 1: material


def _material(where: str, trail: Any, ev: Any = None, seed: Any = 0) -> int:
    """Check the arguments of the lab's material builders; returns the seed."""
    if not isinstance(trail, T.AuditTrail):
        v.fail(where, f"trail is a {type(trail).__name__}", "trail must be the lab's trail.AuditTrail")
    if ev is not None and not isinstance(ev, E.Evidence):
        v.fail(where, f"evidence is a {type(ev).__name__}", "give the lab's evidence (from evidence.collect)")
    return v.seed(seed, where)


def _snapshot(trail: T.AuditTrail, folder: Path, name: str) -> tuple[Path, Path]:
    """A copy of ``trail``'s file and its signed head, written into ``folder`` (09_governance_and_audit_lab)."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"{name}.jsonl"
    shutil.copyfile(trail.path, copy)
    head = folder / f"{name}.head.json"
    head.write_text(json.dumps(trail.head(), indent=1) + "\n", encoding="utf-8")
    return copy, head


def _edit_changes(line: str) -> dict[str, Any]:
    """A plausible edit of one entry: a better number for a measurement, an approval for anything else."""
    data = json.loads(line)["data"]
    if isinstance(data.get("value"), (int, float)) and not isinstance(data.get("value"), bool):
        value = float(data["value"])
        return {"value": round(value - 0.1 if value > 0.5 else value + 0.1, 4)}
    return {"approved_by": "release-manager"}


def _tamper(src: Path, out: Path, how: str, index: int, rehash: bool = False) -> Path:
    """One tampering of the lab: ``trail.tamper`` with the lab's edit (09_governance_and_audit_lab)."""
    if how == "edit":
        line = src.read_text(encoding="utf-8").split("\n")[index]
        return T.tamper(src, out, "edit", index, changes=_edit_changes(line), rehash=rehash)
    if how == "insert":
        return T.tamper(src, out, "insert", index, data={"metric": "robust_accuracy@v1", "value": 0.81,
                                                          "note": "re-measured"})
    return T.tamper(src, out, how, index)


def _draw(rng: np.random.Generator, n: int) -> tuple[str, int, bool]:
    """(kind, position, rehash) of a hidden tampering of a trail of ``n`` entries."""
    how = str(rng.choice(KINDS))
    high = {"edit": n - 1, "delete": n - 2, "insert": n, "swap": n - 2, "truncate": n - 1}[how]
    return how, int(rng.integers(0, high + 1)), bool(rng.integers(0, 2))


def tampered_trail(trail: T.AuditTrail, folder: str | Path, seed: int) -> SimpleNamespace:
    """The material of exercise 1 (09_governance_and_audit_lab): a copy of the learner's trail
    (``intact``), a tampered copy (``path``) whose tampering and position are drawn from ``seed``
    and not shown, the trail's public key (``public_key``, 64 hex digits) and the signed head of
    the intact copy (``head``, a JSON file)."""
    seed = _material("tampered_trail", trail, seed=seed)
    folder = Path(folder)
    intact, head = _snapshot(trail, folder, "trail-copy")
    n = len(T.read_entries(intact))
    how, index, rehash = _draw(np.random.default_rng([seed, 9, 1]), n)
    path = _tamper(intact, folder / "trail-received.jsonl", how, index, rehash)
    return SimpleNamespace(path=path, intact=intact, head=head, public_key=T.public_key_hex(trail.public_key))


# --------------------------------------------------------------------------- exercise 1: check


@contextlib.contextmanager
def _no_method(cls: type, name: str, why: str) -> Iterator[None]:
    """Inside the block, ``cls.name`` raises NotSolved (a method :func:`forbid` cannot reach)."""
    original = cls.__dict__[name]

    def refuse(*_args, **_kwargs):
        raise NotSolved(f"your code calls {cls.__module__}.{cls.__qualname__}.{name}; {why}")

    setattr(cls, name, refuse)
    try:
        yield
    finally:
        setattr(cls, name, original)


_VERIFY_WHY = "check the chain, the signatures and the head yourself (hashlib, trail.canonical, cryptography)"


def _cases(trail: T.AuditTrail, folder: Path, seed: int) -> list[tuple[str, Path, Path, int | None, str | None]]:
    """(what, file, head, position, kind): an intact copy and a tampering of every kind, at the first and
    last entries and at positions drawn from ``seed`` (09_governance_and_audit_lab)."""
    intact, head = _snapshot(trail, folder, "check-copy")
    n = len(T.read_entries(intact))
    rng = np.random.default_rng([seed, 9, 2])

    def mid(low: int, high: int) -> int:
        return int(rng.integers(low, high + 1))

    plan = [("edit", 0, False), ("edit", mid(2, n - 3), False), ("edit", mid(2, n - 3), True), ("edit", n - 1, True),
            ("delete", 0, False), ("delete", mid(2, n - 3), False),
            ("insert", 0, False), ("insert", mid(2, n - 3), False), ("insert", n, False),
            ("swap", 0, False), ("swap", mid(2, n - 4), False), ("swap", n - 2, False),
            ("truncate", mid(2, n - 3), False), ("truncate", n - 1, False)]
    order = rng.permutation(len(plan))
    cases = [("an intact copy", intact, head, None, None)]
    for k, i in enumerate(order, start=1):
        how, index, rehash = plan[i]
        path = _tamper(intact, folder / f"case-{k:02d}.jsonl", how, index, rehash)
        cases.append((f"tampered copy #{k}", path, head, index, how))
    return cases


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return "?"
    word = value.strip().lower()
    return _SYNONYMS.get(word, word)


def _exercise_1(find_tampering: Callable, *, trail: T.AuditTrail, received: SimpleNamespace, seed: int) -> None:
    """find_tampering on the learner's received copy, on an intact copy and on fourteen hidden tamperings
    of the learner's trail (every kind, first and last entries included), without the trail's verifier;
    each answer compared with trail.verify's first bad entry and the tampering applied (09_governance_and_audit_lab)."""
    require(callable(find_tampering), "find_tampering should be a function (path, public_key, head) -> (index, kind)")
    folder = Path(tempfile.mkdtemp(prefix="lab09-trail-"))
    try:
        cases = _cases(trail, folder, seed)
        n0 = len(T.read_entries(received.intact))
        how, index, rehash = _draw(np.random.default_rng([seed, 9, 1]), n0)
        cases.insert(0, ("the copy you received", received.path, received.head, index, how))
        # the reference: the course's verifier agrees with the plan (computed before the learner's code runs)
        for what, path, head, pos, kind in cases:
            check = T.verify(path, received.public_key, head=head)
            if (pos is None) != check.ok or (pos is not None and check.first_bad != pos):
                raise RuntimeError(f"lab09: verify disagrees with the tampering plan on {what}")  # a bug of the lab
        with forbid(T.verify, T.AuditTrail, R.evaluate, R.promote, R.evidence_from_trail, why=_VERIFY_WHY), \
                _no_method(T.Entry, "content_hash", _VERIFY_WHY):
            for what, path, head, pos, kind in cases:
                out = _call(f"find_tampering on {what}", find_tampering, path, received.public_key, head)
                require(isinstance(out, tuple) and len(out) == 2,
                        f"find_tampering should return a tuple (index, kind), got {type(out).__name__} on {what}")
                got_index, got_kind = out
                if pos is None:
                    require(got_index is None and got_kind is None,
                            f"find_tampering reports tampering on {what}: an untouched trail should give (None, None)")
                    continue
                require(got_index is not None and got_kind is not None,
                        f"find_tampering finds nothing wrong with {what}, which was tampered with")
                require(isinstance(got_index, (int, np.integer)) and not isinstance(got_index, bool),
                        f"the index should be an integer (a position in the file), got {got_index!r} on {what}")
                require(_kind(got_kind) in KINDS, f"the kind should be one of {list(KINDS)}, got {got_kind!r} on {what}")
                require(int(got_index) == pos, f"on {what}, the index is not the position where the tampering is")
                require(_kind(got_kind) == kind, f"on {what}, the position is right but the kind of tampering is not")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- exercise 2: material

#: v4's training set: the course MLP adversarially trained like v2, on digits with a 1% BadNets poison.
V4_POISON_RATE = 0.01


def candidate_v4(trail: T.AuditTrail, ev: E.Evidence, seed: int, *, eps: float = E.EPS):
    """Exercise 2's new candidate (09_governance_and_audit_lab): v2's recipe (FGSM with a random
    start at ``eps``) on a training set delivered with a 1% BadNets poison (lesson 02's trigger);
    trains (cached), records its ``"training"`` entry and its four gate measurements
    (``evidence.measure_candidate``) in ``trail``; returns the model."""
    from utils import data, training
    from utils.attacks import poisoning
    from utils.defenses import adversarial as adv

    seed = _material("candidate_v4", trail, ev, seed)
    ds = ev.objects["dataset"] if "dataset" in ev.objects else data.load("digits", seed=seed)
    spec = poisoning.STANDARD_BACKDOOR
    Xp, yp, _ = poisoning.poison_backdoor(ds.X_train, ds.y_train, spec.trigger, spec.target, V4_POISON_RATE,
                                          seed=seed)
    config = training.preset("mlp", seed=seed)
    model = adv.adversarial_training(config, Xp, yp, ds.n_classes, method="fgsm_rs", eps=eps)
    sha = E.weights_sha256(model)
    ev.models["v4"], ev.objects["v4"] = sha, model
    trail.append("training", {"model": "v4", "config": E._config_dict(config), "weights_sha256": sha,
                              "data": "digits train split as delivered by a contractor",
                              "adversarial_training": f"fgsm_rs eps={eps:g}"}, actor="training")
    E.measure_candidate(trail, ev, "v4", model, ds, Xp, yp, seed=seed, eps=eps)
    return model


def release_bundles(trail: T.AuditTrail, ev: E.Evidence, names: tuple[str, ...], folder: str | Path,
                    seed: int) -> tuple[dict[str, dict], Path]:
    """The release evidence of each candidate in ``names`` (09_governance_and_audit_lab), as the lesson
    builds it: the weights as safetensors, signed with a publisher key made here, an ML-BOM, a
    ``"signature"`` entry in the trail, and ``release.evidence_from_trail``. Returns (evidence by
    name, the publisher's public key file)."""
    from utils import data, deployment

    seed = _material("release_bundles", trail, ev, seed)
    missing = [n for n in names if n not in ev.objects or n not in ev.models]
    if missing:
        v.fail("release_bundles", f"no model {missing} in the evidence", f"models: {sorted(ev.models)}")
    folder = Path(folder)
    (folder / "keys").mkdir(parents=True, exist_ok=True)
    publisher = deployment.make_keypair(folder / "keys", overwrite=True)
    bundles = {}
    for name in names:
        weights = folder / f"{name}.safetensors"
        if weights.exists():
            weights.unlink()
        sha = deployment.save_weights(ev.objects[name], weights)
        if sha != ev.models[name]:
            raise RuntimeError(f"lab09: the saved weights of {name} are not the measured ones")
        signature = folder / f"{name}.sig"
        if signature.exists():
            signature.unlink()
        deployment.sign(weights, publisher.private, signature)
        bom = deployment.mlbom(weights, {"digits": data.verified_path("digits")},
                               {"model": "mlp", "seed": seed, "candidate": name}, packages=["torch", "safetensors"],
                               name=f"digits-mlp-{name}", version=name, timestamp=T.step_clock()())
        bom_path = folder / f"{name}.mlbom.json"
        bom_path.write_text(json.dumps(bom, indent=1))
        trail.append("signature", {"model": name, "weights_sha256": sha, "signature": signature.name,
                                   "mlbom": bom_path.name, "publisher": "lab publisher key"}, actor="publisher")
        bundles[name] = R.evidence_from_trail(trail.path, trail.public_key, weights=weights, name="digits-mlp",
                                              version=name.removeprefix("v"), signature=signature, mlbom=bom_path,
                                              publisher_key=publisher.public)
    return bundles, publisher.public


# --------------------------------------------------------------------------- exercise 2: check

#: The measurement that shows v4's weakness.
V4_WEAKNESS = "backdoor_flagged"


def _as_rules(rules: Any) -> list[R.Rule]:
    if isinstance(rules, R.Rule):
        rules = [rules]
    require(isinstance(rules, (list, tuple)) and rules and all(isinstance(r, R.Rule) for r in rules),
            "rules should be a non-empty list of release.Rule")
    return list(rules)


def _exercise_2(rules: Any, *, trail: T.AuditTrail, bundles: dict[str, dict], publisher_key: Any) -> None:
    """The learner's rules on v4 and v2's evidence (traced to the trail, the publisher's key pinned): v4
    blocked by a rule of the learner's on the measurement that shows its weakness, v2 promoted; the
    trail verifies and holds the blocked release of v4 by that rule (09_governance_and_audit_lab)."""
    rules = _as_rules(rules)
    kw = {"trail_path": trail.path, "public_key": trail.public_key, "publisher_key": publisher_key}
    if not R.evaluate(bundles["v4"], R.DEFAULT_RULES, **kw).passed:
        raise RuntimeError("lab09: v4 does not pass the default rules, so the exercise has no point")
    d4 = R.evaluate(bundles["v4"], rules, **kw)
    d2 = R.evaluate(bundles["v2"], rules, **kw)
    require(not d4.passed, "your rules promote v4")
    mine = [r for r in d4.failed if r.rule not in R.DEFAULT_RULES]
    require(mine, "v4 is blocked, but only by the default rules: the blocking rule should be yours")
    fitting = [r for r in mine if r.rule.metric == V4_WEAKNESS]
    require(fitting, "the rule of yours that blocks v4 is not about the measurement that shows what is wrong with v4")
    require(d2.passed, "your rules block v2 too: " + "; ".join(f"{r.rule.name} ({r.rule.text()})" for r in d2.failed))
    for r in fitting:
        require(len(r.rule.why.strip()) >= 15, f"rule {r.rule.name!r}: say in its why what it protects against")
    check = T.verify(trail.path, trail.public_key)
    require(check.ok, f"the trail does not verify: {check.summary()}")
    names = {r.rule.name for r in fitting}
    sha = bundles["v4"]["model"]["sha256"]
    recorded = [e for e in trail.entries() if e.kind == "release" and e.data.get("decision") == "blocked"
                and e.data.get("model", {}).get("sha256") == sha
                and names & {f.get("rule") for f in e.data.get("failed", [])}]
    require(recorded, "the trail holds no blocked release of v4 by your rule: let release.promote decide and record it")


# --------------------------------------------------------------------------- exercise 3: check

_DIGITS = re.compile(r"^-?\d+\.(\d+)$")


def _exercise_3(robustness_section: Callable, *, ev: E.Evidence, trail: T.AuditTrail) -> None:
    """robustness_section for three candidates: no untraceable number (modelcard.untraceable against
    the trail), the candidate's own clean and robust accuracy traced, three decimals, the attack,
    its eps and both n named; modelcard's own sections refused (09_governance_and_audit_lab)."""
    require(callable(robustness_section), "robustness_section should be a function (evidence, candidate) -> str")
    entries = trail.entries()
    candidates = [c for c in ("v1", "v2", "v4") if f"robust_accuracy@{c}" in ev.measurements]
    for cand in candidates:
        clean, robust = ev[f"clean_accuracy@{cand}"], ev[f"robust_accuracy@{cand}"]
        with forbid(MC.performance_section, MC.model_card, why="write the section yourself from the measurements"):
            text = _call(f"robustness_section(evidence, {cand!r})", robustness_section, ev, cand)
        require(isinstance(text, str) and text.strip(), f"robustness_section should return Markdown text (for {cand})")
        problems = MC.untraceable(text, entries)
        require(not problems, f"for {cand}, a number does not trace to the trail: {problems[0] if problems else ''}")
        found = MC.TRACED.findall(text)
        runs = {short for _, short in found}
        for m, what in ((clean, "clean accuracy"), (robust, "robust accuracy")):
            require(m.run[:8] in runs, f"for {cand}, the section does not state the {what} of {cand} with its run")
        short = [value for value, _ in found if not (_DIGITS.match(value) and len(_DIGITS.match(value).group(1)) >= 3)]
        require(not short, f"for {cand}, state each number with at least three decimals, as the card does")
        require("PGD" in text, f"for {cand}, the section does not name the attack")
        eps = re.search(r"eps=([0-9.]+)", robust.method).group(1)
        require(re.search(rf"(?:eps|ε)\s*=\s*{re.escape(eps)}(?![0-9])", text),
                f"for {cand}, the section does not state the attack's budget (eps=...)")
        for m, what in ((clean, "clean"), (robust, "robust")):
            require(re.search(rf"(?<![\d.]){m.n}(?![\d.])", text),
                    f"for {cand}, the section does not say on how many test digits the {what} accuracy rests")


# --------------------------------------------------------------------------- exercise 4: material

#: The measurements of exercise 4's threat (the names the learner is given).
CLEAN_LABEL = ("clean_label_asr", "clean_label_asr_cleaned")
CLEAN_LABEL_RATE = 0.09


def measure_clean_label(trail: T.AuditTrail, ev: E.Evidence, seed: int) -> tuple[E.Measurement, E.Measurement]:
    """Exercise 4's measurements (09_governance_and_audit_lab), recorded as ``"evaluation"`` entries:
    lesson 02's clean-label backdoor (a 4×4 checkerboard on 9% of the training set, all zeros made
    hard with PGD at ε = 0.2 against v1, labels untouched), its attack success rate
    (``clean_label_asr``), and the rate after cleaning with activation clustering against the trusted
    validation split and retraining (``clean_label_asr_cleaned``)."""
    from utils import attacks, data, training
    from utils.attacks import poisoning
    from utils.defenses import data as dd

    seed = _material("measure_clean_label", trail, ev, seed)
    ds = ev.objects["dataset"] if "dataset" in ev.objects else data.load("digits", seed=seed)
    config = training.preset("mlp", seed=seed)
    clean_model = ev.objects["v1"] if "v1" in ev.objects else training.fit(config, ds.X_train, ds.y_train, ds.n_classes)
    trigger, target = poisoning.trigger_at(4, "bottom-right"), 0
    spec = poisoning.BackdoorSpec(trigger, target, CLEAN_LABEL_RATE)
    t0 = time.perf_counter()
    _, _, idx = poisoning.clean_label_poison(ds.X_train, ds.y_train, trigger, target, CLEAN_LABEL_RATE, seed=seed)
    X_hard = ds.X_train.copy()
    X_hard[idx] = attacks.pgd(clean_model, ds.X_train[idx], ds.y_train[idx], eps=0.2, steps=20, seed=seed).cpu().numpy()
    Xp, yp, _ = poisoning.clean_label_poison(ds.X_train, ds.y_train, trigger, target, CLEAN_LABEL_RATE, seed=seed,
                                             X_hard=X_hard)
    poisoned = training.fit(config, Xp, yp, ds.n_classes)
    sha = E.weights_sha256(poisoned)
    ev.models["clean-label"], ev.objects["clean-label"] = sha, poisoned
    trail.append("training", {"model": "clean-label", "config": E._config_dict(config), "weights_sha256": sha,
                              "data": "digits train split, 9% clean-label poison"}, actor="training")
    asr = poisoning.evaluate_backdoor(poisoned, ds.X_test, ds.y_test, trigger, target)["asr"]
    n_asr = int((ds.y_test != target).sum())
    before = E.record(trail, CLEAN_LABEL[0], asr, n=n_asr, lesson="02",
                      method="clean-label 4x4 checkerboard on 9% of the set, target 0", model=sha,
                      seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    det = E._scan(poisoned, Xp, yp, ds.X_val, ds.y_val, ds.n_classes, seed)
    cleaned = dd.retrain_without(config, Xp, yp, det.flags, ds.X_test, ds.y_test, backdoor=spec)
    sha_c = E.weights_sha256(cleaned.model)
    ev.models["clean-label-cleaned"] = sha_c
    trail.append("training", {"model": "clean-label-cleaned", "config": E._config_dict(config),
                              "weights_sha256": sha_c, "removed": int(det.n_flagged),
                              "data": "digits train split, clean-label poison, flagged examples removed"},
                 actor="training")
    after = E.record(trail, CLEAN_LABEL[1], cleaned.asr, n=n_asr, lesson="03",
                     method="activation clustering + trusted reference, retrained", model=sha_c,
                     seconds=time.perf_counter() - t0)
    ev.measurements.update({before.name: before, after.name: after})
    return before, after


# --------------------------------------------------------------------------- exercise 4: check

#: ATLAS and OWASP ids that fit a backdoor planted through the training data, and ids of other threats.
FITTING_ATLAS, FITTING_OWASP = {"AML.T0020", "AML.T0018"}, {"ML02", "ML10"}
OTHER_ATLAS = {"AML.T0043", "AML.T0015", "AML.T0024", "AML.T0024.000", "AML.T0024.001", "AML.T0024.002",
               "AML.T0040", "AML.T0029", "AML.T0011", "AML.T0042"}
OTHER_OWASP = {"ML01", "ML03", "ML04", "ML05", "ML09"}


def _with_values(ev: E.Evidence, values: dict[str, float]) -> E.Evidence:
    """A copy of ``ev`` whose named measurements hold other values (the check's what-if evidence)."""
    out = E.Evidence(dict(ev.measurements), dict(ev.models), dict(ev.objects))
    for name, value in values.items():
        out.measurements[name] = dataclasses.replace(ev.measurements[name], value=value)
    return out


def _exercise_4(r6: Any, place: Callable, *, ev: E.Evidence) -> None:
    """The learner's Risk R6 (valid, fitting ATLAS and OWASP ids, the clean-label measurements before and
    after its control, scored as risk.score does) and place(risk, evidence) -> its heat-map cell with
    the controls in place, on the real evidence and on what-if evidence (09_governance_and_audit_lab)."""
    require(isinstance(r6, RK.Risk), "r6 should be a risk.Risk")
    require(r6.id == "R6", "the new risk's id should be 'R6' (R1-R5 are taken)")
    require(set(r6.atlas) & FITTING_ATLAS, "none of the risk's ATLAS ids is a technique of this threat")
    require(not set(r6.atlas) & OTHER_ATLAS, "an ATLAS id of the risk names another threat")
    require(set(r6.owasp) & FITTING_OWASP, "none of the risk's OWASP ids is an entry of this threat")
    require(not set(r6.owasp) & OTHER_OWASP, "an OWASP id of the risk names another threat")
    known = set(ev.measurements)
    require(r6.measure in known, f"the risk's measure {r6.measure!r} is not a measurement of the evidence")
    require(r6.measure in CLEAN_LABEL, "the risk's measure is not a measurement of this threat")
    require(r6.measure == CLEAN_LABEL[0], "the risk's measure should be the attack with no control in place")
    require(r6.measured, "the risk lists no measurement with a control in place")
    for combo, name in r6.measured:
        require(name in known, f"the risk's measured names {name!r}, which is not a measurement of the evidence")
    require(CLEAN_LABEL[1] in {name for _, name in r6.measured},
            "the risk does not point at the measurement of the attack with its control in place")
    require(any(lesson == "03" for _, lesson in r6.controls), "the risk's control is not the lesson that teaches it")
    try:
        RK.register(ev, RK.RISKS + (r6,))
    except Exception as e:  # the learner's risk may break the register in any way
        raise NotSolved(f"the register cannot score your risk: {str(e)[:160]}") from None
    before, after = CLEAN_LABEL
    what_ifs = [("the lab's evidence", ev)] + [
        (f"what-if evidence #{k}", _with_values(ev, {before: b, after: a}))
        for k, (b, a) in enumerate(((0.9, 0.03), (0.1, 0.45), (0.55, 0.85), (0.3, 0.12)), start=1)]
    for what, e in what_ifs:
        s = RK.score(r6, e)
        require((s.likelihood_before, s.likelihood_after) == (RK.likelihood(e.value(before)), RK.likelihood(e.value(after))),
                f"scored on {what}, your risk's likelihoods do not follow the measured success of the attack")
    require(callable(place), "place should be a function (risk, evidence) -> (likelihood, impact)")
    for impact in sorted({r6.impact, 1 + r6.impact % 5}):
        risk = dataclasses.replace(r6, impact=impact)
        for what, e in what_ifs:
            truth = (RK.likelihood(e.value(after)), impact)  # the attack's success rate, controls in place
            got = _call(f"place on {what}", place, risk, e)
            require(isinstance(got, tuple) and len(got) == 2,
                    f"place should return a tuple (likelihood, impact), got {type(got).__name__}")
            require(all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in got),
                    "place should return two integers (likelihood, impact)")
            require(int(got[1]) == impact, f"on {what}, the impact of the cell is not the risk's")
            require(int(got[0]) == truth[0], f"on {what}, the likelihood of the cell is not the one the "
                                             f"measured attack success gives with the controls in place")


check = Checker("lab09", {
    1: ("find the tampered entry", _exercise_1),
    2: ("a release rule", _exercise_2),
    3: ("a model card section from recorded metrics", _exercise_3),
    4: ("score a new threat into the register", _exercise_4),
})
