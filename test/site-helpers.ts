// What the browser tests of the JupyterLite site share (test/site.test.ts, test/site-notebooks.test.ts): the site
// built by `npm run site`, served as `npm run serve` serves it, Chromium driven by puppeteer-core, and JupyterLab
// driven through its own app object (exposeAppInBrowser) and commands.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import type { Browser, Page } from "puppeteer-core";
import { startServer } from "../lib/cli/serve";

/* eslint-disable @typescript-eslint/no-explicit-any */ // JupyterLab's objects, reached in the page untyped

const ROOT = path.resolve(__dirname, "..");
export const CHROMIUM = [process.env.BERTQA_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => p !== undefined && fs.existsSync(p));
export const skipSite = CHROMIUM === undefined ? "no Chromium (apt-get install chromium)" : false;

// Chromium with nothing of its own going on in the background (there is no network here)
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
  "--disable-default-apps", "--disable-sync", "--no-first-run", "--no-default-browser-check", "--metrics-recording-only",
  "--disable-features=Translate,OptimizationHints,MediaRouter"];
/** A WebGPU adapter without a GPU: Chromium's SwiftShader. */
export const WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"];

export interface Site { base: string; browser: Browser; close(): Promise<void> }

export interface SiteOptions {
  chromiumArgs?: string[]; // more flags for Chromium (WEBGPU_ARGS)
  isolated?: boolean; // false: without the COOP/COEP headers, as a host that cannot send them
  mounts?: Record<string, string>; // URL prefix → folder served in place of the site's
}

/** `npm run site` (only what changed since the last build is built again), then serve it and start Chromium. */
export async function startSite(opts: SiteOptions = {}): Promise<Site> {
  const t0 = Date.now();
  for (;;) { // another test file may be building it right now: wait for that build, then take ours (it finds it fresh)
    const build = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "lib/site/build.ts")], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "inherit", "pipe"] });
    if (build.status === 0) break;
    assert.match(build.stderr, /is being written by another site build/, `npm run site failed: ${build.stderr}`);
    assert.ok(Date.now() - t0 < 15 * 60_000, "another site build held dist/site for 15 minutes");
    await new Promise((r) => setTimeout(r, 2000));
  }
  process.stderr.write(`site test: npm run site took ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  const server = await startServer({ root: path.join(ROOT, "dist/site"), isolated: opts.isolated, mounts: opts.mounts });
  const puppeteer = await import("puppeteer-core");
  // protocolTimeout: a notebook's Run All is waited for inside the page, for minutes
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...(opts.chromiumArgs ?? [])], protocolTimeout: 20 * 60_000 });
  return { base: server.url, browser, close: async () => { await browser.close(); await server.close(); } };
}

/** `p`, or a failure naming `what` after `ms` (instead of the test's own much longer timeout). */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms / 1000} s`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** JupyterLab at `query` (e.g. "?path=…"), fully restored, with its app object (exposeAppInBrowser). */
export async function openLab(site: Site, query = ""): Promise<Page> {
  const page = await site.browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${site.base}lab/index.html${query}`, { waitUntil: "load" });
  await page.waitForFunction(() => (window as any).jupyterapp !== undefined, { timeout: 60_000 });
  await page.evaluate(() => (window as any).jupyterapp.restored);
  assert.deepEqual(problems, [], "errors while JupyterLab started");
  return page;
}

/** One of the workbook's notebooks, opened through the page's URL as a person opens it, its kernel started. Tabs
 * JupyterLab restores from an earlier page of the site (its workspace is in the browser's storage) are closed and
 * their kernels shut down. */
export async function openWorkbook(site: Site, notebook: string, env: Record<string, string> = {}): Promise<Page> {
  const file = `notebooks/${notebook}`;
  const page = await openLab(site, `?${new URLSearchParams({ path: file, ...env })}`);
  await page.waitForFunction((p: string) => Array.from((window as any).jupyterapp.shell.widgets("main")).some((w: any) => w.context?.path === p), { timeout: 60_000 }, file);
  await page.evaluate(async (p: string) => {
    const app = (window as any).jupyterapp;
    for (const w of Array.from(app.shell.widgets("main")) as any[]) {
      if (w.context?.path === p) continue;
      await w.sessionContext?.shutdown();
      w.dispose();
    }
    const panel = (Array.from(app.shell.widgets("main")) as any[]).find((w) => w.context?.path === p);
    app.shell.activateById(panel.id);
    await panel.sessionContext.ready;
  }, file);
  assert.equal(await page.$(".jp-Dialog"), null, "JupyterLab picked the kernel without asking");
  return page;
}

type Cell = { cell_type: "code" | "markdown"; source: string };

/** Put a notebook (kernelspec bertqa, as the workbook's) into the browser's storage and open it in JupyterLab. */
export async function openNotebook(page: Page, file: string, cells: Cell[]): Promise<void> {
  await page.evaluate(async (p: string, cs: Cell[]) => {
    const app = (window as any).jupyterapp;
    const content = {
      nbformat: 4, nbformat_minor: 5,
      metadata: { kernelspec: { name: "bertqa", display_name: "TypeScript (bertqa)", language: "typescript" } },
      cells: cs.map((c) => ({ ...c, metadata: {}, ...(c.cell_type === "code" ? { outputs: [], execution_count: null } : {}) })),
    };
    await app.serviceManager.contents.save(p, { type: "notebook", format: "json", content });
    const panel = await app.commands.execute("docmanager:open", { path: p, factory: "Notebook" });
    await panel.context.ready;
    await panel.sessionContext.ready;
  }, file, cells);
  assert.equal(await page.$(".jp-Dialog"), null, "JupyterLab picked the kernel without asking");
}

/** Run one of JupyterLab's commands (on the current notebook). */
export async function command(page: Page, id: string): Promise<void> {
  await page.evaluate((cmd: string) => (window as any).jupyterapp.commands.execute(cmd), id);
}

/** Press the dialog's accept button (Restart's "are you sure?"), as a person does. */
export async function acceptDialog(page: Page): Promise<void> {
  await page.waitForSelector(".jp-Dialog .jp-mod-accept");
  await page.click(".jp-Dialog .jp-mod-accept");
}

export interface CellResult { index: number; source: string; count: number | null; outputs: any[]; tags: string[] }

/** The notebook's code cells as nbformat has them: source, execution count, outputs. */
export function codeCells(page: Page): Promise<CellResult[]> {
  return page.evaluate(() => {
    const model = (window as any).jupyterapp.shell.currentWidget.content.model;
    const out: CellResult[] = [];
    for (let i = 0; i < model.cells.length; i++) {
      const c = model.cells.get(i).toJSON();
      const source = Array.isArray(c.source) ? c.source.join("") : c.source;
      if (c.cell_type === "code") out.push({ index: i, source, count: c.execution_count, outputs: c.outputs, tags: c.metadata?.tags ?? [] });
    }
    return out;
  });
}

/** Wait until the kernel is idle and no cell is queued or running ([*]); the code cells then. */
export async function whenIdle(page: Page, timeoutMs: number): Promise<CellResult[]> {
  await page.waitForFunction(() => {
    const panel = (window as any).jupyterapp.shell.currentWidget;
    const pending = panel.content.widgets.some((w: any) => w.promptNode?.textContent?.includes("*"));
    return panel.sessionContext.session?.kernel?.status === "idle" && !pending;
  }, { timeout: timeoutMs, polling: 250 });
  return codeCells(page);
}

/** Edit cell `index`'s source as a person typing would (the notebook's shared model). */
export async function editCell(page: Page, index: number, from: string, to: string): Promise<void> {
  const found = await page.evaluate((i: number, a: string, b: string) => {
    const cell = (window as any).jupyterapp.shell.currentWidget.content.model.cells.get(i).sharedModel;
    const src: string = cell.getSource();
    if (!src.includes(a)) return false;
    cell.setSource(src.replace(a, b));
    return true;
  }, index, from, to);
  assert.ok(found, `cell ${index} holds ${JSON.stringify(from)}`);
}

/** Add a code cell at the end; its index. */
export function appendCell(page: Page, source: string): Promise<number> {
  return page.evaluate((src: string) => {
    const model = (window as any).jupyterapp.shell.currentWidget.content.model;
    model.sharedModel.insertCells(model.cells.length, [{ cell_type: "code", source: src, metadata: {} }]);
    return model.cells.length - 1;
  }, source);
}

/** Select cell `index` and run a command on it (notebook:run-cell, notebook:run-all-below). */
export async function runFrom(page: Page, index: number, cmd = "notebook:run-cell"): Promise<void> {
  await page.evaluate((i: number) => ((window as any).jupyterapp.shell.currentWidget.content.activeCellIndex = i), index);
  await command(page, cmd);
}

/** All output of a cell as text (streams, text/plain, HTML's text, error lines). */
export function outputText(cell: CellResult): string {
  return cell.outputs.map((o) => {
    if (o.output_type === "stream") return Array.isArray(o.text) ? o.text.join("") : o.text;
    if (o.output_type === "error") return o.traceback.join("\n");
    const data = o.data ?? {};
    const html = [data["text/html"]].flat().join("");
    return html !== "" ? html.replace(/<script[\s\S]*?<\/script>/g, "").replace(/<[^>]+>/g, " ") : [data["text/plain"]].flat().join("");
  }).join("\n");
}
