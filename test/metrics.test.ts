// The scores must equal the official scripts' outputs (fixtures in test/fixtures/metrics, made with python3).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { QAExample } from "../lib/squad";
import { cmrcEvaluate, computeExact, computeF1, detectMetric, mixedSegmentation, cmrcF1, cmrcExact, normalizeAnswer, squadEvaluate } from "../lib/metrics";
import { isUserError } from "../lib/errors";

const DIR = path.join(__dirname, "fixtures", "metrics");
const read = (name: string) => JSON.parse(fs.readFileSync(path.join(DIR, name), "utf8"));

// A local flattener keeps this test independent of the data loader (squad.ts has its own tests).
function examplesOf(file: string): QAExample[] {
  const out: QAExample[] = [];
  for (const article of read(file).data) {
    for (const p of article.paragraphs) {
      for (const qa of p.qas) {
        out.push({ id: qa.id, title: article.title, context: p.context, question: qa.question, answers: qa.answers, is_impossible: Boolean(qa.is_impossible) });
      }
    }
  }
  return out;
}

function assertScores(actual: Record<string, number>, expected: Record<string, number>): void {
  assert.deepEqual(Object.keys(actual), Object.keys(expected), "same keys in the same order as the official script");
  for (const [k, v] of Object.entries(expected)) assert.ok(Math.abs(actual[k] - v) <= 1e-9, `${k}: ${actual[k]} vs ${v}`);
}

const quiet = () => {};

test("normalisation, exact and F1 match the v2.0 script on edge cases", () => {
  for (const c of read("squad-pairs.json")) {
    const where = JSON.stringify([c.gold, c.pred]);
    assert.equal(normalizeAnswer(c.gold), c.normalized_gold, where);
    assert.equal(normalizeAnswer(c.pred), c.normalized_pred, where);
    assert.equal(computeExact(c.gold, c.pred), c.exact, where);
    assert.ok(Math.abs(computeF1(c.gold, c.pred) - c.f1) <= 1e-12, `${where}: ${computeF1(c.gold, c.pred)} vs ${c.f1}`);
  }
});

test("SQuAD v2.0: scores without na_probs", () => {
  const exp = read("squad-v2-expected.json");
  assertScores(squadEvaluate(examplesOf("squad-v2-dev.json"), read("squad-v2-preds.json"), { warn: quiet }), exp.no_na_probs);
});

test("SQuAD v2.0: na_prob threshold and best thresholds", () => {
  const exp = read("squad-v2-expected.json");
  const ex = examplesOf("squad-v2-dev.json"), preds = read("squad-v2-preds.json"), na = read("squad-v2-na-probs.json");
  assertScores(squadEvaluate(ex, preds, { naProbs: na }), exp["na_probs_thresh_1"]);
  assertScores(squadEvaluate(ex, preds, { naProbs: na, naProbThresh: 0.5 }), exp["na_probs_thresh_0.5"]);
});

test("SQuAD v2.0: ties in na_prob are taken in file order, as the script's stable sort does", () => {
  const exp = read("squad-v2-expected.json");
  const ex = examplesOf("squad-v2-dev.json"), preds = read("squad-v2-preds.json");
  const reordered = new Map<string, number>(Object.entries(read("squad-v2-na-probs-reordered.json")));
  const r = squadEvaluate(ex, preds, { naProbs: reordered });
  assertScores(r, exp["na_probs_reordered_thresh_1"]);
  assert.notEqual(r.best_exact_thresh, exp["na_probs_thresh_1"].best_exact_thresh, "the fixture really exercises a tie");
});

test("SQuAD v1.1: a missing prediction scores 0, counts in the total, and is reported once", () => {
  const exp = read("squad-v1-expected.json").v1_1_script;
  const warnings: string[] = [];
  const r = squadEvaluate(examplesOf("squad-v1-dev.json"), read("squad-v1-preds.json"), { warn: (m) => warnings.push(m) });
  assert.deepEqual(Object.keys(r), ["exact", "f1", "total"]);
  assert.ok(Math.abs(r.exact - exp.exact_match) <= 1e-9 && Math.abs(r.f1 - exp.f1) <= 1e-9, JSON.stringify([r, exp]));
  assert.equal(r.total, 5);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /1 question\(s\) have no prediction.*a5/);
});

test("strict: predictions or na_probs for ids not in the data are an error naming the id and file", () => {
  const ex = examplesOf("squad-v1-dev.json");
  assert.throws(() => squadEvaluate(ex, { a1: "x", zz9: "y" }, { predictionsFile: "p.json", strict: true, warn: quiet }),
    (e: unknown) => isUserError(e) && /^p\.json: .*"zz9"/.test((e as Error).message));
  assert.throws(() => squadEvaluate(ex, { a1: "x" }, { naProbs: { a1: 0.1, nope: 0.2 }, naProbFile: "na.json", strict: true, warn: quiet }),
    (e: unknown) => isUserError(e) && /^na\.json: .*"nope"/.test((e as Error).message));
  assert.throws(() => cmrcEvaluate(examplesOf("cmrc-dev.json"), { zz9: "y" }, { predictionsFile: "c.json", strict: true, warn: quiet }),
    (e: unknown) => isUserError(e) && /^c\.json: .*"zz9"/.test((e as Error).message));
  assert.throws(() => squadEvaluate(ex, { a1: 3 as unknown as string }, { warn: quiet }), (e: unknown) => isUserError(e) && /"a1"/.test((e as Error).message));
  assert.throws(() => squadEvaluate(ex, { a1: "x" }, { naProbs: {}, warn: quiet }), (e: unknown) => isUserError(e) && /"a1"/.test((e as Error).message));
});

// Reference: the official v1.1 evaluate() and v2.0 main() run on the one-article subset with the full files
// (fixtures subset-*.json; see test/fixtures/metrics/README.md).
test("subset scoring: a full predictions file on a one-article subset gives the official scripts' scores", () => {
  const exp = read("subset-expected.json");
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const v1 = squadEvaluate(examplesOf("subset-v1-dev.json"), read("subset-v1-preds-full.json"), { predictionsFile: "full.json", warn });
  assertScores(v1, { exact: exp.v1_1_script.exact_match, f1: exp.v1_1_script.f1, total: exp.v2_0_script_on_v1.total });
  assertScores(squadEvaluate(examplesOf("subset-v1-dev.json"), read("subset-v1-preds-full.json"), { version2: true, warn }), exp.v2_0_script_on_v1);
  const ex2 = examplesOf("subset-v2-dev.json"), preds2 = read("subset-v2-preds-full.json"), na2 = read("subset-v2-na-probs-full.json");
  assertScores(squadEvaluate(ex2, preds2, { warn }), exp.v2_0_script);
  assertScores(squadEvaluate(ex2, preds2, { naProbs: na2, warn }), exp.v2_0_script_na_probs);
  assertScores(squadEvaluate(ex2, preds2, { naProbs: na2, naProbThresh: 0.5, warn }), exp["v2_0_script_na_probs_thresh_0.5"]);
  // one line per call, with the count and the first ignored id
  assert.equal(warnings.length, 5);
  const firstExtra = Object.keys(read("subset-v1-preds-full.json")).find((id) => !examplesOf("subset-v1-dev.json").some((e) => e.id === id));
  assert.equal(warnings[0], `warning: ignored ${exp.ignored.v1} prediction(s) in full.json for ids not in the data (first: "${firstExtra}"), as the official scripts do; --strict makes this an error`);
  assert.match(warnings[3], new RegExp(`ignored ${exp.ignored.v2} prediction\\(s\\) in predictions and ${exp.ignored.v2} no-answer probability\\(s\\) in na_probs for ids`));
});

test("subset scoring, CMRC 2018: predictions for other ids change nothing and are reported once", () => {
  const warnings: string[] = [];
  const preds = { ...read("cmrc-preds.json"), other1: "x", other2: "y" };
  const r = cmrcEvaluate(examplesOf("cmrc-dev.json"), preds, { warn: (m) => warnings.push(m) });
  assertScores(r as unknown as Record<string, number>, read("cmrc-expected.json"));
  assert.equal(warnings.length, 2, warnings.join("\n")); // the ignored ids, then the fixture's missing question
  assert.match(warnings[0], /ignored 2 prediction\(s\) .*first: "other1"/);
});

test("CMRC 2018: segmentation, LCS F1 and EM per pair match the script", () => {
  for (const c of read("cmrc-pairs.json")) {
    const where = JSON.stringify([c.gold, c.pred]);
    assert.deepEqual(mixedSegmentation(c.gold, true), c.segs_gold, where);
    assert.deepEqual(mixedSegmentation(c.pred, true), c.segs_pred, where);
    assert.ok(Math.abs(cmrcF1([c.gold], c.pred) - c.f1) <= 1e-12, where);
    assert.equal(cmrcExact([c.gold], c.pred), c.em, where);
  }
});

test("CMRC 2018: dataset scores, keys and SKIP match the script", () => {
  const warnings: string[] = [];
  const r = cmrcEvaluate(examplesOf("cmrc-dev.json"), read("cmrc-preds.json"), { warn: (m) => warnings.push(m) });
  assertScores(r as unknown as Record<string, number>, read("cmrc-expected.json"));
  assert.equal(warnings.length, 1);
});

test("metric detection: CMRC by version or by Chinese contexts", () => {
  assert.equal(detectMetric("cmrc2018", []), "cmrc");
  assert.equal(detectMetric("v2.0", examplesOf("cmrc-dev.json")), "cmrc");
  assert.equal(detectMetric("1.1", examplesOf("squad-v1-dev.json")), "squad");
});
