#!/usr/bin/env bash
# One prepared GPU check (issue 15; what it runs and writes: benchmarks/gpu_check.py).
# Usage: bash benchmarks/gpu_check.sh OUT_DIR [gpu_check.py options]
#
# On the lent GPU machine torch, pytest, hypothesis, numpy, scipy, pyyaml and tqdm are in its
# python3; metahyper runs from this tree (PYTHONPATH), nothing is installed from a registry.
# The peer `higher` travels as a wheel: here, once, `bash benchmarks/gpu_wheels.sh` (writes the
# git-ignored .whl/), then from the device tool:
#   run(command="bash benchmarks/gpu_check.sh $OUT", carry=[".whl"], timeout_s=600)
# It writes gpu_check.json, gpu_check.md and gpu_check.log into OUT_DIR, and on CUDA also
# backend_choice.json: the package's recorded `backend: auto` choices with the CUDA entry measured
# here (its maml part runs `benchmarks/speed/maml.py ... --record OUT_DIR/backend_choice.json`);
# copy that file over metahyper/meta/backend_choice.json to make `auto` follow it on CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR [options]}
shift
PY=${PYTHON:-python3}
site=""
if compgen -G ".whl/*.whl" >/dev/null; then
  site=$(mktemp -d)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl
fi
PYTHONPATH="$PWD${site:+:$site}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH PYTHONUNBUFFERED=1 MPLBACKEND=Agg
exec "$PY" benchmarks/gpu_check.py --out "$out" "$@"
