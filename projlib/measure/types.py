"""Typed results of the energy side of :mod:`projlib.measure`.

``None`` always means "not measured"; a measured zero is never invented. Every energy figure
carries its method, its sample count and its window length so a report can say how it was got.
"""

from __future__ import annotations

import dataclasses
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
class EnergyResult:
    """Result of one measurement window.

    ``energy_j`` is the sum over devices whose method is a measurement (NVML, RAPL), ``None`` when
    no device was measured; CodeCarbon's estimate stays a separate ``estimate`` device entry.
    """

    duration_s: float
    devices: list[DeviceEnergy] = field(default_factory=list)
    energy_j: float | None = None
    carbon_g: float | None = None
    carbon_method: str = "unavailable"
    carbon_intensity_g_per_kwh: float | None = None
    country_iso_code: str | None = None
    methods: str = "unavailable"

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
