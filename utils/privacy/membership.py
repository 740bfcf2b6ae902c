"""Membership inference: does a model reveal which examples it was trained on?
(taught in 06_model_theft_and_privacy).

The experiment design: a *pool* of labelled examples (the digits' train and
validation splits, 1,437 images) is split at random, fixed by a seed, into two
halves; the target model is trained on one half (the *members*), the other half
are the *non-members*. Evaluation is balanced: every pool example is scored once,
half of them members. The test split stays out of the pool, for accuracy.

Two attacks produce one score per example, higher meaning "member":

- the threshold attack (Yeom et al. 2018): the negative loss, or the confidence
  in the true class; members tend to have lower loss.
- LiRA (Carlini et al. 2022): shadow models, each trained on a random half of the
  pool, give for every example the distribution of the logit-scaled confidence
  phi = log(p / (1 - p)) when it is IN the training set and when it is OUT; the
  score is a likelihood ratio (online: IN and OUT Gaussians) or a one-sided test
  against OUT alone (offline). The lesson uses the online version.

Scores become ROC curves, AUC and TPR at a low FPR through :mod:`utils.metrics`.
A TPR at an FPR rests on ``floor(fpr * n_nonmembers)`` false positives: with the
digits' ~719 non-members, 1% FPR rests on 7 of them, and 0.1% (which needs at
least 1,000 non-members) is refused by :func:`tpr_at_fpr`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from utils import metrics, training
from utils import validation as v
from utils.models import device_of
from utils.training import TrainConfig

#: The course's target model: the MLP preset, trained on the members.
TARGET_CONFIG: TrainConfig = training.preset("mlp")

#: A deliberately overfit target: the same MLP and settings (no weight decay), trained
#: on few members (:data:`OVERFIT_MEMBERS`), so that it memorises them. (Training the
#: course target longer does not widen its gap: the digits are easy, and the losses of
#: members and of most non-members both go to zero.)
OVERFIT_CONFIG: TrainConfig = training.preset("mlp")

#: Members of the overfit target; the other ~1,237 pool examples are its non-members.
OVERFIT_MEMBERS = 200


@dataclass(frozen=True)
class MembershipSplit:
    """A member / non-member pool (taught in 06_model_theft_and_privacy).

    ``X``, ``y``: the pool; ``members``: boolean mask of the examples the target
    is trained on (by default half of the pool, rounded down: a balanced
    evaluation); ``seed``: what drew it.
    """

    X: np.ndarray
    y: np.ndarray
    members: np.ndarray
    n_classes: int
    seed: int
    X_test: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    y_test: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    @property
    def n_members(self) -> int:
        return int(self.members.sum())

    @property
    def n_nonmembers(self) -> int:
        return int((~self.members).sum())

    def member_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The target's training set (taught in 06_model_theft_and_privacy)."""
        return self.X[self.members], self.y[self.members]

    def summary(self) -> str:
        """One line: pool size, members, non-members, seed (taught in 06_model_theft_and_privacy)."""
        return (f"pool {len(self.y)}: {self.n_members} members, {self.n_nonmembers} non-members "
                f"(seed {self.seed}); test {len(self.y_test)}")


def make_split(X, y, n_classes: int | None = None, seed: int = 0, *, n_members: int | None = None,
               X_test=None, y_test=None) -> MembershipSplit:
    """Draw the members: ``n_members`` random pool examples (default: half of the pool,
    a balanced evaluation), fixed by ``seed``; the rest are the non-members (taught in
    06_model_theft_and_privacy). ``X_test, y_test`` (optional) ride along for
    measuring accuracy; they are never members. Rates (TPR, FPR, AUC) do not depend
    on the balance; fewer members only makes the target overfit more."""
    where = "make_split"
    X = v.images(X, where, ndim=None, name="inputs", unit_range=False, allow_empty=False)
    y = v.labels(y, where, n=len(X))
    if len(X) < 4:
        v.fail(where, f"the pool has {len(X)} examples", "give at least 4 (two members, two non-members)")
    n_classes = int(y.max()) + 1 if n_classes is None else v.integer(n_classes, "n_classes", where, low=2)
    v.labels(y, where, n_classes=n_classes)
    seed = v.seed(seed, where)
    n_members = len(X) // 2 if n_members is None else v.integer(n_members, "n_members", where, 2, len(X) - 2)
    rng = np.random.default_rng(seed)
    members = np.zeros(len(X), dtype=bool)
    members[rng.permutation(len(X))[:n_members]] = True
    if X_test is None:
        X_test, y_test = np.zeros((0,) + X.shape[1:], np.float32), np.zeros(0, np.int64)
    else:
        X_test = v.images(X_test, where, ndim=None, name="test inputs", unit_range=False)
        y_test = v.labels(y_test, where, n=len(X_test), n_classes=n_classes, name="test labels")
    return MembershipSplit(X, y, members, n_classes, seed, X_test, y_test)


def digits_split(seed: int = 0, n_members: int | None = None) -> MembershipSplit:
    """The lesson's split: pool = the digits' train + validation splits (drawn by
    ``seed``), members = a random half of it (or ``n_members``, e.g.
    :data:`OVERFIT_MEMBERS`), the test split for accuracy (taught in
    06_model_theft_and_privacy)."""
    from utils import data

    ds = data.load("digits", seed=v.seed(seed, "digits_split"))
    return make_split(np.concatenate([ds.X_train, ds.X_val]), np.concatenate([ds.y_train, ds.y_val]),
                      ds.n_classes, seed, n_members=n_members, X_test=ds.X_test, y_test=ds.y_test)


def _check_split(split, where: str) -> MembershipSplit:
    if not isinstance(split, MembershipSplit):
        v.fail(where, f"split is a {type(split).__name__}", "split must be a MembershipSplit (see make_split)")
    return split


def train_target(split: MembershipSplit, config: TrainConfig = TARGET_CONFIG) -> nn.Module:
    """The target model: ``training.fit(config)`` on the members, cached (taught in
    06_model_theft_and_privacy). The seed of ``config`` is replaced by the split's."""
    split = _check_split(split, "train_target")
    X, y = split.member_data()
    return training.fit(config.with_(seed=split.seed), X, y, split.n_classes)


# --------------------------------------------------------------------------- per-example scores


@torch.no_grad()
def _logits(model: nn.Module, X, y, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    v.eval_mode(model, where)
    X = v.images(X, where, ndim=None, name="inputs", unit_range=False, allow_empty=False)
    y = v.labels(y, where, n=len(X))
    device = device_of(model)
    out = [model(training.to_tensor(X[s:s + 512], device)).double().cpu() for s in range(0, len(X), 512)]
    z = torch.cat(out)
    if y.max() >= z.shape[1]:
        v.fail(where, f"labels go up to {y.max()} but the model has {z.shape[1]} outputs",
               f"labels must be class indices in [0, {z.shape[1] - 1}]")
    return z, torch.as_tensor(y)


def loss_scores(model: nn.Module, X, y) -> np.ndarray:
    """Per-example cross-entropy loss of a model in eval mode (float64, lower on
    members; taught in 06_model_theft_and_privacy)."""
    z, t = _logits(model, X, y, "loss_scores")
    return nn.functional.cross_entropy(z, t, reduction="none").numpy()


def confidence_scores(model: nn.Module, X, y) -> np.ndarray:
    """Per-example softmax probability of the true class (taught in 06_model_theft_and_privacy)."""
    z, t = _logits(model, X, y, "confidence_scores")
    return torch.softmax(z, 1).gather(1, t[:, None])[:, 0].numpy()


def logit_confidence(model: nn.Module, X, y) -> np.ndarray:
    """phi = log(p / (1 - p)) of the true class's probability p, computed stably from the
    logits as ``z_y - logsumexp(z_other)`` (Carlini et al. 2022; taught in
    06_model_theft_and_privacy). Roughly Gaussian over training runs, unlike p."""
    z, t = _logits(model, X, y, "logit_confidence")
    zy = z.gather(1, t[:, None])[:, 0]
    other = z.scatter(1, t[:, None], float("-inf"))
    return (zy - torch.logsumexp(other, 1)).numpy()


def threshold_scores(model: nn.Module, X, y, kind: str = "loss") -> np.ndarray:
    """The threshold attack's membership scores, higher meaning "member": the negative
    loss (``kind="loss"``) or the confidence (``"confidence"``) (Yeom et al. 2018;
    taught in 06_model_theft_and_privacy). Thresholding them is the attack."""
    v.choice(kind, "kind", "threshold_scores", ("loss", "confidence"))
    return -loss_scores(model, X, y) if kind == "loss" else confidence_scores(model, X, y)


# --------------------------------------------------------------------------- LiRA


def shadow_masks(n_examples: int, n_shadows: int, n_in: int | None = None, seed: int = 0) -> np.ndarray:
    """Which pool examples each shadow model trains on: a boolean (n_shadows, n_examples)
    array in which every example is IN exactly ``n_in`` of the shadows (default half:
    Carlini et al. 2022's design), so each shadow sees about ``n_in / n_shadows`` of
    the pool (taught in 06_model_theft_and_privacy)."""
    where = "shadow_masks"
    n_examples = v.integer(n_examples, "n_examples", where, low=2)
    n_shadows = v.integer(n_shadows, "n_shadows", where, low=2)
    n_in = n_shadows // 2 if n_in is None else v.integer(n_in, "n_in", where, 1, n_shadows - 1)
    rng = np.random.default_rng([v.seed(seed, where), 6])
    order = rng.random((n_shadows, n_examples)).argsort(0)
    return order < n_in


def train_shadows(split: MembershipSplit, n_shadows: int = 16, config: TrainConfig = TARGET_CONFIG,
                  seed: int = 0) -> tuple[list[nn.Module], np.ndarray]:
    """Shadow models trained like the target, each on a random share of the pool as large
    as the target's member set (half of it by default; :func:`shadow_masks`), through
    ``training.fit`` (so each is cached). Returns the models and the (n_shadows, n_pool)
    IN mask (taught in 06_model_theft_and_privacy). Shadow ``k`` uses seed
    ``1000 * (seed + 1) + k``, never the target's."""
    split = _check_split(split, "train_shadows")
    n_shadows = v.integer(n_shadows, "n_shadows", "train_shadows", low=2)
    n_in = min(max(1, round(n_shadows * split.n_members / len(split.y))), n_shadows - 1)
    masks = shadow_masks(len(split.y), n_shadows, n_in, seed)
    models = [training.fit(config.with_(seed=1000 * (seed + 1) + k), split.X[m], split.y[m], split.n_classes)
              for k, m in enumerate(masks)]
    return models, masks


def lira_scores(target_phi, shadow_phi, shadow_in, online: bool = True,
                fixed_variance: bool = True) -> np.ndarray:
    """LiRA's per-example membership scores (Carlini et al. 2022; taught in
    06_model_theft_and_privacy), higher meaning "member".

    Args:
        target_phi: (N,) logit-scaled confidence of the target on each example.
        shadow_phi: (K, N) the same for K shadow models.
        shadow_in: (K, N) boolean, whether example n was in shadow k's training set.
        online: True: log N(phi; mu_in, sigma_in) - log N(phi; mu_out, sigma_out), IN
            and OUT Gaussians fitted per example; False (offline, OUT shadows only):
            (phi - mu_out) / sigma_out, a one-sided test (large phi means member).
        fixed_variance: use one IN and one OUT standard deviation shared by all
            examples (the paper's advice with few shadows), else one per example.

    Every example needs at least two OUT shadows (and two IN shadows online).
    """
    where = "lira_scores"
    t = metrics._scores(target_phi, where, "target_phi")
    s = v.features(shadow_phi, where, name="shadow_phi", min_rows=2)
    m = np.asarray(shadow_in)
    if m.dtype != bool or m.shape != s.shape:
        v.fail(where, f"shadow_in has dtype {m.dtype} and shape {m.shape}",
               f"shadow_in must be a boolean mask of shape {s.shape}, like shadow_phi")
    if s.shape[1] != len(t):
        v.fail(where, f"shadow_phi has {s.shape[1]} columns for {len(t)} target scores",
               "give one column per example (shape (n_shadows, N))")

    def gaussian(mask: np.ndarray, label: str):
        count = mask.sum(0)
        if count.min() < 2:
            v.fail(where, f"an example is {label} in only {count.min()} shadow models",
                   f"every example must be {label} in at least 2 shadows (train more, see shadow_masks)")
        mu = np.where(mask, s, 0).sum(0) / count
        dev = np.where(mask, s - mu, 0.0)
        if fixed_variance:
            sd = np.full(len(t), np.sqrt((dev ** 2).sum() / max(mask.sum() - 1, 1)))
        else:
            sd = np.sqrt((dev ** 2).sum(0) / (count - 1))
        return mu, np.maximum(sd, 1e-6)

    mu_out, sd_out = gaussian(~m, "OUT")
    if not online:
        return (t - mu_out) / sd_out
    from scipy.stats import norm

    mu_in, sd_in = gaussian(m, "IN")
    return norm.logpdf(t, mu_in, sd_in) - norm.logpdf(t, mu_out, sd_out)


def lira_attack(target: nn.Module, split: MembershipSplit, n_shadows: int = 16,
                config: TrainConfig = TARGET_CONFIG, online: bool = True, fixed_variance: bool = True,
                seed: int = 0) -> np.ndarray:
    """LiRA on the whole pool: trains (or loads) the shadows, computes phi for the target
    and the shadows, returns one score per pool example (taught in 06_model_theft_and_privacy)."""
    split = _check_split(split, "lira_attack")
    shadows, masks = train_shadows(split, n_shadows, config, seed)
    target_phi = logit_confidence(target, split.X, split.y)
    shadow_phi = np.stack([logit_confidence(m, split.X, split.y) for m in shadows])
    return lira_scores(target_phi, shadow_phi, masks, online=online, fixed_variance=fixed_variance)


# --------------------------------------------------------------------------- evaluation


def min_reportable_fpr(n_nonmembers: int) -> float:
    """The lowest FPR a TPR can be reported at: ``1 / n_nonmembers`` (one false positive).
    With the digits' ~719 non-members that is 0.14%; 0.1% needs 1,000 (taught in
    06_model_theft_and_privacy)."""
    return 1.0 / v.integer(n_nonmembers, "n_nonmembers", "min_reportable_fpr", low=1)


def tpr_at_fpr(member_scores, nonmember_scores, fpr: float = 0.01) -> float:
    """The best TPR any threshold reaches with FPR <= ``fpr``, the threshold chosen on these
    scores as in Carlini et al. 2022 (an attacker's best case). Refuses an FPR below
    one false positive, ``1 / n_nonmembers`` (taught in 06_model_theft_and_privacy)."""
    where = "tpr_at_fpr"
    mem = metrics._scores(member_scores, where, "member scores")
    non = metrics._scores(nonmember_scores, where, "non-member scores")
    fpr = v.probability(fpr, "fpr", where)
    if fpr < min_reportable_fpr(len(non)):
        need = int(np.ceil(1 / fpr))
        v.fail(where, f"fpr = {fpr:g} with {len(non)} non-members allows no false positive at all",
               f"fpr must be at least 1 / {len(non)} = {1 / len(non):.4f}, or give at least {need} non-members")
    scores = np.r_[non, mem]
    truth = np.r_[np.zeros(len(non), bool), np.ones(len(mem), bool)]
    return metrics.recall_at_fpr(scores, truth, fpr)[0]


@dataclass(frozen=True)
class AttackResult:
    """A membership attack's ROC curve, AUC and TPR at a low FPR (taught in
    06_model_theft_and_privacy). ``false_positives_allowed`` is what the TPR rests on."""

    auc: float
    tpr: float
    fpr: float
    n_members: int
    n_nonmembers: int
    roc: dict = field(repr=False)

    @property
    def false_positives_allowed(self) -> int:
        return int(np.floor(self.fpr * self.n_nonmembers))

    def __str__(self) -> str:
        return (f"AUC {self.auc:.3f}, TPR {100 * self.tpr:.1f}% at {100 * self.fpr:g}% FPR "
                f"({self.false_positives_allowed} of {self.n_nonmembers} non-members flagged at most)")


def evaluate(scores, members, fpr: float = 0.01) -> AttackResult:
    """Score a membership attack: ``scores`` (N,), higher meaning member, against the
    boolean ``members`` mask (taught in 06_model_theft_and_privacy)."""
    where = "evaluate"
    s = metrics._scores(scores, where)
    m = np.asarray(members)
    if m.dtype != bool or m.shape != s.shape:
        v.fail(where, f"members has dtype {m.dtype} and shape {m.shape}",
               f"members must be a boolean mask of shape {s.shape}, one per score")
    if m.all() or not m.any():
        v.fail(where, f"{int(m.sum())} of {len(m)} examples are members", "give both members and non-members")
    curve = metrics.roc(s[~m], s[m])
    return AttackResult(curve["auc"], tpr_at_fpr(s[m], s[~m], fpr), float(fpr), int(m.sum()), int((~m).sum()), curve)
