#!/usr/bin/env bash
# Nightly regression tracking: benchmark the commits of `main` not yet benchmarked on this
# machine, each in its own virtualenv built from that commit (asv.conf.json: wheel + [bench]
# extra), publish the HTML (.asv/html), then compare HEAD with the previous benchmarked commit.
#
# Exit status: 0 no regression; 1 a benchmark got worse by more than ASV_FACTOR (timings by
# asv's statistics, track_* values by the factor), a benchmark newly fails at HEAD, or HEAD has
# failed benchmarks; 2 asv itself could not run (config, build, publish).
#
# Env: ASV (asv executable), ASV_FACTOR (default 1.1), ASV_STEPS (most commits per night,
# default 10), ASV_MACHINE (name in ~/.asv-machine.json; default: this host).
# Run it from an up-to-date checkout of main: asv takes the benchmark suites from the working
# tree and the benchmarked code from each commit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${ASV:-}" ]]; then
    if [[ -x .venv/bin/asv ]]; then ASV=.venv/bin/asv; else ASV=$(command -v asv); fi
fi
PYTHON=$(dirname "$ASV")/python
[[ -x "$PYTHON" ]] || PYTHON=python3
FACTOR=${ASV_FACTOR:-1.1}
STEPS=${ASV_STEPS:-10}
machine_args=()
if [[ -n "${ASV_MACHINE:-}" ]]; then machine_args=(--machine "$ASV_MACHINE"); fi

"$ASV" machine --yes "${machine_args[@]}" >/dev/null || exit 2

# 1. New commits, per-commit environments. Exit 2 from asv = some benchmark failed in some
#    commit (old commits may predate a suite); judged below on HEAD only.
run_log=$(mktemp)
trap 'rm -f "$run_log"' EXIT
set +e
"$ASV" run NEW --steps "$STEPS" --environment virtualenv --show-stderr "${machine_args[@]}" \
    2>&1 | tee "$run_log"
run_rc=${PIPESTATUS[0]}
set -e
# Nothing new since the last night is not an error, though asv exits 1 for it.
if [[ $run_rc -eq 1 ]] && grep -q "No commit hashes selected" "$run_log"; then
    echo "nightly: no new commits to benchmark"
    run_rc=0
fi
if [[ $run_rc -eq 1 ]]; then echo "nightly: asv run could not run" >&2; exit 2; fi
[[ $run_rc -eq 0 ]] || echo "nightly: warning: some benchmarks failed (asv run exit $run_rc)"

# 2. HTML with graphs and asv's own step detection (regressions_thresholds in asv.conf.json).
"$ASV" publish || exit 2

# 3. HEAD against the latest earlier commit that has per-commit results on this machine.
head=$(git rev-parse main)
has_results() { compgen -G ".asv/results/*/${1:0:8}-virtualenv-*.json" >/dev/null; }
if ! has_results "$head"; then echo "nightly: no results for HEAD ${head:0:8}" >&2; exit 1; fi
prev=""
for c in $(git rev-list --first-parent "$head" | tail -n +2 | head -n 500); do
    if has_results "$c"; then prev=$c; break; fi
done

status=0
if [[ -z "$prev" ]]; then
    echo "nightly: no earlier benchmarked commit; nothing to compare ${head:0:8} with"
else
    table=$("$ASV" compare "$prev" "$head" --factor "$FACTOR" --split --environment virtualenv \
        "${machine_args[@]}")
    echo "$table"
    # tabulate's github format: the first cell is asv's mark; '+' worse, '!' newly failing.
    if grep -Eq '^\|[[:space:]]*[+!][[:space:]]*\|' <<<"$table"; then
        echo "nightly: REGRESSION between ${prev:0:8} and ${head:0:8} (factor $FACTOR)" >&2
        status=1
    fi
fi

# 4. Benchmarks failing at HEAD, even if they also failed before (compare marks those ' ').
"$PYTHON" - "$head" <<'EOF' || status=1
import glob, sys

from asv.results import Results

head = sys.argv[1]
bad = []
for path in glob.glob(f".asv/results/*/{head[:8]}-virtualenv-*.json"):
    res = Results.load(path)
    for name in res.get_all_result_keys():
        if any(v is None for v in res.get_result_value(name, res.get_result_params(name))):
            bad.append(name)
for name in sorted(set(bad)):
    print(f"nightly: FAILED at HEAD: {name}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
exit $status
