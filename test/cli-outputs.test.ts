// The commands never lose the user's files, as a user runs them: convert and every --out refuse to write over what
// they did not write, an output on an input's path is refused before any work, `train` refuses a folder holding a
// run (the two ways on named), a run killed at any moment of a checkpoint save resumes to the very same model, a full
// disk is one line saying which checkpoint is intact, SIGTERM saves like Ctrl-C, a held lock names its PID.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { SAMPLE_FILES } from "../lib/sample";

const BIN = path.join(__dirname, "..", "lib", "cli", "bertqa.js");
const FIXTURE = path.join(__dirname, "fixtures", "tiny-bert-qa");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-cli-outputs-"));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

function bertqa(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd, encoding: "utf8", env: { ...process.env, BERTQA_WASM_THREADS: "1", HF_HUB_OFFLINE: "1", ...opts.env } });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.trim() };
}

function oneLineError(r: ReturnType<typeof bertqa>, pattern: RegExp): string {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
  assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
  return lines[0];
}

function listing(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

test("convert: a non-empty --out (a notes file, '.', the run being converted) is refused and left as it was; --overwrite-output-dir keeps foreign files", () => {
  const v = path.join(TMP, "v");
  fs.mkdirSync(v);
  fs.writeFileSync(path.join(v, "notes.txt"), "mine");
  oneLineError(bertqa(["convert", "--model", FIXTURE, "--out", v]), /v: is not empty \(notes\.txt\) \(choose a new or empty --out, or pass --overwrite-output-dir/);
  assert.deepEqual(listing(v), ["notes.txt"]);
  const run = path.join(TMP, "run");
  fs.cpSync(FIXTURE, run, { recursive: true });
  fs.cpSync(FIXTURE, path.join(run, "checkpoint"), { recursive: true });
  const before = listing(run);
  oneLineError(bertqa(["convert", "--model", path.join(run, "checkpoint"), "--out", run]), /run: is not empty/);
  oneLineError(bertqa(["convert", "--model", run, "--out", run]), /--out .*run is also the --model input/);
  oneLineError(bertqa(["convert", "--model", FIXTURE, "--out", "."], { cwd: run }), /\.: is not empty/);
  assert.deepEqual(listing(run), before, "nothing deleted");
  oneLineError(bertqa(["convert", "--model", FIXTURE, "--out", path.join(v, "notes.txt")]), /notes\.txt: is a file, but --out names the folder to write/);
  const r = bertqa(["convert", "--model", FIXTURE, "--out", v, "--overwrite-output-dir"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(v, "notes.txt"), "utf8"), "mine");
  assert.ok(fs.existsSync(path.join(v, "model.safetensors")));
});

test("predict / features / forward: an --out on an input, two outputs on one path, a folder as --out: refused before any work", () => {
  const data = path.join(TMP, "dev.json");
  fs.copyFileSync(SAMPLE_FILES.dev, data);
  const original = fs.readFileSync(data, "utf8");
  oneLineError(bertqa(["predict", "--model", FIXTURE, "--data", data, "--out", data]), /bertqa predict: --out .*dev\.json is also the --data input; writing it would destroy the input \(give --out another path\)/);
  oneLineError(bertqa(["predict", "--model", FIXTURE, "--data", data, "--out", "p.json", "--nbest-out", "p.json"], { cwd: TMP }), /--out and --nbest-out are the same path p\.json/);
  oneLineError(bertqa(["predict", "--model", FIXTURE, "--data", data, "--out", TMP]), /is a folder, but --out names the file to write/);
  oneLineError(bertqa(["features", "--data", data, "--tokenizer", SAMPLE_FILES.tokenizerDir, "--out", data]), /--out .*dev\.json is also the --data input/);
  oneLineError(bertqa(["forward", "--model", FIXTURE, "--inputs", path.join(FIXTURE, "case.json"), "--out", path.join(FIXTURE, "case.json")]), /is also the --inputs input/);
  assert.equal(fs.readFileSync(data, "utf8"), original, "the input is untouched");
});

// A training run small enough for a test: 2 articles, 64 tokens, checkpoints every 2 of 6 steps.
const small = path.join(TMP, "small.json");
const sample = JSON.parse(fs.readFileSync(SAMPLE_FILES.train, "utf8"));
fs.writeFileSync(small, JSON.stringify({ ...sample, data: sample.data.slice(0, 2) }));
const TRAIN = ["train", "--model", "tiny", "--tokenizer", SAMPLE_FILES.tokenizerDir, "--train", small, "--max-length", "64", "--batch-size", "4", "--backend", "wasm", "--quiet", "--log-steps", "1", "--save-steps", "2", "--max-steps", "6"];
const train = (out: string, ...more: string[]) => bertqa([...TRAIN, "--out", out, ...more], { env: { BERTQA_FAULT: "" } });

test("train: killed at any moment of a checkpoint save (BERTQA_FAULT), --resume gives the uninterrupted run's model byte for byte", () => {
  const straight = path.join(TMP, "straight");
  assert.equal(train(straight).code, 0);
  const want = fs.readFileSync(path.join(straight, "model.safetensors"));
  for (const [fault, kept, left] of [["kill@checkpoint-filled#2", 2, /checkpoint\.tmp-\d+/], ["kill@checkpoint-swap#1", 4, /checkpoint\.prev/]] as const) {
    const out = path.join(TMP, fault.replace(/\W/g, "_"));
    const killed = bertqa([...TRAIN, "--out", out], { env: { BERTQA_FAULT: fault } });
    assert.equal(killed.signal, "SIGKILL", `${fault}: ${killed.stderr}`);
    assert.ok(fs.readdirSync(out).some((n) => left.test(n)), `${fault} left ${fs.readdirSync(out).join(", ")}`);
    oneLineError(train(out), new RegExp(`already holds a training run \\(a checkpoint at step ${kept}, a training log \\(metrics\\.jsonl\\)\\) \\(continue it with --resume `));
    const resumed = train(out, "--resume", out);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /note: .*took over the lock of PID \d+, which is no longer running/);
    assert.ok(fs.readFileSync(path.join(out, "model.safetensors")).equals(want), `${fault}: the resumed model equals the straight run's`);
    assert.deepEqual(fs.readFileSync(path.join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).step), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(fs.readdirSync(out).filter((n) => /\.tmp-|\.model-|checkpoint\.|\.bertqa\.lock/.test(n)), [], "leftovers removed");
  }
});

test("train: a full disk at the 2nd checkpoint is one line naming the file, its size and the intact checkpoint; exit 1; no temp files", () => {
  const out = path.join(TMP, "full");
  const r = bertqa([...TRAIN, "--out", out], { env: { BERTQA_FAULT: "ENOSPC@12000000" } }); // each checkpoint is ~8.1 MB (weights 2.7, optimizer 5.4)
  oneLineError(r, /checkpoint\.tmp-\d+\/\S+: cannot write .* of the checkpoint at step 4 \([\d.]+ [kM]B\): no space left on the device \[ENOSPC\]; the last checkpoint \(step 2\) in \S+ is intact \(free some space or write to another disk, then continue with --resume /);
  assert.deepEqual(fs.readdirSync(out).sort(), ["checkpoint", "metrics.jsonl"]);
});

test("train: SIGTERM saves a checkpoint like Ctrl-C (exit 143); a folder locked by a live run is refused naming its PID", async () => {
  const out = path.join(TMP, "term");
  const child = spawn(process.execPath, [BIN, ...TRAIN.slice(0, -1), "100000", "--out", out], { env: { ...process.env, BERTQA_WASM_THREADS: "1", BERTQA_FAULT: "" }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  // Wait until it has logged a step (no timing assumption: poll the log), then ask it to stop as Docker or Slurm do.
  while (!fs.existsSync(path.join(out, "metrics.jsonl")) || fs.readFileSync(path.join(out, "metrics.jsonl"), "utf8") === "") await new Promise((r) => setTimeout(r, 100));
  const locked = train(out, "--overwrite-output-dir");
  oneLineError(locked, new RegExp(`is being written by another training run \\(PID ${child.pid}, since .*\\) \\(wait for it to end, stop it with kill ${child.pid}`));
  child.kill("SIGTERM");
  assert.equal(await exited, 143, stderr);
  assert.match(stderr, /SIGTERM: stopping after this step and saving a checkpoint/);
  const state = JSON.parse(fs.readFileSync(path.join(out, "checkpoint", "trainer_state.json"), "utf8"));
  assert.ok(state.step >= 1);
  assert.ok(!fs.existsSync(path.join(out, ".bertqa.lock")));
});

test("messages name flags that exist: demo --steps 0, a resume with another step count", () => {
  oneLineError(bertqa(["demo", "--steps", "0"]), /--steps must be ≥ 1, got 0/);
  const out = path.join(TMP, "straight");
  oneLineError(train(out, "--resume", out, "--max-steps", "7"), /was trained with total_steps 6, not 7 \(resume with the same --epochs and --max-steps\)/);
});
