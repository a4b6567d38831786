// The kernel and `npm run lab` end with what started them: a bertqa kernel whose Jupyter server is killed (kill -9)
// exits, as ipykernel does; `npm run lab` stopped by SIGTERM (kill, npm's own forwarding), SIGHUP (a closed terminal)
// or SIGINT passes it on to Jupyter, which shuts its kernels down, and exits with Jupyter's status. Nothing started
// here is left running (test/processes.ts). Skipped without jupyter_client / the classic Notebook (.ci/run installs them).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { trackProcesses } from "./processes";
import { freePort, waitFor } from "./server-helpers";

const ROOT = path.resolve(__dirname, "..");
const RUNNER = path.join(ROOT, "lib/cli/run-notebooks.js");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require(RUNNER) as { writeKernelSpec(dataDir: string): string; labCommand(): [string, string] | null };
const PYTHON = [process.env.BERTQA_JUPYTER_PYTHON, "/usr/bin/python3", "python3"]
  .find((py) => py !== undefined && spawnSync(py, ["-c", "import jupyter_client"]).status === 0);
const processes = trackProcesses();
const home = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-lifecycle-"));
const env = { ...process.env, JUPYTER_PATH: path.join(home, "kernels"), JUPYTER_CONFIG_DIR: path.join(home, "config"),
  JUPYTER_DATA_DIR: path.join(home, "data"), JUPYTER_RUNTIME_DIR: path.join(home, "runtime"), PYDEVD_DISABLE_FILE_VALIDATION: "1" };
runner.writeKernelSpec(env.JUPYTER_PATH);

after(async () => {
  await processes.assertNoneLeft(20_000);
  fs.rmSync(home, { recursive: true, force: true });
});

/** Run `body`; when it fails, end what it started first, so that the next test starts clean. */
async function endingAll(body: () => Promise<void>) {
  try {
    await body();
  } catch (e) {
    await processes.assertNoneLeft(0).catch(() => {});
    throw e;
  }
}

const kernels = () => processes.running().filter((p) => p.command.includes("run-notebooks.js kernel"));
/** The child's exit, once its output is read too. */
const exited = (child: ChildProcess) => new Promise<{ code: number | null; signal: string | null }>((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
  else child.once("close", (code, signal) => resolve({ code, signal }));
});

// What Jupyter does when it starts a kernel: jupyter_client's KernelManager (it sets JPY_PARENT_PID), then waits.
const PARENT = `
import json, os, sys, time
from jupyter_client.manager import KernelManager
km = KernelManager(kernel_name="bertqa")
km.start_kernel()
kc = km.client(); kc.start_channels(); kc.wait_for_ready(timeout=120)
print(json.dumps({"kernel": km.provisioner.process.pid}), flush=True)
time.sleep(600)
`;

test("a bertqa kernel exits within seconds when the Jupyter process that started it is killed (kill -9)",
  { skip: PYTHON === undefined ? "no Python with jupyter_client (apt-get install python3-jupyter-client)" : false, timeout: 3 * 60_000 }, async () => {
    const parent = spawn(PYTHON!, ["-c", PARENT], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    await endingAll(() => orphanKernel(parent));
  });

/** With a kernel started by `parent`, kill -9 `parent`: the kernel exits within 10 s. */
async function orphanKernel(parent: ChildProcess) {
  let out = "", err = "";
  parent.stdout!.on("data", (d) => (out += d));
  parent.stderr!.on("data", (d) => (err += d));
  const pid: number = await waitFor(() => `the kernel to start (stderr: ${err.slice(-500)})`, () => (out.includes("\n") ? JSON.parse(out).kernel : undefined), 120_000);
  assert.deepEqual(kernels().map((k) => k.pid), [pid], "the kernel runs");
  await new Promise((r) => setTimeout(r, 1500)); // still running after a poll or more: it only leaves when its parent does
  assert.deepEqual(kernels().map((k) => k.pid), [pid], "a kernel whose parent lives keeps running");
  parent.kill("SIGKILL");
  await new Promise((r) => parent.once("exit", r)); // not exited(): the kernel holds its parent's stdout
  const killed = Date.now();
  await waitFor("the orphaned kernel to exit", () => !kernels().some((k) => k.pid === pid), 10_000);
  process.stderr.write(`kernel lifecycle: the orphaned kernel exited ${((Date.now() - killed) / 1000).toFixed(1)} s after its parent was killed\n`);
}

const READY = `
import queue, sys
from jupyter_client import BlockingKernelClient
kc = BlockingKernelClient()
kc.load_connection_file(sys.argv[1])
kc.start_channels()
for attempt in range(120):
    try:
        kc.kernel_info()
        kc.get_shell_msg(timeout=1)
        break
    except queue.Empty:
        pass
else:
    sys.exit("no kernel_info_reply in 120 s")
kc.stop_channels()
`;
const noLab = runner.labCommand()?.[0] !== "jupyter-notebook" ? "needs Debian's classic Notebook (apt-get install jupyter-notebook)"
  : PYTHON === undefined ? "no Python with jupyter_client (apt-get install python3-jupyter-client)" : false;
// `kill` signals npm, which passes SIGTERM (and SIGINT) on to its script; a closed terminal and Ctrl-C signal every
// process of the job, the script among them.
for (const [signal, to] of [["SIGTERM", "npm"], ["SIGHUP", "its script"], ["SIGINT", "its script"]] as const) {
  test(`npm run lab, ${signal} sent to ${to}: Jupyter shuts its kernel down and exits${to === "npm" ? "" : ", then npm run lab, with Jupyter's status"}`,
    { skip: noLab, timeout: 3 * 60_000 }, async () => {
      const port = await freePort();
      const token = "bertqa-lifecycle-test";
      const flags = ["--no-browser", `--port=${port}`, "--ip=127.0.0.1", `--NotebookApp.token=${token}`, ...(process.getuid?.() === 0 ? ["--allow-root"] : [])];
      const [cmd, args] = to === "npm" ? ["npm", ["run", "--silent", "lab", "--", ...flags]] : [process.execPath, [RUNNER, "--lab", ...flags]];
      const lab = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
      // npm ends itself with the signal it passed on, once its script has exited
      await endingAll(() => stopLab(lab, signal, port, token, to === "npm" ? { code: null, signal } : { code: 0, signal: null }));
    });
}

/** With a kernel running in `lab`'s Jupyter, send `signal` to `lab`: both exit (`lab` with `status`), leaving nothing behind. */
async function stopLab(lab: ChildProcess, signal: NodeJS.Signals, port: number, token: string, status: { code: number | null; signal: string | null }) {
  let log = "";
  lab.stderr!.on("data", (d) => (log += d));
  const api = (p: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${p}`, { ...init, headers: { Authorization: `token ${token}` } });
  await waitFor(() => `Jupyter (its log: ${log.slice(-500)})`, async () => (await api("/api/status")).ok, 60_000);
  assert.ok((await api("/api/kernels", { method: "POST", body: JSON.stringify({ name: "bertqa" }) })).ok, "Jupyter starts a bertqa kernel");
  const kernel = await waitFor("the kernel's process", () => kernels()[0], 60_000);
  // connected to as a notebook page does, until it answers
  const ready = spawnSync(PYTHON!, ["-c", READY, kernel.command.split(" --config-path ")[1]], { env, encoding: "utf8", timeout: 130_000 });
  assert.equal(ready.status, 0, `the kernel answers: ${ready.stderr}`);
  assert.equal(kernels().length, 1, "Jupyter runs one bertqa kernel");
  lab.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`npm run lab still runs 60 s after ${signal}; its log:\n${log.slice(-2000)}`)), 60_000)));
  assert.deepEqual(await Promise.race([exited(lab), late]).finally(() => clearTimeout(timer)), status, `npm run lab exits with Jupyter's status; its log:\n${log.slice(-2000)}`);
  assert.match(log, /Shutting down 1 kernel/, "Jupyter shut its kernel down");
  assert.deepEqual(processes.running(), [], "neither Jupyter nor its kernel is left running");
}
