// Counter-based dropout masks: whether element i of seed s's mask is kept is a pure function of (s, i), computed the
// same way in JS (host backends, lib/bert.ts and lib/fused.ts) and in WGSL (lib/kernels/webgpu/: the dropout and
// attention kernels). So a GPU kernel draws any element on the spot, forward and backward, with nothing to upload or
// save but the seed, and every backend drops exactly the same elements for the same seed.
//
// The hash is Chris Wellons' lowbias32 (github.com/skeeto/hash-prospector): xorshift-multiply, two rounds, a bijection
// on u32 with near-ideal avalanche. Element i of key k: hash(hash(i) ^ k) — two rounds so that two keys give unrelated
// streams (one round, hash(i ^ k), would make every mask an XOR-shuffled copy of every other).
import * as tf from "@tensorflow/tfjs";

/** One dropout site: its rate and seed (lib/bert.ts gives each site of each step its own seed). */
export interface DropoutSite { rate: number; seed: number }

/** What a kernel needs of a site: key = the seed as u32, threshold (kept iff hash ≥ threshold), scale for kept values. */
export interface DropoutParams { key: number; threshold: number; scale: number }

/** Wellons' lowbias32 on a u32 (returned as a non-negative number). */
export function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The u32 key of a seed, for any integer a JS number holds exactly (seeds base·7919 + site pass 2³²): both 32-bit
 * halves go through the hash, and the constant keeps key ≠ hash(seed), which would make element i = seed hash to 0. */
export function dropoutKey(seed: number): number {
  const lo = seed >>> 0, hi = Math.floor(seed / 2 ** 32) >>> 0; // ToUint32 takes the low word exactly, negatives too
  return lowbias32((lowbias32((lo ^ 0x9e3779b9) >>> 0) ^ hi) >>> 0);
}

/** Whether element i of key `key` is kept at `threshold` (the JS twin of DROPOUT_WGSL's dropoutKeep). */
export function dropoutKeep(key: number, threshold: number, i: number): boolean {
  return lowbias32((lowbias32(i) ^ key) >>> 0) >= threshold;
}

/** Host-side constants of a site: dropped iff hash < rate·2³² (so threshold = ⌈rate·2³²⌉), kept values × 1/(1 − rate)
 * in float32; rate ≥ 1 drops everything (scale 0). Rate 0 keeps everything at scale 1: the kernels' no-dropout case. */
export function dropoutParams(rate: number, seed: number): DropoutParams {
  if (rate >= 1) return { key: dropoutKey(seed), threshold: 0xffffffff, scale: 0 };
  return { key: dropoutKey(seed), threshold: Math.max(0, Math.min(0xffffffff, Math.ceil(rate * 2 ** 32))), scale: Math.fround(1 / (1 - rate)) };
}

/** The same hash and keep test in WGSL (u32 arithmetic wraps like Math.imul). */
export const DROPOUT_WGSL = `
fn lowbias32(v : u32) -> u32 {
  var x = v;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
fn dropoutKeep(key : u32, threshold : u32, i : u32) -> bool { return lowbias32(lowbias32(i) ^ key) >= threshold; }`;

/** Inverted-dropout mask (0 or 1/(1 − rate)) of `seed` for a tensor of `shape`, built on the host: what cpu and wasm
 * multiply by, and exactly the elements the WebGPU kernels drop. One loop (it is hot on wasm: a 16×2×384×384 attention
 * map per layer) and one multiply; tf.dropout would draw each uniform through seedrandom and need four more ops. */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const mask = new Float32Array(n);
  const { key, threshold, scale } = dropoutParams(rate, seed);
  // dropoutKeep with lowbias32 written out in int32 arithmetic: calling it here measured ~4× slower (its u32 results
  // past 2³¹ are heap numbers), inlined it is ~30 ms for 4.7M elements, as fast as the old xorshift stream.
  for (let i = 0; i < n; i++) {
    let x = i ^ (i >>> 16);
    x = Math.imul(x, 0x7feb352d); x ^= x >>> 15; x = Math.imul(x, 0x846ca68b); x ^= x >>> 16;
    x ^= key; x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d); x ^= x >>> 15; x = Math.imul(x, 0x846ca68b); x ^= x >>> 16;
    mask[i] = x >>> 0 >= threshold ? scale : 0;
  }
  return tf.tensor(mask, shape);
}
