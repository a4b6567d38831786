// The platform in a browser: the library runs in a dedicated Web Worker (a notebook kernel's, or a page's trainer),
// where synchronous file reads, Atomics.wait and WebGPU are allowed. Files are browser-fs.ts (the site's files and
// the Origin Private File System), locks are Web Locks, settings come from initPlatform, hashing is @noble/hashes.
// lib/cli/bundle.ts builds the library with this file in place of node.ts.
import { sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { FileSystem, FolderLock, Hash, NotebookDisplay, PathApi, TextStream } from "./types";
import { mountBrowserFs, type BrowserFs, type SiteManifest } from "./browser-fs";
import { posixPath } from "./posix-path";
import { userError } from "../errors";

export type * from "./types";
export { allowRelaxedSimd, startPoolWorker, type PoolWorker } from "./browser-workers";

export const platformName: "node" | "browser" = "browser";

export interface PlatformOptions {
  /** URL of the folder that serves the repository's files by relative path (its files.json lists them). */
  base: string;
  /** What process.env gives under Node: BERTQA_PROFILE, HF_TOKEN, HF_ENDPOINT, BERTQA_WASM_THREADS, ... */
  env?: Record<string, string>;
  /** "opfs" (default): runs and downloads are kept in the browser's storage; "memory": kept until the worker ends. */
  storage?: "opfs" | "memory";
}

let mounted: BrowserFs | undefined;

/** Mount the site's files and the browser's storage; await it once in the worker before any library call. */
export async function initPlatform(opts: PlatformOptions): Promise<void> {
  const base = new URL(opts.base, globalThis.location?.href).href.replace(/\/?$/, "/");
  const res = await fetch(new URL("files.json", base));
  if (!res.ok) throw userError(new URL("files.json", base).href, `the site answered HTTP ${res.status}`, "pass initPlatform the URL of the folder the site build wrote (it holds files.json)");
  const manifest = (await res.json()) as SiteManifest;
  const storage = opts.storage === "memory" ? undefined : await navigator.storage.getDirectory();
  mounted = await mountBrowserFs({ base, manifest, storage });
  for (const k of Object.keys(env)) delete env[k];
  Object.assign(env, opts.env ?? {});
}

function files(): BrowserFs {
  if (mounted === undefined) throw userError("bertqa", "the library's files are not mounted in this worker", "await initPlatform({ base }) once before the first call");
  return mounted;
}

/** Node's fs calls, on the mounted files (each call looks the mount up: initPlatform may run after this is imported). */
export const fs: FileSystem = new Proxy({} as FileSystem, {
  get: (_t, name: keyof FileSystem) => (name === "constants" ? { W_OK: 2 } : (...args: unknown[]) => (files()[name] as (...a: unknown[]) => unknown)(...args)),
});
export const path: PathApi = posixPath;
export const env: Record<string, string | undefined> = {};

/** Warnings and notes: the console's error stream (a notebook kernel shows it as the cell's stderr). */
export const stderr: TextStream = { isTTY: false, write: (text: string) => void console.error(text.replace(/\n$/, "")) };

/** Temporary names carry a "pid": unique per worker, as a process id is per process. */
export const pid = 1 + (crypto.getRandomValues(new Uint32Array(1))[0] % 0x7ffffffe);
export const homedir = (): string => "/home";
export const cpuCount = (): number => navigator.hardwareConcurrency ?? 1;
/** The JavaScript heap in use (Chromium); the wasm heap and GPU memory are not counted. */
export const residentBytes = (): number => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;

/** A worker ends without an exit event: nothing to run then. */
export function onExit(_f: () => void): () => void {
  return () => {};
}

/** A macrotask turn through a MessageChannel (setTimeout(0) is clamped to 4 ms when nested). */
export function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(0);
  });
}

export function createHash(algorithm: "sha256" | "sha1"): Hash {
  const h = algorithm === "sha256" ? sha256.create() : sha1.create();
  const hash: Hash = {
    update: (data) => {
      h.update(typeof data === "string" ? new TextEncoder().encode(data) : data);
      return hash;
    },
    digest: () => bytesToHex(h.digest()),
  };
  return hash;
}

/** End this worker at once, as a crash would (fault injection). */
export function crashNow(): never {
  (globalThis as unknown as { close(): void }).close();
  throw new Error("worker closed (injected crash)");
}

/** Run folders are locked with Web Locks, not a file; the name is kept so listings still leave it out. */
export const LOCK_FILE = ".bertqa.lock";

/** Hold `dir` for one run: a Web Lock, held by this worker until release() or until the tab closes (then it is
 * free again, as a dead process's lock file is taken over under Node). The folder is read again from storage
 * first: another tab may have written it. */
export async function lockFolder(dir: string, purpose: string): Promise<FolderLock> {
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const got = await new Promise<boolean>((resolve) => {
    void navigator.locks.request(`bertqa:${posixPath.resolve(dir)}`, { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      return lock === null ? undefined : held;
    });
  });
  if (!got) throw userError(dir, `is being written by another ${purpose} run in another tab or window of this site`, "wait for it to end, or choose another output folder");
  await files().reload(dir);
  return { release };
}

export const symlinks: boolean = false;

/** The display the host installed (a notebook kernel: tslab's API; a page: its own). */
export function notebookDisplay(): NotebookDisplay {
  const d = (globalThis as unknown as Record<symbol, NotebookDisplay | undefined>)[Symbol.for("bertqa.tslab")];
  if (d === undefined) throw userError("show*", "this worker has no notebook display", "the host sets globalThis[Symbol.for(\"bertqa.tslab\")] to tslab's { display, newDisplay }");
  return d;
}

/** Files of packages the bundle carries (plotly.js), fetched beside the bundle. */
export function packageFileText(specifier: string): string {
  const req = new XMLHttpRequest();
  req.open("GET", new URL(`packages/${specifier}`, import.meta.url).href, false);
  req.send();
  if (req.status !== 200) throw userError(specifier, `not found beside the library bundle (HTTP ${req.status})`, "build the bundle again with npm run bundle");
  return req.responseText;
}

/** Storage catches up with the calls asynchronously: this waits for it, and fails with its first refusal. */
export function persist(): Promise<void> {
  return files().persist();
}

export const repoRoot = "/";

/** A page cannot see its CPU time, and benchmarks leave it out. */
export const cpuTimeUs = (): number | undefined => undefined;
/** Nor its peak memory: browsers keep no high-water mark, and a worker sees no heap size at all. */
export const peakResidentBytes = (): number | undefined => undefined;
