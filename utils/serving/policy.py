"""The access decision of the model API: identity + context + request → allow or deny.

One function, :func:`decide`, makes every decision the API enforces after the token
check, so that it can be read, tested and changed in one place; the output policy
(what an allowed request gets back) follows from the same scopes. Taught in
07_secure_deployment.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from utils import validation as v
from utils.serving.auth import Identity

#: What an allowed request gets back: the full probabilities, probabilities rounded to a
#: few decimals, probabilities perturbed by a reverse sigmoid (Lee et al., 2019), or the top-1
#: label only.
OUTPUTS = ("full", "rounded", "reverse_sigmoid", "label")

#: What a ``predict:scores`` token may be given.
SCORES = ("full", "rounded", "reverse_sigmoid")


@dataclass(frozen=True)
class Decision:
    """Allow or deny, with the HTTP status, the reason and the output policy (taught in 07_secure_deployment)."""

    allow: bool
    status: int
    reason: str
    output: str | None = None


@dataclass(frozen=True)
class Context:
    """What the API knows about a request besides the token (taught in 07_secure_deployment).

    Attributes:
        n_images: how many images the request asks about.
        used: images this client has had answered so far.
        quota: images a client may have answered in all (None: no quota).
        max_batch: the largest batch one request may carry (None: no limit).
        scores: the output for ``predict:scores`` tokens, ``"full"``, ``"rounded"`` or
            ``"reverse_sigmoid"``.
    """

    n_images: int
    used: int = 0
    quota: int | None = None
    max_batch: int | None = None
    scores: str = "full"


def output_for(identity: Identity, scores: str = "full") -> str:
    """The output policy of a token: ``admin`` full, ``predict:scores`` ``scores``, else the label
    (taught in 07_secure_deployment)."""
    if "admin" in identity.scopes:
        return "full"
    if "predict:scores" in identity.scopes:
        return scores
    return "label"


def decide(identity: Identity, context: Context, scope: str = "predict") -> Decision:
    """Whether ``identity`` may have ``context.n_images`` predictions now (taught in 07_secure_deployment).

    In order: the scope the endpoint needs (403), the batch limit (413), the quota (429).
    """
    v.choice(context.scores, "scores", "decide", SCORES)
    if not identity.has(scope):
        return Decision(False, 403, f"token of {identity.subject!r} lacks the scope {scope!r} "
                                    f"(it has {sorted(identity.scopes) or 'none'})")
    if context.max_batch is not None and context.n_images > context.max_batch:
        return Decision(False, 413, f"batch of {context.n_images} images; at most {context.max_batch} per request")
    if context.quota is not None and context.used + context.n_images > context.quota:
        return Decision(False, 429, f"quota of {context.quota} images used up ({context.used} answered); "
                                    f"this request asks for {context.n_images} more")
    return Decision(True, 200, "allowed", output_for(identity, context.scores))


def reverse_sigmoid(proba: np.ndarray, beta: float = 1.0, gamma: float = 0.4) -> np.ndarray:
    """Probabilities perturbed by the reverse sigmoid of Lee et al. (2019), as in ART's
    ``ReverseSigmoid`` (taught in 06_model_theft_and_privacy).

    Each probability ``p`` becomes ``p - beta * (sigmoid(gamma * logit(p)) - 1/2)``, clipped
    to [0, 1], and each row is renormalised. The perturbation points the gradients of a copy
    trained on these scores the wrong way; ``beta`` sets its size, ``gamma`` how fast it
    grows. It may change the arg-max of a row (see :func:`shape_output`, which keeps the
    unperturbed label).
    """
    where = "reverse_sigmoid"
    proba = v.features(proba, where, name="probabilities")
    beta = v.real(beta, "beta", where, 0.0, 10.0)
    gamma = v.real(gamma, "gamma", where, 0.0, 100.0)
    p = np.clip(proba, 1e-9, 1 - 1e-9)
    r = beta * (1.0 / (1.0 + np.exp(-gamma * np.log(p / (1.0 - p)))) - 0.5)
    q = np.clip(proba - r, 0.0, 1.0)
    s = q.sum(1, keepdims=True)
    return np.where(s > 0, q / np.where(s > 0, s, 1.0), 1.0 / q.shape[1])


def shape_output(proba: np.ndarray, output: str, decimals: int = 1, beta: float = 1.0,
                 gamma: float = 0.4) -> dict:
    """The response body for probabilities ``proba`` under an output policy (taught in 07_secure_deployment;
    ``reverse_sigmoid`` in 06_model_theft_and_privacy).

    ``label``: the top-1 class of each image; ``rounded``: also the probabilities rounded to
    ``decimals``; ``reverse_sigmoid``: also the probabilities perturbed by
    :func:`reverse_sigmoid` with ``beta``, ``gamma`` (the labels stay the model's own top-1);
    ``full``: also the probabilities as computed.
    """
    v.choice(output, "output", "shape_output", OUTPUTS)
    proba = np.asarray(proba, dtype=np.float64)
    body: dict = {"labels": proba.argmax(axis=1).tolist(), "output": output, "probabilities": None}
    if output == "full":
        body["probabilities"] = proba.tolist()
    elif output == "rounded":
        body["probabilities"] = np.round(proba, decimals).tolist()
    elif output == "reverse_sigmoid":
        body["probabilities"] = reverse_sigmoid(proba, beta, gamma).tolist()
    return body


@dataclass
class Usage:
    """Images answered per client, counted under a lock (the quota's context; taught in 07_secure_deployment)."""

    counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def used(self, client: str) -> int:
        with self._lock:
            return self.counts.get(client, 0)

    def add(self, client: str, n: int) -> None:
        with self._lock:
            self.counts[client] = self.counts.get(client, 0) + int(n)
