#!/usr/bin/env bash
# Issue 6's GPU measurements in one go, on the device machine (no Node.js, no network there):
#   here:   bash ../shared/device/prepare-carry.sh          (packs node, node_modules, the Vulkan libraries)
#   device: run with carry [".devcarry"] and the command  bash test/bench/gpu.sh
# It prints the GPU, `bertqa doctor`, then BERT-base training steps at batch 32 × 384 (the issue's shape) on WebGPU
# with the fused kernels and without (BERTQA_FUSED=0), and PyTorch on the same GPU: float32, TF32 and transformers'
# own BertForQuestionAnswering. Every result is one JSON line, copied to $OUT/gpu.jsonl when $OUT is set.
# Each run is capped at GPU_TIMEOUT seconds (150), so the whole script stays within the device tool's 600 s per call.
# GPU_SHAPES overrides the list of config:batch:length, e.g.
#   GPU_SHAPES="base:8:384" bash test/bench/gpu.sh      (a second call, a smaller batch)
#   GPU_SHAPES="tiny:2:64" bash test/bench/gpu.sh       (a quick check of the script on lavapipe)
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f .devcarry/setup.sh ] && source .devcarry/setup.sh
PY=${PYTHON:-python3}
LOG=${OUT:-/tmp}/gpu.jsonl
SHAPES=${GPU_SHAPES:-"base:32:384"}
LIMIT=${GPU_TIMEOUT:-150}
STEPS=${GPU_STEPS:-5}
: > "$LOG"
say() { echo "# $*" >&2; }
record() { tee -a "$LOG"; }

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
say "bertqa doctor"; node lib/cli/bertqa.js doctor | record
for shape in $SHAPES; do
  IFS=: read -r config batch len <<< "$shape"
  say "webgpu, fused kernels: $config $batch x $len"
  timeout "$LIMIT" node lib/cli/bertqa.js bench --backend webgpu --config "$config" --batch-size "$batch" --seq-len "$len" --steps "$STEPS" --warmup 2 | record
  say "webgpu, tfjs ops only (BERTQA_FUSED=0): $config $batch x $len"
  BERTQA_FUSED=0 timeout "$LIMIT" node lib/cli/bertqa.js bench --backend webgpu --config "$config" --batch-size "$batch" --seq-len "$len" --steps 2 --warmup 1 | record
  if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    for flags in "" "--tf32" "--hf"; do
      say "pytorch cuda $flags: $config $batch x $len"
      timeout "$LIMIT" "$PY" test/bench/torch_bench.py --device cuda $flags --config "$config" --batch-size "$batch" --seq-len "$len" --steps 10 | record
    done
  else
    say "no CUDA PyTorch here: reference skipped"
  fi
done
say "results: $LOG"
