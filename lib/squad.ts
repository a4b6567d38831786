// Typed loading of SQuAD v1.1 / v2.0 and CMRC2018 files (same JSON layout), flattened to one record per question.
// Every answer_start leaves this module as a JS string index (UTF-16 code units), checked against the context.
import { fs } from "./platform";
import { excerpt, isUserError, userError } from "./errors";
import { decodeUtf8, parseJsonText } from "./fsutil";
export { parseJsonText } from "./fsutil"; // evaluate and the notebooks import it from here

export interface SquadAnswer {
  text: string;
  answer_start: number; // UTF-16 index after load (the file counts Unicode code points)
}
export interface QAExample {
  id: string;
  title: string;
  context: string;
  question: string;
  answers: SquadAnswer[];
  is_impossible: boolean;
  plausible_answers?: SquadAnswer[];
}
export interface SquadDataset {
  file: string;
  version: string;
  examples: QAExample[];
  skipped: number; // examples left out because of skipInvalid (each one was reported through warn)
  skippedIds: string[]; // their ids, where they had one
  corrected: number; // answer_start values moved by at most MAX_START_SHIFT to where the answer text really is
}
export interface LoadOptions {
  skipInvalid?: boolean;
  warn?: (msg: string) => void;
  // Scoring and prediction read only answer texts, as the official scripts do: with false, answer_start is not checked
  // (real CMRC2018 dev has answers outside their context, and every question still counts in the score).
  checkAnswerStarts?: boolean;
  // Prediction (run_qa.py --do_predict): gold answers are not read at all, so unlabelled questions load (answers: []).
  ignoreAnswers?: boolean;
}

/** Known SQuAD 2.0 quirk: a few answer_start values are off by one or two characters. */
export const MAX_START_SHIFT = 2;
/** What is wrong with one question, and how to fix it. */
interface Problem {
  what: string;
  fix: string;
}
const bad = (what: string, fix: string): Problem => ({ what, fix });

/**
 * Where `text` really starts near `start`: `start` itself, else the nearest offset within ±MAX_START_SHIFT
 * (nearer first, earlier first on ties), else undefined. `locateAnswer("a cat", "cat", 1) === 2`.
 */
export function locateAnswer(context: string, text: string, start: number): number | undefined {
  if (text.length === 0 || !Number.isInteger(start)) return undefined; // 42.5 would be cut to 42 by startsWith
  for (let d = 0; d <= MAX_START_SHIFT; d++) {
    for (const s of d === 0 ? [start] : [start - d, start + d]) {
      if (s >= 0 && context.startsWith(text, s)) return s;
    }
  }
  return undefined;
}

/** Read and validate a SQuAD-style JSON file. `loadSquad("data/squad-sample-dev.json").examples[0].question` */
export function loadSquad(file: string, opts: LoadOptions = {}): SquadDataset {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw userError(file, `cannot read file: ${(e as Error).message}`, "check the path");
  }
  return parseSquad(parseJsonText(decodeUtf8(bytes, file), file), file, opts);
}

/** Validate parsed SQuAD v1.1 / v2.0 / CMRC2018 JSON and flatten it. Bad examples throw unless skipInvalid. */
export function parseSquad(json: unknown, file: string, opts: LoadOptions = {}): SquadDataset {
  const shapeFix = "expected SQuAD layout {version, data:[{title, paragraphs:[{context, qas:[{id, question, answers}]}]}]}";
  if (!isObject(json) || !Array.isArray(json.data)) {
    throw userError(file, 'not a SQuAD-style file: missing top-level "data" array', shapeFix);
  }
  const out: SquadDataset = { file, version: versionOf(json), examples: [], skipped: 0, skippedIds: [], corrected: 0 };
  const seen = new Set<string>();
  json.data.forEach((article: unknown, a: number) => {
    if (!isObject(article) || !Array.isArray(article.paragraphs)) {
      throw userError(file, `not a SQuAD-style file: data[${a}] is missing "paragraphs"`, shapeFix);
    }
    const title = typeof article.title === "string" ? article.title : ""; // CMRC2018 files may omit it
    article.paragraphs.forEach((para: unknown, p: number) => {
      const where = `data[${a}].paragraphs[${p}]`;
      if (!isObject(para) || typeof para.context !== "string") {
        throw userError(file, `not a SQuAD-style file: ${where} is missing "context"`, shapeFix);
      }
      if (!Array.isArray(para.qas)) throw userError(file, `not a SQuAD-style file: ${where} is missing "qas"`, shapeFix);
      const toUtf16 = codePointToUtf16(para.context);
      para.qas.forEach((qa: unknown, q: number) => {
        const ex = checkExample(qa, `${where}.qas[${q}]`, title, para.context as string, toUtf16, seen, out, opts.checkAnswerStarts !== false, opts.ignoreAnswers === true);
        if ("what" in ex) {
          if (!opts.skipInvalid) throw userError(file, ex.what, `${ex.fix}, or pass --skip-invalid`);
          out.skipped++;
          if (isObject(qa) && (typeof qa.id === "string" || typeof qa.id === "number")) out.skippedIds.push(String(qa.id));
          opts.warn?.(`${file}: skipped ${ex.what}`);
        } else {
          out.examples.push(ex);
        }
      });
    });
  });
  return out;
}

function versionOf(json: Record<string, unknown>): string {
  if (typeof json.version === "string") return json.version;
  return typeof json.version === "number" ? String(json.version) : "unknown"; // CMRC2018 files may omit it
}

/** One question: the QAExample, or a sentence saying what is wrong with it (naming its id). */
function checkExample(qa: unknown, where: string, title: string, context: string, toUtf16: (cp: number) => number,
  seen: Set<string>, out: SquadDataset, checkStarts: boolean, ignoreAnswers = false): QAExample | Problem {
  if (!isObject(qa)) return bad(`${where}: not an object`, "each entry of qas must be {id, question, answers}");
  if (typeof qa.id !== "string" && typeof qa.id !== "number") return bad(`${where}: no "id"`, "give every question an id");
  const id = String(qa.id);
  if (seen.has(id)) return bad(`example ${id}: duplicate id`, "make ids unique");
  seen.add(id);
  if (context.trim() === "") return bad(`example ${id}: empty context`, "fill in the paragraph's context");
  if (typeof qa.question !== "string" || qa.question.trim() === "") {
    return bad(`example ${id}: empty question`, "fill in the question");
  }
  const isImpossible = qa.is_impossible === true;
  if (ignoreAnswers) return { id, title, context, question: qa.question, answers: [], is_impossible: isImpossible };
  const answers = checkAnswers(qa.answers, "answers", id, context, toUtf16, out, checkStarts);
  if ("what" in answers) return answers;
  if (!isImpossible && answers.length === 0) {
    return bad(`example ${id}: answerable question has no answers`, 'add an answer, or set "is_impossible": true (SQuAD 2.0)');
  }
  const ex: QAExample = { id, title, context, question: qa.question, answers, is_impossible: isImpossible };
  if (qa.plausible_answers !== undefined) {
    const plausible = checkAnswers(qa.plausible_answers, "plausible_answers", id, context, toUtf16, out, checkStarts);
    if ("what" in plausible) return plausible;
    ex.plausible_answers = plausible;
  }
  return ex;
}

function checkAnswers(list: unknown, key: string, id: string, context: string, toUtf16: (cp: number) => number,
  out: SquadDataset, checkStarts: boolean): SquadAnswer[] | Problem {
  if (list === undefined) return [];
  if (!Array.isArray(list)) return bad(`example ${id}: "${key}" is not a list`, `make "${key}" a list of {text, answer_start}`);
  const answers: SquadAnswer[] = [];
  for (const ans of list) {
    if (!isObject(ans) || typeof ans.text !== "string" || typeof ans.answer_start !== "number") {
      return bad(`example ${id}: an entry of "${key}" lacks "text" or a numeric "answer_start"`, "write answers as {text, answer_start}");
    }
    if (checkStarts && !Number.isInteger(ans.answer_start)) {
      return bad(`example ${id}: answer_start ${ans.answer_start} of ${excerpt(ans.text)} is not an integer`, "write answer_start as a whole number of characters from the start of the context");
    }
    if (ans.text === "") return bad(`example ${id}: empty answer text in "${key}"`, "fill in the answer text");
    if (!checkStarts) {
      answers.push({ text: ans.text, answer_start: ans.answer_start >= 0 ? toUtf16(ans.answer_start) : ans.answer_start });
      continue;
    }
    const given = toUtf16(ans.answer_start);
    const start = locateAnswer(context, ans.text, given);
    if (start === undefined) {
      const found = context.slice(Math.max(0, given), Math.max(0, given) + ans.text.length);
      return bad(`example ${id}: answer ${JSON.stringify(ans.text)} is not at answer_start ${ans.answer_start} ` +
        `(the context has ${JSON.stringify(found)} there)`, "correct answer_start");
    }
    if (start !== given) out.corrected++;
    answers.push({ text: ans.text, answer_start: start });
  }
  return answers;
}

/** Map a code-point index (Python's str index) to a UTF-16 index; identity when the text has no astral characters. */
export function codePointToUtf16(text: string): (cp: number) => number {
  if (!/[\uD800-\uDFFF]/.test(text)) return (cp) => cp;
  const units: number[] = [];
  let u = 0;
  for (const ch of text) {
    units.push(u);
    u += ch.length;
  }
  units.push(u);
  return (cp) => (cp >= 0 && cp < units.length ? units[cp] : cp + (u - (units.length - 1)));
}

/** The inverse, for files written for Python parity: index[u] = code points in text.slice(0, u), u in 0..text.length. */
export function codePointIndex(text: string): Int32Array {
  const index = new Int32Array(text.length + 1);
  let cp = 0;
  for (let u = 0; u < text.length; u++) {
    index[u] = cp;
    const c = text.charCodeAt(u);
    const isHighSurrogate = c >= 0xd800 && c <= 0xdbff && u + 1 < text.length;
    const next = isHighSurrogate ? text.charCodeAt(u + 1) : 0;
    if (isHighSurrogate && next >= 0xdc00 && next <= 0xdfff) index[++u] = cp; // inside a pair: same code point
    cp++;
  }
  index[text.length] = cp;
  return index;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---- text,label CSV (RFC 4180) ----

/** Read a `text,label` CSV (header row required, RFC 4180 quoting). `readClassificationCsv("data/sentiment.csv")` */
export function readClassificationCsv(file: string): { text: string; label: string }[] {
  let raw: string;
  try {
    raw = decodeUtf8(fs.readFileSync(file), file);
  } catch (e) {
    if (isUserError(e)) throw e;
    throw userError(file, `cannot read file: ${(e as Error).message}`, "check the path");
  }
  const records = parseCsv(raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw, file);
  if (records.length === 0) throw userError(file, "empty CSV", 'add a header row "text,label" and data rows');
  const header = records[0].fields.map((h) => h.trim().toLowerCase());
  const ti = header.indexOf("text"), li = header.indexOf("label");
  if (ti < 0 || li < 0) {
    throw userError(`${file}:1`, `header must name columns "text" and "label", got ${JSON.stringify(records[0].fields)}`,
      'make the first line "text,label"');
  }
  return records.slice(1).map((r) => {
    if (r.fields.length !== header.length) {
      throw userError(`${file}:${r.line}`, `expected ${header.length} fields, found ${r.fields.length}`,
        "quote fields that contain commas, e.g. \"good, cheap\"");
    }
    if (r.fields[li].trim() === "") throw userError(`${file}:${r.line}`, "empty label", "give every row a label");
    return { text: r.fields[ti], label: r.fields[li].trim() };
  });
}

/** RFC 4180 records with the 1-based line each starts on; blank lines are ignored. */
export function parseCsv(text: string, file: string): { fields: string[]; line: number }[] {
  const records: { fields: string[]; line: number }[] = [];
  let fields: string[] = [], field = "", line = 1, recordLine = 1, i = 0, quoted = false, quoteLine = 0;
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === "")) records.push({ fields, line: recordLine });
    fields = [];
    field = "";
  };
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') {
        const next = text[i + 1];
        if (next !== undefined && next !== "," && next !== "\n" && next !== "\r") {
          throw userError(`${file}:${line}`, "text after a closing quote", 'quote the whole field: "...", doubling inner quotes');
        }
        quoted = false;
        i++;
        continue;
      }
      if (c === "\n") line++;
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      if (field !== "") throw userError(`${file}:${line}`, "a quote inside an unquoted field", 'write the field as "..." and double inner quotes ("")');
      quoted = true;
      quoteLine = line;
    } else if (c === ",") {
      fields.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      endRecord();
      line++;
      recordLine = line;
    } else {
      field += c;
    }
    i++;
  }
  if (quoted) throw userError(`${file}:${quoteLine}`, "unterminated quoted field", 'close the field with a "');
  if (field !== "" || fields.length > 0) endRecord();
  return records;
}
