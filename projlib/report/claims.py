"""Claim tables from a results db: who saves the most at a given accuracy, with seed statistics.

For each (dataset, model) and each accuracy band b (points of accuracy relative to the dense
baseline), a cell (constraint, procedure, radius, groups, epochs) *reaches* the band when the
mean over seeds of its **seed-matched** accuracy difference (its accuracy minus the dense
baseline's accuracy for the same seed) is >= -b. Per (constraint, procedure), the reaching cell
with the fewest mean structured MACCs (resp. structured bytes) is its entry; entries are ranked
by that cost, as a fraction of the dense model's.

The gap between the first entry and the runner-up -- the best entry of *another constraint*
(the paper's claims are about constraints; the same constraint under another procedure is not
a rival) -- is judged on the seeds both ran: per seed, the runner-up's cost fraction minus the
winner's; reported with a percentile bootstrap 95 % interval
of the mean (BOOTSTRAP resamples, fixed seed, so the table is reproducible) and a paired t-test
p-value. "separable" means the interval excludes 0 -- with 5 seeds the bootstrap interval is
coarse, so both are shown.

`summarise(rows)` is pure (rows in, tables out); `to_markdown` / `to_csv_rows` format them.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import ttest_1samp

from projlib.checks import Interval
from projlib.report.constraints import counted_cost
from projlib.schema import NOISE_FRACTION

__all__ = [
    "BANDS_POINTS",
    "BandEntry",
    "BandTable",
    "Cell",
    "Gap",
    "Summary",
    "bootstrap_ci",
    "bootstrap_ci_unpaired",
    "cells_markdown",
    "cell_rows",
    "summarise",
    "to_csv_rows",
    "to_markdown",
]

BANDS_POINTS: tuple[float, ...] = (0.5, 1.0, 2.0)
#: A band, in accuracy points below dense (`summary`'s --band).
BAND_RANGE = Interval(0.0, 100.0)
BOOTSTRAP = 10_000
_EPS = 1e-9  # points: 0.870 - 0.900 is -3.0000000000000027 points in binary floating point
COSTS = (("maccs_structured", "maccs_dense", "structured MACCs"),
         ("bytes_structured", "bytes_dense", "structured bytes"))


@dataclass(frozen=True)
class BandEntry:
    """The cheapest cell of one (constraint, procedure) that reaches a band."""

    constraint: str
    procedure: str
    radius: float | None
    seeds: tuple[int, ...]
    accuracy_diff_mean: float  # points, seed-matched, vs dense
    accuracy_diff_std: float | None
    cost_fraction_mean: float  # cost / dense cost
    cost_fraction_std: float | None
    per_seed: tuple[tuple[int, float], ...]  # (seed, cost fraction)
    low_rank: bool = False  # the constraint saves by rank (its MACCs are the factorised ones)

    @property
    def label(self) -> str:
        rank = " (rank)" if self.low_rank else ""
        return f"{self.constraint}{rank} · {self.procedure}"


@dataclass(frozen=True)
class Gap:
    """Runner-up minus winner cost fraction over the seeds both ran; ``rival`` is the
    runner-up's label (the best entry of another constraint)."""

    seeds: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    rival: str

    @property
    def verdict(self) -> str:
        if self.mean is None or self.ci_low is None:
            return "not testable (fewer than 2 shared seeds)"
        return "separable" if self.ci_low > 0 else "not separable"


@dataclass(frozen=True)
class BandTable:
    dataset: str
    model: str
    band: float
    cost: str  # "structured MACCs" | "structured bytes"
    dense_accuracy_mean: float
    dense_seeds: int
    entries: tuple[BandEntry, ...]  # ranked, cheapest first
    gap: Gap | None  # first vs the best entry of another constraint


@dataclass(frozen=True)
class Cell:
    """One (dataset, model, constraint, procedure, radius) cell, seed-matched to dense:
    accuracy difference in points, structured MACCs / bytes as fractions of dense (MACCs by
    rank for a low-rank constraint), fraction of nonzero constrained weights; mean and std."""

    dataset: str
    model: str
    constraint: str
    procedure: str
    radius: float | None
    seeds: int
    accuracy_diff: tuple[float, float | None]
    maccs: tuple[float, float | None] | None  # None: not measured for this cell
    nbytes: tuple[float, float | None] | None
    nonzero: tuple[float, float | None] | None
    low_rank: bool = False
    # Seconds per epoch: the mean over seeds of each seed's median epoch time and its std over
    # seeds, the mean within-point IQR over epochs, and (noisy seeds, judged seeds); None /
    # (0, 0) where no seed recorded epoch times.
    epoch_time: tuple[float, float | None] | None = None
    epoch_iqr: float | None = None
    noisy: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Summary:
    tables: tuple[BandTable, ...]
    bands: tuple[float, ...]
    notes: tuple[str, ...] = field(default=())
    fully_connected: frozenset[str] | None = None  # models known to be fully connected
    cells: tuple[Cell, ...] = ()  # every constrained cell with a dense baseline

    def kind(self, model: str) -> str:
        """"fully connected" / "convolutional" ("?" when the caller did not say)."""
        if self.fully_connected is None:
            return "?"
        return "fully connected" if model in self.fully_connected else "convolutional"


def _std(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def bootstrap_ci(diffs: Sequence[float]) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the mean of `diffs` (paired differences, one per
    seed; `BOOTSTRAP` resamples, fixed seed)."""
    rng = np.random.default_rng(0)
    arr = np.asarray(diffs, dtype=np.float64)
    means = arr[rng.integers(0, len(arr), size=(BOOTSTRAP, len(arr)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def bootstrap_ci_unpaired(a: Sequence[float], b: Sequence[float]
                          ) -> tuple[float, float, float]:
    """mean(b) - mean(a) and its percentile bootstrap 95 % interval, each group resampled on
    its own (unpaired samples, e.g. two networks' seeds; `BOOTSTRAP` resamples, fixed seed)."""
    rng = np.random.default_rng(0)
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ma = xa[rng.integers(0, len(xa), size=(BOOTSTRAP, len(xa)))].mean(axis=1)
    mb = xb[rng.integers(0, len(xb), size=(BOOTSTRAP, len(xb)))].mean(axis=1)
    diff = mb - ma
    return (float(xb.mean() - xa.mean()), float(np.percentile(diff, 2.5)),
            float(np.percentile(diff, 97.5)))


def _gap(first: BandEntry, second: BandEntry) -> Gap:
    a, b = dict(first.per_seed), dict(second.per_seed)
    shared = sorted(set(a) & set(b))
    diffs = [b[s] - a[s] for s in shared]
    if len(diffs) < 2:
        return Gap(len(diffs), diffs[0] if diffs else None, None, None, None, second.label)
    low, high = bootstrap_ci(diffs)
    p = None
    if not np.allclose(diffs, diffs[0], rtol=1e-9, atol=1e-12):
        p = float(ttest_1samp(diffs, 0.0).pvalue)
    elif abs(diffs[0]) > 1e-12:
        p = 0.0  # the same nonzero gap on every seed: no variance, the sign is certain
    return Gap(len(diffs), statistics.fmean(diffs), low, high, p, second.label)


def _cells(rows: Sequence[Mapping[str, Any]]) -> dict[tuple, list[Mapping[str, Any]]]:
    cells: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        key = (r["dataset"], r["model"], r.get("procedure"), r.get("constraint"),
               r.get("radius"), r.get("groups"), r.get("epochs"))
        cells.setdefault(key, []).append(r)
    return cells


def summarise(rows: Sequence[Mapping[str, Any]],
              bands: Sequence[float] = BANDS_POINTS, *,
              low_rank: Collection[str] = (),
              fully_connected: Collection[str] | None = None) -> Summary:
    """Band tables for every (dataset, model) that has a dense baseline.

    The report layer imports no registry: the caller says which constraints save by rank
    (``low_rank``, from ``ProjectionSpec.low_rank``) and which models are fully connected
    (``fully_connected``, from ``ModelSpec.fully_connected``; None: unknown)."""
    for b in bands:
        BAND_RANGE.check("bands (accuracy points)", b)
    done = [r for r in rows if r.get("status") == "done" and r.get("test_accuracy") is not None]
    notes: list[str] = []
    dense: dict[tuple, dict[int, Mapping[str, Any]]] = {}
    for r in done:
        if r.get("procedure") == "dense":
            dense.setdefault((r["dataset"], r["model"], r.get("epochs")), {})[r["seed"]] = r
    tables: list[BandTable] = []
    cells = _cells([r for r in done if r.get("procedure") != "dense"])
    for dataset, model in sorted({(k[0], k[1]) for k in cells}):
        for band in bands:
            for cost, dense_cost, title in COSTS:
                best: dict[tuple[str, str], BandEntry] = {}
                dense_accs: list[float] = []
                for key, members in cells.items():
                    if key[:2] != (dataset, model):
                        continue
                    base = dense.get((dataset, model, key[6]), {})
                    if not base:
                        notes.append(f"{dataset}/{model}: no dense baseline with {key[6]} "
                                     "epochs; its constrained points are left out")
                        continue
                    dense_accs = [float(r["test_accuracy"]) for r in base.values()]
                    paired = [r for r in members if r["seed"] in base
                              and counted_cost(r, cost, low_rank) is not None
                              and base[r["seed"]].get(dense_cost)]
                    if not paired:
                        continue
                    diffs = [100.0 * (float(r["test_accuracy"])
                                      - float(base[r["seed"]]["test_accuracy"])) for r in paired]
                    if statistics.fmean(diffs) < -band - _EPS:  # float noise is not a miss
                        continue
                    fractions = [(int(r["seed"]),
                                  counted_cost(r, cost, low_rank)
                                  / float(base[r["seed"]][dense_cost]))
                                 for r in paired]
                    entry = BandEntry(
                        constraint=str(key[3]), procedure=str(key[2]), radius=key[4],
                        seeds=tuple(s for s, _ in fractions),
                        accuracy_diff_mean=statistics.fmean(diffs),
                        accuracy_diff_std=_std(diffs),
                        cost_fraction_mean=statistics.fmean(f for _, f in fractions),
                        cost_fraction_std=_std([f for _, f in fractions]),
                        per_seed=tuple(sorted(fractions)),
                        low_rank=str(key[3]) in low_rank,
                    )
                    slot = (entry.constraint, entry.procedure)
                    if slot not in best or (entry.cost_fraction_mean, -entry.accuracy_diff_mean) < (
                            best[slot].cost_fraction_mean, -best[slot].accuracy_diff_mean):
                        best[slot] = entry
                ranked = tuple(sorted(best.values(), key=lambda e: (e.cost_fraction_mean,
                                                                    -e.accuracy_diff_mean)))
                if not dense_accs:
                    continue
                tables.append(BandTable(
                    dataset, model, float(band), title, statistics.fmean(dense_accs),
                    len(dense_accs), ranked,
                    _gap_to_other_constraint(ranked),
                ))
    flags = _measured(done, "epoch_time_noisy")
    if any(flags):
        notes.append(f"{sum(1 for f in flags if f)} of {len(flags)} timed points have noisy "
                     f"epoch times (IQR > {NOISE_FRACTION:.0%} of their median): their time "
                     "and energy figures are mostly noise (see --cells)")
    return Summary(tuple(tables), tuple(float(b) for b in bands), tuple(dict.fromkeys(notes)),
                   None if fully_connected is None else frozenset(fully_connected),
                   _cell_stats(cells, dense, low_rank))


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), _std(values)


def _cell_stats(cells: Mapping[tuple, list[Mapping[str, Any]]],
                dense: Mapping[tuple, Mapping[int, Mapping[str, Any]]],
                low_rank: Collection[str]) -> tuple[Cell, ...]:
    out = []
    # (dataset, model, procedure, constraint, radius, groups, epochs); None sorts first
    order = sorted(cells, key=lambda k: (k[0], k[1], str(k[3]), str(k[2]),
                                         -1.0 if k[4] is None else float(k[4]), str(k[5]),
                                         -1 if k[6] is None else int(k[6])))
    for key in order:
        base = dense.get((key[0], key[1], key[6]), {})
        paired = [r for r in cells[key] if r["seed"] in base]
        if not paired:
            continue
        costs: dict[str, tuple[float, float | None] | None] = {}
        for cost, dense_cost, _ in COSTS:
            pairs = [(counted_cost(r, cost, low_rank), base[r["seed"]].get(dense_cost))
                     for r in paired]
            fr = [c / float(d) for c, d in pairs if c is not None and d]
            costs[cost] = _mean_std(fr) if fr else None  # not measured: None, never a number
        nz = [float(r["fraction_nonzero"]) for r in paired
              if r.get("fraction_nonzero") is not None]
        out.append(Cell(
            str(key[0]), str(key[1]), str(key[3]), str(key[2]), key[4], len(paired),
            _mean_std([100.0 * (float(r["test_accuracy"])
                                - float(base[r["seed"]]["test_accuracy"])) for r in paired]),
            costs["maccs_structured"], costs["bytes_structured"],
            _mean_std(nz) if nz else None, str(key[3]) in low_rank,
            *_epoch_stats(paired),
        ))
    return tuple(out)


def _measured(rows: Sequence[Mapping[str, Any]], name: str) -> list[float]:
    return [float(r[name]) for r in rows if r.get(name) is not None]


def _epoch_stats(rows: Sequence[Mapping[str, Any]]
                 ) -> tuple[tuple[float, float | None] | None, float | None, tuple[int, int]]:
    medians, iqrs = _measured(rows, "epoch_time_median_s"), _measured(rows, "epoch_time_iqr_s")
    flags = _measured(rows, "epoch_time_noisy")
    return (_mean_std(medians) if medians else None,
            statistics.fmean(iqrs) if iqrs else None,
            (sum(1 for f in flags if f), len(flags)))


def _epoch_text(c: Cell) -> str:
    """"0.0260 ± 0.0010 s (IQR 0.0030), noisy 1/2": the mean of the seeds' medians ± their
    std over seeds, the mean within-point IQR, and how many seeds were noisy."""
    if c.epoch_time is None:
        return "—"
    mean, std = c.epoch_time
    text = f"{mean:.4f}" + ("" if std is None else f" ± {std:.4f}") + " s"
    if c.epoch_iqr is not None:
        text += f" (IQR {c.epoch_iqr:.4f})"
    if c.noisy[0]:
        text += f", noisy {c.noisy[0]}/{c.noisy[1]}"
    return text


def cells_markdown(summary: Summary) -> str:
    """Every constrained cell (the curves behind the band tables), one table per model."""
    out: list[str] = []
    models = dict.fromkeys((c.dataset, c.model) for c in summary.cells)
    for dataset, model in models:
        out.append(f"### {dataset} · {model}: every cell, seed-matched vs dense")
        out.append("")
        out.append("| constraint | procedure | radius | seeds | accuracy vs dense (points) | "
                   "structured MACCs / dense | structured bytes / dense | nonzero weights | "
                   "epoch time, median ± seeds (IQR within) |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for c in summary.cells:
            if (c.dataset, c.model) != (dataset, model):
                continue
            radius = "—" if c.radius is None else f"{c.radius:g}"
            rank = " (rank)" if c.low_rank else ""
            out.append(f"| {c.constraint}{rank} | {c.procedure} | {radius} | {c.seeds} | "
                       f"{_pts(*c.accuracy_diff)} | {_pct(*(c.maccs or (None,)))} | "
                       f"{_pct(*(c.nbytes or (None,)))} | "
                       f"{'—' if c.nonzero is None else _pct(*c.nonzero)} | "
                       f"{_epoch_text(c)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n" if out else ""


def _gap_to_other_constraint(ranked: Sequence[BandEntry]) -> Gap | None:
    rival = next((e for e in ranked[1:] if e.constraint != ranked[0].constraint), None)
    return None if rival is None else _gap(ranked[0], rival)


def _pct(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    text = f"{100 * value:.1f} %"
    return f"{text} ± {100 * std:.1f}" if std is not None else text


def _pts(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    text = f"{value:+.2f}"
    return f"{text} ± {std:.2f}" if std is not None else text


def _gap_text(gap: Gap | None) -> str:
    if gap is None:
        return "no other constraint reaches this band"
    if gap.mean is None or gap.ci_low is None:
        return f"vs {gap.rival}: {gap.verdict}"
    p = "n/a" if gap.p_value is None else f"{gap.p_value:.3g}"
    return (f"vs {gap.rival}: {100 * gap.mean:.1f} points of dense cost, "
            f"95 % CI [{100 * gap.ci_low:.1f}, {100 * gap.ci_high:.1f}], paired t p = {p}, "
            f"{gap.seeds} seeds: {gap.verdict}")


def to_markdown(summary: Summary) -> str:
    """The band tables, then the fully-connected vs convolutional comparison."""
    out: list[str] = []
    for t in summary.tables:
        out.append(f"### {t.dataset} · {t.model}: within {t.band:g} accuracy points of dense, "
                   f"fewest {t.cost}")
        out.append("")
        out.append(f"Dense accuracy {100 * t.dense_accuracy_mean:.2f} % ({t.dense_seeds} seeds). "
                   f"Gap to the best other constraint: {_gap_text(t.gap)}.")
        out.append("")
        out.append(f"| rank | constraint · procedure | radius | seeds | accuracy vs dense "
                   f"(points) | {t.cost} / dense |")
        out.append("|---|---|---|---|---|---|")
        if not t.entries:
            out.append("| – | no constrained cell reaches this band | | | | |")
        for i, e in enumerate(t.entries, 1):
            radius = "—" if e.radius is None else f"{e.radius:g}"
            out.append(f"| {i} | {e.label} | {radius} | {len(e.seeds)} | "
                       f"{_pts(e.accuracy_diff_mean, e.accuracy_diff_std)} | "
                       f"{_pct(e.cost_fraction_mean, e.cost_fraction_std)} |")
        out.append("")
    fc = _architecture_rows(summary)
    if fc:
        out.append("### Fully connected vs convolutional: share of the dense cost removed at "
                   "each band (best entry)")
        out.append("")
        out.append("| dataset · model | kind | band (points) | MACCs removed | bytes removed | "
                   "by |")
        out.append("|---|---|---|---|---|---|")
        out.extend(fc)
        out.append("")
    if not summary.tables:
        out.append("No constrained point has a dense baseline (same dataset, model and epochs) "
                   "in these rows: nothing to compare.")
    for note in summary.notes:
        out.append(f"- note: {note}")
    return "\n".join(out).rstrip() + "\n"


def _architecture_rows(summary: Summary) -> list[str]:
    best: dict[tuple[str, str, float], dict[str, BandEntry | None]] = {}
    for t in summary.tables:
        slot = best.setdefault((t.dataset, t.model, t.band), {})
        slot[t.cost] = t.entries[0] if t.entries else None
    rows = []
    for (dataset, model, band), by_cost in sorted(best.items()):
        kind = summary.kind(model)
        maccs, nbytes = by_cost.get("structured MACCs"), by_cost.get("structured bytes")
        removed_m = None if maccs is None else 1 - maccs.cost_fraction_mean
        removed_b = None if nbytes is None else 1 - nbytes.cost_fraction_mean
        who = ", ".join(dict.fromkeys(e.label for e in (maccs, nbytes) if e is not None)) or "—"
        rows.append(f"| {dataset} · {model} | {kind} | {band:g} | {_pct(removed_m)} | "
                    f"{_pct(removed_b)} | {who} |")
    return rows


def to_csv_rows(summary: Summary) -> list[dict[str, Any]]:
    """One flat dict per (table, entry), for CSV / JSON export."""
    out = []
    for t in summary.tables:
        for rank, e in enumerate(t.entries, 1):
            gap = t.gap if rank == 1 else None
            out.append({
                "dataset": t.dataset, "model": t.model, "band_points": t.band, "cost": t.cost,
                "rank": rank, "constraint": e.constraint, "procedure": e.procedure,
                "radius": e.radius, "seeds": len(e.seeds),
                "accuracy_diff_points_mean": e.accuracy_diff_mean,
                "accuracy_diff_points_std": e.accuracy_diff_std,
                "cost_fraction_mean": e.cost_fraction_mean,
                "cost_fraction_std": e.cost_fraction_std,
                "gap_rival": None if gap is None else gap.rival,
                "gap_to_runner_up_mean": None if gap is None else gap.mean,
                "gap_ci_low": None if gap is None else gap.ci_low,
                "gap_ci_high": None if gap is None else gap.ci_high,
                "gap_p_value": None if gap is None else gap.p_value,
                "gap_verdict": None if gap is None else gap.verdict,
            })
    return out


#: The columns of `to_csv_rows` (band tables) and `cell_rows` (cells), in order: what a CSV /
#: JSON summary holds, and how `greenbench summary -o` knows a file it wrote.
BAND_COLUMNS: tuple[str, ...] = (
    "dataset", "model", "band_points", "cost", "rank", "constraint", "procedure", "radius",
    "seeds", "accuracy_diff_points_mean", "accuracy_diff_points_std", "cost_fraction_mean",
    "cost_fraction_std", "gap_rival", "gap_to_runner_up_mean", "gap_ci_low", "gap_ci_high",
    "gap_p_value", "gap_verdict",
)
CELL_COLUMNS: tuple[str, ...] = (
    "dataset", "model", "constraint", "procedure", "radius", "seeds",
    "accuracy_diff_points_mean", "accuracy_diff_points_std", "maccs_fraction_mean",
    "maccs_fraction_std", "bytes_fraction_mean", "bytes_fraction_std", "nonzero_mean",
    "nonzero_std", "maccs_by_rank", "epoch_time_s_mean", "epoch_time_s_std",
    "epoch_time_iqr_s_mean", "epoch_time_noisy_seeds",
)


def cell_rows(summary: Summary) -> list[dict[str, Any]]:
    """One flat dict per cell (see `Cell`), for CSV / JSON export."""
    out = []
    for c in summary.cells:
        out.append({
            "dataset": c.dataset, "model": c.model, "constraint": c.constraint,
            "procedure": c.procedure, "radius": c.radius, "seeds": c.seeds,
            "accuracy_diff_points_mean": c.accuracy_diff[0],
            "accuracy_diff_points_std": c.accuracy_diff[1],
            "maccs_fraction_mean": None if c.maccs is None else c.maccs[0],
            "maccs_fraction_std": None if c.maccs is None else c.maccs[1],
            "bytes_fraction_mean": None if c.nbytes is None else c.nbytes[0],
            "bytes_fraction_std": None if c.nbytes is None else c.nbytes[1],
            "nonzero_mean": None if c.nonzero is None else c.nonzero[0],
            "nonzero_std": None if c.nonzero is None else c.nonzero[1],
            "maccs_by_rank": c.low_rank,
            "epoch_time_s_mean": None if c.epoch_time is None else c.epoch_time[0],
            "epoch_time_s_std": None if c.epoch_time is None else c.epoch_time[1],
            "epoch_time_iqr_s_mean": c.epoch_iqr,
            "epoch_time_noisy_seeds": c.noisy[0] if c.noisy[1] else None,
        })
    return out
