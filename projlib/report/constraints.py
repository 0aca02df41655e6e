"""`ConstraintInfo`: what the report and `greenbench summary` know of a constraint.

One typed record per constraint, built from its registry spec by the CLI
(`projlib.cli.common.registry_constraints`) for each report or summary, written into the
report's provenance as JSON (``provenance["constraints"]``: name -> {"label", "colour",
"low_rank"}) and read back into this record by :func:`read_constraints`.  The report layer never
imports the projections: this record is all it knows of them, so a constraint registered from
outside the package shows with its own label and colour, and a low-rank one (the nuclear ball)
has its MACCs and bytes counted by rank in the report and the summary alike.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["ConstraintInfo", "read_constraints", "low_rank_names", "counted_cost", "RANK_COUNTED"]

# The costs a low-rank constraint has counted by rank: structured cost -> its factorised
# column (rank r of a kept m x n matrix: r(m + n) weights and MACCs per position where cheaper).
RANK_COUNTED: Mapping[str, str] = MappingProxyType({
    "maccs_structured": "maccs_lowrank",
    "params_structured": "params_lowrank",
    "bytes_structured": "bytes_lowrank",
})

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class ConstraintInfo:
    """A constraint as reports show it.

    name: the registry name (the ``constraint`` column of a row).
    label: its name in legends and tables (escaped where rendered).
    colour: "#rrggbb", or None for "pick a free palette colour".
    low_rank: it saves by rank, not by zeros: its structured MACCs, parameters and bytes are
        the factorised layers' (``maccs_lowrank``, ``params_lowrank``, ``bytes_lowrank``),
        labelled "(rank)".
    """

    name: str
    label: str
    colour: str | None = None
    low_rank: bool = False

    @classmethod
    def from_spec(cls, spec: Any) -> ConstraintInfo:
        """The record of a `projlib.projections.ProjectionSpec` (read by attribute)."""
        return cls(spec.name, spec.label, spec.colour, bool(spec.low_rank))

    def to_json(self) -> dict[str, Any]:
        """The JSON entry stored under ``provenance["constraints"][name]``."""
        return {"label": self.label, "colour": self.colour, "low_rank": self.low_rank}

    @classmethod
    def from_json(cls, name: str, entry: object) -> ConstraintInfo:
        """Read an entry back; what is missing or malformed falls back (label: the name,
        colour: None, low_rank: False), never an error: a provenance dict is data."""
        entry = entry if isinstance(entry, Mapping) else {}
        label = entry.get("label")
        colour = entry.get("colour")
        return cls(
            name=name,
            label=label if isinstance(label, str) and label else name,
            colour=colour if isinstance(colour, str) and _HEX_COLOUR.fullmatch(colour) else None,
            low_rank=entry.get("low_rank") is True,
        )


def read_constraints(provenance: Mapping[str, Any] | None) -> dict[str, ConstraintInfo]:
    """``provenance["constraints"]`` as records, in its order ({} when absent)."""
    block = provenance.get("constraints") if isinstance(provenance, Mapping) else None
    if not isinstance(block, Mapping):
        return {}
    return {name: ConstraintInfo.from_json(name, entry)
            for name, entry in block.items() if isinstance(name, str)}


def low_rank_names(infos: Mapping[str, ConstraintInfo]) -> frozenset[str]:
    """The names of the constraints whose costs are counted by rank."""
    return frozenset(name for name, info in infos.items() if info.low_rank)


def counted_cost(row: Mapping[str, Any], cost: str, low_rank: Collection[str]) -> float | None:
    """The cost column ``cost`` of ``row`` as the report and the summary count it.

    A low-rank constraint (the nuclear ball) saves by rank, not by zeros: its structured
    MACCs, parameters and bytes are those of the factorised layers (`RANK_COUNTED`) when that
    is the smaller count, and its label says "(rank)". A row measured before the factorised
    parameters and bytes were stored (schema < 5) keeps its structured count there."""
    value = row.get(cost)
    if row.get("constraint") in low_rank and cost in RANK_COUNTED:
        low = row.get(RANK_COUNTED[cost])
        if low is not None and (value is None or low < value):
            value = low
    return None if value is None else float(value)
