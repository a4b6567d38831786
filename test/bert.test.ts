// The model against the reference: outputs, loss and every gradient of the three fixtures (made by HF transformers,
// PyTorch float32) within 1e-4; old-style checkpoints give the same numbers; no leaks; bad inputs are one-line errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { clsLoss, forward, initModel, paramSpecs, qaLoss, disposeModel, type Batch, type BertModel, type Task } from "../lib/bert";
import { dropoutMask } from "../lib/dropout";
import { presetConfig } from "../lib/config";
import { dropoutKeep, dropoutKey, dropoutParams, lowbias32 } from "../lib/dropout";
import { loadModelDir, modelTensors, toHfTensors } from "../lib/weights";
import { readSafetensors, writeSafetensors, type TensorMap } from "../lib/safetensors";
import { isUserError } from "../lib/errors";
import { modelSummary, summaryRows } from "../lib/summary";

const FIXTURES = path.join(__dirname, "fixtures");
const TOL = 1e-4; // float32 parity with PyTorch, as the project requires
const CASES: { name: string; task: Task }[] = [
  { name: "tiny-bert-qa", task: "qa" },
  { name: "tiny-bert-cls", task: "cls" },
  { name: "tiny-distilbert-qa", task: "qa" },
];

interface Case {
  input_ids: number[][]; attention_mask: number[][]; token_type_ids?: number[][];
  start_positions?: number[]; end_positions?: number[]; labels?: number[];
  start_logits?: number[][]; end_logits?: number[][]; logits?: number[][]; last_hidden_state: number[][][]; loss: number;
}

function readCase(name: string): Case {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name, "case.json"), "utf8"));
}

function toBatch(c: Case): Batch {
  return {
    inputIds: tf.tensor2d(c.input_ids, undefined, "int32"),
    attentionMask: tf.tensor2d(c.attention_mask, undefined, "int32"),
    tokenTypeIds: c.token_type_ids !== undefined ? tf.tensor2d(c.token_type_ids, undefined, "int32") : undefined,
  };
}

function lossOf(model: BertModel, batch: Batch, c: Case): tf.Scalar {
  const out = forward(model, batch);
  if (model.task === "qa") return qaLoss(out.startLogits!, out.endLogits!, tf.tensor1d(c.start_positions!, "int32"), tf.tensor1d(c.end_positions!, "int32"));
  return clsLoss(out.logits!, tf.tensor1d(c.labels!, "int32"));
}

function maxAbsDiff(expected: ArrayLike<number> | number[][] | number[][][], actual: tf.Tensor): number {
  const e = Array.isArray(expected) ? ((expected as unknown[]).flat(3) as number[]) : Array.from(expected);
  const a = actual.dataSync();
  assert.equal(a.length, e.length, "element count");
  let m = 0;
  for (let i = 0; i < e.length; i++) m = Math.max(m, Math.abs(e[i] - a[i]));
  return m;
}

/** Check forward outputs, loss and all gradients of `model` against the fixture `name`. */
async function assertParity(model: BertModel, name: string): Promise<void> {
  const c = readCase(name);
  const batch = toBatch(c);
  const out = forward(model, batch);
  assert.ok(maxAbsDiff(c.last_hidden_state, out.lastHiddenState) < TOL, `${name}: last_hidden_state`);
  if (model.task === "qa") {
    assert.ok(maxAbsDiff(c.start_logits!, out.startLogits!) < TOL, `${name}: start_logits`);
    assert.ok(maxAbsDiff(c.end_logits!, out.endLogits!) < TOL, `${name}: end_logits`);
  } else {
    assert.ok(maxAbsDiff(c.logits!, out.logits!) < TOL, `${name}: logits`);
  }
  tf.dispose(out as unknown as tf.Tensor[]);
  const names = Object.keys(model.params);
  const { value, grads } = tf.variableGrads(() => lossOf(model, batch, c), Object.values(model.params));
  assert.ok(Math.abs(value.dataSync()[0] - c.loss) < TOL, `${name}: loss ${value.dataSync()[0]} vs ${c.loss}`);
  const ref = readSafetensors(path.join(FIXTURES, name, "grads.safetensors")).tensors;
  assert.deepEqual(Object.keys(grads).length, ref.size, `${name}: one gradient per reference gradient`);
  const byParam: Record<string, tf.Tensor> = {};
  for (const key of names) byParam[key] = grads[model.params[key].name];
  const ours = await toHfTensors(model, byParam); // the model stores dense weights [in, out]; PyTorch's gradients are [out, in]
  for (const key of names) {
    const g = ours.get(key);
    const r = ref.get(key);
    assert.ok(g !== undefined && r !== undefined, `${name}: gradient for ${key}`);
    assert.deepEqual(g.shape, r.shape, `${name}: gradient shape of ${key}`);
    const d = maxAbsDiff(r.data, tf.tensor(g.data, g.shape));
    assert.ok(d < TOL, `${name}: gradient of ${key} differs by ${d}`);
  }
  tf.dispose([value, ...Object.values(grads), batch.inputIds, batch.attentionMask, ...(batch.tokenTypeIds ? [batch.tokenTypeIds] : [])]);
}

for (const { name, task } of CASES) {
  test(`${name}: outputs, loss and every gradient match transformers within 1e-4`, async () => {
    const { model, missing, unexpected } = loadModelDir(path.join(FIXTURES, name), task);
    assert.deepEqual(missing, []);
    assert.deepEqual(unexpected, []);
    await assertParity(model, name);
    disposeModel(model);
  });

  test(`${name}: an old-style checkpoint (LayerNorm gamma/beta, no base prefix) gives the same numbers`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-old-"));
    const src = readSafetensors(path.join(FIXTURES, name, "model.safetensors")).tensors;
    const renamed: TensorMap = new Map();
    for (const [k, t] of src) {
      const old = k.replace(/^(bert|distilbert)\./, "").replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta")
        .replace(/layer_norm\.weight$/, "layer_norm.gamma").replace(/layer_norm\.bias$/, "layer_norm.beta");
      renamed.set(old, t);
    }
    assert.ok([...renamed.keys()].some((k) => k.endsWith(".gamma")), "the renamed checkpoint really uses gamma");
    writeSafetensors(path.join(dir, "model.safetensors"), renamed);
    fs.copyFileSync(path.join(FIXTURES, name, "config.json"), path.join(dir, "config.json"));
    const { model, missing, unexpected } = loadModelDir(dir, task);
    assert.deepEqual([missing, unexpected], [[], []]);
    await assertParity(model, name);
    disposeModel(model);
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

test("forward and the loss gradient in a loop do not grow the number of live tensors", () => {
  const { model } = loadModelDir(path.join(FIXTURES, "tiny-bert-qa"), "qa");
  const c = readCase("tiny-bert-qa");
  const batch = toBatch(c);
  const run = () => {
    const out = forward(model, batch, { training: true, seed: 1 });
    tf.dispose(out as unknown as tf.Tensor[]);
    const { value, grads } = tf.variableGrads(() => lossOf(model, batch, c), Object.values(model.params));
    tf.dispose([value, ...Object.values(grads)]);
  };
  run(); // warm-up: backends may cache constants on first use
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) run();
  assert.equal(tf.memory().numTensors, before);
  disposeModel(model);
});

test("a forward pass without gradients holds one layer's temporaries at a time: 8 layers peak about where 1 does", async () => {
  const peak = async (layers: number) => {
    const c = { ...presetConfig("tiny", { vocabSize: 100, maxPositions: 64 }), num_hidden_layers: layers };
    const model = initModel(c, "qa", 1);
    const batch = { inputIds: tf.tensor2d([Array.from({ length: 64 }, (_, i) => 1 + (i % 90))], undefined, "int32"), attentionMask: tf.ones([1, 64], "int32") as tf.Tensor2D };
    const before = tf.memory().numBytes; // the weights
    const info = await tf.profile(() => tf.dispose(forward(model, batch, { training: false }) as unknown as tf.Tensor[]));
    tf.dispose([batch.inputIds, batch.attentionMask]);
    disposeModel(model);
    return info.peakBytes - before;
  };
  const [one, eight] = [await peak(1), await peak(8)];
  assert.ok(eight < 1.3 * one, `peak ${eight} bytes above the weights for 8 layers vs ${one} for 1`);
});

test("dropout: only when training, reproducible for a seed, different across seeds", () => {
  const { model } = loadModelDir(path.join(FIXTURES, "tiny-bert-qa"), "qa");
  const batch = toBatch(readCase("tiny-bert-qa"));
  const h = (opts: { training?: boolean; seed?: number }) => {
    const out = forward(model, batch, opts);
    const v = Array.from(out.lastHiddenState.dataSync());
    tf.dispose(out as unknown as tf.Tensor[]);
    return v;
  };
  const evalOut = h({}), a = h({ training: true, seed: 5 }), b = h({ training: true, seed: 5 }), other = h({ training: true, seed: 6 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, evalOut);
  assert.notDeepEqual(a, other);
  assert.deepEqual(h({ training: false, seed: 5 }), evalOut);
  disposeModel(model);
});

test("dropout masks drop the requested fraction and scale the rest by 1/(1 - rate)", () => {
  for (const rate of [0.1, 0.5]) {
    const m = dropoutMask([400, 250], rate, 7).dataSync();
    const zeros = m.filter((v) => v === 0).length / m.length;
    assert.ok(Math.abs(zeros - rate) < 0.01, `rate ${rate}: dropped ${zeros}`);
    assert.ok(m.every((v) => v === 0 || v === Math.fround(1 / (1 - rate))));
    // Unrelated masks (agreement ≈ rate² + (1 - rate)², not 1; 100k elements: σ ≈ 0.0016) for neighbouring seeds,
    // neighbouring sites of a step past 2³² (base·7919 + site), seeds 2³² apart, and the same mask shifted by one.
    const expected = rate * rate + (1 - rate) ** 2;
    const agreement = (a: ArrayLike<number>, b: ArrayLike<number>, shift = 0) => {
      let same = 0;
      for (let i = 0; i + shift < a.length; i++) same += (a[i] === 0) === (b[i + shift] === 0) ? 1 : 0;
      return same / (a.length - shift);
    };
    const pairs: [number, number][] = [[7, 8], [123456789 * 7919 + 1, 123456789 * 7919 + 2], [5, 2 ** 32 + 5]];
    for (const [s1, s2] of pairs) {
      const agree = agreement(dropoutMask([400, 250], rate, s1).dataSync(), dropoutMask([400, 250], rate, s2).dataSync());
      assert.ok(Math.abs(agree - expected) < 0.01, `rate ${rate}, seeds ${s1} and ${s2}: agreement ${agree}`);
    }
    assert.ok(Math.abs(agreement(m, m, 1) - expected) < 0.01, `rate ${rate}: lag-1 agreement`);
  }
});

test("dropout hash: lowbias32 and the mask's element test give the values computed independently", () => {
  // Computed once with Python's unbounded integers, not with this code:
  //   M = 0xffffffff
  //   def lb(x): x ^= x >> 16; x = x * 0x7feb352d & M; x ^= x >> 15; x = x * 0x846ca68b & M; return x ^ (x >> 16)
  //   def key(seed): lo, hi = seed % 2**32, seed // 2**32 % 2**32; return lb(lb(lo ^ 0x9e3779b9) ^ hi)
  //   element i of seed s: lb(lb(i) ^ key(s)); kept at rate 0.1 iff ≥ ceil(0.1 * 2**32) = 429496730
  assert.deepEqual([0, 1, 2, 0xdeadbeef, 0xffffffff].map(lowbias32), [0, 1753845952, 3507691905, 3861431939, 1734902346]);
  const known: [number, number, number[], string][] = [
    [0, 2926543089, [2488251732, 326572744, 3072924616, 1562916629], "101111111111010111111011"],
    [7, 3434613449, [3475429279, 1456395463, 1502114470, 2529027332], "111111111111111100111111"],
    [2 ** 32 + 5, 5305586, [3981200753, 110250784, 2888905624, 2490764852], "101111111111010111101111"],
  ];
  for (const [seed, key, elements, kept] of known) {
    assert.equal(dropoutKey(seed), key, `key of seed ${seed}`);
    assert.deepEqual(elements.map((_, i) => lowbias32((lowbias32(i) ^ key) >>> 0)), elements, `elements of seed ${seed}`);
    const { threshold, scale } = dropoutParams(0.1, seed);
    assert.equal(threshold, 429496730);
    assert.equal(scale, Math.fround(1 / 0.9));
    assert.equal(Array.from({ length: kept.length }, (_, i) => (dropoutKeep(key, threshold, i) ? "1" : "0")).join(""), kept);
    // the host mask's inlined loop is the same test
    const m = dropoutMask([3, 8], 0.1, seed).dataSync();
    assert.equal(Array.from(m, (v) => (v !== 0 ? "1" : "0")).join(""), kept, `dropoutMask of seed ${seed}`);
  }
  assert.deepEqual(dropoutParams(0, 1), { key: dropoutKey(1), threshold: 0, scale: 1 }, "rate 0 keeps everything");
});

test("qaLoss ignores positions past the sequence, like the reference's ignore_index", () => {
  // Row 1 labelled T (= ignore index) must not count: the loss equals that of row 0 alone.
  const start = tf.tensor2d([[1, 2, 3, 0.5], [4, 1, 0, 2]]), end = tf.tensor2d([[0, 1, 0, 3], [2, 2, 1, 0]]);
  const both = qaLoss(start, end, tf.tensor1d([2, 4], "int32"), tf.tensor1d([3, 9], "int32")).dataSync()[0];
  const first = qaLoss(start.slice(0, 1), end.slice(0, 1), tf.tensor1d([2], "int32"), tf.tensor1d([3], "int32")).dataSync()[0];
  // Hand computation for row 0: CE = logsumexp(row) - row[label].
  const lse = (r: number[]) => Math.log(r.reduce((s, x) => s + Math.exp(x), 0));
  const expected = (lse([1, 2, 3, 0.5]) - 3 + lse([0, 1, 0, 3]) - 3) / 2;
  assert.ok(Math.abs(first - expected) < 1e-6);
  assert.ok(Math.abs(both - expected) < 1e-6);
});

test("initModel: the HF names, trainable variables, reproducible by seed, padding row zero", async () => {
  const config = presetConfig("tiny", { vocabSize: 50, maxPositions: 16 });
  const a = initModel(config, "qa", 3), b = initModel(config, "qa", 3);
  assert.ok("bert.encoder.layer.1.attention.self.query.weight" in a.params);
  assert.ok("qa_outputs.weight" in a.params && !("bert.pooler.dense.weight" in a.params));
  assert.deepEqual(a.params["bert.encoder.layer.0.intermediate.dense.weight"].shape, [128, 512]); // [in, out] in the model
  assert.ok(Object.values(a.params).every((v) => v.trainable));
  const ta = await modelTensors(a), tb = await modelTensors(b);
  for (const [k, t] of ta) assert.deepEqual(t.data, tb.get(k)!.data, k);
  const word = ta.get("bert.embeddings.word_embeddings.weight")!.data;
  assert.ok(word.slice(0, 128).every((x) => x === 0), "row pad_token_id is zero");
  const w = Array.from(ta.get("bert.encoder.layer.0.output.dense.weight")!.data);
  const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std} ≈ initializer_range`);
  const cls = initModel({ ...config, num_labels: 3 }, "cls", 0);
  assert.deepEqual(cls.params["classifier.weight"].shape, [128, 3]);
  assert.ok("bert.pooler.dense.weight" in cls.params);
  [a, b, cls].forEach(disposeModel);
});

test("initModel with seed 0 is reproducible too (tfjs reads a seed of 0 as 'unseeded')", async () => {
  const config = presetConfig("tiny", { vocabSize: 50, maxPositions: 16 });
  const a = initModel(config, "qa", 0), b = initModel(config, "qa", 0), c = initModel(config, "qa", 1);
  const ta = await modelTensors(a), tb = await modelTensors(b), tc = await modelTensors(c);
  for (const [k, t] of ta) assert.deepEqual(t.data, tb.get(k)!.data, k);
  const word = "bert.embeddings.word_embeddings.weight"; // the first parameter: seed 0·1000 + 0 was the unseeded one
  assert.notDeepEqual(ta.get(word)!.data, tc.get(word)!.data, "seeds 0 and 1 differ");
  [a, b, c].forEach(disposeModel);
});

test("bad inputs are one-line user errors, checked before running the model", () => {
  const { model } = loadModelDir(path.join(FIXTURES, "tiny-bert-qa"), "qa"); // vocab 1000, max positions 64
  const attempt = (ids: number[][], types?: number[][]) => {
    const batch: Batch = { inputIds: tf.tensor2d(ids, undefined, "int32"), attentionMask: tf.onesLike(tf.tensor2d(ids, undefined, "int32")) as tf.Tensor2D,
      tokenTypeIds: types !== undefined ? tf.tensor2d(types, undefined, "int32") : undefined };
    try {
      forward(model, batch);
      return "no error";
    } catch (e) {
      assert.ok(isUserError(e), String(e));
      assert.ok(!(e as Error).message.includes("\n"), "one line");
      return (e as Error).message;
    }
  };
  assert.match(attempt([[2, 5, 1000]]), /input_ids: row 0, position 2 holds 1000, outside \[0, 1000\)/);
  assert.match(attempt([[2, -1]]), /input_ids: row 0, position 1 holds -1/);
  assert.match(attempt([new Array(65).fill(3)]), /sequence length 65 is longer than the model's max_position_embeddings 64/);
  assert.match(attempt([[2, 3]], [[0, 2]]), /token_type_ids: row 0, position 1 holds 2, outside \[0, 2\)/);
  assert.throws(() => clsLoss(tf.tensor2d([[0, 1]]), tf.tensor1d([2], "int32")), /labels: row 0 has label 2, outside \[0, 2\)/);
  disposeModel(model);
});

test("modelSummary: one row per block, totals equal the checkpoint's tensor sizes and bert-base's known count", () => {
  const { model } = loadModelDir(path.join(FIXTURES, "tiny-bert-cls"), "cls");
  const rows = summaryRows(model, 24);
  const fileTotal = [...readSafetensors(path.join(FIXTURES, "tiny-bert-cls", "model.safetensors")).tensors.values()].reduce((s, t) => s + t.data.length, 0);
  assert.equal(rows.reduce((s, r) => s + r.params, 0), fileTotal);
  assert.deepEqual(rows.map((r) => r.name), ["bert.embeddings", "bert.encoder.layer.0.attention", "bert.encoder.layer.0.intermediate+output",
    "bert.encoder.layer.1.attention", "bert.encoder.layer.1.intermediate+output", "bert.pooler", "classifier"]);
  assert.equal(rows[rows.length - 1].output_shape, "[batch, 2]");
  const text = modelSummary(model, 24);
  assert.match(text, /Model: "BertForSequenceClassification"/);
  assert.match(text, new RegExp(`Total params: ${fileTotal.toLocaleString("en-US")}`));
  disposeModel(model);
  // BertForQuestionAnswering on bert-base-uncased has 108,893,186 parameters (transformers' num_parameters()).
  // (checked on the parameter table that initModel, loading and the summary all walk; a real base model takes ~20 s to init)
  const baseSpecs = paramSpecs(presetConfig("base"), "qa");
  assert.equal(baseSpecs.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0), 108_893_186);
});
