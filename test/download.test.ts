import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { isUserError } from "../lib/errors";
import { cacheDir, DATASET_SOURCES, downloadDataset, downloadFile } from "../lib/download";
import { silentSink, type ProgressState } from "../lib/progress";

const BODY = crypto.randomBytes(200_000); // several chunks, so progress and hashing see a stream
const SHA = crypto.createHash("sha256").update(BODY).digest("hex");
const CMRC_BODY = Buffer.from(JSON.stringify({ version: "v1.0", data: [] }));
const hits: Record<string, number> = {};
let server: http.Server;
let base = "";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-download-"));

before(async () => {
  server = http.createServer((req, res) => {
    const url = req.url ?? "";
    hits[url] = (hits[url] ?? 0) + 1;
    if (url === "/file.bin" || url === "/mirror/dev-v1.1.json") {
      res.writeHead(200, { "content-length": BODY.length });
      res.end(BODY);
    } else if (url === "/mirror/cmrc2018_train.json") {
      res.writeHead(200, { "content-length": CMRC_BODY.length });
      res.end(CMRC_BODY);
    } else if (url === "/gzip.bin") {
      const gz = zlib.gzipSync(BODY); // as GitHub Pages serves JSON
      res.writeHead(200, { "content-length": gz.length, "content-encoding": "gzip" });
      res.end(gz);
    } else if (url === "/drop.bin") {
      res.writeHead(200, { "content-length": BODY.length });
      res.write(BODY.subarray(0, 50_000), () => res.socket?.destroy()); // the server dies mid-body
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not here");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function userErrorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(isUserError(e), `expected a UserError, got ${String(e)}`);
    return (e as Error).message;
  }
  assert.fail("expected an error");
}

/** Files in `dir` other than the expected ones (a temporary file left behind shows up here). */
const leftovers = (dir: string, keep: string[] = []) => fs.readdirSync(dir).filter((f) => !keep.includes(f));

test("downloads, verifies size and sha256, reports progress, leaves no temporary file", async () => {
  const dir = path.join(tmp, "ok");
  const dest = path.join(dir, "file.bin");
  const states: ProgressState[] = [];
  const out = await downloadFile(`${base}/file.bin`, dest, { sha256: SHA, size: BODY.length, sink: (s) => states.push({ ...s }) });
  assert.equal(out, dest);
  assert.ok(fs.readFileSync(dest).equals(BODY));
  assert.deepEqual(leftovers(dir, ["file.bin"]), []);
  const last = states[states.length - 1];
  assert.equal(last.finished, true);
  assert.equal(last.done, BODY.length);
  assert.equal(last.total, BODY.length);
});

test("a gzip-encoded response is stored inflated and verified against the file's own size and sha256", async () => {
  const dest = path.join(tmp, "gz", "file.bin");
  await downloadFile(`${base}/gzip.bin`, dest, { sha256: SHA, size: BODY.length, sink: silentSink });
  assert.ok(fs.readFileSync(dest).equals(BODY));
});

test("a verified file in place is a cache hit: no request", async () => {
  const dest = path.join(tmp, "cache", "file.bin");
  await downloadFile(`${base}/file.bin`, dest, { sha256: SHA, sink: silentSink });
  const before = hits["/file.bin"];
  await downloadFile(`${base}/file.bin`, dest, { sha256: SHA, size: BODY.length, sink: silentSink });
  await downloadFile(`${base}/file.bin`, dest, { sink: silentSink });
  assert.equal(hits["/file.bin"], before);
});

test("a cached copy that fails its size or checksum is downloaded again", async () => {
  const dest = path.join(tmp, "stale", "file.bin");
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.writeFileSync(dest, "old junk");
  const before = hits["/file.bin"] ?? 0;
  await downloadFile(`${base}/file.bin`, dest, { size: BODY.length, sink: silentSink });
  assert.ok(fs.readFileSync(dest).equals(BODY));
  fs.writeFileSync(dest, Buffer.concat([BODY.subarray(1), Buffer.from("x")])); // same size, different bytes
  await downloadFile(`${base}/file.bin`, dest, { size: BODY.length, sha256: SHA, sink: silentSink });
  assert.ok(fs.readFileSync(dest).equals(BODY));
  assert.equal(hits["/file.bin"], before + 2);
});

test("wrong sha256 or size: UserError naming URL, expected and actual; nothing left behind", async () => {
  const dir = path.join(tmp, "bad-sum");
  const dest = path.join(dir, "file.bin");
  const wrong = "0".repeat(64);
  const msg = await userErrorOf(downloadFile(`${base}/file.bin`, dest, { sha256: wrong, sink: silentSink }));
  assert.match(msg, new RegExp(`^${base}/file\\.bin: sha256 mismatch: expected ${wrong}, got ${SHA}`));
  const msg2 = await userErrorOf(downloadFile(`${base}/file.bin`, dest, { size: 123, sink: silentSink }));
  assert.match(msg2, new RegExp(`file\\.bin: size mismatch: expected 123 bytes, got ${BODY.length}`));
  assert.equal(fs.existsSync(dest), false);
  assert.deepEqual(leftovers(dir), []);
});

test("server dropping the connection mid-body: error, no partial file", async () => {
  const dir = path.join(tmp, "drop");
  const dest = path.join(dir, "drop.bin");
  const msg = await userErrorOf(downloadFile(`${base}/drop.bin`, dest, { sink: silentSink }));
  assert.match(msg, /drop\.bin: download (interrupted|ended) after \d+/);
  assert.equal(fs.existsSync(dest), false);
  assert.deepEqual(leftovers(dir), []);
});

test("HTTP 404 and refused connections give a clear error", async () => {
  const dest = path.join(tmp, "missing", "nothing.bin");
  assert.match(await userErrorOf(downloadFile(`${base}/nothing.bin`, dest, { sink: silentSink })),
    /nothing\.bin: download failed: HTTP 404 Not Found/);
  assert.equal(fs.existsSync(dest), false);
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  assert.match(await userErrorOf(downloadFile(`http://127.0.0.1:${port}/x`, dest, { sink: silentSink })),
    /download failed: .*check the network/);
});

test("downloadDataset: mirrors via baseUrl or BERTQA_DATASETS_URL, still checked against the official checksum", async () => {
  const cache = path.join(tmp, "datasets-cache");
  // the mirror serves the wrong bytes for SQuAD dev: the official size/sha256 must reject them
  const msg = await userErrorOf(downloadDataset("squad-v1.1", "dev", { cacheDir: cache, baseUrl: `${base}/mirror/`, sink: silentSink }));
  assert.ok(msg.startsWith(`${base}/mirror/dev-v1.1.json: size mismatch: expected ${DATASET_SOURCES["squad-v1.1"].dev.size}`), msg);
  assert.equal(fs.existsSync(path.join(cache, "datasets", "squad-v1.1", "dev-v1.1.json")), false);
  // CMRC2018 train has no published checksum: accepted as served, then cached
  process.env.BERTQA_DATASETS_URL = `${base}/mirror`;
  try {
    const file = await downloadDataset("cmrc2018", "train", { cacheDir: cache, sink: silentSink });
    assert.equal(file, path.join(cache, "datasets", "cmrc2018", "cmrc2018_train.json"));
    assert.ok(fs.readFileSync(file).equals(CMRC_BODY));
    await downloadDataset("cmrc2018", "train", { cacheDir: cache, sink: silentSink });
    assert.equal(hits["/mirror/cmrc2018_train.json"], 1);
  } finally {
    delete process.env.BERTQA_DATASETS_URL;
  }
});

test("official sources: SQuAD from rajpurkar.github.io with size and sha256, CMRC2018 from ymcui/cmrc2018", () => {
  for (const name of ["squad-v1.1", "squad-v2.0"] as const) {
    for (const split of ["train", "dev"] as const) {
      const src = DATASET_SOURCES[name][split];
      assert.match(src.url, /^https:\/\/rajpurkar\.github\.io\/SQuAD-explorer\/dataset\/(train|dev)-v(1\.1|2\.0)\.json$/);
      assert.match(src.sha256 ?? "", /^[0-9a-f]{64}$/);
      assert.ok((src.size ?? 0) > 1_000_000);
    }
  }
  assert.match(DATASET_SOURCES.cmrc2018.dev.url, /^https:\/\/raw\.githubusercontent\.com\/ymcui\/cmrc2018\/[0-9a-f]{40}\/squad-style-data\/cmrc2018_dev\.json$/);
});

test("cacheDir: BERTQA_CACHE, else ~/.cache/bert-qa-workbook", () => {
  const saved = process.env.BERTQA_CACHE;
  try {
    process.env.BERTQA_CACHE = path.join(tmp, "c");
    assert.equal(cacheDir(), path.join(tmp, "c"));
    delete process.env.BERTQA_CACHE;
    assert.equal(cacheDir(), path.join(os.homedir(), ".cache", "bert-qa-workbook"));
  } finally {
    if (saved !== undefined) process.env.BERTQA_CACHE = saved;
  }
});
