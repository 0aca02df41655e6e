"""Helpers shared by the commands: one-line errors, the store, report writing."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, NoReturn

import typer

__all__ = ["fail", "open_existing_store", "report_provenance", "write_report", "EXIT_USAGE"]

EXIT_USAGE = 2  # bad options / input, the click convention


def fail(message: str) -> NoReturn:
    """Print one line on stderr and exit with code 2 (no traceback)."""
    typer.echo(f"Error: {' '.join(message.split())}", err=True)
    raise typer.Exit(EXIT_USAGE)


def open_existing_store(path: Path) -> Any:
    """Open a results db for reading; a missing file is an error, not an empty db."""
    from projlib.sweep import ResultsStore, StoreError

    if not path.is_file():
        fail(f"--db: {path} does not exist (run `greenbench run` first)")
    try:
        return ResultsStore(path)
    except StoreError as exc:
        fail(str(exc))


def report_provenance(
    db: Path, meter: Any | None = None, *, sweep_id: str | None = None, country: str | None = None
) -> dict[str, Any]:
    """The run-level provenance panel: energy backends (available or why not), software
    versions of the process writing the report, where the data came from."""
    from projlib.measure import probe_backends
    from projlib.sweep.provenance import git_sha, package_version

    statuses = meter.statuses() if meter is not None else probe_backends()
    out: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "db": str(db),
        "energy_backends": [
            {"name": s.name, "available": s.available, "reason": s.reason} for s in statuses
        ],
        "report_package_version": package_version(),
        "report_git_sha": git_sha(),
    }
    if sweep_id is not None:
        out["sweep_id"] = sweep_id
    if country is not None:
        out["country_iso_code"] = country
    return out


def write_report(rows: list[dict], provenance: dict[str, Any], path: Path) -> Path:
    """Render and write the HTML report; returns the path written."""
    from projlib.report import build_report

    html = build_report(rows, provenance)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside then renamed: two runners finishing together never interleave bytes,
        # and a reader never sees half a report.
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"--report: cannot write {path}: {exc.strerror or exc}")
    return path
