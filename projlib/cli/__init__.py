"""The `greenbench` command line (Typer): run, report, runs, env, summary.

The only layer of greenbench that touches files, the environment and the terminal. Expected
failures (bad option values, unknown names, unreadable config or db) print one line on stderr
and exit with code 2; Ctrl-C exits with 130 (during a sweep after marking the point in flight
interrupted, and while the modules are still loading without a traceback); a sweep with
failed points exits with 1 after writing its report.

Defaults (relative to the working directory): results db `reports/greenbench.db` (*.db is
git-ignored), HTML report `reports/greenbench.html`. Re-running a command resumes: points whose
config hash is already done in the db are skipped.

This module imports nothing heavy: the console script imports it before calling `main`, and
`main` loads the app (torch, the projections, Typer) inside its own handler. `app` is loaded on
first access.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main", "EXIT_INTERRUPTED"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C'd program


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (`greenbench`, `python -m projlib.cli`)."""
    try:
        from projlib.cli.commands import run_app  # noqa: PLC0415 - loads torch: seconds
    except KeyboardInterrupt:
        print("Interrupted while loading; nothing was run.", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    try:
        run_app(argv)
    except KeyboardInterrupt:  # between loading and the command's own handling
        print("Interrupted.", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


def __getattr__(name: str) -> Any:
    if name == "app":
        from projlib.cli.commands import app  # noqa: PLC0415 - see the module docstring

        return app
    raise AttributeError(f"module 'projlib.cli' has no attribute {name!r}")
