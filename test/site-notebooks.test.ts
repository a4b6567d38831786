// The workbook's seven notebooks in JupyterLab in the browser (issue 29), unchanged, on the site `npm run site` builds:
// Run All through JupyterLab's command on the offline profile with few training steps (BERTQA_TRAIN_STEPS in the
// page's URL), on WebAssembly threads, and notebook 03 on WebGPU (Chromium's SwiftShader adapter); ■ during notebook
// 04's training, Restart and Run All, and a changed learning rate run again below the parameters cell. Skipped without
// Chromium. Screenshots of each notebook go to the folder it prints.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Page } from "puppeteer-core";
import {
  acceptDialog, appendCell, codeCells, command, editCell, openWorkbook, outputText, runFrom, skipSite as skip, startSite,
  WEBGPU_ARGS, whenIdle, within, type CellResult, type Site,
} from "./site-helpers";

/* eslint-disable @typescript-eslint/no-explicit-any */ // JupyterLab's objects, reached in the page untyped

const ROOT = path.resolve(__dirname, "..");
const SHOTS = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-site-notebooks-"));
const NOTEBOOKS = fs.readdirSync(path.join(ROOT, "notebooks")).filter((f) => /^\d\d-.*\.ipynb$/.test(f)).sort();
const TRAIN_STEPS = "16"; // as in test/browser.test.ts: training notebooks take seconds, not minutes
const RUN_ALL_MS = 8 * 60_000;
let site: Site | undefined;

before(async () => {
  if (skip !== false) return;
  site = await startSite();
  process.stderr.write(`site notebooks test: screenshots in ${SHOTS}\n`);
});

after(async () => {
  await site?.close();
});

/** What running every cell must leave: each code cell run once, in order, no error, and no stack trace on stderr. */
function assertRanClean(name: string, cells: CellResult[]): void {
  const first = cells[0]?.count ?? 0;
  assert.deepEqual(cells.map((c) => c.count), cells.map((_, i) => first + i), `${name}: every code cell ran, in order`);
  assert.ok(first > 0, `${name}: the cells ran`);
  for (const c of cells) {
    const errors = c.outputs.filter((o) => o.output_type === "error").map((o) => `${o.ename}: ${o.evalue}`);
    assert.deepEqual(errors, [], `${name}, cell ${c.index}: ${c.source.split("\n")[0]}`);
    const stacks = c.outputs.filter((o) => o.name === "stderr" && /\n\s+at /.test([o.text].flat().join("")));
    assert.deepEqual(stacks, [], `${name}, cell ${c.index}: a stack trace on stderr`);
  }
}

/** The Plotly charts on the page: each `.bertqa-plot` drawn (Plotly's SVG inside), waiting for the last to draw. */
async function drawnCharts(page: Page): Promise<{ charts: number; drawn: number }> {
  const count = () => page.evaluate(() => {
    const plots = Array.from(document.querySelectorAll(".jp-Notebook .bertqa-plot"));
    return { charts: plots.length, drawn: plots.filter((p) => p.querySelector(".main-svg") !== null).length };
  });
  await page.waitForFunction(() => Array.from(document.querySelectorAll(".jp-Notebook .bertqa-plot")).every((p) => p.querySelector(".main-svg") !== null), { timeout: 30_000 }).catch(() => undefined);
  return count();
}

async function runAll(page: Page): Promise<{ cells: CellResult[]; seconds: number }> {
  const t0 = Date.now();
  await command(page, "notebook:run-all-cells");
  const cells = await whenIdle(page, RUN_ALL_MS);
  return { cells, seconds: (Date.now() - t0) / 1000 };
}

test("every notebook, Run All in JupyterLab on wasm threads: each cell runs, no errors, charts drawn, exercise checks pass",
  { skip, timeout: NOTEBOOKS.length * RUN_ALL_MS }, async () => {
    const times: Record<string, number> = {};
    for (const name of NOTEBOOKS) { // in order, in one browser: 05 evaluates the model 04 left in the browser's storage
      const page = await openWorkbook(site!, name, { BERTQA_TRAIN_STEPS: TRAIN_STEPS });
      const { cells, seconds } = await runAll(page);
      times[name] = seconds;
      assertRanClean(name, cells);
      const checks = cells.filter((c) => c.tags.includes("exercise-check"));
      assert.ok(checks.length > 0, `${name} has its checked exercise`);
      for (const c of checks) assert.match(outputText(c), /✔/, `${name}: the exercise check passes`);
      const { charts, drawn } = await drawnCharts(page);
      assert.equal(drawn, charts, `${name}: every chart is drawn`);
      if (cells.some((c) => c.source.includes("showPlot("))) assert.ok(charts > 0, `${name} draws its charts`);
      if (/^0[467]/.test(name)) { // the training notebooks: the progress display logs the loss
        assert.match(cells.map(outputText).join("\n"), /loss[=:\s]+\d+\.\d+/, `${name}: the training loss is shown`);
      }
      const chartCell = cells.find((c) => c.outputs.some((o) => [o.data?.["text/html"]].flat().join("").includes("bertqa-plot")));
      if (chartCell !== undefined) { // the first chart on the screenshot (JupyterLab lays out only what comes into view)
        await page.evaluate(async (i: number) => {
          const nb = (window as any).jupyterapp.shell.currentWidget.content;
          await nb.scrollToCell(nb.widgets[i], "start");
        }, chartCell.index);
        await new Promise((r) => setTimeout(r, 1000));
      }
      await page.screenshot({ path: path.join(SHOTS, `${name.slice(0, 2)}-run-all.png`) });
      await page.close();
    }
    process.stderr.write(`site notebooks test: Run All seconds per notebook (wasm): ${JSON.stringify(times)}\n`);
  });

test("notebook 03 on WebGPU (SwiftShader): Run All with useBackend(\"webgpu\"), the parity check with Hugging Face passes",
  { skip, timeout: RUN_ALL_MS }, async () => {
    const gpuSite = await startSite({ chromiumArgs: WEBGPU_ARGS });
    try {
      const name = NOTEBOOKS.find((n) => n.startsWith("03"))!;
      const page = await openWorkbook(gpuSite, name);
      const importCell = (await codeCells(page)).find((c) => c.source.includes('useBackend("auto")'))!;
      await editCell(page, importCell.index, 'useBackend("auto")', 'useBackend("webgpu")'); // auto never takes a software adapter
      const probe = await appendCell(page, "tf.getBackend()");
      const { cells, seconds } = await runAll(page);
      assertRanClean(name, cells);
      assert.equal(outputText(cells.find((c) => c.index === probe)!), "'webgpu'");
      const { charts, drawn } = await drawnCharts(page);
      assert.ok(charts > 0 && drawn === charts, `${name}: every chart is drawn (${drawn} of ${charts})`);
      await page.screenshot({ path: path.join(SHOTS, "03-webgpu.png") });
      process.stderr.write(`site notebooks test: notebook 03 on WebGPU (SwiftShader): Run All ${seconds.toFixed(1)} s\n`);
    } finally {
      await gpuSite.close();
    }
  });

/** The losses a run of notebook 04 logged (metrics.jsonl in the browser's storage), read by a cell of the notebook. */
const LOSSES_CELL = 'console.log(JSON.stringify(fs.readFileSync(`${OUT_DIR}/metrics.jsonl`, "utf8").trim().split("\\n")\n  .map((l) => JSON.parse(l)).filter((r) => r.loss !== undefined).map((r) => [r.step, r.loss])));';

async function loggedLosses(page: Page, cell: number): Promise<[number, number][]> {
  await runFrom(page, cell);
  const cells = await whenIdle(page, 60_000);
  return JSON.parse(outputText(cells.find((c) => c.index === cell)!)) as [number, number][];
}

test("notebook 04: ■ during training ends the cell with one line and keeps the checkpoint; Restart and Run All logs the same losses; a changed learning rate, run below the parameters cell, logs what a fresh kernel logs",
  { skip, timeout: 4 * RUN_ALL_MS }, async () => {
    const name = NOTEBOOKS.find((n) => n.startsWith("04"))!;
    const page = await openWorkbook(site!, name, { BERTQA_TRAIN_STEPS: "40" });
    // section 3's run stops itself at STOP_AT under Run All; here ■ must come first, after the step-10 log line
    await editCell(page, 0, "Math.round(0.375 * MAX_STEPS!)", "30");
    const cells = await codeCells(page);
    const train = cells.find((c) => c.source.includes("const first = await trainQA("))!;
    const losses = await appendCell(page, LOSSES_CELL);
    const running = command(page, "notebook:run-all-cells");
    await page.waitForFunction((i: number) => {
      const text = (window as any).jupyterapp.shell.currentWidget.content.widgets[i].outputArea.node.innerText as string;
      return /\b(1[2-9]|2\d)\/40\b/.test(text);
    }, { timeout: RUN_ALL_MS, polling: 100 }, train.index);
    const pressed = Date.now();
    await command(page, "kernelmenu:interrupt");
    await within(60_000, "■ stopping the training", running);
    const stopped = await whenIdle(page, 60_000);
    const trainOut = stopped.find((c) => c.index === train.index)!;
    const errors = trainOut.outputs.filter((o) => o.output_type === "error");
    assert.equal(errors.length, 1, "one error output");
    const line = /^training stopped \(■\) at step (\d+) of 40: checkpoint in (\S+);/.exec(errors[0].evalue);
    assert.ok(line !== null, `the stop line: ${errors[0].evalue}`);
    assert.deepEqual(errors[0].traceback, [errors[0].evalue], "one line, no stack");
    process.stderr.write(`site notebooks test: ■ stopped training at step ${line[1]} of 40 in ${((Date.now() - pressed) / 1000).toFixed(1)} s\n`);
    const state = await appendCell(page, `JSON.parse(fs.readFileSync("${line[2]}/trainer_state.json", "utf8")).step`);
    await runFrom(page, state);
    assert.equal(outputText((await whenIdle(page, 60_000)).find((c) => c.index === state)!), line[1], "the checkpoint in storage is the stopped step's");
    const first = await loggedLosses(page, losses);
    assert.ok(first.length > 0 && first.every(([step]) => step <= Number(line[1])), `losses logged before ■: ${JSON.stringify(first)}`);
    await page.screenshot({ path: path.join(SHOTS, "04-stopped.png") });

    const restarting = command(page, "notebook:restart-run-all");
    await acceptDialog(page);
    await restarting;
    const again = await whenIdle(page, RUN_ALL_MS);
    assertRanClean(name, again.filter((c) => c.index < losses));
    const second = await loggedLosses(page, losses);
    assert.deepEqual(second.slice(0, first.length), first, "the same losses as the run ■ stopped, step by step");

    await editCell(page, 0, 'const LR = PROFILE === "full" ? 3e-5 : 1e-3;', 'const LR = PROFILE === "full" ? 3e-5 : 2e-3;');
    await runFrom(page, 0, "notebook:run-all-below");
    assertRanClean(name, (await whenIdle(page, RUN_ALL_MS)).filter((c) => c.index < losses));
    const edited = await loggedLosses(page, losses);
    assert.notDeepEqual(edited, second, "the learning rate changes the losses");
    const fresh = command(page, "notebook:restart-run-all");
    await acceptDialog(page);
    await fresh;
    await whenIdle(page, RUN_ALL_MS);
    assert.deepEqual(await loggedLosses(page, losses), edited, "a fresh kernel with that rate logs the same losses");
    await page.close();
  });
