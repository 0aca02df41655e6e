"""Per-point median epoch time of the default sweep, run in two orders in fresh processes.

    python -m benchmarks.point_order            # prints a Markdown table, exits 1 when the
                                                # orders differ beyond what the spread explains

A point's figures must not depend on where it sits in a sweep: one-off costs (numba compiling a
kernel, torch starting its thread pool, CUDA creating its context) belong to the warm-up, not to
the first point that meets them. Each order runs in its own interpreter (``--order`` is the
worker mode), so both start cold, as a real sweep does.

Each order runs ``--rounds`` times (default 2), the orders alternating (forward, reverse,
forward, ...) so that load drifting on the machine hits both. What is compared, per point (its
epochs' training-step times, `epoch_time_json` of its row):

* **median epoch time**, reverse vs forward, over the epochs of all rounds of an order. A
  median of n epochs has a standard error of about 1.2533 sigma / sqrt(n), sigma ~ IQR / 1.349,
  so an order's relative error is ``0.93 * IQR / (median * sqrt(n))``, or the spread of its
  rounds' medians (standard deviation / sqrt(rounds)) where that is larger (drift between
  processes, which the within-point spread cannot see). The two orders' errors add in
  quadrature and a point passes when ``|ln(reverse / forward)| <= Z * that`` (Z = 4), never
  tighter than ``FLOOR`` (5 %: clock and cache placement). The median over points of
  ``ln(ratio)`` is held to the same rule with the standard error of a median of the points.
* **first epoch**, the statistic a one-off cost lands in (a median of 20 epochs ignores one
  slow epoch): the first epoch's excess over the point's median, in medians, taken as the
  smallest over an order's rounds (a one-off cost recurs in every cold process, a burst of load
  rarely does), must not differ between the orders by more than ``FENCE`` relative IQRs
  (Tukey's far-out fence), nor by more than ``FIRST_FLOOR`` medians.

A point whose epoch times spread by more than NOISE_FRACTION (20 %) of their median in either
order is marked noisy: its verdict stands, and the table says how little it means.

``--inject-first-epoch-s S`` sleeps S seconds in the first training step of the first point of
each order (after its warm-up): the one-off cost this check exists to catch, put back on purpose.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from projlib.schema import NOISE_FRACTION

Z = 4.0
FLOOR = 0.05
FENCE = 3.0
FIRST_FLOOR = 0.5
_SE_MEDIAN = 1.2533 / 1.349  # standard error of a median per (IQR / sqrt(n)), normal samples

ROOT = Path(__file__).resolve().parents[1]


def default_points() -> list:
    """The points of the default `greenbench run` sweep (what `greenbench run` with no argument
    trains), on the CPU: resolved by the CLI's own option layers, not rebuilt here."""
    from projlib.cli.options import RunFlags, resolve_run_options

    return resolve_run_options(RunFlags(device="cpu")).sweep.points()


def label(p) -> str:  # noqa: ANN001 - a TrainConfig
    return "dense" if p.procedure == "dense" else f"{p.constraint} r={p.radius:g}"


def inject_one_off(seconds: float) -> None:
    """Make the next point's first training step sleep `seconds` (after its warm-up, inside
    its window): a forward pre-hook on the model its own training builds, used once."""
    from projlib.sweep import runner
    from projlib.training import procedures

    real_train, real_build = runner.train, procedures.build_model
    armed = [True]

    def build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        model = real_build(*args, **kwargs)

        def hook(module, _inputs) -> None:  # noqa: ANN001
            if armed[0] and module.training:
                armed[0] = False
                time.sleep(seconds)

        model.register_forward_pre_hook(hook)
        return model

    def train(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        procedures.build_model, runner.train = build, real_train  # this call only
        try:
            return real_train(*args, **kwargs)
        finally:
            procedures.build_model = real_build

    runner.train = train


def run_order(points: Sequence, inject_first_s: float = 0.0) -> dict[str, dict]:
    """Per point, in this process and this order: its epoch times (s) and wall time."""
    import torch

    from projlib.sweep import runner

    torch.set_num_threads(1)
    settings = runner.PointSettings(threads=1, inference=False)
    out = {}
    for i, p in enumerate(points):
        if i == 0 and inject_first_s > 0:
            inject_one_off(inject_first_s)
        metrics = runner.run_point(p, settings=settings)
        detail = json.loads(metrics["epoch_time_json"])
        out[label(p)] = {"epoch_time_s": detail["epoch_time_s"],
                         "wall_time_s": metrics["wall_time_s"]}
    return out


def _stats(times: Sequence[float]) -> tuple[float, float, int]:
    q1, med, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return med, q3 - q1, len(times)


def _order_stats(rounds: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """Median and IQR over every epoch of an order's rounds, its relative standard error (the
    larger of within-point and between-round), and the smallest first-epoch excess."""
    med, iqr, n = _stats([t for times in rounds for t in times])
    se = _SE_MEDIAN * iqr / (med * math.sqrt(n))
    if len(rounds) > 1:
        medians = [statistics.median(times) for times in rounds]
        se = max(se, statistics.stdev(medians) / math.sqrt(len(rounds)) / med)
    excess = min((times[0] - statistics.median(times)) / statistics.median(times)
                 for times in rounds)
    return med, iqr, se, excess


def compare_point(fwd: Sequence[Sequence[float]], rev: Sequence[Sequence[float]]) -> dict:
    """The verdict on one point from its epoch times in each round of the two orders."""
    (mf, iqr_f, se_f, excess_f), (mr, iqr_r, se_r, excess_r) = _order_stats(fwd), _order_stats(rev)
    se = math.hypot(se_f, se_r)
    log_ratio = math.log(mr / mf)
    tolerance = max(FLOOR, Z * se)
    first_limit = max(FIRST_FLOOR, FENCE * max(iqr_f / mf, iqr_r / mr))
    return {
        "forward_median_s": mf, "forward_iqr_s": iqr_f, "reverse_median_s": mr,
        "reverse_iqr_s": iqr_r, "ratio": mr / mf, "log_ratio": log_ratio, "se": se,
        "tolerance": tolerance, "median_ok": abs(log_ratio) <= tolerance,
        "first_excess_forward": excess_f, "first_excess_reverse": excess_r,
        "first_limit": first_limit, "first_ok": abs(excess_r - excess_f) <= first_limit,
        "noisy": max(iqr_f / mf, iqr_r / mr) > NOISE_FRACTION,
    }


def compare(fwd: Sequence[Mapping[str, Mapping]], rev: Sequence[Mapping[str, Mapping]]
            ) -> dict:
    """Per-point verdicts and the median-over-points check of two orders' rounds (each round:
    label -> {"epoch_time_s": [...]}, as `run_order` returns)."""
    points = {name: compare_point([r[name]["epoch_time_s"] for r in fwd],
                                  [r[name]["epoch_time_s"] for r in rev])
              for name in fwd[0]}
    logs = [v["log_ratio"] for v in points.values()]
    rms_se = math.sqrt(statistics.fmean(v["se"] ** 2 for v in points.values()))
    median_tolerance = max(FLOOR / 2, Z * 1.2533 * rms_se / math.sqrt(len(logs)))
    median_log = statistics.median(logs)
    ok = (all(v["median_ok"] and v["first_ok"] for v in points.values())
          and abs(median_log) <= median_tolerance)
    return {"points": points, "median_log_ratio": median_log,
            "median_tolerance": median_tolerance, "ok": ok,
            "noisy": sum(v["noisy"] for v in points.values())}


def to_markdown(result: Mapping) -> str:
    lines = ["| point | forward median (IQR) s/epoch | reverse median (IQR) s/epoch | "
             "reverse / forward | tolerance | first epoch excess fwd / rev (limit) | verdict |",
             "|---|---|---|---|---|---|---|"]
    for name, v in result["points"].items():
        why = [w for w, ok in (("median", v["median_ok"]), ("first epoch", v["first_ok"]))
               if not ok]
        lines.append(
            f"| {name} | {v['forward_median_s']:.4f} ({v['forward_iqr_s']:.4f}) | "
            f"{v['reverse_median_s']:.4f} ({v['reverse_iqr_s']:.4f}) | {v['ratio']:.3f} | "
            f"±{math.exp(v['tolerance']) - 1:.1%} | {v['first_excess_forward']:+.2f} / "
            f"{v['first_excess_reverse']:+.2f} ({v['first_limit']:.2f}) | "
            f"{'ok' if not why else 'FAIL: ' + ', '.join(why)}"
            f"{' (noisy)' if v['noisy'] else ''} |")
    lines.append("")
    lines.append(f"median over points of reverse / forward: "
                 f"{math.exp(result['median_log_ratio']):.3f} (tolerance "
                 f"±{math.exp(result['median_tolerance']) - 1:.1%}); "
                 f"{'pass' if result['ok'] else 'FAIL'}")
    if result["noisy"]:
        lines.append(f"{result['noisy']} of {len(result['points'])} points noisy (epoch-time "
                     f"IQR > {NOISE_FRACTION:.0%} of the median in an order): the machine was "
                     "not quiet; their tolerances are wide accordingly")
    return "\n".join(lines)


def spawn(order: str, inject_first_s: float = 0.0) -> dict[str, dict]:
    cmd = [sys.executable, "-m", "benchmarks.point_order", "--order", order]
    if inject_first_s:
        cmd += ["--inject-first-epoch-s", str(inject_first_s)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", choices=("forward", "reverse"))
    parser.add_argument("--inject-first-epoch-s", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    points = default_points()
    if args.order:
        ordered = points if args.order == "forward" else points[::-1]
        print(json.dumps(run_order(ordered, args.inject_first_epoch_s)))
        return 0
    fwd, rev = [], []
    for _ in range(args.rounds):
        fwd.append(spawn("forward", args.inject_first_epoch_s))
        rev.append(spawn("reverse", args.inject_first_epoch_s))
    result = compare(fwd, rev)
    print(to_markdown(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
