// The element-wise kernels: exact GELU with an optional bias (forward and gradient), inverted dropout drawn in the
// shader from lib/dropout.ts's counter-based mask, and the AddN that replaces the stock one past 7 inputs.
import * as tf from "@tensorflow/tfjs";
import { DROPOUT_WGSL } from "../../dropout";
import { type Args, type Info, type Program, flat } from "./common";

export const BIAS_GELU = "BertqaBiasGelu";
export const BIAS_GELU_GRAD = "BertqaBiasGeluGrad";
export const DROPOUT = "BertqaDropout";

// The backend's own erf (Abramowitz–Stegun 7.1.26, the constants of tf.backend_util), so fused and composite GELU
// on WebGPU evaluate the same formula.
const ERF = `
fn erf_(a : f32) -> f32 {
  let t = 1.0 / (1.0 + ${tf.backend_util.ERF_P} * abs(a));
  return sign(a) * (1.0 - (((((${tf.backend_util.ERF_A5} * t + ${tf.backend_util.ERF_A4}) * t) + ${tf.backend_util.ERF_A3}) * t
    + ${tf.backend_util.ERF_A2}) * t + ${tf.backend_util.ERF_A1}) * t * exp(-a * a));
}`;

// --- GELU -------------------------------------------------------------------------------------------------------------

/** y = gelu(x + bias): the FFN activation; the composite needs 5 launches forward (7 backward) and saves Φ(x). */
export function biasGeluProgram(x: Info, hasBias: boolean): Program {
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
export function biasGeluGradProgram(x: Info, hasBias: boolean): Program {
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
export function dropoutProgram(x: Info): Program {
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

// --- AddN -------------------------------------------------------------------------------------------------------------

/** The stock AddN binds all inputs in one shader; past maxStorageBuffersPerShaderStage − 1 (7 on the default device
 * tfjs requests) pipeline creation fails, Dawn only prints a validation error and the sum is silently garbage — which
 * is what gradClipScale's and gradsFinite's tf.addN over every gradient hit. Sum in chunks instead. */
export function addNChunked(stock: (args: Args) => Info): (args: Args) => Info {
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
