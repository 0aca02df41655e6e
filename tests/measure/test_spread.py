"""The spread of timed figures (issue 25): median / IQR / count and the noise flag, per-phase
epoch times into a row, inference repeats and IQR, and an energy window widened by repeating
the work instead of storing a figure below a backend's resolution. No timed assertions: the
samples here are given, or only counted."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
import torch

from projlib import schema
from projlib.measure import EnergyMeter, measure_inference
from projlib.measure.meter import READABLE_PERIODS
from projlib.measure.spread import Spread, phase_spreads, spread_of
from projlib.measure.types import BackendReading, DeviceEnergy
from projlib.sweep.runner import timing_metrics

from .helpers import mlp
from .test_backend import FakeBackend


def test_spread_of_gives_median_quartiles_and_no_spread_below_three() -> None:
    s = spread_of([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (s.n, s.median, s.q1, s.q3, s.iqr) == (5, 3.0, 2.0, 4.0, 2.0)
    assert s.relative_iqr == pytest.approx(2 / 3) and s.noisy is True
    assert spread_of([1.0, 1.0, 1.1, 1.0]).noisy is False
    two = spread_of([1.0, 9.0])
    assert two.median == 5.0 and two.iqr is None and two.noisy is None  # unknown, not 0
    assert spread_of([]) == Spread(0, None)
    assert spread_of([1.0, 2.0, 3.0]).to_dict()["iqr"] == 1.0


def test_noise_flag_is_strictly_above_the_stated_fraction() -> None:
    m = 1.0
    at = spread_of([m - schema.NOISE_FRACTION / 2, m, m + schema.NOISE_FRACTION / 2])
    assert at.iqr == pytest.approx(schema.NOISE_FRACTION / 2) and at.noisy is False
    wide = spread_of([m - schema.NOISE_FRACTION, m, m + schema.NOISE_FRACTION])
    assert wide.noisy is True


def test_phase_spreads_keep_phase_order_and_check_lengths() -> None:
    spreads = phase_spreads([1.0, 1.0, 2.0, 2.0], ["phase1", "phase1", "retrain", "retrain"])
    assert list(spreads) == ["phase1", "retrain"] and spreads["retrain"].median == 2.0
    with pytest.raises(ValueError, match="epoch times"):
        phase_spreads([1.0], [])


def test_timing_metrics_of_a_lottery_run() -> None:
    # phase1 is quiet, the retrain phase is not: the row's median is phase1's (the phase every
    # procedure's constraint cost shows in), the flag covers every phase.
    times = [0.10, 0.10, 0.11, 0.10, 0.05, 0.09, 0.05, 0.20]
    phases = ["phase1"] * 4 + ["retrain"] * 4
    m = timing_metrics(SimpleNamespace(epoch_time_s=times, epoch_phases=phases))
    assert m["epoch_time_median_s"] == pytest.approx(0.10) and m["epochs_timed"] == 4
    assert m["epoch_time_iqr_s"] == pytest.approx(0.0025)
    assert m["epoch_time_noisy"] == 1
    detail = json.loads(m["epoch_time_json"])
    assert detail["main_phase"] == "phase1" and detail["epoch_time_s"] == times
    assert detail["phases"]["retrain"]["noisy"] is True
    assert detail["phases"]["phase1"]["noisy"] is False
    assert detail["noise_fraction"] == schema.NOISE_FRACTION
    quiet = timing_metrics(SimpleNamespace(epoch_time_s=times[:4], epoch_phases=phases[:4]))
    assert quiet["epoch_time_noisy"] == 0
    one = timing_metrics(SimpleNamespace(epoch_time_s=[0.3], epoch_phases=["train"]))
    assert one["epoch_time_median_s"] == 0.3 and one["epoch_time_iqr_s"] is None
    assert one["epoch_time_noisy"] is None  # one epoch tells nothing about noise
    none = timing_metrics(SimpleNamespace(epoch_time_s=[], epoch_phases=[]))
    assert set(none.values()) == {None}


def test_inference_records_repeats_and_spread() -> None:
    torch.manual_seed(0)
    # max_time_s far above what 5 passes of a digits MLP take: the repeat count is the one asked
    res = measure_inference(mlp(), (1, 8, 8), "cpu", repeats=5, warmup=1, large_batch=64,
                            max_time_s=120.0)
    assert res.latency_repeats == 5 and res.throughput_repeats == 5
    assert res.latency_iqr_s is not None and res.latency_iqr_s >= 0
    assert res.throughput_iqr_per_s is not None and res.throughput_iqr_per_s >= 0
    few = measure_inference(mlp(), (1, 8, 8), "cpu", repeats=2, warmup=0, large_batch=8)
    assert few.latency_iqr_s is None and few.throughput_iqr_per_s is None


def test_measure_runs_repeats_a_short_window_and_reports_per_run() -> None:
    # A backend that needs 100 s (10 periods of 10 s): the work repeats up to max_runs and the
    # energy is the window's / runs; the note says the window still fell short.
    fake = FakeBackend(power_w=40.0, floor_s=10.0)
    meter = EnergyMeter(backends=(), extra_backends=(fake,))
    assert meter.readable_window_s() == READABLE_PERIODS * 10.0
    calls = []
    value, res = meter.measure_runs(lambda: calls.append(1) or len(calls), max_runs=3)
    assert value == 1 and len(calls) == 3 and res.runs == 3
    assert res.energy_j == pytest.approx(40.0 * res.duration_s / 3)
    (dev,) = [d for d in res.devices if d.name == "fake0"]
    assert dev.energy_j == pytest.approx(40.0 * res.duration_s / 3)
    assert "3 runs in one window" in res.window_note and "still short" in res.window_note
    assert res.to_dict()["runs"] == 3


def test_measure_runs_once_where_nothing_measures() -> None:
    meter = EnergyMeter(backends=())
    calls = []
    _, res = meter.measure_runs(lambda: calls.append(1))
    assert calls == [1] and res.runs == 1 and res.energy_j is None and res.window_note == ""


class _ShortBackend(FakeBackend):
    """Reads a nonzero energy over a window it flags shorter than its update period."""

    def end(self, window_s: float) -> BackendReading:
        row = DeviceEnergy(f"{self.name}0", "gpu", 0.5, "counter", 2, window_s, True)
        return BackendReading((row,))


def test_a_reading_below_resolution_is_not_stored() -> None:
    meter = EnergyMeter(backends=(), extra_backends=(_ShortBackend(floor_s=10.0),))
    _, res = meter.measure_runs(lambda: None, max_runs=1)
    (dev,) = [d for d in res.devices if d.name == "fake0"]
    assert dev.energy_j is None and dev.note.startswith("below resolution")
    assert res.energy_j is None and "below resolution: fake0" in res.window_note
    # A plain window still reports what the backend read (flagged), as before.
    with meter.window() as win:
        pass
    assert win.result.energy_j == 0.5
    assert [d.short_window for d in win.result.devices if d.name == "fake0"] == [True]


def test_nvml_counter_window_below_its_update_period_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fake card's counter moves continuously, so a window far shorter than NVML's 0.1 s
    # update period reads a (meaningless) nonzero figure: measure_runs must not store it.
    from .helpers import IntegratingGpu, install_fake_nvml

    install_fake_nvml(monkeypatch, IntegratingGpu(power_w=100.0))
    meter = EnergyMeter(backends=("nvml",))
    assert meter.readable_window_s() == pytest.approx(1.0)  # ten 0.1 s counter periods
    _, short = meter.measure_runs(lambda: None, max_runs=1)
    (gpu,) = [d for d in short.devices if d.name == "gpu0"]
    if gpu.short_window:  # the usual case; a stalled machine can stretch the window past 0.1 s
        assert gpu.energy_j is None and short.energy_j is None
    # Repeated: five runs of at least 0.05 s each make a window past one update period (not
    # short, stored) yet short of the 1 s target (said); energy per run.
    _, res = meter.measure_runs(lambda: time.sleep(0.05), max_runs=5)
    (gpu,) = [d for d in res.devices if d.name == "gpu0"]
    assert res.duration_s >= 0.25 and not gpu.short_window
    assert res.runs == 5 or res.duration_s >= 1.0  # fewer only if a stall reached the target
    assert res.energy_j == pytest.approx(100.0 * res.duration_s / res.runs, rel=0.05)
    assert f"{res.runs} runs in one window" in res.window_note
