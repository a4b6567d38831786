// The bertqa kernel in JupyterLab in the browser (issue 29): `npm run site` builds the JupyterLite site, `npm run
// serve`'s server serves it on 127.0.0.1, and Chromium (puppeteer-core) opens JupyterLab there. The kernel is driven
// the way JupyterLab drives it: first through JupyterLab's own kernel connection (Jupyter's messages, one by one), then
// through JupyterLab's commands on small notebooks (Run All, ■, Restart). The workbook's own notebooks are
// test/site-notebooks.test.ts. Skipped without Chromium (apt-get install chromium). The first run installs lib/site's
// packages and builds the site (a few minutes); later runs rebuild only what changed. Screenshots: the folder it prints.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Page } from "puppeteer-core";
import {
  acceptDialog, appendCell, command, openLab, openNotebook, runFrom, skipSite as skip, startSite, whenIdle, within, type Site,
} from "./site-helpers";

/* eslint-disable @typescript-eslint/no-explicit-any */ // JupyterLab's objects, reached in the page untyped

const SHOTS = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-site-"));
let site: Site | undefined;

before(async () => {
  if (skip !== false) return;
  site = await startSite();
  process.stderr.write(`site test: screenshots in ${SHOTS}\n`);
});

after(async () => {
  await site?.close();
});

interface Executed {
  reply: { status: string; execution_count: number; ename?: string; evalue?: string; traceback?: string[] };
  outputs: { type: string; content: any }[];
}

/** Start a bertqa kernel through JupyterLab's service manager; `run` sends one execute_request over its connection. */
async function startKernel(page: Page): Promise<(code: string) => Promise<Executed>> {
  await page.evaluate(async () => {
    const app = (window as any).jupyterapp;
    const session = await app.serviceManager.sessions.startNew({ path: `scratch-${Date.now()}.ipynb`, type: "notebook", name: "t", kernel: { name: "bertqa" } });
    (window as any).testKernel = session.kernel;
  });
  return (code: string) => page.evaluate(async (c: string) => {
    const future = (window as any).testKernel.requestExecute({ code: c });
    const outputs: { type: string; content: unknown }[] = [];
    future.onIOPub = (m: any) => {
      if (!["status", "execute_input"].includes(m.header.msg_type)) outputs.push({ type: m.header.msg_type, content: m.content });
    };
    const reply = await future.done;
    return { reply: reply.content, outputs };
  }, code);
}

test("JupyterLab starts, with the bertqa kernel for TypeScript notebooks", { skip, timeout: 120_000 }, async () => {
  const started = Date.now();
  const page = await openLab(site!);
  const loadMs = Date.now() - started;
  const specs = await page.evaluate(async () => {
    const ks = (window as any).jupyterapp.serviceManager.kernelspecs;
    await ks.ready;
    return ks.specs;
  });
  assert.equal(specs.default, "bertqa");
  assert.deepEqual([specs.kernelspecs.bertqa.language, specs.kernelspecs.bertqa.display_name], ["typescript", "TypeScript (bertqa)"]);
  const isolated = await page.evaluate(() => crossOriginIsolated);
  assert.equal(isolated, true, "the server's COOP/COEP headers make the page cross-origin isolated");
  process.stderr.write(`site test: JupyterLab restored ${loadMs} ms after the page was asked for\n`);
  await page.screenshot({ path: path.join(SHOTS, "lab.png") });
  await page.close();
});

test("cells: declarations persist and may be declared again, top-level await, the value as Out[n], console as streams", { skip, timeout: 120_000 }, async () => {
  const page = await openLab(site!);
  const run = await startKernel(page);
  let r = await run("const x: number = 6 * 7;\nx");
  assert.equal(r.reply.status, "ok");
  assert.deepEqual(r.outputs, [{ type: "execute_result", content: { execution_count: 1, data: { "text/plain": "42" }, metadata: {} } }]);
  r = await run("let y = x + 1;\nconsole.log('y is', y, { a: [1, 2] });\nconsole.error('careful');");
  assert.deepEqual(r.outputs.map((o) => [o.type, o.content.name, o.content.text]),
    [["stream", "stdout", "y is 43 { a: [ 1, 2 ] }\n"], ["stream", "stderr", "careful\n"]]);
  r = await run("const x = 1; // a re-run cell declares it again\nx + y");
  assert.equal(r.outputs[0].content.data["text/plain"], "44");
  r = await run("await new Promise((resolve) => setTimeout(resolve, 50));\n'awaited'");
  assert.equal(r.outputs[0].content.data["text/plain"], "'awaited'");
  r = await run("const unused = 1;");
  assert.deepEqual(r.outputs, [], "a declaration shows nothing, as under tslab");
  await page.close();
});

test("imports resolve to the library bundle: one tfjs for the cells and the library; tslab's display API", { skip, timeout: 120_000 }, async () => {
  const page = await openLab(site!);
  const run = await startKernel(page);
  // the bundle's own names (tf, initPlatform) are not in the library's types, which are its Node side's, as under tslab
  let r = await run('import * as tf from "@tensorflow/tfjs";\nimport * as lib from "./lib";\nconst bundle = lib as any;\ntf === bundle.tf && typeof bundle.initPlatform === "function"');
  assert.equal(r.outputs[0]?.content.data["text/plain"], "true", JSON.stringify(r));
  r = await run('import * as tslab from "tslab";\ntslab.display.html("<b>bold</b>");\nconst bar = tslab.newDisplay();\nbar.html("step 1");\nbar.html("step 2");');
  assert.deepEqual(r.outputs.map((o) => [o.type, o.content.data["text/html"], o.content.transient?.display_id !== undefined]),
    [["display_data", "<b>bold</b>", false], ["display_data", "step 1", true], ["update_display_data", "step 2", true]]);
  const ids = r.outputs.slice(1).map((o) => o.content.transient.display_id);
  assert.equal(ids[0], ids[1], "the update replaces the display it belongs to");
  r = await run('import * as fs from "node:fs";');
  assert.equal(r.reply.status, "error");
  assert.match(r.reply.evalue!, /node:fs.*do not exist in the browser/);
  await page.close();
});

test("errors: one error output with the cell's line, not the bundle's stack; user errors are one line; the next cell runs", { skip, timeout: 120_000 }, async () => {
  const page = await openLab(site!);
  const run = await startKernel(page);
  await run("const a = { b: null as null | { c: number } };\n\nfunction f(): number {\n  return a.b!.c;\n}");
  let r = await run("const z = 0;\nf();");
  assert.equal(r.reply.status, "error");
  const errors = r.outputs.filter((o) => o.type === "error");
  assert.equal(errors.length, 1);
  const { ename, evalue, traceback } = errors[0].content;
  assert.equal(ename, "TypeError");
  assert.match(evalue, /Cannot read properties of null \(reading 'c'\)/);
  assert.deepEqual(traceback.slice(1), ["Cell In[1], line 4\n---->   return a.b!.c;", "Cell In[2], line 2\n----> f();"]);
  assert.ok(!traceback.join("\n").includes(".js"), `no bundle or worker frames: ${traceback.join("\n")}`);
  assert.deepEqual([r.reply.ename, r.reply.evalue, r.reply.traceback], [ename, evalue, traceback], "the execute_reply carries the error too");
  r = await run("f()"); // a function from an earlier cell: its frame still points at that cell
  assert.deepEqual(r.reply.traceback!.slice(1), ["Cell In[1], line 4\n---->   return a.b!.c;", "Cell In[3], line 1\n----> f()"]);
  r = await run('const e = new Error("data/x.json: not found (run npm run sample)"); e.name = "UserError"; throw e;');
  assert.deepEqual(r.reply.traceback, ["data/x.json: not found (run npm run sample)"]);
  r = await run("const s: string = ;");
  const arrow = "----> const s: string = ";
  assert.deepEqual([r.reply.ename, r.reply.traceback![1]], ["SyntaxError", `Cell In[5], line 1\n${arrow};\n${" ".repeat(arrow.length)}^`]);
  r = await run("1 + 1");
  assert.deepEqual([r.reply.status, r.outputs[0].content.data["text/plain"]], ["ok", "2"]);
  await page.close();
});

test("a cell with a type error is one error output, as under tslab, and does not run; declarations keep their types", { skip, timeout: 120_000 }, async () => {
  const page = await openLab(site!);
  const run = await startKernel(page);
  let r = await run('import { computeExact } from "./lib";\nconst n: number = 6 * 7;');
  assert.equal(r.reply.status, "ok");
  r = await run('console.log("ran");\nconst s: string = n;');
  assert.deepEqual(r.outputs.map((o) => [o.type, o.content.ename, o.content.evalue, o.content.traceback]),
    [["error", "TSError", "2:7 - Type 'number' is not assignable to type 'string'.", ["2:7 - Type 'number' is not assignable to type 'string'."]]],
    "one error output with tslab's line and nothing from the cell: it did not run");
  assert.deepEqual([r.reply.status, r.reply.ename], ["error", "TSError"]);
  r = await run('computeExact("a", 1)');
  assert.equal(r.reply.evalue, "1:19 - Argument of type 'number' is not assignable to parameter of type 'string'.", "the library's own types");
  r = await run('let n = "now a string";\nn.toUpperCase()');
  assert.equal(r.outputs[0].content.data["text/plain"], "'NOW A STRING'", "a re-run cell may declare a name again, with another type");
  r = await run("n.push(1)");
  assert.equal(r.reply.evalue, "1:3 - Property 'push' does not exist on type 'string'.");
  r = await run("throw new RangeError('at run time');");
  assert.equal(r.reply.ename, "RangeError");
  r = await run("n.length");
  assert.deepEqual([r.reply.status, r.outputs[0].content.data["text/plain"]], ["ok", "12"], "the next cell runs");
  await page.close();
});

test("Tab and Shift-Tab: complete_request and inspect_request answer from the type checker, with Jupyter's code-point cursor", { skip, timeout: 120_000 }, async () => {
  const page = await openLab(site!);
  const run = await startKernel(page);
  await run('import { computeExact } from "./lib";\nconst longName = 1;');
  const ask = (kind: "complete" | "inspect", code: string, cursor: number) => page.evaluate(async (k: string, c: string, p: number) => {
    const kernel = (window as any).testKernel;
    const reply = k === "complete" ? await kernel.requestComplete({ code: c, cursor_pos: p }) : await kernel.requestInspect({ code: c, cursor_pos: p, detail_level: 0 });
    return reply.content;
  }, kind, code, cursor);
  const code = 'const face = "😀"; longN'; // 😀 is one code point, two UTF-16 units
  const end = [...code].length;
  const c = await ask("complete", code, end);
  assert.deepEqual([c.status, c.matches, c.cursor_start, c.cursor_end], ["ok", ["longName"], end - 5, end]);
  const members = await ask("complete", "computeExact.ap", 15);
  assert.ok(members.matches.includes("apply"), JSON.stringify(members));
  const i = await ask("inspect", "computeExact", 4);
  assert.equal(i.found, true);
  assert.match(i.data["text/plain"], /^\(alias\) function computeExact\(gold: string, pred: string\): number/);
  assert.equal((await ask("inspect", "  ", 1)).found, false);
  await page.close();
});

test("process.env holds the site's bertqaEnv, and BERTQA_* parameters of the page's URL", { skip, timeout: 120_000 }, async () => {
  const page = await openLab(site!, "?BERTQA_TRAIN_STEPS=16");
  const run = await startKernel(page);
  const r = await run("[process.env.BERTQA_PROFILE, process.env.BERTQA_TRAIN_STEPS]");
  assert.equal(r.outputs[0].content.data["text/plain"], "[ 'offline', '16' ]");
  await page.close();
});

/** A cell that waits, as the library's training loop does between steps, until ■ sets the shared stop flag. It says
 * "waiting" once it has seen the flag clear, so a ■ sent after that line stops a cell that is running. */
const WAIT_FOR_STOP = `const flag = (globalThis as any)[Symbol.for("bertqa.stopFlag")] as Int32Array;
let polls = 0;
while (Atomics.load(flag, 0) === 0) {
  if (polls++ === 0) console.log("waiting for ■");
  await new Promise((r) => setTimeout(r, 20));
}
"stopped after " + (polls > 0 ? "polling" : "nothing")`;

test("■ reaches the running cell (the shared stop flag) and drops the queued ones; Restart gives a fresh worker", { skip, timeout: 120_000 }, async () => {
  const page = await openLab(site!);
  const run = await startKernel(page);
  await run("const kept = 'declared before the restart';");
  const worker = () => page.workers().filter((w) => w.url().endsWith("/kernel/worker.js"));
  assert.equal(worker().length, 1);
  const replies = page.evaluate(async (code: string) => {
    const k = (window as any).testKernel;
    const first = k.requestExecute({ code });
    const queued = k.requestExecute({ code: "'ran after ■'" });
    let result = "";
    await new Promise((started) => (first.onIOPub = (m: any) => {
      if (m.header.msg_type === "stream") started(undefined); // the cell is running: ■ now
      if (m.header.msg_type === "execute_result") result = m.content.data["text/plain"];
    }));
    await k.interrupt();
    return [(await first.done).content.status, result, (await queued.done).content.status];
  }, WAIT_FOR_STOP);
  assert.deepEqual(await within(20_000, "■ stopping the running cell", replies), ["ok", "'stopped after polling'", "error"]);
  assert.equal((await run("1 + 1")).outputs[0].content.data["text/plain"], "2", "the kernel runs the next cell");
  const oldWorker = worker()[0];
  await page.evaluate(() => (window as any).testKernel.restart());
  let r = await run('"kept" in globalThis');
  assert.equal(r.outputs[0].content.data["text/plain"], "false", "a fresh worker knows nothing of the old one's names");
  r = await run("kept");
  assert.equal(r.reply.evalue, "1:1 - Cannot find name 'kept'.", "nor does its type checker");
  assert.equal(worker().length, 1, "the old worker is gone");
  assert.notEqual(worker()[0], oldWorker);
  await page.close();
});

test("■ without cross-origin isolation (a host without COOP/COEP): the stop message reaches the library's stop, even before the work begins", { skip, timeout: 120_000 }, async () => {
  const plain = await startSite({ isolated: false });
  try {
    const page = await openLab(plain);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    const run = await startKernel(page);
    const replies = page.evaluate(async () => {
      const k = (window as any).testKernel;
      const code = `import { beginWork, pollStop } from "./lib";
console.log("working");
await new Promise((r) => setTimeout(r, 500)); // ■ comes before the work begins: it must still stop it
const work = beginWork("train", 1e9); // what training registers; pollStop is what it calls between steps
try { while (!(await pollStop(work, 0))); } finally { work.end(); } // only ■ ends it
"stopped by ■"`;
      const first = k.requestExecute({ code });
      let result = "";
      await new Promise((started) => (first.onIOPub = (m: any) => {
        if (m.header.msg_type === "stream") started(undefined);
        if (m.header.msg_type === "execute_result") result = m.content.data["text/plain"];
      }));
      await k.interrupt();
      return [(await first.done).content.status, result];
    });
    assert.deepEqual(await within(20_000, "■ stopping the loop", replies), ["ok", "'stopped by ■'"]);
    assert.equal((await run("1 + 1")).outputs[0].content.data["text/plain"], "2");
  } finally {
    await plain.close();
  }
});

test("a library that fails to load: every cell says so in one error output, naming what failed", { skip, timeout: 120_000 }, async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-no-bundle-"));
  const broken = await startSite({ mounts: { "/bertqa/": empty } }); // the site without its library bundle
  try {
    const page = await openLab(broken);
    const run = await startKernel(page);
    const r = await run("1 + 1");
    assert.equal(r.reply.status, "error");
    assert.equal(r.outputs.filter((o) => o.type === "error").length, 1);
    assert.match(r.reply.evalue!, /^the library did not load: .*bertqa\.js/);
  } finally {
    await broken.close();
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test("without its types (a site copied without bertqa/types.json) cells still run, and the first says they go unchecked", { skip, timeout: 120_000 }, async () => {
  const noTypes = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-no-types-"));
  fs.cpSync(path.join(__dirname, "..", "dist", "site", "bertqa"), noTypes, { recursive: true, filter: (f) => path.basename(f) !== "types.json" });
  const partial = await startSite({ mounts: { "/bertqa/": noTypes } });
  try {
    const page = await openLab(partial);
    const run = await startKernel(page);
    let r = await run("const s: string = 1;\ns");
    assert.deepEqual(r.outputs.map((o) => [o.type, o.content.name ?? o.content.data?.["text/plain"]]), [["stream", "stderr"], ["execute_result", "1"]]);
    assert.match(r.outputs[0].content.text, /^bertqa kernel: cells run without type checks: .*types\.json: HTTP 404\n$/);
    r = await run("s");
    assert.deepEqual(r.outputs.map((o) => o.type), ["execute_result"], "said once");
  } finally {
    await partial.close();
    fs.rmSync(noTypes, { recursive: true, force: true });
  }
});

// ---- JupyterLab's UI: notebooks, Run All, ■ and Restart through JupyterLab's own commands ----

test("Run All (notebook:run-all-cells) gives every cell its count; an error is one output and the next cell runs", { skip, timeout: 120_000 }, async () => {
  const page = await openLab(site!);
  await openNotebook(page, "scratch-run-all.ipynb", [
    { cell_type: "markdown", source: "# A notebook" },
    { cell_type: "code", source: "const rows = [1, 2, 3];" },
    { cell_type: "code", source: 'import * as tslab from "tslab";\ntslab.display.html(`<table id="t">${rows.map((r) => `<tr><td>${r}</td></tr>`).join("")}</table>`);' },
    { cell_type: "code", source: "rows.length" },
  ]);
  await command(page, "notebook:run-all-cells");
  let cells = await whenIdle(page, 60_000);
  assert.deepEqual(cells.map((c) => c.count), [1, 2, 3]);
  assert.deepEqual(cells[2].outputs, [{ output_type: "execute_result", execution_count: 3, data: { "text/plain": "3" }, metadata: {} }]);
  assert.equal(await page.$eval(".jp-OutputArea-output #t", (t) => t.querySelectorAll("td").length), 3, "the HTML display is drawn");
  await page.screenshot({ path: path.join(SHOTS, "run-all.png") });

  await page.evaluate(() => {
    const panel = (window as any).jupyterapp.shell.currentWidget;
    panel.content.model.sharedModel.insertCells(4, [
      { cell_type: "code", source: "throw new RangeError('out of range');", metadata: {} },
      { cell_type: "code", source: "'after the error'", metadata: {} },
    ]);
  });
  await command(page, "notebook:run-all-cells");
  cells = await whenIdle(page, 60_000);
  assert.deepEqual(cells[3].outputs.map((o) => [o.output_type, o.ename, o.evalue]), [["error", "RangeError", "out of range"]]);
  assert.equal(cells[4].count, null, "Run All stops at the error, as in JupyterLab with any kernel");
  await runFrom(page, 5);
  cells = await whenIdle(page, 30_000);
  assert.equal(cells[4].outputs[0]?.data["text/plain"], "'after the error'");
  await page.close();
});

test("■ and Restart through the Kernel menu's commands (kernelmenu:interrupt, kernelmenu:restart)", { skip, timeout: 120_000 }, async () => {
  const page = await openLab(site!);
  await openNotebook(page, "scratch-stop.ipynb", [
    { cell_type: "code", source: "const before = 1;" },
    { cell_type: "code", source: WAIT_FOR_STOP },
    { cell_type: "code", source: "'queued behind the running cell'" },
  ]);
  const running = command(page, "notebook:run-all-cells");
  await page.waitForFunction(() => (window as any).jupyterapp.shell.currentWidget.content.widgets[1].outputArea.node.innerText.includes("waiting for ■"));
  await command(page, "kernelmenu:interrupt");
  await within(20_000, "■ stopping the running cell", running);
  let cells = await whenIdle(page, 30_000);
  assert.equal(cells[1].outputs.find((o) => o.output_type === "execute_result")?.data["text/plain"], "'stopped after polling'");
  assert.deepEqual(cells.map((c) => c.count), [1, 2, null]);
  const restarting = command(page, "kernelmenu:restart");
  await acceptDialog(page);
  await restarting;
  await runFrom(page, await appendCell(page, '"before" in globalThis'));
  cells = await whenIdle(page, 30_000);
  assert.deepEqual([cells[3].count, cells[3].outputs[0]?.data["text/plain"]], [1, "false"], "counting starts again in a fresh kernel");
  await page.close();
});
