"""Real `greenbench` processes: Ctrl-C (SIGINT) mid-point, two runners sharing one db, and the
Ray executor end to end (a worker's failure included)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from projlib.cli import app
from projlib.sweep import ResultsStore, SweepConfig, SweepObserver, prepare_sweep, run_ray

_SCRIPT = Path(sys.executable).with_name("greenbench")


def _command(*args: str) -> list[str]:
    # The installed console script when present (it is what users run), else the same entry
    # point through the interpreter.
    if _SCRIPT.is_file():
        return [str(_SCRIPT), *args]
    return [sys.executable, "-c", "import sys; from projlib.cli import main; main(sys.argv[1:])",
            *args]


def _rows(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM points")]
    finally:
        conn.close()


def _wait_for_running(db: Path, proc: subprocess.Popen, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"runner exited early: {proc.communicate()}")
        if db.exists():
            try:
                running = [r for r in _rows(db) if r["status"] == "running"]
            except sqlite3.OperationalError:  # schema not created yet
                running = []
            if running:
                return running[0]
        time.sleep(0.2)
    raise AssertionError("no point started running in time")


def test_sigint_marks_point_interrupted_and_exits_130(tmp_path: Path) -> None:
    db = tmp_path / "int.db"
    # A point finished by an earlier sweep in the same db must survive the interrupt untouched.
    with ResultsStore(db) as store:
        sweep_id, _, _ = prepare_sweep(store, SweepConfig(procedures=("dense",), epochs=1))
        earlier = store.claim(sweep_id)
        store.complete(earlier, {"test_accuracy": 0.75})
    # 3000 epochs: minutes of work, so SIGINT surely lands inside the first point's training.
    proc = subprocess.Popen(
        _command("run", "--constraint", "l1", "--radius", "30", "--epochs", "3000",
                 "--db", str(db), "--report", str(tmp_path / "int.html")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        # A child inherits an ignored SIGINT (as a shell's background job does) and Python then
        # keeps ignoring it; whatever this pytest process did to its handler, the runner must
        # start with the default disposition, as from a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        running = _wait_for_running(db, proc, timeout_s=60)
        time.sleep(1.5)  # let training start (the meter window opens first)
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # the CLI dumps every thread's stack (faulthandler)
            time.sleep(2)
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"no exit 60 s after SIGINT; stdout {out[-1500:]!r}; "
                        f"stacks:\n{err[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in out and "Traceback" not in err
    rows = {r["point_id"]: r for r in _rows(db)}
    assert rows[running["point_id"]]["status"] == "interrupted"
    assert rows[running["point_id"]]["error"].startswith("interrupted by the user")
    assert rows[earlier]["status"] == "done" and rows[earlier]["test_accuracy"] == 0.75
    others = [r for pid, r in rows.items() if pid not in (earlier, running["point_id"])]
    assert others and all(r["status"] == "pending" for r in others)
    assert not (tmp_path / "int.html").exists()  # no report for an interrupted sweep


def test_two_runners_on_one_db_never_run_a_point_twice(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    args = _command("run", "--constraint", "l1", "--constraint", "l11", "--radius", "10",
                    "--radius", "30", "--epochs", "1", "--db", str(db),
                    "--report", str(tmp_path / "shared.html"))
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, (out, err)
    rows = _rows(db)
    assert len(rows) == 5  # dense + 2 constraints x 2 radii
    assert all(r["status"] == "done" for r in rows)
    # attempts counts claims: any point run by both processes would show 2
    assert all(r["attempts"] == 1 for r in rows), [(r["claimed_by"], r["attempts"]) for r in rows]
    owners = {r["claimed_by"] for r in rows}
    assert 1 <= len(owners) <= 2
    assert "<html" in (tmp_path / "shared.html").read_text(encoding="utf-8").lower()


@pytest.mark.slow
def test_ray_executor_end_to_end(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'greenbench[ray]')")
    db, report = tmp_path / "ray.db", tmp_path / "ray.html"
    # One local instance for both halves (starting Ray costs ~10 s on 2 cores): the CLI joins it.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = CliRunner().invoke(app, [
            "run", "--executor", "ray", "--constraint", "l11", "--radius", "30", "--epochs", "1",
            "--db", str(db), "--report", str(report),
        ])
        # Registered for other data than the workers find: train() raises inside the worker;
        # the driver records it.
        failing = SweepConfig(constraints=("l1",), radii=(30.0,), epochs=1)
        with ResultsStore(db) as store:
            bad_id, bad_configs, _ = prepare_sweep(store, failing,
                                                   fingerprints={"digits": "0" * 64})
            bad = run_ray(store, bad_id, bad_configs, country_iso_code="FRA")
            bad_rows = store.rows(sweep_id=bad_id)
            # Ctrl-C in the driver while a task is in flight (raised from the observer hook,
            # right after the first submission): the task is cancelled, its point interrupted.
            slow = SweepConfig(constraints=("l1",), radii=(30.0,), epochs=500)
            slow_id, slow_configs, _ = prepare_sweep(store, slow)
            with pytest.raises(KeyboardInterrupt):
                run_ray(store, slow_id, slow_configs, observer=_InterruptOnStart())
            slow_counts = store.counts(slow_id)
    finally:
        ray.shutdown()
    assert result.exit_code == 0, result.output
    assert "executor ray" in result.output and report.is_file()
    good = [r for r in _rows(db) if r["epochs"] == 1 and r["layers_json"] is not None]
    assert sorted(r["procedure"] for r in good) == ["dense", "projected"]
    for r in good:
        assert r["status"] == "done" and r["attempts"] == 1 and r["device_name"]
        assert 0 <= r["test_accuracy"] <= 1 and r["maccs_structured"] <= r["maccs_dense"]
    assert bad.failed == len(bad_rows) == 2
    assert all(r["status"] == "failed" for r in bad_rows)
    # the worker's own exception text is stored, not Ray's wrapper around it
    assert all("is not the data this run was registered with" in r["error"].splitlines()[0]
               for r in bad_rows)
    assert slow_counts["interrupted"] == 1 and slow_counts["pending"] == 1
    assert slow_counts["running"] == 0 and slow_counts["done"] == 0


class _InterruptOnStart(SweepObserver):
    def point_started(self, point_id: str, config: Any) -> None:
        raise KeyboardInterrupt
