// lib/tokenizer.ts against Hugging Face's Rust `tokenizers` (devDependency, the engine behind BertTokenizerFast):
// every expected id, token and offset below is computed by the reference at run time, never copied from our code.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  BertTokenizer, Encoding, buildWordPieceVocab, loadTokenizer, normalize, preTokenize, saveTokenizer, tokenizerFromVocab,
} from "../lib/tokenizer";
import { charNormalizer, normalizeChar } from "../lib/wordpiece";
import { isUserError } from "../lib/errors";
import { codePointToUtf16 } from "../lib/squad";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const rust = require("tokenizers");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const hfjs = require("@huggingface/tokenizers");

const FIXTURES = path.join(__dirname, "fixtures", "tokenizer");
const VOCAB_TXT = path.join(FIXTURES, "bert-subset-vocab.txt");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-tok-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

const TEXTS = [
  "The quick brown fox jumps over the lazy dog.",
  "Hello, World! Tokenization is unaffable; playing played player tokenizer.",
  "café naïve Ångström résumé", // NFC
  "cafe\u0301 nai\u0308ve A\u030angstro\u0308m re\u0301sume\u0301", // the same words in NFD
  "Café NAÏVE ÅNGSTRÖM Résumé Stockholm",
  "北京大学是中国的一所大学。",
  "我在Beijing University学习chinese和english，你好！",
  "Wait... what?!?! (yes) [no] {maybe} -- \"quoted\" 'single' `back` ~tilde~ a/b\\c «guillemets» ¿qué? ¡sí!",
  "The population was 1,000,000 in 2019 and 3.14 million; it costs $1,234.56 or €100 / £50 / ¥2000.",
  "emoji 😀 smile😀😀 👍🏽 family 👨‍👩‍👧 flags 🇫🇷 text",
  "control\u0000chars\u0001in\u0007the\u001fmiddle\u007f and\u0085next \ufffdreplacement \u200bzero\u200cwidth\u200djoiner\ufeffbom \u00adsoft",
  "nbsp\u00a0here ideographic\u3000space tab\there newline\nhere cr\r\nlf \u2028line\u2029para \u202fnarrow \u2009thin \u1680ogham \u000bvt\u000cff",
  "x".repeat(100) + " " + "y".repeat(101) + " " + "ab".repeat(60) + " é".repeat(3) + " " + "e\u0301".repeat(60) + " " + "😀".repeat(101) + " " + "😀".repeat(60),
  "İstanbul İSTANBUL ıi Iİ turkish",
  "Straße STRASSE ẞ groß strasse",
  "[CLS] what is it? [SEP] it is this [SEP][MASK][PAD][UNK] [cls] [ SEP ] x[CLS]y",
  "Ελληνικά ΣΟΦΟΣ σοφός ΟΔΟΣ мир Дмитрий",
  "Mixed: 東京タワー(Tokyo Tower) は 333m です。한국어 텍스트 ﬁ ligature ① ½ Ⅻ",
  "",
  "   \t\n  ",
  "a\u0301\u0302\u0303 combining stack \u0345 \u0344 ὅ \u0301leading mark",
  "CJK compat 豈 更 ext B 𠀀𠀁 ext E 𫠠𬺰", // U+2B820: inside BERT's Python range, outside the Rust one
  "new in Unicode 9+: \u0897x \u2e5d y \u{11f43} z \u08e2 w \u{1e4ec}", // Node's ICU and the Rust tables disagree
  "lone \ud800 surrogate \udc00 here",
];

/** A small seeded generator (mulberry32) so the random table is the same on every run. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = [
  ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
  ..." .,;:!?'\"()[]-_/\\#@$%&*+=<>~`^|{}",
  ..."éèêëíïñóöúüçÅÉßæøİıΣσςдм", "e\u0301", "\u0308", "\u0345",
  ..."北京大学中文的是。、，！「」豈", "𠀀", "😀", "👍🏽", "🇫🇷", "한", "ﬁ", "①", "½",
  " ", " ", " ", "\t", "\n", "\r", "\u00a0", "\u3000", "\u2009", "\u200b", "\u200d", "\ufeff", "\u0000", "\u0007", "\u0085",
  "\ufffd", "\u00ad", "\u2028", "[CLS]", "[SEP]",
  "the", "un", "aff", "able", "play", "ing", "caf", "strom", "000", "token", "ization", "İstanbul", "Straße",
];

function randomTexts(n: number, seed: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = Math.floor(r() * 40);
    let s = "";
    for (let k = 0; k < len; k++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
    out.push(s);
  }
  return out;
}
const RANDOM = randomTexts(300, 12345);

/** The Rust reference's encoding, its offsets (Unicode code points) converted to UTF-16 indices. */
async function reference(tok: { encode: Function }, text: string): Promise<Encoding> {
  const e = await tok.encode(text, null, { addSpecialTokens: false });
  const utf16 = codePointToUtf16(text);
  return {
    ids: e.getIds(),
    tokens: e.getTokens(),
    offsets: e.getOffsets().map(([a, b]: number[]) => [utf16(a), utf16(b)] as [number, number]),
  };
}

async function assertSameAsReference(ours: BertTokenizer, ref: { encode: Function }, texts: string[], label: string) {
  for (const text of texts) {
    const want = await reference(ref, text);
    const got = ours.encode(text);
    assert.deepEqual(got, want, `${label}: ${JSON.stringify(text)}`);
  }
}

type NormSettings = { clean_text: boolean; handle_chinese_chars: boolean; strip_accents: boolean | null; lowercase: boolean };
const VARIANTS: Record<string, NormSettings> = {
  uncased: { clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  cased: { clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: false },
  "cased, strip_accents true": { clean_text: true, handle_chinese_chars: true, strip_accents: true, lowercase: false },
  "uncased, strip_accents false": { clean_text: true, handle_chinese_chars: true, strip_accents: false, lowercase: true },
  "no chinese split": { clean_text: true, handle_chinese_chars: false, strip_accents: null, lowercase: true },
  "no clean_text": { clean_text: false, handle_chinese_chars: true, strip_accents: null, lowercase: true },
};

/** tokenizer.json written by the Rust package itself from the hand-picked vocab.txt (not by saveTokenizer). */
async function rustMadeJson(): Promise<Record<string, any>> {
  const model = await rust.WordPiece.fromFile(VOCAB_TXT, { unkToken: "[UNK]" });
  const t = new rust.Tokenizer(model);
  t.setNormalizer(rust.bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: true }));
  t.setPreTokenizer(rust.bertPreTokenizer());
  t.setPostProcessor(rust.bertProcessing(["[SEP]", 102], ["[CLS]", 101]));
  t.addSpecialTokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  const file = path.join(tmp, "rust-made.json");
  t.save(file);
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

function writeVariant(json: Record<string, any>, name: string, norm: NormSettings): string {
  const dir = path.join(tmp, name.replace(/[^a-z]+/g, "-"));
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "tokenizer.json");
  fs.writeFileSync(file, JSON.stringify({ ...json, normalizer: { type: "BertNormalizer", ...norm } }));
  return file;
}

test("every code point is normalised and pre-tokenised as the Rust BertNormalizer/BertPreTokenizer do", () => {
  const all = { cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true };
  const rustNorm = rust.bertNormalizer(all);
  const rustPre = rust.bertPreTokenizer();
  const bad: string[] = [];
  // Planes 0-2 hold every assigned character of interest; the rest (unassigned, private use, tags) are sampled.
  for (let cp = 0; cp < 0x110000; cp += cp < 0x30000 || (cp >= 0xe0000 && cp < 0xe0100) ? 1 : 97) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    if (normalizeChar(cp, all) !== rustNorm.normalizeString(c)) bad.push(`normalize U+${cp.toString(16)}`);
    const want = rustPre.preTokenizeString(`a${c}a`).map((w: [string, number[]]) => w[0]);
    const s = `a${c}a`;
    const got = preTokenize(s).map(([a, b]) => s.slice(a, b));
    if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`pre-tokenize U+${cp.toString(16)}`);
    if (bad.length > 20) break;
  }
  assert.deepEqual(bad, []);
});

test("normalisation keeps an alignment to the original UTF-16 text", () => {
  // Units: İ=0, space=1, é=2, 😀=3..4, 北=5. Each normalised unit points at the whole original char it came from.
  const text = "İ é😀北";
  const uncased = { cleanText: true, handleChineseChars: true, stripAccents: null, lowercase: true };
  const n = normalize(text, charNormalizer(uncased));
  assert.equal(n.text, "i e😀 北 "); // accents stripped (NFD, marks dropped) before lowercasing
  assert.deepEqual([...n.start], [0, 1, 2, 3, 3, 5, 5, 5]);
  assert.deepEqual([...n.end], [1, 2, 3, 5, 5, 6, 6, 6]);
  const kept = normalize(text, charNormalizer({ ...uncased, stripAccents: false }));
  assert.equal(kept.text, "i\u0307 é😀 北 "); // "İ".toLowerCase() is two chars, both from original [0, 1)
  assert.deepEqual([...kept.start.slice(0, 2)], [0, 0]);
  assert.deepEqual([...kept.end.slice(0, 2)], [1, 1]);
});

test("ids, tokens and offsets equal tokenizers' on a Rust-made tokenizer.json, for each normaliser setting", async () => {
  const json = await rustMadeJson();
  for (const [name, norm] of Object.entries(VARIANTS)) {
    const file = writeVariant(json, name, norm);
    const ref = rust.Tokenizer.fromFile(file);
    const ours = loadTokenizer(file);
    assert.equal(ours.doLowerCase, norm.lowercase);
    await assertSameAsReference(ours, ref, TEXTS, name);
    await assertSameAsReference(ours, ref, RANDOM, `${name} (random)`);
  }
});

test("added tokens (normalised or raw, lstrip/rstrip, single_word) split the text as in tokenizers", async () => {
  const json = await rustMadeJson();
  const n = Object.keys(json.model.vocab).length;
  const added = (id: number, content: string, o: Record<string, boolean>) =>
    ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false, ...o });
  json.added_tokens.push(
    added(n, "<Ent>", { normalized: true }),
    added(n + 1, "[E1]", { lstrip: true, rstrip: true, special: true }),
    added(n + 2, "ing", { single_word: true }),
    added(n + 3, "Café", { normalized: true }),
    added(n + 4, "[SEP]x", {}),
  );
  const file = path.join(tmp, "added.json");
  fs.writeFileSync(file, JSON.stringify(json));
  const texts = [
    "a <ENT> b <ent>c", "x  [E1]  y [E1]", "sing ing ing. (ing) singing _ing ing_ éing", "CAFÉ café cafe\u0301 Café",
    "[SEP]x [SEP] [SEP]xx", "<Ent>[E1]ing", ...RANDOM.slice(0, 50),
  ];
  await assertSameAsReference(loadTokenizer(file), rust.Tokenizer.fromFile(file), texts, "added tokens");
});

test("a vocab.txt loads into the same tokenizer as the equivalent tokenizer.json", async () => {
  const json = await rustMadeJson();
  for (const lowercase of [true, false]) {
    const file = writeVariant(json, lowercase ? "uncased" : "cased", VARIANTS[lowercase ? "uncased" : "cased"]);
    const fromJson = loadTokenizer(file);
    const fromTxt = loadTokenizer(VOCAB_TXT, { lowercase });
    const fromJsonOverride = loadTokenizer(writeVariant(json, "uncased", VARIANTS.uncased), { lowercase });
    for (const text of [...TEXTS, ...RANDOM]) {
      assert.deepEqual(fromTxt.encode(text), fromJson.encode(text), JSON.stringify(text));
      assert.deepEqual(fromJsonOverride.encode(text), fromJson.encode(text), JSON.stringify(text));
    }
  }
  const dir = path.join(tmp, "txt-only");
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(VOCAB_TXT, path.join(dir, "vocab.txt"));
  const tok = loadTokenizer(dir);
  assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId], [0, 100, 101, 102, 103]);
  assert.equal(tok.doLowerCase, true);
});

test("tokenizer_config.json settings override tokenizer.json, as transformers does", async () => {
  const json = await rustMadeJson();
  const dir = path.join(tmp, "with-config");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(json)); // uncased normaliser
  fs.writeFileSync(path.join(dir, "vocab.txt"), "[UNK]\n"); // ignored: tokenizer.json is preferred
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({
    do_lower_case: false, model_max_length: 128, cls_token: { content: "[CLS]", __type: "AddedToken" },
  }));
  const tok = loadTokenizer(dir);
  assert.equal(tok.doLowerCase, false);
  assert.equal(tok.modelMaxLength, 128);
  assert.equal(tok.clsId, 101);
  const cased = rust.Tokenizer.fromFile(writeVariant(json, "cased", VARIANTS.cased));
  await assertSameAsReference(tok, cased, TEXTS, "config override");
});

// Where tokenizers.js itself departs from the Rust reference: it does not space out ideographs outside the BMP (CJK
// Extension B+) and classifies with Node's newer Unicode data. Texts holding such characters are left out below.
const TOKENIZERS_JS_GAPS = /[\u{20000}-\u{3FFFF}\u0897\u2e5d\u{11f43}\u08e2\u{1e4ec}]/u;

test("@huggingface/tokenizers (tokenizers.js) gives the same ids", async () => {
  const json = await rustMadeJson();
  const texts = [...TEXTS, ...RANDOM].filter((t) => !TOKENIZERS_JS_GAPS.test(t));
  assert.ok(texts.length > 250, "most of the table is compared");
  for (const name of ["uncased", "cased"]) {
    const file = writeVariant(json, name, VARIANTS[name]);
    const js = new hfjs.Tokenizer(JSON.parse(fs.readFileSync(file, "utf8")), {});
    const ours = loadTokenizer(file);
    for (const text of texts) {
      assert.deepEqual(ours.encode(text).ids, js.encode(text, { add_special_tokens: false }).ids, `${name}: ${JSON.stringify(text)}`);
    }
  }
});

const CORPUS = [
  "The University of Notre Dame is a Catholic research university in Indiana, founded in 1842.",
  "Beyoncé Giselle Knowles-Carter (born September 4, 1981) is an American singer, songwriter and actress.",
  "北京大学是中国的一所大学。我在北京学习中文。",
  "The café on the corner serves crème brûlée; the naïve résumé was rejected.",
  "In 2019 the population was 1,234,567 and rising; the city's budget was $3.5 billion.",
];

test("buildWordPieceVocab: special tokens first, every character covered, deterministic, within size", () => {
  const opts = { vocabSize: 400, lowercase: true };
  const vocab = buildWordPieceVocab(CORPUS, opts);
  assert.deepEqual(vocab.slice(0, 5), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  assert.ok(vocab.length <= 400);
  assert.equal(new Set(vocab).size, vocab.length, "no duplicates");
  assert.deepEqual(buildWordPieceVocab([...CORPUS].reverse(), opts), vocab, "input order does not matter");
  const tok = tokenizerFromVocab(vocab);
  for (const text of CORPUS) assert.ok(!tok.encode(text).ids.includes(tok.unkId), `no [UNK] in ${text}`);
  assert.ok(vocab.includes("the") && vocab.includes("##e") && vocab.includes("北"), "words, ## chars, CJK chars");
  assert.ok(!vocab.includes("##北") && !vocab.includes("##,"), "no ## form for chars that are always words of their own");
  assert.throws(() => buildWordPieceVocab(CORPUS, { vocabSize: 3, lowercase: true }), /vocabSize 3 is too small/);
  assert.ok(!vocab.includes("Beyoncé") && !vocab.includes("é"), "lowercased and accents stripped");
  // minFrequency 2: "university" (twice, once capitalised) is a word; "catholic" (once) is not.
  assert.ok(vocab.includes("university") && !vocab.includes("catholic"));
  // Whole words come by frequency, ties in string order: "the" (6) before "," (ranked as a char) ... "in" (3), "was" (2).
  const words = vocab.filter((t) => [...t].length > 1 && !t.startsWith("##") && !t.startsWith("["));
  assert.deepEqual(words.slice(0, 3), ["the", "in", "was"]);
  const small = buildWordPieceVocab(CORPUS, { vocabSize: 12, lowercase: false });
  assert.equal(small.length, 12);
  const cased = buildWordPieceVocab(CORPUS, { vocabSize: 400, lowercase: false, minFrequency: 1 });
  assert.ok(cased.includes("Beyoncé") && cased.includes("The"));
  const noCjk = buildWordPieceVocab(CORPUS, { vocabSize: 400, lowercase: true, tokenizeChineseChars: false, minFrequency: 1 });
  assert.ok(noCjk.includes("北京大学是中国的一所大学"));
});

test("saveTokenizer writes files that the Rust tokenizers and tokenizers.js load and agree with", async () => {
  const vocab = buildWordPieceVocab([...CORPUS, ...TEXTS], { vocabSize: 500, lowercase: true, minFrequency: 1 });
  const tok = tokenizerFromVocab(vocab);
  const dir = path.join(tmp, "saved");
  saveTokenizer(tok, dir);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]);
  const config = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  assert.equal(config.tokenizer_class, "BertTokenizer");
  assert.equal(config.do_lower_case, true);
  assert.equal(config.pad_token, "[PAD]");
  assert.equal(tok.padId, 0);
  assert.equal(fs.readFileSync(path.join(dir, "vocab.txt"), "utf8"), vocab.join("\n") + "\n");

  const ref = rust.Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
  await assertSameAsReference(tok, ref, [...TEXTS, ...RANDOM, ...CORPUS], "saved");
  await assertSameAsReference(loadTokenizer(dir), ref, TEXTS, "reloaded");
  // The post-processor makes [CLS] A [SEP] B [SEP] with token type ids 0 ... 0 1 ... 1, as BERT's QA input.
  const pair = await ref.encode("who?", "the city", { addSpecialTokens: true });
  const a = tok.encode("who?").ids;
  const b = tok.encode("the city").ids;
  assert.deepEqual(pair.getIds(), [tok.clsId, ...a, tok.sepId, ...b, tok.sepId]);
  assert.deepEqual(pair.getTypeIds(), [0, ...a.map(() => 0), 0, ...b.map(() => 1), 1]);
  const js = new hfjs.Tokenizer(JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")), config);
  assert.deepEqual(js.encode("who?", { text_pair: "the city" }).ids, pair.getIds());

  const casedDir = path.join(tmp, "saved-cased");
  saveTokenizer(tokenizerFromVocab(vocab, { lowercase: false, stripAccents: true }), casedDir);
  const cased = loadTokenizer(casedDir);
  assert.equal(cased.doLowerCase, false);
  assert.equal(cased.stripAccents, true);
  await assertSameAsReference(cased, rust.Tokenizer.fromFile(path.join(casedDir, "tokenizer.json")), TEXTS, "saved cased");
});

test("bad tokenizer files fail with one line naming the file and the fix", () => {
  const expectUserError = (fn: () => unknown, pattern: RegExp) => {
    assert.throws(fn, (e: unknown) => isUserError(e) && pattern.test((e as Error).message) && !(e as Error).message.includes("\n"));
  };
  expectUserError(() => loadTokenizer(path.join(tmp, "missing")), /missing: no such file/);
  const empty = path.join(tmp, "empty");
  fs.mkdirSync(empty, { recursive: true });
  expectUserError(() => loadTokenizer(empty), /neither tokenizer\.json nor vocab\.txt/);
  const bpe = path.join(tmp, "bpe.json");
  fs.writeFileSync(bpe, JSON.stringify({ model: { type: "BPE", vocab: {}, merges: [] }, pre_tokenizer: { type: "ByteLevel" } }));
  expectUserError(() => loadTokenizer(bpe), /bpe\.json: model type "BPE" is not WordPiece \(only BERT WordPiece/);
  const broken = path.join(tmp, "broken.json");
  fs.writeFileSync(broken, "{ not json");
  expectUserError(() => loadTokenizer(broken), /broken\.json: not valid JSON/);
  const noUnk = path.join(tmp, "nounk.txt");
  fs.writeFileSync(noUnk, "[PAD]\nhello\n");
  expectUserError(() => loadTokenizer(noUnk), /nounk\.txt: .*no unknown token "\[UNK\]"/);
  expectUserError(() => saveTokenizer(tokenizerFromVocab(["[UNK]", "a"]), path.join(tmp, "no-cls")), /no \[CLS\] or \[SEP\]/);
  assert.ok(!fs.existsSync(path.join(tmp, "no-cls")), "nothing written");
});
