"""Running one untrusted notebook (a learner's lab) in a sandbox, for ``make grade``.

:func:`run` executes a notebook with papermill in a process of its own, never in the
caller's, under these limits (``python -m utils.tooling.grade`` calls it once per
submission, from a Dask worker):

- **no network**: the process tree runs in a new network namespace (``unshare --net``; as
  root, else ``unshare -r --net`` in a user namespace), which has only its own loopback
  (brought up for the kernel's ZeroMQ sockets): nothing outside it can be reached, not even
  this machine's 127.0.0.1;
- **no solutions**: in a new mount namespace, ``solutions/``, the submissions folder, the
  grader's output folder and the other submissions' working folders are covered by empty
  read-only tmpfs mounts;
- **wall-clock time**: papermill's per-cell timeout, and the whole run is killed (its PID
  namespace with it, so no kernel survives) after ``timeout`` plus the kernel start-up;
- **memory**: a cgroup memory limit on the whole tree (cgroup v1 ``memory`` or v2) where
  the cgroup file system is writable (an over-limit kernel is killed and reported), else
  ``RLIMIT_AS`` on each process (address space, not memory: a kernel with torch needs about
  3 GB of it beyond what it uses, see :data:`AS_OVERHEAD_MB`; an over-limit allocation
  raises ``MemoryError``);
- **output**: a papermill engine that stops keeping outputs and interrupts the kernel once a
  notebook has printed more than ``output_mb``, and ``RLIMIT_FSIZE`` on every file written;
- **no privileges**: run as root, the sandbox drops to ``nobody`` (uid 65534) after making
  its mounts, so the notebook can neither undo them nor write to the course, ``.venv`` or
  anything else root owns; the files it leaves are read back only when they are small
  regular files (no links: a submission cannot make the grader copy a file it cannot read);
- **audit**: the kernel starts with a Python audit hook (``sys.addaudithook``, which code
  in the kernel cannot remove) that logs every attempt to open or list a hidden folder and
  every socket connection, so the report names them; ctypes could bypass the hook, not the
  namespaces.

:func:`capabilities` says which of these the machine allows; a missing one is reported,
never silently skipped. This module imports no torch (the kernel does, in the sandbox).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from utils.paths import ROOT

#: The kernel the sandbox registers for itself (the course kernel plus the audit hook).
KERNEL = "modelsec-sandbox"
#: Seconds allowed on top of the time limit for starting the kernel and writing files.
STARTUP_GRACE = 60
#: Seconds papermill waits for the kernel to start.
KERNEL_START = 50
#: With RLIMIT_AS (no cgroup) the limit is on address space, not memory: a kernel with torch
#: loaded reserves about 3 GB more than it uses (measured: at --memory 1536 the kernel cannot
#: start, at 4096 the lab runs), so the fallback allows this much on top of ``memory_mb``.
AS_OVERHEAD_MB = 3072
#: The unprivileged user the notebook runs as when the sandbox starts as root.
NOBODY = 65534
#: The most the grader reads back of a results, audit or result file the sandbox wrote.
MAX_READ = 2 * 2**20

#: Reasons a run can stop or be flagged, in the order the report gives them.
REASONS = ("timeout", "memory", "output limit", "network attempt", "solutions access", "hidden folder access",
           "crash", "malformed")
#: Every run's files (hidden inside every sandbox: no learner sees another's notebook) and
#: the empty folders each sandbox mounts its own run folder on.
SCRATCH = Path(tempfile.gettempdir()) / "modelsec-grade-runs"
VIEWS = Path(tempfile.gettempdir()) / "modelsec-grade-views"


@dataclass(frozen=True)
class Limits:
    """What one submission may use: seconds of wall-clock, MB of memory, MB of printed output, MB per file."""

    timeout: float = 300.0
    memory_mb: int = 2048
    output_mb: int = 20
    file_mb: int = 200


@dataclass
class Outcome:
    """One sandboxed run: status ``ok`` or ``failed``, the reasons (see :data:`REASONS`), what was logged."""

    status: str
    reasons: list[str]
    detail: str = ""
    seconds: float = 0.0
    peak_mb: float | None = None
    audit: list[dict] = field(default_factory=list)
    labs: dict = field(default_factory=dict)
    executed: str | None = None
    enforcement: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- what the machine allows


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _cgroup_parent() -> tuple[str, Path] | None:
    """A writable cgroup (``("v1", memory dir)`` or ``("v2", dir)``) under which to make one per run."""
    lines = Path("/proc/self/cgroup").read_text().splitlines() if Path("/proc/self/cgroup").exists() else []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if (base / "memory.limit_in_bytes").exists() and os.access(base, os.W_OK):
                return "v1", base
    for line in lines:
        if line.startswith("0::"):
            base = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            if (base / "cgroup.controllers").exists() and "memory" in (base / "cgroup.controllers").read_text() \
                    and os.access(base, os.W_OK):
                return "v2", base
    return None


def capabilities() -> dict:
    """Which enforcement this machine allows: the ``unshare`` command for the namespaces (or
    None), the memory mechanism (``cgroup v1``, ``cgroup v2`` or ``RLIMIT_AS``)."""
    unshare = shutil.which("unshare")
    ns = None
    if unshare:
        base = ["--net", "--mount", "--pid", "--fork", "--kill-child"]
        for prefix in ([unshare], [unshare, "--map-root-user"]):
            if _works(prefix + base + ["true"]):
                ns = prefix + base
                break
    cg = _cgroup_parent()
    return {"namespaces": ns, "memory": f"cgroup {cg[0]}" if cg else "RLIMIT_AS",
            "ip": shutil.which("ip")}


# --------------------------------------------------------------------------- the cgroup of one run


class _Cgroup:
    def __init__(self, memory_mb: int):
        found = _cgroup_parent()
        name = f"modelsec-grade-{uuid.uuid4().hex[:12]}"
        self.kind, self.path = (None, None) if found is None else (found[0], found[1] / name)
        if self.path is None:
            return
        self.path.mkdir()
        limit = str(memory_mb * 1024 * 1024)
        if self.kind == "v1":
            (self.path / "memory.limit_in_bytes").write_text(limit)
            swap = self.path / "memory.memsw.limit_in_bytes"
            if swap.exists():
                try:
                    swap.write_text(limit)
                except OSError:
                    pass
        else:
            (self.path / "memory.max").write_text(limit)
            if (self.path / "memory.swap.max").exists():
                (self.path / "memory.swap.max").write_text("0")

    def join(self) -> None:
        """Called in the child before exec: move this process into the cgroup."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def hit_limit(self) -> bool:
        if self.path is None:
            return False
        try:
            if self.kind == "v1":
                oom = (self.path / "memory.oom_control").read_text()
                kills = [int(l.split()[1]) for l in oom.splitlines() if l.startswith("oom_kill ")]
                return (kills and kills[0] > 0) or int((self.path / "memory.failcnt").read_text()) > 0
            events = (self.path / "memory.events").read_text()
            return any(l.split()[0] in ("oom", "oom_kill") and int(l.split()[1]) > 0 for l in events.splitlines())
        except OSError:
            return False

    def peak_mb(self) -> float | None:
        if self.path is None:
            return None
        name = "memory.max_usage_in_bytes" if self.kind == "v1" else "memory.peak"
        try:
            return round(int((self.path / name).read_text()) / 2**20, 1)
        except (OSError, ValueError):
            return None

    def kill_all(self) -> None:
        if self.path is None:
            return
        try:
            for pid in (self.path / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        except OSError:
            pass

    def remove(self) -> None:
        if self.path is None:
            return
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                self.kill_all()
                time.sleep(0.1)


# --------------------------------------------------------------------------- the caller's side


def run(notebook: Path, limits: Limits, *, hide: list[Path] | None = None, cache: Path | None = None,
        keep: Path | None = None) -> Outcome:
    """Execute ``notebook`` (a learner's file) in the sandbox and say what happened.

    Args:
        notebook: the submitted file, read only inside the sandbox (it may not even be JSON).
        limits: time, memory, output and file-size limits.
        hide: folders covered inside the sandbox (``solutions/`` always is).
        cache: a model cache copied into the run (each run gets its own copy: one learner's
            code cannot change another's models); default an empty cache.
        keep: where to copy the executed notebook (feedback for the learner).

    Returns:
        an :class:`Outcome`; ``labs`` holds the lab results files the checks wrote.
    """
    caps = capabilities()
    SCRATCH.mkdir(mode=0o700, exist_ok=True)
    VIEWS.mkdir(exist_ok=True)
    VIEWS.chmod(0o711)  # the unprivileged notebook may pass through to its own view, not list the others'
    SCRATCH.chmod(0o700)
    base = Path(tempfile.mkdtemp(dir=SCRATCH))
    work, view = base / "work", VIEWS / base.name
    work.mkdir()
    view.mkdir()
    hidden = [ROOT / "solutions", SCRATCH] + [Path(h).resolve() for h in (hide or [])]
    shutil.copyfile(notebook, work / "submission.ipynb")
    if cache is not None and Path(cache).is_dir():
        shutil.copytree(cache, work / "cache")
    spec = {"view": str(view), "work": str(work), "hide": [str(h) for h in hidden], "limits": asdict(limits),
            "ip": caps["ip"], "python": sys.executable}
    (work / "spec.json").write_text(json.dumps(spec))
    cgroup = _Cgroup(limits.memory_mb)
    enforcement = {
        "network": "network namespace" if caps["namespaces"] else "NOT ENFORCED (unshare --net unavailable)",
        "solutions": "mount namespace (tmpfs over solutions/)" if caps["namespaces"] else
                     "NOT ENFORCED (no mount namespace): audit hook only",
        "memory": f"cgroup {cgroup.kind} memory limit" if cgroup.kind else
                  f"RLIMIT_AS of {limits.memory_mb + AS_OVERHEAD_MB} MB address space",
        "time": "papermill cell timeout + kill of the PID namespace" if caps["namespaces"] else
                "papermill cell timeout + kill of the process group",
        "output": "papermill engine output cap + RLIMIT_FSIZE",
        "privileges": "runs as nobody" if caps["namespaces"] and os.geteuid() == 0 and "--map-root-user"
                      not in caps["namespaces"] else "runs as the grader's user",
    }

    def child_setup():
        cgroup.join()
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * 2**20,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if cgroup.kind is None:
            resource.setrlimit(resource.RLIMIT_AS, ((limits.memory_mb + AS_OVERHEAD_MB) * 2**20,) * 2)

    inner = [sys.executable, "-m", "utils.tooling.sandbox", "inner", str(work / "spec.json")]
    cmd = (caps["namespaces"] or []) + inner
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELSEC_", "JUPYTER", "DASK_"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", MODELSEC_SANDBOX_NS="1" if caps["namespaces"] else "0")
    t0 = time.perf_counter()
    log = open(work / "sandbox.log", "wb")
    killed = False
    try:
        proc = subprocess.Popen(cmd, cwd=str(work), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=child_setup, start_new_session=True)
        try:
            proc.wait(timeout=limits.timeout + STARTUP_GRACE)
        except subprocess.TimeoutExpired:
            killed = True
            os.killpg(proc.pid, signal.SIGKILL)
            cgroup.kill_all()
            proc.wait()
    finally:
        log.close()
    seconds = round(time.perf_counter() - t0, 1)
    peak, hit_memory = cgroup.peak_mb(), cgroup.hit_limit()
    cgroup.kill_all()
    cgroup.remove()
    result = _read_json(work / "result.json") or {}
    audit = _read_audit(work / "audit.jsonl")
    labs = {}
    labs_dir = work / "labs"
    if labs_dir.is_dir() and not labs_dir.is_symlink():
        for p in sorted(labs_dir.glob("[0-9][0-9].json")):
            labs[p.stem] = _read_json(p) or {"error": "unreadable results file"}
    reasons = list(result.get("reasons", []))
    detail = result.get("detail", "")
    if killed:
        reasons.insert(0, "timeout")
        detail = detail or f"still running after {limits.timeout:g} s (+{STARTUP_GRACE} s start-up): killed"
    if hit_memory or (not cgroup.kind and "memory" in reasons):
        if "memory" not in reasons:
            reasons.insert(0, "memory")
        reasons = [r for r in reasons if r != "crash"]
        limit = (f"the memory limit of {limits.memory_mb} MB" if cgroup.kind else
                 f"the address-space limit of {limits.memory_mb + AS_OVERHEAD_MB} MB (RLIMIT_AS)")
        detail = f"over {limit}" + (f" ({detail})" if detail else "")
    solutions = str(ROOT / "solutions")
    seen = []
    for a in audit:
        if a["event"].startswith("socket"):
            why, what = "network attempt", f"{a['event']} {a['what']}"
        elif a["event"] in ("open", "os.listdir", "os.scandir"):
            inside = (a["what"] + os.sep).startswith(solutions + os.sep)
            why, what = ("solutions access" if inside else "hidden folder access"), f"{a['event']} {a['what']}"
        else:
            continue
        if why not in reasons:
            reasons.append(why)
            seen.append(what)
    if seen:
        detail = "; ".join(([detail] if detail else []) + [f"tried {w}" for w in seen])
    if not result and not reasons:
        log_tail = (_read_small(work / "sandbox.log", 50 * 2**20) or b"")[-400:]
        tail = log_tail.decode(errors="replace").strip().splitlines()
        reasons, detail = ["crash"], (f"the sandbox stopped (exit code {proc.returncode}) without a result"
                                      + (f": {tail[-1]}" if tail else ""))
    executed = None
    notebook_bytes = _read_small(work / "executed.ipynb", limits.output_mb * 2**20 + 8 * 2**20)
    if keep is not None and notebook_bytes is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_bytes(notebook_bytes)
        executed = str(keep)
    stopped = {"timeout", "memory", "output limit", "crash", "malformed"}
    status = "failed" if stopped & set(reasons) else ("flagged" if reasons else "ok")
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(view, ignore_errors=True)
    return Outcome(status, reasons, detail, seconds, peak, audit, labs, executed, enforcement)


def _read_small(path: Path, most: int = MAX_READ) -> bytes | None:
    """A file the sandbox wrote, if it is a regular file with one link and at most ``most``
    bytes (never through a symbolic or hard link the notebook made to another file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size > most:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(most + 1)[:most]
    finally:
        os.close(fd)


def _read_json(path: Path):
    data = _read_small(path)
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


def _read_audit(path: Path, most: int = 50) -> list[dict]:
    out: list[dict] = []
    for line in (_read_small(path) or b"").decode("utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and {"event", "what"} <= set(entry) and entry not in out:
            out.append({"event": str(entry["event"]), "what": str(entry["what"])[:300]})
        if len(out) >= most:
            break
    return out


# --------------------------------------------------------------------------- inside the namespaces


def _inner(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    work, view = Path(spec["work"]), Path(spec["view"])
    limits = Limits(**spec["limits"])
    result = view / "result.json"  # the run's folder as this sandbox sees it (work/ is covered)

    def finish(reasons: list[str], detail: str = "") -> int:
        result.write_text(json.dumps({"reasons": reasons, "detail": detail[:500]}))
        return 0

    if os.environ.get("MODELSEC_SANDBOX_NS") == "1":
        # our own view of the run's folder, then every hidden folder (its parent included) covered
        subprocess.run(["mount", "--bind", str(work), str(view)], check=True)
        for h in spec["hide"]:
            if Path(h).is_dir():
                subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=4k,mode=555", "hidden", h], check=True)
        if spec["ip"]:
            subprocess.run([spec["ip"], "link", "set", "lo", "up"], check=True)
    os.chdir(view)
    for d in ("labs", "metrics", "cache", "jupyter/kernels/" + KERNEL, "runtime", "home"):
        (view / d).mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and os.environ.get("MODELSEC_SANDBOX_NS") == "1" and _real_root():
        _expose([sys.base_prefix, sys.prefix, str(ROOT)])
        # _expose binds folders back without their submounts (a course cloned into a private
        # folder, e.g. mktemp -d, comes back whole): cover the hidden folders again, on top
        for h in spec["hide"]:
            if Path(h).is_dir():
                subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=4k,mode=555", "hidden", h], check=True)
        for dirpath, dirnames, filenames in os.walk(view):
            for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
                os.chown(name, NOBODY, NOBODY)
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    from utils.course.numerics import PINNED_ENV

    audit_env = {"MODELSEC_AUDIT_LOG": str(view / "audit.jsonl"),
                 "MODELSEC_AUDIT_WATCH": os.pathsep.join(spec["hide"])}
    (view / "jupyter/kernels" / KERNEL / "kernel.json").write_text(json.dumps({
        "argv": [spec["python"], "-m", "utils.tooling.sandbox", "kernel", "-f", "{connection_file}"],
        "display_name": "ModelSec sandbox", "language": "python", "env": {**PINNED_ENV, **audit_env}}))
    os.environ.update(JUPYTER_PATH=str(view / "jupyter"), JUPYTER_RUNTIME_DIR=str(view / "runtime"),
                      JUPYTER_DATA_DIR=str(view / "jupyter"), IPYTHONDIR=str(view / "home" / ".ipython"),
                      HOME=str(view / "home"), MODELSEC_LABS_DIR=str(view / "labs"),
                      MODELSEC_METRICS_DIR=str(view / "metrics"), MODELSEC_CACHE=str(view / "cache"),
                      MODELSEC_PROGRESS="0", MPLBACKEND="Agg", **PINNED_ENV)
    import nbformat

    try:
        nb = nbformat.read(str(view / "submission.ipynb"), as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # not JSON, not a notebook, an unknown format: the learner's file is the problem
        return finish(["malformed"], f"not a valid notebook: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "ModelSec sandbox", "language": "python"}
    nbformat.write(nb, str(view / "submission.ipynb"))
    import papermill as pm
    from papermill.engines import papermill_engines

    papermill_engines.register("modelsec-sandbox", _engine(limits.output_mb))
    try:
        pm.execute_notebook(str(view / "submission.ipynb"), str(view / "executed.ipynb"), kernel_name=KERNEL,
                            engine_name="modelsec-sandbox", cwd=str(view), progress_bar=False,
                            execution_timeout=max(1, int(limits.timeout)), start_timeout=KERNEL_START,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except Exception as e:
        return finish(*_classify(e))
    if _OUTPUT_STATE["exceeded"]:
        return finish(["output limit"], f"printed more than {limits.output_mb} MB")
    return finish([])


def _expose(needed: list[str]) -> None:
    """Make the interpreter, the environment and the course reachable for ``nobody`` in this
    mount namespace: a folder on their path that others may not enter (``/root`` when Python
    lives in ``/root/.pyenv``) is covered by an empty tmpfs holding only the needed entries,
    bound back in. The rest of that folder (the grader's home) stays out of sight."""
    blocked: dict[Path, set[Path]] = {}
    for p in needed:
        parts = Path(os.path.realpath(p)).parts
        cur = Path("/")
        for part in parts[1:]:
            if not cur.stat().st_mode & 0o001:
                blocked.setdefault(cur, set()).add(cur / part)
                break
            cur = cur / part
    for folder, entries in blocked.items():
        staged = []
        for entry in sorted(entries):
            stage = Path(tempfile.mkdtemp(dir=VIEWS))
            subprocess.run(["mount", "--bind", str(entry), str(stage)], check=True)
            staged.append((entry, stage))
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,mode=755", "exposed", str(folder)], check=True)
        for entry, stage in staged:
            entry.mkdir()
            subprocess.run(["mount", "--move", str(stage), str(entry)], check=True)
            stage.rmdir()


def _real_root() -> bool:
    """Root of the machine (not only of a user namespace, where uid 0 is all that is mapped)."""
    try:
        return Path("/proc/self/uid_map").read_text().split()[:3] == ["0", "0", "4294967295"]
    except OSError:
        return False


#: Whether the running engine stopped a notebook for its output (one notebook per process).
_OUTPUT_STATE = {"exceeded": False, "bytes": 0}


def _classify(e: Exception) -> tuple[list[str], str]:
    """A papermill / nbclient error as (reasons, detail)."""
    name, text = type(e).__name__, str(e)
    last = text.strip().splitlines()[-1] if text.strip() else ""
    if _OUTPUT_STATE["exceeded"]:
        return ["output limit"], f"printed more than the output limit ({_OUTPUT_STATE['bytes'] // 2**20} MB seen)"
    if "didn't respond" in text or "did not respond" in text or "Kernel died before replying" in text:
        return ["crash"], "the kernel did not start"
    if "Timeout" in name or "timed out" in text.lower():
        return ["timeout"], "a cell ran past the time limit"
    ename = getattr(e, "ename", "")
    if ename == "MemoryError" or "can't allocate memory" in text or "DefaultCPUAllocator" in text:
        return ["memory"], f"{ename or name} in cell {getattr(e, 'exec_count', '?')}"
    if "DeadKernel" in name or "Kernel died" in text or "kernel died" in text.lower():
        return ["crash"], "the kernel died"
    if ename:
        return ["crash"], f"{ename}: {getattr(e, 'evalue', '')[:200]} (cell {getattr(e, 'exec_count', '?')})"
    return ["crash"], f"{name}: {last[:200]}"


def _engine(output_mb: int):
    """A papermill engine whose client keeps at most ``output_mb`` of outputs, then interrupts the kernel."""
    import asyncio

    from nbclient.exceptions import CellExecutionError
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine

    cap = output_mb * 2**20

    class CappedClient(PapermillNotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in content.get("data", {}).values())
            _OUTPUT_STATE["bytes"] += size
            if _OUTPUT_STATE["bytes"] > cap:
                if not _OUTPUT_STATE["exceeded"]:
                    _OUTPUT_STATE["exceeded"] = True
                    asyncio.ensure_future(self.km.interrupt_kernel())
                return None  # kept no more
            return super().output(outs, msg, display_id, cell_index)

        def execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            done = super().execute_cell(cell, cell_index, execution_count, store_history)
            if _OUTPUT_STATE["exceeded"]:  # the cell ended before the interrupt: run no further cells
                raise CellExecutionError(f"output limit of {output_mb} MB", "OutputLimit",
                                         f"more than {output_mb} MB printed")
            return done

    class CappedEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            import papermill.engines as engines

            kwargs = engines.remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = engines.merge_kwargs(kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                                         kernel_name=kernel_name, log=engines.logger, log_output=False,
                                         stdout_file=None, stderr_file=None)
            return CappedClient(nb_man, **final).execute()

    return CappedEngine


# --------------------------------------------------------------------------- the kernel with the audit hook


def _install_audit_hook() -> None:
    log = os.environ.get("MODELSEC_AUDIT_LOG")
    if not log:
        return
    watch = tuple(os.path.realpath(p) for p in os.environ.get("MODELSEC_AUDIT_WATCH", "").split(os.pathsep) if p)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    busy = [False]

    def record(event: str, what: str) -> None:
        os.write(fd, (json.dumps({"event": event, "what": what[:300]}) + "\n").encode())

    def hook(event, args):
        if busy[0]:
            return
        if event in ("open", "os.listdir", "os.scandir"):
            path = args[0] if args else None
            if isinstance(path, int) or path is None:
                return
            try:
                full = os.path.abspath(os.fsdecode(path))
            except (TypeError, ValueError):
                return
            if any(full == w or full.startswith(w + os.sep) for w in watch):
                busy[0] = True
                try:
                    record(event, full)
                finally:
                    busy[0] = False
        elif event in ("socket.connect", "socket.sendto", "socket.getaddrinfo"):
            busy[0] = True
            try:
                record(event, repr(args[1] if event != "socket.getaddrinfo" else args[:2]))
            finally:
                busy[0] = False

    sys.addaudithook(hook)


def _kernel(argv: list[str]) -> int:
    _install_audit_hook()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=argv)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["kernel"]:
        return _kernel(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m utils.tooling.sandbox", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_inner = sub.add_parser("inner", help="(internal) run inside the namespaces")
    p_inner.add_argument("spec")
    sub.add_parser("capabilities", help="print which limits this machine can enforce")
    args = parser.parse_args(argv)
    if args.command == "inner":
        return _inner(args.spec)
    print(json.dumps(capabilities(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
