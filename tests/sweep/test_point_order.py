"""A point's time does not depend on its place in the sweep: the default sweep run forward and
reversed, each order in a fresh interpreter (cold, like a real sweep). Before one-off costs
moved to the warm-up, the first l11 point of a process took 12x its later siblings and the first
l1/l21 points 3-4x (compilation inside their window).

The 25 % per-point target is a performance figure and lives in `benchmarks/point_order.py`
(quiet machine, figures in the notes); this test checks the property with a bound that load on a
shared 2-core machine cannot break but an order effect does: no point 2x slower in one order."""

from __future__ import annotations

import importlib.util
import math
import statistics
from pathlib import Path

import pytest

_BOUND = 2.0
_MEDIAN_BOUND = 1.25
_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "point_order.py"


def _load():  # noqa: ANN202 - the script module
    spec = importlib.util.spec_from_file_location("point_order", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ratios(po) -> list[float]:  # noqa: ANN001
    fwd, rev = po._spawn("forward"), po._spawn("reverse")
    return [rev[po._label(p)] / fwd[po._label(p)] for p in po.default_points()]


@pytest.mark.slow
def test_per_point_time_does_not_depend_on_sweep_order() -> None:
    po = _load()
    attempts = [_ratios(po)]
    # One retry against a noisy neighbour on a 2-core machine: an order effect (work that
    # belongs to the warm-up landing in a window) reproduces on every attempt; noise does not.
    # Either bound can be hit by noise (CI saw a median of 1.27 with no point beyond 2x), so
    # either one missed earns the retry.
    if not _within(attempts[0]):
        attempts.append(_ratios(po))
    best = [min(rs, key=lambda r: abs(math.log(r))) for rs in zip(*attempts, strict=True)]
    assert all(1 / _BOUND <= r <= _BOUND for r in best), best
    assert 1 / _MEDIAN_BOUND <= statistics.median(best) <= _MEDIAN_BOUND, best


def _within(ratios: list[float]) -> bool:
    return (all(1 / _BOUND <= r <= _BOUND for r in ratios)
            and 1 / _MEDIAN_BOUND <= statistics.median(ratios) <= _MEDIAN_BOUND)
