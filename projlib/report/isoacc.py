"""Costs compared at matched accuracy (`greenbench summary --iso-accuracy`; issue 23, item 5).

The rule, fixed before any data is read (and printed at the head of every table):

* **Curve.** Per (dataset, model, procedure, constraint, groups, epochs, radius mode,
  validation) and per seed, the points at every radius, sorted by radius. Drop = the dense
  baseline's accuracy for the *same seed* minus the point's, in points; cost = its structured
  MACCs (or bytes) as a fraction of the dense model's (nuclear by its low-rank count, as in
  `greenbench summary`).
* **Monotone.** A looser ball cannot be expected to cost less or lose more, so both sequences
  are made monotone in the radius by isotonic regression (pool-adjacent-violators, equal
  weights): drop non-increasing, log cost non-decreasing. Noise that breaks the order is
  averaged, never dropped.
* **Interpolation.** At a target drop t (0.5, 1 and 2 points by default), log cost is linear
  in the drop between the two adjacent radii whose fitted drops bracket t. Never extrapolated:
  a seed whose tightest radius already loses less than t, or whose loosest still loses more,
  has no value at t (it is counted as not bracketed).
* **Across seeds.** The mean of the per-seed cost fractions with a percentile bootstrap 95 %
  interval over seeds (`BOOTSTRAP` resamples, fixed seed), on the seeds bracketed at t.
* **Paired differences.** For every pair of constraints under the same procedure, per seed
  bracketed for both: cost(other) - cost(this), in points of the dense cost, mean and bootstrap
  95 % interval. "fewer" / "more" only when the interval excludes 0, else "not separable".
  The primary comparisons are fixed here, before the run (`PRIMARY`: claim 1, l11 against l1,
  l21 and nuclear); every other pair is secondary and labelled so.
* **Similar accuracy, as measured.** Beside the interpolated cost, the cheapest *measured*
  radius that is non-inferior at t: the one-sided 90 % upper bound of its seed-matched drop
  (mean + t_{0.90, n-1} * sd / sqrt(n), Student t, n >= 2 seeds) is <= t. This is the rule
  for "within t points of dense"; a mean inside the band is not enough.

`iso_accuracy(rows)` is pure (rows in, tables out); `to_markdown` / `to_rows` format them.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy.stats import t as student_t

from projlib.checks import Interval
from projlib.report.claims import BANDS_POINTS, COSTS, bootstrap_ci
from projlib.report.constraints import counted_cost

__all__ = ["PRIMARY", "IsoEntry", "IsoPair", "IsoTable", "iso_accuracy", "isotonic", "setting",
           "interpolate_cost", "radius_curves", "SeedCurve", "CurveKey", "to_markdown", "to_rows",
           "NONINFERIORITY_LEVEL"]

#: Claim 1's comparisons, fixed before the study runs: (this, other).
PRIMARY: tuple[tuple[str, str], ...] = (("l11", "l1"), ("l11", "l21"), ("l11", "nuclear"))
NONINFERIORITY_LEVEL = 0.90  # one-sided
#: A target drop, in accuracy points below dense (`summary --iso-accuracy`'s --band).
DROP_RANGE = Interval(0.0, 100.0, low_open=True)


def isotonic(values: Sequence[float], increasing: bool = True) -> list[float]:
    """Least-squares monotone fit with equal weights (pool adjacent violators). O(n)."""
    sign = 1.0 if increasing else -1.0
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([sign * v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, n2 = blocks.pop()
            m1, n1 = blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    out: list[float] = []
    for m, n in blocks:
        out += [sign * m] * int(n)
    return out


def interpolate_cost(drops: Sequence[float], costs: Sequence[float], target: float
                     ) -> float | None:
    """Cost fraction at drop `target` on one seed's curve (points sorted by radius, costs > 0),
    after the monotone fit; None where `target` is not bracketed (never extrapolated)."""
    if len(drops) != len(costs) or not drops:
        raise ValueError("drops and costs must be non-empty and of the same length")
    d = isotonic(drops, increasing=False)
    logc = isotonic([math.log(c) for c in costs], increasing=True)
    for i in range(len(d) - 1):
        hi, lo = d[i], d[i + 1]  # tighter radius first: hi >= lo
        if lo <= target <= hi:
            if hi == lo:
                return math.exp(logc[i])  # both reach t exactly: the tighter (cheaper) one
            w = (hi - target) / (hi - lo)
            return math.exp(logc[i] + w * (logc[i + 1] - logc[i]))
    if len(d) == 1 and d[0] == target:
        return math.exp(logc[0])
    return None


def _upper_bound(drops: Sequence[float]) -> float | None:
    n = len(drops)
    if n < 2:
        return None
    sd = statistics.stdev(drops)
    return statistics.fmean(drops) + float(student_t.ppf(NONINFERIORITY_LEVEL, n - 1)) * sd / (
        math.sqrt(n))


@dataclass(frozen=True)
class IsoEntry:
    """One constraint under one procedure at one target drop."""

    constraint: str
    procedure: str
    per_seed: tuple[tuple[int, float], ...]  # (seed, cost fraction at the target)
    seeds_total: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    # The cheapest measured radius whose one-sided 90 % drop bound is <= target (or None).
    noninferior_radius: float | None
    noninferior_cost: float | None
    noninferior_bound: float | None
    low_rank: bool = False  # its costs are the factorised ones: labelled "(rank)"


@dataclass(frozen=True)
class IsoPair:
    this: str
    other: str
    procedure: str
    primary: bool
    n: int
    mean: float | None  # points of the dense cost: other - this
    ci_low: float | None
    ci_high: float | None

    @property
    def verdict(self) -> str:
        if self.ci_low is None or self.ci_high is None:
            return "too few seeds"
        if self.ci_low > 0:
            return f"{self.this} costs less"
        if self.ci_high < 0:
            return f"{self.this} costs more"
        return "not separable"


@dataclass(frozen=True)
class IsoTable:
    dataset: str
    model: str
    variant: str  # "" or e.g. "relative radii, validation 0.1"
    cost_label: str
    target: float
    entries: tuple[IsoEntry, ...]
    pairs: tuple[IsoPair, ...]


def _config(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        cfg = json.loads(row.get("config_json") or "{}")
    except (TypeError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def setting(row: Mapping[str, Any]) -> tuple[float, str]:
    """(validation fraction, variant label) of a row, from its config parsed once. The variant
    is "" or e.g. "relative radii, validation 0.1"; the dense baseline has no radius mode, so
    it is matched on the split alone."""
    cfg = _config(row)
    split = float(cfg.get("validation", 0.0))
    parts = []
    if cfg.get("radius_mode", "absolute") != "absolute":
        parts.append(f"{cfg['radius_mode']} radii")
    if split:
        parts.append(f"validation {split:g}")
    return split, ", ".join(parts)


@dataclass(frozen=True)
class SeedCurve:
    """One seed's radius curve: the same seed's dense accuracy (%) and its points
    (radius, drop in points below that dense accuracy, row), sorted by radius."""

    dense: float
    points: tuple[tuple[float, float, Mapping[str, Any]], ...]

    def costs(self, cost: str, dense_col: str, low_rank: Collection[str] = ()
              ) -> list[tuple[float, float, float]]:
        """(radius, drop, cost fraction of the dense model's) of the points that count
        `cost` (> 0, with a dense cost), in radius order."""
        out = []
        for radius, drop, row in self.points:
            value, base = counted_cost(row, cost, low_rank), row.get(dense_col)
            if value is not None and base and value > 0:
                out.append((radius, drop, value / base))
        return out

    def cost_at(self, target: float, cost: str, dense_col: str,
                low_rank: Collection[str] = ()) -> float | None:
        """The cost fraction at a drop of `target` points (`interpolate_cost`), or None."""
        return _cost_at(self.costs(cost, dense_col, low_rank), target)


def _cost_at(pts: Sequence[tuple[float, float, float]], target: float) -> float | None:
    # `SeedCurve.costs` output -> the fraction at `target` (None: no point, or not bracketed)
    return interpolate_cost([p[1] for p in pts], [p[2] for p in pts], target) if pts else None


#: A curve's identity: (dataset, model, variant, procedure, constraint, groups, epochs).
CurveKey = tuple[str, str, str, str, str, Any, Any]


def radius_curves(rows: Sequence[Mapping[str, Any]], accuracy: str = "test_accuracy"
                  ) -> dict[CurveKey, dict[int, SeedCurve]]:
    """The module docstring's curves: per `CurveKey`, per seed, the finished constrained
    points with a dense baseline of the same (dataset, model, epochs, validation split, seed)."""
    if accuracy not in ("test_accuracy", "val_accuracy"):
        raise ValueError(f"accuracy must be test_accuracy or val_accuracy, got {accuracy!r}")
    done = [(r, *setting(r)) for r in rows
            if r.get("status") == "done" and r.get(accuracy) is not None]
    dense: dict[tuple, float] = {}
    for r, split, _ in done:
        if r.get("procedure") == "dense":
            dense[(r["dataset"], r["model"], r.get("epochs"), split, r["seed"])] = (
                100 * r[accuracy])
    # per key and seed: (the seed's dense accuracy, its points)
    points: dict[CurveKey, dict[int, tuple[float, list[tuple[float, float, Any]]]]] = {}
    for r, split, variant in done:
        base = (r["dataset"], r["model"], r.get("epochs"), split, r["seed"])
        if (r.get("procedure") == "dense" or base not in dense or r.get("radius") is None
                or r.get("constraint") is None):
            continue
        key = (r["dataset"], r["model"], variant, r.get("procedure"), r["constraint"],
               r.get("groups"), r.get("epochs"))
        points.setdefault(key, {}).setdefault(r["seed"], (dense[base], []))[1].append(
            (r["radius"], dense[base] - 100 * r[accuracy], r))
    return {key: {seed: SeedCurve(base, tuple(sorted(pts, key=lambda p: p[0])))
                  for seed, (base, pts) in by_seed.items()}
            for key, by_seed in points.items()}


def iso_accuracy(rows: Sequence[Mapping[str, Any]], targets: Sequence[float] = BANDS_POINTS,
                 *, low_rank: Collection[str] = (), accuracy: str = "test_accuracy",
                 primary: Sequence[tuple[str, str]] = PRIMARY) -> list[IsoTable]:
    """The tables of the module docstring. `accuracy`: "test_accuracy" (reported numbers) or
    "val_accuracy" (choices made on the validation split)."""
    for t in targets:
        DROP_RANGE.check("targets (accuracy points)", t)
    curves = radius_curves(rows, accuracy)
    primary_set = {tuple(p) for p in primary}
    tables: list[IsoTable] = []
    groups: dict[tuple, list[tuple]] = {}
    for key in curves:
        groups.setdefault(key[:3], []).append(key)
    for (dataset, model, variant), keys in sorted(groups.items()):
        for cost, dense_col, label in COSTS:
            for target in targets:
                entries = [_entry(curves[k], k, cost, dense_col, target, low_rank)
                           for k in sorted(keys, key=lambda k: (k[3], k[4], str(k[5]),
                                                                 k[6] or 0))]
                entries = [e for e in entries if e is not None]
                pairs = _pairs(entries, primary_set)
                tables.append(IsoTable(dataset, model, variant, label, target,
                                       tuple(entries), tuple(pairs)))
    return tables


def _entry(by_seed: Mapping[int, SeedCurve], key: tuple, cost: str, dense_col: str,
           target: float, low_rank: Collection[str]) -> IsoEntry | None:
    per_seed: list[tuple[int, float]] = []
    by_radius: dict[float, list[tuple[float, float]]] = {}
    for seed, curve in sorted(by_seed.items()):
        pts = curve.costs(cost, dense_col, low_rank)
        for radius, drop, fraction in pts:
            by_radius.setdefault(radius, []).append((drop, fraction))
        at = _cost_at(pts, target)
        if at is not None:
            per_seed.append((seed, at))
    if not by_radius:
        return None
    values = [v for _, v in per_seed]
    mean = statistics.fmean(values) if values else None
    low = high = None
    if len(values) >= 2:
        low, high = bootstrap_ci(values)
    ni = None
    for radius in sorted(by_radius):
        drops = [d for d, _ in by_radius[radius]]
        bound = _upper_bound(drops)
        if bound is not None and bound <= target:
            c = statistics.fmean(c for _, c in by_radius[radius])
            if ni is None or c < ni[1]:
                ni = (radius, c, bound)
    return IsoEntry(key[4], key[3], tuple(per_seed), len(by_seed), mean, low, high,
                    *(ni if ni is not None else (None, None, None)),
                    low_rank=key[4] in low_rank)


def _pairs(entries: Sequence[IsoEntry], primary: set[tuple]) -> list[IsoPair]:
    out = []
    for a in entries:
        for b in entries:
            if a is b or a.procedure != b.procedure:
                continue
            if (b.constraint, a.constraint) in primary:
                continue  # shown the other way round
            if (a.constraint, b.constraint) not in primary and a.constraint > b.constraint:
                continue  # a secondary pair once
            x, y = dict(a.per_seed), dict(b.per_seed)
            shared = sorted(set(x) & set(y))
            diffs = [100 * (y[s] - x[s]) for s in shared]
            low = high = None
            if len(diffs) >= 2:
                low, high = bootstrap_ci(diffs)
            out.append(IsoPair(a.constraint, b.constraint, a.procedure,
                               (a.constraint, b.constraint) in primary, len(diffs),
                               statistics.fmean(diffs) if diffs else None, low, high))
    out.sort(key=lambda p: (not p.primary, p.procedure, p.this, p.other))
    return out


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _pts(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.1f}"


RULE = ("Rule (fixed before the data; `projlib/report/isoacc.py`): per seed, cost (fraction of "
        "the dense model's) at a drop of exactly t points below the same seed's dense "
        "accuracy, interpolated along the radius curve (log cost linear in accuracy, both made "
        "monotone in the radius, never extrapolated); mean over the seeds bracketed at t with a "
        "bootstrap 95 % interval; paired differences on the seeds both bracket, \"costs less\" "
        "only when the interval excludes 0. Primary comparisons (claim 1): "
        + ", ".join(f"{a} vs {b}" for a, b in PRIMARY) + "; every other pair is secondary. "
        "\"Non-inferior measured radius\": the cheapest radius whose one-sided "
        f"{NONINFERIORITY_LEVEL:.0%} upper bound of the drop (Student t over seeds) is <= t.")


def to_markdown(tables: Sequence[IsoTable], accuracy: str = "test_accuracy") -> str:
    lines = ["# Costs at matched accuracy", "", RULE, "",
             f"Accuracy read: `{accuracy}`.", ""]
    if not tables:
        return "\n".join(lines + ["No constrained point with a dense baseline.", ""])
    for t in tables:
        head = f"### {t.dataset} · {t.model}"
        head += f" ({t.variant})" if t.variant else ""
        unit = "point" if t.target == 1 else "points"
        lines += [f"{head}: {t.cost_label} at {t.target:g} {unit} below dense", "",
                  "| constraint | procedure | seeds bracketed | cost at the drop [95 % CI] | "
                  "non-inferior measured radius | its cost | its 90 % drop bound |",
                  "|---|---|---:|---|---:|---:|---:|"]
        for e in t.entries:
            ci = "" if e.ci_low is None else f" [{_pct(e.ci_low)}, {_pct(e.ci_high)}]"
            lines.append(
                f"| {e.constraint}{' (rank)' if e.low_rank else ''} | {e.procedure} | "
                f"{len(e.per_seed)}/{e.seeds_total} | "
                f"{_pct(e.mean)}{ci} | "
                f"{'none' if e.noninferior_radius is None else f'{e.noninferior_radius:g}'} | "
                f"{_pct(e.noninferior_cost)} | "
                f"{'' if e.noninferior_bound is None else f'{e.noninferior_bound:.2f}'} |")
        if t.pairs:
            lines += ["", "| comparison | kind | seeds | other - this (points of dense) "
                      "[95 % CI] | verdict |", "|---|---|---:|---|---|"]
            for p in t.pairs:
                ci = "" if p.ci_low is None else f" [{_pts(p.ci_low)}, {_pts(p.ci_high)}]"
                lines.append(f"| {p.this} vs {p.other} ({p.procedure}) | "
                             f"{'primary' if p.primary else 'secondary'} | {p.n} | "
                             f"{_pts(p.mean)}{ci} | {p.verdict} |")
        lines.append("")
    return "\n".join(lines)


#: The columns of `to_rows` (CSV / JSON), in order: how a written iso-accuracy summary is known.
ISO_COLUMNS: tuple[str, ...] = (
    "dataset", "model", "variant", "cost", "drop_points", "kind", "constraint", "procedure",
    "other", "seeds", "seeds_total", "value", "ci_low", "ci_high", "noninferior_radius",
    "noninferior_cost", "noninferior_bound", "verdict",
)


def to_rows(tables: Sequence[IsoTable]) -> list[dict[str, Any]]:
    """Flat rows (CSV / JSON): one per entry and one per pair, keys `ISO_COLUMNS`."""
    out: list[dict[str, Any]] = []
    for t in tables:
        base = {"dataset": t.dataset, "model": t.model, "variant": t.variant,
                "cost": t.cost_label, "drop_points": t.target}
        for e in t.entries:
            out.append({**base, "kind": "entry", "constraint": e.constraint,
                        "procedure": e.procedure, "other": None,
                        "seeds": len(e.per_seed), "seeds_total": e.seeds_total,
                        "value": e.mean, "ci_low": e.ci_low, "ci_high": e.ci_high,
                        "noninferior_radius": e.noninferior_radius,
                        "noninferior_cost": e.noninferior_cost,
                        "noninferior_bound": e.noninferior_bound, "verdict": None})
        for p in t.pairs:
            out.append({**base, "kind": "primary" if p.primary else "secondary",
                        "constraint": p.this, "procedure": p.procedure, "other": p.other,
                        "seeds": p.n, "seeds_total": None, "value": p.mean,
                        "ci_low": p.ci_low, "ci_high": p.ci_high, "noninferior_radius": None,
                        "noninferior_cost": None, "noninferior_bound": None,
                        "verdict": p.verdict})
    return out
