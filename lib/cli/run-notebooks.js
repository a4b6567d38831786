#!/usr/bin/env node
// `npm run notebooks`: execute every notebook in notebooks/ top to bottom with Jupyter's nbconvert and the tslab
// TypeScript kernel, write the executed copies (.ipynb and .html) to notebooks/out/, print the time per notebook and
// exit 1 if any cell failed. Plain JavaScript so it runs before anything is compiled.
//
//   node lib/cli/run-notebooks.js [--profile offline|full] [--only 01,05] [--timeout 900] [--no-html]
//   node lib/cli/run-notebooks.js --student                         exercise copies (solutions removed) in notebooks/out/student/
//   node lib/cli/run-notebooks.js --install-kernel [--prefix DIR]   register the `bertqa` kernel for JupyterLab
//   node lib/cli/run-notebooks.js kernel --config-path FILE          the kernel itself (what kernel.json starts)
//   node lib/cli/run-notebooks.js --lab [jupyter flags]              `npm run lab`: JupyterLab, else the classic Notebook
//
// Why a kernel of our own: tslab compiles the .ts files a cell imports, but only files under its working directory
// (its TypeScript rootDir is the cwd), and Jupyter starts kernels in the notebook's folder, where ../lib is out of
// reach. The `bertqa` kernel is tslab started from the repository root, so cells import "./lib/squad" and use the
// same relative paths (data/, runs/) as the command line. The root is found from the notebook's folder (each clone's
// notebooks use that clone's lib/), else it is the clone that registered the kernel.
// It also makes Jupyter's stop button (■, SIGINT: interrupt_mode "signal") stop long library work at its next step
// (lib/stop.ts) instead of abandoning it in the background, and prints user errors as one line, as the CLI does.
// Where tslab strays from Jupyter's messaging protocol (results, errors), kernel-protocol.js puts it right.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { spawn, spawnSync } = require("node:child_process");
const { jupyterProtocol } = require("./kernel-protocol.js");

const ROOT = path.resolve(__dirname, "..", "..");
const NOTEBOOK_DIR = path.join(ROOT, "notebooks");
const OUT_DIR = path.join(NOTEBOOK_DIR, "out");
const KERNEL_NAME = "bertqa";
const DEFAULT_CELL_TIMEOUT_S = 900; // the longest offline cell (training, notebook 04) takes a few minutes on 2 cores

/** kernel.json for the bertqa kernel: this script's `kernel` subcommand, run by the node that runs us now. */
function kernelSpec() {
  return {
    argv: [process.execPath, path.join(__dirname, "run-notebooks.js"), "kernel", "--config-path", "{connection_file}"],
    display_name: "TypeScript (bertqa)",
    language: "typescript",
    // SIGINT, not an interrupt_request message: tslab has no handler for that message, and a signal also breaks a
    // cell's synchronous code (vm breakOnSigint); the kernel turns it into a stop request for running library work.
    interrupt_mode: "signal",
  };
}

/** Write kernels/bertqa/kernel.json under `dataDir` (a Jupyter data directory); rewriting it is harmless. */
function writeKernelSpec(dataDir) {
  const dir = path.join(dataDir, "kernels", KERNEL_NAME);
  const file = path.join(dir, "kernel.json");
  const text = JSON.stringify(kernelSpec(), null, 2) + "\n";
  if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) writeText(file, text, "the kernel spec");
  return file;
}

// Writes the environment refuses (disk full, read-only, no permission, something in the way): one line, exit 1.
const REFUSED = new Set(["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EISDIR", "EEXIST", "ENOTDIR", "ENAMETOOLONG", "EIO"]);

/** Write `text` to `file` through a temporary file and a rename; a refused write ends the run in one line. */
function writeText(file, text, what) {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.rmSync(tmp, { force: true }); } catch (_) { /* nothing to remove */ }
    if (e && REFUSED.has(e.code)) fail(`error: ${file}: cannot write ${what} (${Buffer.byteLength(text)} B): ${e.code} (free some space or choose a writable folder)`);
    throw e;
  }
}

/** The per-user Jupyter data directory (what `jupyter --data-dir` prints), without needing Python. */
function userJupyterDataDir() {
  if (process.env.JUPYTER_DATA_DIR) return process.env.JUPYTER_DATA_DIR;
  const home = require("node:os").homedir();
  if (process.platform === "darwin") return path.join(home, "Library", "Jupyter");
  if (process.platform === "win32") return path.join(process.env.APPDATA || home, "jupyter");
  return path.join(process.env.XDG_DATA_HOME || path.join(home, ".local", "share"), "jupyter");
}

/**
 * Turn off TypeScript's file and directory watchers inside tslab. tslab drives TypeScript's watch program with a single
 * rebuild timer and throws "Unexpected pending rebuildTimer" in the next cell when a watched file or folder changed
 * meanwhile (training writing runs/, an edit in lib/, a new file). Without watchers a running kernel keeps the lib/
 * sources it compiled first: after editing lib/, restart the kernel (as with Python notebooks).
 */
function disableTypeScriptWatchers(req = require) {
  const tslabDir = path.dirname(req.resolve("tslab/package.json"));
  const ts = req(req.resolve("@tslab/typescript-for-tslab", { paths: [tslabDir] }));
  const none = () => ({ close() {} });
  ts.sys.watchFile = none;
  ts.sys.watchDirectory = none;
}

/** The bert-qa-workbook checkout that holds `dir` (its package.json names the project), or null. */
function findRepoRoot(dir) {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(d, "package.json"), "utf8")).name === "bert-qa-workbook") return d;
    } catch (e) {
      // no package.json here, or not ours: go up
    }
    if (path.dirname(d) === d) return null;
  }
}

const FORCE_INTERRUPT_MS = 20000; // ■ stops library work at its next step; a step that takes longer is abandoned

function startKernel(argv) {
  const i = argv.indexOf("--config-path");
  const configPath = i >= 0 ? argv[i + 1] : undefined;
  if (!configPath) fail("run-notebooks kernel: missing --config-path (Jupyter passes it; see kernel.json)");
  // Jupyter starts the kernel in the notebook's folder: that clone's root, else the one that installed kernel.json
  const root = findRepoRoot(process.cwd()) || ROOT;
  process.chdir(root); // tslab's rootDir is the cwd: start at the repository root so ./lib/*.ts can be compiled
  const req = require("node:module").createRequire(path.join(root, "package.json"));
  disableTypeScriptWatchers(req);
  // tslab compiles the .ts files a cell imports statically; a library module that require()s another .ts file lazily
  // (lib/backend.ts loads its wasm kernels on demand) needs Node to load .ts itself, as the bertqa CLI does.
  req("tsx/cjs");
  const stop = loadStop(req); // shares its state (on globalThis) with the copy the cells import
  const protocol = jupyterProtocol(req, root); // before tslab's converter loads
  const { createConverter } = req("tslab/dist/converter.js");
  const { createExecutor } = req("tslab/dist/executor.js");
  const { ZmqServer, JupyterHandlerImpl } = req("tslab/dist/jupyter.js");
  // What tslab's own startKernel does, with our console and SIGINT handler (its ConverterSet is not exported).
  let node;
  const convs = { get node() { return (node ??= protocol.converter(createConverter({ isJS: false, isBrowser: false }))); },
    get browser() { throw new Error("browser mode is not supported by the bertqa kernel"); }, close() { if (node) node.close(); } };
  convs.node; // compile the converter now, not in the first cell
  const executor = createExecutor(root, convs, protocol.executorConsole);
  const handler = new JupyterHandlerImpl(executor, false);
  const server = new ZmqServer(handler, path.resolve(configPath));
  protocol.install(server, handler);
  exitWithParent();
  let pending = null; // the stop asked for by the last ■, until the work ends
  process.on("SIGINT", () => {
    const asked = pending === null ? stop.requestStop() : 0;
    if (asked === 0) {
      // nothing stoppable (or ■ pressed twice): end the cell as tslab does; the work it awaited may go on
      clearTimeout(pending);
      pending = null;
      executor.interrupt();
      return;
    }
    const force = setTimeout(() => {
      pending = null;
      if (stop.activeWork().some((w) => w.stopRequested)) executor.interrupt();
    }, FORCE_INTERRUPT_MS);
    pending = force;
    const poll = setInterval(() => {
      if (stop.activeWork().some((w) => w.stopRequested)) return;
      clearInterval(poll);
      clearTimeout(force);
      if (pending === force) pending = null;
    }, 50);
  });
  process.on("uncaughtException", (err) => protocol.reportOutside(["UncaughtException:", err]));
  process.on("unhandledRejection", (reason) => protocol.reportOutside(["UnhandledPromiseRejection:", reason]));
  server.init();
}

const PARENT_POLL_MS = 1000; // as ipykernel's ParentPollerUnix

/**
 * Call `gone(pid)` once the process that started us has exited (polled each second, as ipykernel does): on Unix an
 * orphan gets a new parent; on Windows its parent's PID stops existing.
 */
function whenParentExits(gone) {
  const parent = process.ppid;
  const alive = () => {
    if (process.platform !== "win32") return process.ppid === parent;
    try {
      process.kill(parent, 0);
      return true;
    } catch (e) {
      return e.code === "EPERM";
    }
  };
  const timer = setInterval(() => {
    if (alive()) return;
    clearInterval(timer);
    gone(parent);
  }, PARENT_POLL_MS);
  timer.unref();
}

/**
 * End the kernel when the Jupyter server that started it is gone (killed, crashed), as ipykernel does: jupyter_client
 * sets JPY_PARENT_PID for the kernels it starts (not for "independent" ones).
 */
function exitWithParent(env = process.env) {
  if (!(Number(env.JPY_PARENT_PID) > 1)) return; // PID 1 never goes away
  whenParentExits((parent) => {
    console.error(`bertqa kernel: its Jupyter server (pid ${parent}) is gone; exiting`);
    process.exit(1);
  });
}

/** lib/stop.ts of the clone the kernel serves; an older clone without it gets tslab's plain interrupt. */
function loadStop(req) {
  try {
    return req("./lib/stop.ts");
  } catch (e) {
    return { requestStop: () => 0, activeWork: () => [] };
  }
}

// Executes one notebook with nbclient (what `jupyter nbconvert --execute` uses) so that, unlike nbconvert, the copy is
// written even when a cell fails (its stderr says why), execution stops at that cell, and each cell's time is reported.
const PY_DRIVER = `
import errno, json, os, sys, time
import nbformat
from nbclient import NotebookClient
src, dst, kernel, timeout, html = sys.argv[1:6]
nb = nbformat.read(src, as_version=4)
started = {}
def on_start(cell, cell_index): started[cell_index] = time.time()
def on_done(cell, cell_index, execute_reply):
    status = execute_reply["content"]["status"] if execute_reply else "?"
    print(json.dumps({"cell": cell_index, "seconds": round(time.time() - started.get(cell_index, time.time()), 2), "status": status}), flush=True)
client = NotebookClient(nb, kernel_name=kernel, timeout=int(float(timeout)), allow_errors=False,
    resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}}, on_cell_execute=on_start, on_cell_executed=on_done)
error = None
try:
    client.execute()
except Exception as e:  # CellExecutionError, CellTimeoutError, DeadKernelError: all mean this notebook failed
    error = "%s: %s" % (type(e).__name__, str(e).strip())
def write_atomic(path, text, what):  # a refused write (disk full, read-only) is one line for run-notebooks.js
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        try: os.remove(tmp)
        except OSError: pass
        code = errno.errorcode.get(e.errno, str(e.errno))
        print(json.dumps({"write_error": "%s: cannot write %s (%d B): %s [%s]" % (path, what, len(text.encode("utf-8")), e.strerror, code)}), flush=True)
        sys.exit(3)
text = nbformat.writes(nb)
write_atomic(dst, text if text.endswith("\\n") else text + "\\n", "the executed notebook")  # as nbformat.write does
if html == "1":
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter().from_notebook_node(nb)
    write_atomic(dst[:-len(".ipynb")] + ".html", body, "the notebook's HTML")
if error is not None:
    print(json.dumps({"error": error[-4000:]}), flush=True)
    sys.exit(1)
`;

/** A Python that has nbclient, nbformat and nbconvert: $BERTQA_JUPYTER_PYTHON, the one running jupyter-nbconvert, python3. */
function findJupyterPython() {
  const candidates = [process.env.BERTQA_JUPYTER_PYTHON];
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    const file = path.join(dir, "jupyter-nbconvert");
    if (!fs.existsSync(file)) continue;
    const first = fs.readFileSync(file, "utf8").split("\n")[0];
    if (first.startsWith("#!")) candidates.push(first.slice(2).trim().split(/\s+/).pop());
    break;
  }
  candidates.push("python3", "/usr/bin/python3", "python");
  for (const py of candidates.filter((c) => c)) {
    const r = spawnSync(py, ["-c", "import nbclient, nbformat, nbconvert; print(nbconvert.__version__)"], { encoding: "utf8" });
    if (r.status === 0) return { python: py, version: r.stdout.trim() };
  }
  return fail(
    "run-notebooks: no Python with Jupyter's nbclient/nbconvert was found " +
      "(install them: `apt-get install jupyter-nbconvert python3-ipykernel` or `pip install nbconvert ipykernel`; " +
      "or point BERTQA_JUPYTER_PYTHON at such a python)",
  );
}

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { profile: process.env.BERTQA_PROFILE || "offline", only: null, timeout: DEFAULT_CELL_TIMEOUT_S, html: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`run-notebooks: ${a} needs a value`);
      return argv[++i];
    };
    if (a === "--profile") opts.profile = value();
    else if (a === "--only") opts.only = value().split(",").map((s) => s.trim()).filter((s) => s !== "");
    else if (a === "--timeout") opts.timeout = Number(value());
    else if (a === "--no-html") opts.html = false;
    else fail(`run-notebooks: unknown flag ${a} (flags: --profile offline|full, --only 01,05, --timeout SECONDS, --no-html)`);
  }
  if (opts.profile !== "offline" && opts.profile !== "full") {
    fail(`run-notebooks: --profile ${opts.profile} is not a profile (use offline or full)`);
  }
  if (!Number.isFinite(opts.timeout) || opts.timeout <= 0) fail("run-notebooks: --timeout must be a positive number of seconds");
  return opts;
}

/** Notebooks to run: notebooks/NN-*.ipynb in order, optionally only those whose number or name starts with --only. */
function listNotebooks(only) {
  const all = fs.readdirSync(NOTEBOOK_DIR).filter((f) => /^\d\d-.*\.ipynb$/.test(f)).sort();
  if (only === null) return all;
  const picked = all.filter((f) => only.some((o) => f.startsWith(o)));
  if (picked.length === 0) fail(`run-notebooks: --only ${only.join(",")} matches none of ${all.join(", ")}`);
  return picked;
}

/** Run the driver on one notebook; report slow cells as they finish. */
function executeNotebook(python, nb, opts, env) {
  return new Promise((resolve) => {
    const src = path.join(NOTEBOOK_DIR, nb);
    const dst = path.join(OUT_DIR, nb);
    const args = ["-c", PY_DRIVER, src, dst, KERNEL_NAME, String(opts.timeout), opts.html ? "1" : "0"];
    const child = spawn(python, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "", buffered = "", error = null, writeError = null;
    const cells = [];
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.on("data", (d) => {
      buffered += d;
      const lines = buffered.split("\n");
      buffered = lines.pop();
      for (const line of lines) {
        if (!line.startsWith("{")) continue;
        const msg = JSON.parse(line);
        if (msg.write_error !== undefined) writeError = msg.write_error;
        else if (msg.error !== undefined) error = msg.error;
        else {
          cells.push(msg);
          if (msg.seconds >= 10) console.error(`     cell ${msg.cell}: ${msg.seconds.toFixed(1)} s`);
        }
      }
    });
    child.on("close", (code) => {
      if (code !== 0 && error === null) error = stderr.trim().split("\n").slice(-20).join("\n") || `exit code ${code}`;
      resolve({ ok: code === 0, error, writeError, cells, dst });
    });
  });
}

/** What to print for a failed notebook: nbclient's message (the cell's source), the failed cell's stderr and error. */
function failureReport(result) {
  const lines = [String(result.error).split("\n").slice(0, 30).join("\n")];
  try {
    const nb = JSON.parse(fs.readFileSync(result.dst, "utf8"));
    const last = result.cells.length > 0 ? result.cells[result.cells.length - 1].cell : -1;
    const cell = nb.cells[last];
    const text = (cell && cell.outputs ? cell.outputs : [])
      .filter((o) => o.output_type === "stream" && o.name === "stderr" || o.output_type === "error")
      .map((o) => (o.output_type === "error" ? o.traceback.join("\n") : [].concat(o.text).join("")))
      .filter((t) => !lines[0].includes(t.trim())) // nbclient's message has the error unless the cell is long
      .join("\n");
    if (text.trim() !== "") lines.push(text.trim().split("\n").slice(0, 15).join("\n"));
  } catch (e) {
    // the copy may be missing when the kernel could not start; the message above says why
  }
  return lines.join("\n");
}

async function runAll(argv) {
  const opts = parseArgs(argv);
  const { python, version } = findJupyterPython();
  const jupyterPath = path.join(OUT_DIR, ".jupyter");
  writeKernelSpec(jupyterPath);
  const env = {
    ...process.env,
    BERTQA_PROFILE: opts.profile,
    // our kernel first; a user's own kernels stay visible after it
    JUPYTER_PATH: [jupyterPath, process.env.JUPYTER_PATH].filter((p) => p).join(path.delimiter),
    PYDEVD_DISABLE_FILE_VALIDATION: "1",
  };
  const notebooks = listNotebooks(opts.only);
  console.error(
    `run-notebooks: ${notebooks.length} notebooks, profile ${opts.profile}, nbconvert ${version} (${python}), ` +
      `output in ${path.relative(ROOT, OUT_DIR)}/`,
  );
  const results = [];
  const t0 = Date.now();
  for (const nb of notebooks) {
    const start = Date.now();
    const r = await executeNotebook(python, nb, opts, env);
    if (r.writeError) fail(`error: ${r.writeError} (free some space or make ${path.relative(ROOT, OUT_DIR)}/ writable)`);
    const seconds = Math.round((Date.now() - start) / 100) / 10;
    results.push({ notebook: nb, ok: r.ok, seconds, cells: r.cells.length });
    console.error(`${r.ok ? "ok  " : "FAIL"} ${nb}  ${seconds.toFixed(1)} s`);
    if (!r.ok) console.error(failureReport(r).replace(/^/gm, "     "));
  }
  const failed = results.filter((r) => !r.ok);
  const total = Math.round((Date.now() - t0) / 100) / 10;
  const summary = { profile: opts.profile, total_seconds: total, failed: failed.map((r) => r.notebook), notebooks: results };
  writeText(path.join(OUT_DIR, "summary.json"), JSON.stringify(summary, null, 2) + "\n", "the run summary");
  console.error(`run-notebooks: ${results.length - failed.length}/${results.length} passed in ${total} s`);
  console.log(JSON.stringify(summary));
  if (failed.length > 0) process.exit(1);
}

// Exercise cells hold their solution between these markers, so CI checks that the solution passes the check cell.
const SOLUTION = /^[ \t]*\/\/ BEGIN SOLUTION[^\n]*\n[\s\S]*?^[ \t]*\/\/ END SOLUTION[^\n]*(\n|$)/gm;

/** A notebook as handed to students: solution blocks removed, outputs cleared. Returns how many blocks were removed. */
function studentCopy(nb) {
  let removed = 0;
  for (const cell of nb.cells) {
    if (cell.cell_type !== "code") continue;
    const src = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
    const stripped = src.replace(SOLUTION, () => {
      removed++;
      return "";
    });
    cell.source = stripped;
    cell.outputs = [];
    cell.execution_count = null;
  }
  return removed;
}

function writeStudentCopies() {
  const dir = path.join(OUT_DIR, "student");
  for (const nb of listNotebooks(null)) {
    const json = JSON.parse(fs.readFileSync(path.join(NOTEBOOK_DIR, nb), "utf8"));
    const removed = studentCopy(json);
    writeText(path.join(dir, nb), JSON.stringify(json, null, 1) + "\n", "a student copy");
    console.error(`${nb}: ${removed} solution block${removed === 1 ? "" : "s"} removed`);
  }
  console.error(`student copies in ${path.relative(ROOT, dir)}/`);
}

/** Is `cmd` an executable on PATH? */
function onPath(cmd) {
  return (process.env.PATH || "").split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch (e) {
      return false;
    }
  });
}

/** Which Jupyter front end opens the notebooks: JupyterLab, else the classic Notebook (what Debian packages). */
function labCommand(has = onPath) {
  if (has("jupyter-lab")) return ["jupyter-lab", "JupyterLab"];
  if (has("jupyter-notebook")) return ["jupyter-notebook", "the classic Notebook"];
  return null;
}

/** `npm run lab`: open notebooks/ with this clone's bertqa kernel (no install needed: it goes first on JUPYTER_PATH). */
function openLab(extra) {
  const found = labCommand();
  if (found === null) {
    fail("npm run lab: neither JupyterLab nor the classic Notebook is installed (`pip install jupyterlab`, or Debian/Ubuntu: `apt-get install jupyter-notebook python3-ipykernel`)");
  }
  const jupyterPath = path.join(OUT_DIR, ".jupyter");
  writeKernelSpec(jupyterPath);
  console.error(`npm run lab: ${found[1]} (${found[0]}) in notebooks/, kernel "TypeScript (bertqa)" of ${ROOT}`);
  const env = { ...process.env, JUPYTER_PATH: [jupyterPath, process.env.JUPYTER_PATH].filter((p) => p).join(path.delimiter) };
  const child = spawn(found[0], [`--notebook-dir=${NOTEBOOK_DIR}`, ...extra], { stdio: "inherit", env });
  forwardSignals(child);
}

/**
 * Stop Jupyter with us, and wait for it: it shuts its kernels down on SIGTERM (SIGHUP would kill it outright and leave
 * them to their parent pollers), so SIGTERM and SIGHUP reach it as SIGTERM. SIGINT is passed on unless it came from
 * the terminal's Ctrl-C, which Jupyter got too: it asks whether to stop, and a second SIGINT would skip the question.
 * npm passes SIGTERM and SIGINT to the shell that runs us, which dies of it without passing it on: the shell gone, we
 * stop Jupyter too. We exit with Jupyter's status once it has exited.
 */
function forwardSignals(child) {
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  process.on("SIGHUP", () => child.kill("SIGTERM"));
  process.on("SIGINT", () => require("node:tty").isatty(0) || child.kill("SIGINT"));
  whenParentExits(() => child.kill("SIGTERM"));
  child.on("exit", (code, signal) => process.exit(code ?? 128 + (require("node:os").constants.signals[signal] ?? 0)));
}

function main(argv) {
  if (argv[0] === "--student") return writeStudentCopies();
  if (argv[0] === "--lab") return openLab(argv.slice(1));
  if (argv[0] === "kernel") return startKernel(argv.slice(1));
  if (argv[0] === "--install-kernel") {
    const i = argv.indexOf("--prefix");
    const dataDir = i >= 0 ? path.join(path.resolve(argv[i + 1]), "share", "jupyter") : userJupyterDataDir();
    console.log(`installed the ${KERNEL_NAME} kernel: ${writeKernelSpec(dataDir)}`);
    return;
  }
  runAll(argv).catch((e) => fail(`run-notebooks: ${e && e.message ? e.message : e}`));
}

if (require.main === module) main(process.argv.slice(2));
module.exports = { labCommand, disableTypeScriptWatchers, kernelSpec, writeKernelSpec, listNotebooks, studentCopy, findRepoRoot, findJupyterPython, KERNEL_NAME };
