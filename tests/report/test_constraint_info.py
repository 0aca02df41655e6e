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


def _dense_and_nuclear(row_factory, unit: str, first: float, step: float):
    """Two dense seeds and two nuclear seeds that zero nothing, whose factorised ``unit``
    ("maccs" or "bytes") is ``first + step * seed`` of dense."""
    dense = [row_factory(procedure="dense", constraint=None, radius=None, seed=s,
                         removed_cols=(0, 0, 0)) for s in (0, 1)]
    nuclear = []
    for s in (0, 1):
        row = row_factory(constraint="nuclear", radius=3.0, seed=s, accuracy=0.9,
                          removed_cols=(0, 0, 0))
        row[f"{unit}_lowrank"] = row[f"{unit}_dense"] * (first + step * s)
        nuclear.append(row)
    return dense, nuclear


def test_report_and_summary_count_a_low_rank_constraints_maccs_alike(row_factory):
    """nuclear zeros no column (structured MACCs = dense) but its factorised layers are
    cheaper: the report's MACC front and the summary's cell both use that count, because
    both read the low-rank flag from the same record; without the flag, neither does."""
    dense, nuclear = _dense_and_nuclear(row_factory, "maccs", 0.25, 0.1)
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


def test_report_and_summary_count_a_low_rank_constraints_bytes_by_rank(row_factory):
    """nuclear's bytes are its factorised layers' (`bytes_lowrank`) in the report's memory
    front and the summary's cell alike; a row measured before they were stored (None) keeps
    its structured bytes in both, never 0."""
    dense, nuclear = _dense_and_nuclear(row_factory, "bytes", 0.4, 0.2)
    axis = next(a for a in COST_AXES if a.metric == "bytes_structured")
    dense_bytes = dense[0]["bytes_dense"]
    infos = read_constraints(_provenance())
    for lowrank, expected in ((True, 0.5), (False, None)):
        rows = dense + [dict(r, bytes_lowrank=r["bytes_lowrank"] if lowrank else None)
                        for r in nuclear]
        if expected is None:
            expected = rows[-1]["bytes_structured"] / dense_bytes
        fig = pareto_figure(aggregate_rows(rows), axis, "f", "t", "why", infos).figure
        trace = next(t for t in fig.data if t.name.startswith("nuclear"))
        assert trace.x[0] / dense_bytes == pytest.approx(expected, rel=1e-3)
        cell = next(c for c in summarise(rows, low_rank=low_rank_names(infos)).cells
                    if c.constraint == "nuclear")
        assert cell.nbytes[0] == pytest.approx(expected, rel=1e-3)
