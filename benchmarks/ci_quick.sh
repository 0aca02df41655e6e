#!/usr/bin/env bash
# CI: run every asv benchmark once (--quick) against the installed environment, so no benchmark
# can rot. `asv check` only imports the suites; this actually calls every setup_cache, setup and
# benchmark body. Exit status: 0 all ran (skips allowed), 1 a benchmark failed or nothing ran.
#
# Usage: bash benchmarks/ci_quick.sh            (from anywhere; ASV=/path/to/asv to override)
# The results are kept under .asv/results/<machine>/<sha8>-existing-*.json, labelled with HEAD
# (--set-commit-hash); they measure the *working tree* installed in the venv, which equals HEAD
# on a clean CI checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${ASV:-}" ]]; then
    if [[ -x .venv/bin/asv ]]; then ASV=.venv/bin/asv; else ASV=$(command -v asv); fi
fi
# The interpreter that runs asv is the one benchmarked with --python=same.
PYTHON=$(dirname "$ASV")/python
[[ -x "$PYTHON" ]] || PYTHON=python3

sha=$(git rev-parse HEAD)
"$ASV" machine --yes >/dev/null

started_s=$SECONDS
set +e
# asv exits 2 when any benchmark (or a setup_cache) failed, 1 on a discovery/config error.
# forkserver: the suites are imported once and forked per benchmark; spawning a fresh
# interpreter (asv's default) per parameter set costs ~2 s of torch import each, 7x slower here.
"$ASV" run --python=same --quick --set-commit-hash "$sha" --show-stderr --durations 5 \
    --launch-method forkserver
asv_rc=$?
set -e
echo "asv run finished in $((SECONDS - started_s)) s with exit status $asv_rc"

# Second opinion from the saved results, so the failing benchmarks are listed by name and a run
# that silently benchmarked nothing also fails. Only benchmarks of the current suite count.
set +e
"$PYTHON" - "$sha" <<'EOF'
import glob, json, math, os, sys

from asv.results import Results

sha = sys.argv[1]
with open(".asv/results/benchmarks.json") as f:
    current = {k for k in json.load(f) if k != "version"}
paths = glob.glob(f".asv/results/*/{sha[:8]}-existing-*.json")
if not paths:
    sys.exit(f"ci_quick: no results saved for {sha[:8]} under .asv/results")
ran = failed = skipped = 0
failures = []
for path in paths:
    res = Results.load(path)
    for name in sorted(current - set(res.get_all_result_keys())):
        failures.append(f"{name} (no result; {os.path.basename(path)})")
    for name in sorted(set(res.get_all_result_keys()) & current):
        values = res.get_result_value(name, res.get_result_params(name))
        for v in values:
            if v is None:
                failed += 1
            elif isinstance(v, float) and math.isnan(v):
                skipped += 1
            else:
                ran += 1
        # A failed parameter set is stored as None (a skipped one as NaN); the exit code itself
        # is not saved to disk, hence asv's own exit status above as well.
        n_failed = sum(v is None for v in values)
        if n_failed:
            failures.append(f"{name} ({n_failed}/{len(values)} parameter sets failed; "
                            f"{os.path.basename(path)})")
print(f"ci_quick: {ran} results, {skipped} skipped, {failed} failed, "
      f"over {len(current)} benchmarks")
for line in failures:
    print(f"ci_quick: FAILED {line}")
if failures or ran == 0:
    sys.exit(1)
EOF
check_rc=$?
set -e

if [[ $asv_rc -ne 0 || $check_rc -ne 0 ]]; then
    echo "ci_quick: benchmarks failed (asv exit $asv_rc)" >&2
    exit 1
fi
echo "ci_quick: all benchmarks ran"
