// `bertqa features` end to end: JSONL shape, code-point offsets, atomic output, exit codes and one-line errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const BERTQA = path.resolve(__dirname, "..", "lib", "cli", "bertqa.js");

const CONTEXTS = [
  "Le café 😀 de la gare sert une crème brûlée 🎉🎉 à minuit. Señora Peña owns the café since 2019, and her résumé " +
    "says she studied in Kraków before she moved to Lyon.",
  "Night trains leave Milan at ten and cross the Alps before dawn; the last stop is Zürich Hauptbahnhof",
];
const QAS: { context: number; id: string; question: string; answer?: string }[] = [
  { context: 0, id: "q-owner", question: "Who owns the café?", answer: "Señora Peña" },
  { context: 0, id: "q-city", question: "  Where did she study?", answer: "Kraków" },
  { context: 0, id: "q-none", question: "How old is the café?" },
  { context: 1, id: "q-end", question: "What is the last stop?", answer: "Zürich Hauptbahnhof" },
  { context: 1, id: "q-start", question: "Who leaves Milan?", answer: "Night trains" },
];

/** A SQuAD 2.0 file as Python writes it: answer_start counted in code points. */
function squadJson(): unknown {
  return {
    version: "v2.0",
    data: [{
      title: "t",
      paragraphs: CONTEXTS.map((context, c) => ({
        context,
        qas: QAS.filter((q) => q.context === c).map((q) => q.answer === undefined
          ? { id: q.id, question: q.question, answers: [], is_impossible: true }
          : { id: q.id, question: q.question, is_impossible: false,
            answers: [{ text: q.answer, answer_start: [...context.slice(0, context.indexOf(q.answer))].length }] }),
      })),
    }],
  };
}

function vocab(): string[] {
  const v = new Set(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  const texts = [...CONTEXTS, ...QAS.map((q) => q.question)].map((t) => t.toLowerCase().normalize("NFD").replace(/\p{Mn}/gu, ""));
  for (const t of texts) {
    for (const ch of t) if (!/\s|\p{Extended_Pictographic}/u.test(ch)) { v.add(ch); v.add("##" + ch); }
    for (const w of t.match(/[\p{L}\p{N}]+/gu) ?? []) if (w.length > 6) { v.add(w.slice(0, 4)); v.add("##" + w.slice(4)); } else v.add(w);
  }
  return [...v];
}

function setupDir(): { dir: string; data: string; vocabFile: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cli-features-"));
  const data = path.join(dir, "train.json"), vocabFile = path.join(dir, "vocab.txt");
  fs.writeFileSync(data, JSON.stringify(squadJson()));
  fs.writeFileSync(vocabFile, vocab().join("\n") + "\n");
  return { dir, data, vocabFile };
}

function bertqa(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BERTQA, "features", ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: { status: number | null; stderr: string }, re: RegExp): void {
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], re);
  assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
}

test("writes one JSON line per feature with run_qa.py's keys and code-point offsets", () => {
  const { dir, data, vocabFile } = setupDir();
  try {
    const out = path.join(dir, "out", "features.jsonl");
    const r = bertqa(["--data", data, "--tokenizer", vocabFile, "--lowercase", "--max-length", "32", "--doc-stride", "8", "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    const lines = fs.readFileSync(out, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
    const result = JSON.parse(r.stdout);
    assert.equal(result.examples, QAS.length);
    assert.equal(result.features, lines.length);
    assert.ok(lines.length > QAS.length, "32-token windows split the contexts");
    assert.match(r.stderr.trimEnd(), /^features: 5 examples -> \d+ features \(max_length 32, doc_stride 8\), \d+ answers lost to truncation, 0 skipped/);
    const labelledIds = new Set<string>();
    for (const f of lines) {
      assert.deepEqual(Object.keys(f), ["example_id", "input_ids", "token_type_ids", "offsets", "start_position", "end_position"]);
      const q = QAS.find((x) => x.id === f.example_id);
      assert.ok(q !== undefined);
      const n = f.input_ids.length;
      assert.ok(n <= 32 && f.token_type_ids.length === n && f.offsets.length === n, "unpadded, aligned");
      const firstCtx = f.token_type_ids.indexOf(1);
      assert.equal(f.offsets[0], null);
      assert.equal(f.offsets[firstCtx - 1], null); // [SEP] after the question
      assert.equal(f.offsets[n - 1], null); // final [SEP]
      for (let k = firstCtx; k < n - 1; k++) assert.equal(f.offsets[k].length, 2);
      if (f.start_position !== 0) {
        // Python slicing: code points, not UTF-16 units (the context has emoji before the answers).
        const cps = [...CONTEXTS[q.context]];
        const text = cps.slice(f.offsets[f.start_position][0], f.offsets[f.end_position][1]).join("");
        assert.equal(text, q.answer);
        labelledIds.add(q.id);
      }
      if (q.answer === undefined) assert.deepEqual([f.start_position, f.end_position], [0, 0]);
    }
    assert.deepEqual([...labelledIds].sort(), ["q-city", "q-end", "q-owner", "q-start"]);
    assert.deepEqual(fs.readdirSync(path.dirname(out)), ["features.jsonl"], "no temporary files left");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("bad inputs: one-line errors, exit 1, no output file; --skip-invalid counts what it skips", () => {
  const { dir, data, vocabFile } = setupDir();
  try {
    const out = path.join(dir, "f.jsonl");
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, '{"version": "1.1", "data": [');
    assertOneLineError(bertqa(["--data", data, "--tokenizer", path.join(dir, "nope"), "--out", out]), /nope: tokenizer not found/);
    assertOneLineError(bertqa(["--data", bad, "--tokenizer", vocabFile, "--out", out]), /bad\.json: malformed JSON/);
    assertOneLineError(bertqa(["--data", data, "--tokenizer", vocabFile, "--max-length", "64", "--doc-stride", "64", "--out", out]),
      /doc_stride 64 must be below max_length 64/);
    assertOneLineError(bertqa(["--data", data, "--tokenizer", vocabFile, "--max-length", "8", "--doc-stride", "2", "--out", out]),
      /train\.json: example q-owner: the question is \d+ tokens, too long for max_length 8/);
    assert.ok(!fs.existsSync(out));
    assert.deepEqual(fs.readdirSync(dir).sort(), ["bad.json", "train.json", "vocab.txt"], "no temporary files left");
    // Questions of 5+ tokens leave no context room at max_length 8: skipped and counted, the rest written.
    const r = bertqa(["--data", data, "--tokenizer", vocabFile, "--max-length", "8", "--doc-stride", "0", "--out", out, "--skip-invalid"]);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.ok(result.skipped > 0 && result.examples > 0 && result.examples + result.skipped === QAS.length, r.stdout);
    assert.equal(fs.readFileSync(out, "utf8").trimEnd().split("\n").length, result.features);
    const warnings = r.stderr.split("\n").filter((l) => l.startsWith("warning: skipped: "));
    assert.equal(warnings.length, result.skipped, "each skipped example is reported");
    assert.ok(warnings.some((l) => l.includes("example q-owner: the question is")));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
