// `npm run bundle`: the library for browsers, built with esbuild into dist/browser/ (ES modules, code-split):
//   bertqa.js        everything lib/index.ts exports, `tf` (the @tensorflow/tfjs it uses) and initPlatform
//   danfojs.js       danfojs-node's DataFrame API on the same tfjs (cells' `import * as dfd from "danfojs-node"`)
//   gemm-worker.js   a thread of the wasm GEMM pool; wasm/ tfjs' .wasm files; packages/ plotly.js for charts
//   trainer.js       a Web Worker that runs the demo job (lib/demo.ts) for a page; demo.html, demo-page.js: that page
//   files/           the repository's files the library reads (data/, test/fixtures/) and their list, files.json:
//                    initPlatform({ base: ".../files/" })
// Serve the folder with COOP/COEP headers (npm run serve, or lib/cli/serve.ts) and open demo.html.
// The one source is lib/: the platform seam's Node side (lib/platform/node.ts) is swapped for browser.ts, and a
// node: module reaching the bundle is an error (test/web.test.ts checks the metafile too).
import * as fs from "node:fs";
import * as path from "node:path";
import * as esbuild from "esbuild";

const ROOT = path.resolve(__dirname, "..", "..");
export const BUNDLE_DIR = path.join(ROOT, "dist", "browser");

/** What danfojs-node reaches for that a browser does not have: its file, network and spreadsheet readers (the
 * notebooks build frames from arrays), and its plots (they use plotly directly). */
const DANFO_NODE_ONLY = ["fs", "stream", "request", "node-fetch", "stream-json", "stream-json/streamers/StreamArray", "xlsx", "plotly.js-dist-min"];

/** The seam: lib/platform/index.ts's `./node` becomes `./browser`, backends.ts's `./node-backends` becomes
 * `./browser-backends`; danfo's libraries resolve to browser ones. */
const browserPlatform: esbuild.Plugin = {
  name: "bertqa-browser",
  setup(build) {
    const seam: Record<string, string> = { "index.ts": "browser.ts", "backends.ts": "browser-backends.ts" };
    build.onResolve({ filter: /^\.\/node(-backends)?$/ }, (args) => {
      const importer = path.relative(path.join(ROOT, "lib", "platform"), args.importer);
      return seam[importer] !== undefined ? { path: path.join(ROOT, "lib", "platform", seam[importer]) } : undefined;
    });
    build.onResolve({ filter: /^@tensorflow\/tfjs-node$/ }, () => ({ path: require.resolve("@tensorflow/tfjs") }));
    // @huggingface/hub names its browser build only in its "browser" field, which its "exports" map hides from esbuild.
    build.onResolve({ filter: /^@huggingface\/hub$/ }, () => ({ path: path.join(path.dirname(require.resolve("@huggingface/hub")), "browser", "index.mjs") }));
    build.onResolve({ filter: new RegExp(`^(${DANFO_NODE_ONLY.map((m) => m.replace(/[/.-]/g, "\\$&")).join("|")})$`) }, (args) =>
      args.importer.includes(`${path.sep}danfojs-node${path.sep}`) ? { path: args.path, namespace: "danfo-node-only" } : undefined);
    build.onLoad({ filter: /.*/, namespace: "danfo-node-only" }, (args) => ({
      contents: `module.exports = new Proxy({}, { get: (_, k) => k === "__esModule" ? false : () => { throw new Error("danfojs: ${args.path} is not available in a browser"); } });`,
    }));
  },
};

export interface BundleResult { files: string[]; bytes: number; nodeModules: string[] }

/** Build dist/browser/; `minify` for the site (smaller), off for tests (readable stacks). */
export async function bundle(opts: { outDir?: string; minify?: boolean } = {}): Promise<BundleResult> {
  const outDir = opts.outDir ?? BUNDLE_DIR;
  fs.rmSync(outDir, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: {
      bertqa: path.join(ROOT, "lib", "web", "entry.ts"),
      danfojs: path.join(ROOT, "lib", "web", "danfo-entry.ts"),
      "gemm-worker": path.join(ROOT, "lib", "web", "gemm-worker.ts"),
      trainer: path.join(ROOT, "lib", "web", "trainer.ts"),
      "demo-page": path.join(ROOT, "lib", "web", "demo-page.ts"),
    },
    bundle: true, splitting: true, format: "esm", platform: "browser", target: "es2022",
    outdir: outDir, chunkNames: "chunk-[hash]", minify: opts.minify ?? false, sourcemap: "linked", metafile: true,
    plugins: [browserPlatform], logLevel: "silent", legalComments: "linked",
    define: { "process.env.NODE_ENV": '"production"' },
  });
  // node: modules, or Node's own by bare name, that reached the bundle: there should be none.
  const nodeModules = Object.keys(result.metafile.inputs).filter((f) => /^(node:|<define:process)/.test(f) || /^(fs|path|os|crypto|child_process|worker_threads)$/.test(f));
  const wasmDir = path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "wasm-out");
  copy(wasmDir, path.join(outDir, "wasm"), (f) => f.endsWith(".wasm"));
  const plotly = require.resolve("plotly.js-dist/plotly.js");
  copyFile(plotly, path.join(outDir, "packages", "plotly.js-dist", "plotly.js"));
  copyFile(path.join(path.dirname(plotly), "LICENSE"), path.join(outDir, "packages", "plotly.js-dist", "LICENSE"));
  copyFile(path.join(ROOT, "lib", "web", "demo.html"), path.join(outDir, "demo.html"));
  for (const r of SITE_ROOTS) copy(path.join(ROOT, r), path.join(outDir, "files", r), () => true);
  fs.writeFileSync(path.join(outDir, "files", "files.json"), JSON.stringify(siteManifest(ROOT, SITE_ROOTS)));
  const files = listFiles(outDir);
  return { files, bytes: files.reduce((n, f) => n + fs.statSync(path.join(outDir, f)).size, 0), nodeModules };
}

/** files.json for a folder served to the library (initPlatform's base): the read-only folders it holds and each
 * file's size. `writeSiteManifest(dir, ["data", "test/fixtures"])` */
export function siteManifest(root: string, roots: string[]): { roots: string[]; files: Record<string, number> } {
  const files: Record<string, number> = {};
  for (const r of roots) for (const f of listFiles(path.join(root, r))) files[`${r}/${f}`] = fs.statSync(path.join(root, r, f)).size;
  return { roots, files };
}

/** The repository's folders the notebooks and the library read in a browser: the sample and the test fixtures. */
export const SITE_ROOTS = ["data", "test/fixtures"];

/** Every file under `dir` (relative to it, "/"-separated, sorted), leaving out folders named in `skip`. */
export function listFiles(dir: string, skip: string[] = [], prefix = ""): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (!e.isDirectory()) return [`${prefix}${e.name}`];
    return skip.includes(e.name) ? [] : listFiles(path.join(dir, e.name), skip, `${prefix}${e.name}/`);
  }).sort();
}

function copyFile(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
}

function copy(from: string, to: string, keep: (f: string) => boolean): void {
  for (const f of listFiles(from).filter(keep)) copyFile(path.join(from, f), path.join(to, f));
}

if (require.main === module) {
  const t0 = Date.now();
  bundle({ minify: !process.argv.includes("--no-minify") }).then((r) => {
    if (r.nodeModules.length > 0) throw new Error(`Node modules reached the browser bundle: ${r.nodeModules.join(", ")}`);
    console.log(JSON.stringify({ dir: path.relative(ROOT, BUNDLE_DIR), files: r.files.length, mb: +(r.bytes / 1e6).toFixed(1), seconds: (Date.now() - t0) / 1000 }));
  }).catch((e: Error) => {
    process.stderr.write(`error: bundle: ${e.message.split("\n")[0]}\n`);
    process.exit(1);
  });
}
