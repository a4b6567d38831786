// The platform under Node: the library's files, environment, signals and workers are Node's own.
import * as nodeFs from "node:fs";
import * as nodePath from "node:path";
import * as os from "node:os";
import { createHash as nodeCreateHash } from "node:crypto";
import type { FileSystem, FolderLock, Hash, NotebookDisplay, PathApi, TextStream } from "./types";

export type * from "./types";
export { allowRelaxedSimd, startPoolWorker, type PoolWorker } from "./node-workers";

export const platformName: "node" | "browser" = "node";
export const fs: FileSystem = nodeFs;
export const path: PathApi = nodePath;
/** The environment (settings such as BERTQA_CACHE, HF_TOKEN): process.env. */
export const env: Record<string, string | undefined> = process.env;

/** Where messages that are not results go (warnings, notes, the progress bar): stderr. */
export const stderr: TextStream = process.stderr;

export const pid = process.pid;
export const homedir = (): string => os.homedir();
export const cpuCount = (): number => os.availableParallelism?.() ?? os.cpus().length;
/** Resident memory of this process, in bytes. */
export const residentBytes = (): number => process.memoryUsage().rss;

/** Run `f` when the process exits (process.exit() skips finally blocks); returns the function that cancels it. */
export function onExit(f: () => void): () => void {
  process.on("exit", f);
  return () => void process.removeListener("exit", f);
}

/** Let pending events (a SIGINT handler, a notebook display, a worker's message) run before going on. */
export function yieldToEvents(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export function createHash(algorithm: "sha256" | "sha1"): Hash {
  return nodeCreateHash(algorithm) as unknown as Hash;
}

/** End this process at once, as a crash would (fault injection: BERTQA_FAULT=kill@POINT). */
export function crashNow(): never {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}

/** The lock file's name: lockfile.ts (loaded when first needed: it writes through fsutil, which imports this). */
export const LOCK_FILE = ".bertqa.lock";

/** Hold `dir` for one run: the lock file (lockfile.ts). */
export async function lockFolder(dir: string, purpose: string): Promise<FolderLock> {
  return (require("./lockfile") as typeof import("./lockfile")).lockDir(dir, purpose);
}

/** Symbolic links: the Hub cache links snapshots to blobs, as huggingface_hub does. */
export const symlinks: boolean = true;

/** tslab's display (the bertqa kernel is tslab), loaded only when a cell shows something. */
export function notebookDisplay(): NotebookDisplay {
  return require("tslab") as NotebookDisplay;
}

/** The text of a file of an installed package (plotly.js for charts). */
export function packageFileText(specifier: string): string {
  return nodeFs.readFileSync(require.resolve(specifier), "utf8");
}

/** Writes are in place once the call returns (a browser's storage catches up asynchronously: browser.ts). */
export async function persist(): Promise<void> {}

/** The repository's root, where data/ (the embedded sample) and test/fixtures/ are. */
export const repoRoot = nodePath.resolve(__dirname, "..", "..");

/** CPU time this process has used, all threads, in microseconds (undefined where the platform does not say). */
export const cpuTimeUs = (): number | undefined => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
/** The process's peak resident memory in bytes (getrusage's maxrss; undefined where the platform does not say). */
export const peakResidentBytes = (): number | undefined => process.resourceUsage().maxRSS * 1024;
