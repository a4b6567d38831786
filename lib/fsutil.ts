// Long work must never leave a half-written file: write to a temporary name beside the target, then rename (atomic on
// one filesystem).
import * as fs from "node:fs";
import * as path from "node:path";

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
