"""`greenbench summary --iso-accuracy` on a synthetic db whose answers are known by
construction: costs interpolated at matched accuracy, seed-matched, monotone, never
extrapolated, with the paired differences and the non-inferiority rule."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from projlib.cli import app
from projlib.report.isoacc import interpolate_cost, iso_accuracy, isotonic, to_markdown

runner = CliRunner()
SEEDS = range(5)
RADII = (0.01, 0.05, 0.2)
DROPS = (3.0, 1.0, 0.0)  # points below dense, at RADII
L11_COST = (0.10, 0.20, 0.40)  # fraction of the dense MACCs; l1 costs twice as much


def _row(procedure: str, constraint: str | None, radius: float | None, seed: int, acc: float,
         frac: float, validation: float = 0.0, mode: str = "absolute") -> dict:
    cfg = {"validation": validation} if validation else {}
    if mode != "absolute":
        cfg["radius_mode"] = mode
    return {"status": "done", "dataset": "fashion-mnist", "model": "lenet300",
            "procedure": procedure, "constraint": constraint, "radius": radius,
            "groups": None if constraint is None else "columns", "seed": seed, "epochs": 20,
            "test_accuracy": acc, "val_accuracy": acc - 0.01 if validation else None,
            "maccs_dense": 1000, "maccs_structured": round(1000 * frac),
            "maccs_lowrank": None, "bytes_dense": 4000, "bytes_structured": round(4000 * frac),
            "config_json": json.dumps(cfg)}


def known_rows(validation: float = 0.0, mode: str = "absolute") -> list[dict]:
    rows = []
    for s in SEEDS:
        dense = 0.88 + 0.002 * s  # the dense accuracy differs by seed: drops are seed-matched
        rows.append(_row("dense", None, None, s, dense, 1.0, validation))
        for r, drop, cost in zip(RADII, DROPS, L11_COST, strict=True):
            acc = dense - drop / 100
            rows.append(_row("projected", "l11", r, s, acc, cost, validation, mode))
            rows.append(_row("projected", "l1", r, s, acc, 2 * cost, validation, mode))
    return rows


def _table(tables, target: float, cost: str = "structured MACCs"):
    return next(t for t in tables if t.target == target and t.cost_label == cost)


def test_isotonic_pools_violators() -> None:
    assert isotonic([3.0, 1.0, 1.4, 0.0], increasing=False) == pytest.approx([3, 1.2, 1.2, 0])
    assert isotonic([1.0, 3.0, 2.0, 4.0]) == pytest.approx([1, 2.5, 2.5, 4])
    assert isotonic([]) == []


def test_interpolation_is_log_linear_and_never_extrapolates() -> None:
    assert interpolate_cost(DROPS, L11_COST, 2.0) == pytest.approx(math.sqrt(0.1 * 0.2))
    assert interpolate_cost(DROPS, L11_COST, 1.0) == pytest.approx(0.2)
    assert interpolate_cost(DROPS, L11_COST, 0.5) == pytest.approx(math.sqrt(0.2 * 0.4))
    assert interpolate_cost(DROPS, L11_COST, 5.0) is None  # tighter than the tightest radius
    assert interpolate_cost([3.0, 1.0], [0.1, 0.2], 0.5) is None  # looser than the loosest
    # a noisy middle pair (drops 0.8 then 1.2) is pooled to 1.0 and 1.0, not dropped: at 2
    # points the bracket is (3.0, 1.0), halfway; at exactly 1.0 the tighter radius answers
    noisy = ([3.0, 0.8, 1.2, 0.0], [0.1, 0.2, 0.3, 0.4])
    assert interpolate_cost(*noisy, 2.0) == pytest.approx(math.sqrt(0.1 * 0.2))
    assert interpolate_cost(*noisy, 1.0) == pytest.approx(0.2)
    assert interpolate_cost(*noisy, 0.5) == pytest.approx(math.sqrt(0.3 * 0.4))


def test_costs_at_matched_accuracy_and_paired_differences() -> None:
    tables = iso_accuracy(known_rows(), (0.5, 1.0, 2.0, 5.0))
    at1 = _table(tables, 1.0)
    entries = {e.constraint: e for e in at1.entries}
    assert len(entries["l11"].per_seed) == 5 and entries["l11"].mean == pytest.approx(0.2)
    assert entries["l1"].mean == pytest.approx(0.4)
    (pair,) = at1.pairs
    assert (pair.this, pair.other, pair.primary, pair.n) == ("l11", "l1", True, 5)
    assert pair.mean == pytest.approx(20.0) and pair.ci_low == pytest.approx(20.0)
    assert pair.verdict == "l11 costs less"
    assert _table(tables, 2.0).entries[1].mean == pytest.approx(math.sqrt(0.02))
    at5 = _table(tables, 5.0)
    assert all(e.mean is None and not e.per_seed for e in at5.entries)
    assert at5.pairs[0].verdict == "too few seeds"
    # the measured, non-inferior radius at 1 point: r = 0.05 (drop 1.0 on every seed)
    assert (entries["l11"].noninferior_radius, entries["l11"].noninferior_cost) == (
        0.05, pytest.approx(0.2))


def test_noninferiority_needs_the_upper_bound_not_the_mean() -> None:
    rows = known_rows()
    for r in rows:  # radius 0.05 of l11: drops 0 and 2 points alternately, mean still ~1
        if r["constraint"] == "l11" and r["radius"] == 0.05:
            r["test_accuracy"] += (0.01 if r["seed"] % 2 else -0.01)
    entry = next(e for e in _table(iso_accuracy(rows, (1.0,)), 1.0).entries
                 if e.constraint == "l11")
    assert entry.noninferior_radius == 0.2  # 0.05's 90 % bound is above 1 point


def test_variants_are_kept_apart_and_dense_matched_on_the_split() -> None:
    rows = known_rows() + known_rows(validation=0.1, mode="relative")
    tables = iso_accuracy(rows, (1.0,), accuracy="val_accuracy")
    assert {t.variant for t in tables} == {"relative radii, validation 0.1"}
    assert _table(tables, 1.0).entries[0].mean == pytest.approx(0.4)  # l1, by val_accuracy
    with pytest.raises(ValueError, match="accuracy must be"):
        iso_accuracy(rows, accuracy="train_accuracy")
    assert "Primary comparisons (claim 1): l11 vs l1" in to_markdown(tables)


def test_cli_iso_accuracy(tmp_path: Path, db_writer) -> None:
    db = db_writer(tmp_path / "study.db", known_rows(),
                   ("test_accuracy", "maccs_dense", "maccs_structured", "bytes_dense",
                    "bytes_structured"))
    md = runner.invoke(app, ["summary", "--db", str(db), "--iso-accuracy", "--band", "1"])
    assert md.exit_code == 0, md.output
    assert "| l11 vs l1 (projected) | primary | 5 | +20.0 [+20.0, +20.0] | l11 costs less |" \
        in md.output
    got = list(csv.DictReader(io.StringIO(runner.invoke(
        app, ["summary", "--db", str(db), "--iso-accuracy", "--format", "csv"]).output)))
    assert {r["drop_points"] for r in got} == {"0.5", "1.0", "2.0"}
    out = tmp_path / "iso.md"
    assert runner.invoke(app, ["summary", "--db", str(db), "--iso-accuracy",
                               "-o", str(out)]).exit_code == 0
    assert out.read_text().startswith("# Costs at matched accuracy")
    for args, needle in ((["--accuracy", "val"], "only with --iso-accuracy"),
                         (["--iso-accuracy", "--accuracy", "train"], "--accuracy"),
                         (["--iso-accuracy", "--cells"], "--cells"),
                         (["--iso-accuracy", "--band", "0"],
                          "--band must be in (0, 100], got 0.0")):
        bad = runner.invoke(app, ["summary", "--db", str(db), *args])
        assert bad.exit_code == 2 and needle in bad.stderr, bad.output


def test_a_low_rank_constraint_is_counted_and_labelled_by_rank() -> None:
    # nuclear zeros nothing (structured = dense) but its factorised layers cost what l1 costs:
    # iso-accuracy counts the factorised cost, as the summary and the report do, and says so
    rows = known_rows()
    for r in [r for r in rows if r["constraint"] == "l1"]:
        rows.append(dict(r, constraint="nuclear", maccs_structured=1000,
                         maccs_lowrank=r["maccs_structured"]))
    tables = iso_accuracy(rows, low_rank={"nuclear"})
    entry = {e.constraint: e for e in _table(tables, 1.0).entries}
    assert entry["nuclear"].mean == pytest.approx(entry["l1"].mean) and entry["nuclear"].low_rank
    assert "| nuclear (rank) | projected |" in to_markdown(tables)
    plain = {e.constraint: e for e in _table(iso_accuracy(rows), 1.0).entries}
    assert plain["nuclear"].mean == pytest.approx(1.0) and not plain["nuclear"].low_rank
