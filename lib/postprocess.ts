// Start/end logits -> answer text, as Hugging Face's reference `postprocess_qa_predictions`
// (transformers examples/pytorch/question-answering/utils_qa.py):
//   1. for every feature (window) of an example, pair the nBest highest start logits with the nBest highest end logits;
//   2. keep pairs inside the context (offsets not null), with start <= end and at most maxAnswerLength tokens;
//      score = start logit + end logit;
//   3. SQuAD 2.0: the null answer scores start[0] + end[0] ([CLS]), its lowest value over the windows; answer "" when
//      null score - best span score > nullScoreDiffThreshold (that difference is the "null odds" for na_prob files);
//   4. cut the answer from the original context with the offsets; softmax over the n-best scores gives probabilities.
import type { QAExample } from "./squad";
import type { QAFeature } from "./features";

export interface NBest {
  text: string;
  probability: number; // softmax over the n-best list's scores
  start_logit: number;
  end_logit: number;
  start: number; // UTF-16 [start, end) in the context; 0, 0 for the null answer
  end: number;
}

export interface PostprocessOptions {
  nBest?: number; // candidates per side and list length (utils_qa.py n_best_size = 20)
  maxAnswerLength?: number; // tokens (utils_qa.py max_answer_length = 30)
  nullScoreDiffThreshold?: number; // utils_qa.py default 0.0
  version2?: boolean; // questions may have no answer (SQuAD 2.0)
}

export interface PostprocessResult {
  predictions: Record<string, string>; // the official predictions file: {id: text}
  nbest: Record<string, NBest[]>;
  nullOdds: Record<string, number>; // version2 only: null score - best non-null score (na_prob file)
}

export const DEFAULT_N_BEST = 20; // utils_qa.py
export const DEFAULT_MAX_ANSWER_LENGTH = 30; // utils_qa.py

interface Candidate { start: number; end: number; score: number; start_logit: number; end_logit: number }

/**
 * Indices of the k largest values, largest first. Ties put the higher index first, as numpy's
 * `argsort(x)[-1:-k-1:-1]` does with a stable (short-row) sort.
 */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || b - a);
  return idx.slice(0, k);
}

function softmax(scores: number[]): number[] {
  const max = Math.max(...scores);
  const exps = scores.map((s) => Math.exp(s - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** Valid spans of one feature (step 2), in the reference's start-major, end-minor order. */
function featureCandidates(f: QAFeature, start: ArrayLike<number>, end: ArrayLike<number>, nBest: number, maxLen: number): Candidate[] {
  const out: Candidate[] = [];
  const offsets = f.offsets;
  const ends = topIndices(end, nBest);
  for (const s of topIndices(start, nBest)) {
    for (const e of ends) {
      if (s >= offsets.length || e >= offsets.length) continue; // padding
      const so = offsets[s], eo = offsets[e];
      if (so === null || so === undefined || eo === null || eo === undefined) continue; // question, [CLS], [SEP]
      if (e < s || e - s + 1 > maxLen) continue;
      out.push({ start: so[0], end: eo[1], score: start[s] + end[e], start_logit: start[s], end_logit: end[e] });
    }
  }
  return out;
}

/**
 * Answers for all examples from per-feature logits (rows may be padded past the feature's length).
 * Example: postprocessQA(examples, features, starts, ends, { version2: true }).predictions → { "q1": "Denver Broncos" }
 */
export function postprocessQA(examples: QAExample[], features: QAFeature[], startLogits: ArrayLike<number>[],
  endLogits: ArrayLike<number>[], opts: PostprocessOptions = {}): PostprocessResult {
  const nBest = opts.nBest ?? DEFAULT_N_BEST;
  const maxLen = opts.maxAnswerLength ?? DEFAULT_MAX_ANSWER_LENGTH;
  const threshold = opts.nullScoreDiffThreshold ?? 0;
  if (startLogits.length !== features.length || endLogits.length !== features.length) {
    throw new Error(`postprocessQA: ${features.length} features but ${startLogits.length} start and ${endLogits.length} end logit rows`);
  }
  const indexOf = new Map(examples.map((e, i) => [e.id, i] as [string, number]));
  const featuresOf: number[][] = examples.map(() => []);
  features.forEach((f, i) => {
    const ei = indexOf.get(f.exampleId);
    if (ei === undefined) throw new Error(`postprocessQA: feature ${i} belongs to unknown example "${f.exampleId}"`);
    featuresOf[ei].push(i);
  });

  const result: PostprocessResult = { predictions: {}, nbest: {}, nullOdds: {} };
  examples.forEach((ex, ei) => {
    if (featuresOf[ei].length === 0) throw new Error(`postprocessQA: example "${ex.id}" has no features (pass only featurized examples)`);
    let nullCand: Candidate | undefined;
    const prelim: Candidate[] = [];
    for (const fi of featuresOf[ei]) {
      const start = startLogits[fi], end = endLogits[fi];
      const nullScore = start[0] + end[0];
      if (nullCand === undefined || nullCand.score > nullScore) {
        nullCand = { start: 0, end: 0, score: nullScore, start_logit: start[0], end_logit: end[0] };
      }
      prelim.push(...featureCandidates(features[fi], start, end, nBest, maxLen));
    }
    if (opts.version2 && nullCand !== undefined) prelim.push(nullCand);
    // Array.prototype.sort is stable: equal scores keep their order, like Python's sorted(..., reverse=True).
    const best = prelim.sort((a, b) => b.score - a.score).slice(0, nBest);
    if (opts.version2 && nullCand !== undefined && !best.some((c) => c.start === 0 && c.end === 0)) best.push(nullCand);

    const list = best.map((c) => ({ text: ex.context.slice(c.start, c.end), c }));
    // The reference's guard for "no span at all": a fake answer "empty" with score 0, kept for parity.
    if (list.length === 0 || (list.length === 1 && list[0].text === "")) {
      list.unshift({ text: "empty", c: { start: 0, end: 0, score: 0, start_logit: 0, end_logit: 0 } });
    }
    const probs = softmax(list.map((x) => x.c.score));
    setOwn(result.nbest, ex.id, list.map(({ text, c }, i) => ({ text, probability: probs[i], start_logit: c.start_logit, end_logit: c.end_logit, start: c.start, end: c.end })));

    if (!opts.version2) {
      setOwn(result.predictions, ex.id, list[0].text);
      return;
    }
    const nonNull = list.find((x) => x.text !== "") ?? list[0];
    const diff = (nullCand as Candidate).score - nonNull.c.start_logit - nonNull.c.end_logit;
    setOwn(result.nullOdds, ex.id, diff);
    setOwn(result.predictions, ex.id, diff > threshold ? "" : nonNull.text);
  });
  return result;
}

/**
 * `obj[key] = value` for user strings as keys: an id "__proto__" becomes an own property (plain assignment would
 * replace the object's prototype and the entry would vanish from Object.keys and JSON.stringify).
 */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  if (key === "__proto__") Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** First index of the largest value (numpy.argmax). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export interface ArgmaxAnswer { startToken: number; endToken: number; text: string; start: number; end: number; valid: boolean }

/**
 * The naive decoder the notebook contrasts with postprocessQA: argmax of start and argmax of end, chosen
 * independently. `valid` is false (and text "") when end < start or either token is outside the context.
 */
export function argmaxAnswer(context: string, feature: Pick<QAFeature, "offsets">, startLogits: ArrayLike<number>, endLogits: ArrayLike<number>): ArgmaxAnswer {
  const s = argmax(startLogits), e = argmax(endLogits);
  const so = feature.offsets[s], eo = feature.offsets[e];
  if (so === null || so === undefined || eo === null || eo === undefined || e < s) {
    return { startToken: s, endToken: e, text: "", start: 0, end: 0, valid: false };
  }
  return { startToken: s, endToken: e, text: context.slice(so[0], eo[1]), start: so[0], end: eo[1], valid: true };
}
