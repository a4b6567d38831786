// BERT and DistilBERT encoders with question-answering and classification heads, in TensorFlow.js, bottom-up:
// embeddings → self-attention → feed-forward → block → encoder → heads → losses. Follows HF modeling_bert.py and
// modeling_distilbert.py; the fixtures in test/fixtures hold that reference's outputs and gradients.
//
// Weight layout, stated once: parameters keep their Hugging Face names, but dense (Linear) weights are stored in
// tfjs' [in, out] layout so every dense layer is a plain x · W. PyTorch checkpoints hold them as [out, in]; weights.ts
// transposes exactly those tensors (spec.kind === "dense") when loading and saving, and nowhere else. Why not keep
// [out, in] and multiply with transposeB: the wasm backend only takes its fast (XNNPACK) path for untransposed
// single-batch matMuls, and is ~10× slower otherwise (measured: 0.5 vs 6-9 GFLOP/s for 384×768 · 768×3072).
import * as tf from "@tensorflow/tfjs";
import type { BertConfig } from "./config";
import { userError } from "./errors";
import type { DropoutSite } from "./dropout";
import { addLayerNorm, attention, biasGelu, dropout, layerNorm, matMulTransposeB } from "./fused";
import { wasmPoolActive } from "./kernels/wasm-gemm";

export type Task = "qa" | "cls";
export interface BertModel {
  config: BertConfig;
  task: Task;
  params: Record<string, tf.Variable>; // keys = HF checkpoint names, verbatim
}
export interface Batch {
  inputIds: tf.Tensor2D; // int32 [B, T]
  attentionMask: tf.Tensor2D; // [B, T], 1 = real token, 0 = padding
  tokenTypeIds?: tf.Tensor2D; // int32 [B, T]; zeros when absent; ignored by DistilBERT
}
export interface ForwardOptions {
  training?: boolean; // dropout on (seeded by `seed`) only when true
  seed?: number; // makes dropout reproducible: use a different seed per training step
}
export interface ForwardOutput {
  lastHiddenState: tf.Tensor3D; // [B, T, H]
  startLogits?: tf.Tensor2D; // qa: [B, T]
  endLogits?: tf.Tensor2D;
  logits?: tf.Tensor2D; // cls: [B, num_labels]
}

// transformers masks padding by adding the most negative float32 to the scores (torch.finfo(float32).min).
const FLOAT32_MIN = -3.4028234663852886e38;

// ---------------------------------------------------------------------------------------------------------------
// Parameter table: the one list of names and shapes that init, load, save and summary all walk.

/** Base names (without .weight/.bias) of one encoder layer's sub-modules, for both model types. */
export interface LayerKeys { query: string; key: string; value: string; attnOut: string; attnNorm: string; ffnIn: string; ffnOut: string; ffnNorm: string }

export function modelPrefix(c: BertConfig): "bert" | "distilbert" {
  return c.model_type === "distilbert" ? "distilbert" : "bert";
}

export function layerKeys(c: BertConfig, i: number): LayerKeys {
  if (c.model_type === "distilbert") {
    const p = `distilbert.transformer.layer.${i}`;
    return { query: `${p}.attention.q_lin`, key: `${p}.attention.k_lin`, value: `${p}.attention.v_lin`, attnOut: `${p}.attention.out_lin`,
      attnNorm: `${p}.sa_layer_norm`, ffnIn: `${p}.ffn.lin1`, ffnOut: `${p}.ffn.lin2`, ffnNorm: `${p}.output_layer_norm` };
  }
  const p = `bert.encoder.layer.${i}`;
  return { query: `${p}.attention.self.query`, key: `${p}.attention.self.key`, value: `${p}.attention.self.value`,
    attnOut: `${p}.attention.output.dense`, attnNorm: `${p}.attention.output.LayerNorm`, ffnIn: `${p}.intermediate.dense`,
    ffnOut: `${p}.output.dense`, ffnNorm: `${p}.output.LayerNorm` };
}

export type ParamKind = "embedding" | "dense" | "bias" | "norm_weight" | "norm_bias";
/** shape is the tfjs shape ([in, out] for dense weights); hfShape the checkpoint's ([out, in]). */
export interface ParamSpec { name: string; shape: number[]; hfShape: number[]; kind: ParamKind; head: boolean }

/** Every parameter of the model for `task`, in checkpoint order; `head` marks what a base checkpoint lacks. */
export function paramSpecs(c: BertConfig, task: Task): ParamSpec[] {
  const H = c.hidden_size, I = c.intermediate_size;
  const specs: ParamSpec[] = [];
  const add = (name: string, shape: number[], kind: ParamKind, head = false) => {
    specs.push({ name, shape, hfShape: kind === "dense" ? [shape[1], shape[0]] : shape, kind, head });
  };
  const dense = (name: string, inp: number, out: number, head = false) => {
    add(`${name}.weight`, [inp, out], "dense", head);
    add(`${name}.bias`, [out], "bias", head);
  };
  const norm = (name: string) => {
    add(`${name}.weight`, [H], "norm_weight");
    add(`${name}.bias`, [H], "norm_bias");
  };
  const emb = `${modelPrefix(c)}.embeddings`;
  add(`${emb}.word_embeddings.weight`, [c.vocab_size, H], "embedding");
  add(`${emb}.position_embeddings.weight`, [c.max_position_embeddings, H], "embedding");
  if (c.model_type === "bert") add(`${emb}.token_type_embeddings.weight`, [c.type_vocab_size, H], "embedding");
  norm(`${emb}.LayerNorm`);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const k = layerKeys(c, i);
    dense(k.query, H, H); dense(k.key, H, H); dense(k.value, H, H); dense(k.attnOut, H, H); norm(k.attnNorm);
    dense(k.ffnIn, H, I); dense(k.ffnOut, I, H); norm(k.ffnNorm);
  }
  if (task === "qa") {
    dense("qa_outputs", H, 2, true); // HF BertForQuestionAnswering has no pooler (add_pooling_layer=False)
  } else {
    if (c.model_type === "bert") dense("bert.pooler.dense", H, H, true);
    else dense("pre_classifier", H, H, true);
    dense("classifier", H, numLabels(c), true);
  }
  return specs;
}

export function numLabels(c: BertConfig): number {
  return c.num_labels ?? 2; // transformers' PretrainedConfig default
}

// ---------------------------------------------------------------------------------------------------------------
// Initialisation (HF _init_weights: normal(0, initializer_range) for dense and embeddings, padding row zero,
// LayerNorm weight 1 and bias 0, dense bias 0).

/** A freshly initialised model; `seed` makes it reproducible (seed 0 included: see tfSeed). */
export function initModel(config: BertConfig, task: Task, seed = 0): BertModel {
  if (task !== "qa" && task !== "cls") throw userError("initModel", `unknown task '${task}'`, "use 'qa' or 'cls'");
  const params: Record<string, tf.Variable> = {};
  paramSpecs(config, task).forEach((spec, i) => {
    const value = initTensor(config, spec, seed * 1000 + i);
    params[spec.name] = tf.variable(value, !isFrozen(config, spec.name));
    value.dispose(); // the variable keeps the buffer; kept, this handle would pin the initial weights after the first step
  });
  return { config, task, params };
}

/** One parameter's initial value (also used by weights.ts for heads a checkpoint lacks). */
export function initTensor(c: BertConfig, spec: ParamSpec, seed: number): tf.Tensor {
  return tf.tidy(() => {
    if (spec.kind === "bias" || spec.kind === "norm_bias") return tf.zeros(spec.shape);
    if (spec.kind === "norm_weight") return tf.ones(spec.shape);
    if (spec.kind === "embedding" && c.sinusoidal_pos_embds === true && spec.name.endsWith("position_embeddings.weight")) {
      return sinusoidalTable(spec.shape[0], spec.shape[1]);
    }
    const w = tf.randomNormal(spec.shape, 0, c.initializer_range, "float32", tfSeed(seed));
    if (spec.kind === "embedding" && spec.name.endsWith("word_embeddings.weight") && c.pad_token_id < spec.shape[0]) {
      const keep = tf.oneHot([c.pad_token_id], spec.shape[0]).sum(0).equal(0).expandDims(1); // zero the padding row
      return w.mul(keep.cast("float32"));
    }
    return w;
  });
}

/**
 * The seed to hand a tfjs random op for our `seed`. tfjs reads 0 as "no seed" (its generators do
 * `seed ? seed : Math.random()`), which left initModel(…, 0)'s first parameter (seed 0·1000 + 0) unseeded. Our seeds
 * are never negative (seed·1000 + index, --seed), so −1 stands in for 0 without meeting another; every other seed is
 * passed through, so models initialised with any other seed keep their weights.
 */
export function tfSeed(seed: number): number {
  return seed === 0 ? -1 : seed;
}

/** DistilBERT's fixed sin/cos positions (create_sinusoidal_embeddings); they are not trained. */
function sinusoidalTable(n: number, dim: number): tf.Tensor {
  const out = new Float32Array(n * dim);
  for (let pos = 0; pos < n; pos++) {
    for (let j = 0; j < dim; j++) {
      const angle = pos / Math.pow(10000, (2 * Math.floor(j / 2)) / dim);
      out[pos * dim + j] = j % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return tf.tensor2d(out, [n, dim]);
}

export function isFrozen(c: BertConfig, name: string): boolean {
  return c.sinusoidal_pos_embds === true && name.endsWith("position_embeddings.weight");
}

export function disposeModel(model: BertModel): void {
  for (const v of Object.values(model.params)) if (!v.isDisposed) v.dispose(); // twice is harmless: clean-up cells run again
}

const ORIGIN = Symbol.for("bertqa.modelOrigin"); // a property, not a module map: tslab may load bert.ts more than once

/** Say where `model` is built (e.g. "section 3's training cell"), so using it after it was released names that cell. */
export function noteModelOrigin(model: BertModel, where: string): BertModel {
  Object.defineProperty(model, ORIGIN, { value: where, configurable: true, enumerable: false });
  return model;
}

/** A released model (disposeModel) is one line naming what to run again, not TensorFlow.js's "Tensor is disposed". */
export function assertModelLive(model: BertModel, where = "model"): void {
  if (!Object.values(model.params).some((v) => v.isDisposed)) return;
  const origin = (model as BertModel & { [ORIGIN]?: string })[ORIGIN];
  throw userError(where, "this model was released (disposeModel, or replaced by a newer one)",
    origin !== undefined ? `run ${origin} again to build it` : "build or load the model again");
}

export function countParams(model: BertModel): number {
  return Object.values(model.params).reduce((n, v) => n + v.size, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Building blocks. Activations inside the encoder stay 2-D, [N = B*T, H], so every dense layer is one matMul.

/** Dropout at the next site: drop(x, rate); drop.next(rate) instead takes the next site's { rate, seed }, or undefined
 * where it would drop nothing (not training, or rate 0), for ops that apply it inside (lib/fused.ts's attention). */
type Dropout = ((x: tf.Tensor, rate: number) => tf.Tensor) & { next(rate: number): DropoutSite | undefined };

function makeDropout(opts: ForwardOptions): Dropout {
  let site = 0;
  const base = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const next = (rate: number): DropoutSite | undefined => {
    site++;
    if (opts.training !== true || rate <= 0) return undefined;
    // A distinct, reproducible mask per dropout site and step (the same seed everywhere would repeat masks).
    return { rate, seed: base * 7919 + site };
  };
  return Object.assign((x: tf.Tensor, rate: number) => {
    const s = next(rate);
    return s === undefined ? x : dropout(x, s.rate, s.seed); // on WebGPU one kernel; elsewhere x × the host mask
  }, { next });
}

// Backends whose tensors live in host memory (cpu, wasm): see linear's gradient.
const HOST_MEMORY_BACKENDS = new Set(["cpu", "wasm"]);

/** x · W + b (W is [in, out]). On host-memory backends the gradient is written out with explicit transposes: tfjs'
 * own matMul gradient uses transposeA/transposeB, which plain tfjs-backend-wasm runs ~10× slower (see the layout note
 * above). On GPUs, xᵀ·dy reads x transposed (transposeA) instead of copying the activation; dy·Wᵀ is fused.ts's
 * matMulTransposeB (W transposed first, except under lib/kernels/gemm.ts). */
const linear = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, b] = args as tf.Tensor2D[];
  const save = args[3] as tf.GradSaveFunc;
  save([x, w]);
  return {
    value: tf.fused.matMul({ a: x, b: w, bias: b }),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as tf.Tensor2D[];
      const d = dy as tf.Tensor2D;
      const dw = HOST_MEMORY_BACKENDS.has(tf.getBackend()) && !wasmPoolActive() ? tf.matMul(sx.transpose(), d) : tf.matMul(sx, d, true, false);
      return [matMulTransposeB(d, sw), dw, d.sum(0)];
    },
  };
});

function dense(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return linear(x, w, b) as tf.Tensor2D;
}

// LayerNorm and GELU carry hand-written gradients (lib/fused.ts): tfjs' automatic ones cost ~3× as many full-size ops
// (every mul's gradient also copies both inputs through a same-dtype cast), and these two run on the largest
// activations. On WebGPU, LayerNorm(x + residual), GELU and the AdamW update are single custom kernels there.

function activation(x: tf.Tensor2D, name: string): tf.Tensor2D {
  if (name === "relu") return tf.relu(x);
  if (name === "gelu") return biasGelu(x);
  // gelu_new / gelu_pytorch_tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  const inner = x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
  return x.mul(tf.tanh(inner).add(1)).mul(0.5);
}

/** Row lookup whose gradient is one scatter-add: tfjs' own gather gradient (unsortedSegmentSum) loops over every
 * vocabulary row on the cpu backend, which makes a 30k-word embedding untrainable. Like PyTorch's
 * nn.Embedding(padding_idx), the row `paddingIdx` gets no gradient. */
function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D, paddingIdx?: number): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor, save = args[1] as tf.GradSaveFunc;
    save([ids]);
    return {
      value: gatherRows(t as tf.Tensor2D, ids),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const idx = saved[0];
        const g = paddingIdx === undefined ? dy : dy.mul(idx.notEqual(paddingIdx).cast("float32").expandDims(1));
        return tf.scatterND(idx.expandDims(1), g, t.shape);
      },
    };
  });
  return f(table) as tf.Tensor2D;
}

// On cpu a row copy in JS beats tf.gather (which goes element by element); wasm's GatherV2 is that row copy, inside the
// heap (lib/kernels/wasm-extra.ts: reading the table out first copied all of it every step); GPUs keep tf.gather.

function gatherRows(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  if (tf.getBackend() !== "cpu") return tf.gather(table, ids);
  const H = table.shape[1], rows = table.dataSync() as Float32Array, idx = ids.dataSync();
  const out = new Float32Array(idx.length * H);
  for (let i = 0; i < idx.length; i++) out.set(rows.subarray(idx[i] * H, (idx[i] + 1) * H), i * H);
  return tf.tensor2d(out, [idx.length, H]);
}

function embeddings(model: BertModel, batch: Batch, drop: Dropout): tf.Tensor2D {
  const c = model.config, p = model.params, emb = `${modelPrefix(c)}.embeddings`;
  const [B, T] = batch.inputIds.shape;
  const H = c.hidden_size;
  const ids = batch.inputIds.dtype === "int32" ? batch.inputIds : batch.inputIds.cast("int32"); // tf.tensor2d defaults to float32
  const words = embeddingLookup(p[`${emb}.word_embeddings.weight`] as tf.Tensor2D, ids.reshape([B * T]), c.pad_token_id);
  const positions = p[`${emb}.position_embeddings.weight`].slice([0, 0], [T, H]); // [T, H], positions 0..T-1
  let x = words.reshape([B, T, H]).add(positions);
  if (c.model_type === "bert") {
    const types = batch.tokenTypeIds ?? tf.zeros([B, T], "int32");
    x = x.add(embeddingLookup(p[`${emb}.token_type_embeddings.weight`] as tf.Tensor2D, types.cast("int32").reshape([B * T])).reshape([B, T, H]));
  }
  const normed = layerNorm(x.reshape([B * T, H]), p[`${emb}.LayerNorm.weight`], p[`${emb}.LayerNorm.bias`], c.layer_norm_eps);
  return drop(normed, c.hidden_dropout_prob) as tf.Tensor2D;
}

/** Multi-head self-attention for all heads at once (lib/fused.ts's attention: batched matMuls over [B*heads, T, d], or
 * on WebGPU kernels that read the heads where the dense layers put them). Q, K and V stay three dense layers: one fused
 * [H, 3H] matMul plus the split of its result measured no faster on wasm with lib/kernels (small preset, 384 tokens:
 * 1.59 s fused vs 1.50 s separate), and this way each weight is used as stored. */
function selfAttention(model: BertModel, k: LayerKeys, x: tf.Tensor2D, mask: tf.Tensor, B: number, T: number, drop: Dropout): tf.Tensor2D {
  const c = model.config, p = model.params;
  const H = c.hidden_size, nh = c.num_attention_heads;
  const project = (key: string) => dense(x, p[`${key}.weight`], p[`${key}.bias`]).reshape([B, T, H]) as tf.Tensor3D;
  const probsDropout = drop.next(c.attention_probs_dropout_prob);
  const ctx = attention(project(k.query), project(k.key), project(k.value), mask, nh, probsDropout).reshape([B * T, H]); // heads side by side
  return dense(ctx as tf.Tensor2D, p[`${k.attnOut}.weight`], p[`${k.attnOut}.bias`]);
}

/** One post-LayerNorm transformer block: x = LN(x + attn(x)); x = LN(x + ffn(x)). */
function block(model: BertModel, i: number, x: tf.Tensor2D, mask: tf.Tensor, B: number, T: number, drop: Dropout): tf.Tensor2D {
  const c = model.config, p = model.params, k = layerKeys(c, i);
  let attn = selfAttention(model, k, x, mask, B, T, drop);
  if (c.model_type === "bert") attn = drop(attn, c.hidden_dropout_prob) as tf.Tensor2D; // DistilBERT has no dropout here
  const h = addLayerNorm(attn, x, p[`${k.attnNorm}.weight`], p[`${k.attnNorm}.bias`], c.layer_norm_eps);
  const inner = activation(dense(h, p[`${k.ffnIn}.weight`], p[`${k.ffnIn}.bias`]), c.hidden_act);
  const ffn = drop(dense(inner, p[`${k.ffnOut}.weight`], p[`${k.ffnOut}.bias`]), c.hidden_dropout_prob);
  return addLayerNorm(ffn as tf.Tensor2D, h, p[`${k.ffnNorm}.weight`], p[`${k.ffnNorm}.bias`], c.layer_norm_eps);
}

// ---------------------------------------------------------------------------------------------------------------
// The model.

/** Run the encoder and the task head. Tensors created inside are freed; the caller disposes the outputs. */
export function forward(model: BertModel, batch: Batch, opts: ForwardOptions = {}): ForwardOutput {
  assertModelLive(model, "forward");
  checkBatch(model.config, batch);
  return tf.tidy(() => {
    const c = model.config, p = model.params;
    const [B, T] = batch.inputIds.shape;
    const H = c.hidden_size;
    const drop = makeDropout(opts);
    // [B, 1, 1, T]: 0 where attended, float32 min where padded (broadcast over heads and query positions)
    const mask = tf.sub(1, batch.attentionMask.cast("float32")).mul(FLOAT32_MIN).reshape([B, 1, 1, T]);
    let h = embeddings(model, batch, drop);
    // A scope per layer frees its temporaries as it ends (what the backward pass needs is kept by the tape), so
    // prediction holds one layer's activations at a time, not all of them until the forward pass returns.
    for (let i = 0; i < c.num_hidden_layers; i++) h = tf.tidy(() => block(model, i, h, mask, B, T, drop));
    const out: ForwardOutput = { lastHiddenState: h.reshape([B, T, H]) };
    if (model.task === "qa") {
      const hq = c.model_type === "distilbert" ? (drop(h, c.qa_dropout ?? 0.1) as tf.Tensor2D) : h;
      const logits = dense(hq, p["qa_outputs.weight"], p["qa_outputs.bias"]).reshape([B, T, 2]);
      const [start, end] = tf.unstack(logits, 2) as tf.Tensor2D[];
      out.startLogits = start;
      out.endLogits = end;
    } else {
      const first = h.reshape([B, T, H]).slice([0, 0, 0], [B, 1, H]).reshape([B, H]) as tf.Tensor2D; // [CLS]
      let pooled: tf.Tensor2D;
      if (c.model_type === "bert") {
        pooled = tf.tanh(dense(first, p["bert.pooler.dense.weight"], p["bert.pooler.dense.bias"]));
        pooled = drop(pooled, c.classifier_dropout ?? c.hidden_dropout_prob) as tf.Tensor2D;
      } else {
        pooled = tf.relu(dense(first, p["pre_classifier.weight"], p["pre_classifier.bias"]));
        pooled = drop(pooled, c.seq_classif_dropout ?? 0.2) as tf.Tensor2D;
      }
      out.logits = dense(pooled, p["classifier.weight"], p["classifier.bias"]);
    }
    return out as unknown as tf.TensorContainer;
  }) as unknown as ForwardOutput;
}

/** Shapes, and ids checked on the host: an out-of-range id would otherwise read garbage (wasm) or fail deep inside. */
export function checkBatch(c: BertConfig, batch: Batch): void {
  const shape = batch.inputIds.shape;
  if (shape.length !== 2) throw userError("input_ids", `expected shape [batch, seq_len], got [${shape}]`);
  const [, T] = shape;
  if (T > c.max_position_embeddings) {
    throw userError("input_ids", `sequence length ${T} is longer than the model's max_position_embeddings ${c.max_position_embeddings}`, `truncate inputs to ${c.max_position_embeddings} tokens`);
  }
  if (batch.attentionMask.shape.join() !== shape.join()) {
    throw userError("attention_mask", `shape [${batch.attentionMask.shape}] differs from input_ids [${shape}]`);
  }
  checkIds("input_ids", batch.inputIds, c.vocab_size, "vocab_size", "use the tokenizer that belongs to this model");
  if (batch.tokenTypeIds !== undefined && c.model_type === "bert") {
    if (batch.tokenTypeIds.shape.join() !== shape.join()) throw userError("token_type_ids", `shape [${batch.tokenTypeIds.shape}] differs from input_ids [${shape}]`);
    checkIds("token_type_ids", batch.tokenTypeIds, c.type_vocab_size, "type_vocab_size", "segment ids are 0 (question) and 1 (context)");
  }
}

function checkIds(what: string, t: tf.Tensor2D, limit: number, field: string, fix: string): void {
  const data = hostValues(t);
  if (data === undefined) return; // already on the GPU: it was checked when it went up
  const T = t.shape[1];
  for (let i = 0; i < data.length; i++) {
    const id = data[i];
    if (!(id >= 0 && id < limit) || !Number.isInteger(id)) {
      throw userError(what, `row ${Math.floor(i / T)}, position ${i % T} holds ${id}, outside [0, ${limit}) of the model's ${field}`, fix);
    }
  }
}

/**
 * An input's values when they can be read without waiting: forward() and the losses are synchronous (they run inside
 * tf.variableGrads), so their host-side checks cannot `await t.data()`. On cpu, wasm and tensorflow that is always
 * (dataSync); on webgpu only while the values are still on the host — a tensor made from arrays and not yet used by
 * a kernel, which is every batch the trainer, predict and the CLI build. After its first use the backend drops the
 * host copy and a synchronous read would need a canvas Node has not (OffscreenCanvas): such a tensor was checked
 * on that first use, and undefined here skips the check.
 */
function hostValues(t: tf.Tensor): ArrayLike<number> | undefined {
  const webgpu = tf.engine().registry.webgpu as (tf.KernelBackend & { tensorMap?: { get(id: object): { values?: ArrayLike<number> | null } | undefined } }) | undefined;
  if (webgpu === undefined || tf.engine().state.tensorInfo.get(t.dataId)?.backend !== webgpu) return t.dataSync() as ArrayLike<number>;
  return webgpu.tensorMap?.get(t.dataId)?.values ?? undefined; // tfjs-backend-webgpu 4.22: the host copy until upload
}

// ---------------------------------------------------------------------------------------------------------------
// Losses, as in the reference.

/** Mean cross-entropy over rows whose label is in [0, C); rows labelled C (ignore index) do not count. */
function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const C = logits.shape[1];
  const onehot = tf.oneHot(labels.cast("int32"), C); // an index of C gives an all-zero row: ignored
  const nll = tf.logSoftmax(logits).mul(onehot).sum().neg();
  const count = onehot.sum();
  return nll.div(tf.maximum(count, 1)) as tf.Scalar; // all rows ignored → 0 (PyTorch would give NaN)
}

/** QA loss = (CE(start) + CE(end)) / 2, mean over the batch. Like BertForQuestionAnswering, positions are clamped to
 * [0, T] and T is the ignore index: a position past the sequence is ignored, a negative one counts as [CLS] (0). */
export function qaLoss(start: tf.Tensor2D, end: tf.Tensor2D, startPositions: tf.Tensor1D, endPositions: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const T = start.shape[1];
    const clamp = (p: tf.Tensor1D) => tf.clipByValue(p.cast("int32"), 0, T) as tf.Tensor1D;
    return crossEntropy(start, clamp(startPositions)).add(crossEntropy(end, clamp(endPositions))).div(2) as tf.Scalar;
  });
}

/** Classification loss: mean cross-entropy over the batch (labels in [0, num_labels), checked on the host). */
export function clsLoss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const C = logits.shape[1];
  Array.from(hostValues(labels) ?? []).forEach((l, i) => {
    if (!(Number.isInteger(l) && l >= 0 && l < C)) throw userError("labels", `row ${i} has label ${l}, outside [0, ${C}) of the model's num_labels`, "map label names to ids 0..num_labels-1");
  });
  return tf.tidy(() => crossEntropy(logits, labels));
}
