// Fast matrix products for training on the wasm backend. Its BatchMatMul/_FusedMatMul reach XNNPACK (SIMD, threaded)
// only for ONE matrix with NO transposes; everything else — x·Wᵀ of every dense layer (weights are [out, in]), all the
// gradients (xᵀ·dy, dy·W) and the attention's per-head products — falls to a scalar loop about 10× slower
// (tfjs-backend-wasm src/cc/kernels/_FusedMatMul.cc, `slow_batch_matmul`). These kernels turn every call into fast
// calls: transposes are materialised (the rank-3 Transpose kernel is fast), a shared right-hand matrix takes all left
// rows at once, and batched products run matrix by matrix on views into the operands' memory (no slicing copies).
import * as tf from "@tensorflow/tfjs";
import { type Info, type WasmBackend, activationCode, sizeOf, withViews } from "./wasm-internals";
import { type GemmPool, gemmPoolFor } from "./wasm-gemm";

const BACKEND = "wasm";

type Kernel = (args: { inputs: Record<string, Info | undefined>; backend: WasmBackend; attrs: Record<string, unknown> }) => Info;
type Gemm = (...args: unknown[]) => void;

let installed = false;

/** Replace the wasm backend's BatchMatMul and _FusedMatMul (idempotent; call once tfjs-backend-wasm is loaded). */
export function installWasmMatMul(): void {
  if (installed) return;
  const batch = tf.getKernel("BatchMatMul", BACKEND), fused = tf.getKernel("_FusedMatMul", BACKEND), transpose = tf.getKernel("Transpose", BACKEND);
  if (batch === undefined || fused === undefined || transpose === undefined) throw new Error("tfjs-backend-wasm must be loaded before installWasmMatMul()");
  const slowBatch = batch.kernelFunc as unknown as Kernel, slowFused = fused.kernelFunc as unknown as Kernel;
  const transposeFn = transpose.kernelFunc as unknown as Kernel;
  let gemm: Gemm | undefined; // the C++ _FusedMatMul entry point, bound per backend instance in setup
  const setup = (backend: WasmBackend) => {
    batch.setupFunc?.(backend as never);
    fused.setupFunc?.(backend as never);
    gemm = backend.wasm.cwrap("_FusedMatMul", null, ["number", "array", "number", "number", "array", "number", "number", "number", "number", "number", "number", "number", "number"]) as Gemm;
  };

  const run = (args: Parameters<Kernel>[0], slow: Kernel): Info => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, Info | undefined> & { a: Info; b: Info };
    const { transposeA, transposeB, activation } = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
    const act = activationCode(activation ?? "linear");
    const pool = gemmPoolFor(args.backend);
    if (pool !== undefined && act === 0 && preluActivationWeights == null && a.dtype === "float32" && b.dtype === "float32" && (bias == null || (bias.shape.length === 1 && bias.shape[0] === b.shape[b.shape.length - (transposeB ? 2 : 1)]))) {
      return poolMatMul(args.backend, pool, a, b, transposeA, transposeB, bias ?? undefined);
    }
    const plain = !transposeA && !transposeB && sizeOf(a.shape.slice(0, -2)) === 1 && sizeOf(b.shape.slice(0, -2)) === 1;
    if (gemm === undefined || plain || act === undefined || preluActivationWeights != null || a.dtype !== "float32" || b.dtype !== "float32" || (bias != null && bias.shape.length !== 1)) {
      return slow(args); // already the fast path, or a case we leave to the library
    }
    return fastMatMul(args.backend, gemm, transposeFn, a, b, transposeA, transposeB, bias ?? undefined, act);
  };
  tf.unregisterKernel("BatchMatMul", BACKEND);
  tf.registerKernel({ kernelName: "BatchMatMul", backendName: BACKEND, setupFunc: setup as never, kernelFunc: ((args: Parameters<Kernel>[0]) => run(args, slowBatch)) as never });
  tf.unregisterKernel("_FusedMatMul", BACKEND);
  tf.registerKernel({ kernelName: "_FusedMatMul", backendName: BACKEND, setupFunc: setup as never, kernelFunc: ((args: Parameters<Kernel>[0]) => run(args, slowFused)) as never });
  // A backend that is already running was set up with the old kernels: bind ours to it now.
  if (tf.findBackend(BACKEND) !== null && tf.findBackend(BACKEND) !== undefined) setup(tf.findBackend(BACKEND) as unknown as WasmBackend);
  installed = true;
}

/** op(a)·op(b)'s sizes: batches (broadcast), M × K times K × N, and the output's batch shape. */
function productDims(a: Info, b: Info, tA: boolean, tB: boolean): { batchA: number; batchB: number; M: number; K: number; N: number; outBatch: number[] } {
  const ra = a.shape.length, rb = b.shape.length;
  const batchA = sizeOf(a.shape.slice(0, -2)), batchB = sizeOf(b.shape.slice(0, -2));
  const M = tA ? a.shape[ra - 1] : a.shape[ra - 2], K = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) throw new Error(`matMul: batch sizes ${batchA} and ${batchB} do not broadcast`);
  return { batchA, batchB, M, K, N, outBatch };
}

/** The product on the GEMM pool (lib/kernels/wasm-gemm.ts): operands read in place, transposed or not, all batches
 * in one call; a right-hand matrix shared by all batches makes one product with batch·M rows. */
function poolMatMul(backend: WasmBackend, pool: GemmPool, a: Info, b: Info, tA: boolean, tB: boolean, bias: Info | undefined): Info {
  const { batchA, batchB, M, K, N, outBatch } = productDims(a, b, tA, tB);
  const out = backend.makeOutput([...outBatch, M, N], "float32");
  const batch = Math.max(batchA, batchB);
  if (batch * M * N === 0) return out;
  const c = backend.dataIdMap.get(out.dataId).memoryOffset;
  if (K === 0) {
    const o = backend.typedArrayFromHeap(out), bv = bias === undefined ? undefined : backend.typedArrayFromHeap(bias);
    for (let i = 0; i < o.length; i++) o[i] = bv === undefined ? 0 : bv[i % N];
    return out;
  }
  const fold = batchB === 1 && !tA; // [batch·M, K] rows against one B
  pool.run({
    a: backend.dataIdMap.get(a.dataId).memoryOffset, rsa: tA ? 1 : K, csa: tA ? M : 1, strideA: batchA === 1 ? 0 : M * K,
    b: backend.dataIdMap.get(b.dataId).memoryOffset, rsb: tB ? 1 : N, csb: tB ? K : 1, strideB: batchB === 1 ? 0 : K * N,
    c, ldc: N, strideC: M * N, bias: bias === undefined ? 0 : backend.dataIdMap.get(bias.dataId).memoryOffset,
    batch: fold ? 1 : batch, m: fold ? batch * M : M, n: N, k: K,
  });
  return out;
}

/** [batch, r, c] → [batch, c, r] in a new buffer (the caller frees it). */
function swapLast(backend: WasmBackend, transposeFn: Kernel, x: Info, batch: number): Info {
  const r = x.shape[x.shape.length - 2], c = x.shape[x.shape.length - 1];
  const x3 = { dataId: x.dataId, shape: [batch, r, c], dtype: x.dtype }; // same buffer, 3-D shape (no copy)
  return transposeFn({ inputs: { x: x3 }, backend, attrs: { perm: [0, 2, 1] } });
}

function fastMatMul(backend: WasmBackend, gemm: Gemm, transposeFn: Kernel, a: Info, b: Info, tA: boolean, tB: boolean, bias: Info | undefined, act: number): Info {
  const { batchA, batchB, M, K, N, outBatch } = productDims(a, b, tA, tB);
  const temps: Info[] = [];
  const aN = tA ? swapLast(backend, transposeFn, a, batchA) : a;
  const bN = tB ? swapLast(backend, transposeFn, b, batchB) : b;
  if (tA) temps.push(aN);
  if (tB) temps.push(bN);
  const out = backend.makeOutput([...outBatch, M, N], "float32");
  try {
    const aOff = backend.dataIdMap.get(aN.dataId).memoryOffset, bOff = backend.dataIdMap.get(bN.dataId).memoryOffset;
    const outOff = backend.dataIdMap.get(out.dataId).memoryOffset;
    const biasId = bias !== undefined ? backend.dataIdMap.get(bias.dataId).id : 0;
    const F32 = 4; // bytes per float32
    if (batchB === 1) {
      // One right-hand matrix for all: every left batch is just more rows of one product.
      gemmOnViews(backend, gemm, aOff, batchA * M, K, bOff, N, outOff, biasId, act);
    } else {
      const batches = Math.max(batchA, batchB);
      for (let i = 0; i < batches; i++) {
        gemmOnViews(backend, gemm, aOff + (batchA === 1 ? 0 : i * M * K * F32), M, K, bOff + i * K * N * F32, N, outOff + i * M * N * F32, biasId, act);
      }
    }
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
  return out;
}

/** out[rows, N] = a[rows, K] · b[K, N] (+ bias, activation) through XNNPACK, on memory the caller owns. */
function gemmOnViews(backend: WasmBackend, gemm: Gemm, aOff: number, rows: number, K: number, bOff: number, N: number, outOff: number, biasId: number, act: number): void {
  withViews(backend, [[aOff, rows * K], [bOff, K * N], [outOff, rows * N]], ([aId, bId, outId]) => {
    gemm(aId, shapeBytes([1, rows, K]), 3, bId, shapeBytes([1, K, N]), 3, 0, 0, act, biasId, 0, 0, outId);
  });
}

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}
