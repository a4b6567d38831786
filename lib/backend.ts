// Which TensorFlow.js backend runs the model, and why. `useBackend("auto")` takes the fastest one that really works
// here: a GPU (WebGPU through Dawn, or libtensorflow with CUDA), else libtensorflow on the CPU, else WebAssembly
// (XNNPACK, SIMD, threads; measured ~40× faster than the pure-JS cpu backend for a BERT training step on 2 cores),
// else the pure-JS cpu backend. `diagnoseBackends()` says for each backend whether it works, why not, and the fix.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import * as tf from "@tensorflow/tfjs";
import { userError } from "./errors";

export type BackendName = "tensorflow" | "webgpu" | "wasm" | "cpu";
export const BACKEND_NAMES: BackendName[] = ["tensorflow", "webgpu", "wasm", "cpu"];

export interface BackendDiagnosis {
  name: BackendName;
  available: boolean;
  gpu: boolean; // runs on a GPU when available
  detail: string; // what was found (or why it does not work)
  fix?: string; // one line: how to make it work
}

export interface BackendChoice { name: BackendName; detail: string }

/** software: a CPU emulation of a GPU (Mesa lavapipe/llvmpipe, SwiftShader): it works, but auto must not take it. */
export interface GpuAdapterInfo { name: string; limits: Record<string, number>; software?: boolean }

/** Everything diagnoseBackends looks at, injectable so tests can fake a machine with (or without) CUDA. */
export interface BackendProbes {
  /** Load tfjs-node-gpu (registers the "tensorflow" backend) or throw the loader's error. */
  loadTensorflow(): void;
  /** True when a "tensorflow" backend factory is registered (tfjs-node here is an alias of plain tfjs: none). */
  tensorflowRegistered(): boolean;
  /** Whether libtensorflow found a CUDA device (tfjs-node's backend.isUsingGpuDevice) — needs the backend loaded. */
  tensorflowUsesGpu(): Promise<boolean>;
  /** Absolute path of a shared library as the dynamic loader would find it, or undefined. */
  findLibrary(name: string): string | undefined;
  /** Other versions present, e.g. findLibraries("libcudart.so") → ["/usr/local/cuda/lib64/libcudart.so.13"]. */
  findLibraries(prefix: string): string[];
  /** A WebGPU adapter from Dawn, undefined when there is none, or throws if Dawn cannot load. */
  webgpuAdapter(): Promise<GpuAdapterInfo | undefined>;
  /** Load Dawn into this process and register the "webgpu" backend, once webgpu is the one to run. */
  loadWebgpu(): Promise<unknown>;
  /** Initialise the wasm backend; resolves to a description (build, threads). */
  wasm(): Promise<string>;
}

// libtensorflow 2.9.1 (bundled by tfjs-node-gpu 4.22) is built against CUDA 11.2 and cuDNN 8.1.
export const CUDA_LIBRARIES = ["libcudart.so.11.0", "libcudnn.so.8", "libcublas.so.11", "libcublasLt.so.11", "libcufft.so.10", "libcurand.so.10", "libcusolver.so.11", "libcusparse.so.11"];

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
  if (pick.name === "webgpu") await { ...defaultProbes(), ...opts.probes }.loadWebgpu();
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
  const p: BackendProbes = { ...defaultProbes(), ...probes };
  const out: BackendDiagnosis[] = [];
  for (const name of BACKEND_NAMES) {
    if (!only.includes(name)) continue;
    if (name === "tensorflow") out.push(await diagnoseTensorflow(p));
    else if (name === "webgpu") out.push(await diagnoseWebgpu(p));
    else if (name === "wasm") out.push(await diagnoseWasm(p));
    else out.push({ name: "cpu", available: true, gpu: false, detail: "pure JavaScript kernels (always available, slowest)" });
  }
  return out;
}

async function diagnoseTensorflow(p: BackendProbes): Promise<BackendDiagnosis> {
  const cuda = cudaReport(p);
  try {
    p.loadTensorflow();
  } catch (e) {
    const reason = firstLine(e);
    const native = /native addon|tfjs_binding|libtensorflow|cannot open shared object/i.test(reason);
    return {
      name: "tensorflow", available: false, gpu: false,
      detail: `@tensorflow/tfjs-node-gpu does not load: ${reason}; ${cuda.summary}`,
      fix: native
        ? "libtensorflow was never downloaded (install script skipped/offline): with internet run 'npm rebuild @tensorflow/tfjs-node-gpu'; for the GPU also install CUDA 11.2 + cuDNN 8.1 libraries" + (cuda.missing.length > 0 ? ` (missing ${cuda.missing.slice(0, 2).join(", ")})` : "")
        : "reinstall @tensorflow/tfjs-node-gpu (npm rebuild @tensorflow/tfjs-node-gpu)",
    };
  }
  if (!p.tensorflowRegistered()) {
    return { name: "tensorflow", available: false, gpu: false, detail: "tfjs-node-gpu loaded but registered no 'tensorflow' backend", fix: "reinstall @tensorflow/tfjs-node-gpu" };
  }
  let gpu = false;
  try {
    gpu = await p.tensorflowUsesGpu();
  } catch {
    gpu = false;
  }
  return {
    name: "tensorflow", available: true, gpu,
    detail: gpu ? `libtensorflow on a CUDA GPU; ${cuda.summary}` : `libtensorflow on the CPU (no CUDA device used); ${cuda.summary}`,
    fix: gpu ? undefined : cuda.missing.length > 0 ? `for the GPU install CUDA 11.2 + cuDNN 8.1 (missing ${cuda.missing.join(", ")}) and put them on LD_LIBRARY_PATH` : "for the GPU check the NVIDIA driver (nvidia-smi)",
  };
}

/** Which of the CUDA libraries libtensorflow needs are found, and which other CUDA versions are installed. */
export function cudaReport(p: Pick<BackendProbes, "findLibrary" | "findLibraries">): { found: string[]; missing: string[]; summary: string } {
  const found: string[] = [], missing: string[] = [];
  for (const lib of CUDA_LIBRARIES.slice(0, 2)) (p.findLibrary(lib) !== undefined ? found : missing).push(lib);
  const others = [...p.findLibraries("libcudart.so."), ...p.findLibraries("libcudnn.so.")].map((f) => path.basename(f)).filter((b) => !found.includes(b));
  const parts = [found.length > 0 ? `found ${found.join(", ")}` : "", missing.length > 0 ? `missing ${missing.join(", ")}` : ""].filter((s) => s !== "");
  if (others.length > 0) parts.push(`other CUDA versions present: ${[...new Set(others)].join(", ")} (libtensorflow 2.9 needs CUDA 11 / cuDNN 8)`);
  return { found, missing, summary: parts.join("; ") };
}

async function diagnoseWebgpu(p: BackendProbes): Promise<BackendDiagnosis> {
  if (p.findLibrary("libvulkan.so.1") === undefined) {
    // Dawn reaches GPUs through Vulkan on Linux; without the loader it can only print a warning and find nothing.
    return { name: "webgpu", available: false, gpu: true, detail: "no Vulkan loader (libvulkan.so.1 not found), so Dawn cannot see a GPU", fix: "on a GPU machine install the Vulkan loader and driver (apt install libvulkan1 + the NVIDIA/Mesa Vulkan driver); on CPU use --backend wasm" };
  }
  try {
    const adapter = await p.webgpuAdapter();
    if (adapter === undefined) {
      return { name: "webgpu", available: false, gpu: true, detail: "Dawn (the 'webgpu' package) loaded but found no GPU adapter", fix: "needs a GPU with a Vulkan driver visible to this process; use --backend wasm on CPU-only machines" };
    }
    const limits = Object.entries(adapter.limits).map(([k, v]) => `${k}=${v}`);
    const detail = `adapter ${adapter.name}${limits.length > 0 ? ` (${limits.join(", ")})` : ""}`;
    if (adapter.software === true) {
      // Lavapipe & co. run WebGPU correctly but on the CPU, far slower than wasm: usable when asked for, never by auto.
      return { name: "webgpu", available: true, gpu: false, detail: `software (CPU-emulated) ${detail}`, fix: "only a software Vulkan driver is visible: fine for testing kernels; for speed use a real GPU's Vulkan driver or --backend wasm" };
    }
    return { name: "webgpu", available: true, gpu: true, detail };
  } catch (e) {
    return { name: "webgpu", available: false, gpu: true, detail: `WebGPU does not load: ${firstLine(e)}`, fix: "install the optional packages 'webgpu' and '@tensorflow/tfjs-backend-webgpu' (npm install)" };
  }
}

async function diagnoseWasm(p: BackendProbes): Promise<BackendDiagnosis> {
  try {
    return { name: "wasm", available: true, gpu: false, detail: await p.wasm() };
  } catch (e) {
    return { name: "wasm", available: false, gpu: false, detail: `WebAssembly backend does not load: ${firstLine(e)}`, fix: "reinstall @tensorflow/tfjs-backend-wasm (its .wasm files must be in node_modules)" };
  }
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e);
  return msg.split("\n")[0].trim();
}

// ---------------------------------------------------------------------------------------------------------------
// The real probes.

function defaultProbes(): BackendProbes {
  return {
    loadTensorflow: () => {
      process.env.TF_FORCE_GPU_ALLOW_GROWTH ??= "true"; // take GPU memory as needed, not all of it up front
      require("@tensorflow/tfjs-node-gpu");
    },
    tensorflowRegistered: () => tf.findBackendFactory("tensorflow") !== null && tf.findBackendFactory("tensorflow") !== undefined,
    tensorflowUsesGpu: async () => {
      const previous = tf.getBackend();
      await tf.setBackend("tensorflow");
      const gpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
      if (previous !== undefined && previous !== "tensorflow") await tf.setBackend(previous);
      return gpu;
    },
    findLibrary,
    findLibraries,
    webgpuAdapter,
    loadWebgpu,
    wasm: initWasm,
  };
}

let ldconfigCache: string[] | undefined;
function ldconfigPaths(): string[] {
  if (ldconfigCache !== undefined) return ldconfigCache;
  try {
    const text = execFileSync("ldconfig", ["-p"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    ldconfigCache = text.split("\n").map((l) => l.split("=>")[1]?.trim()).filter((s): s is string => s !== undefined && s !== "");
  } catch {
    ldconfigCache = [];
  }
  return ldconfigCache;
}

function searchDirs(): string[] {
  const fromEnv = (process.env.LD_LIBRARY_PATH ?? "").split(":").filter((d) => d !== "");
  return [...fromEnv, "/usr/local/cuda/lib64", "/usr/local/cuda/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"];
}

/** Where the dynamic loader would find `name`: LD_LIBRARY_PATH first, then the ldconfig cache, then usual dirs. */
export function findLibrary(name: string): string | undefined {
  for (const dir of (process.env.LD_LIBRARY_PATH ?? "").split(":").filter((d) => d !== "")) {
    if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  const hit = ldconfigPaths().find((p) => path.basename(p) === name);
  if (hit !== undefined) return hit;
  for (const dir of searchDirs()) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  return undefined;
}

export function findLibraries(prefix: string): string[] {
  const seen = new Set<string>();
  for (const p of ldconfigPaths()) if (path.basename(p).startsWith(prefix)) seen.add(p);
  for (const dir of searchDirs()) {
    try {
      for (const f of fs.readdirSync(dir)) if (f.startsWith(prefix)) seen.add(path.join(dir, f));
    } catch {
      // a directory that does not exist is simply not searched
    }
  }
  return [...seen];
}

let probed: Promise<GpuAdapterInfo | undefined> | undefined;
let loaded: Promise<GpuAdapterInfo | undefined> | undefined;
/** The probe: what Dawn sees, asked in a child process. Dawn prints its own warnings on stderr (lavapipe: two lines
 * about "maxDynamic...BuffersPerPipelineLayout") from native code; there they stay in the child. Dawn is loaded here
 * only once webgpu is the backend to run (loadWebgpu). */
function webgpuAdapter(): Promise<GpuAdapterInfo | undefined> {
  return loaded ?? (probed ??= (async () => adapterInChild())());
}

const ADAPTER_LIMITS = ["maxBufferSize", "maxStorageBufferBindingSize", "maxComputeWorkgroupStorageSize", "maxStorageBuffersPerShaderStage"];
type RawAdapter = { info?: Record<string, string | undefined>; limits?: Record<string, number>; isFallbackAdapter?: boolean };

const CHILD_PROBE = `const gpu = require(process.argv[1]).create([]);
gpu.requestAdapter().then((a) => {
  if (a === null || a === undefined) return process.stdout.write("null");
  const limits = {};
  for (const k of JSON.parse(process.argv[2])) if (typeof a.limits[k] === "number") limits[k] = a.limits[k];
  const i = a.info ?? {};
  process.stdout.write(JSON.stringify({ info: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description }, limits, isFallbackAdapter: a.isFallbackAdapter }));
});`;

function adapterInChild(): GpuAdapterInfo | undefined {
  const r = spawnSync(process.execPath, ["-e", CHILD_PROBE, require.resolve("webgpu"), JSON.stringify(ADAPTER_LIMITS)], { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0 || r.stdout === "") {
    const why = r.error?.message ?? r.stderr.split("\n").filter((l) => l.trim() !== "" && !/^\s+at |^Warning: /.test(l)).pop() ?? `exit ${r.status}`;
    throw new Error(why);
  }
  const raw = JSON.parse(r.stdout) as RawAdapter | null;
  return raw === null ? undefined : describeAdapter(raw);
}

/** Load Dawn and tfjs-backend-webgpu into this process and register the "webgpu" backend (with our kernels). */
function loadWebgpu(): Promise<GpuAdapterInfo | undefined> {
  loaded ??= findWebgpuAdapter();
  return loaded;
}

async function findWebgpuAdapter(): Promise<GpuAdapterInfo | undefined> {
  const dawn = require("webgpu") as { create(flags: string[]): { requestAdapter(): Promise<unknown> }; globals: Record<string, unknown> };
  const gpu = dawn.create([]);
  const adapter = (await gpu.requestAdapter()) as RawAdapter | null;
  if (adapter === null || adapter === undefined) return undefined;
  // tfjs-backend-webgpu looks for navigator.gpu and the GPU* globals, as in a browser. Runs once: loadWebgpu keeps it.
  Object.assign(globalThis, dawn.globals);
  (globalThis as { navigator?: unknown }).navigator = { gpu };
  registerWebgpuBackend(gpu);
  (require("./kernels/webgpu") as typeof import("./kernels/webgpu")).installWebgpuKernels(); // fused kernels + AddN fix
  (require("./kernels/gemm") as typeof import("./kernels/gemm")).installGemm(); // our GEMM for matmuls if BERTQA_GEMM=1
  return describeAdapter(adapter);
}

function describeAdapter(adapter: RawAdapter): GpuAdapterInfo {
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.device, info.description].filter((s) => s !== undefined && s !== "").join(" ") || "unknown GPU";
  const limits: Record<string, number> = {};
  for (const k of ADAPTER_LIMITS) {
    const v = adapter.limits?.[k];
    if (typeof v === "number") limits[k] = v;
  }
  const software = info.architecture === "software" || adapter.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader/i.test(name);
  return { name, limits, software };
}

type Adapter = { features: Set<string>; limits: Record<string, number>; info?: unknown; requestDevice(d: object): Promise<unknown> };
// The limits tfjs-backend-webgpu's own factory asks of the adapter, plus storage buffers per shader: the device
// default is 8, and the library's multi-tensor kernels (AdamW, the clipping norm, AddN) take more tensors per launch,
// so fewer launches, when the adapter allows more. That one is capped at 16, what lavapipe offers and the tests run
// with: an adapter offering thousands would otherwise put every parameter into one untested shader.
const DEVICE_LIMITS = ["maxComputeWorkgroupStorageSize", "maxComputeWorkgroupsPerDimension", "maxStorageBufferBindingSize", "maxBufferSize",
  "maxComputeWorkgroupSizeX", "maxComputeInvocationsPerWorkgroup", "maxStorageBuffersPerShaderStage"];
export const STORAGE_BUFFERS_CAP = 16;

/** Load tfjs-backend-webgpu and register "webgpu" with the package's factory, save that the device asks for the
 * adapter's DEVICE_LIMITS (storage buffers capped). */
function registerWebgpuBackend(gpu: { requestAdapter(o?: object): Promise<unknown> }): void {
  const { WebGPUBackend } = require("@tensorflow/tfjs-backend-webgpu") as { WebGPUBackend: new (device: unknown, info: unknown) => tf.KernelBackend };
  tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", async () => {
    const adapter = (await gpu.requestAdapter({ powerPreference: "high-performance" })) as Adapter;
    const requiredFeatures = ["timestamp-query", "bgra8unorm-storage"].filter((f) => adapter.features.has(f));
    const requiredLimits = Object.fromEntries(DEVICE_LIMITS.filter((k) => adapter.limits[k] !== undefined).map((k) => [k, adapter.limits[k]]));
    requiredLimits.maxStorageBuffersPerShaderStage = Math.min(requiredLimits.maxStorageBuffersPerShaderStage ?? 8, STORAGE_BUFFERS_CAP);
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    refuseOversizedBuffers(device as GpuDevice);
    return new WebGPUBackend(device, adapter.info);
  }, 3);
}

type GpuDevice = { limits: { maxBufferSize: number; maxStorageBufferBindingSize: number }; createBuffer(d: { size: number; usage: number }): unknown };
const GPU_BUFFER_USAGE_STORAGE = 0x80; // GPUBufferUsage.STORAGE (WebGPU spec)

/**
 * Dawn answers a buffer above the device's limits with an invalid buffer and validation messages, and tfjs then fails
 * far away (a TypeError in the next kernel); throw an out-of-memory error at the allocation instead, which every
 * command turns into its one-line "does not fit in memory" with a fix.
 */
export function refuseOversizedBuffers(device: GpuDevice): void {
  const create = device.createBuffer.bind(device);
  const { maxBufferSize, maxStorageBufferBindingSize } = device.limits;
  device.createBuffer = (d) => {
    const limit = d.usage & GPU_BUFFER_USAGE_STORAGE ? Math.min(maxBufferSize, maxStorageBufferBindingSize) : maxBufferSize;
    if (d.size > limit) throw new Error(`out of memory: a GPU buffer of ${(d.size / 2 ** 30).toFixed(2)} GiB is above the device's ${(limit / 2 ** 30).toFixed(2)} GiB per-buffer limit`);
    return create(d);
  };
}

// XNNPACK's own pool (the threaded build's elementwise kernels): one thread. Its pool blocks on descheduled threads
// (9-11 against 35-40 examples/s on busy cores), and the products, where the time goes, run on our pool instead.
// BERTQA_XNNPACK_THREADS=N gives it N (to compare on an idle machine).
const XNNPACK_THREADS = Math.max(1, Math.min(8, Math.floor(Number(process.env.BERTQA_XNNPACK_THREADS)) || 1));

let wasmDetail: string | undefined;
/** Load the wasm backend: the threaded SIMD build with our GEMM pool when more than one thread is wanted (else the
 * single-threaded SIMD build, XNNPACK's products), plus our training kernels. */
async function initWasm(): Promise<string> {
  if (wasmDetail !== undefined) return wasmDetail;
  const threadsLib = require("./kernels/wasm-threads") as typeof import("./kernels/wasm-threads");
  const { installWasmKernels } = require("./kernels") as typeof import("./kernels");
  require("@tensorflow/tfjs-backend-wasm");
  installWasmKernels();
  const previous = tf.getBackend();
  const threads = wasmThreadCount();
  let note = "";
  if (tf.findBackend("wasm") === null && threads > 1) {
    const libraryFactory = tf.findBackendFactory("wasm");
    threadsLib.registerThreadedWasm(XNNPACK_THREADS);
    if (!(await threadsLib.withoutNewProcessListeners(() => tf.setBackend("wasm")).catch(() => false))) {
      tf.removeBackend("wasm"); // back to the library's single-threaded loader
      if (libraryFactory !== null) tf.registerBackend("wasm", libraryFactory as () => tf.KernelBackend, 2);
      note = " (threaded build failed to start)";
    }
  }
  if (tf.findBackend("wasm") === null && !(await threadsLib.withoutNewProcessListeners(() => tf.setBackend("wasm")))) {
    throw new Error("tf.setBackend('wasm') failed (see the warning above)");
  }
  const pool = threads > 1 && note === "" ? await threadsLib.startWasmGemmPool(threads).catch((e: unknown) => { note = ` (GEMM pool failed to start: ${firstLine(e)})`; return undefined; }) : undefined;
  if (previous !== undefined && previous !== "wasm") await tf.setBackend(previous);
  const used = pool?.threads ?? 1;
  const gemm = pool === undefined ? "its matrix products" : `matrix products on our ${pool.fma ? "FMA" : "SIMD"} GEMM pool`;
  const threaded = threads > 1 && !note.includes("threaded build failed");
  wasmDetail = `XNNPACK ${threaded ? "threaded SIMD" : "SIMD"} build, ${used} thread${used === 1 ? "" : "s"} on ${os.cpus().length} logical cores, ${gemm}${note}`;
  return wasmDetail;
}

/**
 * Threads for wasm: BERTQA_WASM_THREADS, else one per logical core (up to 8). With two or more, matrix products run
 * on lib/kernels/wasm-gemm.ts's pool, which gives a product more threads only when it is big enough to pay for them
 * (PARALLEL_MIN_FLOPS) and lets the calling thread take every tile a descheduled worker does not; one thread keeps the
 * single-threaded build and XNNPACK's products (the numbers of releases before the pool, bit for bit).
 */
export function wasmThreadCount(): number {
  const env = Number(process.env.BERTQA_WASM_THREADS);
  if (Number.isInteger(env) && env >= 1) return Math.min(env, 8); // the threaded build caps at 8
  return Math.max(1, Math.min(8, os.availableParallelism?.() ?? os.cpus().length));
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
  return { rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), tensors: m.numTensors, tensor_mb: Math.round(m.numBytes / 2 ** 20) };
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
