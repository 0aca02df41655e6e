"""Dense training curves on a validation split, and the epoch budget read from them (issue 23,
item 1). Run from the repository root:

    python studies/plateau.py run --model lenet300 --epochs 40 --seeds 3
    python studies/plateau.py run --model convnet --epochs 20 --seed 0   # & --seed 1, 2
    python studies/plateau.py table > docs/results/plateau.md
    python studies/plateau.py run --model lenet300 --epochs 40 --seeds 10
    python studies/plateau.py check --model lenet300 > docs/results/study_v2_plateau_check.md

`run` trains the dense net at the study's optimiser (SGD, momentum 0.9, step 0.02, batch 128)
on Fashion-MNIST with 10 % of the training set held out (`validation = 0.1`), and writes
`studies/results/plateau/<model>_seed<k>.json` after every epoch (validation accuracy per
epoch; the test accuracy once, at the end). A finished seed is skipped on a rerun; a seed cut
short keeps its epochs so far (and is rerun from scratch next time). With a constant step and no
schedule, epoch e of a longer run *is* a run of e epochs, so one run gives every budget.

The rule, fixed before looking at the data (`budget`):
* curve: the mean over seeds of the validation accuracy after each epoch, on the epochs every
  seed reached;
* plateau: the maximum of its trailing 5-epoch moving mean;
* budget: the first epoch whose mean is within 0.5 points of the plateau;
* the plateau counts as reached only if the last 5-epoch moving mean is less than 0.25 points
  above the one 5 epochs before (under 0.05 points/epoch); otherwise the table says the curve
  is still rising and the plateau is a lower bound.

The runs are kept in `studies/results/plateau/` (committed: raw data). The conv net's runs
behind plateau.md's conv section were made before that directory was kept and are not in it,
so `table` prints that section only after `run --model convnet` (which now trains in
channels_last, so its curve would be rounded differently: docs/results/study_v2.md).

`check` (added after the study, not part of the budget rule): the same rule on every seed run
so far, the study's fixed budget (`STUDY_BUDGET`) read against that plateau, and the study db's
dense validation accuracies beside the runs' (the same seeds, so the same numbers where the
training code path is the same).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import torch

from projlib.training import TrainConfig, load_dataset, train

OUT = Path(__file__).resolve().parent / "results" / "plateau"
WINDOW = 5
WITHIN = 0.5  # points
RISING = 0.25  # points over WINDOW epochs
VALIDATION = 0.1
TRAIN = {"optimizer": "sgd", "lr": 0.02, "batch_size": 128}
# The seeds `table` reads the budget from (the study's budget came from these, before the
# grid); `check` reads every seed run.
BUDGET_SEEDS = (0, 1, 2)
# The epochs per phase the study ran with (from `table` on seeds 0-2, before the grid).
STUDY_BUDGET = {"lenet300": 16, "convnet": 10}
STUDY_DB = Path(__file__).resolve().parent / "results" / "study_v2.db"


def _path(model: str, seed: int) -> Path:
    return OUT / f"{model}_seed{seed}.json"


def _runs(model: str) -> list[dict]:
    """Every kept run of `model` (`run`'s JSON records), in file-name order."""
    return [json.loads(p.read_text()) for p in sorted(OUT.glob(f"{model}_seed*.json"))]


def run(model: str, epochs: int, seeds: list[int], device: str = "cpu") -> None:
    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist")
    OUT.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        path = _path(model, seed)
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("complete") and old["epochs"] >= epochs:
                print(f"{path.name}: done, skipped", flush=True)
                continue
        cfg = TrainConfig(dataset="fashion-mnist", model=model, procedure="dense",
                          epochs=epochs, seed=seed, validation=VALIDATION, device=device,
                          **TRAIN)
        rec = {"model": model, "seed": seed, "epochs": epochs, "validation": VALIDATION,
               **TRAIN, "momentum": 0.9, "threads": 1, "device": device,
               "data_fingerprint": data.fingerprint,
               "val_accuracy": [], "epoch_wall_s": [], "complete": False,
               "test_accuracy": None}
        last = [time.perf_counter()]

        def progress(event: dict, rec: dict = rec, path: Path = path, last: list = last,
                     seed: int = seed) -> None:
            now = time.perf_counter()
            rec["val_accuracy"].append(event["val_accuracy"])
            rec["epoch_wall_s"].append(round(now - last[0], 2))
            last[0] = now
            path.write_text(json.dumps(rec))
            print(f"{model} seed {seed} epoch {event['epoch']}: val "
                  f"{event['val_accuracy']:.4f}", flush=True)

        res = train(cfg, progress=progress, dataset=data)
        rec["test_accuracy"] = res.test_accuracy
        rec["complete"] = True
        path.write_text(json.dumps(rec))


def _moving(xs: list[float]) -> list[float | None]:
    return [None if i + 1 < WINDOW else statistics.fmean(xs[i + 1 - WINDOW : i + 1])
            for i in range(len(xs))]


def budget(curves: list[list[float]]) -> dict:
    """The rule of the module docstring on per-seed curves (accuracies in [0, 1])."""
    n = min(len(c) for c in curves)
    mean = [100 * statistics.fmean(c[e] for c in curves) for e in range(n)]
    moving = _moving(mean)
    known = [m for m in moving if m is not None]
    if not known:
        return {"epochs_run": n, "mean": mean, "moving": moving, "plateau": None,
                "budget": None, "reached": None}
    plateau = max(known)
    first = next(e + 1 for e, m in enumerate(mean) if m >= plateau - WITHIN)
    reached = None
    if n >= 2 * WINDOW:
        reached = moving[-1] - moving[-1 - WINDOW] < RISING
    return {"epochs_run": n, "mean": mean, "moving": moving, "plateau": plateau,
            "budget": first, "reached": reached}


def table() -> str:
    lines = ["# Dense training curves and the epoch budget (study v2, item 1)", "",
             "Generated by `python studies/plateau.py table > docs/results/plateau.md` from "
             "the runs of `python studies/plateau.py run --model M --epochs E` (Fashion-MNIST, "
             f"{int(VALIDATION * 100)} % of the training set held out as the validation "
             "split, dense, SGD momentum 0.9, step 0.02, batch 128, 1 thread). Rule, fixed "
             "before the runs"
             " (see the script's docstring): plateau = the maximum of the trailing "
             f"{WINDOW}-epoch moving mean of the seed-mean validation accuracy; budget = the "
             f"first epoch whose seed-mean is within {WITHIN} points of it; the plateau counts "
             f"as reached when the last moving mean is under {RISING} points above the one "
             f"{WINDOW} epochs earlier.", ""]
    for model in ("lenet300", "convnet"):
        recs = [r for r in _runs(model) if r["val_accuracy"] and r["seed"] in BUDGET_SEEDS]
        lines += [f"## {model}", ""]
        if not recs:
            lines += ["Not run.", ""]
            continue
        b = budget([r["val_accuracy"] for r in recs])
        seeds = ", ".join(
            f"seed {r['seed']}: {len(r['val_accuracy'])} epochs"
            + ("" if r["complete"] else " (cut short)") for r in recs)
        prints = sorted({r["data_fingerprint"][:12] for r in recs})
        lines.append(f"Data fingerprint: {', '.join(prints)}.")
        walls = [w for r in recs for w in r["epoch_wall_s"]]
        lines.append(f"Seeds: {seeds}. Median wall time per epoch (training + validation, "
                     f"niced on a shared 2-core CPU, seeds run side by side: not a compute "
                     f"figure): {statistics.median(walls):.1f} s.")
        tests = [r["test_accuracy"] for r in recs if r["test_accuracy"] is not None]
        if tests:
            lines.append(f"Test accuracy after the last epoch (read once per finished seed): "
                         f"{', '.join(f'{100 * t:.2f} %' for t in tests)}.")
        if b["plateau"] is None:
            lines += [f"Fewer than {WINDOW} epochs on every seed: no plateau.", ""]
        else:
            state = {True: "reached (the curve is flat by the rule)",
                     False: "**not reached**: the curve still rises by the rule, so the "
                            "plateau is a lower bound and the budget an underestimate",
                     None: f"undecided (fewer than {2 * WINDOW} epochs)"}[b["reached"]]
            lines += ["", f"**Plateau {b['plateau']:.2f} %** (validation, mean of "
                      f"{len(recs)} seeds over {b['epochs_run']} epochs), {state}. "
                      f"**Budget: {b['budget']} epochs per phase** (first epoch within "
                      f"{WITHIN} points: {b['mean'][b['budget'] - 1]:.2f} %).", ""]
        lines += ["| epoch | " + " | ".join(f"seed {r['seed']}" for r in recs)
                  + f" | mean | {WINDOW}-epoch moving mean |",
                  "|---:|" + "---:|" * (len(recs) + 2)]
        for e in range(max(len(r["val_accuracy"]) for r in recs)):
            cells = [f"{100 * r['val_accuracy'][e]:.2f}" if e < len(r["val_accuracy"]) else ""
                     for r in recs]
            mean = f"{b['mean'][e]:.2f}" if e < b["epochs_run"] else ""
            mv = b["moving"][e] if e < b["epochs_run"] else None
            lines.append(f"| {e + 1} | " + " | ".join(cells)
                         + f" | {mean} | {'' if mv is None else f'{mv:.2f}'} |")
        lines.append("")
    return "\n".join(lines)


def _study_dense(model: str, db: Path) -> dict[int, float]:
    """seed -> validation accuracy of the study's finished dense points of `model` at its
    budget on the validation split (read only)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT seed, val_accuracy, config_json FROM points WHERE status = 'done' AND "
            "procedure = 'dense' AND model = ? AND epochs = ? AND val_accuracy IS NOT NULL",
            (model, STUDY_BUDGET[model])).fetchall()
    finally:
        con.close()
    return {seed: val for seed, val, cfg in rows
            if json.loads(cfg).get("validation") == VALIDATION}


def check(model: str, db: Path = STUDY_DB) -> str:
    """The budget rule on every seed run so far, and the study's budget read against it."""
    recs = sorted((r for r in _runs(model) if r["complete"]), key=lambda r: r["seed"])
    study = STUDY_BUDGET[model]
    lines = [f"# The study's budget against the plateau of more seeds ({model})", "",
             f"Generated by `python studies/plateau.py check --model {model}` (called by "
             "`bash studies/publish.sh`) from the study db and the runs of `python "
             f"studies/plateau.py run --model {model} --epochs 40 --seeds 10` "
             "(`studies/results/plateau/`, the settings of "
             "[plateau.md](plateau.md)). The budget was set from seeds 0-2 before the grid; this "
             "check was added after the study's 10 dense seeds ended 0.52 points below that "
             "3-seed plateau. Same rule, more seeds; it does not change the budget the study "
             "ran with.", ""]
    if not recs or min(len(r["val_accuracy"]) for r in recs) < study:
        lines.append(f"Fewer than {study} epochs on some seed: nothing to check.")
        return "\n".join(lines) + "\n"
    lines.append("| seeds | plateau (val %) | budget by the rule | mean at the study's "
                 f"{study} epochs | below the plateau (points) | within {WITHIN} points |")
    lines.append("|---|---:|---:|---:|---:|---|")
    seeds = "-".join(str(s) for s in (BUDGET_SEEDS[0], BUDGET_SEEDS[-1]))
    subsets = [(f"{seeds} (the budget's)", [r for r in recs if r["seed"] in BUDGET_SEEDS]),
               (f"all {len(recs)}", recs)]
    for label, sub in subsets:
        if not sub:
            continue
        b = budget([r["val_accuracy"] for r in sub])
        at = b["mean"][study - 1]
        gap = b["plateau"] - at
        lines.append(f"| {label} | {b['plateau']:.2f} | {b['budget']} | {at:.2f} | "
                     f"{gap:.2f} | {'yes' if gap <= WITHIN else 'no'} |")
    # b: the rule on all seeds (the last subset), read below
    state = {True: "reached (flat by the rule)", False: "still rising by the rule",
             None: "undecided"}[b["reached"]]
    lines += ["", f"On all {len(recs)} seeds over {b['epochs_run']} epochs the plateau is "
              f"{state}.", ""]
    dense = _study_dense(model, db)
    lines += [f"Per seed (validation %): epoch {study} of the plateau run, the study db's dense "
              "point, the seed's own plateau (max trailing 5-epoch moving mean).", "",
              f"| seed | plateau run, epoch {study} | study db | seed's own plateau |",
              "|---:|---:|---:|---:|"]
    for r in recs:
        own = max(m for m in _moving([100 * v for v in r["val_accuracy"]]) if m is not None)
        db_val = dense.get(r["seed"])
        lines.append(f"| {r['seed']} | {100 * r['val_accuracy'][study - 1]:.2f} | "
                     f"{'not in the db' if db_val is None else f'{100 * db_val:.2f}'} | "
                     f"{own:.2f} |")
    lines += ["", "| epoch | " + " | ".join(f"seed {r['seed']}" for r in recs)
              + f" | mean | {WINDOW}-epoch moving mean |",
              "|---:|" + "---:|" * (len(recs) + 2)]
    for e in range(b["epochs_run"]):
        mv = b["moving"][e]
        lines.append(f"| {e + 1} | "
                     + " | ".join(f"{100 * r['val_accuracy'][e]:.2f}" for r in recs)
                     + f" | {b['mean'][e]:.2f} | {'' if mv is None else f'{mv:.2f}'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--model", choices=("lenet300", "convnet"), required=True)
    r.add_argument("--epochs", type=int, default=40)
    r.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    r.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    r.add_argument("--seed", type=int, action="append",
                   help="run only this seed (repeatable; e.g. one process per seed)")
    sub.add_parser("table")
    c = sub.add_parser("check")
    c.add_argument("--model", choices=tuple(STUDY_BUDGET), required=True)
    c.add_argument("--db", type=Path, default=STUDY_DB, help="the study db (read only)")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        if not 1 <= args.epochs <= 1000 or not 1 <= args.seeds <= 100:
            print("plateau: --epochs must be in 1..1000 and --seeds in 1..100", file=sys.stderr)
            return 2
        seeds = args.seed or list(range(args.seeds))
        if any(not 0 <= s < 2**32 for s in seeds):
            print("plateau: --seed must be in 0..2**32-1", file=sys.stderr)
            return 2
        run(args.model, args.epochs, seeds, args.device)
    elif args.cmd == "check":
        if not args.db.is_file():
            print(f"plateau: no study db at {args.db}", file=sys.stderr)
            return 2
        print(check(args.model, args.db), end="")
    else:
        print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
