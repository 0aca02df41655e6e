"""`greenbench summary`: the claim tables (who saves the most at a given accuracy) from a db."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from projlib.checks import ParamError
from projlib.cli.common import (
    check_output_target,
    fail,
    read_rows,
    registry_constraints,
    write_output,
)
from projlib.cli.options import DEFAULT_DB
from projlib.report import isoacc
from projlib.report.claims import (
    BAND_COLUMNS,
    BAND_RANGE,
    BANDS_POINTS,
    CELL_COLUMNS,
    cell_rows,
    cells_markdown,
    summarise,
    to_csv_rows,
    to_markdown,
)
from projlib.report.constraints import low_rank_names
from projlib.training import MODELS
from projlib.training.config import PROCEDURE_NAMES
from projlib.training.plugins import is_plugin

__all__ = ["summary", "SUMMARY_FORMATS", "fully_connected_models", "is_greenbench_summary"]

SUMMARY_FORMATS = ("markdown", "csv", "json")

# How `summary -o` recognises a file it may replace (a summary greenbench wrote, in any of its
# formats), the counterpart of the report's generator tag. Markdown files end with MARKER;
# those written before the marker existed start with one of the summary's headings. CSV and
# JSON cannot carry a comment: they are recognised by their exact columns (a CSV header line,
# the keys of every JSON object), which are those of `to_csv_rows` (band tables) and
# `cell_rows` (--cells); tests/cli/test_cli_reliability2.py checks both lists against them.
MARKER = "<!-- written by greenbench summary -->"
# Cell CSV / JSON summaries written before the timing columns (e.g. the published study's).
_LEGACY_CELL_COLUMNS = CELL_COLUMNS[:15]
_LEGACY_MARKDOWN = re.compile(
    r"### .+ · .+: (within \S+ accuracy points of dense, fewest .+|every cell, seed-matched vs "
    r"dense)|### Fully connected vs convolutional: "
)
_MAX_JSON_BYTES = 64 << 20


# The columns of every CSV / JSON summary greenbench writes: band tables, cells, iso-accuracy.
_SUMMARY_COLUMNS = (BAND_COLUMNS, CELL_COLUMNS, _LEGACY_CELL_COLUMNS, isoacc.ISO_COLUMNS)


def is_greenbench_summary(path: Path) -> bool:
    """True when the file at `path` is a summary greenbench wrote (any format). Reads the
    file's head and tail (a JSON file whole, up to 64 MiB)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", errors="replace")
            size = fh.seek(0, 2)
            fh.seek(max(0, size - 256))
            tail = fh.read().decode("utf-8", errors="replace")
            if head.lstrip().startswith("[") and size <= _MAX_JSON_BYTES:
                fh.seek(0)
                return _is_summary_json(fh.read())
    except OSError:
        return False
    if tail.rstrip().endswith(MARKER) or _LEGACY_MARKDOWN.match(head):
        return True
    first = head.split("\n", 1)[0].rstrip("\r")
    return first in {",".join(c) for c in _SUMMARY_COLUMNS}


def _is_summary_json(data: bytes) -> bool:
    try:
        items = json.loads(data)
    except (ValueError, RecursionError):
        return False
    keys = [set(c) for c in _SUMMARY_COLUMNS]
    return isinstance(items, list) and all(
        isinstance(item, dict) and set(item) in keys for item in items
    )


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
        Path | None,
        typer.Option("--output", "-o",
                     help="Write here instead of stdout: a new file, or one replacing a summary "
                          "greenbench wrote (never the db or any other file)."),
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
    iso = iso_accuracy or accuracy != "test"
    for b in bands:  # accuracy points below dense; a drop of 0 is no target to interpolate at
        try:
            (isoacc.DROP_RANGE if iso_accuracy else BAND_RANGE).check("--band", b)
        except ParamError as exc:
            fail(str(exc))
    if iso:
        _check_iso_options(cells, iso_accuracy, accuracy)
    if output is not None:  # before reading: fail fast, write nothing
        check_output_target(output, db, "--output", kind="summary greenbench wrote",
                            is_ours=is_greenbench_summary)
    rows = read_rows(db)
    if procedure:
        unknown = sorted(set(procedure) - set(PROCEDURE_NAMES))
        if unknown:
            fail(f"--procedure: unknown name(s) {', '.join(unknown)}; "
                 f"valid: {', '.join(PROCEDURE_NAMES)}")
        keep = {*procedure, "dense"}
        rows = [r for r in rows if r.get("procedure") in keep]
    if iso:
        text = _iso_text(rows, bands, format, accuracy)
        what = "iso-accuracy"
    else:
        result = summarise(
            rows, bands,
            low_rank=low_rank_names(registry_constraints()),
            fully_connected=fully_connected_models(rows),
        )
        text = _render(result, format, cells)
        what = f"{len(result.tables)} tables"
    if output is None:
        typer.echo(text, nl=False)
        return
    if format == "markdown":
        text += f"{MARKER}\n"
    write_output(text, output, "--output")
    typer.echo(f"summary: {output.resolve()} ({what})")


def _render(result: Any, format: str, cells: bool) -> str:
    if format == "markdown":
        return cells_markdown(result) if cells else to_markdown(result)
    if cells:
        return _serialise(cell_rows(result), format, CELL_COLUMNS)
    return _serialise(to_csv_rows(result), format, BAND_COLUMNS)


def _serialise(rows: list[dict], format: str, columns: tuple[str, ...]) -> str:
    """`rows` as JSON or CSV; the CSV header even without rows, so an empty summary is still
    recognisably one (`is_greenbench_summary`)."""
    if format == "json":
        return json.dumps(rows, indent=2) + "\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _check_iso_options(cells: bool, iso_accuracy: bool, accuracy: str) -> None:
    """The options of the iso-accuracy mode, checked before the db is read."""
    if not iso_accuracy:
        fail("--accuracy: only with --iso-accuracy")
    if cells:
        fail("--cells: not with --iso-accuracy")
    if accuracy not in ("test", "val"):
        fail(f"--accuracy: {accuracy!r} is not test or val")


def _iso_text(rows: list, bands: tuple[float, ...], format: str, accuracy: str) -> str:
    column = f"{accuracy}_accuracy"
    tables = isoacc.iso_accuracy(
        rows, bands, accuracy=column,
        low_rank=low_rank_names(registry_constraints()))
    if format == "markdown":
        return isoacc.to_markdown(tables, column)
    return _serialise(isoacc.to_rows(tables), format, isoacc.ISO_COLUMNS)
