#!/usr/bin/env bash
# Fill gpu_wheels/ (git-ignored) with what a CUDA machine's image lacks, for a machine that
# cannot reach PyPI: py3.12 manylinux wheels of plotly, ultralytics-thop, codecarbon and their
# dependencies (the versions installed here), plus the Fashion-MNIST files. Then, there:
#   bash benchmarks/gpu_check.sh gpu_wheels
set -euo pipefail
dest=${1:-gpu_wheels}
py=${PYTHON:-python}
pkgs=(plotly narwhals ultralytics-thop codecarbon arrow authlib joserfc cryptography cffi
      pycparser pydantic pydantic-core annotated-types typing-inspection rapidfuzz questionary
      prompt-toolkit wcwidth pycountry types-python-dateutil typing-extensions tzdata)
pins=()
for p in "${pkgs[@]}"; do
    # the version installed here; the newest where it is not installed
    v=$("$py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$p" \
        2>/dev/null) && pins+=("$p==$v") || pins+=("$p")
done
mkdir -p "$dest"
"$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform any -d "$dest" "${pins[@]}"
src=/usr/share/datasets/fashion-mnist
if [ -d "$src" ]; then
    mkdir -p "$dest/fashion-mnist" && cp "$src"/*.gz "$dest/fashion-mnist/"
fi
du -sh "$dest"
