// Reductions: sums over the rows of a matrix (the γ/β gradients, and tf.sum over leading axes for every bias
// gradient) and the global gradient norm with clip_grad_norm_'s coefficient, computed on the device.
import * as tf from "@tensorflow/tfjs";
import { env } from "../../platform";
import { type Args, type Info, type Program, type Uniform, deal, grid, record, sumDecl } from "./common";

export const COLUMN_SUMS = "BertqaColumnSums";
export const GRAD_NORM = "BertqaGradNorm";

// --- column sums ------------------------------------------------------------------------------------------------------

// Sums over the rows of [rows, cols]: the γ/β gradients (layernorm.ts), and tf.sum over leading axes (every bias
// gradient's sum(0)). The stock Sum over axis 0 transposes the whole matrix first (a copy the size of the activation,
// up to 151 MB for BERT-base's FFN at 32 × 384) and reduces that, two launches, and the [blocks, 2C] γ/β partials took
// a sum and two slices more. A single pass over all rows in a workgroup per column strip would leave most of a large
// GPU idle, so long matrices go in two: partial sums of 64-row blocks, one thread per column and block, then the
// blocks.
const SUM_BLOCK = 64;
/** Rows up to which BertqaColumnSums alone is used (each thread adds ≤ 64 numbers); above, block sums first. */
export const COLUMN_SUMS_ROWS = 256;

/** [⌈rows/64⌉, terms·cols]: for each block of 64 rows of X [rows, cols] and each term (a WGSL expression of element
 * i = r·cols + c of row r), the column sums; term k of column c is output column k·cols + c. */
export function blockSumsProgram(x: Info, variableNames: string[], terms: string[], shaderKey: string): Program {
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
export function columnSums({ inputs, backend, attrs }: Args): Info[] {
  const x = inputs.x, [rows, width] = x.shape, parts = (attrs.parts as number | undefined) ?? 1, cols = width / parts;
  const outs = Array.from({ length: parts }, () => backend.makeTensorInfo([cols], "float32"));
  const u = (v: number): Uniform => ({ type: "uint32", data: [v] });
  record(backend, `${COLUMN_SUMS}_${parts}`, columnSumsWgsl(parts), [...outs, x], [u(rows), u(cols)], [Math.ceil(width / 64), 1]);
  return outs;
}

/** tf.sum of float32 x over its leading axes (bias gradients) as the rows of [rows, cols] added up: one launch of
 * BertqaColumnSums up to 256 rows, block sums first above (the wasm backend's twin is lib/kernels/wasm-extra.ts's
 * leadingSum); undefined: not that case, or BERTQA_FUSED=0 (tfjs's kernels only). */
export function leadingSum({ inputs, backend, attrs }: Args): Info | undefined {
  const x = inputs.x;
  if (x.dtype !== "float32" || x.shape.length < 2 || env.BERTQA_FUSED === "0") return undefined;
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
export function gradNorm({ inputs, backend, attrs }: Args): Info[] {
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
