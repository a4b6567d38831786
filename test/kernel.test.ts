// The notebooks under interactive use, through the real bertqa kernel spoken to as JupyterLab does (Jupyter's messaging
// protocol, by test/kernel_driver.py on jupyter_client): Run All, each cell again, Run All Below from the model and
// training cells, an edited parameters cell; for notebook 04 also ■ during training, memory over five re-runs and the
// edited run against a fresh kernel. Training is shortened (BERTQA_TRAIN_STEPS); the notebooks' outputs go to runs/.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { trackProcesses } from "./processes";

const ROOT = path.resolve(__dirname, "..");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require("../lib/cli/run-notebooks.js") as {
  kernelSpec(): { argv: string[]; interrupt_mode?: string };
  writeKernelSpec(dataDir: string): string;
  findRepoRoot(dir: string): string | null;
  labCommand(has: (cmd: string) => boolean): [string, string] | null;
  listNotebooks(only: string[] | null): string[];
};

const processes = trackProcesses(); // the driver and the kernels it starts
after(() => processes.assertNoneLeft(15_000));

/** A Python with jupyter_client (Debian: python3-jupyter-client), or undefined. */
function jupyterClientPython(): string | undefined {
  for (const py of [process.env.BERTQA_JUPYTER_PYTHON, "/usr/bin/python3", "python3"].filter((p): p is string => !!p)) {
    if (spawnSync(py, ["-c", "import jupyter_client"], { encoding: "utf8" }).status === 0) return py;
  }
  return undefined;
}

test("kernel.json: ■ reaches the kernel as SIGINT (interrupt_mode signal), which it turns into a stop request", () => {
  assert.equal(runner.kernelSpec().interrupt_mode, "signal");
});

test("the kernel finds the repository from the notebook's folder (each clone its own lib/), else none", () => {
  assert.equal(runner.findRepoRoot(path.join(ROOT, "notebooks")), ROOT);
  assert.equal(runner.findRepoRoot(path.join(ROOT, "lib", "cli")), ROOT);
  const clone = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-clone-"));
  fs.mkdirSync(path.join(clone, "notebooks"));
  fs.writeFileSync(path.join(clone, "package.json"), JSON.stringify({ name: "bert-qa-workbook" }));
  assert.equal(runner.findRepoRoot(path.join(clone, "notebooks")), clone, "a second clone's notebooks find that clone");
  const other = fs.mkdtempSync(path.join(os.tmpdir(), "not-bertqa-"));
  fs.writeFileSync(path.join(other, "package.json"), JSON.stringify({ name: "something-else" }));
  assert.equal(runner.findRepoRoot(other), null, "another project's package.json is not ours");
});

test("npm run lab opens JupyterLab where installed, else the classic Notebook, else says what to install", () => {
  assert.deepEqual(runner.labCommand(() => true)?.[0], "jupyter-lab");
  assert.deepEqual(runner.labCommand((c) => c === "jupyter-notebook")?.[0], "jupyter-notebook");
  assert.equal(runner.labCommand(() => false), null);
  const r = spawnSync(process.execPath, [path.join(ROOT, "lib/cli/run-notebooks.js"), "--lab"], { encoding: "utf8", env: { ...process.env, PATH: fs.mkdtempSync(path.join(os.tmpdir(), "empty-path-")) } });
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
  assert.match(r.stderr, /neither JupyterLab nor the classic Notebook is installed .*apt-get install jupyter-notebook/);
});

interface DriverReport { notebook: string; cells: number; reruns?: number; seconds?: number; failures: unknown[]; [k: string]: unknown }

const python = jupyterClientPython();
test("every notebook through the real kernel: Run All, each cell again, Run All Below, an edited parameters cell; 04: ■, memory, fresh-kernel losses",
  { skip: python === undefined ? "no Python with jupyter_client (apt-get install python3-jupyter-client)" : false, timeout: 30 * 60_000 }, async () => {
    const jupyterPath = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-jupyter-"));
    runner.writeKernelSpec(jupyterPath);
    const notebooks = runner.listNotebooks(process.env.BERTQA_KERNEL_TEST_ONLY ? process.env.BERTQA_KERNEL_TEST_ONLY.split(",") : null)
      .map((f) => path.join(ROOT, "notebooks", f));
    const env = { ...process.env, JUPYTER_PATH: jupyterPath, BERTQA_PROFILE: "offline", BERTQA_TRAIN_STEPS: "16", PYDEVD_DISABLE_FILE_VALIDATION: "1" };
    const reports: DriverReport[] = [];
    let stderr = "";
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(python!, [path.join(ROOT, "test", "kernel_driver.py"), ...notebooks], { env, cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let buffered = "";
      child.stdout.on("data", (d) => {
        buffered += d;
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines.filter((l) => l.startsWith("{"))) {
          const r = JSON.parse(line) as DriverReport;
          reports.push(r);
          process.stderr.write(`kernel test: ${r.notebook}: ${r.reruns ?? 0} cells re-run, ${r.failures.length} failures, ${r.seconds ?? "?"} s\n`);
        }
      });
      child.stderr.on("data", (d) => (stderr += d));
      child.on("close", resolve);
    });
    assert.equal(reports.length, notebooks.length, `a report per notebook; driver stderr:\n${stderr.slice(-3000)}`);
    for (const r of reports) assert.deepEqual(r.failures, [], `${r.notebook}: ${JSON.stringify(r.failures).slice(0, 3000)}`);
    assert.equal(code, 0);
    const nb04 = reports.find((r) => r.notebook.startsWith("04"));
    if (nb04 !== undefined) {
      const it = nb04.interrupt as { seconds_to_stop: number; stopped_step: number; message: string };
      process.stderr.write(`kernel test: 04 ■ stopped training at step ${it.stopped_step} in ${it.seconds_to_stop} s: ${it.message}\n` +
        `kernel test: 04 memory after 1 and 5 runs of the model and training cells: ${JSON.stringify(nb04.memory_after_1)} ${JSON.stringify(nb04.memory_after_5)}\n`);
    }
  });
