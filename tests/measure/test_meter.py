"""EnergyMeter behaviour independent of hardware: nothing measured is None, never 0."""

from __future__ import annotations

import pytest

from projlib.measure import EnergyMeter, EnergyResult, MeterConfig, probe_backends


def test_nothing_available_is_none_not_zero(tmp_path) -> None:
    meter = EnergyMeter(country_iso_code="DEU", backends=("rapl",), rapl_root=str(tmp_path))
    with meter.window() as win:
        sum(range(1000))
    res = win.result
    assert isinstance(res, EnergyResult) and res.duration_s > 0
    assert res.energy_j is None and res.carbon_g is None
    assert [d.energy_j for d in res.devices] == [None, None]
    assert all(d.method == "unavailable" and d.note for d in res.devices)
    assert res.methods == "unavailable" and res.country_iso_code == "DEU"
    assert res.to_dict()["devices"][0]["energy_j"] is None


def test_window_start_stop_and_errors(tmp_path) -> None:
    meter = EnergyMeter(backends=(), rapl_root=str(tmp_path))
    win = meter.window().start()
    with pytest.raises(RuntimeError, match="already open"):
        meter.window().start()
    assert win.stop().energy_j is None
    with pytest.raises(RuntimeError, match="no window"):
        win.stop()


def test_window_measures_even_when_work_raises() -> None:
    meter = EnergyMeter(backends=())
    win = meter.window()
    with pytest.raises(ZeroDivisionError), win:
        1 / 0  # noqa: B018
    assert win.result is not None and win.result.duration_s >= 0


@pytest.mark.parametrize("field,value", [("sample_hz", 5), ("counter_period_s", 0),
                                         ("idle_baseline_s", -1), ("backends", ("gpu",)),
                                         ("backends", ["nvml"])])
def test_config_validation(field, value) -> None:
    with pytest.raises(ValueError, match=field):
        MeterConfig(**{field: value})


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        MeterConfig().sample_hz = 100  # type: ignore[misc]


def test_probe_backends_reports_reasons(tmp_path) -> None:
    statuses = probe_backends(rapl_root=str(tmp_path))
    assert [s.name for s in statuses] == ["nvml", "rapl", "codecarbon"]
    assert all(s.reason for s in statuses)
    assert not statuses[1].available  # empty tmp dir: no package zone
    assert probe_backends(rapl_root=str(tmp_path)) == statuses  # cached


@pytest.mark.gpu
def test_real_gpu_energy() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False")
    meter = EnergyMeter(backends=("nvml",))
    x = torch.randn(4096, 4096, device="cuda")
    with meter.window() as win:
        for _ in range(200):
            x = (x @ x).tanh()
        torch.cuda.synchronize()
    gpu = [d for d in win.result.devices if d.kind == "gpu"]
    assert gpu and all(d.method in ("counter", "power-integral") for d in gpu)
    assert win.result.energy_j is not None and win.result.energy_j > 0
    meter.close()
