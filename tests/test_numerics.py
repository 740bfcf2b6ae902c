"""Pinned numerics (utils.course.numerics): the same weights whatever instruction set the processor offers.

Different processors are simulated in subprocesses through the libraries' own
switches: ``MKL_ENABLE_INSTRUCTIONS`` (MKL's code path), ``ONEDNN_MAX_CPU_ISA``
(oneDNN's) and ``ATEN_CPU_CAPABILITY`` (torch's vector kernels). With the pin the
weights are bit-identical; without it they differ, so the test can fail.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from utils.course import numerics

ROOT = Path(__file__).resolve().parent.parent

TRAIN = r"""
import hashlib, json, os, sys
import torch
import utils
from utils import data, training
utils.setup(0, plots=False)
if os.environ.get("KEEP_ONEDNN"):  # what torch does without the pin
    torch.backends.mkldnn.enabled = True
ds = data.load("digits", seed=0)
out = {"capability": torch.backends.cpu.get_cpu_capability()}
for name in ("mlp", "cnn"):
    model = training.fit(training.preset(name, epochs=3), ds.X_train, ds.y_train, ds.n_classes, cache=False)
    model = model[0] if isinstance(model, tuple) else model
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode()); h.update(v.detach().cpu().numpy().tobytes())
    out[name] = h.hexdigest()
print("RESULT " + json.dumps(out))
"""


def _base_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in numerics.PINNED_ENV}
    for k in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "KEEP_ONEDNN"):
        env.pop(k, None)
    env["MODELSEC_PROGRESS"] = "0"
    return env


def train_in_subprocess(pinned: bool, **simulate: str) -> tuple[dict, str]:
    env = _base_env()
    if pinned:
        env.update(numerics.PINNED_ENV)
    env.update(simulate)
    proc = subprocess.run([sys.executable, "-c", TRAIN], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), proc.stdout


AVX2 = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
AVX512 = {"MKL_ENABLE_INSTRUCTIONS": "AVX512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}
SSE = {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"}


@pytest.mark.notebooks  # slow: five trainings in fresh interpreters
def test_pinned_weights_are_identical_under_every_simulated_instruction_set():
    runs = [train_in_subprocess(True, **isa) for isa in (AVX2, AVX512, SSE)]
    results = [r for r, _ in runs]
    assert all(r["capability"] == "DEFAULT" for r in results), results
    assert results[0]["mlp"] == results[1]["mlp"] == results[2]["mlp"]
    assert results[0]["cnn"] == results[1]["cnn"] == results[2]["cnn"]
    assert all("pinned numerics are off" not in out for _, out in runs)


@pytest.mark.notebooks
def test_without_the_pin_the_weights_depend_on_the_instruction_set():
    portable, _ = train_in_subprocess(False, ATEN_CPU_CAPABILITY="default", KEEP_ONEDNN="1", **SSE)
    vector, out = train_in_subprocess(False, ATEN_CPU_CAPABILITY="avx2", KEEP_ONEDNN="1", **AVX2)
    if vector["capability"] != "AVX2":
        pytest.skip(f"this processor cannot run AVX2 kernels (torch chose {vector['capability']})")
    assert portable["mlp"] != vector["mlp"] or portable["cnn"] != vector["cnn"], \
        "unpinned runs under two instruction sets gave identical weights: the pin test would prove nothing"
    assert portable["cnn"] != vector["cnn"]
    assert "pinned numerics are off" in out  # and utils.setup says so


def test_missing_settings_name_what_is_wrong():
    assert numerics.missing_settings(dict(numerics.PINNED_ENV)) == []
    missing = numerics.missing_settings({"MKL_CBWR": "AUTO"})
    assert missing == ["ATEN_CPU_CAPABILITY=default (found unset)", "MKL_CBWR=COMPATIBLE (found AUTO)"]
    line = numerics.warning_line(missing)
    assert line.count("\n") == 0 and "may differ" in line and numerics.KERNEL_DISPLAY_NAME in line


def test_a_variable_set_after_torch_loaded_does_not_count():
    class FakeTorch:
        class backends:
            class cpu:
                @staticmethod
                def get_cpu_capability():
                    return "AVX512"

    missing = numerics.missing_settings(dict(numerics.PINNED_ENV), torch_module=FakeTorch)
    assert missing == ["ATEN_CPU_CAPABILITY=default (set after torch loaded; torch uses AVX512)"]


def test_the_course_kernel_carries_the_pin():
    """Started without the variables (as a learner's `jupyter lab` would be), the kernel still has them."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name=numerics.KERNEL_NAME, env=_base_env(), cwd=str(ROOT))
    try:
        code = ("import os, torch, utils; utils.setup(0, plots=False)\n"
                "print('CAP', torch.backends.cpu.get_cpu_capability(), os.environ.get('MKL_CBWR'),"
                " torch.backends.mkldnn.enabled)")
        lines = []
        kc.execute_interactive(code, timeout=120, output_hook=lambda m: lines.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        text = "".join(lines)
        assert "CAP DEFAULT COMPATIBLE False" in text, text
        assert "pinned numerics are off" not in text
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_kernel_spec_runs_this_interpreter_with_the_pinned_env():
    spec = numerics.kernel_spec("/some/python")
    assert spec["argv"][0] == "/some/python" and spec["env"] == numerics.PINNED_ENV


def test_every_committed_notebook_names_the_course_kernel():
    from utils.tooling.notebooks import all_notebooks
    import nbformat

    wrong = [p.name for p in all_notebooks()
             if nbformat.read(str(p), as_version=4).metadata.get("kernelspec", {}).get("name") != numerics.KERNEL_NAME]
    assert not wrong, f"notebooks without the '{numerics.KERNEL_NAME}' kernel: {wrong} (run make clean-notebooks)"


def test_makefile_exports_the_pin():
    makefile = (ROOT / "Makefile").read_text()
    for k, v in numerics.PINNED_ENV.items():
        assert f"export {k} := {v}" in makefile
