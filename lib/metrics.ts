// Official question-answering scores, ported line for line so our numbers can be quoted next to published ones:
// SQuAD (the v2.0 evaluation script, which reduces to v1.1 on answerable data) and CMRC 2018 (ymcui/cmrc2018's
// cmrc2018_evaluate.py). Every question counts: a missing prediction scores 0 and is reported, never dropped.
// Like those scripts, only the data's questions are scored: predictions for other ids (a full dev predictions file
// scored on one article) are ignored with one warning, or refused with `strict`.
import type { QAExample } from "./squad";
import { userError } from "./errors";
import { stderr } from "./platform";

export type NaProbs = Record<string, number> | Map<string, number>;

export interface SquadEvalOptions {
  naProbs?: NaProbs; // P(no answer) or null odds per id; Map keeps file order, which decides best_* ties
  naProbThresh?: number; // predict "" when na_prob > thresh (script default 1.0)
  version2?: boolean; // add HasAns_*/NoAns_* (default: the data has unanswerable questions)
  predictionsFile?: string; // names the file in error messages
  naProbFile?: string;
  strict?: boolean; // refuse predictions/na_probs for ids not in the data instead of ignoring them (bertqa evaluate --strict)
  warn?: (msg: string) => void; // default: stderr
}

/** The v2.0 script's default `--na-prob-thresh`. */
export const DEFAULT_NA_PROB_THRESH = 1.0;

// Python's string.punctuation: ASCII only, so "“" or "。" survive normalisation exactly as in the official script.
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
// Python str.split() separators (str.isspace()); JS \s differs (has U+FEFF, lacks U+001C-U+001F and U+0085).
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
// Python's `\b(a|an|the)\b` with re.UNICODE: word characters are Unicode letters, digits and "_" (JS \b is ASCII-only).
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

export function pySplit(s: string): string[] {
  return s.split(PY_WHITESPACE).filter((t) => t !== "");
}

/** normalize_answer: lower case, drop ASCII punctuation, drop articles, collapse whitespace. */
export function normalizeAnswer(s: string): string {
  let out = "";
  for (const ch of s.toLowerCase()) if (!PUNCTUATION.has(ch)) out += ch;
  return pySplit(out.replace(ARTICLES, " ")).join(" ");
}

function squadTokens(s: string): string[] {
  return s === "" ? [] : pySplit(normalizeAnswer(s));
}

export function computeExact(gold: string, pred: string): number {
  return normalizeAnswer(gold) === normalizeAnswer(pred) ? 1 : 0;
}

/** Token-bag F1; if either side is empty (no-answer), 1 when both are, else 0. */
export function computeF1(gold: string, pred: string): number {
  const g = squadTokens(gold), p = squadTokens(pred);
  if (g.length === 0 || p.length === 0) return g.length === p.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / p.length, recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

function entries(probs: NaProbs): [string, number][] {
  return probs instanceof Map ? [...probs.entries()] : Object.entries(probs);
}

/** Ids of `ids` that the data does not have, in their order. */
function unknownIds(ids: Iterable<string>, known: Map<string, QAExample>): string[] {
  const out: string[] = [];
  for (const id of ids) if (!known.has(id)) out.push(id);
  return out;
}

/**
 * The official scripts loop over the data's questions, so predictions (and na_probs) for other ids never count:
 * ignore them with one warning line, or, with `strict`, refuse them as a mismatched file.
 */
function checkExtraIds(extra: { file: string; what: string; ids: string[] }[], strict: boolean, warn: (msg: string) => void): void {
  const found = extra.filter((e) => e.ids.length > 0);
  if (found.length === 0) return;
  if (strict) {
    const { file, what, ids } = found[0];
    throw userError(file, `${what} for id "${ids[0]}", which is not in the data (${ids.length} such id(s))`, "evaluate it against the data file the predictions were made from, or drop --strict to score the data's questions only");
  }
  const counts = found.map((e) => `${e.ids.length} ${e.what}(s) in ${e.file}`).join(" and ");
  warn(`warning: ignored ${counts} for ids not in the data (first: "${found[0].ids[0]}"), as the official scripts do; --strict makes this an error`);
}

function warnMissing(missing: string[], warn: (msg: string) => void): void {
  if (missing.length === 0) return;
  const shown = missing.slice(0, 5).join(", ") + (missing.length > 5 ? ", ..." : "");
  warn(`warning: ${missing.length} question(s) have no prediction and score 0 (${shown})`);
}

const stderrWarn = (msg: string) => stderr.write(msg + "\n");

/**
 * The SQuAD v2.0 official scores in percent (`exact`, `f1`, `total`, HasAns_*, NoAns_*, best_* with na_probs).
 * Divides by all questions: missing predictions score 0 with one warning (as the v1.1 script does; the v2.0 script
 * prints "Missing prediction for <id>" and then stops with a KeyError, so it defines no score for that case).
 * Predictions for ids not in the data are ignored with one warning, as both scripts do (`strict`: an error).
 * Example: squadEvaluate(dev.examples, { q1: "Denver Broncos" }) → { exact: 100, f1: 100, total: 1 }
 */
export function squadEvaluate(examples: QAExample[], predictions: Record<string, string>, opts: SquadEvalOptions = {}): Record<string, number> {
  const predFile = opts.predictionsFile ?? "predictions";
  const byId = new Map(examples.map((e) => [e.id, e] as [string, QAExample]));
  const naProbs = opts.naProbs ? new Map(entries(opts.naProbs)) : undefined;
  checkExtraIds([
    { file: predFile, what: "prediction", ids: unknownIds(Object.keys(predictions), byId) },
    { file: opts.naProbFile ?? "na_probs", what: "no-answer probability", ids: naProbs ? unknownIds(naProbs.keys(), byId) : [] },
  ], opts.strict ?? false, opts.warn ?? stderrWarn);
  const thresh = opts.naProbThresh ?? DEFAULT_NA_PROB_THRESH;

  const hasAns = new Map<string, boolean>();
  const exactRaw = new Map<string, number>(), f1Raw = new Map<string, number>();
  const missing: string[] = [];
  for (const [id, ex] of byId) {
    hasAns.set(id, ex.answers.length > 0);
    // Gold answers that normalise to nothing do not count; with none left, the only right answer is "".
    let gold = ex.answers.map((a) => a.text).filter((t) => normalizeAnswer(t) !== "");
    if (gold.length === 0) gold = [""];
    const pred = predictions[id];
    if (!Object.prototype.hasOwnProperty.call(predictions, id)) {
      missing.push(id);
      continue;
    }
    if (typeof pred !== "string") throw userError(predFile, `prediction for id "${id}" is ${JSON.stringify(pred)}, not a string`, 'write {"id": "answer text"}');
    exactRaw.set(id, Math.max(...gold.map((g) => computeExact(g, pred))));
    f1Raw.set(id, Math.max(...gold.map((g) => computeF1(g, pred))));
  }
  warnMissing(missing, opts.warn ?? stderrWarn);
  if (naProbs) {
    for (const id of exactRaw.keys()) {
      const p = naProbs.get(id);
      if (typeof p !== "number" || !Number.isFinite(p)) throw userError(opts.naProbFile ?? "na_probs", `no numeric no-answer probability for id "${id}"`, "give one number per predicted id");
    }
  }

  // apply_no_ans_threshold: above the threshold the answer is "" — right exactly when the question has none.
  const applyThresh = (raw: Map<string, number>) => {
    const out = new Map<string, number>();
    for (const [id, s] of raw) {
      const predNa = naProbs !== undefined && (naProbs.get(id) as number) > thresh;
      out.set(id, predNa ? (hasAns.get(id) ? 0 : 1) : s);
    }
    return out;
  };
  const exact = applyThresh(exactRaw), f1 = applyThresh(f1Raw);
  const allIds = [...byId.keys()];
  const result: Record<string, number> = {};
  const addEval = (ids: string[], prefix: string) => {
    const sum = (m: Map<string, number>) => ids.reduce((acc, id) => acc + (m.get(id) ?? 0), 0); // missing → 0
    result[prefix + "exact"] = (100 * sum(exact)) / ids.length;
    result[prefix + "f1"] = (100 * sum(f1)) / ids.length;
    result[prefix + "total"] = ids.length;
  };
  if (allIds.length === 0) return { exact: 0, f1: 0, total: 0 };
  addEval(allIds, "");
  const version2 = opts.version2 ?? examples.some((e) => e.answers.length === 0);
  if (version2) {
    const has = allIds.filter((id) => hasAns.get(id)), no = allIds.filter((id) => !hasAns.get(id));
    if (has.length > 0) addEval(has, "HasAns_");
    if (no.length > 0) addEval(no, "NoAns_");
  }
  if (naProbs) {
    const n = allIds.length;
    [result.best_exact, result.best_exact_thresh] = findBestThresh(predictions, exactRaw, naProbs, hasAns, n);
    [result.best_f1, result.best_f1_thresh] = findBestThresh(predictions, f1Raw, naProbs, hasAns, n);
  }
  return result;
}

/**
 * find_best_thresh: start from "answer nothing" (every no-answer question right), then admit questions in rising
 * na_prob order (stable sort, so ties keep the na_prob file's order), keeping the first best running score.
 * Differences from the script only when predictions are missing: those stay wrong and still count in `total`.
 */
export function findBestThresh(predictions: Record<string, string>, rawScores: Map<string, number>, naProbs: Map<string, number>,
  hasAns: Map<string, boolean>, total: number): [number, number] {
  let cur = 0;
  for (const [id, has] of hasAns) if (!has && rawScores.has(id)) cur++;
  let best = cur, bestThresh = 0.0;
  const order = [...naProbs.keys()].sort((a, b) => (naProbs.get(a) as number) - (naProbs.get(b) as number)); // stable
  for (const id of order) {
    const score = rawScores.get(id);
    if (score === undefined) continue;
    cur += hasAns.get(id) ? score : predictions[id] !== "" ? -1 : 0;
    if (cur > best) {
      best = cur;
      bestThresh = naProbs.get(id) as number;
    }
  }
  return [(100 * best) / total, bestThresh];
}

// ---- CMRC 2018 -------------------------------------------------------------------------------------------------

// cmrc2018_evaluate.py's sp_char. Its "……" entry is two characters, so it never equals one character and a lone "…"
// is NOT removed: kept as in the script.
const CMRC_PUNCT = new Set(["-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=", "，", "。", "：", "？", "！", "“", "”", "；",
  "’", "《", "》", "……", "·", "、", "「", "」", "（", "）", "－", "～", "『", "』"]);
const CJK = /[\u4e00-\u9fa5]/; // the script's Chinese range
// Approximates nltk.word_tokenize: letter/digit runs (with "." or "," between digits: 3.14, 1,000) are words, any
// other non-space character is its own token; nltk differs on contractions, quotes and abbreviations like "U.S.".
const ENGLISH_TOKEN = /[\p{L}\p{N}_]+(?:[.,]\p{N}+)*|[^\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/gu;

function pyStrip(s: string): string {
  return s.replace(/^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/, "")
    .replace(/[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/, "");
}

/** mixed_segmentation: each Chinese character is a token, English/number runs are words. */
export function mixedSegmentation(s: string, rmPunc = false): string[] {
  const out: string[] = [];
  let run = "";
  const flush = () => {
    if (run !== "") out.push(...(run.match(ENGLISH_TOKEN) ?? []));
    run = "";
  };
  for (const ch of pyStrip(s.toLowerCase())) {
    if (rmPunc && CMRC_PUNCT.has(ch)) continue;
    if (CJK.test(ch) || CMRC_PUNCT.has(ch)) {
      flush();
      out.push(ch);
    } else run += ch;
  }
  flush();
  return out;
}

export function cmrcRemovePunctuation(s: string): string {
  let out = "";
  for (const ch of pyStrip(s.toLowerCase())) if (!CMRC_PUNCT.has(ch)) out += ch;
  return out;
}

/** Length of the longest common contiguous run of tokens (find_lcs). */
export function longestCommonSubstring(a: string[], b: string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0), best = 0;
  for (let i = 0; i < a.length; i++) {
    const row = new Array<number>(b.length + 1).fill(0);
    for (let j = 0; j < b.length; j++) {
      if (a[i] === b[j]) {
        row[j + 1] = prev[j] + 1;
        if (row[j + 1] > best) best = row[j + 1];
      }
    }
    prev = row;
  }
  return best;
}

export function cmrcF1(answers: string[], pred: string): number {
  const p = mixedSegmentation(pred, true);
  return Math.max(...answers.map((ans) => {
    const g = mixedSegmentation(ans, true);
    const lcs = longestCommonSubstring(g, p);
    if (lcs === 0) return 0;
    const precision = lcs / p.length, recall = lcs / g.length;
    return (2 * precision * recall) / (precision + recall);
  }));
}

export function cmrcExact(answers: string[], pred: string): number {
  const p = cmrcRemovePunctuation(pred);
  return answers.some((a) => cmrcRemovePunctuation(a) === p) ? 1 : 0;
}

export interface CmrcScores { AVERAGE: number; F1: number; EM: number; TOTAL: number; SKIP: number }

/**
 * The CMRC 2018 official scores in percent, keys as its script prints them (numbers here, not "%.3f" strings).
 * SKIP counts questions without a prediction; they score 0 and stay in TOTAL. Predictions for other ids are ignored
 * with one warning, as the script does (`strict`: an error).
 */
export function cmrcEvaluate(examples: QAExample[], predictions: Record<string, string>,
  opts: { predictionsFile?: string; strict?: boolean; warn?: (msg: string) => void } = {}): CmrcScores {
  const predFile = opts.predictionsFile ?? "predictions";
  const byId = new Map(examples.map((e) => [e.id, e] as [string, QAExample]));
  checkExtraIds([{ file: predFile, what: "prediction", ids: unknownIds(Object.keys(predictions), byId) }], opts.strict ?? false, opts.warn ?? stderrWarn);
  let f1 = 0, em = 0;
  const missing: string[] = [];
  for (const ex of examples) {
    if (!Object.prototype.hasOwnProperty.call(predictions, ex.id)) {
      missing.push(ex.id);
      continue;
    }
    const pred = predictions[ex.id];
    if (typeof pred !== "string") throw userError(predFile, `prediction for id "${ex.id}" is ${JSON.stringify(pred)}, not a string`, 'write {"id": "answer text"}');
    // The script has no rule for unanswerable questions (max() of nothing fails): say so instead of guessing.
    if (ex.answers.length === 0) throw userError(`example ${ex.id}`, "has no gold answer, which CMRC 2018 scoring does not define", "score data with unanswerable questions with the SQuAD metric: bertqa evaluate --metric squad");
    const answers = ex.answers.map((a) => a.text);
    f1 += cmrcF1(answers, pred);
    em += cmrcExact(answers, pred);
  }
  warnMissing(missing, opts.warn ?? stderrWarn);
  const total = examples.length;
  const F1 = total > 0 ? (100 * f1) / total : 0, EM = total > 0 ? (100 * em) / total : 0;
  return { AVERAGE: (EM + F1) * 0.5, F1, EM, TOTAL: total, SKIP: missing.length };
}

/** "cmrc" when the version names CMRC or most contexts are Chinese; "squad" otherwise. */
export function detectMetric(version: string, examples: QAExample[]): "squad" | "cmrc" {
  if (/cmrc/i.test(version)) return "cmrc";
  const sample = examples.slice(0, 50).map((e) => e.context).join("");
  let cjk = 0;
  for (const ch of sample) if (CJK.test(ch)) cjk++;
  return sample.length > 0 && cjk / sample.length > 0.3 ? "cmrc" : "squad";
}
