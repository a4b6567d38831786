// Threads of the wasm GEMM pool in a browser: Web Workers (lib/web/gemm-worker.ts, built beside the bundle) sharing
// tfjs' heap through a SharedArrayBuffer, which needs a cross-origin isolated page.

/** A started pool thread: terminate() ends it. */
export interface PoolWorker { terminate(): unknown }

/** Start one thread of the GEMM pool with `data` (the compiled module, the shared heap and control block, its packing
 * buffer); resolves once it is ready. */
export function startPoolWorker(data: object): Promise<PoolWorker> {
  const w = new Worker(new URL("./gemm-worker.js", import.meta.url), { type: "module", name: "bertqa-gemm" });
  return new Promise((resolve, reject) => {
    w.onmessage = () => resolve(w);
    w.onerror = (e) => reject(new Error(`a GEMM worker did not start: ${e.message}`));
    w.postMessage(data);
  });
}

/** Browsers that run relaxed SIMD have it on; nothing to switch. */
export function allowRelaxedSimd(): void {}
