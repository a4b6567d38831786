#!/usr/bin/env bash
# bertqa bench next to the PyTorch reference on the same shapes and thread count (one JSON line each). Usage:
#   test/bench/train_side_by_side.sh [config] [batch] [seq_len] [steps]
# Threads: BERTQA_WASM_THREADS for both (default: the logical cores, as both libraries pick by themselves).
# GEMM=1 also prints `bertqa bench --gemm`: each product's GFLOP/s beside PyTorch's.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${1:-mini} B=${2:-16} T=${3:-128} STEPS=${4:-5}
PY=${PYTHON:-/usr/bin/python3}
THREADS=${BERTQA_WASM_THREADS:-$(nproc)}
export BERTQA_WASM_THREADS=$THREADS
echo "# tfjs (bertqa bench, backend auto, $THREADS threads)"; node lib/cli/bertqa.js bench --config "$CONFIG" --batch-size "$B" --seq-len "$T" --steps "$STEPS"
echo "# pytorch ($PY, $THREADS threads)"; "$PY" test/bench/torch_bench.py --config "$CONFIG" --batch-size "$B" --seq-len "$T" --steps "$STEPS" --threads "$THREADS"
if [ "${GEMM:-0}" = 1 ]; then
  echo "# GEMM GFLOP/s (bertqa bench --gemm, PyTorch beside)"; node lib/cli/bertqa.js bench --gemm --config "$CONFIG" --batch-size "$B" --seq-len "$T" --python "$PY"
fi
