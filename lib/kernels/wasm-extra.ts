// Kernels the wasm backend lacks or runs badly for training, written in TypeScript on the wasm heap:
// - UnsortedSegmentSum: absent from tfjs-backend-wasm 4.22, and it is the gradient of tf.gather (embedding lookups).
// - Transpose of rank ≥ 5: the C++ kernel has fast paths up to rank 4 only; BERT's fused QKV split transposes a
//   [B, T, 3, heads, d] tensor, which took ~450× longer than the same bytes at rank 4.
// - Transpose of a big rank-2 block (weight gradients transpose [tokens, features] activations): the C++ loop walks
//   the output with a stride of a whole row and misses cache on every read; here it goes tile by tile.
// - Sum over leading axes (every bias gradient sums [tokens, features] over tokens): the library transposes the
//   input first so the summed axis is innermost; here the rows are added into one accumulator row instead (on the
//   GEMM pool's threads, when it runs, in blocks of rows).
// - BertqaAdamW (lib/fused.ts's adamwUpdate): one pass over p, m, v, g instead of ~14 kernels per parameter,
//   gradient clipping included (g·gradScale), so no clipped copy of the gradients is stored; on the GEMM pool's threads
//   in SIMD (wasm-gemm.c) when it runs, else in JS; both in the composite's float32 operations, so equal to it.
//   BertqaAdamWMulti (lib/fused.ts's adamwUpdates, registered with the pool's kernels by wasm-fused.ts) does the same
//   in place, every parameter of a step in one call: no new p, m, v per parameter (three copies of the word embeddings
//   at once, 94 MB for mini, 281 MB for base).
// - Identity (tf.clone, and every tensor the engine saves for the backward pass): the library's copies the buffer; here
//   the output shares it (reference counted, as Reshape and the cpu backend's Identity do), since no kernel writes its
//   inputs. A training step of mini at 16 × 128 saved ~130 full-size copies, ~230 MB of copying, and held them all.
// - GatherV2 of rows (embedding lookups): the library's kernel loops element by element (~10× slower than copying rows,
//   which is why lib/bert.ts used to read the whole table out of the heap, 31 MB for mini and 94 MB for base every
//   forward pass, and copy rows in JS); here each row is one copy inside the heap.
// - Slice (and so SplitV): the library's JS kernel first copies the WHOLE input out of the heap (readSync) for every
//   slice, so splitting a tensor into G parts copies it G times; here each slice copies only its own elements.
import * as tf from "@tensorflow/tfjs";
import { type Info, type WasmBackend, sizeOf } from "./wasm-internals";
import { ADAMW } from "./webgpu"; // the kernel's name (that module declares names and types only until webgpu loads)
import { ROW_OP, gemmPoolFor, rowBlock } from "./wasm-gemm";

const BACKEND = "wasm";
let installed = false;

type Args = { inputs: Record<string, Info>; backend: WasmBackend; attrs: Record<string, unknown> };

/** Register UnsortedSegmentSum and the rank ≥ 5 Transpose for wasm (idempotent). */
export function installWasmExtraKernels(): void {
  if (installed) return;
  if (tf.getKernel("UnsortedSegmentSum", BACKEND) === undefined) {
    tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName: BACKEND, kernelFunc: unsortedSegmentSum as never });
  }
  override("Slice", (args, stock) => (args.inputs.x.dtype === "string" ? stock(args) : heapSlice(args)));
  override("SplitV", (args) => splitV(args)); // the library's calls its own Slice, not the registry's
  override("GatherV2", (args, stock) => gatherRows(args) ?? stock(args));
  override("Identity", (args, stock) => (args.inputs.x.dtype === "string" ? stock(args) : sharedIdentity(args)));
  if (tf.getKernel(ADAMW, BACKEND) === undefined) tf.registerKernel({ kernelName: ADAMW, backendName: BACKEND, kernelFunc: adamw as never });
  override("Sum", (args, stock) => leadingSum(args) ?? stock(args));
  if (tf.getKernel("Transpose", BACKEND) === undefined) throw new Error("tfjs-backend-wasm must be loaded before installWasmExtraKernels()");
  override("Transpose", (args, stock) => {
    const { shape, perm } = simplifyPermutation(args.inputs.x.shape, args.attrs.perm as number[]);
    const x = args.inputs.x, outShape = (args.attrs.perm as number[]).map((a) => x.shape[a]);
    if (perm.length === 2 && x.dtype === "float32" && sizeOf(shape) >= TILED_MIN) return tiledTranspose2d(args.backend, x, outShape, shape[0], shape[1]);
    if (perm.length <= 4) return stock(args);
    return heapTranspose(args.backend, x, outShape, shape, perm);
  });
  installed = true;
}

/** Replace the library's wasm kernel `name` (if registered) by `f`, which may call the library's (`stock`). */
function override(name: string, f: (args: Args, stock: (args: Args) => Info) => Info | Info[]): void {
  const k = tf.getKernel(name, BACKEND);
  if (k === undefined) return;
  const stock = k.kernelFunc as unknown as (args: Args) => Info;
  tf.unregisterKernel(name, BACKEND);
  tf.registerKernel({ ...k, kernelFunc: ((args: Args) => f(args, stock)) as never });
}

const TILED_MIN = 4096; // below this the C++ loop's data fits in cache anyway
const TILE = 32;

/** [R, C] → [C, R] tile by tile, so reads and writes both stay within a few cache lines. */
function tiledTranspose2d(backend: WasmBackend, x: Info, outShape: number[], R: number, C: number): Info {
  const out = backend.makeOutput(outShape, x.dtype);
  const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out);
  for (let r0 = 0; r0 < R; r0 += TILE) {
    const r1 = Math.min(R, r0 + TILE);
    for (let c0 = 0; c0 < C; c0 += TILE) {
      const c1 = Math.min(C, c0 + TILE);
      for (let r = r0; r < r1; r++) for (let c = c0, s = r * C + c0; c < c1; c++, s++) dst[c * R + r] = src[s];
    }
  }
  return out;
}

/** Rows of x (axis 0, no batch dimensions, int32 indices) copied inside the heap; undefined: not that case. */
function gatherRows({ inputs, backend, attrs }: Args): Info | undefined {
  const { x, indices } = inputs;
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  if (axis !== 0 || ((attrs.batchDims as number | undefined) ?? 0) !== 0 || indices.dtype !== "int32" || x.dtype === "string" || x.dtype === "complex64") return undefined;
  const rows = x.shape[0], width = sizeOf(x.shape.slice(1));
  const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out), idx = backend.typedArrayFromHeap(indices);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    if (!(r >= 0 && r < rows)) {
      backend.disposeData(out.dataId);
      throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
    }
    dst.set(src.subarray(r * width, (r + 1) * width), i * width);
  }
  return out;
}

/** The input's buffer under a second reference: freed when both tensors are. */
function sharedIdentity({ inputs: { x }, backend }: Args): Info {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Sum of float32 `x` over its leading axes (bias gradients) as rows added into one row; undefined: not that case.
 * With the pool, blocks of rows are summed in SIMD on its threads (wasm-gemm.c's COLUMN_SUMS) and the blocks' sums
 * added here; without, row by row here. Both in float64 across rows or blocks. */
function leadingSum({ inputs, backend, attrs }: Args): Info | undefined {
  const x = inputs.x;
  if (x.dtype !== "float32" || x.shape.length < 2) return undefined;
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape).sort((a, b) => a - b);
  if (axes.length >= x.shape.length || axes.some((a, i) => a !== i)) return undefined;
  const rows = sizeOf(x.shape.slice(0, axes.length)), inner = sizeOf(x.shape.slice(axes.length));
  const keep = attrs.keepDims === true;
  const out = backend.makeOutput(keep ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length), "float32");
  const pool = gemmPoolFor(backend);
  let src: Info = x, n = rows;
  if (pool !== undefined && rows > rowBlock(rows) && inner > 0) { // the blocks' sums: [blocks, inner]
    src = backend.makeOutput([Math.ceil(rows / rowBlock(rows)), inner], "float32");
    const at = (t: Info) => backend.dataIdMap.get(t.dataId).memoryOffset;
    n = pool.rows({ op: ROW_OP.columnSums, tensors: [at(x), at(src)], rows, cols: inner });
  }
  const from = backend.typedArrayFromHeap(src), dst = backend.typedArrayFromHeap(out);
  const acc = new Float64Array(inner);
  for (let r = 0, s = 0; r < n; r++, s += inner) for (let j = 0; j < inner; j++) acc[j] += from[s + j];
  dst.set(acc);
  if (src !== x) backend.disposeData(src.dataId);
  return out;
}

/** torch.optim.AdamW's step for one parameter: inputs p, m, v, g and optionally gradScale (a scalar); outputs
 * [p', m', v'] (attrs as lib/fused.ts's AdamWUpdate). */
function adamw({ inputs, backend, attrs }: Args): Info[] {
  const { p, m, v, g, gradScale } = inputs;
  const outs = [p, m, v].map((t) => backend.makeOutput(t.shape, "float32"));
  const a = attrs as Record<"lr" | "beta1" | "beta2" | "eps" | "weightDecay" | "stepSize" | "bc2Sqrt", number>;
  adamwRun(backend, [p, m, v, g], outs, adamwConstants(a, 1 - a.lr * a.weightDecay), gradScale);
  return outs;
}

/** Inputs p0, m0, v0, g0, p1, … and optionally gradScale; attrs the shared constants and decayFactors (1 − lr·wd per
 * parameter), as on WebGPU: every p, m, v updated in place (the caller checked no other tensor shares them). Only
 * while the GEMM pool does the products: XNNPACK's keep each weight packed by tensor, so after an in-place update the
 * single-threaded build's products would use the old weights. */
export function adamwMulti({ inputs, backend, attrs }: Args): Info[] {
  const a = attrs as Record<"beta1" | "beta2" | "eps" | "stepSize" | "bc2Sqrt", number> & { decayFactors: number[] };
  a.decayFactors.forEach((decay, i) => {
    const [p, m, v, g] = ["p", "m", "v", "g"].map((x) => inputs[`${x}${i}`]);
    adamwRun(backend, [p, m, v, g], [p, m, v], adamwConstants(a, decay), inputs.gradScale);
  });
  return [];
}

/** The composite's scalars, float32 as tf makes them: β1, 1 − β1, β2, 1 − β2, 1 − lr·wd, stepSize, √(1 − β2ᵗ), eps. */
function adamwConstants(a: Record<"beta1" | "beta2" | "eps" | "stepSize" | "bc2Sqrt", number>, decay: number): Float32Array {
  return Float32Array.of(a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, decay, a.stepSize, a.bc2Sqrt, a.eps);
}

/** p, m, v, g → outs (p', m', v'; the inputs themselves to update in place): wasm-gemm.c's ADAMW row kernel on the
 * pool, SIMD, when it runs, else the same operations in JS. */
function adamwRun(backend: WasmBackend, [p, m, v, g]: Info[], outs: Info[], k: Float32Array, gradScale: Info | undefined): void {
  const pool = gemmPoolFor(backend);
  if (pool !== undefined) {
    const args = backend.makeOutput([k.length + 3], "float32"), at = (t: Info) => backend.dataIdMap.get(t.dataId).memoryOffset;
    const view = backend.typedArrayFromHeap(args) as Float32Array;
    view.set(k);
    new Int32Array(view.buffer, view.byteOffset + 4 * k.length, 3).set(outs.map(at)); // struct adamw_args' p', m', v'
    const cols = p.shape[p.shape.length - 1] ?? 1;
    try {
      if (sizeOf(p.shape) > 0) pool.rows({ op: ROW_OP.adamw, tensors: [p, m, v, g, args].map(at).concat(gradScale === undefined ? 0 : at(gradScale)), rows: sizeOf(p.shape) / cols, cols });
    } finally {
      backend.disposeData(args.dataId);
    }
    return;
  }
  const [P, M, V, G] = [p, m, v, g].map((t) => backend.typedArrayFromHeap(t)); // views made after the allocations
  const [P1, M1, V1] = outs.map((t) => backend.typedArrayFromHeap(t));
  const scale = gradScale === undefined ? undefined : backend.typedArrayFromHeap(gradScale)[0]; // float32 already, as tf.mul's
  adamwLoop(P as Float32Array, M as Float32Array, V as Float32Array, G as Float32Array, P1 as Float32Array, M1 as Float32Array, V1 as Float32Array, k, scale);
}

/** The composite's operations in its order, each rounded to float32 (the C kernel's, lane by lane). */
function adamwLoop(P: Float32Array, M: Float32Array, V: Float32Array, G: Float32Array, P1: Float32Array, M1: Float32Array, V1: Float32Array, k: Float32Array, gradScale: number | undefined): void {
  const f = Math.fround, [b1, c1, b2, c2, decay, stepSize, bc2Sqrt, eps] = k;
  for (let i = 0; i < G.length; i++) {
    const gi = gradScale === undefined ? G[i] : f(G[i] * gradScale); // the clipped gradient, exactly what tf.mul(g, scale) stored
    const mi = f(f(M[i] * b1) + f(gi * c1)), vi = f(f(V[i] * b2) + f(f(gi * gi) * c2));
    M1[i] = mi;
    V1[i] = vi;
    const pi = decay === 1 ? P[i] : f(P[i] * decay), denom = f(f(f(Math.sqrt(vi)) / bc2Sqrt) + eps);
    P1[i] = pi - f(f(mi / denom) * stepSize);
  }
}

/** out[s] = Σ x[i] over i with segmentIds[i] = s (ids outside [0, numSegments) are dropped, as in TensorFlow). */
function unsortedSegmentSum({ inputs, backend, attrs }: Args): Info {
  const { x, segmentIds } = inputs;
  const numSegments = attrs.numSegments as number;
  const inner = sizeOf(x.shape.slice(segmentIds.shape.length));
  const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
  const xs = backend.typedArrayFromHeap(x), ids = backend.typedArrayFromHeap(segmentIds), o = backend.typedArrayFromHeap(out);
  o.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner, dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xs[src + j];
  }
  return out;
}

/** SplitV as consecutive heap slices along `axis`. */
function splitV({ inputs, backend, attrs }: Args): Info[] {
  const x = inputs.x;
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, attrs.numOrSizeSplits as number[] | number, axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = x.shape.slice();
    size[axis] = s;
    const part = heapSlice({ inputs: { x }, backend, attrs: { begin: begin.slice(), size } });
    begin[axis] += s;
    return part;
  });
}

/** Slice on heap views: walk the output's rows and copy each contiguous run once. */
function heapSlice({ inputs, backend, attrs }: Args): Info {
  const x = inputs.x;
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.TensorInfo, attrs.begin as number[], attrs.size as number[]);
  const out = backend.makeOutput(size, x.dtype);
  if (sizeOf(size) === 0) return out;
  const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out); // views made after the allocation
  const rank = x.shape.length;
  if (rank === 0) { dst[0] = src[0]; return out; }
  const strides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) { strides[i] = s; s *= x.shape[i]; }
  // Merge trailing axes that are taken whole into one contiguous run.
  let last = rank - 1;
  let run = size[last];
  while (last > 0 && size[last] === x.shape[last] && begin[last] === 0) { last--; run *= size[last]; }
  let base = 0;
  for (let i = 0; i < rank; i++) base += begin[i] * strides[i];
  const rows = sizeOf(size.slice(0, last));
  const idx = new Array<number>(last).fill(0);
  for (let r = 0, o = 0; r < rows; r++, o += run) {
    dst.set(src.subarray(base, base + run), o);
    base = nextRow(idx, size, strides, base);
  }
  return out;
}

/** Drop size-1 axes and merge axes that stay neighbours, so [B,T,3,h,d]→perm[2,0,3,1,4] stays rank 5 but e.g. a
 * transpose that only moves whole blocks shrinks. Returns the equivalent (shape, perm). */
export function simplifyPermutation(shape: number[], perm: number[]): { shape: number[]; perm: number[] } {
  const keep = shape.map((d, i) => (d !== 1 ? i : -1)).filter((i) => i >= 0);
  let p = perm.filter((a) => shape[a] !== 1).map((a) => keep.indexOf(a));
  let s = keep.map((i) => shape[i]);
  // merge input axes a, a+1 when the output also has them adjacent in that order
  for (let j = 0; j + 1 < p.length; ) {
    if (p[j + 1] === p[j] + 1) {
      const a = p[j];
      s = [...s.slice(0, a), s[a] * s[a + 1], ...s.slice(a + 2)];
      p = p.filter((_, k) => k !== j + 1).map((v) => (v > a ? v - 1 : v));
    } else j++;
  }
  return { shape: s, perm: p };
}

/** Transpose on heap views, walking the simplified (shape, perm); copies whole rows when the last axis stays last. */
function heapTranspose(backend: WasmBackend, x: Info, reportedShape: number[], shape: number[], perm: number[]): Info {
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) { inStrides[i] = s; s *= shape[i]; }
  const outShape = perm.map((a) => shape[a]);
  const strideOf = perm.map((a) => inStrides[a]); // input stride for each output axis
  const out = backend.makeOutput(reportedShape, x.dtype);
  const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out);
  const last = rank - 1, rowLen = outShape[last], rowStride = strideOf[last];
  const idx = new Array<number>(rank - 1).fill(0);
  let o = 0, base = 0;
  const rows = sizeOf(outShape.slice(0, last));
  for (let r = 0; r < rows; r++) {
    if (rowStride === 1) {
      dst.set(src.subarray(base, base + rowLen), o);
    } else {
      for (let j = 0, s = base; j < rowLen; j++, s += rowStride) dst[o + j] = src[s];
    }
    o += rowLen;
    base = nextRow(idx, outShape, strideOf, base);
  }
  return out;
}

/** One step of an odometer over the leading axes idx walks (sizes[k], input stride strides[k]): the next row's offset. */
function nextRow(idx: number[], sizes: number[], strides: number[], base: number): number {
  for (let k = idx.length - 1; k >= 0; k--) {
    idx[k]++;
    base += strides[k];
    if (idx[k] < sizes[k]) return base;
    base -= strides[k] * sizes[k];
    idx[k] = 0;
  }
  return base;
}
