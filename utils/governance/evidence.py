"""The course's measurements as evidence: each number computed here, recorded in the audit trail.

Lesson 09 governs the models of lessons 01–08. It does not copy their numbers: it re-measures
the headline effect of each control taught (quickly, on the digits, every model cached by
``utils.training``) and records each measurement as an ``"evaluation"`` entry of the audit
trail, whose hash is the number's provenance. The model card, the risk register and the
release gate read only :class:`Measurement` objects, so every number they show can be traced
to the entry that produced it (taught in 09_governance_and_audit).

What is measured (the control and the lesson that taught it):

- clean and robust accuracy (PGD, L∞ ε) of the course MLP and of an adversarially trained one
  (05); the share of a BadNets trigger's test images sent to its target before and after
  cleaning the training set with activation clustering against a trusted reference (03);
- the fidelity of a copy stolen with the same queries under full probabilities and under a
  label-only API (06, 07); the membership attack's TPR at a low FPR on an overfit target with
  and without DP-SGD (06);
- per release candidate: clean and robust accuracy, the backdoor scan's flagged share of its
  training set, and the membership TPR of its own training data against unseen data.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from utils import validation as v

#: PGD settings of every robust accuracy here: L∞ ε, steps, and the test images attacked.
EPS = 0.1
PGD_STEPS = 20
N_ROBUST = 200
#: The membership attack's false-positive rate (its TPR is read there).
MEMBERSHIP_FPR = 0.01
#: The backdoor scan's trusted-reference rule: a small cluster is flagged only when the trusted
#: examples of its class fall into it at most this many times as often as the training examples
#: (lesson 03's default, 0.5, flags a natural sub-style of a clean class on some seeds).
SCAN_REFERENCE_RATIO = 0.25
#: Queries of the extraction measurement (the thief's own digits, the validation split).
N_QUERIES = 300
#: A per-client query quota (lesson 07's API): the thief gets this many answers, labels only.
QUOTA = 50


@dataclass(frozen=True)
class Measurement:
    """One measured number and where it came from (taught in 09_governance_and_audit).

    ``run`` is the hash of the audit-trail entry that recorded it; ``model`` the sha256 of the
    weights it was measured on; ``n`` the number of examples it rests on."""

    name: str
    value: float
    n: int
    lesson: str
    method: str
    model: str
    run: str
    seconds: float

    def short(self) -> str:
        """``0.967 [run 1a2b3c4d]``: the value with its provenance, as the model card prints it."""
        return f"{self.value:.3f} [run {self.run[:8]}]"


def weights_sha256(model) -> str:
    """sha256 of a model's weights as safetensors bytes: the id of a model version (taught in
    09_governance_and_audit)."""
    from safetensors.torch import save

    state = {k: t.detach().cpu().contiguous() for k, t in model.state_dict().items()}
    return hashlib.sha256(save(state)).hexdigest()


def record(trail, name: str, value: float, *, n: int, lesson: str, method: str, model: str,
           seconds: float = 0.0, **extra: Any) -> Measurement:
    """Append one measurement to the trail as an ``"evaluation"`` entry; the entry's hash
    becomes the measurement's ``run`` (taught in 09_governance_and_audit)."""
    where = "evidence.record"
    value = v.real(value, name, where)
    n = v.integer(n, "n", where, 1)
    data = {"metric": name, "value": round(float(value), 4), "n": n, "lesson": lesson, "method": method,
            "model": model, **extra}
    entry = trail.append("evaluation", data, actor="evaluation")
    return Measurement(name, round(float(value), 4), n, lesson, method, model, entry.hash, round(seconds, 2))


@dataclass
class Evidence:
    """Every measurement of one run of the course's evaluation, by name (taught in
    09_governance_and_audit). ``models`` maps a model's name to its weights' sha256."""

    measurements: dict[str, Measurement] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> Measurement:
        if name not in self.measurements:
            v.fail("Evidence", f"no measurement {name!r}", f"measured: {sorted(self.measurements)}")
        return self.measurements[name]

    def value(self, name: str) -> float:
        """The value of one measurement."""
        return self[name].value

    def table(self):
        """The measurements as a DataFrame: value, n, lesson, method, model and run (short hashes)."""
        import pandas as pd

        rows = [{"measurement": m.name, "value": m.value, "n": m.n, "lesson": m.lesson, "method": m.method,
                 "model": m.model[:8], "run": m.run[:8]} for m in self.measurements.values()]
        return pd.DataFrame(rows).set_index("measurement")

    def gate_metrics(self, candidate: str) -> dict[str, dict]:
        """The release gate's metrics of one candidate: ``{metric: {"value", "run"}}`` from the
        measurements named ``<metric>@<candidate>``."""
        suffix = f"@{candidate}"
        out = {m.name[:-len(suffix)]: {"value": m.value, "run": m.run}
               for m in self.measurements.values() if m.name.endswith(suffix)}
        if not out:
            v.fail("Evidence.gate_metrics", f"no measurements of candidate {candidate!r}",
                   f"candidates: {sorted({m.name.split('@')[1] for m in self.measurements.values() if '@' in m.name})}")
        return out


def _robust(model, X, y, eps: float, seed: int) -> float:
    import torch

    from utils.attacks import evasion

    x = torch.as_tensor(X[:N_ROBUST], dtype=torch.float32)
    t = torch.as_tensor(y[:N_ROBUST])
    torch.manual_seed(seed)
    return float(evasion.robust_accuracy(model, evasion.pgd(model, x, t, eps, steps=PGD_STEPS), t))


def _scan(model, X, y, X_ref, y_ref, n_classes: int, seed: int):
    from utils import models
    from utils.defenses import data as dd

    feats = models.hidden_activations(model, X, layer=0)
    ref = models.hidden_activations(model, X_ref, layer=0)
    return dd.activation_clustering(feats, y, reference=(ref, y_ref), max_reference_ratio=SCAN_REFERENCE_RATIO,
                                    seed=seed)


def _membership_tpr(model, X_in, y_in, X_out, y_out) -> float:
    from utils.privacy import membership as mi

    s_in = mi.threshold_scores(model, X_in, y_in)
    s_out = mi.threshold_scores(model, X_out, y_out)
    return float(mi.tpr_at_fpr(s_in, s_out, MEMBERSHIP_FPR))


def measure_candidate(trail, evidence: Evidence, candidate: str, model, ds, X_train, y_train, *,
                      seed: int = 0, eps: float = EPS) -> dict[str, Measurement]:
    """The release gate's four measurements of one model version, recorded as
    ``<metric>@<candidate>`` (taught in 09_governance_and_audit):

    - ``clean_accuracy`` on the test split; ``robust_accuracy`` under PGD at ``eps``;
    - ``backdoor_flagged``: the share of its training set that activation clustering flags in the
      candidate's first hidden layer, with the trusted validation split as reference (a small
      cluster counts only if trusted examples of its class fall into it at most a quarter as
      often as training examples do: :data:`SCAN_REFERENCE_RATIO`);
    - ``membership_tpr``: the loss-threshold attack's TPR at 1% FPR, its training set against
      the test split (data it never saw).
    """
    from utils import training

    sha = weights_sha256(model)
    evidence.models[candidate] = sha
    out = {}
    t0 = time.perf_counter()
    acc = training.accuracy(model, ds.X_test, ds.y_test)
    out["clean_accuracy"] = record(trail, f"clean_accuracy@{candidate}", acc, n=len(ds.y_test), lesson="00",
                                   method="test accuracy", model=sha, seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    rob = _robust(model, ds.X_test, ds.y_test, eps, seed)
    out["robust_accuracy"] = record(trail, f"robust_accuracy@{candidate}", rob, n=min(N_ROBUST, len(ds.y_test)),
                                    lesson="04", method=f"PGD-{PGD_STEPS}, Linf eps={eps:g}", model=sha,
                                    seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    det = _scan(model, X_train, y_train, ds.X_val, ds.y_val, ds.n_classes, seed)
    out["backdoor_flagged"] = record(trail, f"backdoor_flagged@{candidate}", det.n_flagged / len(y_train),
                                     n=len(y_train), lesson="03",
                                     method="activation clustering, trusted reference", model=sha,
                                     seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    tpr = _membership_tpr(model, X_train, y_train, ds.X_test, ds.y_test)
    out["membership_tpr"] = record(trail, f"membership_tpr@{candidate}", tpr, n=len(y_train) + len(ds.y_test),
                                   lesson="06", method=f"loss threshold, TPR at FPR={MEMBERSHIP_FPR:g}",
                                   model=sha, seconds=time.perf_counter() - t0)
    evidence.measurements.update({m.name: m for m in out.values()})
    return out


def collect(trail, seed: int = 0, *, eps: float = EPS) -> Evidence:
    """Train (or load from the cache) the course's models, measure every control's effect and
    the release candidates, and record it all in ``trail`` (taught in 09_governance_and_audit).

    The trail gets, in order: the data set's ``"data"`` entry (its file's sha256 and the split
    seed), a ``"training"`` entry per model (its configuration and weights' sha256) and an
    ``"evaluation"`` entry per measurement. Candidates: ``v1`` the course MLP, ``v2`` the MLP
    adversarially trained (FGSM with a random start, ε = ``eps``), ``v3`` an MLP trained on a
    BadNets-poisoned set (lesson 02's standard backdoor).
    """
    from utils import data, training
    from utils.attacks import poisoning
    from utils.defenses import adversarial as adv
    from utils.defenses import data as dd
    from utils.privacy import dp
    from utils.privacy import membership as mi
    from utils.theft import extraction as ex
    from utils.theft import policies

    seed = v.seed(seed, "evidence.collect")
    eps = v.real(eps, "eps", "evidence.collect", 0.0, 1.0, open_low=True)
    ev = Evidence()
    ds = data.load("digits", seed=seed)
    trail.append("data", {"dataset": "digits", "sha256": data.sha256_file(data.verified_path("digits")), "split_seed": seed,
                          "n_train": int(len(ds.y_train)), "n_val": int(len(ds.y_val)),
                          "n_test": int(len(ds.y_test))}, actor="data")

    def trained(name: str, model, config, **extra):
        sha = weights_sha256(model)
        ev.models[name] = sha
        ev.objects[name] = model
        trail.append("training", {"model": name, "config": _config_dict(config), "weights_sha256": sha, **extra},
                     actor="training")
        return sha

    config = training.preset("mlp", seed=seed)
    base = training.fit(config, ds.X_train, ds.y_train, ds.n_classes)
    trained("v1", base, config, data="digits train split")
    hardened = adv.adversarial_training(config, ds.X_train, ds.y_train, ds.n_classes, method="fgsm_rs", eps=eps)
    trained("v2", hardened, config, data="digits train split", adversarial_training=f"fgsm_rs eps={eps:g}")
    spec = poisoning.STANDARD_BACKDOOR
    Xp, yp, _ = poisoning.poison_backdoor(ds.X_train, ds.y_train, spec.trigger, spec.target, spec.poison_rate,
                                          seed=seed)
    poisoned = training.fit(config, Xp, yp, ds.n_classes)
    trained("v3", poisoned, config, data="digits train split, 5% BadNets poison")

    for name, model, X, y in (("v1", base, ds.X_train, ds.y_train), ("v2", hardened, ds.X_train, ds.y_train),
                              ("v3", poisoned, Xp, yp)):
        measure_candidate(trail, ev, name, model, ds, X, y, seed=seed, eps=eps)

    # backdoor: attack success before and after cleaning (lesson 03)
    t0 = time.perf_counter()
    asr = poisoning.evaluate_backdoor(poisoned, ds.X_test, ds.y_test, spec.trigger, spec.target)["asr"]
    n_asr = int((ds.y_test != spec.target).sum())
    m = record(trail, "backdoor_asr", asr, n=n_asr, lesson="02", method="BadNets 3x3 trigger, target 0",
               model=ev.models["v3"], seconds=time.perf_counter() - t0)
    ev.measurements[m.name] = m
    t0 = time.perf_counter()
    det = _scan(poisoned, Xp, yp, ds.X_val, ds.y_val, ds.n_classes, seed)
    cleaned = dd.retrain_without(config, Xp, yp, det.flags, ds.X_test, ds.y_test, backdoor=spec)
    trained("v3-cleaned", cleaned.model, config, data="digits train split, poison, flagged examples removed",
            removed=int(det.n_flagged))
    m = record(trail, "backdoor_asr_cleaned", cleaned.asr, n=n_asr, lesson="03",
               method="activation clustering + trusted reference, retrained", model=ev.models["v3-cleaned"],
               seconds=time.perf_counter() - t0)
    ev.measurements[m.name] = m

    # robustness before and after adversarial training (lesson 05): the candidates' numbers
    for name, cand in (("robust_accuracy", "v1"), ("robust_accuracy_hardened", "v2")):
        src = ev.measurements[f"robust_accuracy@{cand}"]
        ev.measurements[name] = Measurement(name, src.value, src.n, "05", src.method, src.model, src.run, src.seconds)

    # extraction fidelity per output policy (lessons 06 and 07)
    Xq = ex.query_set("natural", min(N_QUERIES, len(ds.y_val)), ds.X_val, seed=seed)
    P = training.predict_proba(base, Xq)
    for policy, name, budget in (("full", "extraction_fidelity", len(Xq)),
                                 ("label", "extraction_fidelity_label_only", len(Xq)),
                                 ("label", "extraction_fidelity_quota", QUOTA)):
        t0 = time.perf_counter()
        labels, scores = policies.served(P, policy)
        answers = ex.Answers(Xq, labels, None if policy == "label" else scores, policy)
        copy = ex.steal(answers, budget=budget, n_classes=ds.n_classes, seed=seed)
        fid = ex.fidelity(copy, base, ds.X_test)
        m = record(trail, name, fid, n=len(ds.y_test), lesson="06",
                   method=f"copy trained on {budget} answers ({policy} output), agreement on the test split",
                   model=ev.models["v1"], seconds=time.perf_counter() - t0, queries=int(budget))
        ev.measurements[name] = m

    # an unsafe model file: a pickle payload loaded the old way, then through the load gate (lesson 07)
    ev.measurements.update(_supply_chain(trail, ev.models["v1"]))

    # membership inference with and without DP-SGD (lesson 06)
    split = mi.digits_split(seed, n_members=mi.OVERFIT_MEMBERS)
    Xm, ym = split.member_data()
    target = mi.train_target(split, mi.OVERFIT_CONFIG)
    dp_config = dp.DPConfig(seed=seed)
    private = dp.train_dp(dp_config, Xm, ym, split.n_classes)
    for name, model, label in (("membership_tpr", target, "overfit target"),
                               ("membership_tpr_dp", private, "DP-SGD target")):
        t0 = time.perf_counter()
        sha = trained(f"membership {label}", model, mi.OVERFIT_CONFIG if model is target else dp_config,
                      members=int(split.members.sum()))
        result = mi.evaluate(mi.threshold_scores(model, split.X, split.y), split.members, MEMBERSHIP_FPR)
        m = record(trail, name, result.tpr, n=len(split.y), lesson="06",
                   method=f"loss threshold, TPR at FPR={MEMBERSHIP_FPR:g} ({label})", model=sha,
                   seconds=time.perf_counter() - t0, auc=round(result.auc, 4))
        ev.measurements[name] = m
    ev.objects["dataset"] = ds
    return ev


def _supply_chain(trail, model_sha: str) -> dict[str, Measurement]:
    import tempfile
    from pathlib import Path

    from utils import deployment

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        evil = deployment.make_malicious_pickle(work / "model.pt", work / "ran")
        ran = deployment.unsafe_load_in_subprocess(evil, work / "ran")
        out["unsafe_file_ran"] = record(trail, "unsafe_file_ran", float(ran), n=1, lesson="07",
                                        method="torch.load(weights_only=False) of a pickle payload, in a subprocess",
                                        model=model_sha, seconds=time.perf_counter() - t0)
        t0 = time.perf_counter()
        from utils import models

        # the strongest case for the gate: the file is pinned and signed by the publisher's own key
        (work / "keys").mkdir()
        keys = deployment.make_keypair(work / "keys")
        signature = deployment.sign(evil, keys.private, work / "model.sig")
        try:
            deployment.load_gate(evil, sha256=deployment.sha256_file(evil), public_key=keys.public,
                                 signature=signature, model_factory=lambda: models.build_model("mlp", (1, 8, 8), 10))
            loaded = 1.0
        except deployment.GateRefusal:
            loaded = 0.0
        out["unsafe_file_ran_gated"] = record(trail, "unsafe_file_ran_gated", loaded, n=1, lesson="07",
                                              method="the same file, pinned and signed, through the load gate",
                                              model=model_sha,
                                              seconds=time.perf_counter() - t0)
    return out


def _config_dict(config) -> dict:
    d = asdict(config)
    return {k: (list(val) if isinstance(val, tuple) else val) for k, val in d.items()}
