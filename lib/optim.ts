// The optimiser of BERT fine-tuning, written to match PyTorch step for step: AdamW with decoupled weight decay
// (torch.optim.AdamW), the linear warm-up/decay schedule (transformers.get_linear_schedule_with_warmup), clipping by
// global norm (torch.nn.utils.clip_grad_norm_) and gradient accumulation. State is plain data so checkpoints can hold it.
import * as tf from "@tensorflow/tfjs";
import type { HostTensor, TensorMap } from "./safetensors";
import { userError } from "./errors";
import { adamwUpdates, gradNormScale, type AdamWItem } from "./fused";

export type Params = Record<string, tf.Variable>;
export type Grads = Record<string, tf.Tensor>;

export interface AdamWOptions {
  lr: number;
  betas?: [number, number]; // torch default (0.9, 0.999)
  eps?: number; // torch default 1e-8
  weightDecay?: number; // torch default 0.01; BERT fine-tuning recipes use 0.01 too
  /** Parameters that get no weight decay; default: names with `bias` or `LayerNorm`/`layer_norm` (HF Trainer's rule). */
  noDecay?: (name: string) => boolean;
}

export interface AdamW {
  lr: number; // base learning rate; the schedule scales it per step
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  noDecay: (name: string) => boolean;
  step: number; // updates done so far (torch's state['step'])
  m: Record<string, tf.Variable>; // exp_avg
  v: Record<string, tf.Variable>; // exp_avg_sq
}

/** HF Trainer's default: no decay for biases and LayerNorm weights. */
export function isNoDecay(name: string): boolean {
  return name.includes("bias") || name.includes("LayerNorm") || name.includes("layer_norm");
}

/** Fresh AdamW state (zero moments) for `params`; `adamwStep` updates it in place. */
export function createAdamW(params: Params, opts: AdamWOptions): AdamW {
  const [beta1, beta2] = opts.betas ?? [0.9, 0.999];
  const m: Record<string, tf.Variable> = {};
  const v: Record<string, tf.Variable> = {};
  for (const [name, p] of Object.entries(params)) {
    m[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false)); // tidy frees the zeros the variable copied
    v[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
  }
  return { lr: opts.lr, beta1, beta2, eps: opts.eps ?? 1e-8, weightDecay: opts.weightDecay ?? 0.01, noDecay: opts.noDecay ?? isNoDecay, step: 0, m, v };
}

/**
 * One AdamW update at learning rate `lr` (the scheduled value), exactly torch's single-tensor algorithm:
 * p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g²; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * Parameters without a gradient (not in `grads`) are left alone, like torch's `p.grad is None`. `gradScale` is
 * gradClipScale's coefficient, a scalar on the device: the step uses g·gradScale, what torch's optimizer sees after
 * clip_grad_norm_, and the host never waits for it.
 */
export function adamwStep(opt: AdamW, params: Params, grads: Grads, lr = opt.lr, gradScale?: tf.Scalar): void {
  opt.step += 1;
  const t = opt.step;
  const stepSize = lr / (1 - Math.pow(opt.beta1, t)); // bias corrections in float64 as torch does on the host
  const bc2Sqrt = Math.sqrt(1 - Math.pow(opt.beta2, t));
  const items: AdamWItem[] = [];
  for (const [name, p] of Object.entries(params)) {
    const g = grads[name];
    if (g === undefined) continue;
    const m = opt.m[name], v = opt.v[name];
    if (m === undefined || v === undefined) throw userError("optimiser state", `no moments for parameter '${name}'`, "the checkpoint's optimiser does not belong to this model");
    const decay = opt.noDecay(name) ? 0 : opt.weightDecay;
    items.push({ p, m, v, g, h: { lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: decay, stepSize, bc2Sqrt } });
  }
  // A few launches for all parameters on WebGPU, one per parameter on wasm; elsewhere the tf ops above (lib/fused.ts).
  adamwUpdates(items, gradScale);
}

export function disposeAdamW(opt: AdamW): void {
  for (const t of [...Object.values(opt.m), ...Object.values(opt.v)]) t.dispose();
}

/**
 * transformers.get_linear_schedule_with_warmup's multiplier for update number `step` (0-based: the first update uses
 * step 0, because the trainer calls scheduler.step() after optimizer.step()).
 */
export function linearWarmupFactor(step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
}

/** Learning rate for 0-based update `step`: `baseLr * linearWarmupFactor(...)`. */
export function scheduledLr(baseLr: number, step: number, warmupSteps: number, totalSteps: number): number {
  return baseLr * linearWarmupFactor(step, warmupSteps, totalSteps);
}

/**
 * torch.nn.utils.clip_grad_norm_, split in two: this half computes total = ‖(‖g_i‖₂)_i‖₂ and the coefficient
 * scale = min(1, maxNorm / (total + 1e-6)) in float32 on the device, as torch does; the other half, multiplying every
 * gradient by `scale`, happens inside the AdamW update (`adamwStep(opt, params, grads, lr, scale)`), so no clipped copy
 * of the gradients is stored (4 bytes per parameter) and nothing is read back: on a GPU the host goes on queuing the
 * next step. The gradients are not touched. The caller disposes both scalars (the norm is for the log).
 */
export function gradClipScale(grads: Grads, maxNorm: number): { totalNorm: tf.Scalar; scale: tf.Scalar } {
  return gradNormScale(Object.values(grads), maxNorm);
}

/**
 * Gradient accumulation: `acc + scale * grads` as new tensors (disposes the old `acc`, keeps `grads`). Start with
 * `acc = undefined`; use scale = 1/accumSteps so the sum equals the gradient of the mean loss, as HF Trainer does.
 */
export function accumulateGrads(acc: Grads | undefined, grads: Grads, scale = 1): Grads {
  const out: Grads = {};
  for (const [n, g] of Object.entries(grads)) {
    const prev = acc?.[n];
    out[n] = tf.tidy(() => {
      const s = scale === 1 ? g.clone() : tf.mul(g, scale);
      return prev !== undefined ? tf.add(prev, s) : s;
    });
  }
  if (acc !== undefined) disposeGrads(acc);
  return out;
}

export function disposeGrads(grads: Grads): void {
  for (const g of Object.values(grads)) g.dispose();
}

/** True when every gradient is finite (a NaN/Inf loss or gradient must stop training, not corrupt the weights). */
export async function gradsFinite(grads: Grads): Promise<boolean> {
  const bad = tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.logicalNot(tf.isFinite(g)).toFloat()))));
  const n = (await bad.data())[0];
  bad.dispose();
  return n === 0;
}

// --- serialisation: moments as tensors `m/<name>`, `v/<name>`; scalars in the metadata ---

export interface AdamWStateFile {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

/** Host copy of the optimiser state, for a safetensors file beside the model. */
export async function adamwStateToHost(opt: AdamW): Promise<AdamWStateFile> {
  const tensors: TensorMap = new Map();
  for (const [prefix, moments] of [["m", opt.m], ["v", opt.v]] as const) {
    for (const [name, t] of Object.entries(moments)) {
      tensors.set(`${prefix}/${name}`, { dtype: "float32", shape: t.shape.slice(), data: Float32Array.from((await t.data()) as Float32Array) });
    }
  }
  const metadata = { format: "bertqa-adamw", step: String(opt.step), lr: String(opt.lr), betas: JSON.stringify([opt.beta1, opt.beta2]), eps: String(opt.eps), weight_decay: String(opt.weightDecay) };
  return { tensors, metadata };
}

/** Restore moments and step from `adamwStateToHost`'s output into `opt` (created for the same params). */
export function loadAdamWState(opt: AdamW, state: AdamWStateFile, file = "optimizer.safetensors"): void {
  const step = Number(state.metadata.step);
  if (!Number.isInteger(step) || step < 0) throw userError(file, `metadata 'step' is '${state.metadata.step}', not a step count`, "the checkpoint is damaged; resume from another one");
  for (const [prefix, moments] of [["m", opt.m], ["v", opt.v]] as const) {
    for (const [name, t] of Object.entries(moments)) {
      const host: HostTensor | undefined = state.tensors.get(`${prefix}/${name}`);
      if (host === undefined) throw userError(file, `no tensor '${prefix}/${name}'`, "the optimiser state belongs to another model; resume from a checkpoint of this model");
      if (host.shape.join(",") !== t.shape.join(",")) {
        throw userError(file, `tensor '${prefix}/${name}' has shape [${host.shape}] but the parameter has [${t.shape}]`, "the optimiser state belongs to another model");
      }
      tf.tidy(() => t.assign(tf.tensor(host.data, host.shape, "float32")));
    }
  }
  opt.step = step;
}
