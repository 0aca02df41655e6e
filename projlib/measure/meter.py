"""``EnergyMeter``: one measurement window over every available backend.

    meter = EnergyMeter(country_iso_code="FRA")
    with meter.window() as win:
        ...work...
    win.result  # EnergyResult

Backends (``nvml``, ``rapl``, ``codecarbon``, plus any ``extra_backends``) all implement
:class:`~projlib.measure.backend.EnergyBackend`; they are probed lazily on the first window and
cached, and a backend that is disabled or fails its probe is replaced by an
:class:`UnavailableBackend` holding the reason. The meter runs one loop over that list.
Carbon: measured energy (NVML + RAPL) x CodeCarbon's offline grid intensity when something was
measured, else CodeCarbon's own estimate (labelled so), else ``None``.
Idle baseline: :meth:`EnergyMeter.measure_idle` reads each device's idle power over an idle
window (the process just sleeps) through the same backends; :meth:`EnergyMeter.ensure_idle_baseline`
re-measures it when missing or stale, and ``idle_baseline_s > 0`` measures it once before the
first window. While a baseline is held, every result carries each measured device's idle power and
energy above idle, and their sums (see :class:`EnergyResult` for what is summed and why the
difference is not clipped at 0).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TypeVar

from projlib.checks import check_int, check_number
from projlib.measure.backend import EnergyBackend
from projlib.measure.carbon import DEFAULT_COUNTRY, JOULES_PER_KWH, CarbonBackend
from projlib.measure.nvml import NvmlBackend
from projlib.measure.rapl import DEFAULT_ROOT, RaplBackend
from projlib.measure.types import (
    MEASURED_METHODS,
    BackendReading,
    BackendStatus,
    DeviceEnergy,
    DeviceIdle,
    EnergyResult,
    IdleBaseline,
    summarise_methods,
    total_measured_j,
)
from projlib.measure.unavailable import UnavailableBackend

#: How each built-in backend is made from a :class:`MeterConfig` (nothing is probed here), in
#: the order a window reports them.
_FACTORIES: dict[str, Callable[[MeterConfig], EnergyBackend]] = {
    "nvml": lambda cfg: NvmlBackend(cfg.sample_hz, cfg.counter_period_s),
    "rapl": lambda cfg: RaplBackend(cfg.rapl_root),
    "codecarbon": lambda cfg: CarbonBackend(cfg.country_iso_code),
}
BACKEND_NAMES = tuple(_FACTORIES)
DISABLED = "disabled in MeterConfig.backends"
#: A window read by :meth:`EnergyMeter.measure_runs` spans at least this many update periods of
#: its slowest live backend (:meth:`EnergyMeter.min_window_s`): a counter read at both edges is
#: off by up to one update's energy, so ten periods bound that to about 10 % (NVML counter,
#: ~100 ms updates: 1 s; RAPL, ~1 ms: 10 ms; NVML power sampling at 20 Hz: 5 s).
READABLE_PERIODS = 10
T = TypeVar("T")


@dataclass(frozen=True)
class MeterConfig:
    """Settings of an :class:`EnergyMeter`, validated here (ValueError names the field)."""

    country_iso_code: str = DEFAULT_COUNTRY
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

    def __init__(self, country_iso_code: str = DEFAULT_COUNTRY, *,
                 backends: tuple[str, ...] = BACKEND_NAMES, sample_hz: float = 20.0,
                 counter_period_s: float = 0.1, rapl_root: str = DEFAULT_ROOT,
                 idle_baseline_s: float = 0.0,
                 clock: Callable[[], float] = time.time,
                 extra_backends: Sequence[EnergyBackend] = ()) -> None:
        """Settings as in :class:`MeterConfig`; nothing is probed until the first window.

        ``clock`` (seconds, default ``time.time``) stamps idle baselines and ages them in
        :meth:`ensure_idle_baseline`; tests inject a fake one. ``extra_backends`` are backend
        instances (any :class:`EnergyBackend`) read in every window besides the built-in ones
        named in ``backends``; their names must differ from those and from each other. They
        are closed by :meth:`close` and used again by the next window.
        """
        self.config = MeterConfig(country_iso_code, backends, sample_hz, counter_period_s,
                                  rapl_root, idle_baseline_s)
        extra = tuple(extra_backends)
        for b in extra:
            if not isinstance(b, EnergyBackend):
                raise TypeError(f"extra_backends must implement EnergyBackend "
                                f"(got {type(b).__name__})")
        names = [b.name for b in extra]
        if len(set(names)) < len(names) or set(names) & set(BACKEND_NAMES):
            raise ValueError(f"extra_backends names must be distinct and not in {BACKEND_NAMES} "
                             f"(got {names})")
        self._extra = extra
        self._backends: list[EnergyBackend] | None = None
        self._clock = clock
        #: The last idle baseline measured (``None`` until :meth:`measure_idle` runs).
        self.idle_baseline: IdleBaseline | None = None
        self._t0: float | None = None

    # -- backends ---------------------------------------------------------------------------
    def _all(self) -> list[EnergyBackend]:
        """Every backend of this meter, probed on the first call: measuring ones first.

        The order is the window's nesting, innermost first: :meth:`_begin` begins them last to
        first and :meth:`_end` ends them first to last, so the measuring backends sit tightest
        around the work and CodeCarbon (whose first begin builds its tracker) wraps them.
        """
        if self._backends is None:
            cfg = self.config
            made = [(make(cfg), name in cfg.backends) for name, make in _FACTORIES.items()]
            made += [(b, True) for b in self._extra]
            self._backends = sorted((_probed(b, enabled) for b, enabled in made),
                                    key=lambda b: not b.measures)
        return self._backends

    def _live(self) -> list[EnergyBackend]:
        """The backends that measure (not estimate) and passed their probe."""
        return [b for b in self._all() if b.measures and b.status().available]

    def statuses(self) -> list[BackendStatus]:
        """Probe (once) and report every backend of this meter."""
        return [b.status() for b in self._all()]

    def can_measure(self) -> bool:
        """True when at least one energy backend (NVML, RAPL) passed its probe.

        CodeCarbon does not count: its figure is an estimate, never summed into ``energy_j``.
        """
        return bool(self._live())

    def min_window_s(self) -> float:
        """Shortest window that every live energy backend reads with useful resolution.

        NVML counter: its update period (``counter_period_s``); NVML power sampling:
        ``nvml.MIN_POWER_SAMPLES / sample_hz``; RAPL: its ~1 ms update period. 0.0 when nothing
        can measure. Precision improves with length: a counter read at both edges is off by up to
        one update's energy, so ten periods give about 10 %.
        """
        return max((b.min_window_s() for b in self._live()), default=0.0)

    def window(self) -> Window:
        return Window(self)

    def readable_window_s(self) -> float:
        """Shortest window :meth:`measure_runs` reads: ``READABLE_PERIODS`` x
        :meth:`min_window_s` (0.0 when nothing can measure)."""
        return READABLE_PERIODS * self.min_window_s()

    def measure_runs(self, work: Callable[[], T], *, max_runs: int = 100,
                     max_time_s: float = 60.0) -> tuple[T, EnergyResult]:
        """Run ``work`` inside one window, repeated until the window is readable; returns the
        first run's value and the energy **per run**.

        Where nothing measures, ``work`` runs once (no repeat is worth its time for an
        estimate). Where one run is shorter than :meth:`readable_window_s`, ``work`` runs again
        in the same window until the window reaches it, ``max_runs`` runs or ``max_time_s``
        seconds; every energy and carbon figure of the result is then the window's divided by
        ``result.runs``, and ``result.window_note`` says why. A measured device whose window
        is still shorter than its backend's update period (``short_window``) is not stored
        as a figure below resolution: its energy becomes ``None`` with a note.
        """
        check_int("max_runs", max_runs, 1)
        target_s = self.readable_window_s()
        first: list[T] = []  # only the first run's value is kept (a repeat's may be large)
        runs = 0
        self._begin()
        t0 = time.perf_counter()
        try:
            while True:
                value = work()
                runs += 1
                if runs == 1:
                    first.append(value)
                del value
                elapsed = time.perf_counter() - t0
                if elapsed >= target_s or runs >= max_runs or elapsed >= max_time_s:
                    break
        finally:
            # measured even when the work raised: the energy was spent all the same
            result = self._end(runs=max(1, runs), target_s=target_s)
        return first[0], result

    # -- idle baseline ------------------------------------------------------------------------
    def measure_idle(self, duration_s: float = 2.0) -> IdleBaseline:
        """Read every device's idle power over ``duration_s`` seconds of sleep; keep and return it.

        Runs the measuring backends a window uses (NVML, RAPL; not CodeCarbon, whose figure is a
        model) around ``time.sleep(duration_s)`` in this process, so the process itself is idle
        but the rest of the machine is not controlled: run it when the machine is otherwise quiet.
        A device whose reading is missing or flagged ``short_window`` gets ``None`` and a reason.
        When no backend can measure, no window is run (``duration_s`` of the baseline is 0.0) and
        each unavailable backend gets ``None`` with "no energy backend measures this device".
        """
        check_number("duration_s", duration_s, 0, low_open=True)
        if self._t0 is not None:
            raise RuntimeError("cannot measure idle power while a window of this EnergyMeter "
                               "is open")
        measuring = [b for b in self._all() if b.measures]
        window_s = 0.0
        if self.can_measure():  # else each is a stand-in, whose reading only says why
            t0 = _begin_all(measuring)
            time.sleep(duration_s)
            window_s = time.perf_counter() - t0
        devices = [_idle_of(d, window_s) for r in _end_all(measuring, window_s) for d in r]
        self.idle_baseline = IdleBaseline(tuple(devices), float(self._clock()), window_s)
        return self.idle_baseline

    def ensure_idle_baseline(self, max_age_s: float = 600.0,
                             duration_s: float = 2.0) -> IdleBaseline:
        """Return the held baseline, re-measured first when missing or older than ``max_age_s``.

        Age is read on the meter's clock. Idle power drifts with temperature and with what else
        runs on the machine, hence the default of ten minutes.
        """
        check_number("max_age_s", max_age_s, 0, finite=False)
        base = self.idle_baseline
        if base is None or self._clock() - base.measured_at > max_age_s:
            return self.measure_idle(duration_s)
        return base

    # -- window internals ---------------------------------------------------------------------
    def _begin(self) -> None:
        if self._t0 is not None:
            raise RuntimeError("a window of this EnergyMeter is already open")
        backends = self._all()
        if self.idle_baseline is None and self.config.idle_baseline_s > 0:
            self.measure_idle(self.config.idle_baseline_s)
        self._t0 = _begin_all(backends)

    def _end(self, runs: int = 1, target_s: float | None = None) -> EnergyResult:
        if self._t0 is None:
            raise RuntimeError("no window of this EnergyMeter is open")
        window_s = time.perf_counter() - self._t0
        self._t0 = None
        readings = _end_all(self._all(), window_s)
        devices = [d for r in readings for d in r]
        if self.idle_baseline is not None:
            devices = [self._with_idle(d) for d in devices]
        if target_s is None:  # a plain window: as the backends read it
            return self._assemble(window_s, devices, readings)
        devices = [_per_run(d, runs) for d in devices]
        notes = []
        if runs > 1:
            notes.append(f"one run was shorter than the {target_s:.3g} s the backends read "
                         f"({READABLE_PERIODS} update periods): {runs} runs in one window, "
                         "figures per run")
        if target_s > 0 and window_s < target_s:
            notes.append(f"window {window_s:.3g} s still short of {target_s:.3g} s "
                         "(max_runs or max_time_s reached)")
        dropped = [d.name for d in devices if d.note.startswith(_BELOW_RESOLUTION)]
        if dropped:
            notes.append(f"not stored, below resolution: {', '.join(dropped)}")
        result = self._assemble(window_s, devices, readings)
        carbon_g = result.carbon_g
        if result.energy_j is None and carbon_g is not None:
            carbon_g /= runs  # CodeCarbon's estimate covers the whole window
        return replace(result, runs=runs, carbon_g=carbon_g, window_note="; ".join(notes))

    def _assemble(self, window_s: float, devices: list[DeviceEnergy],
                  readings: list[BackendReading]) -> EnergyResult:
        measured_j = total_measured_j(devices)
        iso = self.config.country_iso_code
        rated = next((r for r in readings if r.carbon_intensity_g_per_kwh is not None), None)
        estimated = next((r for r in readings if r.carbon_g is not None), None)
        intensity = rated.carbon_intensity_g_per_kwh if rated is not None else None
        if measured_j is not None and rated is not None:
            carbon_g: float | None = measured_j / JOULES_PER_KWH * intensity
            carbon_method = f"measured energy x {rated.carbon_source} intensity ({iso})"
        elif estimated is not None:
            carbon_g = estimated.carbon_g
            carbon_method = f"{estimated.carbon_source} estimate ({iso})"
        else:
            carbon_g = None
            notes = "; ".join(r.carbon_note for r in readings if r.carbon_note)
            carbon_method = f"unavailable: {notes or 'no backend gives carbon'}"
        shown = [d for d in devices if d.method != "unavailable"]
        above_j, idle_w, idle_note = self._idle_totals(devices, measured_j)
        return EnergyResult(
            duration_s=window_s, devices=devices, energy_j=measured_j, carbon_g=carbon_g,
            carbon_method=carbon_method, carbon_intensity_g_per_kwh=intensity,
            country_iso_code=iso, methods=summarise_methods(shown),
            energy_above_idle_j=above_j, idle_power_w=idle_w, idle_note=idle_note,
        )

    def _with_idle(self, d: DeviceEnergy) -> DeviceEnergy:
        base = self.idle_baseline
        idle_w = None if base is None else base.power_w(d.name)
        if idle_w is None or d.energy_j is None or d.method not in MEASURED_METHODS:
            return d
        # may be negative when the work ran below the idle reading: reported as is, not clipped
        return replace(d, idle_power_w=idle_w, energy_above_idle_j=d.energy_j - idle_w * d.window_s)

    def _idle_totals(self, devices: list[DeviceEnergy], measured_j: float | None
                     ) -> tuple[float | None, float | None, str]:
        base = self.idle_baseline
        if base is None:
            return None, None, "no idle baseline (EnergyMeter.measure_idle was not run)"
        if measured_j is None:
            return None, None, "no device measured energy"
        measured = [d for d in devices if d.method in MEASURED_METHODS and d.energy_j is not None]
        with_idle = [d for d in measured if d.energy_above_idle_j is not None]
        without = [f"{d.name} ({base.reason(d.name)})" for d in measured
                   if d.energy_above_idle_j is None]
        if not with_idle:
            return None, None, "no measured device has an idle figure: " + "; ".join(without)
        above_j = float(sum(d.energy_above_idle_j for d in with_idle))
        idle_w = float(sum(d.idle_power_w for d in with_idle))
        notes = []
        if without:
            notes.append(f"above idle over {', '.join(d.name for d in with_idle)} only; "
                         f"no idle figure for {'; '.join(without)}")
        if above_j < 0:
            notes.append("negative: the window used less than idle power x duration "
                         "(noise or a hotter idle reading; not clipped)")
        return above_j, idle_w, "; ".join(notes)

    def close(self) -> None:
        """Release every backend (NVML, the CodeCarbon tracker); the meter re-probes if used again.

        The idle baseline is kept (it describes the hardware, not the handles); it ages as usual.
        """
        for b in self._backends or []:
            b.close()
        self._backends = None

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_backends(rapl_root: str = DEFAULT_ROOT, country_iso_code: str = DEFAULT_COUNTRY,
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
    cfg = MeterConfig(country_iso_code, rapl_root=rapl_root)
    backends = [make(cfg) for make in _FACTORIES.values()]
    statuses = tuple(b.status() for b in backends)
    for b in backends:
        b.close()
    return statuses


def _probed(backend: EnergyBackend, enabled: bool) -> EnergyBackend:
    """``backend`` when enabled and its probe passes, else its stand-in (a failed one is closed
    first: a partial probe may hold a handle)."""
    if not enabled:
        return UnavailableBackend.replacing(backend, DISABLED)
    status = backend.status()
    if status.available:
        return backend
    backend.close()
    return UnavailableBackend.replacing(backend, status.reason)


def _begin_all(backends: list[EnergyBackend]) -> float:
    """Begin ``backends`` last to first (the first is innermost); the window starts now."""
    for b in reversed(backends):
        b.begin()
    return time.perf_counter()


def _end_all(backends: list[EnergyBackend], window_s: float) -> list[BackendReading]:
    """End ``backends`` first to last; one reading each, in order."""
    return [b.end(window_s) for b in backends]


_BELOW_RESOLUTION = "below resolution"


def _per_run(d: DeviceEnergy, runs: int) -> DeviceEnergy:
    """``d`` with its energies per run; a measured figure read over a window shorter than its
    backend's update period becomes ``None`` (a reading below resolution is not a figure)."""
    if d.energy_j is None or d.method == "unavailable":
        return d
    if d.short_window and d.method in MEASURED_METHODS:
        note = (f"{_BELOW_RESOLUTION}: window {d.window_s:.3g} s shorter than the device's "
                f"update period, reading of {d.energy_j:.3g} J not stored")
        return replace(d, energy_j=None, energy_above_idle_j=None, note=note)
    above = None if d.energy_above_idle_j is None else d.energy_above_idle_j / runs
    return replace(d, energy_j=d.energy_j / runs, energy_above_idle_j=above)


def _idle_of(d: DeviceEnergy, window_s: float) -> DeviceIdle:
    """Idle power of one device from its idle-window reading; ``None`` with a reason if unusable."""
    if d.method == "unavailable":
        return DeviceIdle(d.name, d.kind, None, d.method, window_s,
                          f"no energy backend measures this device: {d.note}")
    if d.short_window:
        reason = "window too short" + (f": {d.note}" if d.note else
                                       " for this device's update period")
        return DeviceIdle(d.name, d.kind, None, d.method, window_s, reason)
    if d.energy_j is None:
        return DeviceIdle(d.name, d.kind, None, d.method, window_s, d.note or "no reading")
    return DeviceIdle(d.name, d.kind, d.energy_j / window_s, d.method, window_s)
