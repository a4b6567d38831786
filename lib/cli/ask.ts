// `bertqa ask`: one question about one text, answered by a fine-tuned QA model; prints the answer, its probability
// within the n-best list and the runner-up spans (offsets in code points, like SQuAD's answer_start).
import * as fs from "node:fs";
import { isUserError, userError } from "../errors";
import { decodeUtf8 } from "../fsutil";
import { setDefaultProgressSink, silentSink } from "../progress";
import { codePointIndex } from "../squad";
import { DEFAULT_MAX_ANSWER_LENGTH, DEFAULT_N_BEST } from "../postprocess";
import { answerQuestion, DEFAULT_DOC_STRIDE, DEFAULT_MAX_LENGTH, loadQAModel, windowOptions } from "../predict";
import { disposeModel } from "../bert";
import { parseFlags, type FlagSpecs } from "./args";
import { selectBackend } from "./predict";

export const summary = "answer one question about a text with a QA model (JSON: answer, score, alternatives)";

export const flags = {
  model: { type: "string", help: "fine-tuned QA model directory or Hub id", required: true },
  tokenizer: { type: "string", help: "tokenizer directory or file (default: the model directory)" },
  context: { type: "string", help: "the text to search for the answer" },
  "context-file": { type: "string", help: "read the text from this UTF-8 file instead" },
  question: { type: "string", help: "the question", required: true },
  alternatives: { type: "int", help: "runner-up answers to show", default: 4, min: 0 },
  version2: { type: "boolean", help: "allow the answer \"no answer\" (SQuAD 2.0 models)" },
  "null-score-diff-threshold": { type: "number", help: "with --version2: answer \"\" when null score - best span score is above this", default: 0 },
  "n-best": { type: "int", help: "candidates per start/end (utils_qa.py)", default: DEFAULT_N_BEST, min: 1 },
  "max-answer-length": { type: "int", help: "longest answer in tokens", default: DEFAULT_MAX_ANSWER_LENGTH, min: 1 },
  "max-length": { type: "int", help: `tokens per window, special tokens included (default ${DEFAULT_MAX_LENGTH} as in run_qa.py, or the model's max_position_embeddings if smaller)`, min: 4 },
  "doc-stride": { type: "int", help: `tokens shared by neighbouring windows (default ${DEFAULT_DOC_STRIDE}, at most half of --max-length)`, min: 0 },
  backend: { type: "string", help: "TensorFlow.js backend: auto | tensorflow | webgpu | wasm | cpu", default: "auto" },
  quiet: { type: "boolean", help: "no progress bar (shown for texts of thousands of windows)" },
} satisfies FlagSpecs;

/** Largest --context-file: 1 MB of text is a long novel, ~900 windows of 384 tokens (minutes for BERT-base on a CPU). */
export const MAX_CONTEXT_BYTES = 2 ** 20;

function readContext(text: string | undefined, file: string | undefined): string {
  if ((text === undefined) === (file === undefined)) throw userError("bertqa ask", "give exactly one of --context or --context-file");
  if (text !== undefined) return text;
  return readContextFile(file as string);
}

/** A UTF-8 text file of at most MAX_CONTEXT_BYTES: size checked before reading, binary data refused. */
export function readContextFile(file: string): string {
  let bytes: Buffer;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw userError(file, "is not a file", "pass a UTF-8 text file with --context-file");
    if (st.size > MAX_CONTEXT_BYTES) {
      throw userError(file, `is ${(st.size / 2 ** 20).toFixed(1)} MB; ask reads at most ${MAX_CONTEXT_BYTES / 2 ** 20} MB of context`, "pass the part of the text that holds the answer, or split it into paragraphs of a SQuAD file for bertqa predict");
    }
    bytes = fs.readFileSync(file);
  } catch (e) {
    if (isUserError(e)) throw e;
    throw userError(file, `cannot read context file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, "check the path");
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw userError(file, `is not text: a NUL byte at offset ${nul}`, "pass a UTF-8 text file (PDF or Word files need converting to text first)");
  return decodeUtf8(bytes, file);
}

export async function run(argv: string[]): Promise<void> {
  const f = parseFlags("ask", argv, flags);
  if (f.quiet === true) setDefaultProgressSink(silentSink);
  const context = readContext(f.context, f["context-file"]);
  if (context.trim() === "") throw userError("bertqa ask", "the context is empty", "pass the text with --context or --context-file");
  if (f.question.trim() === "") throw userError("bertqa ask", "the question is empty");
  await selectBackend(f.backend as string);
  const { model, tok } = await loadQAModel(f.model, f.tokenizer);
  try {
    const a = await answerQuestion(model, tok, context, f.question, {
      ...windowOptions(model.config, f["max-length"], f["doc-stride"]), nBest: f["n-best"], maxAnswerLength: f["max-answer-length"],
      nullScoreDiffThreshold: f["null-score-diff-threshold"], version2: f.version2 === true, alternatives: f.alternatives,
    });
    const index = codePointIndex(context);
    const cp = (i: number) => index[i];
    console.log(JSON.stringify({
      question: f.question, answer: a.answer, score: a.score, start: cp(a.start), end: cp(a.end),
      ...(a.null_odds !== undefined ? { null_odds: a.null_odds } : {}),
      alternatives: a.alternatives.map((x) => ({ ...x, start: cp(x.start), end: cp(x.end) })),
    }));
  } finally {
    disposeModel(model);
  }
}
