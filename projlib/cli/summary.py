"""`greenbench summary`: the claim tables (who saves the most at a given accuracy) from a db."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated

import typer

from projlib.cli.common import fail, read_rows
from projlib.cli.options import DEFAULT_DB
from projlib.projections import REGISTRY
from projlib.report import isoacc
from projlib.report.summary import (
    BANDS_POINTS,
    cell_rows,
    cells_markdown,
    summarise,
    to_csv_rows,
    to_markdown,
)
from projlib.training import MODELS
from projlib.training.config import PROCEDURE_NAMES

__all__ = ["summary", "SUMMARY_FORMATS"]

SUMMARY_FORMATS = ("markdown", "csv", "json")


def summary(
    db: Annotated[Path, typer.Option(help="Results database (read only).")] = DEFAULT_DB,
    format: Annotated[str, typer.Option("--format", help="markdown|csv|json")] = "markdown",
    band: Annotated[
        list[float] | None,
        typer.Option(help="Accuracy band in points below dense (repeatable). "
                          f"(default: {', '.join(f'{b:g}' for b in BANDS_POINTS)})"),
    ] = None,
    procedure: Annotated[
        list[str] | None,
        typer.Option(help="Only these procedures (repeatable; the dense baseline is always "
                          "kept), e.g. projected: the paper's method alone."),
    ] = None,
    cells: Annotated[
        bool,
        typer.Option("--cells", help="Every constraint x procedure x radius cell (the curves "
                                     "behind the band tables) instead of the band tables."),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    iso_accuracy: Annotated[
        bool,
        typer.Option("--iso-accuracy", help="Costs at matched accuracy instead: per seed, "
                                            "each constraint's cost interpolated at exactly "
                                            "each --band drop, bootstrap CIs and paired "
                                            "differences (rule: projlib/report/isoacc.py)."),
    ] = False,
    accuracy: Annotated[
        str, typer.Option(help="With --iso-accuracy: test (reported numbers) or val (the "
                               "validation split, for choosing budgets and radii).")
    ] = "test",
) -> None:
    """Per dataset, model and accuracy band: which constraint/procedure reaches the fewest
    structured MACCs and bytes (seed-matched vs dense), with the gap to the best other
    constraint."""
    if format not in SUMMARY_FORMATS:
        fail(f"--format: {format!r} is not one of {', '.join(SUMMARY_FORMATS)}")
    bands = tuple(band) if band else BANDS_POINTS
    if any(not 0 <= b <= 100 for b in bands):
        fail("--band: bands are accuracy points in [0, 100]")
    if output is not None and (output.is_dir() or output.resolve() == db.resolve()):
        fail(f"--output: {output} is a directory or the results database")
    rows = read_rows(db)
    if procedure:
        unknown = sorted(set(procedure) - set(PROCEDURE_NAMES))
        if unknown:
            fail(f"--procedure: unknown name(s) {', '.join(unknown)}; "
                 f"valid: {', '.join(PROCEDURE_NAMES)}")
        keep = {*procedure, "dense"}
        rows = [r for r in rows if r.get("procedure") in keep]
    if iso_accuracy or accuracy != "test":
        text = _iso_text(rows, bands, format, cells, iso_accuracy, accuracy)
        if output is None:
            typer.echo(text, nl=False)
            return
        try:  # kept apart from the band tables' writer, which is being reworked
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--output: cannot write {output}: {exc.strerror or exc}")
        typer.echo(f"summary: {output.resolve()} (iso-accuracy)")
        return
    result = summarise(
        rows, bands,
        low_rank={name for name, spec in REGISTRY.items() if spec.low_rank},
        fully_connected={name for name, spec in MODELS.items() if spec.fully_connected},
    )
    if format == "markdown":
        text = cells_markdown(result) if cells else to_markdown(result)
    elif format == "json":
        text = json.dumps(cell_rows(result) if cells else to_csv_rows(result), indent=2) + "\n"
    else:
        rows = cell_rows(result) if cells else to_csv_rows(result)
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        text = buf.getvalue()
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"--output: cannot write {output}: {exc.strerror or exc}")
    typer.echo(f"summary: {output.resolve()} ({len(result.tables)} tables)")


def _iso_text(rows: list, bands: tuple[float, ...], format: str, cells: bool,
              iso_accuracy: bool, accuracy: str) -> str:
    if not iso_accuracy:
        fail("--accuracy: only with --iso-accuracy")
    if cells:
        fail("--cells: not with --iso-accuracy")
    if accuracy not in ("test", "val"):
        fail(f"--accuracy: {accuracy!r} is not test or val")
    if any(b <= 0 for b in bands):
        fail("--band: with --iso-accuracy a drop must be > 0 points")
    column = f"{accuracy}_accuracy"
    tables = isoacc.iso_accuracy(
        rows, bands, accuracy=column,
        low_rank={name for name, spec in REGISTRY.items() if spec.low_rank})
    if format == "markdown":
        return isoacc.to_markdown(tables, column)
    flat = isoacc.to_rows(tables)
    if format == "json":
        return json.dumps(flat, indent=2) + "\n"
    buf = io.StringIO()
    if flat:
        writer = csv.DictWriter(buf, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
    return buf.getvalue()
