// Hub downloads against a Hub imitation on 127.0.0.1 (HF_ENDPOINT / { endpoint }): the cache layout huggingface_hub
// uses, each failure as one UserError line (network, unknown model or revision, gated/private, 5xx after retries,
// a bad checksum), a connection dropped mid-file then resumed with Range, and a cache written here in Python's layout
// used offline. The CLI prints such a failure as one line with exit code 1.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { isUserError } from "../lib/errors";
import { cachedSnapshot, hubCacheDir } from "../lib/hub";
import { downloadModel } from "../lib/weights";
import { silentSink } from "../lib/progress";

const ROOT = path.join(__dirname, "..");
const FIXTURE = path.join(__dirname, "fixtures", "tiny-bert-qa");
const COMMIT = "c0ffee0000000000000000000000000000000001";
const TOKEN = "hf_test_token";
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-hub-"));

const CONFIG = fs.readFileSync(path.join(FIXTURE, "config.json"));
const WEIGHTS = fs.readFileSync(path.join(FIXTURE, "model.safetensors"));
const VOCAB = Buffer.from("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
const gitSha1 = (b: Buffer) => crypto.createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

interface FakeRepo { files: Record<string, Buffer>; lfs: string[]; token?: string; gated?: boolean }
type Fault = "drop" | "corrupt" | "ignore-range" | number; // a number: answer with that HTTP status
const repo = (extra: Partial<FakeRepo> = {}): FakeRepo => ({ files: { "config.json": CONFIG, "model.safetensors": WEIGHTS, "vocab.txt": VOCAB }, lfs: ["model.safetensors"], ...extra });
const REPOS: Record<string, FakeRepo> = {
  "org/public": repo(), "org/dropped": repo(), "org/no-range": repo(), "org/flaky": repo(), "org/down": repo(),
  "org/corrupt": repo(), "org/private": repo({ token: TOKEN }), "org/gated": repo({ gated: true }), "org/cached": repo(),
};
/** Faults by "METHOD path": given how many times that request was seen (1 = first), what to do instead of answering. */
const faults: Record<string, (n: number) => Fault | undefined> = {
  "GET /cdn/dropped": (n) => (n === 1 ? "drop" : undefined),
  "GET /cdn/no-range": (n) => (n === 1 ? "drop" : "ignore-range"),
  "HEAD /org/flaky/resolve/main/config.json": (n) => (n <= 2 ? 503 : undefined),
  "HEAD /org/down/resolve/main/config.json": () => 500,
  "GET /cdn/corrupt": () => "corrupt",
};
const seen: Record<string, number> = {};
const requests: { method: string; url: string; range?: string; auth?: string }[] = [];
let server: http.Server;
let endpoint = "";

function send(res: http.ServerResponse, req: http.IncomingMessage, body: Buffer, headers: Record<string, string | number>, fault?: Fault): void {
  const range = fault === "ignore-range" ? undefined : req.headers.range?.match(/^bytes=(\d+)-$/);
  const from = range ? Number(range[1]) : 0;
  const part = body.subarray(from);
  const status = range ? 206 : 200;
  res.writeHead(status, { ...headers, "Content-Length": part.length, "Accept-Ranges": "bytes", ...(range && { "Content-Range": `bytes ${from}-${body.length - 1}/${body.length}` }) });
  if (req.method === "HEAD") return void res.end();
  if (fault === "drop") return void res.write(part.subarray(0, Math.floor(part.length / 2)), () => res.socket?.destroy());
  if (fault === "corrupt") return void res.end(Buffer.from(part).fill(0x41, 0, 16));
  res.end(part);
}

before(async () => {
  server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? "");
    const key = `${req.method} ${url}`;
    seen[key] = (seen[key] ?? 0) + 1;
    requests.push({ method: req.method ?? "", url, range: req.headers.range, auth: req.headers.authorization });
    const fault = faults[key]?.(seen[key]);
    if (typeof fault === "number") return void res.writeHead(fault, { "Content-Type": "text/plain" }).end("trouble");
    const cdn = url.match(/^\/cdn\/([\w-]+)$/);
    if (cdn) return send(res, req, REPOS[`org/${cdn[1]}`].files["model.safetensors"], { "Content-Type": "application/octet-stream" }, fault);
    if (url.startsWith("/portal/")) return void res.writeHead(200, { "Content-Type": "text/html" }).end("<html>Sign in to the Wi-Fi</html>");
    const m = url.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    const r = m ? REPOS[m[1]] : undefined;
    const authorized = r?.token === undefined || req.headers.authorization === `Bearer ${r.token}`;
    if (!m || !r || !authorized) return void res.writeHead(401, { "X-Error-Code": "RepoNotFound" }).end("Repository Not Found");
    if (r.gated) return void res.writeHead(403, { "X-Error-Code": "GatedRepo" }).end("Access restricted");
    if (m[2] !== "main" && m[2] !== COMMIT) return void res.writeHead(404, { "X-Error-Code": "RevisionNotFound" }).end();
    const body = r.files[m[3]];
    if (body === undefined) return void res.writeHead(404, { "X-Error-Code": "EntryNotFound" }).end();
    if (r.lfs.includes(m[3])) { // as the Hub: a redirect to the file store, the blob's sha256 and size in X-Linked-*
      return void res.writeHead(302, {
        Location: `${endpoint}/cdn/${m[1].split("/")[1]}`, "X-Repo-Commit": COMMIT, "X-Linked-Etag": `"${sha256(body)}"`,
        "X-Linked-Size": body.length, ETag: `"${gitSha1(Buffer.from("a git-lfs pointer"))}"`,
      }).end();
    }
    send(res, req, body, { "X-Repo-Commit": COMMIT, ETag: `"${gitSha1(body)}"`, "Content-Type": "text/plain" }, fault);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  fs.rmSync(TMP, { recursive: true, force: true });
});

let n = 0;
const freshCache = () => path.join(TMP, `cache${n++}`);
const opts = (cacheDir: string) => ({ endpoint, cacheDir, retryBaseMs: 1, sink: silentSink });

async function hubErrorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(isUserError(e), `expected a UserError, got ${String((e as Error).stack ?? e)}`);
    assert.ok(!(e as Error).message.includes("\n"), "one line");
    return (e as Error).message;
  }
  assert.fail("expected an error");
}

/** A closed port: connection refused, the way a machine without network fails fast. */
async function deadEndpoint(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

/** Python's layout: refs/main → commit, snapshots/<commit>/<file> → ../../blobs/<etag>, blobs named by etag. */
function assertPythonLayout(cacheDir: string, id: string): string {
  const repoDir = path.join(cacheDir, `models--${id.replace("/", "--")}`);
  assert.equal(fs.readFileSync(path.join(repoDir, "refs", "main"), "utf8"), COMMIT);
  const snap = path.join(repoDir, "snapshots", COMMIT);
  assert.equal(fs.readlinkSync(path.join(snap, "model.safetensors")), path.join("..", "..", "blobs", sha256(WEIGHTS)), "LFS blob named by its sha256");
  assert.equal(fs.readlinkSync(path.join(snap, "config.json")), path.join("..", "..", "blobs", gitSha1(CONFIG)), "git file named by its blob id");
  assert.ok(fs.readFileSync(path.join(snap, "model.safetensors")).equals(WEIGHTS));
  assert.ok(fs.readFileSync(path.join(snap, "vocab.txt")).equals(VOCAB));
  assert.deepEqual(fs.readdirSync(path.join(repoDir, "blobs")).filter((f) => f.endsWith(".incomplete")), [], "no partial file left");
  return snap;
}

test("a download lands in huggingface_hub's cache layout (blob names = etags), from the file store the Hub redirects to", async () => {
  const cacheDir = freshCache();
  const dir = await downloadModel("org/public", opts(cacheDir));
  assert.equal(dir, assertPythonLayout(cacheDir, "org/public"));
  assert.ok(requests.some((r) => r.method === "GET" && r.url === "/cdn/public"), "LFS content fetched from the redirect target");
  assert.ok(requests.some((r) => r.method === "HEAD" && r.url === `/org/public/resolve/${COMMIT}/model.safetensors`), "later files pinned to the commit");
  const before = requests.length;
  assert.equal(await downloadModel("org/public", opts(cacheDir)), dir);
  assert.ok(!requests.slice(before).some((r) => r.method === "GET"), "a second call downloads nothing");
});

test("a connection dropped mid-file resumes from the partial file with Range", async () => {
  const cacheDir = freshCache();
  await downloadModel("org/dropped", opts(cacheDir));
  assertPythonLayout(cacheDir, "org/dropped");
  const gets = requests.filter((r) => r.url === "/cdn/dropped");
  assert.equal(gets.length, 2);
  assert.equal(gets[0].range, undefined);
  const half = Math.floor(WEIGHTS.length / 2);
  assert.equal(gets[1].range, `bytes=${half}-`, "the retry asks only for the rest");
});

test("a server that ignores Range: the download starts over and is still exact", async () => {
  const cacheDir = freshCache();
  await downloadModel("org/no-range", opts(cacheDir));
  assertPythonLayout(cacheDir, "org/no-range");
  assert.equal(requests.filter((r) => r.url === "/cdn/no-range").length, 2);
});

test("5xx: retried with backoff, then either succeeds or fails with one line after the retries", async () => {
  await downloadModel("org/flaky", opts(freshCache()));
  assert.equal(seen["HEAD /org/flaky/resolve/main/config.json"], 3, "two 503s, then the answer");
  const msg = await hubErrorOf(downloadModel("org/down", { ...opts(freshCache()), retries: 2 }));
  assert.match(msg, /^Hub model 'org\/down', file config\.json: .*answered HTTP 500 Internal Server Error \(3 tries\) \(try again later\)$/);
  assert.equal(seen["HEAD /org/down/resolve/main/config.json"], 3);
});

test("a checksum mismatch is an error, and nothing reaches blobs/ or snapshots/", async () => {
  const cacheDir = freshCache();
  const msg = await hubErrorOf(downloadModel("org/corrupt", opts(cacheDir)));
  assert.match(msg, new RegExp(`^Hub model 'org/corrupt', file model\\.safetensors: checksum mismatch: expected ${sha256(WEIGHTS)}, got [0-9a-f]{64} \\(nothing was kept`));
  const repoDir = path.join(cacheDir, "models--org--corrupt");
  assert.ok(!fs.existsSync(path.join(repoDir, "blobs", sha256(WEIGHTS))));
  assert.ok(!fs.existsSync(path.join(repoDir, "blobs", `${sha256(WEIGHTS)}.incomplete`)));
  assert.ok(!fs.existsSync(path.join(repoDir, "snapshots", COMMIT, "model.safetensors")));
});

test("a cache that cannot be written: one line naming the cache and the fix, not a retry", async () => {
  const file = path.join(TMP, "not-a-dir");
  fs.writeFileSync(file, "");
  const msg = await hubErrorOf(downloadModel("org/public", opts(path.join(file, "hub"))));
  assert.match(msg, /^Hub model 'org\/public', file config\.json: cannot write the cache .*not-a-dir.*\(ENOTDIR.*\(set HF_HUB_CACHE \(or HF_HOME\) to a directory you can write\)$/);
});

test("unknown model, unknown revision, private and gated models: one line naming the model, the file and the fix", async () => {
  const cacheDir = freshCache();
  assert.match(await hubErrorOf(downloadModel("org/typo", opts(cacheDir))),
    /^Hub model 'org\/typo', file config\.json: model not found, or private or gated \(HTTP 401\) \(check the model id; .*set HF_TOKEN/);
  assert.match(await hubErrorOf(downloadModel("org/public", { ...opts(cacheDir), revision: "v9" })),
    /^Hub model 'org\/public', file config\.json: no revision 'v9' \(HTTP 404\) \(give a branch, tag or commit/);
  assert.match(await hubErrorOf(downloadModel("org/gated", opts(cacheDir))), /gated model.*accept its conditions at .*\/org\/gated.*HF_TOKEN/);
  assert.match(await hubErrorOf(downloadModel("org/private", opts(cacheDir))), /model not found, or private or gated \(HTTP 401\)/);
  process.env.HF_TOKEN = TOKEN;
  const from = requests.length;
  try {
    await downloadModel("org/private", opts(cacheDir));
    assertPythonLayout(cacheDir, "org/private");
    const sent = requests.slice(from).filter((r) => r.url.startsWith("/org/private/"));
    assert.ok(sent.length > 0 && sent.every((r) => r.auth === `Bearer ${TOKEN}`), "HF_TOKEN is sent as a Bearer token");
    process.env.HF_TOKEN = "hf_wrong";
    assert.match(await hubErrorOf(downloadModel("org/private", { ...opts(cacheDir), revision: COMMIT, cacheDir: freshCache() })),
      /HF_TOKEN has no access to it \(HTTP 401\) \(check the model id, and that HF_TOKEN is a valid token/);
  } finally {
    delete process.env.HF_TOKEN;
  }
});

test("no network: one line with the cause and the offline fix; a cached snapshot is used instead, with a warning", async () => {
  const dead = await deadEndpoint();
  const cacheDir = freshCache();
  const msg = await hubErrorOf(downloadModel("org/public", { ...opts(cacheDir), endpoint: dead }));
  assert.match(msg, /^Hub model 'org\/public', file config\.json: cannot reach http:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\) \(.*HF_HUB_OFFLINE=1 loads models already in the cache .*, or pass a local model directory\)$/);
  const dir = await downloadModel("org/cached", opts(cacheDir));
  const writes: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => (writes.push(s), true)) as typeof process.stderr.write;
  try {
    assert.equal(await downloadModel("org/cached", { ...opts(cacheDir), endpoint: dead }), dir);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(writes.length, 1);
  assert.match(writes[0], /^warning: Hub model 'org\/cached', file config\.json: cannot reach .*; using the cached .*snapshots/);
});

test("a captive portal or proxy answering instead of the Hub: one line saying so, not a bad file in the cache", async () => {
  const cacheDir = freshCache();
  const msg = await hubErrorOf(downloadModel("org/public", { ...opts(cacheDir), endpoint: `${endpoint}/portal` }));
  assert.match(msg, /^Hub model 'org\/public', file config\.json: .* answered without the Hub's X-Repo-Commit\/ETag headers \(HTTP 200\) \(a proxy or captive portal/);
  assert.ok(!fs.existsSync(path.join(cacheDir, "models--org--public")), "nothing written");
});

test("a cache written in Python's layout (HF_HUB_CACHE) is used offline with HF_HUB_OFFLINE=1, and only that", async () => {
  // What huggingface_hub leaves after from_pretrained("org/python-made"), built by hand.
  const cacheDir = freshCache();
  const repoDir = path.join(cacheDir, "models--org--python-made");
  const snap = path.join(repoDir, "snapshots", COMMIT);
  fs.mkdirSync(path.join(repoDir, "blobs"), { recursive: true });
  fs.mkdirSync(snap, { recursive: true });
  fs.mkdirSync(path.join(repoDir, "refs"));
  fs.writeFileSync(path.join(repoDir, "refs", "main"), COMMIT);
  for (const [file, bytes, etag] of [["config.json", CONFIG, gitSha1(CONFIG)], ["model.safetensors", WEIGHTS, sha256(WEIGHTS)]] as const) {
    fs.writeFileSync(path.join(repoDir, "blobs", etag), bytes);
    fs.symlinkSync(path.join("..", "..", "blobs", etag), path.join(snap, file));
  }
  const saved = { ...process.env };
  process.env.HF_HUB_CACHE = cacheDir;
  process.env.HF_HUB_OFFLINE = "1";
  process.env.HF_ENDPOINT = await deadEndpoint();
  try {
    assert.equal(hubCacheDir(), cacheDir);
    assert.equal(cachedSnapshot("org/python-made"), snap);
    assert.equal(await downloadModel("org/python-made"), snap);
    const { loadModel } = await import("../lib/weights");
    const { model } = await loadModel("org/python-made", "qa");
    const { disposeModel } = await import("../lib/bert");
    disposeModel(model);
    process.env.HF_HUB_OFFLINE = "true"; // huggingface_hub's other spellings count too
    assert.match(await hubErrorOf(downloadModel("org/elsewhere")), /^Hub model 'org\/elsewhere': not in the cache .*HF_HUB_OFFLINE=1 forbids downloading \(unset HF_HUB_OFFLINE.*HF_HUB_CACHE.*local model directory\)$/);
  } finally {
    for (const k of ["HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT"]) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
  }
});

test("CLI: a Hub failure is one line on stderr and exit code 1, never an internal error", async () => {
  const run = async (env: Record<string, string>, model: string) => {
    try {
      await promisify(execFile)(process.execPath, [path.join(ROOT, "lib", "cli", "bertqa.js"), "convert", "--model", model, "--out", path.join(TMP, "out")],
        { cwd: ROOT, env: { ...process.env, HF_HUB_CACHE: freshCache(), ...env }, timeout: 60_000 });
    } catch (e) {
      return e as { code: number; stdout: string; stderr: string };
    }
    assert.fail("expected exit 1");
  };
  const offline = await run({ HF_ENDPOINT: await deadEndpoint() }, "org/public");
  assert.equal(offline.code, 1);
  assert.equal(offline.stderr.trim().split("\n").length, 1, offline.stderr);
  assert.match(offline.stderr, /^error: Hub model 'org\/public', file config\.json: cannot reach .*HF_HUB_OFFLINE=1/);
  const missing = await run({ HF_ENDPOINT: endpoint }, "org/typo");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: Hub model 'org\/typo', file config\.json: model not found.*\n$/);
  assert.doesNotMatch(offline.stderr + missing.stderr, /internal error|\n\s+at /);
});
