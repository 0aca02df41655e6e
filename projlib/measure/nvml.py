"""GPU energy through NVML (package ``nvidia-ml-py``, import name ``pynvml``).

Two methods, chosen per device at probe time and recorded in every result:

* ``counter``: ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since driver load; Volta and
  newer). Energy = end - start. The counter is refreshed about every 100 ms on current drivers, so
  a shorter window is flagged ``short_window`` and a zero difference becomes ``None``.
* ``power-integral``: ``nvmlDeviceGetPowerUsage`` (milliwatts) sampled by one background thread
  at ``sample_hz`` (>= 10 Hz) and integrated with the trapezoid rule over the sample times,
  including one sample taken at each window edge.

An NVML error during a window sets that device's ``energy_j`` to ``None`` with a note; it never
raises out of the window and never turns into 0 J.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from projlib.measure.types import BackendReading, BackendStatus, DeviceEnergy

#: Power samples (edges included) a ``power-integral`` window needs to count as long enough in
#: :meth:`NvmlBackend.min_window_s`: at 20 Hz that is 0.5 s.
MIN_POWER_SAMPLES = 10


def _trapezoid_j(times_s: list[float], powers_w: list[float]) -> float:
    """Trapezoid integral of power over time: sum 0.5 (p_i + p_{i+1}) (t_{i+1} - t_i), O(n)."""
    total = 0.0
    for i in range(len(times_s) - 1):
        total += 0.5 * (powers_w[i] + powers_w[i + 1]) * (times_s[i + 1] - times_s[i])
    return total


class NvmlBackend:
    """Per-GPU energy from NVML; probing is lazy and cached (``status()``)."""

    name = "nvml"
    measures = True

    def __init__(self, sample_hz: float = 20.0, counter_period_s: float = 0.1) -> None:
        if not sample_hz >= 10.0:
            raise ValueError(f"sample_hz must be >= 10 (got {sample_hz!r})")
        if not counter_period_s > 0:
            raise ValueError(f"counter_period_s must be > 0 (got {counter_period_s!r})")
        self.sample_hz = float(sample_hz)
        self.counter_period_s = float(counter_period_s)
        self._status: BackendStatus | None = None
        self._nvml: Any = None
        self._devices: list[tuple[str, Any, str]] = []  # (name, handle, method)
        self._start_mj: dict[str, float] = {}
        self._samples: dict[str, tuple[list[float], list[float]]] = {}
        self._errors: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- probing -----------------------------------------------------------------------------
    def status(self) -> BackendStatus:
        """Probe once (init NVML, list devices, test the counter then the power reading)."""
        if self._status is None:
            self._status = self._probe()
        return self._status

    def _probe(self) -> BackendStatus:
        try:
            import pynvml  # noqa: PLC0415 - guarded: a missing nvidia-ml-py is reported, not raised
        except ImportError as exc:  # nvidia-ml-py is a dependency, but say so if it is missing
            return BackendStatus(self.name, False, f"pynvml not importable: {exc}")
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return BackendStatus(self.name, False, f"NVML init failed: {exc}")
        if count == 0:
            pynvml.nvmlShutdown()
            return BackendStatus(self.name, False, "NVML reports no GPU")
        self._nvml = pynvml
        notes = []
        for i in range(count):
            name = f"gpu{i}"
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            except pynvml.NVMLError as exc:  # e.g. a GPU lost or hidden by MIG settings
                notes.append(f"{name}: no handle ({exc})")
                continue
            try:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                method = "counter"
            except pynvml.NVMLError:
                try:
                    pynvml.nvmlDeviceGetPowerUsage(handle)
                    method = "power-integral"
                except pynvml.NVMLError as exc:
                    notes.append(f"{name}: neither energy counter nor power reading ({exc})")
                    continue
            self._devices.append((name, handle, method))
            notes.append(f"{name}: {method}")
        if not self._devices:
            return BackendStatus(self.name, False, "; ".join(notes))
        return BackendStatus(self.name, True, "; ".join(notes))

    def min_window_s(self) -> float:
        """Shortest window every probed GPU reads with useful resolution.

        ``counter``: one counter update period (shorter windows are flagged ``short_window``);
        ``power-integral``: :data:`MIN_POWER_SAMPLES` sampling periods. 0.0 with no device.
        """
        floors = [self.counter_period_s if method == "counter"
                  else MIN_POWER_SAMPLES / self.sample_hz
                  for _, _, method in self._devices]
        return max(floors, default=0.0)

    # -- window --------------------------------------------------------------------------------
    def begin(self) -> None:
        """Read the counters / start the sampler. Call only when ``status().available``."""
        self._start_mj, self._errors = {}, {}
        self._samples = {n: ([], []) for n, _, m in self._devices if m == "power-integral"}
        for name, handle, method in self._devices:
            if method == "counter":
                try:
                    self._start_mj[name] = float(
                        self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                    )
                except self._nvml.NVMLError as exc:
                    self._errors[name] = f"NVML error at window start: {exc}"
        if self._samples:
            self._sample_all()  # the window's left edge
            self._stop.clear()
            self._thread = threading.Thread(target=self._sampler, name="nvml-sampler", daemon=True)
            self._thread.start()

    def _sample_all(self) -> None:
        for name, handle, method in self._devices:
            if method != "power-integral" or name in self._errors:
                continue
            try:
                power_w = self._nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0  # mW -> W
            except self._nvml.NVMLError as exc:
                self._errors[name] = f"NVML error while sampling power: {exc}"
                continue
            with self._lock:
                times, powers = self._samples[name]
                times.append(time.perf_counter())
                powers.append(power_w)

    def _sampler(self) -> None:
        period_s = 1.0 / self.sample_hz
        while not self._stop.wait(period_s):
            self._sample_all()

    def end(self, window_s: float) -> BackendReading:
        """Stop sampling, read the counters and return one entry per GPU."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._sample_all()  # the window's right edge
        return BackendReading(tuple(self._device_result(name, handle, method, window_s)
                                    for name, handle, method in self._devices))

    def _device_result(self, name: str, handle: Any, method: str, window_s: float) -> DeviceEnergy:
        if method == "counter":
            short = window_s < self.counter_period_s
            if name in self._errors:
                return DeviceEnergy(name, "gpu", None, method, 0, window_s, short,
                                    self._errors[name])
            try:
                end_mj = float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            except self._nvml.NVMLError as exc:
                note = f"NVML error at window end: {exc}"
                return DeviceEnergy(name, "gpu", None, method, 1, window_s, short, note)
            delta_j = (end_mj - self._start_mj[name]) / 1000.0  # mJ -> J
            if delta_j <= 0.0 and short:
                note = f"window shorter than the counter update period ({self.counter_period_s} s)"
                return DeviceEnergy(name, "gpu", None, method, 2, window_s, True, note)
            return DeviceEnergy(name, "gpu", delta_j, method, 2, window_s, short)
        times, powers = self._samples.get(name, ([], []))
        short = window_s < 1.0 / self.sample_hz
        if name in self._errors:
            return DeviceEnergy(name, "gpu", None, method, len(times), window_s, short,
                                self._errors[name])
        if len(times) < 2:
            return DeviceEnergy(name, "gpu", None, method, len(times), window_s, short,
                                "fewer than two power samples")
        note = "only edge samples (window shorter than the sampling period)" if short else ""
        return DeviceEnergy(name, "gpu", _trapezoid_j(times, powers), method, len(times),
                            window_s, short, note)

    def close(self) -> None:
        """Stop a running sampler and shut NVML down (safe to call twice)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass  # already shut down / driver gone: nothing left to release
            self._nvml = None
        self._status, self._devices = None, []  # handles are invalid now: re-probe on next use
