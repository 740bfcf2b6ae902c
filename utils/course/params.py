"""Validation of notebook parameters (taught in 00_orientation_and_threat_model).

Every notebook has a cell tagged ``parameters`` that papermill can override.
Bad values must stop the notebook in its first cells with a message that names
the parameter and what is allowed, so ``check_parameters`` is called right
after that cell.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable


def _integral(v: Any) -> bool:
    from utils.validation import is_int  # validation loads NumPy: only when a rule is tested

    return is_int(v)


def _finite(v: Any) -> bool:
    from utils.validation import is_real

    return is_real(v)


DEVICES = ("cpu", "cuda", "auto")


class ParameterError(ValueError):
    """A notebook parameter has a wrong type or an out-of-range value (taught in 00_orientation_and_threat_model)."""


@dataclass(frozen=True)
class Rule:
    """What a parameter may be: a description for the message and a test (taught in 00_orientation_and_threat_model)."""

    allowed: str
    test: Callable[[Any], bool]


def _bounded(kind: str, test: Callable[[Any], bool], low, high) -> Rule:
    lo = "-inf" if low is None else str(low)
    hi = "inf" if high is None else str(high)
    return Rule(f"{kind} with {lo} <= value <= {hi}",
                lambda v: test(v) and (low is None or v >= low) and (high is None or v <= high))


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An integer in ``[low, high]`` (either bound may be open) (taught in 00_orientation_and_threat_model)."""
    return _bounded("an integer", _integral, low, high)


def real(low: float | None = None, high: float | None = None) -> Rule:
    """A finite number in ``[low, high]`` (either bound may be open) (taught in 00_orientation_and_threat_model)."""
    return _bounded("a number", _finite, low, high)


def boolean() -> Rule:
    """``True`` or ``False`` (taught in 00_orientation_and_threat_model)."""
    return Rule("True or False", lambda v: isinstance(v, bool))


def choice(options: Iterable[Any]) -> Rule:
    """One of a fixed set of values (taught in 00_orientation_and_threat_model)."""
    opts = tuple(options)
    return Rule(f"one of {list(opts)}", lambda v: v in opts)


#: Rules for the parameters that recur across notebooks.
KNOWN: dict[str, Rule] = {
    "seed": integer(0, 2**32 - 1),
    "fast": boolean(),
    "device": choice(DEVICES),
    "epsilon": real(0.0, 1.0),
    "eps": real(0.0, 1.0),
    "poison_rate": real(0.0, 1.0),
    "epochs": integer(1, 1000),
    "steps": integer(1, 100000),
    "window": integer(2, None),
    "n_samples": integer(1, None),
}


def check_parameters(rules: dict[str, Rule] | None = None, **values: Any) -> dict[str, Any]:
    """Check notebook parameters and return them unchanged.

    Known names (``seed``, ``fast``, ``device``, ``epsilon``, ``poison_rate``,
    ...) use the rules in :data:`KNOWN`; pass ``rules={"name": real(0, 1)}``
    for a notebook's own knobs.

    Raises:
        ParameterError: naming the first bad parameter, its value and what is allowed.

    Taught in 00_orientation_and_threat_model; every notebook's parameters cell.
    """
    table = dict(KNOWN)
    table.update(rules or {})
    for name, value in values.items():
        rule = table.get(name)
        if rule is None:
            raise ParameterError(
                f"parameter {name!r} has no rule: pass rules={{{name!r}: ...}} "
                f"or use one of {sorted(table)}"
            )
        if not rule.test(value):
            raise ParameterError(
                f"parameter {name!r} = {value!r} ({type(value).__name__}) is not allowed: "
                f"it must be {rule.allowed}"
            )
    return values
