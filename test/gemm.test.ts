// lib/kernels/gemm.ts (the opt-in WGSL GEMM behind the webgpu BatchMatMul/_FusedMatMul) against the cpu backend:
// ragged shapes, the four transpose combinations, batch broadcasting, bias, tf.matMul's gradients and one BERT-sized
// product. Runs wherever Dawn finds a WebGPU adapter (a GPU, or the CPU through Mesa's lavapipe); skipped otherwise.
// Every case checks that our kernel really ran (gemmStats.calls), so tfjs's own matmul cannot pass for it.
import { test, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { needWebgpu as webgpuUp, on, randn } from "./webgpu-helpers";
import { gemmInstalled, gemmStats, installGemm, setGemmTile, uninstallGemm, GEMM_TILES } from "../lib/kernels/gemm";

/** True when the webgpu backend is up, with our GEMM installed whatever BERTQA_GEMM says; skips the test otherwise. */
async function needWebgpu(t: TestContext): Promise<boolean> {
  if (!(await webgpuUp(t))) return false;
  installGemm(true);
  return true;
}
after(() => uninstallGemm());

/** |got − want| ≤ tol·(|want| + rms(want)) elementwise with tol = 2e-6·√K (float32 sums of K products in another
 * order differ by ~√K roundings); the rms term absorbs cancellation near zero. */
function assertClose(got: Float32Array, want: Float32Array, K: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const rms = Math.sqrt(want.reduce((a, w) => a + w * w, 0) / Math.max(1, want.length));
  const rel = 2e-6 * Math.sqrt(Math.max(K, 1)) + 1e-6;
  for (let i = 0; i < want.length; i++) {
    const tol = rel * (Math.abs(want[i]) + rms);
    if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${what}[${i}]: webgpu ${got[i]} vs cpu ${want[i]} (tolerance ${tol.toExponential(2)})`);
  }
}

/** Values of op(A)·op(B) on webgpu (our GEMM: asserted) and cpu. */
async function compare(aShape: number[], bShape: number[], tA: boolean, tB: boolean, seed: number, opts: { bias?: boolean } = {}) {
  const a = randn(aShape.reduce((x, y) => x * y, 1), seed), b = randn(bShape.reduce((x, y) => x * y, 1), seed + 1);
  const K = tA ? aShape[aShape.length - 2] : aShape[aShape.length - 1];
  const N = tB ? bShape[bShape.length - 2] : bShape[bShape.length - 1];
  const bias = randn(N, seed + 2);
  const f = () => [opts.bias
    ? tf.fused.matMul({ a: tf.tensor(a, aShape), b: tf.tensor(b, bShape), transposeA: tA, transposeB: tB, bias: tf.tensor1d(bias) })
    : tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), tA, tB)];
  const calls = gemmStats.calls;
  const [got] = await on("webgpu", f);
  assert.equal(gemmStats.calls, calls + 1, `our GEMM ran for ${aShape}×${bShape} ${tA}/${tB}`);
  const [want] = await on("cpu", f);
  assertClose(got, want, K, `${aShape}${tA ? "ᵀ" : ""}×${bShape}${tB ? "ᵀ" : ""}${opts.bias ? "+bias" : ""}`);
}

const combos: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];
/** Stored shapes of A, B for op(A) = [batch, M, K], op(B) = [batch, K, N]. */
const stored = (bA: number[], bB: number[], M: number, K: number, N: number, tA: boolean, tB: boolean): [number[], number[]] =>
  [[...bA, ...(tA ? [K, M] : [M, K])], [...bB, ...(tB ? [N, K] : [K, N])]];

// Each (tile, transposes, vec4-or-scalar paths, bias) combination is its own shader, and lavapipe takes 2–6 s to
// compile one (cached on disk by Mesa afterwards), so the cases below reuse few: shapes with every dimension odd take
// the scalar paths, multiples of 4 (but not of a tile) the vec4 ones.
const RAGGED: [number, number, number][] = [[77, 37, 131], [1, 37, 5], [77, 1, 3], [5, 3, 1], [1, 1, 1], [129, 65, 67]];
const ALIGNED: [number, number, number][] = [[68, 36, 132], [4, 8, 4]];

test("gemm: ragged shapes (M, K or N of 1, not multiples of the tile or of 4), every transpose combination", async (t) => {
  if (!(await needWebgpu(t))) return;
  assert.ok(gemmInstalled());
  let seed = 1;
  for (const [tA, tB] of combos) {
    for (const [M, K, N] of [...RAGGED, ...ALIGNED]) {
      const [as, bs] = stored([], [], M, K, N, tA, tB);
      await compare(as, bs, tA, tB, seed++);
    }
  }
});

test("gemm: the other tiles (128×64, 64×128, 128×128: 2 loads per thread, 8-wide blocks)", async (t) => {
  if (!(await needWebgpu(t))) return;
  let seed = 50;
  try {
    for (const tile of Object.keys(GEMM_TILES).filter((n) => n !== "64x64")) {
      setGemmTile(tile);
      for (const [M, K, N] of [[77, 37, 131], [129, 65, 67], [1, 1, 1]]) await compare(...stored([], [], M, K, N, false, false), false, false, seed++);
      for (const [M, K, N] of [[68, 36, 132], [260, 20, 136]]) await compare(...stored([], [], M, K, N, true, true), true, true, seed++);
    }
  } finally {
    setGemmTile(undefined);
  }
});

test("gemm: batches (equal, and a batch of 1 broadcast on either side), rank 4", async (t) => {
  if (!(await needWebgpu(t))) return;
  let seed = 100;
  for (const [tA, tB] of combos) {
    for (const [bA, bB] of [[[3], [3]], [[1], [3]], [[3], [1]], [[2, 3], [2, 3]], [[2, 3], [1]], [[], [3]]] as [number[], number[]][]) {
      const [as, bs] = stored(bA, bB, 37, 21, 45, tA, tB);
      await compare(as, bs, tA, tB, seed++);
    }
    const [as, bs] = stored([12], [12], 68, 64, 68, tA, tB); // attention-like: per-head q·kᵀ, ragged length
    await compare(as, bs, tA, tB, seed++);
  }
});

test("gemm: _FusedMatMul with a bias (the model's dense layers), vec4 and scalar paths", async (t) => {
  if (!(await needWebgpu(t))) return;
  let seed = 200;
  for (const [tA, tB] of combos) {
    const [M, K, N] = tA === tB ? [77, 37, 131] : [52, 64, 96]; // scalar paths for NN and TT, vec4 for NT and TN
    const [as, bs] = stored([], [], M, K, N, tA, tB);
    await compare(as, bs, tA, tB, seed++, { bias: true });
  }
  // An activation other than linear goes to tfjs's kernel (and is still right).
  const fallbacks = gemmStats.fallbacks;
  const f = () => [tf.fused.matMul({ a: tf.tensor(randn(6 * 5, 1), [6, 5]), b: tf.tensor(randn(5 * 7, 2), [5, 7]), bias: tf.tensor1d(randn(7, 3)), activation: "relu" })];
  const [got] = await on("webgpu", f);
  assert.equal(gemmStats.fallbacks, fallbacks + 1, "relu fell back to tfjs's kernel");
  const [want] = await on("cpu", f);
  assertClose(got, want, 5, "relu");
});

test("gemm: gradients of tf.matMul (BatchMatMul with transposes) match the cpu's", async (t) => {
  if (!(await needWebgpu(t))) return;
  let seed = 300;
  for (const [tA, tB] of combos) {
    const [as, bs] = stored([2], [2], 45, 70, 33, tA, tB);
    const a = randn(as.reduce((x, y) => x * y, 1), seed++), b = randn(bs.reduce((x, y) => x * y, 1), seed++), w = randn(2 * 45 * 33, seed++);
    const f = () => {
      const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, tA, tB).mul(tf.tensor(w, [2, 45, 33])).sum());
      return g([tf.tensor(a, as), tf.tensor(b, bs)]);
    };
    const calls = gemmStats.calls;
    const got = await on("webgpu", f);
    assert.ok(gemmStats.calls >= calls + 3, "forward and both gradients ran on our GEMM");
    const want = await on("cpu", f);
    assertClose(got[0], want[0], 33, `dA ${tA}/${tB}`);
    assertClose(got[1], want[1], 45 * 2, `dB ${tA}/${tB}`);
  }
});

test("gemm: a BERT-sized product, [512, 768]×[768, 3072] + bias, and its transposed gradient form", async (t) => {
  if (!(await needWebgpu(t))) return;
  await compare([512, 768], [768, 3072], false, false, 400, { bias: true });
  await compare([128, 768], [128, 3072], true, false, 401); // xᵀ·dy: the weight gradient (fewer rows: the cpu is slow)
});

test("gemm: uninstallGemm puts tfjs's own kernel back", async (t) => {
  if (!(await needWebgpu(t))) return;
  uninstallGemm();
  try {
    assert.ok(!gemmInstalled());
    const calls = gemmStats.calls;
    const f = () => [tf.matMul(tf.tensor(randn(20 * 30, 1), [20, 30]), tf.tensor(randn(30 * 10, 2), [30, 10]))];
    const [got] = await on("webgpu", f);
    assert.equal(gemmStats.calls, calls, "tfjs's matmul, not ours");
    const [want] = await on("cpu", f);
    assertClose(got, want, 30, "stock");
  } finally {
    installGemm(true);
  }
  assert.ok(gemmInstalled());
});
