// A course's JupyterHub from the outside, as a teacher starts it and as students' browsers speak to it: the hub's REST
// API (log in, start a server), the single-user server's contents and sessions APIs, and Jupyter's messages over the
// kernel's websocket. Used by test/course-hub.test.ts (through test/hub_driver.ts) and test/bench/course.bench.ts.
// The websocket functions need a global WebSocket: Node 22+, or Node 20 with --experimental-websocket (nodeArgs()).
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";

export const ROOT = path.resolve(__dirname, "..");
const BERTQA = path.join(ROOT, "lib", "cli", "bertqa.js");

/** Node flags for a script that uses hub_client's websockets. */
export function nodeArgs(): string[] {
  return Number(process.versions.node.split(".")[0]) < 22 ? ["--experimental-websocket", "--import", "tsx"] : ["--import", "tsx"];
}

/** Ports nobody listens on now (127.0.0.1). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface Hub { url: string; course: string; proc: ChildProcess; log: () => string }

/** `bertqa course setup` (dummy accounts, 127.0.0.1, free ports), then `jupyterhub` in the course folder, ready. */
export async function startHub(o: { course: string; students: string[]; password: string; memLimit?: string; env?: NodeJS.ProcessEnv }): Promise<Hub> {
  const [port, hubPort, apiPort] = await freePorts(3);
  const setup = spawnSync(process.execPath, [BERTQA, "course", "setup", "--course", o.course, "--auth", "dummy", "--password", o.password,
    "--students", o.students.join(","), "--ip", "127.0.0.1", "--port", String(port), "--hub-port", String(hubPort),
    "--proxy-api-port", String(apiPort), ...(o.memLimit ? ["--mem-limit", o.memLimit] : [])], { encoding: "utf8" });
  if (setup.status !== 0) throw new Error(`bertqa course setup failed: ${setup.stderr}`);
  let log = "";
  const proc = spawn("jupyterhub", [], { cwd: o.course, env: { ...process.env, ...o.env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  proc.stdout!.on("data", (d) => (log += d));
  proc.stderr!.on("data", (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 60_000; ;) {
    if (proc.exitCode !== null) throw new Error(`jupyterhub exited (${proc.exitCode}):\n${log.slice(-3000)}`);
    try {
      if ((await fetch(`${url}/hub/api/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`jupyterhub did not answer in 60 s:\n${log.slice(-3000)}`);
    await sleep(250);
  }
  return { url, course: o.course, proc, log: () => log };
}

/** SIGTERM to the hub (it stops the students' servers and the proxy, its post_stop_hook ends what they left). */
export async function stopHub(hub: Hub, timeoutMs = 30_000): Promise<boolean> {
  if (hub.proc.exitCode !== null || hub.proc.signalCode !== null) return true;
  const exited = new Promise<void>((r) => hub.proc.once("exit", () => r()));
  hub.proc.kill("SIGTERM");
  return Promise.race([exited.then(() => true), sleep(timeoutMs).then(() => false)]);
}

/** PIDs whose environment names this course (the hub's servers and kernels carry BERTQA_COURSE_DIR), or the hub. */
export function courseProcesses(course: string, hubPid?: number): number[] {
  const marker = `BERTQA_COURSE_DIR=${path.resolve(course)}`;
  return fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    if (pid === hubPid) return true;
    try {
      return fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(marker);
    } catch {
      return false;
    }
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Student { hub: string; name: string; token: string }

async function api(method: string, url: string, token: string | undefined, body?: unknown): Promise<unknown> {
  const r = await fetch(url, { method, headers: { ...(token ? { Authorization: `token ${token}` } : {}), "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${url.replace(/token=\w+/, "token=…")}: ${r.status} ${text.slice(0, 300)}`);
  return text === "" ? null : JSON.parse(text);
}

/** Log in through the hub's API (the authenticator checks the password) and get a token for the student's requests. */
export async function login(hub: string, name: string, password: string): Promise<Student> {
  const r = (await api("POST", `${hub}/hub/api/users/${name}/tokens`, undefined, { auth: { username: name, password }, note: "hub_client" })) as { token: string };
  return { hub, name, token: r.token };
}

/** Start the student's server (as "Start My Server" does) and wait until the hub says it is ready. */
export async function startServer(s: Student, timeoutMs = 120_000): Promise<void> {
  await api("POST", `${s.hub}/hub/api/users/${s.name}/server`, s.token).catch((e: Error) => {
    if (!/400 .*already running/.test(e.message)) throw e;
  });
  for (const deadline = Date.now() + timeoutMs; ;) {
    const u = (await api("GET", `${s.hub}/hub/api/users/${s.name}`, s.token)) as { servers: Record<string, { ready: boolean }> };
    if (u.servers[""]?.ready) return;
    if (Date.now() > deadline) throw new Error(`the server of ${s.name} was not ready in ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

const userUrl = (s: Student, rest: string) => `${s.hub}/user/${s.name}/${rest}`;

export interface Notebook { cells: { cell_type: string; source: string | string[]; metadata: { tags?: string[] }; outputs?: unknown[] }[]; [k: string]: unknown }

export async function readNotebook(s: Student, file: string): Promise<Notebook> {
  return ((await api("GET", userUrl(s, `api/contents/${file}?content=1`), s.token)) as { content: Notebook }).content;
}

/** Save a notebook as the editor's Save does (contents API). */
export async function saveNotebook(s: Student, file: string, nb: Notebook): Promise<void> {
  await api("PUT", userUrl(s, `api/contents/${file}`), s.token, { type: "notebook", format: "json", content: nb });
}

export interface Kernel { student: Student; id: string; ws: WebSocket; session: string; listeners: Set<(m: JupyterMessage) => void> }
export interface JupyterMessage { channel: string; header: { msg_type: string; msg_id: string }; parent_header: { msg_id?: string }; content: Record<string, unknown> }

/** Open `file` with the bertqa kernel (a session, as the browser does when it opens a notebook) and its websocket. */
export async function openKernel(s: Student, file: string, kernelName = "bertqa"): Promise<Kernel> {
  const session = (await api("POST", userUrl(s, "api/sessions"), s.token, { path: file, name: path.basename(file), type: "notebook", kernel: { name: kernelName } })) as { kernel: { id: string } };
  const k: Kernel = { student: s, id: session.kernel.id, ws: undefined as unknown as WebSocket, session: crypto.randomUUID(), listeners: new Set() };
  await connect(k);
  return k;
}

async function connect(k: Kernel): Promise<void> {
  const url = userUrl(k.student, `api/kernels/${k.id}/channels?session_id=${k.session}&token=${k.student.token}`).replace(/^http/, "ws");
  k.ws = new WebSocket(url);
  k.ws.onmessage = (e) => {
    if (typeof e.data !== "string") return; // messages with binary buffers: none of ours
    const m = JSON.parse(e.data) as JupyterMessage;
    for (const l of [...k.listeners]) l(m);
  };
  await new Promise<void>((resolve, reject) => {
    k.ws.onopen = () => resolve();
    k.ws.onerror = () => reject(new Error(`websocket to the kernel of ${k.student.name} failed`));
  });
  await waitReady(k);
}

function send(k: Kernel, channel: string, msgType: string, content: Record<string, unknown>): string {
  const msgId = crypto.randomUUID();
  k.ws.send(JSON.stringify({
    header: { msg_id: msgId, username: k.student.name, session: k.session, msg_type: msgType, version: "5.3", date: new Date().toISOString() },
    parent_header: {}, metadata: {}, content, channel, buffers: [],
  }));
  return msgId;
}

/**
 * Ask for kernel_info until the kernel answers on shell and on iopub (it may still be starting or restarting). A reply
 * on shell alone is not enough: after a restart the server's iopub subscription reconnects later, and a cell's output
 * and idle status sent before that are lost (jupyter_server "nudges" a new websocket the same way).
 */
export async function waitReady(k: Kernel, timeoutMs = 120_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    const answered = await new Promise<boolean>((resolve) => {
      const id = send(k, "shell", "kernel_info_request", {});
      let reply = false, iopub = false;
      const l = (m: JupyterMessage) => {
        if (m.parent_header.msg_id !== id) return;
        if (m.header.msg_type === "kernel_info_reply") reply = true;
        if (m.header.msg_type === "status") iopub = true;
        if (reply && iopub) done(true);
      };
      const timer = setTimeout(() => done(false), 2000);
      const done = (v: boolean) => {
        clearTimeout(timer);
        k.listeners.delete(l);
        resolve(v);
      };
      k.listeners.add(l);
    });
    if (answered) return;
  }
  throw new Error(`the kernel of ${k.student.name} did not answer in ${timeoutMs / 1000} s`);
}

export interface CellResult { status: "ok" | "error" | "died"; outputs: { type: string; text: string }[]; seconds: number }

/**
 * Run one cell as the browser does (execute_request on the shell channel) and collect its outputs until the kernel is
 * idle again. "died": the server said the kernel is restarting or dead (it was killed) before the cell ended.
 */
export function runCell(k: Kernel, code: string, onMessage?: (m: JupyterMessage) => void, timeoutMs = 600_000): Promise<CellResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const outputs: CellResult["outputs"] = [];
    let status: CellResult["status"] | undefined, idle = false;
    const id = send(k, "shell", "execute_request", { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true });
    const finish = (s: CellResult["status"]) => {
      clearTimeout(timer);
      k.listeners.delete(l);
      resolve({ status: s, outputs, seconds: (Date.now() - t0) / 1000 });
    };
    const l = (m: JupyterMessage) => {
      const t = m.header.msg_type, c = m.content;
      if (t === "status" && (c.execution_state === "restarting" || c.execution_state === "dead")) return finish("died");
      if (m.parent_header.msg_id !== id) return;
      onMessage?.(m);
      if (t === "stream") outputs.push({ type: c.name as string, text: c.text as string });
      else if (t === "error") outputs.push({ type: "error", text: `${c.ename}: ${c.evalue}` });
      else if (t === "display_data" || t === "execute_result") {
        const data = c.data as Record<string, string>;
        outputs.push({ type: "display", text: data["text/html"] ?? data["text/plain"] ?? "" });
      } else if (t === "execute_reply") status = c.status === "ok" ? "ok" : "error";
      else if (t === "status" && c.execution_state === "idle") idle = true;
      if (idle && status !== undefined) finish(status);
    };
    const timer = setTimeout(() => {
      k.listeners.delete(l);
      reject(new Error(`a cell of ${k.student.name} ran past ${timeoutMs / 1000} s`));
    }, timeoutMs);
    k.listeners.add(l);
  });
}

/** The PID of a kernel (the process started with its connection file) and its working folder. */
export function kernelProcess(kernelId: string): { pid: number; cwd: string; cgroup: string } | undefined {
  for (const p of fs.readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      if (!fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`kernel-${kernelId}.json`)) continue;
      const memory = fs.readFileSync(`/proc/${p}/cgroup`, "utf8").split("\n").find((l) => /:memory:/.test(l)) ?? "";
      return { pid: Number(p), cwd: fs.readlinkSync(`/proc/${p}/cwd`), cgroup: memory.split(":").slice(2).join(":") };
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

/** Shut the kernel down through the server (as closing the notebook's session does) and close the websocket. */
export async function closeKernel(k: Kernel): Promise<void> {
  k.ws.close();
  await api("DELETE", userUrl(k.student, `api/kernels/${k.id}`), k.student.token).catch(() => undefined);
}

export const cellSource = (c: Notebook["cells"][number]) => (Array.isArray(c.source) ? c.source.join("") : c.source);
