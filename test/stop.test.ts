// Interactive use of the library in a notebook kernel: ■ (requestStop) ends long work at its next step with one line,
// one training run per output folder, models replaced and released by slot, and a released model named, not a stack.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { forward, initModel, type BertModel } from "../lib/bert";
import { presetConfig, type BertConfig } from "../lib/config";
import { loadSquad } from "../lib/squad";
import { loadTokenizer } from "../lib/tokenizer";
import { SAMPLE_FILES } from "../lib/sample";
import { trainQA } from "../lib/train";
import { prepareFeatures, prepareFeaturesAsync } from "../lib/features";
import { predictQA } from "../lib/predict";
import { isUserError } from "../lib/errors";
import { activeWork, isStopped, requestStop } from "../lib/stop";
import { releaseModel, replaceModel } from "../lib/session";
import { formatProgress, type ProgressState } from "../lib/progress";
import { progressHtml } from "../lib/display";

const tok = loadTokenizer(SAMPLE_FILES.tokenizerDir);
const examples = loadSquad(SAMPLE_FILES.train).examples.slice(0, 24);
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-stop-"));
function smallModel(seed = 1): BertModel {
  const c: BertConfig = { ...presetConfig("tiny", { vocabSize: tok.idToToken.length, maxPositions: 64 }), hidden_size: 32, num_attention_heads: 2, intermediate_size: 64, num_hidden_layers: 1, pad_token_id: tok.padId };
  return initModel(c, "qa", seed);
}
const base = { tokenizer: tok, train: examples, maxLength: 64, docStride: 32, batchSize: 4, logSteps: 1, maxSteps: 6 } as const;

test("■ (requestStop) stops trainQA at the next step: checkpoint at that step, one line saying how to resume, progress shows where", async () => {
  await tf.setBackend("cpu");
  const out = tmp(), model = smallModel();
  const states: ProgressState[] = [];
  const run = trainQA({ ...base, model, outDir: out, progress: (s) => {
    states.push(s);
    if (s.label === "train" && s.done === 2 && !s.finished) requestStop(); // ■ pressed during step 3's wait
  } });
  const err = await run.then(() => undefined, (e: unknown) => e);
  assert.ok(isStopped(err) && isUserError(err), `a stop, printed as a user error: ${String(err)}`);
  const msg = (err as Error).message;
  assert.equal(msg.split("\n").length, 1, "one line");
  assert.match(msg, /stopped \(■\) at step 2 of 6: checkpoint in .*checkpoint; to continue, train again with resume: /);
  const saved = JSON.parse(fs.readFileSync(path.join(out, "checkpoint", "trainer_state.json"), "utf8"));
  assert.equal(saved.step, 2, "the checkpoint holds the step it stopped at");
  assert.deepEqual(activeWork(), [], "no run is left registered");
  const last = states[states.length - 1];
  assert.deepEqual([last.done, last.total, last.stopped], [2, 6, true]);
  assert.match(formatProgress(last), /2\/6 .*stopped/);
  assert.match(progressHtml(last), /stopped at 2/);
  assert.doesNotMatch(progressHtml(last), /done/);
  // it resumes from there to the end
  const resumed = await trainQA({ ...base, model, outDir: out, resume: out, quiet: true });
  assert.deepEqual([resumed.steps, resumed.stopped], [6, "max_steps"]);
  tf.dispose(Object.values(model.params));
});

test("a second training run into an output folder still being written is refused with one line; ■ then stops the first", async () => {
  await tf.setBackend("cpu");
  const out = tmp(), a = smallModel(1), b = smallModel(2);
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const first = trainQA({ ...base, maxSteps: 200, model: a, outDir: out, progress: (s) => { if (s.label === "train" && s.done >= 1) started(); } });
  first.catch(() => undefined);
  await running;
  const err = await trainQA({ ...base, model: b, outDir: path.join(out, "."), quiet: true }).then(() => undefined, (e: unknown) => e);
  assert.ok(isUserError(err), String(err));
  assert.match((err as Error).message, /is being written by a training run still going in this kernel \(step \d+ of 200\).*press ■/);
  const other = await trainQA({ ...base, maxSteps: 1, model: b, outDir: tmp(), quiet: true });
  assert.equal(other.steps, 1, "another folder trains meanwhile");
  assert.equal(requestStop(), 1, "one run to stop");
  await assert.rejects(first, (e: unknown) => isStopped(e));
  assert.deepEqual(activeWork(), []);
  tf.dispose([...Object.values(a.params), ...Object.values(b.params)]);
});

test("replaceModel releases the model it replaces (memory stays at one model); a released model names the cell to run", async () => {
  await tf.setBackend("cpu");
  const before = tf.memory().numTensors;
  let model = replaceModel("test slot", smallModel(), "section 3's training cell");
  const one = tf.memory().numTensors;
  const first = model;
  for (let i = 0; i < 4; i++) model = replaceModel("test slot", smallModel(), "section 3's training cell");
  assert.equal(tf.memory().numTensors, one, "four replacements: still one model allocated");
  const ids = tf.tensor2d([[tok.clsId, tok.sepId]], undefined, "int32"), mask = tf.ones([1, 2], "int32") as tf.Tensor2D;
  assert.throws(() => forward(first, { inputIds: ids, attentionMask: mask }), (e: unknown) => isUserError(e) &&
    /forward: this model was released .* \(run section 3's training cell again to build it\)$/.test((e as Error).message));
  await assert.rejects(trainQA({ ...base, model: first, outDir: tmp(), quiet: true }), (e: unknown) => isUserError(e) && /run section 3's training cell again/.test((e as Error).message));
  await assert.rejects(predictQA(first, tok, examples.slice(0, 2), { maxLength: 64, docStride: 32 }), (e: unknown) => isUserError(e) && /released/.test((e as Error).message));
  tf.dispose([ids, mask]);
  releaseModel("test slot");
  releaseModel("test slot"); // a clean-up cell run twice
  assert.equal(tf.memory().numTensors, before);
});

test("replaceModel refuses to release a model that is still being trained (and releases the new one)", async () => {
  await tf.setBackend("cpu");
  const out = tmp();
  const a = replaceModel("busy slot", smallModel(), "the training cell");
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const run = trainQA({ ...base, maxSteps: 200, model: a, outDir: out, progress: (s) => { if (s.label === "train" && s.done >= 1) started(); } });
  run.catch(() => undefined);
  await running;
  const n = tf.memory().numTensors;
  assert.throws(() => replaceModel("busy slot", smallModel(), "the training cell"), (e: unknown) => isUserError(e) && /still being trained .*press ■/.test((e as Error).message));
  assert.equal(tf.memory().numTensors, n, "the refused new model was released");
  requestStop();
  await assert.rejects(run, (e: unknown) => isStopped(e));
  releaseModel("busy slot");
});

test("prepareFeaturesAsync gives prepareFeatures' features, and ■ stops it with one line", async () => {
  const opts = { maxLength: 64, docStride: 32, progress: false };
  assert.deepEqual(await prepareFeaturesAsync(examples, tok, opts), prepareFeatures(examples, tok, opts));
  const many = loadSquad(SAMPLE_FILES.train).examples;
  const run = prepareFeaturesAsync(many, tok, opts);
  requestStop(); // at once: the 6000 sample questions can take under pollStop's 100 ms, so a later ■ could find it done
  await assert.rejects(run, (e: unknown) => isStopped(e) && /^feature preparation stopped \(■\) at example \d+ of 6000; nothing was kept/.test((e as Error).message));
  assert.deepEqual(activeWork(), []);
});
