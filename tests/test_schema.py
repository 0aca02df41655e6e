"""`projlib.schema`: the results row defined once, and every reader and writer derived from it."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from projlib import schema
from projlib.cli import app
from projlib.measure.maccs import CostReport
from projlib.measure.types import ESTIMATE_METHOD, MEASURED_METHODS
from projlib.report import aggregate, build_report, figures
from projlib.sweep import PointSettings, ResultsStore, run_point
from projlib.sweep import store as store_module
from projlib.training import TrainConfig


def _one_done_point(store: ResultsStore, metrics: dict) -> str:
    cfg = {"dataset": "digits", "model": "mlp", "procedure": "dense", "seed": 0, "epochs": 1}
    store.register_sweep("s", {"x": 1}, [("p0", cfg)])
    pid = store.claim("s")
    store.complete(pid, metrics)
    return pid


def test_the_column_reference_is_generated_from_the_schema() -> None:
    # docs/COLUMNS.md is what `python -m projlib.schema` prints: a column added, renamed or
    # re-described in schema.py and not regenerated fails here.
    doc = Path(__file__).resolve().parents[1] / "docs" / "COLUMNS.md"
    assert doc.read_text(encoding="utf-8") == schema.reference_markdown(), (
        "docs/COLUMNS.md is stale: python -m projlib.schema > docs/COLUMNS.md")
    for col in schema.COLUMNS:
        assert f"| `{col.name}` |" in schema.reference_markdown()


def test_bookkeeping_stays_last_and_v1_is_recognised() -> None:
    # The store appends new columns before its own bookkeeping, and recognises a version-1
    # db by a signature made of version-1 columns.
    names = list(schema.column_names())
    assert names[-2:] == ["claimed_by", "attempts"]
    assert store_module._V1_POINT_COLUMNS <= set(schema.names(version=1))


def test_validate_rejects_a_broken_column() -> None:
    good = schema.column("energy_j")
    for change in ({"kind": "float"}, {"sql_type": "TEXT"}, {"group": "misc"}, {"unit": ""},
                   {"version": schema.SCHEMA_VERSION + 1}, {"description": ""}):
        with pytest.raises(ValueError, match="energy_j"):
            schema.validate([dataclasses.replace(good, **change)])
    with pytest.raises(ValueError, match="defined twice"):
        schema.validate([good, good])


def test_a_finished_point_cannot_rewrite_its_config(tmp_path: Path) -> None:
    """A config or identity column is written at registration, never by a finished point:
    the store refuses such a key in a point's metrics and leaves the row as registered."""
    with ResultsStore(tmp_path / "r.db") as store:
        cfg = {"dataset": "digits", "model": "mlp", "procedure": "dense", "seed": 0, "epochs": 1}
        store.register_sweep("s", {"x": 1}, [("p0", cfg)])
        pid = store.claim("s")
        for column in ("seed", "model", "point_id", "config_json"):
            with pytest.raises(ValueError, match="unknown columns"):
                store.complete(pid, {"test_accuracy": 0.5, column: 7})
        row = store.get(pid)
    assert row["seed"] == 0 and row["model"] == "mlp" and row["status"] != "done"
    assert row["test_accuracy"] is None


def test_store_table_is_the_schema(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        pid = _one_done_point(store, {"test_accuracy": 0.5})
        row = store.get(pid)
    conn = sqlite3.connect(tmp_path / "r.db")
    info = conn.execute("PRAGMA table_info(points)").fetchall()
    conn.close()
    assert [r[1] for r in info] == list(schema.column_names())
    assert [r[2] for r in info] == [c.sql_type.split()[0] for c in schema.COLUMNS]
    assert list(row) == list(schema.column_names())


def test_runner_fills_exactly_the_metric_columns() -> None:
    config = TrainConfig(dataset="digits", model="mlp", procedure="projected", constraint="l11",
                         radius=30.0, epochs=1)
    metrics = run_point(config, settings=PointSettings(threads=1))
    assert set(metrics) <= set(schema.metric_columns())
    # Every column a finished point is meant to fill, the runner fills (inference included).
    assert set(schema.metric_columns()) <= set(metrics)
    for name in schema.summary_metrics():
        value = metrics[name]
        assert value is None or isinstance(value, (int, float)), name


def test_cost_columns_are_the_cost_report_totals() -> None:
    totals = {f.name for f in dataclasses.fields(CostReport)} - {
        "layers", "thop_maccs", "csr_index_bytes", "tolerance"}
    assert set(schema.cost_columns()) == totals


def test_report_reads_only_schema_columns() -> None:
    names = set(schema.column_names())
    numeric = {c.name for c in schema.COLUMNS if c.numeric}
    assert set(schema.summary_metrics()) <= numeric
    assert set(aggregate.GROUP_FIELDS) <= names
    assert set(schema.REPORT_TABLE) <= set(schema.summary_metrics())
    for axis in (*figures.COST_AXES, *figures._FALLBACKS.values()):
        assert axis.metric in schema.summary_metrics()
        assert axis.title == schema.axis_title(axis.metric)
    rows = [dict(dict.fromkeys(names), point_id=f"p{seed}", status="done", dataset="digits",
                 model="mlp", procedure="dense", seed=seed, epochs=1, test_accuracy=0.9)
            for seed in (0, 1)]
    page = build_report(rows, {})
    for name in schema.REPORT_TABLE:
        assert f">{schema.label(name)}</th>" in page, name


def test_energy_methods_cover_measure() -> None:
    assert {*MEASURED_METHODS, ESTIMATE_METHOD, "unavailable"} == set(schema.ENERGY_METHODS)
    assert all(text for text in schema.ENERGY_METHODS.values())


def test_one_new_column_in_the_schema_reaches_every_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = schema.Column("new_cost_j", "REAL", "real", "J", "new cost (J)", True, schema.METRIC,
                        2, "a hypothetical new measured figure")
    columns = (*schema.COLUMNS[:-2], new, *schema.COLUMNS[-2:])
    monkeypatch.setattr(schema, "COLUMNS", columns)
    db = tmp_path / "new.db"
    with ResultsStore(db) as store:
        _one_done_point(store, {"test_accuracy": 0.5, "new_cost_j": 12.5})
        rows = store.rows()
    conn = sqlite3.connect(db)
    create = conn.execute("SELECT sql FROM sqlite_master WHERE name='points'").fetchone()[0]
    conn.close()
    assert '"new_cost_j" REAL' in create
    assert rows[0]["new_cost_j"] == 12.5

    result = CliRunner().invoke(app, ["runs", "--db", str(db), "--format", "csv"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split(",")
    assert header == list(schema.column_names()) and "new_cost_j" in header

    (point,) = aggregate.aggregate_rows(rows)
    assert point.mean("new_cost_j") == 12.5
