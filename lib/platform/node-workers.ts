// Threads of the wasm GEMM pool under Node: worker_threads running lib/kernels/wasm-gemm-worker.cjs.
import * as path from "node:path";
import { Worker } from "node:worker_threads";

/** A started pool thread: terminate() ends it. */
export interface PoolWorker { terminate(): unknown }

/** Start one thread of the GEMM pool with `data` (the compiled module, the shared heap and control block, its packing
 * buffer); resolves once it is ready. Workers do not keep Node alive. */
export function startPoolWorker(data: object): Promise<PoolWorker> {
  const w = new Worker(path.join(__dirname, "..", "kernels", "wasm-gemm-worker.cjs"), { workerData: data });
  return new Promise((resolve, reject) => {
    w.once("message", () => {
      w.unref();
      resolve(w);
    });
    w.once("error", reject);
  });
}

/** Relaxed SIMD (the GEMM's FMA) sits behind a V8 flag in Node 20 (on by default from 22). */
export function allowRelaxedSimd(): void {
  (require("node:v8") as typeof import("node:v8")).setFlagsFromString("--experimental-wasm-relaxed-simd");
}
