"""Local executor: failures recorded, Ctrl-C marks the point interrupted, resume skips done
points; the real per-point runner on digits. (The Ray executor is tested end to end in
tests/cli/test_cli_processes.py, sharing one local Ray instance with the CLI.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from projlib import schema
from projlib.sweep import (
    ResultsStore,
    SweepConfig,
    SweepObserver,
    prepare_sweep,
    run_local,
    run_point,
)
from projlib.training import TrainConfig


def _sweep() -> SweepConfig:
    return SweepConfig(constraints=("l1", "l11"), radii=(30.0,), epochs=1)


class _Recorder(SweepObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def point_started(self, point_id: str, config: TrainConfig) -> None:
        self.events.append(("start", point_id))

    def point_progress(self, point_id: str, event: dict[str, Any]) -> None:
        self.events.append(("progress", point_id))

    def point_finished(self, point_id: str, config: TrainConfig, status: str, info: dict) -> None:
        self.events.append((status, point_id))


def _fake_runner(fail_on: str | None = None, interrupt_on: str | None = None):
    calls: list[TrainConfig] = []

    def runner(config: TrainConfig, progress=None, **_: Any) -> dict[str, Any]:
        calls.append(config)
        if config.constraint == interrupt_on and config.constraint is not None:
            raise KeyboardInterrupt
        if config.constraint == fail_on and config.constraint is not None:
            raise RuntimeError(f"boom on {config.constraint}")
        progress({"phase": "train", "epoch": 1, "epochs": 1, "test_accuracy": 0.5})
        return {"test_accuracy": 0.5, "energy_j": None, "wall_time_s": 0.01}

    return runner, calls


def test_failed_point_is_recorded_and_sweep_continues(tmp_path: Path) -> None:
    runner, calls = _fake_runner(fail_on="l1")
    observer = _Recorder()
    with ResultsStore(tmp_path / "r.db") as store:
        sweep_id, configs, done = prepare_sweep(store, _sweep())
        out = run_local(store, sweep_id, configs, runner=runner, observer=observer)
        rows = {r["constraint"]: r for r in store.rows()}
    assert done == 0 and (out.done, out.failed, out.interrupted) == (2, 1, 0)
    assert len(calls) == 3
    assert rows["l1"]["status"] == "failed"
    assert rows["l1"]["error"].startswith("RuntimeError: boom on l1")
    assert "Traceback" in rows["l1"]["error"]
    assert rows["l11"]["status"] == "done" and rows["l11"]["test_accuracy"] == 0.5
    assert rows["l11"]["energy_j"] is None  # not measured stays NULL, not 0
    kinds = [k for k, _ in observer.events]
    assert kinds.count("start") == 3 and kinds.count("failed") == 1 and "progress" in kinds


def test_interrupt_marks_point_and_resume_skips_done(tmp_path: Path) -> None:
    runner, calls = _fake_runner(interrupt_on="l1")
    with ResultsStore(tmp_path / "r.db") as store:
        sweep_id, configs, _ = prepare_sweep(store, _sweep())
        with pytest.raises(KeyboardInterrupt):
            run_local(store, sweep_id, configs, runner=runner)
        counts = store.counts(sweep_id)
        assert counts["done"] == 1 and counts["interrupted"] == 1 and counts["pending"] == 1
        assert [c.procedure for c in calls] == ["dense", "projected"]
        # resume: the interrupted point is requeued, the done one is not run again
        runner2, calls2 = _fake_runner()
        sweep_id2, configs2, already = prepare_sweep(store, _sweep())
        assert sweep_id2 == sweep_id and already == 1
        out = run_local(store, sweep_id, configs2, runner=runner2)
        assert out.done == 2 and [c.constraint for c in calls2] == ["l1", "l11"]
        assert store.counts(sweep_id)["done"] == 3
        # and a third run has nothing left to do
        runner3, calls3 = _fake_runner()
        run_local(store, sweep_id, configs2, runner=runner3)
        assert calls3 == []


def test_run_point_on_digits_measures_everything(tmp_path: Path) -> None:
    cfg = TrainConfig(procedure="projected", constraint="l11", radius=30.0, epochs=1)
    events: list[dict] = []
    metrics = run_point(cfg, country_iso_code="FRA", progress=events.append)
    assert set(metrics) <= set(schema.metric_columns())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert 0.0 < metrics["fraction_nonzero"] < 1.0
    assert metrics["maccs_structured"] <= metrics["maccs_dense"]
    assert metrics["maccs_nonzero"] <= metrics["maccs_dense"]
    assert metrics["bytes_dense"] > 0 and metrics["wall_time_s"] > 0
    layers = json.loads(metrics["layers_json"])
    assert any(layer["constrained"] for layer in layers)
    energy = json.loads(metrics["energy_json"])
    assert {d["name"] for d in energy["devices"]} >= {"nvml", "rapl"}
    # energy is a measurement or None, never an invented 0; the method says which
    assert metrics["energy_j"] is None or metrics["energy_j"] > 0
    assert metrics["energy_method"]
    assert metrics["country_iso_code"] == "FRA"
    assert metrics["torch_version"] and metrics["device_name"]
    assert events and events[-1]["epoch"] == 1
