// Kernels the library adds to TensorFlow.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu 4.22), in WGSL:
// - BertqaBiasGelu / BertqaBiasGeluGrad: exact GELU (erf) with an optional bias, one launch each way.
// - BertqaAddLayerNorm, BertqaRowStats, BertqaLayerNormGrad, BertqaLayerNormParamGrad: LayerNorm(x + residual).
// - BertqaAdamW: one AdamW update of one parameter (p, m, v) in one launch.
// - BertqaDropout: inverted dropout with lib/dropout.ts's counter-based mask, drawn in the shader from the seed (no mask
//   is built on the host, uploaded or saved); its gradient is the same kernel on dy.
// - BertqaAttention, BertqaAttentionGradQ, BertqaAttentionGradKV: dropout(softmax(q·kᵀ + mask))·v per head, one launch
//   forward and two backward (probabilities recomputed from the saved row max and sum, flash-attention style; the
//   dropout mask redrawn from the seed in each).
// - AddN (replaced): the stock kernel binds every input at once and breaks past 7 inputs (see addNChunked).
// The model-facing ops that choose between these and the composite tf ops are in lib/fused.ts.
//
// How a kernel runs here: like the backend's own programs (dist/*_webgpu.js), an object with variableNames (the
// input arrays, bound read-only in that order), outputShape (the one output, the array `result`), workgroupSize,
// dispatch and getUserCode() (WGSL; the backend adds bindings, `uniforms` with every input's shape, and the entry
// point that calls `main`), run by backend.runWebGPUProgram(program, inputs, dtype, extraUniforms). Programs have one
// output, so AdamW and attention, which write two or three tensors, record their own pipelines into the backend's command
// stream instead (`record`).
//
// Only types are declared here (no import of the optional package): it loads when backend.ts registers the backend.
import * as tf from "@tensorflow/tfjs";
import { DROPOUT_WGSL } from "../dropout";

const BACKEND = "webgpu";
export const BIAS_GELU = "BertqaBiasGelu";
export const BIAS_GELU_GRAD = "BertqaBiasGeluGrad";
export const ADD_LAYER_NORM = "BertqaAddLayerNorm";
export const ROW_STATS = "BertqaRowStats";
export const LAYER_NORM_GRAD = "BertqaLayerNormGrad";
export const LAYER_NORM_PARAM_GRAD = "BertqaLayerNormParamGrad";
export const ADAMW = "BertqaAdamW";
export const DROPOUT = "BertqaDropout";
export const ATTENTION = "BertqaAttention";
export const ATTENTION_GRAD_Q = "BertqaAttentionGradQ";
export const ATTENTION_GRAD_KV = "BertqaAttentionGradKV";
/** The attention kernels keep one row of scores and one head vector in workgroup memory: longest sequence, widest head. */
export const ATTENTION_MAX_T = 512;
export const ATTENTION_MAX_D = 128;

// --- the few backend internals used (tfjs-backend-webgpu 4.22 dist/backend_webgpu.js) -------------------------------

interface Info { dataId: object; shape: number[]; dtype: tf.DataType }
interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size?: boolean; // adds uniforms.size = output size
  uniforms?: string; // extra uniform fields, e.g. "eps : f32,"
  getUserCode(): string;
}
type Uniform = { type: "float32" | "int32" | "uint32"; data: number[] };
/* eslint-disable @typescript-eslint/no-explicit-any */
type Gpu = any; // GPUDevice, GPUComputePassEncoder, ... (no @webgpu/types in this project)
interface WebgpuBackend {
  device: Gpu;
  commandEncoder: Gpu;
  computePassEncoder: Gpu;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
  runWebGPUProgram(program: Program, inputs: Info[], dtype: tf.DataType, uniforms?: Uniform[]): Info;
  makeTensorInfo(shape: number[], dtype: tf.DataType): Info;
  uploadToGPU(dataId: object): void;
  tensorToBinding(t: Info): Gpu;
  makeUniforms(u: Uniform[]): Gpu;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  disposeData(dataId: object): boolean;
}
type Args = { inputs: Record<string, Info>; backend: WebgpuBackend; attrs: Record<string, unknown> };

const flat = (shape: number[], wg = 128): Pick<Program, "dispatchLayout" | "dispatch" | "workgroupSize"> => ({
  dispatchLayout: { x: shape.map((_, i) => i) },
  dispatch: [Math.ceil(shape.reduce((a, b) => a * b, 1) / wg), 1, 1],
  workgroupSize: [wg, 1, 1],
});

// --- shared WGSL ------------------------------------------------------------------------------------------------------

// The backend's own erf (Abramowitz–Stegun 7.1.26, the constants of tf.backend_util), so fused and composite GELU
// on WebGPU evaluate the same formula.
const ERF = `
fn erf_(a : f32) -> f32 {
  let t = 1.0 / (1.0 + ${tf.backend_util.ERF_P} * abs(a));
  return sign(a) * (1.0 - (((((${tf.backend_util.ERF_A5} * t + ${tf.backend_util.ERF_A4}) * t) + ${tf.backend_util.ERF_A3}) * t
    + ${tf.backend_util.ERF_A2}) * t + ${tf.backend_util.ERF_A1}) * t * exp(-a * a));
}`;

/** Workgroup-wide sum of `v` over WG threads (tree in shared memory; every thread gets the total). */
const sumDecl = (wg: number) => `
var<workgroup> red : array<f32, ${wg}>;
fn workgroupSum(v : f32, tid : u32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}`;

/** Threads per row for the row kernels: one workgroup per row, a power of two, at most 256. */
function rowWorkgroup(cols: number): number {
  return cols >= 1024 ? 256 : cols >= 256 ? 128 : 64;
}

// --- GELU -------------------------------------------------------------------------------------------------------------

/** y = gelu(x + bias): the FFN activation; the composite needs 5 launches forward (7 backward) and saves Φ(x). */
function biasGeluProgram(x: Info, hasBias: boolean): Program {
  return {
    variableNames: hasBias ? ["X", "Bias"] : ["X"], outputShape: x.shape, shaderKey: `bertqa_bias_gelu_${hasBias}`, size: true, ...flat(x.shape),
    getUserCode: () => `${ERF}
fn main(index : i32) {
  if (index < uniforms.size) {
    let u = X[index]${hasBias ? " + Bias[index % uniforms.biasShape]" : ""};
    let cdf = (erf_(u * ${Math.SQRT1_2}) + 1.0) * 0.5;
    result[index] = u * cdf;
  }
}`,
  };
}

/** dx = dy · (Φ(u) + u·φ(u)), u = x + bias: recomputes Φ from x instead of keeping it from the forward pass. */
function biasGeluGradProgram(x: Info, hasBias: boolean): Program {
  return {
    variableNames: hasBias ? ["Dy", "X", "Bias"] : ["Dy", "X"], outputShape: x.shape, shaderKey: `bertqa_bias_gelu_grad_${hasBias}`, size: true, ...flat(x.shape),
    getUserCode: () => `${ERF}
fn main(index : i32) {
  if (index < uniforms.size) {
    let u = X[index]${hasBias ? " + Bias[index % uniforms.biasShape]" : ""};
    let cdf = (erf_(u * ${Math.SQRT1_2}) + 1.0) * 0.5;
    let pdf = exp(u * u * -0.5) * ${1 / Math.sqrt(2 * Math.PI)};
    result[index] = Dy[index] * (cdf + u * pdf);
  }
}`,
  };
}

// --- dropout ----------------------------------------------------------------------------------------------------------

/** y = x · (keep(i) ? scale : 0): the element test of lib/dropout.ts, so cpu/wasm's host mask drops the same elements
 * (× a 0 or scale factor, not select(0, x·scale): −0 and NaN come out as the host's x · mask gives them). */
function dropoutProgram(x: Info): Program {
  return {
    variableNames: ["X"], outputShape: x.shape, shaderKey: "bertqa_dropout", size: true, uniforms: "key : u32, threshold : u32, scale : f32,", ...flat(x.shape),
    getUserCode: () => `${DROPOUT_WGSL}
fn main(index : i32) {
  if (index < uniforms.size) {
    result[index] = X[index] * select(0.0, uniforms.scale, dropoutKeep(uniforms.key, uniforms.threshold, u32(index)));
  }
}`,
  };
}

// --- LayerNorm(x + residual) ------------------------------------------------------------------------------------------

// Row kernels: one workgroup per row of [rows, cols]; `row < rows` guards memory only (barriers stay uniform) in case
// the backend folds a long dispatch into two dimensions.
const rowHeader = (wg: number) => `
const WG = ${wg}u;
fn main(index : i32) {
  let tid = u32(index) % WG;
  let row = u32(index) / WG;
  let rows = u32(uniforms.xShape.x);
  let cols = u32(uniforms.xShape.y);
  let live = row < rows;
  let base = row * cols;`;

/** Mean and 1/√(var + eps) of z = x + residual, two-pass like tf.moments; `body` then uses mean, rstd. */
const rowMoments = `
  var s = 0.0;
  for (var c = tid; c < cols; c += WG) { if (live) { s += X[base + c] + R[base + c]; } }
  let mean = workgroupSum(s, tid) / f32(cols);
  var q = 0.0;
  for (var c = tid; c < cols; c += WG) { if (live) { let d = X[base + c] + R[base + c] - mean; q += d * d; } }
  let rstd = 1.0 / sqrt(workgroupSum(q, tid) / f32(cols) + uniforms.eps);`;

/** y = (z − mean)·rstd·γ + β with z = x + residual: the post-LN of every block; the composite takes ~13 launches. */
function addLayerNormProgram(x: Info): Program {
  const wg = rowWorkgroup(x.shape[1]);
  return {
    variableNames: ["X", "R", "Gamma", "Beta"], outputShape: x.shape, shaderKey: `bertqa_add_layer_norm_${wg}`, uniforms: "eps : f32,",
    dispatchLayout: { x: [0, 1] }, dispatch: [x.shape[0], 1, 1], workgroupSize: [wg, 1, 1],
    getUserCode: () => `${sumDecl(wg)}${rowHeader(wg)}${rowMoments}
  for (var c = tid; c < cols; c += WG) {
    if (live) { result[base + c] = (X[base + c] + R[base + c] - mean) * rstd * Gamma[c] + Beta[c]; }
  }
}`,
  };
}

/** [rows, 2] = (mean, rstd) of x + residual: the backward pass recomputes these instead of saving x̂ (rows×cols). */
function rowStatsProgram(x: Info): Program {
  const wg = rowWorkgroup(x.shape[1]);
  return {
    variableNames: ["X", "R"], outputShape: [x.shape[0], 2], shaderKey: `bertqa_row_stats_${wg}`, uniforms: "eps : f32,",
    dispatchLayout: { x: [0, 1] }, dispatch: [x.shape[0], 1, 1], workgroupSize: [wg, 1, 1],
    getUserCode: () => `${sumDecl(wg)}${rowHeader(wg)}${rowMoments}
  if (live && tid == 0u) { result[row * 2u] = mean; result[row * 2u + 1u] = rstd; }
}`,
  };
}

/** dz = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ: LayerNorm's input gradient in one launch (composite ~10). */
function layerNormGradProgram(x: Info): Program {
  const wg = rowWorkgroup(x.shape[1]);
  return {
    variableNames: ["X", "R", "Dy", "Gamma", "Stats"], outputShape: x.shape, shaderKey: `bertqa_layer_norm_grad_${wg}`,
    dispatchLayout: { x: [0, 1] }, dispatch: [x.shape[0], 1, 1], workgroupSize: [wg, 1, 1],
    getUserCode: () => `${sumDecl(wg)}${rowHeader(wg)}
  var mean = 0.0;
  var rstd = 0.0;
  if (live) { mean = Stats[row * 2u]; rstd = Stats[row * 2u + 1u]; }
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = tid; c < cols; c += WG) {
    if (live) {
      let g = Dy[base + c] * Gamma[c];
      sg += g;
      sgx += g * ((X[base + c] + R[base + c] - mean) * rstd);
    }
  }
  let meanG = workgroupSum(sg, tid) / f32(cols);
  let meanGX = workgroupSum(sgx, tid) / f32(cols);
  for (var c = tid; c < cols; c += WG) {
    if (live) {
      let xhat = (X[base + c] + R[base + c] - mean) * rstd;
      result[base + c] = (Dy[base + c] * Gamma[c] - meanG - xhat * meanGX) * rstd;
    }
  }
}`,
  };
}

const PARAM_ROWS = 64; // rows per partial sum of the γ/β gradients

/** [blocks, 2·cols] partial sums of dy·x̂ (dγ) and dy (dβ) over blocks of 64 rows; tf.sum over axis 0 finishes
 * them. Column sums over all rows in one thread per column would leave most of a large GPU idle. */
function layerNormParamGradProgram(x: Info): Program {
  const [rows, cols] = x.shape;
  const blocks = Math.ceil(rows / PARAM_ROWS);
  return {
    variableNames: ["X", "R", "Dy", "Stats"], outputShape: [blocks, 2 * cols], shaderKey: "bertqa_layer_norm_param_grad",
    dispatchLayout: { x: [1], y: [0] }, dispatch: [Math.ceil(cols / 64), blocks, 1], workgroupSize: [64, 1, 1],
    getUserCode: () => `
fn main() {
  let rows = u32(uniforms.xShape.x);
  let cols = u32(uniforms.xShape.y);
  let c = globalId.x;
  let block = workgroupId.y;
  if (c >= cols) { return; }
  var dg = 0.0;
  var db = 0.0;
  let end = min(rows, (block + 1u) * ${PARAM_ROWS}u);
  for (var r = block * ${PARAM_ROWS}u; r < end; r++) {
    let i = r * cols + c;
    let dy = Dy[i];
    dg += dy * ((X[i] + R[i] - Stats[r * 2u]) * Stats[r * 2u + 1u]);
    db += dy;
  }
  result[block * 2u * cols + c] = dg;
  result[block * 2u * cols + cols + c] = db;
}`,
  };
}

// --- AdamW ------------------------------------------------------------------------------------------------------------

// torch.optim.AdamW's single-tensor step, in optim.ts's operation order: the composite costs ~13 launches and 13
// full-size temporaries per parameter; this reads p, m, v, g once and writes p', m', v' once. Gradient clipping is
// folded in (g·gradScale), so no clipped copy of the gradients is ever stored.
const ADAMW_WGSL = `
struct Hyper { n : u32, rowStride : u32, beta1 : f32, oneMinusBeta1 : f32, beta2 : f32, oneMinusBeta2 : f32,
               decayFactor : f32, bc2Sqrt : f32, eps : f32, stepSize : f32, gradScale : f32 };
@group(0) @binding(0) var<storage, read_write> pOut : array<f32>;
@group(0) @binding(1) var<storage, read_write> mOut : array<f32>;
@group(0) @binding(2) var<storage, read_write> vOut : array<f32>;
@group(0) @binding(3) var<storage, read> P : array<f32>;
@group(0) @binding(4) var<storage, read> M : array<f32>;
@group(0) @binding(5) var<storage, read> V : array<f32>;
@group(0) @binding(6) var<storage, read> G : array<f32>;
@group(0) @binding(7) var<uniform> h : Hyper;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  let i = (wid.y * h.rowStride + wid.x) * 256u + lid;
  if (i >= h.n) { return; }
  let g = G[i] * h.gradScale; // clip_grad_norm_'s scaling, the same f32 multiply as the composite's tf.mul
  let m1 = M[i] * h.beta1 + g * h.oneMinusBeta1;
  let v1 = V[i] * h.beta2 + (g * g) * h.oneMinusBeta2;
  let denom = sqrt(v1) / h.bc2Sqrt + h.eps;
  pOut[i] = P[i] * h.decayFactor - (m1 / denom) * h.stepSize;
  mOut[i] = m1;
  vOut[i] = v1;
}`;

/** Inputs p, m, v, g (float32, same shape); attrs lr-derived constants and gradScale; outputs [p', m', v'] in one dispatch. */
function adamw({ inputs, backend, attrs }: Args): Info[] {
  const { p, m, v, g } = inputs;
  const n = p.shape.reduce((a, b) => a * b, 1);
  const outs = [0, 1, 2].map(() => backend.makeTensorInfo(p.shape.slice(), "float32"));
  if (n === 0) return outs;
  const groups = Math.ceil(n / 256), maxX = backend.device.limits.maxComputeWorkgroupsPerDimension as number;
  const dispatch: [number, number] = groups <= maxX ? [groups, 1] : [maxX, Math.ceil(groups / maxX)];
  const a = attrs as Record<string, number>;
  const u = (type: Uniform["type"], x: number): Uniform => ({ type, data: [x] });
  record(backend, ADAMW, ADAMW_WGSL, [...outs, p, m, v, g], [u("uint32", n), u("uint32", dispatch[0]), u("float32", a.beta1), u("float32", 1 - a.beta1), u("float32", a.beta2),
    u("float32", 1 - a.beta2), u("float32", 1 - a.lr * a.weightDecay), u("float32", a.bc2Sqrt), u("float32", a.eps), u("float32", a.stepSize), u("float32", a.gradScale ?? 1)], dispatch);
  return outs;
}

const pipelines = new WeakMap<object, Map<string, Gpu>>(); // device → label → compute pipeline

/** Record one dispatch of `wgsl` (entry point main; bindings 0.. = `tensors` in order, outputs first, then one
 * uniform buffer) into the backend's command stream exactly as backend.recordAndSubmit records its programs, so
 * ordering with other kernels is kept. For kernels with more than one output, which WebGPUProgram cannot express. */
function record(backend: WebgpuBackend, label: string, wgsl: string, tensors: Info[], uniforms: Uniform[], dispatch: [number, number]): void {
  for (const t of tensors) backend.uploadToGPU(t.dataId);
  const device = backend.device;
  let cache = pipelines.get(device);
  if (cache === undefined) pipelines.set(device, (cache = new Map()));
  let pipeline = cache.get(label);
  if (pipeline === undefined) {
    pipeline = device.createComputePipeline({ layout: "auto", label, compute: { module: device.createShaderModule({ code: wgsl, label }), entryPoint: "main" } });
    cache.set(label, pipeline);
  }
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [...tensors.map((t, i) => ({ binding: i, resource: backend.tensorToBinding(t) })),
    { binding: tensors.length, resource: backend.makeUniforms(uniforms) }] });
  for (const t of tensors) backend.commandQueueOwnedIds.add(t.dataId);
  backend.ensureCommandEncoderReady();
  if (!backend.computePassEncoder) backend.computePassEncoder = backend.commandEncoder.beginComputePass({});
  backend.computePassEncoder.setPipeline(pipeline);
  backend.computePassEncoder.setBindGroup(0, bindGroup);
  backend.computePassEncoder.dispatchWorkgroups(dispatch[0], dispatch[1], 1);
  backend.dispatchCountInPass++;
  if (tf.env().getNumber("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") <= backend.dispatchCountInPass) {
    backend.endComputePassEncoder();
    backend.submitQueue();
  }
}

// --- attention --------------------------------------------------------------------------------------------------------

// Per head (bh < B·nh, b = bh / nh) with q [B·nh, T, d] (pre-scaled), kT [B·nh, d, T], v [B·nh, T, d], mask [B,1,1,T]
// (additive: 0 or float32 min): s = q·kT + mask, p = softmax(s) by rows, ctx = (p∘D)·v with D the dropout factors (0
// or 1/(1 − rate)) of lib/dropout.ts's mask at the flat index (bh·T + i)·T + j of the composite's [B, nh, T, T] probs;
// threshold 0 and scale 1 (rate 0) keep every p as it is. One workgroup per (row, head), in the composite's operation
// order (exp(s − max) / sum, then ·D, then ·v; dS = dP∘p − rowsum(dP∘p)·p, dP = (dctx·vᵀ)∘D), so values stay within
// float32 rounding of it. The row max and sum saved for the backward pass are those of the undropped softmax.
const ATTN_WG = 64;
const attentionHeader = (outs: string[], ins: string[]) => `
struct Dims { T : u32, d : u32, nh : u32, key : u32, threshold : u32, scale : f32 };
${outs.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n} : array<f32>;`).join("\n")}
${ins.map((n, i) => `@group(0) @binding(${outs.length + i}) var<storage, read> ${n} : array<f32>;`).join("\n")}
@group(0) @binding(${outs.length + ins.length}) var<uniform> u : Dims;
const WG = ${ATTN_WG}u;
const LOWEST = bitcast<f32>(0xff7fffffu); // -FLT_MAX
${DROPOUT_WGSL}
fn dropScale(i : u32) -> f32 { return select(0.0, u.scale, dropoutKeep(u.key, u.threshold, i)); } // D at flat index i
${sumDecl(ATTN_WG)}
fn workgroupMax(v : f32, tid : u32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = ${ATTN_WG / 2}u; s > 0u; s = s >> 1u) {
    if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}
var<workgroup> qi : array<f32, ${ATTENTION_MAX_D}>;
var<workgroup> gi : array<f32, ${ATTENTION_MAX_D}>;
var<workgroup> sc : array<f32, ${ATTENTION_MAX_T}>;
var<workgroup> dp : array<f32, ${ATTENTION_MAX_T}>;
@compute @workgroup_size(${ATTN_WG})
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let T = u.T;
  let d = u.d;
  let bh = wid.y;
  let mBase = (bh / u.nh) * T;
  let kBase = bh * d * T; // kT [d, T] of this head
  let vBase = bh * T * d; // q, v, ctx, dctx [T, d] of this head`;

/** [ctx, stats]: ctx [B·nh, T, d]; stats [B·nh, T, 2] = each score row's max and sum of exp (for the backward pass). */
const ATTENTION_WGSL = `${attentionHeader(["Ctx", "Stats"], ["Q", "KT", "V", "M"])}
  let row = bh * T + wid.x; // query row
  for (var c = tid; c < d; c += WG) { qi[c] = Q[row * d + c]; }
  workgroupBarrier();
  var mx = LOWEST;
  for (var j = tid; j < T; j += WG) {
    var a = 0.0;
    for (var c = 0u; c < d; c++) { a += qi[c] * KT[kBase + c * T + j]; }
    let s = a + M[mBase + j];
    sc[j] = s;
    mx = max(mx, s);
  }
  let m = workgroupMax(mx, tid);
  var l = 0.0;
  for (var j = tid; j < T; j += WG) { let e = exp(sc[j] - m); sc[j] = e; l += e; }
  let total = workgroupSum(l, tid);
  for (var j = tid; j < T; j += WG) { sc[j] = sc[j] / total * dropScale(row * T + j); } // p∘D
  workgroupBarrier();
  for (var c = tid; c < d; c += WG) {
    var a = 0.0;
    for (var j = 0u; j < T; j++) { a += sc[j] * V[vBase + j * d + c]; }
    Ctx[row * d + c] = a;
  }
  if (tid == 0u) { Stats[row * 2u] = m; Stats[row * 2u + 1u] = total; }
}`;

/** [dq, rows]: dq = dS·kTᵀ, one workgroup per query row; rows [B·nh, T, 3] = (max, sum, rowsum(dP∘p)) for GradKV. */
const ATTENTION_GRAD_Q_WGSL = `${attentionHeader(["DQ", "Rows"], ["Q", "KT", "V", "M", "DO", "Stats"])}
  let row = bh * T + wid.x;
  for (var c = tid; c < d; c += WG) { qi[c] = Q[row * d + c]; gi[c] = DO[row * d + c]; }
  workgroupBarrier();
  let m = Stats[row * 2u];
  let l = Stats[row * 2u + 1u];
  var sgp = 0.0;
  for (var j = tid; j < T; j += WG) {
    var a = 0.0;
    var g = 0.0;
    for (var c = 0u; c < d; c++) { a += qi[c] * KT[kBase + c * T + j]; g += gi[c] * V[vBase + j * d + c]; }
    let s = a + M[mBase + j];
    let p = exp(s - m) / l;
    let gp = g * dropScale(row * T + j) * p; // dP∘p
    sc[j] = p;
    dp[j] = gp;
    sgp += gp;
  }
  let delta = workgroupSum(sgp, tid);
  for (var j = tid; j < T; j += WG) { sc[j] = dp[j] - delta * sc[j]; } // dS
  workgroupBarrier();
  for (var c = tid; c < d; c += WG) {
    var a = 0.0;
    for (var j = 0u; j < T; j++) { a += sc[j] * KT[kBase + c * T + j]; }
    DQ[row * d + c] = a;
  }
  if (tid == 0u) { Rows[row * 3u] = m; Rows[row * 3u + 1u] = l; Rows[row * 3u + 2u] = delta; }
}`;

/** [dkT, dv]: dkT = qᵀ·dS [B·nh, d, T] and dv = (p∘D)ᵀ·dctx [B·nh, T, d], one workgroup per key position. */
const ATTENTION_GRAD_KV_WGSL = `${attentionHeader(["DKT", "DV"], ["Q", "KT", "V", "M", "DO", "Rows"])}
  let j = wid.x; // key position
  for (var c = tid; c < d; c += WG) { qi[c] = KT[kBase + c * T + j]; gi[c] = V[vBase + j * d + c]; } // k_j, v_j
  workgroupBarrier();
  let mj = M[mBase + j];
  for (var i = tid; i < T; i += WG) {
    let r = bh * T + i;
    var a = 0.0;
    var g = 0.0;
    for (var c = 0u; c < d; c++) { a += Q[vBase + i * d + c] * qi[c]; g += DO[vBase + i * d + c] * gi[c]; }
    let s = a + mj;
    let p = exp(s - Rows[r * 3u]) / Rows[r * 3u + 1u];
    let dij = dropScale(r * T + j);
    sc[i] = p * dij; // p∘D
    dp[i] = g * dij * p - Rows[r * 3u + 2u] * p; // dS
  }
  workgroupBarrier();
  for (var c = tid; c < d; c += WG) {
    var dv = 0.0;
    var dk = 0.0;
    for (var i = 0u; i < T; i++) { dv += sc[i] * DO[vBase + i * d + c]; dk += dp[i] * Q[vBase + i * d + c]; }
    DV[vBase + j * d + c] = dv;
    DKT[kBase + c * T + j] = dk;
  }
}`;

/** Inputs q, kT, v, mask (B·T numbers, e.g. [B, 1, 1, T]) (+ dctx, stats / rows for the gradients), attrs nh and the
 * dropout's key, threshold, scale (lib/dropout.ts's dropoutParams; 0, 0, 1 for none): the attention kernels above. */
function attentionKernel(label: string, wgsl: string, inputNames: string[], outShapes: (q: Info) => number[][]) {
  return ({ inputs, backend, attrs }: Args): Info[] => {
    const q = inputs.q, [BH, T, d] = q.shape;
    const outs = outShapes(q).map((shape) => backend.makeTensorInfo(shape, "float32"));
    const u = (x: number): Uniform => ({ type: "uint32", data: [x] });
    const a = attrs as Record<string, number | undefined>;
    record(backend, label, wgsl, [...outs, ...inputNames.map((n) => inputs[n])],
      [u(T), u(d), u(a.nh!), u(a.key ?? 0), u(a.threshold ?? 0), { type: "float32", data: [a.scale ?? 1] }], [T, BH]);
    return outs;
  };
}

// --- AddN -------------------------------------------------------------------------------------------------------------

/** The stock AddN binds all inputs in one shader; past maxStorageBuffersPerShaderStage − 1 (7 on the default device
 * tfjs requests) pipeline creation fails, Dawn only prints a validation error and the sum is silently garbage — which
 * is what gradClipScale's and gradsFinite's tf.addN over every gradient hit. Sum in chunks instead. */
function addNChunked(stock: (args: Args) => Info): (args: Args) => Info {
  return (args) => {
    const max = Math.max(2, (args.backend.device.limits.maxStorageBuffersPerShaderStage as number) - 1);
    let items = Object.values(args.inputs); // AddN's inputs arrive as an array, and the stock kernel wants one
    const temporaries: Info[] = [];
    while (items.length > max) {
      const next: Info[] = [];
      for (let i = 0; i < items.length; i += max) {
        const chunk = items.slice(i, i + max);
        if (chunk.length === 1) { next.push(chunk[0]); continue; }
        const s = stock({ ...args, inputs: chunk as never });
        temporaries.push(s);
        next.push(s);
      }
      items = next;
    }
    const out = stock({ ...args, inputs: items as never });
    for (const t of temporaries) args.backend.disposeData(t.dataId);
    return out;
  };
}

// --- registration -----------------------------------------------------------------------------------------------------

let installed = false;

/** Register the kernels above for "webgpu" (idempotent). Call after `require("@tensorflow/tfjs-backend-webgpu")`. */
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
  reg(ADAMW, adamw);
  reg(DROPOUT, ({ inputs, backend, attrs }) => {
    const a = attrs as Record<string, number>;
    return backend.runWebGPUProgram(dropoutProgram(inputs.x), [inputs.x], "float32",
      [{ type: "uint32", data: [a.key] }, { type: "uint32", data: [a.threshold] }, { type: "float32", data: [a.scale] }]);
  });
  const qkv = ["q", "kT", "v", "mask"];
  reg(ATTENTION, attentionKernel(ATTENTION, ATTENTION_WGSL, qkv, (q) => [q.shape, [q.shape[0], q.shape[1], 2]]));
  reg(ATTENTION_GRAD_Q, attentionKernel(ATTENTION_GRAD_Q, ATTENTION_GRAD_Q_WGSL, [...qkv, "dctx", "stats"], (q) => [q.shape, [q.shape[0], q.shape[1], 3]]));
  reg(ATTENTION_GRAD_KV, attentionKernel(ATTENTION_GRAD_KV, ATTENTION_GRAD_KV_WGSL, [...qkv, "dctx", "rows"], (q) => [[q.shape[0], q.shape[2], q.shape[1]], q.shape]));
  const addN = tf.getKernel("AddN", BACKEND);
  if (addN !== undefined) {
    tf.unregisterKernel("AddN", BACKEND);
    tf.registerKernel({ ...addN, kernelFunc: addNChunked(addN.kernelFunc as unknown as (a: Args) => Info) as never });
  }
  installed = true;
}
