// `bertqa bench`: time full training steps — forward, QA loss, backward, gradient clipping and AdamW — of a preset
// BERT on random tokens, after warm-up steps, or (--inference) forward passes as prediction runs them, and print ONE
// JSON line (compare with test/bench/torch_bench.py; test/bench/side_by_side.py runs both, interleaved).
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as tf from "@tensorflow/tfjs";
import { userError } from "../errors";
import { outOfMemory, readStepStats } from "../train";
import { countParams, initModel, forward, qaLoss, disposeModel, tfSeed } from "../bert";
import { nearPreset, presetConfig, PRESETS, type PresetName } from "../config";
import { adamwStep, createAdamW, disposeAdamW, disposeGrads, gradClipScale, type Grads } from "../optim";
import { BACKEND_NAMES, checkTrainingFits, gpuMemory, useBackend, type BackendName } from "../backend";
import { SEED_MAX, parseFlags, type FlagSpecs } from "./args";
import { variableGrads } from "../grad";
import { gemmPoolFor } from "../kernels/wasm-gemm";

export const summary = "time training steps (forward + backward + AdamW) or forward passes of a preset BERT; prints one JSON line";

const BACKENDS = ["auto", ...BACKEND_NAMES];
const BERT_VOCAB = 30522; // bert-base-uncased's vocabulary, so the embedding gradient is realistic

export const flags = {
  config: { type: "string", help: `model preset: ${Object.keys(PRESETS).join(", ")}`, default: "mini" },
  "batch-size": { type: "int", help: "sequences per step", default: 16, min: 1 },
  "seq-len": { type: "int", help: "tokens per sequence", default: 128, min: 1 },
  steps: { type: "int", help: "timed steps", default: 5, min: 1 },
  warmup: { type: "int", help: "untimed steps first (kernel setup, allocation; at least 1, so an allocation failure surfaces before the profiled step)", default: 2, min: 1 },
  "vocab-size": { type: "int", help: "vocabulary size", default: BERT_VOCAB, min: 2 },
  backend: { type: "string", help: `TensorFlow.js backend: ${BACKENDS.join(" | ")}`, default: "auto" },
  seed: { type: "int", help: "seed for weights and tokens", default: 0, min: 0, max: SEED_MAX },
  inference: { type: "boolean", help: "time forward passes as prediction runs them (no gradients, no dropout) instead of training steps" },
  gemm: { type: "boolean", help: "instead of training steps: GFLOP/s of the step's matrix products, beside PyTorch's on this machine (test/bench/torch_gemm.py)" },
  python: { type: "string", help: "python with torch, for --gemm", default: "python3" },
} satisfies FlagSpecs;

export async function run(argv: string[]): Promise<void> {
  const f = parseFlags("bench", argv, flags) as { config: string; "batch-size": number; "seq-len": number; steps: number; warmup: number; "vocab-size": number; backend: string; seed: number; inference?: boolean; gemm?: boolean; python: string }; // all have defaults
  if (!Object.prototype.hasOwnProperty.call(PRESETS, f.config)) throw userError("--config", `unknown preset '${f.config}'${nearPreset(f.config) !== undefined ? `: did you mean \`${nearPreset(f.config)}\`?` : ""}`, `use one of ${Object.keys(PRESETS).join(", ")}`);
  if (!BACKENDS.includes(f.backend as string)) throw userError("--backend", `unknown backend '${f.backend}'`, `use one of ${BACKENDS.join(", ")}`);
  for (const k of ["batch-size", "seq-len", "steps", "vocab-size"] as const) if (!((f[k] as number) > 0)) throw userError(`--${k}`, `must be positive, got ${f[k]}`);
  if (f["seq-len"] > 512) throw userError("--seq-len", `${f["seq-len"]} is more than BERT's 512 positions`);
  const backend = await useBackend(f.backend as BackendName | "auto");
  if (f.gemm === true) {
    const rows = benchGemm(gemmShapes(f.config as PresetName, f["batch-size"], f["seq-len"]));
    const torch = torchGemm(f.python, rows, backendThreads());
    const gemm = rows.map((r) => ({ ...r, torch_gflops: torch?.gflops[r.name], torch_cpu_gflops: torch?.cpuGflops[r.name] }));
    console.log(JSON.stringify({ backend: backend.name, backend_detail: backend.detail, threads: backendThreads(), config: f.config, batch_size: f["batch-size"], seq_len: f["seq-len"], gemm, ...(torch !== undefined ? { torch: torch.version, torch_threads: torch.threads } : {}) }));
    return;
  }
  const o = { preset: f.config as PresetName, batchSize: f["batch-size"], seqLen: f["seq-len"], steps: f.steps, warmup: f.warmup, vocabSize: f["vocab-size"], seed: f.seed };
  const r = await (f.inference === true ? benchInference(o) : benchTraining(o)).catch((e: unknown) => {
    const oom = outOfMemory(e);
    if (oom === undefined) throw e;
    throw userError(`--config ${f.config} --batch-size ${f["batch-size"]} --seq-len ${f["seq-len"]}`, `does not fit in memory on ${backend.name}: ${oom}`, `try --batch-size ${Math.max(1, Math.floor(f["batch-size"] / 2))}`);
  });
  console.log(JSON.stringify({ backend: backend.name, backend_detail: backend.detail, ...r }));
}

export interface BenchResult {
  mode: "train" | "inference"; // training steps, or forward passes as prediction runs them (--inference)
  config: string; params: number; batch_size: number; seq_len: number; steps: number;
  threads: number; // CPU threads the backend computes on (wasm: the GEMM pool's; 1 elsewhere, or when unknown)
  step_ms: number; step_ms_min: number; examples_per_s: number; tokens_per_s: number;
  /** CPU time per step, all threads together (process.cpuUsage): comparable between runs on a busy machine, where
   * wall time is not; cpu_ms_per_step / step_ms is how many cores the step kept busy on average. */
  cpu_ms_per_step: number;
  /** The process's peak resident memory (getrusage's maxrss, as torch_bench.py reads it), model building included. */
  peak_rss_mb: number;
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
  const cpu0 = process.cpuUsage();
  for (let i = 1; i <= o.steps; i++) {
    const next = timed(o.warmup + i);
    await inFlight;
    inFlight = next;
    const now = performance.now();
    times.push(now - last);
    last = now;
  }
  const cpu = process.cpuUsage(cpu0); // the timed steps' span: step warmup+1 queued to step warmup+steps read
  await inFlight;
  const sorted = times.slice().sort((a, b) => a - b);
  const kernelTime = timeByKernel(prof.kernels);
  const median = sorted[Math.floor(sorted.length / 2)];
  const [B, T] = [o.batchSize, o.seqLen];
  return {
    mode, config: o.preset, params, batch_size: B, seq_len: T, steps: o.steps, threads: backendThreads(),
    cpu_ms_per_step: +((cpu.user + cpu.system) / 1000 / o.steps).toFixed(1),
    step_ms: +median.toFixed(1), step_ms_min: +sorted[0].toFixed(1), examples_per_s: +((1000 * B) / median).toFixed(2), tokens_per_s: Math.round((1000 * B * T) / median),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024), peak_tensor_mb: Math.round(peakBytes / 2 ** 20), live_tensors_after: 0,
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

export interface GemmShape { name: string; batch: number; m: number; k: number; n: number; ta: boolean; tb: boolean }

/** The products of a training step of `preset` at batch × seqLen (as lib/bert.ts makes them): dense layers forward
 * (x·W), their weight and input gradients (xᵀ·dy, dy·Wᵀ), and attention over all heads. */
export function gemmShapes(preset: PresetName, batch: number, seqLen: number): GemmShape[] {
  const c = presetConfig(preset);
  const N = batch * seqLen, H = c.hidden_size, I = c.intermediate_size, A = c.num_attention_heads, d = H / A;
  return [
    { name: "x·W (Q, K, V, output)", batch: 1, m: N, k: H, n: H, ta: false, tb: false },
    { name: "x·W (FFN in)", batch: 1, m: N, k: H, n: I, ta: false, tb: false },
    { name: "x·W (FFN out)", batch: 1, m: N, k: I, n: H, ta: false, tb: false },
    { name: "xᵀ·dy (FFN in weight gradient)", batch: 1, m: H, k: N, n: I, ta: true, tb: false },
    { name: "xᵀ·dy (FFN out weight gradient)", batch: 1, m: I, k: N, n: H, ta: true, tb: false },
    { name: "xᵀ·dy (Q, K, V, output weight gradients)", batch: 1, m: H, k: N, n: H, ta: true, tb: false },
    { name: "dy·Wᵀ (FFN in input gradient)", batch: 1, m: N, k: I, n: H, ta: false, tb: true },
    { name: "q·kᵀ (all heads)", batch: batch * A, m: seqLen, k: d, n: seqLen, ta: false, tb: true },
    { name: "p·v (all heads)", batch: batch * A, m: seqLen, k: seqLen, n: d, ta: false, tb: false },
  ];
}

/** GFLOP/s of tf.matMul on the active backend at each shape: the best of 5 runs after 2 untimed ones; cpu_gflops
 * per second of CPU time of all threads over the 5 (per core busy: what a machine shared with other work still shows). */
export function benchGemm(shapes: GemmShape[]): (GemmShape & { gflops: number; cpu_gflops: number })[] {
  return shapes.map((s) => {
    const a = tf.randomUniform(s.ta ? [s.batch, s.k, s.m] : [s.batch, s.m, s.k], -1, 1, "float32", 1) as tf.Tensor3D;
    const b = tf.randomUniform(s.tb ? [s.batch, s.n, s.k] : [s.batch, s.k, s.n], -1, 1, "float32", 2) as tf.Tensor3D;
    const once = () => {
      const t0 = performance.now();
      const c = tf.matMul(a, b, s.ta, s.tb);
      c.dataSync(); // the host waits for the product (a no-op wait on wasm and cpu)
      c.dispose();
      return performance.now() - t0;
    };
    once();
    once();
    const cpu0 = process.cpuUsage();
    const best = Math.min(...Array.from({ length: 5 }, once));
    const cpu = process.cpuUsage(cpu0);
    tf.dispose([a, b]);
    const flops = 2 * s.batch * s.m * s.n * s.k;
    return { ...s, gflops: +(flops / best / 1e6).toFixed(1), cpu_gflops: +((5 * flops) / ((cpu.user + cpu.system) / 1e3) / 1e6).toFixed(1) };
  });
}

/** PyTorch's GFLOP/s at the same shapes and thread count (test/bench/torch_gemm.py); undefined, with a note on
 * stderr, when that python has no torch. */
function torchGemm(python: string, shapes: GemmShape[], threads: number): { version: string; threads: number; gflops: Record<string, number>; cpuGflops: Record<string, number> } | undefined {
  const script = path.join(__dirname, "..", "..", "test", "bench", "torch_gemm.py");
  const r = spawnSync(python, [script, "--threads", String(threads), "--shapes", JSON.stringify(shapes)], { encoding: "utf8" });
  if (r.status !== 0) {
    console.error(`bench --gemm: no PyTorch numbers (${python} ${path.relative(process.cwd(), script)}: ${r.error?.message ?? r.stderr.trim().split("\n").pop()}); pass --python with a python that has torch`);
    return undefined;
  }
  const out = JSON.parse(r.stdout) as { torch: string; threads: number; gemm: { name: string; gflops: number; cpu_gflops: number }[] };
  return { version: out.torch, threads: out.threads, gflops: Object.fromEntries(out.gemm.map((g) => [g.name, g.gflops])), cpuGflops: Object.fromEntries(out.gemm.map((g) => [g.name, g.cpu_gflops])) };
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
