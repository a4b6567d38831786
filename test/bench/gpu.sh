#!/usr/bin/env bash
# Issue 6's GPU measurements in one go, on the device machine (no Node.js, no network there):
#   here:   bash ../shared/device/prepare-carry.sh          (packs node, node_modules, the Vulkan libraries)
#   device: run with carry [".devcarry"] and the command  bash test/bench/gpu.sh
# It prints the GPU and `bertqa doctor`, times tfjs's matmul against lib/kernels/gemm.ts on BERT-base's products, then
# runs BERT-base training steps at batch 32 × 384 (the issue's shape) and PyTorch on the same GPU. Every result is one
# JSON line (bench lines carry `kernel_time`, the step's GPU time by kernel), copied to $OUT/gpu.jsonl when $OUT is set.
# GPU_RUNS picks the runs per shape, in order (default "fused gemm torch", which stays within the device tool's 600 s
# per call: each run is capped at GPU_TIMEOUT = 150 s, the GEMM bench at 120 s):
#   fused    WebGPU with the library's fused kernels        gemm       the same with BERTQA_GEMM=1 (our GEMM)
#   unfused  WebGPU with tfjs ops only (BERTQA_FUSED=0)     torch      PyTorch CUDA float32 without TF32 (the reference)
#   tf32     PyTorch with TF32                              hf         transformers' own BertForQuestionAnswering
# GPU_SHAPES overrides the list of config:batch:length, GPU_GEMM=0 skips the GEMM bench, e.g.
#   GPU_SHAPES="base:8:384" GPU_RUNS="fused torch" bash test/bench/gpu.sh      (a second call, a smaller batch)
#   GPU_GEMM=0 GPU_RUNS="unfused tf32 hf" bash test/bench/gpu.sh               (the rest, in a second call)
#   GPU_SHAPES="tiny:2:64" bash test/bench/gpu.sh                              (a quick check of the script on lavapipe)
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f .devcarry/setup.sh ] && source .devcarry/setup.sh
PY=${PYTHON:-python3}
LOG=${OUT:-/tmp}/gpu.jsonl
SHAPES=${GPU_SHAPES:-"base:32:384"}
RUNS=${GPU_RUNS:-"fused gemm torch"}
LIMIT=${GPU_TIMEOUT:-150}
STEPS=${GPU_STEPS:-5}
: > "$LOG"
say() { echo "# $*" >&2; }
record() { tee -a "$LOG"; }
bench() { timeout "$LIMIT" node lib/cli/bertqa.js bench --backend webgpu --config "$config" --batch-size "$batch" --seq-len "$len" "$@"; }
torch() {
  if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    timeout "$LIMIT" "$PY" test/bench/torch_bench.py --device cuda "$@" --config "$config" --batch-size "$batch" --seq-len "$len" --steps 10
  else
    say "no CUDA PyTorch here: reference skipped"
  fi
}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
say "bertqa doctor"; node lib/cli/bertqa.js doctor | record
if [ "${GPU_GEMM:-1}" != 0 ]; then
  say "gemm bench: tfjs's matmul vs lib/kernels/gemm.ts on BERT-base's products (M = 32 x 384)"
  timeout 120 node --import tsx test/bench/gemm_bench.ts | record
fi
for shape in $SHAPES; do
  IFS=: read -r config batch len <<< "$shape"
  for run in $RUNS; do
    say "$run: $config $batch x $len"
    case $run in
      fused) bench --steps "$STEPS" --warmup 2 | record ;;
      gemm) BERTQA_GEMM=1 bench --steps "$STEPS" --warmup 2 | sed -u 's/^{/{"bertqa_gemm":1,/' | record ;;
      unfused) BERTQA_FUSED=0 bench --steps 2 --warmup 1 | record ;;
      torch) torch | record ;;
      tf32) torch --tf32 | record ;;
      hf) torch --hf | record ;;
      *) say "unknown run '$run' (fused, gemm, unfused, torch, tf32, hf)" ;;
    esac
  done
done
say "results: $LOG"
