// GELU, LayerNorm(x + residual), dropout and attention for the threaded wasm backend: one pass each, SIMD, split by
// rows (attention: by heads) over the GEMM pool's threads (wasm-gemm.c's row_kernel and attention_units). They are the kernels lib/fused.ts runs where they are registered, under
// the names and with the inputs of their WebGPU twins (webgpu/elementwise.ts, webgpu/layernorm.ts). The composites
// take 5 kernels for GELU forward and 7 backward, ~13 for LayerNorm forward and ~10 backward, each a single-threaded
// pass over the FFN's largest activations. Dropout draws lib/dropout.ts's mask in the kernel, forward and backward,
// instead of hashing every element in JS (~6 ns each, 9M per mini 16 × 128 step), uploading the mask and keeping it
// for the gradient. The clipping norm sums every gradient's squares in place (the composite writes each square out: 31 MB
// for mini's word embeddings). Attention runs a head's products and softmax together on the thread's scratch, reading q, k, v
// where the dense layers put them: the composite splits the heads out and back with 5 transposes, keeps the
// [B, nh, T, T] scores, probabilities and dropout mask, and runs ~20 kernels forward and backward (the layout is
// lib/kernels/webgpu/attention.ts's; the backward is one kernel, a head per unit, and reads the saved probabilities).
// Without the pool (one thread) the composites run, unchanged.
import * as tf from "@tensorflow/tfjs";
import { type Info, type WasmBackend, sizeOf } from "./wasm-internals";
import { ROW_OP, gemmPoolFor, rowBlock, type GemmPool } from "./wasm-gemm";
import { ADAMW_MULTI, ADD_LAYER_NORM, ATTENTION, BIAS_GELU, BIAS_GELU_GRAD, COLUMN_SUMS, DROPOUT, GRAD_NORM, LAYER_NORM_GRAD, LAYER_NORM_PARAM_GRAD, ROW_STATS } from "./webgpu";
import { adamwMulti } from "./wasm-extra";

/** The wasm attention's backward: dq, dk, dv in one kernel (WebGPU splits it into ATTENTION_GRAD_Q and _KV). */
export const ATTENTION_GRAD = "BertqaAttentionGrad";

type Args = { inputs: Record<string, Info>; backend: WasmBackend; attrs: Record<string, unknown> };
type Kernel = (args: Args) => Info | Info[];

const KERNELS: [string, Kernel][] = [
  [BIAS_GELU, biasGelu], [BIAS_GELU_GRAD, biasGeluGrad],
  [ADD_LAYER_NORM, addLayerNorm], [ROW_STATS, rowStats], [LAYER_NORM_GRAD, layerNormGrad], [LAYER_NORM_PARAM_GRAD, layerNormParamGrad], [COLUMN_SUMS, columnSums],
  [DROPOUT, dropout], [ATTENTION, attention], [ATTENTION_GRAD, attentionGrad], [GRAD_NORM, gradNorm],
  [ADAMW_MULTI, adamwMulti as Kernel], // in place: only while the pool, not XNNPACK, multiplies by the weights (wasm-extra.ts)
];
/** The kernels that need the pool: lib/fused.ts runs them on wasm only while a pool serves the backend. */
export const WASM_POOL_KERNELS: ReadonlySet<string> = new Set(KERNELS.map(([name]) => name));

/** Register the kernels for wasm (idempotent). */
export function installWasmFusedKernels(): void {
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (tf.getKernel(kernelName, "wasm") === undefined) tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc: kernelFunc as never });
  }
}

function poolOf(backend: WasmBackend): GemmPool {
  const pool = gemmPoolFor(backend);
  if (pool === undefined) throw new Error("wasm-fused: no GEMM pool (lib/fused.ts runs these kernels only with one)");
  return pool;
}

/** Heap byte address of a tensor (0 for none: the C kernels' "absent"). */
function at(backend: WasmBackend, t: Info | undefined): number {
  return t === undefined ? 0 : backend.dataIdMap.get(t.dataId).memoryOffset;
}

/** Inputs x and optionally bias [last axis]: gelu(x + bias). */
function biasGelu({ inputs, backend }: Args): Info {
  const { x, bias } = inputs, cols = x.shape[x.shape.length - 1];
  const out = backend.makeOutput(x.shape, "float32");
  poolOf(backend).rows({ op: ROW_OP.gelu, tensors: [x, bias, out].map((t) => at(backend, t)), rows: sizeOf(x.shape) / cols, cols });
  return out;
}

/** Inputs dy, x and optionally bias: dx = dy·(Φ(u) + u·φ(u)), u = x + bias (Φ recomputed, not saved). */
function biasGeluGrad({ inputs, backend }: Args): Info {
  const { dy, x, bias } = inputs, cols = x.shape[x.shape.length - 1];
  const out = backend.makeOutput(x.shape, "float32");
  poolOf(backend).rows({ op: ROW_OP.geluGrad, tensors: [dy, x, bias, out].map((t) => at(backend, t)), rows: sizeOf(x.shape) / cols, cols });
  return out;
}

/** Input x; attrs key, threshold, scale (lib/dropout.ts's dropoutParams): x·scale where the mask keeps the element,
 * else 0, the mask drawn at each element's flat index. */
function dropout({ inputs, backend, attrs }: Args): Info {
  const x = inputs.x, cols = x.shape[x.shape.length - 1] ?? 1, a = attrs as Record<"key" | "threshold" | "scale", number>;
  const out = backend.makeOutput(x.shape, "float32");
  if (sizeOf(x.shape) === 0) return out;
  poolOf(backend).rows({ op: ROW_OP.dropout, tensors: [at(backend, x), at(backend, out), a.key, a.threshold], rows: sizeOf(x.shape) / cols, cols, eps: a.scale });
  return out;
}

/** Inputs x, residual [rows, cols], gamma, beta [cols]; attr eps: (z − mean)·rstd·γ + β with z = x + residual. */
function addLayerNorm({ inputs, backend, attrs }: Args): Info {
  const { x, residual, gamma, beta } = inputs, [rows, cols] = x.shape;
  const out = backend.makeOutput(x.shape, "float32");
  poolOf(backend).rows({ op: ROW_OP.addLayerNorm, tensors: [x, residual, gamma, beta, out].map((t) => at(backend, t)), rows, cols, eps: attrs.eps as number });
  return out;
}

/** Inputs x, residual; attr eps: [rows, 2] = (mean, rstd) of x + residual, for the backward kernels. */
function rowStats({ inputs, backend, attrs }: Args): Info {
  const { x, residual } = inputs, [rows, cols] = x.shape;
  const out = backend.makeOutput([rows, 2], "float32");
  poolOf(backend).rows({ op: ROW_OP.rowStats, tensors: [x, residual, out].map((t) => at(backend, t)), rows, cols, eps: attrs.eps as number });
  return out;
}

/** Inputs x, residual, dy, gamma, stats: dz = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ. */
function layerNormGrad({ inputs, backend }: Args): Info {
  const { x, residual, dy, gamma, stats } = inputs, [rows, cols] = x.shape;
  const out = backend.makeOutput(x.shape, "float32");
  poolOf(backend).rows({ op: ROW_OP.layerNormGrad, tensors: [x, residual, dy, gamma, stats, out].map((t) => at(backend, t)), rows, cols });
  return out;
}

/** Inputs x, residual, dy, stats: [blocks, 2·cols], per block of rows the column sums of dy·x̂ (dγ) then dy (dβ),
 * which BertqaColumnSums adds up, as on WebGPU. */
function layerNormParamGrad({ inputs, backend }: Args): Info {
  const { x, residual, dy, stats } = inputs, [rows, cols] = x.shape;
  const out = backend.makeOutput([Math.ceil(rows / rowBlock(rows)), 2 * cols], "float32");
  poolOf(backend).rows({ op: ROW_OP.layerNormParamGrad, tensors: [x, residual, dy, stats, out].map((t) => at(backend, t)), rows, cols });
  return out;
}

/** Input x [rows, parts·cols], attr parts (default 1): `parts` outputs [cols], the column sums of each part (a few
 * dozen rows here: on the calling thread). */
function columnSums({ inputs, backend, attrs }: Args): Info[] {
  const x = inputs.x, [rows, width] = x.shape, parts = (attrs.parts as number | undefined) ?? 1, cols = width / parts;
  const outs = Array.from({ length: parts }, () => backend.makeOutput([cols], "float32"));
  const X = backend.typedArrayFromHeap(x), sums = new Float64Array(width); // views after the allocations (the heap can grow)
  for (let r = 0, base = 0; r < rows; r++, base += width) for (let c = 0; c < width; c++) sums[c] += X[base + c];
  outs.forEach((o, k) => backend.typedArrayFromHeap(o).set(sums.subarray(k * cols, (k + 1) * cols)));
  return outs;
}

/** Inputs: the gradients (float32, any shapes); attr maxNorm: [‖(‖g_i‖)_i‖₂, min(1, maxNorm/(norm + 1e-6))], scalars, as
 * on WebGPU. Each gradient's blocks of rows sum their squares on the pool; the blocks' sums are added in float64. */
function gradNorm({ inputs, backend, attrs }: Args): Info[] {
  const pool = poolOf(backend);
  let total = 0;
  for (const g of Object.values(inputs)) {
    const cols = g.shape[g.shape.length - 1] ?? 1, rows = cols === 0 ? 0 : sizeOf(g.shape) / cols;
    if (rows === 0) continue;
    const partials = backend.makeOutput([Math.ceil(rows / rowBlock(rows))], "float32");
    pool.rows({ op: ROW_OP.sumSquares, tensors: [at(backend, g), at(backend, partials)], rows, cols });
    for (const s of backend.typedArrayFromHeap(partials)) total += s;
    backend.disposeData(partials.dataId);
  }
  const norm = Math.fround(Math.sqrt(total)), outs = [backend.makeOutput([], "float32"), backend.makeOutput([], "float32")];
  backend.typedArrayFromHeap(outs[0]).set([norm]);
  const f = Math.fround; // torch's clamp(max_norm / (total_norm + 1e-6), max=1), in float32
  backend.typedArrayFromHeap(outs[1]).set([Math.min(f(f(attrs.maxNorm as number) / f(norm + f(1e-6))), 1)]);
  return outs;
}

const ATTN_QB = 64; // wasm-gemm.c's query rows per forward unit

/** wasm-gemm.c's struct attn_args at a new heap block (the caller frees it): tensors' addresses, then the sizes and
 * constants. */
function attentionArgs(backend: WasmBackend, t: (Info | undefined)[], q: Info, attrs: Record<string, unknown>): Info {
  const [B, T, H] = q.shape, nh = attrs.nh as number, a = attrs as Record<string, number | undefined>;
  const args = backend.makeOutput([20], "float32"), f = backend.typedArrayFromHeap(args) as Float32Array;
  const i = new Int32Array(f.buffer, f.byteOffset, 20);
  i.set([...Array.from({ length: 11 }, (_, j) => at(backend, t[j])), B, T, H, nh, H / nh, (a.key ?? 0) | 0, (a.threshold ?? 0) | 0]);
  f.set([a.scale ?? 1, a.scoreScale ?? 1], 18);
  return args;
}

/** Inputs q, k, v [B, T, H], mask (B·T numbers); attrs nh, key, threshold, scale, scoreScale (as on WebGPU) and
 * saveProbs: [ctx [B, T, H], stats [B·nh, T, 3]] (each row's max and sum of exp and an unused column, WebGPU's
 * outputs); with saveProbs, also the probabilities [B·nh, T, T], which the backward reads. */
function attention({ inputs, backend, attrs }: Args): Info[] {
  const { q, k, v, mask } = inputs, [B, T, H] = q.shape, nh = attrs.nh as number;
  const ctx = backend.makeOutput(q.shape, "float32"), stats = backend.makeOutput([B * nh, T, 3], "float32");
  const probs = attrs.saveProbs === true ? backend.makeOutput([B * nh, T, T], "float32") : undefined;
  const args = attentionArgs(backend, [q, k, v, mask, ctx, stats, undefined, undefined, undefined, undefined, probs], q, attrs);
  try {
    poolOf(backend).attention(at(backend, args), B * nh * Math.ceil(T / ATTN_QB), false, 4 * B * T * T * H);
  } finally {
    backend.disposeData(args.dataId);
  }
  return probs === undefined ? [ctx, stats] : [ctx, stats, probs];
}

/** Inputs q, k, v, dctx, ctx (the forward's output) and probs (its saveProbs output); attrs as the forward's:
 * [dq, dk, dv]. */
function attentionGrad({ inputs, backend, attrs }: Args): Info[] {
  const { q, k, v, dctx, ctx, probs } = inputs, [B, T, H] = q.shape, nh = attrs.nh as number;
  const grads = [0, 1, 2].map(() => backend.makeOutput(q.shape, "float32"));
  const args = attentionArgs(backend, [q, k, v, undefined, ctx, undefined, dctx, ...grads, probs], q, attrs);
  try {
    poolOf(backend).attention(at(backend, args), B * nh, true, 10 * B * T * T * H);
  } finally {
    backend.disposeData(args.dataId);
  }
  return grads;
}
