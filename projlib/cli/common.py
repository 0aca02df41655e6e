"""Helpers shared by the commands: one-line errors, the store, report writing."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer

from projlib.cli.paths import is_db_file, path_problem, write_atomically
from projlib.measure import probe_backends
from projlib.projections import REGISTRY
from projlib.report import REPORT_GENERATOR, ReportConfig, build_report, is_greenbench_report
from projlib.report.constraints import ConstraintInfo
from projlib.sweep import ResultsStore, StoreError
from projlib.sweep.provenance import git_sha, package_version

__all__ = [
    "EXIT_USAGE",
    "check_output_target",
    "check_path",
    "registry_constraints",
    "check_report_target",
    "fail",
    "one_line",
    "open_existing_store",
    "read_rows",
    "report_provenance",
    "write_output",
    "write_report",
]

EXIT_USAGE = 2  # bad options / input, the click convention
_MESSAGE_MAX = 2000  # characters of an error line (the head and the tail are kept)


def one_line(message: str) -> str:
    """`message` on one line, at most about 2,000 characters: whitespace runs become one
    space, and a longer message keeps its head (the option, the value) and its tail (what to
    do), eliding the middle (a 10 MB value echoed in it must not become a 10 MB line)."""
    text = " ".join(message.split())
    if len(text) <= _MESSAGE_MAX:
        return text
    head, tail = text[: _MESSAGE_MAX * 2 // 3], text[-(_MESSAGE_MAX // 4):]
    return f"{head} … ({len(text) - len(head) - len(tail):,} characters elided) … {tail}"


def fail(message: str) -> NoReturn:
    """Print one line on stderr and exit with code 2 (no traceback)."""
    typer.echo(f"Error: {one_line(message)}", err=True)
    raise typer.Exit(EXIT_USAGE)


def open_existing_store(path: Path, option: str = "--db") -> ResultsStore:
    """Open a results db read-only: a missing file, a directory or a file that is not a
    greenbench db is an error, and nothing is ever written to it."""
    check_path(path, option)
    if path.is_dir():
        fail(f"{option}: {path} is a directory, not a results database")
    if path.is_symlink() and not path.exists():
        fail(f"{option}: {path} is a symbolic link to {os.readlink(path)}, which does not "
             "exist; remove the link or give another path")
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
    """`check_output_target` for an HTML report."""
    check_output_target(path, db, option, kind="greenbench report", is_ours=is_greenbench_report)


def check_output_target(
    path: Path, db: Path | None, option: str, *, kind: str, is_ours: Callable[[Path], bool]
) -> None:
    """The one rule for what a command may write (`run --report`, `report -o`, `summary -o`):
    fail (one line, exit 2) unless `path` is a usable name, is not the results db (or one of
    its side files, by name or by inode through links), is either absent or a regular file
    that `is_ours` recognises as a `kind` greenbench wrote, and lies in a directory that
    exists or can be created and is writable. Writes nothing."""
    check_path(path, option)
    if path.is_dir():
        fail(f"{option}: {path} is a directory; give a file path")
    if db is not None and is_db_file(path, db):
        fail(f"{option}: {path} is the results database {db}; give another file")
    if path.exists():
        if not path.is_file():
            fail(f"{option}: {path} exists and is not a regular file")
        if not is_ours(path):
            fail(f"{option}: {path} exists and is not a {kind}; refusing to overwrite "
                 "it (remove it or give another path)")
        if not os.access(path, os.W_OK):
            fail(f"{option}: {path} is not writable")
    _probe_directory(path.resolve().parent, path, option)


def write_output(text: str, path: Path, option: str) -> None:
    """Write `text` to `path` atomically (see `write_atomically`); one line on failure. Call
    `check_output_target` first."""
    try:
        write_atomically(path, text)
    except OSError as exc:
        fail(f"{option}: cannot write {path}: {exc.strerror or exc}")


def check_path(path: Path, option: str) -> None:
    """Fail (one line) when `path` is not a usable file name (`path_problem`)."""
    problem = path_problem(path)
    if problem is not None:
        fail(f"{option}: {problem}")


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


def registry_constraints() -> dict[str, ConstraintInfo]:
    """The `ConstraintInfo` of every registered constraint, in registry order: what a report
    (through its provenance) and `greenbench summary` know of each constraint."""
    return {name: ConstraintInfo.from_spec(spec) for name, spec in REGISTRY.items()}


def report_provenance(
    db: Path, meter: Any | None = None, *, sweep_id: str | None = None, country: str | None = None
) -> dict[str, Any]:
    """The run-level provenance panel: energy backends (available or why not), software
    versions of the process writing the report, where the data came from; and, under
    "constraints", each registered constraint's `ConstraintInfo` as JSON (the report reads
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
        "constraints": {name: info.to_json() for name, info in registry_constraints().items()},
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
    if REPORT_GENERATOR not in html[:4096]:
        # Without its marker the file would not be recognised as a report next time, and every
        # later run would refuse to replace it: write nothing (checked under `python -O` too).
        raise RuntimeError("the rendered report lacks its generator marker; nothing written")
    write_output(html, path, option)
    return path
