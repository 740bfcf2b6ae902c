"""The capstone's mystery models (utils.audit.mystery): reproducible, verified, distinguishable only by
their weakness, and the secret kept out of plain sight."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import utils
from utils import training
from utils.attacks import evasion, poisoning
from utils.audit import mystery
from utils.deployment import load_weights, sha256_file
from utils.lab_checks import lab11
from utils.privacy import membership as mi

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built():
    utils.setup(0, plots=False)
    return mystery.build()


@pytest.fixture(scope="module")
def models(built):
    return {name: load_weights(path, mystery.new_model()) for name, path in built.items()}


def test_build_verifies_every_file_against_the_manifest(built):
    entries = {e["name"]: e for e in mystery.read_manifest()["models"]}
    assert set(built) == set(mystery.NAMES) == set(entries)
    for name, path in built.items():
        assert path.name == f"{name}.safetensors"
        assert sha256_file(path) == entries[name]["sha256"]


def test_manifest_lists_architecture_and_seeds_but_not_the_weakness():
    text = mystery.MANIFEST_PATH.read_text()
    for e in json.loads(text)["models"]:
        assert e["architecture"] == mystery.ARCHITECTURE
        assert e["data"]["split_seed"] == mystery.SPLIT_SEEDS[e["name"]]
        assert e["data"]["data_seed"] == mystery.DATA_SEED
    assert not re.search(r"backdoor|leak|fragile|trigger|target|evasion|member", text, re.I)


def test_a_fresh_build_in_another_process_has_the_same_bytes(tmp_path):
    """Built twice, in separate processes with empty caches: the same sha256 as the manifest."""
    env = dict(os.environ, MODELSEC_CACHE=str(tmp_path / "cache"))
    out = tmp_path / "built"
    subprocess.run([sys.executable, "-m", "utils.audit.mystery", str(out)], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    entries = {e["name"]: e["sha256"] for e in mystery.read_manifest()["models"]}
    assert {n: sha256_file(out / f"{n}.safetensors") for n in mystery.NAMES} == entries


def test_a_changed_file_is_refused_with_both_hashes(built, tmp_path):
    copy = tmp_path / "mystery_a.safetensors"
    raw = bytearray(built["mystery_a"].read_bytes())
    raw[-1] ^= 1
    copy.write_bytes(bytes(raw))
    expected = {e["name"]: e["sha256"] for e in mystery.read_manifest()["models"]}["mystery_a"]
    with pytest.raises(mystery.MysteryIntegrityError) as e:
        mystery.verify(copy, "mystery_a")
    assert str(copy) in str(e.value) and expected in str(e.value) and sha256_file(copy) in str(e.value)


def test_build_replaces_a_tampered_file_and_verifies_it(built, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name, path in built.items():
        (out / path.name).write_bytes(path.read_bytes())
    (out / "mystery_b.safetensors").write_bytes(b"not a model")
    paths = mystery.build(out)
    assert sha256_file(paths["mystery_b"]) == sha256_file(built["mystery_b"])


def test_unknown_names_get_a_clear_error():
    with pytest.raises(ValueError, match="member_split: name"):
        mystery.member_split("mystery_d")


def test_clean_accuracy_does_not_give_them_away(models):
    X, y = mystery.test_set()
    accs = [training.accuracy(m, X, y) for m in models.values()]
    assert min(accs) >= 0.92 and max(accs) - min(accs) <= 0.02


def test_candidate_records_are_half_members_and_were_in_training():
    for name in mystery.NAMES:
        split = mystery.member_split(name)
        assert len(split.y) == mystery.N_UNUSUAL and split.n_members == split.n_nonmembers == mystery.N_UNUSUAL // 2
        X_train = mystery._split(name).X_train  # before any poison stamps a few of them
        flat = {x.tobytes() for x in X_train}
        assert all(x.tobytes() in flat for x in split.X[split.members])
        assert not any(x.tobytes() in flat for x in split.X[~split.members])


def _weakness_numbers(models):
    truth = mystery._truth()
    X, y = mystery.test_set()
    x, t = torch.as_tensor(X), torch.as_tensor(y)
    out = {}
    for name, m in models.items():
        split = mystery.member_split(name)
        s = mi.threshold_scores(m, split.X, split.y)
        out[name] = {
            "tpr": mi.tpr_at_fpr(s[split.members], s[~split.members], 0.01),
            "robust": evasion.robust_accuracy(m, evasion.pgd(m, x, t, 0.05, steps=20), t),
            "asr": poisoning.attack_success_rate(lambda Z, m=m: training.predict(m, Z), X, y, truth["trigger"],
                                                 truth["target"]),
        }
    return truth["recipes"], out


def test_each_model_stands_out_by_its_weakness_only(models):
    recipes, numbers = _weakness_numbers(models)
    by = {r: n for n, r in recipes.items()}
    assert sorted(recipes.values()) == ["backdoor", "fragile", "leak"]
    assert numbers[by["backdoor"]]["asr"] >= 0.95
    assert all(numbers[n]["asr"] <= 0.1 for n in mystery.NAMES if n != by["backdoor"])
    assert numbers[by["leak"]]["tpr"] >= 0.5
    assert all(numbers[n]["tpr"] <= 0.1 for n in mystery.NAMES if n != by["leak"])
    assert numbers[by["fragile"]]["robust"] <= 0.2
    assert all(numbers[n]["robust"] >= 0.3 for n in mystery.NAMES if n != by["fragile"])


def test_the_secret_is_not_a_readable_literal():
    src = (ROOT / "utils" / "audit" / "mystery.py").read_text()
    for name in mystery.NAMES:
        assert not re.search(rf"{name}['\"]?\s*[:=]\s*['\"](backdoor|leak|fragile)", src)
    assert not re.search(r"target\s*=\s*\d", src) and not re.search(r"position\s*=\s*['\"]", src)
    check_src = (ROOT / "utils" / "lab_checks" / "lab11.py").read_text()
    truth = mystery._truth()
    assert f'"{truth["position"]}"' not in check_src.split("def _exercise_5")[1].split("check = Checker")[0]


def test_the_lab_digests_are_those_of_the_truth():
    truth = mystery._truth()
    inv = {r: n for n, r in truth["recipes"].items()}
    assert lab11._digest("ex1", inv["backdoor"], str(truth["target"])) == lab11._EX1
    assert lab11._digest("ex2", inv["leak"]) == lab11._EX2
    assert lab11._digest("ex3", inv["fragile"]) == lab11._EX3
    words = {"backdoor": "backdoor", "leak": "membership leak", "fragile": "evasion"}
    assert {lab11._digest("ex4", n, words[r]) for n, r in truth["recipes"].items()} == lab11._EX4
    assert lab11._digest("ex5", truth["position"]) == lab11._EX5
    assert truth["position"] in poisoning.POSITIONS


def test_the_manifest_is_what_a_build_writes(built):
    assert mystery.manifest_entries(built)["models"] == mystery.read_manifest()["models"]
