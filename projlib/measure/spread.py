"""The spread of repeated timings: median, interquartile range and count, and the noise flag.

A timed figure of greenbench is never one sample: each point times every epoch (per phase), and
inference times every repeat. `spread_of(samples)` summarises such samples the way pyperf and
asv do (a robust centre and its spread, with the count), and `Spread.noisy` says whether the
spread is too large for the centre to mean much: IQR > `projlib.schema.NOISE_FRACTION` x median.

Quartiles are `statistics.quantiles(..., method="inclusive")` (linear interpolation between
order statistics, the default of numpy's `percentile`). Fewer than `MIN_SAMPLES_FOR_SPREAD`
samples give a median but no spread (None, never 0): one or two samples say nothing about how
much a third would differ. Pure standard library; nothing here times anything.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from projlib.schema import NOISE_FRACTION

__all__ = ["MIN_SAMPLES_FOR_SPREAD", "NOISE_FRACTION", "Spread", "phase_spreads", "spread_of"]

MIN_SAMPLES_FOR_SPREAD = 3


@dataclass(frozen=True)
class Spread:
    """Median, quartiles and IQR of `n` samples (None where they cannot be told, see module)."""

    n: int
    median: float | None
    q1: float | None = None
    q3: float | None = None

    @property
    def iqr(self) -> float | None:
        return None if self.q1 is None or self.q3 is None else self.q3 - self.q1

    @property
    def relative_iqr(self) -> float | None:
        """IQR / median; None without a spread or with a median of 0."""
        iqr = self.iqr
        return None if iqr is None or not self.median else iqr / self.median

    @property
    def noisy(self) -> bool | None:
        """True when IQR > NOISE_FRACTION x median; None when the spread is not known."""
        rel = self.relative_iqr
        return None if rel is None else rel > NOISE_FRACTION

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "iqr": self.iqr, "noisy": self.noisy}


def spread_of(samples: Iterable[float]) -> Spread:
    """The `Spread` of `samples` (an empty iterable gives n=0 and a median of None)."""
    values = [float(v) for v in samples]
    if not values:
        return Spread(0, None)
    median = statistics.median(values)
    if len(values) < MIN_SAMPLES_FOR_SPREAD:
        return Spread(len(values), median)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(len(values), median, q1, q3)


def phase_spreads(times: Sequence[float], phases: Sequence[str]) -> dict[str, Spread]:
    """One `Spread` per phase, in the order the phases first ran (`times[i]` is an epoch of
    `phases[i]`, as `TrainResult.epoch_time_s` / `epoch_phases`)."""
    if len(times) != len(phases):
        raise ValueError(f"{len(times)} epoch times for {len(phases)} epoch phases")
    grouped: dict[str, list[float]] = {}
    for t, phase in zip(times, phases, strict=True):
        grouped.setdefault(phase, []).append(t)
    return {phase: spread_of(values) for phase, values in grouped.items()}
