#!/usr/bin/env bash
# Regenerate the published study tables under docs/results/ from a study db (read only):
#   bash studies/publish.sh               # study v2, from the committed studies/results/study_v2.db
#   bash studies/publish.sh v1 [DB]       # the one-epoch study (appendix), default studies/results/study.db
# Nothing here is typed by hand: every table is `greenbench summary` / `greenbench runs` output,
# and the compute totals are read from the points' own timestamps.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a gb <<< "${GREENBENCH:-greenbench}"  # a command, e.g. "python -m projlib.cli"
# studies/v2/verdicts.py imports projlib: by default the python beside the greenbench that runs
py=${PYTHON:-}
if [ -z "$py" ]; then
    gb_path=$(command -v "${gb[0]}" || true)
    py=${gb_path:+$(dirname "$gb_path")/python}
    py=${py:-python}
fi
out=${OUT:-docs/results}
mkdir -p "$out"
which=${1:-v2}

points_columns=point_id,status,dataset,model,procedure,constraint,radius,groups,seed,epochs,\
test_accuracy,fraction_nonzero,removed_input_fraction,maccs_dense,maccs_structured,\
maccs_nonzero,maccs_lowrank,params_dense,params_structured,params_nonzero,bytes_dense,\
bytes_structured,bytes_csr,energy_j,energy_method,carbon_g,wall_time_s,threads,train_step,\
infer_latency_b1_s,compact_latency_b1_s,speedup_predicted_maccs,speedup_realised_latency,\
device_name,torch_version,git_sha,data_fingerprint

if [ "$which" = v1 ]; then
    db=${2:-studies/results/study.db}
    stem=$out/fashion_mnist_study
    # every procedure, the default bands (0.5, 1 and 2 points below dense)
    "${gb[@]}" summary --db "$db" -o "${stem}_bands.md"
    "${gb[@]}" summary --db "$db" --format csv -o "${stem}_bands.csv"
    # the paper's method alone, at the wider bands its one-epoch runs reach
    "${gb[@]}" summary --db "$db" --procedure projected --band 3 --band 5 -o "${stem}_projected.md"
    "${gb[@]}" summary --db "$db" --procedure projected --band 3 --band 5 --format csv \
        -o "${stem}_projected.csv"
    # every cell (the curves behind the bands)
    "${gb[@]}" summary --db "$db" --cells -o "${stem}_cells.md"
    "${gb[@]}" summary --db "$db" --cells --format csv -o "${stem}_cells.csv"
    # one row per point
    "${gb[@]}" runs --db "$db" --format csv --columns "$points_columns" > "${stem}_points.csv"
    wc -l "${stem}"_*
    exit 0
fi
if [ "$which" != v2 ]; then
    echo "usage: bash studies/publish.sh [v2 | v1 [DB]]" >&2
    exit 2
fi
db=${2:-studies/results/study_v2.db}
stem=$out/study_v2
# costs at matched test accuracy (0.5, 1, 2 points below dense): the verdicts' tables
"${gb[@]}" summary --db "$db" --iso-accuracy -o "${stem}_isoacc.md"
"${gb[@]}" summary --db "$db" --iso-accuracy --format csv -o "${stem}_isoacc.csv"
# the same on the validation split (what budgets and radii were chosen on), for reference
"${gb[@]}" summary --db "$db" --iso-accuracy --accuracy val -o "${stem}_isoacc_val.md"
# every cell: accuracy vs dense, costs (nuclear by rank), epoch time with its spread
"${gb[@]}" summary --db "$db" --cells -o "${stem}_cells.md"
"${gb[@]}" summary --db "$db" --cells --format csv -o "${stem}_cells.csv"
# one row per point, with the v2 columns (validation accuracy, per-layer radii, factorised costs)
"${gb[@]}" runs --db "$db" --status done --format csv --columns "$points_columns,val_accuracy,layer_radii_json,\
params_lowrank,bytes_lowrank,epoch_time_median_s,epoch_time_iqr_s,epoch_time_noisy,\
retrain_time_s,retrain_speedup_predicted,retrain_speedup_realised,started_at,finished_at" \
    > "${stem}_points.csv"
# the verdicts by the claims' rules (studies/v2/verdicts.py's docstring)
"$py" studies/v2/verdicts.py "$db" > "${stem}_verdicts.md"
# the study's LeNet budget against the plateau of all 10 dense seeds (studies/results/plateau/)
"$py" studies/plateau.py check --model lenet300 --db "$db" > "${stem}_plateau_check.md"
# compute: process time (sum over points of finished - started, one thread each) and wall
# time (the union of the points' intervals: some process busy), per model
"$py" - "$db" > "${stem}_compute.md" <<'PY'
import datetime as dt
import sqlite3
import sys

conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = conn.execute("SELECT model, started_at, finished_at FROM points "
                    "WHERE status = 'done' ORDER BY model, started_at").fetchall()
print("# Study v2: compute\n")
print("Read from the points' `started_at` / `finished_at` by `studies/publish.sh` (every point "
      "on one thread; wall time is the union of the points' intervals, i.e. while some "
      "process ran a point; sittings and gaps between them are not counted).\n")
print("| model | points | process hours | wall hours |\n|---|---:|---:|---:|")
by: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
for model, start, end in rows:
    by.setdefault(model, []).append((dt.datetime.fromisoformat(start),
                                     dt.datetime.fromisoformat(end)))
for model, spans in by.items():
    process = sum((e - s).total_seconds() for s, e in spans)
    wall, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(spans):
        if cur_e is None or s > cur_e:
            wall += 0 if cur_e is None else (cur_e - cur_s).total_seconds()
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    wall += (cur_e - cur_s).total_seconds()
    print(f"| {model} | {len(spans)} | {process / 3600:.2f} | {wall / 3600:.2f} |")
PY
wc -l "${stem}"_*
