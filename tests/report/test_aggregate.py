"""Aggregation over seeds: mean, sample std, None = not measured, row validation."""

from __future__ import annotations

import math

import pytest

from projlib.report.aggregate import Stat, aggregate_rows, validate_rows
from projlib.report.figures import best_points


def test_mean_and_sample_std_over_seeds(row_factory):
    rows = [row_factory(seed=s, accuracy=a) for s, a in ((0, 0.80), (1, 0.90), (2, 0.85))]
    (point,) = aggregate_rows(rows)
    assert point.seeds == (0, 1, 2)
    assert point.mean("test_accuracy") == pytest.approx(0.85)
    assert point.std("test_accuracy") == pytest.approx(0.05)  # ddof=1
    assert point.stats["test_accuracy"].n == 3


def test_single_seed_has_no_std():
    assert Stat.of([0.5]) == Stat(0.5, None, 1)
    assert Stat.of([None, None]) == Stat(None, None, 0)


def test_unmeasured_energy_stays_none_and_partial_is_mean_of_measured(row_factory):
    rows = [row_factory(seed=0), row_factory(seed=1)]
    (point,) = aggregate_rows(rows)
    assert point.mean("energy_j") is None and point.stats["energy_j"].n == 0
    rows = [row_factory(seed=0, energy_j=10.0, measured_energy=True),
            row_factory(seed=1, energy_j=None, measured_energy=True)]
    (point,) = aggregate_rows(rows)
    assert point.mean("energy_j") == 10.0 and point.stats["energy_j"].n == 1


def test_groups_split_by_key_and_skip_unfinished(row_factory):
    rows = [row_factory(radius=1.0), row_factory(radius=5.0), row_factory(constraint="l1"),
            row_factory(procedure="dense", constraint=None, radius=None),
            row_factory(status="failed"), row_factory(status="running"),
            row_factory(accuracy=float("nan"))]
    points = aggregate_rows(rows)
    keys = {(p.procedure, p.constraint, p.radius) for p in points}
    assert keys == {("projected", "l11", 1.0), ("projected", "l11", 5.0),
                    ("projected", "l1", 5.0), ("dense", None, None)}
    # The NaN-accuracy row joined no group: l11 r=5 has exactly one seed.
    (l11,) = [p for p in points if p.constraint == "l11" and p.radius == 5.0]
    assert len(l11.rows) == 1
    assert not math.isnan(l11.mean("test_accuracy"))


def test_validate_rows_errors_name_the_argument(row_factory):
    with pytest.raises(TypeError, match="rows must be a list"):
        validate_rows({"a": 1})
    with pytest.raises(TypeError, match=r"rows\[1\] must be a dict"):
        validate_rows([row_factory(), "x"])
    bad = row_factory()
    del bad["dataset"]
    with pytest.raises(ValueError, match=r"rows\[0\] lacks required key\(s\) \['dataset'\]"):
        validate_rows([bad])


def test_best_point_is_cheapest_within_tolerance(row_factory):
    rows = [row_factory(procedure="dense", constraint=None, radius=None, accuracy=0.95,
                        removed_cols=(0, 0, 0)),
            row_factory(radius=1.0, accuracy=0.90, removed_cols=(50, 60, 0)),   # too inaccurate
            row_factory(radius=5.0, accuracy=0.945, removed_cols=(30, 40, 0)),  # cheapest ok
            row_factory(radius=20.0, accuracy=0.95, removed_cols=(5, 5, 0))]
    best = best_points(aggregate_rows(rows), accuracy_tolerance=0.01)
    assert best["l11"].radius == 5.0
    # Without a dense baseline: the most accurate point.
    best = best_points(aggregate_rows(rows[1:3]), accuracy_tolerance=0.001)
    assert best["l11"].radius == 5.0
