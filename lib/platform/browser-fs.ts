// Files for the library in a browser worker: Node's synchronous calls (types.ts) over a tree kept in memory, mounted
// from two places and persisted to one.
// - The site's files (data/, test/fixtures/, listed in its files.json) are read-only and read when first needed, with
//   a synchronous request (allowed in workers).
// - Everything else (runs/, the download caches) lives in the Origin Private File System under "bertqa/", at the same
//   paths. Each change is made in memory at once and replayed there in order by one queue, so what storage holds is
//   always the result of a prefix of the changes: the state a crash on disk leaves. A file replaced or appended is
//   replaced whole when its writer closes (OPFS's createWritable), a file renamed is moved (atomic), and a folder
//   renamed (OPFS cannot) is moved file by file under a journal that the next start finishes: so the run folder's
//   checkpoint swap (rundir.ts) keeps one complete checkpoint at every instant, in the browser as on disk.
// - persist() waits until storage has caught up; a write storage refuses (the quota) fails it in one line, and the
//   tree is read again from storage, so what the library sees is what was kept.
import type { FileStat, FileSystem } from "./types";
import { posixPath as path } from "./posix-path";

// Worker-only and newer parts of the web platform, declared here: the project compiles with TypeScript's DOM library.
declare const FileReaderSync: { new (): { readAsArrayBuffer(b: Blob): ArrayBuffer } };
interface Writable { write(data: ArrayBuffer | string): Promise<void>; seek(at: number): Promise<void>; truncate(size: number): Promise<void>; close(): Promise<void>; abort(): Promise<void> }
const writable = (f: FileSystemFileHandle, keepExistingData = false) =>
  (f as unknown as { createWritable(o: object): Promise<Writable> }).createWritable({ keepExistingData });

interface FileNode {
  kind: "file";
  size: number;
  mtimeMs: number;
  data?: Uint8Array; // in memory (its first `size` bytes; room to grow after): written here and not yet in storage, or read from the site
  stored?: Blob; // in storage and unchanged since: read with FileReaderSync when needed
  url?: string; // a site file not read yet
  pending: number; // queued storage operations that touch it (its bytes stay in memory until they are done)
}
interface DirNode { kind: "dir"; entries: Map<string, Node>; mtimeMs: number }
type Node = FileNode | DirNode;

/** What the queue replays in storage. Paths are absolute in the tree ("/runs/x/metrics.jsonl"). */
type Op =
  | { op: "write"; path: string; node: FileNode; data: Uint8Array }
  | { op: "append"; path: string; node: FileNode; data: Uint8Array }
  | { op: "mkdir"; path: string }
  | { op: "rm"; path: string }
  | { op: "rename"; from: string; to: string; dir: boolean; files: { node: FileNode; rel: string }[] };

/** files.json: the site's read-only folders (e.g. "data", "test/fixtures") and every file in them with its size. */
export interface SiteManifest { roots: string[]; files: Record<string, number> }

export interface BrowserFsOptions {
  base: string; // URL of the site folder that holds files.json and the files it lists
  manifest: SiteManifest;
  storage?: FileSystemDirectoryHandle; // OPFS root; undefined: memory only (nothing kept)
}

/** A storage refusal, in Node's terms (fsutil.ts turns it into the user's one line). */
export type FsError = Error & { code: string; path: string; syscall: string; reason?: string; fix?: string };

function fsError(code: string, syscall: string, p: string, text: string, reason?: string, fix?: string): FsError {
  return Object.assign(new Error(`${code}: ${text}, ${syscall} '${p}'`), { code, path: p, syscall, reason, fix });
}

const STORE_DIR = "bertqa"; // our folder in the origin's private file system (other apps on the origin keep theirs)
const JOURNAL_PREFIX = ".bertqa-journal-";

export interface BrowserFs extends FileSystem {
  /** Resolves when storage holds every change made so far; rejects with the first refusal since the last call. */
  persist(): Promise<void>;
  /** Read `dir` (absolute) again from storage: another tab may have written it. */
  reload(dir: string): Promise<void>;
}

export async function mountBrowserFs(opts: BrowserFsOptions): Promise<BrowserFs> {
  // Two trees: the site's files (read-only) and what storage holds; a path is looked up in the second, then the first.
  const site: DirNode = { kind: "dir", entries: new Map(), mtimeMs: 0 };
  let stored: DirNode = { kind: "dir", entries: new Map(), mtimeMs: Date.now() };
  const siteRoots = opts.manifest.roots.map((r) => path.resolve("/", r));
  for (const [rel, size] of Object.entries(opts.manifest.files)) {
    const names = rel.split("/").filter((p) => p !== "");
    const dir = ensureDirNode(site, names.slice(0, -1));
    dir.entries.set(names[names.length - 1], { kind: "file", size, mtimeMs: 0, url: new URL(names.map(encodeURIComponent).join("/"), opts.base).href, pending: 0 });
  }
  const store = opts.storage === undefined ? undefined : await opts.storage.getDirectoryHandle(STORE_DIR, { create: true });
  if (store !== undefined) {
    await finishJournals(store);
    await loadStored(store, stored, "/");
  }
  const queue = storageQueue(store, async () => { // after a refusal: what storage kept is what there is
    stored = { kind: "dir", entries: new Map(), mtimeMs: Date.now() };
    if (store !== undefined) await loadStored(store, stored, "/");
  });
  const fds = new Map<number, { node: FileNode; path: string; mode: "r" | "w" | "a"; at: number; appendFrom: number }>();
  let nextFd = 3;

  const isSite = (abs: string) => siteRoots.some((r) => abs === r || abs.startsWith(r + "/"));

  function find(tree: DirNode, p: string): Node | undefined {
    let node: Node = tree;
    for (const part of parts(p)) {
      if (node.kind !== "dir") return undefined;
      const next = node.entries.get(part);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  function lookup(p: string): Node | undefined {
    const abs = path.resolve(p);
    return isSite(abs) ? find(site, abs) : find(stored, abs) ?? find(site, abs);
  }

  function need(p: string, syscall: string): Node {
    const node = lookup(p);
    if (node === undefined) throw fsError("ENOENT", syscall, p, "no such file or directory");
    return node;
  }

  /** The folder that will hold `p`, and its name there; refused on the site's files and when the folder is missing. */
  function parentOf(p: string, syscall: string): { dir: DirNode; name: string; abs: string } {
    const abs = path.resolve(p);
    if (isSite(abs)) throw fsError("EROFS", syscall, p, "read-only file system", "the site's own files are read-only");
    const dirNode = find(stored, path.dirname(abs));
    if (dirNode === undefined) throw fsError("ENOENT", syscall, p, "no such file or directory");
    if (dirNode.kind !== "dir") throw fsError("ENOTDIR", syscall, p, "not a directory");
    return { dir: dirNode, name: path.basename(abs), abs };
  }

  function bytesOf(node: FileNode): Uint8Array {
    if (node.data !== undefined) return node.data.subarray(0, node.size);
    if (node.stored !== undefined) return new Uint8Array(new FileReaderSync().readAsArrayBuffer(node.stored));
    if (node.url !== undefined) {
      const req = new XMLHttpRequest();
      req.open("GET", node.url, false);
      req.responseType = "arraybuffer";
      req.send();
      if (req.status !== 200) throw fsError("EIO", "read", node.url, `the site answered HTTP ${req.status}`);
      node.data = new Uint8Array(req.response as ArrayBuffer); // the site's files do not change: keep them
      return node.data;
    }
    return new Uint8Array(0);
  }

  /** Replace a file's content (in memory now, in storage in turn, unless `later`: its writer's close queues it). */
  function setFile(p: string, data: Uint8Array, syscall: string, later = false): FileNode {
    const { dir, name, abs } = parentOf(p, syscall);
    const old = dir.entries.get(name);
    if (old?.kind === "dir") throw fsError("EISDIR", syscall, p, "illegal operation on a directory");
    const node: FileNode = { kind: "file", size: data.length, mtimeMs: Date.now(), data, pending: 0 };
    dir.entries.set(name, node);
    if (!later) queue.push({ op: "write", path: abs, node, data });
    return node;
  }

  const stat = (node: Node): FileStat => ({
    size: node.kind === "file" ? node.size : 0, mtimeMs: node.mtimeMs,
    isDirectory: () => node.kind === "dir", isFile: () => node.kind === "file",
  });

  const fs: BrowserFs = {
    existsSync: (p) => lookup(p) !== undefined,
    statSync: (p) => stat(need(p, "stat")),
    readdirSync: (p) => {
      const node = need(p, "scandir");
      if (node.kind !== "dir") throw fsError("ENOTDIR", "scandir", p, "not a directory");
      const other = isSite(path.resolve(p)) ? undefined : find(site, p); // "/" and "/test" hold site folders and stored ones
      return [...new Set([...node.entries.keys(), ...(other?.kind === "dir" ? other.entries.keys() : [])])].sort();
    },
    readFileSync: ((p: string, encoding?: "utf8") => {
      const node = need(p, "open");
      if (node.kind === "dir") throw fsError("EISDIR", "read", p, "illegal operation on a directory");
      const bytes = bytesOf(node);
      return encoding === "utf8" ? new TextDecoder().decode(bytes) : node.stored !== undefined && node.data === undefined ? bytes : bytes.slice(); // a copy, as Node's is
    }) as FileSystem["readFileSync"],
    openAsBlob: async (p) => {
      const node = need(p, "open");
      if (node.kind === "dir") throw fsError("EISDIR", "open", p, "illegal operation on a directory");
      return node.data === undefined && node.stored !== undefined ? node.stored : new Blob([bytesOf(node).slice()]);
    },
    writeFileSync: (p, data) => void setFile(p, typeof data === "string" ? new TextEncoder().encode(data) : data.slice(), "open"),
    mkdirSync: (p, o = {}) => {
      const abs = path.resolve(p);
      if (o.recursive === true) {
        for (let i = 1, ps = parts(abs); i <= ps.length; i++) {
          const sub = "/" + ps.slice(0, i).join("/");
          const node = isSite(sub) ? lookup(sub) : find(stored, sub);
          if (node === undefined) fs.mkdirSync(sub);
          else if (node.kind !== "dir") throw fsError("ENOTDIR", "mkdir", p, "not a directory");
        }
        return undefined;
      }
      const { dir, name } = parentOf(abs, "mkdir");
      if (dir.entries.has(name)) throw fsError("EEXIST", "mkdir", p, "file already exists");
      dir.entries.set(name, { kind: "dir", entries: new Map(), mtimeMs: Date.now() });
      queue.push({ op: "mkdir", path: abs });
      return undefined;
    },
    rmSync: (p, o = {}) => {
      const node = lookup(p);
      if (node === undefined) {
        if (o.force === true) return;
        throw fsError("ENOENT", "rm", p, "no such file or directory");
      }
      if (node.kind === "dir" && o.recursive !== true) throw fsError("ERR_FS_EISDIR", "rm", p, "is a directory");
      const { dir, name, abs } = parentOf(p, "rm");
      dir.entries.delete(name);
      queue.push({ op: "rm", path: abs });
    },
    rmdirSync: (p) => {
      const node = need(p, "rmdir");
      if (node.kind !== "dir") throw fsError("ENOTDIR", "rmdir", p, "not a directory");
      if (node.entries.size > 0) throw fsError("ENOTEMPTY", "rmdir", p, "directory not empty");
      fs.rmSync(p, { recursive: true });
    },
    renameSync: (from, to) => {
      const node = need(from, "rename");
      const src = parentOf(from, "rename"), dst = parentOf(to, "rename");
      if (src.abs === dst.abs) return;
      if (dst.abs.startsWith(src.abs + "/")) throw fsError("EINVAL", "rename", from, "invalid argument");
      const there = dst.dir.entries.get(dst.name);
      if (there !== undefined && there.kind !== node.kind) throw fsError(there.kind === "dir" ? "EISDIR" : "ENOTDIR", "rename", to, "illegal operation");
      if (there?.kind === "dir" && there.entries.size > 0) throw fsError("ENOTEMPTY", "rename", to, "directory not empty");
      src.dir.entries.delete(src.name);
      dst.dir.entries.set(dst.name, node);
      queue.push({ op: "rename", from: src.abs, to: dst.abs, dir: node.kind === "dir", files: filesUnder(node, "") });
    },
    copyFileSync: (from, to) => {
      const node = need(from, "copyfile");
      if (node.kind === "dir") throw fsError("EISDIR", "copyfile", from, "illegal operation on a directory");
      setFile(to, bytesOf(node).slice(), "copyfile");
    },
    symlinkSync: (_target, p) => {
      throw fsError("EPERM", "symlink", p, "operation not permitted", "the browser's storage has no symbolic links");
    },
    realpathSync: (p) => {
      need(p, "realpath");
      return path.resolve(p);
    },
    accessSync: (p, mode = 0) => {
      const abs = path.resolve(p);
      need(abs, "access");
      if (mode !== 0 && isSite(abs)) throw fsError("EROFS", "access", p, "read-only file system", "the site's own files are read-only");
    },
    constants: { W_OK: 2 },
    openSync: (p, flags) => {
      let node: Node;
      if (flags === "r") node = need(p, "open");
      else if (flags === "wx" && lookup(p) !== undefined) throw fsError("EEXIST", "open", p, "file already exists");
      else {
        const existing = lookup(p);
        node = flags === "a" && existing !== undefined ? existing : setFile(p, new Uint8Array(0), "open", true);
      }
      if (node.kind === "dir") throw fsError("EISDIR", "open", p, "illegal operation on a directory");
      const fd = nextFd++;
      fds.set(fd, { node, path: path.resolve(p), mode: flags === "r" ? "r" : flags === "a" ? "a" : "w", at: flags === "a" ? node.size : 0, appendFrom: node.size });
      return fd;
    },
    writeSync: (fd, data, offset = 0) => {
      const f = openFd(fd, "write");
      const part = data.subarray(offset), end = f.at + part.length, node = f.node;
      if (node.data === undefined || end > node.data.length) { // grow by doubling: a file written in 64 kB parts costs O(size), not O(size²)
        const grown = new Uint8Array(Math.max(end, 2 * (node.data?.length ?? 0), 1 << 16));
        grown.set(bytesOf(node));
        node.data = grown;
      }
      node.data.set(part, f.at);
      Object.assign(node, { stored: undefined, size: Math.max(node.size, end), mtimeMs: Date.now() });
      f.at = end;
      return part.length;
    },
    readSync: (fd, into, offset, length, position) => {
      const f = openFd(fd, "read");
      const from = position ?? f.at;
      const bytes = bytesOf(f.node).subarray(from, from + length);
      into.set(bytes, offset);
      if (position === null) f.at += bytes.length;
      return bytes.length;
    },
    fstatSync: (fd) => stat(openFd(fd, "fstat").node),
    closeSync: (fd) => {
      const f = openFd(fd, "close");
      fds.delete(fd);
      if (f.mode === "r") return;
      const data = bytesOf(f.node).slice(); // what the file holds now; later writes do not change what is queued
      if (f.mode === "a") queue.push({ op: "append", path: f.path, node: f.node, data: data.subarray(f.appendFrom) });
      else queue.push({ op: "write", path: f.path, node: f.node, data });
    },
    persist: () => queue.drained(),
    reload: async (dir) => {
      await queue.drained().catch(() => undefined);
      if (store === undefined) return;
      const abs = path.resolve(dir);
      const parent = find(stored, path.dirname(abs));
      if (parent?.kind !== "dir") return;
      parent.entries.delete(path.basename(abs));
      const handle = await handleAt(store, abs, false).catch(() => undefined);
      if (handle?.kind === "directory") {
        const node: DirNode = { kind: "dir", entries: new Map(), mtimeMs: Date.now() };
        parent.entries.set(path.basename(abs), node);
        await loadStored(handle as FileSystemDirectoryHandle, node, abs);
      }
    },
  };

  function openFd(fd: number, syscall: string) {
    const f = fds.get(fd);
    if (f === undefined) throw fsError("EBADF", syscall, String(fd), "bad file descriptor");
    return f;
  }
  return fs;
}

function parts(p: string): string[] {
  return path.resolve(p).split("/").filter((s) => s !== "");
}

function ensureDirNode(root: DirNode, names: string[]): DirNode {
  let dir = root;
  for (const n of names) {
    let next = dir.entries.get(n);
    if (next === undefined || next.kind !== "dir") {
      next = { kind: "dir", entries: new Map(), mtimeMs: 0 };
      dir.entries.set(n, next);
    }
    dir = next;
  }
  return dir;
}

function filesUnder(node: Node, rel: string): { node: FileNode; rel: string }[] {
  return node.kind === "file" ? [{ node, rel }] : [...node.entries].flatMap(([name, n]) => filesUnder(n, rel === "" ? name : `${rel}/${name}`));
}

/** Read the stored tree under `dir` into `into`. */
async function loadStored(dir: FileSystemDirectoryHandle, into: DirNode, at: string): Promise<void> {
  for await (const [name, handle] of (dir as unknown as AsyncIterable<[string, FileSystemHandle]>)) {
    const abs = at === "/" ? `/${name}` : `${at}/${name}`;
    if (name.startsWith(JOURNAL_PREFIX)) continue;
    if (handle.kind === "file") {
      const file = await (handle as FileSystemFileHandle).getFile();
      into.entries.set(name, { kind: "file", size: file.size, mtimeMs: file.lastModified, stored: file, pending: 0 });
    } else {
      const sub: DirNode = { kind: "dir", entries: new Map(), mtimeMs: 0 };
      into.entries.set(name, sub);
      await loadStored(handle as FileSystemDirectoryHandle, sub, abs);
    }
  }
}

async function handleAt(store: FileSystemDirectoryHandle, abs: string, create: boolean, kind: "file" | "directory" = "directory"): Promise<FileSystemHandle> {
  const names = parts(abs);
  let dir = store;
  for (const n of names.slice(0, -1)) dir = await dir.getDirectoryHandle(n, { create });
  const last = names[names.length - 1];
  if (last === undefined) return dir;
  if (kind === "file") return dir.getFileHandle(last, { create });
  try {
    return await dir.getDirectoryHandle(last, { create });
  } catch (e) {
    if ((e as Error).name !== "TypeMismatchError") throw e;
    return dir.getFileHandle(last);
  }
}

async function dirHandle(store: FileSystemDirectoryHandle, abs: string): Promise<FileSystemDirectoryHandle> {
  return (await handleAt(store, abs, true)) as FileSystemDirectoryHandle;
}

// ---------------------------------------------------------------------------------------------------------------
// The queue that replays changes in storage, one at a time, in order.

function storageQueue(store: FileSystemDirectoryHandle | undefined, onFailure: () => Promise<void>) {
  let tail: Promise<void> = Promise.resolve();
  let failure: unknown; // the first refusal since drained() last reported one; later changes are dropped
  const push = (op: Op) => {
    if (store === undefined) return;
    const touched = written(op).map((w) => w.node);
    for (const n of touched) n.pending++;
    tail = tail.then(async () => {
      try {
        if (failure === undefined) await apply(store, op);
      } catch (e) {
        failure ??= await storageError(e, op);
      } finally {
        for (const n of touched) n.pending--;
      }
      if (failure === undefined) await releaseMemory(store, op);
    });
  };
  /** Storage has caught up; after a refusal, the tree is read again from storage (at this point, where the library
   * waits to commit, never in the middle of its work) and the refusal thrown. */
  const drained = async () => {
    await tail;
    if (failure !== undefined) {
      const e = failure;
      await onFailure();
      failure = undefined;
      throw e;
    }
  };
  return { push, drained };
}

/** The files an operation writes or moves, and where they are in storage once it is done. */
function written(op: Op): { node: FileNode; path: string }[] {
  if (op.op === "write" || op.op === "append") return [{ node: op.node, path: op.path }];
  if (op.op === "rename") return op.files.map(({ node, rel }) => ({ node, path: rel === "" ? op.to : `${op.to}/${rel}` }));
  return [];
}

/** Once storage holds a file and nothing else is queued for it, its bytes leave memory (a checkpoint of bert-base is
 * 1.3 GB); reads then come from storage. */
async function releaseMemory(store: FileSystemDirectoryHandle, op: Op): Promise<void> {
  for (const { node, path: p } of written(op)) {
    if (node.pending > 0 || (node.data === undefined && op.op !== "rename")) continue; // a moved file's snapshot is read again
    const handle = (await handleAt(store, p, false, "file").catch(() => undefined)) as FileSystemFileHandle | undefined;
    const file = await handle?.getFile();
    if (file !== undefined && file.size === node.size && node.pending === 0) Object.assign(node, { stored: file, data: undefined });
  }
}

async function apply(store: FileSystemDirectoryHandle, op: Op): Promise<void> {
  if (op.op === "mkdir") {
    await dirHandle(store, op.path);
  } else if (op.op === "write" || op.op === "append") {
    const file = (await handleAt(store, op.path, true, "file")) as FileSystemFileHandle;
    const once = async () => {
      const w = await writable(file, op.op === "append");
      try {
        const at = op.op === "append" ? (await file.getFile()).size : 0;
        if (at > 0) await w.seek(at);
        // The file's new size first: the quota is checked there, before any data streams (a write refused while its
        // data streams may fail as an AbortError, "Failed to write data to data pipe", instead of QuotaExceededError).
        await w.truncate(at + op.data.length);
        await w.write(op.data as unknown as ArrayBuffer);
        await w.close(); // the file changes here, whole, or not at all
      } catch (e) {
        await w.abort().catch(() => undefined);
        throw e;
      }
    };
    // Should a write still fail as an AbortError, it changed nothing: once more, and the browser names the refusal.
    await once().catch((e: Error) => (e.name === "AbortError" ? once() : Promise.reject(e)));
  } else if (op.op === "rm") {
    const parent = await dirHandle(store, path.dirname(op.path));
    await parent.removeEntry(path.basename(op.path), { recursive: true }).catch((e: Error) => {
      if (e.name !== "NotFoundError") throw e;
    });
  } else if (op.dir) {
    await moveDirJournalled(store, op.from, op.to);
  } else {
    const file = (await handleAt(store, op.from, false, "file")) as FileSystemFileHandle;
    await moveFile(file, await dirHandle(store, path.dirname(op.to)), path.basename(op.to));
  }
}

type Movable = FileSystemFileHandle & { move(dir: FileSystemDirectoryHandle, name: string): Promise<void> };

function moveFile(file: FileSystemFileHandle, dir: FileSystemDirectoryHandle, name: string): Promise<void> {
  return (file as Movable).move(dir, name); // atomic, and replaces a file of that name
}

/** A folder renamed in storage: the journal names it first, then its files move one by one, then the old folder and
 * the journal go. A start that finds a journal finishes the move (finishJournals), so the rename is all or nothing. */
async function moveDirJournalled(store: FileSystemDirectoryHandle, from: string, to: string): Promise<void> {
  const name = `${JOURNAL_PREFIX}${crypto.randomUUID()}.json`;
  const journal = (await store.getFileHandle(name, { create: true })) as FileSystemFileHandle;
  const w = await writable(journal);
  await w.write(JSON.stringify({ from, to }));
  await w.close();
  await navigator.locks.request(name, async () => {
    await moveTree(store, from, to);
    await store.removeEntry(name);
  });
}

async function moveTree(store: FileSystemDirectoryHandle, from: string, to: string): Promise<void> {
  const src = (await handleAt(store, from, false).catch(() => undefined)) as FileSystemDirectoryHandle | undefined;
  if (src === undefined) return; // moved already (a journal finished twice)
  const dst = await dirHandle(store, to);
  for await (const [name, handle] of (src as unknown as AsyncIterable<[string, FileSystemHandle]>)) {
    if (handle.kind === "file") await moveFile(handle as FileSystemFileHandle, dst, name);
    else await moveTree(store, `${from}/${name}`, `${to}/${name}`);
  }
  const parent = await dirHandle(store, path.dirname(from));
  await parent.removeEntry(path.basename(from), { recursive: true }).catch(() => undefined);
}

/** Finish the folder moves that a closed tab left half done (their journals, whose Web Lock no one holds). */
async function finishJournals(store: FileSystemDirectoryHandle): Promise<void> {
  for await (const [name, handle] of (store as unknown as AsyncIterable<[string, FileSystemHandle]>)) {
    if (!name.startsWith(JOURNAL_PREFIX) || handle.kind !== "file") continue;
    await navigator.locks.request(name, { ifAvailable: true }, async (lock) => {
      if (lock === null) return; // its tab is still moving it
      const { from, to } = JSON.parse(await (await (handle as FileSystemFileHandle).getFile()).text()) as { from: string; to: string };
      await moveTree(store, from, to);
      await store.removeEntry(name);
    });
  }
}

/** A refusal of storage as the library reports refusals (fsutil.ts): ENOSPC-like codes with the sizes that matter. */
async function storageError(e: unknown, op: Op): Promise<unknown> {
  const p = op.op === "rename" ? op.to : op.path;
  const bytes = op.op === "write" || op.op === "append" ? op.data.length : undefined;
  const refusal = await storageRefusal(e, p);
  return refusal instanceof Error ? Object.assign(refusal, { bytes }) : refusal;
}

async function storageRefusal(e: unknown, p: string): Promise<unknown> {
  if (e instanceof DOMException && e.name === "QuotaExceededError") {
    const { usage, quota } = await navigator.storage.estimate();
    const mb = (n: number | undefined) => `${((n ?? 0) / 1e6).toFixed(1)} MB`;
    return fsError("EDQUOT", "write", p, "quota exceeded", `the browser's storage quota for this site is full (${mb(usage)} used of ${mb(quota)})`,
      "delete runs you no longer need (download them first), or allow this site more storage in the browser's settings");
  }
  if (e instanceof DOMException) return fsError("EIO", "write", p, `${e.name}: ${e.message}`, `the browser's storage refused it (${e.name})`);
  return e;
}
