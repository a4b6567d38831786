// Which backends work in this browser, and why not, in the browser's terms: WebGPU (navigator.gpu, with the
// project's WGSL kernels), WebAssembly with threads (the GEMM pool on Web Workers over a SharedArrayBuffer, which
// needs a cross-origin isolated page and a worker thread) or single-threaded, and no libtensorflow. The checks are
// probes that tests replace to fake a browser; lib/backend.ts chooses among the answers.
import * as tf from "@tensorflow/tfjs";
import type { BackendDiagnosis, BackendHost, GpuAdapterInfo } from "./types";
import { firstLine } from "../errors";
import { adapterDetail, wasmDetail, wasmThreadCount } from "./diagnosis";

export interface BackendProbes {
  /** navigator.gpu's adapter: undefined when the browser has WebGPU but no adapter; throws when it has no WebGPU. */
  webgpuAdapter(): Promise<GpuAdapterInfo | undefined>;
  /** Register tfjs' "webgpu" backend on navigator.gpu, with the project's kernels. */
  loadWebgpu(): Promise<unknown>;
  /** SharedArrayBuffer is usable: the page was served with COOP same-origin and COEP require-corp. */
  crossOriginIsolated(): boolean;
  /** A worker thread (Atomics.wait is refused on a page's main thread, and the pool's thread waits on it). */
  inWorker(): boolean;
  /** Initialise the wasm backend with `threads` (1: the single-threaded build); resolves to a description. */
  wasm(threads: number): Promise<string>;
}

const WEBGPU_FIX = "use Chrome or Edge 113+ (Windows, macOS, ChromeOS); on Linux start Chrome with --enable-unsafe-webgpu " +
  "(chrome://flags/#enable-unsafe-webgpu); or train on wasm";
const ISOLATION_FIX = "serve the page with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: " +
  "require-corp (npm run serve does); without them it runs on one thread";

export function backendHost(probes: Partial<BackendProbes> = {}): BackendHost {
  const p: BackendProbes = { ...defaultProbes(), ...probes };
  return {
    diagnose: async (name) => {
      if (name === "tensorflow") return { name, available: false, gpu: false, detail: "libtensorflow (tfjs-node) runs under Node only", fix: "in a browser use webgpu or wasm" };
      if (name === "webgpu") return diagnoseWebgpu(p);
      return diagnoseWasm(p);
    },
    loadWebgpu: () => p.loadWebgpu(),
  };
}

async function diagnoseWebgpu(p: BackendProbes): Promise<BackendDiagnosis> {
  let adapter: GpuAdapterInfo | undefined;
  try {
    adapter = await p.webgpuAdapter();
  } catch (e) {
    return { name: "webgpu", available: false, gpu: true, detail: `this browser has no WebGPU (${firstLine(e)})`, fix: WEBGPU_FIX };
  }
  if (adapter === undefined) {
    return { name: "webgpu", available: false, gpu: true, detail: "WebGPU found no GPU adapter (the GPU or its driver is blocklisted, or hardware acceleration is off)", fix: "turn on hardware acceleration in the browser's settings and see chrome://gpu; or train on wasm" };
  }
  const detail = adapterDetail(adapter);
  if (adapter.software === true) return { name: "webgpu", available: true, gpu: false, detail: `software (CPU-emulated) ${detail}`, fix: "the browser offers only a software WebGPU (SwiftShader): fine for testing; for speed use a GPU, or wasm" };
  return { name: "webgpu", available: true, gpu: true, detail };
}

async function diagnoseWasm(p: BackendProbes): Promise<BackendDiagnosis> {
  const wanted = wasmThreadCount();
  const why = !p.crossOriginIsolated() ? `the page is not cross-origin isolated, so no SharedArrayBuffer (${ISOLATION_FIX})`
    : !p.inWorker() ? "on the page's main thread, which may not wait for other threads (run the library in a Web Worker)" : undefined;
  try {
    const detail = await p.wasm(why === undefined ? wanted : 1);
    return { name: "wasm", available: true, gpu: false, detail: why === undefined || wanted === 1 ? detail : `${detail}; single-threaded: ${why}` };
  } catch (e) {
    return { name: "wasm", available: false, gpu: false, detail: `WebAssembly backend does not load: ${firstLine(e)}`, fix: "build the bundle again (npm run bundle): its .wasm files must be beside it" };
  }
}

function defaultProbes(): BackendProbes {
  return {
    webgpuAdapter: async () => {
      const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      if (gpu === undefined) throw new Error("navigator.gpu is missing");
      const adapter = await gpu.requestAdapter();
      if (adapter === null || adapter === undefined) return undefined;
      const device = await import("../kernels/webgpu/device");
      return device.describeAdapter(adapter as Parameters<typeof device.describeAdapter>[0]);
    },
    loadWebgpu,
    crossOriginIsolated: () => globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === "function",
    inWorker: () => typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function",
    wasm: initWasm,
  };
}

let webgpuLoaded: Promise<unknown> | undefined;
/** Register "webgpu" on navigator.gpu once. */
function loadWebgpu(): Promise<unknown> {
  webgpuLoaded ??= import("../kernels/webgpu/device").then((device) =>
    device.registerWebgpu((navigator as unknown as { gpu: { requestAdapter(o?: object): Promise<unknown> } }).gpu));
  return webgpuLoaded;
}

let described: string | undefined;
/** The wasm backend from the bundle's .wasm files: the threaded SIMD build with our GEMM pool on Web Workers when
 * `threads` > 1, else the single-threaded SIMD build; plus our training kernels. */
async function initWasm(threads: number): Promise<string> {
  if (described !== undefined) return described;
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  const { installWasmKernels } = await import("../kernels");
  wasm.setWasmPaths(new URL("./wasm/", import.meta.url).href);
  // tfjs picks the threaded build by itself where SharedArrayBuffer exists; XNNPACK's own pool gets one thread, as
  // under Node (its pool stalls on busy cores), and the products run on our pool instead.
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", threads > 1);
  wasm.setThreadsCount(1);
  installWasmKernels();
  const previous = tf.getBackend();
  if (!(await tf.setBackend("wasm"))) throw new Error("tf.setBackend('wasm') failed");
  let note = "";
  const pool = threads > 1 ? await (await import("../kernels/wasm-gemm")).startWasmGemmPool(threads).catch((e: unknown) => { note = ` (GEMM pool failed to start: ${firstLine(e)})`; return undefined; }) : undefined;
  if (previous !== undefined && previous !== "wasm") await tf.setBackend(previous);
  described = wasmDetail(threads > 1, pool, note);
  return described;
}
