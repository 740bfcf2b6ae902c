"""Lab checks (used by every lab; introduced in 00_orientation_and_threat_model).

Each exercise's check is one :func:`check` call with a function that raises
:class:`NotSolved` (or any error) when the answer is not there yet. The check
prints one line that tests and people can read::

    ✅ PASSED  Exercise 1 (accuracy): ...
    ❌ NOT SOLVED YET  Exercise 1 (accuracy): why

A stub that returns a placeholder or raises must never crash the lab.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

PASS_MARK = "✅ PASSED"
FAIL_MARK = "❌ NOT SOLVED YET"

#: The latest result of each exercise checked in this process, in the order the
#: exercises were first checked: exercise -> (passed, reason). Re-running a check
#: cell (as labs invite) replaces that exercise's result.
RESULTS: dict[str, tuple[bool, str]] = {}


class NotSolved(AssertionError):
    """Raised inside a check to say why an exercise is not solved yet (taught in 00_orientation_and_threat_model)."""


def require(condition: Any, why: str) -> None:
    """Raise :class:`NotSolved` with ``why`` unless ``condition`` holds (taught in 00_orientation_and_threat_model)."""
    if not condition:
        raise NotSolved(why)


def require_close(name: str, value: Any, expected: float, tol: float) -> None:
    """Require a number within ``tol`` of ``expected`` (taught in 00_orientation_and_threat_model)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NotSolved(f"{name} should be a number, got {value!r}") from None
    if not abs(v - expected) <= tol:
        raise NotSolved(f"{name} = {v:.4f}, expected {expected:.4f} ± {tol:g}")


def check(exercise: str, test: Callable[[], Any]) -> bool:
    """Run one exercise's check and print a pass / not-solved line.

    Args:
        exercise: e.g. ``"Exercise 1 (targeted flips)"``.
        test: raises :class:`NotSolved` (or any exception) while unsolved.

    Returns:
        whether the exercise passed.

    Taught in 00_orientation_and_threat_model.
    """
    try:
        test()
    except NotSolved as e:
        reason = str(e)
    except NotImplementedError:
        reason = "the function still raises NotImplementedError: replace the stub with your code"
    except Exception as e:  # a stub's placeholder can fail in any way
        last = traceback.extract_tb(e.__traceback__)[-1]
        reason = f"{type(e).__name__}: {e} (at line {last.lineno} of {last.name})"
    else:
        RESULTS[exercise] = (True, "")
        print(f"{PASS_MARK}  {exercise}")
        return True
    RESULTS[exercise] = (False, reason)
    print(f"{FAIL_MARK}  {exercise}: {reason}")
    return False


@contextlib.contextmanager
def forbid(*helpers: Callable[..., Any], why: str = "this exercise asks you to write it yourself") -> Iterator[None]:
    """Inside the block, every name bound to one of ``helpers`` in any loaded module
    (``utils.attacks.fgsm`` and ``utils.attacks.evasion.fgsm`` alike, and names the
    learner imported into the notebook) raises :class:`NotSolved` instead; restored
    after. Checks run the learner's function inside it so that "do not call X" is
    enforced, not only asked (taught in 00_orientation_and_threat_model).
    """
    def refusal(helper):
        name = f"{helper.__module__}.{helper.__qualname__}"

        def refuse(*_args, **_kwargs):
            raise NotSolved(f"your code calls {name}; {why}")
        return refuse

    patched = []
    targets = {id(h): refusal(h) for h in helpers}
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if id(value) in targets and any(value is h for h in helpers):
                patched.append((namespace, attr, value))
                namespace[attr] = targets[id(value)]
    try:
        yield
    finally:
        for namespace, attr, value in reversed(patched):
            namespace[attr] = value


def labs_dir() -> Path:
    """Where labs write their results: ``MODELSEC_LABS_DIR`` or ``build/labs/`` (taught in
    00_orientation_and_threat_model; an instructor collects these files)."""
    from utils.paths import ROOT

    return Path(os.environ.get("MODELSEC_LABS_DIR", ROOT / "build" / "labs"))


#: The labs whose results file this process has started (a rerun of the lab replaces the file).
_STARTED: set[str] = set()


def write_result(lab: str, exercise: str, passed: bool, reason: str) -> Path:
    """Record one check in ``build/labs/NN.json`` (``lab`` is ``"lab04"`` or ``"04"``): the
    exercise, passed, the reason, when. The first check of a lab in a new kernel starts the
    file afresh; re-checking an exercise replaces its entry (taught in
    00_orientation_and_threat_model)."""
    number = lab[-2:]
    path = labs_dir() / f"{number}.json"
    record = {"lab": number, "exercises": {}}
    if lab in _STARTED and path.is_file():
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):  # a broken file is started afresh
            pass
    _STARTED.add(lab)
    record["exercises"][exercise] = {"passed": bool(passed), "reason": reason,
                                     "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    tmp.replace(path)
    return path


def solved() -> int:
    """How many of the exercises checked so far are solved (each counted once) (taught in 00_orientation_and_threat_model; every lab ends with it)."""
    return sum(ok for ok, _ in RESULTS.values())


def summary() -> str:
    """One line: how many of the exercises checked so far are solved (each counted once) (taught in 00_orientation_and_threat_model; every lab ends with it)."""
    line = f"{solved()} of {len(RESULTS)} exercises solved"
    print(line)
    return line


def parse_results(text: str) -> list[tuple[str, bool]]:
    """Read check lines back from a notebook's printed output (used by the tests) (the labs of 00_orientation_and_threat_model onwards)."""
    out = []
    for line in text.splitlines():
        if line.startswith(PASS_MARK):
            out.append((line[len(PASS_MARK):].strip(), True))
        elif line.startswith(FAIL_MARK):
            out.append((line[len(FAIL_MARK):].strip().split(":")[0], False))
    return out
