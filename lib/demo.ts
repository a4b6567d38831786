// The demo job: the whole workbook in one call, offline — train a tiny BERT from scratch on the embedded English
// sample, evaluate it on the dev split with the official SQuAD metric, keep a few answers, and write a report
// (Markdown + loss curve) into the run folder. `bertqa demo` (npm run demo) runs it from the command line; the page
// lib/web/demo.html runs it in a browser worker, on the same code.
import { initModel, disposeModel, type BertModel } from "./bert";
import { loadModel } from "./weights";
import { presetConfig } from "./config";
import { loadSquad } from "./squad";
import { loadTokenizer } from "./tokenizer";
import { SAMPLE_FILES } from "./sample";
import { definedOnly, trainQA, type TrainResult } from "./train";
import { predictQA } from "./predict";
import { squadEvaluate } from "./metrics";
import { persisted, writeFileAtomic, writeJsonAtomic } from "./fsutil";
import { useBackend, type BackendName } from "./backend";
import { userError } from "./errors";
import { checkPaths, dirEntries, listNames } from "./outdir";
import { path, stderr } from "./platform";

// Tuned on this sample for 2 CPU cores: a 2-layer, 128-wide BERT learns the templated questions from scratch with a
// high learning rate (tiny models tolerate ~1e-3) and no dropout (in minutes it underfits; dropout only slows it).
// Batches group features of similar length (less padding, ~20% faster steps). The schedule is sized in steps so that
// it ends (learning rate decayed to 0) inside the time budget. Windows of 128 tokens hold every sample context.
export const DEMO = { trainBudgetS: 540, steps: 1400, batchSize: 16, lr: 1e-3, dropout: 0, warmupRatio: 0.06, maxLength: 128, docStride: 64, seed: 7, examplesShown: 8 };

export interface DemoOptions {
  out: string;
  steps?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  maxTrain?: number; // only the first N training questions (quick runs)
  maxDev?: number; // score only the first N dev questions (quick runs; the demo's figures are on all 300)
  backend?: BackendName | "auto";
  quiet?: boolean;
  trainBudgetS?: number; // past this, training stops (checkpoint kept) and the model is evaluated
  overwriteOutputDir?: boolean;
  resume?: boolean; // continue the run in `out` from its checkpoint (a run stopped with ■, or a closed tab)
  logSteps?: number; // a metrics.jsonl line (a loss in the summary) every N steps (10)
  model?: string; // fine-tune this checkpoint (a Hub id or a model folder, with its tokenizer) instead of a tiny BERT from scratch
}

export interface DemoSummary {
  exact: number; f1: number; total: number; seconds: number; backend: string; steps: number; epochs: number;
  stopped: TrainResult["stopped"]; train_questions: number; out: string; losses: number[];
}

/** Train, evaluate and report; the summary is what `bertqa demo` prints as its last line (plus the logged losses). */
export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const o = { steps: DEMO.steps, batchSize: DEMO.batchSize, lr: DEMO.lr, seed: DEMO.seed, backend: "auto" as const, trainBudgetS: DEMO.trainBudgetS, ...definedOnly(opts), out: opts.out };
  if (o.resume !== true) checkDemoOut(o.out, o.overwriteOutputDir === true);
  const t0 = Date.now();
  const backend = await useBackend(o.backend);
  stderr.write(`demo: backend ${backend.name} (${backend.detail})\n`);
  const { model, tokenizerDir } = await demoModel(o.model, o.seed);
  const tok = loadTokenizer(tokenizerDir);
  const train = loadSquad(SAMPLE_FILES.train).examples.slice(0, o.maxTrain ?? undefined);
  const dev = loadSquad(SAMPLE_FILES.dev).examples.slice(0, o.maxDev ?? undefined);
  try {
    stderr.write(`demo: training ${o.model ?? "a tiny BERT (2 layers, 128 hidden) from scratch"} on ${train.length} questions, ${o.steps} steps of ${o.batchSize}\n`);
    const result = await trainQA({
      model, tokenizer: tok, tokenizerDir, train, trainFile: SAMPLE_FILES.train, eval: dev, evalFile: SAMPLE_FILES.dev,
      outDir: o.out, overwriteOutputDir: o.resume !== true, resume: o.resume === true ? o.out : undefined,
      maxSteps: o.steps, batchSize: o.batchSize, lr: o.lr, warmupRatio: DEMO.warmupRatio, seed: o.seed,
      maxLength: DEMO.maxLength, docStride: DEMO.docStride, groupByLength: true, logSteps: o.logSteps ?? 10, quiet: o.quiet,
      // The demo promises < 10 minutes on 2 cores: past the budget, stop (a checkpoint is kept) and evaluate.
      shouldStop: () => (Date.now() - t0) / 1000 > o.trainBudgetS,
    });
    // Final scores and a few answers, from the trained model.
    const pred = await predictQA(model, tok, dev, { maxLength: DEMO.maxLength, docStride: DEMO.docStride, batchSize: 64, progress: false });
    const scores = squadEvaluate(dev, pred.predictions);
    const shown = dev.slice(0, DEMO.examplesShown).map((e) => ({ question: e.question, gold: e.answers[0]?.text ?? "", predicted: pred.predictions[e.id] }));
    for (const s of shown) stderr.write(`  Q: ${s.question}\n     gold: ${s.gold} | predicted: ${s.predicted} ${s.gold === s.predicted ? "✓" : "✗"}\n`);
    const seconds = (Date.now() - t0) / 1000;
    const summary = { exact: round(scores.exact), f1: round(scores.f1), total: scores.total, seconds: round(seconds), backend: backend.name, steps: result.steps, epochs: result.epoch, stopped: result.stopped, train_questions: train.length, out: path.resolve(o.out) };
    writeJsonAtomic(path.join(o.out, "predictions.json"), pred.predictions);
    writeFileAtomic(path.join(o.out, "report.md"), report(summary, shown, backend.detail, o));
    await persisted("the demo's report", o.out);
    stderr.write(`demo: EM ${summary.exact} F1 ${summary.f1} on ${summary.total} dev questions in ${summary.seconds} s; report: ${path.join(o.out, "report.md")}\n`);
    return { ...summary, losses: result.history.filter((r) => r.loss !== undefined).map((r) => r.loss!) };
  } finally {
    disposeModel(model);
  }
}

/** A tiny BERT from scratch on the sample's vocabulary (the demo), or a checkpoint to fine-tune with its tokenizer. */
async function demoModel(from: string | undefined, seed: number): Promise<{ model: BertModel; tokenizerDir: string }> {
  if (from !== undefined) {
    const loaded = await loadModel(from, "qa", { seed });
    return { model: loaded.model, tokenizerDir: loaded.dir };
  }
  const tok = loadTokenizer(SAMPLE_FILES.tokenizerDir);
  const config = presetConfig("tiny", { vocabSize: tok.idToToken.length, maxPositions: DEMO.maxLength });
  config.pad_token_id = tok.padId;
  config.hidden_dropout_prob = config.attention_probs_dropout_prob = DEMO.dropout;
  return { model: initModel(config, "qa", seed), tokenizerDir: SAMPLE_FILES.tokenizerDir };
}

function round(x: number): number {
  return +x.toFixed(2);
}

function report(s: { exact: number; f1: number; total: number; seconds: number; backend: string; steps: number; epochs: number; train_questions: number }, shown: { question: string; gold: string; predicted: string }[], backendDetail: string, f: { steps: number; batchSize: number; lr: number; seed: number; model?: string }): string {
  const cell = (t: string) => t.replace(/\|/g, "\\|");
  return [
    "# bertqa demo: a tiny BERT trained from scratch for extractive QA",
    "",
    `Trained on ${s.train_questions} questions of the embedded sample (\`data/squad-sample-train.json\`), evaluated on ${s.total} dev questions about paragraphs that never occur in training (their names come from the training lexicon, each always the same kind of thing: see \`data/README.md\`).`,
    "",
    "| metric | value |", "| --- | --- |",
    `| exact match | ${s.exact} |`, `| F1 | ${s.f1} |`, `| dev questions | ${s.total} |`, `| optimizer steps | ${s.steps} (${s.epochs} epochs) |`,
    `| wall time | ${s.seconds} s |`, `| backend | ${s.backend}: ${backendDetail} |`,
    `| settings | ${f.model ?? "tiny preset (L2/H128/A2), no dropout"}, lr ${f.lr}, batch ${f.batchSize} grouped by length, ${f.steps} steps, seed ${f.seed}, max length ${DEMO.maxLength} |`,
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
