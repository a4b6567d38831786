// What the WebGPU kernel tests share: skipping without an adapter, seeded inputs that are the same on every backend,
// and running one function on a backend with its results read back.
import type { TestContext } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { diagnoseBackends, useBackend } from "../lib/backend";

let ready: Promise<string | undefined> | undefined;
/** undefined when the webgpu backend is up, else why not (the skip reason). */
function webgpuMissing(): Promise<string | undefined> {
  ready ??= (async () => {
    const [d] = await diagnoseBackends({}, ["webgpu"]);
    if (!d.available) return `no WebGPU adapter: ${d.detail}`;
    await useBackend("webgpu");
    return undefined;
  })();
  return ready;
}

export async function needWebgpu(t: TestContext): Promise<boolean> {
  const why = await webgpuMissing();
  if (why !== undefined) t.skip(why);
  return why === undefined;
}

/** Seeded normal samples (xorshift + Box–Muller), the same on every backend. */
export function randn(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const u = () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return ((s >>> 0) + 0.5) / 2 ** 32; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = shift + scale * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/** Run `f` on `backend` and read every result back. */
export async function on(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const ts = f();
  const out = await Promise.all(ts.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(ts);
  return out;
}


/** The active WebGPU device's maxStorageBuffersPerShaderStage: how many tensors one launch of a kernel can bind. */
export function storageBufferLimit(): number {
  return (tf.backend() as unknown as { device: { limits: Record<string, number> } }).device.limits.maxStorageBuffersPerShaderStage;
}
