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
