// Long work must never leave a half-written file: write to a temporary name beside the target, then rename (atomic on
// one filesystem).
import * as fs from "node:fs";
import * as path from "node:path";
import { excerpt, userError } from "./errors";

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Write lines to `file` through a temporary file renamed at the end, so a failed run leaves no half-written output. */
export function writeLinesAtomic(file: string, count: number, line: (i: number) => string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, "w");
  try {
    let chunk: string[] = [], size = 0;
    for (let i = 0; i < count; i++) {
      const l = line(i) + "\n";
      chunk.push(l);
      size += l.length;
      if (size > 1 << 20) { // ~1 MB writes: one huge string could exceed V8's string limit on SQuAD-sized output
        fs.writeSync(fd, chunk.join(""));
        chunk = [];
        size = 0;
      }
    }
    fs.writeSync(fd, chunk.join(""));
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

/** Fill a fresh temporary directory with `fill`, then swap it in for `dir` (the old one is removed only afterwards). */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void): void {
  const abs = path.resolve(dir);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = `${abs}.tmp-${process.pid}-${Date.now()}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    fill(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true }); // the old directory stays as it was
    throw e;
  }
  const old = `${abs}.old-${process.pid}-${Date.now()}`;
  if (fs.existsSync(abs)) fs.renameSync(abs, old);
  fs.renameSync(tmp, abs);
  fs.rmSync(old, { recursive: true, force: true });
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
