// The training loop: the loss goes down, a resumed run equals a straight one bit for bit, a divergence stops with the
// step named and the last good checkpoint kept, no tensors leak, classification trains and scores.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initModel, disposeModel, type BertModel } from "../lib/bert";
import { presetConfig, type BertConfig } from "../lib/config";
import { loadSquad, readClassificationCsv } from "../lib/squad";
import { loadTokenizer } from "../lib/tokenizer";
import { SAMPLE_FILES } from "../lib/sample";
import { trainQA, trainClassifier, epochOrder, lengthGroupedOrder, classificationScores, outOfMemory } from "../lib/train";
import { readSafetensors } from "../lib/safetensors";
import { prepareFeatures } from "../lib/features";
import { isUserError } from "../lib/errors";

const tok = loadTokenizer(SAMPLE_FILES.tokenizerDir);
const examples = loadSquad(SAMPLE_FILES.train).examples.slice(0, 16);
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-train-"));

/** A very small BERT so a step takes milliseconds on the cpu backend. */
function smallConfig(extra: Partial<BertConfig> = {}): BertConfig {
  return { ...presetConfig("tiny", { vocabSize: tok.idToToken.length, maxPositions: 64 }), hidden_size: 32, num_attention_heads: 2, intermediate_size: 64, num_hidden_layers: 1, pad_token_id: tok.padId, ...extra };
}
const base = { tokenizer: tok, train: examples, maxLength: 64, docStride: 32, batchSize: 4, quiet: true } as const;

test("training on a few sample questions lowers the loss; metrics.jsonl, loss.svg, model files and checkpoint are written", async () => {
  await tf.setBackend("cpu");
  const out = tmp();
  const model = initModel(smallConfig(), "qa", 1);
  const before = tf.memory().numTensors;
  const r = await trainQA({ ...base, model, outDir: out, epochs: 6, lr: 5e-3, warmupRatio: 0, logSteps: 4, eval: examples.slice(0, 4) });
  assert.equal(tf.memory().numTensors, before, "tensors leaked by training");
  const losses = r.history.filter((h) => h.loss !== undefined).map((h) => h.loss!);
  assert.ok(losses[losses.length - 1] < losses[0] - 0.3, `loss ${losses[0]} → ${losses[losses.length - 1]}`);
  const features = prepareFeatures(examples, tok, { maxLength: 64, docStride: 32 }).features.length;
  assert.equal(r.steps, 6 * Math.ceil(features / 4)); // ceil(features / batch) updates × 6 epochs
  for (const f of ["config.json", "model.safetensors", "metrics.jsonl", "eval.json", "loss.svg", "checkpoint/optimizer.safetensors", "checkpoint/trainer_state.json", "checkpoint/model.safetensors"]) {
    assert.ok(fs.existsSync(path.join(out, f)), f);
  }
  const lines = fs.readFileSync(path.join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.eval?.f1 !== undefined && l.eval.total === 4));
  assert.match(fs.readFileSync(path.join(out, "loss.svg"), "utf8"), /^<svg xmlns/);
  disposeModel(model);
});

async function runFor(out: string, stopAfter?: number, resume?: string): Promise<BertModel> {
  const model = initModel(smallConfig({ hidden_dropout_prob: 0.1 }), "qa", 2); // dropout on: masks must replay too
  let checks = 0;
  await trainQA({ ...base, model, outDir: out, maxSteps: 6, lr: 3e-3, gradAccum: 2, batchSize: 2, groupByLength: true, resume, shouldStop: () => stopAfter !== undefined && ++checks > stopAfter });
  return model;
}

test("resume: 3 steps + resume + 3 steps gives exactly the parameters of 6 straight steps (grad accumulation, dropout)", async () => {
  await tf.setBackend("cpu");
  const straight = await runFor(tmp());
  const out = tmp();
  const half = await runFor(out, 3);
  const state = JSON.parse(fs.readFileSync(path.join(out, "checkpoint", "trainer_state.json"), "utf8"));
  assert.equal(state.step, 3);
  disposeModel(half);
  const resumed = await runFor(out, undefined, out);
  for (const [name, p] of Object.entries(straight.params)) assert.deepEqual(Array.from(resumed.params[name].dataSync()), Array.from(p.dataSync()), name);
  disposeModel(straight);
  disposeModel(resumed);
  // Another dataset cannot continue this checkpoint.
  const other = initModel(smallConfig(), "qa", 2);
  await assert.rejects(trainQA({ ...base, train: examples.slice(0, 8), model: other, outDir: out, maxSteps: 6, gradAccum: 2, batchSize: 2, resume: out }),
    (e: unknown) => isUserError(e) && /trained on different data/.test((e as Error).message));
  disposeModel(other);
});

test("the loop queues step k+1 before it waits for step k's loss and norm, and logs the same numbers as waiting each step", { timeout: 120_000 }, async () => {
  await tf.setBackend("cpu");
  const backend = tf.engine().backend as unknown as { read: (id: object) => Promise<unknown> };
  const read = backend.read;
  // Each read may land only once the next step has started queuing (lrSchedule is asked for its rate), or on the last
  // step. A loop that awaited a step's numbers before queuing the next would never finish, and the race below fails.
  const maxSteps = 5;
  let queued = -1;
  const held: { after: number; go: () => void }[] = [];
  const release = () => { for (const h of held.filter((h) => h.after < queued || queued === maxSteps - 1)) { held.splice(held.indexOf(h), 1); h.go(); } };
  backend.read = (id) => new Promise((resolve) => { held.push({ after: queued, go: () => resolve(read.call(backend, id)) }); release(); });
  const lrSchedule = (step: number) => { queued = step; release(); return 3e-3; };
  const run = async (logSteps: number, gate: boolean) => {
    const model = initModel(smallConfig(), "qa", 5);
    try {
      const r = await trainQA({ ...base, batchSize: 2, model, outDir: tmp(), maxSteps, logSteps, lrSchedule: gate ? lrSchedule : () => 3e-3 }); // 5 steps: within the first epoch
      return r.history.filter((h) => h.loss !== undefined);
    } finally {
      disposeModel(model);
    }
  };
  let gated: Awaited<ReturnType<typeof run>>, timer: NodeJS.Timeout | undefined;
  try {
    gated = await Promise.race([run(maxSteps, true), new Promise<never>((_, no) => { timer = setTimeout(() => no(new Error("the loop waited for a step's numbers before queuing the next")), 30_000); })]);
  } finally {
    clearTimeout(timer);
    backend.read = read;
  }
  // Reading every step (logSteps 1 drains each one at once): the window mean and the last norm must match.
  const each = await run(1, false);
  assert.equal(gated.length, 1);
  assert.ok(Math.abs(gated[0].loss! - each.reduce((a, h) => a + h.loss!, 0) / maxSteps) <= 1e-5, `${gated[0].loss} vs ${JSON.stringify(each)}`); // both logged to 5 decimals
  assert.equal(gated[0].grad_norm, each[maxSteps - 1].grad_norm);
  assert.ok(each.every((h) => Number.isFinite(h.loss!) && h.grad_norm! > 0));
});

test("a diverging run stops with the step named and keeps the last good checkpoint", async () => {
  await tf.setBackend("cpu");
  const out = tmp();
  const model = initModel(smallConfig(), "qa", 3);
  await assert.rejects(
    trainQA({ ...base, model, outDir: out, maxSteps: 8, saveSteps: 1, lrSchedule: (step) => (step < 2 ? 1e-3 : 1e38) }),
    (e: unknown) => isUserError(e) && /training step [34]: diverged: .*last good checkpoint \(step [23]\)/.test((e as Error).message),
  );
  const state = JSON.parse(fs.readFileSync(path.join(out, "checkpoint", "trainer_state.json"), "utf8"));
  assert.ok(state.step >= 2 && state.step <= 3);
  for (const [name, t] of readSafetensors(path.join(out, "checkpoint", "model.safetensors")).tensors) {
    assert.ok(Array.from(t.data).every(Number.isFinite), `${name} finite in the kept checkpoint`);
  }
  disposeModel(model);
});

test("classification: trains on sentiment.csv and reports accuracy and macro-F1", async () => {
  await tf.setBackend("cpu");
  const rows = readClassificationCsv(SAMPLE_FILES.sentiment).slice(0, 48);
  const labels = [...new Set(rows.map((r) => r.label))].sort();
  const c = smallConfig({ num_labels: labels.length, id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])), label2id: Object.fromEntries(labels.map((l, i) => [l, i])) });
  const model = initModel(c, "cls", 4);
  const r = await trainClassifier({ model, tokenizer: tok, train: rows, eval: rows.slice(0, 16), outDir: tmp(), epochs: 2, batchSize: 8, lr: 3e-3, quiet: true });
  assert.ok(r.eval !== undefined && r.eval.accuracy >= 0 && r.eval.accuracy <= 100 && r.eval.total === 16);
  assert.ok(Number.isFinite(r.loss));
  disposeModel(model);
});

test("classificationScores and epochOrder", () => {
  // gold 0 0 1 1 2, pred 0 1 1 1 0: acc 3/5; F1 per class: 0: 2·1/(2+1+1)=0.5, 1: 2·2/(4+1)=0.8, 2: 0 → macro 43.33
  const s = classificationScores([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 3);
  assert.equal(s.accuracy, 60);
  assert.ok(Math.abs(s.f1 - 43.3333) < 1e-3);
  const a = epochOrder(10, 42, 0);
  assert.deepEqual([...a].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(epochOrder(10, 42, 0), a);
  assert.notDeepEqual(epochOrder(10, 42, 1), a);
});

test("outOfMemory recognises allocation failures (wasm's full 4 GB heap included) and nothing else", () => {
  assert.equal(outOfMemory(new WebAssembly.RuntimeError("memory access out of bounds\n    at wasm://...")), "memory access out of bounds");
  assert.equal(outOfMemory(new RangeError("Array buffer allocation failed")), "Array buffer allocation failed");
  assert.equal(outOfMemory(new Error("Requested texture size exceeds maximum; OOM when allocating tensor")), "Requested texture size exceeds maximum; OOM when allocating tensor");
  assert.equal(outOfMemory(new Error("shapes [2,3] and [4] do not match")), undefined);
});

test("lengthGroupedOrder: a permutation whose mega-batches of 50 batches are sorted longest first, and less padding", () => {
  const lengths = Array.from({ length: 1000 }, (_, i) => 20 + ((i * 7919) % 61)); // 20..80 tokens
  const order = lengthGroupedOrder(lengths, 4, 42, 0);
  assert.deepEqual([...order].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(lengthGroupedOrder(lengths, 4, 42, 0), order); // seeded: a resumed run sees the same batches
  assert.notDeepEqual(lengthGroupedOrder(lengths, 4, 42, 1), order);
  for (let m = 0; m < 1000; m += 200) {
    const mega = order.slice(m, m + 200); // 50 batches of 4, drawn from the epoch's permutation
    assert.deepEqual(new Set(mega), new Set(epochOrder(1000, 42, 0).slice(m, m + 200)));
    for (let i = 1; i < mega.length; i++) assert.ok(lengths[mega[i - 1]] >= lengths[mega[i]]);
  }
  const padded = (o: number[]) => { let t = 0; for (let i = 0; i < o.length; i += 4) t += 4 * Math.max(...o.slice(i, i + 4).map((j) => lengths[j])); return t; };
  assert.ok(padded(order) < 0.85 * padded(epochOrder(1000, 42, 0)), "grouping should cut padded tokens");
});
