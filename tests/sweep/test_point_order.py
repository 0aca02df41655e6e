"""A point's time does not depend on its place in the sweep: the default sweep run forward and
reversed, each order in a fresh interpreter (cold, like a real sweep), gives the same seconds per
epoch per point (within 25 %, median within 10 %). Before one-off costs moved to the warm-up,
the first l11 point of a process took 12x its later siblings (numba compiling inside its
window)."""

from __future__ import annotations

import importlib.util
import statistics
from pathlib import Path

import pytest

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
    if any(abs(r - 1) > po.POINT_TOLERANCE for r in attempts[0]):
        attempts.append(_ratios(po))
    best = [min(rs, key=lambda r: abs(r - 1)) for rs in zip(*attempts, strict=True)]
    assert all(1 / (1 + po.POINT_TOLERANCE) <= r <= 1 + po.POINT_TOLERANCE for r in best), best
    assert abs(statistics.median(best) - 1) <= po.MEDIAN_TOLERANCE, best
