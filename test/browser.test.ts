// What a person sees: `npm run lab` (here Debian's classic Notebook) in a real Chromium, driven by puppeteer-core.
// Run All in notebook 01 draws every chart; a copy received from someone else (not trusted) shows, in each chart's
// place, that it is not drawn and how to trust it; ■ pressed during notebook 04's training ends the cell with one line
// and a progress display that says where it stopped. Skipped without Chromium and Jupyter (apt-get install chromium
// jupyter-notebook python3-ipykernel), as in CI's `.ci/run`. Screenshots go to the folder it prints.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import type { Browser, Page } from "puppeteer-core";
import { trackProcesses } from "./processes";
import { freePort, waitFor } from "./server-helpers";

const ROOT = path.resolve(__dirname, "..");
const CHROMIUM = [process.env.BERTQA_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => p !== undefined && fs.existsSync(p));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require("../lib/cli/run-notebooks.js") as { labCommand(): [string, string] | null };
const skip = CHROMIUM === undefined ? "no Chromium (apt-get install chromium)"
  : runner.labCommand()?.[0] !== "jupyter-notebook" ? "needs Debian's classic Notebook (apt-get install jupyter-notebook); JupyterLab pages differ"
    : false;

const TOKEN = "bertqa-browser-test";
const SUB = `out/browser-${process.pid}`; // under notebooks/, so the kernel finds this clone from the notebook's folder
const DIR = path.join(ROOT, "notebooks", SUB);
const RUN_DIR = `runs/browser-test-${process.pid}`;
const SHOTS = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-browser-"));
const processes = trackProcesses(); // Jupyter, its kernels, Chromium and its helpers
let server: ChildProcess | undefined;
let browser: Browser | undefined;
let base = "";

before(async () => {
  if (skip !== false) return;
  fs.mkdirSync(DIR, { recursive: true });
  const port = await freePort();
  const jupyterHome = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-jupyter-home-"));
  const env = {
    ...process.env, BERTQA_PROFILE: "offline", BERTQA_TRAIN_STEPS: "16",
    JUPYTER_CONFIG_DIR: path.join(jupyterHome, "config"), JUPYTER_DATA_DIR: path.join(jupyterHome, "data"), JUPYTER_RUNTIME_DIR: path.join(jupyterHome, "runtime"),
  };
  const flags = ["--no-browser", `--port=${port}`, "--ip=127.0.0.1", `--NotebookApp.token=${TOKEN}`, ...(process.getuid?.() === 0 ? ["--allow-root"] : [])];
  server = spawn(process.execPath, [path.join(ROOT, "lib/cli/run-notebooks.js"), "--lab", ...flags], { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  server.stderr!.on("data", (d) => (log += d));
  base = `http://127.0.0.1:${port}`;
  await waitFor(() => `Jupyter on ${base} (its log: ${log.slice(-500)})`, async () => (await fetch(`${base}/api/status?token=${TOKEN}`)).ok, 60_000);
  const puppeteer = await import("puppeteer-core");
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  process.stderr.write(`browser test: screenshots in ${SHOTS}\n`);
});

after(async () => {
  await browser?.close();
  if (server !== undefined && server.exitCode === null) {
    // npm run lab passes SIGTERM on to Jupyter, which shuts its kernels down, and exits when Jupyter has; what is
    // still running a minute later is reported (and ended) below
    const exited = new Promise((r) => server!.once("exit", r));
    server.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000).unref())]);
    server.stderr?.destroy();
  }
  fs.rmSync(DIR, { recursive: true, force: true });
  fs.rmSync(path.join(ROOT, RUN_DIR), { recursive: true, force: true });
  await processes.assertNoneLeft(15_000);
});

/** A copy of notebook `name` (its parameters cell edited by `edit`) in the served folder; its URL path. */
function copyNotebook(name: string, as: string, edit: (params: string) => string = (s) => s): string {
  const nb = JSON.parse(fs.readFileSync(path.join(ROOT, "notebooks", name), "utf8"));
  nb.cells[0].source = edit(nb.cells[0].source.join("")).split(/(?<=\n)/);
  fs.writeFileSync(path.join(DIR, as), JSON.stringify(nb, null, 1));
  return `${SUB}/${as}`;
}

/** Open a notebook as a person does and wait until its kernel is up. */
async function open(nbPath: string): Promise<Page> {
  const page = await browser!.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  await page.goto(`${base}/notebooks/${nbPath}?token=${TOKEN}`, { waitUntil: "domcontentloaded" });
  await waitFor("the notebook and its kernel", () => page.evaluate(() => {
    const nb = (window as any).Jupyter?.notebook;
    return nb?.kernel?.is_connected?.() === true && document.querySelector("#kernel_indicator_icon.kernel_idle_icon") !== null;
  }), 120_000);
  return page;
}

/** Wait until no cell is queued or running ([*]) and the kernel is idle, twice in a row. */
async function waitIdle(page: Page, timeoutMs: number): Promise<void> {
  let quiet = 0;
  await waitFor("the cells to finish", async () => {
    const idle = await page.evaluate(() => {
      const cells = (window as any).Jupyter.notebook.get_cells() as { cell_type: string; input_prompt_number?: unknown }[];
      return !cells.some((c) => c.cell_type === "code" && c.input_prompt_number === "*") && document.querySelector("#kernel_indicator_icon.kernel_idle_icon") !== null;
    });
    quiet = idle ? quiet + 1 : 0;
    return quiet >= 3;
  }, timeoutMs);
}

/** Error outputs and stack-trace lines anywhere on the page. */
function errorsOnPage(page: Page): Promise<string[]> {
  return page.evaluate(() => [
    ...Array.from(document.querySelectorAll(".output_error")).map((e) => (e as HTMLElement).innerText.slice(0, 500)),
    ...Array.from(document.querySelectorAll(".output_stderr")).map((e) => (e as HTMLElement).innerText).filter((t) => /\n\s+at /.test(t)).map((t) => t.slice(0, 500)),
  ]);
}

test("Run All in notebook 01 draws every chart; a received copy, not trusted, says in each chart's place how to trust it",
  { skip, timeout: 6 * 60_000 }, async () => {
    const nbPath = copyNotebook("01-load-and-explore-squad.ipynb", "01.ipynb");
    const page = await open(nbPath);
    await page.evaluate(() => (document.querySelector("#run_all_cells a") as HTMLElement).click()); // Cell → Run All
    await waitIdle(page, 4 * 60_000);
    assert.deepEqual(await errorsOnPage(page), []);
    const charts = await waitFor("Plotly to draw", () => page.evaluate(() => {
      const plots = Array.from(document.querySelectorAll(".bertqa-plot"));
      return plots.length > 0 && plots.every((p) => p.querySelector(".main-svg") !== null) ? plots.length : undefined;
    }), 30_000);
    assert.ok(charts >= 2, `notebook 01 draws its charts (${charts})`);
    assert.equal(await page.evaluate(() => document.querySelectorAll(".bertqa-untrusted").length), 0, "a drawn chart keeps no untrusted note");
    await page.evaluate(() => document.querySelector(".bertqa-plot")?.scrollIntoView());
    await page.screenshot({ path: path.join(SHOTS, "01-run-all.png") });
    await page.evaluate(() => (window as any).Jupyter.notebook.save_notebook());
    await waitFor("the save", async () => fs.statSync(path.join(DIR, "01.ipynb")).size > 1e6, 30_000);
    await page.close();

    // Received from someone else: the same file, changed outside this Jupyter, so its signature no longer matches.
    const saved = JSON.parse(fs.readFileSync(path.join(DIR, "01.ipynb"), "utf8"));
    saved.metadata.received_from = "a colleague";
    fs.writeFileSync(path.join(DIR, "01-received.ipynb"), JSON.stringify(saved));
    const received = await open(`${SUB}/01-received.ipynb`);
    assert.equal(await received.evaluate(() => (window as any).Jupyter.notebook.trusted), false);
    const notes = await received.evaluate(() => Array.from(document.querySelectorAll(".bertqa-plot")).map((p) => {
      const note = p.querySelector(".bertqa-untrusted") as HTMLElement | null;
      return { drawn: p.querySelector(".main-svg") !== null, note: note !== null && note.offsetHeight > 0 ? note.innerText : "" };
    }));
    assert.equal(notes.length, charts, "every chart's place is still there");
    for (const n of notes) {
      assert.equal(n.drawn, false);
      assert.match(n.note, /This chart is not drawn: the notebook is not trusted.*Trust Notebook.*jupyter trust/s);
    }
    await received.evaluate(() => document.querySelector(".bertqa-plot")?.scrollIntoView());
    await received.screenshot({ path: path.join(SHOTS, "01-received-untrusted.png") });
    await received.close();
  });

test("■ (the toolbar's interrupt) during notebook 04's training: one line in the cell, the checkpoint written, the bar stopped where it stopped",
  { skip, timeout: 6 * 60_000 }, async () => {
    const nbPath = copyNotebook("04-train-on-the-gpu.ipynb", "04.ipynb", (p) => p
      .replace(/const MAX_STEPS: number \| undefined = [^\n]*/, "const MAX_STEPS: number | undefined = 400;")
      .replace(/const OUT_DIR = [^\n]*/, `const OUT_DIR = "${RUN_DIR}";`));
    const page = await open(nbPath);
    const trainCell = await page.evaluate(() => (window as any).Jupyter.notebook.get_cells().findIndex((c: any) => /trainQA\(\{ \.\.\.settings, model: model,/.test(c.get_text())));
    assert.ok(trainCell > 0, "notebook 04 has its training cell");
    await page.evaluate((end) => (window as any).Jupyter.notebook.execute_cell_range(0, end), trainCell + 1); // run up to it
    const outputOf = (i: number) => page.evaluate((j) => ((window as any).Jupyter.notebook.get_cell(j).output_area.element[0] as HTMLElement).innerText, i);
    await waitFor("training to start", async () => /train[\s\S]*?\b[1-9]\d*\/400\b/.test(await outputOf(trainCell)), 4 * 60_000)
      .catch(async (e) => {
        await page.screenshot({ path: path.join(SHOTS, "04-not-started.png") });
        throw new Error(`${e.message}; the training cell shows:\n${(await outputOf(trainCell)).slice(-1000)}`);
      });
    const pressed = Date.now();
    await page.click("button[data-jupyter-action='jupyter-notebook:interrupt-kernel']");
    await waitIdle(page, 60_000);
    const seconds = (Date.now() - pressed) / 1000;
    const text = await outputOf(trainCell);
    await page.evaluate((j) => (window as any).Jupyter.notebook.get_cell(j).output_area.element[0].scrollIntoView(), trainCell);
    await page.screenshot({ path: path.join(SHOTS, "04-stopped.png") });
    const line = /training stopped \(■\) at step (\d+) of 400: checkpoint in (\S+);/.exec(text);
    assert.ok(line !== null, `the cell ends with the stop line; it shows:\n${text.slice(-1500)}`);
    const step = Number(line[1]);
    assert.match(text, new RegExp(`train[\\s\\S]*?\\b${step}/400\\b[\\s\\S]*?stopped`), "the progress display stops at the step where training stopped");
    assert.doesNotMatch(text, /400\/400/);
    assert.doesNotMatch(text, /\n\s+at |Interrupted asynchronously/, "no stack trace");
    const state = JSON.parse(fs.readFileSync(path.join(ROOT, line[2], "trainer_state.json"), "utf8"));
    assert.equal(state.step, step, "the checkpoint is the stopped step's");
    assert.deepEqual(await errorsOnPage(page).then((e) => e.filter((t) => !/training stopped \(■\)/.test(t))), []);
    process.stderr.write(`browser test: ■ stopped training at step ${step} of 400 in ${seconds.toFixed(1)} s\n`);
    await page.close();
  });
