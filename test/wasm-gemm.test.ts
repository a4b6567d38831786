// The threaded wasm backend's GEMM pool (lib/kernels/wasm-gemm.ts): every product shape the model makes, checked
// against the cpu backend at 1e-5 of the sum's magnitude (Σ|a·b|, the scale float32 rounding errors grow with),
// gradients too, and the same bits whatever the number of threads.
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../lib/backend";
import { gemmPoolFor, startGemmPool, tiles, type GemmJob } from "../lib/kernels/wasm-gemm";
import { addLayerNorm, attention, biasGelu, dropout, fusedKernelActive, gradNormScale } from "../lib/fused";
import { ADD_LAYER_NORM, ATTENTION, BIAS_GELU, DROPOUT, GRAD_NORM } from "../lib/kernels/webgpu";
import { gemmPoolFor as poolOf, setGemmPool } from "../lib/kernels/wasm-gemm";
import { assertClose as assertNearCpu, attentionCase, randn } from "./webgpu-helpers";

process.env.BERTQA_WASM_THREADS = "2"; // the pool runs with two threads or more (read when the backend starts)

const rnd = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, "float32", seed);

interface Case { name: string; a: number[]; b: number[]; tA?: boolean; tB?: boolean; bias?: boolean }

// The model's products (x·W + b, xᵀ·dy, dy·Wᵀ, attention's q·kᵀ and p·v over all heads) and the kernel's edges:
// rows not a multiple of 4, columns not a multiple of 8, K over one 256-deep block, more than one column tile.
const CASES: Case[] = [
  { name: "x·W + b, ragged tiles", a: [37, 29], b: [29, 45], bias: true },
  { name: "x·W + b, 3-D x (rows of one product)", a: [3, 50, 64], b: [64, 300], bias: true },
  { name: "xᵀ·dy (weight gradient), K = 600", a: [600, 33], b: [600, 70], tA: true },
  { name: "dy·Wᵀ (input gradient), two column tiles", a: [70, 300], b: [300, 300], tB: true },
  { name: "both transposed", a: [3, 40, 13], b: [3, 17, 40], tA: true, tB: true },
  { name: "q·kᵀ over heads", a: [2, 3, 19, 8], b: [2, 3, 19, 8], tB: true },
  { name: "p·v over heads", a: [2, 3, 19, 19], b: [2, 3, 19, 8] },
  { name: "broadcast left", a: [7, 9], b: [5, 9, 4] },
  { name: "one row, one column", a: [1, 257], b: [257, 1], bias: true },
  { name: "big enough for both threads", a: [260, 300], b: [300, 520], bias: true },
];

function product(c: Case, seed: number): tf.Tensor {
  return tf.tidy(() => {
    const n = c.tB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
    const a = rnd(c.a, seed), b = rnd(c.b, seed + 1), bias = c.bias ? rnd([n], seed + 2) : undefined;
    return tf.fused.matMul({ a: a as tf.Tensor3D, b: b as tf.Tensor3D, transposeA: c.tA, transposeB: c.tB, bias });
  });
}

/** Σ_k |a_ik·b_kj| (+|bias_j|) for each output element: the magnitude a float32 sum's rounding error scales with. */
function magnitude(c: Case, seed: number): Float32Array {
  return tf.tidy(() => {
    const n = c.tB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
    const m = tf.matMul(rnd(c.a, seed).abs() as tf.Tensor3D, rnd(c.b, seed + 1).abs() as tf.Tensor3D, c.tA, c.tB);
    return (c.bias ? m.add(rnd([n], seed + 2).abs()) : m).dataSync() as Float32Array;
  });
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, scale: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, what);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(scale[i], 1e-30));
  assert.ok(worst <= 1e-5, `${what}: error ${worst.toExponential(2)} of Σ|a·b|`);
}

test("the threaded wasm backend runs its products on the pool, with the threads asked for", async () => {
  const choice = await useBackend("wasm");
  const pool = gemmPoolFor(tf.backend());
  assert.ok(pool !== undefined, choice.detail);
  assert.equal(pool.threads, 2);
  assert.match(choice.detail, /2 threads .*GEMM pool/);
  // The glue's 8 pthread workers (~17 MB each) are let go: XNNPACK's pool runs one thread, the caller's.
  const glue = (tf.backend() as unknown as { wasm: { PThread: { unusedWorkers: unknown[]; runningWorkers: unknown[] } } }).wasm.PThread;
  assert.deepEqual([glue.unusedWorkers.length, glue.runningWorkers.length], [0, 0]);
});

test("pool products (transposes in place, all heads in one call, bias) equal the cpu backend's at 1e-5", async () => {
  await tf.setBackend("cpu");
  const want = CASES.map((c, i) => ({ data: product(c, 10 * i).dataSync(), scale: magnitude(c, 10 * i) }));
  await useBackend("wasm");
  const before = tf.memory().numTensors;
  CASES.forEach((c, i) => {
    const t = product(c, 10 * i);
    assert.deepEqual(t.shape, tf.tidy(() => tf.matMul(rnd(c.a, 0) as tf.Tensor3D, rnd(c.b, 1) as tf.Tensor3D, c.tA, c.tB).shape), c.name);
    assertClose(t.dataSync(), want[i].data, want[i].scale, c.name);
    t.dispose();
  });
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
});

test("gradients through pool products (x·Wᵀ + b, attention-shaped batches) equal the cpu backend's at 1e-5", async () => {
  const grads = () => tf.tidy(() => {
    const x = rnd([80, 24], 1), w = rnd([36, 24], 2), b = rnd([36], 3), up = rnd([80, 36], 4);
    const q = rnd([2, 3, 40, 8], 5), k = rnd([2, 3, 40, 8], 6), v = rnd([2, 3, 40, 8], 7), up2 = rnd([2, 3, 40, 8], 8);
    const dense = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => tf.fused.matMul({ a: xi as tf.Tensor2D, b: wi as tf.Tensor2D, transposeB: true, bias: bi }).mul(up).sum());
    const attention = tf.grads((qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) => tf.matMul(tf.matMul(qi, ki, false, true).softmax(), vi).mul(up2).sum());
    return [...dense([x, w, b]), ...attention([q, k, v])];
  });
  await tf.setBackend("cpu");
  const want = grads().map((t) => t.dataSync());
  await useBackend("wasm");
  const got = grads();
  got.forEach((t, i) => {
    // the gradient sums run over up to 80 terms of magnitude ≤ ~1 each: scale by the largest reference entry
    const scale = new Float32Array(t.size).fill(Math.max(...Array.from(want[i], Math.abs), 1));
    assertClose(t.dataSync(), want[i], scale, `gradient ${i}`);
  });
  tf.dispose(got);
});

// GELU and LayerNorm(x + residual) as the pool's row kernels (lib/kernels/wasm-fused.ts): a small case on the calling
// thread, and cases over PARALLEL_MIN_ELEMENTS split by rows over both threads; widths not a multiple of 4 (the
// vectors' tails), GELU inputs past ±3 (erf's tails, φ), LayerNorm rows with a large mean.
const ROW_CASES = [{ rows: 37, cols: 24 }, { rows: 300, cols: 130 }, { rows: 520, cols: 256 }];

function rowKernelOutputs(rows: number, cols: number, seed: number): tf.Tensor[] {
  return tf.tidy(() => {
    const x = rnd([rows, cols], seed).mul(4), bias = rnd([cols], seed + 1), up = rnd([rows, cols], seed + 2);
    const gelu = tf.grads((xi: tf.Tensor, bi: tf.Tensor) => biasGelu(xi, bi).mul(up).sum());
    const geluNoBias = tf.grad((xi: tf.Tensor) => biasGelu(xi).mul(up).sum());
    const ln = (a: tf.Tensor, r: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => addLayerNorm(a as tf.Tensor2D, r as tf.Tensor2D, g, b, 1e-12);
    const lnInputs = [x.add(3), rnd([rows, cols], seed + 3), rnd([cols], seed + 4).add(1), rnd([cols], seed + 5)];
    const lnGrads = tf.grads((a: tf.Tensor, r: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => ln(a, r, g, b).mul(up).sum());
    return [biasGelu(x, bias), biasGelu(x), ...gelu([x, bias]), geluNoBias(x), ln(lnInputs[0], lnInputs[1], lnInputs[2], lnInputs[3]), ...lnGrads(lnInputs)];
  });
}

test("GELU and LayerNorm(x + residual) on the pool's row kernels: values and every gradient equal the cpu backend's composite", async () => {
  await tf.setBackend("cpu");
  const want = ROW_CASES.map((c, i) => rowKernelOutputs(c.rows, c.cols, 100 + 10 * i).map((t) => t.dataSync()));
  await useBackend("wasm");
  assert.ok(fusedKernelActive(BIAS_GELU) && fusedKernelActive(ADD_LAYER_NORM), "the row kernels run on wasm with the pool");
  const names = ["gelu(x + b)", "gelu(x)", "gelu dx", "gelu db", "gelu(x) dx", "LayerNorm(x + r)", "LN dx", "LN dr", "LN dγ", "LN dβ"];
  ROW_CASES.forEach((c, i) => {
    const got = rowKernelOutputs(c.rows, c.cols, 100 + 10 * i);
    got.forEach((t, j) => {
      // db, dγ, dβ sum over the rows: scale by the largest reference entry, as for the products' gradients
      const scale = new Float32Array(t.size).fill(Float32Array.from(want[i][j]).reduce((m, v) => Math.max(m, Math.abs(v)), 1));
      assertClose(t.dataSync(), want[i][j], scale, `${c.rows}×${c.cols} ${names[j]}`);
    });
    tf.dispose(got);
  });
});

// Dropout drawn in the row kernel at each element's flat index: a small case on the calling thread, one split over both
// threads, widths not a multiple of 4, and rates 0.1, 0.5 and 1 (everything dropped).
const DROPOUT_CASES = [{ shape: [37, 13], rate: 0.1 }, { shape: [3, 4, 40, 130], rate: 0.1 }, { shape: [5, 1000, 11], rate: 0.5 }, { shape: [9, 7], rate: 1 }];

function dropoutOutputs(shape: number[], rate: number, seed: number): tf.Tensor[] {
  return tf.tidy(() => {
    const x = rnd(shape, seed), up = rnd(shape, seed + 1);
    return [dropout(x, rate, seed), tf.grad((xi: tf.Tensor) => dropout(xi, rate, seed).mul(up).sum())(x)];
  });
}

test("dropout on the pool's row kernel drops what lib/dropout.ts's host mask drops: value and gradient bit for bit", async () => {
  await tf.setBackend("cpu"); // cpu: x times the host mask
  const want = DROPOUT_CASES.map((c, i) => dropoutOutputs(c.shape, c.rate, 7 + i).map((t) => t.dataSync()));
  await useBackend("wasm");
  assert.ok(fusedKernelActive(DROPOUT), "the dropout kernel runs on wasm with the pool");
  const before = tf.memory().numTensors;
  DROPOUT_CASES.forEach((c, i) => {
    const got = dropoutOutputs(c.shape, c.rate, 7 + i);
    got.forEach((t, j) => assert.deepEqual(Buffer.from(t.dataSync().buffer), Buffer.from(want[i][j].buffer), `[${c.shape}] at ${c.rate}: ${j === 0 ? "value" : "gradient"}`));
    const kept = Array.from(want[i][0]).filter((v) => v !== 0).length / want[i][0].length;
    assert.ok(Math.abs(kept - (1 - c.rate)) < 0.05, `[${c.shape}]: ${kept} kept at rate ${c.rate}`);
    tf.dispose(got);
  });
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
});

test("gradNormScale on the pool: the float64 norm of 17 gradients without a square written, and torch's coefficient", async () => {
  await useBackend("wasm");
  assert.ok(fusedKernelActive(GRAD_NORM));
  // Scalars, an empty one, odd widths (vector tails), one over PARALLEL_MIN_ELEMENTS (split over both threads).
  const shapes = [[1], [4095], [4096], [4097], [0], [3, 5], [8193], [256, 275], [7], [64, 64], [1000], [2], [4096, 2], [13], [31, 33], [5000], []];
  const grads = shapes.map((shape, i) => tf.tensor(randn(shape.reduce((a, b) => a * b, 1), 40 + i, 0.01 * (i + 1)), shape));
  let want = 0;
  for (const g of grads) for (const x of g.dataSync()) want += x * x; // float64
  want = Math.sqrt(want);
  const before = tf.memory().numTensors;
  const prof = await tf.profile(() => {
    const { totalNorm, scale } = gradNormScale(grads, 1);
    const [norm, coef] = [totalNorm.dataSync()[0], scale.dataSync()[0]];
    tf.dispose([totalNorm, scale]);
    assert.ok(Math.abs(norm - want) <= 1e-6 * want, `norm ${norm} vs float64 ${want}`);
    const f = Math.fround, torch = f(1 / f(norm + f(1e-6))); // clamp(max_norm / (total_norm + 1e-6), max=1) in float32
    assert.ok(torch < 1);
    assert.equal(coef, torch);
    const big = gradNormScale(grads, 100);
    assert.equal(big.scale.dataSync()[0], 1, "over the norm: 1, no clipping");
    tf.dispose([big.totalNorm, big.scale]);
  });
  assert.deepEqual(prof.kernels.map((k) => k.name).filter((k) => tf.getKernel(k, "wasm") !== undefined), [GRAD_NORM, GRAD_NORM], "no Square or Sum");
  assert.equal(tf.memory().numTensors, before, "only the two scalars, which were disposed");
  tf.dispose(grads);
});

async function onBackend(name: "wasm" | "cpu", f: () => tf.Tensor[]): Promise<Float32Array[]> {
  if (name === "wasm") await useBackend("wasm");
  else await tf.setBackend("cpu");
  const ts = f(), out = ts.map((t) => t.dataSync() as Float32Array);
  tf.dispose(ts);
  return out;
}

// [B, nh, T, d, dropout rate]. T = 37: part of one 64-row query block; 65, 130: one and two rows past a block; d = 37
// and T = 77: ragged vectors everywhere; d = 8 and 128: the narrowest and widest heads; T = 512 (BERT's longest,
// what the scratch holds) with dropout; 4 × 4 heads of 128 over both threads.
const ATTENTION_CASES: [number, number, number, number, number][] = [[2, 2, 37, 16, 0], [3, 2, 65, 8, 0], [2, 1, 130, 128, 0.1], [3, 2, 77, 37, 0.1], [2, 1, 512, 64, 0.1], [4, 4, 128, 64, 0.1]];

test("attention on the pool (a head's products and softmax on one thread's scratch): context and dq, dk, dv match the cpu composite, masks and dropout included", async () => {
  await useBackend("wasm");
  assert.ok(fusedKernelActive(ATTENTION), "the attention kernels run on wasm with the pool");
  for (const [B, nh, T, d, rate] of ATTENTION_CASES) {
    const { H, keep, reversed, drop, run: f, what } = attentionCase(B, nh, T, d, rate);
    const before = (await useBackend("wasm"), tf.memory().numTensors);
    const wasm = await onBackend("wasm", f(keep));
    assert.equal(tf.memory().numTensors, before, `${what}: tensors leaked`);
    const cpu = await onBackend("cpu", f(keep));
    ["ctx", "dq", "dk", "dv"].forEach((name, i) => assertNearCpu(wasm[i], cpu[i], `${what} ${name}`, "wasm"));
    keep.forEach((kept, row) => { // masked keys get no attention, so no gradient reaches their k and v
      if (kept === 0) for (let x = row * H; x < (row + 1) * H; x++) assert.ok(wasm[2][x] === 0 && wasm[3][x] === 0, `${what}: dk, dv of masked key ${row}`);
    });
    // The comparison has teeth: each head reads its own batch row's mask, and the dropout mask is the site's.
    assert.throws(() => assertNearCpu(wasm[0], onBackendSync("cpu", f(reversed, drop, false))[0], "swapped masks"), /swapped masks/);
    if (drop !== undefined) assert.throws(() => assertNearCpu(wasm[0], onBackendSync("cpu", f(keep, { ...drop, seed: drop.seed + 1 }, false))[0], "next seed"), /next seed/);
  }
});

function onBackendSync(name: "cpu", f: () => tf.Tensor[]): Float32Array[] {
  const was = tf.getBackend();
  tf.setBackend(name);
  const ts = f(), out = ts.map((t) => t.dataSync() as Float32Array);
  tf.dispose(ts);
  tf.setBackend(was);
  return out;
}

test("attention keeps its probabilities [B·nh, T, T] only while a gradient is recorded, and frees them with the tape", async () => {
  await useBackend("wasm");
  const [q, k, v, w] = [1, 2, 3, 4].map((seed) => tf.tensor3d(randn(2 * 40 * 16, seed), [2, 40, 16]));
  const mask = tf.zeros([2, 1, 1, 40]);
  const outputs = async (f: () => void) => (await tf.profile(f)).kernels.filter((x) => x.name === ATTENTION).map((x) => x.outputShapes);
  const before = tf.memory().numTensors;
  assert.deepEqual(await outputs(() => tf.dispose(attention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, mask, 2))), [[[2, 40, 16], [4, 40, 3]]], "prediction: ctx and the row statistics");
  const withGrads = await outputs(() => tf.dispose(tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask, 2).mul(w).sum())([q, k, v])));
  assert.deepEqual(withGrads, [[[2, 40, 16], [4, 40, 3], [4, 40, 40]]], "training: the probabilities too");
  assert.equal(tf.memory().numTensors, before, "nothing left behind");
  tf.dispose([q, k, v, w, mask]);
});

test("attention has the same bits on one thread and on two (a unit is a head, or a block of its queries)", async () => {
  await useBackend("wasm");
  const backend = tf.backend() as unknown as { wasm: { wasmMemory: WebAssembly.Memory; _malloc(n: number): number; _free(p: number): void } };
  const [B, nh, T, d] = [4, 4, 130, 64], H = nh * d, n = B * T * H;
  const f = () => tf.tidy(() => {
    const [q, k, v, w] = [1, 2, 3, 4].map((seed) => tf.tensor3d(randn(n, seed), [B, T, H]));
    const mask = tf.zeros([B, 1, 1, T]);
    return [attention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, mask, nh, { rate: 0.1, seed: 5 }),
      ...tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask, nh, { rate: 0.1, seed: 5 }).mul(w).sum())([q, k, v])];
  });
  const two = poolOf(tf.backend())!;
  assert.equal(two.threads, 2);
  const want = await onBackend("wasm", f);
  setGemmPool(tf.backend(), await startGemmPool(backend.wasm.wasmMemory, (x) => backend.wasm._malloc(x), (p) => backend.wasm._free(p), 1));
  try {
    const got = await onBackend("wasm", f);
    got.forEach((g, i) => assert.deepEqual(Buffer.from(g.buffer), Buffer.from(want[i].buffer), `output ${i}`));
  } finally {
    setGemmPool(tf.backend(), await startGemmPool(backend.wasm.wasmMemory, (x) => backend.wasm._malloc(x), (p) => backend.wasm._free(p), 2));
  }
});

test("the product has the same bits on one thread and on two (each sum runs in one order whatever the split)", async () => {
  await useBackend("wasm");
  const backend = tf.backend() as unknown as { wasm: { wasmMemory: WebAssembly.Memory; _malloc(n: number): number; _free(p: number): void }; dataIdMap: { get(id: object): { memoryOffset: number } } };
  const one = await startGemmPool(backend.wasm.wasmMemory, (n) => backend.wasm._malloc(n), (p) => backend.wasm._free(p), 1);
  const two = gemmPoolFor(tf.backend())!;
  const [M, K, N] = [300, 520, 260]; // 2·M·N·K = 81 MFLOP: over PARALLEL_MIN_FLOPS, and 4 × 2 tiles
  assert.ok(tiles({ batch: 1, m: M, n: N }).total >= 4);
  // x·Wᵀ + b (B read transposed), and xᵀ·dy (A read transposed: packed), split differently on two threads
  const a = rnd([M, K], 1), b = rnd([N, K], 2), bias = rnd([N], 3), at2 = rnd([K, M], 4), b2 = rnd([K, N], 5);
  const at = (t: tf.Tensor) => backend.dataIdMap.get(t.dataId).memoryOffset;
  const jobs: [(c: tf.Tensor) => GemmJob, () => tf.Tensor, Case][] = [
    [(c) => ({ a: at(a), rsa: K, csa: 1, strideA: 0, b: at(b), rsb: 1, csb: K, strideB: 0, c: at(c), ldc: N, strideC: 0, bias: at(bias), batch: 1, m: M, n: N, k: K }),
      () => tf.matMul(a, b, false, true).add(bias), { name: "", a: [M, K], b: [N, K], tB: true, bias: true }],
    [(c) => ({ a: at(at2), rsa: 1, csa: M, strideA: 0, b: at(b2), rsb: N, csb: 1, strideB: 0, c: at(c), ldc: N, strideC: 0, bias: 0, batch: 1, m: M, n: N, k: K }),
      () => tf.matMul(at2, b2, true, false), { name: "", a: [K, M], b: [K, N], tA: true }],
  ];
  assert.notDeepEqual(tiles({ batch: 1, m: 256, n: 256 }, 2), tiles({ batch: 1, m: 256, n: 256 }, 1), "finer tiles for two threads");
  for (const [job, product, c] of jobs) {
    const c1 = tf.zeros([M, N]), c2 = tf.zeros([M, N]);
    for (let rep = 0; rep < 3; rep++) {
      one.run(job(c1));
      two.run(job(c2));
      assert.deepEqual(Buffer.from(c2.dataSync().buffer), Buffer.from(c1.dataSync().buffer), `run ${rep}`);
    }
    const want = tf.tidy(() => product().dataSync());
    await tf.setBackend("cpu");
    assertClose(c1.dataSync(), want, magnitude(c, c.tA ? 4 : 1), "vs wasm's own product");
    await useBackend("wasm");
    tf.dispose([c1, c2]);
  }
  one.dispose();
  tf.dispose([a, b, bias, at2, b2]);
});

test("bertqa bench --gemm prints each product's GFLOP/s and the threads; without torch, a one-line note and no torch numbers", () => {
  const bin = path.join(__dirname, "..", "lib", "cli", "bertqa.js");
  const r = spawnSync(process.execPath, [bin, "bench", "--gemm", "--backend", "wasm", "--config", "tiny", "--batch-size", "2", "--seq-len", "16", "--python", "/nonexistent/python"], { encoding: "utf8", env: { ...process.env, BERTQA_WASM_THREADS: "2" } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { threads: number; gemm: { name: string; batch: number; m: number; k: number; n: number; gflops: number; torch_gflops?: number }[]; torch?: string };
  assert.equal(out.threads, 2);
  const byName = Object.fromEntries(out.gemm.map((g) => [g.name, g]));
  // tiny: H 128, I 512, 2 heads of 64; 2 × 16 tokens
  assert.deepEqual([byName["x·W (FFN in)"].m, byName["x·W (FFN in)"].k, byName["x·W (FFN in)"].n], [32, 128, 512]);
  assert.deepEqual([byName["q·kᵀ (all heads)"].batch, byName["q·kᵀ (all heads)"].m, byName["q·kᵀ (all heads)"].k], [4, 16, 64]);
  for (const g of out.gemm) assert.ok(g.gflops > 0 && g.torch_gflops === undefined, g.name);
  assert.equal(out.torch, undefined);
  assert.match(r.stderr, /no PyTorch numbers .*--python/);
});
