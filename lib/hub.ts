// Hugging Face Hub files, fetched the way huggingface_hub's hf_hub_download does, into the same cache, so Python and
// this project share downloads: <cache>/models--org--name/{blobs/<etag>, snapshots/<commit>/<file> -> ../../blobs/<etag>,
// refs/<revision>}. A HEAD on /<id>/resolve/<revision>/<file> gives the commit (X-Repo-Commit), the blob name
// (X-Linked-Etag for LFS files: their sha256; else ETag: the git blob sha1) and the size. The file streams into
// blobs/<etag>.incomplete, resumes with Range after a dropped connection, and is renamed into blobs/ only once its size
// and checksum match. Every failure is one UserError line naming the model, the file, the cause and the fix.
import { env, fs, homedir, path, pid, symlinks } from "./platform";
import { fileDigest } from "./fsutil";
import { userError, type UserError } from "./errors";
import { progress, type ProgressSink } from "./progress";

export interface HubOptions {
  cacheDir?: string; // default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  endpoint?: string; // default: $HF_ENDPOINT, else https://huggingface.co
  revision?: string; // branch, tag or commit; default "main"
  retries?: number; // retries after a 5xx/429 or a dropped connection (default 5, huggingface_hub's http_backoff)
  retryBaseMs?: number; // first backoff wait, doubled each retry up to 8× (default 1000: 1, 2, 4, 8, 8 s)
  sink?: ProgressSink; // download progress (default: stderr or the notebook display)
}

/** What a resolve HEAD says about one file of one commit. */
export interface HubFileMeta { id: string; file: string; commit: string; etag: string; size?: number; url: string }

/** Why a Hub call failed: "network" and "server" may fall back to the cache, the others are the user's to fix. */
export type HubFailure = "network" | "server" | "not-found" | "auth" | "integrity" | "cache";
export type HubError = UserError & { hubFailure: HubFailure };

const HUB_URL = "https://huggingface.co"; // the public Hub; HF_ENDPOINT points elsewhere (a mirror, a test server)
export const DEFAULT_RETRIES = 5; // huggingface_hub http_backoff: max_retries=5, base_wait_time=1, max_wait_time=8
const DEFAULT_RETRY_BASE_MS = 1000;
const ETAG_TIMEOUT_S = 10; // huggingface_hub's HF_HUB_ETAG_TIMEOUT default
const DOWNLOAD_TIMEOUT_S = 10; // huggingface_hub's HF_HUB_DOWNLOAD_TIMEOUT default: longest wait for the next bytes

/** "bert-base-uncased" or "org/name": what the Hub accepts as a model id. */
export function isHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(s) && !s.includes("..") && !s.endsWith(".json");
}

/** $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(opts: HubOptions = {}): string {
  if (opts.cacheDir !== undefined) return opts.cacheDir;
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  return path.join(hfHome(), "hub");
}

function hfHome(): string {
  return env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), ".cache"), "huggingface");
}

export function hubEndpoint(opts: HubOptions = {}): string {
  return (opts.endpoint ?? env.HF_ENDPOINT ?? HUB_URL).replace(/\/+$/, "");
}

/** HF_HUB_OFFLINE as huggingface_hub reads it: 1, ON, YES or TRUE in any case. */
export function hubOffline(): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((env.HF_HUB_OFFLINE ?? "").trim().toUpperCase());
}

/** $HF_TOKEN, else the token `huggingface-cli login` saved ($HF_TOKEN_PATH or $HF_HOME/token). */
export function hubToken(): string | undefined {
  const token = env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
  if (token !== undefined && token.trim() !== "") return token.trim();
  const file = env.HF_TOKEN_PATH ?? path.join(hfHome(), "token");
  try {
    const t = fs.readFileSync(file, "utf8").trim();
    return t !== "" ? t : undefined;
  } catch {
    return undefined;
  }
}

export function repoCacheDir(id: string, opts: HubOptions = {}): string {
  return path.join(hubCacheDir(opts), `models--${id.split("/").join("--")}`);
}

/** The snapshot a revision pointed to when it was last downloaded (by us or by Python), if its config.json is there. */
export function cachedSnapshot(id: string, opts: HubOptions = {}): string | undefined {
  const repo = repoCacheDir(id, opts), revision = opts.revision ?? "main";
  const ref = path.join(repo, "refs", revision);
  const commit = fs.existsSync(ref) ? fs.readFileSync(ref, "utf8").trim() : revision;
  const dir = path.join(repo, "snapshots", commit);
  return fs.existsSync(path.join(dir, "config.json")) ? dir : undefined;
}

/** Record which commit a branch or tag resolved to, so offline runs find the snapshot (as huggingface_hub does). */
export function writeRef(id: string, revision: string, commit: string, opts: HubOptions = {}): void {
  if (revision === commit) return;
  const ref = path.join(repoCacheDir(id, opts), "refs", revision);
  fs.mkdirSync(path.dirname(ref), { recursive: true });
  const tmp = `${ref}.tmp-${pid}`;
  fs.writeFileSync(tmp, commit);
  fs.renameSync(tmp, ref);
}

function hubError(failure: HubFailure, id: string, file: string, what: string, fix: string): HubError {
  return Object.assign(userError(`Hub model '${id}', file ${file}`, what, fix), { hubFailure: failure });
}

export function isHubError(e: unknown): e is HubError {
  return e instanceof Error && typeof (e as Partial<HubError>).hubFailure === "string";
}

/** The fix for a machine that cannot reach the Hub: the cache, or a local directory. */
function offlineFix(opts: HubOptions): string {
  return `check the network, proxy or HF_ENDPOINT; without a network, HF_HUB_OFFLINE=1 loads models already in the cache ${hubCacheDir(opts)}, or pass a local model directory`;
}

export function causeText(e: unknown): string {
  const err = e as Error & { cause?: Error & { code?: string } };
  if (err.name === "TimeoutError") return "no answer within the timeout";
  const cause = err.cause;
  return cause?.message ? cause.message : String(err.message ?? e);
}

/** 401/403/404 as huggingface_hub names them (X-Error-Code: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo). */
function statusError(res: Response, id: string, file: string, revision: string, endpoint: string, tries = 1): HubError {
  const code = res.headers.get("x-error-code") ?? "";
  const token = hubToken() !== undefined;
  if (code === "RevisionNotFound") {
    return hubError("not-found", id, file, `no revision '${revision}' (HTTP ${res.status})`, "give a branch, tag or commit the model has");
  }
  if (code === "EntryNotFound") return hubError("not-found", id, file, `the model has no ${file} at revision '${revision}' (HTTP ${res.status})`, "pick a checkpoint that has it");
  if (code === "GatedRepo") {
    return hubError("auth", id, file, `gated model: this account has not been granted access (HTTP ${res.status})`, `accept its conditions at ${endpoint}/${id} with your account, then set HF_TOKEN to a token of that account`);
  }
  if (res.status === 401 || res.status === 403 || code.startsWith("Repo")) {
    return token
      ? hubError("auth", id, file, `model not found, or HF_TOKEN has no access to it (HTTP ${res.status})`, "check the model id, and that HF_TOKEN is a valid token with read access to this model")
      : hubError("auth", id, file, `model not found, or private or gated (HTTP ${res.status})`, `check the model id; for a private or gated model set HF_TOKEN to an access token (${endpoint}/settings/tokens)`);
  }
  if (res.status === 404) return hubError("not-found", id, file, `not found on ${endpoint} (HTTP 404, revision '${revision}')`, "check the model id and revision");
  const times = tries > 1 ? ` (${tries} tries)` : "";
  return hubError("server", id, file, `${endpoint} answered HTTP ${res.status} ${res.statusText}`.trimEnd() + times, "try again later");
}

export const retryable = (status: number) => status >= 500 || status === 429;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const backoffMs = (attempt: number, opts: HubOptions) => {
  const base = opts.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
  return Math.min(base * 2 ** attempt, base * 8);
};

function authHeaders(): Record<string, string> {
  const token = hubToken();
  return token !== undefined ? { Authorization: `Bearer ${token}` } : {};
}

function timeoutSeconds(name: string, fallback: number): number {
  const v = Number(env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/**
 * HEAD the file at `revision`; undefined when the model has no such file (so optional files can be skipped).
 * 5xx/429 are retried with backoff; a network failure is not (it falls back to the cache at once).
 */
export async function hubFileMeta(id: string, file: string, revision: string, opts: HubOptions = {}): Promise<HubFileMeta | undefined> {
  const endpoint = hubEndpoint(opts);
  let url = `${endpoint}/${id}/resolve/${encodeURIComponent(revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
  const retries = opts.retries ?? DEFAULT_RETRIES;
  for (let attempt = 0, redirects = 0; ; ) {
    let res: Response;
    try {
      res = await fetch(url, {
        method: "HEAD", redirect: "manual", headers: { ...authHeaders(), "Accept-Encoding": "identity" },
        signal: AbortSignal.timeout(timeoutSeconds("HF_HUB_ETAG_TIMEOUT", ETAG_TIMEOUT_S) * 1000),
      });
    } catch (e) {
      throw hubError("network", id, file, `cannot reach ${endpoint} (${causeText(e)})`, offlineFix(opts));
    }
    if (res.type === "opaqueredirect") return apiFileMeta(id, file, revision, opts); // a browser hides a redirect's headers
    const location = res.headers.get("location");
    // Relative redirects (a renamed repository) are followed; an absolute one goes to the file store: its headers suffice.
    if (res.status >= 300 && res.status < 400 && location !== null && location.startsWith("/") && redirects++ < 5) {
      url = new URL(location, url).toString();
      continue;
    }
    if (retryable(res.status) && attempt < retries) {
      await sleep(backoffMs(attempt++, opts));
      continue;
    }
    if (res.status === 404 && (res.headers.get("x-error-code") ?? "EntryNotFound") === "EntryNotFound" && file !== "config.json") return undefined;
    if (res.status >= 400) throw statusError(res, id, file, revision, endpoint, attempt + 1);
    const commit = res.headers.get("x-repo-commit");
    const etag = (res.headers.get("x-linked-etag") ?? res.headers.get("etag") ?? "").replace(/^W\//, "").replace(/"/g, "");
    if (commit === null || etag === "") {
      throw hubError("network", id, file, `${endpoint} answered without the Hub's X-Repo-Commit/ETag headers (HTTP ${res.status})`,
        "a proxy or captive portal may be answering instead of the Hub: check the network, HF_ENDPOINT and proxy settings");
    }
    const size = Number(res.headers.get("x-linked-size") ?? res.headers.get("content-length") ?? NaN);
    const fileUrl = location !== null && res.status >= 300 && res.status < 400 ? new URL(location, url).toString() : url;
    return { id, file, commit, etag, size: Number.isFinite(size) ? size : undefined, url: fileUrl };
  }
}

/** What a revision holds, from the Hub's API (GET /api/models/<id>/revision/<rev>?blobs=true), once per revision. */
interface RevisionInfo { sha: string; siblings: { rfilename: string; blobId?: string; size?: number; lfs?: { sha256: string; size: number } }[] }
const revisions = new Map<string, Promise<RevisionInfo>>();

/**
 * The same facts as a resolve HEAD (commit, etag, size), from the Hub's API. In a browser a HEAD redirected to the file
 * store (every LFS file: the weights) answers as an opaque redirect whose headers cannot be read; the API can.
 */
async function apiFileMeta(id: string, file: string, revision: string, opts: HubOptions): Promise<HubFileMeta | undefined> {
  const endpoint = hubEndpoint(opts);
  const key = `${endpoint} ${id} ${revision}`;
  if (!revisions.has(key)) {
    const request = (async () => {
      const url = `${endpoint}/api/models/${id}/revision/${encodeURIComponent(revision)}?blobs=true`;
      for (let attempt = 0; ; attempt++) {
        let res: Response;
        try {
          res = await fetch(url, { headers: authHeaders(), signal: AbortSignal.timeout(timeoutSeconds("HF_HUB_ETAG_TIMEOUT", ETAG_TIMEOUT_S) * 1000) });
        } catch (e) {
          throw hubError("network", id, file, `cannot reach ${endpoint} (${causeText(e)})`, offlineFix(opts));
        }
        if (retryable(res.status) && attempt < (opts.retries ?? DEFAULT_RETRIES)) {
          await sleep(backoffMs(attempt, opts));
          continue;
        }
        if (res.status >= 400) throw statusError(res, id, file, revision, endpoint, attempt + 1);
        return (await res.json()) as RevisionInfo; // tslab's TypeScript 5.0 types json() as Promise<unknown>
      }
    })();
    revisions.set(key, request);
    request.catch(() => revisions.delete(key)); // a failure is asked again next time
  }
  const info = await revisions.get(key)!;
  const entry = info.siblings.find((f) => f.rfilename === file);
  if (entry === undefined) {
    if (file === "config.json") throw hubError("not-found", id, file, `the model has no ${file} at revision '${revision}'`, "pick a checkpoint that has it");
    return undefined;
  }
  const etag = entry.lfs?.sha256 ?? entry.blobId ?? "";
  const url = `${endpoint}/${id}/resolve/${info.sha}/${file.split("/").map(encodeURIComponent).join("/")}`;
  return { id, file, commit: info.sha, etag, size: entry.lfs?.size ?? entry.size, url };
}

// Errors of the cache's file system (not of the network): the user fixes them by freeing space or choosing a directory.
const FS_CODES = new Set(["EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EIO", "ENOTDIR", "EEXIST"]);
const isFsError = (e: unknown) => FS_CODES.has((e as NodeJS.ErrnoException).code ?? "");

/** snapshots/<commit>/<file>, downloading the blob first unless the cache has it; returns the snapshot path. */
export async function hubDownload(meta: HubFileMeta, opts: HubOptions = {}): Promise<string> {
  try {
    return await downloadToCache(meta, opts);
  } catch (e) {
    if (!isFsError(e)) throw e;
    const err = e as NodeJS.ErrnoException;
    const fix = err.code === "ENOSPC" || err.code === "EDQUOT" ? "free disk space, or set HF_HUB_CACHE to a directory on a larger disk" : "set HF_HUB_CACHE (or HF_HOME) to a directory you can write";
    throw hubError("cache", meta.id, meta.file, `cannot write the cache ${hubCacheDir(opts)} (${err.code}${err.path ? ` on ${err.path}` : ""})`, fix);
  }
}

async function downloadToCache(meta: HubFileMeta, opts: HubOptions): Promise<string> {
  const repo = repoCacheDir(meta.id, opts);
  const pointer = path.join(repo, "snapshots", meta.commit, meta.file);
  if (fs.existsSync(pointer)) return pointer;
  const blob = path.join(repo, "blobs", meta.etag);
  if (!fs.existsSync(blob)) await downloadBlob(meta, blob, opts);
  fs.mkdirSync(path.dirname(pointer), { recursive: true });
  if (symlinks) {
    try {
      fs.symlinkSync(path.relative(path.dirname(pointer), blob), pointer);
      return pointer;
    } catch { /* no symlinks here (some Windows setups) */ }
  }
  fs.copyFileSync(blob, pointer); // a copy instead, as huggingface_hub then makes (and in a browser's storage)
  return pointer;
}

/** Stream into blobs/<etag>.incomplete (resuming what is there), check size and checksum, then rename into place. */
async function downloadBlob(meta: HubFileMeta, blob: string, opts: HubOptions): Promise<void> {
  const { id, file } = meta;
  const incomplete = `${blob}.incomplete`;
  fs.mkdirSync(path.dirname(blob), { recursive: true });
  const retries = opts.retries ?? DEFAULT_RETRIES;
  const bar = progress(`download ${file}`, meta.size ?? 0, opts.sink);
  // The token goes to the Hub only, not to the file store a redirect points at (as huggingface_hub does).
  const headers = new URL(meta.url).origin === new URL(hubEndpoint(opts)).origin ? authHeaders() : {};
  let lastFailure = "";
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) {
      if (attempt > retries) {
        const fix = fs.existsSync(incomplete) ? `try again: the download resumes from ${incomplete}` : "try again later";
        throw hubError(lastFailure.startsWith("HTTP") ? "server" : "network", id, file, `download failed ${attempt} times, last: ${lastFailure}`, fix);
      }
      await sleep(backoffMs(attempt - 1, opts));
    }
    const have = fs.existsSync(incomplete) ? fs.statSync(incomplete).size : 0;
    const result = await fetchInto(meta, incomplete, have, headers, opts, (done) => bar.update(done, { MB: Math.round(done / 1e5) / 10 }));
    if (result.done) break;
    if (result.fatal !== undefined) throw result.fatal;
    lastFailure = result.failure ?? "unknown";
  }
  const size = fs.statSync(incomplete).size;
  const fix = `nothing was kept; download again, and if it happens again check HF_ENDPOINT and any proxy`;
  if (meta.size !== undefined && size !== meta.size) {
    fs.rmSync(incomplete, { force: true });
    throw hubError("integrity", id, file, `size mismatch: expected ${meta.size} bytes, got ${size}`, fix);
  }
  const got = blobChecksum(incomplete, meta.etag);
  if (got !== undefined && got !== meta.etag.toLowerCase()) {
    fs.rmSync(incomplete, { force: true });
    throw hubError("integrity", id, file, `checksum mismatch: expected ${meta.etag}, got ${got}`, fix);
  }
  fs.renameSync(incomplete, blob);
  bar.finish();
}

interface FetchResult { done: boolean; failure?: string; fatal?: Error }

/** One GET: append from `have` when the server honours Range (206), else start over; failures say whether to retry. */
async function fetchInto(meta: HubFileMeta, incomplete: string, have: number, headers: Record<string, string>, opts: HubOptions,
  onBytes: (done: number) => void): Promise<FetchResult> {
  const ctl = new AbortController();
  const stallMs = timeoutSeconds("HF_HUB_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT_S) * 1000;
  let timer = setTimeout(() => ctl.abort(), stallMs);
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctl.abort(), stallMs);
  };
  let written = 0, start = 0;
  try {
    let res: Response;
    try {
      res = await fetch(meta.url, {
        headers: { ...headers, "Accept-Encoding": "identity", ...(have > 0 && { Range: `bytes=${have}-` }) },
        redirect: "follow", signal: ctl.signal,
      });
    } catch (e) {
      return { done: false, failure: causeText(e) };
    }
    if (res.status === 416) { // the partial file is not a prefix the server can continue: start over
      await res.body?.cancel().catch(() => undefined);
      fs.rmSync(incomplete, { force: true });
      return { done: false, failure: "HTTP 416 on resume" };
    }
    if (!res.ok || res.body === null) {
      await res.body?.cancel().catch(() => undefined);
      if (retryable(res.status)) return { done: false, failure: `HTTP ${res.status} ${res.statusText}`.trimEnd() };
      return { done: false, fatal: statusError(res, meta.id, meta.file, meta.commit, hubEndpoint(opts)) };
    }
    const resumed = res.status === 206 && (res.headers.get("content-range") ?? "").startsWith(`bytes ${have}-`);
    start = resumed ? have : 0;
    const fd = fs.openSync(incomplete, resumed ? "a" : "w");
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        fs.writeSync(fd, chunk);
        written += chunk.length;
        onBytes(start + written);
        rearm();
      }
    } finally {
      fs.closeSync(fd);
    }
    if (meta.size !== undefined && start + written < meta.size) return { done: false, failure: `connection closed after ${start + written} of ${meta.size} bytes` };
    return { done: true };
  } catch (e) {
    if (isFsError(e)) throw e; // a full disk is not a dropped connection: no retry
    const why = ctl.signal.aborted ? `no data for ${stallMs / 1000} s` : causeText(e);
    return { done: false, failure: `connection dropped after ${start + written}${meta.size !== undefined ? ` of ${meta.size}` : ""} bytes (${why})` };
  } finally {
    clearTimeout(timer);
  }
}

/** The digest the etag names: sha256 for LFS files (64 hex), git's blob sha1 otherwise (40 hex); else none. */
function blobChecksum(file: string, etag: string): string | undefined {
  if (/^[0-9a-f]{64}$/i.test(etag)) return fileDigest(file, "sha256");
  if (/^[0-9a-f]{40}$/i.test(etag)) return fileDigest(file, "sha1", `blob ${fs.statSync(file).size}\0`);
  return undefined;
}
