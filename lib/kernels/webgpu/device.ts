// The WebGPU device TensorFlow.js runs on, whoever provides navigator.gpu (Dawn under Node, the browser itself): the
// limits asked of the adapter, buffers above them refused as out-of-memory, and the project's kernels installed.
import * as tf from "@tensorflow/tfjs";
import type { GpuAdapterInfo } from "../../platform/types";
import { installWebgpuKernels } from "./index";
import { installGemm } from "../gemm";

/** What an adapter says of itself (GPUAdapter, in Dawn or a browser). */
export type RawAdapter = { info?: Record<string, string | undefined>; limits?: Record<string, number>; isFallbackAdapter?: boolean };
type Adapter = { features: Set<string>; limits: Record<string, number>; info?: unknown; requestDevice(d: object): Promise<unknown> };
export type Gpu = { requestAdapter(o?: object): Promise<unknown> };

export const ADAPTER_LIMITS = ["maxBufferSize", "maxStorageBufferBindingSize", "maxComputeWorkgroupStorageSize", "maxStorageBuffersPerShaderStage"];

/** The adapter's name, the limits that matter here, and whether it is a CPU emulation (lavapipe, SwiftShader). */
export function describeAdapter(adapter: RawAdapter): GpuAdapterInfo {
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

// The limits tfjs-backend-webgpu's own factory asks of the adapter, plus storage buffers per shader: the device
// default is 8, and the library's multi-tensor kernels (AdamW, the clipping norm, AddN) take more tensors per launch,
// so fewer launches, when the adapter allows more. That one is capped at 16, what lavapipe offers and the tests run
// with: an adapter offering thousands would otherwise put every parameter into one untested shader.
const DEVICE_LIMITS = ["maxComputeWorkgroupStorageSize", "maxComputeWorkgroupsPerDimension", "maxStorageBufferBindingSize", "maxBufferSize",
  "maxComputeWorkgroupSizeX", "maxComputeInvocationsPerWorkgroup", "maxStorageBuffersPerShaderStage"];
export const STORAGE_BUFFERS_CAP = 16;

let lost: string | undefined;
let lostSignal: Promise<unknown> | undefined;
/** Why the WebGPU device was lost (a driver reset, the GPU taken away, the tab in the background too long), once it
 * was: every later call on the backend fails, and training says this instead of the failing kernel's error. A call
 * can fail before the device's `lost` promise settles, so this waits for it a little (up to `waitMs`). */
export async function webgpuDeviceLost(waitMs = 1000): Promise<string | undefined> {
  if (lost === undefined && lostSignal !== undefined) await Promise.race([lostSignal, new Promise((r) => setTimeout(r, waitMs))]);
  return lost;
}

/** Register tfjs' "webgpu" backend on `gpu` (the package's factory, save that the device asks for the adapter's
 * DEVICE_LIMITS, storage buffers capped) and install the project's kernels. */
export function registerWebgpu(gpu: Gpu): void {
  const { WebGPUBackend } = require("@tensorflow/tfjs-backend-webgpu") as { WebGPUBackend: new (device: unknown, info: unknown) => tf.KernelBackend };
  tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", async () => {
    const adapter = (await gpu.requestAdapter({ powerPreference: "high-performance" })) as Adapter;
    const requiredFeatures = ["timestamp-query", "bgra8unorm-storage"].filter((f) => adapter.features.has(f));
    const requiredLimits = Object.fromEntries(DEVICE_LIMITS.filter((k) => adapter.limits[k] !== undefined).map((k) => [k, adapter.limits[k]]));
    requiredLimits.maxStorageBuffersPerShaderStage = Math.min(requiredLimits.maxStorageBuffersPerShaderStage ?? 8, STORAGE_BUFFERS_CAP);
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    refuseOversizedBuffers(device as GpuDevice);
    lost = undefined;
    lostSignal = (device as { lost?: Promise<{ message?: string }> }).lost?.then((info) => (lost = info.message || "the GPU device was lost"));
    return new WebGPUBackend(device, adapter.info);
  }, 3);
  installWebgpuKernels(); // fused kernels + AddN fix
  installGemm(); // our GEMM for matmuls if BERTQA_GEMM=1
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
