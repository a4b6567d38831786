import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadSquad, readClassificationCsv, type QAExample } from "../lib/squad";
import { loadTokenizer } from "../lib/tokenizer";
import {
  generateCmrcSample, generateSentiment, generateSquadSample, nameLexicon, type NameKind, SAMPLE_FILES, SAMPLE_SPEC, sampleFileContents,
  sampleVocab,
} from "../lib/sample";

const DATA = path.dirname(SAMPLE_FILES.train);
const REGENERATE = "run `npx tsx lib/sample.ts` and commit data/";

test("committed data/ files are exactly what lib/sample.ts generates", () => {
  for (const [name, text] of Object.entries(sampleFileContents())) {
    assert.ok(fs.readFileSync(path.join(DATA, name), "utf8") === text, `data/${name} differs from the generator: ${REGENERATE}`);
  }
});

test("committed tokenizers hold the vocabularies lib/sample.ts builds, with no [UNK] on the dev splits", () => {
  const cases = [
    { lang: "en" as const, dir: SAMPLE_FILES.tokenizerDir, dev: SAMPLE_FILES.dev },
    { lang: "zh" as const, dir: SAMPLE_FILES.cmrcTokenizerDir, dev: SAMPLE_FILES.cmrcDev },
  ];
  for (const { lang, dir, dev } of cases) {
    const tok = loadTokenizer(dir);
    assert.deepEqual(tok.idToToken, sampleVocab(lang), `${dir} differs from the generator: ${REGENERATE}`);
    assert.equal(tok.doLowerCase, true);
    for (const e of loadSquad(dev).examples) {
      for (const t of [e.context, e.question]) assert.ok(!tok.encode(t).ids.includes(tok.unkId), `[UNK] in ${t}`);
    }
  }
});

test("every sample question fits in 128 tokens with its context (the demo's sequence length)", () => {
  for (const [file, dir] of [[SAMPLE_FILES.train, SAMPLE_FILES.tokenizerDir], [SAMPLE_FILES.cmrcTrain, SAMPLE_FILES.cmrcTokenizerDir]]) {
    const tok = loadTokenizer(dir);
    const lengths = loadSquad(file).examples.map((e) => tok.encode(e.question).ids.length + tok.encode(e.context).ids.length + 3);
    assert.ok(Math.max(...lengths) <= 128, `${file}: ${Math.max(...lengths)} tokens`);
  }
});

test("all sample files load without errors or corrections, in the advertised sizes", () => {
  const want: [string, number, number][] = [
    [SAMPLE_FILES.train, SAMPLE_SPEC.squad.train.n, 0], [SAMPLE_FILES.dev, SAMPLE_SPEC.squad.dev.n, 0],
    [SAMPLE_FILES.trainV2, SAMPLE_SPEC.squad.train.n, 1], [SAMPLE_FILES.devV2, SAMPLE_SPEC.squad.dev.n, 1],
    [SAMPLE_FILES.cmrcTrain, SAMPLE_SPEC.cmrc.train.n, 0], [SAMPLE_FILES.cmrcDev, SAMPLE_SPEC.cmrc.dev.n, 0],
  ];
  for (const [file, answerable, v2] of want) {
    const ds = loadSquad(file);
    assert.equal(ds.skipped, 0);
    assert.equal(ds.corrected, 0, `${file}: answer_start values are exact`);
    assert.equal(ds.examples.filter((e) => !e.is_impossible).length, answerable, file);
    if (v2 === 0) assert.equal(ds.examples.filter((e) => e.is_impossible).length, 0);
  }
  let total = 0;
  for (const f of fs.readdirSync(DATA, { recursive: true }) as string[]) {
    const p = path.join(DATA, f);
    if (fs.statSync(p).isFile()) total += fs.statSync(p).size;
  }
  assert.ok(total < 3_000_000, `data/ holds ${total} bytes`);
});

test("every answer is the exact span at answer_start (code points in the file)", () => {
  for (const file of [SAMPLE_FILES.train, SAMPLE_FILES.devV2, SAMPLE_FILES.cmrcTrain, SAMPLE_FILES.cmrcDev]) {
    const json = JSON.parse(fs.readFileSync(file, "utf8"));
    for (const article of json.data) {
      for (const p of article.paragraphs) {
        const cps = Array.from(p.context as string);
        for (const qa of p.qas) {
          for (const a of [...qa.answers, ...(qa.plausible_answers ?? [])]) {
            assert.equal(cps.slice(a.answer_start, a.answer_start + Array.from(a.text as string).length).join(""), a.text, qa.id);
          }
        }
      }
    }
  }
});

test("dev paragraphs are new; every name keeps one kind (person, town, ...) across train and dev", () => {
  const lex = nameLexicon("en");
  const all = Object.values(lex).flat();
  assert.equal(new Set(all).size, all.length, "a name has two kinds");
  const train = loadSquad(SAMPLE_FILES.trainV2).examples, dev = loadSquad(SAMPLE_FILES.devV2).examples;
  const trainContexts = new Set(train.map((e) => e.context));
  assert.deepEqual(dev.filter((e) => trainContexts.has(e.context)).map((e) => e.id), []);
  // The kind a name plays, read off the templates' cue words, is the kind the lexicon gives it, in both splits.
  const cues: [RegExp, NameKind][] = [[/the province of ([A-Z][a-z]+)/g, "province"], [/the ([A-Z][a-z]+) River/g, "river"],
    [/the town of ([A-Z][a-z]+)/g, "town"], [/(?:founded|opened|led) by ([A-Z][a-z]+)/g, "person"], [/the ([A-Z][a-z]+) (?:Guild|Company|Society|League|Council)/g, "guild"]];
  for (const [split, examples] of [["train", train], ["dev", dev]] as const) {
    const found = new Map<NameKind, number>();
    for (const e of examples) {
      for (const [re, kind] of cues) {
        for (const m of `${e.context} ${e.question}`.matchAll(re)) {
          assert.ok(lex[kind].includes(m[1]), `${split} ${e.id}: '${m[1]}' is used as a ${kind} but is not one`);
          found.set(kind, (found.get(kind) ?? 0) + 1);
        }
      }
    }
    for (const kind of Object.keys(lex) as NameKind[]) assert.ok((found.get(kind) ?? 0) > 20, `${split}: few ${kind} cues`);
  }
  const zh = nameLexicon("zh");
  const zhTown = (t: string) => zh.town.includes(t.slice(0, -1));
  const zhDev = loadSquad(SAMPLE_FILES.cmrcDev).examples;
  const zhTowns = new Set(zhDev.flatMap((e) => [e.title, ...e.answers.map((a) => a.text)]).filter((t) => t.endsWith("镇")));
  assert.ok(zhTowns.size > 30);
  for (const t of zhTowns) assert.ok(zhTown(t), `${t} is not a town of the lexicon`);
});

test("v2 sample: the v1 questions plus ~20% unanswerable ones with plausible answers where natural", () => {
  for (const [v1File, v2File] of [[SAMPLE_FILES.train, SAMPLE_FILES.trainV2], [SAMPLE_FILES.dev, SAMPLE_FILES.devV2]]) {
    const v1 = loadSquad(v1File).examples, v2 = loadSquad(v2File).examples;
    const answerable = v2.filter((e) => !e.is_impossible);
    assert.deepEqual(answerable.map((e) => [e.context, e.question, e.answers]), v1.map((e) => [e.context, e.question, e.answers]));
    const impossible = v2.filter((e) => e.is_impossible);
    const share = impossible.length / v2.length;
    assert.ok(share > 0.15 && share < 0.25, `${v2File}: ${share}`);
    assert.ok(impossible.every((e) => e.answers.length === 0));
    assert.ok(impossible.some((e) => (e.plausible_answers ?? []).length > 0));
    // unanswerable = asks about a fact the paragraph does not state; its question never repeats an answerable one
    const asked = new Set(answerable.map((e) => `${e.context}|${e.question}`));
    assert.ok(impossible.every((e) => !asked.has(`${e.context}|${e.question}`)));
  }
});

test("questions come in several paraphrases and kinds", () => {
  const questions = loadSquad(SAMPLE_FILES.train).examples.map((e) => e.question);
  const starts = new Set(questions.map((q) => q.split(" ").slice(0, 2).join(" ")));
  assert.ok(starts.size >= 20, `only ${starts.size} question openings`);
  for (const kind of ["Who founded", "When was", "How many", "Which river", "What is", "Where"]) {
    assert.ok(questions.some((q) => q.startsWith(kind)), kind);
  }
  const founder = questions.filter((q) => /founded|founder/.test(q) && /^Who|whom\?$/.test(q));
  assert.ok(new Set(founder.map((q) => q.replace(/[A-Z][a-z]+/g, "X"))).size >= 4);
});

test("generators are deterministic, seed-dependent and never use Math.random", () => {
  const random = Math.random;
  Math.random = () => {
    throw new Error("Math.random used");
  };
  try {
    assert.deepEqual(generateSquadSample({ seed: 5, n: 40 }), generateSquadSample({ seed: 5, n: 40 }));
    assert.notDeepEqual(generateSquadSample({ seed: 5, n: 40 }), generateSquadSample({ seed: 6, n: 40 }));
    assert.deepEqual(generateCmrcSample({ seed: 5, n: 20 }), generateCmrcSample({ seed: 5, n: 20 }));
    assert.deepEqual(generateSentiment({ seed: 5, n: 20 }), generateSentiment({ seed: 5, n: 20 }));
  } finally {
    Math.random = random;
  }
  const big = generateSquadSample({ seed: 7, n: 5000, idPrefix: "bench" });
  const ids = big.data.flatMap((a) => a.paragraphs.flatMap((p) => p.qas.map((q) => q.id)));
  assert.equal(ids.length, 5000);
  assert.equal(new Set(ids).size, 5000);
});

test("sentiment CSVs: text,label rows, both labels, quoting exercised", () => {
  const train = readClassificationCsv(SAMPLE_FILES.sentiment);
  const dev = readClassificationCsv(SAMPLE_FILES.sentimentDev);
  assert.equal(train.length, SAMPLE_SPEC.sentiment.train.n);
  assert.equal(dev.length, SAMPLE_SPEC.sentiment.dev.n);
  for (const rows of [train, dev]) {
    const pos = rows.filter((r) => r.label === "positive").length;
    assert.ok(pos > rows.length * 0.3 && pos < rows.length * 0.7);
    assert.ok(rows.every((r) => r.label === "positive" || r.label === "negative"));
  }
  assert.ok(train.some((r) => r.text.includes(",")) && train.some((r) => r.text.includes('"')));
  assert.ok(new Set(train.map((r) => r.text)).size > 200, "varied wording");
});
