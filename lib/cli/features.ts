// `bertqa features`: a SQuAD-style file -> one JSON line per model input (feature), the same records Hugging Face's
// run_qa.py preprocessing makes, so they can be diffed against Python. Offsets are written in code points (Python's
// string indices), null outside the context.
import * as fs from "node:fs";
import * as path from "node:path";
import { userError } from "../errors";
import { progress, setDefaultProgressSink, silentSink } from "../progress";
import { codePointIndex, prepareFeatures, type QAFeature } from "../features";
import { loadSquad, type QAExample } from "../squad";
import { loadTokenizer } from "../tokenizer";
import { parseFlags, type FlagSpecs } from "./args";
import { writeLinesAtomic } from "../fsutil";
import { checkPaths } from "../outdir";

/** Below this many features the output is written without a progress bar (it takes well under a second). */
const PROGRESS_MIN_FEATURES = 5000;

export const summary = "turn a SQuAD/CMRC JSON file into BERT QA features (JSON lines), as run_qa.py prepares them";

export const flags = {
  data: { type: "string", help: "SQuAD v1.1/v2.0 or CMRC2018 JSON file", required: true },
  tokenizer: { type: "string", help: "tokenizer directory, tokenizer.json or vocab.txt", required: true },
  lowercase: { type: "boolean", help: "lowercase the text (uncased vocabularies; default: what the tokenizer config says)" },
  "max-length": { type: "int", help: "tokens per feature, special tokens included (run_qa.py default)", default: 384, min: 4 },
  "doc-stride": { type: "int", help: "tokens shared by neighbouring windows of a long context (run_qa.py default)", default: 128, min: 0 },
  out: { type: "string", help: "output .jsonl file (written atomically)", required: true },
  "skip-invalid": { type: "boolean", help: "skip (and report) questions that cannot be used instead of stopping at the first" },
  predict: { type: "boolean", help: "features for prediction (run_qa.py --do_predict): answers are not read, start/end_position are null" },
  quiet: { type: "boolean", help: "no progress bars" },
} satisfies FlagSpecs;

/** One JSONL record with run_qa.py's names; offsets converted to code points. */
function featureJson(f: QAFeature, ex: QAExample, cpIndex: Int32Array | null, unlabelled: boolean): string {
  const offsets = cpIndex === null ? f.offsets : f.offsets.map((o) => (o === null ? null : [cpIndex[o[0]], cpIndex[o[1]]]));
  return JSON.stringify({
    example_id: f.exampleId, input_ids: f.inputIds, token_type_ids: f.tokenTypeIds, offsets,
    start_position: unlabelled ? null : f.startPosition, end_position: unlabelled ? null : f.endPosition,
  });
}

export async function run(argv: string[]): Promise<void> {
  const opts = parseFlags("features", argv, flags);
  const maxLength = opts["max-length"] as number, docStride = opts["doc-stride"] as number;
  checkPaths("features", [{ flag: "--data", path: opts.data }, { flag: "--tokenizer", path: opts.tokenizer }], [{ flag: "--out", path: opts.out }]);
  if (!fs.existsSync(opts.tokenizer)) throw userError(opts.tokenizer, "tokenizer not found", "pass a directory with tokenizer.json or vocab.txt, or one of those files");
  const tok = loadTokenizer(opts.tokenizer, opts.lowercase === true ? { lowercase: true } : undefined);
  const skipInvalid = opts["skip-invalid"] === true;
  const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);
  if (opts.quiet === true) setDefaultProgressSink(silentSink);
  const ds = loadSquad(opts.data, { skipInvalid, warn, ignoreAnswers: opts.predict === true });
  const { features, stats } = prepareFeatures(ds.examples, tok, { maxLength, docStride, skipInvalid, warn, file: opts.data });
  let lastContext: string | undefined, lastIndex: Int32Array | null = null;
  const bar = features.length >= PROGRESS_MIN_FEATURES ? progress("writing", features.length) : undefined;
  writeLinesAtomic(opts.out, features.length, (i) => {
    if (bar !== undefined && (i & 1023) === 0) bar.update(i);
    const ex = ds.examples[features[i].exampleIndex];
    if (ex.context !== lastContext) { // SQuAD files group questions by context; ASCII/BMP text needs no conversion
      lastContext = ex.context;
      lastIndex = /[\uD800-\uDFFF]/.test(ex.context) ? codePointIndex(ex.context) : null;
    }
    return featureJson(features[i], ex, lastIndex, opts.predict === true);
  }, "the features");
  if (bar !== undefined) bar.finish();
  const skipped = ds.skipped + stats.skipped;
  process.stderr.write(`features: ${stats.examples} examples -> ${stats.features} features (max_length ${maxLength}, ` +
    `doc_stride ${docStride}), ${stats.answersLost} answers lost to truncation, ${skipped} skipped -> ${opts.out}\n`);
  console.log(JSON.stringify({ examples: stats.examples, features: stats.features, answers_lost: stats.answersLost, skipped, out: opts.out }));
}
