#!/usr/bin/env bash
# The prepared device check (about 10 minutes on an H100/H200): the `gpu` tests, then the GPU
# reports of the projections and of the training step. Every part runs even when one fails.
#   bash benchmarks/gpu_check.sh [WHEELS_DIR]     # WHEELS_DIR from benchmarks/gpu_wheels.sh
# Writes what it prints to $OUT/gpu_check.md as well when OUT is set.
set -u
wheels=${1:-gpu_wheels}
py=${PYTHON:-python}
if [ -d "$wheels" ]; then
    "$py" -m pip install --quiet --no-index --no-deps --target /tmp/site "$wheels"/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"  # the benchmarks package and this projlib
data=""
[ -d "$wheels/fashion-mnist" ] && data="$wheels/fashion-mnist"
log=${OUT:-/tmp}/gpu_check.md
{
    echo "# gpu_check $(date -u +%FT%TZ), git $(git rev-parse --short HEAD 2>/dev/null)"
    nvidia-smi --query-gpu=name,driver_version,power.draw,temperature.gpu --format=csv || true
    echo '## pytest -m gpu (the default CUDA path: torch)'
    timeout 240 "$py" -m pytest -m gpu -q -p no:cacheprovider tests 2>&1 | tail -25
    echo '## pytest -m gpu tests/projections with GREENBENCH_TRITON=1 (opt-in Triton kernels)'
    GREENBENCH_TRITON=1 timeout 120 "$py" -m pytest -m gpu -q -p no:cacheprovider \
        tests/projections 2>&1 | tail -15
    echo '## benchmarks/gpu_projections.py (GREENBENCH_TRITON=1: Triton against torch)'
    GREENBENCH_TRITON=1 timeout 150 "$py" -m benchmarks.gpu_projections 2>&1
    echo '## benchmarks/gpu_training.py'
    timeout 200 "$py" -m benchmarks.gpu_training $data 2>&1
} 2>&1 | tee "$log"
