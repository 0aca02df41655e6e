"""measure_inference on a real CPU model; energy through a fake NVML GPU (no GPU needed)."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch import nn

from projlib.measure import (
    EnergyMeter,
    InferenceResult,
    compact,
    inference_comparison,
    measure_inference,
)

from .helpers import IntegratingGpu, install_fake_nvml, mlp

DIGITS = (1, 8, 8)


def _digits_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return mlp(64, 10).eval()


def _no_backend_meter(tmp_path) -> EnergyMeter:
    return EnergyMeter(backends=("rapl",), rapl_root=str(tmp_path))


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_cpu_fields_and_no_energy_without_backend(tmp_path) -> None:
    model = _digits_mlp()
    meter = _no_backend_meter(tmp_path)
    meter.can_measure()  # probe outside the timing, as a sweep's shared meter would be
    t0 = time.perf_counter()
    res = measure_inference(model, DIGITS, "cpu", meter=meter)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0  # budget: no energy window when nothing can measure
    assert isinstance(res, InferenceResult)
    assert math.isfinite(res.latency_b1_s) and res.latency_b1_s > 0
    assert math.isfinite(res.throughput_per_s) and res.throughput_per_s > 0
    assert res.large_batch == 1024 and res.device == "cpu" and res.input_shape == DIGITS
    assert res.latency_repeats >= 1 and res.throughput_repeats >= 1
    assert res.energy_per_1000_j is None and res.energy_above_idle_per_1000_j is None
    assert res.energy_method == "unavailable" and res.repetitions == 0
    assert "no energy backend" in res.note and "intel-rapl" in res.note
    assert res.energy_window_s is None
    d = res.to_dict()
    assert d["input_shape"] == [1, 8, 8] and d["energy_per_1000_j"] is None


def test_without_meter_says_so() -> None:
    res = measure_inference(_digits_mlp(), DIGITS, large_batch=64, repeats=3)
    assert res.energy_per_1000_j is None and res.note == "no EnergyMeter given"
    assert res.large_batch == 64 and res.throughput_repeats == 3


@pytest.mark.parametrize("counter", [True, False], ids=["counter", "power-integral"])
def test_energy_per_1000_from_fake_gpu(monkeypatch, counter: bool) -> None:
    gpu = IntegratingGpu(power_w=150.0, counter=counter)
    install_fake_nvml(monkeypatch, gpu)
    meter = EnergyMeter(backends=("nvml",), counter_period_s=0.1, sample_hz=50.0)
    # min_window_s below the backend's floor: the window must still reach the floor
    res = measure_inference(_digits_mlp(), DIGITS, meter=meter, large_batch=256,
                            min_window_s=0.01, repeats=5)
    floor = meter.min_window_s()
    assert floor == pytest.approx(0.1 if counter else 10 / 50.0)
    assert res.min_window_s == pytest.approx(floor)
    assert res.energy_window_s is not None and res.energy_window_s >= floor
    assert res.repetitions >= 1
    expected = 150.0 * res.energy_window_s / (res.repetitions * 256) * 1000.0
    assert res.energy_per_1000_j == pytest.approx(expected, rel=0.05)
    assert res.energy_method == ("gpu0:counter" if counter else "gpu0:power-integral")
    assert res.energy_above_idle_per_1000_j is None and "measure_idle" in res.note


def test_energy_above_idle_per_1000(monkeypatch) -> None:
    gpu = IntegratingGpu(power_w=30.0)
    install_fake_nvml(monkeypatch, gpu)
    meter = EnergyMeter(backends=("nvml",))
    meter.ensure_idle_baseline(duration_s=0.2)
    gpu.set_power(130.0)
    res = measure_inference(_digits_mlp(), DIGITS, meter=meter, large_batch=128,
                            min_window_s=0.25, repeats=3)
    assert res.energy_window_s >= 0.25
    count = res.repetitions * 128
    assert res.energy_per_1000_j == pytest.approx(130.0 * res.energy_window_s / count * 1000,
                                                  rel=0.05)
    assert res.energy_above_idle_per_1000_j == pytest.approx(
        100.0 * res.energy_window_s / count * 1000, rel=0.07)
    assert res.note == ""


def test_max_time_caps_the_window(monkeypatch) -> None:
    install_fake_nvml(monkeypatch, IntegratingGpu(power_w=100.0))
    meter = EnergyMeter(backends=("nvml",))
    res = measure_inference(_digits_mlp(), DIGITS, meter=meter, large_batch=64,
                            min_window_s=5.0, max_time_s=0.15, repeats=3)
    assert 0.15 <= res.energy_window_s < 1.0
    assert "shorter than the 5 s needed" in res.note and res.energy_per_1000_j is not None


def test_model_unchanged_and_mode_restored() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                          nn.Dropout(0.5), nn.Linear(32, 10))
    model.eval()
    before = _state(model)
    measure_inference(model, DIGITS, large_batch=32, repeats=3)
    assert not model.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    model.train()  # a model handed over in training mode is measured in eval mode, flag restored
    res = measure_inference(model, DIGITS, large_batch=32, repeats=3)
    assert model.training and res.latency_b1_s > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no BatchNorm update


@pytest.mark.parametrize("shape", [(64,), (1, 8), (1, 8, 8, 1), (1, 8, -8), (1, 0, 8),
                                   (1.0, 8, 8), (True, 8, 8), "1x8x8", None])
def test_input_shape_validated(shape) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        measure_inference(_digits_mlp(), shape)


@pytest.mark.parametrize("name,value", [("large_batch", 0), ("large_batch", 2.5),
                                        ("min_window_s", 0), ("max_time_s", -1.0),
                                        ("repeats", 0), ("warmup", -1)])
def test_budget_validated(name, value) -> None:
    with pytest.raises(ValueError, match=name):
        measure_inference(_digits_mlp(), DIGITS, **{name: value})


def test_comparison_dense_vs_compact(tmp_path) -> None:
    model = _digits_mlp()
    with torch.no_grad():
        model[1].weight[64:] = 0  # half of hidden-1 always 0 (its bias too)
        model[1].bias[64:] = 0
    small = compact(model, DIGITS)
    out = inference_comparison(model, small, DIGITS, "cpu", _no_backend_meter(tmp_path),
                               large_batch=256, repeats=5)
    assert set(out) == {"dense", "compact", "realised_speedup_latency",
                        "realised_speedup_throughput", "realised_energy_ratio"}
    for key in ("realised_speedup_latency", "realised_speedup_throughput"):
        assert math.isfinite(out[key]) and out[key] > 0
    assert out["realised_energy_ratio"] is None
    assert out["dense"]["large_batch"] == out["compact"]["large_batch"] == 256
    assert out["realised_speedup_latency"] == pytest.approx(
        out["dense"]["latency_b1_s"] / out["compact"]["latency_b1_s"])


@pytest.mark.gpu
def test_cuda_inference() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False")
    model = _digits_mlp()  # on CPU: measured on a CUDA copy, the original stays on CPU
    meter = EnergyMeter(backends=("nvml",))
    res = measure_inference(model, DIGITS, "cuda", meter=meter, min_window_s=0.5)
    assert res.device.startswith("cuda") and res.latency_b1_s > 0 and res.throughput_per_s > 0
    assert next(model.parameters()).device.type == "cpu"
    if meter.can_measure():
        assert res.energy_per_1000_j is not None and res.energy_window_s >= 0.5
    meter.close()
