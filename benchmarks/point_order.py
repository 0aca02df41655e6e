"""Per-point wall time per epoch of the default sweep, run in two orders in fresh processes.

    python benchmarks/point_order.py            # prints a Markdown table, exits 1 when a point
                                                # differs by more than 25 % between the orders

A point's figures must not depend on where it sits in a sweep: one-off costs (numba compiling a
kernel, torch starting its thread pool, CUDA creating its context) belong to the warm-up, not to
the first point that meets them. Each order runs in its own interpreter (``--order`` is the
worker mode), so both start cold, as a real sweep does.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys

POINT_TOLERANCE = 0.25
MEDIAN_TOLERANCE = 0.10


def default_points() -> list[dict]:
    """The default `greenbench run` sweep (digits, mlp, SGD 0.02, batch 32, 20 epochs)."""
    shared = dict(dataset="digits", model="mlp", epochs=20, optimizer="sgd", lr=0.02,
                  batch_size=32, device="cpu")
    radii = {"l1": (10.0, 30.0, 100.0), "l21": (3.0, 10.0, 30.0), "l11": (10.0, 30.0, 100.0)}
    points = [dict(shared, procedure="dense")]
    for name, values in radii.items():
        points += [dict(shared, procedure="projected", constraint=name, radius=r) for r in values]
    return points


def _label(p: dict) -> str:
    return "dense" if p["procedure"] == "dense" else f"{p['constraint']} r={p['radius']:g}"


def run_order(points: list[dict]) -> dict[str, float]:
    """Seconds per epoch of each point, run one after another in this process."""
    import torch

    from projlib.sweep import runner
    from projlib.training import TrainConfig

    torch.set_num_threads(1)
    kwargs = {}
    if "settings" in inspect.signature(runner.run_point).parameters:
        kwargs["settings"] = runner.PointSettings(threads=1, inference=False)
    out = {}
    for p in points:
        metrics = runner.run_point(TrainConfig(**p), **kwargs)
        out[_label(p)] = metrics["wall_time_s"] / p["epochs"]
    return out


def _spawn(order: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--order", order], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", choices=("forward", "reverse"))
    args = parser.parse_args()
    points = default_points()
    if args.order:
        print(json.dumps(run_order(points if args.order == "forward" else points[::-1])))
        return 0
    fwd, rev = _spawn("forward"), _spawn("reverse")
    print("| point | forward s/epoch | reverse s/epoch | reverse / forward |")
    print("|---|---|---|---|")
    ratios = []
    for p in points:
        name = _label(p)
        ratios.append(rev[name] / fwd[name])
        print(f"| {name} | {fwd[name]:.4f} | {rev[name]:.4f} | {ratios[-1]:.2f} |")
    worst = max(max(ratios), 1 / min(ratios)) - 1
    med = abs(statistics.median(ratios) - 1)
    print(f"\nworst point {worst:.0%} (target <= {POINT_TOLERANCE:.0%}), median "
          f"{med:.0%} (target <= {MEDIAN_TOLERANCE:.0%})")
    return 0 if worst <= POINT_TOLERANCE and med <= MEDIAN_TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
