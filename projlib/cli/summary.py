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
from projlib.training.plugins import is_plugin

__all__ = ["summary", "SUMMARY_FORMATS", "fully_connected_models"]

SUMMARY_FORMATS = ("markdown", "csv", "json")


def fully_connected_models(rows: list[dict]) -> set[str]:
    """The built-in models registered as fully connected, plus each model of your own
    (`package.module:factory`) whose stored weights (`layers_json`) are all 2-D matrices."""
    names = {name for name, spec in MODELS.items() if spec.fully_connected}
    shapes: dict[str, list[int]] = {}
    for r in rows:
        if is_plugin(r.get("model")) and r.get("layers_json"):
            dims = [len(layer["shape"]) for layer in json.loads(r["layers_json"])]
            shapes.setdefault(r["model"], []).extend(dims)
    return names | {m for m, dims in shapes.items() if dims and all(d == 2 for d in dims)}


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
    result = summarise(
        rows, bands,
        low_rank={name for name, spec in REGISTRY.items() if spec.low_rank},
        fully_connected=fully_connected_models(rows),
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
