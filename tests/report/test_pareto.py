"""Pareto front on hand-made points, and against the O(n^2) definition."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projlib.report.pareto import dominates, pareto_front


def brute_force_front(costs, accs):
    ok = [i for i, (c, a) in enumerate(zip(costs, accs, strict=True))
          if c is not None and a is not None and math.isfinite(c) and math.isfinite(a)]
    return {i for i in ok
            if not any(dominates((costs[j], accs[j]), (costs[i], accs[i])) for j in ok)}


def test_simple_front_ordered_by_cost():
    costs = [10.0, 5.0, 1.0, 7.0, 3.0]
    accs = [0.95, 0.90, 0.70, 0.85, 0.88]
    # (7, .85) is dominated by (5, .90); the rest trade accuracy for cost.
    assert pareto_front(costs, accs) == [2, 4, 1, 0]


def test_equal_cost_keeps_only_the_more_accurate():
    assert pareto_front([2.0, 2.0, 3.0], [0.8, 0.9, 0.95]) == [1, 2]


def test_equal_accuracy_keeps_only_the_cheaper():
    assert pareto_front([2.0, 1.0, 3.0], [0.9, 0.9, 0.9]) == [1]


def test_exact_duplicates_both_stay():
    assert sorted(pareto_front([1.0, 1.0, 5.0], [0.8, 0.8, 0.9])) == [0, 1, 2]
    assert pareto_front([4.0, 1.0, 1.0], [0.5, 0.8, 0.8]) == [1, 2]


def test_none_and_nan_are_excluded_not_zero():
    # A None cost must not become a free (cost 0) point that dominates everything.
    costs = [None, 5.0, float("nan"), 8.0, 2.0]
    accs = [0.99, 0.90, 0.99, 0.95, None]
    assert pareto_front(costs, accs) == [1, 3]


def test_empty_and_all_missing():
    assert pareto_front([], []) == []
    assert pareto_front([None, None], [0.5, 0.6]) == []


def test_length_mismatch_names_arguments():
    with pytest.raises(ValueError, match="costs and accuracies"):
        pareto_front([1.0, 2.0], [0.5])


def test_dominates_is_strict():
    assert dominates((1.0, 0.9), (2.0, 0.9))
    assert dominates((1.0, 0.9), (1.0, 0.8))
    assert not dominates((1.0, 0.9), (1.0, 0.9))
    assert not dominates((1.0, 0.8), (2.0, 0.9))


_values = st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.0, 3.0]),
                    st.floats(0, 10, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_values, _values), max_size=30))
def test_matches_quadratic_definition(points):
    costs = [c for c, _ in points]
    accs = [a for _, a in points]
    front = pareto_front(costs, accs)
    assert len(front) == len(set(front))
    assert set(front) == brute_force_front(costs, accs)
    assert [costs[i] for i in front] == sorted(costs[i] for i in front)
