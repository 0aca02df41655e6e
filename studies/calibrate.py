"""Study v2, item 4: choose the grid's radii from the recorded calibration scan. From the
repository root, after `greenbench run studies/v2/calibrate_<model>.toml`:

    python studies/calibrate.py [DB]        # default studies/results/study_v2.db

prints, per model, a `[radius]` table for `studies/v2/grid_<model>.toml` and how each list
was found. Reads the db only.

The rule, fixed before the scan runs:
* points: the scan's projected points (relative radii, validation split), and the dense
  baseline of the same seed; drop = dense `val_accuracy` - the point's, in points (the test set
  is not read);
* per seed, the drops are made non-increasing in the radius (isotonic regression, as
  `greenbench summary --iso-accuracy`), then averaged over seeds at each radius;
* the ends: the radius where that mean drop crosses `HIGH` = 3.5 points (tight end) and `LOW`
  = 0.3 points (loose end), log radius linear in the drop between the scan's radii; where the
  scan does not reach an end, its tightest (resp. loosest) radius is taken and a note says so;
* the grid: `COUNT` = 5 radii (the least the issue allows: the budget, see
  docs/results/study_v2_plan.md) log-spaced between the two ends, both included, rounded to two
  significant digits, so drops from about 0.5 to 3 points are bracketed with a margin.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from projlib.report.isoacc import isotonic
from projlib.sweep import ResultsStore
from projlib.sweep.store import StoreError

HIGH, LOW, COUNT = 3.5, 0.3, 5
DEFAULT_DB = Path(__file__).resolve().parent / "results" / "study_v2.db"


def _round2(x: float) -> float:
    return float(f"{x:.2g}")


def _crossing(radii: Sequence[float], drops: Sequence[float], level: float) -> float | None:
    # drops non-increasing in the radius; log radius linear in the drop between neighbours
    for i in range(len(radii) - 1):
        hi, lo = drops[i], drops[i + 1]
        if lo <= level <= hi and hi > lo:
            w = (hi - level) / (hi - lo)
            return math.exp(math.log(radii[i]) + w * (math.log(radii[i + 1]) - math.log(radii[i])))
    return None


def choose(curve: Mapping[float, float]) -> tuple[list[float], list[str]]:
    """Grid radii from {radius: mean fitted drop (points)}, and notes on unreached ends."""
    radii = sorted(curve)
    drops = [curve[r] for r in radii]
    notes = []
    tight = _crossing(radii, drops, HIGH)
    if tight is None:
        tight = radii[0] if drops[0] < HIGH else radii[-1]
        why = ("even the tightest radius loses less than" if drops[0] < HIGH
               else "every radius loses more than")
        notes.append(f"{why} {HIGH} points; tight end {tight:g} (drop {curve[tight]:.2f})")
    loose = _crossing(radii, drops, LOW)
    if loose is None:
        loose = radii[-1] if drops[-1] > LOW else radii[0]
        why = ("even the loosest radius loses more than" if drops[-1] > LOW
               else "every radius loses less than")
        notes.append(f"{why} {LOW} points; loose end {loose:g} (drop {curve[loose]:.2f})")
    if loose <= tight:
        notes.append("the ends coincide: widen the scan")
        return [_round2(tight)], notes
    ratio = (loose / tight) ** (1 / (COUNT - 1))
    return [_round2(tight * ratio**k) for k in range(COUNT)], notes


def curves(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[float, float]]:
    """{(model, constraint): {relative radius: mean over seeds of the fitted val drop}}."""
    done = [r for r in rows if r.get("status") == "done" and r.get("val_accuracy") is not None]
    dense = {(r["model"], r["epochs"], r["seed"]): 100 * r["val_accuracy"]
             for r in done if r["procedure"] == "dense"}
    per: dict[tuple[str, str], dict[int, list[tuple[float, float]]]] = {}
    for r in done:
        cfg = json.loads(r.get("config_json") or "{}")
        base = (r["model"], r["epochs"], r["seed"])
        if (r["procedure"] != "projected" or cfg.get("radius_mode") != "relative"
                or base not in dense):
            continue
        per.setdefault((r["model"], r["constraint"]), {}).setdefault(r["seed"], []).append(
            (r["radius"], dense[base] - 100 * r["val_accuracy"]))
    out: dict[tuple[str, str], dict[float, float]] = {}
    for key, seeds in per.items():
        fitted: dict[float, list[float]] = {}
        for points in seeds.values():
            points.sort()
            for (radius, _), d in zip(points, isotonic([p[1] for p in points], False),
                                      strict=True):
                fitted.setdefault(radius, []).append(d)
        out[key] = {r: statistics.fmean(v) for r, v in fitted.items()}
    return out


def main(argv: list[str]) -> int:
    db = Path(argv[0]) if argv else DEFAULT_DB
    if not db.exists():
        print(f"calibrate: {db} does not exist (run the calibration first)", file=sys.stderr)
        return 2
    try:
        with ResultsStore(db, read_only=True) as store:
            found = curves(store.rows())
    except StoreError as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    if not found:
        print(f"calibrate: {db} holds no finished relative-radius projected point with a "
              "validation split", file=sys.stderr)
        return 2
    for model in sorted({m for m, _ in found}):
        print(f"# {model}: [radius] for studies/v2/grid_{model}.toml")
        print("[radius]")
        for (m, constraint), curve in sorted(found.items()):
            if m != model:
                continue
            radii, notes = choose(curve)
            scan = ", ".join(f"{r:g}: {d:.2f}" for r, d in sorted(curve.items()))
            print(f"# {constraint} scan (radius: mean val drop, points): {scan}")
            for note in notes:
                print(f"# note: {note}")
            print(f"{constraint} = {radii}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
