// What the WebGPU kernel files beside this one share: the few tfjs-backend-webgpu internals they use, the workgroup
// sum in WGSL, how workgroups are dealt out to tensors, and `record`, which puts a pipeline of our own into the
// backend's command stream.
//
// How a kernel runs here: like the backend's own programs (dist/*_webgpu.js), an object with variableNames (the
// input arrays, bound read-only in that order), outputShape (the one output, the array `result`), workgroupSize,
// dispatch and getUserCode() (WGSL; the backend adds bindings, `uniforms` with every input's shape, and the entry
// point that calls `main`), run by backend.runWebGPUProgram(program, inputs, dtype, extraUniforms). Programs have one
// output, so AdamW and attention, which write two or three tensors, record their own pipelines into the backend's command
// stream instead (`record`).
//
// Only types are declared here (no import of the optional package): it loads when backend.ts registers the backend.
import * as tf from "@tensorflow/tfjs";

export const BACKEND = "webgpu";

// --- the few backend internals used (tfjs-backend-webgpu 4.22 dist/backend_webgpu.js) -------------------------------

export interface Info { dataId: object; shape: number[]; dtype: tf.DataType }
export interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size?: boolean; // adds uniforms.size = output size
  uniforms?: string; // extra uniform fields, e.g. "eps : f32,"
  getUserCode(): string;
}
export type Uniform = { type: "float32" | "int32" | "uint32"; data: number[] };
/* eslint-disable @typescript-eslint/no-explicit-any */
export type Gpu = any; // GPUDevice, GPUComputePassEncoder, ... (no @webgpu/types in this project)
export interface WebgpuBackend {
  device: Gpu;
  commandEncoder: Gpu;
  computePassEncoder: Gpu;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
  tensorMap: Map<object, { values: unknown }>; // values: a host copy, kept by read() beside the GPU buffer
  runWebGPUProgram(program: Program, inputs: Info[], dtype: tf.DataType, uniforms?: Uniform[]): Info;
  makeTensorInfo(shape: number[], dtype: tf.DataType): Info;
  uploadToGPU(dataId: object): void;
  tensorToBinding(t: Info): Gpu;
  makeUniforms(u: Uniform[]): Gpu;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  disposeData(dataId: object): boolean;
  // Profiling (tf.profile): programs push {name, query} here while a timer is active; one timestamp query set.
  activeTimers: { name: string; query: Promise<number> }[] | null;
  supportTimestampQuery: boolean;
  querySet: Gpu;
  querySetCount: number;
  getQueryTime(): Promise<number>;
}
export type Args = { inputs: Record<string, Info>; backend: WebgpuBackend; attrs: Record<string, unknown> };

export const flat = (shape: number[], wg = 128): Pick<Program, "dispatchLayout" | "dispatch" | "workgroupSize"> => ({
  dispatchLayout: { x: shape.map((_, i) => i) },
  dispatch: [Math.ceil(shape.reduce((a, b) => a * b, 1) / wg), 1, 1],
  workgroupSize: [wg, 1, 1],
});

// --- shared WGSL ------------------------------------------------------------------------------------------------------

/** Workgroup-wide sum of `v` over WG threads (tree in shared memory; every thread gets the total). */
export const sumDecl = (wg: number) => `
var<workgroup> red : array<f32, ${wg}>;
fn workgroupSum(v : f32, tid : u32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}`;

// --- dealing workgroups -----------------------------------------------------------------------------------------------

/** Workgroups dealt out to the tensors of one launch in order, counts[j] to the j-th: where each one's run starts
 * (the shader's start uniforms) and how many in all. */
export function deal(counts: number[]): { starts: number[]; groups: number } {
  const starts: number[] = [];
  let groups = 0;
  for (const c of counts) { starts.push(groups); groups += c; }
  return { starts, groups };
}

/** A dispatch of `groups` workgroups as [x, y], y > 1 only past the device's per-dimension limit; the shader finds
 * its workgroup as wid.y·x + wid.x and returns past `groups`. */
export function grid(backend: WebgpuBackend, groups: number): [number, number] {
  const maxX = backend.device.limits.maxComputeWorkgroupsPerDimension as number;
  return groups <= maxX ? [groups, 1] : [maxX, Math.ceil(groups / maxX)];
}

// --- record: a pipeline of our own in the backend's command stream ----------------------------------------------------

const pipelines = new WeakMap<object, Map<string, Gpu>>(); // device → label → compute pipeline

/** After a kernel wrote `tensors` in place: drop the host copies that reading them back left beside their GPU buffers
 * (read() keeps one and returns it from then on), which are now stale. A checkpoint read every parameter between two
 * updates, and the model saved at the end was the checkpoint's. */
export function wroteInPlace(backend: WebgpuBackend, tensors: Info[]): void {
  for (const t of tensors) backend.tensorMap.get(t.dataId)!.values = null;
}

/** Record one dispatch of `wgsl` (entry point main; bindings 0.. = `tensors` in order, outputs first, then one
 * uniform buffer) into the backend's command stream exactly as backend.recordAndSubmit records its programs, so
 * ordering with other kernels is kept. For kernels with more than one output, which WebGPUProgram cannot express. */
export function record(backend: WebgpuBackend, label: string, wgsl: string, tensors: Info[], uniforms: Uniform[], dispatch: [number, number]): void {
  for (const t of tensors) backend.uploadToGPU(t.dataId);
  const device = backend.device;
  let cache = pipelines.get(device);
  if (cache === undefined) pipelines.set(device, (cache = new Map()));
  let pipeline = cache.get(label);
  if (pipeline === undefined) {
    pipeline = device.createComputePipeline({ layout: "auto", label, compute: { module: device.createShaderModule({ code: wgsl, label }), entryPoint: "main" } });
    cache.set(label, pipeline);
  }
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [...tensors.map((t, i) => ({ binding: i, resource: backend.tensorToBinding(t) })),
    { binding: tensors.length, resource: backend.makeUniforms(uniforms) }] });
  for (const t of tensors) backend.commandQueueOwnedIds.add(t.dataId);
  backend.ensureCommandEncoderReady();
  // Under tf.profile with timestamp queries, a pass of its own with GPU timestamps, as the backend times its programs.
  const timed = backend.activeTimers != null && backend.supportTimestampQuery;
  if (timed) {
    backend.endComputePassEncoder();
    backend.querySet ??= device.createQuerySet({ type: "timestamp", count: backend.querySetCount });
    backend.computePassEncoder = backend.commandEncoder.beginComputePass({ timestampWrites: { querySet: backend.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
  } else if (!backend.computePassEncoder) backend.computePassEncoder = backend.commandEncoder.beginComputePass({});
  backend.computePassEncoder.setPipeline(pipeline);
  backend.computePassEncoder.setBindGroup(0, bindGroup);
  backend.computePassEncoder.dispatchWorkgroups(dispatch[0], dispatch[1], 1);
  backend.dispatchCountInPass++;
  if (timed) {
    backend.endComputePassEncoder();
    backend.activeTimers!.push({ name: label, query: backend.getQueryTime() });
  } else if (tf.env().getNumber("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") <= backend.dispatchCountInPass) {
    backend.endComputePassEncoder();
    backend.submitQueue();
  }
}
