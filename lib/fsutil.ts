// Long work must never leave a half-written file: write to a temporary name beside the target, then rename (atomic on
// one filesystem). A write the environment refuses (disk full, read-only, no permission, something in the way) is a
// WriteError: one line naming the path, what was being written and its size; the temporary file is removed.
import { crashNow, createHash, env, fs, path, persist, pid } from "./platform";
import { excerpt, userError, UserError } from "./errors";

/** Error codes that mean the environment refused a write (not a bug), with what they mean and the way out. */
const REFUSALS: Record<string, { reason: string; fix: string }> = {
  ENOSPC: { reason: "no space left on the device", fix: "free some space or write to another disk" },
  EDQUOT: { reason: "disk quota exceeded", fix: "free some space or write to another disk" },
  EROFS: { reason: "the file system is read-only", fix: "choose a folder you can write to" },
  EACCES: { reason: "permission denied", fix: "choose a folder you can write to" },
  EPERM: { reason: "operation not permitted", fix: "choose a folder you can write to" },
  EISDIR: { reason: "a folder is in the way", fix: "move it away or choose another path" },
  EEXIST: { reason: "a file is in the way", fix: "move it away or choose another path" },
  ENOTDIR: { reason: "a file is in the way of a folder on the path", fix: "move it away or choose another path" },
  ENAMETOOLONG: { reason: "the path is too long", fix: "choose a shorter path" },
  EIO: { reason: "input/output error", fix: "check the disk" },
};

/** A write the environment refused; `message` is the user's one line, the fields let callers add what is kept. */
export class WriteError extends UserError {
  /** `said`: what the refusal itself said, where it says more than its code (a browser's storage quota and its use). */
  constructor(readonly file: string, readonly what: string, readonly bytes: number | undefined, readonly code: string, readonly said: { reason?: string; fix?: string } = {}) {
    super("");
    this.message = `${file}: cannot write ${what}${bytes !== undefined ? ` (${formatBytes(bytes)})` : ""}: ${this.reason} [${code}] (${this.fix})`;
  }
  /** The same line with what is kept (e.g. "the last checkpoint (step 40) ... is intact") and more of the fix. */
  withNote(note: string, moreFix = ""): UserError {
    const size = this.bytes !== undefined ? ` (${formatBytes(this.bytes)})` : "";
    return new UserError(`${this.file}: cannot write ${this.what}${size}: ${this.reason} [${this.code}]; ${note} (${this.fix}${moreFix})`);
  }
  get reason(): string { return this.said.reason ?? REFUSALS[this.code].reason; }
  get fix(): string { return this.said.fix ?? REFUSALS[this.code].fix; }
}

export function isWriteError(e: unknown): e is WriteError {
  return e instanceof WriteError;
}

/** "812 B", "48.2 kB", "1.3 MB" (decimal units, as `ls -h --si` and file managers show). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n, u = -1;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** An environmental refusal becomes a WriteError about `file`; anything else (a bug) passes through unchanged. */
export function asWriteError(e: unknown, file: string, what: string, bytes?: number): unknown {
  if (e instanceof WriteError) return e.bytes === undefined && bytes !== undefined ? new WriteError(e.file, what, bytes, e.code, e.said) : e;
  if (!(e instanceof Error)) return e;
  const { code, reason, fix } = e as Error & { code?: string; reason?: string; fix?: string };
  return code !== undefined && REFUSALS[code] !== undefined ? new WriteError(file, what, bytes, code, { reason, fix }) : e;
}

// ---------------------------------------------------------------------------------------------------------------
// Fault injection: tests (and BERTQA_FAULT for child processes) make the library's own writes fail after N bytes or
// stop the process at a named point, e.g. between the two renames of a checkpoint swap. No root, no full disk needed.

export type FaultEvent = { kind: "write"; file: string; offset: number; bytes: number } | { kind: "point"; name: string; file: string };
export type FaultHook = (event: FaultEvent) => void;

let faultHook: FaultHook | undefined = faultFromSpec(env.BERTQA_FAULT);

/** Install (or with undefined remove) the hook called before every chunk written and at every named point. */
export function setFaultHook(hook: FaultHook | undefined): void {
  faultHook = hook;
}

/** A named moment inside a multi-step write ("checkpoint-swap" ...), where a fault hook may stop the process. */
export function faultPoint(name: string, file: string): void {
  faultHook?.({ kind: "point", name, file });
}

/** An fs-style error, as the kernel would report it. */
export function injectedError(code: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault, write '${file}'`), { code, path: file, syscall: "write" });
}

/**
 * BERTQA_FAULT="<CODE>@<bytes>": the write that passes <bytes> bytes (counted over the process) fails with <CODE>
 * (ENOSPC, EROFS ...); "kill@<point>[#n]": SIGKILL at the n-th (default 1st) time the named point is reached.
 */
export function faultFromSpec(spec: string | undefined): FaultHook | undefined {
  if (spec === undefined || spec === "") return undefined;
  const m = /^(kill|[A-Z]+)@([\w.-]+)(?:#(\d+))?$/.exec(spec);
  if (m === null) throw new UserError(`BERTQA_FAULT: cannot read '${spec}' (use CODE@BYTES, e.g. ENOSPC@100000, or kill@POINT[#N])`);
  const [, action, where, nth] = m;
  if (action === "kill") {
    let seen = 0;
    return (e) => {
      if (e.kind === "point" && e.name === where && ++seen === Number(nth ?? 1)) crashNow();
    };
  }
  let total = 0;
  const limit = Number(where);
  return (e) => {
    if (e.kind !== "write") return;
    if (total + e.bytes > limit) throw injectedError(action, e.file);
    total += e.bytes;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Writers.

const CHUNK = 1 << 16; // 64 kB per write call: a fault hook can stop a file part-way, as a full disk does

/** `dir` and its parents; a refusal names the deepest folder that exists and why it cannot be written. */
export function ensureDir(dir: string, what = "a folder"): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    // mkdir -p under a read-only folder can report ENOENT; the cause is the deepest existing ancestor.
    let up = path.resolve(dir);
    while (!fs.existsSync(up) && path.dirname(up) !== up) up = path.dirname(up);
    let cause: unknown = e;
    if (fs.existsSync(up) && !fs.statSync(up).isDirectory()) cause = Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    else {
      try { fs.accessSync(up, fs.constants.W_OK); } catch (denied) { cause = denied; }
    }
    throw asWriteError(cause, path.resolve(dir) === up ? dir : `${dir} (in ${up})`, what);
  }
}

/** A temporary name beside `file`: same folder (so the rename is atomic), unique per process and call. */
export function tmpName(file: string): string {
  return `${file}.tmp-${pid}-${Date.now()}-${(tmpCounter++).toString(36)}`;
}
let tmpCounter = 0;

/** Remove a temporary file or folder after a failure; the failure is what gets reported, not this. */
export function discard(p: string): void {
  try { fs.rmSync(p, { recursive: true, force: true }); } catch { /* e.g. a name too long to even stat */ }
}

/** Rename with the fault hook's "rename" point and a WriteError naming the target. */
export function renameOrFail(from: string, to: string, what: string): void {
  try {
    faultPoint("rename", to);
    fs.renameSync(from, to);
  } catch (e) {
    throw asWriteError(e, to, what);
  }
}

function writeChunks(fd: number, file: string, data: Uint8Array, offset: number): number {
  for (let at = 0; at < data.byteLength; at += CHUNK) {
    const part = data.subarray(at, Math.min(at + CHUNK, data.byteLength));
    faultHook?.({ kind: "write", file, offset: offset + at, bytes: part.byteLength });
    let done = 0;
    while (done < part.byteLength) done += fs.writeSync(fd, part, done);
  }
  return offset + data.byteLength;
}

const utf8 = new TextEncoder();

function bytesOf(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? utf8.encode(data) : data;
}

/** What a file is, for messages, from its name (callers may say it better). */
export function describeFile(file: string): string {
  const known: Record<string, string> = {
    "model.safetensors": "the model weights", "optimizer.safetensors": "the optimizer state", "trainer_state.json": "the trainer state",
    "config.json": "the model config", "metrics.jsonl": "the metrics log", "eval.json": "the evaluation scores", "loss.svg": "the loss curve",
  };
  return known[path.basename(file)] ?? path.basename(file);
}

/** Wait until storage holds what was written (a browser's storage catches up after the calls return; on disk the
 * writes are there already). A refusal since (a full quota) is a WriteError about `what`, or the file it names. */
export async function persisted(what: string, file: string): Promise<void> {
  try {
    await persist();
  } catch (e) {
    const at = e as { path?: string; bytes?: number };
    throw asWriteError(e, at.path ?? file, what, at.bytes);
  }
}

/** Write `data` to `file` through a temporary file and a rename; nothing is left behind if it fails. */
export function writeFileAtomic(file: string, data: string | Uint8Array, what = describeFile(file)): void {
  const bytes = bytesOf(data);
  ensureDir(path.dirname(path.resolve(file)));
  const tmp = tmpName(file);
  try {
    const fd = fs.openSync(tmp, "w");
    try { writeChunks(fd, file, bytes, 0); } finally { fs.closeSync(fd); }
    renameOrFail(tmp, file, what);
  } catch (e) {
    discard(tmp);
    throw asWriteError(e, file, what, bytes.byteLength);
  }
}

/** Write lines to `file` through a temporary file renamed at the end, so a failed run leaves no half-written output. */
export function writeLinesAtomic(file: string, count: number, line: (i: number) => string, what = describeFile(file)): void {
  ensureDir(path.dirname(path.resolve(file)));
  const tmp = tmpName(file);
  let written = 0;
  try {
    const fd = fs.openSync(tmp, "w");
    try {
      let chunk: string[] = [], size = 0;
      for (let i = 0; i < count; i++) {
        const l = line(i) + "\n";
        chunk.push(l);
        size += l.length;
        if (size > 1 << 20) { // ~1 MB writes: one huge string could exceed V8's string limit on SQuAD-sized output
          written = writeChunks(fd, file, utf8.encode(chunk.join("")), written);
          chunk = [];
          size = 0;
        }
      }
      written = writeChunks(fd, file, utf8.encode(chunk.join("")), written);
    } finally {
      fs.closeSync(fd);
    }
    renameOrFail(tmp, file, what);
  } catch (e) {
    discard(tmp);
    throw asWriteError(e, file, `${what} (failed after ${formatBytes(written)})`);
  }
}

export function writeJsonAtomic(file: string, value: unknown, what = describeFile(file)): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n", what);
}

/** Append one line (a log); a refusal is a WriteError. A line cut short by a crash is dropped by the reader. */
export function appendLine(file: string, line: string, what = describeFile(file)): void {
  const bytes = utf8.encode(line + "\n");
  try {
    const fd = fs.openSync(file, "a");
    try { writeChunks(fd, file, bytes, fs.fstatSync(fd).size); } finally { fs.closeSync(fd); }
  } catch (e) {
    throw asWriteError(e, file, what, bytes.byteLength);
  }
}

/** Fill a fresh temporary directory with `fill`, then swap it in for `dir` (the old one is removed only afterwards). */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void, what = `the folder ${path.basename(dir)}`): void {
  const abs = path.resolve(dir);
  ensureDir(path.dirname(abs));
  const tmp = tmpName(abs);
  try {
    fs.mkdirSync(tmp);
    fill(tmp);
  } catch (e) {
    discard(tmp); // the old directory stays as it was
    throw asWriteError(e, dir, what);
  }
  const old = `${abs}.old-${pid}-${Date.now()}`;
  if (fs.existsSync(abs)) renameOrFail(abs, old, what);
  try {
    renameOrFail(tmp, abs, what);
  } catch (e) {
    if (fs.existsSync(old)) fs.renameSync(old, abs); // put the old one back
    discard(tmp);
    throw e;
  }
  fs.rmSync(old, { recursive: true, force: true });
}

/** The hex digest of a file's bytes (after `prefix`, as git's blob ids hash "blob <size>\0" first), read in 1 MB parts. */
export function fileDigest(file: string, algorithm: "sha256" | "sha1", prefix = ""): string {
  const hash = createHash(algorithm).update(prefix);
  const fd = fs.openSync(file, "r"), part = new Uint8Array(1 << 20);
  try {
    for (let n = fs.readSync(fd, part, 0, part.length, null); n > 0; n = fs.readSync(fd, part, 0, part.length, null)) hash.update(part.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/** Total size of the files under `p`, for messages. */
export function sizeOf(p: string): number {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((n, f) => n + sizeOf(path.join(p, f)), 0);
}

/**
 * Bytes -> text, refusing bytes that are not UTF-8 (Python's open(...).read() and json.load refuse them too) instead
 * of turning them into U+FFFD. The error names the byte and its offset: `decodeUtf8(fs.readFileSync(f), f)`.
 */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    const byte = bytes[at]?.toString(16).toUpperCase().padStart(2, "0") ?? "end of file";
    throw userError(file, `is not valid UTF-8: byte 0x${byte} at offset ${at} (line ${line})`, "save it as UTF-8; it may be Latin-1 or binary");
  }
}

/** Offset of the first byte that starts an invalid or truncated UTF-8 sequence (Python's "position"), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length;) {
    const c = b[i];
    if (c < 0x80) { i++; continue; }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (n === 0 || i + n >= b.length) return i; // not a lead byte, or the sequence is cut off by the end of the file
    // Second-byte limits exclude overlong forms, surrogates and code points above U+10FFFF (RFC 3629).
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80, hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    if (b[i + 1] < lo || b[i + 1] > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}

/**
 * JSON.parse with an error that names the file and the line:column of the problem and quotes at most a short,
 * escaped excerpt there (V8's own message can echo the raw input: NULs, newlines, megabytes).
 */
export function parseJsonText(raw: string, file: string, what = "malformed JSON"): unknown {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = jsonErrorPosition(text, msg);
    const reason = /Unexpected end of JSON input/.test(msg) || pos >= text.length ? "the text ends too early"
      : `unexpected ${excerpt(text.slice(pos, pos + 20))}`;
    throw userError(file, `${what} at ${lineColumn(text, pos)}: ${reason}`, "the file is damaged or not JSON; download it again");
  }
}

/** Where JSON.parse failed: V8's "position N" when it gives one, else the shortest prefix that fails before its end. */
function jsonErrorPosition(text: string, msg: string): number {
  const m = /position (\d+)/.exec(msg);
  if (m !== null) return Number(m[1]);
  if (/Unexpected end of JSON input/.test(msg)) return text.length;
  const failsInside = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return false;
    } catch (e) {
      const em = (e as Error).message, p = /position (\d+)/.exec(em);
      return !/Unexpected end of JSON input/.test(em) && (p === null || Number(p[1]) < n);
    }
  };
  let lo = 0, hi = text.length; // invariant: the prefix of length hi fails inside; binary search for the shortest one
  while (lo + 1 < hi) {
    const mid = (lo + hi) >>> 1;
    if (failsInside(mid)) hi = mid;
    else lo = mid;
  }
  return hi - 1;
}

function lineColumn(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split("\n").length;
  return `line ${line}, column ${pos - before.lastIndexOf("\n")}`;
}
