#!/usr/bin/env bash
# LoGoSeg's GPU benchmark on a bare CUDA machine with only torch installed (see tools/gpu_benchmark.py).
# Installs the pure-Python dependencies from the wheels in $LOGOSEG_WHEELS (default: .whl in the checkout;
# the download command is in gpu_benchmark.py's docstring), then runs the benchmark with the given arguments.
#   bash projects/logoseg/tools/gpu_benchmark.sh [--repeats 10] [--out DIR/gpu_benchmark.json]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
wheels="${LOGOSEG_WHEELS:-$repo/.whl}"
site="${TMPDIR:-/tmp}/logoseg-site"
if ! compgen -G "$wheels/*.whl" > /dev/null; then
  echo "gpu_benchmark.sh: no wheels in $wheels; download them as gpu_benchmark.py's docstring says" >&2
  exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl
export PYTHONPATH="$site:$repo/projects${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
cd "$repo"
exec python3 -m logoseg.tools.gpu_benchmark "$@"
