// Kernels the library adds to TensorFlow.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu 4.22), in WGSL,
// one file per family:
// - elementwise.ts: BertqaBiasGelu / BertqaBiasGeluGrad, exact GELU (erf) with an optional bias, one launch each
//   way; BertqaDropout, inverted dropout with lib/dropout.ts's counter-based mask, drawn in the shader from the seed
//   (no mask is built on the host, uploaded or saved), its gradient the same kernel on dy; and AddN (replaced): the
//   stock kernel binds every input at once and breaks past 7 inputs (see addNChunked).
// - layernorm.ts: BertqaAddLayerNorm, BertqaRowStats, BertqaLayerNormGrad, BertqaLayerNormParamGrad:
//   LayerNorm(x + residual).
// - reductions.ts: BertqaColumnSums (and the 64-row block sums before it): sums over rows, for the γ/β gradients and
//   as Sum over leading axes (replaced: the bias gradients' sum(0) without the stock kernel's transposed copy);
//   BertqaGradNorm: the global gradient norm and clipping coefficient over all gradients, a launch per 15 of them.
// - adamw.ts: BertqaAdamW, one AdamW update of one parameter (p, m, v) in one launch; BertqaAdamWMulti: in place,
//   several per launch.
// - attention.ts: BertqaAttention, BertqaAttentionGradQ, BertqaAttentionGradKV: dropout(softmax(q·kᵀ/√d + mask))·v
//   per head, one launch forward and two backward (probabilities recomputed from the saved row max and sum,
//   flash-attention style, and the softmax gradient's row term from the saved output, delta = dctx·ctx; the dropout
//   mask redrawn from the seed in each).
// - common.ts: what they share (the backend internals used, the workgroup sum, `record` for kernels with several
//   outputs).
// This file registers them. The model-facing ops that choose between these and the composite tf ops are in
// lib/fused.ts; lib/kernels/README.md explains the design.
//
// Only types are declared in these files (no import of the optional package): it loads when backend.ts registers the
// backend, so importing a kernel name from here (as lib/kernels/wasm-extra.ts does) stays cheap.
import * as tf from "@tensorflow/tfjs";
import { type Args, type Info, BACKEND } from "./common";
import { BIAS_GELU, BIAS_GELU_GRAD, DROPOUT, addNChunked, biasGeluGradProgram, biasGeluProgram, dropoutProgram } from "./elementwise";
import { ADD_LAYER_NORM, LAYER_NORM_GRAD, LAYER_NORM_PARAM_GRAD, ROW_STATS, addLayerNormProgram, layerNormGradProgram, layerNormParamGradProgram, rowStatsProgram } from "./layernorm";
import { COLUMN_SUMS, GRAD_NORM, columnSums, gradNorm, leadingSum } from "./reductions";
import { ADAMW, ADAMW_MULTI, adamw, adamwMulti } from "./adamw";
import { ATTENTION, ATTENTION_GRAD_KV, ATTENTION_GRAD_KV_WGSL, ATTENTION_GRAD_Q, ATTENTION_GRAD_Q_WGSL, ATTENTION_WGSL, attentionKernel } from "./attention";

export { BIAS_GELU, BIAS_GELU_GRAD, DROPOUT } from "./elementwise";
export { ADD_LAYER_NORM, ROW_STATS, LAYER_NORM_GRAD, LAYER_NORM_PARAM_GRAD } from "./layernorm";
export { COLUMN_SUMS, COLUMN_SUMS_ROWS, GRAD_NORM } from "./reductions";
export { ADAMW, ADAMW_MULTI } from "./adamw";
export { ATTENTION, ATTENTION_GRAD_Q, ATTENTION_GRAD_KV, ATTENTION_MAX_T, ATTENTION_MAX_D } from "./attention";
export { record } from "./common";

// --- registration -----------------------------------------------------------------------------------------------------

let installed = false;

/** Register the kernels of the files beside this one for "webgpu" (idempotent). Call after
 * `require("@tensorflow/tfjs-backend-webgpu")`. */
export function installWebgpuKernels(): void {
  if (installed) return;
  const reg = (kernelName: string, kernelFunc: (a: Args) => Info | Info[]) => {
    if (tf.getKernel(kernelName, BACKEND) === undefined) tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc: kernelFunc as never });
  };
  reg(BIAS_GELU, ({ inputs, backend }) => {
    const { x, bias } = inputs;
    return backend.runWebGPUProgram(biasGeluProgram(x, bias !== undefined), bias !== undefined ? [x, bias] : [x], "float32");
  });
  reg(BIAS_GELU_GRAD, ({ inputs, backend }) => {
    const { dy, x, bias } = inputs;
    return backend.runWebGPUProgram(biasGeluGradProgram(x, bias !== undefined), bias !== undefined ? [dy, x, bias] : [dy, x], "float32");
  });
  reg(ADD_LAYER_NORM, ({ inputs, backend, attrs }) => {
    const { x, residual, gamma, beta } = inputs;
    return backend.runWebGPUProgram(addLayerNormProgram(x), [x, residual, gamma, beta], "float32", [{ type: "float32", data: [attrs.eps as number] }]);
  });
  reg(ROW_STATS, ({ inputs, backend, attrs }) => {
    const { x, residual } = inputs;
    return backend.runWebGPUProgram(rowStatsProgram(x), [x, residual], "float32", [{ type: "float32", data: [attrs.eps as number] }]);
  });
  reg(LAYER_NORM_GRAD, ({ inputs, backend }) => {
    const { x, residual, dy, gamma, stats } = inputs;
    return backend.runWebGPUProgram(layerNormGradProgram(x), [x, residual, dy, gamma, stats], "float32");
  });
  reg(LAYER_NORM_PARAM_GRAD, ({ inputs, backend }) => {
    const { x, residual, dy, stats } = inputs;
    return backend.runWebGPUProgram(layerNormParamGradProgram(x), [x, residual, dy, stats], "float32");
  });
  reg(COLUMN_SUMS, columnSums);
  reg(ADAMW, adamw);
  reg(ADAMW_MULTI, adamwMulti);
  reg(GRAD_NORM, gradNorm);
  reg(DROPOUT, ({ inputs, backend, attrs }) => {
    const a = attrs as Record<string, number>;
    return backend.runWebGPUProgram(dropoutProgram(inputs.x), [inputs.x], "float32",
      [{ type: "uint32", data: [a.key] }, { type: "uint32", data: [a.threshold] }, { type: "float32", data: [a.scale] }]);
  });
  const qkv = ["q", "k", "v", "mask"];
  reg(ATTENTION, attentionKernel(ATTENTION, ATTENTION_WGSL, qkv, (q, heads) => [q.shape, [heads, q.shape[1], 3]]));
  reg(ATTENTION_GRAD_Q, attentionKernel(ATTENTION_GRAD_Q, ATTENTION_GRAD_Q_WGSL, [...qkv, "dctx", "ctx"], (q) => [q.shape], ["stats"]));
  reg(ATTENTION_GRAD_KV, attentionKernel(ATTENTION_GRAD_KV, ATTENTION_GRAD_KV_WGSL, [...qkv, "dctx", "rows"], (q) => [q.shape, q.shape]));
  const sum = tf.getKernel("Sum", BACKEND);
  if (sum !== undefined) {
    const stockSum = sum.kernelFunc as unknown as (a: Args) => Info;
    tf.unregisterKernel("Sum", BACKEND);
    tf.registerKernel({ ...sum, kernelFunc: ((args: Args) => leadingSum(args) ?? stockSum(args)) as never });
  }
  const addN = tf.getKernel("AddN", BACKEND);
  if (addN !== undefined) {
    tf.unregisterKernel("AddN", BACKEND);
    tf.registerKernel({ ...addN, kernelFunc: addNChunked(addN.kernelFunc as unknown as (a: Args) => Info) as never });
  }
  installed = true;
}
