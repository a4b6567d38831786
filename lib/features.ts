// Question + context -> BERT QA model inputs, exactly as Hugging Face's reference preprocessing
// (`prepare_train_features` / `prepare_validation_features` in transformers' examples/pytorch/question-answering/run_qa.py):
//   1. left-strip the question (Python's str.lstrip) and tokenize question and context separately, no special tokens;
//   2. cut the context into overlapping windows that each fit `[CLS] question [SEP] window [SEP]` in maxLength tokens
//      (tokenizers 0.22.2 "only_second" truncation with overflow; docStride = tokens shared by neighbouring windows);
//   3. label each window with the answer's first/last token, or [CLS] (index 0) when the answer is not fully inside
//      the window or the question has no answer (SQuAD v2);
//   4. keep character offsets for context tokens only (null elsewhere) so post-processing can cut answers from the text.
import { codePointIndex, locateAnswer, type QAExample } from "./squad";
export { codePointIndex } from "./squad"; // the CLI and notebooks import it from here
import type { BertTokenizer, Encoding } from "./tokenizer";
import { isUserError, userError } from "./errors";
import { progress as makeProgress } from "./progress";
import { beginWork, pollStop, StoppedError } from "./stop";

export interface FeatureOptions {
  maxLength: number; // tokens per feature, special tokens included (384 in the BERT paper's SQuAD setup)
  docStride: number; // tokens shared by neighbouring windows of one context (HF's `stride`; 128 in run_qa.py)
  skipInvalid?: boolean; // skip (and count) examples that cannot be featurized instead of throwing
  warn?: (msg: string) => void; // told why each skipped example was skipped
  file?: string; // named in error messages
  progress?: boolean; // progress bar; default: on for large inputs
  skipFlag?: string | null; // the flag that skips bad examples, named in error messages (default --skip-invalid; null: the command has none)
}

export interface QAFeature {
  exampleId: string;
  exampleIndex: number; // index into the examples array given to prepareFeatures
  inputIds: number[];
  tokenTypeIds: number[];
  offsets: ([number, number] | null)[]; // UTF-16 [start, end) into the context, null for [CLS], question and [SEP]s
  startPosition: number; // 0 ([CLS]) when the answer is not in this window or there is none
  endPosition: number;
}

export interface FeatureStats {
  examples: number; // examples featurized (skipped ones excluded)
  features: number;
  answersLost: number; // answerable examples whose answer is fully inside none of their windows
  skipped: number; // examples skipped because of skipInvalid
}

export interface TokenSpan {
  start: number;
  end: number; // inclusive, like HF's end_positions
}

/** Special tokens around the question and the context: [CLS] question [SEP] context [SEP] (BERT paper, fig. 1). */
export const SPECIAL_TOKENS_IN_PAIR = 3;
/** Below this many examples prepareFeatures does not draw a progress bar unless asked. */
const PROGRESS_MIN_EXAMPLES = 5000;

// Python's str.isspace() set (what run_qa.py's q.lstrip() removes); JS trimStart differs (it strips U+FEFF, keeps
// U+001C-U+001F and U+0085), so the class is spelled out.
const PY_LEADING_SPACE = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Python's `s.lstrip()`: `pyLstrip("\u3000 Who?")` is `"Who?"`. */
export function pyLstrip(s: string): string {
  return s.replace(PY_LEADING_SPACE, "");
}

/**
 * Token windows [start, end) over a context of n tokens, as tokenizers 0.22.2 truncates with overflow: each window
 * holds at most `budget` tokens, consecutive windows share `stride` tokens, and the first window that reaches the end
 * is the last. `contextWindows(10, 4, 1)` is `[[0,4],[3,7],[6,10]]`.
 */
export function contextWindows(n: number, budget: number, stride: number): [number, number][] {
  if (n <= budget) return [[0, n]];
  const step = budget - stride; // the caller guarantees stride < budget
  const windows: [number, number][] = [];
  for (let s = 0; s < n; s += step) {
    const e = Math.min(s + budget, n);
    windows.push([s, e]);
    if (e === n) break;
  }
  return windows;
}

/** Index of the token whose [start, end) contains `charIndex`, or undefined (whitespace, outside the window). */
export function charToToken(offsets: ([number, number] | null)[], charIndex: number): number | undefined {
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i];
    if (o !== null && o[0] <= charIndex && charIndex < o[1]) return i;
  }
  return undefined;
}

/**
 * The answer's first and last token in one feature, run_qa.py's labelling rule: undefined unless the context part of
 * the window covers [startChar, endChar); start = last context token starting at or before startChar, end = first
 * context token ending at or after endChar. Offsets are null outside the context.
 */
export function answerTokenSpan(offsets: ([number, number] | null)[], startChar: number, endChar: number): TokenSpan | undefined {
  let first = 0;
  while (first < offsets.length && offsets[first] === null) first++;
  let last = offsets.length - 1;
  while (last >= 0 && offsets[last] === null) last--;
  if (first > last) return undefined;
  if (!((offsets[first] as [number, number])[0] <= startChar && (offsets[last] as [number, number])[1] >= endChar)) return undefined;
  let s = first;
  // Stop at the last context token: run_qa.py's scan walks onto the final [SEP] when the answer starts there.
  while (s <= last && (offsets[s] as [number, number])[0] <= startChar) s++;
  let e = last;
  while (e >= first && (offsets[e] as [number, number])[1] >= endChar) e--;
  return { start: s - 1, end: e + 1 };
}

/** Validate maxLength/docStride once, before any example is read. */
function checkOptions(opts: FeatureOptions): void {
  const where = opts.file ?? "features";
  if (!Number.isInteger(opts.maxLength) || opts.maxLength <= SPECIAL_TOKENS_IN_PAIR) {
    throw userError(where, `max_length ${opts.maxLength} leaves no room for a question and a context`, "use an integer above 3, e.g. 384");
  }
  if (!Number.isInteger(opts.docStride) || opts.docStride < 0) {
    throw userError(where, `doc_stride ${opts.docStride} must be a non-negative integer`, "e.g. 128");
  }
  if (opts.docStride >= opts.maxLength) {
    throw userError(where, `doc_stride ${opts.docStride} must be below max_length ${opts.maxLength}`, "the usual pair is 384/128");
  }
}

/** ", or pass --skip-invalid" when the caller offers that flag: messages only name flags the command has. */
function orSkip(opts: FeatureOptions): string {
  const flag = opts.skipFlag === undefined ? "--skip-invalid" : opts.skipFlag;
  return flag === null ? "" : `, or pass ${flag}`;
}

/** Where the first answer really starts (loadSquad has already fixed SQuAD's off-by-1/2 starts; hand-made examples may not be). */
function answerStart(ex: QAExample, where: string, opts: FeatureOptions): number {
  const a = ex.answers[0];
  const start = locateAnswer(ex.context, a.text, a.answer_start);
  if (start === undefined) {
    throw userError(where, `answer ${JSON.stringify(a.text)} is not at answer_start ${a.answer_start}`, `fix answer_start (a UTF-16 index into the context)${orSkip(opts)}`);
  }
  return start;
}

/** One example's features; throws UserError when it cannot be featurized. */
function exampleFeatures(ex: QAExample, index: number, q: Encoding, ctx: Encoding, tok: BertTokenizer, opts: FeatureOptions): QAFeature[] {
  const where = `${opts.file ?? "features"}: example ${ex.id}`;
  if (q.ids.length === 0) throw userError(where, "the question is empty (no tokens)", `fix or drop the question${orSkip(opts)}`);
  if (ctx.ids.length === 0) throw userError(where, "the context is empty (no tokens)", `fix or drop the example${orSkip(opts)}`);
  const qLen = q.ids.length, n = ctx.ids.length;
  const budget = opts.maxLength - qLen - SPECIAL_TOKENS_IN_PAIR;
  if (budget <= 0) {
    throw userError(where, `the question is ${qLen} tokens, too long for max_length ${opts.maxLength}`, `raise --max-length or shorten the question${orSkip(opts)}`);
  }
  if (n > budget && opts.docStride >= budget) {
    throw userError(where, `doc_stride ${opts.docStride} must be below the ${budget} context tokens per window left by a ${qLen}-token question`, `lower --doc-stride or raise --max-length${orSkip(opts)}`);
  }
  const answerable = !ex.is_impossible && ex.answers.length > 0;
  const startChar = answerable ? answerStart(ex, where, opts) : -1;
  const endChar = answerable ? startChar + ex.answers[0].text.length : -1;
  const head = qLen + 2; // [CLS] question [SEP]
  const out: QAFeature[] = [];
  for (const [s, e] of contextWindows(n, budget, opts.docStride)) {
    const len = head + (e - s) + 1;
    const inputIds: number[] = new Array(len);
    const tokenTypeIds: number[] = new Array(len);
    const offsets: ([number, number] | null)[] = new Array(len);
    inputIds[0] = tok.clsId;
    for (let i = 0; i < qLen; i++) inputIds[i + 1] = q.ids[i];
    inputIds[head - 1] = tok.sepId;
    for (let i = 0; i < head; i++) { tokenTypeIds[i] = 0; offsets[i] = null; }
    for (let i = s; i < e; i++) {
      const k = head + i - s;
      inputIds[k] = ctx.ids[i];
      tokenTypeIds[k] = 1;
      offsets[k] = ctx.offsets[i]; // shared with the context encoding: offsets are read, never mutated
    }
    inputIds[len - 1] = tok.sepId;
    tokenTypeIds[len - 1] = 1;
    offsets[len - 1] = null;
    const span = answerable ? answerTokenSpan(offsets, startChar, endChar) : undefined;
    out.push({
      exampleId: ex.id, exampleIndex: index, inputIds, tokenTypeIds, offsets,
      startPosition: span !== undefined ? span.start : 0, endPosition: span !== undefined ? span.end : 0,
    });
  }
  return out;
}

/**
 * Training and validation features for `examples` (one or more per example, in order). Each distinct context is
 * tokenized once. `prepareFeatures(ds.examples, tok, { maxLength: 384, docStride: 128 })`.
 */
export function prepareFeatures(examples: QAExample[], tok: BertTokenizer, opts: FeatureOptions): { features: QAFeature[]; stats: FeatureStats } {
  const run = featureRun(examples, tok, opts);
  for (let i = 0; i < examples.length; i++) run.add(i);
  return run.finish();
}

/**
 * prepareFeatures for long inputs in a notebook: the same features, but it lets the event loop run between examples,
 * so Jupyter's stop button (■, see stop.ts) ends it with one line instead of waiting for the whole dataset.
 */
export async function prepareFeaturesAsync(examples: QAExample[], tok: BertTokenizer, opts: FeatureOptions): Promise<{ features: QAFeature[]; stats: FeatureStats }> {
  const run = featureRun(examples, tok, opts);
  const work = beginWork("features", examples.length);
  try {
    for (let i = 0; i < examples.length; i++) {
      if ((i & 63) === 0 && (await pollStop(work))) {
        run.bar?.update(i);
        run.bar?.stop();
        throw new StoppedError(`feature preparation stopped (■) at example ${i} of ${examples.length}; nothing was kept: run the cell again`);
      }
      run.add(i);
    }
  } finally {
    work.end();
  }
  return run.finish();
}

function featureRun(examples: QAExample[], tok: BertTokenizer, opts: FeatureOptions) {
  checkOptions(opts);
  const contexts = new Map<string, Encoding>(); // SQuAD asks ~5 questions per context
  const features: QAFeature[] = [];
  const stats: FeatureStats = { examples: 0, features: 0, answersLost: 0, skipped: 0 };
  const bar = (opts.progress ?? examples.length >= PROGRESS_MIN_EXAMPLES) ? makeProgress("features", examples.length) : undefined;
  const add = (i: number) => {
    const ex = examples[i];
    try {
      const question = pyLstrip(ex.question);
      if (question.length === 0) throw userError(`${opts.file ?? "features"}: example ${ex.id}`, "the question is empty", `fix or drop the question${orSkip(opts)}`);
      let ctx = contexts.get(ex.context);
      if (ctx === undefined) {
        ctx = tok.encode(ex.context);
        contexts.set(ex.context, ctx);
      }
      const own = exampleFeatures(ex, i, tok.encode(question), ctx, tok, opts);
      for (const f of own) features.push(f);
      stats.examples++;
      if (!ex.is_impossible && ex.answers.length > 0 && own.every((f) => f.startPosition === 0)) stats.answersLost++;
    } catch (e) {
      if (!(opts.skipInvalid && isUserError(e))) throw e;
      stats.skipped++;
      opts.warn?.(`skipped: ${e.message}`);
    }
    if (bar !== undefined && ((i + 1) & 255) === 0) bar.update(i + 1, { features: features.length });
  };
  const finish = () => {
    stats.features = features.length;
    if (bar !== undefined) bar.finish({ features: features.length });
    return { features, stats };
  };
  return { add, finish, bar };
}

/** The length to pad a batch to: its longest feature rounded up to a multiple of `multipleOf` (HF's
 * pad_to_multiple_of), but not past `cap` (the model's positions) unless the longest feature already is. */
export function batchLength(features: { inputIds: number[] }[], multipleOf = 1, cap = Infinity): number {
  let longest = 0;
  for (const f of features) longest = Math.max(longest, f.inputIds.length);
  return Math.max(longest, Math.min(Math.ceil(longest / multipleOf) * multipleOf, cap));
}

/** Pad to `length` (default: the longest feature) with padId; attention mask 1 on real tokens, 0 on padding. */
export function padBatch(features: QAFeature[], padId: number, length?: number): { inputIds: number[][]; tokenTypeIds: number[][]; attentionMask: number[][] } {
  const longest = batchLength(features);
  const target = length ?? longest;
  if (longest > target) throw new RangeError(`padBatch: a feature has ${longest} tokens, more than the requested length ${target}`);
  const inputIds: number[][] = [], tokenTypeIds: number[][] = [], attentionMask: number[][] = [];
  for (const f of features) {
    const pad = target - f.inputIds.length;
    inputIds.push(f.inputIds.concat(new Array<number>(pad).fill(padId)));
    tokenTypeIds.push(f.tokenTypeIds.concat(new Array<number>(pad).fill(0))); // HF pads token types with 0
    attentionMask.push(new Array<number>(f.inputIds.length).fill(1).concat(new Array<number>(pad).fill(0)));
  }
  return { inputIds, tokenTypeIds, attentionMask };
}

/**
 * UTF-16 offsets -> Unicode code-point offsets (what Python's str indices count), for files read by Python tools.
 * `toCodePointOffsets("😀 a", [[3, 4]])` is `[[2, 3]]`.
 */
export function toCodePointOffsets(text: string, offsets: ([number, number] | null)[]): ([number, number] | null)[] {
  const index = codePointIndex(text);
  return offsets.map((o) => (o === null ? null : [index[o[0]], index[o[1]]] as [number, number]));
}
