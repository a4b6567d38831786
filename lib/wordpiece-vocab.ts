// A small frequency-based WordPiece vocabulary builder, for training BERT from scratch on a corpus (the sample data
// and the demo). Real BERT vocabularies were learned with Google's WordPiece trainer; this one keeps the same shape:
// special tokens, every character (and its "##" form), whole words, then frequent word pieces.
import { userError } from "./errors";
import { charNormalizer, normalize, preTokenize } from "./wordpiece";

/** BERT's special tokens, ids 0..4 in a built vocabulary ([PAD] = 0 matches pad_token_id = 0 in config.json). */
export const SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

export interface VocabOptions {
  vocabSize: number;
  lowercase: boolean;
  minFrequency?: number; // words and pieces seen fewer times are left out (single characters are always kept); 2
  tokenizeChineseChars?: boolean; // true
}

/** Longest subword piece considered (code points, prefix excluded); longer words are kept whole or split. */
const MAX_PIECE_CHARS = 10;

function byCountThenString(counts: Map<string, number>): string[] {
  return [...counts.keys()].sort((a, b) => {
    const d = (counts.get(b) as number) - (counts.get(a) as number);
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
}

/**
 * Frequency-based WordPiece vocabulary: special tokens, every character seen (and its "##" form), whole words by
 * frequency, then the most frequent prefixes/"##"suffix pieces of the words left out, up to vocabSize.
 * Deterministic: ties are broken by string order. `buildWordPieceVocab(["a cat"], {vocabSize: 50, lowercase: true})`.
 */
export function buildWordPieceVocab(texts: string[], opts: VocabOptions): string[] {
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < SPECIAL_TOKENS.length) {
    throw userError("buildWordPieceVocab", `vocabSize ${opts.vocabSize} is too small`, `use at least ${SPECIAL_TOKENS.length}`);
  }
  const minFrequency = opts.minFrequency !== undefined ? opts.minFrequency : 2;
  const norm = charNormalizer({
    cleanText: true,
    handleChineseChars: opts.tokenizeChineseChars !== undefined ? opts.tokenizeChineseChars : true,
    stripAccents: null,
    lowercase: opts.lowercase,
  });
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    const n = normalize(text, norm);
    for (const [a, b] of preTokenize(n.text)) {
      const w = n.text.slice(a, b);
      wordCounts.set(w, (wordCounts.get(w) || 0) + 1);
    }
  }
  const vocab: string[] = [...SPECIAL_TOKENS];
  const seen = new Set(vocab);
  const add = (t: string): void => {
    if (vocab.length < opts.vocabSize && !seen.has(t)) {
      seen.add(t);
      vocab.push(t);
    }
  };
  // Every character, then the "##" form of those seen inside a word (punctuation and CJK never are: they are
  // words of their own), so no word of the corpus becomes [UNK] (unless over max_input_chars_per_word).
  const charCounts = new Map<string, number>();
  const innerCounts = new Map<string, number>();
  for (const [w, n] of wordCounts) {
    let first = true;
    for (const c of w) {
      charCounts.set(c, (charCounts.get(c) || 0) + n);
      if (!first) innerCounts.set(c, (innerCounts.get(c) || 0) + n);
      first = false;
    }
  }
  for (const c of byCountThenString(charCounts)) add(c);
  for (const c of byCountThenString(innerCounts)) add("##" + c);
  const words = byCountThenString(wordCounts).filter((w) => (wordCounts.get(w) as number) >= minFrequency);
  for (const w of words) add(w);
  // Pieces from the words that did not fit, weighted by how often each word occurs.
  const pieceCounts = new Map<string, number>();
  for (const [w, n] of wordCounts) {
    if (seen.has(w)) continue;
    const cps = [...w];
    for (let i = 0; i < cps.length; i++) {
      for (let len = 2; len <= MAX_PIECE_CHARS && i + len <= cps.length; len++) {
        if (i === 0 && len === cps.length) continue;
        const p = (i === 0 ? "" : "##") + cps.slice(i, i + len).join("");
        pieceCounts.set(p, (pieceCounts.get(p) || 0) + n);
      }
    }
  }
  for (const p of byCountThenString(pieceCounts)) if ((pieceCounts.get(p) as number) >= minFrequency) add(p);
  return vocab;
}
