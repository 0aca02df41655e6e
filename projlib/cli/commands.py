"""The `greenbench` Typer app (run, report, runs, env, summary) and what `main` runs.

The only layer of greenbench that touches files, the environment and the terminal. Expected
failures (bad option values, unknown names, unreadable config or db) print one line on stderr
and exit with code 2; Ctrl-C during a sweep exits with 130 after marking the point in flight
interrupted; a sweep with failed points exits with 1 after writing its report.

Defaults (relative to the working directory): results db `reports/greenbench.db` (*.db is
git-ignored), HTML report `reports/greenbench.html`. Re-running a command resumes: points whose
config hash is already done in the db are skipped.
"""

from __future__ import annotations

import faulthandler
import signal
import sys

import typer

from projlib.cli import EXIT_INTERRUPTED
from projlib.cli.common import EXIT_USAGE, one_line
from projlib.cli.inspect import env, report, runs
from projlib.cli.run import run
from projlib.cli.summary import summary

__all__ = ["app", "run_app"]

app = typer.Typer(
    name="greenbench",
    help="Sparse networks trained with projections onto convex constraints, honestly measured.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
)
app.command()(run)
app.command()(report)
app.command()(runs)
app.command()(env)
app.command()(summary)


def run_app(argv: list[str] | None = None) -> None:
    """Run the app as `greenbench` (see `projlib.cli.main`). Click's own usage errors
    (unknown option, non-integer value) are reduced to one line as well, instead of the usage
    block."""
    command = typer.main.get_command(app)
    if hasattr(signal, "SIGUSR1"):
        # `kill -USR1 <pid>` prints every thread's stack on stderr: how to see what a process
        # that does not stop on Ctrl-C is waiting for.
        try:
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        except (AttributeError, OSError, ValueError):  # stderr without a file descriptor
            pass
    try:
        code = command.main(args=argv, prog_name="greenbench", standalone_mode=False)
    except typer.TyperException as exc:  # typer's (vendored) click usage errors derive from it
        typer.echo(f"Error: {one_line(exc.format_message())}", err=True)
        sys.exit(EXIT_USAGE if exc.exit_code in (None, 1, 2) else exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
