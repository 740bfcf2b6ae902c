"""Checks of labs/07_secure_deployment_lab.ipynb (taught in notebooks/07_secure_deployment.ipynb).

Each check builds its own cases (model files with fresh names, signed and tampered bundles, access
requests at the boundaries of the rule, a battery of JSON payloads), out of the learner's sight, and
compares the learner's code with a reference computed here (the tests name the plausible wrong
answers: tests/test_lab_checks_07.py). Failure messages say which case is wrong, never the answer.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from utils import deployment as dep
from utils import models, serving
from utils.course.grading import NotSolved, forbid, require
from . import Checker
from . import call as _call


# --------------------------------------------------------------------------- exercise 1

_LOAD_WHY = "judge the files without loading them (a loaded pickle runs its payload)"


def _unsafe_files(folder: Path, model: torch.nn.Module, with_payloads: bool) -> tuple[list[Path], set[Path], list[Path]]:
    """(every file, the files with a payload, the payloads' marker files) in ``folder`` (07_secure_deployment_lab)."""
    rng = np.random.default_rng(7)
    names = iter(f"f{n:03d}" for n in rng.permutation(1000))
    files, unsafe, markers = [], set(), []

    def path(ext: str) -> Path:
        return folder / f"{next(names)}{ext}"

    def benign(ext: str) -> None:
        files.append(dep.make_benign_checkpoint(path(ext), model))

    def safetensors(ext: str) -> None:
        p = path(ext)
        dep.save_weights(model, p)
        files.append(p)

    def malicious(ext: str, via: str, state: bool) -> None:
        marker = folder / f"marker-{len(markers)}"
        p = dep.make_malicious_pickle(path(ext), marker, model=model if state else None, via=via)
        files.append(p), unsafe.add(p), markers.append(marker)

    benign(".pt"), safetensors(".safetensors"), benign(".bin")
    if with_payloads:
        malicious(".pt", "builtins.exec", True)
        malicious(".pt", "pathlib.Path.touch", True)
        malicious(".safetensors", "builtins.exec", True)  # a pickle under a safe-looking name
        malicious(".ckpt", "pathlib.Path.touch", False)
    else:
        benign(".pth")
    order = rng.permutation(len(files))
    return [files[i] for i in order], unsafe, markers


def _as_paths(out: Any, what: str) -> set[Path]:
    require(isinstance(out, (set, frozenset)), f"find_unsafe should return a set of paths, got {type(out).__name__} on {what}")
    try:
        return {Path(p).resolve() for p in out}
    except TypeError:
        raise NotSolved(f"find_unsafe should return a set of paths (str or pathlib.Path) on {what}") from None


def _exercise_1(find_unsafe: Callable, *, model: torch.nn.Module) -> None:
    """Two folders of model files with fresh names (one with four payloads, one with none); the learner's
    set must be exactly the files with a payload, found without loading any file (07_secure_deployment_lab)."""
    require(callable(find_unsafe), "find_unsafe should be a function (paths) -> set of paths")
    folder = Path(tempfile.mkdtemp(prefix="lab07-files-"))
    try:
        for with_payloads, what in ((True, "the check's first folder (7 files)"),
                                    (False, "the check's second folder (4 files)")):
            sub = folder / ("a" if with_payloads else "b")
            sub.mkdir()
            files, unsafe, markers = _unsafe_files(sub, model, with_payloads)
            with forbid(torch.load, pickle.load, pickle.loads, dep.unsafe_load_in_subprocess,
                        dep.weights_only_refusal, why=_LOAD_WHY):
                out = _call(f"find_unsafe on {what}", find_unsafe, list(files))
            require(not any(m.exists() for m in markers),
                    f"a payload ran while find_unsafe looked at {what}: never load a file to judge it")
            found, truth = _as_paths(out, what), {p.resolve() for p in unsafe}
            require(found <= {p.resolve() for p in files}, f"on {what}, find_unsafe returned paths it was not given")
            require(not truth - found, f"on {what}, {len(truth - found)} file(s) with a payload were not found")
            require(not found - truth, f"on {what}, {len(found - truth)} file(s) without a payload were flagged")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- exercise 2

TRIAL_PREFIX, TRIAL_MAX = "trial-", 10


def _rule(identity: serving.Identity, context: serving.Context) -> serving.Decision:
    """The exercise's rule: serving.decide, plus at most 10 images a request and labels only for a
    ``trial-`` client without ``admin`` (07_secure_deployment_lab)."""
    if not identity.subject.startswith(TRIAL_PREFIX) or "admin" in identity.scopes:
        return serving.decide(identity, context)
    limit = TRIAL_MAX if context.max_batch is None else min(context.max_batch, TRIAL_MAX)
    decision = serving.decide(identity, dataclasses.replace(context, max_batch=limit))
    return dataclasses.replace(decision, output="label") if decision.allow else decision


def _who(subject: str, *scopes: str) -> serving.Identity:
    return serving.Identity(subject, frozenset(scopes))


def _rule_cases() -> list[tuple[str, serving.Identity, serving.Context]]:
    """(what, identity, context): ordinary and trial clients, at and around every limit (07_secure_deployment_lab)."""
    C, P, S = serving.Context, "predict", "predict:scores"
    return [
        ("an ordinary label-only client, 5 images", _who("alice", P), C(5, max_batch=64)),
        ("an ordinary client with scores (rounded), 5 images", _who("alice", P, S), C(5, max_batch=64, scores="rounded")),
        ("an ordinary client, exactly at the batch limit", _who("bob", P), C(64, max_batch=64)),
        ("an ordinary client, one over the batch limit", _who("bob", P), C(65, max_batch=64)),
        ("an ordinary client with scores but no 'predict'", _who("carol", S), C(1, max_batch=64)),
        ("an ordinary admin, 30 images, rounded scores set", _who("dave", "admin"), C(30, max_batch=64, scores="rounded")),
        ("a trial client at the trial limit", _who("trial-erin", P), C(10, max_batch=64)),
        ("a trial client one over the trial limit", _who("trial-erin", P), C(11, max_batch=64)),
        ("a trial client over the trial limit, no batch limit set", _who("trial-erin", P), C(40)),
        ("a trial client at the trial limit, no batch limit set", _who("trial-erin", P), C(10)),
        ("a trial client with scores", _who("trial-frank", P, S), C(3, max_batch=64)),
        ("a trial client with rounded scores", _who("trial-frank", P, S), C(3, max_batch=64, scores="rounded")),
        ("a trial client under a batch limit smaller than the trial's", _who("trial-frank", P), C(8, max_batch=5)),
        ("a trial admin, 40 images", _who("trial-grace", "admin"), C(40, max_batch=64)),
        ("a trial client without 'predict', 11 images", _who("trial-heidi"), C(11, max_batch=64)),
        ("a trial client with scores but no 'predict', 3 images", _who("trial-heidi", S), C(3, max_batch=64)),
        ("a trial client over the trial limit with its quota used up", _who("trial-ivan", P), C(11, used=100, quota=100, max_batch=64)),
        ("a trial client whose request would pass its quota", _who("trial-ivan", P), C(5, used=8, quota=10, max_batch=64)),
        ("a trial client whose request fills its quota exactly", _who("trial-ivan", P), C(2, used=8, quota=10, max_batch=64)),
        ("a client named 'trialist' (no dash), 30 images with scores", _who("trialist", P, S), C(30, max_batch=64)),
        ("a client named 'my-trial-app', 30 images", _who("my-trial-app", P), C(30, max_batch=64)),
    ]


def _exercise_2(my_decide: Callable, refused_request: Any) -> None:
    """my_decide against the rule on the check's own requests (allow, status, output, a reason for each
    refusal), then refused_request: a request the rule refuses and serving.decide allows (07_secure_deployment_lab)."""
    require(callable(my_decide), "my_decide should be a function (identity, context) -> serving.Decision")
    for what, identity, context in _rule_cases():
        expected = _rule(identity, context)
        out = _call(f"my_decide on {what}", my_decide, identity, context)
        require(isinstance(out, serving.Decision), f"my_decide should return a serving.Decision, got {type(out).__name__}")
        if expected.allow:
            require(out.allow, f"on {what}, my_decide refuses a request the rule allows")
            require(out.status == 200, f"on {what}, an allowed request should have status 200, not {out.status!r}")
            require(out.output == expected.output,
                    f"on {what}, the output {out.output!r} is not what the rule gives this client")
        else:
            require(not out.allow, f"on {what}, my_decide allows a request the rule refuses")
            require(out.status == expected.status,
                    f"on {what}, the refusal's status {out.status!r} is not the one the rule gives")
            require(isinstance(out.reason, str) and out.reason.strip(), f"on {what}, the refusal gives no reason")
    require(isinstance(refused_request, tuple) and len(refused_request) == 2,
            "refused_request should be a tuple (serving.Identity, serving.Context)")
    identity, context = refused_request
    require(isinstance(identity, serving.Identity) and isinstance(context, serving.Context),
            "refused_request should be a tuple (serving.Identity, serving.Context)")
    require(serving.decide(identity, context).allow, "serving.decide already refuses refused_request: "
                                                     "find one that only your rule refuses")
    require(not _rule(identity, context).allow, "the exercise's rule allows refused_request")
    require(not _call("my_decide on refused_request", my_decide, identity, context).allow,
            "my_decide allows refused_request")


# --------------------------------------------------------------------------- exercise 3


def _flip_last_byte(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    data[-1] ^= 0x01
    dst.write_bytes(bytes(data))
    return dst


def _exercise_3(is_authentic: Callable, *, model: torch.nn.Module) -> None:
    """The check's own publisher and attacker keys, two signed models and their tampered copies;
    is_authentic must say True or False on each, never raise (07_secure_deployment_lab)."""
    require(callable(is_authentic), "is_authentic should be a function (model_path, public_key, signature_path) -> bool")
    d = Path(tempfile.mkdtemp(prefix="lab07-sign-"))
    try:
        publisher, attacker = dep.make_keypair(d, "pub"), dep.make_keypair(d, "att")
        a, b = d / "a.safetensors", d / "b.safetensors"
        dep.save_weights(model, a)
        other = models.build_model("mlp", (1, 8, 8), 10, seed=12345).eval()
        dep.save_weights(other, b)
        sig_a, sig_b = dep.sign(a, publisher.private, d / "a.sig"), dep.sign(b, publisher.private, d / "b.sig")
        flipped = _flip_last_byte(a, d / "a-flipped.safetensors")
        resigned = _flip_last_byte(a, d / "a-resigned.safetensors")
        sig_resigned = dep.sign(resigned, attacker.private, d / "a-resigned.sig")
        sig_attacker_a = dep.sign(a, attacker.private, d / "a-attacker.sig")
        junk_json = d / "junk.sig"
        junk_json.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}))
        junk_text = d / "junk.txt"
        junk_text.write_text("this is not a signature\n")
        cases = [
            ("the genuine file with its signature", (a, publisher.public, sig_a), True),
            ("another genuine file with its signature", (b, publisher.public, sig_b), True),
            ("the file with one byte flipped", (flipped, publisher.public, sig_a), False),
            ("another file of the same size under the first file's signature", (b, publisher.public, sig_a), False),
            ("the genuine file checked with another public key", (a, attacker.public, sig_a), False),
            ("the genuine file signed by someone else's key", (a, publisher.public, sig_attacker_a), False),
            ("a tampered file re-signed with the attacker's key", (resigned, publisher.public, sig_resigned), False),
            ("the genuine file with a JSON file that is not a bundle", (a, publisher.public, junk_json), False),
            ("the genuine file with a text file as its signature", (a, publisher.public, junk_text), False),
        ]
        for what, args, expected in cases:
            out = _call(f"is_authentic on {what}", is_authentic, *args)
            require(isinstance(out, (bool, np.bool_)), f"is_authentic should return True or False, got {out!r} on {what}")
            require(bool(out) == expected, f"is_authentic is wrong on {what}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- exercise 4

SHAPE = (1, 8, 8)


def naive_validator(payload: Any) -> bool:
    """The first draft of the input check that exercise 4 breaks (07_secure_deployment_lab): the
    same code as the lab's ``naive_validator``, kept here so that the check does not depend on
    the learner's copy."""
    if not isinstance(payload, dict) or "images" not in payload:
        return False
    try:
        x = np.asarray(payload["images"], dtype=np.float32)
    except (TypeError, ValueError):
        return False
    return x.ndim == 4 and x.shape[1:] == SHAPE and not (x < 0).any() and not (x > 1).any()


def _pixel_ok(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


def _nested_ok(x: Any, shape: tuple[int, ...]) -> bool:
    if not shape:
        return _pixel_ok(x)
    return isinstance(x, list) and len(x) == shape[0] and all(_nested_ok(e, shape[1:]) for e in x)


def valid_payload(payload: Any, max_images: int) -> bool:
    """The specification of exercise 4 (07_secure_deployment_lab): a dict with the one key
    ``"images"``, a list of 1 … ``max_images`` images, each nested lists of shape (1, 8, 8) of JSON
    numbers (not booleans, not strings), finite and in [0, 1]."""
    if not isinstance(payload, dict) or set(payload) != {"images"}:
        return False
    images = payload["images"]
    return (isinstance(images, list) and 1 <= len(images) <= max_images
            and all(_nested_ok(img, SHAPE) for img in images))


def _set(batch: list, path: tuple[int, ...], value: Any) -> list:
    out = json.loads(json.dumps(batch))
    target = out
    for i in path[:-1]:
        target = target[i]
    target[path[-1]] = value
    return out


def _battery(X: np.ndarray, max_images: int) -> list[tuple[str, Any]]:
    """(what, payload as it arrives from JSON) for exercise 4: valid and invalid (07_secure_deployment_lab)."""
    two = X[:2].astype(float).tolist()
    ints = np.zeros((1, *SHAPE), int)
    ints[0, 0, 3, :4] = 1
    batch = [
        ("5 test digits", {"images": X[:5].tolist()}),
        ("one test digit", {"images": X[:1].tolist()}),
        ("a batch of exactly the largest size", {"images": X[:max_images].tolist()}),
        ("an image of zeros and ones written as integers", {"images": ints.tolist()}),
        ("an all-zero and an all-one image", {"images": [np.zeros(SHAPE).tolist(), np.ones(SHAPE).tolist()]}),
        ("a NaN pixel", {"images": _set(two, (1, 0, 4, 4), float("nan"))}),
        ("an infinite pixel", {"images": _set(two, (0, 0, 0, 0), float("inf"))}),
        ("a pixel of minus infinity", {"images": _set(two, (0, 0, 7, 7), float("-inf"))}),
        ("0-255 pixels", {"images": (X[:2] * 255).round().astype(int).tolist()}),
        ("a negative pixel", {"images": _set(two, (0, 0, 2, 5), -0.01)}),
        ("a pixel just above 1", {"images": _set(two, (1, 0, 6, 1), 1.001)}),
        ("images of 8 x 4", {"images": X[:2, :, :, :4].tolist()}),
        ("images without the channel axis", {"images": X[:2, 0].tolist()}),
        ("a 2-D image of 1 x 64", {"images": X[:2].reshape(2, 1, 64).tolist()}),
        ("one row one pixel short (ragged)", {"images": _set(two, (0, 0, 3), two[0][0][3][:7])}),
        ("one image one row short (ragged)", {"images": [two[0], [two[1][0][:7]]]}),
        ("a pixel written as a string", {"images": _set(two, (0, 0, 1, 1), "0.5")}),
        ("a pixel written as a boolean", {"images": _set(two, (1, 0, 5, 5), True)}),
        ("a null pixel", {"images": _set(two, (0, 0, 0, 3), None)}),
        ("a pixel that is a list", {"images": _set(two, (0, 0, 0, 3), [0.5])}),
        ("an empty batch", {"images": []}),
        ("one image too many", {"images": X[:1].repeat(max_images + 1, axis=0).tolist()}),
        ("images that are a string", {"images": "[[[0.5]]]"}),
        ("one image without the batch axis", {"images": X[0].tolist()}),
        ("an extra field", {"images": X[:2].tolist(), "debug": True}),
        ("no images field", {"image": X[:2].tolist()}),
        ("a list instead of an object", [X[:2].tolist()]),
        ("null", None),
    ]
    return [(what, json.loads(json.dumps(p))) for what, p in batch]


def _exercise_4(hole: Any, fixed_validator: Callable, *, X: np.ndarray, max_images: int) -> None:
    """hole: a JSON payload the naive validator accepts and the specification refuses; fixed_validator:
    agrees with the specification on the check's battery of valid and invalid payloads (07_secure_deployment_lab)."""
    require(hole is not None, "set hole to a payload (a dict, as json.loads would give it)")
    try:
        sent = json.loads(json.dumps(hole))
    except (TypeError, ValueError):
        raise NotSolved("hole is not a JSON payload (json.dumps cannot write it)") from None
    require(naive_validator(sent), "the naive validator refuses hole: find a payload it lets through")
    require(not valid_payload(sent, max_images), "hole is a valid request: find one that should be refused")
    require(callable(fixed_validator), "fixed_validator should be a function (payload) -> bool")
    for what, payload in _battery(X, max_images) + [("your hole", sent)]:
        out = _call(f"fixed_validator on {what}", fixed_validator, json.loads(json.dumps(payload)))
        require(isinstance(out, (bool, np.bool_)), f"fixed_validator should return True or False, got {out!r} on {what}")
        expected = valid_payload(payload, max_images)
        require(bool(out) == expected,
                f"fixed_validator {'refuses' if expected else 'accepts'} a payload with {what}")


check = Checker("lab07", {
    1: ("find the unsafe files", _exercise_1),
    2: ("an access rule", _exercise_2),
    3: ("verify a signature", _exercise_3),
    4: ("break the validation, then fix it", _exercise_4),
})
