// `bertqa train`: fine-tune (or train from scratch) a BERT for question answering (SQuAD/CMRC JSON) or classification
// (text,label CSV). Writes a Hugging Face model directory plus metrics.jsonl, eval.json, loss.svg and a resumable
// checkpoint/; Ctrl-C (or SIGTERM) saves a checkpoint and stops. Prints one JSON summary line.
import * as fs from "node:fs";
import * as path from "node:path";
import { userError } from "../errors";
import { initModel, disposeModel, type BertModel, type Task } from "../bert";
import { nearPreset, presetConfig, PRESETS, type PresetName } from "../config";
import { loadModel } from "../weights";
import { loadSquad, readClassificationCsv } from "../squad";
import { loadTokenizer, type BertTokenizer } from "../tokenizer";
import { trainQA, trainClassifier, type TrainResult, type TrainSettings } from "../train";
import { checkTrainOutDir } from "../rundir";
import { checkPaths } from "../outdir";
import { BACKEND_NAMES, useBackend, type BackendName } from "../backend";
import { setDefaultProgressSink, silentSink } from "../progress";
import { SEED_MAX, parseFlags, type FlagSpecs, type Flags } from "./args";

export const summary = "fine-tune a BERT for question answering (or classification) and save it in Hugging Face format";

const BACKENDS = ["auto", ...BACKEND_NAMES];
// Positions for models trained from scratch: BERT's 512, so any --max-length up to 512 works later.
const SCRATCH_MAX_POSITIONS = 512;

export const flags = {
  model: { type: "string", help: `model directory, Hub id, or a preset to train from scratch (${Object.keys(PRESETS).join(", ")})`, required: true },
  train: { type: "string", help: "training data: SQuAD v1.1/v2.0 or CMRC2018 JSON (qa), text,label CSV (cls)", required: true },
  eval: { type: "string", help: "evaluation data in the same format (EM/F1, or accuracy/F1 for cls)" },
  out: { type: "string", help: "output directory: model files, metrics.jsonl, eval.json, loss.svg, checkpoint/", required: true },
  tokenizer: { type: "string", help: "tokenizer directory or file (default: the model directory; required for presets)" },
  task: { type: "string", help: "qa | cls", default: "qa" },
  epochs: { type: "int", help: "passes over the training data", default: 2, min: 1 },
  "batch-size": { type: "int", help: "features per micro-batch (padded to the batch's longest)", default: 16, min: 1 },
  lr: { type: "number", help: "peak learning rate (3e-5 pretrained; ~1e-3 tiny from scratch)", default: 5e-5 },
  "warmup-ratio": { type: "number", help: "fraction of steps with linear warm-up", default: 0.1 },
  "weight-decay": { type: "number", help: "AdamW decoupled weight decay (not on biases/LayerNorm)", default: 0.01, min: 0 },
  "max-length": { type: "int", help: "tokens per window incl. special tokens (default 384 qa / 128 cls, capped by the model)", min: 4 },
  "doc-stride": { type: "int", help: "tokens shared by neighbouring windows (default min(128, max-length/2))", min: 0 },
  "grad-accum": { type: "int", help: "micro-batches per optimizer step", default: 1, min: 1 },
  "group-by-length": { type: "boolean", help: "batch features of similar length together (less padding, faster; HF's group_by_length)" },
  "pad-to-multiple-of": { type: "int", help: "pad each batch to a multiple of this many tokens (default: 64 on webgpu, where each new length compiles shaders; else 1)" },
  "max-grad-norm": { type: "number", help: "clip the global gradient norm (0: off)", default: 1, min: 0 },
  seed: { type: "int", help: "seed for initialisation, data order and dropout", default: 42, min: 0, max: SEED_MAX },
  dropout: { type: "number", help: "set hidden_dropout_prob and attention_probs_dropout_prob (default: the model's config; 0 suits small models trained from scratch)" },
  "eval-steps": { type: "int", help: "evaluate (and checkpoint) every N steps; 0: at epoch ends only", default: 0, min: 0 },
  "save-steps": { type: "int", help: "checkpoint every N steps (default: whenever evaluating)", min: 1 },
  "log-steps": { type: "int", help: "a metrics.jsonl line every N steps", default: 10, min: 1 },
  "max-steps": { type: "int", help: "stop after N optimizer steps (overrides --epochs)", min: 1 },
  version2: { type: "boolean", help: "SQuAD 2.0: allow no-answer predictions (default: on for v2 data)" },
  backend: { type: "string", help: `TensorFlow.js backend: ${BACKENDS.join(" | ")}`, default: "auto" },
  resume: { type: "string", help: "continue from a checkpoint (an earlier --out directory or its checkpoint/)" },
  "overwrite-output-dir": { type: "boolean", help: "replace the run already in --out (HF's overwrite_output_dir); files train did not write stay" },
  quiet: { type: "boolean", help: "no progress bar" },
  "skip-invalid": { type: "boolean", help: "skip (and report) questions that cannot be used instead of stopping at the first (e.g. an answer not at its answer_start)" },
} satisfies FlagSpecs;

type TrainFlags = Flags<typeof flags>;

export async function run(argv: string[]): Promise<void> {
  const f = parseFlags("train", argv, flags);
  if (f.quiet === true) setDefaultProgressSink(silentSink); // feature and download bars too, not only the training bar
  const task = f.task as string;
  if (task !== "qa" && task !== "cls") throw userError("--task", `unknown task '${task}'`, "use qa or cls");
  if (!BACKENDS.includes(f.backend as string)) throw userError("--backend", `unknown backend '${f.backend}'`, `use one of ${BACKENDS.join(", ")}`);
  const multiple = f["pad-to-multiple-of"];
  if (multiple !== undefined && !(multiple >= 1)) throw userError("--pad-to-multiple-of", `must be a positive number of tokens, got ${multiple}`, "use e.g. 8 or 64; 1 pads each batch to its longest feature only");
  for (const file of [f.train, f.eval]) if (file !== undefined && !fs.existsSync(file)) throw userError(file, "file not found");
  // Before anything is loaded: --out may not be an input, and a folder holding another run is not replaced silently.
  checkPaths("train", [{ flag: "--train", path: f.train }, { flag: "--eval", path: f.eval }, { flag: "--model", path: fs.existsSync(f.model) ? f.model : undefined }, { flag: "--tokenizer", path: f.tokenizer }], [], [{ flag: "--out", path: f.out }]);
  checkTrainOutDir(f.out, { resume: f.resume, overwriteOutputDir: f["overwrite-output-dir"] });
  const meant = fs.existsSync(f.model) || Object.prototype.hasOwnProperty.call(PRESETS, f.model) ? undefined : nearPreset(f.model);
  if (meant !== undefined) throw userError(`--model ${f.model}`, `is neither a directory nor a preset: did you mean \`${meant}\`?`, `presets: ${Object.keys(PRESETS).join(", ")}; a Hub id looks like org/name`);
  const backend = await useBackend(f.backend as BackendName | "auto");
  const stop = installStopHandler();
  const settings = trainSettings(f, stop.requested);
  let result: TrainResult;
  let model: BertModel | undefined;
  try {
    if (task === "qa") {
      const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);
      const trainSet = loadSquad(f.train, { skipInvalid: f["skip-invalid"], warn });
      if (trainSet.skipped + trainSet.corrected > 0) warn(`${f.train}: ${trainSet.skipped} questions skipped, ${trainSet.corrected} answer_start values corrected by up to 2 characters`);
      const evalSet = f.eval !== undefined ? loadSquad(f.eval, { checkAnswerStarts: false, skipInvalid: f["skip-invalid"], warn }) : undefined; // scoring reads answer texts only
      const { model: m, tok, tokenizerDir } = await buildModel(f, "qa");
      model = m;
      const version2 = f.version2 ?? (evalSet ?? trainSet).version.startsWith("v2");
      result = await trainQA({ ...settings, model, tokenizer: tok, tokenizerDir, train: trainSet.examples, trainFile: f.train, eval: evalSet?.examples, evalFile: f.eval, outDir: f.out, maxLength: f["max-length"], docStride: f["doc-stride"], version2 });
    } else {
      const rows = readClassificationCsv(f.train);
      const evalRows = f.eval !== undefined ? readClassificationCsv(f.eval) : undefined;
      const labels = [...new Set(rows.map((r) => r.label))].sort();
      const { model: m, tok, tokenizerDir } = await buildModel(f, "cls", labels);
      model = m;
      result = await trainClassifier({ ...settings, model, tokenizer: tok, tokenizerDir, train: rows, trainFile: f.train, eval: evalRows, outDir: f.out, maxLength: f["max-length"] });
    }
  } finally {
    stop.remove();
    if (model !== undefined) disposeModel(model);
  }
  console.log(JSON.stringify({
    out: path.resolve(f.out), task, backend: backend.name, steps: result.steps, epoch: result.epoch, stopped: result.stopped,
    loss: result.loss, seconds: +result.seconds.toFixed(1), ...(result.eval ?? {}), checkpoint: result.checkpoint,
  }));
  if (result.stopped === "interrupted") process.exitCode = stop.signal() === "SIGTERM" ? 143 : 130; // 128 + signal number, as shells report it
}

function trainSettings(f: TrainFlags, shouldStop: () => boolean): TrainSettings {
  return {
    epochs: f.epochs, batchSize: f["batch-size"], lr: f.lr, warmupRatio: f["warmup-ratio"], weightDecay: f["weight-decay"],
    gradAccum: f["grad-accum"], groupByLength: f["group-by-length"], padToMultipleOf: f["pad-to-multiple-of"], maxGradNorm: f["max-grad-norm"], seed: f.seed, evalSteps: f["eval-steps"], saveSteps: f["save-steps"],
    logSteps: f["log-steps"], maxSteps: f["max-steps"], resume: f.resume, overwriteOutputDir: f["overwrite-output-dir"], shouldStop, quiet: f.quiet,
  };
}

/** A preset builds a fresh model sized to the tokenizer; anything else loads a checkpoint (missing heads initialised). */
async function buildModel(f: TrainFlags, task: Task, labels?: string[]): Promise<{ model: BertModel; tok: BertTokenizer; tokenizerDir: string }> {
  const isPreset = Object.prototype.hasOwnProperty.call(PRESETS, f.model) && !fs.existsSync(f.model);
  if (isPreset) {
    if (f.tokenizer === undefined) throw userError("--tokenizer", `is required to train preset '${f.model}' from scratch`, "pass a tokenizer directory, e.g. --tokenizer data/tokenizer");
    const tok = loadTokenizer(f.tokenizer);
    const config = presetConfig(f.model as PresetName, { vocabSize: tok.idToToken.length, maxPositions: SCRATCH_MAX_POSITIONS, numLabels: labels?.length });
    config.pad_token_id = tok.padId;
    if (f.dropout !== undefined) setDropout(config, f.dropout);
    if (labels !== undefined) setLabels(config, labels);
    return { model: initModel(config, task, f.seed), tok, tokenizerDir: f.tokenizer };
  }
  const loaded = await loadModel(f.model, task, { seed: f.seed, ...(labels !== undefined ? { labels } : {}) });
  if (f.dropout !== undefined) setDropout(loaded.model.config, f.dropout);
  if (loaded.missing.length > 0 || loaded.unexpected.length > 0) process.stderr.write(loaded.report + "\n");
  const tokenizerDir = f.tokenizer ?? loaded.dir;
  const tok = loadTokenizer(tokenizerDir);
  if (tok.idToToken.length > loaded.model.config.vocab_size) {
    throw userError(tokenizerDir, `has ${tok.idToToken.length} tokens but the model's vocab_size is ${loaded.model.config.vocab_size}`, "use the tokenizer that belongs to the model");
  }
  if (labels !== undefined) {
    const known = loaded.model.config.label2id;
    if (known !== undefined && labels.some((l) => !Object.prototype.hasOwnProperty.call(known, l)) && loaded.missing.length === 0) {
      throw userError(f.train, `has labels ${labels.join(", ")} but the model was trained for ${Object.keys(known).join(", ")}`, "train from a base model (its classifier is initialised for your labels)");
    }
  }
  return { model: loaded.model, tok, tokenizerDir };
}

function setDropout(config: { hidden_dropout_prob: number; attention_probs_dropout_prob: number }, p: number): void {
  if (!(p >= 0 && p < 1)) throw userError("--dropout", `must be in [0, 1), got ${p}`);
  config.hidden_dropout_prob = p;
  config.attention_probs_dropout_prob = p;
}

function setLabels(config: { id2label?: Record<string, string>; label2id?: Record<string, number>; num_labels?: number }, labels: string[]): void {
  config.num_labels = labels.length;
  config.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
  config.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
}

/** First Ctrl-C or SIGTERM (kill, Docker, Slurm): finish the step, save a checkpoint, stop. A second: quit at once. */
function installStopHandler(): { requested: () => boolean; signal: () => NodeJS.Signals | undefined; remove: () => void } {
  let stop: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop !== undefined) process.exit(sig === "SIGTERM" ? 143 : 130);
    stop = sig;
    process.stderr.write(`\ntrain: ${sig}: stopping after this step and saving a checkpoint (${sig === "SIGINT" ? "Ctrl-C" : sig} again to quit now)\n`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    requested: () => stop !== undefined,
    signal: () => stop,
    remove: () => { process.removeListener("SIGINT", onSignal); process.removeListener("SIGTERM", onSignal); },
  };
}
