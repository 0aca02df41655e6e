"""One sweep point end to end through `run_point`: idle baseline, energy above idle, warm-up
energy, thread policy and measured inference land in the row (fake NVML GPU where a backend is
needed; the real "nothing measures" path of this machine otherwise)."""

from __future__ import annotations

import json

import pytest

from projlib.measure import EnergyMeter
from projlib.sweep import PointSettings, runner
from projlib.sweep.warmup import reset_caches
from projlib.training import TrainConfig

from .helpers import IntegratingGpu, install_fake_nvml

_CFG = TrainConfig(dataset="digits", model="mlp", procedure="projected", constraint="l11",
                   radius=30.0, epochs=2, optimizer="sgd", lr=0.02, batch_size=32)
_INFERENCE = ("infer_latency_b1_s", "infer_throughput_per_s", "compact_latency_b1_s",
              "compact_throughput_per_s", "speedup_predicted_maccs", "speedup_realised_latency",
              "speedup_realised_throughput")


def test_energy_above_idle_on_a_fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = IntegratingGpu(power_w=40.0)  # idle floor
    install_fake_nvml(monkeypatch, gpu)
    real_train = runner.train

    def busy_train(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        gpu.set_power(100.0)  # the card works only while the point trains
        try:
            return real_train(*args, **kwargs)
        finally:
            gpu.set_power(40.0)

    monkeypatch.setattr(runner, "train", busy_train)
    meter = EnergyMeter(backends=("nvml",))
    m = runner.run_point(_CFG, meter=meter,
                         settings=PointSettings(threads=1, idle_duration_s=0.3))
    energy = json.loads(m["energy_json"])
    # A 2-epoch digits run is usually shorter than the 1 s (ten 0.1 s counter periods) the fake
    # card's counter is read over: the window repeats the training until it reaches 1 s and
    # the energy is per run (one run where a loaded machine made the first one long enough).
    window_s, runs = energy["duration_s"], m["energy_runs"]
    assert window_s >= meter.readable_window_s() == pytest.approx(1.0)
    assert runs == energy["runs"] >= 1
    assert (f"{runs} runs in one window" in energy["window_note"]) == (runs > 1)
    assert m["idle_power_w"] == pytest.approx(40.0, rel=0.05)
    assert m["energy_j"] == pytest.approx(100.0 * window_s / runs, rel=0.1)
    assert m["energy_above_idle_j"] == pytest.approx(60.0 * window_s / runs, rel=0.15)
    idle = json.loads(m["idle_json"])
    assert idle["baseline"]["devices"][0]["name"] == "gpu0"
    # The warm-up cannot be repeated (a second one is warm): a window shorter than the 0.1 s
    # counter period (an already warmed key takes ~0 s) is not stored; a longer one is.
    if m["warmup_energy_j"] is None:
        assert m["warmup_time_s"] < 0.1
    else:
        assert m["warmup_energy_j"] > 0
    # Inference windows are measured too (at the idle floor here: the fake does not see it).
    assert m["infer_energy_per_1000_j"] > 0 and m["compact_energy_per_1000_j"] > 0
    assert m["infer_energy_above_idle_per_1000_j"] == pytest.approx(0.0, abs=0.2 * 40 / 1e3)


def test_nothing_measured_is_none_with_reasons_and_threads_are_recorded() -> None:
    reset_caches()
    meter = EnergyMeter(backends=())
    m = runner.run_point(_CFG, meter=meter, settings=PointSettings(threads="auto"))
    assert m["energy_j"] is None and m["energy_above_idle_j"] is None
    assert m["energy_runs"] is None  # nothing measured: no run count to report, not 1 or 0
    assert m["idle_power_w"] is None and json.loads(m["idle_json"])["note"]
    assert m["warmup_energy_j"] is None and m["warmup_time_s"] > 0  # the first of its key
    assert m["infer_energy_per_1000_j"] is None and m["compact_energy_per_1000_j"] is None
    for column in _INFERENCE:
        assert m[column] > 0, column
    threads = json.loads(m["threads_json"])
    assert threads["policy"] == "auto" and threads["threads"] == m["threads"] >= 1
    assert set(threads["step_s"]) >= {"1"} or "one core" in threads["reason"]
    again = runner.run_point(_CFG, meter=meter, settings=PointSettings(threads=1,
                                                                       inference=False))
    assert again["threads"] == 1 and json.loads(again["threads_json"])["policy"] == "fixed"
    assert not any(column in again for column in _INFERENCE)  # stored as NULL: not measured
