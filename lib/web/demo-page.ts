// The page lib/web/demo.html: it starts lib/web/trainer.ts in a Web Worker, shows which backends work here and why,
// runs the demo job there with the page's settings, draws the progress display the worker posts (the notebook's own
// HTML, live loss curve included), stops it with ■ (a shared flag the worker polls between steps, and a message),
// and downloads a run folder from the browser's storage as a zip. `window.bertqaDemo` is the same, for scripts and tests.
import type { BackendDiagnosis, DemoOptions, DemoSummary } from "./entry";

type Reply = { id?: number; result?: unknown; error?: string; stopped?: boolean; display?: { id?: number; html: string }; log?: string; ready?: boolean };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const worker = new Worker(new URL("./trainer.js", import.meta.url), { type: "module", name: "bertqa-trainer" });
const stopFlag = globalThis.crossOriginIsolated ? new SharedArrayBuffer(4) : undefined;
const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
let nextId = 1;

worker.onmessage = (e: MessageEvent<Reply>) => {
  const m = e.data;
  if (m.display !== undefined) showDisplay(m.display);
  if (m.log !== undefined) $("log").textContent += m.log + "\n";
  if (m.id === undefined) return;
  const w = waiting.get(m.id);
  waiting.delete(m.id);
  if (m.error !== undefined) w?.reject(Object.assign(new Error(m.error), { stopped: m.stopped === true }));
  else w?.resolve(m.result);
};

function call<T>(msg: object): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    worker.postMessage({ id, ...msg });
  });
}

let shown = 0;
/** A display the worker updates in place keeps one element per display id; each other one gets its own. */
function showDisplay(d: { id?: number; html: string }): void {
  const key = d.id !== undefined ? `display-${d.id}` : `shown-${++shown}`;
  let el = document.getElementById(key);
  if (el === null) {
    el = document.createElement("div");
    el.id = key;
    $("progress").appendChild(el);
  }
  el.innerHTML = d.html;
  for (const s of Array.from(el.querySelectorAll("script"))) { // innerHTML does not run scripts (the live chart draws with one)
    const run = document.createElement("script");
    run.textContent = s.textContent;
    s.replaceWith(run);
  }
}

const ready = (async () => {
  const base = new URL("./files/", import.meta.url).href;
  // Settings the library reads from the environment under Node come from the page's address here:
  // demo.html?HF_ENDPOINT=...&HF_HUB_OFFLINE=1&BERTQA_WASM_THREADS=2
  const env = Object.fromEntries(new URLSearchParams(location.search));
  const init = await call<{ crossOriginIsolated: boolean }>({ call: "init", base, env, stopFlag });
  $("isolation").textContent = init.crossOriginIsolated
    ? "This page is cross-origin isolated: WebAssembly runs on all cores."
    : "This page is not cross-origin isolated (its server does not send COOP/COEP headers): WebAssembly runs on one thread.";
  const diagnoses = await call<BackendDiagnosis[]>({ call: "diagnose" });
  $("backends").innerHTML = "<tr><th>backend</th><th>works here</th><th>why</th></tr>" + diagnoses.map((d) =>
    `<tr><td>${d.name}</td><td>${d.available ? (d.gpu ? "yes (GPU)" : "yes") : "no"}</td><td>${escape(d.detail)}${d.fix !== undefined ? `<br><i>${escape(d.fix)}</i>` : ""}</td></tr>`).join("");
  return diagnoses;
})();

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot" }[c]};`);
}

/** Run the demo job (the page's settings, overridden by `options`); resolves to its summary. */
async function train(options: Partial<DemoOptions> = {}): Promise<DemoSummary> {
  await ready;
  if (stopFlag !== undefined) Atomics.store(new Int32Array(stopFlag), 0, 0);
  const job: DemoOptions = {
    out: $<HTMLInputElement>("out").value, steps: Number($<HTMLInputElement>("steps").value), seed: Number($<HTMLInputElement>("seed").value),
    backend: $<HTMLSelectElement>("backend").value as DemoOptions["backend"],
    ...($<HTMLInputElement>("model").value !== "tiny" && { model: $<HTMLInputElement>("model").value }), ...options,
  };
  $("progress").innerHTML = "";
  $("result").innerHTML = "";
  $<HTMLButtonElement>("stop").disabled = false;
  try {
    const s = await call<DemoSummary>({ call: "demo", options: job });
    $("result").innerHTML = `<p><b>exact match ${s.exact}, F1 ${s.f1}</b> on ${s.total} dev questions, ${s.steps} steps on ${s.backend} in ${s.seconds} s (${escape(s.out)}).</p>`;
    return s;
  } catch (e) {
    $("result").innerHTML = `<p class="error">${escape((e as Error).message)}</p>`;
    throw e;
  } finally {
    $<HTMLButtonElement>("stop").disabled = true;
  }
}

/** ■: the worker may be deep in a step; the shared flag reaches it there, the message at its next pause. */
function stop(): void {
  if (stopFlag !== undefined) Atomics.store(new Int32Array(stopFlag), 0, 1);
  worker.postMessage({ call: "stop" });
}

async function download(dir = $<HTMLInputElement>("out").value): Promise<void> {
  const zip = await call<Uint8Array>({ call: "zip", dir });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([zip.slice().buffer as ArrayBuffer], { type: "application/zip" }));
  a.download = `${dir.split("/").pop()}.zip`;
  a.click();
  URL.revokeObjectURL(a.href);
}

$("train").onclick = () => void train().catch(() => undefined);
$("resume").onclick = () => void train({ resume: true }).catch(() => undefined);
$("stop").onclick = stop;
$("download").onclick = () => void download();

(window as unknown as Record<string, unknown>).bertqaDemo = {
  ready, train, stop, download,
  diagnose: () => call<BackendDiagnosis[]>({ call: "diagnose" }),
  list: (dir: string) => call<{ name: string; size: number }[]>({ call: "list", dir }),
  zip: (dir: string) => call<Uint8Array>({ call: "zip", dir }),
  /** Run `source` (an async function body) in the worker with the library as `lib`; resolves to what it returns. */
  run: (source: string) => call<unknown>({ call: "run", source }),
};
