"""The EnergyBackend protocol: a backend written here, implementing only the protocol, plugs into
EnergyMeter next to the real ones (which all implement it too)."""

from __future__ import annotations

import pytest

from projlib.measure import EnergyMeter
from projlib.measure.backend import EnergyBackend
from projlib.measure.carbon import CarbonBackend
from projlib.measure.nvml import NvmlBackend
from projlib.measure.rapl import RaplBackend
from projlib.measure.types import BackendReading, BackendStatus, DeviceEnergy
from projlib.measure.unavailable import UnavailableBackend


class FakeBackend:
    """A meter of constant power: ``power_w`` x the window the meter timed, exactly."""

    def __init__(self, name: str = "fake", power_w: float = 40.0, *, measures: bool = True,
                 floor_s: float = 0.0, available: bool = True, carbon_g: float | None = None,
                 intensity: float | None = None, log: list[str] | None = None) -> None:
        self.name, self.measures, self.power_w = name, measures, power_w
        self.floor_s, self.available = floor_s, available
        self.carbon_g, self.intensity = carbon_g, intensity
        self.log = [] if log is None else log
        self.probes = self.closes = 0
        self._status: BackendStatus | None = None

    def status(self) -> BackendStatus:
        if self._status is None:
            self.probes += 1
            self._status = BackendStatus(self.name, self.available,
                                         "fake ok" if self.available else "fake probe failed")
        return self._status

    def min_window_s(self) -> float:
        return self.floor_s

    def begin(self) -> None:
        self.log.append(f"begin {self.name}")

    def end(self, window_s: float) -> BackendReading:
        self.log.append(f"end {self.name}")
        method = "counter" if self.measures else "estimate"
        row = DeviceEnergy(f"{self.name}0", "gpu", self.power_w * window_s, method, 2, window_s)
        return BackendReading((row,), self.carbon_g, self.intensity, "Fake grid",
                              "" if self.carbon_g is not None else "fake gives no carbon")

    def close(self) -> None:
        self.closes += 1
        self._status = None


def test_every_backend_implements_the_protocol(tmp_path) -> None:
    for backend in (NvmlBackend(), RaplBackend(tmp_path), CarbonBackend("FRA"),
                    UnavailableBackend("nvml", "off"), FakeBackend()):
        assert isinstance(backend, EnergyBackend), type(backend).__name__
    assert [NvmlBackend.measures, RaplBackend.measures, CarbonBackend.measures] == [
        True, True, False]
    assert not isinstance(object(), EnergyBackend)


def test_fake_backend_energy_and_idle_through_the_meter() -> None:
    fake = FakeBackend(power_w=40.0, floor_s=0.05)
    meter = EnergyMeter(backends=(), extra_backends=(fake,))
    assert meter.can_measure() and meter.min_window_s() == 0.05
    assert [s.name for s in meter.statuses()] == ["nvml", "rapl", "fake", "codecarbon"]
    base = meter.measure_idle(duration_s=0.05)
    assert base.power_w("fake0") == pytest.approx(40.0)
    assert [d.name for d in base.devices] == ["nvml", "rapl", "fake0"]  # no CodeCarbon row
    fake.power_w = 240.0
    with meter.window() as win:
        pass
    res = win.result
    row = [d for d in res.devices if d.name == "fake0"][0]
    assert row.method == "counter" and row.window_s == res.duration_s
    assert res.energy_j == pytest.approx(240.0 * res.duration_s)
    assert res.methods == "fake0:counter"
    assert res.idle_power_w == pytest.approx(40.0) and res.idle_note == ""
    assert res.energy_above_idle_j == pytest.approx(200.0 * res.duration_s)
    assert res.carbon_g is None
    assert res.carbon_method == ("unavailable: fake gives no carbon; "
                                 "disabled in MeterConfig.backends")
    meter.close()
    assert fake.closes == 1
    with meter.window() as again:  # the same instance serves again, probed afresh
        pass
    assert again.result.energy_j is not None and fake.probes == 2


def test_carbon_comes_from_whichever_reading_carries_it() -> None:
    grid = FakeBackend("grid", 10.0, measures=False, carbon_g=1.5, intensity=100.0)
    alone = EnergyMeter(backends=(), extra_backends=(grid,))
    assert not alone.can_measure()  # an estimate does not count as measuring
    with alone.window() as win:
        pass
    assert win.result.energy_j is None
    assert win.result.carbon_g == 1.5 and win.result.carbon_method == "Fake grid estimate (FRA)"
    assert win.result.carbon_intensity_g_per_kwh == 100.0
    meter = EnergyMeter(backends=(), extra_backends=(grid, FakeBackend(power_w=3.6e6)))
    with meter.window() as win:
        pass
    res = win.result
    assert res.carbon_g == pytest.approx(res.energy_j / 3.6e6 * 100.0)
    assert res.carbon_method == "measured energy x Fake grid intensity (FRA)"


def test_window_nests_measuring_backends_inside_estimates() -> None:
    log: list[str] = []
    est = FakeBackend("est", measures=False, log=log)
    meas = FakeBackend("meas", log=log)
    meter = EnergyMeter(backends=(), extra_backends=(est, meas))  # listed estimate first
    with meter.window() as win:
        pass
    assert log == ["begin est", "begin meas", "end meas", "end est"]
    assert [d.name for d in win.result.devices] == ["nvml", "rapl", "meas0", "est0"]


def test_failed_probe_becomes_a_stand_in() -> None:
    fake = FakeBackend(available=False)
    meter = EnergyMeter(backends=(), extra_backends=(fake,))
    assert not meter.can_measure() and meter.min_window_s() == 0.0
    assert fake.closes == 1  # a failed probe is released at once
    base = meter.measure_idle(duration_s=5.0)  # nothing measures: returns at once
    assert base.duration_s == 0.0
    assert base.reason("fake") == "no energy backend measures this device: fake probe failed"
    with meter.window() as win:
        pass
    assert win.result.devices[-1].method == "unavailable"
    assert win.result.devices[-1].note == "fake probe failed" and win.result.energy_j is None


def test_reading_unpacks_as_its_devices() -> None:
    a = DeviceEnergy("gpu0", "gpu", 1.0, "counter", 2, 0.5)
    b = DeviceEnergy("gpu1", "gpu", None, "counter", 0, 0.5)
    first, second = BackendReading((a, b))
    assert (first, second) == (a, b) and list(BackendReading()) == []


@pytest.mark.parametrize("extra,error", [((object(),), TypeError),
                                         ((FakeBackend("rapl"),), ValueError),
                                         ((FakeBackend(), FakeBackend()), ValueError)])
def test_extra_backends_validated(extra, error) -> None:
    with pytest.raises(error, match="extra_backends"):
        EnergyMeter(extra_backends=extra)
