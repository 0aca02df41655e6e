"""Aggregation of results rows over seeds (mean and sample standard deviation).

Reads only the row schema (`projlib.schema`). A metric that is None in a row was not
measured there; it is left out of that metric's mean (never counted as 0), and a metric
measured in no seed aggregates to None.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from projlib import schema
from projlib.checks import is_number

__all__ = [
    "GROUP_FIELDS",
    "Stat",
    "AggregatePoint",
    "aggregate_rows",
    "validate_rows",
    "parse_json_field",
    "to_number",
]


# One aggregate per distinct value of these. groups and epochs are part of the key as well as
# the five sweep axes: seeds run with different groupings or budgets are different experiments.
GROUP_FIELDS: tuple[str, ...] = (
    "dataset",
    "model",
    "procedure",
    "constraint",
    "radius",
    "groups",
    "epochs",
)

_REQUIRED = ("status", "dataset", "model", "procedure")


def to_number(value: object) -> float | None:
    """A finite float, or None for None / NaN / inf / non-numbers (all "not measured")."""
    if not is_number(value):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _to_int(value: object) -> int | None:
    number = to_number(value)
    return None if number is None else int(number)


def parse_json_field(value: object) -> Any:
    """Decode a ``*_json`` column (a JSON string per the schema). None, empty or malformed
    text gives None: a broken detail column must not take the whole report down."""
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (ddof=1) of one metric over the seeds that measured
    it. ``std`` is None for a single measurement (one seed gives no spread estimate)."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat:
        measured = [v for v in values if v is not None]
        if not measured:
            return cls(None, None, 0)
        mean = statistics.fmean(measured)
        std = statistics.stdev(measured) if len(measured) >= 2 else None
        return cls(mean, std, len(measured))


@dataclass(frozen=True)
class AggregatePoint:
    """One (dataset, model, procedure, constraint, radius, groups, epochs) cell over seeds."""

    dataset: str
    model: str
    procedure: str
    constraint: str | None
    radius: float | None
    groups: str | None
    epochs: int | None
    seeds: tuple[int, ...]
    stats: Mapping[str, Stat]
    rows: tuple[Mapping[str, Any], ...] = field(repr=False)

    @property
    def is_dense(self) -> bool:
        return self.procedure == "dense"

    def mean(self, metric: str) -> float | None:
        return self.stats[metric].mean

    def std(self, metric: str) -> float | None:
        return self.stats[metric].std

    @property
    def label(self) -> str:
        """Short human label (unescaped; callers escape for their medium)."""
        if self.is_dense:
            return "dense baseline"
        radius = "?" if self.radius is None else f"{self.radius:g}"
        return f"{self.constraint} r={radius} ({self.procedure})"

    def timing_noise(self) -> tuple[int, int]:
        """(seeds whose epoch times were flagged noisy, seeds whose noise could be judged):
        the `epoch_time_noisy` column of the rows (None: not judged, left out)."""
        flags = [to_number(r.get("epoch_time_noisy")) for r in self.rows]
        judged = [f for f in flags if f is not None]
        return sum(1 for f in judged if f), len(judged)

    def representative_row(self) -> Mapping[str, Any]:
        """The lowest-seed row that has per-layer data (else the lowest seed): used for
        per-layer pictures, which cannot be averaged column-by-column across seeds."""
        ordered = sorted(self.rows, key=lambda r: _sort_key(to_number(r.get("seed"))))
        for row in ordered:
            if parse_json_field(row.get("layers_json")):
                return row
        return ordered[0]


def validate_rows(rows: object) -> list[Mapping[str, Any]]:
    """Check the ``rows`` argument of :func:`build_report`; returns it as a list."""
    if not isinstance(rows, (list, tuple)):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{i}] must be a dict, got {type(row).__name__}")
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks required key(s) {missing} of the row schema")
    return list(rows)


def _sort_key(value: object) -> tuple[int, Any]:
    # None sorts last; mixed types fall back to their string form so sorting never raises.
    if value is None:
        return (2, "")
    if is_number(value):
        return (0, float(value))
    return (1, str(value))


def aggregate_rows(rows: Sequence[Mapping[str, Any]]) -> list[AggregatePoint]:
    """Group finished rows (status "done" with a measured accuracy) and average over seeds.

    Complexity O(n log n) in the number of rows. Returns points sorted by their group key.
    """
    metrics = schema.summary_metrics()
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("status") != "done" or to_number(row.get("test_accuracy")) is None:
            continue
        key = tuple(row.get(f) for f in GROUP_FIELDS)
        groups.setdefault(key, []).append(row)
    points = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        members = groups[key]
        values = dict(zip(GROUP_FIELDS, key, strict=True))
        stats = {m: Stat.of([to_number(r.get(m)) for r in members]) for m in metrics}
        seed_values = (to_number(r.get("seed")) for r in members)
        seeds = tuple(sorted(int(v) for v in seed_values if v is not None))
        points.append(
            AggregatePoint(
                dataset=str(values["dataset"]),
                model=str(values["model"]),
                procedure=str(values["procedure"]),
                constraint=None if values["constraint"] is None else str(values["constraint"]),
                radius=to_number(values["radius"]),
                groups=None if values["groups"] is None else str(values["groups"]),
                epochs=_to_int(values["epochs"]),
                seeds=seeds,
                stats=stats,
                rows=tuple(members),
            )
        )
    return points
