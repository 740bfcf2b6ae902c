"""The labs' checks, one module per lab (``lab00`` for labs/00_..._lab.ipynb, and so on).

A lab cell runs one call, such as ``lab00.check(1, my_accuracy, ds=ds, pred=pred)``:
the reference answers and the tests of the learner's code live here, out of
the lab's sight, and each is unit-tested (tests/test_lab_checks_NN.py): the lab's
stub fails, the solution passes. Every check prints one line through
:func:`utils.course.grading.check` (taught in 00_orientation_and_threat_model).
"""
from __future__ import annotations

from typing import Any, Callable

from utils.course.grading import RESULTS, NotSolved, write_result
from utils.course.grading import check as _grading_check
from utils.validation import fail


class Checker:
    """``check(n, *answer, **context)`` for the exercises of one lab.

    ``exercises`` maps an exercise number to its title and its test function; the
    test raises :class:`utils.course.grading.NotSolved` (or any error) while unsolved.

    Taught in 00_orientation_and_threat_model and used by every lab.
    """

    def __init__(self, lab: str, exercises: dict[int, tuple[str, Callable[..., Any]]]):
        self.lab = lab
        self.exercises = exercises

    def __call__(self, n: int, *args: Any, **kwargs: Any) -> bool:
        if n not in self.exercises:
            fail(self.lab, f"no exercise {n!r}", f"the exercises are {sorted(self.exercises)}")
        title, test = self.exercises[n]
        exercise = f"Exercise {n} ({title})"
        passed = _grading_check(exercise, lambda: test(*args, **kwargs))
        try:
            write_result(self.lab, exercise, passed, RESULTS[exercise][1])
        except OSError as e:  # a read-only folder must not stop the lab
            print(f"(could not write the lab's results file: {e})")
        return passed


def call(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` for a check: any exception of the learner's code (other than
    :class:`~utils.course.grading.NotSolved`) becomes ``NotSolved`` naming the case.

    Taught in 00_orientation_and_threat_model and used by the labs' checks.
    """
    try:
        return fn(*args)
    except NotSolved:
        raise
    except Exception as e:  # the learner's code may fail in any way
        raise NotSolved(f"{name}: your function raised {type(e).__name__} ({str(e)[:160]})") from None


__all__ = ["Checker", "call"]
