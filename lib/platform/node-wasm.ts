// The wasm backend with XNNPACK's thread pool in Node. tfjs-backend-wasm 4.22 reports "no thread support" under Node
// and loads the single-threaded SIMD build; the threaded SIMD build works there once its pthread workers can start
// (node-wasm-worker.js). We register a backend factory that loads that build and creates tfjs' BackendWasm on
// it, so every wasm kernel (and ours) runs unchanged.
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";

const WASM_OUT = "@tensorflow/tfjs-backend-wasm/wasm-out/";
const MAX_THREADS = 8;
const START_TIMEOUT_MS = 30_000; // workers that cannot load leave the module's promise pending forever // tfjs' build pre-creates 8 pthread workers and caps its pool there (cc/backend.cc)

export interface WasmThreadsResult { threads: number; simd: boolean; build: string }

/** Process listeners the emscripten glue adds ('uncaughtException'/'unhandledRejection' handlers that rethrow). */
export function withoutNewProcessListeners<T>(f: () => Promise<T>): Promise<T> {
  const events = ["uncaughtException", "unhandledRejection"] as const;
  const listeners = (e: string) => process.listeners(e as "uncaughtException") as ((...a: unknown[]) => void)[];
  const before = new Map(events.map((e) => [e, new Set(listeners(e))]));
  const restore = () => {
    for (const e of events) for (const l of listeners(e)) if (!before.get(e)!.has(l)) process.removeListener(e, l);
  };
  return f().finally(restore);
}

/**
 * Replace the registered 'wasm' backend factory by one that loads the threaded SIMD build with `threads` threads.
 * Must run before the wasm backend is first initialised. Falls back to nothing: if the threaded build fails to start,
 * the returned promise rejects and the caller can re-register the library's own factory.
 */
export function registerThreadedWasm(threads: number, priority = 2): void {
  const wasmPkg = require("@tensorflow/tfjs-backend-wasm") as { BackendWasm: new (m: unknown) => tf.KernelBackend; setThreadsCount(n: number): void };
  const wanted = Math.max(1, Math.min(MAX_THREADS, Math.floor(threads)));
  wasmPkg.setThreadsCount(wanted);
  tf.removeBackend("wasm");
  tf.registerBackend("wasm", async () => {
    const dir = path.dirname(require.resolve(WASM_OUT + "tfjs-backend-wasm-threaded-simd.js"));
    const factory = require(path.join(dir, "tfjs-backend-wasm-threaded-simd.js")) as (cfg: Record<string, unknown>) => Promise<WasmModuleRaw>;
    // tfjs sizes its pool as min(requested, logical cores / 2) — it assumes two hyper-threads per core. Report the
    // logical cores twice while the module initialises so `wanted` threads (≤ logical cores) are honoured.
    const os = require("os") as { cpus: () => unknown[] }; // the module object emscripten calls, not an import namespace
    const cpus = os.cpus;
    os.cpus = () => {
      const c = cpus();
      return c.concat(c);
    };
    let mod: WasmModuleRaw;
    try {
      mod = await withoutNewProcessListeners(() =>
        withTimeout(factory({
          locateFile: (p: string) => (p.endsWith(".worker.js") ? path.join(__dirname, "node-wasm-worker.js") : path.join(dir, p)),
          mainScriptUrlOrBlob: path.join(dir, "tfjs-backend-wasm-threaded-simd.js"),
        }), START_TIMEOUT_MS, "the threaded wasm build's workers did not start"),
      );
    } finally {
      os.cpus = cpus;
    }
    // The same C entry points tfjs binds in its own init (tfjs-backend-wasm/src/backend_wasm.ts).
    mod.tfjs = {
      init: mod.cwrap("init", null, []),
      initWithThreadsCount: mod.cwrap("init_with_threads_count", null, ["number"]),
      getThreadsCount: mod.cwrap("get_threads_count", "number", []),
      registerTensor: mod.cwrap("register_tensor", null, ["number", "number", "number"]),
      disposeData: mod.cwrap("dispose_data", null, ["number"]),
      dispose: mod.cwrap("dispose", null, []),
    };
    const backend = new wasmPkg.BackendWasm(mod); // starts XNNPACK's pool threads
    unrefWorkers(mod);
    releaseIdleWorkers(mod, wanted - 1);
    return backend;
  }, priority);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Idle pthread workers must not keep Node alive after the program is done (tests, CLI commands would hang). */
function unrefWorkers(mod: WasmModuleRaw): void {
  const pool = mod.PThread;
  for (const w of [...(pool?.unusedWorkers ?? []), ...(pool?.runningWorkers ?? [])]) w.unref?.();
}

/** The build's glue starts 8 pthread workers whatever the thread count (pthreadPoolSize=8), each a worker thread with
 * its own V8 heap and copy of the module: ~17 MB of RSS apiece. XNNPACK's pool needs `keep` of them (threads − 1; it
 * runs 1 thread here, lib/backend.ts's XNNPACK_THREADS: none), those it started included; the rest never run, and the
 * glue starts another should a thread be created later. */
function releaseIdleWorkers(mod: WasmModuleRaw, keep: number): void {
  const idle = mod.PThread?.unusedWorkers;
  if (idle === undefined) return;
  for (const w of idle.splice(Math.max(0, keep - (mod.PThread?.runningWorkers?.length ?? 0)))) void w.terminate?.();
}

interface WasmModuleRaw {
  PThread?: { unusedWorkers?: { unref?: () => void; terminate?: () => unknown }[]; runningWorkers?: { unref?: () => void }[] };
  cwrap(name: string, ret: string | null, args: string[]): unknown;
  tfjs?: Record<string, unknown>;
}
