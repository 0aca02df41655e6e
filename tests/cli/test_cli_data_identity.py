"""A point's identity includes the data it read: results computed on other data are never
reused, and moving the same files keeps them."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from projlib.cli import app
from projlib.sweep import ResultsStore

runner = CliRunner()


def _run(data_dir: Path, db: Path, tmp_path: Path):  # noqa: ANN202 - click Result
    return runner.invoke(app, [
        "run", "--dataset", "fashion-mnist", "--model", "lenet300", "--procedure", "dense",
        "--epochs", "1", "--batch-size", "16", "--no-verify-data", "--data-dir", str(data_dir),
        "--db", str(db), "--report", str(tmp_path / "r.html"),
    ])


def test_other_data_is_never_reused_moved_data_is(tmp_path: Path, idx_writer,
                                                  no_system_data) -> None:
    db = tmp_path / "g.db"
    fake = tmp_path / "fake"
    idx_writer(fake, n_train=64, n_test=16, seed=1)
    first = _run(fake, db, tmp_path)
    assert first.exit_code == 0, first.output
    assert "1 points (0 already done)" in first.output

    other = tmp_path / "other"
    idx_writer(other, n_train=64, n_test=16, seed=2)  # same names, other images
    second = _run(other, db, tmp_path)
    assert second.exit_code == 0, second.output
    assert "1 points (0 already done)" in second.output

    moved = tmp_path / "moved"
    shutil.move(fake, moved)
    third = _run(moved, db, tmp_path)
    assert third.exit_code == 0, third.output
    assert "1 points (1 already done)" in third.output

    with ResultsStore(db, read_only=True) as store:
        rows = store.rows()
    assert len(rows) == 2 and len({r["data_fingerprint"] for r in rows}) == 2
    assert all(r["data_variant"] == "custom (not verified)" for r in rows)


def test_unverified_fake_data_is_refused_by_default(tmp_path: Path, idx_writer,
                                                   no_system_data) -> None:
    fake = tmp_path / "fake"
    idx_writer(fake, n_train=64, n_test=16)
    result = runner.invoke(app, ["run", "--dataset", "mnist", "--model", "lenet300",
                                 "--procedure", "dense", "--epochs", "1", "--data-dir", str(fake),
                                 "--db", str(tmp_path / "g.db")])
    assert result.exit_code == 2
    assert "--dataset: mnist:" in result.stderr and "--no-verify-data" in result.stderr
    assert not (tmp_path / "g.db").exists()
