"""`projlib.checks`: the one home of "a number, not a bool" and of ranges."""

from __future__ import annotations

import numpy as np
import pytest

from projlib.checks import (
    OPERATOR_RADIUS,
    TRAINING_RADIUS,
    Interval,
    ParamError,
    check_bool,
    check_choice,
    check_int,
    check_number,
    is_int,
    is_number,
)


def test_a_bool_is_never_a_number_or_a_count() -> None:
    assert not is_number(True) and not is_int(False)
    assert is_number(np.float32(0.5)) and is_int(np.int64(3)) and not is_int(3.0)
    with pytest.raises(ParamError, match=r"^epochs must be an int, got bool$"):
        check_int("epochs", True, 1)
    with pytest.raises(ParamError, match=r"^lr must be a number, got bool$"):
        check_number("lr", True, 0, low_open=True)
    assert check_int("epochs", np.int64(3), 1) == 3 and type(check_int("e", np.int64(3))) is int


@pytest.mark.parametrize("interval, value, message", [
    (Interval(1, 10_000, integer=True), 0, "x must be >= 1, got 0"),
    (Interval(1, 10_000, integer=True), 20_000, "x must be <= 10,000, got 20000"),
    (Interval(0, 0.5), 0.7, "x must be in [0, 0.5], got 0.7"),
    (Interval(0, 100, low_open=True), 0, "x must be in (0, 100], got 0.0"),
    (Interval(0, finite=False), float("nan"), "x must be a number >= 0, got nan"),
    (TRAINING_RADIUS, 0, "x must be a finite number > 0, got 0.0"),
    (TRAINING_RADIUS, float("inf"), "x must be a finite number > 0, got inf"),
    (OPERATOR_RADIUS, 10**400, "x must be a finite number >= 0, got a number past the float "
                               "range"),
])
def test_one_message_shape_names_the_parameter_the_rule_and_the_value(interval, value,
                                                                      message) -> None:
    with pytest.raises(ParamError) as info:
        interval.check("x", value)
    assert str(info.value) == message


def test_param_error_is_both_a_value_and_a_type_error() -> None:
    # callers catch either, as they did before the checks had one home
    for error in (ValueError, TypeError):
        with pytest.raises(error):
            check_number("tolerance", "0.1", 0, 1)
        with pytest.raises(error):
            check_number("tolerance", 2.0, 0, 1)


def test_radius_rules_differ_only_at_zero_and_are_named() -> None:
    assert OPERATOR_RADIUS.check("radius", 0) == 0.0  # the ball {0}: a valid projection
    with pytest.raises(ParamError):
        TRAINING_RADIUS.check("radius", 0)  # zeros the layer: nothing to train
    assert TRAINING_RADIUS.check("radius", 2) == 2.0
    assert Interval(0, finite=False).check("max_age_s", float("inf")) == float("inf")


def test_bool_and_choice() -> None:
    assert check_bool("inference", False) is False
    with pytest.raises(ParamError, match=r"^inference must be a bool, got int$"):
        check_bool("inference", 0)
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ParamError, match=r"^mode must be one of a, b; got 'c'$"):
        check_choice("mode", "c", ("a", "b"))
