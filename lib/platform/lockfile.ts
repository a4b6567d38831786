// The run folder's lock under Node: <dir>/.bertqa.lock holds {pid, hostname, command, started}. Created with O_EXCL,
// so of two runs starting together exactly one gets it; a lock whose process is gone (killed, crashed) is taken over
// with a note. (The browser's side is a Web Lock: browser.ts.)
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { userError, UserError } from "../errors";
import { asWriteError, ensureDir } from "../fsutil";
import { LOCK_FILE } from "./node";

export { LOCK_FILE };

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
