"""Study v2 verdicts, by the rules below, from the study db (read only):

    python studies/v2/verdicts.py [studies/results/study_v2.db] > docs/results/study_v2_verdicts.md

Called by `bash studies/publish.sh`. Every number is `greenbench summary --iso-accuracy`'s
(`projlib.report.isoacc`, whose pairwise rule was fixed before any grid point ran); this script
only applies the claim rules and lays the primary numbers out.

**Claim 1** ("the l1,1 projection gives the sparsest network at a given accuracy"). Projected
training (the paper's method), the study's setting (relative radii, validation split), each
cost (structured MACCs, structured bytes; nuclear counted by its factorised cost) and each
drop t of 0.5, 1 and 2 points below dense. The three primary pairs are l11 vs l1, l11 vs l21
and l11 vs nuclear (`isoacc.PRIMARY`); each pair's verdict is isoacc's: "l11 costs less" when
the bootstrap 95 % interval of the paired difference excludes 0 in l11's favour. At (cost, t):

* **supported**: all three pairs say "l11 costs less";
* **not supported**: at least one pair says "l11 costs more";
* **not separable**: otherwise, provided every pair has at least `MIN_SEEDS` paired seeds;
* **not enough seeds**: some pair has fewer (the curves did not bracket t on enough seeds).

This aggregation over the three pairs was written down on 2026-12-05, after a partial summary
of the first seeds had been seen; the pairwise rule and the primary pairs were fixed before.
No correction for multiplicity is applied (3 pairs x 2 costs x 3 drops = 18 primary intervals);
the table shows every interval so a reader can apply one.

**Claim 2** ("fully connected networks are more efficient than convolutional ones for memory
and MACC reduction"); this rule was written on 2026-12-05, before any conv-net row of the study
existed. Projected training, the study's setting, each cost and each level t = 0.5, 1, 2: the
**same absolute test accuracy** A_t for both networks, A_t = the lower of the two networks'
mean dense accuracies minus t. Per network, per seed, each constraint's cost is interpolated at
A_t along its radius curve exactly as `--iso-accuracy` does (at the drop dense_seed - A_t), in
absolute units (x the dense cost); the network's entry is its cheapest constraint with at least
`MIN_SEEDS` seeds bracketed. The networks are compared **unpaired** (different nets; their
seeds are not matched): the difference conv - fully connected of the seed means, with a 95 %
interval from resampling each network's seeds independently (`claims.bootstrap_ci_unpaired`:
`claims.BOOTSTRAP` resamples, fixed seed), for (a) the absolute cost and (b) the share of each
network's own dense cost. For each: **fully connected costs less** / **conv costs less** when
the interval excludes 0, else **not separable**. Claim 2 is supported at (cost, t) when the
fully connected network costs less in absolute terms; the share is reported beside it and
judged by the same rule, as the paper words the claim by shares. The curves are
`isoacc.radius_curves`, the ones `--iso-accuracy` reads; each network must have been trained in
one setting of the study (dataset, budget, split, groups), and a db holding more says so
instead of choosing one.

**Lottery against projected training and against its magnitude baseline** (item 8; secondary
and descriptive, no claim rests on it). Written on 2026-12-05 after LeNet-300-100's lottery and
magnitude cells of seeds 0-3 had been seen in the cells table, before any conv-net lottery or
magnitude point ran. Per network, constraint and radius of the study's setting, per seed, the
test accuracy of the lottery point minus (a) the projected point (lottery retrains the
projected run's mask from the initial weights: the same structure, trained again) and (b) the
magnitude point (the same number of weights kept per layer, chosen by magnitude after dense
training); mean over the seeds that have both, bootstrap 95 % interval of the paired mean
(`claims.bootstrap_ci`), **lottery more accurate** / **lottery less accurate** when it
excludes 0, **not separable** otherwise, **not enough seeds** under `MIN_SEEDS`. Beside them,
each procedure's structured MACCs as a share of dense, on the lottery point's seeds
(magnitude keeps as many weights but scattered, so it removes fewer whole units). No
correction for multiplicity.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from projlib.projections import REGISTRY
from projlib.report.claims import COSTS, bootstrap_ci, bootstrap_ci_unpaired
from projlib.report.isoacc import (
    PRIMARY,
    CurveKey,
    IsoPair,
    IsoTable,
    SeedCurve,
    iso_accuracy,
    radius_curves,
    setting,
)
from projlib.sweep import ResultsStore
from projlib.training.models import MODELS

DEFAULT_DB = Path(__file__).resolve().parents[1] / "results" / "study_v2.db"
MIN_SEEDS = 3
PROCEDURE = "projected"
LEVELS = (0.5, 1.0, 2.0)


def claim_one(pairs: Sequence[IsoPair]) -> str:
    """The claim-1 verdict at one (cost, drop) from its three primary pairs."""
    if any(p.verdict == f"{p.this} costs more" for p in pairs):
        return "not supported"
    if len(pairs) < len(PRIMARY) or any(p.n < MIN_SEEDS or p.ci_low is None for p in pairs):
        return "not enough seeds"
    if all(p.verdict == f"{p.this} costs less" for p in pairs):
        return "supported"
    return "not separable"


def _pts(p: IsoPair) -> str:
    if p.mean is None:
        return "n/a"
    ci = "" if p.ci_low is None else f" [{p.ci_low:+.1f}, {p.ci_high:+.1f}]"
    return f"{p.mean:+.1f}{ci} ({p.n})"


def _entry_cost(table: IsoTable, constraint: str) -> str:
    for e in table.entries:
        if e.constraint == constraint and e.procedure == PROCEDURE:
            if e.mean is None:
                return f"n/a (0/{e.seeds_total})"
            ci = "" if e.ci_low is None else f" [{100 * e.ci_low:.1f}, {100 * e.ci_high:.1f}]"
            return f"{100 * e.mean:.1f}{ci} ({len(e.per_seed)}/{e.seeds_total})"
    return "n/a"


@dataclass(frozen=True)
class NetCost:
    """A network's cheapest constraint at one absolute accuracy: per-seed absolute cost and
    share of its own dense cost."""

    model: str
    constraint: str
    absolute: tuple[float, ...]
    share: tuple[float, ...]


def study_curves(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[CurveKey, dict]]:
    """Per network, the projected curves of the study's setting (relative radii, a
    validation split), built by `isoacc.radius_curves` as `--iso-accuracy` builds them: each
    point against the dense baseline of its own seed, budget and split."""
    out: dict[str, dict[CurveKey, dict]] = {}
    for key, by_seed in radius_curves(rows).items():
        if key[3] == PROCEDURE and "relative radii" in key[2]:
            out.setdefault(key[1], {})[key] = by_seed
    return out


def _setting_label(key: CurveKey) -> str:
    dataset, _, variant, _, _, groups, epochs = key
    return f"{dataset}, {variant}, {epochs} epochs" + (f", groups {groups}" if groups else "")


def dense_mean(by_key: Mapping[CurveKey, Mapping[int, SeedCurve]]) -> float:
    """A network's mean dense accuracy (%) over the seeds its curves are measured against."""
    return statistics.fmean({s: c.dense for by_seed in by_key.values()
                             for s, c in by_seed.items()}.values())


def net_costs(curves: Mapping[str, Mapping[CurveKey, Mapping[int, SeedCurve]]], level: float,
              cost: str, dense_col: str, low_rank: set[str]) -> dict[str, NetCost]:
    """Per network, its cheapest constraint at absolute test accuracy `level` (%): each
    seed's cost at the drop (its own dense accuracy - `level`)."""
    out: dict[str, NetCost] = {}
    for model, by_key in curves.items():
        for key, by_seed in sorted(by_key.items(), key=lambda kv: kv[0][4]):
            absolute, share = [], []
            for _, curve in sorted(by_seed.items()):
                at = curve.cost_at(curve.dense - level, cost, dense_col, low_rank)
                if at is not None:
                    share.append(at)
                    absolute.append(at * curve.points[0][2][dense_col])
            if len(share) < MIN_SEEDS:
                continue
            entry = NetCost(model, key[4], tuple(absolute), tuple(share))
            best = out.get(model)
            if best is None or statistics.fmean(entry.absolute) < statistics.fmean(
                    best.absolute):
                out[model] = entry
    return out


def _side(low: float, high: float, above: str = "fully connected costs less",
          below: str = "conv costs less") -> str:
    """The interval rule: `above` when [low, high] lies above 0, `below` when under it."""
    if low > 0:
        return above
    if high < 0:
        return below
    return "not separable"


#: Claim 2's verdict from the absolute comparison (the rule above); the share is shown beside.
CLAIM_TWO = {"fully connected costs less": "supported", "conv costs less": "not supported",
             "not separable": "not separable"}


def claim_two(rows: Sequence[Mapping[str, Any]], low_rank: set[str]) -> list[str]:
    """Claim 2's table lines (Markdown), or one line saying why there is none."""
    curves = study_curves(rows)
    fc = sorted(m for m in curves if m in MODELS and MODELS[m].fully_connected)
    conv = sorted(m for m in curves if m in MODELS and not MODELS[m].fully_connected)
    if not fc or not conv:
        have = ", ".join(sorted(curves)) or "no network"
        return [f"Not answered: the db holds the study's setting for {have} only; claim 2 "
                "needs a fully connected and a convolutional network."]
    a, b = fc[0], conv[0]
    for model in (a, b):
        settings = sorted({_setting_label(k) for k in curves[model]})
        if len(settings) > 1:
            return [f"Not answered: {model} was trained in {len(settings)} settings of the "
                    f"study ({'; '.join(settings)}); claim 2 compares one budget per network."]
    datasets = {k[0] for m in (a, b) for k in curves[m]}
    if len(datasets) > 1:
        return [f"Not answered: {a} and {b} were trained on different datasets "
                f"({', '.join(sorted(datasets))})."]
    dense = {m: dense_mean(curves[m]) for m in (a, b)}
    top = min(dense.values())
    out = [f"{a} (fully connected, dense {dense[a]:.2f} %) vs {b} (convolutional, dense "
           f"{dense[b]:.2f} %), unpaired; each net's cheapest constraint at the same absolute "
           "test accuracy; difference = conv - fully connected.", "",
           "| cost | accuracy | fully connected: constraint, cost, share | conv: constraint, "
           "cost, share | absolute difference [95 % CI] | share difference (points) | "
           "absolute | share | claim 2 |",
           "|---|---:|---|---|---|---|---|---|---|"]
    for cost, dense_col, label in COSTS:
        for t in LEVELS:
            level = top - t
            got = net_costs({m: curves[m] for m in (a, b)}, level, cost, dense_col,
                            low_rank)
            if a not in got or b not in got:
                out.append(f"| {label} | {level:.2f} % | " + " | ".join(["n/a"] * 4)
                           + " | not enough seeds | not enough seeds | **not enough seeds** |")
                continue
            x, y = got[a], got[b]
            d, lo, hi = bootstrap_ci_unpaired(x.absolute, y.absolute)
            ds, los, his = bootstrap_ci_unpaired([100 * v for v in x.share],
                                                 [100 * v for v in y.share])
            out.append(
                f"| {label} | {level:.2f} % | {x.constraint}, {statistics.fmean(x.absolute):,.0f}, "
                f"{100 * statistics.fmean(x.share):.1f} % | {y.constraint}, "
                f"{statistics.fmean(y.absolute):,.0f}, {100 * statistics.fmean(y.share):.1f} % "
                f"| {d:+,.0f} [{lo:+,.0f}, {hi:+,.0f}] | {ds:+.1f} [{los:+.1f}, {his:+.1f}] | "
                f"{_side(lo, hi)} | {_side(los, his)} | **{CLAIM_TWO[_side(lo, hi)]}** |")
    return out


LOTTERY_BASELINES = ("projected", "magnitude")
REGISTRY_ORDER = {name: i for i, name in enumerate(REGISTRY)}  # the lottery rows' order


def lottery_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lottery comparison's tables (Markdown), one per network, or one line saying why
    there is none."""
    cells: dict[tuple, dict[str, dict[int, Mapping[str, Any]]]] = {}
    for r in rows:
        if (r.get("status") != "done" or r["test_accuracy"] is None
                or r["procedure"] not in ("lottery", *LOTTERY_BASELINES)):
            continue
        variant = setting(r)[1]
        if "relative radii" not in variant:
            continue
        key = (r["dataset"], r["model"], variant, r["epochs"], r["groups"] or "",
               r["constraint"], r["radius"])
        cells.setdefault(key, {}).setdefault(r["procedure"], {})[r["seed"]] = r
    keys = sorted((k for k, by in cells.items() if "lottery" in by),
                  key=lambda k: (k[:5], REGISTRY_ORDER.get(k[5], len(REGISTRY_ORDER)), k[6]))
    if not keys:
        return ["No lottery point of the study's setting in this db."]
    out: list[str] = []
    for net in dict.fromkeys(k[:5] for k in keys):
        dataset, model, variant, epochs, groups = net
        out += [f"### {dataset} · {model} ({variant}, {epochs} epochs"
                + (f", groups {groups}" if groups else "") + ")", "",
                "| constraint | radius | lottery - projected, points [95 % CI] (seeds) | "
                "lottery - magnitude, points [95 % CI] (seeds) | structured MACCs, % of "
                "dense: projected / lottery / magnitude |",
                "|---|---:|---|---|---|"]
        for key in (k for k in keys if k[:5] == net):
            by = cells[key]
            lottery = by["lottery"]
            parts = []
            for base in LOTTERY_BASELINES:
                seeds = sorted(set(lottery) & set(by.get(base, {})))
                if len(seeds) < MIN_SEEDS:
                    parts.append(f"not enough seeds ({len(seeds)})")
                    continue
                diffs = [100 * (lottery[s]["test_accuracy"] - by[base][s]["test_accuracy"])
                         for s in seeds]
                low, high = bootstrap_ci(diffs)
                side = _side(low, high, "lottery more accurate", "lottery less accurate")
                parts.append(f"{statistics.fmean(diffs):+.2f} [{low:+.2f}, {high:+.2f}] "
                             f"({len(seeds)}): {side}")
            shares = []
            for proc in ("projected", "lottery", "magnitude"):
                got = [p["maccs_structured"] / p["maccs_dense"]
                       for seed, p in by.get(proc, {}).items()
                       if seed in lottery and p["maccs_structured"] is not None
                       and p["maccs_dense"]]
                shares.append(f"{100 * statistics.fmean(got):.1f}" if got else "n/a")
            out.append(f"| {key[5]} | {key[6]:g} | {parts[0]} | {parts[1]} | "
                       f"{' / '.join(shares)} |")
        out.append("")
    return out


def render(tables: Sequence[IsoTable], claim_two_lines: Sequence[str] = (),
           lottery: Sequence[str] = ()) -> str:
    study = [t for t in tables if "relative radii" in t.variant]
    out = ["# Study v2: verdicts", "",
           "Generated by `studies/v2/verdicts.py` from `studies/results/study_v2.db` (rules: "
           "its docstring; numbers: `greenbench summary --iso-accuracy`). Costs are "
           "percentages of the dense network's; differences are other minus l11 in points of "
           "the dense cost (positive: l11 costs less), bootstrap 95 % interval, paired seeds "
           "in brackets.", ""]
    if not study:
        out.append("No rows of the study's setting (relative radii) in this db.")
        return "\n".join(out) + "\n"
    for (dataset, model) in dict.fromkeys((t.dataset, t.model) for t in study):
        out += [f"## Claim 1 · {dataset} · {model} · projected training", "",
                "| cost | drop (points) | l11 cost [95 % CI] (seeds) | "
                + " | ".join(f"{b} - l11" for _, b in PRIMARY) + " | verdict |",
                "|---|---:|---|" + "---|" * len(PRIMARY) + "---|"]
        for t in study:
            if (t.dataset, t.model) != (dataset, model):
                continue
            pairs = {p.other: p for p in t.pairs
                     if p.primary and p.procedure == PROCEDURE and p.this == "l11"}
            got = [pairs[b] for _, b in PRIMARY if b in pairs]
            cells = [(_pts(pairs[b]) if b in pairs else "n/a") for _, b in PRIMARY]
            out.append(f"| {t.cost_label} | {t.target:g} | {_entry_cost(t, 'l11')} | "
                       + " | ".join(cells) + f" | **{claim_one(got)}** |")
        out.append("")
    out += ["## Claim 2", "", *claim_two_lines]
    if lottery:
        out += ["", "## Lottery against projected training and its magnitude baseline "
                "(secondary, descriptive)", "",
                "Test accuracy, paired by seed at the same constraint and radius (rule: this "
                "script's docstring); structured MACCs as the mean share of the dense "
                "network's over the lottery points' seeds.", "", *lottery]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str]) -> int:
    db = Path(argv[0]) if argv else DEFAULT_DB
    with ResultsStore(db, read_only=True) as store:
        rows = store.rows()
    low_rank = {name for name, spec in REGISTRY.items() if spec.low_rank}
    sys.stdout.write(render(iso_accuracy(rows, low_rank=low_rank), claim_two(rows, low_rank),
                            lottery_lines(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
