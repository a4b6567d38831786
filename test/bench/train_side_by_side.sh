#!/usr/bin/env bash
# bertqa bench next to the PyTorch reference on the same shapes (one JSON line each). Usage:
#   test/bench/train_side_by_side.sh [config] [batch] [seq_len] [steps]
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${1:-mini} B=${2:-16} T=${3:-128} STEPS=${4:-5}
PY=${PYTHON:-/usr/bin/python3}
echo "# tfjs (bertqa bench, backend auto)"; node lib/cli/bertqa.js bench --config "$CONFIG" --batch-size "$B" --seq-len "$T" --steps "$STEPS"
echo "# pytorch ($PY)"; "$PY" test/bench/torch_bench.py --config "$CONFIG" --batch-size "$B" --seq-len "$T" --steps "$STEPS"
