// Dataset downloads: stream to a temporary file beside the target, verify size and sha256, then rename, so the cache
// only ever holds complete, verified files and an interrupted download leaves nothing behind.
import { createHash, env, fs, homedir, path, pid } from "./platform";
import { userError } from "./errors";
import { asWriteError, ensureDir, fileDigest, persisted, renameOrFail } from "./fsutil";
import { progress, type ProgressSink } from "./progress";

export interface DownloadOptions {
  sha256?: string; // hex; checked after the last byte
  size?: number; // bytes; checked after the last byte
  label?: string; // progress label
  sink?: ProgressSink; // where progress goes (default: stderr or the notebook display)
}

/** The cache root: $BERTQA_CACHE, else ~/.cache/bert-qa-workbook. */
export function cacheDir(): string {
  const dir = env.BERTQA_CACHE;
  return dir !== undefined && dir !== "" ? path.resolve(dir) : path.join(homedir(), ".cache", "bert-qa-workbook");
}

/**
 * Download `url` to `dest` unless a verified copy is already there; returns `dest`.
 * `await downloadFile("https://example.org/a.json", "/tmp/a.json", { sha256: "ab12..." })`
 */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<string> {
  if (fs.existsSync(dest) && (await cachedCopyOk(dest, opts))) return dest;
  ensureDir(path.dirname(path.resolve(dest)), "the download cache");
  const tmp = `${dest}.tmp-${pid}`;
  try {
    const { bytes, sha256 } = await streamToFile(url, tmp, opts);
    checkDigest(url, bytes, sha256, opts);
    renameOrFail(tmp, dest, `the download of ${url}`);
    await persisted(`the download of ${url}`, dest); // in a browser: in storage before it is used
  } catch (e) {
    throw asWriteError(e, dest, `the download of ${url}`, fs.existsSync(tmp) ? fs.statSync(tmp).size : undefined); // disk full, read-only cache: one line
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return dest;
}

// Files reach dest only through the verified rename below, so a size check suffices unless a checksum is known.
async function cachedCopyOk(dest: string, opts: DownloadOptions): Promise<boolean> {
  if (opts.size !== undefined && fs.statSync(dest).size !== opts.size) return false;
  if (opts.sha256 === undefined) return true;
  return fileDigest(dest, "sha256") === opts.sha256.toLowerCase();
}

function checkDigest(url: string, bytes: number, sha256: string, opts: DownloadOptions): void {
  const fix = "the server sent a different file; try again later or point BERTQA_DATASETS_URL at a faithful mirror";
  if (opts.size !== undefined && bytes !== opts.size) {
    throw userError(url, `size mismatch: expected ${opts.size} bytes, got ${bytes}`, fix);
  }
  if (opts.sha256 !== undefined && sha256 !== opts.sha256.toLowerCase()) {
    throw userError(url, `sha256 mismatch: expected ${opts.sha256.toLowerCase()}, got ${sha256}`, fix);
  }
}

async function streamToFile(url: string, tmp: string, opts: DownloadOptions): Promise<{ bytes: number; sha256: string }> {
  const netFix = "check the network, or set BERTQA_DATASETS_URL to a mirror; nothing was written";
  let res: Response;
  try {
    res = await fetch(url, { redirect: "follow" });
  } catch (e) {
    throw userError(url, `download failed: ${errorText(e)}`, netFix);
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel().catch(() => undefined);
    throw userError(url, `download failed: HTTP ${res.status} ${res.statusText}`.trimEnd(), "check the URL or mirror; nothing was written");
  }
  // fetch inflates gzip'd bodies (GitHub Pages compresses JSON): content-length then counts compressed bytes
  const encoding = res.headers.get("content-encoding");
  const declared = encoding === null || encoding === "identity" ? Number(res.headers.get("content-length") ?? NaN) : NaN;
  const total = Number.isFinite(declared) ? declared : opts.size ?? 0;
  const bar = progress(opts.label ?? path.basename(new URL(url).pathname), total, opts.sink);
  const hash = createHash("sha256");
  const fd = fs.openSync(tmp, "w");
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      fs.writeSync(fd, chunk);
      bytes += chunk.length;
      bar.update(bytes);
    }
  } catch (e) {
    throw userError(url, `download interrupted after ${bytes} bytes: ${errorText(e)}`, netFix);
  } finally {
    fs.closeSync(fd);
  }
  if (Number.isFinite(declared) && bytes !== declared) {
    throw userError(url, `download ended after ${bytes} of ${declared} bytes`, netFix);
  }
  bar.finish();
  return { bytes, sha256: hash.digest("hex") };
}

function errorText(e: unknown): string {
  const err = e as Error & { cause?: Error };
  return err.cause?.message ? `${err.message} (${err.cause.message})` : String(err.message ?? e);
}

// ---- official dataset sources ----

export type DatasetName = "squad-v1.1" | "squad-v2.0" | "cmrc2018";
export type DatasetSplit = "train" | "dev";
export interface DatasetSource {
  url: string;
  size?: number;
  sha256?: string;
}

const SQUAD_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/";
// CMRC2018 pinned to a commit so the checksum keeps meaning something (ymcui/cmrc2018, "update evaluate script").
const CMRC_URL = "https://raw.githubusercontent.com/ymcui/cmrc2018/c0eb1b6ba219847457e6af3180da722bbeb656af/squad-style-data/";

/**
 * Sizes and sha256 as published by ParlAI's SQuAD build scripts and HF datasets' squad dataset_infos.json (SQuAD);
 * CMRC2018 dev measured from the git blob at the pinned commit. CMRC2018 train: no published checksum found, so
 * it is downloaded unverified.
 */
export const DATASET_SOURCES: Record<DatasetName, Record<DatasetSplit, DatasetSource>> = {
  "squad-v1.1": {
    train: { url: SQUAD_URL + "train-v1.1.json", size: 30288272, sha256: "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955" },
    dev: { url: SQUAD_URL + "dev-v1.1.json", size: 4854279, sha256: "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9" },
  },
  "squad-v2.0": {
    train: { url: SQUAD_URL + "train-v2.0.json", size: 42123633, sha256: "68dcfbb971bd3e96d5b46c7177b16c1a4e7d4bdef19fb204502738552dede002" },
    dev: { url: SQUAD_URL + "dev-v2.0.json", size: 4370528, sha256: "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8" },
  },
  cmrc2018: {
    train: { url: CMRC_URL + "cmrc2018_train.json" },
    dev: { url: CMRC_URL + "cmrc2018_dev.json", size: 3299139, sha256: "e9ff74231f05c230c6fa88b84441ee334d97234cbb610991cd94b82db00c7f1f" },
  },
};

/**
 * Fetch an official dataset split into the cache (once) and return its local path. `baseUrl` (or
 * $BERTQA_DATASETS_URL) replaces the directory part of the URL, for mirrors and tests; checksums still apply.
 * `const file = await downloadDataset("squad-v1.1", "dev")`
 */
export async function downloadDataset(name: DatasetName, split: DatasetSplit,
  opts: { cacheDir?: string; baseUrl?: string; sink?: ProgressSink } = {}): Promise<string> {
  const splits = DATASET_SOURCES[name];
  if (splits === undefined) {
    throw userError("downloadDataset", `unknown dataset ${JSON.stringify(name)}`, `use one of ${Object.keys(DATASET_SOURCES).join(", ")}`);
  }
  const src = splits[split];
  if (src === undefined) throw userError("downloadDataset", `unknown split ${JSON.stringify(split)}`, 'use "train" or "dev"');
  const fileName = new URL(src.url).pathname.split("/").pop() ?? "";
  const base = opts.baseUrl ?? env.BERTQA_DATASETS_URL;
  const url = base !== undefined && base !== "" ? `${base.replace(/\/+$/, "")}/${fileName}` : src.url;
  const dest = path.join(opts.cacheDir ?? cacheDir(), "datasets", name, fileName);
  return downloadFile(url, dest, { sha256: src.sha256, size: src.size, label: `${name} ${split}`, sink: opts.sink });
}
