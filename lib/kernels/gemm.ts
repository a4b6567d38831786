// A register-blocked float32 GEMM in WGSL for tfjs's WebGPU backend: C[b] = op(A[b])·op(B[b]) (+ bias), replacing
// the backend's BatchMatMul and _FusedMatMul (bias, no activation) when BERTQA_GEMM=1 (opt-in until measured on a GPU).
// Matrix products are most of BERT's training FLOPs, and tfjs's own MatMulPackedProgram (32×32 tiles, 4×4 per thread
// over 64 threads) stays around 10 TFLOP/s on an H100; this is the classic CUDA SGEMM structure written for
// NVIDIA through Dawn/Vulkan:
// - 256 threads per workgroup as a 16×16 grid; a workgroup owns a BM×BN output tile (64 or 128 each way) and each
//   thread a (BM/16)×(BN/16) block (4×4 up to 8×8) held in vec4 registers, so one k step is a few vec4 reads from
//   workgroup memory for up to 64 FMAs (the arithmetic intensity that hides shared-memory latency).
// - A thread's rows (and columns) are 4 consecutive ones, repeated every 64: its vec4 reads of a k-row of the staged
//   tile are then 16 consecutive vec4s across a half-warp (no bank conflicts) instead of strided words.
// - K is walked in slices of BK (8 or 16) staged in workgroup memory k-major ([BK][BM] and [BK][BN], ≤ 12 KB, under
//   WebGPU's portable 16 KB); the next slice is loaded from global memory into registers while the current one is
//   multiplied (register prefetch: the global latency overlaps the FMAs without a second shared buffer).
// - Global loads are vec4 along each operand's contiguous axis when its length is a multiple of 4 (always in BERT),
//   else scalar with per-element bounds checks; rows or columns past M, N, K read as zero and are not written, so
//   any shape works. Results are written as vec4 when N is a multiple of 4.
// - Batch broadcasting as tfjs defines it for BatchMatMul: equal batches, or a batch of 1 on either side (its
//   stride is 0). Anything else (other dtypes, activations, prelu, odd broadcasts) goes to tfjs's own kernel.
// Dispatch: x = ⌈N/BN⌉ tiles, y = batch·⌈M/BM⌉ (batch folded into y: webgpu.ts's `record` dispatches in 2-D).
import * as tf from "@tensorflow/tfjs";
import { env } from "../platform";
import { record } from "./webgpu";

const BACKEND = "webgpu";
type Backend = Parameters<typeof record>[0];
type Info = Parameters<typeof record>[3][number];
type Uniform = Parameters<typeof record>[4][number];
type Args = { inputs: Record<string, Info | undefined | null>; backend: Backend; attrs: Record<string, unknown> };
type KernelFunc = (args: Args) => Info;

/** Output tile BM×BN and K slice BK; the thread block is (BM/16)×(BN/16). Workgroup memory: (BM + BN)·BK·4 bytes. */
export interface GemmTile { bm: 64 | 128; bn: 64 | 128; bk: 8 | 16 }
export const GEMM_TILES: Record<string, GemmTile> = {
  "64x64": { bm: 64, bn: 64, bk: 16 }, // 4×4 per thread, 8 KB
  "128x64": { bm: 128, bn: 64, bk: 16 }, // 8×4, 12 KB
  "64x128": { bm: 64, bn: 128, bk: 16 }, // 4×8, 12 KB
  "128x128": { bm: 128, bn: 128, bk: 8 }, // 8×8, 8 KB
};

/** Calls that ran this GEMM and that fell back to tfjs's kernel: for tests and benchmarks. */
export const gemmStats = { calls: 0, fallbacks: 0 };

/** Force one tile for every call (benchmarks, tuning); undefined = pickTile's choice. BERTQA_GEMM_TILE sets it too. */
let forcedTile: string | undefined = env.BERTQA_GEMM_TILE;
export function setGemmTile(name: string | undefined): void {
  if (name !== undefined && !(name in GEMM_TILES)) throw new Error(`unknown GEMM tile ${name}; one of ${Object.keys(GEMM_TILES).join(", ")}`);
  forcedTile = name;
}

/** The biggest tile that still leaves enough workgroups to fill a large GPU (~2 per SM on 132 SMs): big tiles reuse
 * each loaded value more, small ones keep every SM busy on small or thin products. A first guess, to tune on an H100. */
export function pickTile(batch: number, M: number, N: number): string {
  if (forcedTile !== undefined) return forcedTile;
  const groups = (bm: number, bn: number) => batch * Math.ceil(M / bm) * Math.ceil(N / bn);
  const enough = 264;
  if (M > 64 && N > 64 && groups(128, 128) >= enough) return "128x128";
  if (M > 64 && groups(128, 64) >= enough) return "128x64";
  if (N > 64 && groups(64, 128) >= enough) return "64x128";
  return "64x64";
}

interface Variant { tile: GemmTile; tA: boolean; tB: boolean; vecA: boolean; vecB: boolean; vecC: boolean; bias: boolean }

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** WGSL of one variant. Stored A is [batch, M, K] ([batch, K, M] when tA), stored B [batch, K, N] ([batch, N, K] when
 * tB), C [batch, M, N]; uniforms M, N, K, tilesM = ⌈M/BM⌉, strideA/B = the batch stride (0 to broadcast). */
export function gemmWgsl(v: Variant): string {
  const { bm, bn, bk } = v.tile;
  const gm = bm / 64, gn = bn / 64; // 4-row (4-column) groups per thread, 64 apart
  const elems = (vec: boolean) => (vec ? "vec4<f32>" : "f32");
  const loadsA = (bm * bk) / 4 / 256, loadsB = (bn * bk) / 4 / 256; // vec4 loads per thread per slice (1 or 2)
  // Loader: 4 consecutive elements along the contiguous axis of a row-major rows×cols matrix at `base`, zeros outside.
  const loader = (name: string, X: string, vec: boolean) => vec
    ? `fn ${name}(base : u32, r : u32, c : u32, rows : u32, cols : u32) -> vec4<f32> {
  if (r < rows && c < cols) { return ${X}[(base + r * cols + c) / 4u]; } // cols % 4 == 0: in or out as a whole
  return vec4<f32>(0.0);
}`
    : `fn ${name}(base : u32, r : u32, c : u32, rows : u32, cols : u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  if (r < rows) {
    let i = base + r * cols + c;
    if (c < cols) { v.x = ${X}[i]; }
    if (c + 1u < cols) { v.y = ${X}[i + 1u]; }
    if (c + 2u < cols) { v.z = ${X}[i + 2u]; }
    if (c + 3u < cols) { v.w = ${X}[i + 3u]; }
  }
  return v;
}`;
  // Slice loads, element e = tid + 256·q of the slice seen as vec4s along the stored contiguous axis. Stored the
  // staged way ([k][m]) already when contiguous in m (A transposed) or n (B plain): one vec4 store; else the 4 k
  // values go to 4 k-rows (a scalar store each).
  const fetchA = (q: number) => v.tA
    ? `  pa${q} = loadA(aBase, k0 + (tid + ${256 * q}u) / ${bm / 4}u, row0 + ((tid + ${256 * q}u) % ${bm / 4}u) * 4u, u.K, u.M);`
    : `  pa${q} = loadA(aBase, row0 + (tid + ${256 * q}u) / ${bk / 4}u, k0 + ((tid + ${256 * q}u) % ${bk / 4}u) * 4u, u.M, u.K);`;
  const stashA = (q: number) => v.tA
    ? `  As[tid + ${256 * q}u] = pa${q};`
    : `  { let m = (tid + ${256 * q}u) / ${bk / 4}u; let k = ((tid + ${256 * q}u) % ${bk / 4}u) * 4u;
${range(4).map((c) => `    As[(k + ${c}u) * ${bm / 4}u + m / 4u][m % 4u] = pa${q}[${c}];`).join("\n")} }`;
  const fetchB = (q: number) => v.tB
    ? `  pb${q} = loadB(bBase, col0 + (tid + ${256 * q}u) / ${bk / 4}u, k0 + ((tid + ${256 * q}u) % ${bk / 4}u) * 4u, u.N, u.K);`
    : `  pb${q} = loadB(bBase, k0 + (tid + ${256 * q}u) / ${bn / 4}u, col0 + ((tid + ${256 * q}u) % ${bn / 4}u) * 4u, u.K, u.N);`;
  const stashB = (q: number) => v.tB
    ? `  { let n = (tid + ${256 * q}u) / ${bk / 4}u; let k = ((tid + ${256 * q}u) % ${bk / 4}u) * 4u;
${range(4).map((c) => `    Bs[(k + ${c}u) * ${bn / 4}u + n / 4u][n % 4u] = pb${q}[${c}];`).join("\n")} }`
    : `  Bs[tid + ${256 * q}u] = pb${q};`;
  // acc_r_j: output row group (4·i + r, i = r / 4) × column vec4 j: row ty·4 + 64·(r/4) + r%4, columns tx·4 + 64·j.
  const accs = range(4 * gm).flatMap((r) => range(gn).map((j) => `acc_${r}_${j}`));
  const store = (r: number, j: number) => {
    const col = `col0 + tx * 4u + ${64 * j}u`;
    if (v.vecC) {
      return `      { let col = ${col}; if (col < u.N) { C[(cBase + row * u.N + col) / 4u] = acc_${r}_${j}${v.bias ? " + Bias[col / 4u]" : ""}; } }`;
    }
    return `      { let col = ${col}; let i = cBase + row * u.N + col;
${range(4).map((c) => `        if (col + ${c}u < u.N) { C[i + ${c}u] = acc_${r}_${j}[${c}]${v.bias ? ` + Bias[col + ${c}u]` : ""}; }`).join("\n")} }`;
  };
  return `
struct Dims { M : u32, N : u32, K : u32, tilesM : u32, strideA : u32, strideB : u32 };
@group(0) @binding(0) var<storage, read_write> C : array<${elems(v.vecC)}>;
@group(0) @binding(1) var<storage, read> A : array<${elems(v.vecA)}>;
@group(0) @binding(2) var<storage, read> B : array<${elems(v.vecB)}>;
${v.bias ? `@group(0) @binding(3) var<storage, read> Bias : array<${elems(v.vecC)}>;\n` : ""}@group(0) @binding(${v.bias ? 4 : 3}) var<uniform> u : Dims;
// The staged K slice, k-major: As[k·BM/4 + m/4] holds op(A)[m..m+3, k], Bs[k·BN/4 + n/4] op(B)[k, n..n+3].
var<workgroup> As : array<vec4<f32>, ${(bk * bm) / 4}>;
var<workgroup> Bs : array<vec4<f32>, ${(bk * bn) / 4}>;
${loader("loadA", "A", v.vecA)}
${loader("loadB", "B", v.vecB)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let tx = tid % 16u; // column group
  let ty = tid / 16u; // row group
  let batch = wid.y / u.tilesM;
  let row0 = (wid.y % u.tilesM) * ${bm}u;
  let col0 = wid.x * ${bn}u;
  let aBase = batch * u.strideA;
  let bBase = batch * u.strideB;
  let cBase = batch * u.M * u.N;
${accs.map((a) => `  var ${a} = vec4<f32>(0.0);`).join("\n")}
${range(loadsA).map((q) => `  var pa${q} : vec4<f32>;`).join("\n")}
${range(loadsB).map((q) => `  var pb${q} : vec4<f32>;`).join("\n")}
  // Slice 0: global → registers → workgroup memory.
  var k0 = 0u;
${range(loadsA).map(fetchA).join("\n")}
${range(loadsB).map(fetchB).join("\n")}
${range(loadsA).map(stashA).join("\n")}
${range(loadsB).map(stashB).join("\n")}
  workgroupBarrier();
  let slices = (u.K + ${bk - 1}u) / ${bk}u;
  for (var s = 0u; s < slices; s++) {
    // Prefetch the next slice into registers (uniform condition: every thread agrees, barriers stay uniform).
    let more = s + 1u < slices;
    k0 = (s + 1u) * ${bk}u;
    if (more) {
${range(loadsA).map(fetchA).join("\n")}
${range(loadsB).map(fetchB).join("\n")}
    }
    // Multiply the staged slice: per k, ${gm} + ${gn} vec4 reads feed ${16 * gm * gn} FMAs.
    for (var k = 0u; k < ${bk}u; k++) {
${range(gm).map((i) => `      let a${i} = As[k * ${bm / 4}u + ty + ${16 * i}u];`).join("\n")}
${range(gn).map((j) => `      let b${j} = Bs[k * ${bn / 4}u + tx + ${16 * j}u];`).join("\n")}
${range(4 * gm).flatMap((r) => range(gn).map((j) => `      acc_${r}_${j} = fma(vec4<f32>(a${Math.floor(r / 4)}[${r % 4}]), b${j}, acc_${r}_${j});`)).join("\n")}
    }
    workgroupBarrier(); // everyone done reading the slice
    if (more) {
${range(loadsA).map(stashA).join("\n")}
${range(loadsB).map(stashB).join("\n")}
    }
    workgroupBarrier(); // the next slice is staged
  }
  // Write the block (+ bias); rows past M and columns past N are skipped.
${range(4 * gm).map((r) => `  { let row = row0 + ty * 4u + ${64 * Math.floor(r / 4) + (r % 4)}u;
    if (row < u.M) {
${range(gn).map((j) => store(r, j)).join("\n")}
    }
  }`).join("\n")}
}`;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** C = op(A)·op(B) (+ bias) on our GEMM, or undefined for the cases left to tfjs's kernel. Shapes as BatchMatMul:
 * rank ≥ 2, leading axes the batch. */
export function gemm(backend: Backend, a: Info, b: Info, tA: boolean, tB: boolean, bias?: Info): Info | undefined {
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 || b.shape.length < 2) return undefined;
  const ra = a.shape.length, rb = b.shape.length;
  const M = tA ? a.shape[ra - 1] : a.shape[ra - 2], K = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = tB ? b.shape[rb - 2] : b.shape[rb - 1], Kb = tB ? b.shape[rb - 1] : b.shape[rb - 2];
  if (K !== Kb || M === 0 || N === 0 || K === 0) return undefined; // tfjs reports the mismatch / handles empties
  let outer: number[];
  try { outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)); } catch { return undefined; }
  const batch = size(outer), batchA = size(a.shape.slice(0, -2)), batchB = size(b.shape.slice(0, -2));
  // Equal batches map index to index; a batch of 1 repeats. Partial broadcasts ([2,1]×[1,3]) are left to tfjs.
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return undefined;
  if (bias !== undefined && (bias.dtype !== "float32" || size(bias.shape) !== N || bias.shape[bias.shape.length - 1] !== N)) return undefined;
  const name = pickTile(batch, M, N), tile = GEMM_TILES[name];
  const tilesM = Math.ceil(M / tile.bm), dispatch: [number, number] = [Math.ceil(N / tile.bn), batch * tilesM];
  const maxDim = backend.device.limits.maxComputeWorkgroupsPerDimension as number;
  if (dispatch[0] > maxDim || dispatch[1] > maxDim || batch * M * Math.max(N, K) >= 2 ** 32 || batch * K * N >= 2 ** 32) return undefined;
  const v: Variant = { tile, tA, tB, vecA: (tA ? M : K) % 4 === 0, vecB: (tB ? K : N) % 4 === 0, vecC: N % 4 === 0, bias: bias !== undefined };
  const label = `BertqaGemm_${name}_${tA ? "T" : "N"}${tB ? "T" : "N"}_${+v.vecA}${+v.vecB}${+v.vecC}${v.bias ? "_bias" : ""}`;
  let wgsl = sources.get(label);
  if (wgsl === undefined) sources.set(label, (wgsl = gemmWgsl(v)));
  const out = backend.makeTensorInfo([...outer, M, N], "float32");
  const u = (x: number): Uniform => ({ type: "uint32", data: [x] });
  record(backend, label, wgsl, bias !== undefined ? [out, a, b, bias] : [out, a, b],
    [u(M), u(N), u(K), u(tilesM), u(batchA === 1 ? 0 : M * K), u(batchB === 1 ? 0 : K * N)], dispatch);
  gemmStats.calls++;
  return out;
}
const sources = new Map<string, string>(); // label → WGSL (record caches the pipeline by label)

// --- registration -----------------------------------------------------------------------------------------------------

const stock = new Map<string, tf.KernelConfig>(); // kernel name → tfjs's own config, while ours is installed

/** Replace the webgpu BatchMatMul and _FusedMatMul with this GEMM (tfjs's kernels for the cases it leaves).
 * Opt-in: does nothing unless `force` (default: BERTQA_GEMM=1). Idempotent; uninstallGemm() restores tfjs's. */
export function installGemm(force = env.BERTQA_GEMM === "1"): void {
  if (!force || stock.size > 0) return;
  const batchMatMul = tf.getKernel("BatchMatMul", BACKEND), fusedMatMul = tf.getKernel("_FusedMatMul", BACKEND);
  if (batchMatMul === undefined || fusedMatMul === undefined) return; // tfjs-backend-webgpu not loaded
  const wrap = (config: tf.KernelConfig, run: (args: Args) => Info | undefined): void => {
    const original = config.kernelFunc as unknown as KernelFunc;
    stock.set(config.kernelName, config);
    tf.unregisterKernel(config.kernelName, BACKEND);
    tf.registerKernel({ ...config, kernelFunc: ((args: Args) => {
      const out = run(args);
      if (out !== undefined) return out;
      gemmStats.fallbacks++;
      return original(args);
    }) as never });
  };
  const attrsOf = (args: Args) => args.attrs as { transposeA?: boolean; transposeB?: boolean; activation?: string | null };
  wrap(batchMatMul, (args) => {
    const { transposeA, transposeB } = attrsOf(args);
    return gemm(args.backend, args.inputs.a!, args.inputs.b!, transposeA === true, transposeB === true);
  });
  wrap(fusedMatMul, (args) => {
    const { transposeA, transposeB, activation } = attrsOf(args);
    if ((activation != null && activation !== "linear") || args.inputs.preluActivationWeights != null) return undefined;
    return gemm(args.backend, args.inputs.a!, args.inputs.b!, transposeA === true, transposeB === true, args.inputs.bias ?? undefined);
  });
}

/** Put tfjs's own webgpu BatchMatMul and _FusedMatMul back (no-op if installGemm did not replace them). */
export function uninstallGemm(): void {
  for (const [name, config] of stock) {
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel(config);
  }
  stock.clear();
}

/** Whether our GEMM is installed as the webgpu BatchMatMul. */
export function gemmInstalled(): boolean {
  return stock.size > 0;
}
