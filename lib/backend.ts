// Which TensorFlow.js backend runs the model, and why. `useBackend("auto")` takes the fastest one that really works
// here: a GPU (WebGPU through Dawn, or libtensorflow with CUDA), else libtensorflow on the CPU, else WebAssembly
// (XNNPACK, SIMD, threads; measured ~40× faster than the pure-JS cpu backend for a BERT training step on 2 cores),
// else the pure-JS cpu backend. `diagnoseBackends()` says for each backend whether it works, why not, and the fix.
import * as tf from "@tensorflow/tfjs";
import { residentBytes, type BackendDiagnosis, type BackendName } from "./platform";
import { backendHost, type BackendProbes } from "./platform/backends";
import { userError } from "./errors";

export type { BackendDiagnosis, BackendName, GpuAdapterInfo } from "./platform";
export type { BackendProbes } from "./platform/backends";
export { STORAGE_BUFFERS_CAP, refuseOversizedBuffers } from "./kernels/webgpu/device";
export const BACKEND_NAMES: BackendName[] = ["tensorflow", "webgpu", "wasm", "cpu"];

export interface BackendChoice { name: BackendName; detail: string }

let choice: BackendChoice | undefined;

/**
 * Make `name` the active backend ("auto": the first available in GPU → tensorflow → wasm → cpu order).
 * Throws a UserError naming the reason and the fix when an explicitly requested backend does not work.
 */
export async function useBackend(name: BackendName | "auto" = "auto", opts: { probes?: Partial<BackendProbes> } = {}): Promise<BackendChoice> {
  if (name !== "auto" && !BACKEND_NAMES.includes(name)) {
    throw userError("--backend", `unknown backend '${name}'`, `use auto, ${BACKEND_NAMES.join(", ")}`);
  }
  if (choice !== undefined && (name === "auto" || name === choice.name) && tf.getBackend() === choice.name) return choice;
  const diagnoses = await diagnoseBackends(opts.probes, name === "auto" ? undefined : [name]);
  const pick = name === "auto" ? chooseBackend(diagnoses) : diagnoses.find((d) => d.name === name)!;
  if (!pick.available) throw userError(`backend ${pick.name}`, `not available: ${pick.detail}`, pick.fix);
  if (pick.name === "webgpu") await backendHost(opts.probes).loadWebgpu();
  const ok = await tf.setBackend(pick.name);
  if (!ok) throw userError(`backend ${pick.name}`, "failed to initialise", "run 'bertqa doctor' to see why, or pick another with --backend");
  await tf.ready();
  choice = { name: pick.name, detail: pick.detail };
  return choice;
}

/** The backend auto would pick from a list of diagnoses: a working GPU first, then tensorflow, wasm, cpu. */
export function chooseBackend(diagnoses: BackendDiagnosis[]): BackendDiagnosis {
  const order: ((d: BackendDiagnosis) => boolean)[] = [
    (d) => d.gpu && d.name === "tensorflow",
    (d) => d.gpu && d.name === "webgpu",
    (d) => d.name === "tensorflow",
    (d) => d.name === "wasm",
    (d) => d.name === "cpu",
  ];
  for (const rule of order) {
    const d = diagnoses.find((x) => x.available && rule(x));
    if (d !== undefined) return d;
  }
  return diagnoses.find((d) => d.name === "cpu") ?? { name: "cpu", available: true, gpu: false, detail: "pure JavaScript" };
}

/** Check every backend (or `only` some): available or not, why, and a one-line fix. Never throws. */
export async function diagnoseBackends(probes: Partial<BackendProbes> = {}, only: BackendName[] = BACKEND_NAMES): Promise<BackendDiagnosis[]> {
  const host = backendHost(probes);
  const out: BackendDiagnosis[] = [];
  for (const name of BACKEND_NAMES) {
    if (!only.includes(name)) continue;
    out.push(name === "cpu" ? { name: "cpu", available: true, gpu: false, detail: "pure JavaScript kernels (always available, slowest)" } : await host.diagnose(name));
  }
  return out;
}

// wasm's heap is one 32-bit address space; a training step peaks at ~26 bytes per parameter before activations: 16 held
// (weights, AdamW's m and v, gradients; clipping makes no copy) plus weight-sized copies the backward pass makes and
// AdamW's three new tensors for the word embeddings (`bertqa bench` at 1 × 16: mini 24, small 23). `base` (110M) at
// 1 × 128 measured 29 and grew the heap to its 4 GB limit, so it stays refused.
const WASM_HEAP_BYTES = 4 * 2 ** 30;
const TRAIN_BYTES_PER_PARAM = 26;

/** Refuse, before the first step, to train a model that cannot fit the active backend's memory (wasm: 4 GB heap). */
export function checkTrainingFits(params: number, backend = tf.getBackend()): void {
  const need = params * TRAIN_BYTES_PER_PARAM;
  if (backend === "wasm" && need > 0.6 * WASM_HEAP_BYTES) {
    throw userError(`a ${(params / 1e6).toFixed(0)}M-parameter model`, `needs about ${(need / 2 ** 30).toFixed(1)} GB to train before activations, more than the wasm backend's 4 GB heap holds`,
      "train it on a GPU (--backend webgpu or tensorflow; see bertqa doctor) or use a smaller preset such as small or medium");
  }
}

/** Memory in use: process RSS and what TensorFlow.js tracks (tensors, bytes). */
export function memoryReport(): { rss_mb: number; tensors: number; tensor_mb: number } {
  const m = tf.memory();
  return { rss_mb: Math.round(residentBytes() / 2 ** 20), tensors: m.numTensors, tensor_mb: Math.round(m.numBytes / 2 ** 20) };
}

// --- the WebGPU buffer pool ------------------------------------------------------------------------------------------
// tfjs-backend-webgpu keeps every freed buffer for reuse by its exact byte size and never gives one back, so batches
// of changing length grow the pool with each new length (measured on lavapipe, tiny model, 10 steps at 8 lengths:
// 2 MB of live tensors, 509 MB allocated). Two remedies: few lengths (padMultiple) and emptying the pool when the
// batch shape changes (gpuPoolKeeper).

interface WebgpuBufferPool { freeBuffers: Map<string, { size: number; destroy(): void }[]>; numFreeBuffers: number; numBytesUsed: number; numBytesAllocated: number }

function webgpuPool(): WebgpuBufferPool | undefined {
  if (tf.getBackend() !== "webgpu") return undefined;
  return (tf.backend() as unknown as { bufferManager?: WebgpuBufferPool }).bufferManager;
}

/** GPU memory of the webgpu backend: bytes of live tensors and bytes allocated (live + pooled); undefined elsewhere. */
export function gpuMemory(): { usedBytes: number; allocatedBytes: number } | undefined {
  const pool = webgpuPool();
  return pool === undefined ? undefined : { usedBytes: pool.numBytesUsed, allocatedBytes: pool.numBytesAllocated };
}

/** Destroy the webgpu backend's pooled free buffers (the device frees each once queued work no longer uses it);
 * returns the bytes given back. */
export function releaseGpuPool(): number {
  const pool = webgpuPool();
  if (pool === undefined) return 0;
  let bytes = 0;
  for (const buffers of pool.freeBuffers.values()) {
    for (const b of buffers.splice(0)) {
      bytes += b.size;
      b.destroy();
    }
  }
  pool.numFreeBuffers = 0;
  pool.numBytesAllocated -= bytes;
  return bytes;
}

/** Call with each batch's shape: empties the pool when the shape changes, so it holds one shape's buffers at a time
 * instead of every shape's ever seen (the next step refills it at the price of fresh allocations). */
export function gpuPoolKeeper(): (shape: number[]) => void {
  let last = "";
  return (shape) => {
    const key = shape.join("x");
    if (last !== "" && key !== last) releaseGpuPool();
    last = key;
  };
}

/** Pad batches to a multiple of this many tokens (HF's pad_to_multiple_of): 64 on webgpu, where every new sequence
 * length compiles new shaders and pools new buffer sizes; 1 elsewhere, where padding only costs arithmetic. */
export function padMultiple(backend = tf.getBackend()): number {
  return backend === "webgpu" ? 64 : 1;
}
