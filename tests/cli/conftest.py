"""Fixtures shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from projlib.cli import app


@pytest.fixture(scope="module")
def done_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real one-point db (dense digits, 1 epoch), as `greenbench run` writes it (WAL mode).
    Tests must not change it: copy it first."""
    tmp = tmp_path_factory.mktemp("done")
    db = tmp / "results.db"
    result = CliRunner().invoke(app, ["run", "--procedure", "dense", "--epochs", "1",
                                      "--db", str(db), "--report", str(tmp / "r.html")])
    assert result.exit_code == 0, result.output
    return db
