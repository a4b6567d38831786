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

test("WebGPU in a page (SwiftShader): the losses of Node's WebGPU on lavapipe within 1e-4, and Node scores the page's checkpoint with the page's EM/F1", { skip }, async (t) => {
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
  await page.close();
});

test("■ in the page, then a reload and resume: the run ends with the losses of an uninterrupted one", { skip }, async () => {
  const job = { ...JOB, steps: 12, backend: "wasm", out: "runs/stopped" };
  let { page } = await openDemo(isolated);
  const running = train(page, job);
  // The progress display (the notebook's HTML) says where training is; ■ once it is past step 3.
  await page.waitForFunction(() => /train[^\n]*\b([3-9]|1[01])\/12\b/.test(document.getElementById("progress")!.innerText), { timeout: 600_000, polling: 100 });
  await page.click("#stop");
  const stopped = await running;
  assert.equal(stopped.isStopped, true, JSON.stringify(stopped));
  const at = Number(/training stopped \(■\) at step (\d+) of 12: checkpoint in \/runs\/stopped\/checkpoint; to continue, train again with resume/.exec(stopped.error ?? "")?.[1]);
  assert.ok(at >= 3 && at < 12, `one line saying where it stopped: ${stopped.error}`);
  assert.ok(!stopped.error!.includes("\n"));
  await page.screenshot({ path: path.join(SHOTS, "stopped.png"), fullPage: true });
  await page.reload();
  await page.evaluate("bertqaDemo.ready");
  const resumed = await train(page, { ...job, resume: true, overwriteOutputDir: false });
  assert.equal(resumed.error, undefined, resumed.error);
  assert.equal(resumed.steps, 12);
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
  const job = { ...JOB, steps: 2, backend: "wasm", out: "runs/quota" };
  assert.equal((await train(page, job)).error, undefined);
  const cdp = await page.createCDPSession();
  const origin = new URL(isolated.url).origin;
  const usage = await page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin, quotaSize: usage + 3_000_000 }); // less than one more checkpoint
  const full = await train(page, { ...job, steps: 4, resume: true, overwriteOutputDir: false });
  assert.match(full.error ?? "", /^\/runs\/quota\/checkpoint\.tmp-\d+\/\S+: cannot write the checkpoint at step 4 \([\d.]+ [kM]B\): the browser's storage quota for this site is full \([\d.]+ MB used of [\d.]+ MB\) \[EDQUOT\]; the last checkpoint \(step 2\) in \/runs\/quota\/checkpoint is intact \(delete runs you no longer need/, full.error);
  assert.ok(!full.error!.includes("\n"));
  await cdp.send("Storage.overrideQuotaForOrigin", { origin }); // the browser's own quota again
  await page.reload();
  await page.evaluate("bertqaDemo.ready");
  const kept = await page.evaluate(async () => (await (window as unknown as { bertqaDemo: { list(d: string): Promise<{ name: string }[]> } }).bertqaDemo.list("runs/quota")).map((f) => f.name));
  assert.ok(["checkpoint/trainer_state.json", "checkpoint/model.safetensors", "checkpoint/optimizer.safetensors"].every((f) => kept.includes(f)), `kept: ${kept}`);
  const resumed = await train(page, { ...job, steps: 4, resume: true, overwriteOutputDir: false });
  assert.equal(resumed.error, undefined, resumed.error);
  assert.equal(resumed.steps, 4);
  await page.close();
});

test("a lost WebGPU device is one line naming the intact checkpoint, and the run resumes on wasm", { skip }, async () => {
  const { page } = await openDemo(isolated);
  const job = { ...JOB, maxTrain: 48, maxDev: 8, backend: "webgpu", out: "runs/lost" };
  assert.equal((await train(page, { ...job, steps: 2 })).error, undefined);
  const running = train(page, { ...job, steps: 5, resume: true, overwriteOutputDir: false });
  await page.waitForFunction(() => /train[^\n]*\b[3-4]\/5\b/.test(document.getElementById("progress")!.innerText), { timeout: 600_000, polling: 100 });
  const worker = page.workers().find((w) => w.url().endsWith("/trainer.js"));
  assert.ok(worker !== undefined, "the trainer worker");
  await worker.evaluate(() => (globalThis as unknown as { _tfengine: { backend: { device: { destroy(): void } } } })._tfengine.backend.device.destroy());
  const lost = await running;
  assert.match(lost.error ?? "", /^training step \d: the GPU device was lost \(.+\); the last checkpoint \(step 2\) in \/runs\/lost\/checkpoint is intact \(continue on another backend: train again with resume: "runs\/lost" and the wasm backend/, lost.error);
  assert.ok(!lost.error!.includes("\n"));
  const resumed = await train(page, { ...job, steps: 5, resume: true, overwriteOutputDir: false, backend: "wasm" });
  assert.equal(resumed.error, undefined, resumed.error);
  assert.equal(resumed.steps, 5);
  await page.close();
});
