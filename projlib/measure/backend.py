"""The one interface every energy backend implements (docs/METHOD.md §6.1, §6.2).

:class:`~projlib.measure.meter.EnergyMeter` keeps a list of :class:`EnergyBackend` and drives
them all through the same calls; it never asks which backend it holds. The real ones are
:class:`~projlib.measure.nvml.NvmlBackend`, :class:`~projlib.measure.rapl.RaplBackend`,
:class:`~projlib.measure.carbon.CarbonBackend`, and the
:class:`~projlib.measure.unavailable.UnavailableBackend` that stands in for one that is off or
failed its probe. Another backend plugs in through ``EnergyMeter(extra_backends=...)``.

A window over a backend ``b`` is ``b.begin()``, the work, then ``b.end(window_s)``. The meter
replaces a backend whose probe fails by a stand-in, so it opens windows only on backends that
are available or stand-ins (whose ``begin`` does nothing and whose ``end`` says why nothing was
read).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from projlib.measure.types import BackendReading, BackendStatus


@runtime_checkable
class EnergyBackend(Protocol):
    """An energy (and possibly carbon) source read around a window of work."""

    #: Backend name, as in ``MeterConfig.backends`` and :class:`BackendStatus` (``"nvml"``).
    name: str
    #: True when the backend's rows are measurements (methods in ``MEASURED_METHODS``): the
    #: meter counts it in ``can_measure``/``min_window_s`` and reads it in idle windows. False
    #: for an estimate (CodeCarbon's model), which is only shown, never summed.
    measures: bool

    def status(self) -> BackendStatus:
        """Whether the backend can read, and why (not); probed on the first call, then cached."""
        ...

    def min_window_s(self) -> float:
        """Shortest window the backend reads with useful resolution; 0.0 when it has no floor."""
        ...

    def begin(self) -> None:
        """Open a window: read the start counters, start a sampler. Never raises for a read
        error; the error goes into the reading of :meth:`end`."""
        ...

    def end(self, window_s: float) -> BackendReading:
        """Close the window the meter timed as ``window_s`` seconds and return what was read.

        A backend that times its own window (CodeCarbon's task) may report its own length.
        A device that could not be read gets ``energy_j=None`` with a note, never 0.
        """
        ...

    def close(self) -> None:
        """Release what probing and windows hold (safe to call twice); a later ``status()``
        may probe again."""
        ...
