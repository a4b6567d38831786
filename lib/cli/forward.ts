// `bertqa forward`: run a model once on given token ids (inference mode, no dropout) and write its outputs with the
// names transformers uses, so the numbers can be compared with Python side by side. The fixtures' case.json files
// are valid inputs.
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { userError } from "../errors";
import { decodeUtf8, parseJsonText, writeJsonAtomic } from "../fsutil";
import { clsLoss, disposeModel, forward, qaLoss, type Batch, type Task } from "../bert";
import { loadModelDir, resolveModelDir, taskFromConfig } from "../weights";
import { readConfig } from "../config";
import { BACKEND_NAMES, useBackend, type BackendName } from "../backend";
import { checkPaths } from "../outdir";
import { setDefaultProgressSink, silentSink } from "../progress";
import { parseFlags, type FlagSpecs } from "./args";

export const summary = "run a model on token ids from a JSON file and write logits, hidden states and loss (like transformers)";

const BACKENDS = ["auto", ...BACKEND_NAMES];

export const flags = {
  model: { type: "string", help: "model directory (config.json + model.safetensors) or Hub id", required: true },
  inputs: { type: "string", help: "JSON with input_ids [[...]], optional attention_mask, token_type_ids, start_positions+end_positions or labels", required: true },
  out: { type: "string", help: "output JSON: start_logits/end_logits or logits, last_hidden_state, loss (written atomically)", required: true },
  task: { type: "string", help: "qa | cls (default: from config.json architectures, else qa)" },
  backend: { type: "string", help: `TensorFlow.js backend: ${BACKENDS.join(" | ")}`, default: "auto" },
  quiet: { type: "boolean", help: "no download progress bars" },
} satisfies FlagSpecs;

export interface ForwardCase {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids?: number[][];
  start_positions?: number[];
  end_positions?: number[];
  labels?: number[];
}

/** Read and check the inputs file: rectangular integer matrices of one shape; labels complete. */
export function readCase(file: string): ForwardCase {
  if (!fs.existsSync(file)) throw userError(file, "file not found");
  const j = parseJsonText(decodeUtf8(fs.readFileSync(file), file), file, "not valid JSON") as Record<string, unknown>;
  if (j === null || typeof j !== "object") throw userError(file, "expected a JSON object with input_ids");
  const ids = intMatrix(j.input_ids, file, "input_ids");
  if (ids === undefined) throw userError(file, "missing 'input_ids'", "give token ids as [[101, 2054, ...], ...]");
  const shape = [ids.length, ids[0].length];
  const same = (m: number[][] | undefined, name: string) => {
    if (m !== undefined && (m.length !== shape[0] || m[0].length !== shape[1])) throw userError(file, `'${name}' is ${m.length}×${m[0].length} but input_ids is ${shape[0]}×${shape[1]}`);
    return m;
  };
  const c: ForwardCase = {
    input_ids: ids,
    attention_mask: same(intMatrix(j.attention_mask, file, "attention_mask"), "attention_mask") ?? ids.map((r) => r.map(() => 1)),
    token_type_ids: same(intMatrix(j.token_type_ids, file, "token_type_ids"), "token_type_ids"),
  };
  for (const name of ["start_positions", "end_positions", "labels"] as const) {
    const v = j[name];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || v.length !== shape[0] || !v.every((x) => Number.isInteger(x))) throw userError(file, `'${name}' must be ${shape[0]} integers, one per row`);
    c[name] = v as number[];
  }
  if ((c.start_positions === undefined) !== (c.end_positions === undefined)) throw userError(file, "give both start_positions and end_positions, or neither");
  return c;
}

function intMatrix(v: unknown, file: string, name: string): number[][] | undefined {
  if (v === undefined || v === null) return undefined;
  const rows = Array.isArray(v) && v.length > 0 && !Array.isArray(v[0]) ? [v] : v; // one sequence → a batch of one
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => Array.isArray(r))) throw userError(file, `'${name}' must be a non-empty list of lists of integers`);
  const width = (rows[0] as unknown[]).length;
  rows.forEach((r: unknown[], i) => {
    if (r.length !== width) throw userError(file, `'${name}' row ${i} has ${r.length} entries, row 0 has ${width}`, "pad every row to the same length");
    const bad = r.findIndex((x) => !Number.isInteger(x));
    if (bad >= 0) throw userError(file, `'${name}' row ${i}, position ${bad} is ${JSON.stringify(r[bad])}, not an integer`);
  });
  if (width === 0) throw userError(file, `'${name}' rows are empty`);
  return rows as number[][];
}

/** Outputs (as nested arrays) under transformers' names, plus the loss when labels are given. */
export async function runForward(model: Parameters<typeof forward>[0], c: ForwardCase): Promise<Record<string, unknown>> {
  const batch: Batch = {
    inputIds: tf.tensor2d(c.input_ids, undefined, "int32"),
    attentionMask: tf.tensor2d(c.attention_mask, undefined, "int32"),
    tokenTypeIds: c.token_type_ids !== undefined ? tf.tensor2d(c.token_type_ids, undefined, "int32") : undefined,
  };
  try {
    const out = forward(model, batch);
    const result: Record<string, unknown> = {};
    let loss: tf.Scalar | undefined;
    if (model.task === "qa") {
      result.start_logits = await out.startLogits!.array(); // async reads: GPU backends have no synchronous one
      result.end_logits = await out.endLogits!.array();
      if (c.start_positions !== undefined && c.end_positions !== undefined) {
        loss = tf.tidy(() => qaLoss(out.startLogits!, out.endLogits!, tf.tensor1d(c.start_positions!, "int32"), tf.tensor1d(c.end_positions!, "int32")));
      }
    } else {
      result.logits = await out.logits!.array();
      if (c.labels !== undefined) loss = tf.tidy(() => clsLoss(out.logits!, tf.tensor1d(c.labels!, "int32")));
    }
    result.last_hidden_state = await out.lastHiddenState.array();
    if (loss !== undefined) result.loss = (await loss.data())[0];
    tf.dispose([...(Object.values(out) as tf.Tensor[]), ...(loss !== undefined ? [loss] : [])]);
    return result;
  } finally {
    tf.dispose([batch.inputIds, batch.attentionMask, ...(batch.tokenTypeIds !== undefined ? [batch.tokenTypeIds] : [])]);
  }
}

export async function run(argv: string[]): Promise<void> {
  const f = parseFlags("forward", argv, flags);
  if (f.quiet === true) setDefaultProgressSink(silentSink);
  if (!BACKENDS.includes(f.backend ?? "auto")) throw userError("--backend", `unknown backend '${f.backend}'`, `use one of ${BACKENDS.join(", ")}`);
  if (f.task !== undefined && f.task !== "qa" && f.task !== "cls") throw userError("--task", `unknown task '${f.task}'`, "use qa or cls");
  checkPaths("forward", [{ flag: "--inputs", path: f.inputs }, { flag: "--model", path: fs.existsSync(f.model) ? f.model : undefined }], [{ flag: "--out", path: f.out }]);
  const c = readCase(f.inputs);
  const backend = await useBackend((f.backend ?? "auto") as BackendName | "auto");
  const dir = await resolveModelDir(f.model);
  const task: Task = (f.task as Task | undefined) ?? taskFromConfig(readConfig(path.join(dir, "config.json"))) ?? "qa";
  const { model, report } = loadModelDir(dir, task);
  if (!report.startsWith("All weights")) process.stderr.write(report + "\n");
  try {
    const result = await runForward(model, c);
    writeJsonAtomic(f.out, result);
    console.log(JSON.stringify({ out: f.out, model: f.model, task, backend: backend.name, batch: c.input_ids.length, seq_len: c.input_ids[0].length, ...(result.loss !== undefined && { loss: result.loss }) }));
  } finally {
    disposeModel(model);
  }
}
