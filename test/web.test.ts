// The library in a web page (issue 28), in Debian's Chromium through puppeteer-core, served on 127.0.0.1 by
// lib/cli/serve.ts. The bundle holds no Node module and its browser side type-checks against Node's; the demo page
// (lib/web/demo.html) trains the tiny model in a Web Worker on wasm threads and on WebGPU (SwiftShader) with the
// losses Node gets on the same backend and seed, and Node scores the page's checkpoint with the page's EM/F1; ■, a
// reload and resume end where an uninterrupted run ends; a page without cross-origin isolation trains on one thread
// and says so once; a full storage quota and a lost GPU device are one line each and keep the last checkpoint.
// Skipped without Chromium (apt-get install chromium), as in CI's .ci/run.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { unzipSync } from "fflate";
import type { Browser, Page } from "puppeteer-core";
import { bundle, type BundleResult } from "../lib/cli/bundle";
import { startServer, type Server } from "../lib/cli/serve";

const ROOT = path.resolve(__dirname, "..");
const CHROMIUM = [process.env.BERTQA_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => p !== undefined && fs.existsSync(p));
const skip = CHROMIUM === undefined ? "no Chromium (apt-get install chromium)" : false;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-web-"));
const BUNDLE = path.join(TMP, "browser");
const SHOTS = path.join(TMP, "screenshots");
// A quick job: a few steps on the first training questions, scored on the first dev questions, a loss every step.
const JOB = { maxTrain: 200, maxDev: 40, seed: 7, logSteps: 1, overwriteOutputDir: true } as const;

let built: BundleResult;
let isolated: Server, plain: Server;
let browser: Browser;

before(async () => {
  if (skip !== false) return;
  built = await bundle({ outDir: BUNDLE, minify: false });
  [isolated, plain] = await Promise.all([startServer({ root: BUNDLE }), startServer({ root: BUNDLE, isolated: false })]);
  const puppeteer = await import("puppeteer-core");
  browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true, protocolTimeout: 1_200_000, userDataDir: path.join(TMP, "profile"),
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
      "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"],
  });
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await Promise.all([isolated?.close(), plain?.close()]);
  if (skip === false) process.stderr.write(`web test: screenshots in ${SHOTS}\n`);
});

interface Summary { exact: number; f1: number; total: number; steps: number; stopped: string; backend: string; losses: number[]; out: string }

/** The demo page, ready (its worker started, the backends diagnosed); its stderr lines are collected in `logs`. */
async function openDemo(server: Server): Promise<{ page: Page; logs: string[] }> {
  const page = await browser.newPage();
  const logs: string[] = [];
  page.on("console", (m) => logs.push(m.text()));
  page.on("pageerror", (e) => logs.push(`pageerror: ${(e as Error).message}`));
  await page.goto(`${server.url}demo.html`);
  await page.evaluate("bertqaDemo.ready");
  return { page, logs };
}

/** Run the demo job in the page; resolves to its summary or to { error, stopped }. */
function train(page: Page, options: object): Promise<Summary & { error?: string; isStopped?: boolean }> {
  return page.evaluate((o) => (window as unknown as { bertqaDemo: { train(o: object): Promise<unknown> } }).bertqaDemo.train(o)
    .then((s) => s, (e: Error & { stopped?: boolean }) => ({ error: e.message, isStopped: e.stopped })), options) as Promise<Summary & { error?: string; isStopped?: boolean }>;
}

/** Start `job` (40 steps) in the page and press ■ once its progress display is past step `after`; resolves to the
 * step it stopped at (its checkpoint's), from the one line the run ends with. */
async function trainAndStop(page: Page, job: object, after: number): Promise<number> {
  const running = train(page, { ...job, steps: 40 });
  await page.waitForFunction((n) => Number(/\b(\d+)\/40\b/.exec(document.getElementById("progress")!.innerText)?.[1] ?? 0) >= n, { timeout: 600_000, polling: 50 }, after);
  await page.click("#stop");
  const stopped = await running;
  assert.equal(stopped.isStopped, true, JSON.stringify(stopped));
  assert.ok(!stopped.error!.includes("\n"), "one line");
  const at = Number(/^training stopped \(■\) at step (\d+) of 40: checkpoint in runs\/\S+\/checkpoint; to continue, train again with resume/.exec(stopped.error ?? "")?.[1]);
  assert.ok(at >= after && at < 40, `where it stopped: ${stopped.error}`);
  return at;
}

/** The same job in Node (a process of its own), on `backend`. */
function nodeDemo(options: object, env: Record<string, string> = {}): Summary {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, "web-reference.ts"), "demo", JSON.stringify({ ...options, out: path.join(TMP, `node-${Date.now()}`) })],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env }, timeout: 900_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Summary;
}

/** Node's EM/F1 for the model in `dir` (a run folder the page kept). */
function nodeScore(dir: string, backend: string, maxDev: number): { exact: number; f1: number } {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, "web-reference.ts"), "score", dir, JSON.stringify({ backend, maxDev })], { cwd: ROOT, encoding: "utf8", timeout: 900_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { exact: number; f1: number };
}

/** A run folder from the page's storage, through the page's own download (a zip), unpacked under TMP. */
async function download(page: Page, dir: string): Promise<string> {
  const bytes = await page.evaluate(async (d) => Array.from(await (window as unknown as { bertqaDemo: { zip(d: string): Promise<Uint8Array> } }).bertqaDemo.zip(d)), dir);
  const out = path.join(TMP, `download-${Date.now()}`);
  for (const [name, data] of Object.entries(unzipSync(Uint8Array.from(bytes)))) {
    fs.mkdirSync(path.dirname(path.join(out, name)), { recursive: true });
    fs.writeFileSync(path.join(out, name), data);
  }
  return path.join(out, path.basename(dir));
}

function assertClose(got: number[], want: number[], rel: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: ${got.length} losses, Node logged ${want.length}`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= rel * Math.abs(want[i]), `${what}, step ${i + 1}: browser ${g}, Node ${want[i]} (relative tolerance ${rel})`));
}

function nodeHasWebgpu(): boolean {
  const r = spawnSync(process.execPath, ["lib/cli/bertqa.js", "doctor"], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  return /webgpu[^\n]*(yes|available)/i.test(r.stdout) && !/webgpu[^\n]*\bno\b/i.test(r.stdout.split("\n").find((l) => /webgpu/.test(l)) ?? "");
}

test("the bundle holds no Node module, and the browser side of the seam type-checks against Node's", { skip }, () => {
  assert.deepEqual(built.nodeModules, [], "node: modules reached the bundle");
  for (const f of built.files.filter((f) => f.endsWith(".js") && !f.startsWith("files/") && !f.startsWith("packages/"))) {
    const text = fs.readFileSync(path.join(BUNDLE, f), "utf8");
    assert.doesNotMatch(text, /(from|import|require\()\s*["']node:/, `${f} imports a node: module`);
  }
  const r = spawnSync(path.join(ROOT, "node_modules", ".bin", "tsc"), ["-p", "lib/web", "--noEmit"], { cwd: ROOT, encoding: "utf8" }); // as npm run typecheck
  assert.equal(r.status, 0, r.stdout);
});

test("wasm with threads in a page: the losses of Node's wasm backend, and Node scores the page's checkpoint with the page's EM/F1", { skip }, async () => {
  const { page, logs } = await openDemo(isolated);
  const job = { ...JOB, steps: 6, backend: "wasm", out: "runs/wasm" };
  const got = await train(page, job);
  assert.equal(got.error, undefined, got.error);
  assert.ok(logs.some((l) => /backend wasm \(XNNPACK threaded SIMD build, [2-8] threads/.test(l)), `threads used: ${logs.find((l) => /backend wasm/.test(l))}`);
  const want = nodeDemo(job);
  assertClose(got.losses, want.losses, 1e-6, "wasm");
  const dir = await download(page, "runs/wasm");
  assert.ok(["config.json", "model.safetensors", "metrics.jsonl", "checkpoint/trainer_state.json", "report.md"].every((f) => fs.existsSync(path.join(dir, f))), `downloaded: ${fs.readdirSync(dir)}`);
  const node = nodeScore(dir, "wasm", JOB.maxDev);
  assert.deepEqual({ exact: node.exact, f1: node.f1 }, { exact: got.exact, f1: got.f1 });
  await page.screenshot({ path: path.join(SHOTS, "wasm.png"), fullPage: true });
  await page.close();
});

test("WebGPU in a page (SwiftShader): the losses of Node's WebGPU on lavapipe within 1e-4, Node scores the page's checkpoint with the page's EM/F1; a lost device is one line naming the intact checkpoint, and the run resumes on wasm", { skip }, async (t) => {
  // One page for both: SwiftShader compiles every shader on the CPU, once per worker.
  const { page } = await openDemo(isolated);
  const job = { ...JOB, maxTrain: 48, maxDev: 16, steps: 3, backend: "webgpu", out: "runs/webgpu" };
  const got = await train(page, job);
  assert.equal(got.error, undefined, got.error);
  assert.equal(got.backend, "webgpu");
  await page.screenshot({ path: path.join(SHOTS, "webgpu.png"), fullPage: true });
  if (!nodeHasWebgpu()) {
    t.diagnostic("Node has no WebGPU adapter here (lavapipe: see lib/kernels/README.md): the comparison with Node is skipped");
    assert.ok(got.losses.every(Number.isFinite));
  } else {
    assertClose(got.losses, nodeDemo(job).losses, 1e-4, "webgpu");
    const node = nodeScore(await download(page, "runs/webgpu"), "webgpu", job.maxDev);
    assert.deepEqual({ exact: node.exact, f1: node.f1 }, { exact: got.exact, f1: got.f1 });
  }
  // The device lost in the middle of a run (what a driver reset does), after a checkpoint.
  const lostJob = { ...JOB, maxTrain: 48, maxDev: 8, backend: "webgpu", out: "runs/lost" };
  const at = await trainAndStop(page, lostJob, 2);
  const running = train(page, { ...lostJob, steps: 40, resume: true, overwriteOutputDir: false });
  await page.waitForFunction((n) => Number(/\b(\d+)\/40\b/.exec(document.getElementById("progress")!.innerText)?.[1] ?? 0) > n, { timeout: 600_000, polling: 50 }, at);
  const worker = page.workers().find((w) => w.url().endsWith("/trainer.js"));
  assert.ok(worker !== undefined, "the trainer worker");
  await worker.evaluate(() => (globalThis as unknown as { _tfengine: { backend: { device: { destroy(): void } } } })._tfengine.backend.device.destroy());
  const lost = await running;
  assert.match(lost.error ?? "", new RegExp(`^training step \\d+: the GPU device was lost \\(.+\\); the last checkpoint \\(step ${at}\\) in runs/lost/checkpoint is intact \\(continue on another backend: train again with resume: "runs/lost" and the wasm backend`), lost.error);
  assert.ok(!lost.error!.includes("\n"));
  const resumed = await train(page, { ...lostJob, steps: 40, resume: true, overwriteOutputDir: false, backend: "wasm" });
  assert.equal(resumed.error, undefined, resumed.error);
  assert.equal(resumed.steps, 40);
  await page.close();
});

test("■ in the page, then a reload and resume: the run ends with the losses of an uninterrupted one", { skip }, async () => {
  const job = { ...JOB, steps: 40, backend: "wasm", out: "runs/stopped" };
  const { page } = await openDemo(isolated);
  await trainAndStop(page, job, 3);
  await page.screenshot({ path: path.join(SHOTS, "stopped.png"), fullPage: true });
  await page.reload();
  await page.evaluate("bertqaDemo.ready");
  const resumed = await train(page, { ...job, resume: true, overwriteOutputDir: false });
  assert.equal(resumed.error, undefined, resumed.error);
  assert.equal(resumed.steps, 40);
  assertClose(resumed.losses, nodeDemo(job).losses, 1e-6, "resumed after ■ and a reload");
  await page.close();
});

test("a page that is not cross-origin isolated trains on one thread, says so once, and matches Node's single thread", { skip }, async () => {
  const { page, logs } = await openDemo(plain);
  assert.match(await page.$eval("#isolation", (e) => e.textContent ?? ""), /not cross-origin isolated .*one thread/);
  const job = { ...JOB, steps: 3, backend: "wasm", out: "runs/single" };
  const got = await train(page, job);
  assert.equal(got.error, undefined, got.error);
  const said = logs.filter((l) => /not cross-origin isolated/.test(l));
  assert.equal(said.length, 1, `said once: ${JSON.stringify(said)}`);
  assert.match(said[0], /backend wasm \(XNNPACK SIMD build, 1 thread .*single-threaded: the page is not cross-origin isolated.*Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp/);
  assertClose(got.losses, nodeDemo(job, { BERTQA_WASM_THREADS: "1" }).losses, 1e-6, "single-threaded");
  await page.close();
});

test("a full storage quota is one line with the size and the quota, and the last checkpoint stays intact", { skip }, async () => {
  const { page } = await openDemo(isolated);
  const job = { ...JOB, backend: "wasm", out: "runs/quota" };
  const at = await trainAndStop(page, job, 2);
  const cdp = await page.createCDPSession();
  const origin = new URL(isolated.url).origin;
  const usage = await page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin, quotaSize: usage + 3_000_000 }); // less than one more checkpoint
  let full: Awaited<ReturnType<typeof train>>;
  try {
    full = await train(page, { ...job, steps: 40, resume: true, overwriteOutputDir: false });
  } finally {
    await cdp.send("Storage.overrideQuotaForOrigin", { origin }); // the browser's own quota again, whatever happened (the tests after share the origin)
  }
  const line = new RegExp(`^/runs/quota/checkpoint\\.tmp-\\d+/\\S+: cannot write the checkpoint at step \\d+ \\([\\d.]+ [kM]B\\): the browser's storage quota for this site is full \\([\\d.]+ MB used of [\\d.]+ MB\\) \\[EDQUOT\\]; the last checkpoint \\(step ${at}\\) in runs/quota/checkpoint is intact \\(delete runs you no longer need`);
  assert.match(full.error ?? "", line, full.error);
  assert.ok(!full.error!.includes("\n"));
  await page.reload();
  await page.evaluate("bertqaDemo.ready");
  const kept = await page.evaluate(async () => (await (window as unknown as { bertqaDemo: { list(d: string): Promise<{ name: string }[]> } }).bertqaDemo.list("runs/quota")).map((f) => f.name));
  assert.ok(["checkpoint/trainer_state.json", "checkpoint/model.safetensors", "checkpoint/optimizer.safetensors"].every((f) => kept.includes(f)), `kept: ${kept}`);
  const resumed = await train(page, { ...job, steps: 40, resume: true, overwriteOutputDir: false });
  assert.equal(resumed.error, undefined, resumed.error);
  assert.equal(resumed.steps, 40);
  assertClose(resumed.losses, nodeDemo({ ...job, steps: 40 }).losses, 1e-6, "resumed after the quota was raised");
  await page.close();
});

/** A Hub on 127.0.0.1 as a browser meets it (CORS): resolve answers HEAD/GET (LFS files redirect to a file store),
 * the revision API lists the files; `requests` records what was asked. Serves the model folder `dir` as `org/sample`. */
async function fakeHub(dir: string): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const http = await import("node:http");
  const crypto = await import("node:crypto");
  const COMMIT = "0123456789abcdef0123456789abcdef01234567";
  const files = new Map(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
  const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
  const gitSha1 = (b: Buffer) => crypto.createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
  const lfs = (f: string) => f.endsWith(".safetensors");
  const requests: string[] = [];
  const cors = { "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization, Range", "Access-Control-Allow-Methods": "GET, HEAD",
    "Access-Control-Expose-Headers": "X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag, X-Error-Code, Content-Range, Content-Length, Location" };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push(`${req.method} ${url.pathname}`);
    if (req.method === "OPTIONS") return void res.writeHead(204, cors).end();
    const resolve = /^\/org\/([^/]+)\/resolve\/[^/]+\/(.+)$/.exec(url.pathname), cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    const api = /^\/api\/models\/org\/([^/]+)\/revision\/[^/]+$/.exec(url.pathname);
    const repo = (resolve ?? api)?.[1];
    if (repo !== undefined && repo !== "sample") return void res.writeHead(401, { ...cors, "X-Error-Code": "RepoNotFound" }).end();
    if (api !== null) {
      const siblings = [...files].map(([f, b]) => ({ rfilename: f, blobId: gitSha1(b), size: b.length, ...(lfs(f) && { lfs: { sha256: sha256(b), size: b.length } }) }));
      return void res.writeHead(200, { ...cors, "Content-Type": "application/json" }).end(JSON.stringify({ id: "org/sample", sha: COMMIT, siblings }));
    }
    const body = resolve !== null ? files.get(resolve[2]) : [...files.values()].find((b) => cdn !== null && sha256(b) === cdn[1]);
    if (body === undefined) return void res.writeHead(404, { ...cors, "X-Error-Code": "EntryNotFound" }).end();
    if (resolve !== null && lfs(resolve[2])) {
      return void res.writeHead(302, { ...cors, Location: `/cdn/${sha256(body)}`, "X-Repo-Commit": COMMIT, "X-Linked-Etag": `"${sha256(body)}"`, "X-Linked-Size": String(body.length) }).end();
    }
    res.writeHead(200, { ...cors, "Content-Length": String(body.length), ...(resolve !== null && { "X-Repo-Commit": COMMIT, ETag: `"${gitSha1(body)}"` }) });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

test("a Hub model in a page: fetched into the browser's storage in the Hub cache's layout, used offline from there, and a missing one is Node's one line", { skip }, async () => {
  // The model to serve: a tiny BERT for the sample's vocabulary and 128-token windows, with its tokenizer.
  const dir = path.join(TMP, "hub-model");
  const made = spawnSync(process.execPath, ["--import", "tsx", "-e", `
    const { initModel, presetConfig, saveModel, loadTokenizer, SAMPLE_FILES } = require("./lib");
    const tok = loadTokenizer(SAMPLE_FILES.tokenizerDir);
    const model = initModel(presetConfig("tiny", { vocabSize: tok.idToToken.length, maxPositions: 128 }), "qa", 3);
    saveModel(model, ${JSON.stringify(dir)}, { tokenizerDir: SAMPLE_FILES.tokenizerDir });`], { cwd: ROOT, encoding: "utf8" });
  assert.equal(made.status, 0, made.stderr);
  const hub = await fakeHub(dir);
  const job = { ...JOB, maxTrain: 32, maxDev: 8, steps: 2, backend: "wasm", model: "org/sample" };
  try {
    let { page } = await openDemo(isolated);
    await page.goto(`${isolated.url}demo.html?HF_ENDPOINT=${encodeURIComponent(hub.url)}`);
    await page.evaluate("bertqaDemo.ready");
    const online = await train(page, { ...job, out: "runs/hub" });
    assert.equal(online.error, undefined, online.error);
    for (const f of ["config.json", "model.safetensors", "vocab.txt"]) assert.ok(hub.requests.some((r) => r.endsWith(`/${f}`) || r.includes("/cdn/")), `asked for ${f}: ${hub.requests}`);
    const cached = await page.evaluate(async () => (await (window as unknown as { bertqaDemo: { list(d: string): Promise<{ name: string; size: number }[]> } }).bertqaDemo.list("/home/.cache/huggingface/hub/models--org--sample")));
    const names = cached.map((f) => f.name);
    assert.ok(names.includes("refs/main") && names.some((n) => /^blobs\/[0-9a-f]{64}$/.test(n)) && names.includes("snapshots/0123456789abcdef0123456789abcdef01234567/model.safetensors"), `cache: ${names}`);
    assert.equal(cached.find((f) => f.name.endsWith("snapshots/0123456789abcdef0123456789abcdef01234567/model.safetensors"))?.size, fs.statSync(path.join(dir, "model.safetensors")).size);
    await page.close();
    // Offline, the Hub gone: from the cache, with no request.
    await hub.close();
    const asked = hub.requests.length;
    page = (await openDemo(isolated)).page;
    await page.goto(`${isolated.url}demo.html?HF_ENDPOINT=${encodeURIComponent(hub.url)}&HF_HUB_OFFLINE=1`);
    await page.evaluate("bertqaDemo.ready");
    const offline = await train(page, { ...job, out: "runs/hub-offline" });
    assert.equal(offline.error, undefined, offline.error);
    assert.equal(hub.requests.length, asked);
    assert.deepEqual(offline.losses, online.losses);
    await page.close();
  } finally {
    await hub.close().catch(() => undefined);
  }
  // A model the Hub does not have: the same line as under Node.
  const hub2 = await fakeHub(dir);
  try {
    const { page } = await openDemo(isolated);
    await page.goto(`${isolated.url}demo.html?HF_ENDPOINT=${encodeURIComponent(hub2.url)}`);
    await page.evaluate("bertqaDemo.ready");
    const missing = await train(page, { ...job, model: "org/missing", out: "runs/hub-missing" });
    const { promisify } = await import("node:util");
    const { execFile } = await import("node:child_process");
    const node = await promisify(execFile)(process.execPath, ["--import", "tsx", "-e", `require("./lib").downloadModel("org/missing").catch((e) => console.log(e.message))`],
      { cwd: ROOT, encoding: "utf8", env: { ...process.env, HF_ENDPOINT: hub2.url, HF_TOKEN: "", HF_HOME: path.join(TMP, "hf-home") } }); // not spawnSync: this process answers as the Hub
    assert.equal(missing.error, node.stdout.trim());
    assert.match(missing.error ?? "", /^Hub model 'org\/missing', file config\.json: model not found, or private or gated \(HTTP 401\)/);
    await page.close();
  } finally {
    await hub2.close();
  }
});

test("a dataset download in a page: verified into the browser's storage, kept across a reload, and a wrong checksum is one line that keeps nothing", { skip }, async () => {
  const http = await import("node:http");
  const crypto = await import("node:crypto");
  const body = fs.readFileSync(path.join(ROOT, "data", "squad-sample-dev.json"));
  const server = http.createServer((_req, res) => void res.writeHead(200, { "Access-Control-Allow-Origin": "*", "Content-Length": String(body.length) }).end(body));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/dev.json`;
  const sha256 = crypto.createHash("sha256").update(body).digest("hex");
  const run = (page: Page, source: string) => page.evaluate((s) => (window as unknown as { bertqaDemo: { run(s: string): Promise<unknown> } }).bertqaDemo.run(s).catch((e: Error) => ({ error: e.message })), source);
  try {
    const { page } = await openDemo(isolated);
    const got = await run(page, `const f = await lib.downloadFile(${JSON.stringify(url)}, lib.path.join(lib.cacheDir(), "dev.json"), { sha256: "${sha256}", size: ${body.length} });
      return { file: f, questions: lib.loadSquad(f).examples.length };`);
    assert.deepEqual(got, { file: "/home/.cache/bert-qa-workbook/dev.json", questions: 300 });
    const wrong = await run(page, `return lib.downloadFile(${JSON.stringify(url)}, "/home/.cache/bert-qa-workbook/wrong.json", { sha256: "${"0".repeat(64)}" })`) as { error?: string };
    assert.match(wrong.error ?? "", new RegExp(`^${url.replace(/[.]/g, "\\.")}: sha256 mismatch: expected 0{64}, got ${sha256} \\(the server sent a different file`));
    await page.reload();
    await page.evaluate("bertqaDemo.ready");
    assert.deepEqual(await run(page, `return [lib.fs.existsSync("/home/.cache/bert-qa-workbook/dev.json"), lib.fs.existsSync("/home/.cache/bert-qa-workbook/wrong.json"), lib.fs.readdirSync("/home/.cache/bert-qa-workbook")]`),
      [true, false, ["dev.json"]]);
    await page.close();
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test("a tab that dies between a checkpoint's two renames (BERTQA_FAULT=kill@checkpoint-swap#2): a reload resumes from a complete checkpoint and ends as an uninterrupted run", { skip }, async () => {
  const job = { ...JOB, steps: 40, backend: "wasm", out: "runs/killed" };
  const { page } = await openDemo(isolated);
  await page.goto(`${isolated.url}demo.html?BERTQA_FAULT=${encodeURIComponent("kill@checkpoint-swap#2")}`);
  await page.evaluate("bertqaDemo.ready");
  const worker = () => page.workers().find((w) => w.url().endsWith("/trainer.js"));
  void train(page, job); // never answers: the worker is gone
  await new Promise<void>((resolve, reject) => {
    const end = Date.now() + 600_000;
    const poll = setInterval(() => {
      if (worker() === undefined) resolve(); else if (Date.now() > end) reject(new Error("the worker did not die at the second checkpoint swap"));
      if (worker() === undefined || Date.now() > end) clearInterval(poll);
    }, 100);
  });
  await page.goto(`${isolated.url}demo.html`); // a new tab on the same storage, without the fault
  await page.evaluate("bertqaDemo.ready");
  const resumed = await train(page, { ...job, resume: true, overwriteOutputDir: false });
  assert.equal(resumed.error, undefined, resumed.error);
  assert.equal(resumed.steps, 40);
  assertClose(resumed.losses, nodeDemo(job).losses, 1e-6, "resumed after a crash in the checkpoint swap");
  const left = await page.evaluate(async () => (await (window as unknown as { bertqaDemo: { list(d: string): Promise<{ name: string }[]> } }).bertqaDemo.list("runs/killed")).map((f) => f.name));
  assert.ok(!left.some((f) => /^checkpoint\.(next|prev|tmp)/.test(f) || /\.tmp-/.test(f)), `leftovers: ${left.filter((f) => !f.startsWith("checkpoint/"))}`);
  await page.close();
});
