"""Hostile and careless input: nothing a user typed may destroy or mis-attribute results.

Each test names the class of mistake it guards against; every refusal is one line on stderr,
exit code 2, and leaves every file as it was (compared by hash).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from projlib.cli import app
from projlib.sweep import ResultsStore

from .helpers import one_line_exit_2, sha

runner = CliRunner()
_QUICK = ["--procedure", "dense", "--epochs", "1"]


# ------------------------------------------------------------------ 1. report over the db


def test_report_over_its_own_db_is_refused(done_db: Path, tmp_path: Path) -> None:
    before = sha(done_db)
    one_line_exit_2(runner.invoke(app, ["report", "--db", str(done_db), "-o", str(done_db)]),
                     "--output", "is the results database")
    assert sha(done_db) == before
    link = tmp_path / "link.html"
    link.symlink_to(done_db)  # the same file under another name
    one_line_exit_2(runner.invoke(app, ["report", "--db", str(done_db), "-o", str(link)]),
                     "is the results database")
    assert sha(done_db) == before
    assert runner.invoke(app, ["runs", "--db", str(done_db)]).exit_code == 0


def test_run_with_report_equal_to_db_is_refused_before_training(tmp_path: Path) -> None:
    db = tmp_path / "y.db"
    result = runner.invoke(app, ["run", *_QUICK, "--db", str(db), "--report", str(db)])
    one_line_exit_2(result, "--report", "is the results database")
    assert not db.exists()


def test_report_never_overwrites_a_file_that_is_not_a_report(done_db: Path,
                                                             tmp_path: Path) -> None:
    notes = tmp_path / "notes.html"
    notes.write_text("<html>my own notes</html>")
    one_line_exit_2(runner.invoke(app, ["report", "--db", str(done_db), "-o", str(notes)]),
                     "not a greenbench report")
    assert notes.read_text() == "<html>my own notes</html>"
    # A report it wrote itself is rewritten in place.
    out = tmp_path / "r.html"
    assert runner.invoke(app, ["report", "--db", str(done_db), "-o", str(out)]).exit_code == 0
    assert runner.invoke(app, ["report", "--db", str(done_db), "-o", str(out)]).exit_code == 0


def test_report_write_is_atomic(done_db: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r.html"
    assert runner.invoke(app, ["report", "--db", str(done_db), "-o", str(out)]).exit_code == 0
    before = out.read_bytes()

    def broken_write(self: Path, *args: object, **kwargs: object) -> int:
        self.write_bytes(b"<!DOCTYPE html>\n<half")  # the crash happens mid-write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", broken_write)
    one_line_exit_2(runner.invoke(app, ["report", "--db", str(done_db), "-o", str(out)]),
                     "No space left")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temp file left


# ------------------------------------------------------------------ 3. read-only commands


@pytest.mark.parametrize("command", [["runs"], ["report", "-o", "out.html"]])
def test_read_only_commands_never_touch_a_foreign_db(tmp_path: Path, command: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE points (point_id TEXT, status TEXT, foo TEXT)")
    conn.commit()
    conn.close()
    empty = tmp_path / "empty.db"
    empty.touch()
    for path, why in ((foreign, "not a greenbench results database"), (empty, "empty file")):
        before = sha(path)
        one_line_exit_2(runner.invoke(app, [*command, "--db", str(path)]), "--db", why)
        assert sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "foreign.db"]


def test_run_refuses_an_existing_file_that_is_not_a_db(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    one_line_exit_2(runner.invoke(app, ["run", *_QUICK, "--db", str(empty), "--report",
                                         str(tmp_path / "r.html")]), "--db", "empty file")
    assert empty.stat().st_size == 0 and not (tmp_path / "r.html").exists()


def test_read_only_commands_leave_a_db_byte_identical(done_db: Path, tmp_path: Path) -> None:
    store_files = sorted(p.name for p in done_db.parent.iterdir())
    before = sha(done_db)
    assert runner.invoke(app, ["runs", "--db", str(done_db), "--format", "json"]).exit_code == 0
    out = tmp_path / "r.html"
    assert runner.invoke(app, ["report", "--db", str(done_db), "-o", str(out)]).exit_code == 0
    assert sha(done_db) == before
    assert sorted(p.name for p in done_db.parent.iterdir()) == store_files


def test_corrupt_db_is_one_line_for_every_command(done_db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.db"
    with ResultsStore(bad) as store:
        store.register_sweep("s", {}, [(f"p{i}", {"dataset": "digits", "x": "y" * 400})
                                       for i in range(300)])
    data = bytearray(bad.read_bytes())
    data[4096 * 3: 4096 * 4] = bytes(range(256)) * 16
    bad.write_bytes(bytes(data))
    for command in (["runs"], ["report", "-o", str(tmp_path / "r.html")],
                    ["run", *_QUICK, "--report", str(tmp_path / "r2.html")]):
        one_line_exit_2(runner.invoke(app, [*command, "--db", str(bad)]), "--db")


# ------------------------------------------------------------------ 4. validate before work


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seeds", "1000000000"], "--seeds: must be between 1 and 10,000"),
        (["--seeds", "100000000000000000000"], "--seeds"),
        (["--epochs", "100000000000000000000"], "--epochs"),
        (["--retrain-epochs", "100000000000000000000", "--procedure", "lottery"],
         "--retrain-epochs"),
        (["--batch-size", "100000000000000000000"], "--batch-size"),
        (["--seeds", "100", "--constraint", "l1", "--radius", "1",
          "--radius", "2", "--radius", "3", "--radius", "4", "--max-points", "50"],
         "--max-points: this sweep has 500 points"),
    ],
)
def test_sizes_are_bounded_before_anything_is_written(tmp_path: Path, args: list[str],
                                                      needle: str) -> None:
    db = tmp_path / "g.db"
    result = runner.invoke(app, ["run", *args, "--db", str(db), "--report",
                                 str(tmp_path / "r.html")])
    one_line_exit_2(result, needle)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("report", ["/proc/x/r.html", "{file}/r.html", "{file}/sub/r.html"])
def test_unwritable_report_path_is_refused_before_training(tmp_path: Path, report: str) -> None:
    plain = tmp_path / "text.txt"
    plain.write_text("x")
    db = tmp_path / "g.db"
    result = runner.invoke(app, ["run", *_QUICK, "--db", str(db), "--report",
                                 report.format(file=plain)])
    one_line_exit_2(result, "--report", "cannot write")
    assert not db.exists()


def test_report_output_under_a_file_is_one_line(done_db: Path, tmp_path: Path) -> None:
    plain = tmp_path / "text.txt"
    plain.write_text("x")
    one_line_exit_2(runner.invoke(app, ["report", "--db", str(done_db), "-o",
                                         str(plain / "r.html")]), "--output", "not a directory")


def test_layers_pattern_matching_nothing_is_refused_up_front(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('procedure = "projected"\nconstraint = "l1"\nradius = 10.0\n'
                   '[train]\nlayers = ["no.such.layer"]\n')
    db = tmp_path / "g.db"
    result = runner.invoke(app, ["run", str(cfg), "--epochs", "1", "--db", str(db), "--report",
                                 str(tmp_path / "r.html")])
    one_line_exit_2(result, "'no.such.layer' matches no weight")
    assert not db.exists()


# ------------------------------------------------------------------ 5./6. config files


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not valid TOML"),
        (b"db = 5\n", "config: db must be a string"),
        (b"report = [1]\n", "config: report must be a string"),
        (b'retry_failed = "no"\n', "config: retry_failed must be true/false"),
        (b'download = "yes"\n', "config: download must be true/false"),
        (b"data_dir = 5\n", "config: data_dir must be a string"),
        (b'[train]\nlr = "fast"\n', "config: train.lr must be a number"),
        (b'constraint = "l1"\n[radius]\nl1 = [5.0]\nl11 = [3.0]\n',
         "--radius: l11 not among the swept constraints"),
    ],
)
def test_config_values_need_real_types(tmp_path: Path, text: bytes, needle: str) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_bytes(text)
    result = runner.invoke(app, ["run", str(cfg), "--epochs", "1", "--db",
                                 str(tmp_path / "g.db"), "--report", str(tmp_path / "r.html")])
    one_line_exit_2(result, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_unknown_country_is_refused_with_the_list_source(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", *_QUICK, "--country", "ZZZ", "--db",
                                 str(tmp_path / "g.db")])
    one_line_exit_2(result, "--country: 'ZZZ'", "global_energy_mix")


# ------------------------------------------------------------------ 8. small ones


def test_runs_on_a_directory_says_so(tmp_path: Path) -> None:
    one_line_exit_2(runner.invoke(app, ["runs", "--db", str(tmp_path)]), "is a directory")


def test_report_output_directory_names_output(done_db: Path, tmp_path: Path) -> None:
    one_line_exit_2(runner.invoke(app, ["report", "--db", str(done_db), "-o", str(tmp_path)]),
                     "--output:", "is a directory")


def test_report_says_when_points_run_in_another_process(done_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    db.write_bytes(done_db.read_bytes())
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO points (point_id, status, dataset, model, procedure, attempts) "
                 "VALUES ('other', 'running', 'digits', 'mlp', 'dense', 1)")
    conn.commit()
    conn.close()
    out = tmp_path / "r.html"
    assert runner.invoke(app, ["report", "--db", str(db), "-o", str(out)]).exit_code == 0
    assert "1 point still running in another process" in out.read_text(encoding="utf-8")
