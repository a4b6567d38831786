// The custom WebGPU kernels (lib/kernels/webgpu.ts, used through lib/fused.ts) against the cpu backend's composite
// ops on random inputs: forward values and gradients. They run wherever Dawn finds a WebGPU adapter — a real GPU, or
// the CPU through Mesa's lavapipe (Debian: mesa-vulkan-drivers ≥ 23 and libvulkan1) — and are skipped otherwise.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { gpuMemory, gpuPoolKeeper, padMultiple, releaseGpuPool, STORAGE_BUFFERS_CAP } from "../lib/backend";
import { assertClose, attentionCase, needWebgpu, on, randn, storageBufferLimit } from "./webgpu-helpers";
import { disposeModel, forward, initModel, layerKeys, qaLoss } from "../lib/bert";
import { presetConfig } from "../lib/config";
import { loadSquad } from "../lib/squad";
import { loadTokenizer } from "../lib/tokenizer";
import { SAMPLE_FILES } from "../lib/sample";
import { trainQA } from "../lib/train";
import { dropoutMask } from "../lib/dropout";
import { addLayerNorm, adamwUpdate, adamwUpdates, attention, biasGelu, dropout, fusedKernelActive, gradNormScale, type AdamWItem, type AdamWUpdate } from "../lib/fused";
import { ADAMW, ADAMW_MULTI, ADD_LAYER_NORM, ATTENTION, BIAS_GELU, COLUMN_SUMS, COLUMN_SUMS_ROWS, DROPOUT, GRAD_NORM } from "../lib/kernels/webgpu";
import { gemmStats, installGemm, uninstallGemm } from "../lib/kernels/gemm";
import { countGpuDispatches } from "../lib/bench";

/** The same float32 bits (so −0 ≠ 0): for results that must not differ by even one rounding. */
function assertBitwise(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length), w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  const show = (x: number) => (Object.is(x, -0) ? "-0" : String(x));
  for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) assert.fail(`${what}[${i}]: webgpu ${show(got[i])} vs cpu ${show(want[i])}`);
}

test("dropout: the WGSL kernel drops exactly the host mask's elements (bitwise), forward and gradient", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(DROPOUT), "kernel registered and used on webgpu");
  // Seeds past 2³² as makeDropout gives them (base·7919 + site); shapes of 1 to 4 axes, one past a 128-thread group.
  const cases: [number[], number, number][] = [[[1000], 0.1, 7], [[37, 70], 0.5, 2 ** 32 + 5], [[2, 3, 129, 5], 0.1, 123456789 * 7919 + 3], [[64, 300], 0.9, 0]];
  for (const [shape, rate, seed] of cases) {
    const n = shape.reduce((a, b) => a * b, 1), xs = randn(n, n), ws = randn(n, n + 1);
    const f = (viaKernel: boolean) => () => {
      const x = tf.tensor(xs, shape), w = tf.tensor(ws, shape);
      const drop = viaKernel ? (a: tf.Tensor) => dropout(a, rate, seed) : (a: tf.Tensor) => a.mul(dropoutMask(shape, rate, seed)); // the host product
      return [drop(x), tf.grad((a: tf.Tensor) => drop(a).mul(w).sum())(x)];
    };
    const gpu = await on("webgpu", f(true)), cpu = await on("cpu", f(false));
    assertBitwise(gpu[0], cpu[0], `[${shape}] rate ${rate} seed ${seed} value`);
    assertBitwise(gpu[1], cpu[1], `[${shape}] rate ${rate} seed ${seed} dx`);
    const dropped = gpu[0].filter((v) => v === 0).length / n;
    assert.ok(Math.abs(dropped - rate) < 4 * Math.sqrt(rate * (1 - rate) / n) + 1e-9, `[${shape}] dropped ${dropped}, rate ${rate}`);
  }
});

test("biasGelu: the WGSL kernel's value and gradients match the composite exact GELU", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(BIAS_GELU), "kernel registered and used on webgpu");
  for (const [N, C] of [[37, 70], [64, 512]]) {
    const xs = randn(N * C, N, 2.5), bs = randn(C, C, 0.5), ws = randn(N * C, 7);
    for (const withBias of [true, false]) {
      const f = () => {
        const x = tf.tensor2d(xs, [N, C]), b = tf.tensor1d(bs), w = tf.tensor2d(ws, [N, C]);
        if (!withBias) return [biasGelu(x), tf.grad((xx: tf.Tensor) => biasGelu(xx).mul(w).sum())(x)];
        return [biasGelu(x, b), ...tf.grads((xx: tf.Tensor, bb: tf.Tensor) => biasGelu(xx, bb).mul(w).sum())([x, b])];
      };
      const gpu = await on("webgpu", f), cpu = await on("cpu", f);
      assert.equal(gpu.length, withBias ? 3 : 2);
      ["value", "dx", "dbias"].slice(0, gpu.length).forEach((name, i) => assertClose(gpu[i], cpu[i], `[${N},${C}] bias=${withBias} ${name}`));
    }
  }
});

test("addLayerNorm: LayerNorm(x + residual) kernels match the composite, value and all four gradients", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(ADD_LAYER_NORM));
  // 70 columns: fewer than a workgroup's threads; 300: several per thread; 1100: the 256-thread workgroup.
  // 130 rows: three 64-row blocks of the γ/β partial sums, the last one short; 300 rows: five, so the final column
  // sums' four lanes each take some.
  for (const [N, C] of [[37, 70], [130, 300], [9, 1100], [300, 70]]) {
    const xs = randn(N * C, 1, 1.5, 0.3), rs = randn(N * C, 2), gs = randn(C, 3, 0.2, 1), bs = randn(C, 4, 0.1), ws = randn(N * C, 5);
    const f = () => {
      const x = tf.tensor2d(xs, [N, C]), r = tf.tensor2d(rs, [N, C]), g = tf.tensor1d(gs), b = tf.tensor1d(bs), w = tf.tensor2d(ws, [N, C]);
      const y = addLayerNorm(x, r, g, b, 1e-12);
      const loss = (a: tf.Tensor, c: tf.Tensor, d: tf.Tensor, e: tf.Tensor) => addLayerNorm(a as tf.Tensor2D, c as tf.Tensor2D, d, e, 1e-12).mul(w).sum();
      return [y, ...tf.grads(loss)([x, r, g, b])];
    };
    const gpu = await on("webgpu", f), cpu = await on("cpu", f);
    ["value", "dx", "dresidual", "dgamma", "dbeta"].forEach((name, i) => assertClose(gpu[i], cpu[i], `[${N},${C}] ${name}`));
  }
});

test("tf.sum over leading axes (bias gradients) on webgpu: float64 sums, one launch up to 256 rows and two above, nothing left behind", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(COLUMN_SUMS));
  // One row; a column strip cut short (70, 1100 = 17·64 + 12); 256 rows, the most for one launch; 257: two blocks, the
  // second of one row; 1000 rows: 16 blocks over the four lanes of the second launch.
  for (const [N, C] of [[1, 5], [3, 70], [256, 33], [257, 64], [1000, 1100]]) {
    const xs = randn(N * C, N + C, 2, 0.5);
    const want = new Float32Array(C);
    for (let c = 0; c < C; c++) { let s = 0; for (let r = 0; r < N; r++) s += xs[r * C + c]; want[c] = s; }
    const before = tf.memory().numTensors, usedBefore = gpuMemory()!.usedBytes;
    const x = tf.tensor2d(xs, [N, C]);
    const [sum, launches] = await countGpuDispatches(async () => tf.sum(x, 0));
    assert.deepEqual(sum.shape, [C]);
    assert.equal(launches, N > COLUMN_SUMS_ROWS ? 2 : 1, `[${N},${C}] launches`);
    assertClose((await sum.data()) as Float32Array, want, `[${N},${C}] column sums`);
    tf.dispose([x, sum]);
    assert.equal(tf.memory().numTensors, before, `[${N},${C}] no tensor left`);
    assert.equal(gpuMemory()!.usedBytes, usedBefore, `[${N},${C}] the partial sums' buffer is freed`);
  }
  // Several leading axes, kept as 1s: [3, 100, 70] over axes 0 and 1 is 300 rows of 70.
  const xs = randn(3 * 100 * 70, 9, 2, 0.5), want = new Float32Array(70);
  for (let c = 0; c < 70; c++) { let s = 0; for (let r = 0; r < 300; r++) s += xs[r * 70 + c]; want[c] = s; }
  const x = tf.tensor3d(xs, [3, 100, 70]);
  const [sum, launches] = await countGpuDispatches(async () => tf.sum(x, [1, 0], true));
  assert.deepEqual(sum.shape, [1, 1, 70]);
  assert.equal(launches, 2, "[3,100,70] launches");
  assertClose((await sum.data()) as Float32Array, want, "[3,100,70] over axes 0, 1");
  tf.dispose([x, sum]);
});

/** Masked keys get no attention, so no gradient reaches their k and v: dk and dv [B, T, H] are 0 in their rows. */
function assertMaskedKeysIdle(dk: Float32Array, dv: Float32Array, keep: number[], H: number, what: string): void {
  keep.forEach((kept, row) => {
    if (kept === 0) for (let x = row * H; x < (row + 1) * H; x++) {
      assert.equal(dv[x], 0, `${what} dv of masked key ${row}`);
      assert.equal(dk[x], 0, `${what} dk of masked key ${row}`);
    }
  });
}

test("attention: the fused kernels' context and dq, dk, dv match the composite, padded keys masked", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(ATTENTION));
  // T = 37: part of one 64-row block, a ragged 32-key tile, d = 16 half a 32-column slab; T = 128, d = 64: two blocks,
  // four key tiles, two slabs (test "attention tiling" below covers more shapes).
  for (const [B, nh, T, d] of [[2, 2, 37, 16], [2, 2, 128, 64]]) {
    const H = nh * d, n = B * T * H;
    const qs = randn(n, T + 1, 1 / Math.sqrt(d) * 2), ks = randn(n, T + 2, 1), vs = randn(n, T + 3), ws = randn(n, T + 4);
    const keep = Array.from({ length: B * T }, (_, i) => (i % T < T - 3 - 7 * Math.floor(i / T) ? 1 : 0)); // 3, 10 padded keys
    const f = () => {
      const [q, k, v, w] = [qs, ks, vs, ws].map((x) => tf.tensor3d(x, [B, T, H]));
      const mask = tf.sub(1, tf.tensor2d(keep, [B, T])).mul(-3.4028234663852886e38).reshape([B, 1, 1, T]);
      const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask, nh).mul(w).sum();
      return [attention(q, k, v, mask, nh), ...tf.grads(loss)([q, k, v])];
    };
    const gpu = await on("webgpu", f), cpu = await on("cpu", f);
    ["ctx", "dq", "dk", "dv"].forEach((name, i) => assertClose(gpu[i], cpu[i], `[B=${B},nh=${nh},T=${T},d=${d}] ${name}`));
    assertMaskedKeysIdle(gpu[2], gpu[3], keep, H, `[B=${B},nh=${nh},T=${T},d=${d}]`);
  }
});

test("attention with dropout: the fused kernels match the composite with the host mask on the probabilities", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(ATTENTION) && fusedKernelActive(DROPOUT));
  const site = { rate: 0.1, seed: 2 ** 32 + 77 }; // a seed past 2³², as in training
  for (const [B, nh, T, d] of [[2, 2, 37, 16], [2, 2, 128, 64]]) {
    const H = nh * d, n = B * T * H;
    const qs = randn(n, T + 1, 1 / Math.sqrt(d) * 2), ks = randn(n, T + 2, 1), vs = randn(n, T + 3), ws = randn(n, T + 4);
    const keep = Array.from({ length: B * T }, (_, i) => (i % T < T - 3 - 7 * Math.floor(i / T) ? 1 : 0)); // 3, 10 padded keys
    const f = (drop: { rate: number; seed: number } | undefined, withGrads = true) => () => {
      const [q, k, v, w] = [qs, ks, vs, ws].map((x) => tf.tensor3d(x, [B, T, H]));
      const mask = tf.sub(1, tf.tensor2d(keep, [B, T])).mul(-3.4028234663852886e38).reshape([B, 1, 1, T]);
      const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask, nh, drop).mul(w).sum();
      return [attention(q, k, v, mask, nh, drop), ...(withGrads ? tf.grads(loss)([q, k, v]) : [])];
    };
    const what = `[B=${B},nh=${nh},T=${T},d=${d}] dropout ${site.rate}`;
    const gpu = await on("webgpu", f(site)), cpu = await on("cpu", f(site));
    ["ctx", "dq", "dk", "dv"].forEach((name, i) => assertClose(gpu[i], cpu[i], `${what} ${name}`));
    // The comparison has teeth: the kernels without dropout, or the composite with the next seed's mask, fail it.
    const undropped = await on("webgpu", f(undefined, false)), otherSeed = await on("cpu", f({ ...site, seed: site.seed + 1 }, false));
    assert.throws(() => assertClose(undropped[0], cpu[0], "no dropout"), /no dropout/);
    assert.throws(() => assertClose(gpu[0], otherSeed[0], "next seed"), /next seed/);
    assertMaskedKeysIdle(gpu[2], gpu[3], keep, H, what);
  }
});

test("attention tiling: ragged 64-row blocks and 32-key tiles, heads 8 to 128 wide, T = 512, a mask per batch row", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(ATTENTION));
  // [B, nh, T, d, dropout rate]. T = 65, 130: one and two rows past a 64-row block (and keys past a 32-key tile); T = 77
  // with d = 37: ragged staging chunks (27 v or k rows, 13 q rows); d = 8: a quarter of one 32-column slab;
  // d = 128: all four slabs; T = 512, d = 64: BERT's longest sequence with dropout.
  const cases: [number, number, number, number, number][] = [[3, 2, 65, 8, 0], [2, 1, 130, 128, 0.1], [3, 2, 77, 37, 0.1], [2, 1, 512, 64, 0.1]];
  for (const [B, nh, T, d, rate] of cases) {
    const { H, keep, reversed, drop, run: f, what } = attentionCase(B, nh, T, d, rate);
    const gpu = await on("webgpu", f(keep)), cpu = await on("cpu", f(keep));
    ["ctx", "dq", "dk", "dv"].forEach((name, i) => assertClose(gpu[i], cpu[i], `${what} ${name}`));
    assertMaskedKeysIdle(gpu[2], gpu[3], keep, H, what);
    // Each head reads its own batch row's mask: the composite with the batch rows' masks swapped fails the comparison.
    const swapped = await on("cpu", f(reversed, drop, false));
    assert.throws(() => assertClose(gpu[0], swapped[0], "swapped masks"), /swapped masks/);
  }
});

test("adamwUpdate: the one-launch AdamW kernel lands on the composite's p, m, v over three steps", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(ADAMW));
  const lr = 3e-4, beta1 = 0.9, beta2 = 0.999;
  for (const [shape, weightDecay, gradScale] of [[[1000], 0.01, 1], [[3, 257], 0, 1], [[3, 257], 0.01, 0.3719]] as [number[], number, number][]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const f = (clipFirst = false) => () => {
      const p = tf.variable(tf.tensor(randn(n, 1), shape)), m = tf.variable(tf.tensor(randn(n, 2, 0.01), shape));
      const v = tf.variable(tf.tensor(randn(n, 3, 1e-4).map(Math.abs), shape));
      for (let step = 1; step <= 3; step++) {
        const raw = tf.tensor(randn(n, 10 + step, 0.05), shape), g = clipFirst ? tf.mul(raw, gradScale) : raw;
        const h: AdamWUpdate = { lr, beta1, beta2, eps: 1e-8, weightDecay, stepSize: lr / (1 - beta1 ** step), bc2Sqrt: Math.sqrt(1 - beta2 ** step) };
        // A device scalar, as gradClipScale leaves it; none at all without clipping (the kernel's unscaled variant).
        const scale = clipFirst || gradScale === 1 ? undefined : tf.scalar(gradScale);
        adamwUpdate(p, m, v, g, h, scale);
        tf.dispose([raw, g, ...(scale ? [scale] : [])]);
      }
      return [p, m, v];
    };
    const gpu = await on("webgpu", f()), cpu = await on("cpu", f());
    const what = `[${shape}] wd=${weightDecay} gradScale=${gradScale}`;
    ["p", "m", "v"].forEach((name, i) => assertClose(gpu[i], cpu[i], `${what} ${name}`));
    if (gradScale === 1) continue;
    // The kernel's g·gradScale is the same f32 multiply as tf.mul: bit for bit the old clip-then-step path.
    const first = await on("webgpu", f(true));
    ["p", "m", "v"].forEach((name, i) => assert.deepEqual(gpu[i], first[i], `${what} ${name}: folded vs tf.mul first`));
  }
});

test("the WebGPU device binds as many storage buffers per shader as the adapter allows, up to 16 (the multi-tensor kernels' launches)", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  const adapter = await (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<{ limits: Record<string, number> }> } } }).navigator.gpu.requestAdapter();
  assert.equal(storageBufferLimit(), Math.min(adapter.limits.maxStorageBuffersPerShaderStage, STORAGE_BUFFERS_CAP));
  assert.ok(storageBufferLimit() >= 8);
});

test("adamwUpdates: in place, several parameters per launch, the same bits as the one-parameter kernel; a shared buffer is left alone; no stale host copy", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(ADAMW_MULTI));
  // Sizes around the 256-element workgroup; decay on some, as for weights and biases.
  const shapes = [[1], [255], [256], [257], [3, 257], [1000], [64, 64]];
  const lr = 3e-4, beta1 = 0.9, beta2 = 0.999;
  // As lib/bert.ts makes them: the tensor a variable starts from is disposed, so the variable owns its buffer alone.
  const variable = (data: Float32Array, shape: number[]) => tf.tidy(() => tf.variable(tf.tensor(data, shape)));
  const make = () => shapes.map((shape, i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { p: variable(randn(n, 60 + i), shape), m: variable(randn(n, 70 + i, 0.01), shape), v: variable(randn(n, 80 + i, 1e-4).map(Math.abs), shape),
      shape, decay: i % 2 === 0 ? 0.01 : 0 };
  });
  const steps = (many: boolean, gradScale?: number) => () => {
    const ps = make();
    for (let step = 1; step <= 3; step++) {
      const items: AdamWItem[] = ps.map(({ p, m, v, shape, decay }, i) => ({ p, m, v, g: tf.tensor(randn(p.size, 90 + 10 * step + i, 0.05), shape),
        h: { lr, beta1, beta2, eps: 1e-8, weightDecay: decay, stepSize: lr / (1 - beta1 ** step), bc2Sqrt: Math.sqrt(1 - beta2 ** step) } }));
      const scale = gradScale === undefined ? undefined : tf.scalar(gradScale);
      if (many) adamwUpdates(items, scale);
      else for (const it of items) adamwUpdate(it.p, it.m, it.v, it.g, it.h, scale);
      tf.dispose([...items.map((it) => it.g), ...(scale ? [scale] : [])]);
    }
    return ps.flatMap(({ p, m, v }) => [p, m, v]);
  };
  for (const gradScale of [undefined, 0.3719]) {
    const what = (i: number) => `[${shapes[Math.floor(i / 3)]}] ${"pmv"[i % 3]} gradScale=${gradScale}`;
    const [many, one, cpu] = [await on("webgpu", steps(true, gradScale)), await on("webgpu", steps(false, gradScale)), await on("cpu", steps(true, gradScale))];
    many.forEach((x, i) => assertBitwise(x, one[i], what(i)));
    many.forEach((x, i) => assertClose(x, cpu[i], `${what(i)} vs cpu`));
  }
  // Launches: ⌊(storage buffers − 1)/4⌋ parameters each (gradScale takes a binding); one kernel call for all of them.
  await tf.setBackend("webgpu");
  const ps = make(), source = tf.tensor(randn(10, 5), [10]), shared = tf.variable(source); // `shared` aliases `source`
  const items: AdamWItem[] = [...ps, { p: shared, m: tf.variable(tf.zeros([10])), v: tf.variable(tf.zeros([10])), decay: 0 }].map(({ p, m, v, decay }) =>
    ({ p, m, v, g: tf.onesLike(p), h: { lr, beta1, beta2, eps: 1e-8, weightDecay: decay, stepSize: lr / (1 - beta1), bc2Sqrt: Math.sqrt(1 - beta2) } }));
  // Once on the GPU, a read keeps a host copy beside the buffer, which a write in place must drop.
  adamwUpdates(items.slice(0, -1));
  const before = await Promise.all(items.map((it) => it.p.data()));
  const scale = tf.scalar(0.5);
  const per = Math.floor((storageBufferLimit() - 1) / 4);
  const prof = await tf.profile(async () => {
    const [, dispatches] = await countGpuDispatches(async () => adamwUpdates(items, scale));
    assert.equal(dispatches, Math.ceil(shapes.length / per) + 1, `${Math.ceil(shapes.length / per)} launches in place and the shared one's own`);
  });
  assert.deepEqual(prof.kernels.map((k) => k.name), [ADAMW, ADAMW_MULTI], "the one-parameter kernel for the shared buffer, and one call for the rest");
  const after = await Promise.all(items.map((it) => it.p.data()));
  // With g = 1 every element moves by about lr: the read after the step sees it, not the copy cached by the first read.
  after.forEach((x, i) => assert.ok(Math.abs(x[0] - before[i][0]) > lr / 2, `parameter ${i} read back updated (${before[i][0]} → ${x[0]})`));
  assert.deepEqual(await source.data(), randn(10, 5), "the tensor the shared variable was made from is unchanged");
  tf.dispose([source, scale, ...items.flatMap((it) => [it.p, it.m, it.v, it.g])]);
});

test("gradNormScale: the clipping norm over 17 gradients, one kernel (a launch per storage-buffer limit − 1 of them, and a finish), equals the float64 norm, and the coefficient is torch's", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  assert.ok(fusedKernelActive(GRAD_NORM));
  // Sizes around the 4096-element chunk and a launch's 7 or 15 gradients; an empty one; a 2-D one of 70k elements.
  const shapes = [[1], [4095], [4096], [4097], [0], [3, 5], [8193], [256, 275], [7], [64, 64], [1000], [2], [4096, 2], [13], [31, 33], [5000], [1]];
  const grads = shapes.map((shape, i) => tf.tensor(randn(shape.reduce((a, b) => a * b, 1), 40 + i, 0.01 * (i + 1)), shape));
  let want = 0;
  for (const g of grads) for (const x of g.dataSync()) want += x * x; // float64
  want = Math.sqrt(want);
  const before = tf.memory().numTensors;
  const prof = await tf.profile(async () => {
    const { totalNorm, scale } = gradNormScale(grads, 1);
    const [norm, coef] = [(await totalNorm.data())[0], (await scale.data())[0]];
    tf.dispose([totalNorm, scale]);
    assert.ok(Math.abs(norm - want) <= 1e-6 * want, `norm ${norm} vs float64 ${want}`);
    // torch: clamp(max_norm / (total_norm + 1e-6), max=1) in float32; WGSL allows division 2.5 ulp off.
    const f = Math.fround, torch = f(1 / f(norm + f(1e-6)));
    assert.ok(torch < 1 && Math.abs(coef - torch) <= 3 * 2 ** -24 * torch, `coefficient ${coef} vs torch's ${torch}`);
    const big = gradNormScale(grads, 100); // over the norm: 1, no clipping
    assert.equal((await big.scale.data())[0], 1);
    tf.dispose([big.totalNorm, big.scale]);
  });
  const launched = prof.kernels.filter((k) => tf.getKernel(k.name, "webgpu") !== undefined).map((k) => k.name);
  assert.deepEqual(launched, [GRAD_NORM, GRAD_NORM], "one kernel per call, no Square or Sum");
  assert.equal(tf.memory().numTensors, before, "only the two scalars, which were disposed");
  // 16 non-empty gradients: launches of limit − 1 (15 with the limit backend.ts asks for, 7 by default), and the finish
  // (what bench's gpu_dispatches_per_step counts).
  const limit = storageBufferLimit();
  const [r, dispatches] = await countGpuDispatches(async () => gradNormScale(grads, 1));
  assert.equal(dispatches, Math.ceil(16 / (limit - 1)) + 1);
  const [reshaped, none] = await countGpuDispatches(async () => grads[2].reshape([64, 64]));
  assert.equal(none, 0, "a reshape dispatches nothing");
  tf.dispose([r.totalNorm, r.scale, reshaped]);
  tf.dispose(grads);
});

test("tf.addN over more inputs than a shader can bind (the trainer's finiteness check over every parameter) is right", async (t) => {
  if (!(await needWebgpu(t))) return;
  const f = () => {
    const parts = Array.from({ length: 23 }, (_, i) => tf.tensor1d(randn(50, 100 + i)));
    return [tf.addN(parts), tf.addN(parts.slice(0, 9).map((p) => tf.sum(tf.square(p))))];
  };
  const gpu = await on("webgpu", f), cpu = await on("cpu", f);
  assertClose(gpu[0], cpu[0], "addN of 23 vectors");
  assertClose(gpu[1], cpu[1], "addN of 9 scalars");
});

test("no tensors leak from the fused ops on webgpu", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  const x = tf.tensor2d(randn(8 * 32, 1), [8, 32]), r = tf.tensor2d(randn(8 * 32, 2), [8, 32]), g = tf.ones([32]), b = tf.zeros([32]);
  const p = tf.variable(tf.ones([32])), m = tf.variable(tf.zeros([32])), v = tf.variable(tf.zeros([32]));
  const before = tf.memory().numTensors;
  const grads = tf.grads((a: tf.Tensor, c: tf.Tensor) => biasGelu(addLayerNorm(a as tf.Tensor2D, c as tf.Tensor2D, g, b, 1e-12), b).sum())([x, r]);
  const q = tf.tensor3d(randn(2 * 8 * 4, 3), [2, 8, 4]), k = tf.tensor3d(randn(2 * 8 * 4, 4), [2, 8, 4]), mask = tf.zeros([2, 1, 1, 8]);
  const before2 = tf.memory().numTensors;
  const attnGrads = tf.grads((a: tf.Tensor, c: tf.Tensor) => attention(a as tf.Tensor3D, c as tf.Tensor3D, a as tf.Tensor3D, mask, 2).sum())([q, k]);
  tf.dispose([attnGrads, attention(q, k, q, mask, 2)]);
  assert.equal(tf.memory().numTensors, before2, "attention");
  const site = { rate: 0.1, seed: 3 };
  const dropGrads = tf.grads((a: tf.Tensor, c: tf.Tensor) => dropout(attention(a as tf.Tensor3D, c as tf.Tensor3D, a as tf.Tensor3D, mask, 2, site), 0.5, 4).sum())([q, k]);
  tf.dispose([dropGrads, attention(q, k, q, mask, 2, site), dropout(q, 0.5, 4)]);
  assert.equal(tf.memory().numTensors, before2, "attention and dropout with dropout on");
  tf.dispose([q, k, mask]);
  adamwUpdate(p, m, v, g, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, stepSize: 1e-2, bc2Sqrt: 0.03 });
  await Promise.all(grads.map((d) => d.data()));
  tf.dispose(grads);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, r, g, b, p, m, v]);
});

// Both run the fused kernels inside the whole step, dropout included (hidden dropout 0.1 through the dropout kernel;
// attention dropout 0.1 inside the attention kernels, 0 without), against cpu's composite with host masks.
for (const [attentionDropout, gemm] of [[0.1, false], [0, false], [0.1, true]] as const) test(`trainQA on webgpu (fused attention and dropout kernels, async reads, attention dropout ${attentionDropout}${gemm ? ", lib/kernels/gemm.ts for every matmul" : ""}) lands on the cpu backend's parameters after 2 steps`, async (t) => {
  if (!(await needWebgpu(t))) return;
  const tok = loadTokenizer(SAMPLE_FILES.tokenizerDir);
  const train = loadSquad(SAMPLE_FILES.train).examples.slice(0, 8);
  const config = { ...presetConfig("tiny", { vocabSize: tok.idToToken.length, maxPositions: 64 }), hidden_size: 64, num_attention_heads: 2, intermediate_size: 128, num_hidden_layers: 2, pad_token_id: tok.padId, hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: attentionDropout };
  const lr = 1e-3;
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const model = initModel(config, "qa", 0); // seed 0 on purpose: it must be a real seed on both backends
    const before = tf.memory().numTensors;
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), `bertqa-${backend}-`));
    // The same padding on both (webgpu's default multiple of 64): dropout masks are indexed by position in the batch.
    const withGemm = gemm && backend === "webgpu", calls = gemmStats.calls;
    if (withGemm) installGemm(true);
    // A checkpoint after step 1 reads every parameter back to the host between the two updates.
    const r = await trainQA({ model, tokenizer: tok, train, outDir, maxLength: 64, docStride: 32, batchSize: 4, maxSteps: 2, saveSteps: 1, lr, warmupRatio: 0, logSteps: 1, quiet: true, padToMultipleOf: 64 })
      .finally(() => { if (withGemm) uninstallGemm(); });
    if (withGemm) assert.ok(gemmStats.calls > calls + 50, `our GEMM ran (${gemmStats.calls - calls} calls)`);
    assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked by training`);
    assert.ok(fs.existsSync(path.join(outDir, "model.safetensors")) && fs.existsSync(path.join(outDir, "checkpoint", "optimizer.safetensors")), `${backend}: saved`);
    const params: Record<string, Float32Array> = {};
    for (const [n, v] of Object.entries(model.params)) params[n] = Float32Array.from(await v.data());
    disposeModel(model);
    fs.rmSync(outDir, { recursive: true, force: true });
    return { history: r.history.map((h) => [h.step, h.loss, h.grad_norm]), params };
  };
  const gpu = await run("webgpu"), cpu = await run("cpu");
  assert.equal(cpu.history.length, 2);
  // Loss and gradient norm of both steps as logged (5 and 4 decimals), to one unit of the last decimal: a value within
  // float32 rounding of a rounding boundary may be logged either way.
  gpu.history.forEach((h, i) => h.forEach((x, k) => {
    const want = cpu.history[i][k];
    if (!(x !== undefined && want !== undefined && Math.abs(x - want) <= [0, 1e-5, 1e-4][k] * 1.01)) assert.fail(`history[${i}][${k}]: webgpu ${x} vs cpu ${want}`);
  }));
  // Parameters whose gradient is zero in exact arithmetic (a bias under a softmax over positions or keys, the last
  // LayerNorm's bias feeding it) get rounding noise as gradient, and Adam, dividing by its own size, turns that noise
  // into steps of ±lr whose sign no backend can agree on: those only stay within 2·lr per step.
  const noise = new Set(["qa_outputs.bias", `${layerKeys(config, config.num_hidden_layers - 1).ffnNorm}.bias`,
    ...Array.from({ length: config.num_hidden_layers }, (_, i) => `${layerKeys(config, i).key}.bias`)]);
  for (const [name, want] of Object.entries(cpu.params)) {
    const got = gpu.params[name], tol = noise.has(name) ? 2 * 2 * lr : 2e-5;
    for (let i = 0; i < want.length; i++) {
      if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${name}[${i}]: webgpu ${got[i]} vs cpu ${want[i]} (tolerance ${tol})`);
    }
  }
});

// tfjs-backend-webgpu pools every freed buffer by exact size and never frees one, so each new batch length adds a
// step's worth of buffers; gpuPoolKeeper (used by training and prediction) keeps one shape's worth.
test("webgpu's buffer pool: grows with every new batch length, and gpuPoolKeeper holds it to one shape's buffers", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  const config = { ...presetConfig("tiny", { vocabSize: 500, maxPositions: 128 }), hidden_size: 64, num_attention_heads: 2, intermediate_size: 128, num_hidden_layers: 2 };
  const model = initModel(config, "qa", 1);
  const vars = Object.values(model.params).filter((v) => v.trainable);
  const step = async (T: number) => {
    const ids = tf.randomUniform([2, T], 1, 500, "int32", 5) as tf.Tensor2D, am = tf.ones([2, T], "int32") as tf.Tensor2D;
    const pos = tf.tensor1d([1, 2], "int32");
    const { value, grads } = tf.variableGrads(() => {
      const o = forward(model, { inputIds: ids, attentionMask: am }, { training: true, seed: 1 });
      return qaLoss(o.startLogits!, o.endLogits!, pos, pos);
    }, vars);
    await value.data();
    tf.dispose([value, ...Object.values(grads), ids, am, pos]);
  };
  const allocated = () => gpuMemory()!.allocatedBytes;
  releaseGpuPool();
  await step(128);
  const oneShape = allocated();
  const lengths = [64, 80, 96, 112, 128];
  assert.ok(releaseGpuPool() > 0 && allocated() < oneShape, "releaseGpuPool gives the free buffers back");
  for (const T of lengths) await step(T);
  const unkept = allocated();
  releaseGpuPool();
  const keep = gpuPoolKeeper();
  for (const T of lengths) {
    keep([2, T]);
    await step(T);
  }
  const kept = allocated();
  disposeModel(model);
  releaseGpuPool();
  assert.ok(unkept > 2 * oneShape, `without the keeper the pool grows: ${unkept} bytes after ${lengths.length} lengths, ${oneShape} for one`);
  assert.ok(kept <= oneShape * 1.05, `with the keeper it holds one shape's buffers: ${kept} bytes, ${oneShape} for one`);
  assert.equal(padMultiple("webgpu"), 64);
  assert.equal(padMultiple("wasm"), 1);
});

test("under tf.profile the library's own multi-output kernels report GPU time (timestamp queries), as the backend's programs do", async (t) => {
  if (!(await needWebgpu(t))) return;
  await tf.setBackend("webgpu");
  if (!(tf.backend() as unknown as { supportTimestampQuery: boolean }).supportTimestampQuery) return t.skip("the adapter has no timestamp-query");
  const q = tf.tensor3d(randn(2 * 64 * 16, 5), [2, 64, 16]), k = tf.tensor3d(randn(2 * 64 * 16, 6), [2, 64, 16]), mask = tf.zeros([2, 1, 1, 64]);
  const p = tf.variable(tf.ones([4096])), m = tf.variable(tf.zeros([4096])), v = tf.variable(tf.zeros([4096])), g = tf.ones([4096]);
  const prof = await tf.profile(() => {
    adamwUpdate(p, m, v, g, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, stepSize: 1e-2, bc2Sqrt: 0.03 });
    return [attention(q, k, q, mask, 2), tf.mul(q, 2)];
  });
  for (const name of [ADAMW, ATTENTION, "Multiply"]) { // Multiply: a stock program, the reference for how times come
    const k = prof.kernels.find((k) => k.name === name);
    assert.ok(k !== undefined && typeof k.kernelTimeMs === "number" && k.kernelTimeMs > 0, `${name}: ${JSON.stringify(k?.kernelTimeMs)}`);
  }
  tf.dispose([q, k, mask, p, m, v, g, prof.result]);
});
