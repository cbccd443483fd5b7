#!/usr/bin/env bash
# Builds the wheels the GPU machine lacks into .whl/ (git-ignored here), for
# benchmarks/gpu_check.sh: `higher` 0.2.1 (pure Python, one wheel for every Python).
# learn2learn is left out: its Cython extension must be built for the GPU machine's Python
# (3.12) and it needs gym; see scripts/install_learn2learn.sh for a machine with a registry.
# Usage: bash benchmarks/gpu_wheels.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python}
exclude=$(git rev-parse --git-path info/exclude)
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
mkdir -p .whl
"$PY" -m pip wheel --quiet --no-deps -w .whl higher==0.2.1
ls -l .whl
