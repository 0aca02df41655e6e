"""The backend left when nothing can be measured: its figures are ``None``, never 0."""

from __future__ import annotations

from projlib.measure.types import BackendStatus, DeviceEnergy


class UnavailableBackend:
    """Stands in for a backend that is off or failed its probe; keeps the reason."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def status(self) -> BackendStatus:
        return BackendStatus(self.name, False, self.reason)

    def min_window_s(self) -> float:
        """Nothing is measured, so no window is too short."""
        return 0.0

    def result(self, window_s: float) -> DeviceEnergy:
        return DeviceEnergy(self.name, "none", None, "unavailable", 0, window_s, False, self.reason)
