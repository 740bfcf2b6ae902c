"""Checks of labs/05_adversarial_defenses_lab.ipynb (taught in notebooks/05_adversarial_defenses.ipynb)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from utils.attacks import evasion
from utils.defenses import adversarial as ad
from utils import training
from utils.course.grading import forbid, require
from . import Checker


def _exercise_1(fgsm_rs_batch: Callable[..., Any], *, model: torch.nn.Module, ds: Any, dev: Any,
                seed: int, epsilon: float) -> None:
    """The learner's FGSM-RS step reproduces ad.fgsm_rs_hook on 64 training digits."""
    xb, yb = training.to_tensor(ds.X_train[:64], dev), torch.as_tensor(ds.y_train[:64], device=dev)
    torch.manual_seed(seed)
    reference, _ = ad.fgsm_rs_hook(epsilon, alpha=1.25 * epsilon)(model, xb, yb)
    torch.manual_seed(seed)
    with forbid(ad.fgsm_rs_hook, ad.pgd_hook, ad.adversarial_training,
                why="this exercise asks for the FGSM-RS step written by hand"):
        mine = fgsm_rs_batch(model, xb, yb, epsilon, 1.25 * epsilon)
    require(isinstance(mine, torch.Tensor) and mine.shape == xb.shape,
            f"return a tensor shaped like xb {tuple(xb.shape)}")
    mine = mine.detach()
    require((mine - xb).abs().max() <= epsilon + 1e-6 and mine.min() >= 0 and mine.max() <= 1,
            "the batch must stay within eps of xb and in [0, 1]")
    with torch.no_grad():
        gain = (F.cross_entropy(model(mine), yb) - F.cross_entropy(model(xb), yb)).item()
    require(torch.allclose(mine, reference, atol=1e-6),
            f"your batch differs from FGSM-RS (it changes the loss by {gain:+.3f}); "
            "the random start must be the first random numbers you draw")


def _exercise_2(squeeze_detect_score: Callable[..., Any], *, model: torch.nn.Module, xe: torch.Tensor,
                x_adv: torch.Tensor, auc: float) -> None:
    """The learner's squeezing scores, written without ad.BitDepth / ad.squeeze_score, match
    ad.squeeze_score for 1-3 bits, and the detector's AUC is >= 0.9."""
    for bits in (1, 2, 3):
        for name, x in (("clean", xe), ("adversarial", x_adv)):
            expected = ad.squeeze_score(model, x, ad.BitDepth(bits))
            with forbid(ad.squeeze_score, ad.BitDepth, ad.SqueezedModel,
                        why="this exercise asks you to write the rounding and the score yourself"):
                got = squeeze_detect_score(model, x, bits)
            if isinstance(got, torch.Tensor):
                got = got.detach().cpu().numpy()
            got = np.asarray(got, dtype=float)
            require(got.shape == expected.shape, f"return one score per image: shape {expected.shape}, got {got.shape}")
            worst = np.abs(got - expected).max()
            require(worst < 1e-5, f"{name} digits, bits = {bits}: your scores differ from the reference by up to "
                                  f"{worst:.3f}")
    require(auc >= 0.9, f"the detector's AUC is {auc:.3f}, expected at least 0.9")


def _exercise_3(BPDA: Callable[..., torch.nn.Module], *, model: torch.nn.Module, masked: torch.nn.Module,
                xe: torch.Tensor, ye: torch.Tensor, bpda_acc: float) -> None:
    """The learner's BPDA has the defended forward pass, the straight-through gradient, and breaks the defense."""
    squeeze = ad.BitDepth(3)
    z = squeeze(xe[:32]).requires_grad_(True)
    expected, = torch.autograd.grad(F.cross_entropy(model(z), ye[:32], reduction="sum"), z)
    with torch.no_grad():
        defended = masked(xe)
    x = xe[:32].clone().requires_grad_(True)
    with forbid(ad.SqueezedModel, why="this exercise asks you to write the straight-through estimator yourself"):
        mine = BPDA(model, squeeze).eval()
        with torch.no_grad():
            forward = mine(xe)
        out = mine(x)
    require(isinstance(forward, torch.Tensor) and forward.shape == defended.shape,
            f"the forward pass must return logits of shape {tuple(defended.shape)}")
    require(torch.allclose(forward, defended, atol=1e-6),
            "the forward pass must be the defended model's: model(squeeze(x))")
    grad = None
    if out.requires_grad:
        grad, = torch.autograd.grad(F.cross_entropy(out, ye[:32], reduction="sum"), x, allow_unused=True)
    require(grad is not None and grad.abs().sum() > 0,
            "the gradient through your BPDA is zero: the attack still has nothing to follow")
    require(torch.allclose(grad, expected, atol=1e-5),
            "the gradient must be the model's gradient at squeeze(x), passed straight to x")
    require(bpda_acc <= 0.35, f"PGD through your BPDA leaves {bpda_acc:.3f} of the digits, expected at most 0.35")


def _exercise_4(MyEOT: Callable[..., torch.nn.Module], *, model: torch.nn.Module, xe: torch.Tensor,
                eot_acc: float) -> None:
    """The learner's EOT wrapper averages `samples` draws of a reseeded randomized squeezer, and the attack
    through it works. Any of the usual averages passes: of the log-probabilities (ad.EOT), of the logits
    (the same class probabilities after a softmax), of the probabilities, or the log of that."""
    samples = 8
    probe = ad.SqueezedModel(model, ad.RandomBitDepth(3, spread=0.07, seed=7), bpda=True).eval()
    x = xe[:50]
    with torch.no_grad():
        probe.squeezer.reseed()
        logits = torch.stack([probe(x) for _ in range(samples)])
        probe.squeezer.reseed()
        with forbid(ad.EOT, why="this exercise asks you to write the average over draws yourself"):
            got = MyEOT(probe, samples)(x)
    require(isinstance(got, torch.Tensor) and got.shape == logits.shape[1:],
            f"return a tensor of shape {tuple(logits.shape[1:])}, one row of class scores per image")
    got = got.detach().float()
    mean_log_probs = F.log_softmax(logits, dim=2).mean(0)        # ad.EOT; the mean logits give the same softmax
    mean_probs = F.softmax(logits, dim=2).mean(0)
    as_probs = F.softmax(got, dim=1)                              # the class probabilities the output stands for
    accepted = [torch.allclose(as_probs, F.softmax(mean_log_probs, dim=1), atol=1e-5),   # log-probs or logits
                torch.allclose(as_probs, mean_probs, atol=1e-5),                         # log of the mean probs
                torch.allclose(got, mean_probs, atol=1e-5)]                              # the mean probs
    require(any(accepted), f"your output is not an average over {samples} calls of self.model "
                           "(of its log-probabilities, its probabilities or its logits)")
    require(eot_acc <= 0.45, f"the randomized defense keeps {eot_acc:.3f} of the digits, expected at most 0.45")


def scaled_logits(model: torch.nn.Module, factor: float = 1000.0) -> torch.nn.Module:
    """A copy of ``model`` whose last linear layer is multiplied by ``factor``: the same predictions, a
    saturated softmax (the "defense" of the lab's Exercise 5; taught in 05_adversarial_defenses)."""
    import copy

    scaled = copy.deepcopy(model).eval()
    last = [m for m in scaled.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(factor)
        if last.bias is not None:
            last.bias.mul_(factor)
    return scaled


def _exercise_5(my_attack: Callable[..., Any], *, model: torch.nn.Module, xe: torch.Tensor, ye: torch.Tensor,
                epsilon: float, seed: int) -> None:
    """The learner's attack, written without the library's attacks, brings the logit-scaled copy of the
    model (recomputed here) down to the standard model's accuracy under PGD-50 (+ 0.10), within eps and [0, 1]."""
    scaled = scaled_logits(model)
    reference = evasion.robust_accuracy(model, evasion.pgd(model, xe, ye, epsilon, steps=50, seed=seed), ye)
    with forbid(evasion.pgd, evasion.fgsm, evasion.run_torchattacks, evasion.square, ad.detector_aware_pgd,
                why="this exercise asks you to write the attack yourself"):
        x_adv = my_attack(scaled, xe.clone(), ye.clone(), epsilon)
    require(isinstance(x_adv, torch.Tensor) and x_adv.shape == xe.shape,
            f"return a tensor shaped like x {tuple(xe.shape)}")
    x_adv = x_adv.detach().to(xe.device)
    require(torch.isfinite(x_adv).all() and (x_adv - xe).abs().max() <= epsilon + 1e-6
            and x_adv.min() >= 0 and x_adv.max() <= 1, "the images must stay within eps of x and in [0, 1]")
    acc = evasion.robust_accuracy(scaled, x_adv, ye)
    require(acc <= reference + 0.10, f"the scaled model keeps {acc:.3f} of the digits under your attack; an attack "
                                     "that is not fooled by the scaling gets about as low as PGD on the standard model")


def _margin_pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 50) -> torch.Tensor:
    """PGD on the logit margin (best wrong logit minus the true one), which no scaling of the logits
    saturates (the check's own attack in Exercise 6)."""
    alpha, x_adv = 2.5 * eps / steps, x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        true = logits.gather(1, y[:, None])[:, 0]
        other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), -float("inf")).amax(1)
        grad, = torch.autograd.grad((other - true).sum(), x_adv)
        x_adv = evasion.project_linf(x, (x_adv.detach() + alpha * grad.sign()).clamp(0, 1), eps)
    return x_adv.detach()


#: Exercise 6: the least accuracy on the clean test set and under the worst case of the attacks.
REPAIR_CLEAN, REPAIR_ROBUST = 0.9, 0.65


def _exercise_6(repaired: Any, *, model: torch.nn.Module, my_attack: Callable[..., Any], ds: Any,
                xe: torch.Tensor, ye: torch.Tensor, epsilon: float, seed: int) -> None:
    """The repaired model is a digits MLP like ``model`` (same class and parameter shapes, not a wrapper),
    in eval mode, with a softmax that is not saturated, clean test accuracy >= REPAIR_CLEAN, and per-digit
    accuracy >= REPAIR_ROBUST under the worst case of the learner's ``my_attack``, the check's margin PGD-50,
    cross-entropy PGD-50 and a 100-query Square attack (gradient-free) at ``epsilon``."""
    require(isinstance(repaired, torch.nn.Module), "give the repaired model (a torch.nn.Module), not "
                                                   f"a {type(repaired).__name__}")
    mine, reference = repaired.state_dict(), model.state_dict()
    require(type(repaired) is type(model) and list(mine) == list(reference)
            and all(mine[k].shape == reference[k].shape for k in reference),
            f"the repaired model must be a {type(model).__name__} like the standard model (the same layers), "
            "not a wrapper around one")
    require(not any(m.training for m in repaired.modules()), "put the repaired model in eval mode (.eval())")
    repaired = repaired.to(xe.device)
    x = xe.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(repaired(x), ye, reduction="sum"), x)
    flat = int((grad.flatten(1).abs().amax(1) == 0).sum())
    require(flat <= 0.05 * len(xe), f"the cross-entropy gradient is exactly zero on {flat} of {len(xe)} digits: "
                                    "the softmax is saturated, which hides the gradient without making the model robust")
    clean = training.accuracy(repaired, ds.X_test, ds.y_test)
    require(clean >= REPAIR_CLEAN, f"the repaired model's clean test accuracy is {clean:.3f}, "
                                   f"expected at least {REPAIR_CLEAN}")
    x_mine = my_attack(repaired, xe.clone(), ye.clone(), epsilon)
    x_mine = xe.clone() if not isinstance(x_mine, torch.Tensor) or x_mine.shape != xe.shape else \
        evasion.project_linf(xe, x_mine.detach().to(xe.device).clamp(0, 1), epsilon)
    attacked = {"your my_attack": x_mine, "margin PGD-50": _margin_pgd(repaired, xe, ye, epsilon),
                "PGD-50": evasion.pgd(repaired, xe, ye, epsilon, steps=50, seed=seed),
                "Square (100 queries)": evasion.square(repaired, xe, ye, epsilon, n_queries=100, seed=seed)}
    survive = {name: ad.correct(repaired, x_adv, ye) for name, x_adv in attacked.items()}
    worst = float(np.logical_and.reduce([ad.correct(repaired, xe, ye), *survive.values()]).mean())
    detail = ", ".join(f"{name} {ok.mean():.3f}" for name, ok in survive.items())
    require(worst >= REPAIR_ROBUST, f"the repaired model keeps {worst:.3f} of the digits under the worst case of the "
                                    f"attacks at eps = {epsilon:g} ({detail}), expected at least {REPAIR_ROBUST}")


check = Checker("lab05", {
    1: ("FGSM-RS step", _exercise_1),
    2: ("squeezing detector", _exercise_2),
    3: ("BPDA", _exercise_3),
    4: ("EOT", _exercise_4),
    5: ("breaking a masked gradient", _exercise_5),
    6: ("repair", _exercise_6),
})
