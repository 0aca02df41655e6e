"""`greenbench report`, `greenbench runs` and `greenbench env`: read-only views."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from projlib import schema
from projlib.cli.common import (
    check_report_target,
    fail,
    read_rows,
    report_provenance,
    write_report,
)
from projlib.cli.options import DEFAULT_DB, DEFAULT_REPORT
from projlib.measure import probe_backends
from projlib.report import ReportConfig
from projlib.sweep.provenance import device_name, git_sha, package_version
from projlib.training import DATASETS, DatasetError, DatasetNotFoundError, load_dataset

__all__ = ["report", "runs", "env", "RUN_FORMATS"]

RUN_FORMATS = ("table", "json", "csv")


def report(
    db: Annotated[Path, typer.Option(help="Results database.")] = DEFAULT_DB,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = (
        DEFAULT_REPORT
    ),
    energy: Annotated[
        str, typer.Option(help="Training energy on the energy front: above-idle (measured "
                               "total minus the idle floor) or total.")
    ] = "above-idle",
) -> None:
    """Write the HTML report of every point in the db (the db is only read)."""
    if energy not in ("above-idle", "total"):
        fail(f"--energy: {energy!r} is not one of above-idle, total")
    check_report_target(output, db, "--output")  # before reading: fail fast, write nothing
    rows = read_rows(db)
    path = write_report(rows, report_provenance(db), output, db=db, option="--output",
                        config=ReportConfig(energy=energy.replace("-", "_")))
    typer.echo(f"report: {path.resolve()} ({len(rows)} points)")


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "point_id":
        return str(value)[:10]
    if column == "error":
        return str(value).splitlines()[0][:60]
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and column.startswith("maccs"):
        return f"{value:,}"
    return str(value)


def runs(
    db: Annotated[Path, typer.Option(help="Results database.")] = DEFAULT_DB,
    format: Annotated[str, typer.Option("--format", help="table|json|csv")] = "table",
    status: Annotated[
        str | None, typer.Option(help="Only points with this status.")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="json/csv: only these columns, comma-separated, in this order "
                          "(default: every column of the schema)."),
    ] = None,
) -> None:
    """List the points in the db (table, or the full rows as JSON / CSV)."""
    if format not in RUN_FORMATS:
        fail(f"--format: {format!r} is not one of {', '.join(RUN_FORMATS)}")
    if status is not None and status not in schema.STATUSES:
        fail(f"--status: {status!r} is not one of {', '.join(schema.STATUSES)}")
    names = schema.column_names()
    if columns is not None:
        if format == "table":
            fail("--columns: only with --format json or csv")
        picked = [c.strip() for c in columns.split(",") if c.strip()]
        unknown = [c for c in picked if c not in names]
        if not picked or unknown:
            fail(f"--columns: unknown column(s) {', '.join(unknown) or '(none given)'}; "
                 "see docs/ARCHITECTURE.md for the row schema")
        names = list(dict.fromkeys(picked))
    rows = [{c: r.get(c) for c in names} for r in read_rows(db, status=status)]
    if format == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table(title=f"{db}: {len(rows)} points")
        for col in schema.RUNS_TABLE:
            table.add_column(schema.label(col), overflow="fold")
        for r in rows:
            table.add_row(*(_cell(col, r.get(col)) for col in schema.RUNS_TABLE))
        Console(width=max(160, Console().width)).print(table)


def env(
    data_dir: Annotated[Path | None, typer.Option(help="Where datasets are looked up.")] = None,
) -> None:
    """Devices, energy backends (available or why not) and the datasets found offline."""

    console = Console(highlight=False, soft_wrap=True)
    console.print(f"greenbench {package_version()}  git {git_sha() or 'n/a'}")
    console.print(f"torch {torch.__version__}  CUDA build {torch.version.cuda or 'none'}")
    console.print("[bold]devices[/bold]")
    cpu = escape(device_name("cpu") or "unknown")
    console.print(f"  cpu: {cpu} ({os.cpu_count()} logical cores)")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            console.print(f"  cuda:{i}: {escape(torch.cuda.get_device_name(i))}")
    else:
        console.print("  cuda: not available (torch.cuda.is_available() is False)")
    console.print("[bold]energy backends[/bold]")
    for s in probe_backends():
        state = "[green]available[/green]" if s.available else "[red]unavailable[/red]"
        console.print(f"  {escape(s.name)}: {state} - {escape(s.reason)}")
    console.print("[bold]datasets[/bold]")
    for name in DATASETS:
        try:
            ds = load_dataset(name, data_dir=data_dir, download=False)
        except DatasetNotFoundError as exc:
            console.print(f"  {name}: [red]not found[/red] - {escape(str(exc).splitlines()[0])}")
        except DatasetError as exc:
            console.print(f"  {name}: [red]unreadable[/red] - {escape(str(exc).splitlines()[0])}")
        else:
            console.print(
                f"  {name}: found ({len(ds.train_y)} train / {len(ds.test_y)} test) "
                f"at {escape(str(ds.source))}"
            )
