"""Idle baseline and energy above idle, on a fake NVML GPU and a fake powercap tree."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from projlib.measure import EnergyMeter, IdleBaseline

from .helpers import IntegratingGpu, install_fake_nvml


def gpu_method(counter: bool) -> str:
    return "counter" if counter else "power-integral"


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _zone(path: Path, name: str, energy_uj: int) -> Path:
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text("1000000000000\n")
    return path


@pytest.mark.parametrize("counter", [True, False], ids=["counter", "power-integral"])
def test_energy_above_idle_is_extra_power_times_duration(monkeypatch, counter: bool) -> None:
    gpu = IntegratingGpu(power_w=40.0, counter=counter)
    install_fake_nvml(monkeypatch, gpu)
    meter = EnergyMeter(backends=("nvml",), sample_hz=50.0)
    base = meter.measure_idle(duration_s=0.3)
    assert meter.idle_baseline is base and isinstance(base, IdleBaseline)
    assert base.duration_s >= 0.3 and base.measured_at == pytest.approx(time.time(), abs=5)
    idle, rapl = base.devices  # same devices as a window: gpu0, then the disabled RAPL backend
    assert idle.name == "gpu0" and idle.reason == "" and idle.method == gpu_method(counter)
    assert rapl.idle_power_w is None and "disabled" in rapl.reason
    assert idle.idle_power_w == pytest.approx(40.0, rel=0.05)
    gpu.set_power(240.0)
    with meter.window() as win:
        time.sleep(0.4)
    res = win.result
    assert res.energy_j == pytest.approx(240.0 * res.duration_s, rel=0.05)
    assert res.idle_power_w == pytest.approx(40.0, rel=0.05)
    assert res.energy_above_idle_j == pytest.approx(200.0 * res.duration_s, rel=0.07)
    assert res.idle_note == ""
    dev = res.devices[0]
    assert dev.energy_above_idle_j == pytest.approx(res.energy_above_idle_j)
    d = res.to_dict()
    assert d["energy_above_idle_j"] == res.energy_above_idle_j and d["idle_note"] == ""
    assert d["idle_power_w"] == res.idle_power_w
    meter.close()
    assert meter.idle_baseline is base  # the baseline outlives the NVML handles


def test_below_idle_is_negative_not_clipped(monkeypatch) -> None:
    gpu = IntegratingGpu(power_w=100.0)
    install_fake_nvml(monkeypatch, gpu)
    meter = EnergyMeter(backends=("nvml",))
    meter.measure_idle(duration_s=0.2)
    gpu.set_power(60.0)
    with meter.window() as win:
        time.sleep(0.2)
    res = win.result
    assert res.energy_above_idle_j == pytest.approx(-40.0 * res.duration_s, rel=0.1)
    assert "negative" in res.idle_note and "not clipped" in res.idle_note


def test_ensure_idle_baseline_remeasures_when_stale(monkeypatch) -> None:
    install_fake_nvml(monkeypatch, IntegratingGpu(power_w=30.0))
    clock = FakeClock()
    meter = EnergyMeter(backends=("nvml",), clock=clock)
    first = meter.ensure_idle_baseline(max_age_s=600.0, duration_s=0.15)
    assert first.measured_at == 1000.0 and first.devices[0].idle_power_w is not None
    clock.t += 599.0
    assert meter.ensure_idle_baseline(max_age_s=600.0, duration_s=0.15) is first
    clock.t += 2.0
    second = meter.ensure_idle_baseline(max_age_s=600.0, duration_s=0.15)
    assert second is not first and second.measured_at == 1601.0
    assert meter.idle_baseline is second
    with pytest.raises(ValueError, match="max_age_s"):
        meter.ensure_idle_baseline(max_age_s=-1)


def test_no_backend_gives_none_with_reason_and_no_sleep(tmp_path) -> None:
    meter = EnergyMeter(backends=("rapl",), rapl_root=str(tmp_path))
    t0 = time.perf_counter()
    base = meter.measure_idle(duration_s=5.0)
    assert time.perf_counter() - t0 < 1.0  # nothing can measure: no idle window is run
    assert base.duration_s == 0.0 and not base.measured
    assert [d.name for d in base.devices] == ["nvml", "rapl"]
    assert all(d.idle_power_w is None for d in base.devices)
    assert all(d.reason.startswith("no energy backend measures this device") for d in base.devices)
    assert "disabled" in base.reason("nvml") and "intel-rapl" in base.reason("rapl")
    with meter.window() as win:
        pass
    res = win.result
    assert res.energy_j is None and res.energy_above_idle_j is None and res.idle_power_w is None
    assert res.idle_note == "no device measured energy"
    assert base.to_dict()["devices"][0]["idle_power_w"] is None


def test_without_baseline_result_says_so(monkeypatch) -> None:
    install_fake_nvml(monkeypatch, IntegratingGpu(power_w=50.0))
    meter = EnergyMeter(backends=("nvml",))
    with meter.window() as win:
        time.sleep(0.15)
    res = win.result
    assert res.energy_j is not None and res.energy_above_idle_j is None
    assert res.idle_power_w is None and "measure_idle" in res.idle_note
    assert meter.idle_baseline is None


def test_short_idle_window_and_partial_sum(monkeypatch, tmp_path: Path) -> None:
    gpu = IntegratingGpu(power_w=0.0)  # the counter does not move during the idle window
    install_fake_nvml(monkeypatch, gpu)
    pkg = _zone(tmp_path / "intel-rapl:0", "package-0", 5_000_000)
    meter = EnergyMeter(backends=("nvml", "rapl"), rapl_root=str(tmp_path),
                        counter_period_s=0.5)
    base = meter.measure_idle(duration_s=0.05)  # shorter than the 0.5 s counter period
    assert base.power_w("gpu0") is None and base.reason("gpu0").startswith("window too short")
    assert base.power_w("package-0") == 0.0  # the counter did not move: 0 W measured
    gpu.set_power(100.0)
    with meter.window() as win:
        (pkg / "energy_uj").write_text(f"{5_000_000 + 2_000_000}\n")
        time.sleep(0.6)
    res = win.result
    gpu_j = res.devices[0].energy_j
    assert gpu_j == pytest.approx(100.0 * res.duration_s, rel=0.05)
    assert res.energy_j == pytest.approx(gpu_j + 2.0)
    assert res.energy_above_idle_j == pytest.approx(2.0)  # package only
    assert res.idle_power_w == 0.0
    assert "package-0 only" in res.idle_note and "gpu0 (window too short" in res.idle_note


def test_no_measured_device_has_idle_figure(monkeypatch) -> None:
    gpu = IntegratingGpu(power_w=0.0)
    install_fake_nvml(monkeypatch, gpu)
    meter = EnergyMeter(backends=("nvml",), counter_period_s=0.5)
    meter.measure_idle(duration_s=0.02)
    gpu.set_power(80.0)
    with meter.window() as win:
        time.sleep(0.1)
    res = win.result
    assert res.energy_j is not None and res.energy_above_idle_j is None
    assert res.idle_note.startswith("no measured device has an idle figure: gpu0")


def test_measure_idle_validation_and_open_window(tmp_path) -> None:
    meter = EnergyMeter(backends=(), rapl_root=str(tmp_path))
    for bad in (0, -1.0, float("nan"), True, "2"):
        with pytest.raises(ValueError, match="duration_s"):
            meter.measure_idle(bad)
    win = meter.window().start()
    with pytest.raises(RuntimeError, match="window"):
        meter.measure_idle(0.01)
    win.stop()


def test_idle_baseline_s_config_measures_once(monkeypatch) -> None:
    install_fake_nvml(monkeypatch, IntegratingGpu(power_w=25.0))
    meter = EnergyMeter(backends=("nvml",), idle_baseline_s=0.15)
    assert meter.idle_baseline is None
    with meter.window():
        time.sleep(0.12)
    first = meter.idle_baseline
    assert first is not None and first.power_w("gpu0") == pytest.approx(25.0, rel=0.05)
    with meter.window():
        pass
    assert meter.idle_baseline is first


def test_min_window_and_can_measure(monkeypatch, tmp_path) -> None:
    install_fake_nvml(monkeypatch, IntegratingGpu(counter=False))
    meter = EnergyMeter(backends=("nvml",), sample_hz=20.0)
    assert meter.can_measure() and meter.min_window_s() == pytest.approx(0.5)
    install_fake_nvml(monkeypatch, IntegratingGpu(counter=True))
    meter = EnergyMeter(backends=("nvml",), counter_period_s=0.2)
    assert meter.min_window_s() == pytest.approx(0.2)
    none = EnergyMeter(backends=("rapl",), rapl_root=str(tmp_path))
    assert not none.can_measure() and none.min_window_s() == 0.0
