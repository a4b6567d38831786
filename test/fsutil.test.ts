// Writes that never lose a file: a write the environment refuses (full disk, read-only, a folder or file in the way,
// a name too long) is one WriteError naming the path, what was written and its size; the old file stays byte for
// byte and no temporary file is left. Faults come from the library's own hook, so no root and no full disk are needed.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  appendLine, ensureDir, faultFromSpec, formatBytes, injectedError, isWriteError, setFaultHook, writeDirAtomic,
  writeFileAtomic, writeLinesAtomic, decodeUtf8, firstInvalidUtf8, type FaultEvent,
} from "../lib/fsutil";
import { isUserError } from "../lib/errors";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-fsutil-"));
afterEach(() => setFaultHook(undefined));

/** Fail the write that passes `limit` bytes with `code`, as a full disk (or a read-only remount) would. */
function failAfter(limit: number, code: string): void {
  let total = 0;
  setFaultHook((e: FaultEvent) => {
    if (e.kind !== "write") return;
    if (total + e.bytes > limit) throw injectedError(code, e.file);
    total += e.bytes;
  });
}

function thrown(f: () => void): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  assert.fail("expected an error");
}

test("a write refused part-way (every environmental code) is one line with path, what and size; the old file is intact, no temp file", () => {
  const dir = tmp();
  const file = path.join(dir, "model.safetensors");
  fs.writeFileSync(file, "the previous weights");
  const data = new Uint8Array(300_000).fill(7); // 5 chunks of 64 kB: the fault lands after 2
  for (const code of ["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EISDIR", "EEXIST", "ENOTDIR", "ENAMETOOLONG", "EIO"]) {
    failAfter(150_000, code);
    const e = thrown(() => writeFileAtomic(file, data));
    assert.ok(isWriteError(e), `${code}: ${e.message}`);
    assert.match(e.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: cannot write the model weights \\(300\\.0 kB\\): .+ \\[${code}\\] \\(.+\\)$`));
    assert.ok(!e.message.includes("\n"), "one line");
    assert.equal(fs.readFileSync(file, "utf8"), "the previous weights", `${code}: old file unchanged`);
    assert.deepEqual(fs.readdirSync(dir), ["model.safetensors"], `${code}: no temp file left`);
  }
  setFaultHook(undefined);
  writeFileAtomic(file, data);
  assert.deepEqual(new Uint8Array(fs.readFileSync(file)), data, "without a fault the whole file is written");
});

test("real refusals without root: a folder in the way (EISDIR), a file in the way (ENOTDIR), a name too long", () => {
  const dir = tmp();
  fs.mkdirSync(path.join(dir, "preds.json"));
  assert.match(thrown(() => writeFileAtomic(path.join(dir, "preds.json"), "{}", "the predictions")).message, /preds\.json: cannot write the predictions \(2 B\): a folder is in the way \[EISDIR\]/);
  fs.writeFileSync(path.join(dir, "afile"), "x");
  const under = thrown(() => writeFileAtomic(path.join(dir, "afile", "sub", "x.json"), "{}"));
  assert.ok(isWriteError(under), under.message);
  assert.match(under.message, /afile.*\[ENOTDIR\]/);
  assert.match(thrown(() => ensureDir(path.join(dir, "afile", "deeper"))).message, /\[ENOTDIR\]/);
  const long = thrown(() => writeFileAtomic(path.join(dir, "n".repeat(300) + ".json"), "{}"));
  assert.match(long.message, /the path is too long \[ENAMETOOLONG\]/);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["afile", "preds.json"], "no temp file left");
});

test("writeLinesAtomic and writeDirAtomic: a failure part-way leaves the old output and no temp file; appendLine says which log", () => {
  const dir = tmp();
  const out = path.join(dir, "features.jsonl");
  fs.writeFileSync(out, "old\n");
  failAfter(1000, "ENOSPC");
  const e = thrown(() => writeLinesAtomic(out, 100_000, (i) => JSON.stringify({ i, pad: "x".repeat(20) }), "the features"));
  assert.match(e.message, /features\.jsonl: cannot write the features \(failed after .*\): no space left on the device \[ENOSPC\]/);
  assert.equal(fs.readFileSync(out, "utf8"), "old\n");
  const folder = path.join(dir, "tok");
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, "vocab.txt"), "old");
  assert.ok(isWriteError(thrown(() => writeDirAtomic(folder, (t) => writeFileAtomic(path.join(t, "vocab.txt"), "y".repeat(5000))))));
  assert.equal(fs.readFileSync(path.join(folder, "vocab.txt"), "utf8"), "old");
  assert.match(thrown(() => appendLine(path.join(dir, "metrics.jsonl"), "z".repeat(2000))).message, /metrics\.jsonl: cannot write the metrics log \(2\.0 kB\)/);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["features.jsonl", "metrics.jsonl", "tok"], "no temp file left (the log itself is appended in place)");
});

test("BERTQA_FAULT specs: CODE@BYTES fails the write passing that many bytes, kill@POINT#N is recognised, nonsense is one line", () => {
  const hook = faultFromSpec("EROFS@100")!;
  hook({ kind: "write", file: "a", offset: 0, bytes: 60 });
  assert.throws(() => hook({ kind: "write", file: "a", offset: 60, bytes: 60 }), (e: NodeJS.ErrnoException) => e.code === "EROFS");
  assert.equal(typeof faultFromSpec("kill@checkpoint-swap#2"), "function");
  assert.equal(faultFromSpec(""), undefined);
  assert.throws(() => faultFromSpec("full disk"), /BERTQA_FAULT: cannot read 'full disk'/);
  assert.deepEqual([formatBytes(812), formatBytes(48_200), formatBytes(1_300_000_000)], ["812 B", "48.2 kB", "1.3 GB"]);
});

// Reading text as Python does: bytes that are not UTF-8 are an error with the offset Python reports, never U+FFFD.
// Reference: Python 3's bytes.decode("utf-8") -> UnicodeDecodeError.start (computed once, listed with its reason).
const CASES: [string, string, number][] = [
  ["7b2261223a2022636166e9227d", "invalid continuation byte (Latin-1 é)", 10],
  ["6162806364", "invalid start byte", 2],
  ["78c0af79", "invalid start byte (overlong)", 1],
  ["7879eda080", "invalid continuation byte (surrogate)", 2],
  ["616263e282", "unexpected end of data", 3],
  ["f4908080", "invalid continuation byte (above U+10FFFF)", 0],
  ["c3a9f09f9880ff", "invalid start byte after valid é and 😀", 6],
  ["e28278", "invalid continuation byte", 0],
  ["61e08080", "invalid continuation byte (overlong 3-byte form)", 1],
  ["f08f8080", "invalid continuation byte (overlong 4-byte form)", 0],
];

test("firstInvalidUtf8 reports the offsets Python's UnicodeDecodeError.start reports", () => {
  for (const [hex, why, at] of CASES) assert.equal(firstInvalidUtf8(Buffer.from(hex, "hex")), at, why);
  assert.equal(firstInvalidUtf8(Buffer.from("plain, é, 😀, 中文", "utf8")), -1);
  assert.equal(firstInvalidUtf8(Buffer.from("e0a080", "hex")), -1); // U+0800, the smallest 3-byte character
});

test("decodeUtf8: text passes unchanged, anything else is one UserError naming the file, byte, offset and line", () => {
  assert.equal(decodeUtf8(Buffer.from("\ufeffé😀\n", "utf8"), "f"), "\ufeffé😀\n"); // the BOM is the caller's business
  assert.throws(() => decodeUtf8(Buffer.from("ok\nab\x80", "latin1"), "data.json"),
    (e: unknown) => isUserError(e) && (e as Error).message === "data.json: is not valid UTF-8: byte 0x80 at offset 5 (line 2) (save it as UTF-8; it may be Latin-1 or binary)");
});
