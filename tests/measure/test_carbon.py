"""CodeCarbon's offline tracker, really run on a short CPU workload (no network)."""

from __future__ import annotations

import time

import pytest

from projlib.measure import EnergyMeter
from projlib.measure.carbon import CarbonBackend, carbon_intensity_g_per_kwh


def _busy(seconds: float) -> int:
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        n += sum(i * i for i in range(1000))
    return n


@pytest.mark.slow
def test_offline_estimate_on_cpu_workload(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # CodeCarbon would write emissions.csv here if it wrote at all
    meter = EnergyMeter(country_iso_code="FRA", backends=("codecarbon",))
    with meter.window() as win:
        _busy(1.5)
    res = win.result
    machine = [d for d in res.devices if d.name == "machine"][0]
    assert machine.method == "estimate" and "CodeCarbon offline estimate" in machine.note
    assert machine.energy_j is not None and machine.energy_j > 0
    assert res.energy_j is None  # an estimate is not a measurement
    assert res.carbon_intensity_g_per_kwh == carbon_intensity_g_per_kwh("FRA")
    assert res.carbon_g == pytest.approx(
        machine.energy_j / 3.6e6 * res.carbon_intensity_g_per_kwh, rel=1e-3)
    assert "estimate" in res.carbon_method and res.country_iso_code == "FRA"
    with meter.window() as win2:  # second window reuses the tracker
        _busy(0.3)
    assert win2.result.carbon_g is not None and win2.result.carbon_g > 0
    meter.close()
    assert list(tmp_path.iterdir()) == []


def test_unknown_country_unavailable() -> None:
    status = CarbonBackend("ZZZ").status()
    assert not status.available and "ZZZ" in status.reason


@pytest.mark.parametrize("code", ["FR", "fra", 250, ""])
def test_country_code_validated(code) -> None:
    with pytest.raises(ValueError, match="country_iso_code"):
        EnergyMeter(country_iso_code=code)


def test_tracker_failure_is_none_with_note(monkeypatch) -> None:
    import codecarbon

    class Broken:
        def __init__(self, *args, **kwargs) -> None:
            raise RuntimeError("no hardware info")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Broken)
    meter = EnergyMeter(country_iso_code="FRA", backends=("codecarbon",))
    with meter.window() as win:
        pass
    machine = win.result.devices[-1]
    assert machine.energy_j is None and "failed to start" in machine.note
    assert win.result.carbon_g is None and win.result.carbon_method.startswith("unavailable")
