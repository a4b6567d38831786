// `bertqa convert`: load any checkpoint this project reads (old gamma/beta names, missing base-model prefix, sharded,
// local or from the Hub) and write it in today's Hugging Face layout for one task: config.json + model.safetensors
// (+ tokenizer files), tensors the task does not use left out, values unchanged.
import * as fs from "node:fs";
import * as path from "node:path";
import { userError } from "../errors";
import { readConfig } from "../config";
import { countParams, disposeModel, type Task } from "../bert";
import { loadModelDir, resolveModelDir, saveModel, taskFromConfig, TOKENIZER_FILES } from "../weights";
import { checkOutputDir, checkPaths } from "../outdir";
import { setDefaultProgressSink, silentSink } from "../progress";
import { parseFlags, type FlagSpecs } from "./args";

export const summary = "rewrite a BERT/DistilBERT checkpoint (any supported key style, local or Hub) in the modern HF layout";

export const flags = {
  model: { type: "string", help: "model directory or Hub id to read", required: true },
  out: { type: "string", help: "directory to write: new or empty (a new one appears whole)", required: true },
  task: { type: "string", help: "qa | cls: which head to keep (default: from config.json architectures, else qa)" },
  "num-labels": { type: "int", help: "cls: number of labels when the checkpoint has no classifier yet", min: 1 },
  "no-new-heads": { type: "boolean", help: "fail instead of initialising a head the checkpoint lacks" },
  "overwrite-output-dir": { type: "boolean", help: "write into a non-empty --out: replace only config.json, model.safetensors and tokenizer files there" },
  quiet: { type: "boolean", help: "no download progress bars" },
} satisfies FlagSpecs;

export async function run(argv: string[]): Promise<void> {
  const f = parseFlags("convert", argv, flags);
  if (f.quiet === true) setDefaultProgressSink(silentSink);
  if (f.task !== undefined && f.task !== "qa" && f.task !== "cls") throw userError("--task", `unknown task '${f.task}'`, "use qa or cls");
  // Never delete what convert did not write: a non-empty --out is refused, or (overwrite) only our names are replaced.
  checkPaths("convert", [{ flag: "--model", path: fs.existsSync(f.model) ? f.model : undefined }], [], [{ flag: "--out", path: f.out }]);
  checkOutputDir(f.out, "--out", f["overwrite-output-dir"] === true, "config.json, model.safetensors and the tokenizer files");
  const dir = await resolveModelDir(f.model);
  if (path.resolve(dir) === path.resolve(f.out)) throw userError("--out", "is the input directory", "write the converted model somewhere else");
  const task: Task = (f.task as Task | undefined) ?? taskFromConfig(readConfig(path.join(dir, "config.json"))) ?? "qa";
  const { model, missing, unexpected, report } = loadModelDir(dir, task, { numLabels: f["num-labels"] });
  try {
    if (missing.length > 0 && f["no-new-heads"] === true) throw userError(f.model, `the checkpoint has no ${missing.join(", ")}`, "drop --no-new-heads to initialise them, or pick the task the checkpoint was trained for");
    process.stderr.write(report + "\n");
    const hasTokenizer = TOKENIZER_FILES.some((t) => fs.existsSync(path.join(dir, t)));
    await saveModel(model, f.out, hasTokenizer ? { tokenizerDir: dir } : {});
    console.log(JSON.stringify({ out: f.out, task, model_type: model.config.model_type, params: countParams(model), tensors: Object.keys(model.params).length, left_out: unexpected, newly_initialized: missing, tokenizer: hasTokenizer }));
  } finally {
    disposeModel(model);
  }
}
