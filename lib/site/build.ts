// `npm run site`: the workbook as a static JupyterLite site in dist/site/: JupyterLab's UI (JupyterLite 0.8's packages
// from npm, bundled with rspack through @jupyter/builder, as JupyterLite itself builds app/lab), the bertqa kernel
// (lib/site/kernel/), the library's browser bundle (lib/cli/bundle.ts, as `npm run bundle` builds it) and, as the
// site's files, the repository's notebooks and the folders the library reads (data/, test/fixtures/), copied from
// the repository on every build, never into git. lib/site is a package of its own, installed here on first use, so
// `npm install` at the root (the demo's path) brings none of it.
//
//   npm run site              installs lib/site's packages when its lock file changed, bundles the app and the
//                             library when their sources changed (else keeps them), copies the files
//   npm run site -- --force   bundles the app and the library again in any case
import * as fs from "node:fs";
import * as path from "node:path";
import * as crypto from "node:crypto";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { bundle, listFiles, siteManifest, SITE_ROOTS } from "../cli/bundle";
import { ISOLATION_HEADERS } from "../cli/serve";
import { lockDir } from "../platform/lockfile";

const SITE = __dirname;
const ROOT = path.resolve(SITE, "..", "..");
const OUT = path.join(ROOT, "dist", "site");
const WORK = path.join(ROOT, "dist", "site-build"); // generated sources of the app (index.js, style.js)
const STAMP = path.join(SITE, "node_modules", ".bertqa-lock-sha256");
interface SitePackage { jupyterlab: { extensions: string[]; disabledExtensions: string[] } }
const pkg = JSON.parse(fs.readFileSync(path.join(SITE, "package.json"), "utf8")) as SitePackage;
type SiteRequire = NodeRequire; // lib/site's packages: loaded from its node_modules, untyped here (not installed at the root)

function fail(msg: string): never {
  process.stderr.write(`site: ${msg}\n`);
  process.exit(1);
}

function sha256(...files: string[]): string {
  const h = crypto.createHash("sha256");
  for (const f of files) h.update(path.relative(ROOT, f)).update(fs.readFileSync(f));
  return h.digest("hex");
}

/** What the bundled app is made of: when none of it changed, the last build's dist/site/build is still right. */
function appKey(): string {
  const sources = ["app", "kernel"].flatMap((d) => listFiles(path.join(SITE, d)).map((f) => path.join(SITE, d, f)));
  return sha256(...["package.json", "package-lock.json", "build.ts"].map((f) => path.join(SITE, f)), ...sources);
}

/** What the library bundle (and its types for the kernel's checker) is made of: the library's sources and the packages. */
function bundleKey(): string {
  const lib = path.join(ROOT, "lib");
  const types = [path.join(SITE, "package-lock.json"), path.join(SITE, "types.ts"), path.join(SITE, "kernel", "check.ts")];
  return sha256(path.join(ROOT, "package-lock.json"), ...types, ...listFiles(lib, ["site", "node_modules"]).map((f) => path.join(lib, f)));
}

/** Run `make` unless `keyFile` says its output was made from `key` already (--force: run it anyway). */
async function unlessFresh(keyFile: string, key: string, make: () => Promise<void>): Promise<boolean> {
  if (!process.argv.includes("--force") && fs.existsSync(keyFile) && fs.readFileSync(keyFile, "utf8") === key) return true;
  await make();
  fs.writeFileSync(keyFile, key);
  return false;
}

/** npm ci in lib/site when its packages are missing or its lock file changed since they were installed. */
function ensureInstalled(): void {
  const want = sha256(path.join(SITE, "package-lock.json"));
  if (fs.existsSync(STAMP) && fs.readFileSync(STAMP, "utf8") === want) return;
  process.stderr.write("site: installing lib/site's packages (JupyterLab, rspack; once per lock file)\n");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: SITE, stdio: "inherit" });
  if (r.status !== 0) fail("npm ci in lib/site failed (its output is above); run it again, it resumes");
  fs.writeFileSync(STAMP, want);
}

function writeFile(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

// ---- the app: JupyterLab with JupyterLite's services and the bertqa kernel ----

/** index.js: the app's entry, adapted from JupyterLite's app/index.template.js (BSD-3-Clause, Jupyter Development Team). */
function appEntry(siteRequire: SiteRequire): string {
  const { extensions, disabledExtensions } = pkg.jupyterlab;
  const load = (kind: "extension" | "mimeExtension") => extensions.flatMap((name) => {
    const meta = siteRequire(`${name}/package.json`).jupyterlab ?? {};
    const entry = meta[kind];
    if (entry === undefined) return [];
    return [`  [${JSON.stringify(name)}, require(${JSON.stringify(entry === true ? name : `${name}/${entry}`)})],`];
  });
  const kernel = path.relative(WORK, path.join(SITE, "kernel", "plugin.ts")).split(path.sep).join("/");
  return `// Generated by lib/site/build.ts from lib/site/package.json's "jupyterlab" section.
// Adapted from JupyterLite's app/index.template.js: Copyright (c) Jupyter Development Team,
// distributed under the terms of the Modified BSD License.
import { JupyterLab } from "@jupyterlab/application";
import { PageConfig } from "@jupyterlab/coreutils";
import { IServiceManager } from "@jupyterlab/services";
import { PluginRegistry } from "@lumino/coreutils";
import "./style.js";

const disabled = new Set(${JSON.stringify(disabledExtensions, null, 2)});
const extensions = [
${load("extension").join("\n")}
  ["bertqa-kernel", require(${JSON.stringify(kernel)})],
];
const mimeExtensions = [
${load("mimeExtension").join("\n")}
];

/** The plugins of one extension module that are not disabled. */
function active([name, module], all) {
  const exports = Object.prototype.hasOwnProperty.call(module, "__esModule") ? module.default : module;
  return (Array.isArray(exports) ? exports : [exports]).filter((plugin) => {
    if (PageConfig.Extension.isDisabled(plugin.id) || disabled.has(plugin.id) || disabled.has(plugin.id.split(":")[0])) return false;
    all.push({ ...plugin, extension: name });
    return true;
  });
}

async function main() {
  const availablePlugins = [];
  const mime = mimeExtensions.flatMap((e) => active(e, availablePlugins));
  const plugins = extensions.flatMap((e) => active(e, availablePlugins));
  const pluginRegistry = new PluginRegistry();
  pluginRegistry.registerPlugins(plugins);
  const serviceManager = await pluginRegistry.resolveRequiredService(IServiceManager);
  const app = new JupyterLab({ pluginRegistry, mimeExtensions: mime, serviceManager, availablePlugins });
  app.name = PageConfig.getOption("appName") || "JupyterLite";
  // window.jupyterapp: JupyterLite's exposeAppInBrowser, so tests (and the curious) can drive JupyterLab's commands
  if ((PageConfig.getOption("exposeAppInBrowser") || "").toLowerCase() === "true") window.jupyterapp = app;
  await app.start({ bubblingKeydown: true });
  await app.restored;
}

export { main };
`;
}

/** The site's configuration (jupyter-lite.json), read by lab/index.html; hosts may edit it. */
function siteConfig(siteRequire: SiteRequire): object {
  const version = (name: string): string => siteRequire(`${name}/package.json`).version;
  return {
    "jupyter-lite-schema-version": 0,
    "jupyter-config-data": {
      appName: "JupyterLite",
      appVersion: version("@jupyterlite/application-extension"),
      appUrl: "./lab",
      settingsUrl: "./build/schemas",
      themesUrl: "./build/themes",
      fullStaticUrl: "./build",
      fullLabextensionsUrl: "./extensions",
      federated_extensions: [],
      contentsAllJsonFile: "all.json",
      defaultKernelName: "bertqa",
      exposeAppInBrowser: true,
      // process.env of the notebooks' kernel (BERTQA_PROFILE, BERTQA_TRAIN_STEPS, ...); the page's URL may add more
      bertqaEnv: { BERTQA_PROFILE: "offline" },
      versionInfo: { "@jupyterlab/application": { label: "JupyterLab", version: version("@jupyterlab/application") } },
    },
  };
}

function rspackConfigs(siteRequire: SiteRequire) {
  const rspack = siteRequire("@rspack/core");
  const { Build, WPPlugin } = siteRequire("@jupyter/builder");
  const base = siteRequire("@jupyter/builder/lib/webpack.config.base");
  const buildDir = path.join(OUT, "build");
  // style.js (every extension's CSS), the settings schemas and the theme bundles, as JupyterLite's build does
  const themes = Build.ensureAssets({ packageNames: pkg.jupyterlab.extensions, output: WORK, schemaOutput: buildDir, themeOutput: buildDir });
  const app = {
    ...base,
    mode: "production",
    devtool: false,
    context: SITE,
    entry: { lab: path.join(WORK, "bootstrap.js") },
    output: {
      path: buildDir,
      publicPath: "auto", // chunks load from wherever lab.js was served: the site may live in any folder
      filename: "[name].[contenthash:8].js",
      chunkFilename: "[name].[contenthash:8].js",
      assetModuleFilename: "[name].[contenthash:8][ext]",
      hashFunction: "xxhash64",
    },
    resolve: {
      ...base.resolve,
      extensions: [".ts", ".js", ".json"],
      modules: [path.join(SITE, "node_modules"), "node_modules"],
      // TypeScript's compiler (the kernel's transpiler) mentions Node modules it only uses under Node
      fallback: { ...base.resolve.fallback, fs: false, os: false, inspector: false, perf_hooks: false, util: false, module: false, "source-map-support": false },
    },
    module: {
      rules: [
        ...base.module.rules,
        { resourceQuery: /raw/, type: "asset/source" },
        { test: /fontawesome-free.*\.(svg|eot|ttf|woff)$/, exclude: /fontawesome-free.*\.woff2$/ },
        { test: /\.(jpe?g|png|gif|ico|eot|ttf|map|woff2?)(\?v=\d+\.\d+\.\d+)?$/i, type: "asset/resource" },
        { resourceQuery: /text/, type: "asset/resource", generator: { filename: "[name][ext]" } },
        { test: /\.ts$/, loader: "builtin:swc-loader", options: { jsc: { parser: { syntax: "typescript" }, target: "es2022" } }, type: "javascript/auto" },
      ],
    },
    ignoreWarnings: [{ module: /mathjax-full/, message: /__dirname/ }, /license-webpack-plugin: could not find any license file/],
    plugins: [...base.plugins, new WPPlugin.JSONLicenseWebpackPlugin({ licenseTypeOverrides: { "localforage-memoryStorageDriver": "Apache-2.0", khroma: "MIT" } })],
    optimization: { moduleIds: "deterministic", splitChunks: { chunks: "all", cacheGroups: { jlab_core: { test: /[\\/]node_modules[\\/]@(jupyterlab|lumino(?!\/datagrid))[\\/]/, name: "jlab_core" } } } },
    cache: false,
  };
  // packages and loaders resolve from lib/site/node_modules, wherever the build is started
  const local = { context: SITE, resolveLoader: { modules: [path.join(SITE, "node_modules")] }, performance: { hints: false } };
  return { rspack, configs: [app, ...themes].map((c: object) => ({ ...c, ...local })) };
}

/** settings schemas of every plugin in one file, as JupyterLite's CompileSchemasPlugin writes it */
function compileSchemas(): void {
  const dir = path.join(OUT, "build", "schemas");
  const all: object[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".json") && !e.name.startsWith("all")) {
        const rel = path.relative(dir, p).split(path.sep).join("/");
        const version = JSON.parse(fs.readFileSync(path.join(path.dirname(p), "package.json.orig"), "utf8")).version;
        all.push({ id: `${path.posix.dirname(rel)}:${path.basename(rel, ".json")}`, raw: "{}", schema: JSON.parse(fs.readFileSync(p, "utf8")), settings: {}, version });
      }
    }
  };
  walk(dir);
  writeFile(path.join(dir, "all.json"), JSON.stringify(all));
  writeFile(path.join(dir, "all_federated.json"), "[]"); // no federated extensions (JupyterLite asks for the file)
}

async function buildApp(siteRequire: SiteRequire): Promise<void> {
  fs.rmSync(path.join(OUT, "build"), { recursive: true, force: true });
  writeFile(path.join(WORK, "index.js"), appEntry(siteRequire));
  // the entry only imports the app, so every other chunk loads on demand from wherever lab.js came (one script tag)
  writeFile(path.join(WORK, "bootstrap.js"), 'import("./index.js").then((m) => m.main()).catch((e) => console.error("JupyterLab failed to start", e));\n');
  const { rspack, configs } = rspackConfigs(siteRequire);
  const stats = await new Promise<any>((resolve, reject) => rspack(configs, (err: Error | null, s: unknown) => (err ? reject(err) : resolve(s)))); // eslint-disable-line @typescript-eslint/no-explicit-any
  if (stats.hasErrors()) fail(`rspack failed:\n${stats.toString({ all: false, errors: true })}`);
  compileSchemas();
  const chunks: Record<string, string[]> = stats.toJson({ all: false, assets: true }).children[0].assetsByChunkName ?? {};
  const lab = chunks.lab?.find((f) => f.endsWith(".js"));
  if (lab === undefined) fail("rspack wrote no lab bundle");
  const html = fs.readFileSync(path.join(SITE, "app", "lab.html"), "utf8").replace("__BUNDLE__", lab);
  writeFile(path.join(OUT, "lab", "index.html"), html);
  writeFile(path.join(OUT, "index.html"), `<!DOCTYPE html>\n<meta charset="utf-8">\n<title>bert-qa-workbook</title>\n<meta http-equiv="refresh" content="0; url=lab/index.html">\n<a href="lab/index.html">JupyterLab</a>\n`);
  writeFile(path.join(OUT, "jupyter-lite.json"), JSON.stringify(siteConfig(siteRequire), null, 2) + "\n");
  const translations = { data: { en: { displayName: "English", nativeName: "English" } }, message: "" };
  writeFile(path.join(OUT, "api", "translations", "all.json"), JSON.stringify(translations));
  writeFile(path.join(OUT, "api", "translations", "en.json"), JSON.stringify({ data: {}, message: "" }));
  fs.copyFileSync(path.join(SITE, "LICENSE-jupyterlite.txt"), path.join(OUT, "LICENSE-jupyterlite.txt"));
  // the headers of npm run serve, for static hosts that read a _headers file (Netlify, Cloudflare Pages)
  writeFile(path.join(OUT, "_headers"), `/*\n${Object.entries(ISOLATION_HEADERS).map(([k, v]) => `  ${k}: ${v}`).join("\n")}\n`);
}

// ---- the kernel's worker ----

function buildWorker(siteRequire: SiteRequire): void {
  const ts = siteRequire("typescript");
  for (const name of ["worker", "format"]) {
    const src = fs.readFileSync(path.join(SITE, "kernel", `${name}.ts`), "utf8");
    const out = ts.transpileModule(src, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext }, fileName: `${name}.ts` });
    writeFile(path.join(OUT, "kernel", `${name}.js`), out.outputText);
  }
}

// ---- the library bundle ----

/** The library's browser bundle (lib/cli/bundle.ts) into bertqa/; its own files/ and demo page stay out (the
 * site's files/, below, is the library's base), and so do its source maps (22 MB; stacks never reach a user). */
async function buildBundle(): Promise<void> {
  const dir = path.join(WORK, "browser");
  const r = await bundle({ outDir: dir, minify: true });
  if (r.nodeModules.length > 0) fail(`Node modules reached the library's browser bundle: ${r.nodeModules.join(", ")}`);
  const out = path.join(OUT, "bertqa");
  fs.rmSync(out, { recursive: true, force: true });
  fs.cpSync(dir, out, { recursive: true, filter: (f) => !/^(files|demo[.-])|\.map$/.test(path.relative(dir, f)) });
  // what the kernel's type checker reads; loaded after lib/site's packages are installed, to use their TypeScript
  const { collectTypes } = await import("./types");
  writeFile(path.join(out, "types.json"), JSON.stringify(collectTypes(ROOT)));
}

// ---- the site's files: the repository's notebooks and what they read, with JupyterLite's contents listings ----

/** Relative paths (from the repository root) of the files the site serves under files/: the notebooks (as JupyterLab
 * shows them) and the folders the library reads (as files.json lists them for initPlatform). */
function siteFiles(): string[] {
  const notebooks = fs.readdirSync(path.join(ROOT, "notebooks")).sort().filter((f) => f.endsWith(".ipynb") || f === "README.md");
  return [...notebooks.map((f) => `notebooks/${f}`), ...SITE_ROOTS.flatMap((r) => listFiles(path.join(ROOT, r)).map((f) => `${r}/${f}`))];
}

const MIME: Record<string, string> = { ".ipynb": "application/x-ipynb+json", ".json": "application/json", ".md": "text/markdown", ".txt": "text/plain", ".csv": "text/csv" };

function contentsModel(rel: string, stat: fs.Stats): Record<string, unknown> {
  const name = path.posix.basename(rel);
  const time = stat.mtime.toISOString();
  const common = { name, path: rel, created: time, last_modified: time, writable: true, content: null, format: null };
  if (stat.isDirectory()) return { ...common, type: "directory", mimetype: null, size: null };
  const type = name.endsWith(".ipynb") ? "notebook" : "file";
  return { ...common, type, mimetype: MIME[path.extname(name)] ?? "application/octet-stream", size: stat.size };
}

function writeFiles(): number {
  const files = siteFiles();
  fs.rmSync(path.join(OUT, "files"), { recursive: true, force: true });
  fs.rmSync(path.join(OUT, "api", "contents"), { recursive: true, force: true });
  const dirs = new Map<string, Set<string>>([["", new Set()]]); // folder → its entries
  for (const rel of files) {
    fs.mkdirSync(path.dirname(path.join(OUT, "files", rel)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, rel), path.join(OUT, "files", rel));
    const parts = rel.split("/");
    for (let i = 0; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (!dirs.has(parent)) dirs.set(parent, new Set());
      dirs.get(parent)!.add(parts.slice(0, i + 1).join("/"));
    }
  }
  for (const [dir, entries] of dirs) {
    const models = [...entries].sort().map((rel) => contentsModel(rel, fs.statSync(path.join(ROOT, rel))));
    const self = { ...contentsModel(dir, fs.statSync(path.join(ROOT, dir))), name: path.posix.basename(dir), content: models, format: "json" };
    writeFile(path.join(OUT, "api", "contents", dir, "all.json"), JSON.stringify(self));
  }
  writeFile(path.join(OUT, "files", "files.json"), JSON.stringify(siteManifest(ROOT, SITE_ROOTS)));
  return files.length;
}

async function main(): Promise<void> {
  const started = Date.now();
  fs.mkdirSync(WORK, { recursive: true });
  lockDir(WORK, "site build"); // two builds at once (tests run in parallel) would write over each other; released at exit
  ensureInstalled();
  const siteRequire = createRequire(path.join(SITE, "package.json"));
  const appFresh = await unlessFresh(path.join(OUT, "build", ".bertqa-key"), appKey(), () => buildApp(siteRequire));
  buildWorker(siteRequire);
  const bundleFresh = await unlessFresh(path.join(OUT, "bertqa", ".bertqa-key"), bundleKey(), buildBundle);
  const n = writeFiles();
  const kept = [appFresh ? "the app" : "", bundleFresh ? "the library bundle" : ""].filter((s) => s !== "").join(" and ");
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(`site: dist/site in ${seconds} s (${kept === "" ? "all built" : `${kept} unchanged since the last build`}; ${n} files from the repository); npm run serve serves it\n`);
}

main().catch((e: Error) => fail(e.name === "UserError" ? e.message : e.stack ?? String(e)));
