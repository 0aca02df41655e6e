"""Pareto (non-dominated) sets for "maximise accuracy, minimise cost".

A point a = (cost_a, acc_a) *dominates* b when cost_a <= cost_b and acc_a >= acc_b with at
least one inequality strict. The Pareto front is the set of points no other point dominates.
Exact duplicates do not dominate each other, so both copies stay on the front (dropping one
would silently hide a seed-level tie from the report).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from projlib.checks import is_number

__all__ = ["pareto_front", "dominates"]


def _usable(value: object) -> bool:
    # bool is an int subclass, but True/False as a cost is a schema bug, not a number.
    return is_number(value) and math.isfinite(float(value))


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when ``a = (cost, accuracy)`` dominates ``b`` (cheaper-or-equal and
    at-least-as-accurate, strictly better in one of the two)."""
    cost_a, acc_a = a
    cost_b, acc_b = b
    return cost_a <= cost_b and acc_a >= acc_b and (cost_a < cost_b or acc_a > acc_b)


def pareto_front(
    costs: Sequence[float | None], accuracies: Sequence[float | None]
) -> list[int]:
    """Indices of the non-dominated points, ordered by increasing cost.

    Points whose cost or accuracy is None (not measured) or not finite are excluded: an
    unmeasured cost is not a zero cost, so it can neither join nor shape the front.

    Algorithm: sort by (cost ascending, accuracy descending) and sweep once, keeping the best
    accuracy seen so far. A point is non-dominated iff its accuracy beats every cheaper-or-equal
    point's, or it exactly duplicates the point that set the current best.
    Complexity O(n log n) time, O(n) memory (Kung, Luccio & Preparata 1975, 2-D case).

    Raises:
        ValueError: when ``costs`` and ``accuracies`` differ in length.
    """
    if len(costs) != len(accuracies):
        raise ValueError(
            f"costs and accuracies must have the same length, got {len(costs)} and "
            f"{len(accuracies)}"
        )
    valid = [
        (float(c), float(a), i)  # type: ignore[arg-type]
        for i, (c, a) in enumerate(zip(costs, accuracies, strict=True))
        if _usable(c) and _usable(a)
    ]
    valid.sort(key=lambda t: (t[0], -t[1], t[2]))
    front: list[int] = []
    best_acc = -math.inf
    best_cost = math.nan
    for cost, acc, index in valid:
        if acc > best_acc:
            front.append(index)
            best_acc, best_cost = acc, cost
        elif acc == best_acc and cost == best_cost:
            front.append(index)
    return front
