// What the two backend hosts (node-backends.ts, browser-backends.ts) say alike: how many threads wasm gets, how the
// wasm backend and a WebGPU adapter are described. Each host keeps only what differs: its probes and its fixes.
import { cpuCount, env } from "./index";
import type { GpuAdapterInfo } from "./types";
import type { GemmPool } from "../kernels/wasm-gemm";

/**
 * Threads for wasm: BERTQA_WASM_THREADS, else one per logical core (up to 8, the threaded build's cap). With two or
 * more, matrix products run on lib/kernels/wasm-gemm.ts's pool, which gives a product more threads only when it is
 * big enough to pay for them (PARALLEL_MIN_FLOPS) and lets the calling thread take every tile a descheduled worker
 * does not; one thread keeps the single-threaded build and XNNPACK's products (the numbers of releases before the
 * pool, bit for bit).
 */
export function wasmThreadCount(): number {
  const n = Number(env.BERTQA_WASM_THREADS);
  if (Number.isInteger(n) && n >= 1) return Math.min(n, 8);
  return Math.max(1, Math.min(8, cpuCount()));
}

/** "XNNPACK threaded SIMD build, 2 threads on 2 logical cores, matrix products on our FMA GEMM pool" */
export function wasmDetail(threaded: boolean, pool: GemmPool | undefined, note: string): string {
  const used = pool?.threads ?? 1;
  const gemm = pool === undefined ? "its matrix products" : `matrix products on our ${pool.fma ? "FMA" : "SIMD"} GEMM pool`;
  return `XNNPACK ${threaded ? "threaded SIMD" : "SIMD"} build, ${used} thread${used === 1 ? "" : "s"} on ${cpuCount()} logical cores, ${gemm}${note}`;
}

/** "adapter NAME (limit=value, ...)" */
export function adapterDetail(adapter: GpuAdapterInfo): string {
  const limits = Object.entries(adapter.limits).map(([k, v]) => `${k}=${v}`);
  return `adapter ${adapter.name}${limits.length > 0 ? ` (${limits.join(", ")})` : ""}`;
}
