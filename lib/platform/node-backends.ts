// Which backends work under Node, and why not: libtensorflow (tfjs-node-gpu, CUDA), WebGPU through Dawn (the
// 'webgpu' package) and WebAssembly with threads. The checks are probes that tests replace to fake a machine with
// (or without) CUDA; lib/backend.ts chooses among the answers.
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import * as tf from "@tensorflow/tfjs";
import type { BackendDiagnosis, BackendHost, GpuAdapterInfo } from "./types";
import type { RawAdapter } from "../kernels/webgpu/device";
import { firstLine } from "../errors";
import { adapterDetail, wasmDetail, wasmThreadCount } from "./diagnosis";

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

/** The diagnoses of this machine's backends (tests pass fake probes). */
export function backendHost(probes: Partial<BackendProbes> = {}): BackendHost {
  const p: BackendProbes = { ...defaultProbes(), ...probes };
  return {
    diagnose: (name) => (name === "tensorflow" ? diagnoseTensorflow(p) : name === "webgpu" ? diagnoseWebgpu(p) : diagnoseWasm(p)),
    loadWebgpu: () => p.loadWebgpu(),
  };
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
    const detail = adapterDetail(adapter);
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

export function defaultProbes(): BackendProbes {
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

const CHILD_PROBE = `const gpu = require(process.argv[1]).create([]);
gpu.requestAdapter().then((a) => {
  if (a === null || a === undefined) return process.stdout.write("null");
  const limits = {};
  for (const k of JSON.parse(process.argv[2])) if (typeof a.limits[k] === "number") limits[k] = a.limits[k];
  const i = a.info ?? {};
  process.stdout.write(JSON.stringify({ info: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description }, limits, isFallbackAdapter: a.isFallbackAdapter }));
});`;

function adapterInChild(): GpuAdapterInfo | undefined {
  const r = spawnSync(process.execPath, ["-e", CHILD_PROBE, require.resolve("webgpu"), JSON.stringify((require("../kernels/webgpu/device") as typeof import("../kernels/webgpu/device")).ADAPTER_LIMITS)], { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0 || r.stdout === "") {
    const why = r.error?.message ?? r.stderr.split("\n").filter((l) => l.trim() !== "" && !/^\s+at |^Warning: /.test(l)).pop() ?? `exit ${r.status}`;
    throw new Error(why);
  }
  const raw = JSON.parse(r.stdout) as RawAdapter | null;
  return raw === null ? undefined : (require("../kernels/webgpu/device") as typeof import("../kernels/webgpu/device")).describeAdapter(raw);
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
  const device = require("../kernels/webgpu/device") as typeof import("../kernels/webgpu/device");
  device.registerWebgpu(gpu);
  return device.describeAdapter(adapter);
}

// XNNPACK's own pool (the threaded build's elementwise kernels): one thread. Its pool blocks on descheduled threads
// (9-11 against 35-40 examples/s on busy cores), and the products, where the time goes, run on our pool instead.
// BERTQA_XNNPACK_THREADS=N gives it N (to compare on an idle machine).
const XNNPACK_THREADS = Math.max(1, Math.min(8, Math.floor(Number(process.env.BERTQA_XNNPACK_THREADS)) || 1));

let described: string | undefined;
/** Load the wasm backend: the threaded SIMD build with our GEMM pool when more than one thread is wanted (else the
 * single-threaded SIMD build, XNNPACK's products), plus our training kernels. */
async function initWasm(): Promise<string> {
  if (described !== undefined) return described;
  const threadsLib = require("./node-wasm") as typeof import("./node-wasm");
  const { installWasmKernels } = require("../kernels") as typeof import("../kernels");
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
  const pool = threads > 1 && note === "" ? await (require("../kernels/wasm-gemm") as typeof import("../kernels/wasm-gemm")).startWasmGemmPool(threads).catch((e: unknown) => { note = ` (GEMM pool failed to start: ${firstLine(e)})`; return undefined; }) : undefined;
  if (previous !== undefined && previous !== "wasm") await tf.setBackend(previous);
  const threaded = threads > 1 && !note.includes("threaded build failed");
  described = wasmDetail(threaded, pool, note);
  return described;
}

