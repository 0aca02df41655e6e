"""NVML backend with the binding patched (no GPU needed): counter, power sampling, errors."""

from __future__ import annotations

import time

import pynvml
import pytest

from projlib.measure import EnergyMeter
from projlib.measure.nvml import NvmlBackend, _trapezoid_j

from .helpers import install_fake_nvml


class FakeGpu:
    """One fake device; ``energy_mj`` advances by ``power_w`` x elapsed wall time."""

    def __init__(self, counter: bool = True, power_w: float = 150.0) -> None:
        self.counter = counter
        self.power_w = power_w
        self.t0 = time.perf_counter()
        self.fail_power_after: int | None = None
        self.fail_counter_after: int | None = None
        self.power_calls = 0
        self.counter_calls = 0

    def energy_mj(self, handle: object) -> int:
        self.counter_calls += 1
        if not self.counter:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if self.fail_counter_after is not None and self.counter_calls > self.fail_counter_after:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return int(1e6 + self.power_w * (time.perf_counter() - self.t0) * 1000)

    def power_mw(self, handle: object) -> int:
        self.power_calls += 1
        if self.fail_power_after is not None and self.power_calls > self.fail_power_after:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)
        return int(self.power_w * 1000)


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch):
    def install(gpu: FakeGpu | None, init_error: int | None = None) -> FakeGpu | None:
        install_fake_nvml(monkeypatch, gpu, init_error)
        return gpu

    return install


def _window(backend: NvmlBackend, seconds: float):
    backend.begin()
    t0 = time.perf_counter()
    time.sleep(seconds)
    return backend.end(time.perf_counter() - t0)


def test_counter_path(fake_nvml) -> None:
    fake_nvml(FakeGpu(counter=True, power_w=200.0))
    backend = NvmlBackend()
    assert backend.status().available and "counter" in backend.status().reason
    (d,) = _window(backend, 0.3)
    assert d.method == "counter" and d.kind == "gpu" and d.samples == 2 and not d.short_window
    assert d.energy_j == pytest.approx(200.0 * d.window_s, rel=0.1)


def test_power_path_samples_and_integrates(fake_nvml) -> None:
    fake_nvml(FakeGpu(counter=False, power_w=150.0))
    backend = NvmlBackend(sample_hz=50.0)
    assert "power-integral" in backend.status().reason
    (d,) = _window(backend, 0.4)
    assert d.method == "power-integral"
    assert d.samples >= 0.4 * 50 * 0.5  # >= half the nominal rate on a loaded 2-core machine
    assert d.energy_j == pytest.approx(150.0 * d.window_s, rel=0.1)


def test_trapezoid_exact_on_linear_power() -> None:
    assert _trapezoid_j([0.0, 1.0, 3.0], [10.0, 20.0, 40.0]) == pytest.approx(15.0 + 60.0)


def test_power_error_mid_run_gives_none(fake_nvml) -> None:
    gpu = fake_nvml(FakeGpu(counter=False))
    backend = NvmlBackend(sample_hz=50.0)
    backend.status()
    gpu.fail_power_after = gpu.power_calls + 3
    (d,) = _window(backend, 0.3)
    assert d.energy_j is None and "NVML error" in d.note


def test_counter_error_at_end_gives_none(fake_nvml) -> None:
    gpu = fake_nvml(FakeGpu(counter=True))
    backend = NvmlBackend()
    backend.status()
    gpu.fail_counter_after = gpu.counter_calls + 1  # start read works, end read fails
    (d,) = _window(backend, 0.05)
    assert d.energy_j is None and "window end" in d.note


def test_short_window_flagged_not_zero(fake_nvml) -> None:
    gpu = fake_nvml(FakeGpu(counter=True, power_w=0.0))  # counter does not move
    backend = NvmlBackend(counter_period_s=0.1)
    backend.status()
    (d,) = _window(backend, 0.0)
    assert gpu.counter_calls >= 3
    assert d.short_window and d.energy_j is None and "update period" in d.note


@pytest.mark.parametrize("error", [pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
                                   pynvml.NVML_ERROR_DRIVER_NOT_LOADED])
def test_unavailable_says_why(fake_nvml, error: int) -> None:
    fake_nvml(None, init_error=error)
    status = NvmlBackend().status()
    assert not status.available and "NVML init failed" in status.reason


def test_no_gpu(fake_nvml) -> None:
    fake_nvml(None)
    assert NvmlBackend().status().reason == "NVML reports no GPU"


def test_meter_sums_gpu_energy(fake_nvml) -> None:
    fake_nvml(FakeGpu(counter=True, power_w=100.0))
    meter = EnergyMeter(country_iso_code="FRA", backends=("nvml",))
    with meter.window() as win:
        time.sleep(0.2)
    res = win.result
    assert res.energy_j == pytest.approx(100.0 * res.duration_s, rel=0.15)
    assert res.methods == "gpu0:counter" and res.carbon_g is None
    assert res.carbon_method.startswith("unavailable")
    meter.close()


def test_rejects_low_sample_rate() -> None:
    with pytest.raises(ValueError, match="sample_hz"):
        NvmlBackend(sample_hz=5.0)
