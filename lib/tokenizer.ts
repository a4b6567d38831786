// BERT's WordPiece tokenizer with character offsets into the original text, matching Hugging Face's
// BertTokenizerFast (Rust `tokenizers`: BertNormalizer + BertPreTokenizer + WordPiece) in ids AND offsets.
// The algorithm (normalise -> pre-tokenise -> WordPiece, with the offset alignment) lives in ./wordpiece.ts and the
// vocabulary builder in ./wordpiece-vocab.ts; this file reads and writes the Hugging Face files (tokenizer.json,
// tokenizer_config.json, vocab.txt) and builds the BertTokenizer object the rest of the library uses.
// Why our own WordPiece rather than @huggingface/tokenizers (tokenizers.js): its current release, 0.2.0, encodes to
// ids, tokens and masks only, with no character offsets and no overflow windows (stride), and extractive QA needs
// both to map answer characters to tokens and back. test/tokenizer.test.ts checks that it gives the same ids as ours.
import { fs, path } from "./platform";
import { isUserError, userError } from "./errors";
import { decodeUtf8, writeFileAtomic, writeJsonAtomic } from "./fsutil";
import { bertEncoder, wordPieceModel } from "./wordpiece";
import type { AddedToken, Encoding, NormalizerOptions } from "./wordpiece";

export { buildWordPieceVocab, SPECIAL_TOKENS } from "./wordpiece-vocab";
export { charNormalizer, normalize, preTokenize, wordPiece } from "./wordpiece";
export type { AddedToken, Encoding, NormalizerOptions, Normalized } from "./wordpiece";
export type { VocabOptions } from "./wordpiece-vocab";

export interface BertTokenizer {
  vocab: Map<string, number>;
  idToToken: string[];
  doLowerCase: boolean;
  stripAccents: boolean | null; // null: strip when lowercasing (HF default)
  tokenizeChineseChars: boolean;
  clsId: number; // the special tokens' ids; -1 where the vocabulary lacks one
  sepId: number;
  padId: number;
  unkId: number;
  maskId: number;
  encode(text: string): Encoding; // no special tokens added, no truncation
  // Optional extras (defaults are BERT's) so saveTokenizer can write the files back unchanged:
  cleanText?: boolean;
  continuingSubwordPrefix?: string;
  maxInputCharsPerWord?: number;
  addedTokens?: AddedToken[];
  specialTokens?: Record<SpecialName, string>; // e.g. { cls_token: "[CLS]", ... }
  modelMaxLength?: number;
}

type SpecialName = "unk_token" | "sep_token" | "pad_token" | "cls_token" | "mask_token";
const SPECIAL_NAMES: SpecialName[] = ["pad_token", "unk_token", "cls_token", "sep_token", "mask_token"];
const DEFAULT_SPECIALS: Record<SpecialName, string> = {
  pad_token: "[PAD]", unk_token: "[UNK]", cls_token: "[CLS]", sep_token: "[SEP]", mask_token: "[MASK]",
};
/** BERT's position-embedding table size (bert-base-uncased tokenizer_config.json model_max_length). */
const DEFAULT_MODEL_MAX_LENGTH = 512;

export interface TokenizerSettings {
  lowercase?: boolean; // default true
  stripAccents?: boolean | null; // default null (follow lowercase)
  tokenizeChineseChars?: boolean; // default true
  cleanText?: boolean; // default true
  unkToken?: string;
  continuingSubwordPrefix?: string;
  maxInputCharsPerWord?: number;
  addedTokens?: AddedToken[]; // default: the special tokens found in the vocabulary
  specialTokens?: Partial<Record<SpecialName, string>>;
  modelMaxLength?: number;
}

/**
 * A tokenizer from a vocabulary list (index = id), as BertTokenizerFast builds one from vocab.txt.
 * `tokenizerFromVocab(buildWordPieceVocab(texts, {vocabSize: 8000, lowercase: true}))`.
 */
export function tokenizerFromVocab(vocabList: string[] | Map<string, number>, s: TokenizerSettings = {}): BertTokenizer {
  const vocab = vocabList instanceof Map ? vocabList : new Map(vocabList.map((t, i) => [t, i] as [string, number]));
  const specials: Record<SpecialName, string> = { ...DEFAULT_SPECIALS, ...s.specialTokens };
  const addedTokens = s.addedTokens !== undefined ? s.addedTokens : defaultAddedTokens(vocab, specials);
  const idToToken: string[] = [];
  for (const [t, id] of vocab) idToToken[id] = t; // on duplicates the later id keeps the string, as in tokenizers
  for (const a of addedTokens) if (idToToken[a.id] === undefined) idToToken[a.id] = a.content;
  const idOf = (name: SpecialName): number => {
    const t = specials[name];
    const hit = vocab.get(t);
    if (hit !== undefined) return hit;
    const added = addedTokens.find((a) => a.content === t);
    return added !== undefined ? added.id : -1;
  };
  const lowercase = s.lowercase !== undefined ? s.lowercase : true;
  const norm: NormalizerOptions = {
    cleanText: s.cleanText !== undefined ? s.cleanText : true,
    handleChineseChars: s.tokenizeChineseChars !== undefined ? s.tokenizeChineseChars : true,
    stripAccents: s.stripAccents !== undefined ? s.stripAccents : null,
    lowercase,
  };
  const unkId = vocab.get(s.unkToken !== undefined ? s.unkToken : specials.unk_token);
  if (unkId === undefined) {
    throw userError("tokenizer", `the vocabulary has no unknown token "${specials.unk_token}"`, "add [UNK] to vocab.txt");
  }
  const model = wordPieceModel(vocab, unkId, s.continuingSubwordPrefix !== undefined ? s.continuingSubwordPrefix : "##",
    s.maxInputCharsPerWord !== undefined ? s.maxInputCharsPerWord : 100);
  const tok: BertTokenizer = {
    vocab, idToToken, doLowerCase: lowercase, stripAccents: norm.stripAccents,
    tokenizeChineseChars: norm.handleChineseChars, cleanText: norm.cleanText,
    clsId: idOf("cls_token"), sepId: idOf("sep_token"), padId: idOf("pad_token"), unkId, maskId: idOf("mask_token"),
    continuingSubwordPrefix: model.prefix, maxInputCharsPerWord: model.maxInputChars, addedTokens,
    specialTokens: specials, modelMaxLength: s.modelMaxLength !== undefined ? s.modelMaxLength : DEFAULT_MODEL_MAX_LENGTH,
    encode: bertEncoder(model, norm, addedTokens, idToToken),
  };
  return tok;
}

function defaultAddedTokens(vocab: Map<string, number>, specials: Record<SpecialName, string>): AddedToken[] {
  const out: AddedToken[] = [];
  for (const name of SPECIAL_NAMES) {
    const id = vocab.get(specials[name]);
    if (id !== undefined) {
      out.push({ id, content: specials[name], special: true, normalized: false, lstrip: false, rstrip: false, single_word: false });
    }
  }
  return out.sort((a, b) => a.id - b.id);
}

// ---- loading ----

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = decodeUtf8(fs.readFileSync(file), file);
  } catch (e) {
    if (isUserError(e)) throw e;
    throw userError(file, `cannot read: ${(e as Error).message}`, "check the path");
  }
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw userError(file, `not valid JSON (${(e as Error).message})`, "re-download or re-save the tokenizer");
  }
}

/** A special token in tokenizer_config.json is a string or an AddedToken object {content: "[CLS]", ...}. */
function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v !== null && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

/** Settings from tokenizer_config.json (transformers lets these override the normaliser in tokenizer.json). */
function configSettings(config: Record<string, unknown> | undefined): TokenizerSettings {
  if (config === undefined) return {};
  const s: TokenizerSettings = { specialTokens: {} };
  if (typeof config.do_lower_case === "boolean") s.lowercase = config.do_lower_case;
  const strip = config.strip_accents;
  if (strip === null) s.stripAccents = null;
  else if (typeof strip === "boolean") s.stripAccents = strip;
  if (typeof config.tokenize_chinese_chars === "boolean") s.tokenizeChineseChars = config.tokenize_chinese_chars;
  if (typeof config.model_max_length === "number") s.modelMaxLength = config.model_max_length;
  for (const name of SPECIAL_NAMES) {
    const t = tokenName(config[name]);
    if (t !== undefined) (s.specialTokens as Record<string, string>)[name] = t;
  }
  return s;
}

function fromTokenizerJson(file: string, json: Record<string, unknown>): TokenizerSettings & { vocab: Map<string, number> } {
  const model = json.model as Record<string, unknown> | null | undefined;
  const fix = "only BERT WordPiece tokenizers (BertNormalizer + BertPreTokenizer + WordPiece) are supported";
  if (model === null || typeof model !== "object" || (model.type !== undefined && model.type !== "WordPiece")) {
    throw userError(file, `model type ${JSON.stringify(model && model.type)} is not WordPiece`, fix);
  }
  if (model.vocab === null || typeof model.vocab !== "object") throw userError(file, "model.vocab is missing", fix);
  const vocab = new Map<string, number>();
  for (const [t, id] of Object.entries(model.vocab as Record<string, unknown>)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) throw userError(file, `vocab entry "${t}" has id ${String(id)}`, fix);
    vocab.set(t, id);
  }
  const pre = json.pre_tokenizer as { type?: unknown } | null | undefined;
  if (pre === null || pre === undefined || pre.type !== "BertPreTokenizer") {
    throw userError(file, `pre_tokenizer ${JSON.stringify(pre && pre.type)} is not BertPreTokenizer`, fix);
  }
  const n = json.normalizer as Record<string, unknown> | null | undefined;
  const s: TokenizerSettings & { vocab: Map<string, number> } = { vocab };
  if (n === null || n === undefined) {
    Object.assign(s, { cleanText: false, tokenizeChineseChars: false, stripAccents: false, lowercase: false });
  } else if (n.type === "BertNormalizer") {
    s.cleanText = n.clean_text !== false;
    s.tokenizeChineseChars = n.handle_chinese_chars !== false;
    s.stripAccents = typeof n.strip_accents === "boolean" ? n.strip_accents : null;
    s.lowercase = n.lowercase !== false;
  } else {
    throw userError(file, `normalizer ${JSON.stringify(n.type)} is not BertNormalizer`, fix);
  }
  if (typeof model.unk_token === "string") s.unkToken = model.unk_token;
  if (typeof model.continuing_subword_prefix === "string") s.continuingSubwordPrefix = model.continuing_subword_prefix;
  if (typeof model.max_input_chars_per_word === "number") s.maxInputCharsPerWord = model.max_input_chars_per_word;
  const added = Array.isArray(json.added_tokens) ? (json.added_tokens as Record<string, unknown>[]) : [];
  s.addedTokens = added.map((a, i) => {
    if (typeof a.id !== "number" || typeof a.content !== "string" || a.content === "") {
      throw userError(file, `added_tokens[${i}] needs a numeric id and a non-empty content`, fix);
    }
    return {
      id: a.id, content: a.content, special: a.special === true, normalized: a.normalized === true,
      lstrip: a.lstrip === true, rstrip: a.rstrip === true, single_word: a.single_word === true,
    };
  });
  return s;
}

function readVocabTxt(file: string): Map<string, number> {
  const vocab = new Map<string, number>();
  let text: string;
  try {
    text = decodeUtf8(fs.readFileSync(file), file);
  } catch (e) {
    if (isUserError(e)) throw e;
    throw userError(file, `cannot read: ${(e as Error).message}`, "check the path");
  }
  // One token per line, id = line number; like tokenizers' WordPiece::read_file, trailing whitespace is trimmed.
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  lines.forEach((line, i) => vocab.set(line.trimEnd(), i));
  if (vocab.size === 0) throw userError(file, "the vocabulary is empty", "pass a BERT vocab.txt, one token per line");
  return vocab;
}

/**
 * Load a BERT tokenizer from a directory (tokenizer.json preferred, else vocab.txt; tokenizer_config.json if present)
 * or from the file itself. `opts.lowercase` overrides the files (for a bare vocab.txt it defaults to true).
 * `loadTokenizer("data/tokenizer").encode("Who wrote it?")`.
 */
export function loadTokenizer(p: string, opts: { lowercase?: boolean } = {}): BertTokenizer {
  let dir = p;
  let file: string | undefined;
  if (!fs.existsSync(p)) throw userError(p, "no such file or directory", "pass a directory holding tokenizer.json or vocab.txt");
  if (fs.statSync(p).isDirectory()) {
    for (const name of ["tokenizer.json", "vocab.txt"]) {
      if (file === undefined && fs.existsSync(path.join(p, name))) file = path.join(p, name);
    }
    if (file === undefined) throw userError(p, "has neither tokenizer.json nor vocab.txt", "download the model's tokenizer files into it");
  } else {
    file = p;
    dir = path.dirname(p);
  }
  const configFile = path.join(dir, "tokenizer_config.json");
  const config = fs.existsSync(configFile) ? configSettings(readJson(configFile)) : {};
  const base = file.endsWith(".json") ? fromTokenizerJson(file, readJson(file)) : { vocab: readVocabTxt(file) };
  const settings: TokenizerSettings = { ...base, ...config, specialTokens: config.specialTokens };
  if (opts.lowercase !== undefined) settings.lowercase = opts.lowercase;
  try {
    return tokenizerFromVocab(base.vocab, settings);
  } catch (e) {
    if (!isUserError(e)) throw e;
    throw userError(file, e.message.replace(/^tokenizer: /, "")); // name the file rather than "tokenizer"
  }
}

// ---- saving ----

/** tokenizer.json in the Rust `tokenizers` format (loads in AutoTokenizer.from_pretrained and Tokenizer.from_file). */
export function tokenizerJson(tok: BertTokenizer): Record<string, unknown> {
  const specials = { ...DEFAULT_SPECIALS, ...tok.specialTokens };
  const added = tok.addedTokens !== undefined ? tok.addedTokens : defaultAddedTokens(tok.vocab, specials);
  const vocab: Record<string, number> = {};
  for (const [t, id] of tok.vocab) {
    if (t === "__proto__") Object.defineProperty(vocab, t, { value: id, enumerable: true, writable: true, configurable: true }); // a token, not the prototype
    else vocab[t] = id;
  }
  const cls = specials.cls_token;
  const sep = specials.sep_token;
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added.map((a) => ({
      id: a.id, content: a.content, single_word: a.single_word, lstrip: a.lstrip, rstrip: a.rstrip,
      normalized: a.normalized, special: a.special,
    })),
    normalizer: {
      type: "BertNormalizer", clean_text: tok.cleanText !== false, handle_chinese_chars: tok.tokenizeChineseChars,
      strip_accents: tok.stripAccents, lowercase: tok.doLowerCase,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [special(cls, 0), seq("A", 0), special(sep, 0)],
      pair: [special(cls, 0), seq("A", 0), special(sep, 0), seq("B", 1), special(sep, 1)],
      special_tokens: {
        [cls]: { id: cls, ids: [tok.clsId], tokens: [cls] },
        [sep]: { id: sep, ids: [tok.sepId], tokens: [sep] },
      },
    },
    decoder: { type: "WordPiece", prefix: tok.continuingSubwordPrefix || "##", cleanup: true },
    model: {
      type: "WordPiece", unk_token: tok.idToToken[tok.unkId], continuing_subword_prefix: tok.continuingSubwordPrefix || "##",
      max_input_chars_per_word: tok.maxInputCharsPerWord !== undefined ? tok.maxInputCharsPerWord : 100, vocab,
    },
  };
}

/** Write tokenizer.json, tokenizer_config.json and vocab.txt into dir (each file atomically; other files stay). */
export function saveTokenizer(tok: BertTokenizer, dir: string): void {
  // vocab.txt holds the WordPiece vocabulary, line number = id; added tokens outside it live in tokenizer.json only.
  const lines: string[] = [];
  for (const [t, id] of tok.vocab) lines[id] = t;
  for (let id = 0; id < lines.length; id++) {
    if (lines[id] === undefined) throw userError(dir, `vocabulary id ${id} has no token`, "ids must run 0..n-1 without gaps");
  }
  if (tok.clsId < 0 || tok.sepId < 0) {
    throw userError(dir, "the vocabulary has no [CLS] or [SEP] token", "build it with buildWordPieceVocab, which adds them");
  }
  const specials = { ...DEFAULT_SPECIALS, ...tok.specialTokens };
  const added = tok.addedTokens !== undefined ? tok.addedTokens : defaultAddedTokens(tok.vocab, specials);
  const addedDecoder: Record<string, unknown> = {};
  for (const a of added) {
    addedDecoder[String(a.id)] = {
      content: a.content, lstrip: a.lstrip, normalized: a.normalized, rstrip: a.rstrip, single_word: a.single_word, special: a.special,
    };
  }
  writeFileAtomic(path.join(dir, "vocab.txt"), lines.join("\n") + "\n");
  writeJsonAtomic(path.join(dir, "tokenizer.json"), tokenizerJson(tok));
  writeJsonAtomic(path.join(dir, "tokenizer_config.json"), {
    tokenizer_class: "BertTokenizer",
    do_lower_case: tok.doLowerCase,
    strip_accents: tok.stripAccents,
    tokenize_chinese_chars: tok.tokenizeChineseChars,
    model_max_length: tok.modelMaxLength !== undefined ? tok.modelMaxLength : DEFAULT_MODEL_MAX_LENGTH,
    clean_up_tokenization_spaces: true,
    ...specials,
    added_tokens_decoder: addedDecoder,
  });
}
