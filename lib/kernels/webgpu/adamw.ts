// AdamW (torch.optim.AdamW's step, gradient clipping folded in): one parameter into three new tensors, or in place
// over several parameters per launch.
import { type Args, type Info, type Uniform, deal, grid, record, wroteInPlace } from "./common";

export const ADAMW = "BertqaAdamW";
export const ADAMW_MULTI = "BertqaAdamWMulti";

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
export function adamw({ inputs, backend, attrs }: Args): Info[] {
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
export function adamwMulti({ inputs, backend, attrs }: Args): Info[] {
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
