"""ResultsStore: schema, point lifecycle, atomic claiming, requeue and error paths."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from projlib import schema
from projlib.sweep import (
    ResultsStore,
    StoreError,
    SweepConfig,
    canonical_config,
    owner_token,
    point_id,
)
from projlib.sweep.store import APPLICATION_ID, SCHEMA_VERSION


def _register(store: ResultsStore, n_radii: int = 3) -> tuple[str, list[str]]:
    sweep = SweepConfig(constraints=("l1",), radii=tuple(float(r + 1) for r in range(n_radii)))
    ids = [point_id(c) for c in sweep.points()]
    pairs = [(point_id(c), canonical_config(c)) for c in sweep.points()]
    store.register_sweep(sweep.sweep_id(), sweep.to_dict(), pairs)
    return sweep.sweep_id(), ids


def test_schema_wal_and_columns(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        sweep_id, ids = _register(store)
        rows = store.rows()
    conn = sqlite3.connect(tmp_path / "r.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = [r[1] for r in conn.execute("PRAGMA table_info(points)")]
    assert cols == [name for name, _ in schema.sql_columns()]
    assert len(rows) == len(ids) == 4
    assert {r["status"] for r in rows} == {"pending"}
    # config columns are filled at registration, measurements stay NULL (= not measured)
    dense = next(r for r in rows if r["procedure"] == "dense")
    assert dense["dataset"] == "digits" and dense["constraint"] is None
    assert all(dense[c] is None for c in schema.metric_columns())


def test_register_is_idempotent_and_keeps_results(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        sweep_id, ids = _register(store)
        pid = store.claim(sweep_id)
        store.complete(pid, {"test_accuracy": 0.5, "energy_j": None})
        sweep = SweepConfig(constraints=("l1",), radii=(1.0, 2.0, 3.0))
        again = store.register_sweep(
            sweep_id, sweep.to_dict(), [(point_id(c), canonical_config(c)) for c in sweep.points()]
        )
        assert again == 0
        row = store.get(pid)
    assert row["status"] == "done" and row["test_accuracy"] == 0.5 and row["energy_j"] is None


def test_lifecycle_claim_complete_fail_interrupt(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        sweep_id, ids = _register(store)
        claimed = [store.claim(sweep_id, "me:1") for _ in ids]
        assert claimed == ids  # expansion order
        assert store.claim(sweep_id) is None
        store.complete(claimed[0], {"test_accuracy": 0.9, "maccs_structured": 123})
        store.fail(claimed[1], "RuntimeError: boom")
        store.interrupt([claimed[2]])
        counts = store.counts(sweep_id)
        assert counts == {"pending": 0, "running": 1, "done": 1, "failed": 1, "interrupted": 1}
        row = store.get(claimed[1])
        assert row["error"] == "RuntimeError: boom" and row["finished_at"] is not None
        assert store.get(claimed[0])["claimed_by"] == "me:1"
        assert store.get(claimed[0])["attempts"] == 1


def test_requeue_resumes_unfinished_but_not_done(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        sweep_id, ids = _register(store)
        a, b, c, d = (store.claim(sweep_id, owner_token()) for _ in ids)
        store.complete(a, {"test_accuracy": 0.9})
        store.fail(b, "x")
        store.interrupt([c])
        # d stays "running" and its owner (this process) is alive: not requeued
        assert store.requeue(sweep_id, retry_failed=False) == 1
        assert store.get(b)["status"] == "failed" and store.get(c)["status"] == "pending"
        assert store.requeue(sweep_id) == 1
        assert store.get(a)["status"] == "done" and store.get(d)["status"] == "running"


def test_requeue_recovers_points_of_a_dead_runner(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_owner = f"{owner_token().rpartition(':')[0]}:{dead.stdout.strip()}"
    with ResultsStore(tmp_path / "r.db") as store:
        sweep_id, ids = _register(store, 1)
        pid = store.claim(sweep_id, dead_owner)
        remote = store.claim(sweep_id, "some-other-host:1")
        assert store.requeue(sweep_id) == 1
        assert store.get(pid)["status"] == "pending"
        assert store.get(remote)["status"] == "running"  # cannot tell: presumed alive


def test_concurrent_claims_never_share_a_point(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with ResultsStore(path) as store:
        sweep_id, ids = _register(store, 30)
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        # one connection per thread, as separate processes would have
        with ResultsStore(path) as own:
            while (pid := own.claim(sweep_id, f"t:{n}")) is not None:
                with lock:
                    claimed.append(pid)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)
    with ResultsStore(path) as store:
        assert all(r["attempts"] == 1 for r in store.rows())


def test_complete_rejects_unknown_columns(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        sweep_id, _ = _register(store, 1)
        pid = store.claim(sweep_id)
        with pytest.raises(ValueError, match="metrics: unknown columns"):
            store.complete(pid, {"status": "done"})
        with pytest.raises(ValueError, match="status must be one of"):
            store.rows(status="finished")


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_text("this is not sqlite, just text " * 100)
    with pytest.raises(StoreError, match="db: cannot use .*notes.db"):
        ResultsStore(bad)
    with pytest.raises(StoreError, match="is a directory"):
        ResultsStore(tmp_path)
    with pytest.raises(ValueError, match="busy_timeout_s"):
        ResultsStore(tmp_path / "x.db", busy_timeout_s=0)


def _v1_store(path: Path) -> None:
    # The first, unversioned layout: the three tables, no application_id, no user_version,
    # and only the columns greenbench 0.1 wrote.
    v1 = [(n, t) for n, t in schema.sql_columns() if n in schema.names(version=1)]
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE points ({', '.join(f'{chr(34)}{n}{chr(34)} {t}' for n, t in v1)})")
    conn.execute("CREATE TABLE sweeps (sweep_id TEXT PRIMARY KEY, config_json TEXT NOT NULL, "
                 "created_at TEXT NOT NULL)")
    conn.execute("CREATE TABLE sweep_points (sweep_id TEXT NOT NULL, point_id TEXT NOT NULL, "
                 "ordinal INTEGER NOT NULL, PRIMARY KEY (sweep_id, point_id))")
    conn.execute("INSERT INTO points (point_id, status, energy_j) VALUES ('abc', 'done', 1.5)")
    conn.commit()
    conn.close()


def test_v1_store_read_as_is_and_migrated_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v1_store(path)
    before = path.read_bytes()
    with ResultsStore(path, read_only=True) as store:
        row = store.get("abc")
        assert store.schema_version == 1
    assert row["status"] == "done" and row["energy_j"] == 1.5 and row["warmup_time_s"] is None
    assert path.read_bytes() == before  # a reader writes nothing, not even WAL mode
    with ResultsStore(path) as store:
        row = store.get("abc")
        assert store.schema_version == SCHEMA_VERSION
    assert row["status"] == "done" and row["energy_j"] == 1.5 and row["attempts"] == 0
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_older_versioned_store_gains_the_newer_columns(tmp_path: Path) -> None:
    # A version-2 db (no train_step, val_accuracy, layer_radii_json) is read as is and
    # migrated by the next writer.
    path = tmp_path / "v2.db"
    with ResultsStore(path) as store:
        store.register_sweep("s", {}, [("abc", {"dataset": "digits"})])
    conn = sqlite3.connect(path)
    for name in ("train_step", "val_accuracy", "layer_radii_json"):
        conn.execute(f"ALTER TABLE points DROP COLUMN {name}")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    with ResultsStore(path, read_only=True) as store:
        assert store.schema_version == 2 and store.get("abc")["train_step"] is None
        assert store.get("abc")["val_accuracy"] is None
    with ResultsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
    conn = sqlite3.connect(path)
    have = {r[1] for r in conn.execute("PRAGMA table_info(points)")}
    assert {"train_step", "val_accuracy", "layer_radii_json"} <= have
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    conn.close()


@pytest.mark.parametrize("old,newer", [
    (3, {"epoch_time_median_s", "epoch_time_noisy", "energy_runs", "bytes_lowrank"}),
    (4, {"params_lowrank", "bytes_lowrank"}),
])
def test_older_store_reads_its_rows_with_the_newer_columns_not_measured(
        tmp_path: Path, old: int, newer: set[str]) -> None:
    # A version-3 db (before per-epoch spread) or version-4 db (before the factorised costs):
    # its finished rows open as they are, the newer columns read as not measured (None, never
    # 0), and the next writer adds them.
    path = tmp_path / f"v{old}.db"
    with ResultsStore(path) as store:
        store.register_sweep("s", {}, [("abc", {"dataset": "digits"})])
        store.complete(store.claim("s"), {"test_accuracy": 0.9, "wall_time_s": 1.5})
    added = [n for v in range(old + 1, SCHEMA_VERSION + 1) for n in schema.names(version=v)]
    assert newer <= set(added)
    conn = sqlite3.connect(path)
    for name in added:
        conn.execute(f'ALTER TABLE points DROP COLUMN "{name}"')
    conn.execute(f"PRAGMA user_version={old}")
    conn.commit()
    conn.close()
    with ResultsStore(path, read_only=True) as store:
        row = store.get("abc")
        assert store.schema_version == old and row["wall_time_s"] == 1.5
        assert all(row[name] is None for name in added)
    with ResultsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        row = store.get("abc")
        assert row["test_accuracy"] == 0.9 and all(row[name] is None for name in added)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("read_only", [True, False])
def test_foreign_sqlite_file_is_refused_untouched(tmp_path: Path, read_only: bool) -> None:
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE points (point_id TEXT, status TEXT, foo TEXT)")
    conn.execute("INSERT INTO points VALUES ('x', 'done', 'bar')")
    conn.commit()
    conn.close()
    before = _sha(path)
    with pytest.raises(StoreError, match="not a greenbench results database"):
        ResultsStore(path, read_only=read_only)
    assert _sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.db"]


@pytest.mark.parametrize("read_only", [True, False])
def test_empty_file_is_refused_and_stays_empty(tmp_path: Path, read_only: bool) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(StoreError, match="empty file"):
        ResultsStore(path, read_only=read_only)
    assert path.stat().st_size == 0


def test_other_application_and_newer_schema_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA application_id=1234")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="another application"):
        ResultsStore(other, read_only=True)
    newer = tmp_path / "newer.db"
    ResultsStore(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer greenbench"):
        ResultsStore(newer)


def test_read_only_store_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        ResultsStore(tmp_path / "none.db", read_only=True)
    assert not (tmp_path / "none.db").exists()


def test_corrupted_page_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    with ResultsStore(path) as store:
        store.register_sweep("s", {}, [(f"p{i}", {"dataset": "digits", "config_json": "x" * 500})
                                       for i in range(200)])
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page : 4 * page] = bytes(range(256)) * (page // 256)  # garbage over a b-tree page
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        with ResultsStore(path, read_only=True) as store:
            store.rows()

