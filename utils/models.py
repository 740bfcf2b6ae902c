"""Small models for the course data (taught in 00_orientation_and_threat_model).

Each builds in milliseconds and trains on the 8×8 digits in a few seconds on a
CPU: a logistic regression, a multi-layer perceptron and a small CNN. They take
images (N, 1, H, W), tabular rows or 2-D points (N, d) alike.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from utils import validation as v


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: one linear layer on the flattened input
    (taught in 00_orientation_and_threat_model)."""

    def __init__(self, in_features: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(in_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class MLP(nn.Module):
    """A multi-layer perceptron with ReLU hidden layers on the flattened input
    (taught in 00_orientation_and_threat_model)."""

    def __init__(self, in_features: int, n_classes: int, hidden: Sequence[int] = (128, 64)):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (used by representation-based defenses)."""
        return self.features(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class SmallCNN(nn.Module):
    """Two 3×3 convolutions, a 2×2 max-pool and two linear layers (taught in 00_orientation_and_threat_model)."""

    def __init__(self, in_channels: int, n_classes: int, image_size: int = 8,
                 channels: Sequence[int] = (16, 32), hidden: int = 64):
        super().__init__()
        c1, c2 = channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 2
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c2 * side * side, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer's activations."""
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


MODELS = ("logreg", "mlp", "cnn")


def build_model(name: str, input_shape: Sequence[int], n_classes: int, seed: int = 0,
                **kwargs) -> nn.Module:
    """Build a freshly initialised model, the same weights for the same seed
    (taught in 00_orientation_and_threat_model).

    Args:
        name: ``"logreg"``, ``"mlp"`` or ``"cnn"`` (the CNN needs (C, H, W) input).
        input_shape: shape of one input, e.g. ``(1, 8, 8)`` or ``(30,)``.
        n_classes: number of output classes.
        kwargs: passed to the model class (e.g. ``hidden=(64,)`` for the MLP).
    """
    where = "build_model"
    v.choice(name, "name", where, MODELS)
    input_shape = tuple(v.integer(s, "input_shape entry", where, low=1) for s in input_shape)
    n_classes = v.integer(n_classes, "n_classes", where, low=2)
    seed = v.seed(seed, where)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        in_features = math.prod(input_shape)
        if name == "logreg":
            model: nn.Module = LogisticRegression(in_features, n_classes, **kwargs)
        elif name == "mlp":
            model = MLP(in_features, n_classes, **kwargs)
        elif name == "cnn":
            if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
                v.fail(where, f"input_shape = {input_shape}", "the CNN needs square images (C, H, H)")
            model = SmallCNN(input_shape[0], n_classes, image_size=input_shape[1], **kwargs)
        else:  # unreachable: v.choice above
            raise AssertionError(name)
    finally:
        torch.random.set_rng_state(gen_state)
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (taught in 00_orientation_and_threat_model)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def device_of(model: nn.Module) -> torch.device:
    """Where a model's parameters are (the CPU for a model without any): the device its
    inputs go to (taught in 00_orientation_and_threat_model)."""
    return next(model.parameters(), torch.empty(0)).device


def hidden_activations(model: nn.Module, X: Any, layer: int = -1, batch_size: int = 512) -> np.ndarray:
    """The activations of one hidden layer (the output of its ReLU), flattened: (N, d), float64.

    ``layer`` counts the model's ``nn.ReLU`` modules in order: ``0`` is the first
    hidden layer, ``-1`` the last (for the course's MLP and CNN, the penultimate
    activations that ``model.embed`` returns). Taught in 03_data_defenses
    (activation clustering, spectral signatures) and 08_monitoring (drift in the
    embedding).
    """
    from utils.training import to_tensor

    where = "hidden_activations"
    v.eval_mode(model, where)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        v.fail(where, f"{type(model).__name__} has no nn.ReLU layers", "give a model with ReLU hidden layers")
    layer = v.integer(layer, "layer", where, -len(relus), len(relus) - 1)
    X = X if isinstance(X, torch.Tensor) else np.asarray(X)
    if X.ndim < 2 or len(X) == 0:
        v.fail(where, f"X has shape {tuple(X.shape)}", "X must be a non-empty batch (N, ...)")
    batch_size = v.integer(batch_size, "batch_size", where, low=1)
    device = device_of(model)
    captured: list[torch.Tensor] = []
    hook = relus[layer].register_forward_hook(lambda _m, _i, out: captured.append(out.detach().flatten(1).cpu()))
    try:
        with torch.no_grad():
            for start in range(0, len(X), batch_size):
                model(to_tensor(X[start:start + batch_size], device))
    finally:
        hook.remove()
    return torch.cat(captured).numpy().astype(np.float64)
