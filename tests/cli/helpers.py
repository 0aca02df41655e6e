"""Assertions shared by the CLI tests."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha(path: Path) -> str:
    """sha256 of a file's bytes (to prove a refused command changed nothing)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_exit_2(result, *needles: str) -> str:  # noqa: ANN001 - click Result
    """The command failed with exit 2 and exactly one "Error: ..." line on stderr holding
    every needle, and no traceback anywhere; returns that line."""
    assert result.exit_code == 2, (result.output, result.stderr)
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("Error: "), err[:3000]
    for needle in needles:
        assert needle in err, err
    assert "Traceback" not in result.output
    return err
