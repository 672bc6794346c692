"""Checks of user-supplied numbers: the one owner of "a number, and not a bool".

In Python ``True`` is an ``int`` and ``True == 1``, so ``isinstance(v, int)``
lets a flag through where a count was meant. Every parameter check of the
package asks these predicates instead of spelling the test out; the callers
keep their own error class and wording around them.
"""
from __future__ import annotations

import math
import numbers


def is_int(value) -> bool:
    """True for an integer (Python or numpy), False for a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """True for a finite real number (Python or numpy), False for a bool, NaN or inf."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def is_count(value, minimum: int = 1) -> bool:
    """True for an integer (not a bool) of at least ``minimum``."""
    return is_int(value) and value >= minimum


def interval(low: float | None, high: float | None = None, *, open_low: bool = False) -> str:
    """``[low, high]`` in interval notation: ``(0.0, inf)``, ``[0.0, 1.0]``."""
    left = "(" if open_low or low is None else "["
    right = "]" if high is not None else ")"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def check_number(name: str, value, *, low: float | None = None, high: float | None = None,
                 open_low: bool = False, error: type[Exception] = ValueError) -> float:
    """Return ``value`` as a float, or raise ``error`` naming ``name`` and the value.

    Args:
        name: the parameter's name, as the user wrote it.
        value: the received value.
        low, high: inclusive bounds; None for none.
        open_low: require ``value > low`` instead of ``>=``.
        error: the caller's exception class (a ``ValueError`` subclass).
    """
    bounded = low is not None or high is not None
    ok = is_number(value) and not (
        (low is not None and (value <= low if open_low else value < low))
        or (high is not None and value > high))
    if not ok:
        wanted = f"a number in {interval(low, high, open_low=open_low)}" if bounded \
            else "a finite number"
        raise error(f"{name} must be {wanted}. Received: {name}={value!r}")
    return float(value)
