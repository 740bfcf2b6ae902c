"""utils.course.params and utils.course.setup: parameter checks, seeding, determinism."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import utils
from utils.course.params import ParameterError, check_parameters, choice, integer, real
from utils.course.setup import THREADS, is_fast, pick_device, setup


@pytest.mark.parametrize("name,value,fragment", [
    ("seed", -1, "'seed' = -1"),
    ("seed", "0", "'seed' = '0' (str)"),
    ("seed", 1.5, "an integer"),
    ("seed", True, "an integer"),
    ("fast", "yes", "True or False"),
    ("device", "tpu", "one of ['cpu', 'cuda', 'auto']"),
    ("epsilon", -0.1, "0.0 <= value <= 1.0"),
    ("epsilon", 1.5, "'epsilon'"),
    ("epsilon", float("nan"), "'epsilon'"),
    ("poison_rate", 2, "'poison_rate'"),
    ("window", 1, "2 <= value"),
])
def test_bad_parameters_are_named(name, value, fragment):
    with pytest.raises(ParameterError) as err:
        check_parameters(**{name: value})
    assert fragment in str(err.value)
    assert name in str(err.value)


def test_good_parameters_pass_unchanged():
    vals = check_parameters(seed=3, fast=True, device="auto", epsilon=0.3, poison_rate=0)
    assert vals == {"seed": 3, "fast": True, "device": "auto", "epsilon": 0.3, "poison_rate": 0}


def test_custom_rules_and_unknown_names():
    check_parameters(rules={"size": integer(1, 8)}, size=3)
    with pytest.raises(ParameterError, match="'size' = 9"):
        check_parameters(rules={"size": integer(1, 8)}, size=9)
    with pytest.raises(ParameterError, match="no rule"):
        check_parameters(mystery=1)
    assert choice(["a"]).test("a") and not choice(["a"]).test("b")
    assert real(0, 1).test(0.5) and not real(0, 1).test(True)


def test_setup_seeds_everything_the_same_way():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    setup(5, plots=False)
    a = draw()
    setup(5, plots=False)
    assert draw() == a
    setup(6, plots=False)
    assert draw() != a


def test_setup_fixes_threads_determinism_and_device():
    dev = setup(0, device="cpu", fast=True, plots=False)
    assert dev == torch.device("cpu")
    assert torch.get_num_threads() == THREADS
    assert torch.are_deterministic_algorithms_enabled()
    assert is_fast()
    setup(0, plots=False)
    assert not is_fast()


def test_setup_rejects_bad_values():
    with pytest.raises(ParameterError, match="'seed'"):
        setup(seed="x")
    with pytest.raises(ParameterError, match="'device'"):
        setup(0, device="gpu")


def test_cuda_asked_but_absent_is_a_clear_error():
    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
    else:
        with pytest.raises(RuntimeError, match="no CUDA device"):
            pick_device("cuda")
    assert pick_device("auto").type in ("cpu", "cuda")


def test_package_exports():
    assert utils.setup is setup and utils.check_parameters is check_parameters


def test_setup_fixes_blas_threads_too():
    from threadpoolctl import threadpool_info

    setup(0, plots=False)
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and all(i["num_threads"] == THREADS for i in blas)
