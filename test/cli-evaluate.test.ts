// `bertqa evaluate` end to end: exact official key names and values (reference outputs of the official scripts in
// test/fixtures/metrics), the missing-prediction warning, and one-line errors for mismatched or malformed files.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..");
const FIX = path.join(__dirname, "fixtures", "metrics");
const fx = (name: string) => path.join(FIX, name);
const expected = (name: string) => JSON.parse(fs.readFileSync(fx(name), "utf8"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-eval-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function evaluate(...args: string[]): { code: number | null; json?: Record<string, number>; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, "lib", "cli", "bertqa.js"), "evaluate", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  const lines = r.stdout.trim().split("\n").filter((l) => l !== "");
  return { code: r.status, json: lines.length === 1 ? JSON.parse(lines[0]) : undefined, stderr: r.stderr };
}

function assertScores(actual: Record<string, number> | undefined, exp: Record<string, number>): void {
  assert.ok(actual !== undefined, "one JSON object on stdout");
  assert.deepEqual(Object.keys(actual), Object.keys(exp));
  for (const [k, v] of Object.entries(exp)) assert.ok(Math.abs(actual[k] - v) <= 1e-9, `${k}: ${actual[k]} vs ${v}`);
}

function assertOneLineError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

test("SQuAD v2.0 with --na-prob: official keys and values, thresholds applied", () => {
  const exp = expected("squad-v2-expected.json");
  const base = ["--data", fx("squad-v2-dev.json"), "--predictions", fx("squad-v2-preds.json")];
  assertScores(evaluate(...base).json, exp.no_na_probs);
  assertScores(evaluate(...base, "--na-prob", fx("squad-v2-na-probs.json")).json, exp.na_probs_thresh_1);
  assertScores(evaluate(...base, "--na-prob", fx("squad-v2-na-probs.json"), "--na-prob-thresh", "0.5").json, exp["na_probs_thresh_0.5"]);
  // ties in na_prob are resolved in the file's order, as the script's stable sort does
  assertScores(evaluate(...base, "--na-prob", fx("squad-v2-na-probs-reordered.json")).json, exp.na_probs_reordered_thresh_1);
});

test("SQuAD v1.1: exact/f1/total, a missing prediction scores 0 with a warning", () => {
  const exp = expected("squad-v1-expected.json").v1_1_script;
  const r = evaluate("--data", fx("squad-v1-dev.json"), "--predictions", fx("squad-v1-preds.json"));
  assert.equal(r.code, 0, r.stderr);
  assertScores(r.json, { exact: exp.exact_match, f1: exp.f1, total: 5 });
  assert.match(r.stderr, /warning: 1 question\(s\) have no prediction and score 0 \(a5\)/);
});

test("CMRC 2018 is detected from the data and scored with its official keys", () => {
  const r = evaluate("--data", fx("cmrc-dev.json"), "--predictions", fx("cmrc-preds.json"));
  assert.equal(r.code, 0, r.stderr);
  assertScores(r.json, expected("cmrc-expected.json"));
  assert.match(r.stderr, /c6/);
});

test("a full predictions file on a one-article subset: the official scores, one warning line; --strict refuses it", () => {
  const exp = expected("subset-expected.json");
  const full = fx("subset-v1-preds-full.json");
  const r = evaluate("--data", fx("subset-v1-dev.json"), "--predictions", full);
  assert.equal(r.code, 0, r.stderr);
  assertScores(r.json, { exact: exp.v1_1_script.exact_match, f1: exp.v1_1_script.f1, total: exp.v2_0_script_on_v1.total });
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], new RegExp(`^warning: ignored ${exp.ignored.v1} prediction\\(s\\) in .*subset-v1-preds-full\\.json for ids not in the data \\(first: "dev-`));
  const v2 = evaluate("--data", fx("subset-v2-dev.json"), "--predictions", fx("subset-v2-preds-full.json"), "--na-prob", fx("subset-v2-na-probs-full.json"));
  assertScores(v2.json, exp.v2_0_script_na_probs);
  assert.equal(v2.stderr.trim().split("\n").length, 1, v2.stderr);
  assertOneLineError(evaluate("--data", fx("subset-v1-dev.json"), "--predictions", full, "--strict"), /^error: .*subset-v1-preds-full\.json: prediction for id "dev-.*not in the data.*--strict/);
});

test("malformed predictions files: one-line error, exit 1, no stack trace", () => {
  const broken = path.join(tmp, "broken.json");
  fs.writeFileSync(broken, '{"a1": "Broncos",');
  assertOneLineError(evaluate("--data", fx("squad-v1-dev.json"), "--predictions", broken), /^error: .*broken\.json.*JSON/);
  const list = path.join(tmp, "list.json");
  fs.writeFileSync(list, JSON.stringify(["Broncos"]));
  assertOneLineError(evaluate("--data", fx("squad-v1-dev.json"), "--predictions", list), /^error: .*list\.json.*JSON object/);
  const nonString = path.join(tmp, "nonstring.json");
  fs.writeFileSync(nonString, JSON.stringify({ a1: 42 }));
  assertOneLineError(evaluate("--data", fx("squad-v1-dev.json"), "--predictions", nonString), /^error: .*nonstring\.json.*"a1".*not a string/);
  assertOneLineError(evaluate("--data", fx("squad-v1-dev.json"), "--predictions", path.join(tmp, "absent.json")), /^error: .*absent\.json.*cannot read/);
});

test("integer-like ids keep the na-prob file's order (JS objects would move them first)", () => {
  const r = evaluate("--data", fx("squad-v2-intids-dev.json"), "--predictions", fx("squad-v2-intids-preds.json"), "--na-prob", fx("squad-v2-intids-na-probs.json"));
  assert.equal(r.code, 0, r.stderr);
  assertScores(r.json, expected("squad-v2-intids-expected.json"));
});
