// The three steps of BERT's tokenizer, exactly as Hugging Face's Rust `tokenizers` (BertTokenizerFast) runs them:
//   1. normalise   (BertNormalizer): drop control chars, whitespace -> " ", space out CJK ideographs, strip accents
//                  (NFD, then drop nonspacing marks), lowercase; every output char remembers the original char it
//                  came from, so offsets survive changes of length (e.g. "İ" -> "i̇", "é" -> "e");
//   2. pre-tokenise (BertPreTokenizer): split on whitespace (dropped) and isolate each punctuation char;
//   3. WordPiece:  greedy longest-match-first against the vocabulary, "##" marking word-internal pieces; a word that
//                  cannot be covered, or is longer than 100 chars, becomes one [UNK].
// bertEncoder at the bottom runs the three steps on a text and maps every token back to the original UTF-16 span.
import { CONTROL_RANGES, MARK_RANGES, NO_NFD_RANGES, PUNCT_RANGES, WHITESPACE_RANGES } from "./bert-unicode";

export interface NormalizerOptions {
  cleanText: boolean; // clean_text
  handleChineseChars: boolean; // handle_chinese_chars
  stripAccents: boolean | null; // strip_accents; null = follow lowercase (HF's rule)
  lowercase: boolean; // lowercase
}

/** A normalised string plus, for each of its UTF-16 units, the [start, end) of the original char it came from. */
export interface Normalized {
  text: string;
  start: Int32Array;
  end: Int32Array;
}

// ---- character classes (one byte per code point, filled on first use) ----
const CONTROL = 1; // removed by clean_text
const SPACE = 2; // Rust char::is_whitespace
const MARK = 4; // nonspacing mark, removed when stripping accents
const PUNCT = 8; // isolated by the pre-tokenizer
const CJK = 16; // spaced out by handle_chinese_chars
const NO_NFD = 32; // decomposed by JavaScript's newer NFD only
// CJK ideograph blocks from tokenizers' bert.rs is_chinese_char. It starts Extension E at U+2B920 where BERT's
// tokenization.py says U+2B820; we follow the Rust code, which BertTokenizerFast runs.
const CJK_RANGES = "3400-4dbf,4e00-9fff,f900-faff,20000-2a6df,2a700-2b81f,2b920-2ceaf,2f800-2fa1f";

let classTable: Uint8Array | undefined;

function charClasses(): Uint8Array {
  if (classTable !== undefined) return classTable;
  const table = new Uint8Array(0x110000);
  const mark = (ranges: string, flag: number): void => {
    for (const r of ranges.split(",")) {
      const [a, b] = r.split("-");
      const lo = parseInt(a, 16);
      const hi = b === undefined ? lo : parseInt(b, 16);
      for (let cp = lo; cp <= hi; cp++) table[cp] |= flag;
    }
  };
  mark(CONTROL_RANGES, CONTROL);
  mark(WHITESPACE_RANGES, SPACE);
  mark(MARK_RANGES, MARK);
  mark(PUNCT_RANGES, PUNCT);
  mark(CJK_RANGES, CJK);
  mark(NO_NFD_RANGES, NO_NFD);
  classTable = table;
  return table;
}

/** The code point at index i of s; a lone surrogate reads as U+FFFD, as it does once the text reaches Rust. */
function codePointAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0xd800 || c > 0xdfff) return c;
  if (c <= 0xdbff && i + 1 < s.length) {
    const lo = s.charCodeAt(i + 1);
    if (lo >= 0xdc00 && lo <= 0xdfff) return ((c - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
  }
  return 0xfffd;
}

/** What one original code point becomes after BertNormalizer (its steps run in bert.rs order). */
export function normalizeChar(cp: number, o: NormalizerOptions): string {
  const cls = charClasses();
  if (o.cleanText) {
    if ((cls[cp] & CONTROL) !== 0) return ""; // clean_text: control and format chars vanish...
    if ((cls[cp] & SPACE) !== 0) return " "; // ...and every kind of whitespace becomes a plain space
  }
  let s = String.fromCodePoint(cp);
  if (o.handleChineseChars && (cls[cp] & CJK) !== 0) s = ` ${s} `; // each ideograph becomes a word of its own
  if (o.stripAccents !== null ? o.stripAccents : o.lowercase) {
    // strip_accents: decompose ("é" -> "e" + U+0301) and drop the nonspacing marks.
    const decomposed = (cls[cp] & NO_NFD) !== 0 ? s : s.normalize("NFD");
    let kept = "";
    for (const c of decomposed) if ((cls[c.codePointAt(0) as number] & MARK) === 0) kept += c;
    s = kept;
  }
  if (o.lowercase) {
    // Per code point, like Rust's char::to_lowercase: no context rules (a lone "Σ" is "σ", never "ς").
    let lower = "";
    for (const c of s) lower += c.toLowerCase();
    s = lower;
  }
  return s;
}

/** A per-options cache of normalizeChar, so each distinct code point is normalised once. */
export type CharNormalizer = (cp: number) => string;

export function charNormalizer(o: NormalizerOptions): CharNormalizer {
  const bmp: (string | undefined)[] = new Array(0x10000);
  const astral = new Map<number, string>();
  return (cp) => {
    if (cp < 0x10000) {
      const hit = bmp[cp];
      if (hit !== undefined) return hit;
      return (bmp[cp] = normalizeChar(cp, o));
    }
    let s = astral.get(cp);
    if (s === undefined) astral.set(cp, (s = normalizeChar(cp, o)));
    return s;
  };
}

/**
 * Step 1. Normalise text[from, to). Each output unit points back to the whole original char it came from (as
 * tokenizers' NormalizedString alignments do: inserted chars share their source's span, removed chars leave none).
 * `normalize("Café", charNormalizer(uncased))` -> {text: "cafe", start: [0, 1, 2, 3], end: [1, 2, 3, 4]}.
 */
export function normalize(text: string, norm: CharNormalizer, from = 0, to = text.length): Normalized {
  let cap = to - from + 16;
  let start = new Int32Array(cap);
  let end = new Int32Array(cap);
  let out = "";
  let n = 0;
  let run = from; // chars from `run` to i normalised to themselves: copied in one slice, not char by char
  for (let i = from; i < to; ) {
    let cp = text.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = codePointAt(text, i);
    const len = cp >= 0x10000 ? 2 : 1;
    const s = norm(cp);
    if (n + s.length > cap) {
      cap = 2 * cap + s.length;
      start = grow(start, cap);
      end = grow(end, cap);
    }
    const same = s.length === len && s.charCodeAt(0) === text.charCodeAt(i) && (len === 1 || s.charCodeAt(1) === text.charCodeAt(i + 1));
    if (!same) {
      out += text.slice(run, i) + s;
      run = i + len;
    }
    for (let k = 0; k < s.length; k++, n++) {
      start[n] = i;
      end[n] = i + len;
    }
    i += len;
  }
  out += text.slice(run, to);
  return { text: out, start: start.subarray(0, n), end: end.subarray(0, n) };
}

function grow(a: Int32Array, cap: number): Int32Array {
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}

/** Calls onWord(start, end) for each word of s[from, to) as BertPreTokenizer splits it (the loop behind preTokenize). */
export function forEachWord(s: string, from: number, to: number, onWord: (start: number, end: number) => void): void {
  const cls = charClasses();
  let wordStart = from;
  for (let i = from; i < to; ) {
    let cp = s.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = codePointAt(s, i);
    const len = cp >= 0x10000 ? 2 : 1;
    const c = cls[cp];
    if ((c & (SPACE | PUNCT)) !== 0) {
      if (i > wordStart) onWord(wordStart, i);
      if ((c & SPACE) === 0) onWord(i, i + len); // punctuation is a word of its own; whitespace is dropped
      wordStart = i + len;
    }
    i += len;
  }
  if (to > wordStart) onWord(wordStart, to);
}

/** Step 2. BertPreTokenizer on a normalised string: word spans [start, end) in its UTF-16 units. */
export function preTokenize(s: string, from = 0, to = s.length): [number, number][] {
  const words: [number, number][] = [];
  forEachWord(s, from, to, (a, b) => words.push([a, b]));
  return words;
}

export interface WordPieceModel {
  vocab: Map<string, number>;
  unkId: number;
  prefix: string; // continuing_subword_prefix, "##"
  maxInputChars: number; // max_input_chars_per_word, 100
  maxPieceUnits: number; // longest vocabulary entry in UTF-16 units: no longer piece can match, so none is tried
}

export function wordPieceModel(vocab: Map<string, number>, unkId: number, prefix = "##", maxInputChars = 100): WordPieceModel {
  let maxPieceUnits = 1;
  for (const key of vocab.keys()) if (key.length > maxPieceUnits) maxPieceUnits = key.length;
  return { vocab, unkId, prefix, maxInputChars, maxPieceUnits };
}

function countCodePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff || i === 0 || s.charCodeAt(i - 1) < 0xd800 || s.charCodeAt(i - 1) > 0xdbff) n++;
  }
  return n;
}

/**
 * Step 3. WordPiece on one word: flat [id, start, end, id, start, end, ...] with spans in the word's UTF-16 units.
 * `wordPiece(m, "unaffable")` -> [id("un"), 0, 2, id("##aff"), 2, 5, id("##able"), 5, 9] with a BERT vocabulary.
 */
export function wordPiece(m: WordPieceModel, word: string): number[] {
  const whole = [m.unkId, 0, word.length];
  if (countCodePoints(word) > m.maxInputChars) return whole;
  const pieces: number[] = [];
  for (let start = 0; start < word.length; ) {
    let end = Math.min(word.length, start + m.maxPieceUnits);
    if (end < word.length && isLowSurrogate(word.charCodeAt(end)) && isHighSurrogate(word.charCodeAt(end - 1))) end--;
    let id: number | undefined;
    while (end > start) {
      const piece = start === 0 ? word.slice(0, end) : m.prefix + word.slice(start, end);
      id = m.vocab.get(piece);
      if (id !== undefined) break;
      end -= end - 2 >= start && isLowSurrogate(word.charCodeAt(end - 1)) && isHighSurrogate(word.charCodeAt(end - 2)) ? 2 : 1;
    }
    if (id === undefined) return whole; // one uncoverable spot makes the whole word [UNK], as in BERT
    pieces.push(id, start, end);
    start = end;
  }
  return pieces;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

// ---- the pipeline ----

/** Words remembered per tokenizer: SQuAD's contexts reuse a few hundred thousand distinct words. */
const WORD_CACHE_LIMIT = 500_000;

export interface Encoding {
  ids: number[];
  tokens: string[];
  offsets: [number, number][]; // UTF-16 [start, end) into the text given to encode
}

/** A token matched as a whole before normalisation (tokenizer.json "added_tokens"; BERT's are the special tokens). */
export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean; // matched in the normalised text (true) or the raw text (false, all of BERT's)
  lstrip: boolean;
  rstrip: boolean;
  single_word: boolean;
}

/** Finds added tokens: one regex, longer tokens first so that the leftmost match is also the longest. */
interface AddedMatcher {
  re: RegExp;
  ids: number[]; // token id of each alternative (capture group) of re
}

function addedMatcher(tokens: { token: AddedToken; text: string }[]): AddedMatcher | undefined {
  const usable = tokens.filter((t) => t.text.length > 0).sort((a, b) => b.text.length - a.text.length);
  if (usable.length === 0) return undefined;
  const alts = usable.map(({ token, text }) => {
    let p = text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"); // the token's text, literally
    if (token.single_word) p = `(?<![\\p{L}\\p{N}_])${p}(?![\\p{L}\\p{N}_])`; // not inside a longer word
    if (token.lstrip) p = `\\s*${p}`; // swallow the whitespace on its left...
    if (token.rstrip) p = `${p}\\s*`; // ...or right
    return `(${p})`;
  });
  return { re: new RegExp(alts.join("|"), "gu"), ids: usable.map((t) => t.token.id) };
}

/** Added-token matches in s as flat [start, end, id, start, end, id, ...]. */
function findAdded(m: AddedMatcher | undefined, s: string): number[] {
  const found: number[] = [];
  if (m === undefined) return found;
  for (const hit of s.matchAll(m.re)) {
    const alt = hit.slice(1).findIndex((g) => g !== undefined);
    const at = hit.index as number;
    if (hit[0].length > 0) found.push(at, at + hit[0].length, m.ids[alt]);
  }
  return found;
}

/**
 * The whole pipeline as one function: added tokens ([CLS], [SEP], ... written literally) are cut out of the raw text
 * first, each piece between them is normalised, pre-tokenised and split into WordPieces, and every token's offsets go
 * back through the normalisation alignment to the original text. Words are cached: text repeats them a lot.
 */
export function bertEncoder(model: WordPieceModel, o: NormalizerOptions, added: AddedToken[], idToToken: string[]):
  (text: string) => Encoding {
  const norm: CharNormalizer = charNormalizer(o);
  const raw = addedMatcher(added.filter((a) => !a.normalized).map((token) => ({ token, text: token.content })));
  // Normalised added tokens are matched by their normalised form, as tokenizers' AddedVocabulary does.
  const normed = addedMatcher(added.filter((a) => a.normalized).map((token) => ({
    token, text: [...token.content].map((c) => normalizeChar(c.codePointAt(0) as number, o)).join(""),
  })));
  let cache = new Map<string, number[]>();

  const pushToken = (enc: Encoding, id: number, start: number, end: number, token?: string): void => {
    enc.ids.push(id);
    enc.tokens.push(token !== undefined ? token : idToToken[id]);
    enc.offsets.push([start, end]);
  };
  const encodeWords = (enc: Encoding, n: Normalized, from: number, to: number): void => {
    forEachWord(n.text, from, to, (a, b) => {
      const word = n.text.slice(a, b);
      let pieces = cache.get(word);
      if (pieces === undefined) {
        if (cache.size >= WORD_CACHE_LIMIT) cache = new Map();
        pieces = wordPiece(model, word);
        cache.set(word, pieces);
      }
      // A piece covers normalised units [a + s, a + e): its original span runs from its first unit's source char
      // to its last unit's source char.
      for (let k = 0; k < pieces.length; k += 3) pushToken(enc, pieces[k], n.start[a + pieces[k + 1]], n.end[a + pieces[k + 2] - 1]);
    });
  };
  const encodeSegment = (enc: Encoding, text: string, from: number, to: number): void => {
    if (from >= to) return;
    const n = normalize(text, norm, from, to);
    let at = 0;
    const hits = findAdded(normed, n.text);
    for (let h = 0; h < hits.length; h += 3) {
      encodeWords(enc, n, at, hits[h]);
      // An added token's text is what it matched (here the normalised form), as tokenizers reports it.
      pushToken(enc, hits[h + 2], n.start[hits[h]], n.end[hits[h + 1] - 1], n.text.slice(hits[h], hits[h + 1]));
      at = hits[h + 1];
    }
    encodeWords(enc, n, at, n.text.length);
  };
  return (text: string): Encoding => {
    const enc: Encoding = { ids: [], tokens: [], offsets: [] };
    let at = 0;
    const hits = findAdded(raw, text);
    for (let h = 0; h < hits.length; h += 3) {
      encodeSegment(enc, text, at, hits[h]);
      pushToken(enc, hits[h + 2], hits[h], hits[h + 1], text.slice(hits[h], hits[h + 1]));
      at = hits[h + 1];
    }
    encodeSegment(enc, text, at, text.length);
    return enc;
  };
}
