"""ResultsStore: schema, point lifecycle, atomic claiming, requeue and error paths."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from projlib.sweep import (
    COLUMNS,
    METRIC_COLUMNS,
    ResultsStore,
    StoreError,
    SweepConfig,
    canonical_config,
    owner_token,
    point_id,
)


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
    assert cols == [name for name, _ in COLUMNS]
    assert len(rows) == len(ids) == 4
    assert {r["status"] for r in rows} == {"pending"}
    # config columns are filled at registration, measurements stay NULL (= not measured)
    dense = next(r for r in rows if r["procedure"] == "dense")
    assert dense["dataset"] == "digits" and dense["constraint"] is None
    assert all(dense[c] is None for c in METRIC_COLUMNS)


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


def test_old_store_gains_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE points (point_id TEXT PRIMARY KEY, status TEXT NOT NULL)')
    conn.execute("INSERT INTO points VALUES ('abc', 'done')")
    conn.commit()
    conn.close()
    with ResultsStore(path) as store:
        row = store.get("abc")
    assert row["status"] == "done" and row["energy_j"] is None and row["attempts"] == 0
