// `bertqa evaluate`: score a predictions file {id: answer} against a SQuAD v1.1/v2.0 or CMRC 2018 data file with the
// official metrics; prints one JSON object with the official key names (SQuAD v2.0 script / CMRC 2018 script).
import * as fs from "node:fs";
import { isUserError, userError } from "../errors";
import { decodeUtf8 } from "../fsutil";
import { setOwn } from "../postprocess";
import { loadSquad, parseJsonText, type QAExample } from "../squad";
import { cmrcEvaluate, DEFAULT_NA_PROB_THRESH, detectMetric, squadEvaluate } from "../metrics";
import { parseFlags, type FlagSpecs } from "./args";

export const summary = "score predictions with the official SQuAD v1.1/v2.0 or CMRC 2018 metrics";

export const flags = {
  data: { type: "string", help: "SQuAD v1.1/v2.0 or CMRC2018 JSON file with the gold answers", required: true },
  predictions: { type: "string", help: 'predictions JSON {"id": "answer text"} (what bertqa predict writes)', required: true },
  "na-prob": { type: "string", help: "JSON {id: no-answer probability or null odds} (bertqa predict --na-prob-out); adds best_*" },
  "na-prob-thresh": { type: "number", help: "answer \"\" where the na-prob is above this (SQuAD v2.0 script default)", default: DEFAULT_NA_PROB_THRESH },
  metric: { type: "string", help: "auto | squad | cmrc (auto: cmrc when the version names CMRC or the contexts are Chinese)", default: "auto" },
  strict: { type: "boolean", help: "refuse predictions for ids not in the data (default: score the data's questions, ignore the rest with a warning, as the official scripts do)" },
  "skip-invalid": { type: "boolean", help: "skip (and report) questions of --data that cannot be scored instead of stopping at the first; they leave the total" },
} satisfies FlagSpecs;

function readJson(file: string, what: string): unknown {
  let raw: string;
  try {
    raw = decodeUtf8(fs.readFileSync(file), file);
  } catch (e) {
    if (isUserError(e)) throw e;
    throw userError(file, `cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, "check the path");
  }
  return parseJsonText(raw, file);
}

/** The predictions file must be a flat {id: string} object, as the official scripts read it. */
export function readPredictions(file: string): Record<string, string> {
  const json = readJson(file, "predictions");
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw userError(file, "predictions must be a JSON object {\"id\": \"answer text\"}", "write it with bertqa predict --out");
  }
  for (const [id, v] of Object.entries(json)) {
    if (typeof v !== "string") throw userError(file, `prediction for id "${id}" is ${JSON.stringify(v)}, not a string`, 'write {"id": "answer text"}');
  }
  return json as Record<string, string>;
}

/**
 * {id: number} in FILE order: the v2.0 script breaks na_prob ties by it, and JS objects put integer-like keys first.
 */
export function readNaProbs(file: string): Map<string, number> {
  const raw = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
  const json = readJson(file, "na-prob file");
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw userError(file, "na-prob file must be a JSON object {\"id\": number}");
  const obj = json as Record<string, unknown>;
  for (const [id, v] of Object.entries(obj)) {
    if (typeof v !== "number") throw userError(file, `na-prob for id "${id}" is ${JSON.stringify(v)}, not a number`, 'write {"id": 0.42}');
  }
  const out = new Map<string, number>();
  // Values are all numbers, so every quoted string followed by ":" is a key, in file order.
  for (const m of (raw ?? "").matchAll(/"((?:[^"\\]|\\.)*)"\s*:/g)) {
    const id = JSON.parse(`"${m[1]}"`) as string;
    if (!out.has(id)) out.set(id, obj[id] as number);
  }
  return out;
}

/** Predictions minus those for questions --skip-invalid left out of the data (reported when they were skipped). */
function withoutIds(predictions: Record<string, string>, ids: string[], kept: QAExample[]): Record<string, string> {
  if (ids.length === 0) return predictions;
  const out: Record<string, string> = {};
  const drop = new Set(ids);
  for (const ex of kept) drop.delete(ex.id); // a skipped duplicate shares its id with a kept question
  for (const [id, text] of Object.entries(predictions)) if (!drop.has(id)) setOwn(out, id, text);
  return out;
}

export async function run(argv: string[]): Promise<void> {
  const f = parseFlags("evaluate", argv, flags);
  const metric = f.metric as string;
  if (!["auto", "squad", "cmrc"].includes(metric)) throw userError("bertqa evaluate", `--metric must be auto, squad or cmrc, got '${metric}'`);
  const ds = loadSquad(f.data, { checkAnswerStarts: false, skipInvalid: f["skip-invalid"], warn: (m) => process.stderr.write(`warning: ${m}\n`) }); // like the official scripts: answer texts only
  const predictions = withoutIds(readPredictions(f.predictions), ds.skippedIds, ds.examples);
  const chosen = metric === "auto" ? detectMetric(ds.version, ds.examples) : metric;
  const warn = (m: string) => process.stderr.write(m + "\n");
  if (chosen === "cmrc") {
    if (f["na-prob"] !== undefined) throw userError("bertqa evaluate", "--na-prob applies to SQuAD scoring only", "drop it, or pass --metric squad");
    console.log(JSON.stringify(cmrcEvaluate(ds.examples, predictions, { predictionsFile: f.predictions, strict: f.strict, warn })));
    return;
  }
  const version2 = ds.version.startsWith("v2") || ds.examples.some((e) => e.answers.length === 0);
  const naProbs = f["na-prob"] !== undefined ? readNaProbs(f["na-prob"]) : undefined;
  const result = squadEvaluate(ds.examples, predictions, {
    naProbs, naProbThresh: f["na-prob-thresh"], version2, predictionsFile: f.predictions, naProbFile: f["na-prob"], strict: f.strict, warn,
  });
  console.log(JSON.stringify(result));
}
