"""One call that makes a notebook reproducible (taught in 00_orientation_and_threat_model).

``setup(seed)`` seeds Python, NumPy and torch, turns on deterministic
algorithms, fixes torch's thread count (a different count changes the order of
float sums and so the printed numbers), turns oneDNN off and checks the rest of
the pinned numerics (:mod:`utils.course.numerics`: the same numbers on every
processor), picks the device and sets plotting defaults.
"""
from __future__ import annotations

import importlib
import os
import random

import numpy as np
import torch

from utils.course import numerics
from utils.course.params import check_parameters, integer

#: torch intra-op threads and BLAS threads (NumPy, scikit-learn) used by every
#: notebook: one thread gives the same float sums on every machine, and the
#: course's models are small enough that more threads barely help.
THREADS = 1

_STATE: dict[str, object] = {"fast": False, "device": torch.device("cpu"), "seed": 0}


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (taught in 00_orientation_and_threat_model)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(device: str = "cpu") -> torch.device:
    """``"cpu"`` (default), ``"cuda"`` (must be present) or ``"auto"`` (CUDA if present) (taught in 00_orientation_and_threat_model)."""
    check_parameters(device=device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "parameter 'device' = 'cuda' but no CUDA device is present: "
            "use device='cpu' or device='auto'"
        )
    return torch.device(device)


def setup(seed: int = 0, device: str = "cpu", fast: bool = False, threads: int = THREADS,
          plots: bool = True) -> torch.device:
    """Make the notebook reproducible and return the torch device to use.

    Args:
        seed: seeds Python, NumPy and torch.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        fast: the notebook's quick mode (fewer epochs / samples); recorded so
            that :func:`utils.course.report.expect` can relax checks meant for full runs.
        threads: torch intra-op threads (keep the default for identical numbers).
        plots: also set the matplotlib/seaborn defaults.

    Taught in 00_orientation_and_threat_model; every notebook calls it first.
    """
    check_parameters(seed=seed, fast=fast, device=device,
                     rules={"threads": integer(1, 256)}, threads=threads)
    dev = pick_device(device)
    # cuBLAS needs this before its first use to be deterministic.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    seed_everything(seed)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    # oneDNN's kernels depend on the processor's instruction set (utils.course.numerics)
    torch.backends.mkldnn.enabled = False
    missing = numerics.missing_settings(torch_module=torch)
    if missing:
        print(numerics.warning_line(missing))
    torch.set_num_threads(threads)
    numerics.limit_threads(threads)  # NumPy's BLAS: a different thread count sums in another order
    # The first optimizer step imports torch._dynamo (seconds); do it here so that
    # training times measured in the notebooks are the training alone.
    importlib.import_module("torch._dynamo")
    if plots:
        set_plot_defaults()
    _STATE.update(fast=fast, device=dev, seed=seed)
    return dev


def numerics_signature() -> str:
    """``"pinned"`` when :mod:`utils.course.numerics` is in effect, else what torch's CPU kernels use (taught in 00_orientation_and_threat_model)."""
    missing = numerics.missing_settings(torch_module=torch)
    if not missing and not torch.backends.mkldnn.enabled:
        return "pinned"
    return (f"cpu={torch.backends.cpu.get_cpu_capability()},mkl_cbwr={os.environ.get('MKL_CBWR')},"
            f"mkldnn={torch.backends.mkldnn.enabled}")


def is_fast() -> bool:
    """Whether the last :func:`setup` call asked for the quick mode (taught in 00_orientation_and_threat_model)."""
    return bool(_STATE["fast"])


def current_device() -> torch.device:
    """The device chosen by the last :func:`setup` call (CPU before any call) (taught in 00_orientation_and_threat_model)."""
    return _STATE["device"]  # type: ignore[return-value]


def set_plot_defaults() -> None:
    """Seaborn's clean theme, a readable figure size and no interactive windows (taught in 00_orientation_and_threat_model)."""
    import matplotlib
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    matplotlib.rcParams.update({
        "figure.figsize": (6.4, 4.0),
        "figure.dpi": 80,
        "savefig.dpi": 80,
        "axes.titlesize": "medium",
        "image.cmap": "gray_r",
    })
    plt.rcParams["svg.hashsalt"] = "modelsec"


__all__ = ["setup", "seed_everything", "pick_device", "is_fast", "current_device", "numerics_signature",
           "set_plot_defaults", "THREADS"]
