// Inputs at the edges, as a user meets them on the command line (issue 24): unlabelled questions for predict, ids
// that are Object.prototype names, --skip-invalid, flag ranges, text files that are not text, an absurd config, a
// mistyped preset, --quiet, and no third-party banner. Every mistake: exit 1, one line on stderr, no stack trace.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..");
const FIXTURES = path.join(__dirname, "fixtures");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-edges-"));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

// The tiny QA fixture (vocab_size 1000, 64 positions) with a 389-token vocabulary beside it: a model predict can load.
const MODEL = path.join(TMP, "model");
fs.mkdirSync(MODEL);
for (const f of ["config.json", "model.safetensors"]) fs.copyFileSync(path.join(FIXTURES, "tiny-bert-qa", f), path.join(MODEL, f));
fs.copyFileSync(path.join(FIXTURES, "features", "vocab.txt"), path.join(MODEL, "vocab.txt"));

const CONTEXT = "The Denver Broncos won the game in 2016 at Levi Stadium.";
const IDS = ["__proto__", "constructor", "hasOwnProperty"];
const QUESTIONS = ["Who won the game?", "When was the game?", "Where was the game?"];

function squadFile(name: string, qas: object[], context = CONTEXT): string {
  const file = path.join(TMP, name);
  fs.writeFileSync(file, JSON.stringify({ version: "1.1", data: [{ title: "t", paragraphs: [{ context, qas }] }] }));
  return file;
}
const UNLABELLED = squadFile("unlabelled.json", IDS.map((id, i) => ({ id, question: QUESTIONS[i] }))); // no "answers" at all

function bertqa(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  return bertqaWith({}, ...args);
}
function bertqaWith(env: Record<string, string>, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, "lib", "cli", "bertqa.js"), ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, HF_HUB_OFFLINE: "1", ...env }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: { code: number | null; stdout: string; stderr: string }, message: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  assert.equal(r.stdout, "");
}

const predictArgs = (data: string, out: string, ...more: string[]) => ["predict", "--model", MODEL, "--data", data, "--out", out, "--backend", "cpu", ...more];

test("predict answers unlabelled questions (run_qa.py --do_predict); ids __proto__/constructor/hasOwnProperty reach predictions, n-best and evaluate", () => {
  const preds = path.join(TMP, "preds.json"), nbest = path.join(TMP, "nbest.json");
  const r = bertqa(...predictArgs(UNLABELLED, preds, "--nbest-out", nbest));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).examples, 3);
  const p = JSON.parse(fs.readFileSync(preds, "utf8")), n = JSON.parse(fs.readFileSync(nbest, "utf8"));
  assert.deepEqual(Object.keys(p), IDS);
  assert.deepEqual(Object.keys(n), IDS);
  for (const id of IDS) {
    assert.ok(Object.prototype.hasOwnProperty.call(p, id) && typeof p[id] === "string" && CONTEXT.includes(p[id]), id);
    assert.ok(Array.isArray(n[id]) && n[id].length > 0 && n[id][0].text === p[id], id);
  }
  // Gold = the predicted text for two ids and a text the model never gave for the third: evaluate must find all three.
  const gold = squadFile("gold.json", IDS.map((id, i) => {
    const text = i < 2 ? p[id] : "Valmor";
    return { id, question: QUESTIONS[i], answers: [{ text, answer_start: Math.max(0, CONTEXT.indexOf(text)) }] };
  }));
  const e = bertqa("evaluate", "--data", gold, "--predictions", preds);
  assert.equal(e.code, 0, e.stderr);
  const scores = JSON.parse(e.stdout);
  assert.equal(scores.total, 3);
  assert.ok(Math.abs(scores.exact - 200 / 3) < 1e-9, JSON.stringify(scores));
  assert.doesNotMatch(e.stderr, /no prediction/);
});

test("--skip-invalid means the same on predict and evaluate: bad questions are reported and left out, not fatal", () => {
  const bad = squadFile("bad.json", [{ id: "ok", question: "Who won?" }, { id: "empty", question: "   " }]);
  assertOneLineError(bertqa(...predictArgs(bad, path.join(TMP, "x.json"))), /^error: .*bad\.json: example empty: empty question \(fill in the question, or pass --skip-invalid\)$/);
  const out = path.join(TMP, "skipped.json");
  const r = bertqa(...predictArgs(bad, out, "--skip-invalid"));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).skipped, 1);
  assert.match(r.stderr, /warning: .*bad\.json: skipped example empty: empty question/);
  assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(out, "utf8"))), ["ok"]);
  const gold = squadFile("bad-gold.json", [{ id: "ok", question: "Who won?", answers: [{ text: "Denver Broncos", answer_start: 4 }] }, { id: "empty", question: "" }]);
  const preds = path.join(TMP, "both.json");
  fs.writeFileSync(preds, JSON.stringify({ ok: "Denver Broncos", empty: "x" }));
  assertOneLineError(bertqa("evaluate", "--data", gold, "--predictions", preds), /example empty: empty question \(fill in the question, or pass --skip-invalid\)$/);
  const e = bertqa("evaluate", "--data", gold, "--predictions", preds, "--skip-invalid");
  assert.equal(e.code, 0, e.stderr);
  assert.deepEqual([JSON.parse(e.stdout).exact, JSON.parse(e.stdout).total], [100, 1]);
  assert.match(e.stderr, /skipped example empty/);
});

test("features --predict: unlabelled questions featurize with null start/end positions", () => {
  const out = path.join(TMP, "features.jsonl");
  const r = bertqa("features", "--data", UNLABELLED, "--tokenizer", path.join(MODEL, "vocab.txt"), "--out", out, "--predict");
  assert.equal(r.code, 0, r.stderr);
  const rows = fs.readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((x) => x.example_id), IDS);
  assert.ok(rows.every((x) => x.start_position === null && x.end_position === null));
  assertOneLineError(bertqa("features", "--data", UNLABELLED, "--tokenizer", path.join(MODEL, "vocab.txt"), "--out", out), /example __proto__: answerable question has no answers/);
});

test("numeric flags out of range: one line each, before any model is loaded", () => {
  const cases: [string[], RegExp][] = [
    [predictArgs(UNLABELLED, path.join(TMP, "x.json"), "--n-best", "0"), /^error: bertqa predict: --n-best must be ≥ 1, got 0/],
    [predictArgs(UNLABELLED, path.join(TMP, "x.json"), "--n-best", "-1"), /--n-best must be ≥ 1, got -1/],
    [predictArgs(UNLABELLED, path.join(TMP, "x.json"), "--max-answer-length", "0"), /--max-answer-length must be ≥ 1, got 0/],
    [predictArgs(UNLABELLED, path.join(TMP, "x.json"), "--max-answer-length", "-1"), /--max-answer-length must be ≥ 1, got -1/],
    [["ask", "--model", MODEL, "--context", CONTEXT, "--question", "Who?", "--max-answer-length", "0"], /^error: bertqa ask: --max-answer-length must be ≥ 1, got 0/],
    [["ask", "--model", MODEL, "--context", CONTEXT, "--question", "Who?", "--alternatives", "-1"], /^error: bertqa ask: --alternatives must be ≥ 0, got -1/],
    [["train", "--model", "tiny", "--train", UNLABELLED, "--out", path.join(TMP, "t"), "--seed", "-1"], /^error: bertqa train: --seed must be between 0 and 4294967295, got -1/],
  ];
  for (const [argv, message] of cases) assertOneLineError(bertqa(...argv), message);
});

test("ask names no flag it lacks: a question too long for the window does not suggest --skip-invalid", () => {
  const r = bertqa("ask", "--model", MODEL, "--context", CONTEXT, "--question", "Who won the game in the stadium in 2016 and when", "--max-length", "8", "--doc-stride", "0", "--backend", "cpu");
  assertOneLineError(r, /too long for max_length 8 \(raise --max-length or shorten the question\)$/);
});

test("ask --context-file: binary data, non-UTF-8 text, directories and huge files are refused at once", () => {
  const ask = (file: string) => bertqa("ask", "--model", MODEL, "--context-file", file, "--question", "Who?", "--backend", "cpu");
  const binary = path.join(TMP, "random.bin");
  fs.writeFileSync(binary, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00]));
  assertOneLineError(ask(binary), /random\.bin: is not text: a NUL byte at offset 8/);
  const latin1 = path.join(TMP, "latin1.txt");
  fs.writeFileSync(latin1, Buffer.from("Caf\xe9 au lait.", "latin1"));
  assertOneLineError(ask(latin1), /latin1\.txt: is not valid UTF-8: byte 0xE9 at offset 3 \(line 1\)/);
  assertOneLineError(ask(TMP), /is not a file/);
  const huge = path.join(TMP, "huge.txt");
  fs.writeFileSync(huge, "word ".repeat(420_000)); // 2.1 MB
  assertOneLineError(ask(huge), /huge\.txt: is 2\.0 MB; ask reads at most 1 MB of context/);
});

test("a config.json claiming 10⁹ layers is refused against the weights in moments, not after exhausting the heap", () => {
  const big = path.join(TMP, "big-model");
  fs.cpSync(MODEL, big, { recursive: true });
  const config = JSON.parse(fs.readFileSync(path.join(big, "config.json"), "utf8"));
  fs.writeFileSync(path.join(big, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 1e9 }));
  assertOneLineError(bertqa("predict", "--model", big, "--data", UNLABELLED, "--out", path.join(TMP, "x.json"), "--backend", "cpu"),
    /config\.json says num_hidden_layers 1000000000 but the weights hold 2 layer\(s\)/);
});

test("--backend auto looks for a GPU without Dawn's native warnings (lavapipe's two 'maxDynamic' lines) reaching stderr", () => {
  // Probed in a child process; on a machine with a Vulkan driver this error used to come with Dawn's lines around it.
  const r = bertqaWith({ BERTQA_FAULT: "EACCES@10" }, "predict", "--model", MODEL, "--data", UNLABELLED, "--out", path.join(TMP, "auto.json"), "--quiet");
  assertOneLineError(r, /^error: .*auto\.json: cannot write the predictions .*\[EACCES\]/);
});

test("a mistyped preset says which preset was meant instead of asking the Hub", () => {
  assertOneLineError(bertqa("train", "--model", "tinyy", "--train", UNLABELLED, "--out", path.join(TMP, "t"), "--tokenizer", MODEL),
    /^error: --model tinyy: is neither a directory nor a preset: did you mean `tiny`\?/);
  assertOneLineError(bertqa("bench", "--config", "smal"), /unknown preset 'smal': did you mean `small`\?/);
});

test("--quiet silences predict's progress; no TensorFlow.js banner on the cpu backend or in convert", () => {
  const long = squadFile("long.json", [{ id: "q", question: "Who won?" }], Array.from({ length: 120 }, () => CONTEXT).join(" "));
  const out = path.join(TMP, "long-preds.json");
  const args = predictArgs(long, out, "--max-length", "32", "--doc-stride", "8"); // > 64 windows: a bar by default
  const loud = bertqa(...args);
  assert.equal(loud.code, 0, loud.stderr);
  assert.ok(JSON.parse(loud.stdout).features > 64);
  assert.match(loud.stderr, /predict \[#+\]/);
  const quiet = bertqa(...args, "--quiet");
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "");
  for (const r of [loud, quiet]) assert.doesNotMatch(r.stderr, /looks like you are running TensorFlow\.js/);
  const conv = bertqa("convert", "--model", MODEL, "--out", path.join(TMP, "converted"));
  assert.equal(conv.code, 0, conv.stderr);
  assert.doesNotMatch(conv.stderr, /looks like you are running TensorFlow\.js|=====/);
});
