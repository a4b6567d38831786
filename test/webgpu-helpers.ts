// What the kernel tests (WebGPU's, and the wasm pool's in test/wasm-gemm.test.ts) share: skipping without an adapter,
// seeded inputs that are the same on every backend, running one function on a backend with its results read back,
// the comparison with the cpu backend, and the attention cases.
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { diagnoseBackends, useBackend } from "../lib/backend";
import { attention } from "../lib/fused";

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

/** |got − want| ≤ 1e-5·|want| + 1e-5·rms(want) elementwise (the rms term absorbs cancellation near zero); `backend` names
 * got's in the message. */
export function assertClose(got: Float32Array, want: Float32Array, what: string, backend = "webgpu"): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const rms = Math.sqrt(want.reduce((a, w) => a + w * w, 0) / Math.max(1, want.length));
  for (let i = 0; i < want.length; i++) {
    const tol = 1e-5 * Math.abs(want[i]) + 1e-5 * rms;
    if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${what}[${i}]: ${backend} ${got[i]} vs cpu ${want[i]} (tolerance ${tol.toExponential(2)})`);
  }
}

/** An attention case [B, nh, T, d] at dropout `rate`: seeded q, k, v and an upstream gradient w; a mask where batch row
 * b pads its last 5 + 17b keys and row 2 also masks every 7th key (`keep`), and the same with the batch rows' masks
 * swapped (`reversed`); `run(keepRows, site, withGrads)` gives [ctx, dq, dk, dv] of Σ attention·w. */
export function attentionCase(B: number, nh: number, T: number, d: number, rate: number) {
  const H = nh * d, n = B * T * H;
  const qs = randn(n, T + 11, 2 / Math.sqrt(d)), ks = randn(n, T + 12), vs = randn(n, T + 13), ws = randn(n, T + 14);
  const keep = Array.from({ length: B * T }, (_, x) => {
    const b = Math.floor(x / T), j = x % T;
    return j < T - 5 - 17 * b && !(b === 2 && j % 7 === 3) ? 1 : 0;
  });
  const reversed = Array.from({ length: B * T }, (_, x) => keep[(B - 1 - Math.floor(x / T)) * T + (x % T)]);
  const drop = rate > 0 ? { rate, seed: 2 ** 32 + T } : undefined;
  const run = (keepRows: number[], site = drop, withGrads = true) => () => tf.tidy(() => {
    const [q, k, v, w] = [qs, ks, vs, ws].map((x) => tf.tensor3d(x, [B, T, H]));
    const mask = tf.sub(1, tf.tensor2d(keepRows, [B, T])).mul(-3.4028234663852886e38).reshape([B, 1, 1, T]);
    const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask, nh, site).mul(w).sum();
    return [attention(q, k, v, mask, nh, site), ...(withGrads ? tf.grads(loss)([q, k, v]) : [])];
  });
  return { H, keep, reversed, drop, run, what: `[B=${B},nh=${nh},T=${T},d=${d}] dropout ${rate}` };
}
