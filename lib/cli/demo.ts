// `bertqa demo` (npm run demo): the whole workbook in one command, offline (lib/demo.ts): train a tiny BERT from
// scratch on the embedded English sample, evaluate it on the dev split with the official SQuAD metric, show a few
// answers, and write a report (Markdown + loss curve SVG) into runs/demo/. The last stdout line is a JSON summary.
import * as path from "node:path";
import { BACKEND_NAMES, type BackendName } from "../backend";
import { DEMO, runDemo } from "../demo";
import { userError } from "../errors";
import { setDefaultProgressSink, silentSink } from "../progress";
import { SEED_MAX, parseFlags, type FlagSpecs } from "./args";

export const summary = "train a tiny BERT from scratch on the embedded sample, evaluate on dev, write a report (offline)";

const BACKENDS = ["auto", ...BACKEND_NAMES];

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
  const { losses: _, ...summary } = await runDemo({ out: f.out, steps: f.steps, batchSize: f["batch-size"], lr: f.lr, seed: f.seed, maxTrain: f["max-train"],
    backend: f.backend as BackendName | "auto", quiet: f.quiet, trainBudgetS: f["train-budget"], overwriteOutputDir: f["overwrite-output-dir"] });
  console.log(JSON.stringify(summary));
}
