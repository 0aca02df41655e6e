"""Hostile and careless input, second pass (issue 20): every case failed before its fix.

The general rules are tested over every command that uses them: what an output may replace
(`run --report`, `report -o`, `summary -o`), which file names are usable (every path option),
how a db is opened for reading (`runs`, `report`, `summary`), what a point's identity is.
Every refusal is one line on stderr and exit code 2, and leaves every file as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from projlib.cli import app
from projlib.cli.summary import MARKER
from projlib.sweep import ResultsStore
from projlib.sweep.config import NON_IDENTITY_FIELDS, point_id
from projlib.training import TrainConfig

from .helpers import one_line_exit_2, sha

runner = CliRunner()
_FAST = ["--no-measure-inference", "--threads", "1"]
_QUICK = ["--procedure", "dense", "--epochs", "1", *_FAST]
_REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(done_db: Path, tmp_path: Path) -> Path:
    """A private copy of the one-point db (tests may link to it or put it on odd media)."""
    copy = tmp_path / "a.db"
    shutil.copyfile(done_db, copy)
    return copy


# ------------------------------------------------------------------ A. what -o may replace

# every command that writes a file the user names: (argv before the target, option name)
_WRITERS = {
    "summary -o": (["summary"], "-o", "--output"),
    "report -o": (["report"], "-o", "--output"),
    "run --report": (["run", *_QUICK], "--report", "--report"),
}


def _write(command: str, db: Path, target: Path):  # noqa: ANN202 - click Result
    argv, flag, _ = _WRITERS[command]
    return runner.invoke(app, [*argv, "--db", str(db), flag, str(target)])


@pytest.mark.parametrize("command", list(_WRITERS))
def test_no_writer_replaces_the_db_through_a_hard_link(command: str, db: Path,
                                                      tmp_path: Path) -> None:
    link = tmp_path / "h.db"
    os.link(db, link)
    before = sha(db)
    one_line_exit_2(_write(command, db, link), _WRITERS[command][2], "is the results database")
    assert sha(db) == before
    assert runner.invoke(app, ["runs", "--db", str(db)]).exit_code == 0


@pytest.mark.parametrize("command", list(_WRITERS))
def test_no_writer_replaces_another_results_db(command: str, db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    shutil.copyfile(db, other)
    before = sha(other)
    one_line_exit_2(_write(command, db, other), "refusing to overwrite")
    assert sha(other) == before


@pytest.mark.parametrize("command", list(_WRITERS))
def test_no_writer_replaces_a_file_it_did_not_write(command: str, db: Path,
                                                   tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    one_line_exit_2(_write(command, db, notes), "refusing to overwrite")
    assert notes.read_text() == "# my notes\n"


def test_summary_never_replaces_a_report_nor_a_report_a_summary(db: Path, tmp_path: Path) -> None:
    html, md = tmp_path / "r.html", tmp_path / "s.md"
    assert _write("report -o", db, html).exit_code == 0
    assert _write("summary -o", db, md).exit_code == 0
    html_before, md_before = sha(html), sha(md)
    one_line_exit_2(_write("summary -o", db, html), "is not a summary greenbench wrote")
    one_line_exit_2(_write("report -o", db, md), "is not a greenbench report")
    assert (sha(html), sha(md)) == (html_before, md_before)


@pytest.mark.parametrize("fmt", ["markdown", "csv", "json"])
def test_summary_replaces_its_own_output_in_every_format(fmt: str, db: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / f"s.{fmt}"
    for _ in range(2):  # written, then recognised and replaced
        result = runner.invoke(app, ["summary", "--db", str(db), "--format", fmt, "-o",
                                     str(out)])
        assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("name", ["fashion_mnist_study_bands.md", "fashion_mnist_study_cells.md",
                                  "fashion_mnist_study_bands.csv",
                                  "fashion_mnist_study_cells.csv"])
def test_summary_replaces_the_published_tables_written_before_the_marker(
    name: str, db: Path, tmp_path: Path
) -> None:
    # studies/publish.sh rewrites these with `summary -o`: they must stay replaceable.
    out = tmp_path / name
    shutil.copyfile(_REPO / "docs" / "results" / name, out)
    fmt = "csv" if name.endswith(".csv") else "markdown"
    args = ["summary", "--db", str(db), "--format", fmt]
    if "cells" in name:
        args.append("--cells")
    result = runner.invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    # replaced by exactly what the summary prints (not appended to, not left as it was),
    # Markdown with the marker line that lets a later `summary -o` replace it again
    printed = runner.invoke(app, args)
    assert printed.exit_code == 0
    marker = f"{MARKER}\n" if fmt == "markdown" else ""
    assert out.read_text() == printed.stdout + marker


# ------------------------------------------------------------------ H. a point's identity


def _legacy_point_id(config: TrainConfig) -> str:
    # The hash before the identity rule: every field but NON_IDENTITY_FIELDS (and the fields
    # that did not exist then, left out at their defaults).
    later = {"model_source": None, "validation": 0.0, "radius_mode": "absolute"}
    cfg = {k: v for k, v in config.to_dict().items()
           if k not in NON_IDENTITY_FIELDS and not (k in later and v == later[k])}
    payload = json.dumps({"v": "greenbench-point-v1", "config": cfg}, sort_keys=True,
                         separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def test_a_point_is_identified_by_what_can_change_its_result() -> None:
    dense = TrainConfig(procedure="dense")
    for change in ({"retrain_epochs": 5}, {"groups": "rows"}, {"layers": ("2.weight",)},
                   {"constrain_first": True}, {"constrain_last": True}):
        assert point_id(TrainConfig(procedure="dense", **change)) == point_id(dense), change
    projected = {"procedure": "projected", "constraint": "l21", "radius": 5.0}
    assert point_id(TrainConfig(**projected, retrain_epochs=5)) == point_id(
        TrainConfig(**projected))
    # ... and by everything that can: lottery retrains, groups / layers select what is projected
    lottery = {"procedure": "lottery", "constraint": "l21", "radius": 5.0}
    assert point_id(TrainConfig(**lottery, retrain_epochs=5)) != point_id(TrainConfig(**lottery))
    for change in ({"groups": "rows"}, {"constrain_first": True}, {"layers": ("0.weight",)}):
        assert point_id(TrainConfig(**projected, **change)) != point_id(
            TrainConfig(**projected)), change
    # an explicit `layers` selection does not consult constrain_first / constrain_last
    chosen = dict(projected, layers=("2.weight",))
    assert point_id(TrainConfig(**chosen, constrain_first=True)) == point_id(
        TrainConfig(**chosen))


def test_points_with_default_options_keep_the_ids_of_older_dbs() -> None:
    # Rows stored before the rule are found: at the default options the hash is unchanged.
    for kwargs in ({"procedure": "dense"},
                   {"procedure": "projected", "constraint": "l11", "radius": 3.0},
                   {"procedure": "lottery", "constraint": "l1", "radius": 3.0,
                    "retrain_epochs": 4}):
        config = TrainConfig(**kwargs)
        assert point_id(config) == _legacy_point_id(config)


def test_the_dense_baseline_is_trained_once_whatever_the_unread_options(tmp_path: Path) -> None:
    db = tmp_path / "gb.db"
    first = runner.invoke(app, ["run", *_QUICK, "--db", str(db), "--report",
                                str(tmp_path / "1.html")])
    assert first.exit_code == 0, first.output
    sweep = tmp_path / "s.toml"
    sweep.write_text('[train]\ngroups = "rows"\nconstrain_first = true\nlayers = ["*.weight"]\n')
    second = runner.invoke(app, ["run", str(sweep), *_QUICK, "--retrain-epochs", "5", "--db",
                                 str(db), "--report", str(tmp_path / "2.html")])
    assert second.exit_code == 0, second.output
    assert "1 points (1 already done)" in second.output
    with ResultsStore(db, read_only=True) as store:
        rows = store.rows()
    assert len(rows) == 1
    stored = json.loads(rows[0]["config_json"])
    assert stored["retrain_epochs"] is None and stored["groups"] == "columns"


# ------------------------------------------------------------------ I. radius names


def test_a_radius_naming_no_constraint_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    one_line_exit_2(runner.invoke(app, ["run", *_QUICK, "--radius", "=5", "--db", str(db)]),
                     "--radius", "names no constraint")
    assert not db.exists()


# ------------------------------------------------------------------ 3 / F. reading never writes

_READERS = {
    "runs": ["runs"],
    "report": ["report", "-o", "{tmp}/out.html"],
    "summary": ["summary"],
}


def _read(command: str, db: Path, tmp: Path):  # noqa: ANN202 - click Result
    argv = [a.replace("{tmp}", str(tmp)) for a in _READERS[command]]
    return runner.invoke(app, [*argv, "--db", str(db)])


def _sidecars(db: Path) -> list[str]:
    return [p.name for p in db.parent.iterdir() if p.name.startswith(f"{db.name}-")]


@pytest.mark.parametrize("command", list(_READERS))
def test_readers_leave_no_side_file_on_a_wal_db(command: str, db: Path, tmp_path: Path) -> None:
    assert db.read_bytes()[18:20] == b"\x02\x02"  # greenbench dbs are WAL-mode files
    before = sha(db)
    result = _read(command, db, tmp_path)
    assert result.exit_code == 0, result.output
    assert _sidecars(db) == [] and sha(db) == before


@pytest.mark.parametrize("command", list(_READERS))
def test_readers_leave_no_side_file_on_a_foreign_wal_db(command: str, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with closing(sqlite3.connect(foreign)) as conn:  # a WAL-mode file of another program
        conn.executescript("PRAGMA journal_mode=WAL; CREATE TABLE t (x);")
    assert _sidecars(foreign) == []
    before = sha(foreign)
    one_line_exit_2(_read(command, foreign, tmp_path), "not a greenbench results database")
    assert _sidecars(foreign) == [] and sha(foreign) == before


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def _on_read_only_media(media: Path, *argv: str) -> subprocess.CompletedProcess:
    # A read-only bind mount in a private mount namespace: writes fail even for root.
    script = (f'mount --bind -o ro "{media}" "{media}" && touch "{media}/probe" 2>/dev/null '
              f'&& exit 99; exec "$@"')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-m",
                           "projlib.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


_NEEDS_UNSHARE = pytest.mark.skipif(
    not _unshare_works(), reason="needs user namespaces (unshare -rm) for a read-only mount")


@_NEEDS_UNSHARE
def test_a_db_on_read_only_media_is_read(db: Path) -> None:
    done = _on_read_only_media(db.parent, "runs", "--db", str(db), "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 2  # header + the one point
    assert _sidecars(db) == []


@_NEEDS_UNSHARE
def test_a_log_that_cannot_be_read_on_read_only_media_is_said_so(db: Path,
                                                                 tmp_path: Path) -> None:
    # A db copied with changes still in its -wal (a writer that had not checkpointed).
    media = tmp_path / "media"
    media.mkdir()
    with closing(sqlite3.connect(db, isolation_level=None)) as writer:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("UPDATE points SET error='late'")
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{db}{suffix}", media / f"a.db{suffix}")
    done = _on_read_only_media(media, "runs", "--db", str(media / "a.db"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "write-ahead log a.db-wal" in done.stderr and "write access" in done.stderr


def test_a_stale_immutable_read_is_redone_as_an_ordinary_reader(db: Path) -> None:
    # Immutable means "trusted not to change": when it changed while open, read again.
    with ResultsStore(db, read_only=True) as reader:
        assert len(reader.rows()) == 1
        with ResultsStore(db) as writer:  # a runner starts and registers a new point
            writer.register_sweep("late", {}, [("late-point", {"dataset": "digits"})])
            assert len(reader.rows()) == 2


# ------------------------------------------------------------------ B / C. unusable names

_PATH_OPTIONS = {
    "run --db": ["run", *_QUICK, "--db", "{bad}", "--report", "{tmp}/r.html"],
    "run --report": ["run", *_QUICK, "--db", "{tmp}/x.db", "--report", "{bad}"],
    "runs --db": ["runs", "--db", "{bad}"],
    "report --db": ["report", "--db", "{bad}", "-o", "{tmp}/r.html"],
    "report -o": ["report", "--db", "{db}", "-o", "{bad}"],
    "summary --db": ["summary", "--db", "{bad}"],
    "summary -o": ["summary", "--db", "{db}", "-o", "{bad}"],
    "run CONFIG": ["run", "{bad}"],
}


@pytest.mark.parametrize("where", list(_PATH_OPTIONS))
@pytest.mark.parametrize("name", ["x" * 300 + ".db", "bad\udcffname.db"],
                         ids=["300-characters", "not-utf8"])
def test_unusable_file_names_are_one_line_for_every_path_option(
    where: str, name: str, db: Path, tmp_path: Path
) -> None:
    bad = tmp_path / name
    argv = [a.replace("{bad}", str(bad)).replace("{tmp}", str(tmp_path)).replace("{db}", str(db))
            for a in _PATH_OPTIONS[where]]
    before = sorted(p.name for p in tmp_path.iterdir())
    one_line_exit_2(runner.invoke(app, argv), "too long" if len(name) > 255 else "UTF-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing left behind


def test_an_undecodable_db_name_fails_before_any_training(tmp_path: Path) -> None:
    # Before: every point trained, then a UnicodeEncodeError traceback writing the report and
    # a 0-byte temporary report left behind.
    start = time.perf_counter()
    result = runner.invoke(app, ["run", "--db", str(tmp_path / "bad\udcffname.db"),
                                 "--report", str(tmp_path / "ok2.html")])
    one_line_exit_2(result, "--db", "UTF-8")
    assert time.perf_counter() - start < 30 and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ D / E. sweep files


def test_a_deeply_nested_sweep_file_is_one_line(tmp_path: Path) -> None:
    sweep = tmp_path / "deep.toml"
    sweep.write_text("x = " + "[" * 1000 + "]" * 1000 + "\n")
    one_line_exit_2(runner.invoke(app, ["run", str(sweep), "--db", str(tmp_path / "x.db")]),
                     "config:")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("source", ["/dev/zero", "big", "fifo"])
def test_a_sweep_file_that_is_not_a_small_regular_file_is_refused_unread(
    source: str, tmp_path: Path
) -> None:
    # Before: /dev/zero was read until memory ran out; a 1 MiB file was parsed whole; a fifo
    # waited for a writer forever.
    path = Path(source)
    if source == "big":
        path = tmp_path / "big.toml"
        path.write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    elif source == "fifo":
        path = tmp_path / "sweep.toml"
        os.mkfifo(path)
    result = runner.invoke(app, ["run", str(path), *_QUICK, "--db", str(tmp_path / "x.db"),
                                 "--report", str(tmp_path / "r.html")])
    one_line_exit_2(result, "config:")
    assert not (tmp_path / "x.db").exists()


# ------------------------------------------------------------------ G. data against the model


def test_images_too_small_for_the_model_are_refused_before_any_work(
    tmp_path: Path, idx_writer
) -> None:  # noqa: ANN001 - the conftest helper
    data = tmp_path / "data"
    idx_writer(data, n_train=60, n_test=20, side=8)  # MNIST format, 8x8 images
    db = tmp_path / "x.db"
    result = runner.invoke(app, ["run", *_QUICK, "--dataset", "mnist", "--model", "convnet",
                                 "--no-verify-data", "--data-dir", str(data), "--db", str(db),
                                 "--report", str(tmp_path / "r.html")])
    one_line_exit_2(result, "convnet", "8x8")
    assert not db.exists()


# ------------------------------------------------------------------ J. messages


def test_an_enormous_value_is_echoed_cut(tmp_path: Path) -> None:
    country = "A" * 10_000_000
    result = runner.invoke(app, ["run", *_QUICK, "--country", country, "--db",
                                 str(tmp_path / "x.db")])
    err = one_line_exit_2(result, "--country")
    assert len(err) < 3000


def test_repeated_radii_are_counted_once(tmp_path: Path) -> None:
    args = [a for _ in range(100_000) for a in ("--radius", "5")]
    result = runner.invoke(app, ["run", "--constraint", "l1", *args, "--max-points", "1",
                                 "--db", str(tmp_path / "x.db")])
    one_line_exit_2(result, "this sweep has 2 points")


@pytest.mark.parametrize("command", ["run", "runs"])
def test_a_dangling_db_link_is_named_as_such(command: str, tmp_path: Path) -> None:
    link = tmp_path / "gone.db"
    link.symlink_to(tmp_path / "nowhere.db")
    argv = ["run", *_QUICK] if command == "run" else ["runs"]
    err = one_line_exit_2(runner.invoke(app, [*argv, "--db", str(link)]), "symbolic link",
                           "nowhere.db")
    assert "run `greenbench run` first" not in err
    assert not (tmp_path / "nowhere.db").exists()


# ------------------------------------------------------------------ J4. Ctrl-C while loading

# The console script does `from projlib.cli import main; main()`. The finder makes importing
# torch (the first heavy module) raise KeyboardInterrupt, or sleep so that a real SIGINT
# lands while the modules load.
_LOADING = """
import sys, time
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            if sys.argv[1] == "raise":
                raise KeyboardInterrupt
            open("loading", "w").close()  # the test signals once the import is under way
            time.sleep(60)
sys.meta_path.insert(0, Finder())
from projlib.cli import main
main(["runs", "--db", "nowhere.db"])
"""


@pytest.mark.parametrize("how", ["raise", "signal"])
def test_ctrl_c_while_modules_load_is_one_line_and_130(how: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", _LOADING, how], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if how == "signal":  # not a fixed delay: on a loaded machine startup takes longer
        deadline = time.monotonic() + 60
        while not (tmp_path / "loading").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err, err

