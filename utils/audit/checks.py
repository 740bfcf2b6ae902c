"""The audit's checks: each one number with its sample size, interval, cost and a pass/fail
against a documented threshold (taught in 10_workbench).

Each check is a function ``check(model, data, *, eps, budget, seed) -> CheckResult``:

========================  ==============================================================  ================
check                     value (n, interval)                                               passes when
========================  ==============================================================  ================
``clean_accuracy``        accuracy on the evaluation set (Wilson 95%)                       >= 0.90
``robustness``            robust accuracy at ε, worst case per example over PGD, Square     >= 0.50
                          (and AutoAttack with ``budget="full"``), on a subset (Wilson 95%)
``backdoor``              the largest anomaly index of the trigger search (Neural Cleanse   <= 2.0
                          style, below), plus activation clustering and spectral
                          signatures on the training examples when given
``membership``            TPR at 1% FPR of the loss-threshold attack, training examples     <= 0.05
                          against evaluation examples (bootstrap 95%); needs training data
``extraction``            the lowest fidelity, over the output policies, of a copy           <= 0.90
                          trained on N queries (Wilson 95%)
``drift_baseline``        KS statistic between two halves of the evaluation set's outputs   p >= 0.05
                          (reference statistics for utils.monitoring)
========================  ==============================================================  ================

Thresholds are in :data:`THRESHOLDS`; the minimum sample sizes for a claim in
:data:`MIN_SAMPLES` (100 examples for an accuracy or a robust accuracy: the 95% Wilson
interval of a proportion near 0.5 is then at most ±0.10 wide; 100 non-members for a TPR at
1% FPR, the refusal rule of :func:`utils.privacy.membership.tpr_at_fpr`). Too few examples
for a claim raises a :class:`utils.validation.ValidationError` before anything runs.
Budgets (:data:`BUDGETS`) set subset sizes, attack steps and queries.

The trigger search (:func:`trigger_search`) is new here, not taught in an earlier lesson.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils import validation as v

#: The checks, in the order they run.
CHECKS = ("clean_accuracy", "robustness", "backdoor", "membership", "extraction", "drift_baseline")
#: The checks that fail the audit (exit code 1) by default.
DEFAULT_GATES = ("clean_accuracy", "backdoor", "membership")
#: The norms the robustness check supports.
NORMS = ("Linf",)

#: Per check: the threshold and the direction a passing value lies in.
THRESHOLDS: dict[str, tuple[float, str]] = {
    "clean_accuracy": (0.90, ">="),
    "robustness": (0.50, ">="),
    "backdoor": (2.0, "<="),
    "membership": (0.05, "<="),
    "extraction": (0.90, "<="),
    "drift_baseline": (0.05, ">="),
}

#: Fewest examples a claim rests on (see the module docstring).
MIN_SAMPLES: dict[str, int] = {
    "clean_accuracy": 100, "robustness": 100, "backdoor": 100, "membership": 100, "extraction": 100,
    "drift_baseline": 100,
}

#: What each budget spends. ``robust_n``: examples attacked; ``pgd_steps``; ``square_queries``;
#: ``autoattack``; ``nc_images``/``nc_steps``: the trigger search; ``queries``: the extraction
#: budget N; ``bootstrap``: resamples of the membership interval.
BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {"robust_n": 100, "pgd_steps": 10, "square_queries": 100, "autoattack": False,
              "nc_images": 64, "nc_steps": 300, "queries": 100, "bootstrap": 200},
    "default": {"robust_n": 200, "pgd_steps": 20, "square_queries": 300, "autoattack": False,
                "nc_images": 64, "nc_steps": 300, "queries": 200, "bootstrap": 500},
    "full": {"robust_n": 500, "pgd_steps": 50, "square_queries": 1000, "autoattack": True,
             "nc_images": 128, "nc_steps": 600, "queries": 500, "bootstrap": 1000},
}

TITLES = {
    "clean_accuracy": "Clean accuracy",
    "robustness": "Robust accuracy (evasion)",
    "backdoor": "Backdoor scan",
    "membership": "Membership-inference risk",
    "extraction": "Extraction cost",
    "drift_baseline": "Drift baseline",
}


@dataclass
class CheckResult:
    """One check's outcome (taught in 10_workbench).

    ``value`` with its sample size ``n`` and ``interval`` (``interval_method`` says which, e.g.
    ``"Wilson 95%"``), compared with ``threshold`` in ``direction`` (``">="`` or ``"<="``) to give
    ``passed`` (``None`` when the check could not run: ``note`` says why and what it needs).
    ``gate``: whether a failure fails the audit. ``cost``: ``queries`` to the model, ``cpu_seconds``
    and ``wall_seconds``. ``details``: the check's own numbers (per attack, per class, per policy).
    """

    name: str
    value: float | None
    n: int
    interval: tuple[float, float] | None
    interval_method: str
    threshold: float
    direction: str
    passed: bool | None
    cost: dict
    details: dict = field(default_factory=dict)
    note: str = ""
    gate: bool = False

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)

    def to_dict(self) -> dict:
        """A JSON-ready dict (the scorecard's ``checks`` entries; taught in 10_workbench)."""
        d = asdict(self)
        d["title"] = self.title
        d["interval"] = None if self.interval is None else [float(self.interval[0]), float(self.interval[1])]
        return _plain(d)

    @classmethod
    def from_dict(cls, d: dict) -> "CheckResult":
        """The inverse of :meth:`to_dict` (taught in 10_workbench)."""
        d = {k: val for k, val in d.items() if k != "title"}
        if d.get("interval") is not None:
            d["interval"] = tuple(d["interval"])
        return cls(**d)

    def line(self) -> str:
        """One line: title, value, interval, n, verdict and cost (taught in 10_workbench)."""
        verdict = {True: "PASS", False: "FAIL", None: "NOT RUN"}[self.passed]
        if self.value is None:
            return f"{self.title}: {verdict} ({self.note})"
        ci = f" [{self.interval[0]:.3f}, {self.interval[1]:.3f}]" if self.interval else ""
        return (f"{self.title}: {self.value:.3f}{ci} (n = {self.n}), threshold {self.direction} "
                f"{self.threshold:g}: {verdict}; {self.cost['queries']} queries")


def _plain(x: Any) -> Any:
    """NumPy scalars and arrays as Python numbers and lists, floats rounded to 6 digits."""
    if isinstance(x, dict):
        return {str(k): _plain(val) for k, val in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(val) for val in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return round(f, 6) if math.isfinite(f) else None
    return x


# --------------------------------------------------------------------------- intervals


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``k / n`` (95% by default; Wilson 1927).

    Unlike ``p ± z·sqrt(p(1-p)/n)`` it stays inside [0, 1] and does not collapse to a point
    at 0 or 1. Taught in 10_workbench.
    """
    n = v.integer(n, "n", "wilson", low=1)
    k = v.integer(k, "k", "wilson", 0, n)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(statistic: Callable[..., float], *samples: np.ndarray, n_boot: int = 500, seed: int = 0,
              level: float = 0.95) -> tuple[float, float]:
    """A percentile bootstrap interval: each sample resampled with replacement on its own
    (Efron and Tibshirani 1993), ``statistic(*resampled)`` each time (taught in 10_workbench)."""
    n_boot = v.integer(n_boot, "n_boot", "bootstrap", low=10)
    rng = np.random.default_rng(v.seed(seed, "bootstrap"))
    stats = []
    for _ in range(n_boot):
        stats.append(statistic(*(s[rng.integers(0, len(s), len(s))] for s in samples)))
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


class _Cost:
    """CPU seconds, wall seconds and queries spent inside a ``with`` block."""

    def __enter__(self):
        self.queries = 0
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu_seconds = time.process_time() - self._cpu
        self.wall_seconds = time.perf_counter() - self._wall
        return False

    def as_dict(self) -> dict:
        return {"queries": int(self.queries), "cpu_seconds": round(self.cpu_seconds, 3),
                "wall_seconds": round(self.wall_seconds, 3)}


def _verdict(name: str, value: float) -> tuple[float, str, bool]:
    threshold, direction = THRESHOLDS[name]
    return threshold, direction, bool(value >= threshold if direction == ">=" else value <= threshold)


def _not_run(name: str, note: str, cost: _Cost) -> CheckResult:
    threshold, direction = THRESHOLDS[name]
    return CheckResult(name, None, 0, None, "none", threshold, direction, None, cost.as_dict(), {}, note)


def _budget(budget: str, where: str) -> dict:
    return BUDGETS[v.choice(budget, "budget", where, BUDGETS)]


def _subset(n: int, k: int, seed: int) -> np.ndarray:
    """``k`` of ``n`` indices drawn without replacement, sorted (all of them when k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


@torch.no_grad()
def _predict(model: nn.Module, X: np.ndarray) -> np.ndarray:
    from utils import training

    return training.predict(model, X)


# --------------------------------------------------------------------------- clean accuracy


def clean_accuracy(model: nn.Module, data, *, eps: float = 0.1, budget: str = "default", seed: int = 0) -> CheckResult:
    """Accuracy on the whole evaluation set with its Wilson interval (taught in 10_workbench)."""
    _budget(budget, "clean_accuracy")
    with _Cost() as cost:
        pred = _predict(model, data.X)
        cost.queries = len(pred)
        correct = int((pred == data.y).sum())
    value = correct / data.n
    threshold, direction, passed = _verdict("clean_accuracy", value)
    per_class = {data.classes[c]: float((pred[data.y == c] == c).mean()) for c in np.unique(data.y)}
    return CheckResult("clean_accuracy", value, data.n, wilson(correct, data.n), "Wilson 95%", threshold, direction,
                       passed, cost.as_dict(), {"correct": correct, "per_class": per_class})


# --------------------------------------------------------------------------- robustness


def robustness(model: nn.Module, data, *, eps: float = 0.1, norm: str = "Linf", budget: str = "default",
               seed: int = 0) -> CheckResult:
    """Robust accuracy at ``eps`` (L∞), RobustBench-style (Croce et al. 2021; taught in 10_workbench).

    On a seeded subset of ``robust_n`` examples: clean accuracy, then each attack's accuracy
    (PGD, white-box; Square, black-box; AutoAttack with ``budget="full"``), and the robust
    accuracy: the share of examples that *every* attack fails on (the worst case per example,
    as AutoAttack reports). Square's queries count toward the cost.
    """
    from utils.attacks import evasion

    where = "robustness"
    b = _budget(budget, where)
    eps = v.unit(eps, "eps", where)
    v.choice(norm, "norm", where, NORMS)
    idx = _subset(data.n, b["robust_n"], seed)
    x = torch.as_tensor(data.X[idx])
    y = torch.as_tensor(data.y[idx])
    with _Cost() as cost:
        with torch.no_grad():
            ok = model(x).argmax(1) == y
        cost.queries += len(x)
        per_attack = {}
        robust = ok.clone()
        attacks = [("PGD", lambda: evasion.pgd(model, x, y, eps, steps=b["pgd_steps"], seed=seed),
                    len(x) * (b["pgd_steps"] + 1)),
                   ("Square", lambda: evasion.square(model, x, y, eps, n_queries=b["square_queries"], seed=seed),
                    len(x) * b["square_queries"])]
        if b["autoattack"]:
            attacks.append(("AutoAttack", lambda: evasion.run_torchattacks("AutoAttack", model, x, y, eps, seed=seed),
                            0))
        for name, run, queries in attacks:
            t0 = time.perf_counter()
            x_adv = run()
            with torch.no_grad():
                hit = model(x_adv).argmax(1) == y
            per_attack[name] = {"accuracy": int(hit.sum()) / len(hit), "seconds": round(time.perf_counter() - t0, 3),
                                "queries": int(queries)}
            robust &= hit
            cost.queries += queries
    n = len(x)
    k = int(robust.sum())
    value = k / n
    threshold, direction, passed = _verdict("robustness", value)
    details = {"eps": eps, "norm": norm, "clean_accuracy": int(ok.sum()) / n,
               "clean_interval": list(wilson(int(ok.sum()), n)), "attacks": per_attack,
               "attacks_run": [a[0] for a in attacks]}
    return CheckResult("robustness", value, n, wilson(k, n), "Wilson 95%", threshold, direction, passed,
                       cost.as_dict(), details)


# --------------------------------------------------------------------------- backdoor scan


def trigger_search(model: nn.Module, X: np.ndarray, y: np.ndarray, n_classes: int, *, steps: int = 300,
                   lr: float = 0.1, target_success: float = 0.99, lam: float = 1e-2, seed: int = 0) -> dict:
    """Reverse-engineer, for every class, the smallest trigger that sends clean inputs to it
    (in the style of Neural Cleanse, Wang et al. 2019). New in 10_workbench: no earlier lesson has it.

    For each target class t, a mask ``m`` (H×W, in [0, 1]) and a pattern ``p`` (C×H×W, in
    [0, 1]) are optimised with Adam so that ``(1 - m)·x + m·p`` is classified as t, with an L1
    penalty ``λ·|m|₁``. As in the paper, λ adapts: every 10 steps it grows ×1.5 while the
    trigger works on at least ``target_success`` (99%, as in the paper) of the inputs not of
    class t, and shrinks ÷1.5 otherwise. A class's trigger size is the smallest ``|m|₁`` that
    reached the target success (H·W if none did). A backdoor is a shortcut: its target class
    needs a much smaller trigger than the others. The anomaly index of a class is
    :func:`anomaly_index` of the sizes; Wang et al. flag an index above 2. All classes are
    optimised at once, in one batch. The model's weights are not changed.

    Limits, measured on the course's 8×8 digits (MLP, seeds 0-9, this search with 64 images and
    300 steps): natural classes need small triggers too (a "1" is one stroke), so a clean model
    can reach an index near 2, and the course's standard BadNets backdoor (3×3 patch, 5% poison)
    was flagged, with its target class named, for most seeds but not all. A pass is evidence,
    not proof.

    Returns:
        ``{"sizes", "anomaly_index", "success", "masks", "patterns"}``: per class the trigger's
        L1 size, its anomaly index (positive = smaller than the median), the success it reached,
        and the best mask (K, H, W) and pattern (K, C, H, W) as arrays.
    """
    where = "trigger_search"
    steps = v.integer(steps, "steps", where, low=10)
    n_classes = v.integer(n_classes, "n_classes", where, low=2)
    X = torch.as_tensor(v.images(X, where, allow_empty=False))
    y = torch.as_tensor(v.labels(y, where, n=len(X), n_classes=n_classes))
    v.eval_mode(model, where)
    K, B = n_classes, len(X)
    C, H, W = X.shape[1:]
    gen = torch.Generator().manual_seed(v.seed(seed, where))
    m_raw = (torch.randn(K, 1, H, W, generator=gen) * 0.1 - 2.0).requires_grad_(True)
    p_raw = (torch.randn(K, C, H, W, generator=gen) * 0.1).requires_grad_(True)
    opt = torch.optim.Adam([m_raw, p_raw], lr=lr)
    lams = torch.full((K,), float(lam))
    best = torch.full((K,), float(H * W))
    best_m = torch.sigmoid(m_raw.detach()).clone()
    best_p = torch.sigmoid(p_raw.detach()).clone()
    reached = torch.zeros(K)
    target = torch.arange(K).repeat_interleave(B)
    other = (y[None, :] != torch.arange(K)[:, None]).float()  # (K, B): inputs not already of class t
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        for step in range(steps):
            mask, pattern = torch.sigmoid(m_raw), torch.sigmoid(p_raw)
            xa = (1 - mask[:, None]) * X[None] + (mask * pattern)[:, None]
            logits = model(xa.reshape(K * B, C, H, W))
            ce = F.cross_entropy(logits, target, reduction="none").view(K, B)
            ce = (ce * other).sum(1) / other.sum(1).clamp(min=1)
            size = mask.flatten(1).sum(1)
            loss = (ce + lams * size).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                hit = (logits.argmax(1) == target).float().view(K, B)
                success = (hit * other).sum(1) / other.sum(1).clamp(min=1)
                better = (success >= target_success) & (size < best)
                best = torch.where(better, size.detach(), best)
                best_m[better] = mask.detach()[better]
                best_p[better] = pattern.detach()[better]
                reached = torch.where(better, success, reached)
                if step % 10 == 9:
                    ok = success >= target_success
                    lams = torch.where(ok, lams * 1.5, lams / 1.5)
    finally:
        for p in params:
            p.requires_grad_(True)
    sizes = best.numpy().astype(np.float64)
    return {"sizes": sizes, "anomaly_index": anomaly_index(sizes), "success": reached.numpy().astype(np.float64),
            "masks": best_m[:, 0].numpy(), "patterns": best_p.numpy()}


#: The MAD of :func:`anomaly_index` is at least this share of the median size.
MAD_FLOOR = 0.1


def anomaly_index(sizes, mad_floor: float = MAD_FLOOR) -> np.ndarray:
    """``(median − size) / (1.4826 · MAD)`` per class: how far below the others a class's trigger
    size lies, in robust standard deviations (Wang et al. 2019; taught in 10_workbench).

    With ten classes whose sizes happen to agree closely the MAD is tiny and any small difference
    looks huge; the MAD is therefore taken as at least ``mad_floor`` × the median (10%): a class
    must need a trigger at least 30% smaller than the median to reach an index of 2. This only
    ever lowers the index. ``mad_floor=0`` gives the paper's rule.
    """
    s = np.asarray(sizes, dtype=np.float64)
    mad_floor = v.real(mad_floor, "mad_floor", "anomaly_index", 0.0, 1.0)
    med = np.median(s)
    mad = max(np.median(np.abs(s - med)), mad_floor * med) * 1.4826
    if mad == 0:
        return np.zeros_like(s)
    return (med - s) / mad


def _stamp(X: np.ndarray, mask: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    return ((1 - mask[None, None]) * X + (mask[None, None] * pattern[None])).astype(np.float32)


def backdoor(model: nn.Module, data, *, eps: float = 0.1, budget: str = "default", seed: int = 0) -> CheckResult:
    """Scan for a backdoor (taught in 10_workbench).

    1. The trigger search (:func:`trigger_search`) on ``nc_images`` evaluation inputs; a class
       whose anomaly index exceeds 2 is flagged, and the reversed trigger of the most anomalous
       one is stamped on the *other* evaluation inputs: the share sent to that class (Wilson 95%)
       says whether it works beyond the inputs it was found on.
    2. With training examples: activation clustering checked against the evaluation set as the
       trusted reference (Chen et al. 2018, 03_data_defenses) and spectral-signature scores
       (Tran et al. 2018): per class, how much the top 5% of scores stand out from the median.

    Fails when the trigger search flags a class. The value is the largest anomaly index.
    """
    from utils import models
    from utils.defenses import data as dd

    where = "backdoor"
    b = _budget(budget, where)
    with _Cost() as cost:
        idx = _subset(data.n, b["nc_images"], seed)
        found = trigger_search(model, data.X[idx], data.y[idx], data.n_classes, steps=b["nc_steps"], seed=seed)
        cost.queries += len(idx) * data.n_classes * b["nc_steps"]
        ai = found["anomaly_index"]
        flagged = [int(c) for c in np.flatnonzero(ai > THRESHOLDS["backdoor"][0])]
        top = int(np.argmax(ai))
        rest = np.setdiff1d(np.arange(data.n), idx)
        rest = rest[data.y[rest] != top]
        stamped = _stamp(data.X[rest], found["masks"][top], found["patterns"][top])
        hits = int((_predict(model, stamped) == top).sum())
        cost.queries += len(rest)
        details: dict[str, Any] = {
            "target_class": top if top in flagged else None,
            "flagged_classes": flagged,
            "anomaly_index": ai, "trigger_sizes": found["sizes"], "trigger_success": found["success"],
            "most_anomalous": top, "transfer_success": hits / max(1, len(rest)),
            "transfer_interval": list(wilson(hits, len(rest))) if len(rest) else None, "transfer_n": len(rest),
            "trigger_mask": np.round(found["masks"][top], 3), "trigger_pattern": np.round(found["patterns"][top], 3),
            "images_searched": len(idx), "steps": b["nc_steps"],
        }
        notes = []
        if data.has_training_data:
            try:
                H = models.hidden_activations(model, data.X_train)
                H_ref = models.hidden_activations(model, data.X)
                cost.queries += len(H) + len(H_ref)
                ac = dd.activation_clustering(H, data.y_train, reference=(H_ref, data.y), seed=seed)
                details["activation_clustering"] = {
                    "flagged_classes": [r["class"] for r in ac.per_class if r["flagged"]],
                    "flagged_examples": int(ac.flags.sum()),
                    "per_class": [{k: r[k] for k in ("class", "size", "small_share", "flagged")} for r in ac.per_class]}
                scores = dd.spectral_signature_scores(H, data.y_train)
                ratio = {}
                for c in np.unique(data.y_train):
                    s = np.sort(scores[data.y_train == c])[::-1]
                    k = max(1, int(math.ceil(0.05 * len(s))))
                    ratio[int(c)] = float(s[:k].mean() / max(np.median(s), 1e-12))
                details["spectral_signatures"] = {"top5_over_median": ratio,
                                                  "most_outlying_class": int(max(ratio, key=ratio.get))}
            except v.ValidationError as e:
                notes.append(f"activation clustering and spectral signatures not run ({e})")
        else:
            notes.append("activation clustering and spectral signatures need the training examples "
                         "(x_train, y_train in the .npz); only the trigger search ran")
    value = float(ai.max())
    threshold, direction, passed = _verdict("backdoor", value)
    return CheckResult("backdoor", value, len(idx), None, "none (a per-class statistic; see details)", threshold,
                       direction, passed, cost.as_dict(), details, "; ".join(notes))


# --------------------------------------------------------------------------- membership inference


def membership(model: nn.Module, data, *, eps: float = 0.1, budget: str = "default", seed: int = 0) -> CheckResult:
    """Membership-inference risk: the loss-threshold attack (Yeom et al. 2018; 06_model_theft_and_privacy)
    with training examples as members and the evaluation set as non-members (taught in 10_workbench).

    Balanced: as many members as non-members (a seeded draw). The value is the TPR at 1% FPR,
    the attacker's best threshold (Carlini et al. 2022), with a bootstrap 95% interval; AUC
    alongside. Needs training examples; refused below 100 non-members (no false positive would
    be allowed at 1% FPR; the rule of :func:`utils.privacy.membership.tpr_at_fpr`).
    """
    from utils.privacy import membership as mia

    where = "membership"
    b = _budget(budget, where)
    if not data.has_training_data:
        with _Cost() as cost:
            pass
        return _not_run(where, "needs training examples (x_train, y_train in the .npz): the members of the "
                               "attack; the evaluation set gives the non-members", cost)
    with _Cost() as cost:
        n = min(len(data.y_train), data.n)
        non = _subset(data.n, n, seed)
        mem = _subset(len(data.y_train), n, seed + 1)
        s_mem = mia.threshold_scores(model, data.X_train[mem], data.y_train[mem])
        s_non = mia.threshold_scores(model, data.X[non], data.y[non])
        cost.queries += 2 * n
        fpr = 0.01
        members = np.r_[np.ones(n, bool), np.zeros(n, bool)]
        result = mia.evaluate(np.r_[s_mem, s_non], members, fpr=fpr)
        ci = bootstrap(lambda a, c: mia.tpr_at_fpr(a, c, fpr), s_mem, s_non, n_boot=b["bootstrap"], seed=seed)
    value = float(result.tpr)
    threshold, direction, passed = _verdict(where, value)
    details = {"auc": result.auc, "fpr": fpr, "n_members": n, "n_nonmembers": n,
               "false_positives_allowed": result.false_positives_allowed,
               "roc_fpr": np.round(result.roc["fpr"][:: max(1, len(result.roc["fpr"]) // 200)], 4),
               "roc_tpr": np.round(result.roc["tpr"][:: max(1, len(result.roc["tpr"]) // 200)], 4),
               "mean_loss_members": float(-s_mem.mean()), "mean_loss_nonmembers": float(-s_non.mean())}
    return CheckResult(where, value, 2 * n, ci, "bootstrap 95%", threshold, direction, passed, cost.as_dict(), details)


# --------------------------------------------------------------------------- extraction


def extraction(model: nn.Module, data, *, eps: float = 0.1, budget: str = "default", seed: int = 0) -> CheckResult:
    """Extraction cost: a thief's copy after N queries under each output policy (taught in 10_workbench,
    with the copies of 06_model_theft_and_privacy).

    Half of the evaluation set (seeded) are the thief's queries, the other half measures
    fidelity (the share on which copy and model agree, Wilson 95%). Each policy of
    :data:`utils.theft.policies.POLICIES` (full, rounded, reverse-sigmoid probabilities, top-1
    label) answers the same N queries; :func:`utils.theft.extraction.steal` trains the copy, on
    the returned probabilities and on the top-1 labels, and the thief keeps the better one (an
    attacker's best case). The value is the lowest fidelity over the policies: how well the best
    policy protects.
    """
    from utils import training
    from utils.theft import extraction as ex
    from utils.theft import policies

    where = "extraction"
    b = _budget(budget, where)
    with _Cost() as cost:
        order = np.random.default_rng(seed).permutation(data.n)
        half = data.n // 2
        q_idx, e_idx = order[:half], order[half:]
        N = min(b["queries"], len(q_idx))
        Xq = data.X[q_idx[:N]]
        P = training.predict_proba(model, Xq)
        victim_eval = _predict(model, data.X[e_idx])
        cost.queries += N + len(e_idx)
        rows = {}
        for policy in policies.POLICIES:
            labels, scores = policies.served(P, policy)
            answers = ex.Answers(Xq, labels, None if policy == "label" else scores.astype(np.float32), policy)
            best = None
            for soft in ((False,) if policy == "label" else (True, False)):
                copy = ex.steal(answers, N, n_classes=data.n_classes, seed=seed, soft=soft)
                agree = int((_predict(copy, data.X[e_idx]) == victim_eval).sum())
                if best is None or agree > best[0]:
                    best = (agree, "soft labels" if soft else "hard labels")
            agree, how = best
            rows[policy] = {"fidelity": agree / len(e_idx), "interval": list(wilson(agree, len(e_idx))),
                            "agree": agree, "thief": how}
    worst = min(rows, key=lambda p: rows[p]["fidelity"])
    value = rows[worst]["fidelity"]
    threshold, direction, passed = _verdict(where, value)
    return CheckResult(where, value, len(e_idx), tuple(rows[worst]["interval"]), "Wilson 95%", threshold, direction,
                       passed, cost.as_dict(), {"queries": N, "policies": rows, "best_policy": worst})


# --------------------------------------------------------------------------- drift baseline


def drift_baseline(model: nn.Module, data, *, eps: float = 0.1, budget: str = "default", seed: int = 0) -> CheckResult:
    """Reference statistics for monitoring (08_monitoring) and a split-half stability test
    (taught in 10_workbench).

    The model's softmax outputs on the evaluation set are the reference a monitor compares live
    windows with (``utils.monitoring.drift.ks_test``). The check compares two seeded halves of
    them with the same KS test: a reference whose halves already differ (p < 0.05) is too small
    or too mixed to monitor against. The reference's summary (predicted class shares,
    confidence quantiles) goes into the details; ``reference_outputs`` gives the array.
    """
    from utils import training
    from utils.monitoring import drift

    where = "drift_baseline"
    _budget(budget, where)
    with _Cost() as cost:
        P = training.predict_proba(model, data.X)
        cost.queries += len(P)
        order = np.random.default_rng(seed).permutation(len(P))
        half = len(P) // 2
        res = drift.ks_test(P[order[:half]], P[order[half:]])
    conf = P.max(1)
    shares = np.bincount(P.argmax(1), minlength=P.shape[1]) / len(P)
    value = float(res.p_value)
    threshold, direction, passed = _verdict(where, value)
    details = {"ks_statistic": res.statistic, "p_value": res.p_value, "n_reference": len(P),
               "predicted_shares": np.round(shares, 4), "confidence_mean": float(conf.mean()),
               "confidence_quantiles": {str(q): float(np.quantile(conf, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)},
               "test": "ks_test (utils.monitoring.drift), Bonferroni over the softmax outputs"}
    return CheckResult(where, value, len(P), None, "none (a p-value)", threshold, direction, passed,
                       cost.as_dict(), details)


def reference_outputs(model: nn.Module, data) -> np.ndarray:
    """The drift reference: the model's softmax outputs on the evaluation set, (N, K), for
    ``utils.monitoring.drift.ks_test`` (taught in 10_workbench)."""
    from utils import training

    return training.predict_proba(model, data.X)


#: Check name -> function.
CHECK_FUNCTIONS: dict[str, Callable[..., CheckResult]] = {
    "clean_accuracy": clean_accuracy, "robustness": robustness, "backdoor": backdoor, "membership": membership,
    "extraction": extraction, "drift_baseline": drift_baseline,
}
