// The browser kernel's worker (a module Web Worker, one per kernel; Restart ends it and starts another). It loads the
// library bundle once (lib/cli/bundle.ts: bertqa.js), gives cells tslab's display API, `process.env` and the modules
// a notebook imports, and runs each cell the compiler worker checked and compiled (compiler.ts) as an async function.
// Output goes to the page as messages: console → stream, display → display_data / update_display_data, the cell's
// value or its error at the end.
// Built on its own (TypeScript only strips the types) into the site's kernel/worker.js; format.js sits beside it.
import { formatArgs, inspect } from "./format.js";
import type { FromPage, ToPage, ErrorInfo, MimeBundle } from "./protocol.js";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Module = Record<string, any>;

const scope = globalThis as any;
const post = (m: ToPage) => scope.postMessage(m); // captured now: a cell may declare a global of its own named postMessage
const TSLAB = Symbol.for("bertqa.tslab");
const STOP_FLAG = Symbol.for("bertqa.stopFlag");

let lib: Module | undefined; // the library bundle (bertqa.js), loaded by "init"
let danfo: Promise<Module> | undefined;
let danfoLoaded: Module | undefined;
let danfoUrl = "";
let processShim: { env: Record<string, string> } = { env: {} };
// ■ as the library reads it (STOP_FLAG in lib/stop.ts): element 0 set to 1. Shared with the page when it is cross-origin
// isolated (the page sets it even while a cell computes); else this worker's own, set by the page's "stop" message.
// Either way it waits until the library's next step takes it: a ■ that comes before the work starts still stops it.
let stopFlag: Int32Array<ArrayBufferLike> = new Int32Array(1);
let ownFlag = true; // the page resets a shared flag itself, before each cell

// ---- display: tslab's API (tslab.display, tslab.newDisplay()) ----

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** A tslab Display: bound to a display_id (newDisplay) its second and later outputs replace the first. */
function makeDisplay(displayId?: string) {
  let shown = false;
  const raw = (mime: string, data: string | Uint8Array) => {
    post({ type: "display", data: { [mime]: typeof data === "string" ? data : base64(data) }, displayId, update: displayId !== undefined && shown });
    shown = true;
  };
  return {
    raw,
    html: (s: string) => raw("text/html", s),
    markdown: (s: string) => raw("text/markdown", s),
    text: (s: string) => raw("text/plain", s),
    javascript: (s: string) => raw("text/javascript", s),
    latex: (s: string) => raw("text/latex", s),
    svg: (s: string) => raw("image/svg+xml", s),
    png: (b: Uint8Array) => raw("image/png", b),
    jpeg: (b: Uint8Array) => raw("image/jpeg", b),
    gif: (b: Uint8Array) => raw("image/gif", b),
    pdf: (b: Uint8Array) => raw("application/pdf", b),
  };
}

let displays = 0;
const tslab = Object.freeze({
  display: makeDisplay(),
  newDisplay: () => makeDisplay(`bertqa-${Date.now().toString(36)}-${++displays}`),
  versions: Object.freeze({ tslab: "bertqa browser kernel", typescript: "", node: "" }),
});

// ---- console → stream ----

for (const [method, name] of [["log", "stdout"], ["info", "stdout"], ["debug", "stdout"], ["warn", "stderr"], ["error", "stderr"], ["trace", "stderr"]] as const) {
  console[method] = (...args: unknown[]) => post({ type: "stream", name, text: formatArgs(args) + "\n" });
}
scope.addEventListener("unhandledrejection", (e: PromiseRejectionEvent) => {
  e.preventDefault();
  post({ type: "stream", name: "stderr", text: `Unhandled promise rejection: ${errorInfo(e.reason).message}\n` });
});

// ---- the modules cells import ----

const MODULES = ["./lib", "@tensorflow/tfjs", "danfojs-node", "tslab"];

function loadDanfo(): Promise<Module> {
  danfo ??= import(/* webpackIgnore: true */ danfoUrl).then((m: Module) => (danfoLoaded = m));
  return danfo;
}

/** A module a cell imports, by the name it uses under tslab. */
function known(spec: string): Module | Promise<Module> | undefined {
  if (spec === "./lib" || spec === "./lib/index" || spec.startsWith("./lib/")) return lib; // the bundle: all of lib/index.ts
  if (spec === "@tensorflow/tfjs") return lib?.tf;
  if (spec === "tslab") return tslab;
  if (spec === "danfojs-node" || spec === "danfojs") return danfoLoaded ?? loadDanfo();
  return undefined;
}

function notFound(spec: string): Error {
  const nodeBuiltin = /^node:|^(fs|path|os|child_process)$/.test(spec);
  const e = new Error(nodeBuiltin
    ? `import "${spec}": Node's built-in modules do not exist in the browser; the library offers what notebooks need from them`
    : `import "${spec}": the browser kernel offers ${MODULES.map((m) => `"${m}"`).join(", ")} and module URLs (https://…)`);
  e.name = "UserError";
  return e;
}

const helpers = {
  async import(spec: string): Promise<Module> {
    const m = known(spec);
    if (m !== undefined) return m;
    if (/^(https?:)?\/\//.test(spec) || spec.startsWith("/")) return import(/* webpackIgnore: true */ spec);
    throw notFound(spec);
  },
  /** Declare names for later cells: own data properties of the worker's global object, defined again on a re-run. */
  decl(names: string[]): void {
    for (const n of names) Object.defineProperty(scope, n, { value: undefined, writable: true, configurable: true, enumerable: true });
  },
  def(name: string, value: unknown): void {
    Object.defineProperty(scope, name, { value, writable: true, configurable: true, enumerable: true });
  },
};

/** tslab cells may `require` too: the modules already loaded, synchronously. */
function requireModule(spec: string): Module {
  const m = known(spec);
  if (m !== undefined && !(m instanceof Promise)) return m;
  if (m instanceof Promise) throw new Error(`require("${spec}"): not loaded yet; use import * as … from "${spec}"`);
  throw notFound(spec);
}

// ---- running cells ----

function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack ?? "", user: e.name === "UserError" };
  return { name: "Error", message: typeof e === "string" ? e : inspect(e), stack: "", user: false };
}

/** The cell's value as Jupyter shows an execute_result; undefined shows nothing, as under tslab. */
function resultBundle(value: unknown): MimeBundle | undefined {
  return value === undefined ? undefined : { "text/plain": inspect(value) };
}

async function run(id: number, js: string, url: string): Promise<void> {
  try {
    const cell = (0, eval)(`${js}\n//# sourceURL=${url}`) as (...a: unknown[]) => Promise<unknown>;
    const value = await cell(helpers, processShim, requireModule);
    post({ type: "done", id, value: resultBundle(value) });
  } catch (e) {
    post({ type: "error", id, error: errorInfo(e) });
  }
}

async function init(m: Extract<FromPage, { type: "init" }>): Promise<void> {
  processShim = { env: { ...m.env } };
  danfoUrl = m.danfoUrl;
  scope[TSLAB] = tslab;
  if (m.stopBuffer !== undefined) [stopFlag, ownFlag] = [new Int32Array(m.stopBuffer), false];
  scope[STOP_FLAG] = stopFlag;
  try {
    lib = (await import(/* webpackIgnore: true */ m.bundleUrl)) as Module;
    await lib.initPlatform({ base: m.base, env: processShim.env });
    post({ type: "ready" });
  } catch (e) {
    post({ type: "ready", error: errorInfo(e) });
  }
}

scope.addEventListener("message", (ev: MessageEvent<FromPage>) => {
  const m = ev.data;
  if (m.type === "init") void init(m);
  else if (m.type === "run") {
    if (ownFlag) Atomics.store(stopFlag, 0, 0); // a ■ from before this cell stops nothing in it
    void run(m.id, m.js, m.url);
  } else if (m.type === "stop") Atomics.store(stopFlag, 0, 1);
});
