// Answer extraction must equal transformers' utils_qa.postprocess_qa_predictions (cases and expected outputs made by
// a Python port of it: test/fixtures/metrics/postprocess-cases.json).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { QAExample } from "../lib/squad";
import type { QAFeature } from "../lib/features";
import { argmaxAnswer, postprocessQA, topIndices, type PostprocessOptions } from "../lib/postprocess";

interface Case {
  name: string;
  examples: { id: string; context: string }[];
  features: { exampleId: string; exampleIndex: number; offsets: ([number, number] | null)[] }[];
  start_logits: number[][];
  end_logits: number[][];
  opts: PostprocessOptions;
  expected: { predictions: Record<string, string>; nbest: Record<string, Record<string, number | string>[]>; null_odds: Record<string, number> };
}
const CASES: Case[] = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "metrics", "postprocess-cases.json"), "utf8"));

const toExample = (e: { id: string; context: string }): QAExample => ({ id: e.id, title: "", context: e.context, question: "?", answers: [], is_impossible: false });
const toFeature = (f: Case["features"][number]): QAFeature => ({ ...f, inputIds: [], tokenTypeIds: [], startPosition: 0, endPosition: 0 });
const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));

for (const c of CASES) {
  test(`postprocessQA matches utils_qa.py: ${c.name}`, () => {
    const r = postprocessQA(c.examples.map(toExample), c.features.map(toFeature), c.start_logits, c.end_logits, c.opts);
    assert.deepEqual(r.predictions, c.expected.predictions);
    assert.deepEqual(Object.keys(r.nullOdds), Object.keys(c.expected.null_odds));
    for (const [id, v] of Object.entries(c.expected.null_odds)) assert.ok(close(r.nullOdds[id], v), `${id}: ${r.nullOdds[id]} vs ${v}`);
    for (const [id, list] of Object.entries(c.expected.nbest)) {
      const got = r.nbest[id];
      assert.deepEqual(got.map((n) => [n.text, n.start, n.end]), list.map((n) => [n.text, n.start, n.end]), `n-best order of ${id}`);
      list.forEach((n, i) => {
        for (const k of ["probability", "start_logit", "end_logit"] as const) assert.ok(close(got[i][k], n[k] as number), `${id}[${i}].${k}`);
      });
      for (const n of got) if (n.text !== "empty") assert.equal(c.examples.find((e) => e.id === id)!.context.slice(n.start, n.end), n.text);
    }
  });
}

test("topIndices: largest first, ties to the higher index (numpy argsort reversed)", () => {
  assert.deepEqual(topIndices([1, 3, 3, 0, 2], 3), [2, 1, 4]);
  assert.deepEqual(topIndices([5], 20), [0]);
});

test("argmaxAnswer: the naive decoder, valid only for an in-context start <= end", () => {
  const feature = { offsets: [null, null, [0, 6], [7, 14], [15, 18], null] as ([number, number] | null)[] };
  const ctx = "Denver Broncos won";
  const ok = argmaxAnswer(ctx, feature, [0, 0, 5, 1, 0, 0], [0, 0, 1, 4, 0, 0]);
  assert.deepEqual(ok, { startToken: 2, endToken: 3, text: "Denver Broncos", start: 0, end: 14, valid: true });
  const reversed = argmaxAnswer(ctx, feature, [0, 0, 0, 1, 5, 0], [0, 0, 1, 4, 0, 0]);
  assert.equal(reversed.valid, false);
  assert.equal(reversed.text, "");
  const outside = argmaxAnswer(ctx, feature, [9, 0, 0, 1, 5, 0], [0, 0, 1, 4, 0, 0]);
  assert.equal(outside.valid, false);
});

test("postprocessQA refuses mismatched inputs instead of guessing", () => {
  const ex = [toExample({ id: "x", context: "a b" })];
  assert.throws(() => postprocessQA(ex, [], [], []), /"x" has no features/);
  const f = toFeature({ exampleId: "y", exampleIndex: 0, offsets: [null] });
  assert.throws(() => postprocessQA(ex, [f], [[0]], [[0]]), /unknown example "y"/);
  assert.throws(() => postprocessQA(ex, [f], [], []), /1 features but 0/);
});

test("ids that are Object.prototype names (__proto__, constructor, hasOwnProperty) are answers like any other id", () => {
  const c = CASES.find((x) => x.examples.length >= 3 && x.opts.version2) ?? CASES[0];
  const NAMES = ["__proto__", "constructor", "hasOwnProperty", "toString", "valueOf"];
  const rename = new Map(c.examples.map((e, i) => [e.id, NAMES[i % NAMES.length] + (i >= NAMES.length ? i : "")]));
  const r = postprocessQA(c.examples.map((e) => toExample({ ...e, id: rename.get(e.id)! })),
    c.features.map((f) => toFeature({ ...f, exampleId: rename.get(f.exampleId)! })), c.start_logits, c.end_logits, c.opts);
  assert.deepEqual(Object.keys(r.predictions), c.examples.map((e) => rename.get(e.id)));
  assert.deepEqual(Object.keys(r.nbest), c.examples.map((e) => rename.get(e.id)));
  for (const e of c.examples) {
    const id = rename.get(e.id)!;
    assert.ok(Object.prototype.hasOwnProperty.call(r.predictions, id), id);
    assert.equal(r.predictions[id], c.expected.predictions[e.id], id);
    assert.equal(r.nbest[id].length, c.expected.nbest[e.id].length, id);
  }
  const written = JSON.parse(JSON.stringify(r.predictions)); // what predict writes and evaluate reads back
  assert.deepEqual(Object.keys(written), Object.keys(r.predictions));
});
