// A command writes only what it owns. Before any work: no output path may be an input path or another output's path,
// an output file may not be a folder (nor an output folder a file), and a folder that already holds something is not
// written into unless the user says so (HF's --overwrite-output-dir). While a run writes its folder it holds a lock
// file with its PID, so a second run refuses instead of interleaving its files with the first's.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { userError, UserError } from "./errors";
import { asWriteError, ensureDir } from "./fsutil";

/** A path a command reads or writes, with the flag that named it (for messages). */
export interface NamedPath { flag: string; path: string | undefined }

/** The same file or folder? Resolved, and through symlinks where the path exists. */
export function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    const abs = path.resolve(p);
    try { return fs.realpathSync(abs); } catch { return abs; }
  };
  return real(a) === real(b);
}

/**
 * Refuse, before any work, an output on an input's path, two outputs on one path, an output file that is a folder
 * and an output folder that is a file. `checkPaths("predict", [{flag: "--data", path: f.data}], [{flag: "--out", path: f.out}])`
 */
export function checkPaths(command: string, inputs: NamedPath[], files: NamedPath[], dirs: NamedPath[] = []): void {
  const outs = [...files, ...dirs].filter((o): o is { flag: string; path: string } => o.path !== undefined);
  for (const o of outs) {
    for (const i of inputs) {
      if (i.path !== undefined && samePath(o.path, i.path)) throw userError(`bertqa ${command}`, `${o.flag} ${o.path} is also the ${i.flag} input; writing it would destroy the input`, `give ${o.flag} another path`);
    }
  }
  outs.forEach((o, k) => {
    const twin = outs.slice(k + 1).find((p) => samePath(o.path, p.path));
    if (twin !== undefined) throw userError(`bertqa ${command}`, `${o.flag} and ${twin.flag} are the same path ${o.path}; the second would replace the first`, `give ${twin.flag} another path`);
  });
  for (const f of files) {
    if (f.path !== undefined && fs.existsSync(f.path) && fs.statSync(f.path).isDirectory()) throw userError(f.path, `is a folder, but ${f.flag} names the file to write`, `give a file name, e.g. ${path.join(f.path, "out.json")}`);
  }
  for (const d of dirs) {
    if (d.path !== undefined && fs.existsSync(d.path) && !fs.statSync(d.path).isDirectory()) throw userError(d.path, `is a file, but ${d.flag} names the folder to write`, "give the path of a new or empty folder");
  }
}

/** The entries of `dir` (none if it does not exist), without our lock file. */
export function dirEntries(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n !== LOCK_FILE).sort();
}

/** "a, b, c and 4 more" for messages. */
export function listNames(names: string[], max = 3): string {
  return names.length <= max ? names.join(", ") : `${names.slice(0, max).join(", ")} and ${names.length - max} more`;
}

/**
 * A folder to fill with a command's own files (`own` says which, for the message): refused when it holds anything,
 * unless `overwrite`; the command then replaces only its own names and leaves everything else. (`convert --out`.)
 */
export function checkOutputDir(dir: string, flag: string, overwrite: boolean, own: string): void {
  const entries = dirEntries(dir);
  if (entries.length === 0 || overwrite) return;
  throw userError(dir, `is not empty (${listNames(entries)})`, `choose a new or empty ${flag}, or pass --overwrite-output-dir to replace only ${own} there and keep the rest`);
}

// ---------------------------------------------------------------------------------------------------------------
// The lock: <dir>/.bertqa.lock holds {pid, hostname, command, started}. Created with O_EXCL, so of two runs starting
// together exactly one gets it; a lock whose process is gone (killed, crashed) is taken over with a note.

export const LOCK_FILE = ".bertqa.lock";

export interface DirLock { file: string; release(): void }
interface LockInfo { pid: number; hostname: string; command: string; started: string }

/** PIDs holding a lock in this process (a notebook kernel running two trainings at once is refused as well). */
const heldHere = new Set<string>();

/** Take the lock of `dir` for `purpose` (e.g. "training"), or refuse in one line naming the PID that holds it. */
export function lockDir(dir: string, purpose: string, note: (m: string) => void = (m) => process.stderr.write(m + "\n")): DirLock {
  ensureDir(dir, "the output folder");
  const file = path.join(dir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, hostname: os.hostname(), command: process.argv.slice(1).map((a) => path.basename(a)).join(" ").slice(0, 200), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, "wx");
      try { fs.writeSync(fd, JSON.stringify(mine) + "\n"); } finally { fs.closeSync(fd); }
      return holdLock(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw asWriteError(e, file, "the lock file");
    }
    const holder = readLock(file);
    if (holder !== undefined) refuseIfHeld(dir, file, holder, mine, purpose);
    // The holder is gone (or the file was cut short as it died): move it aside (only one taker wins), then retry.
    const aside = `${file}.stale-${process.pid}`;
    try { fs.renameSync(file, aside); } catch { continue; } // someone else moved it first: try again
    fs.rmSync(aside, { force: true });
    note(`note: ${dir}: took over the lock of ${holder !== undefined ? `PID ${holder.pid}, which is no longer running` : "a run that died while taking it"}`);
  }
  throw userError(dir, "another run keeps taking the lock of this folder", "wait for it to end, or choose another output folder");
}

function readLock(file: string): LockInfo | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(file, "utf8")) as LockInfo;
    return Number.isInteger(info.pid) ? info : undefined;
  } catch {
    return undefined;
  }
}

function refuseIfHeld(dir: string, file: string, holder: LockInfo, mine: LockInfo, purpose: string): void {
  const since = `since ${holder.started}`;
  if (holder.hostname !== mine.hostname) {
    throw userError(dir, `is being written by PID ${holder.pid} on ${holder.hostname} (${since})`, `wait for it to end; if it is gone, delete ${file}`);
  }
  if (holder.pid === mine.pid || heldHere.has(file)) {
    throw userError(dir, `is already being written by this process (PID ${holder.pid}, ${since}): another ${purpose} run in this program or notebook kernel`, "wait for it to finish or stop it, or choose another output folder");
  }
  if (pidAlive(holder.pid)) {
    throw userError(dir, `is being written by another ${purpose} run (PID ${holder.pid}, ${since})`, `wait for it to end, stop it with kill ${holder.pid}, or choose another output folder`);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

function holdLock(file: string): DirLock {
  heldHere.add(file);
  const release = () => {
    process.removeListener("exit", release);
    if (!heldHere.delete(file)) return;
    if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
  process.on("exit", release); // process.exit() (a second Ctrl-C, a reported error) skips finally blocks
  return { file, release };
}

/** For tests and tools: is `e` the refusal of a held lock? */
export function isLockRefusal(e: unknown): boolean {
  return e instanceof UserError && /is (already )?being written by/.test(e.message);
}
