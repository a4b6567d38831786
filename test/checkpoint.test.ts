// Never lose the user's files, in the training loop: a write refused anywhere (checkpoint files, the swap's renames,
// the final model, the log) is one line saying which checkpoint is intact, the previous checkpoint stays byte for
// byte, and --resume reproduces the uninterrupted run bit for bit. At every instant of a save one complete checkpoint
// is findable; a killed run's leftovers are removed and its log cut back; the folder belongs to one run at a time.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as tf from "@tensorflow/tfjs";
import { initModel, disposeModel } from "../lib/bert";
import { presetConfig, type BertConfig } from "../lib/config";
import { loadSquad } from "../lib/squad";
import { loadTokenizer } from "../lib/tokenizer";
import { SAMPLE_FILES } from "../lib/sample";
import { trainQA, type QATrainOptions } from "../lib/train";
import { newestCheckpoint } from "../lib/rundir";
import { injectedError, setFaultHook, type FaultEvent } from "../lib/fsutil";
import { LOCK_FILE } from "../lib/platform/lockfile";
import { isUserError } from "../lib/errors";

const tok = loadTokenizer(SAMPLE_FILES.tokenizerDir);
const examples = loadSquad(SAMPLE_FILES.train).examples.slice(0, 16);
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-ckpt-"));

function smallConfig(extra: Partial<BertConfig> = {}): BertConfig {
  return { ...presetConfig("tiny", { vocabSize: tok.idToToken.length, maxPositions: 64 }), hidden_size: 32, num_attention_heads: 2, intermediate_size: 64, num_hidden_layers: 1, pad_token_id: tok.padId, hidden_dropout_prob: 0.1, ...extra };
}
// 16 questions → 4 batches per epoch: 6 steps cross an epoch end; checkpoints at steps 2, 4 (epoch end) and 6.
const base = { tokenizer: tok, train: examples, maxLength: 64, docStride: 32, batchSize: 4, quiet: true, maxSteps: 6, saveSteps: 2, logSteps: 1, lr: 3e-3 } as const;

type Params = Record<string, Float32Array>;
/** Train a fresh model (same seed every time) into `out`; the final parameters, or the error. */
async function train(out: string, extra: Partial<QATrainOptions> = {}): Promise<{ params?: Params; error?: Error }> {
  const model = initModel(smallConfig(), "qa", 2);
  try {
    await trainQA({ ...base, model, outDir: out, ...extra });
    return { params: Object.fromEntries(Object.entries(model.params).map(([k, v]) => [k, v.dataSync() as Float32Array])) };
  } catch (e) {
    return { error: e as Error };
  } finally {
    disposeModel(model);
  }
}

function assertSameParams(got: Params | undefined, want: Params, label: string): void {
  assert.ok(got !== undefined, `${label}: no parameters`);
  for (const [name, p] of Object.entries(want)) assert.deepEqual(Array.from(got[name]), Array.from(p), `${label}: ${name}`);
}

/** metrics.jsonl without the wall-clock fields: what a resumed run must reproduce line for line. */
function logLines(out: string): string[] {
  return fs.readFileSync(path.join(out, "metrics.jsonl"), "utf8").trim().split("\n")
    .map((l) => { const { elapsed_s: _e, examples_per_s: _x, ...rest } = JSON.parse(l); return JSON.stringify(rest); });
}

function filesOf(dir: string): Record<string, string> {
  return Object.fromEntries(fs.readdirSync(dir).sort().map((f) => [f, fs.readFileSync(path.join(dir, f)).toString("base64")]));
}

let straight: { params: Params; log: string[] } | undefined;
async function straightRun(): Promise<{ params: Params; log: string[] }> {
  if (straight === undefined) {
    const out = tmp();
    const r = await train(out);
    assert.ok(r.params !== undefined, String(r.error));
    straight = { params: r.params, log: logLines(out) };
  }
  return straight;
}

// Each fault: where it strikes (the n-th time a matching event happens), the code, and the checkpoint left intact.
const FAULTS: { name: string; code: string; n: number; match: (e: FaultEvent) => boolean; kept: number; file: RegExp }[] = [
  { name: "disk full part-way through the model weights of the 2nd checkpoint", code: "ENOSPC", n: 2, kept: 2, file: /checkpoint\.tmp-\d+\/model\.safetensors: cannot write the model weights of the checkpoint at step 4 \(\d/,
    match: (e) => e.kind === "write" && /checkpoint\.tmp-/.test(e.file) && e.file.endsWith("model.safetensors") && e.offset === 65536 },
  { name: "quota exceeded part-way through the optimizer state", code: "EDQUOT", n: 2, kept: 2, file: /checkpoint\.tmp-\d+\/optimizer\.safetensors: cannot write the optimizer state/,
    match: (e) => e.kind === "write" && /checkpoint\.tmp-/.test(e.file) && e.file.endsWith("optimizer.safetensors") && e.offset === 65536 },
  { name: "read-only at the trainer state", code: "EROFS", n: 2, kept: 2, file: /trainer_state\.json: cannot write the trainer state of the checkpoint at step 4/,
    match: (e) => e.kind === "write" && e.file.endsWith("trainer_state.json") },
  { name: "permission denied renaming the filled checkpoint", code: "EACCES", n: 2, kept: 2, file: /checkpoint\.next: cannot write the checkpoint at step 4/,
    match: (e) => e.kind === "point" && e.name === "rename" && e.file.endsWith("checkpoint.next") },
  { name: "refused between the swap's two renames (checkpoint/ gone, checkpoint.next complete)", code: "EIO", n: 2, kept: 4, file: /checkpoint: cannot write the new checkpoint/,
    match: (e) => e.kind === "point" && e.name === "rename" && e.file.endsWith(`${path.sep}checkpoint`) },
  { name: "disk full writing the metrics log", code: "ENOSPC", n: 3, kept: 2, file: /metrics\.jsonl: cannot write the metrics log/,
    match: (e) => e.kind === "write" && e.file.endsWith("metrics.jsonl") },
  { name: "disk full writing the final model", code: "ENOSPC", n: 1, kept: 6, file: /model\.safetensors: cannot write the model weights of the trained model/,
    match: (e) => e.kind === "write" && !/checkpoint/.test(e.file) && e.file.endsWith("model.safetensors") && e.offset === 65536 },
];

for (const f of FAULTS) {
  test(`fault: ${f.name} (${f.code}): one line, checkpoint ${f.kept} intact, nothing left over, --resume equals the straight run`, async () => {
    await tf.setBackend("cpu");
    const want = await straightRun();
    const out = tmp();
    let seen = 0, before: Record<string, string> | undefined;
    setFaultHook((e) => {
      if (!f.match(e) || ++seen !== f.n) return;
      const last = newestCheckpoint(out);
      if (last !== undefined) before = filesOf(last.dir); // what the previous checkpoint holds as the fault strikes
      throw injectedError(f.code, e.file);
    });
    let r: Awaited<ReturnType<typeof train>>;
    try {
      r = await train(out);
    } finally {
      setFaultHook(undefined);
    }
    assert.ok(r.error !== undefined && isUserError(r.error), `expected a one-line error, got ${r.error?.stack ?? "success"}`);
    const line = r.error.message;
    assert.ok(!line.includes("\n"), line);
    assert.match(line, f.file);
    assert.match(line, new RegExp(`\\[${f.code}\\]; the last checkpoint \\(step ${f.kept}\\) in .* is intact \\(.*, then continue with --resume `));
    const kept = newestCheckpoint(out);
    assert.equal(kept?.step, f.kept);
    if (f.kept !== 6) assert.deepEqual(filesOf(kept!.dir), before, "the previous checkpoint is unchanged, byte for byte");
    const left = fs.readdirSync(out).filter((n) => /\.tmp-|\.model-|^\.bertqa\.lock$/.test(n));
    assert.deepEqual(left, [], "no temporary file or folder, no lock");
    const resumed = await train(out, { resume: out });
    assert.equal(resumed.error, undefined, resumed.error?.message);
    assertSameParams(resumed.params, want.params, "resumed");
    assert.deepEqual(logLines(out), want.log, "metrics.jsonl: each step once, as in the straight run");
    assert.ok(fs.existsSync(path.join(out, "model.safetensors")));
  });
}

test("at every write and rename of every save, a complete checkpoint is findable and never older than one found before", async () => {
  await tf.setBackend("cpu");
  const out = tmp();
  let newest = 0, checks = 0, swaps = 0;
  setFaultHook((e) => {
    if (e.kind === "point" && e.name === "checkpoint-swap") swaps++;
    const found = newestCheckpoint(out);
    checks++;
    if (newest > 0) assert.ok(found !== undefined && found.step >= newest, `at ${JSON.stringify(e)}: found ${found?.step}, had ${newest}`);
    newest = Math.max(newest, found?.step ?? 0);
  });
  try {
    const r = await train(out);
    assert.equal(r.error, undefined, r.error?.message);
  } finally {
    setFaultHook(undefined);
  }
  assert.equal(newest, 6);
  assert.equal(swaps, 2, "checkpoints 4 and 6 replaced an older one");
  assert.ok(checks > 20, `${checks} checks`);
});

test("a killed run's leftovers go, its lock is taken over, its swap is finished and its log cut back; the result equals the straight run", async () => {
  await tf.setBackend("cpu");
  const want = await straightRun();
  const out = tmp();
  let calls = 0;
  const stopped = await train(out, { shouldStop: () => ++calls > 4 }); // interrupted: checkpoint at step 4
  assert.equal(stopped.error, undefined);
  // What a kill -9 between the swap's two renames, after two more logged steps, leaves behind:
  fs.renameSync(path.join(out, "checkpoint"), path.join(out, "checkpoint.next"));
  fs.mkdirSync(path.join(out, "checkpoint.prev"));
  fs.writeFileSync(path.join(out, "checkpoint.prev", "config.json"), "{}"); // an older one, half removed
  fs.appendFileSync(path.join(out, "metrics.jsonl"), '{"step":5,"loss":9}\n{"step":6,"loss":9}\n');
  fs.mkdirSync(path.join(out, "checkpoint.tmp-99999"));
  fs.writeFileSync(path.join(out, "checkpoint.tmp-99999", "model.safetensors"), "partial");
  fs.mkdirSync(path.join(out, ".model-99999"));
  fs.writeFileSync(path.join(out, "eval.json.tmp-99999-1-0"), "{");
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
  fs.writeFileSync(path.join(out, LOCK_FILE), JSON.stringify({ pid: Number(dead), hostname: os.hostname(), command: "bertqa train", started: "2026-01-01T00:00:00Z" }));
  assert.equal(newestCheckpoint(out)?.step, 4, "the complete checkpoint.next is found while checkpoint/ is missing");
  assert.equal(newestCheckpoint(path.join(out, "checkpoint"))?.step, 4, "also through the path the user knows");
  const notes: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => { notes.push(String(s)); return true; }) as typeof process.stderr.write;
  let resumed: Awaited<ReturnType<typeof train>>;
  try {
    resumed = await train(out, { resume: out });
  } finally {
    process.stderr.write = write;
  }
  assert.equal(resumed.error, undefined, resumed.error?.message);
  assert.ok(notes.some((n) => n.includes(`took over the lock of PID ${dead}`)), notes.join(""));
  assertSameParams(resumed.params, want.params, "resumed after a kill");
  assert.deepEqual(logLines(out), want.log, "metrics.jsonl cut back to step 4, then steps 5 and 6 once");
  assert.deepEqual(fs.readdirSync(out).sort(), ["checkpoint", "config.json", "loss.svg", "metrics.jsonl", "model.safetensors"]);
});

test("the folder belongs to one run: a run, or foreign files, are refused naming the ways on; overwrite keeps foreign files; a second run in this process is refused", async () => {
  await tf.setBackend("cpu");
  const out = tmp();
  assert.equal((await train(out, { eval: examples.slice(0, 4) })).error, undefined);
  const again = await train(out);
  assert.match(again.error?.message ?? "", /already holds a training run \(a model, a checkpoint at step 6, a training log \(metrics\.jsonl\)\) \(continue it with --resume .*, or start over there with --overwrite-output-dir\)$/);
  const foreign = tmp();
  fs.writeFileSync(path.join(foreign, "notes.txt"), "mine");
  assert.match((await train(foreign)).error?.message ?? "", /is not empty \(notes\.txt\) \(choose a new or empty --out, or pass --overwrite-output-dir/);
  fs.writeFileSync(path.join(out, "notes.txt"), "mine");
  const over = await train(out, { overwriteOutputDir: true, maxSteps: 2 });
  assert.equal(over.error, undefined, over.error?.message);
  assert.equal(fs.readFileSync(path.join(out, "notes.txt"), "utf8"), "mine", "a file train did not write stays");
  assert.ok(!fs.existsSync(path.join(out, "eval.json")), "the replaced run's eval.json is gone");
  assert.equal(newestCheckpoint(out)?.step, 2);
  // Two runs at once in one process (a notebook kernel): the second is refused before it touches anything.
  const model = initModel(smallConfig(), "qa", 2);
  const first = trainQA({ ...base, model, outDir: out, overwriteOutputDir: true });
  const second = await train(out, { overwriteOutputDir: true });
  assert.match(second.error?.message ?? "", new RegExp(`already being written by this process \\(PID ${process.pid}`));
  await first;
  disposeModel(model);
  assert.equal(newestCheckpoint(out)?.step, 6);
  assert.ok(!fs.existsSync(path.join(out, LOCK_FILE)), "lock released");
});

test("before the first step: a bad eval question, an output that is an input; resume settings named by their flags", async () => {
  await tf.setBackend("cpu");
  const out = tmp();
  const bad = { ...examples[1], answers: [{ ...examples[1].answers[0], answer_start: examples[1].answers[0].answer_start + 7 }] };
  let steps = 0;
  const r = await train(out, { eval: [examples[0], bad], evalFile: "dev.json", lrSchedule: () => { steps++; return 1e-3; } });
  assert.match(r.error?.message ?? "", /^dev\.json: 1 question\(s\) cannot be scored; the first: dev\.json: example .* is not at answer_start \d+ \(fix them in the eval file before training/);
  assert.ok(!r.error!.message.includes("pass --skip-invalid"), "the training file's fix is not offered for the eval file");
  assert.equal(steps, 0, "no step was taken");
  assert.deepEqual(fs.readdirSync(out), [], "nothing written");
  const data = path.join(out, "train.json");
  fs.writeFileSync(data, "{}");
  assert.match((await train(data, { trainFile: data })).error?.message ?? "", /--out .*train\.json is also the --train input/);
  fs.rmSync(data);
  assert.equal((await train(out, { maxSteps: 2 })).error, undefined);
  assert.match((await train(out, { maxSteps: 3, resume: out })).error?.message ?? "", /was trained with total_steps 2, not 3 \(resume with the same --epochs and --max-steps\)$/);
});

test("damaged checkpoint files (empty trainer state, cut weights, cut optimizer state) are one line each", async () => {
  await tf.setBackend("cpu");
  const out = tmp();
  assert.equal((await train(out, { maxSteps: 2 })).error, undefined);
  const ckpt = path.join(out, "checkpoint");
  const damage: [string, (f: string) => void, RegExp][] = [
    ["trainer_state.json", (f) => fs.writeFileSync(f, ""), /trainer_state\.json: is damaged \(empty\) \(resume from another checkpoint, or start over with --overwrite-output-dir\)/],
    ["model.safetensors", (f) => fs.truncateSync(f, 1000), /model\.safetensors/],
    ["optimizer.safetensors", (f) => fs.truncateSync(f, 1000), /optimizer\.safetensors/],
  ];
  for (const [name, spoil, pattern] of damage) {
    const copy = tmp();
    fs.cpSync(out, copy, { recursive: true });
    spoil(path.join(copy, "checkpoint", name));
    const r = await train(copy, { maxSteps: 2, resume: copy });
    assert.ok(r.error !== undefined && isUserError(r.error), `${name}: ${r.error?.stack}`);
    assert.ok(!r.error.message.includes("\n"));
    assert.match(r.error.message, pattern);
  }
  assert.ok(fs.existsSync(path.join(ckpt, "trainer_state.json")));
});
