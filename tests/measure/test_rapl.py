"""RAPL backend on a fake powercap tree: zones chosen, wrap-around, permission denied."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from projlib.measure import EnergyMeter
from projlib.measure.rapl import RaplBackend


def _zone(path: Path, name: str, energy_uj: int, max_uj: int = 1_000_000_000) -> Path:
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    pkg = _zone(tmp_path / "intel-rapl:0", "package-0", 5_000_000)
    _zone(pkg / "intel-rapl:0:0", "core", 1_000)
    _zone(pkg / "intel-rapl:0:1", "dram", 2_000_000)
    _zone(tmp_path / "intel-rapl:1", "psys", 9_000)
    return tmp_path


def _set(path: Path, energy_uj: int) -> None:
    (path / "energy_uj").write_text(f"{energy_uj}\n")


def test_package_and_dram_only(tree: Path) -> None:
    backend = RaplBackend(tree)
    assert backend.status().available and backend.status().reason == "package-0, package-0/dram"
    backend.begin()
    _set(tree / "intel-rapl:0", 5_000_000 + 3_500_000)
    _set(tree / "intel-rapl:0/intel-rapl:0:1", 2_000_000 + 250_000)
    _set(tree / "intel-rapl:0/intel-rapl:0:0", 10**8)  # core: inside package, not summed
    pkg, dram = backend.end(window_s=1.0)
    assert (pkg.name, pkg.kind, pkg.energy_j, pkg.method) == ("package-0", "cpu", 3.5, "rapl")
    assert (dram.kind, dram.energy_j) == ("dram", 0.25)


def test_wrap_around(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "intel-rapl:0", "package-0", 999_000, max_uj=1_000_000)
    backend = RaplBackend(tmp_path)
    backend.status()
    backend.begin()
    _set(zone, 1_000)
    (d,) = backend.end(window_s=0.5)
    assert d.energy_j == pytest.approx(0.002) and "wrapped" in d.note


def test_short_window_zero_is_none(tree: Path) -> None:
    backend = RaplBackend(tree)
    backend.status()
    backend.begin()
    pkg, _ = backend.end(window_s=0.0002)
    assert pkg.short_window and pkg.energy_j is None


def test_permission_denied(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = builtins.open

    def guarded(path, *args, **kwargs):
        if str(path).endswith("energy_uj") and "max" not in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    status = RaplBackend(tree).status()
    assert not status.available and "permission denied" in status.reason


def test_missing_tree(tmp_path: Path) -> None:
    status = RaplBackend(tmp_path / "nope").status()
    assert not status.available and "no powercap tree" in status.reason
    assert "no intel-rapl package zone" in RaplBackend(tmp_path).status().reason


def test_meter_with_rapl_and_idle_baseline(tree: Path) -> None:
    meter = EnergyMeter(country_iso_code="FRA", backends=("rapl",), rapl_root=str(tree),
                        idle_baseline_s=0.01)
    with meter.window() as win:
        _set(tree / "intel-rapl:0", 5_000_000 + 2_000_000)
    res = win.result
    assert res.energy_j == pytest.approx(2.0)  # package 2 J; dram did not move (0 J or None)
    pkg = res.devices[1]
    assert pkg.idle_power_w is not None and pkg.energy_above_idle_j is not None
    assert "package-0:rapl" in res.methods and res.carbon_g is None
