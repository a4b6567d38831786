// The library in a browser beside Node, on this machine, in one run (issue 28's numbers; a benchmark, not a test):
//   npx tsx test/bench/browser_bench.ts [--rounds 5] [--config mini --batch-size 16 --seq-len 128] [--steps 5]
// - the bundle a page loads (npm run bundle, minified): bytes raw and gzip, and the demo page's time to ready on
//   127.0.0.1 (page, worker, library, files.json, the wasm backend started and every backend diagnosed);
// - training steps of BERT (forward, backward, clipping, AdamW; `bertqa bench`'s benchTraining) on wasm with threads,
//   in Chromium's worker and in Node, interleaved round by round so both see the same machine; JSON lines, then the
//   medians and their ratio.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { execFileSync } from "node:child_process";
import { bundle } from "../../lib/cli/bundle";
import { startServer } from "../../lib/cli/serve";

const ROOT = path.resolve(__dirname, "..", "..");
const arg = (name: string, fallback: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : fallback; };
const rounds = Number(arg("rounds", "5")), steps = Number(arg("steps", "5"));
const shape = { preset: arg("config", "mini"), batchSize: Number(arg("batch-size", "16")), seqLen: Number(arg("seq-len", "128")) };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-browser-bench-"));
  const built = await bundle({ outDir: dir, minify: true });
  const server = await startServer({ root: dir });
  const puppeteer = await import("puppeteer-core");
  const browser = await puppeteer.launch({ executablePath: "/usr/bin/chromium", headless: true, protocolTimeout: 1_800_000, userDataDir: path.join(dir, "profile"),
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
  try {
    // What the page loads, and how long until it is ready.
    const page = await browser.newPage();
    const loaded = new Set<string>();
    page.on("requestfinished", (r) => loaded.add(new URL(r.url()).pathname));
    const t0 = performance.now();
    await page.goto(`${server.url}demo.html`);
    await page.evaluate("bertqaDemo.ready");
    const readyMs = performance.now() - t0;
    const files = [...loaded].map((p) => path.join(dir, decodeURIComponent(p))).filter((f) => fs.existsSync(f) && fs.statSync(f).isFile());
    const raw = files.reduce((n, f) => n + fs.statSync(f).size, 0), gzip = files.reduce((n, f) => n + zlib.gzipSync(fs.readFileSync(f)).length, 0);
    const code = files.filter((f) => /\.(js|wasm)$/.test(f));
    const load = { page_ready_ms: Math.round(readyMs), files: files.length, mb: +(raw / 1e6).toFixed(2), gzip_mb: +(gzip / 1e6).toFixed(2),
      code_mb: +(code.reduce((n, f) => n + fs.statSync(f).size, 0) / 1e6).toFixed(2), code_gzip_mb: +(code.reduce((n, f) => n + zlib.gzipSync(fs.readFileSync(f)).length, 0) / 1e6).toFixed(2),
      bundle_dir_mb: +(built.bytes / 1e6).toFixed(1) };
    console.log(JSON.stringify({ what: "load", ...load }));
    // Training steps, interleaved.
    const browserRuns: number[] = [], nodeRuns: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      const b = await page.evaluate((s) => (window as unknown as { bertqaDemo: { run(s: string): Promise<unknown> } }).bertqaDemo.run(s), `
        await lib.useBackend("wasm");
        return lib.benchTraining({ preset: "${shape.preset}", batchSize: ${shape.batchSize}, seqLen: ${shape.seqLen}, steps: ${steps}, warmup: 2, vocabSize: 30522, seed: 0 });`) as { examples_per_s: number; threads: number };
      console.log(JSON.stringify({ what: "browser", round: r, ...b }));
      browserRuns.push(b.examples_per_s);
      const n = JSON.parse(execFileSync(process.execPath, [path.join(ROOT, "lib/cli/bertqa.js"), "bench", "--config", shape.preset, "--batch-size", String(shape.batchSize), "--seq-len", String(shape.seqLen), "--steps", String(steps), "--backend", "wasm"], { cwd: ROOT, encoding: "utf8" }).trim().split("\n").pop()!) as { examples_per_s: number };
      console.log(JSON.stringify({ what: "node", round: r, ...n }));
      nodeRuns.push(n.examples_per_s);
    }
    const ratios = browserRuns.map((b, i) => b / nodeRuns[i]);
    console.log(JSON.stringify({ what: "summary", shape, rounds, browser_ex_s: median(browserRuns), node_ex_s: median(nodeRuns), ratio_median: +median(ratios).toFixed(3), ratio_min: +Math.min(...ratios).toFixed(3), ratio_max: +Math.max(...ratios).toFixed(3), ...load }));
  } finally {
    await browser.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  console.error(e.stack);
  process.exit(1);
});
