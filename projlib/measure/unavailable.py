"""The backend left when nothing can be measured: its figures are ``None``, never 0."""

from __future__ import annotations

from projlib.measure.backend import EnergyBackend
from projlib.measure.types import BackendReading, BackendStatus, DeviceEnergy


class UnavailableBackend:
    """Stands in for a backend that is off or failed its probe; keeps the reason.

    ``measures`` is that of the backend it replaces. Standing in for a measuring backend (NVML,
    RAPL) its window reports one ``unavailable`` row named after the backend; standing in for an
    estimating one (CodeCarbon) it reports no row (there is no estimate to show) and its reason
    becomes the reading's ``carbon_note``, which ``EnergyResult.carbon_method`` shows.
    """

    def __init__(self, name: str, reason: str, *, measures: bool = True) -> None:
        self.name = name
        self.reason = reason
        self.measures = measures

    @classmethod
    def replacing(cls, backend: EnergyBackend, reason: str) -> UnavailableBackend:
        """The stand-in for ``backend``: same name and ``measures``, with ``reason``."""
        return cls(backend.name, reason, measures=backend.measures)

    def status(self) -> BackendStatus:
        return BackendStatus(self.name, False, self.reason)

    def min_window_s(self) -> float:
        """Nothing is measured, so no window is too short."""
        return 0.0

    def begin(self) -> None:
        """Nothing to read."""

    def end(self, window_s: float) -> BackendReading:
        if not self.measures:
            return BackendReading(carbon_note=self.reason)
        return BackendReading((DeviceEnergy(self.name, "none", None, "unavailable", 0, window_s,
                                            False, self.reason),))

    def close(self) -> None:
        """Nothing is held."""
