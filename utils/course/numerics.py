"""Pinned numerics: the same float results on every x86-64 processor (taught in 00_orientation_and_threat_model).

Seeds and deterministic algorithms make a run repeatable *on one machine*.
Across machines torch's CPU kernels still differ: ATen picks vector kernels by
the processor (AVX2, AVX-512), MKL picks a code path by processor and vendor,
and oneDNN picks its instruction set, and each choice sums floats in another
order, so the trained weights and the printed numbers change. Three settings
remove those choices:

- ``ATEN_CPU_CAPABILITY=default``: ATen's portable (non-vectorised) kernels;
- ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility mode,
  one code path on every processor;
- ``torch.backends.mkldnn.enabled = False``: no oneDNN (convolutions use
  ATen's own im2col + MKL path).

The two environment variables are read when torch loads, so they cannot be
set from a notebook cell: the course's Jupyter kernel ``modelsec`` carries
them in its kernel spec (``env``), the Makefile exports them, and
:func:`utils.setup` turns oneDNN off and prints one warning line when the
variables are missing. Training costs about 30% more time (the CNN about
twice as much), which the course's small models afford.

This module imports no torch, so tooling can read the settings cheaply.

Run ``python -m utils.course.numerics install-kernel`` to install the kernel into the
running environment (``make`` does it for ``.venv``), and
``python -m utils.course.numerics status`` to see whether the pin is in effect.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

#: The environment every course kernel runs with (read by torch when it loads).
PINNED_ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
}

#: The Jupyter kernel that carries :data:`PINNED_ENV`; every notebook names it.
KERNEL_NAME = "modelsec"
KERNEL_DISPLAY_NAME = "ModelSec (Python 3, pinned numerics)"

#: The kernelspec block every committed notebook carries in its metadata.
NOTEBOOK_KERNELSPEC = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME, "language": "python"}

HOW_TO_FIX = (f"open the notebook with the '{KERNEL_DISPLAY_NAME}' kernel (make lab), "
              f"or start Jupyter with " + " ".join(f"{k}={v}" for k, v in PINNED_ENV.items()))


_CONTROLLER: tuple[int, object] | None = None


def _controller():
    """threadpoolctl's view of the loaded thread pools. Scanning the loaded
    libraries is slow, so the scan is kept until a new module is imported
    (which may load another BLAS or OpenMP)."""
    global _CONTROLLER
    if _CONTROLLER is None or _CONTROLLER[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = (len(sys.modules), ThreadpoolController())
    return _CONTROLLER[1]


def limit_threads(threads: int) -> None:
    """Run NumPy's BLAS and OpenMP on ``threads`` threads from now on: a different
    thread count sums floats in another order (called by ``utils.setup``; taught in
    00_orientation_and_threat_model)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


@contextlib.contextmanager
def one_thread():
    """NumPy's BLAS and OpenMP on one thread inside the block (or a function
    decorated with :func:`single_threaded`), restored after. Small kernel
    matrices gain little from threads, lose much when the cores are busy, and
    would sum in another order on another machine (taught in 03_data_defenses
    and 08_monitoring)."""
    with _controller().limit(limits=1):
        yield


def single_threaded(fn):
    """Decorate ``fn`` to run inside :func:`one_thread` (taught in 03_data_defenses)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with one_thread():
            return fn(*args, **kwargs)
    return wrapper


def missing_settings(environ: dict[str, str] | None = None, torch_module=None) -> list[str]:
    """The pinned settings that are not in effect, as ``NAME=value (found ...)`` strings.

    With ``torch_module`` (an imported torch) the CPU capability torch actually
    chose is checked as well: the variable only counts if it was set before
    torch loaded.

    Taught in 00_orientation_and_threat_model.
    """
    env = os.environ if environ is None else environ
    missing = []
    for name, value in PINNED_ENV.items():
        found = env.get(name)
        if (found or "").lower() != value.lower():
            missing.append(f"{name}={value} (found {found if found is not None else 'unset'})")
    if torch_module is not None and not any(m.startswith("ATEN_CPU_CAPABILITY") for m in missing):
        try:
            capability = torch_module.backends.cpu.get_cpu_capability()
        except AttributeError:  # a torch without this query
            capability = "DEFAULT"
        if capability.upper() != "DEFAULT":
            missing.append(f"ATEN_CPU_CAPABILITY=default (set after torch loaded; torch uses {capability})")
    return missing


def warning_line(missing: list[str]) -> str:
    """The one line :func:`utils.setup` prints when the pin is not in effect (taught in 00_orientation_and_threat_model)."""
    return (f"⚠ pinned numerics are off ({', '.join(missing)}): numbers may differ from the "
            f"committed ones in the last digits; {HOW_TO_FIX}.")


def kernel_spec(python: str | None = None) -> dict:
    """The kernel.json of the course kernel for the interpreter ``python`` (taught in 00_orientation_and_threat_model)."""
    return {
        "argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "python",
        "env": dict(PINNED_ENV),
        "metadata": {"debugger": True},
    }


def install_kernel(prefix: str | None = None, user: bool = False) -> str:
    """Install the ``modelsec`` kernel (for this interpreter) and return where it went.

    By default into ``sys.prefix`` (the virtual environment or conda
    environment), so Jupyter started from that environment finds it.

    Taught in 00_orientation_and_threat_model.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / KERNEL_NAME
        src.mkdir()
        (src / "kernel.json").write_text(json.dumps(kernel_spec(), indent=1) + "\n")
        try:  # the Python logo, as ipykernel's own spec has
            from ipykernel.kernelspec import RESOURCES
            for logo in Path(RESOURCES).glob("logo-*.png"):
                shutil.copy(logo, src / logo.name)
        except ImportError:
            pass
        kwargs = {"user": True} if user else {"prefix": prefix or sys.prefix}
        return KernelSpecManager().install_kernel_spec(str(src), KERNEL_NAME, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """The command line python -m utils.course.numerics (make), taught in 00_orientation_and_threat_model."""
    parser = argparse.ArgumentParser(prog="python -m utils.course.numerics", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_inst = sub.add_parser("install-kernel", help=f"install the '{KERNEL_NAME}' Jupyter kernel")
    p_inst.add_argument("--user", action="store_true", help="into the user's Jupyter folder instead of sys.prefix")
    p_inst.add_argument("--prefix", help="into PREFIX/share/jupyter/kernels")
    sub.add_parser("status", help="say whether the pinned settings are in effect in this process")
    sub.add_parser("env", help="print the settings as NAME=value lines (for shells and Makefiles)")
    args = parser.parse_args(argv)
    if args.command == "install-kernel":
        where = install_kernel(prefix=args.prefix, user=args.user)
        print(f"installed kernel '{KERNEL_NAME}' in {where}")
        return 0
    if args.command == "env":
        for k, v in PINNED_ENV.items():
            print(f"{k}={v}")
        return 0
    import torch  # status: what torch actually chose

    missing = missing_settings(torch_module=torch)
    print("pinned numerics are in effect" if not missing else warning_line(missing))
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
