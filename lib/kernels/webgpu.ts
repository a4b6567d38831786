// Kernels the library adds to TensorFlow.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu 4.22), in WGSL:
// - BertqaBiasGelu / BertqaBiasGeluGrad: exact GELU (erf) with an optional bias, one launch each way.
// - BertqaAddLayerNorm, BertqaRowStats, BertqaLayerNormGrad, BertqaLayerNormParamGrad: LayerNorm(x + residual).
// - BertqaColumnSums (and the 64-row block sums before it): sums over rows, for the γ/β gradients and as Sum over
//   leading axes (replaced: the bias gradients' sum(0) without the stock kernel's transposed copy).
// - BertqaAdamW: one AdamW update of one parameter (p, m, v) in one launch; BertqaAdamWMulti: in place, several per launch.
// - BertqaGradNorm: the global gradient norm and clipping coefficient over all gradients, a launch per 15 of them.
// - BertqaDropout: inverted dropout with lib/dropout.ts's counter-based mask, drawn in the shader from the seed (no mask
//   is built on the host, uploaded or saved); its gradient is the same kernel on dy.
// - BertqaAttention, BertqaAttentionGradQ, BertqaAttentionGradKV: dropout(softmax(q·kᵀ/√d + mask))·v per head, one
//   launch forward and two backward (probabilities recomputed from the saved row max and sum, flash-attention style, and
//   the softmax gradient's row term from the saved output, delta = dctx·ctx; the dropout mask redrawn from the seed in
//   each).
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
export const COLUMN_SUMS = "BertqaColumnSums";
export const ADAMW = "BertqaAdamW";
export const ADAMW_MULTI = "BertqaAdamWMulti";
export const GRAD_NORM = "BertqaGradNorm";
export const DROPOUT = "BertqaDropout";
export const ATTENTION = "BertqaAttention";
export const ATTENTION_GRAD_Q = "BertqaAttentionGradQ";
export const ATTENTION_GRAD_KV = "BertqaAttentionGradKV";
/** Longest sequence and widest head of the attention kernels (a thread covers 4 slabs of 32 head columns; T is BERT's
 * 512, which the tests reach, and keeps the dropout's flat index B·nh·T² within u32 for any batch up to 16384 heads). */
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
  tensorMap: Map<object, { values: unknown }>; // values: a host copy, kept by read() beside the GPU buffer
  runWebGPUProgram(program: Program, inputs: Info[], dtype: tf.DataType, uniforms?: Uniform[]): Info;
  makeTensorInfo(shape: number[], dtype: tf.DataType): Info;
  uploadToGPU(dataId: object): void;
  tensorToBinding(t: Info): Gpu;
  makeUniforms(u: Uniform[]): Gpu;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  disposeData(dataId: object): boolean;
  // Profiling (tf.profile): programs push {name, query} here while a timer is active; one timestamp query set.
  activeTimers: { name: string; query: Promise<number> }[] | null;
  supportTimestampQuery: boolean;
  querySet: Gpu;
  querySetCount: number;
  getQueryTime(): Promise<number>;
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

/** [⌈rows/64⌉, 2·cols]: per block of 64 rows, the column sums of dy·x̂ (dγ) and dy (dβ); BertqaColumnSums finishes them
 * into dγ and dβ. */
function layerNormParamGradProgram(x: Info): Program {
  return blockSumsProgram(x, ["X", "R", "Dy", "Stats"], ["Dy[i] * ((X[i] + R[i] - Stats[r * 2u]) * Stats[r * 2u + 1u])", "Dy[i]"], "bertqa_layer_norm_param_grad");
}

// --- column sums ------------------------------------------------------------------------------------------------------

// Sums over the rows of [rows, cols]: the γ/β gradients above, and tf.sum over leading axes (every bias gradient's
// sum(0)). The stock Sum over axis 0 transposes the whole matrix first (a copy the size of the activation, up to
// 151 MB for BERT-base's FFN at 32 × 384) and reduces that, two launches, and the [blocks, 2C] γ/β partials took a sum
// and two slices more. A single pass over all rows in a workgroup per column strip would leave most of a large GPU
// idle, so long matrices go in two: partial sums of 64-row blocks, one thread per column and block, then the blocks.
const SUM_BLOCK = 64;
/** Rows up to which BertqaColumnSums alone is used (each thread adds ≤ 64 numbers); above, block sums first. */
export const COLUMN_SUMS_ROWS = 256;

/** [⌈rows/64⌉, terms·cols]: for each block of 64 rows of X [rows, cols] and each term (a WGSL expression of element
 * i = r·cols + c of row r), the column sums; term k of column c is output column k·cols + c. */
function blockSumsProgram(x: Info, variableNames: string[], terms: string[], shaderKey: string): Program {
  const [rows, cols] = x.shape;
  const blocks = Math.ceil(rows / SUM_BLOCK);
  return {
    variableNames, outputShape: [blocks, terms.length * cols], shaderKey,
    dispatchLayout: { x: [1], y: [0] }, dispatch: [Math.ceil(cols / 64), blocks, 1], workgroupSize: [64, 1, 1],
    getUserCode: () => `
fn main() {
  let rows = u32(uniforms.xShape.x);
  let cols = u32(uniforms.xShape.y);
  let c = globalId.x;
  let block = workgroupId.y;
  if (c >= cols) { return; }
${terms.map((_, k) => `  var s${k} = 0.0;`).join("\n")}
  let end = min(rows, (block + 1u) * ${SUM_BLOCK}u);
  for (var r = block * ${SUM_BLOCK}u; r < end; r++) {
    let i = r * cols + c;
${terms.map((t, k) => `    s${k} += ${t};`).join("\n")}
  }
${terms.map((_, k) => `  result[block * ${terms.length}u * cols + ${k}u * cols + c] = s${k};`).join("\n")}
}`,
  };
}

/** The column sums of X [rows, parts·cols] as `parts` tensors [cols] (output k gets columns k·cols …). 256 threads per
 * workgroup: 64 adjacent columns (coalesced reads) × 4 lanes that take every fourth row, added in a fixed order. */
const columnSumsWgsl = (parts: number) => `
struct U { rows : u32, cols : u32 };
${Array.from({ length: parts }, (_, k) => `@group(0) @binding(${k}) var<storage, read_write> Out${k} : array<f32>;`).join("\n")}
@group(0) @binding(${parts}) var<storage, read> X : array<f32>;
@group(0) @binding(${parts + 1}) var<uniform> u : U;
var<workgroup> red : array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let width = u.cols * ${parts}u;
  let c = wid.x * 64u + tid % 64u;
  let lane = tid / 64u;
  var s = 0.0;
  if (c < width) {
    for (var r = lane; r < u.rows; r += 4u) { s += X[r * width + c]; }
  }
  red[tid] = s;
  workgroupBarrier();
  if (lane == 0u && c < width) {
    let total = (red[tid] + red[tid + 64u]) + (red[tid + 128u] + red[tid + 192u]);
    let col = c % u.cols;
${Array.from({ length: parts }, (_, k) => `    ${k > 0 ? "else " : ""}if (c / u.cols == ${k}u) { Out${k}[col] = total; }`).join("\n")}
  }
}`;

/** Input x [rows, parts·cols], attr parts (default 1): `parts` outputs [cols], the column sums. */
function columnSums({ inputs, backend, attrs }: Args): Info[] {
  const x = inputs.x, [rows, width] = x.shape, parts = (attrs.parts as number | undefined) ?? 1, cols = width / parts;
  const outs = Array.from({ length: parts }, () => backend.makeTensorInfo([cols], "float32"));
  const u = (v: number): Uniform => ({ type: "uint32", data: [v] });
  record(backend, `${COLUMN_SUMS}_${parts}`, columnSumsWgsl(parts), [...outs, x], [u(rows), u(cols)], [Math.ceil(width / 64), 1]);
  return outs;
}

/** tf.sum of float32 x over its leading axes (bias gradients) as the rows of [rows, cols] added up: one launch of
 * BertqaColumnSums up to 256 rows, block sums first above (the wasm backend's twin is lib/kernels/wasm-extra.ts's
 * leadingSum); undefined: not that case, or BERTQA_FUSED=0 (tfjs's kernels only). */
function leadingSum({ inputs, backend, attrs }: Args): Info | undefined {
  const x = inputs.x;
  if (x.dtype !== "float32" || x.shape.length < 2 || process.env.BERTQA_FUSED === "0") return undefined;
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape).sort((a, b) => a - b);
  if (axes.length >= x.shape.length || axes.some((a, i) => a !== i)) return undefined;
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const rows = size(x.shape.slice(0, axes.length)), cols = size(x.shape.slice(axes.length));
  if (rows === 0 || cols === 0 || Math.max(rows, cols) > SUM_BLOCK * 65535) return undefined; // 64-wide strips, blocks per dispatch
  const matrix = { ...x, shape: [rows, cols] }; // a view, as the backend's reshape makes
  const blocks = rows > COLUMN_SUMS_ROWS ? backend.runWebGPUProgram(blockSumsProgram(matrix, ["X"], ["X[i]"], "bertqa_block_sums"), [matrix], "float32") : matrix;
  const [sum] = columnSums({ inputs: { x: blocks }, backend, attrs: { parts: 1 } });
  if (blocks !== matrix) backend.disposeData(blocks.dataId);
  return { ...sum, shape: attrs.keepDims === true ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length) };
}

// --- AdamW ------------------------------------------------------------------------------------------------------------

// torch.optim.AdamW's single-tensor step, in optim.ts's operation order: the composite costs ~13 launches and 13
// full-size temporaries per parameter; this reads p, m, v, g once and writes p', m', v' once. Gradient clipping is
// folded in (g·gradScale, the coefficient read from a 1-element buffer that gradClipScale wrote on the device), so no
// clipped copy of the gradients is ever stored and the host never reads the norm. Without clipping, g as it is.
// Two forms: BertqaAdamW, one parameter into three new tensors (what the wasm backend has too), and BertqaAdamWMulti,
// in place over many parameters, several per launch (below).
const HYPER = "beta1 : f32, oneMinusBeta1 : f32, beta2 : f32, oneMinusBeta2 : f32, bc2Sqrt : f32, eps : f32, stepSize : f32";
/** The update of element i, reading P, M, V, G and writing pOut, mOut, vOut (the same arrays when in place). */
const adamwElement = (scaled: boolean, [P, M, V, G]: string[], [pOut, mOut, vOut]: string[], decay: string) => `
    let g = ${G}[i]${scaled ? " * gradScale[0]" : ""}; // clip_grad_norm_'s scaling, the same f32 multiply as the composite's tf.mul
    let m1 = ${M}[i] * h.beta1 + g * h.oneMinusBeta1;
    let v1 = ${V}[i] * h.beta2 + (g * g) * h.oneMinusBeta2;
    let denom = sqrt(v1) / h.bc2Sqrt + h.eps;
    ${pOut}[i] = ${P}[i] * ${decay} - (m1 / denom) * h.stepSize;
    ${mOut}[i] = m1;
    ${vOut}[i] = v1;`;
const adamwWgsl = (scaled: boolean) => `
struct Hyper { n : u32, rowStride : u32, decayFactor : f32, ${HYPER} };
@group(0) @binding(0) var<storage, read_write> pOut : array<f32>;
@group(0) @binding(1) var<storage, read_write> mOut : array<f32>;
@group(0) @binding(2) var<storage, read_write> vOut : array<f32>;
@group(0) @binding(3) var<storage, read> P : array<f32>;
@group(0) @binding(4) var<storage, read> M : array<f32>;
@group(0) @binding(5) var<storage, read> V : array<f32>;
@group(0) @binding(6) var<storage, read> G : array<f32>;
${scaled ? "@group(0) @binding(7) var<storage, read> gradScale : array<f32>;" : ""}
@group(0) @binding(${scaled ? 8 : 7}) var<uniform> h : Hyper;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  let i = (wid.y * h.rowStride + wid.x) * 256u + lid;
  if (i >= h.n) { return; }${adamwElement(scaled, ["P", "M", "V", "G"], ["pOut", "mOut", "vOut"], "h.decayFactor")}
}`;
const [ADAMW_WGSL, ADAMW_SCALED_WGSL] = [adamwWgsl(false), adamwWgsl(true)];

type AdamWAttrs = { beta1: number; beta2: number; eps: number; stepSize: number; bc2Sqrt: number };
const hyperUniforms = (a: AdamWAttrs): Uniform[] => [a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.bc2Sqrt, a.eps, a.stepSize].map((x) => ({ type: "float32", data: [x] }));

/** Inputs p, m, v, g (float32, same shape) and optionally gradScale (a float32 scalar); attrs the lr-derived
 * constants; outputs [p', m', v'] in one dispatch. */
function adamw({ inputs, backend, attrs }: Args): Info[] {
  const { p, m, v, g, gradScale } = inputs;
  const n = p.shape.reduce((a, b) => a * b, 1);
  const outs = [0, 1, 2].map(() => backend.makeTensorInfo(p.shape.slice(), "float32"));
  if (n === 0) return outs;
  const dispatch = grid(backend, Math.ceil(n / 256));
  const a = attrs as AdamWAttrs & { lr: number; weightDecay: number };
  const [label, wgsl, tensors] = gradScale === undefined ? [ADAMW, ADAMW_WGSL, [...outs, p, m, v, g]] : [`${ADAMW}Scaled`, ADAMW_SCALED_WGSL, [...outs, p, m, v, g, gradScale]];
  record(backend, label, wgsl, tensors, [{ type: "uint32", data: [n] }, { type: "uint32", data: [dispatch[0]] }, { type: "float32", data: [1 - a.lr * a.weightDecay] }, ...hyperUniforms(a)], dispatch);
  return outs;
}

// BertqaAdamWMulti: the same arithmetic over k parameters per launch, in place: p, m, v are bound read_write and
// overwritten, so a parameter costs 4 bindings and no new tensors, and a launch takes ⌊(limit − 1)/4⌋ parameters (3
// with the 16 storage buffers backend.ts asks for; 1 on a default device). Workgroups are dealt out to the parameters
// in order, ⌈n/256⌉ each, as gradNorm deals chunks. lib/fused.ts passes only parameters whose buffers no other tensor
// shares (refCount 1), since a write in place would change that tensor too.
const adamwMultiWgsl = (k: number, scaled: boolean) => {
  const slots = Array.from({ length: k }, (_, j) => j);
  return `
struct Hyper { groups : u32, rowStride : u32, ${HYPER}, ${slots.map((j) => `n${j} : u32, start${j} : u32, decay${j} : f32`).join(", ")} };
${slots.map((j) => ["P", "M", "V"].map((x, r) => `@group(0) @binding(${4 * j + r}) var<storage, read_write> ${x}${j} : array<f32>;`).join("\n") +
    `\n@group(0) @binding(${4 * j + 3}) var<storage, read> G${j} : array<f32>;`).join("\n")}
${scaled ? `@group(0) @binding(${4 * k}) var<storage, read> gradScale : array<f32>;` : ""}
@group(0) @binding(${4 * k + (scaled ? 1 : 0)}) var<uniform> h : Hyper;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  let w = wid.y * h.rowStride + wid.x;
  if (w >= h.groups) { return; }
  ${slots.map((j) => `${j > 0 ? "else " : ""}if (w < h.start${j} + (h.n${j} + 255u) / 256u) {
    let i = (w - h.start${j}) * 256u + lid;
    if (i >= h.n${j}) { return; }${adamwElement(scaled, [`P${j}`, `M${j}`, `V${j}`, `G${j}`], [`P${j}`, `M${j}`, `V${j}`], `h.decay${j}`)}
  }`).join(" ")}
}`;
};

/** Inputs p0, m0, v0, g0, p1, … (float32, non-empty, each quadruple one shape) and optionally gradScale; attrs the
 * shared constants and decayFactors (1 − lr·wd per parameter). Updates every p, m, v in place; no outputs. */
function adamwMulti({ inputs, backend, attrs }: Args): Info[] {
  const a = attrs as AdamWAttrs & { decayFactors: number[] };
  const count = a.decayFactors.length, scaled = inputs.gradScale !== undefined;
  const per = Math.max(1, Math.floor(((backend.device.limits.maxStorageBuffersPerShaderStage as number) - (scaled ? 1 : 0)) / 4));
  const u = (type: Uniform["type"], x: number): Uniform => ({ type, data: [x] });
  for (let first = 0; first < count; first += per) {
    const slots = Array.from({ length: Math.min(per, count - first) }, (_, j) => first + j);
    const tensors = slots.flatMap((i) => ["p", "m", "v", "g"].map((x) => inputs[`${x}${i}`]));
    const sizes = slots.map((i) => inputs[`p${i}`].shape.reduce((x, y) => x * y, 1));
    const { starts, groups } = deal(sizes.map((n) => Math.ceil(n / 256)));
    const dispatch = grid(backend, groups);
    record(backend, `${ADAMW_MULTI}${slots.length}${scaled ? "Scaled" : ""}`, adamwMultiWgsl(slots.length, scaled), scaled ? [...tensors, inputs.gradScale] : tensors,
      [u("uint32", groups), u("uint32", dispatch[0]), ...hyperUniforms(a), ...slots.flatMap((i, j) => [u("uint32", sizes[j]), u("uint32", starts[j]), u("float32", a.decayFactors[i])])], dispatch);
  }
  wroteInPlace(backend, Array.from({ length: count }, (_, i) => ["p", "m", "v"].map((x) => inputs[`${x}${i}`])).flat());
  return [];
}

/** Workgroups dealt out to the tensors of one launch in order, counts[j] to the j-th: where each one's run starts
 * (the shader's start uniforms) and how many in all. */
function deal(counts: number[]): { starts: number[]; groups: number } {
  const starts: number[] = [];
  let groups = 0;
  for (const c of counts) { starts.push(groups); groups += c; }
  return { starts, groups };
}

/** A dispatch of `groups` workgroups as [x, y], y > 1 only past the device's per-dimension limit; the shader finds
 * its workgroup as wid.y·x + wid.x and returns past `groups`. */
function grid(backend: WebgpuBackend, groups: number): [number, number] {
  const maxX = backend.device.limits.maxComputeWorkgroupsPerDimension as number;
  return groups <= maxX ? [groups, 1] : [maxX, Math.ceil(groups / maxX)];
}

// --- gradient norm ----------------------------------------------------------------------------------------------------

// clip_grad_norm_'s first half over every gradient at once: the composite costs a Square and a Sum per gradient (plus a
// full-size square each) and 5 launches to finish; this is one launch per maxStorageBuffersPerShaderStage − 1 gradients
// (15 on the device backend.ts asks for, 7 by default) and one to finish. Each workgroup sums the squares of one
// NORM_CHUNK-element chunk of one gradient into a partial; the last launch adds the partials in a fixed order (the
// result does not depend on scheduling), then norm = √total and scale = min(1, maxNorm / (norm + 1e-6)) in float32,
// torch's expression.
const NORM_CHUNK = 4096; // 256 threads × 16 elements: ~27k partials for BERT-base's 110M parameters
const sumSquaresWgsl = (k: number) => {
  const slots = Array.from({ length: k }, (_, j) => j);
  return `
struct U { base : u32, groups : u32, rowStride : u32, ${slots.map((j) => `n${j} : u32, start${j} : u32`).join(", ")} };
@group(0) @binding(0) var<storage, read_write> Partials : array<f32>;
${slots.map((j) => `@group(0) @binding(${j + 1}) var<storage, read> X${j} : array<f32>;`).join("\n")}
@group(0) @binding(${k + 1}) var<uniform> u : U;
${sumDecl(256)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  let w = wid.y * u.rowStride + wid.x;
  if (w >= u.groups) { return; }
  var acc = 0.0;
  ${slots.map((j) => `${j > 0 ? "else " : ""}if (w < u.start${j} + (u.n${j} + ${NORM_CHUNK - 1}u) / ${NORM_CHUNK}u) {
    let first = (w - u.start${j}) * ${NORM_CHUNK}u;
    for (var r = 0u; r < ${NORM_CHUNK / 256}u; r++) {
      let i = first + r * 256u + lid;
      if (i < u.n${j}) { let x = X${j}[i]; acc = acc + x * x; }
    }
  }`).join(" ")}
  let total = workgroupSum(acc, lid);
  if (lid == 0u) { Partials[u.base + w] = total; }
}`;
};
const NORM_FINISH_WGSL = `
struct U { count : u32, maxNorm : f32 };
@group(0) @binding(0) var<storage, read_write> Norm : array<f32>;
@group(0) @binding(1) var<storage, read_write> Scale : array<f32>;
@group(0) @binding(2) var<storage, read> Partials : array<f32>;
@group(0) @binding(3) var<uniform> u : U;
${sumDecl(256)}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid : u32) {
  var acc = 0.0;
  for (var i = lid; i < u.count; i = i + 256u) { acc = acc + Partials[i]; }
  let norm = sqrt(workgroupSum(acc, lid));
  if (lid == 0u) {
    Norm[0] = norm;
    Scale[0] = min(u.maxNorm / (norm + 1e-6), 1.0); // torch: clamp(max_norm / (total_norm + 1e-6), max=1.0)
  }
}`;

/** Inputs: the gradients (float32, any shapes, as AddN takes them); attr maxNorm; outputs [totalNorm, scale], scalars. */
function gradNorm({ inputs, backend, attrs }: Args): Info[] {
  const size = (x: Info) => x.shape.reduce((a, b) => a * b, 1);
  const xs = Object.values(inputs).filter((x) => size(x) > 0); // nothing to add, and an empty buffer cannot be bound
  const per = Math.max(1, (backend.device.limits.maxStorageBuffersPerShaderStage as number) - 1);
  const sizes = xs.map(size), chunks = sizes.map((n) => Math.ceil(n / NORM_CHUNK));
  const count = chunks.reduce((a, b) => a + b, 0);
  const partials = backend.makeTensorInfo([Math.max(1, count)], "float32");
  const u = (x: number): Uniform => ({ type: "uint32", data: [x] });
  for (let i = 0, base = 0; i < xs.length; i += per) {
    const group = xs.slice(i, i + per), { starts, groups } = deal(chunks.slice(i, i + per));
    const dispatch = grid(backend, groups);
    record(backend, `${GRAD_NORM}SumSquares${group.length}`, sumSquaresWgsl(group.length), [partials, ...group],
      [u(base), u(groups), u(dispatch[0]), ...group.flatMap((_, j) => [u(sizes[i + j]), u(starts[j])])], dispatch);
    base += groups;
  }
  const outs = [backend.makeTensorInfo([], "float32"), backend.makeTensorInfo([], "float32")];
  record(backend, `${GRAD_NORM}Finish`, NORM_FINISH_WGSL, [...outs, partials], [u(count), { type: "float32", data: [attrs.maxNorm as number] }], [1, 1]);
  backend.disposeData(partials.dataId);
  return outs;
}

const pipelines = new WeakMap<object, Map<string, Gpu>>(); // device → label → compute pipeline

/** After a kernel wrote `tensors` in place: drop the host copies that reading them back left beside their GPU buffers
 * (read() keeps one and returns it from then on), which are now stale. A checkpoint read every parameter between two
 * updates, and the model saved at the end was the checkpoint's. */
function wroteInPlace(backend: WebgpuBackend, tensors: Info[]): void {
  for (const t of tensors) backend.tensorMap.get(t.dataId)!.values = null;
}

/** Record one dispatch of `wgsl` (entry point main; bindings 0.. = `tensors` in order, outputs first, then one
 * uniform buffer) into the backend's command stream exactly as backend.recordAndSubmit records its programs, so
 * ordering with other kernels is kept. For kernels with more than one output, which WebGPUProgram cannot express. */
export function record(backend: WebgpuBackend, label: string, wgsl: string, tensors: Info[], uniforms: Uniform[], dispatch: [number, number]): void {
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
  // Under tf.profile with timestamp queries, a pass of its own with GPU timestamps, as the backend times its programs.
  const timed = backend.activeTimers != null && backend.supportTimestampQuery;
  if (timed) {
    backend.endComputePassEncoder();
    backend.querySet ??= device.createQuerySet({ type: "timestamp", count: backend.querySetCount });
    backend.computePassEncoder = backend.commandEncoder.beginComputePass({ timestampWrites: { querySet: backend.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
  } else if (!backend.computePassEncoder) backend.computePassEncoder = backend.commandEncoder.beginComputePass({});
  backend.computePassEncoder.setPipeline(pipeline);
  backend.computePassEncoder.setBindGroup(0, bindGroup);
  backend.computePassEncoder.dispatchWorkgroups(dispatch[0], dispatch[1], 1);
  backend.dispatchCountInPass++;
  if (timed) {
    backend.endComputePassEncoder();
    backend.activeTimers!.push({ name: label, query: backend.getQueryTime() });
  } else if (tf.env().getNumber("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") <= backend.dispatchCountInPass) {
    backend.endComputePassEncoder();
    backend.submitQueue();
  }
}

// --- attention --------------------------------------------------------------------------------------------------------

// Per head (bh < B·nh, b = bh / nh, h = bh % nh) with q, k, v [B, T, H] as the dense layers make them (head h is
// columns h·d … h·d + d − 1: the kernels read and write that layout, so no transposes to and from [B·nh, T, d] around
// them) and mask [B,1,1,T] (additive: 0 or float32 min): s = q·kᵀ·qk + mask (qk = 1/√d, applied to each finished dot
// product, and to dq and dk as they are written), p = softmax(s) by rows, ctx = (p∘D)·v with D the dropout factors (0
// or 1/(1 − rate)) of lib/dropout.ts's mask at the flat index (bh·T + i)·T + j of the composite's [B, nh, T, T] probs;
// threshold 0 and scale 1 (rate 0) keep every p as it is. Values follow the composite's operation order as far as the
// tiling allows (dS = dP∘p − rowsum(dP∘p)·p, dP = (dctx·vᵀ)∘D, every dot product summed in index order), so they stay
// within float32 rounding of it; the forward's softmax is online (exp(s − running max), rescaled as the max grows,
// divided by the sum at the end). The row max and sum saved for the backward pass are those of the undropped softmax.
// Tiling (FlashAttention-2's structure): 256 threads per workgroup, dispatch [⌈T/64⌉, B·nh]; a workgroup takes a block
// of ATTN_BLOCK = 64 query rows (forward, GradQ) or keys (GradKV) of one head and walks the other side in tiles staged
// in workgroup memory (≤ 16 KB, WebGPU's default limit), so k, v (or q, dctx) are read once per block, not per row.
// Global reads per head in units of T·d: forward T/32 + T/32 (24 at T = 384; it was 2T + 1 = 769 with a workgroup per
// row), GradQ T/16 + 3T/64 + 2 (44; was 3T + 2, then 78 with a second key pass for delta), GradKV T/16 + 2 (26; was
// 4T + 2). GradQ's delta = dctx·ctx (FlashAttention-2) from the saved output costs H floats per token per layer.
const ATTN_BLOCK = 64;
const attentionHeader = (outs: string[], ins: string[], decls: string) => `
struct Dims { T : u32, d : u32, nh : u32, key : u32, threshold : u32, scale : f32, qk : f32 };
${outs.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n} : array<f32>;`).join("\n")}
${ins.map((n, i) => `@group(0) @binding(${outs.length + i}) var<storage, read> ${n} : array<f32>;`).join("\n")}
@group(0) @binding(${outs.length + ins.length}) var<uniform> u : Dims;
const WG = 256u;
const LOWEST = bitcast<f32>(0xff7fffffu); // -FLT_MAX
${DROPOUT_WGSL}
fn dropScale(i : u32) -> f32 { return select(0.0, u.scale, dropoutKeep(u.key, u.threshold, i)); } // D at flat index i
${decls}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let T = u.T;
  let d = u.d;
  let H = u.nh * d;
  let bh = wid.y;
  let mBase = (bh / u.nh) * T;
  let base = (bh / u.nh) * T * H + (bh % u.nh) * d; // (row i, column c) of this head in q, k, v, ctx and their
  // gradients is at base + i·H + c
  let ox = tid & 31u; // [64, d] outputs: rows oy + 8m (m < 8), columns ox + 32k (k < 4, ox + 32k < d)
  let oy = tid >> 5u;`;

/** [ctx, stats]: ctx [B, T, H]; stats [B·nh, T, 3] = each score row's max and sum of exp (for the backward pass)
 * and a third column left unwritten, which GradQ fills with delta in place (see ATTENTION_GRAD_Q_WGSL).
 * Per key tile of 32: scores s = q·kᵀ (q and kᵀ staged in chunks of 16 columns; thread (sr, sx) holds s[sr][8sx..8sx+7]),
 * online softmax (row max m, sum l of exp(s − m), ctx accumulator rescaled by exp(m_old − m_new)), exp(s − m)·D to
 * `ps`, then ctx += ps·v with v staged by rows; ctx / l at the end. Workgroup memory 16192 bytes. */
const ATTENTION_WGSL = `${attentionHeader(["Ctx", "Stats"], ["Q", "K", "V", "M"], `
const BR = 64u; // query rows per workgroup
const BC = 32u; // keys per tile
const DC = 16u; // columns per staged chunk of q and kᵀ
const KS = 1088u; // stage: q chunk [BR][DC + 1] at 0, kᵀ chunk [DC][BC + 1] at KS; then v rows [jn][d] at 0
const PSTR = 33u;
var<workgroup> stage : array<f32, 1616>;
var<workgroup> ps : array<f32, 2112>; // [BR][PSTR]: exp(s − m)·D of the current tile
var<workgroup> red : array<f32, 256>;
var<workgroup> rowf : array<f32, 64>; // per row: the tile's rescale factor, at the end l`)}
  let sr = tid >> 2u; // scores: row sr, keys 8sx + k (k < 8) of the tile
  let sx = tid & 3u;
  let i0 = wid.x * BR;
  let si = i0 + sr;
  let sRow = bh * T + si;
  let jn = min(BC, 1024u / d); // v rows per staged chunk
  var acc = array<f32, 32>(); // ctx[i0 + oy + 8m][ox + 32k] at m * 4 + k
  var mRow = LOWEST;
  var lRow = 0.0;
  for (var j0 = 0u; j0 < T; j0 += BC) {
    var s = array<f32, 8>();
    for (var c0 = 0u; c0 < d; c0 += DC) {
      workgroupBarrier();
      for (var e = tid; e < BR * DC; e += WG) {
        let i = i0 + e / DC;
        let c = c0 + e % DC;
        var x = 0.0;
        if (i < T && c < d) { x = Q[base + i * H + c]; }
        stage[(e / DC) * (DC + 1u) + e % DC] = x;
      }
      for (var e = tid; e < DC * BC; e += WG) { // read along k's rows, stored transposed
        let c = c0 + e % DC;
        let j = j0 + e / DC;
        var x = 0.0;
        if (c < d && j < T) { x = K[base + j * H + c]; }
        stage[KS + (e % DC) * (BC + 1u) + e / DC] = x;
      }
      workgroupBarrier();
      for (var cc = 0u; cc < min(DC, d - c0); cc++) { // not cc < DC: unrolled, lavapipe took ~75 s (not ~20) to compile the 3
        let qv = stage[sr * (DC + 1u) + cc];
        for (var k = 0u; k < 8u; k++) { s[k] += qv * stage[KS + cc * (BC + 1u) + 8u * sx + k]; }
      }
    }
    var tmax = LOWEST;
    for (var k = 0u; k < 8u; k++) {
      let j = j0 + 8u * sx + k;
      if (j < T) { s[k] = s[k] * u.qk + M[mBase + j]; tmax = max(tmax, s[k]); }
    }
    red[tid] = tmax;
    workgroupBarrier();
    let mNew = max(mRow, max(max(red[sr * 4u], red[sr * 4u + 1u]), max(red[sr * 4u + 2u], red[sr * 4u + 3u])));
    let alpha = exp(mRow - mNew);
    var tsum = 0.0;
    for (var k = 0u; k < 8u; k++) {
      let j = j0 + 8u * sx + k;
      var ex = 0.0;
      var pd = 0.0;
      if (j < T) { ex = exp(s[k] - mNew); pd = ex * dropScale(sRow * T + j); }
      tsum += ex;
      ps[sr * PSTR + 8u * sx + k] = pd;
    }
    workgroupBarrier();
    red[tid] = tsum;
    if (sx == 0u) { rowf[sr] = alpha; }
    workgroupBarrier();
    lRow = lRow * alpha + ((red[sr * 4u] + red[sr * 4u + 1u]) + (red[sr * 4u + 2u] + red[sr * 4u + 3u]));
    mRow = mNew;
    for (var m = 0u; m < 8u; m++) {
      let a = rowf[oy + 8u * m];
      for (var k = 0u; k < 4u; k++) { acc[m * 4u + k] *= a; }
    }
    for (var jc = 0u; jc < BC; jc += jn) {
      let n = min(jn, BC - jc);
      workgroupBarrier();
      for (var e = tid; e < n * d; e += WG) {
        let j = j0 + jc + e / d;
        var x = 0.0;
        if (j < T) { x = V[base + j * H + e % d]; }
        stage[e] = x;
      }
      workgroupBarrier();
      for (var jj = 0u; jj < n; jj++) {
        var pr = array<f32, 8>();
        for (var m = 0u; m < 8u; m++) { pr[m] = ps[(oy + 8u * m) * PSTR + jc + jj]; }
        for (var k = 0u; k < 4u; k++) {
          let c = ox + 32u * k;
          if (c < d) {
            let vv = stage[jj * d + c];
            for (var m = 0u; m < 8u; m++) { acc[m * 4u + k] += pr[m] * vv; }
          }
        }
      }
    }
  }
  if (sx == 0u) {
    rowf[sr] = lRow;
    if (si < T) { Stats[sRow * 3u] = mRow; Stats[sRow * 3u + 1u] = lRow; }
  }
  workgroupBarrier();
  for (var m = 0u; m < 8u; m++) {
    let i = i0 + oy + 8u * m;
    let l = rowf[oy + 8u * m];
    for (var k = 0u; k < 4u; k++) {
      let c = ox + 32u * k;
      if (i < T && c < d) { Ctx[base + i * H + c] = acc[m * 4u + k] / l; }
    }
  }
}`;


// The two gradient kernels' staging of one chunk of DC columns (c0 …) of n rows (rows past T and columns past d read as
// zero), read along the rows of the [B, T, H] inputs: q and dctx as [n][DC + 1] at qAt and oAt; k transposed,
// [DC][n + 1] at kAt, and v as [n][DC + 1] at vAt. The +1 strides keep the transposed stores off a single bank.
const GRAD_STAGING = `
fn stageQO(base : u32, i0 : u32, n : u32, c0 : u32, qAt : u32, oAt : u32, tid : u32) {
  for (var e = tid; e < n * DC; e += WG) {
    let i = i0 + e / DC;
    let c = c0 + e % DC;
    var x = 0.0;
    var y = 0.0;
    if (i < u.T && c < u.d) { x = Q[base + i * u.nh * u.d + c]; y = DO[base + i * u.nh * u.d + c]; }
    let at = (e / DC) * (DC + 1u) + e % DC;
    stage[qAt + at] = x;
    stage[oAt + at] = y;
  }
}
fn stageKV(base : u32, j0 : u32, n : u32, c0 : u32, kAt : u32, vAt : u32, tid : u32) {
  for (var e = tid; e < n * DC; e += WG) {
    let j = j0 + e / DC;
    let c = c0 + e % DC;
    var x = 0.0;
    var y = 0.0;
    if (j < u.T && c < u.d) { x = K[base + j * u.nh * u.d + c]; y = V[base + j * u.nh * u.d + c]; }
    stage[kAt + (e % DC) * (n + 1u) + e / DC] = x;
    stage[vAt + (e / DC) * (DC + 1u) + e % DC] = y;
  }
}`;

/** [dq]: dq = dS·k·qk [B, T, H], and the forward's stats [B·nh, T, 3] completed in place to rows = (max, sum, delta) for
 * GradKV. delta = rowsum(dP∘p) = dctx·ctx per row (FlashAttention-2's identity, ctx = (p∘D)·v; equal up to rounding),
 * one T·d pass at the start; then one pass over key tiles of 32 (the forward's score mapping, q, dctx, kᵀ, v staged in
 * chunks of 8 columns) writes dS = dP∘p − delta·p to `ps` and adds dS·k (kᵀ staged) into dq. Bindings: DQ, Rows
 * (stats, read_write) + Q, K, V, M, DO, Ctx = 8 storage buffers, maxStorageBuffersPerShaderStage's default (a separate
 * rows output would make 9). Workgroup memory 15264 bytes. */
const ATTENTION_GRAD_Q_WGSL = `${attentionHeader(["DQ", "Rows"], ["Q", "K", "V", "M", "DO", "Ctx"], `
const BR = 64u; // query rows per workgroup
const BC = 32u; // keys per tile
const DC = 8u; // columns per staged chunk
const OS = 576u; // stage: q chunk [BR][DC + 1] at 0, dctx chunk at OS, kᵀ chunk [DC][BC + 1] at KS, v chunk [BC][DC + 1] at VS;
const KS = 1152u; // then kᵀ [d][n + 1] at 0
const VS = 1416u;
const PSTR = 33u;
var<workgroup> stage : array<f32, 1704>;
var<workgroup> ps : array<f32, 2112>; // [BR][PSTR]: dS of the current tile
${GRAD_STAGING}`)}
  let sr = tid >> 2u;
  let sx = tid & 3u;
  let i0 = wid.x * BR;
  let si = i0 + sr;
  let sRow = bh * T + si;
  var mStat = 0.0;
  var lStat = 1.0;
  var part = 0.0; // delta's columns sx + 4n of row si
  if (si < T) {
    mStat = Rows[sRow * 3u];
    lStat = Rows[sRow * 3u + 1u];
    for (var c = sx; c < d; c += 4u) { part += DO[base + si * H + c] * Ctx[base + si * H + c]; }
  }
  ps[tid] = part;
  workgroupBarrier();
  let delta = (ps[sr * 4u] + ps[sr * 4u + 1u]) + (ps[sr * 4u + 2u] + ps[sr * 4u + 3u]);
  let jn = min(BC, 1024u / d); // keys per staged chunk of kᵀ
  var acc = array<f32, 32>(); // dq[i0 + oy + 8m][ox + 32k] at m * 4 + k
  for (var j0 = 0u; j0 < T; j0 += BC) {
    // Scores of key tile j0, recomputed from the saved row max and sum: p = exp(q·kᵀ/√d + mask − m) / l and
    // gp = dP∘p = (dctx·vᵀ)·D·p for row si, keys j0 + 8sx + k (k < 8), zero outside [0, T)².
    var s = array<f32, 8>();
    var g = array<f32, 8>();
    for (var c0 = 0u; c0 < d; c0 += DC) {
      workgroupBarrier();
      stageQO(base, i0, BR, c0, 0u, OS, tid);
      stageKV(base, j0, BC, c0, KS, VS, tid);
      workgroupBarrier();
      for (var cc = 0u; cc < min(DC, d - c0); cc++) {
        let qv = stage[sr * (DC + 1u) + cc];
        let ov = stage[OS + sr * (DC + 1u) + cc];
        for (var k = 0u; k < 8u; k++) {
          s[k] += qv * stage[KS + cc * (BC + 1u) + 8u * sx + k];
          g[k] += ov * stage[VS + (8u * sx + k) * (DC + 1u) + cc];
        }
      }
    }
    var p = array<f32, 8>();
    var gp = array<f32, 8>();
    for (var k = 0u; k < 8u; k++) {
      let j = j0 + 8u * sx + k;
      if (si < T && j < T) {
        let sv = s[k] * u.qk + M[mBase + j];
        p[k] = exp(sv - mStat) / lStat;
        gp[k] = g[k] * dropScale(sRow * T + j) * p[k];
      }
    }
    for (var k = 0u; k < 8u; k++) { ps[sr * PSTR + 8u * sx + k] = gp[k] - delta * p[k]; } // dS
    for (var jc = 0u; jc < BC; jc += jn) {
      let n = min(jn, BC - jc);
      workgroupBarrier();
      for (var e = tid; e < n * d; e += WG) {
        let jj = e / d;
        let c = e % d;
        var x = 0.0;
        if (j0 + jc + jj < T) { x = K[base + (j0 + jc + jj) * H + c]; }
        stage[c * (n + 1u) + jj] = x;
      }
      workgroupBarrier();
      for (var jj = 0u; jj < n; jj++) {
        var pr = array<f32, 8>();
        for (var m = 0u; m < 8u; m++) { pr[m] = ps[(oy + 8u * m) * PSTR + jc + jj]; }
        for (var k = 0u; k < 4u; k++) {
          let c = ox + 32u * k;
          if (c < d) {
            let kv = stage[c * (n + 1u) + jj];
            for (var m = 0u; m < 8u; m++) { acc[m * 4u + k] += pr[m] * kv; }
          }
        }
      }
    }
  }
  if (sx == 0u && si < T) { Rows[sRow * 3u + 2u] = delta; }
  for (var m = 0u; m < 8u; m++) {
    let i = i0 + oy + 8u * m;
    for (var k = 0u; k < 4u; k++) {
      let c = ox + 32u * k;
      if (i < T && c < d) { DQ[base + i * H + c] = acc[m * 4u + k] * u.qk; }
    }
  }
}`;

/** [dk, dv]: dk = dSᵀ·q·qk and dv = (p∘D)ᵀ·dctx, both [B, T, H]. Per block of 64 keys, over query tiles of 16: sᵀ = k·qᵀ
 * and (v·dctxᵀ) (k, v, q, dctx staged in chunks of 8 columns; thread (kj, qx) holds queries qx + 4k), p∘D and dS to
 * `pd`, `ds`, then dv += (p∘D)ᵀ·dctx and dk += dSᵀ·q (threads: keys oy + 8m, columns ox + 32k), q and dctx staged by
 * rows. Workgroup memory 14752 bytes. */
const ATTENTION_GRAD_KV_WGSL = `${attentionHeader(["DK", "DV"], ["Q", "K", "V", "M", "DO", "Rows"], `
const BK = 64u; // keys per workgroup
const BQ = 16u; // query rows per tile
const DC = 8u; // columns per staged chunk
const VS = 520u; // stage: kᵀ chunk [DC][BK + 1] at 0, v chunk [BK][DC + 1] at VS, q and dctx chunks [BQ][DC + 1] at QS, OS;
const QS = 1096u; // then dctx rows [n][d] at 0 and q rows at n·d
const OS = 1240u;
const PSTR = 72u; // ≡ 8 (mod 32): the score threads' stores to pd, ds hit 32 different banks
var<workgroup> stage : array<f32, 1384>;
var<workgroup> pd : array<f32, 1152>; // [BQ][PSTR]: p∘D of the current tile, by query then key
var<workgroup> ds : array<f32, 1152>; // dS likewise
${GRAD_STAGING}`)}
  let kj = tid >> 2u; // scores: key j0 + kj, queries i0 + qx + 4k (k < 4)
  let qx = tid & 3u;
  let j0 = wid.x * BK;
  let j = j0 + kj;
  var mj = 0.0;
  if (j < T) { mj = M[mBase + j]; }
  let qn = min(BQ, 512u / d); // q and dctx rows per staged chunk
  var accV = array<f32, 32>(); // dv[j0 + oy + 8m][ox + 32k] at m * 4 + k
  var accK = array<f32, 32>(); // dk[j0 + oy + 8m][ox + 32k] at m * 4 + k
  for (var i0 = 0u; i0 < T; i0 += BQ) {
    var s = array<f32, 4>();
    var g = array<f32, 4>();
    for (var c0 = 0u; c0 < d; c0 += DC) {
      workgroupBarrier();
      stageKV(base, j0, BK, c0, 0u, VS, tid);
      stageQO(base, i0, BQ, c0, QS, OS, tid);
      workgroupBarrier();
      for (var cc = 0u; cc < min(DC, d - c0); cc++) {
        let kv = stage[cc * (BK + 1u) + kj];
        let vv = stage[VS + kj * (DC + 1u) + cc];
        for (var k = 0u; k < 4u; k++) {
          let q = qx + 4u * k;
          s[k] += stage[QS + q * (DC + 1u) + cc] * kv;
          g[k] += stage[OS + q * (DC + 1u) + cc] * vv;
        }
      }
    }
    for (var k = 0u; k < 4u; k++) {
      let q = qx + 4u * k;
      let i = i0 + q;
      var a = 0.0;
      var b = 0.0;
      if (i < T && j < T) {
        let r = bh * T + i;
        let sv = s[k] * u.qk + mj;
        let p = exp(sv - Rows[r * 3u]) / Rows[r * 3u + 1u];
        let dij = dropScale(r * T + j);
        a = p * dij; // p∘D
        b = g[k] * dij * p - Rows[r * 3u + 2u] * p; // dS
      }
      pd[q * PSTR + kj] = a;
      ds[q * PSTR + kj] = b;
    }
    for (var q0 = 0u; q0 < BQ; q0 += qn) {
      let n = min(qn, BQ - q0);
      workgroupBarrier();
      for (var e = tid; e < n * d; e += WG) {
        let i = i0 + q0 + e / d;
        var x = 0.0;
        var y = 0.0;
        if (i < T) { x = DO[base + i * H + e % d]; y = Q[base + i * H + e % d]; }
        stage[e] = x;
        stage[n * d + e] = y;
      }
      workgroupBarrier();
      for (var qq = 0u; qq < n; qq++) {
        let q = q0 + qq;
        var pr = array<f32, 8>();
        var dr = array<f32, 8>();
        for (var m = 0u; m < 8u; m++) { pr[m] = pd[q * PSTR + oy + 8u * m]; dr[m] = ds[q * PSTR + oy + 8u * m]; }
        for (var k = 0u; k < 4u; k++) {
          let c = ox + 32u * k;
          if (c < d) {
            let ov = stage[qq * d + c];
            let qv = stage[(n + qq) * d + c];
            for (var m = 0u; m < 8u; m++) {
              accV[m * 4u + k] += pr[m] * ov;
              accK[m * 4u + k] += dr[m] * qv;
            }
          }
        }
      }
    }
  }
  for (var m = 0u; m < 8u; m++) {
    let jj = j0 + oy + 8u * m;
    for (var k = 0u; k < 4u; k++) {
      let c = ox + 32u * k;
      if (jj < T && c < d) {
        DV[base + jj * H + c] = accV[m * 4u + k];
        DK[base + jj * H + c] = accK[m * 4u + k] * u.qk;
      }
    }
  }
}`;

/** Inputs q, k, v [B, T, H], mask (B·T numbers, e.g. [B, 1, 1, T]) (+ dctx, ctx, stats / rows for the gradients),
 * attrs nh, the dropout's key, threshold, scale (lib/dropout.ts's dropoutParams; 0, 0, 1 for none) and scoreScale
 * (1/√d; 1 if absent): the attention kernels above. `inPlace` inputs are bound read_write after the new outputs (GradQ
 * writes delta into stats) and not returned. */
function attentionKernel(label: string, wgsl: string, inputNames: string[], outShapes: (q: Info, heads: number) => number[][], inPlace: string[] = []) {
  return ({ inputs, backend, attrs }: Args): Info[] => {
    const q = inputs.q, [B, T, H] = q.shape, nh = attrs.nh as number, d = H / nh;
    const bound = outShapes(q, B * nh).length + inPlace.length + inputNames.length;
    const limit = backend.device.limits.maxStorageBuffersPerShaderStage as number;
    if (bound > limit) throw new Error(`${label}: ${bound} storage buffers, over the device's maxStorageBuffersPerShaderStage ${limit}`);
    const outs = outShapes(q, B * nh).map((shape) => backend.makeTensorInfo(shape, "float32"));
    const u = (x: number): Uniform => ({ type: "uint32", data: [x] });
    const a = attrs as Record<string, number | undefined>;
    record(backend, label, wgsl, [...outs, ...[...inPlace, ...inputNames].map((n) => inputs[n])],
      [u(T), u(d), u(nh), u(a.key ?? 0), u(a.threshold ?? 0), { type: "float32", data: [a.scale ?? 1] }, { type: "float32", data: [a.scoreScale ?? 1] }],
      [Math.ceil(T / ATTN_BLOCK), B * nh]);
    wroteInPlace(backend, inPlace.map((n) => inputs[n]));
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
