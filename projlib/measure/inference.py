"""Measured inference: latency at batch 1, throughput and energy per 1,000 inferences at a large
batch, so a sweep can put the MACC ratio it predicts next to the speed-up it gets.

    res = measure_inference(model, (1, 8, 8), "cpu", meter=EnergyMeter())
    res.latency_b1_s, res.throughput_per_s, res.energy_per_1000_j

Every forward pass runs under ``torch.inference_mode`` with the model in eval mode (its own
training flag is restored afterwards; its parameters and buffers are never changed). On CUDA
every timed pass is bracketed by ``torch.cuda.synchronize``.

Cost is bounded by the budget parameters of :func:`measure_inference`:

* ``warmup`` untimed passes, then ``repeats`` timed passes at batch 1 (median = latency) and
  ``repeats`` timed passes at ``large_batch`` (median = time per batch, throughput =
  ``large_batch`` / median); each of these two phases also stops after ``max_time_s`` seconds
  (at least one timed pass is always made).
* One energy window at ``large_batch``, only when the meter has a backend that measures (NVML or
  RAPL): the forward pass is repeated inside one ``meter.window()`` until the window is at least
  ``max(min_window_s, meter.min_window_s())`` long, or ``max_time_s`` is reached (then the note
  says the window fell short). Energy per 1,000 = window energy / (passes x ``large_batch``) x 1000.
  With no such backend no window is run at all, so a small model costs a few tens of
  milliseconds in total (digits MLP 64-128-64-10 on one CPU thread: about 25 ms).

Worst case per call: ``2 * warmup`` untimed passes plus about ``3 * max_time_s`` seconds (the
first call on a meter also probes its backends, and its first window builds CodeCarbon's tracker
when that backend is on: about a second each, once per meter).

The window's energy is what the meter measures (all its devices, e.g. GPU and CPU package), not
just the device the model runs on. Energy above idle per 1,000 is given when the meter holds an
idle baseline (:meth:`EnergyMeter.ensure_idle_baseline`, which this module never calls itself:
it costs seconds of sleep).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from projlib.checks import check_int, check_number, is_int
from projlib.measure.meter import EnergyMeter
from projlib.measure.spread import spread_of

__all__ = ["InferenceResult", "inference_comparison", "measure_inference"]


@dataclass(frozen=True)
class InferenceResult:
    """Measured inference costs of one model on one device.

    ``repetitions`` is the number of ``large_batch`` forward passes inside the energy window (0 when
    no window was run); ``latency_repeats`` / ``throughput_repeats`` the timed passes behind the
    two medians, ``latency_iqr_s`` / ``throughput_iqr_per_s`` their spread. ``energy_window_s``
    is the energy window's length and ``min_window_s`` the length it had to reach (both ``None``
    without a window). ``energy_method`` is the meter's method summary (e.g.
    ``"gpu0:counter"``) or ``"unavailable"``; ``note`` says why an energy figure is missing or
    qualified.
    """

    latency_b1_s: float
    throughput_per_s: float
    large_batch: int
    energy_per_1000_j: float | None
    energy_above_idle_per_1000_j: float | None
    energy_method: str
    note: str
    repetitions: int
    device: str
    input_shape: tuple[int, int, int] = (0, 0, 0)
    latency_repeats: int = 0
    throughput_repeats: int = 0
    energy_window_s: float | None = None
    min_window_s: float | None = None
    #: Interquartile ranges of the timed repeats behind the two medians (None with fewer than
    #: 3 repeats): latency in seconds, throughput in samples/s (large_batch / per-pass time).
    latency_iqr_s: float | None = None
    throughput_iqr_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["input_shape"] = list(self.input_shape)
        return out


def _check_shape(input_shape: Any) -> tuple[int, int, int]:
    ok = (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3
          and all(is_int(n) and n > 0 for n in input_shape))
    if not ok:
        raise ValueError("input_shape must be three positive ints (channels, height, width) "
                         f"of one sample, without the batch dimension (got {input_shape!r})")
    return tuple(input_shape)  # type: ignore[return-value]




def _on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself when all its tensors are on ``device``, else a copy moved there."""
    tensors = list(model.parameters()) + list(model.buffers())
    if all(_same_device(t.device, device) for t in tensors):
        return model
    return copy.deepcopy(model).to(device)


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type == "cuda":
        ai = a.index if a.index is not None else torch.cuda.current_device()
        bi = b.index if b.index is not None else torch.cuda.current_device()
        return ai == bi
    return True


def _input_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _timed(run: Callable[[], object], sync: Callable[[], None], repeats: int,
           max_time_s: float) -> list[float]:
    """Seconds per call of ``run``, up to ``repeats`` calls or ``max_time_s`` (>= 1 call)."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats:
        sync()
        t0 = time.perf_counter()
        run()
        sync()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if t1 - start >= max_time_s:
            break
    return times


def measure_inference(model: nn.Module, input_shape: tuple[int, int, int],
                      device: str | torch.device = "cpu", *, meter: EnergyMeter | None = None,
                      large_batch: int = 1024, min_window_s: float = 1.0,
                      max_time_s: float = 5.0, repeats: int = 20, warmup: int = 3,
                      seed: int = 0) -> InferenceResult:
    """Latency (batch 1), throughput and energy per 1,000 inferences (``large_batch``).

    ``input_shape`` is one sample's (channels, height, width); inputs are standard normal (drawn
    with ``seed``) in the model's floating dtype. A model whose tensors are not all on ``device``
    is measured on a copy moved there; ``model`` itself is never modified.

    Budget: ``warmup`` untimed passes per batch size; ``repeats`` timed passes per timing, each
    timing phase capped at ``max_time_s`` seconds; one energy window of at least
    ``max(min_window_s, meter.min_window_s())`` seconds (capped at ``max_time_s``), run only when
    ``meter`` has a backend that measures. The default ``min_window_s=1.0`` is ten NVML counter
    periods (about 10 % quantisation) and twenty power samples at 20 Hz.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (got {type(model).__name__})")
    shape = _check_shape(input_shape)
    check_int("large_batch", large_batch, 1)
    check_number("min_window_s", min_window_s, 0, low_open=True)
    check_number("max_time_s", max_time_s, 0, low_open=True)
    check_int("repeats", repeats, 1)
    check_int("warmup", warmup, 0)
    if meter is not None and not isinstance(meter, EnergyMeter):
        raise TypeError(f"meter must be an EnergyMeter or None (got {type(meter).__name__})")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} requested but torch.cuda.is_available() is False")

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    net = _on_device(model, dev)
    was_training = net.training
    gen = torch.Generator().manual_seed(seed)
    dtype = _input_dtype(net)
    x1 = torch.randn((1, *shape), generator=gen).to(dev, dtype)
    xb = torch.randn((large_batch, *shape), generator=gen).to(dev, dtype)
    net.eval()
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                net(x1)
            lat = _timed(lambda: net(x1), sync, repeats, max_time_s)
            for _ in range(warmup):
                net(xb)
            per_batch = _timed(lambda: net(xb), sync, repeats, max_time_s)
            energy = _energy_window(net, xb, sync, meter, min_window_s, max_time_s)
    finally:
        net.train(was_training)
    per_1000, above_1000, method, note, reps, window_s, target_s = energy
    lat_spread, batch_spread = spread_of(lat), spread_of(per_batch)
    throughput_iqr = None  # the slowest quartile pass gives the lowest throughput
    if batch_spread.q1 and batch_spread.q3:
        throughput_iqr = large_batch / batch_spread.q1 - large_batch / batch_spread.q3
    return InferenceResult(
        latency_b1_s=lat_spread.median,
        throughput_per_s=large_batch / batch_spread.median,
        latency_iqr_s=lat_spread.iqr, throughput_iqr_per_s=throughput_iqr,
        large_batch=large_batch, energy_per_1000_j=per_1000,
        energy_above_idle_per_1000_j=above_1000, energy_method=method, note=note,
        repetitions=reps, device=str(dev), input_shape=shape, latency_repeats=len(lat),
        throughput_repeats=len(per_batch), energy_window_s=window_s, min_window_s=target_s,
    )


def _energy_window(net: nn.Module, xb: torch.Tensor, sync: Callable[[], None],
                   meter: EnergyMeter | None, min_window_s: float, max_time_s: float
                   ) -> tuple[float | None, float | None, str, str, int, float | None,
                              float | None]:
    if meter is None:
        return None, None, "unavailable", "no EnergyMeter given", 0, None, None
    if not meter.can_measure():
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in meter.statuses()
                            if s.name != "codecarbon")
        return (None, None, "unavailable",
                f"no energy backend can measure ({reasons}); no energy window run",
                0, None, None)
    target_s = max(min_window_s, meter.min_window_s())
    reps = 0
    sync()
    with meter.window() as win:
        t0 = time.perf_counter()
        while True:
            net(xb)
            reps += 1
            sync()
            elapsed = time.perf_counter() - t0
            if elapsed >= target_s or elapsed >= max_time_s:
                break
    res = win.result
    assert res is not None
    notes = []
    if res.duration_s < target_s:
        notes.append(f"window {res.duration_s:.3g} s shorter than the {target_s:.3g} s needed "
                     f"(max_time_s={max_time_s:g} reached)")
    count = reps * xb.shape[0]
    if res.energy_j is None:
        why = "; ".join(f"{d.name}: {d.note}" for d in res.devices
                        if d.energy_j is None and d.note and d.method != "estimate")
        notes.append(f"the meter measured nothing ({why or 'no reading'})")
        return None, None, res.methods, "; ".join(notes), reps, res.duration_s, target_s
    per_1000 = res.energy_j / count * 1000.0
    above = None
    if res.energy_above_idle_j is not None:
        above = res.energy_above_idle_j / count * 1000.0
    if res.idle_note:
        notes.append(f"idle: {res.idle_note}")
    return per_1000, above, res.methods, "; ".join(notes), reps, res.duration_s, target_s


def inference_comparison(model: nn.Module, compacted: nn.Module,
                         input_shape: tuple[int, int, int], device: str | torch.device = "cpu",
                         meter: EnergyMeter | None = None, **options: Any) -> dict[str, Any]:
    """Measure ``model`` then ``compacted`` with the same settings; realised speed-ups as dense /
    compact (``> 1`` means the compact model is faster).

    Returns ``{"dense": ..., "compact": ...}`` (``InferenceResult.to_dict()``),
    ``realised_speedup_latency``, ``realised_speedup_throughput`` and ``realised_energy_ratio``
    (compact / dense energy per 1,000; ``None`` unless both were measured). ``options`` go to
    :func:`measure_inference`. The predicted (MACC) ratio is computed elsewhere.
    """
    dense = measure_inference(model, input_shape, device, meter=meter, **options)
    small = measure_inference(compacted, input_shape, device, meter=meter, **options)
    ratio = None
    if dense.energy_per_1000_j and small.energy_per_1000_j is not None:
        ratio = small.energy_per_1000_j / dense.energy_per_1000_j
    return {
        "dense": dense.to_dict(),
        "compact": small.to_dict(),
        "realised_speedup_latency": dense.latency_b1_s / small.latency_b1_s,
        "realised_speedup_throughput": small.throughput_per_s / dense.throughput_per_s,
        "realised_energy_ratio": ratio,
    }
