"""Helpers shared by the commands: one-line errors, the store, report writing."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import typer

from projlib.measure import probe_backends
from projlib.projections import REGISTRY
from projlib.report import REPORT_GENERATOR, ReportConfig, build_report, is_greenbench_report
from projlib.sweep import ResultsStore, StoreError
from projlib.sweep.provenance import git_sha, package_version

__all__ = [
    "EXIT_USAGE",
    "check_report_target",
    "fail",
    "open_existing_store",
    "read_rows",
    "report_provenance",
    "write_report",
]

EXIT_USAGE = 2  # bad options / input, the click convention
_DB_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def fail(message: str) -> NoReturn:
    """Print one line on stderr and exit with code 2 (no traceback)."""
    typer.echo(f"Error: {' '.join(message.split())}", err=True)
    raise typer.Exit(EXIT_USAGE)


def open_existing_store(path: Path, option: str = "--db") -> ResultsStore:
    """Open a results db read-only: a missing file, a directory or a file that is not a
    greenbench db is an error, and nothing is ever written to it."""
    if path.is_dir():
        fail(f"{option}: {path} is a directory, not a results database")
    if not path.exists():
        fail(f"{option}: {path} does not exist (run `greenbench run` first)")
    try:
        return ResultsStore(path, read_only=True)
    except StoreError as exc:
        fail(f"{option}: {str(exc).removeprefix('db: ')}")


def read_rows(path: Path, **filters: Any) -> list[dict[str, Any]]:
    """All rows of the db at `path` (read-only), one-line errors for unreadable files."""
    store = open_existing_store(path)
    try:
        with store:
            return store.rows(**filters)
    except sqlite3.DatabaseError as exc:
        fail(f"--db: cannot read {path}: {exc}")


def check_report_target(path: Path, db: Path | None, option: str) -> None:
    """Fail (one line, exit 2) unless `path` can receive a report: never the results db (or
    one of its side files), never an existing file that is not a greenbench report, and a
    directory that exists or can be created and is writable. Writes nothing."""
    if path.is_dir():
        fail(f"{option}: {path} is a directory; give an .html file path")
    target = path.resolve()
    if db is not None:
        db_file = db.resolve()
        if target in {Path(f"{db_file}{s}") for s in _DB_SIDE_FILES}:
            fail(f"{option}: {path} is the results database {db}; give another file")
    if path.exists():
        if not path.is_file():
            fail(f"{option}: {path} exists and is not a regular file")
        if not is_greenbench_report(path):
            fail(f"{option}: {path} exists and is not a greenbench report; refusing to overwrite "
                 "it (remove it or give another path)")
        if not os.access(path, os.W_OK):
            fail(f"{option}: {path} is not writable")
    _probe_directory(target.parent, path, option)


def _probe_directory(folder: Path, path: Path, option: str) -> None:
    # Permission bits do not tell (root passes os.access everywhere, /proc refuses anyway), so
    # the folder is really created and a probe file really written, then both are removed.
    created: list[Path] = []
    try:
        missing = folder
        while not missing.exists():
            created.append(missing)
            missing = missing.parent
        if not missing.is_dir():
            raise NotADirectoryError(20, f"{missing} is not a directory")
        for d in reversed(created):
            d.mkdir()
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        fail(f"{option}: cannot write {path}: {exc.strerror or exc}")
    finally:
        for d in created:
            try:
                d.rmdir()
            except OSError:
                pass


def report_provenance(
    db: Path, meter: Any | None = None, *, sweep_id: str | None = None, country: str | None = None
) -> dict[str, Any]:
    """The run-level provenance panel: energy backends (available or why not), software
    versions of the process writing the report, where the data came from; and, under
    "constraints", each registered constraint's report label and colour (the report reads
    them from here: it does not import the projections)."""
    statuses = meter.statuses() if meter is not None else probe_backends()
    out: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "db": str(db),
        "energy_backends": [
            {"name": s.name, "available": s.available, "reason": s.reason} for s in statuses
        ],
        "report_package_version": package_version(),
        "report_git_sha": git_sha(),
        "constraints": {
            name: {"label": spec.label, "colour": spec.colour} for name, spec in REGISTRY.items()
        },
    }
    if sweep_id is not None:
        out["sweep_id"] = sweep_id
    if country is not None:
        out["country_iso_code"] = country
    return out


def write_report(
    rows: list[dict], provenance: dict[str, Any], path: Path, *, db: Path | None = None,
    option: str = "--report", config: ReportConfig | None = None,
) -> Path:
    """Render and write the HTML report atomically; returns the path written."""
    check_report_target(path, db, option)
    html = build_report(rows, provenance, config=config)
    assert REPORT_GENERATOR in html[:4096]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside then renamed: two runners finishing together never interleave bytes,
        # a reader never sees half a report, and an interrupted write leaves the old one.
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"{option}: cannot write {path}: {exc.strerror or exc}")
    return path
