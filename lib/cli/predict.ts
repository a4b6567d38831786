// `bertqa predict`: answer every question of a SQuAD/CMRC file with a fine-tuned QA model and write the official
// predictions file {id: text} (plus n-best lists and null odds on request), atomically; prints a JSON summary.
import { userError } from "../errors";
import * as fs from "node:fs";
import { writeJsonAtomic } from "../fsutil";
import { checkPaths } from "../outdir";
import { codePointIndex } from "../features";
import { loadSquad, type QAExample } from "../squad";
import { DEFAULT_MAX_ANSWER_LENGTH, DEFAULT_N_BEST, setOwn, type NBest } from "../postprocess";
import { setDefaultProgressSink, silentSink } from "../progress";
import { DEFAULT_BATCH_SIZE, DEFAULT_DOC_STRIDE, DEFAULT_MAX_LENGTH, loadQAModel, predictQA, windowOptions } from "../predict";
import { disposeModel } from "../bert";
import { BACKEND_NAMES, useBackend, type BackendChoice, type BackendName } from "../backend";
import { parseFlags, type FlagSpecs } from "./args";

export const summary = "answer the questions of a SQuAD/CMRC file with a QA model; writes the official predictions JSON";

const BACKENDS = ["auto", ...BACKEND_NAMES];

export const flags = {
  model: { type: "string", help: "fine-tuned QA model directory (config.json + model.safetensors) or Hub id", required: true },
  tokenizer: { type: "string", help: "tokenizer directory or file (default: the model directory)" },
  data: { type: "string", help: "SQuAD v1.1/v2.0 or CMRC2018 JSON file", required: true },
  out: { type: "string", help: "predictions JSON {id: answer text}, written atomically", required: true },
  "nbest-out": { type: "string", help: "n-best lists per id (start/end in code points, like answer_start)" },
  "na-prob-out": { type: "string", help: "null odds per id for bertqa evaluate --na-prob (SQuAD 2.0 only)" },
  "version2": { type: "boolean", help: "allow \"no answer\" (default: on when the data has unanswerable questions or is v2)" },
  "n-best": { type: "int", help: "candidates per start/end and n-best list length (utils_qa.py)", default: DEFAULT_N_BEST, min: 1 },
  "max-answer-length": { type: "int", help: "longest answer in tokens (utils_qa.py)", default: DEFAULT_MAX_ANSWER_LENGTH, min: 1 },
  "null-score-diff-threshold": { type: "number", help: "answer \"\" when null score - best span score is above this", default: 0 },
  "max-length": { type: "int", help: `tokens per window, special tokens included (default ${DEFAULT_MAX_LENGTH} as in run_qa.py, or the model's max_position_embeddings if smaller)`, min: 4 },
  "doc-stride": { type: "int", help: `tokens shared by neighbouring windows (default ${DEFAULT_DOC_STRIDE}, at most half of --max-length)`, min: 0 },
  "batch-size": { type: "int", help: "windows per forward pass", default: DEFAULT_BATCH_SIZE, min: 1 },
  backend: { type: "string", help: `TensorFlow.js backend: ${BACKENDS.join(" | ")}`, default: "auto" },
  "skip-invalid": { type: "boolean", help: "skip (and report) questions that cannot be used instead of stopping at the first; they get no prediction" },
  quiet: { type: "boolean", help: "no progress bars" },
} satisfies FlagSpecs;

/** Validate --backend and switch TensorFlow.js to it (lib/backend.ts decides what "auto" means). */
export async function selectBackend(name: string): Promise<BackendChoice> {
  if (!BACKENDS.includes(name)) throw userError("--backend", `unknown backend '${name}'`, `use one of ${BACKENDS.join(", ")}`);
  return useBackend(name as BackendName | "auto");
}

/** n-best lists with offsets in code points (Python's string indices), like answer_start in the data files. */
function nbestForFile(examples: QAExample[], nbest: Record<string, NBest[]>): Record<string, NBest[]> {
  const out: Record<string, NBest[]> = {};
  for (const ex of examples) {
    const astral = /[\uD800-\uDFFF]/.test(ex.context) ? codePointIndex(ex.context) : null;
    if (!Object.prototype.hasOwnProperty.call(nbest, ex.id)) continue; // skipped with --skip-invalid
    setOwn(out, ex.id, nbest[ex.id].map((n) => (astral === null ? n : { ...n, start: astral[n.start], end: astral[n.end] })));
  }
  return out;
}

export async function run(argv: string[]): Promise<void> {
  const f = parseFlags("predict", argv, flags);
  checkPaths("predict", [{ flag: "--data", path: f.data }, { flag: "--model", path: fs.existsSync(f.model) ? f.model : undefined }, { flag: "--tokenizer", path: f.tokenizer }],
    [{ flag: "--out", path: f.out }, { flag: "--nbest-out", path: f["nbest-out"] }, { flag: "--na-prob-out", path: f["na-prob-out"] }]);
  if (f.quiet === true) setDefaultProgressSink(silentSink);
  const backend = await selectBackend(f.backend as string);
  const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);
  // Predicting reads only questions and contexts, as run_qa.py --do_predict: unlabelled questions are fine.
  const ds = loadSquad(f.data, { ignoreAnswers: true, skipInvalid: f["skip-invalid"], warn });
  const version2 = f.version2 ?? (ds.version.startsWith("v2") || ds.examples.some((e) => e.answers.length === 0 && e.is_impossible));
  if (f["na-prob-out"] !== undefined && !version2) {
    throw userError("bertqa predict", "--na-prob-out needs SQuAD 2.0 style prediction", "pass --version2 (or use v2 data)");
  }
  const { model, tok } = await loadQAModel(f.model, f.tokenizer);
  try {
    const win = windowOptions(model.config, f["max-length"], f["doc-stride"]);
    const r = await predictQA(model, tok, ds.examples, {
      ...win, batchSize: f["batch-size"], nBest: f["n-best"],
      maxAnswerLength: f["max-answer-length"], nullScoreDiffThreshold: f["null-score-diff-threshold"], version2, file: f.data,
      skipInvalid: f["skip-invalid"], warn,
    });
    writeJsonAtomic(f.out, r.predictions, "the predictions");
    if (f["nbest-out"] !== undefined) writeJsonAtomic(f["nbest-out"], nbestForFile(ds.examples, r.nbest), "the n-best lists");
    if (f["na-prob-out"] !== undefined) writeJsonAtomic(f["na-prob-out"], r.nullOdds, "the null odds");
    const noAnswer = Object.values(r.predictions).filter((p) => p === "").length;
    console.log(JSON.stringify({
      examples: r.stats.examples, features: r.stats.features, no_answer: noAnswer, skipped: ds.skipped + r.stats.skipped, version2, seconds: r.stats.seconds,
      examples_per_s: r.stats.examples / Math.max(r.stats.seconds, 1e-9), backend: backend.name,
      max_length: win.maxLength, doc_stride: win.docStride,
      out: f.out, nbest_out: f["nbest-out"] ?? null, na_prob_out: f["na-prob-out"] ?? null,
    }));
  } finally {
    disposeModel(model);
  }
}
