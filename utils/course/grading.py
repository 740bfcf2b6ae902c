"""Lab checks (used by every lab; introduced in 00_orientation_and_threat_model).

Each exercise's check is one :func:`check` call with a function that raises
:class:`NotSolved` (or any error) when the answer is not there yet. The check
prints one line that tests and people can read::

    ✅ PASSED  Exercise 1 (accuracy): ...
    ❌ NOT SOLVED YET  Exercise 1 (accuracy): why

A stub that returns a placeholder or raises must never crash the lab.
"""
from __future__ import annotations

import traceback
from typing import Any, Callable

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
