// `bertqa train` / `bench` / `doctor` as a user runs them: bad flags, an unknown preset, a mismatched resume are one
// line on stderr with exit 1; doctor prints one JSON object.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { SAMPLE_FILES } from "../lib/sample";

const BIN = path.join(__dirname, "..", "lib", "cli", "bertqa.js");
function bertqa(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, BERTQA_WASM_THREADS: "1" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}
function oneLineError(r: ReturnType<typeof bertqa>, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
  assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
}

test("train: bad flags and unknown presets are one-line errors", () => {
  oneLineError(bertqa("train", "--model", "tiny", "--train", SAMPLE_FILES.train, "--out", "x", "--bogus"), /unknown flag --bogus/);
  oneLineError(bertqa("train", "--model", "tiny", "--train", SAMPLE_FILES.train, "--out", "x", "--lr", "fast"), /--lr must be a number/);
  oneLineError(bertqa("train", "--model", "tiny", "--train", SAMPLE_FILES.train, "--out", "x"), /--tokenizer.*is required to train preset 'tiny'/);
  oneLineError(bertqa("train", "--model", "./no-such-model", "--train", SAMPLE_FILES.train, "--out", "x"), /no-such-model/);
  oneLineError(bertqa("train", "--model", "tiny", "--train", "missing.json", "--out", "x"), /missing\.json: file not found/);
  oneLineError(bertqa("train", "--model", "tiny", "--tokenizer", SAMPLE_FILES.tokenizerDir, "--train", SAMPLE_FILES.train, "--out", "x", "--pad-to-multiple-of", "0"), /--pad-to-multiple-of: must be a positive number of tokens, got 0/);
  oneLineError(bertqa("bench", "--config", "huge"), /unknown preset 'huge'/);
});

test("train from a preset writes a model + JSON summary; resuming with other data is refused in one line", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-cli-train-"));
  const small = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-cli-train-data-")), "small.json"); // not in --out: train refuses a folder holding other files
  const data = JSON.parse(fs.readFileSync(SAMPLE_FILES.train, "utf8"));
  data.data = data.data.slice(0, 2);
  fs.writeFileSync(small, JSON.stringify(data));
  const r = bertqa("train", "--model", "tiny", "--tokenizer", SAMPLE_FILES.tokenizerDir, "--train", small, "--out", out, "--max-steps", "2", "--batch-size", "4", "--max-length", "64", "--backend", "wasm", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.equal(summary.steps, 2);
  assert.equal(summary.stopped, "max_steps");
  assert.ok(fs.existsSync(path.join(out, "model.safetensors")) && fs.existsSync(path.join(out, "checkpoint", "trainer_state.json")));
  oneLineError(bertqa("train", "--model", "tiny", "--tokenizer", SAMPLE_FILES.tokenizerDir, "--train", SAMPLE_FILES.dev, "--out", out, "--max-steps", "2", "--batch-size", "4", "--max-length", "64", "--resume", out, "--quiet"), /trained on different data/);
});

test("doctor prints one JSON object and exits 0 when a backend works", () => {
  const r = bertqa("doctor");
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim());
  assert.equal(j.ok, true);
  assert.ok(["wasm", "cpu", "tensorflow", "webgpu"].includes(j.auto));
  assert.ok(j.backends.some((b: { name: string; available: boolean }) => b.name === "cpu" && b.available));
  assert.match(r.stderr, /--backend auto uses:/);
});

test("demo (short): trains, writes the report files, and its last stdout line is the JSON summary", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-cli-demo-"));
  const r = bertqa("demo", "--steps", "4", "--max-train", "40", "--out", out, "--backend", "wasm", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  for (const k of ["exact", "f1", "total", "seconds"]) assert.equal(typeof last[k], "number", k);
  assert.equal(last.total, 300); // the whole dev split is scored
  assert.equal(last.steps, 4);
  assert.ok(last.exact >= 0 && last.exact <= 100 && last.f1 >= last.exact - 1e-9);
  for (const f of ["config.json", "model.safetensors", "metrics.jsonl", "eval.json", "loss.svg", "report.md", "predictions.json"]) {
    assert.ok(fs.existsSync(path.join(out, f)), f);
  }
  const preds = JSON.parse(fs.readFileSync(path.join(out, "predictions.json"), "utf8"));
  assert.equal(Object.keys(preds).length, 300);
  assert.match(fs.readFileSync(path.join(out, "report.md"), "utf8"), /\| exact match \| [\d.]+ \|/);
  oneLineError(bertqa("demo", "--backend", "gpu"), /unknown backend 'gpu'/);
});

test("bench: pipelined training steps on cpu report consistent speed, no leaked tensors, and where the step's time goes by kernel", async () => {
  const tf = await import("@tensorflow/tfjs");
  const { benchTraining } = await import("../lib/bench");
  await tf.setBackend("cpu");
  const r = await benchTraining({ preset: "tiny", batchSize: 2, seqLen: 32, steps: 3, warmup: 1, vocabSize: 500, seed: 0 });
  assert.equal(r.live_tensors_after, 0, "tensors leaked by the bench");
  assert.ok(r.step_ms > 0 && r.step_ms_min > 0 && r.step_ms_min <= r.step_ms);
  assert.ok(Math.abs(r.examples_per_s - (1000 * 2) / r.step_ms) < 0.01 * r.examples_per_s + 0.01);
  const rows = r.kernel_time ?? [];
  assert.ok(rows.length > 3, "cpu times every kernel under tf.profile");
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].ms >= rows[i].ms, "costliest first");
  for (const k of rows) assert.ok(tf.getKernel(k.kernel, "cpu") !== undefined, `${k.kernel}: a registered kernel, not an op scope`);
  assert.ok(rows.some((k) => k.kernel === "BatchMatMul" || k.kernel === "_FusedMatMul"));
  assert.ok(rows.reduce((n, k) => n + k.launches, 0) <= r.kernels_per_step);
});

test("bench --inference: forward passes only (no gradient kernels), fewer kernels than a training step, no leaked tensors", async () => {
  const tf = await import("@tensorflow/tfjs");
  const { benchInference, benchTraining } = await import("../lib/bench");
  await tf.setBackend("cpu");
  const o = { preset: "tiny" as const, batchSize: 2, seqLen: 32, steps: 2, warmup: 1, vocabSize: 500, seed: 0 };
  const r = await benchInference(o);
  assert.equal(r.mode, "inference");
  assert.equal(r.live_tensors_after, 0, "tensors leaked by the bench");
  assert.ok(r.step_ms > 0 && r.peak_rss_mb! > 0 && r.cpu_ms_per_step! > 0);
  const names = new Set((r.kernel_time ?? []).map((k) => k.kernel));
  assert.ok(names.has("_FusedMatMul") && !names.has("ScatterNd") && !names.has("BertqaAdamW"), `forward kernels only: ${[...names]}`);
  const t = await benchTraining(o);
  assert.equal(t.mode, "train");
  assert.ok(r.kernels_per_step < t.kernels_per_step / 2, `${r.kernels_per_step} kernels forward vs ${t.kernels_per_step} a training step`);
});
