"""CPU package and DRAM energy from the Linux powercap (RAPL) sysfs tree.

Zones read: top-level ``intel-rapl:N`` whose ``name`` is ``package-N`` and their subzones named
``dram``. ``core``/``uncore`` subzones are skipped because the package counter already contains
them, and ``psys`` because it contains everything (summing would double count).

``energy_uj`` is a monotone counter in microjoules that wraps at ``max_energy_range_uj``; a
window's energy is ``end - start`` or, when ``end < start``, ``end + max_range - start`` (one wrap;
more than one wrap in a window is undetectable, the note says so for windows longer than the
shortest wrap time at 500 W). The counter refreshes about every millisecond, so a shorter window
is flagged ``short_window`` and a zero difference is reported as ``None``. Since Linux 5.10
``energy_uj`` is readable by root only: a ``PermissionError`` makes the backend unavailable with
that reason. The AMD driver exposes the same ``intel-rapl`` names.
"""

from __future__ import annotations

import os
from pathlib import Path

from projlib.measure.types import BackendReading, BackendStatus, DeviceEnergy

DEFAULT_ROOT = "/sys/class/powercap"
#: RAPL updates its energy status registers about every 976 microseconds.
RAPL_UPDATE_PERIOD_S = 0.001


def _read_int(path: Path) -> int:
    with open(path) as fh:
        return int(fh.read().strip())


class RaplBackend:
    """Energy of each package (and DRAM) zone; probing is lazy and cached."""

    name = "rapl"
    measures = True

    def __init__(self, root: str | os.PathLike[str] = DEFAULT_ROOT) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a path (got {type(root).__name__})")
        self.root = Path(root)
        self._status: BackendStatus | None = None
        self._zones: list[tuple[str, str, Path, int]] = []  # (label, kind, dir, max_range_uj)
        self._start: dict[str, int] = {}
        self._errors: dict[str, str] = {}

    def status(self) -> BackendStatus:
        if self._status is None:
            self._status = self._probe()
        return self._status

    def _candidate_zones(self) -> list[tuple[str, str, Path]]:
        zones = []
        for top in sorted(self.root.glob("intel-rapl:*")):
            if top.name.count(":") != 1 or not (top / "name").exists():
                continue
            name = (top / "name").read_text().strip()
            if name.startswith("package"):
                zones.append((name, "cpu", top))
                for sub in sorted(top.glob(f"{top.name}:*")):
                    if (sub / "name").exists() and (sub / "name").read_text().strip() == "dram":
                        zones.append((f"{name}/dram", "dram", sub))
        return zones

    def _probe(self) -> BackendStatus:
        if not self.root.is_dir():
            return BackendStatus(self.name, False, f"no powercap tree at {self.root}")
        try:
            candidates = self._candidate_zones()
        except OSError as exc:
            return BackendStatus(self.name, False, f"cannot list {self.root}: {exc}")
        if not candidates:
            return BackendStatus(self.name, False, f"no intel-rapl package zone under {self.root}")
        for label, kind, path in candidates:
            try:
                _read_int(path / "energy_uj")
                max_range = _read_int(path / "max_energy_range_uj")
            except PermissionError as exc:
                return BackendStatus(
                    self.name, False,
                    f"permission denied reading {path / 'energy_uj'} ({exc.strerror}); "
                    "energy_uj is root-only since Linux 5.10",
                )
            except (OSError, ValueError) as exc:
                return BackendStatus(self.name, False, f"cannot read {path}: {exc}")
            self._zones.append((label, kind, path, max_range))
        return BackendStatus(self.name, True, ", ".join(z[0] for z in self._zones))

    def min_window_s(self) -> float:
        """Shortest window read without a ``short_window`` flag: one RAPL update period."""
        return RAPL_UPDATE_PERIOD_S if self._zones else 0.0

    def begin(self) -> None:
        self._start, self._errors = {}, {}
        for label, _, path, _ in self._zones:
            try:
                self._start[label] = _read_int(path / "energy_uj")
            except (OSError, ValueError) as exc:
                self._errors[label] = f"read failed at window start: {exc}"

    def end(self, window_s: float) -> BackendReading:
        out = []
        short = window_s < RAPL_UPDATE_PERIOD_S
        for label, kind, path, max_range in self._zones:
            if label in self._errors:
                out.append(DeviceEnergy(label, kind, None, "rapl", 0, window_s, short,
                                        self._errors[label]))
                continue
            try:
                end_uj = _read_int(path / "energy_uj")
            except (OSError, ValueError) as exc:
                out.append(DeviceEnergy(label, kind, None, "rapl", 1, window_s, short,
                                        f"read failed at window end: {exc}"))
                continue
            delta_uj = end_uj - self._start[label]
            note = ""
            if delta_uj < 0:
                delta_uj += max_range  # the counter wrapped once during the window
                note = "counter wrapped (corrected once)"
            if delta_uj == 0 and short:
                out.append(DeviceEnergy(label, kind, None, "rapl", 2, window_s, True,
                                        "window shorter than the RAPL update period"))
                continue
            # at 500 W a 2^32 uJ range wraps in ~8.6 s; a longer window may hide extra wraps
            if max_range / 500.0 / 1e6 < window_s:
                note = (note + "; " if note else "") + (
                    "window longer than the shortest wrap time: extra wraps undetectable")
            out.append(DeviceEnergy(label, kind, delta_uj / 1e6, "rapl", 2, window_s, short, note))
        return BackendReading(tuple(out))

    def close(self) -> None:
        """Nothing is held open between reads."""
