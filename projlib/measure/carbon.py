"""Carbon through CodeCarbon's *offline* tracker (never the online one, which calls a geo API).

The country is explicit (ISO 3166-1 alpha-3, e.g. ``"FRA"``) and its grid carbon intensity
(g CO2eq/kWh) is read from CodeCarbon's bundled energy-mix table. The tracker is created on the
first window (hardware detection takes about a second, outside the timed window) and each window
is a CodeCarbon *task* (``start_task``/``stop_task``), so no periodic scheduler runs between
windows and nothing is written to disk (``output_methods=[]``, i.e. ``save_to_file=False``).

CodeCarbon's energy on a machine without RAPL/NVML access is a model (CPU TDP x load, RAM by
size), so its figures are labelled ``estimate`` and never summed with measurements.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from projlib.measure.types import ESTIMATE_METHOD, BackendReading, BackendStatus, DeviceEnergy

JOULES_PER_KWH = 3.6e6
#: Names CodeCarbon's figures in ``EnergyResult.carbon_method``.
CARBON_SOURCE = "CodeCarbon offline"
# The grid used when none is given: the paper's authors' (France); pass yours (--country).
DEFAULT_COUNTRY = "FRA"


def _quiet_codecarbon() -> None:
    # CodeCarbon logs INFO lines from its constructor before it applies its own log_level.
    logging.getLogger("codecarbon").setLevel(logging.ERROR)


def carbon_intensity_g_per_kwh(country_iso_code: str) -> float | None:
    """Grid intensity CodeCarbon's offline mode uses for ``country_iso_code``; None if unknown."""
    from codecarbon.input import DataSource  # noqa: PLC0415 - heavy (about 1 s to import), needed only when carbon is estimated

    row = DataSource().get_global_energy_mix_data().get(country_iso_code)
    return None if row is None else float(row["carbon_intensity"])


class CarbonBackend:
    """CodeCarbon offline estimate of machine energy and carbon over a window."""

    name = "codecarbon"
    measures = False  # a load x TDP model: shown as an estimate, never summed with measurements

    def __init__(self, country_iso_code: str) -> None:
        if not (isinstance(country_iso_code, str) and len(country_iso_code) == 3
                and country_iso_code.isalpha() and country_iso_code.isupper()):
            raise ValueError(
                f"country_iso_code must be an upper-case ISO 3166-1 alpha-3 code such as 'FRA' "
                f"(got {country_iso_code!r})"
            )
        self.country_iso_code = country_iso_code
        self.intensity_g_per_kwh: float | None = None
        self._status: BackendStatus | None = None
        self._tracker: Any = None
        self._task: str | None = None
        self._error: str | None = None
        self._t0 = 0.0

    def status(self) -> BackendStatus:
        if self._status is None:
            self._status = self._probe()
        return self._status

    def _probe(self) -> BackendStatus:
        try:
            import codecarbon  # noqa: F401, PLC0415 - heavy (about 1 s to import), needed only when carbon is estimated
        except ImportError as exc:
            return BackendStatus(self.name, False, f"codecarbon not importable: {exc}")
        _quiet_codecarbon()
        intensity = carbon_intensity_g_per_kwh(self.country_iso_code)
        if intensity is None:
            return BackendStatus(
                self.name, False,
                f"country {self.country_iso_code!r} not in CodeCarbon's energy-mix table")
        self.intensity_g_per_kwh = intensity
        return BackendStatus(
            self.name, True,
            f"offline estimate, {self.country_iso_code} at {intensity:g} gCO2eq/kWh")

    def min_window_s(self) -> float:
        """An estimate has no counter period to wait for."""
        return 0.0

    def _ensure_tracker(self) -> None:
        if self._tracker is not None:
            return
        from codecarbon import OfflineEmissionsTracker  # noqa: PLC0415 - heavy (about 1 s to import), needed only when carbon is estimated

        _quiet_codecarbon()
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            # = save_to_file=False and no API/logger/prometheus output; CodeCarbon 3.x deprecates
            # the save_to_* flags in favour of this list
            output_methods=[],
            log_level="error",
            measure_power_secs=1,
            tracking_mode="machine",
            allow_multiple_runs=True,  # no lock file in /tmp; windows never overlap in one meter
            project_name="greenbench",
        )

    def begin(self) -> None:
        self._error = None
        self._t0 = time.perf_counter()
        try:
            self._ensure_tracker()
            self._task = f"window-{time.monotonic_ns()}"
            self._t0 = time.perf_counter()
            self._tracker.start_task(self._task)
        except Exception as exc:  # a carbon estimate must never abort the measured work
            self._error = f"CodeCarbon failed to start: {exc!r}"

    def end(self, window_s: float) -> BackendReading:
        """The machine-energy estimate, CodeCarbon's carbon estimate (g) and its grid intensity.

        The ``machine`` row's ``window_s`` is the length of the CodeCarbon task, timed here from
        :meth:`begin`, not the meter's ``window_s``: the estimate covers the task.
        """
        machine, carbon_g = self._estimate()
        return BackendReading((machine,), carbon_g, self.intensity_g_per_kwh, CARBON_SOURCE,
                              machine.note)

    def _estimate(self) -> tuple[DeviceEnergy, float | None]:
        data = None
        if self._error is None:
            try:
                data = self._tracker.stop_task(self._task)
            except Exception as exc:
                self._error = f"CodeCarbon failed to stop: {exc!r}"
        window_s = time.perf_counter() - self._t0
        if data is None:  # CodeCarbon swallows most of its own errors and returns None
            note = self._error or "CodeCarbon returned no data for the task"
            return DeviceEnergy("machine", "machine", None, ESTIMATE_METHOD, 0, window_s, False,
                                note), None
        energy_j = float(data.energy_consumed) * JOULES_PER_KWH
        mode = ", ".join(
            f"{type(h).__name__}:{getattr(h, '_mode', 'model')}" for h in self._tracker._hardware
        )
        note = f"CodeCarbon offline estimate ({mode})"
        if energy_j <= 0.0:
            return DeviceEnergy("machine", "machine", None, ESTIMATE_METHOD, 2, window_s, True,
                                note + ": estimated 0 J, window too short"), None
        return (DeviceEnergy("machine", "machine", energy_j, ESTIMATE_METHOD, 2, window_s, False,
                             note), float(data.emissions) * 1000.0)

    def close(self) -> None:
        self._tracker = None  # task-only use leaves no scheduler running


def known_countries() -> frozenset[str] | None:
    """ISO 3166-1 alpha-3 codes of CodeCarbon's offline energy-mix table
    (codecarbon/data/private_infra/global_energy_mix.json); None when codecarbon is missing."""
    try:
        from codecarbon.input import DataSource  # noqa: PLC0415 - heavy (about 1 s to import), needed only when carbon is estimated
    except ImportError:
        return None
    return frozenset(DataSource().get_global_energy_mix_data())
