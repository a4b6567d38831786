// Jupyter's own kernel conformance suite (jupyter_kernel_test; Debian: apt-get install python3-jupyter-kernel-test)
// run on the bertqa kernel by test/kernel_conformance.py: the message shapes JupyterLab, the classic Notebook and
// nbclient rely on. Samples the suite offers that TypeScript has no counterpart for are left empty, so it skips them:
// the pager (IPython's `?`), clear_output (tslab's display API has none) and history (tslab keeps none).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { trackProcesses } from "./processes";

const ROOT = path.resolve(__dirname, "..");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require("../lib/cli/run-notebooks.js") as { writeKernelSpec(dataDir: string): string };
const PYTHON = [process.env.BERTQA_JUPYTER_PYTHON, "/usr/bin/python3", "python3"]
  .find((py) => py !== undefined && spawnSync(py, ["-c", "import jupyter_kernel_test"]).status === 0);
const processes = trackProcesses();

after(() => processes.assertNoneLeft(15_000));

// What the suite checks with our samples, and our own two checks (test/kernel_conformance.py): each must pass.
const EXPECTED = ["test_kernel_info", "test_execute_stdout", "test_execute_stderr", "test_completion", "test_is_complete",
  "test_inspect", "test_display_data", "test_execute_result", "test_error", "test_bertqa_error_content", "test_bertqa_execute_result_count"];

test("Jupyter's kernel conformance suite passes on the bertqa kernel",
  { skip: PYTHON === undefined ? "no Python with jupyter_kernel_test (apt-get install python3-jupyter-kernel-test)" : false, timeout: 5 * 60_000 }, async () => {
    const jupyterPath = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-conformance-"));
    runner.writeKernelSpec(jupyterPath);
    const child = spawn(PYTHON!, [path.join(ROOT, "test", "kernel_conformance.py"), "-v"], {
      cwd: ROOT, env: { ...process.env, JUPYTER_PATH: jupyterPath, PYDEVD_DISABLE_FILE_VALIDATION: "1" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    child.stdout.on("data", (d) => (log += d));
    child.stderr.on("data", (d) => (log += d));
    const code = await new Promise((resolve) => child.on("close", resolve));
    fs.rmSync(jupyterPath, { recursive: true, force: true });
    // unittest -v: "test_name (module.Class.test_name) ... ok" for each test that passed
    const passed = [...log.matchAll(/^(test_\w+) \(.*\) \.\.\. ok$/gm)].map((m) => m[1]);
    assert.deepEqual(EXPECTED.filter((t) => !passed.includes(t)), [], `tests that did not pass:\n${log.slice(-6000)}`);
    assert.equal(code, 0, log.slice(-6000));
    process.stderr.write(`kernel conformance: ${log.trim().split("\n").slice(-1)[0]}; passed: ${passed.join(", ")}\n`);
  });
