"""Model extraction through the API: query sets, querying over HTTP, training a copy, and
how close the copy comes (taught in 06_model_theft_and_privacy).

The thief sends images to the served model (each counted against the token's quota),
keeps what comes back (probabilities, or only labels under a top-1 policy) and trains a
copy of the course MLP on those answers, Knockoff-style (Orekondy et al., 2019): soft
labels (the returned probabilities) when there are probabilities, hard labels otherwise.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from utils import training
from utils import validation as v
from utils.models import build_model

#: The query sets a thief can use (see :func:`query_set`).
QUERY_SETS = ("natural", "public", "noise", "blobs", "steps")


@dataclass(frozen=True)
class Answers:
    """What the API answered for a batch of queries (taught in 06_model_theft_and_privacy).

    Attributes:
        X: the images sent, in order.
        labels: the top-1 class of each, as the API gave it.
        probabilities: the probabilities returned (``None`` under a label-only policy).
        output: the output policy the API applied (``"full"``, ``"rounded"``, ...).
    """

    X: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray | None
    output: str

    def __len__(self) -> int:
        return len(self.labels)

    def first(self, n: int) -> "Answers":
        """The answers to the first ``n`` queries (a smaller budget of the same thief)."""
        n = v.integer(n, "n", "Answers.first", 1, len(self))
        p = None if self.probabilities is None else self.probabilities[:n]
        return Answers(self.X[:n], self.labels[:n], p, self.output)


def _shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(img)
    h, w = img.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = img[..., ys, xs]
    return out


def vary(X: np.ndarray, seed: int = 0, max_shift: int = 0, max_degrees: float = 10.0,
         noise: float = 0.05) -> np.ndarray:
    """Each image moved by up to ``max_shift`` pixels (default 0: on 8×8 digits one pixel already
    makes most unreadable to the course MLP), rotated by up to ``max_degrees`` and
    given Gaussian noise of standard deviation ``noise``, clipped to [0, 1] (taught in
    06_model_theft_and_privacy: the "public-like" pool)."""
    from scipy import ndimage

    where = "vary"
    X = v.images(X, where, allow_empty=False)
    max_shift = v.integer(max_shift, "max_shift", where, 0, 3)
    max_degrees = v.real(max_degrees, "max_degrees", where, 0.0, 90.0)
    noise = v.real(noise, "noise", where, 0.0, 1.0)
    rng = np.random.default_rng(v.seed(seed, where))
    out = np.empty_like(X)
    for i, img in enumerate(X):
        angle = rng.uniform(-max_degrees, max_degrees)
        rot = ndimage.rotate(img, angle, axes=(1, 2), reshape=False, order=1, mode="constant")
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        out[i] = _shift(rot, int(dy), int(dx))
    out = out + rng.normal(0.0, noise, size=out.shape).astype(np.float32) if noise else out
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def query_set(kind: str, n: int, X_own: np.ndarray | None = None, seed: int = 0,
              shape: tuple[int, ...] = (1, 8, 8)) -> np.ndarray:
    """``n`` query images of one kind (taught in 06_model_theft_and_privacy).

    - ``"natural"``: the first ``n`` of ``X_own``, real digits the thief owns (in the lesson
      the validation split: other writers than the victim's training data, the same task);
      at most ``len(X_own)``.
    - ``"public"``: a "public-like" pool made from ``X_own``: each image varied by
      :func:`vary` (rotation, noise), cycling through ``X_own`` as often as needed.
      It is *not* new data: the same digits, moved, as a stand-in for a public data set of
      the same kind of images.
    - ``"noise"``: uniform noise in [0, 1].
    - ``"blobs"``: synthetic strokes: each image a sum of 1–3 random Gaussian blobs,
      scaled to a maximum of 1.
    - ``"steps"``: the synthetic-step thief PRADA was built against (Papernot et al.'s
      Jacobian-style augmentation, with random steps): start from the first 10 of ``X_own``,
      then each new batch of 10 is a small random step (σ = 0.02) from earlier queries.
    """
    where = "query_set"
    kind = v.choice(kind, "kind", where, QUERY_SETS)
    n = v.integer(n, "n", where, 1, 100_000)
    rng = np.random.default_rng(v.seed(seed, where))
    if kind in ("natural", "public"):
        if X_own is None:
            v.fail(where, f"kind {kind!r} without X_own", "give X_own, the real images the thief owns")
        X_own = v.images(X_own, where, name="X_own", allow_empty=False)
        if kind == "natural":
            if n > len(X_own):
                v.fail(where, f"n = {n} natural queries from {len(X_own)} images",
                       f"n must be at most {len(X_own)} (the thief owns no more), or use kind='public'")
            return X_own[:n].copy()
        reps = int(np.ceil(n / len(X_own)))
        return vary(np.concatenate([X_own] * reps)[:n], seed=seed)
    if kind == "steps":
        if X_own is None:
            v.fail(where, "kind 'steps' without X_own", "give X_own: the thief's few real seed images")
        X_own = v.images(X_own, where, name="X_own", allow_empty=False)
        steps = [X_own[:10].astype(np.float32)]
        while sum(len(s) for s in steps) < n:
            pool = np.concatenate(steps)
            base = pool[rng.integers(0, len(pool), 10)]
            steps.append(np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32))
        return np.concatenate(steps)[:n]
    shape = tuple(v.integer(s, "shape entry", where, 1, 64) for s in shape)
    if kind == "noise":
        return rng.uniform(0.0, 1.0, size=(n, *shape)).astype(np.float32)
    h, w = shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((n, *shape), dtype=np.float32)
    for i in range(n):
        img = np.zeros((h, w))
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(0, h - 1), rng.uniform(0, w - 1)
            sy, sx = rng.uniform(0.6, 2.0, size=2)
            img += np.exp(-((yy - cy) ** 2 / (2 * sy ** 2) + (xx - cx) ** 2 / (2 * sx ** 2)))
        out[i] = img / img.max()
    return out


def query_api(client, X: np.ndarray, batch: int = 64) -> Answers:
    """Ask the served model about ``X`` over HTTP, ``batch`` images a request (taught in
    06_model_theft_and_privacy).

    ``client`` is an ``httpx.Client`` from :func:`utils.serving.client` carrying a token; every
    image counts against its quota. A refusal (quota used up, rate limit, ...) raises a
    ``RuntimeError`` with the API's reason. A label-only answer gives ``probabilities=None``.
    """
    where = "query_api"
    if not hasattr(client, "post"):
        v.fail(where, f"client is a {type(client).__name__}", "client must be an httpx.Client (serving.client)")
    X = v.images(X, where, allow_empty=False)
    batch = v.integer(batch, "batch", where, 1, 100_000)
    labels, probs, outputs = [], [], set()
    for start in range(0, len(X), batch):
        r = client.post("/predict", json={"images": X[start:start + batch].tolist()})
        if r.status_code != 200:
            try:
                detail = r.json().get("detail")
            except ValueError:
                detail = r.text
            raise RuntimeError(f"{where}: the API refused queries {start}-{min(start + batch, len(X)) - 1} "
                               f"with {r.status_code}: {detail}")
        body = r.json()
        labels += body["labels"]
        outputs.add(body["output"])
        probs.append(None if body["probabilities"] is None else np.asarray(body["probabilities"]))
    if len(outputs) != 1:
        v.fail(where, f"the API changed its output policy mid-way ({sorted(outputs)})", "query under one policy")
    P = None if any(p is None for p in probs) else np.concatenate(probs).astype(np.float32)
    return Answers(X, np.asarray(labels, dtype=np.int64), P, outputs.pop())


#: The copy's training settings: the course MLP, trained for about ``STEPS`` minibatch steps.
COPY_CONFIG = training.preset("mlp")
STEPS = 600


def copy_config(n: int, seed: int = 0, steps: int = STEPS) -> training.TrainConfig:
    """The config of a copy trained on ``n`` answers: the course MLP with enough epochs for
    about ``steps`` minibatch steps (5 to 100 epochs; taught in 06_model_theft_and_privacy)."""
    n = v.integer(n, "n", "copy_config", 1)
    per_epoch = int(np.ceil(n / COPY_CONFIG.batch_size))
    return COPY_CONFIG.with_(seed=v.seed(seed, "copy_config"), epochs=int(np.clip(steps // per_epoch, 5, 100)))


def _soft_targets(P: np.ndarray) -> np.ndarray:
    """Probabilities as training targets: clipped at 0, each row summing to 1 (rounded or
    perturbed answers need not)."""
    P = np.clip(np.asarray(P, dtype=np.float64), 0.0, None)
    s = P.sum(1, keepdims=True)
    uniform = np.full_like(P, 1.0 / P.shape[1])
    return np.where(s > 0, P / np.where(s > 0, s, 1.0), uniform).astype(np.float32)


def train_cached(config: training.TrainConfig, X: np.ndarray, Y: np.ndarray, n_classes: int,
                 init: nn.Module | None = None, tag: str = "soft") -> nn.Module:
    """Train a model on inputs ``X`` and targets ``Y`` (class indices, or one row of
    probabilities per input), cached like :func:`utils.training.fit` by config, data and
    ``tag`` (taught in 06_model_theft_and_privacy).

    ``init``: start from a copy of this model's weights (fine-tuning) instead of a fresh one;
    its weights are part of the cache key.
    """
    where = "train_cached"
    X = v.images(X, where, ndim=None, name="inputs", unit_range=False, allow_empty=False)
    Y = np.asarray(Y)
    if Y.ndim == 2:
        Y = v.features(Y, where, name="targets").astype(np.float32)
        if Y.shape != (len(X), n_classes):
            v.fail(where, f"targets of shape {Y.shape}", f"one row of {n_classes} probabilities per input")
    else:
        Y = v.labels(Y, where, n=len(X), n_classes=n_classes)
    device = training.current_device()
    model = build_model(config.model, X.shape[1:], n_classes, seed=config.seed, **dict(config.model_kwargs))
    full_tag = f"theft:{tag}"
    if init is not None:
        v.eval_mode(init, where)
        model.load_state_dict(init.state_dict())
        full_tag += ":init=" + training.data_hash(*(t.detach().cpu().numpy() for t in init.state_dict().values()))
    key = training.cache_key(config, X, Y, n_classes, full_tag)
    weights = training.cache_dir() / f"{key}.safetensors"
    meta_path = training.cache_dir() / f"{key}.json"
    if weights.exists() and meta_path.exists():
        model.load_state_dict(load_file(str(weights)))
        meta = json.loads(meta_path.read_text())
        meta["from_cache"] = True
    else:
        model.to(device)
        history = training.train_loop(model, config, X, Y, device, desc=f"training a copy ({tag})")
        meta = {"config": asdict(config), "tag": tag, "history": history, "key": key}
        training.save_cached(model, weights, meta_path, meta)
        meta["from_cache"] = False
    model.to(device).eval()
    model.meta = meta  # type: ignore[attr-defined]
    return model


def steal(answers: Answers, budget: int | None = None, n_classes: int = 10, seed: int = 0,
          soft: bool | None = None) -> nn.Module:
    """Train a copy (the course MLP) on the first ``budget`` answers (taught in
    06_model_theft_and_privacy).

    ``soft`` (default: whenever the answers carry probabilities): train on the returned
    probabilities (renormalised; a cross-entropy to soft targets, as Knockoff Nets do),
    else on the top-1 labels. Cached by config and answers.
    """
    where = "steal"
    if not isinstance(answers, Answers):
        v.fail(where, f"answers is a {type(answers).__name__}", "answers must come from query_api")
    budget = len(answers) if budget is None else v.integer(budget, "budget", where, 1, len(answers))
    a = answers.first(budget)
    if soft is None:
        soft = a.probabilities is not None
    if soft and a.probabilities is None:
        v.fail(where, f"soft=True with {a.output!r} answers (labels only)", "use soft=False for label-only answers")
    Y = _soft_targets(a.probabilities) if soft else a.labels
    return train_cached(copy_config(budget, seed), a.X, Y, n_classes, tag="soft" if soft else "hard")


def fidelity(copy: nn.Module, victim: nn.Module, X: np.ndarray) -> float:
    """Agreement: the share of ``X`` on which the copy predicts the victim's class (taught in
    06_model_theft_and_privacy)."""
    return float((training.predict(copy, X) == training.predict(victim, X)).mean())


def budget_curve(answers: Answers, victim: nn.Module, X_test: np.ndarray, y_test: np.ndarray,
                 budgets=(50, 100, 200, 350, 500), n_classes: int = 10, seed: int = 0,
                 soft: bool | None = None) -> list[dict]:
    """Copies at several budgets (the first ``b`` answers each), with their fidelity to the
    victim and accuracy on ``(X_test, y_test)`` (taught in 06_model_theft_and_privacy).

    Budgets above ``len(answers)`` are skipped. Returns one dict per budget:
    ``queries``, ``fidelity``, ``accuracy``.
    """
    where = "budget_curve"
    budgets = sorted({v.integer(b, "budget", where, 1) for b in budgets})
    rows = []
    for b in budgets:
        if b > len(answers):
            continue
        copy = steal(answers, b, n_classes=n_classes, seed=seed, soft=soft)
        rows.append({"queries": b, "fidelity": fidelity(copy, victim, X_test),
                     "accuracy": training.accuracy(copy, X_test, y_test)})
    if not rows:
        v.fail(where, f"every budget exceeds the {len(answers)} answers", "give budgets up to len(answers)")
    return rows
