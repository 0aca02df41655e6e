"""The typed constraint record: built from the registry once, stored in the report's
provenance as JSON, read back the same way by the HTML report and `greenbench summary`."""

from __future__ import annotations

import json

import pytest

from projlib.cli.common import registry_constraints
from projlib.projections import REGISTRY, constraint_names
from projlib.report.aggregate import aggregate_rows
from projlib.report.claims import summarise
from projlib.report.constraints import ConstraintInfo, low_rank_names, read_constraints
from projlib.report.figures import COST_AXES, pareto_figure


def _provenance() -> dict:
    infos = registry_constraints()
    return json.loads(json.dumps({"constraints": {n: i.to_json() for n, i in infos.items()}}))


def test_records_survive_the_json_round_trip_in_registry_order():
    infos = read_constraints(_provenance())
    assert tuple(infos) == constraint_names()
    for name, spec in REGISTRY.items():
        assert infos[name] == ConstraintInfo(name, spec.label, spec.colour, spec.low_rank)
    assert low_rank_names(infos) == {n for n, s in REGISTRY.items() if s.low_rank}
    # malformed entries fall back instead of failing: a provenance dict is data
    bad = read_constraints({"constraints": {"x": {"label": 3, "colour": "red",
                                                  "low_rank": "yes"}}})
    assert bad["x"] == ConstraintInfo("x", "x", None, False)
    assert read_constraints({}) == {} and read_constraints({"constraints": []}) == {}


def test_report_and_summary_count_a_low_rank_constraints_maccs_alike(row_factory):
    """nuclear zeros no column (structured MACCs = dense) but its factorised layers are
    cheaper: the report's MACC front and the summary's cell both use that count, because
    both read the low-rank flag from the same record; without the flag, neither does."""
    dense = [row_factory(procedure="dense", constraint=None, radius=None, seed=s,
                         removed_cols=(0, 0, 0)) for s in (0, 1)]
    nuclear = []
    for s in (0, 1):
        row = row_factory(constraint="nuclear", radius=3.0, seed=s, accuracy=0.9,
                          removed_cols=(0, 0, 0))
        row["maccs_lowrank"] = row["maccs_dense"] * (0.25 + 0.1 * s)
        nuclear.append(row)
    rows = dense + nuclear
    maccs = next(a for a in COST_AXES if a.metric == "maccs_structured")
    dense_maccs = dense[0]["maccs_dense"]
    for provenance, expected in ((_provenance(), 0.3), ({}, 1.0)):
        infos = read_constraints(provenance)
        fig = pareto_figure(aggregate_rows(rows), maccs, "f", "t", "why", infos).figure
        trace = next(t for t in fig.data if t.name.startswith("nuclear"))
        assert trace.x[0] / dense_maccs == pytest.approx(expected)
        assert ("(rank)" in trace.name) == (expected != 1.0)
        cell = next(c for c in summarise(rows, low_rank=low_rank_names(infos)).cells
                    if c.constraint == "nuclear")
        assert cell.maccs[0] == pytest.approx(expected) and cell.low_rank == (expected != 1.0)
