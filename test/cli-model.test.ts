// `bertqa forward` and `bertqa convert` as a user runs them: the fixtures' case.json in, transformers' numbers out;
// an old-style checkpoint converted to today's layout; mistakes end in one line and exit code 1.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readSafetensors, writeSafetensors, type TensorMap } from "../lib/safetensors";

const ROOT = path.join(__dirname, "..");
const FIXTURES = path.join(__dirname, "fixtures");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-cli-model-"));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

function bertqa(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, "lib/cli/bertqa.js"), ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, HF_HUB_OFFLINE: "1" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function maxDiff(a: unknown, b: unknown): number {
  const x = [a].flat(3) as number[], y = [b].flat(3) as number[];
  assert.equal(x.length, y.length);
  return Math.max(...x.map((v, i) => Math.abs(v - y[i])));
}

for (const name of ["tiny-bert-qa", "tiny-bert-cls", "tiny-distilbert-qa"]) {
  test(`bertqa forward on ${name}/case.json reproduces transformers' outputs and loss`, () => {
    const out = path.join(TMP, `${name}.json`);
    const r = bertqa("forward", "--model", path.join(FIXTURES, name), "--inputs", path.join(FIXTURES, name, "case.json"), "--out", out, "--backend", "cpu");
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout); // stdout is exactly one JSON object
    assert.equal(summary.task, name.includes("cls") ? "cls" : "qa");
    const got = JSON.parse(fs.readFileSync(out, "utf8"));
    const want = JSON.parse(fs.readFileSync(path.join(FIXTURES, name, "case.json"), "utf8"));
    const keys = name.includes("cls") ? ["logits", "last_hidden_state", "loss"] : ["start_logits", "end_logits", "last_hidden_state", "loss"];
    for (const k of keys) assert.ok(maxDiff(got[k], want[k]) < 1e-4, `${name}: ${k}`);
    assert.ok(Math.abs(summary.loss - want.loss) < 1e-4);
  });
}

test("bertqa convert: an old-style checkpoint becomes the modern layout with identical values", () => {
  const old = path.join(TMP, "old");
  fs.mkdirSync(old);
  const ref = readSafetensors(path.join(FIXTURES, "tiny-bert-qa", "model.safetensors")).tensors;
  const renamed: TensorMap = new Map();
  for (const [k, t] of ref) renamed.set(k.replace(/^bert\./, "").replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta"), t);
  renamed.set("cls.predictions.bias", { dtype: "float32", shape: [1000], data: new Float32Array(1000) }); // a pretraining head: left out
  writeSafetensors(path.join(old, "model.safetensors"), renamed);
  fs.copyFileSync(path.join(FIXTURES, "tiny-bert-qa", "config.json"), path.join(old, "config.json"));
  fs.writeFileSync(path.join(old, "vocab.txt"), "[PAD]\n[UNK]\n");
  const out = path.join(TMP, "converted");
  const r = bertqa("convert", "--model", old, "--out", out);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.deepEqual([summary.task, summary.left_out, summary.newly_initialized], ["qa", ["cls.predictions.bias"], []]);
  const conv = readSafetensors(path.join(out, "model.safetensors")).tensors;
  assert.deepEqual([...conv.keys()].sort(), [...ref.keys()].sort());
  for (const [k, t] of ref) assert.deepEqual(conv.get(k)!.data, t.data, k);
  assert.ok(fs.existsSync(path.join(out, "vocab.txt")), "tokenizer files travel with the model");
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")).architectures, ["BertForQuestionAnswering"]);
});

test("mistakes end in one line on stderr and exit code 1", () => {
  const bad = path.join(TMP, "bad-case.json");
  const run = (inputs: unknown) => {
    fs.writeFileSync(bad, JSON.stringify(inputs));
    return bertqa("forward", "--model", path.join(FIXTURES, "tiny-bert-qa"), "--inputs", bad, "--out", path.join(TMP, "x.json"), "--backend", "cpu");
  };
  const cases: [unknown, RegExp][] = [
    [{ input_ids: [[2, 3], [4]] }, /'input_ids' row 1 has 1 entries, row 0 has 2/],
    [{ input_ids: [[2, 1000]] }, /input_ids: row 0, position 1 holds 1000, outside \[0, 1000\) of the model's vocab_size/],
    [{ input_ids: [new Array(65).fill(5)] }, /sequence length 65 is longer than the model's max_position_embeddings 64/],
    [{ input_ids: [[2, 3]], start_positions: [1] }, /give both start_positions and end_positions, or neither/],
    [{ attention_mask: [[1]] }, /missing 'input_ids'/],
  ];
  for (const [inputs, message] of cases) {
    const r = run(inputs);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], message);
    assert.equal(r.stdout, "");
  }
  const missing = bertqa("forward", "--model", path.join(TMP, "nope"), "--inputs", path.join(FIXTURES, "tiny-bert-qa", "case.json"), "--out", path.join(TMP, "x.json"), "--backend", "cpu");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope: no such model directory/);
});
