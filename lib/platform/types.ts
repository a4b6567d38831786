// What the library asks of its host, typed once. Both sides (node.ts, browser.ts) export these under the same names;
// the file calls are the subset of Node's synchronous fs the library uses, with Node's names, flags and error codes
// (ENOENT, EEXIST, ENOSPC, ...), so the modules read as ordinary Node code and the browser side is held to it.

export interface FileStat { size: number; mtimeMs: number; isDirectory(): boolean; isFile(): boolean }

/** Node's fs, the calls the library makes. Paths are POSIX; relative ones are taken from the working folder. */
export interface FileSystem {
  existsSync(p: string): boolean;
  statSync(p: string): FileStat;
  readdirSync(p: string): string[];
  readFileSync(p: string): Uint8Array;
  readFileSync(p: string, encoding: "utf8"): string;
  /** The file as a Blob read from storage as it is consumed (uploads of a 440 MB model). */
  openAsBlob(p: string): Promise<Blob>;
  writeFileSync(p: string, data: string | Uint8Array): void;
  mkdirSync(p: string, opts?: { recursive?: boolean }): unknown;
  rmSync(p: string, opts?: { recursive?: boolean; force?: boolean }): void;
  rmdirSync(p: string): void;
  renameSync(from: string, to: string): void;
  copyFileSync(from: string, to: string): void;
  symlinkSync(target: string, p: string): void;
  realpathSync(p: string): string;
  accessSync(p: string, mode?: number): void;
  openSync(p: string, flags: "r" | "w" | "wx" | "a"): number;
  writeSync(fd: number, data: Uint8Array, offset?: number): number;
  readSync(fd: number, into: Uint8Array, offset: number, length: number, position: number | null): number;
  fstatSync(fd: number): FileStat;
  closeSync(fd: number): void;
  constants: { W_OK: number };
}

/** Node's path.posix, the calls the library makes. */
export interface PathApi {
  sep: string;
  join(...parts: string[]): string;
  resolve(...parts: string[]): string;
  relative(from: string, to: string): string;
  dirname(p: string): string;
  basename(p: string, ext?: string): string;
  extname(p: string): string;
  isAbsolute(p: string): boolean;
  normalize(p: string): string;
}

/** Where text goes line by line (stderr): a terminal redraws a progress line in place. */
export interface TextStream { isTTY?: boolean; write(text: string): unknown }

/** An incremental digest (sha256, sha1), as node:crypto's createHash gives. */
export interface Hash { update(data: Uint8Array | string): Hash; digest(encoding: "hex"): string }

/** A folder held by one run at a time (a lock file under Node, a Web Lock in the browser). */
export interface FolderLock { release(): void }

/** What a notebook cell's output is shown with: tslab's display API (the browser kernel installs the same). */
export interface HtmlDisplay { html(s: string): void }
export interface NotebookDisplay { display: HtmlDisplay; newDisplay(): HtmlDisplay }

export type BackendName = "tensorflow" | "webgpu" | "wasm" | "cpu";

export interface BackendDiagnosis {
  name: BackendName;
  available: boolean;
  gpu: boolean; // runs on a GPU when available
  detail: string; // what was found (or why it does not work)
  fix?: string; // one line: how to make it work
}

/** software: a CPU emulation of a GPU (Mesa lavapipe/llvmpipe, SwiftShader): it works, but auto must not take it. */
export interface GpuAdapterInfo { name: string; limits: Record<string, number>; software?: boolean }

/** What a platform knows of its backends: whether each works here and why (never throws), and how to load WebGPU
 * once it is the one to run. */
export interface BackendHost {
  diagnose(name: Exclude<BackendName, "cpu">): Promise<BackendDiagnosis>;
  loadWebgpu(): Promise<unknown>;
}
