"""Proving that a suspect model is yours: a trigger-set watermark (Adi et al., 2018) and a
boundary fingerprint in the style of IPGuard (Cao et al., 2021) (taught in
06_model_theft_and_privacy).

- Watermark: the owner trains the model on its data plus a secret *trigger set* (seeded
  noise images with random labels). A suspect that gives the trigger labels far more often
  than independent models do is claimed; the p-value is binomial against the chance rate
  measured on independent models.
- Fingerprint: no retraining. Points pushed just across the victim's decision boundary
  toward the runner-up class; a copy of the victim tends to put them on the same side,
  an independent model often does not.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from torch import nn

from utils import training
from utils import validation as v


def trigger_set(n: int = 30, n_classes: int = 10, shape: tuple[int, ...] = (1, 8, 8),
                seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:
    """``n`` trigger images (uniform noise in [0, 1]) with random labels, from ``seed``: the
    owner's secret (taught in 06_model_theft_and_privacy)."""
    where = "trigger_set"
    n = v.integer(n, "n", where, 1, 10_000)
    n_classes = v.integer(n_classes, "n_classes", where, 2)
    rng = np.random.default_rng(v.seed(seed, where))
    X = rng.uniform(0, 1, size=(n, *shape)).astype(np.float32)
    return X, rng.integers(0, n_classes, size=n).astype(np.int64)


def embed_watermark(config: training.TrainConfig, X: np.ndarray, y: np.ndarray, X_trigger: np.ndarray,
                    y_trigger: np.ndarray, n_classes: int, repeat: int = 5) -> nn.Module:
    """Train ``config`` on ``(X, y)`` plus the trigger set repeated ``repeat`` times, cached by
    :func:`utils.training.fit` (taught in 06_model_theft_and_privacy)."""
    where = "embed_watermark"
    X_trigger = v.images(X_trigger, where, name="trigger images", allow_empty=False)
    y_trigger = v.labels(y_trigger, where, n=len(X_trigger), n_classes=n_classes, name="trigger labels")
    repeat = v.integer(repeat, "repeat", where, 1, 100)
    Xw = np.concatenate([np.asarray(X, dtype=np.float32)] + [X_trigger] * repeat)
    yw = np.concatenate([np.asarray(y, dtype=np.int64)] + [y_trigger] * repeat)
    return training.fit(config, Xw, yw, n_classes)


def agreement(model: nn.Module, X: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """``(k, n)``: how many of the ``n`` images ``model`` gives ``labels`` (taught in
    06_model_theft_and_privacy)."""
    labels = v.labels(labels, "agreement", n=len(X))
    return int((training.predict(model, X) == labels).sum()), len(labels)


def chance_rate(models, X: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``labels`` that independent ``models`` give on ``X``, pooled: the chance
    agreement a claim is tested against (taught in 06_model_theft_and_privacy)."""
    models = list(models)
    if not models:
        v.fail("chance_rate", "no models", "give at least one independent model")
    ks = [agreement(m, X, labels)[0] for m in models]
    return float(sum(ks) / (len(models) * len(labels)))


def claim_p_value(k: int, n: int, chance: float) -> float:
    """One-sided binomial p-value of ``k`` or more agreements out of ``n`` when each agrees
    with probability ``chance`` (taught in 06_model_theft_and_privacy).

    ``chance`` is floored at ``1 / (2 n)``: a chance rate measured as 0 on a few models is not
    evidence that agreement is impossible.
    """
    where = "claim_p_value"
    n = v.integer(n, "n", where, 1)
    k = v.integer(k, "k", where, 0, n)
    chance = v.unit(chance, "chance", where)
    chance = min(max(chance, 1.0 / (2 * n)), 1.0)
    return float(stats.binom.sf(k - 1, n, chance))


def verify(model: nn.Module, X: np.ndarray, labels: np.ndarray, chance: float, alpha: float = 0.01) -> dict:
    """Agreement of ``model`` on a trigger set or fingerprint, its p-value against ``chance``
    and the claim ``p < alpha`` (taught in 06_model_theft_and_privacy)."""
    alpha = v.real(alpha, "alpha", "verify", 0.0, 1.0, open_low=True)
    k, n = agreement(model, X, labels)
    p = claim_p_value(k, n, chance)
    return {"agreement": k / n, "k": k, "n": n, "p_value": p, "claimed": p < alpha}


def false_claim_rate(models, X: np.ndarray, labels: np.ndarray, alpha: float = 0.01) -> float:
    """Share of independent ``models`` that would be wrongly claimed, each tested against the
    chance rate of the *other* models (leave one out; taught in 06_model_theft_and_privacy)."""
    models = list(models)
    if len(models) < 2:
        v.fail("false_claim_rate", f"{len(models)} models", "give at least two independent models")
    claims = [verify(m, X, labels, chance_rate(models[:i] + models[i + 1:], X, labels), alpha)["claimed"]
              for i, m in enumerate(models)]
    return float(np.mean(claims))


def boundary_fingerprint(model: nn.Module, X: np.ndarray, steps: int = 30, step: float = 0.01,
                         overshoot: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """IPGuard-style fingerprint: each image pushed toward its runner-up class by signed-gradient
    steps on the logit gap until the model predicts that class, then ``overshoot`` more steps
    (taught in 06_model_theft_and_privacy).

    Returns ``(X_fp, labels)``: the points that crossed within ``steps`` steps and the model's
    label for each (so the model itself matches all of them).
    """
    where = "boundary_fingerprint"
    v.eval_mode(model, where)
    X = v.images(X, where, allow_empty=False)
    steps = v.integer(steps, "steps", where, 1, 1000)
    step = v.real(step, "step", where, 0.0, 1.0, open_low=True)
    overshoot = v.integer(overshoot, "overshoot", where, 0, 100)
    device = next(model.parameters()).device
    x = torch.as_tensor(X, device=device)
    with torch.no_grad():
        target = model(x).topk(2, dim=1).indices[:, 1]
    left = torch.full((len(x),), -1, dtype=torch.long, device=device)  # steps still to go after crossing
    for _ in range(steps + overshoot):
        x = x.detach().requires_grad_(True)
        logits = model(x)
        other = logits.clone()
        other[torch.arange(len(x)), target] = -torch.inf
        gap = logits.gather(1, target[:, None])[:, 0] - other.max(1).values
        grad, = torch.autograd.grad(gap.sum(), x)
        with torch.no_grad():
            crossed = logits.argmax(1) == target
            left = torch.where(crossed & (left < 0), torch.full_like(left, overshoot), left)
            move = (left != 0).float().view(-1, *[1] * (x.ndim - 1))
            x = (x + move * step * grad.sign()).clamp(0, 1)
            left = torch.where(left > 0, left - 1, left)
    with torch.no_grad():
        pred = model(x).argmax(1)
    keep = ((pred == target) & (left == 0)).cpu().numpy()
    return x.detach().cpu().numpy()[keep], pred.cpu().numpy()[keep].astype(np.int64)
