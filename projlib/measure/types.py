"""Typed results of the energy side of :mod:`projlib.measure`.

``None`` always means "not measured"; a measured zero is never invented. Every energy figure
carries its method, its sample count and its window length so a report can say how it was got.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: Methods whose figures are measurements (summed into ``EnergyResult.energy_j``).
MEASURED_METHODS = ("counter", "power-integral", "rapl")
#: Method label of a model-based figure (CodeCarbon): shown, never summed with measurements.
ESTIMATE_METHOD = "estimate"


@dataclass(frozen=True)
class BackendStatus:
    """Outcome of probing one backend: ``reason`` says why it is (un)available."""

    name: str
    available: bool
    reason: str


@dataclass(frozen=True)
class DeviceEnergy:
    """Energy of one device over one window.

    ``method`` is one of ``counter`` (NVML total-energy counter), ``power-integral`` (NVML power
    sampled in a thread, trapezoid rule), ``rapl`` (powercap energy counter) or ``estimate``
    (CodeCarbon's load/TDP model), or ``unavailable``. ``short_window`` is True when the window was
    shorter than the counter's update period: then a zero reading becomes ``energy_j=None``.
    """

    name: str
    kind: str  # "gpu" | "cpu" | "dram" | "machine"
    energy_j: float | None
    method: str
    samples: int
    window_s: float
    short_window: bool = False
    note: str = ""
    idle_power_w: float | None = None
    energy_above_idle_j: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BackendReading:
    """What one backend read over one window (see :class:`projlib.measure.backend.EnergyBackend`).

    ``devices`` holds one row per device the backend covers (none for a stand-in of an estimating
    backend). The carbon fields are for a backend that also knows carbon (CodeCarbon):
    ``carbon_g`` is its own estimate for the window (g CO2eq), ``carbon_intensity_g_per_kwh`` the
    grid intensity it applies (the meter multiplies *measured* energy by it), ``carbon_source``
    names both in ``EnergyResult.carbon_method`` (e.g. ``"CodeCarbon offline"``) and
    ``carbon_note`` says why ``carbon_g`` is ``None``. All stay empty for a backend without carbon.

    Iterating a reading yields its devices, so ``(gpu0,) = backend.end(window_s)`` unpacks it.
    """

    devices: tuple[DeviceEnergy, ...] = ()
    carbon_g: float | None = None
    carbon_intensity_g_per_kwh: float | None = None
    carbon_source: str = ""
    carbon_note: str = ""

    def __iter__(self) -> Iterator[DeviceEnergy]:
        return iter(self.devices)


@dataclass(frozen=True)
class DeviceIdle:
    """Idle power of one device, or ``None`` with the ``reason`` it could not be measured.

    ``name`` is the device name a window reports (``gpu0``, ``package-0``, ``package-0/dram``;
    the backend name ``nvml``/``rapl`` when that backend is unavailable). ``window_s`` is the
    length of the idle window the figure was read over.
    """

    name: str
    kind: str
    idle_power_w: float | None
    method: str
    window_s: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class IdleBaseline:
    """Idle power of every device the meter's windows report, read over one idle window.

    ``measured_at`` is the meter clock (``time.time()`` unless injected) when the idle window
    ended; ``duration_s`` is the idle window's length (0.0 when no backend could measure, in which
    case no window is run and every ``idle_power_w`` is ``None`` with a reason).
    """

    devices: tuple[DeviceIdle, ...]
    measured_at: float
    duration_s: float

    def power_w(self, name: str) -> float | None:
        """Idle power of device ``name``; ``None`` when unmeasured or unknown to this baseline."""
        for d in self.devices:
            if d.name == name:
                return d.idle_power_w
        return None

    def reason(self, name: str) -> str:
        """Why device ``name`` has no idle figure ("" when it has one)."""
        for d in self.devices:
            if d.name == name:
                return d.reason
        return "not in the idle baseline"

    @property
    def measured(self) -> bool:
        """True when at least one device has an idle figure."""
        return any(d.idle_power_w is not None for d in self.devices)

    def to_dict(self) -> dict[str, Any]:
        return {"devices": [d.to_dict() for d in self.devices],
                "measured_at": self.measured_at, "duration_s": self.duration_s}


@dataclass(frozen=True)
class EnergyResult:
    """Result of one measurement window.

    ``energy_j`` is the sum over devices whose method is a measurement (NVML, RAPL), ``None`` when
    no device was measured; CodeCarbon's estimate stays a separate ``estimate`` device entry.

    ``energy_above_idle_j`` sums, over the measured devices that have an idle figure,
    ``energy_j - idle_power_w * window_s``; ``idle_power_w`` is the sum of those devices' idle
    powers. Both are ``None`` when ``energy_j`` is ``None`` or when no measured device has an idle
    figure, and ``idle_note`` says why; when only some devices have one, the sums cover those only
    and ``idle_note`` names the devices left out. The difference is *not* clipped at 0: a
    negative value means the work could not be told apart from idle (noise, or idle measured
    hotter than the work); clipping would hide that and bias averages over repeats upwards.
    ``idle_note`` says so when the sum is negative.
    """

    duration_s: float
    devices: list[DeviceEnergy] = field(default_factory=list)
    energy_j: float | None = None
    carbon_g: float | None = None
    carbon_method: str = "unavailable"
    carbon_intensity_g_per_kwh: float | None = None
    country_iso_code: str | None = None
    methods: str = "unavailable"
    energy_above_idle_j: float | None = None
    idle_power_w: float | None = None
    idle_note: str = "no idle baseline (EnergyMeter.measure_idle was not run)"
    #: Runs of the work inside the window (`EnergyMeter.measure_runs`): every energy and carbon
    #: figure above, per device and summed, is per run (the window's total / runs);
    #: ``duration_s`` and each device's ``window_s`` stay the whole window's.
    runs: int = 1
    #: Why the window was widened or a device's figure dropped ("" when neither).
    window_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["devices"] = [d.to_dict() for d in self.devices]
        return out


def summarise_methods(devices: list[DeviceEnergy]) -> str:
    """One-line summary such as ``"gpu0:counter, package-0:rapl, machine:estimate"``."""
    if not devices:
        return "unavailable"
    return ", ".join(f"{d.name}:{d.method}" for d in devices)


def total_measured_j(devices: list[DeviceEnergy]) -> float | None:
    """Sum of measured energies; ``None`` when nothing was measured (never 0 by default)."""
    values = [d.energy_j for d in devices
              if d.method in MEASURED_METHODS and d.energy_j is not None]
    return float(sum(values)) if values else None
