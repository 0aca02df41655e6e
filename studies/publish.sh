#!/usr/bin/env bash
# Regenerate the published study tables under docs/results/ from the study's db (read only):
#   bash studies/publish.sh [DB]          # default studies/results/study.db
# Nothing here is typed by hand: every table is `greenbench summary` / `greenbench runs` output.
set -euo pipefail
cd "$(dirname "$0")/.."
db=${1:-studies/results/study.db}
gb=${GREENBENCH:-greenbench}
out=docs/results
stem=$out/fashion_mnist_study
mkdir -p "$out"
# every procedure, the default bands (0.5, 1 and 2 points below dense)
"$gb" summary --db "$db" -o "${stem}_bands.md"
"$gb" summary --db "$db" --format csv -o "${stem}_bands.csv"
# the paper's method alone, at the wider bands its one-epoch runs reach
"$gb" summary --db "$db" --procedure projected --band 3 --band 5 -o "${stem}_projected.md"
"$gb" summary --db "$db" --procedure projected --band 3 --band 5 --format csv \
    -o "${stem}_projected.csv"
# every cell (the curves behind the bands)
"$gb" summary --db "$db" --cells -o "${stem}_cells.md"
"$gb" summary --db "$db" --cells --format csv -o "${stem}_cells.csv"
# one row per point
"$gb" runs --db "$db" --format csv --columns point_id,status,dataset,model,procedure,\
constraint,radius,groups,seed,epochs,test_accuracy,fraction_nonzero,removed_input_fraction,\
maccs_dense,maccs_structured,maccs_nonzero,maccs_lowrank,params_dense,params_structured,\
params_nonzero,bytes_dense,bytes_structured,bytes_csr,energy_j,energy_method,carbon_g,\
wall_time_s,threads,train_step,infer_latency_b1_s,compact_latency_b1_s,\
speedup_predicted_maccs,speedup_realised_latency,device_name,torch_version,git_sha,\
data_fingerprint > "${stem}_points.csv"
wc -l "${stem}"_*
