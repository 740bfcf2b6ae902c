"""Checks of labs/05_adversarial_defenses_lab.ipynb (taught in notebooks/05_adversarial_defenses.ipynb)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from utils.defenses import adversarial as ad
from utils import training
from utils.course.grading import require
from . import Checker


def _exercise_1(fgsm_rs_batch: Callable[..., Any], *, model: torch.nn.Module, ds: Any, dev: Any,
                seed: int, epsilon: float) -> None:
    """The learner's FGSM-RS step reproduces ad.fgsm_rs_hook on 64 training digits."""
    xb, yb = training.to_tensor(ds.X_train[:64], dev), torch.as_tensor(ds.y_train[:64], device=dev)
    torch.manual_seed(seed)
    mine = fgsm_rs_batch(model, xb, yb, epsilon, 1.25 * epsilon)
    torch.manual_seed(seed)
    reference, _ = ad.fgsm_rs_hook(epsilon, alpha=1.25 * epsilon)(model, xb, yb)
    require(isinstance(mine, torch.Tensor) and mine.shape == xb.shape,
            f"return a tensor shaped like xb {tuple(xb.shape)}")
    require((mine - xb).abs().max() <= epsilon + 1e-6 and mine.min() >= 0 and mine.max() <= 1,
            "the batch must stay within eps of xb and in [0, 1]")
    with torch.no_grad():
        gain = (F.cross_entropy(model(mine), yb) - F.cross_entropy(model(xb), yb)).item()
    require(torch.allclose(mine, reference, atol=1e-6),
            f"your batch differs from FGSM-RS (it changes the loss by {gain:+.3f}): draw the random start "
            "first, then step along the sign of the gradient and clip to the ball")


def _exercise_2(squeeze_detect_score: Callable[..., Any], *, model: torch.nn.Module, xe: torch.Tensor,
                x_adv: torch.Tensor, auc: float) -> None:
    """The learner's squeezing scores match ad.squeeze_score for 1-3 bits, and the detector's AUC is >= 0.9."""
    for bits in (1, 2, 3):
        for name, x in (("clean", xe), ("adversarial", x_adv)):
            got = np.asarray(squeeze_detect_score(model, x, bits), dtype=float)
            expected = ad.squeeze_score(model, x, ad.BitDepth(bits))
            require(got.shape == expected.shape, f"return one score per image: shape {expected.shape}, got {got.shape}")
            worst = np.abs(got - expected).max()
            require(worst < 1e-5, f"{name} digits, bits = {bits}: your scores differ from the reference by up to "
                                  f"{worst:.3f}; the score is sum(|softmax(x) - softmax(squeeze(x))|)")
    require(auc >= 0.9, f"the detector's AUC is {auc:.3f}, expected at least 0.9")


def _exercise_3(BPDA: Callable[..., torch.nn.Module], *, model: torch.nn.Module, masked: torch.nn.Module,
                xe: torch.Tensor, ye: torch.Tensor, bpda_acc: float) -> None:
    """The learner's BPDA has the defended forward pass, the straight-through gradient, and breaks the defense."""
    mine = BPDA(model, ad.BitDepth(3)).eval()
    with torch.no_grad():
        require(torch.allclose(mine(xe), masked(xe), atol=1e-6),
                "the forward pass must be the defended model's: model(squeeze(x))")
    x = xe[:32].clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(mine(x), ye[:32], reduction="sum"), x, allow_unused=True)
    z = ad.BitDepth(3)(xe[:32]).requires_grad_(True)
    expected, = torch.autograd.grad(F.cross_entropy(model(z), ye[:32], reduction="sum"), z)
    require(grad is not None and grad.abs().sum() > 0,
            "the gradient through your BPDA is zero: the attack still has nothing to follow")
    require(torch.allclose(grad, expected, atol=1e-5),
            "the gradient must be the model's gradient at squeeze(x), passed straight to x")
    require(bpda_acc <= 0.35, f"PGD through your BPDA leaves {bpda_acc:.3f} of the digits, expected at most 0.35")


def _exercise_4(MyEOT: Callable[..., torch.nn.Module], *, model: torch.nn.Module, xe: torch.Tensor,
                eot_acc: float) -> None:
    """The learner's EOT wrapper matches ad.EOT on a reseeded randomized squeezer, and the attack through it works."""
    probe = ad.SqueezedModel(model, ad.RandomBitDepth(3, spread=0.07, seed=7), bpda=True).eval()
    with torch.no_grad():
        probe.squeezer.reseed()
        got = MyEOT(probe, 8)(xe[:50])
        probe.squeezer.reseed()
        expected = ad.EOT(probe, 8)(xe[:50])
    require(isinstance(got, torch.Tensor) and got.shape == expected.shape,
            f"return a tensor of shape {tuple(expected.shape)}")
    require(torch.allclose(got, expected, atol=1e-5),
            "your output differs from the mean of `samples` log-softmax outputs, one per call of self.model")
    require(eot_acc <= 0.45, f"the randomized defense keeps {eot_acc:.3f} of the digits, expected at most 0.45")


check = Checker("lab05", {
    1: ("FGSM-RS step", _exercise_1),
    2: ("squeezing detector", _exercise_2),
    3: ("BPDA", _exercise_3),
    4: ("EOT", _exercise_4),
})
