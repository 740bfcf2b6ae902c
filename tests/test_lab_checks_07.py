"""lab07's checks: the lab's stubs fail, the solution's answers pass, named plausible wrong answers fail,
and other correct ways of writing each answer pass."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import pickle

import numpy as np
import pytest
import torch

import utils
from utils import data, deployment as dep, serving, training
from utils.lab_checks import lab07

FAIL = "NOT SOLVED YET"
MAX_IMAGES = 64


@pytest.fixture(scope="module")
def lab():
    utils.setup(0, plots=False)
    ds = data.load("digits", seed=0)
    model = training.fit(training.preset("mlp", seed=0), ds.X_train, ds.y_train, ds.n_classes)
    return ds, model


def _judge(capsys, n, answer, ok, says="", **context):
    result = lab07.check(n, *answer, **context)
    out = capsys.readouterr().out
    assert result is ok, out
    assert ("✅ PASSED" in out) if ok else (FAIL in out and says in out), out
    return out


# --------------------------------------------------------------------------- exercise 1

def unsafe_solution(paths):
    return {p for p in paths if not dep.is_safetensors(p) and not dep.scan_picklescan(p, strict=True).safe}


def unsafe_strict_only(paths):
    return {str(p) for p in paths if dep.scan_picklescan(p, strict=True).verdict == "unsafe"}


def unsafe_strict_or_modelscan(paths):
    return frozenset(p for p in paths if dep.scan_picklescan(p, strict=True).verdict == "unsafe"
                     or dep.scan_modelscan(p).verdict == "unsafe")


def unsafe_stub(paths):
    return set()


def unsafe_picklescan_default(paths):
    return {p for p in paths if not dep.scan_picklescan(p).safe}


def unsafe_modelscan(paths):
    return {p for p in paths if not dep.scan_modelscan(p).safe}


def unsafe_fickling(paths):
    return {p for p in paths if dep.scan_fickling(p).verdict == "unsafe"}


def unsafe_any_scanner(paths):
    return {p for p in paths if any(v.verdict == "unsafe" for v in dep.scan_all(p).values())}


def unsafe_by_extension(paths):
    return {p for p in paths if p.suffix != ".safetensors"}


def unsafe_every_pickle(paths):
    return {p for p in paths if not dep.is_safetensors(p)}


def unsafe_weights_only(paths):
    return {p for p in paths if not dep.is_safetensors(p) and dep.weights_only_refusal(p) is not None}


def unsafe_torch_load(paths):
    out = set()
    for p in paths:
        try:
            torch.load(p, weights_only=True)
        except Exception:
            out.add(p)
    return out


def unsafe_pickle_load(paths):
    out = set()
    for p in paths:
        try:
            pickle.loads(p.read_bytes())
        except Exception:
            out.add(p)
    return out


def unsafe_names(paths):
    return {p.name for p in paths if dep.scan_picklescan(p, strict=True).verdict == "unsafe"}


def unsafe_list(paths):
    return sorted(unsafe_solution(paths))


@pytest.mark.parametrize("fn", [unsafe_solution, unsafe_strict_only, unsafe_strict_or_modelscan],
                         ids=["solution", "strict-picklescan-only", "strict-or-modelscan"])
def test_exercise_1_passes(capsys, lab, fn):
    _judge(capsys, 1, (fn,), True, model=lab[1])


@pytest.mark.parametrize("fn,says", [
    (unsafe_stub, "were not found"),
    (unsafe_picklescan_default, "were not found"),
    (unsafe_modelscan, "were not found"),
    (unsafe_fickling, "without a payload were flagged"),
    (unsafe_any_scanner, "without a payload were flagged"),
    (unsafe_by_extension, "with a payload were not found"),
    (unsafe_every_pickle, "without a payload were flagged"),
    (unsafe_weights_only, "your code calls"),
    (unsafe_torch_load, "without a payload were flagged"),  # it swallows the refusal
    (unsafe_pickle_load, "without a payload were flagged"),
    (unsafe_names, "paths it was not given"),
    (unsafe_list, "should return a set"),
], ids=["stub", "picklescan-default", "modelscan", "fickling", "any-scanner", "by-extension", "every-pickle",
        "weights-only-load", "torch-load", "pickle-load", "names-not-paths", "a-list"])
def test_exercise_1_rejects(capsys, lab, fn, says):
    _judge(capsys, 1, (fn,), False, says, model=lab[1])


# --------------------------------------------------------------------------- exercise 2

def decide_solution(identity, context):
    if not identity.subject.startswith("trial-") or "admin" in identity.scopes:
        return serving.decide(identity, context)
    limit = 10 if context.max_batch is None else min(context.max_batch, 10)
    decision = serving.decide(identity, dataclasses.replace(context, max_batch=limit))
    return dataclasses.replace(decision, output="label") if decision.allow else decision


def decide_by_hand(identity, context):
    trial = identity.subject.startswith("trial-") and not identity.has("admin") or (
        identity.subject.startswith("trial-") and "admin" not in identity.scopes)
    if not identity.has("predict"):
        return serving.Decision(False, 403, "no predict scope")
    limit = context.max_batch
    if trial:
        limit = 10 if limit is None else min(limit, 10)
    if limit is not None and context.n_images > limit:
        return serving.Decision(False, 413, "too many images")
    if context.quota is not None and context.used + context.n_images > context.quota:
        return serving.Decision(False, 429, "quota")
    if "admin" in identity.scopes:
        out = "full"
    elif trial:
        out = "label"
    else:
        out = context.scores if "predict:scores" in identity.scopes else "label"
    return serving.Decision(True, 200, "ok", out)


TRIAL = (serving.Identity("trial-zoe", frozenset({"predict"})), serving.Context(n_images=11, max_batch=64))
TRIAL_NO_LIMIT = (serving.Identity("trial-x", frozenset({"predict", "predict:scores"})), serving.Context(n_images=50))


def decide_stub(identity, context):
    return serving.decide(identity, context)


def decide_off_by_one(identity, context):
    d = decide_solution(identity, context)
    if d.allow and identity.subject.startswith("trial-") and "admin" not in identity.scopes and context.n_images >= 10:
        return serving.Decision(False, 413, "too many")
    return d


def decide_trial_scores(identity, context):
    d = decide_solution(identity, context)
    full = serving.decide(identity, context)
    return dataclasses.replace(d, output=full.output) if d.allow and full.allow else d


def decide_ignores_admin(identity, context):
    if identity.subject.startswith("trial-"):
        return decide_solution(serving.Identity(identity.subject, identity.scopes - {"admin"} | (
            {"predict"} if "admin" in identity.scopes else set())), context)
    return serving.decide(identity, context)


def decide_wrong_status(identity, context):
    d = decide_solution(identity, context)
    return dataclasses.replace(d, status=403) if d.status == 413 and identity.subject.startswith("trial-") else d


def decide_substring(identity, context):
    if "trial" not in identity.subject or "admin" in identity.scopes:
        return serving.decide(identity, context)
    return decide_solution(serving.Identity("trial-" + identity.subject, identity.scopes), context)


def decide_limit_after_decide(identity, context):
    d = serving.decide(identity, context)
    if not d.allow or not identity.subject.startswith("trial-") or "admin" in identity.scopes:
        return d
    if context.n_images > 10:
        return serving.Decision(False, 413, "trial limit")
    return dataclasses.replace(d, output="label")


def decide_no_none(identity, context):
    if identity.subject.startswith("trial-") and "admin" not in identity.scopes and context.max_batch is None:
        return decide_stub(identity, context)
    return decide_solution(identity, context)


def decide_no_reason(identity, context):
    d = decide_solution(identity, context)
    return d if d.allow else dataclasses.replace(d, reason="")


@pytest.mark.parametrize("fn,refused", [(decide_solution, TRIAL), (decide_by_hand, TRIAL),
                                        (decide_solution, TRIAL_NO_LIMIT)],
                         ids=["solution", "by-hand", "solution-no-batch-limit"])
def test_exercise_2_passes(capsys, fn, refused):
    _judge(capsys, 2, (fn, refused), True)


@pytest.mark.parametrize("fn,refused,says", [
    (decide_stub, None, "my_decide allows a request the rule refuses"),
    (decide_off_by_one, TRIAL, "refuses a request the rule allows"),
    (decide_trial_scores, TRIAL, "the output"),
    (decide_ignores_admin, TRIAL, "trial admin"),
    (decide_wrong_status, TRIAL, "status"),
    (decide_substring, TRIAL, "trialist"),
    (decide_limit_after_decide, TRIAL, "status"),
    (decide_no_none, TRIAL, "no batch limit set"),
    (decide_no_reason, TRIAL, "gives no reason"),
    (decide_solution, None, "refused_request should be a tuple"),
    (decide_solution, (serving.Identity("trial-zoe", frozenset()), serving.Context(11, max_batch=64)),
     "serving.decide already refuses"),
    (decide_solution, (serving.Identity("alice", frozenset({"predict"})), serving.Context(11, max_batch=64)),
     "the exercise's rule allows"),
], ids=["stub", "off-by-one", "trial-gets-scores", "ignores-admin", "wrong-status", "substring-trial",
        "quota-before-trial-limit", "no-limit-when-max-batch-none", "no-reason", "no-refused-request",
        "refused-by-decide-too", "allowed-by-the-rule"])
def test_exercise_2_rejects(capsys, fn, refused, says):
    _judge(capsys, 2, (fn, refused), False, says)


# --------------------------------------------------------------------------- exercise 3

def auth_solution(model_path, public_key, signature_path):
    try:
        return dep.verify(model_path, public_key, signature_path)
    except dep.SignatureError:
        return False


def auth_broad_except(model_path, public_key, signature_path):
    try:
        dep.verify(model_path, public_key, signature_path)
    except Exception:
        return False
    return True


def auth_stub(model_path, public_key, signature_path):
    return True


def auth_raises(model_path, public_key, signature_path):
    return dep.verify(model_path, public_key, signature_path)


def auth_size(model_path, public_key, signature_path):
    try:
        payload = json.loads(base64.b64decode(json.loads(open(signature_path).read())["dsseEnvelope"]["payload"]))
    except Exception:
        return False
    return model_path.stat().st_size > 0 and bool(payload["subject"])


def _bundle_digest(signature_path):
    bundle = json.loads(open(signature_path).read())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return statement["predicate"]["resources"][0]["digest"]  # the file's own sha256


def auth_digest_only(model_path, public_key, signature_path):
    try:
        return hashlib.sha256(open(model_path, "rb").read()).hexdigest() == _bundle_digest(signature_path)
    except Exception:
        return False


def auth_string(model_path, public_key, signature_path):
    return "yes" if auth_solution(model_path, public_key, signature_path) else "no"


@pytest.mark.parametrize("fn", [auth_solution, auth_broad_except], ids=["solution", "broad-except"])
def test_exercise_3_passes(capsys, lab, fn):
    _judge(capsys, 3, (fn,), True, model=lab[1])


@pytest.mark.parametrize("fn,says", [
    (auth_stub, "is wrong"), (auth_raises, "raised SignatureError"), (auth_size, "is wrong"),
    (auth_digest_only, "is wrong on the genuine file checked with another public key"), (auth_string, "True or False"),
], ids=["stub", "lets-the-exception-escape", "file-size-only", "digest-without-signature", "not-a-bool"])
def test_exercise_3_rejects(capsys, lab, fn, says):
    _judge(capsys, 3, (fn,), False, says, model=lab[1])


# --------------------------------------------------------------------------- exercise 4

def _ok(x, shape):
    if not shape:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) and 0 <= x <= 1
    return isinstance(x, list) and len(x) == shape[0] and all(_ok(e, shape[1:]) for e in x)


def fixed_solution(payload):
    if not isinstance(payload, dict) or set(payload) != {"images"}:
        return False
    images = payload["images"]
    return isinstance(images, list) and 1 <= len(images) <= MAX_IMAGES and all(_ok(i, (1, 8, 8)) for i in images)


def fixed_numpy(payload):
    """Types first by walking the lists, then NumPy for shape and range."""
    if not isinstance(payload, dict) or list(payload) != ["images"]:
        return False

    def numbers_only(x):
        if isinstance(x, list):
            return all(numbers_only(e) for e in x)
        return type(x) in (int, float)
    if not isinstance(payload["images"], list) or not numbers_only(payload["images"]):
        return False
    try:
        x = np.array(payload["images"], dtype=np.float64)
    except ValueError:
        return False
    return (x.ndim == 4 and x.shape[1:] == (1, 8, 8) and 1 <= len(x) <= MAX_IMAGES
            and bool(np.isfinite(x).all()) and bool(((x >= 0) & (x <= 1)).all()))


def fixed_pydantic(payload):
    from typing import Annotated
    from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

    pixel = Annotated[StrictInt | StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)]
    row = Annotated[list[pixel], Field(min_length=8, max_length=8)]
    channel = Annotated[list[row], Field(min_length=8, max_length=8)]
    image = Annotated[list[channel], Field(min_length=1, max_length=1)]

    class Request(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        images: Annotated[list[image], Field(min_length=1, max_length=MAX_IMAGES)]
    try:
        Request.model_validate(payload)
    except ValidationError:
        return False
    return True


def fixed_stub(payload):
    return lab07.naive_validator(payload)


def fixed_nan_only(payload):
    if not lab07.naive_validator(payload):
        return False
    return bool(np.isfinite(np.asarray(payload["images"], dtype=np.float32)).all())


def fixed_np_all(payload):
    if not isinstance(payload, dict) or "images" not in payload:
        return False
    try:
        x = np.asarray(payload["images"], dtype=np.float32)
    except (TypeError, ValueError):
        return False
    return x.ndim == 4 and x.shape[1:] == (1, 8, 8) and bool(np.all(x >= 0) and np.all(x <= 1))


def fixed_accepts_booleans(payload):
    if not isinstance(payload, dict) or set(payload) != {"images"} or not isinstance(payload["images"], list):
        return False

    def numbers(x):
        return all(numbers(e) for e in x) if isinstance(x, list) else isinstance(x, (int, float))
    if not numbers(payload["images"]) or not 1 <= len(payload["images"]) <= MAX_IMAGES:
        return False
    try:
        x = np.asarray(payload["images"], dtype=np.float64)
    except ValueError:
        return False
    return x.shape[1:] == (1, 8, 8) and x.ndim == 4 and bool(np.isfinite(x).all() and (x >= 0).all() and (x <= 1).all())


def fixed_no_batch_limit(payload):
    if isinstance(payload, dict) and isinstance(payload.get("images"), list) and len(payload["images"]) > MAX_IMAGES:
        return fixed_solution({"images": payload["images"][:MAX_IMAGES]})
    return fixed_solution(payload)


def fixed_allows_extra(payload):
    if isinstance(payload, dict) and "images" in payload:
        return fixed_solution({"images": payload["images"]})
    return False


def fixed_ragged_object(payload):
    """Accepts ragged lists: NumPy with dtype=object and a per-element check."""
    if not isinstance(payload, dict) or set(payload) != {"images"} or not isinstance(payload["images"], list):
        return False
    if not 1 <= len(payload["images"]) <= MAX_IMAGES:
        return False
    flat = []

    def walk(x):
        if isinstance(x, list):
            for e in x:
                walk(e)
        else:
            flat.append(x)
    walk(payload["images"])
    return len(flat) >= 64 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                                   and 0 <= v <= 1 for v in flat) and len(flat) % 64 == 0


def _nan_hole(ds):
    hole = {"images": ds.X_test[:1].tolist()}
    hole["images"][0][0][4][4] = float("nan")
    return hole


def _holes(ds):
    x = ds.X_test[:1].tolist()
    string = json.loads(json.dumps(x)); string[0][0][0][0] = "0.5"
    boolean = json.loads(json.dumps(x)); boolean[0][0][0][0] = True
    return {"nan": _nan_hole(ds), "string": {"images": string}, "boolean": {"images": boolean},
            "extra-field": {"images": x, "admin": True}, "too-many": {"images": ds.X_test[:65].tolist()}}


@pytest.mark.parametrize("hole", ["nan", "string", "boolean", "extra-field", "too-many"])
@pytest.mark.parametrize("fn", [fixed_solution, fixed_numpy, fixed_pydantic], ids=["solution", "numpy", "pydantic"])
def test_exercise_4_passes(capsys, lab, hole, fn):
    ds = lab[0]
    _judge(capsys, 4, (_holes(ds)[hole], fn), True, X=ds.X_test, max_images=MAX_IMAGES)


@pytest.mark.parametrize("hole,says", [
    (None, "set hole"),
    ("valid", "hole is a valid request"),
    ("refused", "the naive validator refuses hole"),
    ("not-json", "not a JSON payload"),
], ids=["no-hole", "valid-hole", "hole-the-draft-refuses", "hole-not-json"])
def test_exercise_4_rejects_holes(capsys, lab, hole, says):
    ds = lab[0]
    value = {"valid": {"images": ds.X_test[:2].tolist()}, "refused": {"images": (ds.X_test[:2] * 255).tolist()},
             "not-json": {"images": ds.X_test[:2]}}.get(hole)
    _judge(capsys, 4, (value, fixed_solution), False, says, X=ds.X_test, max_images=MAX_IMAGES)


@pytest.mark.parametrize("fn,says", [
    (fixed_stub, "accepts a payload with a NaN pixel"),
    (fixed_nan_only, "accepts a payload with a pixel written as a string"),
    (fixed_np_all, "accepts a payload with a pixel written as a string"),
    (fixed_accepts_booleans, "accepts a payload with a pixel written as a boolean"),
    (fixed_no_batch_limit, "accepts a payload with one image too many"),
    (fixed_allows_extra, "accepts a payload with an extra field"),
    (fixed_ragged_object, "accepts a payload with"),
], ids=["stub", "fixes-only-nan", "np-all-range", "accepts-booleans", "no-batch-limit", "allows-extra-fields",
        "accepts-ragged"])
def test_exercise_4_rejects_validators(capsys, lab, fn, says):
    ds = lab[0]
    _judge(capsys, 4, (_nan_hole(ds), fn), False, says, X=ds.X_test, max_images=MAX_IMAGES)
