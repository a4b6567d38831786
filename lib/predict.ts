// Questions in, answers out: features (sliding windows) → batched forward pass in inference mode → logits to the host
// one batch at a time → postprocessQA. Also the one-question helper behind `bertqa ask` and the checks that a
// checkpoint really has a question-answering head.
import { fs, path } from "./platform";
import * as tf from "@tensorflow/tfjs";
import type { QAExample } from "./squad";
import type { BertTokenizer } from "./tokenizer";
import { loadTokenizer } from "./tokenizer";
import { disposeModel, forward, type BertModel } from "./bert";
import { loadModel } from "./weights";
import { batchLength, padBatch, prepareFeaturesAsync, type QAFeature } from "./features";
import { gpuPoolKeeper, padMultiple } from "./backend";
import { postprocessQA, type NBest, type PostprocessOptions, type PostprocessResult } from "./postprocess";
import { progress as makeProgress } from "./progress";
import { userError } from "./errors";
import { beginWork, pollStop, StoppedError } from "./stop";

export interface PredictOptions extends PostprocessOptions {
  maxLength?: number; // tokens per window, special tokens included
  docStride?: number; // tokens shared by neighbouring windows
  batchSize?: number;
  progress?: boolean; // default: on when there are more than progressMinFeatures features
  progressMinFeatures?: number; // default PROGRESS_MIN_FEATURES
  file?: string; // named in error messages
  skipInvalid?: boolean; // questions that cannot be featurized get no prediction (each reported through warn) instead of stopping
  warn?: (msg: string) => void;
  skipFlag?: string | null; // the flag named in error messages that skips bad questions (default --skip-invalid; null: none)
}

export interface PredictResult extends PostprocessResult {
  stats: { examples: number; features: number; batches: number; seconds: number; skipped: number };
}

export const DEFAULT_MAX_LENGTH = 384; // BERT paper's SQuAD setup; run_qa.py default
export const DEFAULT_DOC_STRIDE = 128; // run_qa.py default
export const DEFAULT_BATCH_SIZE = 16;
const PROGRESS_MIN_FEATURES = 64;
/** `ask` on one long text: a progress bar past this many windows (~300 KB of English at 384/128; a minute or more of
 * BERT-base on a CPU). 1 MB, the most ask reads, is ~900 windows (measured: 226,741 tokens with data/tokenizer). */
export const ASK_PROGRESS_MIN_WINDOWS = 256;

/**
 * Start and end logits of `features`, one host row per feature (padded to its batch's length). Batches are formed
 * from features of similar length, so short windows are not padded to the longest one in the set.
 */
export async function featureLogits(model: BertModel, features: QAFeature[], padId: number, batchSize: number,
  onBatch?: (done: number) => void): Promise<{ start: Float32Array[]; end: Float32Array[]; batches: number }> {
  const start: Float32Array[] = new Array(features.length), end: Float32Array[] = new Array(features.length);
  const order = features.map((_, i) => i).sort((a, b) => features[a].inputIds.length - features[b].inputIds.length);
  const keepPool = gpuPoolKeeper();
  let batches = 0;
  const work = beginWork("predict", features.length);
  try {
    for (let b = 0; b < order.length; b += batchSize) {
      const idx = order.slice(b, b + batchSize);
      const batch = idx.map((i) => features[i]);
      const padded = padBatch(batch, padId, batchLength(batch, padMultiple(), model.config.max_position_embeddings));
      keepPool([batch.length, padded.inputIds[0].length]);
      const [s, e] = tf.tidy(() => {
        const out = forward(model, {
          inputIds: tf.tensor2d(padded.inputIds, undefined, "int32"),
          attentionMask: tf.tensor2d(padded.attentionMask, undefined, "int32"),
          tokenTypeIds: tf.tensor2d(padded.tokenTypeIds, undefined, "int32"),
        }, { training: false });
        if (out.startLogits === undefined || out.endLogits === undefined) throw new Error("featureLogits: the model has no QA head (task must be 'qa')");
        return [out.startLogits, out.endLogits];
      });
      const T = s.shape[1];
      const [sd, ed] = await Promise.all([s.data() as Promise<Float32Array>, e.data() as Promise<Float32Array>]);
      s.dispose();
      e.dispose();
      idx.forEach((fi, i) => {
        start[fi] = sd.subarray(i * T, (i + 1) * T);
        end[fi] = ed.subarray(i * T, (i + 1) * T);
      });
      batches++;
      onBatch?.(Math.min(b + batchSize, order.length));
      if (await pollStop(work)) throw new StoppedError(`prediction stopped (■) after ${Math.min(b + batchSize, order.length)} of ${order.length} windows; nothing was kept: run the cell again`);
    }
  } finally {
    work.end();
  }
  return { start, end, batches };
}

/**
 * Predict answers for `examples` with a QA model: the official predictions map plus n-best lists and null odds.
 * `const r = await predictQA(model, tok, dev.examples, { version2: true }); squadEvaluate(dev.examples, r.predictions)`
 */
export async function predictQA(model: BertModel, tok: BertTokenizer, examples: QAExample[], opts: PredictOptions = {}): Promise<PredictResult> {
  if (model.task !== "qa") throw userError("model", `is a '${model.task}' model, not question answering`, "load it with task 'qa'");
  const t0 = Date.now();
  const maxLength = opts.maxLength ?? DEFAULT_MAX_LENGTH;
  const docStride = opts.docStride ?? DEFAULT_DOC_STRIDE;
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw userError("batch size", `must be a positive integer, got ${batchSize}`);
  if (maxLength > model.config.max_position_embeddings) {
    throw userError("max length", `${maxLength} is more than the model's ${model.config.max_position_embeddings} positions`, `use --max-length ${model.config.max_position_embeddings} or less`);
  }
  const { features, stats } = await prepareFeaturesAsync(examples, tok, { maxLength, docStride, file: opts.file, skipInvalid: opts.skipInvalid, warn: opts.warn, skipFlag: opts.skipFlag });
  const bar = (opts.progress ?? features.length > (opts.progressMinFeatures ?? PROGRESS_MIN_FEATURES)) ? makeProgress("predict", features.length) : undefined;
  let done = 0;
  const logits = await featureLogits(model, features, tok.padId, batchSize, (n) => bar?.update((done = n))).catch((e: unknown) => {
    bar?.update(done);
    bar?.stop(); // a stopped (■) or failed prediction shows where it ended, not "done"
    throw e;
  });
  bar?.finish();
  const featurized = new Set(features.map((f) => f.exampleIndex));
  const kept = stats.skipped > 0 ? examples.filter((_, i) => featurized.has(i)) : examples; // skipped ones get no prediction
  const post = postprocessQA(kept, features, logits.start, logits.end, opts);
  return { ...post, stats: { examples: kept.length, features: features.length, batches: logits.batches, seconds: (Date.now() - t0) / 1000, skipped: stats.skipped } };
}

/**
 * Window sizes for the CLI: run_qa.py's 384/128 unless the model is shorter; the stride is capped at half the window
 * as transformers' QuestionAnsweringPipeline does (min(max_seq_len // 2, 128)).
 */
export function windowOptions(config: { max_position_embeddings: number }, maxLength?: number, docStride?: number): { maxLength: number; docStride: number } {
  const len = maxLength ?? Math.min(DEFAULT_MAX_LENGTH, config.max_position_embeddings);
  return { maxLength: len, docStride: docStride ?? Math.min(DEFAULT_DOC_STRIDE, Math.floor(len / 2)) };
}

export interface Answer {
  answer: string; // "" = no answer (version2 only)
  score: number; // probability of the answer within the n-best list
  start: number; // UTF-16 [start, end) in the context
  end: number;
  null_odds?: number; // version2: null score - best span score
  alternatives: { text: string; score: number; start: number; end: number }[];
}

/** One question about one context (for `bertqa ask`): the answer and its top alternatives. */
export async function answerQuestion(model: BertModel, tok: BertTokenizer, context: string, question: string,
  opts: PredictOptions & { alternatives?: number } = {}): Promise<Answer> {
  const ex: QAExample = { id: "question", title: "", context, question, answers: [], is_impossible: false };
  const r = await predictQA(model, tok, [ex], { skipFlag: null, progressMinFeatures: ASK_PROGRESS_MIN_WINDOWS, ...opts });
  const list: NBest[] = r.nbest[ex.id];
  const text = r.predictions[ex.id];
  const best = list.find((n) => n.text === text) ?? list[0];
  const out: Answer = {
    answer: text, score: best.probability, start: text === "" ? 0 : best.start, end: text === "" ? 0 : best.end,
    alternatives: list.filter((n) => n !== best).slice(0, opts.alternatives ?? 4)
      .map((n) => ({ text: n.text, score: n.probability, start: n.start, end: n.end })),
  };
  if (opts.version2) out.null_odds = r.nullOdds[ex.id];
  return out;
}

/** Architectures that carry a span head (qa_outputs) in transformers. */
const QA_ARCHITECTURE = /ForQuestionAnswering$/;

/**
 * Load a fine-tuned QA model and its tokenizer. A checkpoint without a trained QA head (a classifier, a bare
 * pretrained encoder) would answer at random, so it is refused with the reason.
 */
export async function loadQAModel(modelPathOrId: string, tokenizerPath?: string): Promise<{ model: BertModel; tok: BertTokenizer }> {
  const loaded = await loadModel(modelPathOrId, "qa");
  const refuse = (what: string) => {
    disposeModel(loaded.model);
    return userError(modelPathOrId, what, "fine-tune it for QA first with 'bertqa train', or pass a *ForQuestionAnswering model");
  };
  const arch = loaded.model.config.architectures;
  if (arch !== undefined && arch.length > 0 && !arch.some((a) => QA_ARCHITECTURE.test(a))) {
    throw refuse(`is a ${arch.join("/")} checkpoint, not a question-answering model (no qa_outputs head)`);
  }
  if (loaded.missing.some((k) => k.startsWith("qa_outputs."))) {
    throw refuse("checkpoint has no qa_outputs tensors, so it has no trained question-answering head");
  }
  const hasTok = tokenizerPath !== undefined || ["tokenizer.json", "vocab.txt"].some((f) => fs.existsSync(path.join(loaded.dir, f)));
  if (!hasTok) {
    disposeModel(loaded.model);
    throw userError(modelPathOrId, "has no tokenizer.json or vocab.txt", "pass --tokenizer DIR (the tokenizer the model was trained with)");
  }
  return { model: loaded.model, tok: loadTokenizer(tokenizerPath ?? loaded.dir) };
}
