// A dedicated Web Worker that runs the library for a page (lib/web/demo.html): the demo job (lib/demo.ts), the
// backends' diagnosis, and the run folders kept in the browser's storage (listed, zipped for download). Training runs
// here, so the page stays responsive; what the library shows (the progress display with its live loss curve, the
// same HTML a notebook shows) and what it writes to stderr are posted to the page.
//
// Page → worker: { id, call: "init", base, env, stopFlag? } | { id, call: "demo", options } | { id, call: "diagnose" }
//                | { id, call: "list", dir } | { id, call: "zip", dir } | { id, call: "run", source } | { call: "stop" }
// Worker → page: { id, result } | { id, error, stopped } | { display: { id?, html } } | { log: text }
import { zipSync } from "fflate";
import * as lib from "./entry";
import {
  diagnoseBackends, fs, initPlatform, isStopped, isUserError, notebookProgressSink, path, requestStop, runDemo, setDefaultProgressSink,
  STOP_FLAG, type DemoOptions,
} from "./entry";

type Request =
  | { id: number; call: "init"; base: string; env?: Record<string, string>; stopFlag?: SharedArrayBuffer }
  | { id: number; call: "demo"; options: DemoOptions }
  | { id: number; call: "diagnose" }
  | { id: number; call: "list"; dir: string }
  | { id: number; call: "zip"; dir: string }
  | { id: number; call: "run"; source: string }
  | { call: "stop" };

const post = (msg: object, transfer: Transferable[] = []) => (self as unknown as { postMessage(m: object, t: Transferable[]): void }).postMessage(msg, transfer);

// tslab's display API, as the library's show*() and notebook progress sink use it: each display becomes a message.
let displays = 0;
(globalThis as unknown as Record<symbol, unknown>)[Symbol.for("bertqa.tslab")] = {
  display: { html: (html: string) => post({ display: { html } }) },
  newDisplay: () => {
    const id = ++displays;
    return { html: (html: string) => post({ display: { id, html } }) };
  },
};
// stderr (warnings, the demo's notes) reaches the page too.
const consoleError = console.error.bind(console);
console.error = (...args: unknown[]) => {
  consoleError(...args);
  post({ log: args.map(String).join(" ") });
};

async function handle(req: Exclude<Request, { call: "stop" }>): Promise<unknown> {
  switch (req.call) {
    case "init":
      await initPlatform({ base: req.base, env: req.env });
      if (req.stopFlag !== undefined) (globalThis as unknown as Record<symbol, unknown>)[STOP_FLAG] = new Int32Array(req.stopFlag);
      setDefaultProgressSink(notebookProgressSink());
      return { crossOriginIsolated: globalThis.crossOriginIsolated === true };
    case "diagnose":
      return diagnoseBackends();
    case "demo":
      return runDemo(req.options);
    case "list":
      return listFiles(req.dir);
    case "run": // the page's own script, with the library as `lib` (as a notebook cell has it); its value comes back
      return new (Object.getPrototypeOf(async () => {}).constructor as new (...a: string[]) => (l: typeof lib) => Promise<unknown>)("lib", req.source)(lib);
    case "zip": {
      const zip = zipSync(Object.fromEntries(listFiles(req.dir).map((f) => [path.join(path.basename(req.dir), f.name), fs.readFileSync(path.join(req.dir, f.name))])));
      return zip;
    }
  }
}

/** Files under `dir` (relative names, sizes): what a run folder holds in storage. */
function listFiles(dir: string, prefix = ""): { name: string; size: number }[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n), rel = prefix + n;
    return fs.statSync(p).isDirectory() ? listFiles(p, rel + "/") : [{ name: rel, size: fs.statSync(p).size }];
  });
}

self.onmessage = (e: MessageEvent<Request>) => {
  const req = e.data;
  if (req.call === "stop") {
    requestStop();
    return;
  }
  handle(req).then(
    (result) => post({ id: req.id, result }, result instanceof Uint8Array ? [result.buffer] : []),
    (err: unknown) => post({ id: req.id, error: isUserError(err) ? (err as Error).message : String((err as Error)?.stack ?? err), stopped: isStopped(err) }),
  );
};
post({ ready: true });
