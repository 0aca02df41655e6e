"""Parameter checks shared by every config and public function: one rule per kind of value.

In the spirit of scikit-learn's declarative parameter constraints: a range is an `Interval`
value, checked by `Interval.check`, and every failure is a `ParamError`, which is both a
``ValueError`` and a ``TypeError`` (a wrong kind and a value out of range are both "bad
input"; callers may catch either, as they did before the checks had one home). Messages have
one shape: ``"<name> must be <what>, got <value>"``.

Rules that are decisions of the package, not of one caller, are named here:

* a bool is never a number or a count (``True`` in a TOML file is not 1 epoch);
* `OPERATOR_RADIUS`: a projection operator takes any finite radius >= 0 (0 is the ball {0});
* `TRAINING_RADIUS`: a training or sweep radius is finite and > 0 (radius 0 only zeros the
  constrained layers: there is nothing to train or compare).

This module imports nothing from the package (it sits below every layer, like `schema`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ParamError", "Interval", "OPERATOR_RADIUS", "TRAINING_RADIUS", "is_number", "is_int",
    "check_bool", "check_choice", "check_int", "check_number",
]


class ParamError(ValueError, TypeError):
    """A parameter of the wrong kind or out of its range (a ValueError and a TypeError)."""


def is_number(value: object) -> bool:
    """A real number that is not a bool (int, float, numpy scalars; not a tensor)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    """An integer that is not a bool (int, numpy integers)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Interval:
    """The values a numeric parameter may take.

    low / high: bounds (None: unbounded); low_open / high_open: the bound itself excluded;
    integer: only ints; finite: NaN and +-inf refused (NaN is always refused)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    finite: bool = True

    def describe(self, value: float | None = None) -> str:
        """What a value must be: "in [0, 1]", "a finite number > 0", "a number >= 0"; for an
        integer interval the bound ``value`` breaks, e.g. ">= 1" (or both, "in [1, 10]")."""
        low = None if self.low is None else self._fmt(self.low)
        high = None if self.high is None else self._fmt(self.high)
        low_op, high_op = (">" if self.low_open else ">="), ("<" if self.high_open else "<=")
        if self.integer and value is not None and low is not None and high is not None:
            return f"{low_op} {low}" if value < self.low else f"{high_op} {high}"
        if low is not None and high is not None:
            return (f"in {'(' if self.low_open else '['}{low}, "
                    f"{high}{')' if self.high_open else ']'}")
        kind = "" if self.integer else ("a finite number " if self.finite else "a number ")
        if low is not None:
            return f"{kind}{low_op} {low}"
        if high is not None:
            return f"{kind}{high_op} {high}"
        return "an int" if self.integer else kind.strip()

    def _fmt(self, bound: float) -> str:
        return f"{int(bound):,}" if self.integer else f"{bound:g}"

    def contains(self, value: float) -> bool:
        """`value` (already a number of the right kind) lies in the interval."""
        if math.isnan(value) or (self.finite and math.isinf(value)):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high
                                         or (self.high_open and value == self.high))

    def check(self, name: str, value: Any) -> Any:
        """``value`` (an int for an integer interval, else a float) or a `ParamError`."""
        if self.integer:
            if not is_int(value):
                raise ParamError(f"{name} must be an int, got {type(value).__name__}")
            value = int(value)
        else:
            if not is_number(value):
                raise ParamError(f"{name} must be a number, got {type(value).__name__}")
            try:
                value = float(value)
            except OverflowError:  # e.g. the int 10**400
                raise ParamError(f"{name} must be {self.describe()}, got a number past the "
                                 "float range") from None
        if not self.contains(value):
            raise ParamError(f"{name} must be {self.describe(value)}, got {value!r}")
        return value


OPERATOR_RADIUS = Interval(low=0.0)
TRAINING_RADIUS = Interval(low=0.0, low_open=True)


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                 *, low_open: bool = False, high_open: bool = False,
                 finite: bool = True) -> float:
    """``value`` as a float, checked against the interval the other arguments describe."""
    return Interval(low, high, low_open, high_open, False, finite).check(name, value)


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in [low, high] (either bound may be None)."""
    return Interval(low, high, integer=True).check(name, value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ParamError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ParamError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value
