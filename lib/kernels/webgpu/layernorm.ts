// LayerNorm(x + residual), the post-LN of every BERT block: forward in one launch, and for the backward pass the
// row statistics, the input gradient and the γ/β gradients' 64-row partial sums (finished by reductions.ts).
import { type Info, type Program, sumDecl } from "./common";
import { blockSumsProgram } from "./reductions";

export const ADD_LAYER_NORM = "BertqaAddLayerNorm";
export const ROW_STATS = "BertqaRowStats";
export const LAYER_NORM_GRAD = "BertqaLayerNormGrad";
export const LAYER_NORM_PARAM_GRAD = "BertqaLayerNormParamGrad";

/** Threads per row for the row kernels: one workgroup per row, a power of two, at most 256. */
function rowWorkgroup(cols: number): number {
  return cols >= 1024 ? 256 : cols >= 256 ? 128 : 64;
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
export function addLayerNormProgram(x: Info): Program {
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
export function rowStatsProgram(x: Info): Program {
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
export function layerNormGradProgram(x: Info): Program {
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
export function layerNormParamGradProgram(x: Info): Program {
  return blockSumsProgram(x, ["X", "R", "Dy", "Stats"], ["Dy[i] * ((X[i] + R[i] - Stats[r * 2u]) * Stats[r * 2u + 1u])", "Dy[i]"], "bertqa_layer_norm_param_grad");
}
