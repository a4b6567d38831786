// Timing the model's steps, as `bertqa bench` prints them and test/bench/ compares them with PyTorch: full training
// steps (forward, QA loss, backward, clipping, AdamW) or forward passes as prediction runs them, of a preset BERT on
// random tokens, after warm-up steps. The same code times Node and a browser's worker (test/bench/browser_bench.ts).
import * as tf from "@tensorflow/tfjs";
import { readStepStats } from "./train";
import { countParams, initModel, forward, qaLoss, disposeModel, tfSeed } from "./bert";
import { presetConfig, type PresetName } from "./config";
import { adamwStep, createAdamW, disposeAdamW, disposeGrads, gradClipScale, type Grads } from "./optim";
import { checkTrainingFits, gpuMemory } from "./backend";
import { variableGrads } from "./grad";
import { gemmPoolFor } from "./kernels/wasm-gemm";
import { cpuTimeUs, peakResidentBytes } from "./platform";

export interface BenchResult {
  mode: "train" | "inference"; // training steps, or forward passes as prediction runs them (--inference)
  config: string; params: number; batch_size: number; seq_len: number; steps: number;
  threads: number; // CPU threads the backend computes on (wasm: the GEMM pool's; 1 elsewhere, or when unknown)
  step_ms: number; step_ms_min: number; examples_per_s: number; tokens_per_s: number;
  /** CPU time per step, all threads together (process.cpuUsage; absent in a browser, which does not say): comparable
   * between runs on a busy machine, where wall time is not; cpu_ms_per_step / step_ms is how many cores the step kept busy. */
  cpu_ms_per_step?: number;
  /** The process's peak resident memory (getrusage's maxrss, as torch_bench.py reads it), model building included;
   * absent in a browser, which does not say. */
  peak_rss_mb?: number;
  peak_tensor_mb: number; live_tensors_after: number;
  kernels_per_step: number; // kernel calls (tf ops and the library's kernels) in one step, free ones (reshapes) included
  gpu_dispatches_per_step?: number; // webgpu: compute dispatches in one step, what the GPU actually launches
  peak_gpu_mb?: number; // webgpu: GPU buffers allocated (live tensors and the backend's pool of free ones)
  /** Where one step's time goes, by kernel, most first (tf.profile: GPU timestamps on webgpu where the adapter has
   * timestamp-query, each kernel run to completion elsewhere); absent when the backend gives no times. */
  kernel_time?: { kernel: string; launches: number; ms: number }[];
}

export interface BenchOptions { preset: PresetName; batchSize: number; seqLen: number; steps: number; warmup: number; vocabSize: number; seed: number }

/** A model and a batch of random tokens (a quarter question, the rest context), as both benchmarks use them. */
function benchSetup(o: BenchOptions) {
  const config = presetConfig(o.preset, { vocabSize: o.vocabSize, maxPositions: Math.max(512, o.seqLen) });
  const model = initModel(config, "qa", o.seed);
  const [B, T] = [o.batchSize, o.seqLen];
  const batch = {
    inputIds: tf.randomUniform([B, T], 1, o.vocabSize, "int32", tfSeed(o.seed)) as tf.Tensor2D,
    attentionMask: tf.ones([B, T], "int32") as tf.Tensor2D,
    tokenTypeIds: tf.tensor2d(Array.from({ length: B }, () => Array.from({ length: T }, (_, t) => (t < T / 4 ? 0 : 1))), [B, T], "int32"),
  };
  return { model, batch, dispose: () => { disposeModel(model); tf.dispose(batch as unknown as tf.Tensor[]); } };
}

/**
 * Time `step` (which queues step i and resolves when its results are read back): `warmup` untimed steps, one profiled
 * step (kernel times, peak tensor bytes), then `steps` pipelined as in the trainer: step i is queued before step i-1's
 * numbers are awaited, and a step's time is the gap between two such points (one untimed step primes the pipeline,
 * one more is drained after).
 */
async function timeSteps(o: BenchOptions, mode: BenchResult["mode"], params: number, step: (i: number) => Promise<unknown>): Promise<BenchResult> {
  let peakBytes = 0, peakGpu = 0;
  const timed = async (i: number) => {
    const p = step(i);
    peakBytes = Math.max(peakBytes, tf.memory().numBytes);
    peakGpu = Math.max(peakGpu, gpuMemory()?.allocatedBytes ?? 0); // the pool keeps what the step needed at its peak
    return p;
  };
  for (let i = 0; i < o.warmup; i++) await timed(i);
  // Peak tensor memory inside a step (activations kept for backward): tf.profile tracks it.
  const [prof, dispatches] = await countGpuDispatches(() => tf.profile(async () => { await timed(-1); }));
  peakBytes = Math.max(peakBytes, prof.peakBytes);
  const times: number[] = [];
  let inFlight = timed(o.warmup), last = performance.now();
  const cpu0 = cpuTimeUs();
  for (let i = 1; i <= o.steps; i++) {
    const next = timed(o.warmup + i);
    await inFlight;
    inFlight = next;
    const now = performance.now();
    times.push(now - last);
    last = now;
  }
  const cpu1 = cpuTimeUs(); // the timed steps' span: step warmup+1 queued to step warmup+steps read
  await inFlight;
  const sorted = times.slice().sort((a, b) => a - b);
  const kernelTime = timeByKernel(prof.kernels);
  const median = sorted[Math.floor(sorted.length / 2)];
  const [B, T] = [o.batchSize, o.seqLen];
  const peakRss = peakResidentBytes();
  return {
    mode, config: o.preset, params, batch_size: B, seq_len: T, steps: o.steps, threads: backendThreads(),
    ...(cpu0 !== undefined && cpu1 !== undefined ? { cpu_ms_per_step: +((cpu1 - cpu0) / 1000 / o.steps).toFixed(1) } : {}),
    step_ms: +median.toFixed(1), step_ms_min: +sorted[0].toFixed(1), examples_per_s: +((1000 * B) / median).toFixed(2), tokens_per_s: Math.round((1000 * B * T) / median),
    ...(peakRss !== undefined ? { peak_rss_mb: Math.round(peakRss / 2 ** 20) } : {}), peak_tensor_mb: Math.round(peakBytes / 2 ** 20), live_tensors_after: 0,
    kernels_per_step: prof.kernels.length, ...(dispatches !== undefined ? { gpu_dispatches_per_step: dispatches } : {}), ...(gpuMemory() !== undefined ? { peak_gpu_mb: Math.round(peakGpu / 2 ** 20) } : {}),
    ...(kernelTime.length > 0 ? { kernel_time: kernelTime } : {}),
  };
}

/** Median time of `steps` full training steps (same work as one step of trainQA with clipping). */
export async function benchTraining(o: BenchOptions): Promise<BenchResult> {
  const { model, batch, dispose } = benchSetup(o);
  const params = Object.fromEntries(Object.entries(model.params).filter(([, v]) => v.trainable));
  try {
    checkTrainingFits(Object.values(params).reduce((n, v) => n + v.size, 0));
  } catch (e) {
    dispose();
    throw e;
  }
  const byVar = new Map(Object.entries(params).map(([n, v]) => [v.name, n]));
  const opt = createAdamW(params, { lr: 1e-4 });
  const B = o.batchSize, T = o.seqLen;
  const starts = tf.tensor1d(Array.from({ length: B }, (_, i) => (i * 7) % T), "int32");
  const ends = tf.tensor1d(Array.from({ length: B }, (_, i) => Math.min(T - 1, ((i * 7) % T) + 3)), "int32");
  /** Queue one training step, as trainQA does: clipping and the update on the device, the loss and norm read back
   * while the next step is queued. Resolves when that read has landed, i.e. when the step has finished on the device. */
  const step = (i: number): Promise<unknown> => {
    const vars = Object.values(params);
    const { value, grads } = variableGrads(() => {
      const out = forward(model, batch, { training: true, seed: i });
      return qaLoss(out.startLogits!, out.endLogits!, starts, ends);
    }, vars);
    const named: Grads = {};
    for (const [vn, g] of Object.entries(grads)) named[byVar.get(vn)!] = g;
    const clip = gradClipScale(named, 1);
    adamwStep(opt, params, named, 1e-4, clip.scale); // clipping folded into the update, as trainQA does
    disposeGrads(named);
    return readStepStats(i, [value], clip).values;
  };
  const r = await timeSteps(o, "train", countParams(model), step);
  disposeAdamW(opt);
  dispose();
  tf.dispose([starts, ends]);
  return { ...r, live_tensors_after: tf.memory().numTensors };
}

/** Median time of `steps` forward passes as predictQA runs them: no gradients, no dropout, the logits read back. */
export async function benchInference(o: BenchOptions): Promise<BenchResult> {
  const { model, batch, dispose } = benchSetup(o);
  const step = (): Promise<unknown> => {
    const [s, e] = tf.tidy(() => {
      const out = forward(model, batch, { training: false });
      return [out.startLogits!, out.endLogits!];
    });
    return Promise.all([s.data(), e.data()]).finally(() => tf.dispose([s, e]));
  };
  const r = await timeSteps(o, "inference", countParams(model), step);
  dispose();
  return { ...r, live_tensors_after: tf.memory().numTensors };
}

/** Threads the active backend computes on: the wasm GEMM pool's (or 1 without it); 1 for the others. */
export function backendThreads(): number {
  if (tf.getBackend() !== "wasm") return 1;
  return gemmPoolFor(tf.backend())?.threads ?? 1;
}

/** How many compute dispatches `f` records on WebGPU (the backend's programs and the library's kernels all end in
 * GPUComputePassEncoder.dispatchWorkgroups; many tf kernels, e.g. Reshape, dispatch nothing); undefined elsewhere. */
export async function countGpuDispatches<T>(f: () => Promise<T>): Promise<[T, number | undefined]> {
  const proto = (globalThis as { GPUComputePassEncoder?: { prototype: { dispatchWorkgroups: (...a: unknown[]) => unknown } } }).GPUComputePassEncoder?.prototype;
  if (tf.getBackend() !== "webgpu" || proto === undefined) return [await f(), undefined];
  const original = proto.dispatchWorkgroups;
  let n = 0;
  proto.dispatchWorkgroups = function (this: unknown, ...a: unknown[]) { n++; return original.apply(this, a); };
  try {
    return [await f(), n];
  } finally {
    proto.dispatchWorkgroups = original;
  }
}

/** tf.profile's kernels summed by name: the 12 costliest, or none when no kernel reported a time. Only registered
 * kernels count: the profile also lists op scopes (customGrad's, fused ops'), whose times include their kernels'. */
function timeByKernel(kernels: { name: string; kernelTimeMs: unknown }[]): { kernel: string; launches: number; ms: number }[] {
  const by = new Map<string, { launches: number; ms: number }>();
  for (const k of kernels) {
    if (tf.getKernel(k.name, tf.getBackend()) === undefined) continue;
    const e = by.get(k.name) ?? { launches: 0, ms: 0 };
    e.launches++;
    e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0; // tf.profile has awaited them; an error counts 0
    by.set(k.name, e);
  }
  const rows = [...by].map(([kernel, e]) => ({ kernel, launches: e.launches, ms: +e.ms.toFixed(2) })).sort((a, b) => b.ms - a.ms);
  return rows[0]?.ms > 0 ? rows.slice(0, 12) : [];
}
