"""``EnergyMeter``: one measurement window over every available backend.

    meter = EnergyMeter(country_iso_code="FRA")
    with meter.window() as win:
        ...work...
    win.result  # EnergyResult

Backends (``nvml``, ``rapl``, ``codecarbon``) are probed lazily on the first window and cached;
a backend that fails its probe is replaced by an :class:`UnavailableBackend` holding the reason.
Carbon: measured energy (NVML + RAPL) x CodeCarbon's offline grid intensity when something was
measured, else CodeCarbon's own estimate (labelled so), else ``None``.
Optional idle baseline: ``idle_baseline_s > 0`` measures an idle window (``time.sleep``) once,
before the first window, and adds each device's idle power and energy above idle to results.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, replace
from types import TracebackType

from projlib.measure.carbon import JOULES_PER_KWH, CarbonBackend
from projlib.measure.nvml import NvmlBackend
from projlib.measure.rapl import DEFAULT_ROOT, RaplBackend
from projlib.measure.types import (
    BackendStatus,
    DeviceEnergy,
    EnergyResult,
    summarise_methods,
    total_measured_j,
)
from projlib.measure.unavailable import UnavailableBackend

BACKEND_NAMES = ("nvml", "rapl", "codecarbon")


@dataclass(frozen=True)
class MeterConfig:
    """Settings of an :class:`EnergyMeter`, validated here (ValueError names the field)."""

    country_iso_code: str = "FRA"
    backends: tuple[str, ...] = BACKEND_NAMES
    sample_hz: float = 20.0
    counter_period_s: float = 0.1
    rapl_root: str = DEFAULT_ROOT
    idle_baseline_s: float = 0.0

    def __post_init__(self) -> None:
        backends = self.backends
        names_ok = isinstance(backends, tuple) and all(b in BACKEND_NAMES for b in backends)
        if not names_ok:
            raise ValueError(f"backends must be a tuple drawn from {BACKEND_NAMES} "
                             f"(got {self.backends!r})")
        if not isinstance(self.sample_hz, (int, float)) or self.sample_hz < 10:
            raise ValueError(f"sample_hz must be a number >= 10 (got {self.sample_hz!r})")
        if not isinstance(self.counter_period_s, (int, float)) or self.counter_period_s <= 0:
            raise ValueError(f"counter_period_s must be > 0 (got {self.counter_period_s!r})")
        if not isinstance(self.idle_baseline_s, (int, float)) or self.idle_baseline_s < 0:
            raise ValueError(f"idle_baseline_s must be >= 0 (got {self.idle_baseline_s!r})")
        if not isinstance(self.rapl_root, (str, os.PathLike)):
            raise TypeError(f"rapl_root must be a path (got {type(self.rapl_root).__name__})")
        CarbonBackend(self.country_iso_code)  # validates country_iso_code, probes nothing


class Window:
    """One measurement window; use as a context manager or call ``start()`` / ``stop()``."""

    def __init__(self, meter: EnergyMeter) -> None:
        self._meter = meter
        self.result: EnergyResult | None = None

    def start(self) -> Window:
        self._meter._begin()
        return self

    def stop(self) -> EnergyResult:
        self.result = self._meter._end()
        return self.result

    def __enter__(self) -> Window:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # measure even when the work raised: the energy was spent all the same
        self.stop()


class EnergyMeter:
    """Measures energy (and carbon) over windows; one window at a time per meter."""

    def __init__(self, country_iso_code: str = "FRA", *,
                 backends: tuple[str, ...] = BACKEND_NAMES, sample_hz: float = 20.0,
                 counter_period_s: float = 0.1, rapl_root: str = DEFAULT_ROOT,
                 idle_baseline_s: float = 0.0) -> None:
        """Settings as in :class:`MeterConfig`; nothing is probed until the first window."""
        self.config = MeterConfig(country_iso_code, backends, sample_hz, counter_period_s,
                                  rapl_root, idle_baseline_s)
        self._backends: list | None = None
        self._carbon: CarbonBackend | None = None
        self._idle_w: dict[str, float | None] | None = None
        self._t0: float | None = None

    # -- backends ---------------------------------------------------------------------------
    def _make_backends(self) -> None:
        cfg = self.config
        makers = {
            "nvml": lambda: NvmlBackend(cfg.sample_hz, cfg.counter_period_s),
            "rapl": lambda: RaplBackend(cfg.rapl_root),
        }
        self._backends = []
        for name in ("nvml", "rapl"):
            backend = makers[name]() if name in cfg.backends else None
            if backend is None:
                self._backends.append(UnavailableBackend(name, "disabled in MeterConfig.backends"))
            elif backend.status().available:
                self._backends.append(backend)
            else:
                self._backends.append(UnavailableBackend(name, backend.status().reason))
        if "codecarbon" in cfg.backends:
            carbon = CarbonBackend(cfg.country_iso_code)
            self._carbon = carbon if carbon.status().available else None
            self._carbon_status = carbon.status()
        else:
            self._carbon_status = BackendStatus("codecarbon", False,
                                                "disabled in MeterConfig.backends")

    def statuses(self) -> list[BackendStatus]:
        """Probe (once) and report every backend of this meter."""
        if self._backends is None:
            self._make_backends()
        return [b.status() for b in self._backends] + [self._carbon_status]

    def window(self) -> Window:
        return Window(self)

    # -- window internals ---------------------------------------------------------------------
    def _begin(self) -> None:
        if self._t0 is not None:
            raise RuntimeError("a window of this EnergyMeter is already open")
        if self._backends is None:
            self._make_backends()
        if self._idle_w is None and self.config.idle_baseline_s > 0:
            self._idle_w = self._measure_idle()
        if self._carbon is not None:
            self._carbon.begin()  # first call builds the tracker: keep it outside the timing
        for b in self._live():
            b.begin()
        self._t0 = time.perf_counter()

    def _live(self) -> list:
        return [b for b in self._backends or [] if not isinstance(b, UnavailableBackend)]

    def _end(self) -> EnergyResult:
        if self._t0 is None:
            raise RuntimeError("no window of this EnergyMeter is open")
        window_s = time.perf_counter() - self._t0
        self._t0 = None
        devices: list[DeviceEnergy] = []
        for b in self._backends or []:
            if isinstance(b, UnavailableBackend):
                devices.append(b.result(window_s))
            else:
                devices.extend(b.end(window_s))
        carbon_est_g, carbon_note = None, self._carbon_status.reason
        if self._carbon is not None:
            estimate, carbon_est_g = self._carbon.end()
            devices.append(estimate)
            carbon_note = estimate.note
        if self._idle_w:
            devices = [self._with_idle(d) for d in devices]
        return self._assemble(window_s, devices, carbon_est_g, carbon_note)

    def _assemble(self, window_s: float, devices: list[DeviceEnergy],
                  carbon_est_g: float | None, carbon_note: str) -> EnergyResult:
        measured_j = total_measured_j(devices)
        iso = self.config.country_iso_code
        intensity = self._carbon.intensity_g_per_kwh if self._carbon is not None else None
        if measured_j is not None and intensity is not None:
            carbon_g: float | None = measured_j / JOULES_PER_KWH * intensity
            carbon_method = f"measured energy x CodeCarbon offline intensity ({iso})"
        elif carbon_est_g is not None:
            carbon_g, carbon_method = carbon_est_g, f"CodeCarbon offline estimate ({iso})"
        else:
            carbon_g = None
            carbon_method = f"unavailable: {carbon_note}"
        shown = [d for d in devices if d.method != "unavailable"]
        return EnergyResult(
            duration_s=window_s, devices=devices, energy_j=measured_j, carbon_g=carbon_g,
            carbon_method=carbon_method, carbon_intensity_g_per_kwh=intensity,
            country_iso_code=iso, methods=summarise_methods(shown),
        )

    def _measure_idle(self) -> dict[str, float | None]:
        for b in self._live():
            b.begin()
        t0 = time.perf_counter()
        time.sleep(self.config.idle_baseline_s)
        window_s = time.perf_counter() - t0
        idle: dict[str, float | None] = {}
        for b in self._live():
            for d in b.end(window_s):
                idle[d.name] = None if d.energy_j is None else d.energy_j / window_s
        return idle

    def _with_idle(self, d: DeviceEnergy) -> DeviceEnergy:
        idle_w = (self._idle_w or {}).get(d.name)
        if idle_w is None or d.energy_j is None:
            return d
        # may be negative when the work ran below the idle reading: reported as is, not clamped
        return replace(d, idle_power_w=idle_w, energy_above_idle_j=d.energy_j - idle_w * d.window_s)

    def close(self) -> None:
        """Release NVML and the CodeCarbon tracker; the meter re-probes if used again."""
        for b in self._live():
            b.close()
        if self._carbon is not None:
            self._carbon.close()
        self._backends, self._carbon, self._idle_w = None, None, None

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_backends(rapl_root: str = DEFAULT_ROOT, country_iso_code: str = "FRA",
                   refresh: bool = False) -> list[BackendStatus]:
    """Status of nvml, rapl and codecarbon on this machine.

    Probed on the first call for given arguments and cached (hardware does not come and go
    within a process); ``refresh=True`` probes again.
    """
    if refresh:
        _probe_cached.cache_clear()
    return list(_probe_cached(str(rapl_root), country_iso_code))


@functools.lru_cache(maxsize=8)
def _probe_cached(rapl_root: str, country_iso_code: str) -> tuple[BackendStatus, ...]:
    nvml = NvmlBackend()
    statuses = (nvml.status(), RaplBackend(rapl_root).status(),
                CarbonBackend(country_iso_code).status())
    nvml.close()
    return statuses
