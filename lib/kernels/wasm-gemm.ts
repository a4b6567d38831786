// Matrix products for the threaded wasm backend on a pool of threads of our own. The GEMM (wasm-gemm.c, built into
// wasm-gemm-binary.ts) runs on tfjs' shared wasm heap in place: operands are read through strides (transposes and
// batched heads need no copies), C is written where tfjs allocated it. The main thread and the pool's workers take
// output tiles from one atomic counter, so a descheduled worker delays a product by at most the tile it holds; small
// products run on the calling thread alone. Every element's sum runs in the same order whatever the split, so the
// result does not depend on the thread count.
import * as tf from "@tensorflow/tfjs";
import { allowRelaxedSimd, env, startPoolWorker, type PoolWorker } from "../platform";
import { GEMM_FMA_WASM, GEMM_SIMD_WASM } from "./wasm-gemm-binary";

interface Units {
  SLOT: Record<"GEN" | "STOP" | "NEXT" | "DONE" | "TOTAL" | "A" | "RSA" | "CSA" | "B" | "RSB" | "CSB" | "C" | "LDC" | "BIAS" | "M" | "N" | "K" | "SA" | "SB" | "SC" | "MC" | "NC" | "UNITS_M" | "UNITS_N" | "FAILED"
    | "KIND" | "OP" | "P0" | "ROWS" | "COLS" | "RPU" | "EPS" | "SIZE", number>;
  TAG_SHIFT: number;
  TAG_MASK: number;
  runUnits(ctrl: Int32Array, tag: number, code: GemmCode, pack: number): void;
}
const { SLOT, TAG_SHIFT, TAG_MASK, runUnits } = require("./wasm-gemm-units.cjs") as Units; // shared with the workers

// tslab type-checks notebooks without the DOM library, where the WebAssembly namespace is undeclared: the little of it
// used here, typed here.
/** A WebAssembly.Memory: tfjs' wasm heap. */
export interface WasmMemory { buffer: ArrayBuffer | SharedArrayBuffer }
type WasmCode = object; // a compiled WebAssembly.Module (shareable with workers)
const WA = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean; Module: new (b: Uint8Array) => WasmCode; Instance: new (m: WasmCode, imports: object) => { exports: Record<string, unknown> } } }).WebAssembly;

/** The module's exports: one product tile, rows [r0, r1) of a row kernel, units of attention (wasm-gemm.c). */
interface GemmCode {
  gemm_tile(a: number, rsa: number, csa: number, b: number, rsb: number, csb: number, c: number, ldc: number, bias: number, m: number, n: number, k: number, pack: number): void;
  row_kernel(op: number, p0: number, p1: number, p2: number, p3: number, p4: number, p5: number, cols: number, eps: number, r0: number, r1: number, unit: number): void;
  attention_units(backward: number, args: number, u0: number, u1: number, scratch: number): void;
}

const KC = 256, NC_MAX = 256, MR = 4; // wasm-gemm.c's depth block and rows per micro-tile; columns per tile
/** Each thread's scratch: a tile's packed B (KC × NC_MAX floats) and one packed panel of A, then attention's two blocks
 * of scores (wasm-gemm.c's ATTN_QB × ATTN_MAX_T each). */
const PACK_BYTES = (KC * (NC_MAX + MR) + 2 * 64 * 512) * 4;
const MC_TARGET = 96; // rows per tile: 24 of the kernel's 4-row micro-tiles, ~0.3 ms of work at BERT's widths
const MAX_UNITS = (1 << TAG_SHIFT) - 1;
/** Products below this many flops run on the calling thread: waking a worker costs ~50 µs, ~1-2 MFLOP of work. */
export const PARALLEL_MIN_FLOPS = 1 << 22;
/** Row kernels below this many elements run on the calling thread (~50 µs of GELU). */
const PARALLEL_MIN_ELEMENTS = 1 << 15;

/** Rows per unit of a row kernel: 64 (LayerNorm's γ/β partial sums: one row of 2·cols per 64 rows, as on WebGPU). */
export function rowBlock(rows: number): number {
  return Math.max(64, Math.ceil(rows / MAX_UNITS));
}

/** C[batch][M × N] = A[batch](M × K) · B[batch](K × N) (+ bias[N]); heap byte addresses, strides in floats. */
export interface GemmJob {
  a: number; rsa: number; csa: number; strideA: number; // A(i, k) at a + 4·(batch·strideA + i·rsa + k·csa)
  b: number; rsb: number; csb: number; strideB: number; // B(k, j) at b + 4·(batch·strideB + k·rsb + j·csb)
  c: number; ldc: number; strideC: number; // C(i, j) at c + 4·(batch·strideC + i·ldc + j)
  bias: number; // 0: none
  batch: number; m: number; n: number; k: number;
}

/** wasm-gemm.c's row kernels (its enum), each over rows of a [rows × cols] matrix. */
export const ROW_OP = { gelu: 0, geluGrad: 1, addLayerNorm: 2, rowStats: 3, layerNormGrad: 4, layerNormParamGrad: 5, dropout: 6, adamw: 7, columnSums: 8, sumSquares: 9 } as const;

/** One row kernel: `tensors` are heap byte addresses in the order wasm-gemm.c's row_kernel takes them (0: none; the
 * dropout's key and threshold take two of the places). */
export interface RowJob { op: number; tensors: number[]; rows: number; cols: number; eps?: number }

export interface GemmPool {
  threads: number; // the calling thread plus the workers
  fma: boolean; // relaxed SIMD multiply-add (else SIMD128 multiply, then add)
  run(job: GemmJob): void;
  /** Run a row kernel in blocks of `rowBlock(rows)` rows; returns the number of blocks (partial sums' rows). */
  rows(job: RowJob): number;
  /** wasm-gemm.c's attention_units over `units` (its arguments at heap address `args`); `flops` decides the threads. */
  attention(args: number, units: number, backward: boolean, flops: number): void;
  dispose(): void;
}

/** The GEMM module: relaxed SIMD FMA where this engine accepts it (Node 20 behind a V8 flag), else SIMD128. */
function compileGemm(shared: boolean, fma: boolean): { module: WasmCode; fma: boolean } {
  const bytes = (b64: string) => {
    const buf = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    if (shared) sharedMemoryImport(buf);
    return buf;
  };
  if (fma) {
    const f = bytes(GEMM_FMA_WASM);
    if (!WA.validate(f)) allowRelaxedSimd();
    if (WA.validate(f)) return { module: new WA.Module(f), fma: true };
  }
  return { module: new WA.Module(bytes(GEMM_SIMD_WASM)), fma: false };
}

/** The module imports env.memory as unshared (limits flag 1); tfjs' threaded heap is shared (flag 3). */
function sharedMemoryImport(buf: Uint8Array): void {
  const tag = [0x06, ...Array.from("memory", (c) => c.charCodeAt(0)), 0x02, 0x01]; // name length, "memory", kind memory, limits flag
  const at = buf.findIndex((_, i) => tag.every((b, k) => buf[i + k] === b));
  if (at < 0) throw new Error("wasm-gemm: memory import not found");
  buf[at + 8] = 0x03;
}

/**
 * Start a pool of `threads` (the caller's thread included) over `memory`, tfjs' wasm heap; `malloc` allocates in it
 * (each thread's packing buffer). Workers do not keep Node alive.
 */
export async function startGemmPool(memory: WasmMemory, malloc: (bytes: number) => number, free: (ptr: number) => void, threads: number, opts: { fma?: boolean } = {}): Promise<GemmPool> {
  const shared = memory.buffer instanceof SharedArrayBuffer;
  if (!shared && threads > 1) throw new Error("wasm-gemm: threads need the threaded build's shared heap");
  const { module, fma } = compileGemm(shared, opts.fma ?? env.BERTQA_WASM_FMA !== "0");
  const code = new WA.Instance(module, { env: { memory } }).exports as unknown as GemmCode;
  const control = new SharedArrayBuffer(SLOT.SIZE * 4);
  const ctrl = new Int32Array(control);
  const packs = Array.from({ length: threads }, () => malloc(PACK_BYTES));
  const workers = await Promise.all(packs.slice(1).map((pack) => startWorker(module, memory, control, pack)));
  let jobs = 0; // GEN takes each parallel job's number: never a value a worker last saw, so none sleeps through a job
  /** Write a job's slots, wake the workers when `parallel`, take units too, and wait until all `total` are done. */
  const dispatch = (slots: [number, number][], total: number, parallel: boolean, what: () => string) => {
    const tag = ++jobs & TAG_MASK;
    for (const [slot, v] of [...slots, [SLOT.TOTAL, total], [SLOT.DONE, 0], [SLOT.FAILED, 0]]) ctrl[slot] = v | 0; // addresses above 2 GB wrap to negative int32; read back with >>> 0
    Atomics.store(ctrl, SLOT.NEXT, ((tag << TAG_SHIFT) | total) | 0); // publishes the job
    if (workers.length > 0 && total > 1 && parallel) {
      Atomics.store(ctrl, SLOT.GEN, jobs);
      Atomics.notify(ctrl, SLOT.GEN);
    }
    runUnits(ctrl, tag, code, packs[0]);
    for (let d = Atomics.load(ctrl, SLOT.DONE); d < total; d = Atomics.load(ctrl, SLOT.DONE)) Atomics.wait(ctrl, SLOT.DONE, d);
    if (Atomics.load(ctrl, SLOT.FAILED) !== 0) throw new Error(`wasm-gemm: a unit of ${what()} trapped (operands outside the heap?)`);
  };
  const run = (job: GemmJob) => {
    const t = tiles(job, threads), s = SLOT;
    dispatch([[s.KIND, 0], [s.A, job.a], [s.RSA, job.rsa], [s.CSA, job.csa], [s.B, job.b], [s.RSB, job.rsb], [s.CSB, job.csb], [s.C, job.c], [s.LDC, job.ldc],
      [s.BIAS, job.bias], [s.M, job.m], [s.N, job.n], [s.K, job.k], [s.SA, job.strideA], [s.SB, job.strideB], [s.SC, job.strideC], [s.MC, t.mc], [s.NC, t.nc],
      [s.UNITS_M, t.unitsM], [s.UNITS_N, t.unitsN]], t.total, 2 * job.batch * job.m * job.n * job.k >= PARALLEL_MIN_FLOPS,
    () => `the ${job.batch}×${job.m}×${job.k}·${job.k}×${job.n} product`);
  };
  const eps = new Float32Array(control, 4 * SLOT.EPS, 1);
  const rows = (job: RowJob) => {
    const rpu = rowBlock(job.rows), total = Math.ceil(job.rows / rpu), s = SLOT;
    eps[0] = job.eps ?? 0;
    const tensors = Array.from({ length: 6 }, (_, i): [number, number] => [s.P0 + i, job.tensors[i] ?? 0]);
    dispatch([[s.KIND, 1], [s.OP, job.op], ...tensors, [s.ROWS, job.rows], [s.COLS, job.cols], [s.RPU, rpu]], total, job.rows * job.cols >= PARALLEL_MIN_ELEMENTS,
      () => `row kernel ${job.op} over ${job.rows}×${job.cols}`);
    return total;
  };
  const attention = (args: number, units: number, backward: boolean, flops: number) => {
    dispatch([[SLOT.KIND, 2], [SLOT.OP, backward ? 1 : 0], [SLOT.P0, args]], units, flops >= PARALLEL_MIN_FLOPS, () => `attention${backward ? "'s gradient" : ""} over ${units} units`);
  };
  const dispose = () => {
    Atomics.store(ctrl, SLOT.STOP, 1);
    Atomics.add(ctrl, SLOT.GEN, 1);
    Atomics.notify(ctrl, SLOT.GEN);
    for (const w of workers) void w.terminate();
    for (const p of packs) free(p);
  };
  return { threads, fma, run, rows, attention, dispose };
}

function startWorker(module: WasmCode, memory: WasmMemory, control: SharedArrayBuffer, pack: number): Promise<PoolWorker> {
  return startPoolWorker({ gemmModule: module, memory, control, pack }); // a worker_thread, or a Web Worker in a page
}

/**
 * Split C into tiles: ~MC_TARGET rows (a multiple of the kernel's 4 rows, balanced over the rows) × up to NC_MAX columns
 * per batch; with `threads` > 1, finer until each thread has 3 (the weight gradients, 256 × 256 over 2048 tokens,
 * made 3 tiles for 2 threads: one idled a third of the product). Not finer: each tile packs its own panels of B, and
 * halving 88 × 256 tiles measured 48 → 44 GFLOP/s per core. Any split gives the same bits.
 */
export function tiles(job: Pick<GemmJob, "batch" | "m" | "n">, threads = 1): { mc: number; nc: number; unitsM: number; unitsN: number; total: number } {
  const mBlocks = Math.max(1, Math.ceil(job.m / MC_TARGET));
  let mc = Math.min(job.m, Math.ceil(job.m / mBlocks / 4) * 4);
  const nBlocks = Math.max(1, Math.ceil(job.n / NC_MAX));
  let nc = Math.min(NC_MAX, Math.ceil(job.n / nBlocks / 8) * 8);
  const count = () => job.batch * Math.ceil(job.m / mc) * Math.ceil(job.n / nc);
  while (threads > 1 && count() < 3 * threads) {
    if (mc > 16 && 4 * mc >= nc) mc = Math.ceil(mc / 8) * 4; // halved, still a multiple of 4
    else if (nc > 64) nc = Math.ceil(nc / 16) * 8;
    else break;
  }
  const unitsM = Math.ceil(job.m / mc), unitsN = Math.ceil(job.n / nc);
  const total = job.batch * unitsM * unitsN;
  if (total > MAX_UNITS) throw new Error(`wasm-gemm: ${total} tiles, more than ${MAX_UNITS}`);
  return { mc, nc, unitsM, unitsN, total };
}

// The pool of the running wasm backend (one backend per process in practice); undefined: products go to XNNPACK.
let active: { backend: object; pool: GemmPool } | undefined;

/** Route `backend`'s float32 products through `pool` (undefined: back to XNNPACK), disposing a previous pool. */
export function setGemmPool(backend: object, pool: GemmPool | undefined): void {
  if (active !== undefined && active.pool !== pool) active.pool.dispose();
  active = pool === undefined ? undefined : { backend, pool };
}

/** The pool serving `backend`, if any. */
export function gemmPoolFor(backend: object): GemmPool | undefined {
  return active !== undefined && active.backend === backend ? active.pool : undefined;
}

/** True when the active backend is wasm with the pool: its products read transposed operands in place, so callers
 * need not copy a transpose out first (the single-threaded build's XNNPACK products do need that), and the row
 * kernels of wasm-fused.ts can run. */
export function wasmPoolActive(): boolean {
  return tf.getBackend() === "wasm" && gemmPoolFor(tf.backend()) !== undefined;
}

/** Start the pool of `threads` on the running threaded wasm backend's heap and route its float32 products there. */
export async function startWasmGemmPool(threads: number): Promise<GemmPool> {
  const backend = tf.findBackend("wasm") as unknown as { wasm: { wasmMemory?: WasmMemory; _malloc(n: number): number; _free(p: number): void } } | undefined;
  const memory = backend?.wasm.wasmMemory;
  if (backend === undefined || memory === undefined || !(memory.buffer instanceof SharedArrayBuffer)) throw new Error("the wasm backend has no shared heap (not the threaded build)");
  const pool = await startGemmPool(memory, (n) => backend.wasm._malloc(n) >>> 0, (p) => backend.wasm._free(p), threads);
  setGemmPool(backend, pool);
  return pool;
}
