// Backend choice and diagnoses (with fake machines), and the wasm kernels we add for training, checked against the
// cpu backend's results on the same inputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { adamwUpdate, adamwUpdates, fusedKernelActive } from "../lib/fused";
import { ADAMW_MULTI } from "../lib/kernels/webgpu";
import { checkTrainingFits, chooseBackend, diagnoseBackends, refuseOversizedBuffers, useBackend, type BackendDiagnosis, type BackendProbes } from "../lib/backend";
import { cudaReport } from "../lib/platform/node-backends";
import { isUserError } from "../lib/errors";
import { simplifyPermutation } from "../lib/kernels/wasm-extra";
import { gemmPoolFor, setGemmPool, startGemmPool } from "../lib/kernels/wasm-gemm";

/** The threaded wasm backend's module, as the pool starts on it. */
interface WasmBackendRaw { wasm: { wasmMemory: WebAssembly.Memory; _malloc(n: number): number; _free(p: number): void } }
import { initModel, forward, qaLoss } from "../lib/bert";
import { presetConfig } from "../lib/config";
import { outOfMemory } from "../lib/train";

const NATIVE_ERROR = "The Node.js native addon module (tfjs_binding.node) can not be found at path: /x/napi-v8/tfjs_binding.node. \nPlease run command 'npm rebuild'";

/** A machine described by what its probes find. */
function fakeProbes(o: { tfLoads?: boolean; gpu?: boolean; libs?: string[]; vulkan?: boolean; adapter?: string; software?: boolean }): Partial<BackendProbes> {
  const libs = new Set([...(o.libs ?? []), ...(o.vulkan ? ["libvulkan.so.1"] : [])]);
  return {
    loadTensorflow: () => { if (!o.tfLoads) throw new Error(NATIVE_ERROR); },
    tensorflowRegistered: () => o.tfLoads === true,
    tensorflowUsesGpu: async () => o.gpu === true,
    findLibrary: (name) => (libs.has(name) ? `/usr/lib/${name}` : undefined),
    findLibraries: (prefix) => [...libs].filter((l) => l.startsWith(prefix)).map((l) => `/usr/lib/${l}`),
    webgpuAdapter: async () => (o.adapter !== undefined ? { name: o.adapter, limits: { maxBufferSize: 2 ** 30 }, software: o.software } : undefined),
    wasm: async () => "fake wasm",
  };
}

test("auto prefers a working GPU, then libtensorflow, then wasm, then cpu", async () => {
  const pick = async (o: Parameters<typeof fakeProbes>[0]) => chooseBackend(await diagnoseBackends(fakeProbes(o))).name;
  assert.equal(await pick({ tfLoads: true, gpu: true, libs: ["libcudart.so.11.0", "libcudnn.so.8"] }), "tensorflow");
  assert.equal(await pick({ tfLoads: true, gpu: false, vulkan: true, adapter: "NVIDIA H100" }), "webgpu");
  assert.equal(await pick({ tfLoads: true, gpu: false }), "tensorflow");
  assert.equal(await pick({ tfLoads: false, vulkan: true }), "wasm"); // Dawn without an adapter is not a GPU
  assert.equal(await pick({ tfLoads: false, vulkan: true, adapter: "mesa software llvmpipe", software: true }), "wasm"); // lavapipe: not a GPU
  const noWasm: BackendDiagnosis[] = [{ name: "wasm", available: false, gpu: false, detail: "x" }, { name: "cpu", available: true, gpu: false, detail: "js" }];
  assert.equal(chooseBackend(noWasm).name, "cpu");
});

test("doctor diagnoses a missing libtensorflow and names the missing CUDA libraries and other CUDA versions", async () => {
  const [tfd] = await diagnoseBackends(fakeProbes({ tfLoads: false, libs: ["libcudart.so.13"] }), ["tensorflow"]);
  assert.equal(tfd.available, false);
  assert.match(tfd.detail, /native addon module/);
  assert.match(tfd.detail, /missing libcudart\.so\.11\.0, libcudnn\.so\.8/);
  assert.match(tfd.detail, /other CUDA versions present: libcudart\.so\.13/);
  assert.match(tfd.fix!, /npm rebuild @tensorflow\/tfjs-node-gpu/);
  assert.ok(!tfd.detail.includes("\n") && !tfd.fix!.includes("\n"), "one line each");
  // libtensorflow present but CUDA libraries missing: works, on the CPU, and says what the GPU needs.
  const [cpuTf] = await diagnoseBackends(fakeProbes({ tfLoads: true, gpu: false, libs: ["libcudart.so.11.0"] }), ["tensorflow"]);
  assert.equal(cpuTf.available, true);
  assert.equal(cpuTf.gpu, false);
  assert.match(cpuTf.detail, /found libcudart\.so\.11\.0; missing libcudnn\.so\.8/);
  assert.match(cpuTf.fix!, /libcudnn\.so\.8/);
  assert.deepEqual(cudaReport(fakeProbes({ libs: ["libcudart.so.11.0", "libcudnn.so.8"] }) as BackendProbes).missing, []);
});

test("doctor diagnoses WebGPU: no Vulkan loader, no adapter, or an adapter with its name", async () => {
  const [noVulkan] = await diagnoseBackends(fakeProbes({ vulkan: false }), ["webgpu"]);
  assert.equal(noVulkan.available, false);
  assert.match(noVulkan.detail, /libvulkan\.so\.1 not found/);
  const [noAdapter] = await diagnoseBackends(fakeProbes({ vulkan: true }), ["webgpu"]);
  assert.match(noAdapter.detail, /no GPU adapter/);
  assert.match(noAdapter.fix!, /--backend wasm/);
  const [gpu] = await diagnoseBackends(fakeProbes({ vulkan: true, adapter: "nvidia hopper H100" }), ["webgpu"]);
  assert.equal(gpu.available, true);
  assert.match(gpu.detail, /nvidia hopper H100 \(maxBufferSize=1073741824\)/);
  const [soft] = await diagnoseBackends(fakeProbes({ vulkan: true, adapter: "mesa software llvmpipe", software: true }), ["webgpu"]);
  assert.deepEqual([soft.available, soft.gpu], [true, false]); // usable with --backend webgpu, never picked by auto
  assert.match(soft.detail, /^software \(CPU-emulated\) adapter mesa software llvmpipe/);
});

test("asking for an unavailable or unknown backend is a one-line user error with the fix", async () => {
  await assert.rejects(useBackend("tensorflow", { probes: fakeProbes({ tfLoads: false }) }), (e: unknown) => isUserError(e) && /backend tensorflow: not available: .*npm rebuild/.test((e as Error).message));
  await assert.rejects(useBackend("gpu" as never), (e: unknown) => isUserError(e) && /unknown backend 'gpu'/.test((e as Error).message));
});

test("the real doctor on this machine finds wasm and cpu working", async () => {
  const d = await diagnoseBackends();
  const byName = Object.fromEntries(d.map((x) => [x.name, x]));
  assert.equal(byName.cpu.available, true);
  assert.equal(byName.wasm.available, true, byName.wasm.detail);
  assert.match(byName.wasm.detail, /XNNPACK/);
  for (const x of d) if (!x.available) assert.ok(x.fix !== undefined && x.fix.length > 0, `${x.name} has a fix`);
});

test("training a model too big for wasm's 4 GB heap is refused up front with the fix; GPUs and small models pass", () => {
  assert.throws(() => checkTrainingFits(110e6, "wasm"), (e: unknown) => isUserError(e) && /110M-parameter model: needs about 2\.7 GB .*wasm.*--backend webgpu or tensorflow/.test((e as Error).message));
  assert.doesNotThrow(() => checkTrainingFits(41e6, "wasm")); // medium
  assert.doesNotThrow(() => checkTrainingFits(110e6, "webgpu"));
  assert.doesNotThrow(() => checkTrainingFits(110e6, "tensorflow"));
});

test("transpose axes are simplified only where neighbours stay neighbours", () => {
  assert.deepEqual(simplifyPermutation([2, 3, 3, 2, 4], [2, 0, 3, 1, 4]), { shape: [2, 3, 3, 2, 4], perm: [2, 0, 3, 1, 4] });
  assert.deepEqual(simplifyPermutation([2, 3, 4], [0, 2, 1]), { shape: [2, 3, 4], perm: [0, 2, 1] });
  assert.deepEqual(simplifyPermutation([2, 3, 4, 5], [2, 3, 0, 1]), { shape: [6, 20], perm: [1, 0] });
  assert.deepEqual(simplifyPermutation([1, 3, 1, 5], [2, 3, 0, 1]), { shape: [3, 5], perm: [1, 0] });
});

/** Run `f` on cpu and on wasm with the same inputs; compare every output element. */
async function sameOnWasm(name: string, f: () => tf.Tensor | tf.Tensor[], tol = 1e-4): Promise<void> {
  await tf.setBackend("cpu");
  const want = [f()].flat().map((t) => ({ shape: t.shape, data: Array.from(t.dataSync()) }));
  await useBackend("wasm");
  const before = tf.memory().numTensors;
  const outs = [f()].flat();
  const got = outs.map((t) => ({ shape: t.shape, data: Array.from(t.dataSync()) }));
  tf.dispose(outs);
  assert.equal(tf.memory().numTensors, before, `${name}: tensors leaked`);
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    assert.deepEqual(g.shape, want[i].shape, `${name}: shape`);
    let worst = 0;
    g.data.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - want[i].data[j]))));
    assert.ok(worst <= tol, `${name}: max diff ${worst}`);
  });
}

const rnd = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, "float32", seed);

test("wasm matMul kernels (transposes, batches, broadcast, fused bias + relu) equal the cpu backend's", async () => {
  await sameOnWasm("nt", () => tf.tidy(() => tf.matMul(rnd([37, 19], 1), rnd([23, 19], 2), false, true)));
  await sameOnWasm("tn", () => tf.tidy(() => tf.matMul(rnd([19, 37], 3), rnd([19, 23], 4), true, false)));
  await sameOnWasm("tt", () => tf.tidy(() => tf.matMul(rnd([19, 37], 5), rnd([23, 19], 6), true, true)));
  await sameOnWasm("batched nt", () => tf.tidy(() => tf.matMul(rnd([2, 3, 17, 8], 7), rnd([2, 3, 13, 8], 8), false, true)));
  await sameOnWasm("batched tn", () => tf.tidy(() => tf.matMul(rnd([6, 8, 17], 9), rnd([6, 8, 13], 10), true, false)));
  await sameOnWasm("broadcast right", () => tf.tidy(() => tf.matMul(rnd([5, 7, 9], 11), rnd([9, 4], 12))));
  await sameOnWasm("broadcast left", () => tf.tidy(() => tf.matMul(rnd([7, 9], 13), rnd([5, 9, 4], 14))));
  await sameOnWasm("fused", () => tf.tidy(() => tf.fused.matMul({ a: rnd([33, 16], 15), b: rnd([24, 16], 16), transposeB: true, bias: rnd([24], 17), activation: "relu" })));
});

test("wasm tiled rank-2 Transpose and leading-axes Sum (bias gradients) equal the cpu backend's", async () => {
  await sameOnWasm("transpose 2d, ragged tiles", () => tf.tidy(() => tf.transpose(rnd([97, 70], 40))));
  await sameOnWasm("transpose [1, r, c] as 2d", () => tf.tidy(() => tf.transpose(rnd([1, 75, 130], 41), [0, 2, 1])));
  await sameOnWasm("transpose merged axes", () => tf.tidy(() => tf.transpose(rnd([9, 11, 70], 42), [2, 0, 1])));
  await sameOnWasm("sum axis 0", () => tf.tidy(() => tf.sum(rnd([300, 37], 43), 0)));
  await sameOnWasm("sum axes 0,1 keepDims", () => tf.tidy(() => tf.sum(rnd([6, 50, 13], 44), [1, 0], true)));
  await sameOnWasm("sum inner axis (library kernel)", () => tf.tidy(() => tf.sum(rnd([6, 50, 13], 45), -1)));
  await sameOnWasm("sum all", () => tf.tidy(() => tf.sum(rnd([6, 50, 13], 46))));
  await sameOnWasm("bias gradient", () => tf.tidy(() => tf.grad((b: tf.Tensor) => tf.add(rnd([4, 33, 24], 47), b).square().sum())(rnd([24], 48))));
});

test("wasm leading-axes Sum over 2048 × 300 (blocks of rows on the pool's threads) is the float64 column sums within float32 rounding", async () => {
  await useBackend("wasm");
  const x = rnd([2048, 300], 49), xs = x.dataSync(), got = tf.sum(x, 0), g = got.dataSync();
  for (let c = 0; c < 300; c++) {
    let sum = 0, mag = 0;
    for (let r = 0; r < 2048; r++) { sum += xs[r * 300 + c]; mag += Math.abs(xs[r * 300 + c]); }
    assert.ok(Math.abs(g[c] - sum) <= 4e-6 * mag, `column ${c}: ${g[c]} vs ${sum}`);
  }
  tf.dispose([x, got]);
});

/** Three AdamW updates of a `shape` parameter from `adamwUpdate`; `clip` (gradScale, a scalar tensor) on every step,
 * or, with `clipFirst`, applied beforehand as tf.mul (the old two-step path) and no gradScale given. */
function threeAdamWSteps(clip = 1, clipFirst = false, shape = [37, 11]): tf.Tensor[] {
  const init = [rnd(shape, 50), tf.zeros(shape), tf.zeros(shape)];
  const [p, m, v] = init.map((x) => tf.variable(x));
  tf.dispose(init);
  for (let t = 1; t <= 3; t++) {
    const raw = rnd(shape, 50 + t), g = clipFirst ? tf.mul(raw, clip) : raw;
    const h = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, stepSize: 1e-2 / (1 - 0.9 ** t), bc2Sqrt: Math.sqrt(1 - 0.999 ** t) };
    const scale = clipFirst ? undefined : tf.scalar(clip);
    adamwUpdate(p, m, v, g, h, scale);
    tf.dispose([raw, g, ...(scale ? [scale] : [])]);
  }
  const out = [p, m, v].map((x) => x.clone());
  tf.dispose([p, m, v]);
  return out;
}

test("wasm AdamW kernel (SIMD on the pool, over both threads; JS without it) equals the cpu backend's composite bit for bit", async () => {
  // The kernel does the composite's float32 operations in its order: the same bits, with and without gradScale.
  await sameOnWasm("adamw", () => threeAdamWSteps(1, true), 0); // no gradScale input
  await sameOnWasm("adamw gradScale 1", () => threeAdamWSteps(), 0);
  await sameOnWasm("adamw gradScale", () => threeAdamWSteps(0.3719), 0);
  await sameOnWasm("adamw split over the pool's threads", () => threeAdamWSteps(0.3719, false, [300, 257]), 0); // > PARALLEL_MIN_ELEMENTS
  // Without the pool (the single-threaded build) the JS loop runs: the same bits.
  const backend = tf.backend() as unknown as WasmBackendRaw, pool = gemmPoolFor(backend);
  assert.ok(pool !== undefined, "two threads: the pool runs");
  setGemmPool(backend, undefined);
  try {
    await sameOnWasm("adamw in JS", () => threeAdamWSteps(0.3719, false, [300, 257]), 0);
  } finally {
    setGemmPool(backend, await startGemmPool(backend.wasm.wasmMemory, (n) => backend.wasm._malloc(n), (q) => backend.wasm._free(q), pool.threads));
  }
  // On wasm itself, gradScale folded into the kernel is bit for bit the old path: tf.mul(g, scale), then the kernel.
  await useBackend("wasm");
  const [folded, first] = [threeAdamWSteps(0.3719), threeAdamWSteps(0.3719, true)];
  folded.forEach((t, i) => assert.deepEqual([...t.dataSync()], [...first[i].dataSync()], `wasm gradScale: output ${i}`));
  tf.dispose([...folded, ...first]);
});

/** Three steps of adamwUpdates over parameters of `shapes` (weight decay on the even ones, gradScale 0.3719); `share`
 * clones parameter 0 first (its buffer is then shared, so it must not be written in place); `viaProduct`: each 2-D
 * gradient is a product with its parameter, a·p, so the step's products read the weights updated by the one before.
 * Returns p, m, v of each and whether each p kept its buffer. */
function threeMultiSteps(shapes: number[][], share = false, viaProduct = false): { values: tf.Tensor[]; kept: boolean[] } {
  const vars = shapes.map((shape, i) => [rnd(shape, 60 + i), tf.zeros(shape), tf.zeros(shape)].map((x) => { const v = tf.variable(x); x.dispose(); return v; }));
  const ids = vars.map(([p]) => p.dataId), clone = share ? vars[0][0].clone() : undefined;
  for (let t = 1; t <= 3; t++) {
    const grads = shapes.map((shape, i) => (viaProduct && shape.length === 2 ? tf.tidy(() => tf.matMul(rnd([shape[0], shape[0]], 80 + i), vars[i][0])) : rnd(shape, 70 + 10 * t + i)));
    const scale = tf.scalar(0.3719);
    adamwUpdates(vars.map(([p, m, v], i) => ({ p, m, v, g: grads[i], h: { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: i % 2 === 0 ? 0.01 : 0, stepSize: 1e-2 / (1 - 0.9 ** t), bc2Sqrt: Math.sqrt(1 - 0.999 ** t) } })), scale);
    tf.dispose([...grads, scale]);
  }
  const kept = vars.map(([p], i) => p.dataId === ids[i]);
  const values = vars.flat().map((x) => x.clone());
  tf.dispose([...vars.flat(), ...(clone ? [clone] : [])]);
  return { values, kept };
}

test("wasm AdamW over all parameters at once (BertqaAdamWMulti) updates them in place, bit for bit the cpu backend's composite; a shared buffer is not written", async () => {
  const shapes = [[300, 257], [37, 11], [5], [64, 64]]; // one over PARALLEL_MIN_ELEMENTS (both threads), odd widths
  await tf.setBackend("cpu");
  const want = threeMultiSteps(shapes).values.map((t) => t.dataSync());
  await useBackend("wasm");
  assert.ok(fusedKernelActive(ADAMW_MULTI));
  const got = threeMultiSteps(shapes), shared = threeMultiSteps(shapes, true);
  assert.deepEqual(got.kept, [true, true, true, true], "in place");
  assert.deepEqual(shared.kept, [false, true, true, true], "a cloned parameter gets new buffers, its clone keeps the old values");
  for (const r of [got, shared]) r.values.forEach((t, i) => assert.deepEqual(Buffer.from(t.dataSync().buffer), Buffer.from(want[i].buffer), `output ${i}`));
  tf.dispose([...got.values, ...shared.values]);
});

test("without the GEMM pool, XNNPACK multiplies by the weights and keeps them packed by tensor: AdamW makes new tensors, and the next products see the update", async () => {
  const shapes = [[40, 24], [5], [64, 16]];
  await tf.setBackend("cpu");
  const want = threeMultiSteps(shapes, false, true).values.map((t) => t.dataSync());
  await useBackend("wasm");
  const backend = tf.backend() as unknown as WasmBackendRaw, pool = gemmPoolFor(backend)!;
  setGemmPool(backend, undefined);
  try {
    assert.ok(!fusedKernelActive(ADAMW_MULTI), "no in-place AdamW without the pool");
    const got = threeMultiSteps(shapes, false, true);
    assert.deepEqual(got.kept, [false, false, false]);
    got.values.forEach((t, i) => {
      const g = t.dataSync(), scale = Math.max(...Array.from(want[i], Math.abs), 1e-3);
      g.forEach((x, j) => assert.ok(Math.abs(x - want[i][j]) <= 1e-5 * scale, `output ${i}[${j}]: ${x} vs cpu ${want[i][j]}`));
    });
    tf.dispose(got.values);
  } finally {
    setGemmPool(backend, await startGemmPool(backend.wasm.wasmMemory, (n) => backend.wasm._malloc(n), (q) => backend.wasm._free(q), pool.threads));
  }
});

test("wasm Transpose (rank 5), Slice/SplitV, GatherV2 of rows and UnsortedSegmentSum (gather's gradient) equal the cpu backend's", async () => {
  await sameOnWasm("transpose5", () => tf.tidy(() => tf.transpose(rnd([2, 5, 3, 2, 4], 20), [2, 0, 3, 1, 4])));
  await sameOnWasm("transpose6", () => tf.tidy(() => tf.transpose(rnd([2, 3, 2, 3, 2, 2], 21), [5, 3, 1, 0, 2, 4])));
  await sameOnWasm("slice", () => tf.tidy(() => tf.slice(rnd([4, 6, 5], 22), [1, 2, 0], [2, 3, 5])));
  await sameOnWasm("slice inner", () => tf.tidy(() => tf.slice(rnd([4, 6, 5], 23), [0, 1, 2], [4, 4, 2])));
  await sameOnWasm("split", () => tf.tidy(() => tf.split(rnd([3, 4, 6], 24), [1, 2], 0)));
  await sameOnWasm("split mid axis", () => tf.tidy(() => tf.split(rnd([3, 4, 6], 25), 2, 1)));
  await sameOnWasm("segment sum", () => tf.tidy(() => tf.unsortedSegmentSum(rnd([6, 3], 26), tf.tensor1d([2, 0, 2, -1, 4, 0], "int32"), 5)));
  await sameOnWasm("gather rows", () => tf.tidy(() => tf.gather(rnd([6, 5, 3], 29), tf.tensor2d([[1, 3], [5, 0], [1, 1]], [3, 2], "int32"))));
  await sameOnWasm("gather int32 rows", () => tf.tidy(() => tf.gather(tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], "int32"), tf.tensor1d([2, 0], "int32"))));
  await sameOnWasm("gather axis 1 (library kernel)", () => tf.tidy(() => tf.gather(rnd([4, 6], 30), tf.tensor1d([5, 2], "int32"), 1)));
  const before = tf.memory().numTensors;
  assert.throws(() => tf.tidy(() => tf.gather(rnd([4, 2], 31), tf.tensor1d([1, 4], "int32"))), /index value 4 is not in \[0, 3\]/);
  assert.equal(tf.memory().numTensors, before, "an out-of-range gather leaks nothing");
  // The gradient of a gather (an embedding lookup) is an UnsortedSegmentSum, which wasm 4.22 lacks.
  await sameOnWasm("gather grad", () => tf.tidy(() => tf.grad((t: tf.Tensor) => tf.gather(t, tf.tensor1d([1, 3, 1, 0], "int32")).mul(rnd([4, 5], 27)).sum())(rnd([6, 5], 28))));
});

test("wasm Identity (tf.clone, every tensor saved for a gradient) shares the input's buffer; each outlives the other", async () => {
  await useBackend("wasm");
  const x = rnd([300, 40], 60), want = Array.from(x.dataSync());
  const [tensors, buffers] = [tf.memory().numTensors, tf.memory().numDataBuffers];
  const y = x.clone();
  assert.equal(y.dataId, x.dataId, "the clone is the same buffer");
  assert.deepEqual([tf.memory().numTensors, tf.memory().numDataBuffers], [tensors + 1, buffers], "no second buffer"); // (numBytes counts per tensor)
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), want, "the clone outlives the original");
  const z = y.clone();
  y.dispose();
  assert.deepEqual(Array.from(z.dataSync()), want);
  z.dispose();
  assert.equal(tf.memory().numTensors, tensors - 1);
  await sameOnWasm("gradient through saved tensors", () => tf.tidy(() => tf.grad((t: tf.Tensor) => t.mul(t).mul(t.exp()).sum())(rnd([50, 7], 61))));
});

test("a BERT training step on wasm gives the cpu backend's loss and gradients, and leaks no tensors", async () => {
  const c = { ...presetConfig("tiny", { vocabSize: 50, maxPositions: 16 }), hidden_size: 16, num_attention_heads: 2, intermediate_size: 32, num_hidden_layers: 1 };
  const ids = [[2, 5, 9, 3, 7, 11, 3, 0], [2, 8, 4, 3, 6, 1, 13, 3]];
  const gradsOf = () => {
    const model = initModel(c, "qa", 3);
    const batch = { inputIds: tf.tensor2d(ids, undefined, "int32"), attentionMask: tf.tensor2d(ids.map((r) => r.map((x) => (x === 0 ? 0 : 1))), undefined, "int32") };
    const { value, grads } = tf.variableGrads(() => {
      const o = forward(model, batch, { training: false });
      return qaLoss(o.startLogits!, o.endLogits!, tf.tensor1d([4, 5], "int32"), tf.tensor1d([5, 6], "int32"));
    }, Object.values(model.params));
    const out = [value, ...Object.values(grads)];
    tf.dispose([...Object.values(model.params), batch.inputIds, batch.attentionMask]);
    return out;
  };
  await sameOnWasm("bert step", () => tf.tidy(gradsOf), 2e-4);
});

test("refuseOversizedBuffers: a GPU buffer above the device's limits is an out-of-memory error at allocation, not an invalid buffer", () => {
  const made: number[] = [];
  const device = { limits: { maxBufferSize: 1000, maxStorageBufferBindingSize: 100 }, createBuffer: (d: { size: number; usage: number }) => { made.push(d.size); return d; } };
  refuseOversizedBuffers(device);
  const STORAGE = 0x80, MAP_READ = 0x1;
  assert.deepEqual(device.createBuffer({ size: 100, usage: STORAGE }), { size: 100, usage: STORAGE });
  assert.deepEqual(device.createBuffer({ size: 1000, usage: MAP_READ }), { size: 1000, usage: MAP_READ }); // a staging buffer is not bound
  assert.throws(() => device.createBuffer({ size: 101, usage: STORAGE }), (e: unknown) => outOfMemory(e) !== undefined && /above the device's/.test((e as Error).message));
  assert.throws(() => device.createBuffer({ size: 1001, usage: MAP_READ }), (e: unknown) => outOfMemory(e) !== undefined);
  assert.deepEqual(made, [100, 1000]);
});
