// tfjs's WebGPU matmul against lib/kernels/gemm.ts on BERT-base's products at batch 32 × 384 (M = 12288 tokens):
// the dense layers forward (x·W), their gradients in transposed form (dy·Wᵀ, xᵀ·dy), and the per-head attention
// products (384 heads of [384, 64]×[64, 384] and [384, 384]×[384, 64]). One JSON line per shape:
// {shape, tfjs_ms, ours_ms, tfjs_tflops, ours_tflops, ours_tiles_ms} (ours = pickTile's choice; ours_tiles_ms every
// tile, to tune pickTile). Each time is the median of RUNS calls after warm-up, each ended by reading one element.
//   node --import tsx test/bench/gemm_bench.ts            (full shapes: for a GPU)
//   node --import tsx test/bench/gemm_bench.ts --quick    (small shapes, or BERTQA_GEMM_BENCH=quick: lavapipe;
//                                                          --tiles adds ours_tiles_ms there too)
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../../lib/backend";
import { GEMM_TILES, gemmStats, installGemm, pickTile, setGemmTile, uninstallGemm } from "../../lib/kernels/gemm";

const quick = process.argv.includes("--quick") || process.env.BERTQA_GEMM_BENCH === "quick";
const tilesToo = !quick || process.argv.includes("--tiles"); // ours_tiles_ms: every tile (default in full mode)
const RUNS = quick ? 3 : 10, WARMUP = quick ? 1 : 3;
const [T, H, FF, HEADS, D] = quick ? [256, 256, 1024, 8, 64] : [12288, 768, 3072, 384, 64]; // tokens, hidden, FFN, B·nh, head dim
const L = quick ? 128 : 384; // sequence length of the attention products

interface Case { name: string; a: number[]; b: number[]; tA: boolean; tB: boolean }
const cases: Case[] = [
  { name: `x·W [${T},${H}]×[${H},${H}]`, a: [T, H], b: [H, H], tA: false, tB: false },
  { name: `x·W [${T},${H}]×[${H},${FF}]`, a: [T, H], b: [H, FF], tA: false, tB: false },
  { name: `x·W [${T},${FF}]×[${FF},${H}]`, a: [T, FF], b: [FF, H], tA: false, tB: false },
  { name: `dy·Wᵀ [${T},${FF}]×[${H},${FF}]ᵀ`, a: [T, FF], b: [H, FF], tA: false, tB: true },
  { name: `dy·Wᵀ [${T},${H}]×[${FF},${H}]ᵀ`, a: [T, H], b: [FF, H], tA: false, tB: true },
  { name: `xᵀ·dy [${T},${H}]ᵀ×[${T},${FF}]`, a: [T, H], b: [T, FF], tA: true, tB: false },
  { name: `xᵀ·dy [${T},${FF}]ᵀ×[${T},${H}]`, a: [T, FF], b: [T, H], tA: true, tB: false },
  { name: `q·kᵀ ${HEADS}×[${L},${D}]×[${L},${D}]ᵀ`, a: [HEADS, L, D], b: [HEADS, L, D], tA: false, tB: true },
  { name: `p·v ${HEADS}×[${L},${L}]×[${L},${D}]`, a: [HEADS, L, L], b: [HEADS, L, D], tA: false, tB: false },
];

async function median(c: Case, a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const once = async () => {
    const t0 = performance.now();
    const out = tf.matMul(a, b, c.tA, c.tB);
    const one = tf.slice(out, out.shape.map(() => 0), out.shape.map(() => 1));
    await one.data();
    const ms = performance.now() - t0;
    tf.dispose([out, one]);
    return ms;
  };
  for (let i = 0; i < WARMUP; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await once());
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  await useBackend("webgpu");
  const round = (x: number, d = 3) => Number(x.toFixed(d));
  for (const c of cases) {
    const a = tf.randomNormal(c.a), b = tf.randomNormal(c.b);
    const M = c.tA ? c.a[c.a.length - 1] : c.a[c.a.length - 2], K = c.tA ? c.a[c.a.length - 2] : c.a[c.a.length - 1];
    const N = c.tB ? c.b[c.b.length - 2] : c.b[c.b.length - 1], batch = c.a.length === 3 ? c.a[0] : 1;
    const tflops = (ms: number) => Number(((2 * batch * M * N * K) / (ms * 1e-3) / 1e12).toPrecision(3));
    uninstallGemm();
    const tfjsMs = await median(c, a, b);
    installGemm(true);
    const calls = gemmStats.calls;
    const oursMs = await median(c, a, b);
    if (gemmStats.calls === calls) throw new Error(`${c.name}: our GEMM did not run`);
    const tiles: Record<string, number> = {};
    if (tilesToo) {
      for (const tile of Object.keys(GEMM_TILES)) {
        setGemmTile(tile);
        tiles[tile] = round(await median(c, a, b));
      }
      setGemmTile(undefined);
    }
    console.log(JSON.stringify({ bench: "gemm", shape: c.name, tile: pickTile(batch, M, N), tfjs_ms: round(tfjsMs), ours_ms: round(oursMs),
      tfjs_tflops: tflops(tfjsMs), ours_tflops: tflops(oursMs), ...(tilesToo ? { ours_tiles_ms: tiles } : {}), backend: tf.getBackend() }));
    tf.dispose([a, b]);
  }
  uninstallGemm();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
