// predictQA/answerQuestion glue: windows → batched forward → postprocess. Logit values are the model's business
// (test/bert.test.ts); here: structure, batching invariance, no tensor leaks, and refusing checkpoints without a QA head.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { QAExample } from "../lib/squad";
import { saveTokenizer, tokenizerFromVocab } from "../lib/tokenizer";
import { prepareFeatures } from "../lib/features";
import { disposeModel } from "../lib/bert";
import { answerQuestion, ASK_PROGRESS_MIN_WINDOWS, featureLogits, loadQAModel, predictQA } from "../lib/predict";
import { setDefaultProgressSink, type ProgressState } from "../lib/progress";
import { isUserError } from "../lib/errors";

const FIXTURES = path.join(__dirname, "fixtures");
const WORDS = "the a of in was is who what when where did denver broncos won super bowl 50 game played at levi stadium santa clara california february 7 2016 team champion league national football".split(" ");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-predict-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tokDir = path.join(tmp, "tok");
saveTokenizer(tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...WORDS, "?", ".", ","]), tokDir);

const CONTEXT = "Super Bowl 50 was played at Levi Stadium in Santa Clara, California, on February 7, 2016. The Denver Broncos won the game. " +
  "The National Football League champion team was Denver.";
const examples: QAExample[] = [
  { id: "q1", title: "", context: CONTEXT, question: "Who won Super Bowl 50?", answers: [], is_impossible: false },
  { id: "q2", title: "", context: CONTEXT, question: "Where was the game played?", answers: [], is_impossible: false },
  { id: "q3", title: "", context: "Denver won.", question: "Who won?", answers: [], is_impossible: false },
];
const OPTS = { maxLength: 32, docStride: 8, batchSize: 2, nBest: 32, maxAnswerLength: 6 }; // nBest >= window: every span is a candidate

test("predictQA: one answer per example, cut from its context; n-best probabilities sum to 1; no tensor leak", async () => {
  const { model, tok } = await loadQAModel(path.join(FIXTURES, "tiny-bert-qa"), tokDir);
  try {
    for (const version2 of [false, true]) {
      const before = tf.memory().numTensors;
      const r = await predictQA(model, tok, examples, { ...OPTS, version2 });
      assert.equal(tf.memory().numTensors, before, "predictQA leaves no tensors behind");
      assert.deepEqual(Object.keys(r.predictions), ["q1", "q2", "q3"]);
      assert.ok(r.stats.features > examples.length, "the long context was split into several windows");
      assert.equal(r.stats.batches, Math.ceil(r.stats.features / OPTS.batchSize));
      for (const ex of examples) {
        const list = r.nbest[ex.id];
        assert.ok(list.length > 0 && list.length <= OPTS.nBest + 1);
        assert.ok(Math.abs(list.reduce((s, n) => s + n.probability, 0) - 1) < 1e-9);
        for (const n of list) if (n.text !== "empty") assert.equal(ex.context.slice(n.start, n.end), n.text);
        const pred = r.predictions[ex.id];
        assert.ok(pred === "" ? version2 : ex.context.includes(pred), `${ex.id}: "${pred}"`);
      }
      assert.deepEqual(Object.keys(r.nullOdds).length, version2 ? 3 : 0);
    }
  } finally {
    disposeModel(model);
  }
});

test("featureLogits: batch size and padding do not change a feature's logits", async () => {
  const { model, tok } = await loadQAModel(path.join(FIXTURES, "tiny-bert-qa"), tokDir);
  try {
    const { features } = prepareFeatures(examples, tok, { maxLength: 32, docStride: 8 });
    const one = await featureLogits(model, features, tok.padId, 1);
    for (const size of [2, features.length]) {
      const other = await featureLogits(model, features, tok.padId, size);
      features.forEach((f, i) => {
        assert.ok(other.start[i].length >= f.inputIds.length, "rows come back in feature order");
        for (let j = 0; j < f.inputIds.length; j++) {
          assert.ok(Math.abs(one.start[i][j] - other.start[i][j]) < 1e-4 && Math.abs(one.end[i][j] - other.end[i][j]) < 1e-4, `batch ${size}: feature ${i} token ${j}`);
        }
      });
    }
  } finally {
    disposeModel(model);
  }
});

test("answerQuestion: answer, score and alternatives with character offsets", async () => {
  const { model, tok } = await loadQAModel(path.join(FIXTURES, "tiny-bert-qa"), tokDir);
  try {
    const before = tf.memory().numTensors;
    const a = await answerQuestion(model, tok, CONTEXT, "Who won?", { ...OPTS, alternatives: 3 });
    assert.equal(tf.memory().numTensors, before);
    assert.equal(CONTEXT.slice(a.start, a.end), a.answer);
    assert.ok(a.score > 0 && a.score <= 1);
    assert.ok(a.alternatives.length <= 3);
    for (const alt of a.alternatives) assert.equal(CONTEXT.slice(alt.start, alt.end), alt.text);
  } finally {
    disposeModel(model);
  }
});

test("answerQuestion shows progress once a text needs many windows (ASK_PROGRESS_MIN_WINDOWS), and none below", async () => {
  assert.ok(ASK_PROGRESS_MIN_WINDOWS <= 2000, "a bar well before a few thousand windows");
  const { model, tok } = await loadQAModel(path.join(FIXTURES, "tiny-bert-qa"), tokDir);
  const seen: ProgressState[] = [];
  setDefaultProgressSink((st) => seen.push(st));
  try {
    await answerQuestion(model, tok, CONTEXT, "Who won?", OPTS); // a handful of windows: quiet
    assert.equal(seen.length, 0);
    await answerQuestion(model, tok, CONTEXT, "Who won?", { ...OPTS, progressMinFeatures: 1 }); // the same rule, a lower bar (this text makes 2 windows)
    assert.ok(seen.length > 0 && seen.every((st) => st.label === "predict") && seen[seen.length - 1].finished);
  } finally {
    setDefaultProgressSink(undefined);
    disposeModel(model);
  }
});

test("loadQAModel refuses a classifier, a checkpoint without qa_outputs, and a model without tokenizer", async () => {
  await assert.rejects(loadQAModel(path.join(FIXTURES, "tiny-bert-cls"), tokDir),
    (e: unknown) => isUserError(e) && /BertForSequenceClassification.*not a question-answering model/.test((e as Error).message));
  const bare = path.join(tmp, "bare");
  fs.mkdirSync(bare);
  const config = JSON.parse(fs.readFileSync(path.join(FIXTURES, "tiny-bert-cls", "config.json"), "utf8"));
  delete config.architectures;
  fs.writeFileSync(path.join(bare, "config.json"), JSON.stringify(config));
  fs.copyFileSync(path.join(FIXTURES, "tiny-bert-cls", "model.safetensors"), path.join(bare, "model.safetensors"));
  const before = tf.memory().numTensors;
  await assert.rejects(loadQAModel(bare, tokDir), (e: unknown) => isUserError(e) && /no qa_outputs tensors/.test((e as Error).message));
  assert.equal(tf.memory().numTensors, before, "the refused model's tensors are freed");
  await assert.rejects(loadQAModel(path.join(FIXTURES, "tiny-bert-qa")), (e: unknown) => isUserError(e) && /--tokenizer/.test((e as Error).message));
});

// ---- the CLI commands built on predictQA ----
import { spawnSync } from "node:child_process";
const ROOT = path.join(__dirname, "..");
function bertqa(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, "lib", "cli", "bertqa.js"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  const out = r.stdout.trim();
  return { code: r.status, json: out !== "" ? JSON.parse(out) : undefined, stderr: r.stderr };
}
const modelDir = path.join(tmp, "qa-model"); // checkpoint + tokenizer in one directory, as saveModel writes it
fs.mkdirSync(modelDir);
for (const f of ["config.json", "model.safetensors"]) fs.copyFileSync(path.join(FIXTURES, "tiny-bert-qa", f), path.join(modelDir, f));
for (const f of fs.readdirSync(tokDir)) fs.copyFileSync(path.join(tokDir, f), path.join(modelDir, f));

test("bertqa predict writes predictions, n-best and null odds that bertqa evaluate accepts", () => {
  const data = path.join(FIXTURES, "metrics", "squad-v2-dev.json");
  const out = path.join(tmp, "preds.json"), nbest = path.join(tmp, "nbest.json"), na = path.join(tmp, "na.json");
  const r = bertqa("predict", "--model", modelDir, "--data", data, "--out", out, "--nbest-out", nbest, "--na-prob-out", na,
    "--max-length", "64", "--doc-stride", "16", "--batch-size", "4", "--backend", "cpu");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.examples, 12);
  assert.equal(r.json.version2, true);
  assert.deepEqual([r.json.max_length, r.json.doc_stride], [64, 16]);
  const preds = JSON.parse(fs.readFileSync(out, "utf8"));
  assert.equal(Object.keys(preds).length, 12);
  assert.equal(Object.keys(JSON.parse(fs.readFileSync(na, "utf8"))).length, 12);
  assert.equal(Object.keys(JSON.parse(fs.readFileSync(nbest, "utf8"))).length, 12);
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes(".tmp-")), [], "no temporary files left");
  const e = bertqa("evaluate", "--data", data, "--predictions", out, "--na-prob", na);
  assert.equal(e.code, 0, e.stderr);
  for (const k of ["exact", "f1", "total", "HasAns_exact", "NoAns_exact", "best_exact", "best_f1_thresh"]) assert.ok(k in e.json, k);
});

test("bertqa predict refuses a classification checkpoint with a one-line error", () => {
  const r = bertqa("predict", "--model", path.join(FIXTURES, "tiny-bert-cls"), "--tokenizer", tokDir,
    "--data", path.join(FIXTURES, "metrics", "squad-v1-dev.json"), "--out", path.join(tmp, "never.json"), "--backend", "cpu");
  assert.equal(r.code, 1);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], /BertForSequenceClassification.*not a question-answering model/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  assert.equal(fs.existsSync(path.join(tmp, "never.json")), false);
});

test("bertqa ask prints the answer, its score and alternatives with code-point offsets", () => {
  const context = "😀 Denver Broncos won Super Bowl 50 at Levi Stadium.";
  const r = bertqa("ask", "--model", modelDir, "--context", context, "--question", "Who won?", "--alternatives", "2", "--backend", "cpu");
  assert.equal(r.code, 0, r.stderr);
  const cps = Array.from(context);
  assert.equal(cps.slice(r.json.start, r.json.end).join(""), r.json.answer);
  assert.ok(r.json.alternatives.length <= 2);
  for (const a of r.json.alternatives) assert.equal(cps.slice(a.start, a.end).join(""), a.text);
});
