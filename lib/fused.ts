// Model-facing fused operations: GELU (with an optional bias), LayerNorm of a residual sum, dropout, multi-head
// attention (dropout(softmax(q·kᵀ/√d + mask))·v), one AdamW update, the clipping norm over all gradients, and a·bᵀ (a
// dense layer's input gradient).
// On the WebGPU backend, with lib/kernels/webgpu/ installed, each runs as one custom WGSL kernel forward and few
// backward; the wasm backend has the AdamW kernels (lib/kernels/wasm-extra.ts, one pass on the heap) and, with its
// thread pool, all the others (lib/kernels/wasm-fused.ts, split over the threads); everywhere else each is exactly
// the composite of tf ops that lib/bert.ts and lib/optim.ts use. BERTQA_FUSED=0 turns the kernels off (to compare).
// Dropout masks are counter-based (lib/dropout.ts): the kernels draw them from the seed, the other backends build the
// same mask on the host and multiply.
import * as tf from "@tensorflow/tfjs";
import { env } from "./platform";
import {
  ADAMW, ADAMW_MULTI, ADD_LAYER_NORM, GRAD_NORM, ATTENTION, ATTENTION_GRAD_KV, ATTENTION_GRAD_Q, ATTENTION_MAX_D, ATTENTION_MAX_T, BIAS_GELU, BIAS_GELU_GRAD, LAYER_NORM_GRAD,
  COLUMN_SUMS, DROPOUT, LAYER_NORM_PARAM_GRAD, ROW_STATS,
} from "./kernels/webgpu";
import { gemmInstalled } from "./kernels/gemm";
import { wasmPoolActive } from "./kernels/wasm-gemm";
import { ATTENTION_GRAD, WASM_POOL_KERNELS } from "./kernels/wasm-fused";
import { dropoutMask, dropoutParams, type DropoutParams, type DropoutSite } from "./dropout";

/** True when `kernel` will run: the active backend registered it (webgpu: all; wasm: AdamW, and the others while its
 * thread pool runs) and BERTQA_FUSED is not 0. */
export function fusedKernelActive(kernel: string): boolean {
  if (env.BERTQA_FUSED === "0" || tf.getKernel(kernel, tf.getBackend()) === undefined) return false;
  return !WASM_POOL_KERNELS.has(kernel) || tf.getBackend() !== "wasm" || wasmPoolActive();
}

function run(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): tf.Tensor {
  return tf.engine().runKernel(kernel, inputs as tf.NamedTensorMap, attrs as never) as tf.Tensor;
}

type Args = (tf.Tensor | tf.GradSaveFunc)[];

/** a·bᵀ, for a dense layer's input gradient (b the weight, small): b is transposed first, since tfjs' wasm matmul runs
 * transposeB ~10× slower and its WebGPU one leaves the vec4 path with it (~1.7× slower), unless lib/kernels/gemm.ts is
 * the WebGPU matmul or the wasm GEMM pool (lib/kernels/wasm-gemm.ts) runs the products: both read b transposed in place. */
export function matMulTransposeB(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return (tf.getBackend() === "webgpu" && gemmInstalled()) || wasmPoolActive() ? tf.matMul(a, b, false, true) : tf.matMul(a, b.transpose());
}

// ---------------------------------------------------------------------------------------------------------------
// GELU

const SQRT_2PI_INV = 1 / Math.sqrt(2 * Math.PI);

/** Exact GELU, 0.5·x·(1 + erf(x/√2)) = x·Φ(x); gradient Φ(x) + x·φ(x). (The composite of lib/bert.ts, verbatim.) */
const compositeGelu = tf.customGrad((...args: Args) => {
  const x = args[0] as tf.Tensor, save = args[1] as tf.GradSaveFunc;
  const cdf = tf.erf(x.mul(Math.SQRT1_2)).add(1).mul(0.5); // Φ(x)
  save([x, cdf]);
  return {
    value: x.mul(cdf),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, scdf] = saved;
      const pdf = tf.exp(sx.square().mul(-0.5)).mul(SQRT_2PI_INV); // φ(x)
      return dy.mul(scdf.add(sx.mul(pdf)));
    },
  };
});

const kernelGelu = tf.customGrad((...args: Args) => {
  const x = args[0] as tf.Tensor, save = args[1] as tf.GradSaveFunc;
  save([x]); // Φ is recomputed in the backward kernel: one saved tensor instead of two
  return { value: run(BIAS_GELU, { x }), gradFunc: (dy: tf.Tensor, [sx]: tf.Tensor[]) => run(BIAS_GELU_GRAD, { dy, x: sx }) };
});

const kernelBiasGelu = tf.customGrad((...args: Args) => {
  const [x, bias] = args as tf.Tensor[], save = args[2] as tf.GradSaveFunc;
  save([x, bias]);
  return {
    value: run(BIAS_GELU, { x, bias }),
    gradFunc: (dy: tf.Tensor, [sx, sb]: tf.Tensor[]) => {
      const dx = run(BIAS_GELU_GRAD, { dy, x: sx, bias: sb });
      return [dx, dx.reshape([-1, sb.shape[0]]).sum(0)];
    },
  };
});

/** gelu(x + bias) over the last axis (bias optional): lib/bert.ts's exact GELU. */
export function biasGelu<T extends tf.Tensor>(x: T, bias?: tf.Tensor): T {
  if (x.dtype === "float32" && fusedKernelActive(BIAS_GELU)) return (bias === undefined ? kernelGelu(x) : kernelBiasGelu(x, bias)) as T;
  return compositeGelu(bias === undefined ? x : x.add(bias)) as T;
}

// ---------------------------------------------------------------------------------------------------------------
// LayerNorm(x + residual)

/** LayerNorm over the last axis: y = x̂·w + b, x̂ = (x − mean)/√(var + eps). (The composite of lib/bert.ts, verbatim.) */
function compositeLayerNorm(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  const f = tf.customGrad((...args: Args) => {
    const [xi, wi, bi] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const { mean, variance } = tf.moments(xi, -1, true);
    const rstd = variance.add(eps).rsqrt(); // [N, 1]
    const xhat = xi.sub(mean).mul(rstd);
    save([xhat, rstd, wi]);
    return {
      value: xhat.mul(wi).add(bi),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxhat, srstd, sw] = saved;
        const g = dy.mul(sw); // dL/dx̂
        // dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)), the standard LayerNorm backward
        const dx = g.sub(g.mean(-1, true)).sub(sxhat.mul(g.mul(sxhat).mean(-1, true))).mul(srstd);
        return [dx, dy.mul(sxhat).sum(0), dy.sum(0)];
      },
    };
  });
  return f(x, w, b) as tf.Tensor2D;
}

function kernelAddLayerNorm(x: tf.Tensor2D, residual: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor2D {
  const f = tf.customGrad((...args: Args) => {
    const [xi, ri, gi, bi] = args as tf.Tensor[];
    const save = args[4] as tf.GradSaveFunc;
    save([xi, ri, gi]); // the inputs themselves: mean and rstd are recomputed in the backward pass
    return {
      value: run(ADD_LAYER_NORM, { x: xi, residual: ri, gamma: gi, beta: bi }, { eps }),
      gradFunc: (dy: tf.Tensor, [sx, sr, sg]: tf.Tensor[]) => {
        const stats = run(ROW_STATS, { x: sx, residual: sr }, { eps }); // [N, 2]: mean, rstd
        const dz = run(LAYER_NORM_GRAD, { x: sx, residual: sr, dy, gamma: sg, stats });
        const partials = run(LAYER_NORM_PARAM_GRAD, { x: sx, residual: sr, dy, stats }); // [blocks, 2C]
        const [dgamma, dbeta] = tf.engine().runKernel(COLUMN_SUMS, { x: partials }, { parts: 2 } as never) as tf.Tensor[];
        return [dz, dz.clone(), dgamma, dbeta]; // clone: the engine may dispose each input's gradient
      },
    };
  });
  return f(x, residual, gamma, beta) as tf.Tensor2D;
}

/** LayerNorm(x + residual) over the last axis with weight `gamma` and bias `beta`: lib/bert.ts's post-LN
 * `layerNorm(attn.add(x), ...)`. x and residual are [N, H]. */
export function addLayerNorm(x: tf.Tensor2D, residual: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor2D {
  if (x.dtype === "float32" && x.rank === 2 && fusedKernelActive(ADD_LAYER_NORM)) return kernelAddLayerNorm(x, residual, gamma, beta, eps);
  return compositeLayerNorm(x.add(residual), gamma, beta, eps);
}

/** LayerNorm alone (the embeddings' LayerNorm has no residual): the composite, as lib/bert.ts has it. */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor2D {
  return compositeLayerNorm(x, gamma, beta, eps);
}

// ---------------------------------------------------------------------------------------------------------------
// Dropout

function kernelDropout<T extends tf.Tensor>(x: T, params: DropoutParams): T {
  const f = tf.customGrad((...args: Args) => {
    const xi = args[0] as tf.Tensor;
    // The mask is redrawn from the seed for the gradient: nothing is saved, nothing the size of x is kept.
    return { value: run(DROPOUT, { x: xi }, { ...params }), gradFunc: (dy: tf.Tensor) => run(DROPOUT, { x: dy }, { ...params }) };
  });
  return f(x) as T;
}

/** Inverted dropout of x at `rate` with lib/dropout.ts's counter-based mask of `seed`: on WebGPU and the threaded wasm
 * backend one kernel each way (the mask drawn in the kernel); elsewhere x times the host mask, which drops exactly the
 * same elements. */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T {
  if (x.dtype === "float32" && fusedKernelActive(DROPOUT)) return kernelDropout(x, dropoutParams(rate, seed));
  return x.mul(dropoutMask(x.shape, rate, seed));
}

// ---------------------------------------------------------------------------------------------------------------
// Attention

const NO_DROPOUT: DropoutParams = { key: 0, threshold: 0, scale: 1 }; // every hash ≥ 0: all kept, × 1

function kernelAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor, nh: number, drop: DropoutParams): tf.Tensor3D {
  // wasm keeps the probabilities when a gradient is recorded (its backward reads them; WebGPU's recomputes them)
  const wasmGrad = tf.getKernel(ATTENTION_GRAD, tf.getBackend()) !== undefined;
  const saveProbs = wasmGrad && (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
  const attrs = { nh, ...drop, scoreScale: 1 / Math.sqrt(q.shape[2] / nh), ...(saveProbs ? { saveProbs } : {}) } as never;
  const f = tf.customGrad((...args: Args) => {
    const [qi, ki, vi] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [ctx, stats, probs] = tf.engine().runKernel(ATTENTION, { q: qi, k: ki, v: vi, mask }, attrs) as tf.Tensor[];
    // On WebGPU the probabilities and dropout mask are recomputed (row max and sum, seed), not kept (B·nh·T² numbers);
    // ctx, the output (saved as tfjs' saveAllOutputs kernels do: save holds its own reference), gives the backward's
    // delta = dctx·ctx.
    save([qi, ki, vi, mask, stats, ctx, ...(probs !== undefined ? [probs] : [])]);
    tf.dispose([stats, ...(probs !== undefined ? [probs] : [])]); // save keeps its own reference (and none when not recording gradients)
    return {
      value: ctx,
      gradFunc: (dctx: tf.Tensor, [sq, sk, sv, sm, stats, sctx, sprobs]: tf.Tensor[]) => {
        const inputs = { q: sq, k: sk, v: sv, mask: sm, dctx };
        if (wasmGrad) return tf.engine().runKernel(ATTENTION_GRAD, { q: sq, k: sk, v: sv, dctx, ctx: sctx, probs: sprobs }, attrs) as tf.Tensor[];
        // GradQ writes delta into stats' third column in place, making it GradKV's rows (max, sum, delta).
        const [dq] = tf.engine().runKernel(ATTENTION_GRAD_Q, { ...inputs, ctx: sctx, stats }, attrs) as tf.Tensor[];
        const [dk, dv] = tf.engine().runKernel(ATTENTION_GRAD_KV, { ...inputs, rows: stats }, attrs) as tf.Tensor[];
        return [dq, dk, dv];
      },
    };
  });
  return f(q, k, v) as tf.Tensor3D;
}

/**
 * Attention of all heads at once: softmax(q·kᵀ/√d + mask)·v per head, with q, k, v [B, T, H] as the dense layers make
 * them (head h is columns h·d … h·d + d − 1) and the additive mask [B, 1, 1, T]; returns the heads side by side,
 * [B, T, H]. `drop`, when given, is the dropout site applied to the probabilities [B, nh, T, T]. On
 * WebGPU one kernel forward and two backward, on the threaded wasm backend one and one, reading and writing [B, T, H]
 * directly, with or without dropout (drawn in the kernels at the probabilities' flat index, so they drop what the
 * composite drops); otherwise the composite: heads split out to [B·nh, T, d] (keys to [B·nh, d, T]), batched
 * matMuls, heads merged back.
 */
export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor, nh: number, drop?: DropoutSite): tf.Tensor3D {
  const [B, T, H] = q.shape, d = H / nh;
  if (q.dtype === "float32" && T <= ATTENTION_MAX_T && d <= ATTENTION_MAX_D && fusedKernelActive(ATTENTION)) {
    const params = drop === undefined ? NO_DROPOUT : dropoutParams(drop.rate, drop.seed);
    return kernelAttention(q, k, v, mask, nh, params); // the kernels read the mask as [B, T]
  }
  const heads = (x: tf.Tensor, perm: number[], shape: number[]) => x.reshape([B, T, nh, d]).transpose(perm).reshape(shape) as tf.Tensor3D;
  // 1/√d on q (B·T·H numbers) rather than on the scores (B·nh·T²); the kernels scale each score in registers.
  const scores = tf.matMul(heads(q.mul(1 / Math.sqrt(d)), [0, 2, 1, 3], [B * nh, T, d]), heads(k, [0, 2, 3, 1], [B * nh, d, T])).reshape([B, nh, T, T]).add(mask);
  const probs = tf.softmax(scores); // [B, nh, T, T]
  const ctx = tf.matMul((drop === undefined ? probs : dropout(probs, drop.rate, drop.seed)).reshape([B * nh, T, T]) as tf.Tensor3D, heads(v, [0, 2, 1, 3], [B * nh, T, d]));
  return ctx.reshape([B, nh, T, d]).transpose([0, 2, 1, 3]).reshape([B, T, H]);
}

// ---------------------------------------------------------------------------------------------------------------
// AdamW

/** One parameter's AdamW step, with the host-side constants of lib/optim.ts's adamwStep. */
export interface AdamWUpdate {
  lr: number; // the scheduled learning rate
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number; // this parameter's: 0 for biases and LayerNorm weights
  stepSize: number; // lr / (1 − beta1^t)
  bc2Sqrt: number; // √(1 − beta2^t)
}

/**
 * p, m, v ← torch.optim.AdamW's step with gradient g·gradScale (updates the variables in place; g itself is left
 * as it is). `gradScale` is clip_grad_norm_'s coefficient as a device scalar (absent: no clipping), read by the
 * kernel itself so the host never waits for it. On WebGPU and wasm one kernel launch for the three; elsewhere the
 * composite of lib/optim.ts's adamwStep, op for op.
 */
export function adamwUpdate(p: tf.Variable, m: tf.Variable, v: tf.Variable, g: tf.Tensor, h: AdamWUpdate, gradScale?: tf.Scalar): void {
  tf.tidy(() => {
    if (p.dtype === "float32" && g.dtype === "float32" && fusedKernelActive(ADAMW)) {
      const inputs: tf.NamedTensorMap = gradScale === undefined ? { p, m, v, g } : { p, m, v, g, gradScale };
      const [p1, m1, v1] = tf.engine().runKernel(ADAMW, inputs, h as never) as tf.Tensor[];
      m.assign(m1);
      v.assign(v1);
      p.assign(p1);
      return;
    }
    // Clipping as its own float32 multiply, the one clip_grad_norm_ does in place; the copy lives for this tidy only.
    const gc = gradScale !== undefined ? tf.mul(g, gradScale) : g;
    const m1 = tf.add(tf.mul(m, h.beta1), tf.mul(gc, 1 - h.beta1));
    const v1 = tf.add(tf.mul(v, h.beta2), tf.mul(tf.square(gc), 1 - h.beta2));
    const decayed = h.weightDecay !== 0 ? tf.mul(p, 1 - h.lr * h.weightDecay) : p;
    const denom = tf.add(tf.div(tf.sqrt(v1), h.bc2Sqrt), h.eps);
    const p1 = tf.sub(decayed, tf.mul(tf.div(m1, denom), h.stepSize));
    m.assign(m1);
    v.assign(v1);
    p.assign(p1);
  });
}

/** One parameter of an optimiser step: the variables updated in place, the gradient, its constants. */
export interface AdamWItem { p: tf.Variable; m: tf.Variable; v: tf.Variable; g: tf.Tensor; h: AdamWUpdate }

/**
 * adamwUpdate over every parameter of a step (they share all constants but weightDecay). On WebGPU the parameters go
 * to BertqaAdamWMulti, in place and several per launch (199 launches → 67 for BERT-base on a device with 16 storage
 * buffers per shader), on wasm all in one call, in place; a parameter whose buffer another tensor shares (a clone, or
 * the tensor a variable was made from, still alive) takes adamwUpdate instead, since writing it in place would change
 * that tensor too.
 */
export function adamwUpdates(items: AdamWItem[], gradScale?: tf.Scalar): void {
  const backend = tf.backend();
  const inPlace = (it: AdamWItem) => it.p.dtype === "float32" && it.g.dtype === "float32" && it.p.size > 0 && [it.p, it.m, it.v].every((x) => backend.refCount(x.dataId) === 1);
  const multi = fusedKernelActive(ADAMW_MULTI) ? items.filter(inPlace) : [];
  for (const it of items) if (!multi.includes(it)) adamwUpdate(it.p, it.m, it.v, it.g, it.h, gradScale);
  if (multi.length === 0) return;
  const inputs: tf.NamedTensorMap = gradScale === undefined ? {} : { gradScale };
  multi.forEach((it, i) => Object.assign(inputs, { [`p${i}`]: it.p, [`m${i}`]: it.m, [`v${i}`]: it.v, [`g${i}`]: it.g }));
  const { beta1, beta2, eps, stepSize, bc2Sqrt } = multi[0].h;
  const decayFactors = multi.map((it) => 1 - it.h.lr * it.h.weightDecay);
  tf.engine().runKernel(ADAMW_MULTI, inputs, { beta1, beta2, eps, stepSize, bc2Sqrt, decayFactors } as never);
}

// ---------------------------------------------------------------------------------------------------------------
// Gradient clipping's norm

/**
 * clip_grad_norm_'s norm ‖(‖g_i‖₂)_i‖₂ and coefficient min(1, maxNorm/(norm + 1e-6)), both float32 scalars on the
 * device. On WebGPU one launch per 15 gradients (7 on a default device) and one to finish; on the threaded wasm
 * backend one kernel; elsewhere a Square and a Sum per gradient.
 */
export function gradNormScale(grads: tf.Tensor[], maxNorm: number): { totalNorm: tf.Scalar; scale: tf.Scalar } {
  if (grads.every((g) => g.dtype === "float32") && fusedKernelActive(GRAD_NORM)) {
    const [totalNorm, scale] = tf.engine().runKernel(GRAD_NORM, grads as unknown as tf.NamedTensorMap, { maxNorm } as never) as tf.Scalar[];
    return { totalNorm, scale };
  }
  // One tidy per gradient frees each full-size square at once (one outer tidy would hold them all: 4 more bytes/param).
  const sums = grads.map((g) => tf.tidy(() => tf.sum(tf.square(g))));
  const totalNorm = tf.tidy(() => tf.sqrt(tf.addN(sums))) as tf.Scalar;
  tf.dispose(sums);
  // clip_coef = max_norm / (total_norm + 1e-6), clamped at 1 (1e-6: torch's guard against division by zero).
  const scale = tf.tidy(() => tf.minimum(tf.div(maxNorm, tf.add(totalNorm, 1e-6)), 1)) as tf.Scalar;
  return { totalNorm, scale };
}
