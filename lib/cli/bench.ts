// `bertqa bench`: time full training steps — forward, QA loss, backward, gradient clipping and AdamW — of a preset
// BERT on random tokens, after warm-up steps, or (--inference) forward passes as prediction runs them, and print ONE
// JSON line (compare with test/bench/torch_bench.py; test/bench/side_by_side.py runs both, interleaved).
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as tf from "@tensorflow/tfjs";
import { userError } from "../errors";
import { outOfMemory } from "../train";
import { nearPreset, presetConfig, PRESETS, type PresetName } from "../config";
import { BACKEND_NAMES, useBackend, type BackendName } from "../backend";
import { backendThreads, benchInference, benchTraining } from "../bench";
import { SEED_MAX, parseFlags, type FlagSpecs } from "./args";

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
