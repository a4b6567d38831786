// `bertqa demo` (npm run demo): the whole workbook in one command, offline — train a tiny BERT from scratch on the
// embedded English sample, evaluate it on the dev split with the official SQuAD metric, show a few answers, and write
// a report (Markdown + loss curve SVG) into runs/demo/. The last stdout line is a JSON summary.
import * as fs from "node:fs";
import * as path from "node:path";
import { initModel, disposeModel } from "../bert";
import { presetConfig } from "../config";
import { loadSquad } from "../squad";
import { loadTokenizer } from "../tokenizer";
import { SAMPLE_FILES } from "../sample";
import { trainQA, type TrainResult } from "../train";
import { predictQA } from "../predict";
import { squadEvaluate } from "../metrics";
import { writeFileAtomic, writeJsonAtomic } from "../fsutil";
import { BACKEND_NAMES, useBackend, type BackendName } from "../backend";
import { userError } from "../errors";
import { checkPaths, dirEntries, listNames } from "../outdir";
import { setDefaultProgressSink, silentSink } from "../progress";
import { SEED_MAX, parseFlags, type FlagSpecs } from "./args";

export const summary = "train a tiny BERT from scratch on the embedded sample, evaluate on dev, write a report (offline)";

const BACKENDS = ["auto", ...BACKEND_NAMES];

// Tuned on this sample for 2 CPU cores: a 2-layer, 128-wide BERT learns the templated questions from scratch with a
// high learning rate (tiny models tolerate ~1e-3) and no dropout (in minutes it underfits; dropout only slows it).
// Batches group features of similar length (less padding, ~20% faster steps). The schedule is sized in steps so that
// it ends (learning rate decayed to 0) inside the time budget. Windows of 128 tokens hold every sample context.
export const DEMO = { trainBudgetS: 540, steps: 1400, batchSize: 16, lr: 1e-3, dropout: 0, warmupRatio: 0.06, maxLength: 128, docStride: 64, seed: 7, examplesShown: 8 };

export const flags = {
  out: { type: "string", help: "output directory (model, metrics.jsonl, loss.svg, report.md)", default: path.join("runs", "demo") },
  steps: { type: "int", help: "optimizer steps (the learning-rate schedule ends there)", default: DEMO.steps, min: 1 },
  "batch-size": { type: "int", help: "features per step", default: DEMO.batchSize, min: 1 },
  lr: { type: "number", help: "peak learning rate", default: DEMO.lr },
  seed: { type: "int", help: "seed for init, data order and dropout", default: DEMO.seed, min: 0, max: SEED_MAX },
  "max-train": { type: "int", help: "use only the first N training questions (quick runs)", min: 1 },
  backend: { type: "string", help: `TensorFlow.js backend: ${BACKENDS.join(" | ")}`, default: "auto" },
  quiet: { type: "boolean", help: "no progress bar" },
  "train-budget": { type: "number", help: "seconds after which training stops early (checkpoint kept) and the model is evaluated", default: DEMO.trainBudgetS, min: 0 },
  "overwrite-output-dir": { type: "boolean", help: "write into an --out that holds something other than an earlier demo (only the demo's files are replaced)" },
} satisfies FlagSpecs;

export async function run(argv: string[]): Promise<void> {
  const f = parseFlags("demo", argv, flags) as { out: string; steps: number; "batch-size": number; lr: number; seed: number; "max-train"?: number; backend: string; quiet?: boolean; "train-budget": number; "overwrite-output-dir"?: boolean };
  if (f.quiet === true) setDefaultProgressSink(silentSink); // feature and prediction bars too, not only the training bar
  if (!BACKENDS.includes(f.backend)) throw userError("--backend", `unknown backend '${f.backend}'`, `use one of ${BACKENDS.join(", ")}`);
  checkDemoOut(f.out, f["overwrite-output-dir"] === true);
  const t0 = Date.now();
  const backend = await useBackend(f.backend as BackendName | "auto");
  process.stderr.write(`demo: backend ${backend.name} (${backend.detail})\n`);
  const tok = loadTokenizer(SAMPLE_FILES.tokenizerDir);
  const train = loadSquad(SAMPLE_FILES.train).examples.slice(0, f["max-train"] ?? undefined);
  const dev = loadSquad(SAMPLE_FILES.dev).examples;
  const config = presetConfig("tiny", { vocabSize: tok.idToToken.length, maxPositions: DEMO.maxLength });
  config.pad_token_id = tok.padId;
  config.hidden_dropout_prob = config.attention_probs_dropout_prob = DEMO.dropout;
  const model = initModel(config, "qa", f.seed);
  let result: TrainResult;
  try {
    process.stderr.write(`demo: training a tiny BERT (2 layers, 128 hidden) from scratch on ${train.length} questions, ${f.steps} steps of ${f["batch-size"]}\n`);
    result = await trainQA({
      model, tokenizer: tok, tokenizerDir: SAMPLE_FILES.tokenizerDir, train, trainFile: SAMPLE_FILES.train, eval: dev, evalFile: SAMPLE_FILES.dev,
      outDir: f.out, overwriteOutputDir: true, maxSteps: f.steps, batchSize: f["batch-size"], lr: f.lr, warmupRatio: DEMO.warmupRatio, seed: f.seed,
      maxLength: DEMO.maxLength, docStride: DEMO.docStride, groupByLength: true, logSteps: 10, quiet: f.quiet,
      // The demo promises < 10 minutes on 2 cores: past the budget, stop (a checkpoint is kept) and evaluate.
      shouldStop: () => (Date.now() - t0) / 1000 > f["train-budget"],
    });
    // Final scores and a few answers, from the trained model.
    const pred = await predictQA(model, tok, dev, { maxLength: DEMO.maxLength, docStride: DEMO.docStride, batchSize: 64, progress: false });
    const scores = squadEvaluate(dev, pred.predictions);
    const shown = dev.slice(0, DEMO.examplesShown).map((e) => ({ question: e.question, gold: e.answers[0]?.text ?? "", predicted: pred.predictions[e.id] }));
    for (const s of shown) process.stderr.write(`  Q: ${s.question}\n     gold: ${s.gold} | predicted: ${s.predicted} ${s.gold === s.predicted ? "✓" : "✗"}\n`);
    const seconds = (Date.now() - t0) / 1000;
    const summary = { exact: round(scores.exact), f1: round(scores.f1), total: scores.total, seconds: round(seconds), backend: backend.name, steps: result.steps, epochs: result.epoch, stopped: result.stopped, train_questions: train.length, out: path.resolve(f.out) };
    writeJsonAtomic(path.join(f.out, "predictions.json"), pred.predictions);
    writeFileAtomic(path.join(f.out, "report.md"), report(summary, shown, backend.detail, f));
    process.stderr.write(`demo: EM ${summary.exact} F1 ${summary.f1} on ${summary.total} dev questions in ${summary.seconds} s; report: ${path.join(f.out, "report.md")}\n`);
    console.log(JSON.stringify(summary));
  } finally {
    disposeModel(model);
  }
}

function round(x: number): number {
  return +x.toFixed(2);
}

function report(s: { exact: number; f1: number; total: number; seconds: number; backend: string; steps: number; epochs: number; train_questions: number }, shown: { question: string; gold: string; predicted: string }[], backendDetail: string, f: { steps: number; "batch-size": number; lr: number; seed: number }): string {
  const cell = (t: string) => t.replace(/\|/g, "\\|");
  return [
    "# bertqa demo: a tiny BERT trained from scratch for extractive QA",
    "",
    `Trained on ${s.train_questions} questions of the embedded sample (\`data/squad-sample-train.json\`), evaluated on ${s.total} dev questions about paragraphs that never occur in training (their names come from the training lexicon, each always the same kind of thing: see \`data/README.md\`).`,
    "",
    "| metric | value |", "| --- | --- |",
    `| exact match | ${s.exact} |`, `| F1 | ${s.f1} |`, `| dev questions | ${s.total} |`, `| optimizer steps | ${s.steps} (${s.epochs} epochs) |`,
    `| wall time | ${s.seconds} s |`, `| backend | ${s.backend}: ${backendDetail} |`,
    `| settings | tiny preset (L2/H128/A2), no dropout, lr ${f.lr}, batch ${f["batch-size"]} grouped by length, ${f.steps} steps, seed ${f.seed}, max length ${DEMO.maxLength} |`,
    "",
    "## Training loss", "", "![loss curve](loss.svg)", "",
    "## Some dev answers", "", "| question | gold | predicted |", "| --- | --- | --- |",
    ...shown.map((x) => `| ${cell(x.question)} | ${cell(x.gold)} | ${cell(x.predicted)} ${x.gold === x.predicted ? "✓" : "✗"} |`),
    "",
    "Files: `model.safetensors` + `config.json` + tokenizer (a Hugging Face model directory), `metrics.jsonl` (one line per logged step and evaluation), `eval.json`, `predictions.json`, `checkpoint/` (resumable).",
    "",
  ].join("\n");
}

/** The demo replaces an earlier demo (a folder with its report.md) without asking; any other non-empty folder is not
 * its to overwrite unless --overwrite-output-dir says so. */
function checkDemoOut(dir: string, overwrite: boolean): void {
  checkPaths("demo", [], [], [{ flag: "--out", path: dir }]);
  const entries = dirEntries(dir);
  if (entries.length === 0 || overwrite || entries.includes("report.md")) return;
  throw userError(dir, `is not empty and holds no earlier demo (${listNames(entries)})`, "choose another --out, or pass --overwrite-output-dir to replace only the demo's files there");
}

export function demoOutputs(dir: string): string[] {
  return ["config.json", "model.safetensors", "metrics.jsonl", "eval.json", "loss.svg", "report.md", "predictions.json"].filter((f2) => fs.existsSync(path.join(dir, f2)));
}
