// The wasm backend's GEMM for training (lib/kernels/wasm-gemm.ts drives it): C = A·B (+ bias) for one output tile,
// A and B read through strides, so transposed operands and every head of a batched product are read in place.
// Built by lib/kernels/wasm-gemm.build.sh into lib/kernels/wasm-gemm-binary.ts, twice: plain SIMD128 (multiply, then
// add) and with relaxed SIMD's fused multiply-add (one instruction, twice the throughput where the CPU has FMA).
// It imports the tfjs wasm heap and touches only the memory it is given: no data, no stack, no globals, no libc.
#include <wasm_simd128.h>

#ifndef MR
#define MR 4 // rows per micro-tile: 8 accumulators + 2 B vectors + 1 A splat in x64's 16 SIMD registers (V8 keeps one
#endif       // for itself: at 6 rows, 15 live vectors, it spilled 4 accumulators to the stack every iteration)
#define NR 8   // columns per micro-tile: two 4-float vectors
#define KC 256 // depth per block: a packed B panel (KC × NR floats, 8 KB) stays in L1 across the tile's rows

#ifdef USE_FMA
// clang 14 pushes the operands in call order; the rewritten opcode, f32x4.relaxed_madd(x, y, z), computes x·y + z
#define MADD(a, b, c) __builtin_wasm_fma_f32x4((a), (b), (c))
#else
#define MADD(a, b, c) wasm_f32x4_add((c), wasm_f32x4_mul((a), (b)))
#endif

/** Copy B[k0.., j0..] (kc × up to NR columns; element (k, j) at B[k·rsb + j·csb]) into NR-wide rows, zero-padded. */
static void pack_b(const float* B, int rsb, int csb, int kc, int cols, float* dst) {
  if (csb == 1 && cols == NR) {
    for (int k = 0; k < kc; k++, B += rsb, dst += NR) {
      wasm_v128_store(dst, wasm_v128_load(B));
      wasm_v128_store(dst + 4, wasm_v128_load(B + 4));
    }
    return;
  }
  int k = 0;
  if (rsb == 1 && cols == NR) { // B transposed (dy·Wᵀ, q·kᵀ): 4 × 4 blocks, each column's 4 k in one load, transposed
    for (; k + 4 <= kc; k += 4, dst += 4 * NR) {
      for (int g = 0; g < NR; g += 4) {
        const float* b = B + k + g * csb;
        v128_t r0 = wasm_v128_load(b), r1 = wasm_v128_load(b + csb), r2 = wasm_v128_load(b + 2 * csb), r3 = wasm_v128_load(b + 3 * csb);
        v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
        v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
        wasm_v128_store(dst + g, wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5));
        wasm_v128_store(dst + NR + g, wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
        wasm_v128_store(dst + 2 * NR + g, wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5));
        wasm_v128_store(dst + 3 * NR + g, wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7));
      }
    }
  }
  for (; k < kc; k++, dst += NR) {
    for (int j = 0; j < NR; j++) dst[j] = j < cols ? B[k * rsb + j * csb] : 0.0f;
  }
}

/** Store (first block: =, later: +=) a micro-tile's rows; on the last block add the bias. */
static inline void store_row(float* c, v128_t lo, v128_t hi, int cols, int first, const float* bias) {
  if (cols == NR) {
    if (!first) {
      lo = wasm_f32x4_add(lo, wasm_v128_load(c));
      hi = wasm_f32x4_add(hi, wasm_v128_load(c + 4));
    }
    if (bias) {
      lo = wasm_f32x4_add(lo, wasm_v128_load(bias));
      hi = wasm_f32x4_add(hi, wasm_v128_load(bias + 4));
    }
    wasm_v128_store(c, lo);
    wasm_v128_store(c + 4, hi);
    return;
  }
  // Lane by lane (no array: this module has no stack in the heap it shares)
#define PUT(j, v) if (cols > j) { float s = (v); s = first ? s : c[j] + s; c[j] = bias ? s + bias[j] : s; }
  PUT(0, wasm_f32x4_extract_lane(lo, 0)) PUT(1, wasm_f32x4_extract_lane(lo, 1)) PUT(2, wasm_f32x4_extract_lane(lo, 2)) PUT(3, wasm_f32x4_extract_lane(lo, 3))
  PUT(4, wasm_f32x4_extract_lane(hi, 0)) PUT(5, wasm_f32x4_extract_lane(hi, 1)) PUT(6, wasm_f32x4_extract_lane(hi, 2)) PUT(7, wasm_f32x4_extract_lane(hi, 3))
#undef PUT
}

/** MR rows × NR columns over kc: A rows at a (element (r, k) at a[r·rsa + k·csa]), B packed. The loops over r
 * unroll fully, so the accumulators live in locals (registers), not in memory. */
static void kernel_mr(const float* a, int rsa, int csa, const float* pb, int kc, float* c, int ldc, int cols, int first, const float* bias) {
  v128_t lo[MR], hi[MR];
  const float* ar[MR];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) { lo[r] = hi[r] = wasm_f32x4_splat(0); ar[r] = a + r * rsa; }
  for (int k = 0; k < kc; k++, pb += NR) {
    v128_t b0 = wasm_v128_load(pb), b1 = wasm_v128_load(pb + 4);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
      v128_t x = wasm_v128_load32_splat(ar[r]);
      lo[r] = MADD(x, b0, lo[r]);
      hi[r] = MADD(x, b1, hi[r]);
      ar[r] += csa;
    }
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) store_row(c + r * ldc, lo[r], hi[r], cols, first, bias);
}

/** One row × NR columns over kc (the rows left over when the tile's height is not a multiple of MR). */
static void kernel_1(const float* a, int csa, const float* pb, int kc, float* c, int cols, int first, const float* bias) {
  v128_t c0 = wasm_f32x4_splat(0), c1 = c0;
  for (int k = 0; k < kc; k++, pb += NR, a += csa) {
    v128_t x = wasm_v128_load32_splat(a);
    c0 = MADD(x, wasm_v128_load(pb), c0);
    c1 = MADD(x, wasm_v128_load(pb + 4), c1);
  }
  store_row(c, c0, c1, cols, first, bias);
}

/** Rows i0 … i0 + rows − 1 (rows ≤ MR) of A over kc as a k-major panel, zero-padded to MR rows: (r, k) at dst[k·MR + r].
 * For a transposed A (csa ≠ 1): read in place, its MR rows at k sit csa floats after those at k − 1, and at csa = 1024
 * (xᵀ·dy of the FFN) every k falls in the same L1 set, evicting the rows after 8 steps (measured 24 GFLOP/s, 43 packed). */
static void pack_a(const float* A, int rsa, int csa, int kc, int rows, float* dst) {
  if (rows == MR && rsa == 1) {
    for (int k = 0; k < kc; k++, dst += MR) wasm_v128_store(dst, wasm_v128_load(A + k * csa)); // MR = 4: one vector
    return;
  }
  for (int k = 0; k < kc; k++, dst += MR) {
    for (int r = 0; r < MR; r++) dst[r] = r < rows ? A[r * rsa + k * csa] : 0.0f;
  }
}

/** kernel_mr on a packed A panel; its first `rows` rows are stored. */
static void kernel_packed(const float* pa, const float* pb, int kc, float* c, int ldc, int rows, int cols, int first, const float* bias) {
  v128_t lo[MR], hi[MR];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) { lo[r] = hi[r] = wasm_f32x4_splat(0); }
  for (int k = 0; k < kc; k++, pb += NR, pa += MR) {
    v128_t b0 = wasm_v128_load(pb), b1 = wasm_v128_load(pb + 4);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
      v128_t x = wasm_v128_load32_splat(pa + r);
      lo[r] = MADD(x, b0, lo[r]);
      hi[r] = MADD(x, b1, hi[r]);
    }
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) if (r < rows) store_row(c + r * ldc, lo[r], hi[r], cols, first, bias);
}

/**
 * C[m × n] = A[m × K] · B[K × n] (+ bias[n]) with A(i, k) = A[i·rsa + k·csa], B(k, j) = B[k·rsb + j·csb],
 * C(i, j) = C[i·ldc + j]. pack: scratch of KC × (round_up(n, NR) + MR) floats (B's panels, then one of A's). Sums over
 * k run in blocks of KC, each block's sum added to C in order, so the result does not depend on how the caller splits
 * rows and columns into tiles (nor on whether A is packed: each element's sum runs over k in the same order).
 * `accumulate`: C += A·B (the first block is added to C too).
 */
static void gemm(const float* A, int rsa, int csa, const float* B, int rsb, int csb, float* C, int ldc, const float* bias, int m, int n, int K, float* pack, int accumulate) {
  for (int k0 = 0; k0 < K; k0 += KC) {
    int kc = K - k0 < KC ? K - k0 : KC;
    int first = k0 == 0 && !accumulate, last = k0 + kc == K;
    const float* bb = last ? bias : 0;
    for (int j0 = 0; j0 < n; j0 += NR) {
      int cols = n - j0 < NR ? n - j0 : NR;
      pack_b(B + k0 * rsb + j0 * csb, rsb, csb, kc, cols, pack + j0 * KC);
    }
    const float* ak = A + k0 * csa;
    int i = 0;
    if (csa != 1) { // transposed A: packed, MR rows at a time
      float* pa = pack + ((n + NR - 1) / NR) * NR * KC;
      for (; i < m; i += MR) {
        int rows = m - i < MR ? m - i : MR;
        pack_a(ak + i * rsa, rsa, csa, kc, rows, pa);
        for (int j0 = 0; j0 < n; j0 += NR) {
          int cols = n - j0 < NR ? n - j0 : NR;
          kernel_packed(pa, pack + j0 * KC, kc, C + i * ldc + j0, ldc, rows, cols, first, bb ? bb + j0 : 0);
        }
      }
    }
    for (; i + MR <= m; i += MR) {
      for (int j0 = 0; j0 < n; j0 += NR) {
        int cols = n - j0 < NR ? n - j0 : NR;
        kernel_mr(ak + i * rsa, rsa, csa, pack + j0 * KC, kc, C + i * ldc + j0, ldc, cols, first, bb ? bb + j0 : 0);
      }
    }
    for (; i < m; i++) {
      for (int j0 = 0; j0 < n; j0 += NR) {
        int cols = n - j0 < NR ? n - j0 : NR;
        kernel_1(ak + i * rsa, csa, pack + j0 * KC, kc, C + i * ldc + j0, cols, first, bb ? bb + j0 : 0);
      }
    }
  }
}

__attribute__((export_name("gemm_tile")))
void gemm_tile(const float* A, int rsa, int csa, const float* B, int rsb, int csb, float* C, int ldc, const float* bias, int m, int n, int K, float* pack) {
  gemm(A, rsa, csa, B, rsb, csb, C, ldc, bias, m, n, K, pack, 0);
}

// ---------------------------------------------------------------------------------------------------------------------
// Row kernels: exact GELU (with an optional bias, and its gradient) and LayerNorm(x + residual) (forward, the row
// statistics, the input gradient and the γ/β gradients' partial sums), each one pass over rows [r0, r1) of a
// [rows × cols] matrix, so the pool splits them by rows as it splits products by tiles. They compute what
// lib/kernels/webgpu/elementwise.ts and layernorm.ts compute in WGSL, in float32.

static inline v128_t splat(float v) { return wasm_f32x4_splat(v); }

/** Lanes [0, n) of p (n < 4: the rest 0); every full vector is one load. No array: this module has no stack. */
static inline v128_t load_n(const float* p, int n) {
  if (n >= 4) return wasm_v128_load(p);
  return wasm_f32x4_make(p[0], n > 1 ? p[1] : 0.0f, n > 2 ? p[2] : 0.0f, 0.0f);
}
static inline void store_n(float* p, v128_t v, int n) {
  if (n >= 4) { wasm_v128_store(p, v); return; }
  p[0] = wasm_f32x4_extract_lane(v, 0);
  if (n > 1) p[1] = wasm_f32x4_extract_lane(v, 1);
  if (n > 2) p[2] = wasm_f32x4_extract_lane(v, 2);
}
static inline float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) + (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/** for (v = 0; v < len; v += 4), n = the lanes at v (4, or len − v at the end): the body twice, so that in the main
 * loop n is the constant 4 and load_n/store_n are plain vectors. With the tail's branches in every iteration V8 kept
 * the loops' constants and sums on the stack (GELU took 2.9 ns an element, the attention's softmax 2.2). */
#define FOR4(type, v, len, n, ...) { \
  type v = 0; \
  for (; v + 4 <= (len); v += 4) { const int n = 4; __VA_ARGS__ } \
  if (v < (len)) { const int n = (int)((len) - v); __VA_ARGS__ } \
}

/** e^x to ~1 ulp (Cephes expf: x = k·ln2 + r, a degree-6 polynomial for e^r, 2^k from the exponent bits). pmin/pmax
 * and the round-to-integer by adding 1.5·2²³ are one instruction each in V8 (min/max and trunc_sat are 6-8: they
 * handle NaN and overflow, which the clamp has ruled out). */
static inline v128_t exp4(v128_t x) {
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, splat(-87.0f)), splat(88.0f));
  v128_t kr = wasm_f32x4_add(wasm_f32x4_mul(x, splat(1.44269504088896341f)), splat(12582912.0f)); // 1.5·2²³ + round(x/ln2)
  v128_t k = wasm_f32x4_sub(kr, splat(12582912.0f));
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(k, splat(0.693359375f)));
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(k, splat(-2.12194440e-4f)));
  v128_t p = splat(1.9875691500e-4f); // Horner with MADD: half the dependency chain where FMA is there
  p = MADD(p, x, splat(1.3981999507e-3f));
  p = MADD(p, x, splat(8.3334519073e-3f));
  p = MADD(p, x, splat(4.1665795894e-2f));
  p = MADD(p, x, splat(1.6666665459e-1f));
  p = MADD(p, x, splat(5.0000001201e-1f));
  p = wasm_f32x4_add(MADD(p, wasm_f32x4_mul(x, x), x), splat(1.0f));
  // kr's low mantissa bits hold k + 2²² (two's complement, |k| ≤ 127): (k + 127) << 23 is 2^k's bits
  v128_t two_k = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_sub(kr, wasm_i32x4_splat(0x4B400000)), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(p, two_k);
}

/** Φ(u) = (1 + erf(u/√2))/2 with tfjs' erf (Abramowitz–Stegun 7.1.26, the constants of tf.backend_util); *e gets
 * e^(−u²/2), which φ(u) needs too. */
static inline v128_t cdf4(v128_t u, v128_t* e2) {
  v128_t a = wasm_f32x4_mul(u, splat(0.70710678118654752f));
  v128_t t = wasm_f32x4_div(splat(1.0f), wasm_f32x4_add(splat(1.0f), wasm_f32x4_mul(splat(0.3275911f), wasm_f32x4_abs(a))));
  v128_t p = splat(1.061405429f);
  p = MADD(p, t, splat(-1.453152027f));
  p = MADD(p, t, splat(1.421413741f));
  p = MADD(p, t, splat(-0.284496736f));
  p = MADD(p, t, splat(0.254829592f));
  *e2 = exp4(wasm_f32x4_neg(wasm_f32x4_mul(a, a)));
  v128_t e = wasm_f32x4_sub(splat(1.0f), wasm_f32x4_mul(wasm_f32x4_mul(p, t), *e2));
  v128_t erf = wasm_v128_bitselect(wasm_f32x4_neg(e), e, wasm_f32x4_lt(a, splat(0.0f)));
  return wasm_f32x4_mul(wasm_f32x4_add(erf, splat(1.0f)), splat(0.5f));
}

enum { GELU = 0, GELU_GRAD = 1, ADD_LAYER_NORM = 2, ROW_STATS = 3, LAYER_NORM_GRAD = 4, LAYER_NORM_PARAM_GRAD = 5, DROPOUT = 6, ADAMW = 7, COLUMN_SUMS = 8, SUM_SQUARES = 9 };

/** lib/dropout.ts's lowbias32 on four u32 lanes. */
static inline v128_t lowbias32(v128_t x) {
  x = wasm_v128_xor(x, wasm_u32x4_shr(x, 16));
  x = wasm_i32x4_mul(x, wasm_i32x4_splat(0x7feb352d));
  x = wasm_v128_xor(x, wasm_u32x4_shr(x, 15));
  x = wasm_i32x4_mul(x, wasm_i32x4_splat((int)0x846ca68bu));
  return wasm_v128_xor(x, wasm_u32x4_shr(x, 16));
}

/** x·scale where element i of the mask is kept (lowbias32(lowbias32(i) ^ key) ≥ threshold), else 0: lib/dropout.ts's
 * dropoutKeep, so every backend drops the same elements. i: the flat index of the first lane, lanes i … i + 3. */
static inline v128_t dropout4(v128_t x, unsigned i, unsigned key, unsigned threshold, float scale) {
  v128_t h = lowbias32(wasm_v128_xor(lowbias32(wasm_i32x4_add(wasm_i32x4_splat((int)i), wasm_i32x4_make(0, 1, 2, 3))), wasm_i32x4_splat((int)key)));
  return wasm_f32x4_mul(x, wasm_v128_and(splat(scale), wasm_u32x4_ge(h, wasm_i32x4_splat((int)threshold)))); // x·0 keeps x's sign, as x·mask does
}

/** AdamW's constants, float32 as tf's scalars are: β1, 1 − β1, β2, 1 − β2, decay = 1 − lr·wd, stepSize, √(1 − β2ᵗ),
 * eps, then the outputs' addresses p', m', v'. */
struct adamw_args { float b1, c1, b2, c2, decay, step, bc2, eps; float *p1, *m1, *v1; };

/** Mean of row z = x + r, then 1/√(var + eps), two passes as tf.moments. */
static inline void moments(const float* x, const float* r, int cols, float eps, float* mean, float* rstd) {
  v128_t s = splat(0.0f);
  FOR4(int, c, cols, n, s = wasm_f32x4_add(s, wasm_f32x4_add(load_n(x + c, n), load_n(r + c, n)));)
  float m = hsum(s) / (float)cols;
  v128_t q = splat(0.0f), vm = splat(m);
  FOR4(int, c, cols, n,
    v128_t d = wasm_f32x4_sub(wasm_f32x4_add(load_n(x + c, n), load_n(r + c, n)), vm);
    if (n < 4) d = wasm_v128_and(d, wasm_i32x4_gt(wasm_i32x4_splat(n), wasm_i32x4_make(0, 1, 2, 3)));
    q = MADD(d, d, q);
  )
  *mean = m;
  *rstd = 1.0f / __builtin_sqrtf(hsum(q) / (float)cols + eps);
}

/**
 * Rows [r0, r1) of one row kernel (cols wide). p0…p5: the kernel's tensors, in the order of its WebGPU twin's inputs,
 * then its output; bias may be 0 (none). LAYER_NORM_PARAM_GRAD writes this range's column sums of dy·x̂ then dy to
 * out + unit·2·cols (partial sums that the caller adds up).
 */
__attribute__((export_name("row_kernel")))
void row_kernel(int op, float* p0, float* p1, float* p2, float* p3, float* p4, float* p5, int cols, float eps, int r0, int r1, int unit) {
  v128_t zero = splat(0.0f);
  if (op == COLUMN_SUMS) { // p0 x, p1 partial sums: this range's column sums at p1 + unit·cols, rows added in order
    float* out = p1 + (long)unit * cols;
    FOR4(int, c, cols, n,
      v128_t acc = zero;
      for (int r = r0; r < r1; r++) acc = wasm_f32x4_add(acc, load_n(p0 + (long)r * cols + c, n));
      store_n(out + c, acc, n);
    )
    return;
  }
  if (op == SUM_SQUARES) { // p0 x, p1 partial sums: this range's Σ x² at p1[unit]
    v128_t acc = zero;
    FOR4(long, at, (long)(r1 - r0) * cols, n, v128_t x = load_n(p0 + (long)r0 * cols + at, n); acc = MADD(x, x, acc);)
    p1[unit] = hsum(acc);
    return;
  }
  if (op == DROPOUT) { // p0 x, p1 out, p2 the key, p3 the threshold (u32s, not addresses), eps the scale
    long o0 = (long)r0 * cols;
    FOR4(long, at, (long)(r1 - r0) * cols, n, long o = o0 + at;
      store_n(p1 + o, dropout4(load_n(p0 + o, n), (unsigned)o, (unsigned)(long)p2, (unsigned)(long)p3, eps), n);
    )
    return;
  }
  if (op == ADAMW) { // p0 p, p1 m, p2 v, p3 g, p4 struct adamw_args, p5 the clipping coefficient (a scalar) or 0:
    // lib/fused.ts's composite, op by op in float32: g·s; m' = β1·m + (1 − β1)·g; v' = β2·v + (1 − β2)·g²;
    // p' = p·decay − m'/(√v'/√(1 − β2ᵗ) + eps)·stepSize
    const struct adamw_args* a = (const struct adamw_args*)p4;
    v128_t b1 = splat(a->b1), c1 = splat(a->c1), b2 = splat(a->b2), c2 = splat(a->c2), decay = splat(a->decay), step = splat(a->step), bc2 = splat(a->bc2), e = splat(a->eps);
    v128_t gs = splat(p5 ? *p5 : 1.0f);
    long o0 = (long)r0 * cols;
    FOR4(long, at, (long)(r1 - r0) * cols, n, long o = o0 + at;
      v128_t g = load_n(p3 + o, n);
      if (p5) g = wasm_f32x4_mul(g, gs);
      v128_t m = wasm_f32x4_add(wasm_f32x4_mul(load_n(p1 + o, n), b1), wasm_f32x4_mul(g, c1));
      v128_t v = wasm_f32x4_add(wasm_f32x4_mul(load_n(p2 + o, n), b2), wasm_f32x4_mul(wasm_f32x4_mul(g, g), c2));
      v128_t p = load_n(p0 + o, n);
      if (a->decay != 1.0f) p = wasm_f32x4_mul(p, decay);
      v128_t denom = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(v), bc2), e);
      store_n(a->m1 + o, m, n);
      store_n(a->v1 + o, v, n);
      store_n(a->p1 + o, wasm_f32x4_sub(p, wasm_f32x4_mul(wasm_f32x4_div(m, denom), step)), n);
    )
    return;
  }
  if (op == LAYER_NORM_PARAM_GRAD) { // p0 x, p1 residual, p2 dy, p3 stats, p4 partial sums
    float* dg = p4 + (long)unit * 2 * cols;
    float* db = dg + cols;
    FOR4(int, c, cols, n, store_n(dg + c, zero, n); store_n(db + c, zero, n);)
    for (int r = r0; r < r1; r++) {
      const float *x = p0 + (long)r * cols, *res = p1 + (long)r * cols, *dy = p2 + (long)r * cols;
      v128_t mean = splat(p3[2 * r]), rstd = splat(p3[2 * r + 1]);
      FOR4(int, c, cols, n,
        v128_t d = load_n(dy + c, n), xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_add(load_n(x + c, n), load_n(res + c, n)), mean), rstd);
        store_n(dg + c, MADD(d, xhat, load_n(dg + c, n)), n);
        store_n(db + c, wasm_f32x4_add(load_n(db + c, n), d), n);
      )
    }
    return;
  }
  for (int r = r0; r < r1; r++) {
    long o = (long)r * cols;
    if (op == GELU || op == GELU_GRAD) { // GELU: p0 x, p1 bias, p2 out; GELU_GRAD: p0 dy, p1 x, p2 bias, p3 out
      const float *x = op == GELU ? p0 + o : p1 + o, *bias = op == GELU ? p1 : p2, *dy = p0 + o;
      float* out = (op == GELU ? p2 : p3) + o;
      if (op == GELU) {
        FOR4(int, c, cols, n,
          v128_t u = load_n(x + c, n);
          if (bias) u = wasm_f32x4_add(u, load_n(bias + c, n));
          v128_t e2;
          store_n(out + c, wasm_f32x4_mul(u, cdf4(u, &e2)), n);
        )
      } else {
        FOR4(int, c, cols, n,
          v128_t u = load_n(x + c, n);
          if (bias) u = wasm_f32x4_add(u, load_n(bias + c, n));
          v128_t e2, phi = cdf4(u, &e2);
          v128_t pdf = wasm_f32x4_mul(e2, splat(0.39894228040143268f)); // φ(u) = e^(−u²/2)/√(2π)
          store_n(out + c, wasm_f32x4_mul(load_n(dy + c, n), MADD(u, pdf, phi)), n);
        )
      }
      continue;
    }
    const float *x = p0 + o, *res = p1 + o;
    float mean, rstd;
    if (op == ADD_LAYER_NORM) { // p2 γ, p3 β, p4 out
      moments(x, res, cols, eps, &mean, &rstd);
      v128_t vm = splat(mean), vr = splat(rstd);
      FOR4(int, c, cols, n,
        v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_add(load_n(x + c, n), load_n(res + c, n)), vm), vr);
        store_n(p4 + o + c, MADD(xhat, load_n(p2 + c, n), load_n(p3 + c, n)), n);
      )
    } else if (op == ROW_STATS) { // p2 stats [rows, 2]
      moments(x, res, cols, eps, &mean, &rstd);
      p2[2 * r] = mean;
      p2[2 * r + 1] = rstd;
    } else if (op == LAYER_NORM_GRAD) { // p2 dy, p3 γ, p4 stats, p5 out: rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ
      const float* dy = p2 + o;
      v128_t vm = splat(p4[2 * r]), vr = splat(p4[2 * r + 1]), sg = zero, sgx = zero;
      FOR4(int, c, cols, n,
        v128_t g = wasm_f32x4_mul(load_n(dy + c, n), load_n(p3 + c, n)); // 0 in a tail's missing lanes
        v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_add(load_n(x + c, n), load_n(res + c, n)), vm), vr);
        sg = wasm_f32x4_add(sg, g);
        sgx = MADD(g, xhat, sgx);
      )
      v128_t meanG = splat(hsum(sg) / (float)cols), meanGX = splat(hsum(sgx) / (float)cols);
      FOR4(int, c, cols, n,
        v128_t g = wasm_f32x4_mul(load_n(dy + c, n), load_n(p3 + c, n));
        v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_add(load_n(x + c, n), load_n(res + c, n)), vm), vr);
        store_n(p5 + o + c, wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_sub(g, meanG), wasm_f32x4_mul(xhat, meanGX)), vr), n);
      )
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Attention, dropout(softmax(q·kᵀ·qk + mask))·v, for one head at a time, reading q, k, v (and writing ctx and the
// gradients) where the dense layers put them: [B, T, H], head h in columns h·d … h·d + d − 1, so no transposes. The
// products are gemm() on the thread's scratch, the T² scores a block of ATTN_QB query rows at a time. The forward saves
// each row's max and sum of exp and, when training, the probabilities (as the composite and PyTorch keep them): the
// backward reads them instead of recomputing q·kᵀ and the exponentials from the max and sum (FlashAttention's trade,
// as on WebGPU, took 28% more time here, to save B·nh·T² floats: 9.4 MB a layer at mini 4 × 384). Its row term
// delta = dctx·ctx comes from the saved output. The dropout factor of score (i, j) of head bh is lib/dropout.ts's mask at the composite's flat
// index (bh·T + i)·T + j, as in lib/kernels/webgpu/attention.ts.

#define ATTN_QB 64     // query rows per block
#define ATTN_MAX_T 512 // the scratch holds two [ATTN_QB × ATTN_MAX_T] blocks after the GEMM's packing space
#define PACK_FLOATS (KC * (256 + MR))

struct attn_args {
  float *q, *k, *v, *mask, *ctx, *stats; // stats [B·nh, T, 3]: max, sum of exp, (unused here)
  float *dctx, *dq, *dk, *dv;             // the backward's
  float* probs;                           // [B·nh, T, T], the undropped probabilities: the forward writes them when
                                          // training (else 0), the backward reads them
  int B, T, H, nh, d;
  unsigned key, threshold; float dscale;  // dropout: kept iff hash ≥ threshold, kept values × dscale
  float qk;                               // 1/√d, on each finished dot product
};

/** C[m × n] = A·B in column chunks the packing space holds (n up to ATTN_MAX_T). */
static void gemm_wide(const float* A, int rsa, int csa, const float* B, int rsb, int csb, float* C, int ldc, int m, int n, int K, float* pack, int accumulate) {
  for (int j0 = 0; j0 < n; j0 += 256) {
    int nc = n - j0 < 256 ? n - j0 : 256;
    gemm(A, rsa, csa, B + j0 * csb, rsb, csb, C + j0, ldc, 0, m, nc, K, pack, accumulate);
  }
}

/** e^x, 0 below −87.3 (where float32's e^x leaves the normal range; exp4 clamps there): a masked score (≈ −3.4e38)
 * gets exactly 0, as the composite's exp gives it, so no gradient reaches a masked key. */
static inline v128_t exp_or_0(v128_t x) {
  return wasm_v128_and(exp4(x), wasm_f32x4_gt(x, splat(-87.3f)));
}

/** Scores s_j·qk + mask_j of a row (T wide) → e_j = exp(score − max), in place; returns the row's max and sum of e in
 * ms[0], ms[1]. The forward divides by the sum after the product with v (d numbers a row, not T). */
static void exp_row(float* s, const float* mask, int T, float qk, float* ms) {
  v128_t vqk = splat(qk), vm = splat(-3.4028234663852886e38f);
  FOR4(int, j, T, n,
    v128_t x = wasm_f32x4_add(wasm_f32x4_mul(load_n(s + j, n), vqk), load_n(mask + j, n));
    store_n(s + j, x, n);
    if (n < 4) x = wasm_v128_bitselect(x, vm, wasm_i32x4_gt(wasm_i32x4_splat(n), wasm_i32x4_make(0, 1, 2, 3)));
    vm = wasm_f32x4_pmax(vm, x);
  )
  vm = wasm_f32x4_pmax(vm, wasm_i32x4_shuffle(vm, vm, 2, 3, 0, 1));
  float mx = wasm_f32x4_extract_lane(wasm_f32x4_pmax(vm, wasm_i32x4_shuffle(vm, vm, 1, 0, 3, 2)), 0);
  v128_t acc = splat(0.0f), vmx = splat(mx);
  FOR4(int, j, T, n,
    v128_t e = exp_or_0(wasm_f32x4_sub(load_n(s + j, n), vmx));
    if (n < 4) e = wasm_v128_and(e, wasm_i32x4_gt(wasm_i32x4_splat(n), wasm_i32x4_make(0, 1, 2, 3)));
    store_n(s + j, e, n);
    acc = wasm_f32x4_add(acc, e);
  )
  ms[0] = mx;
  ms[1] = hsum(acc);
}

/** Forward of query rows [i0, i0 + qb) of head bh: ctx rows and their (max, sum). */
static void attention_block(const struct attn_args* a, int bh, int i0, float* scratch) {
  int T = a->T, H = a->H, d = a->d, qb = T - i0 < ATTN_QB ? T - i0 : ATTN_QB;
  long base = (long)(bh / a->nh) * T * H + (long)(bh % a->nh) * d;
  const float* mask = a->mask + (long)(bh / a->nh) * T;
  float *pack = scratch, *S = scratch + PACK_FLOATS;
  gemm_wide(a->q + base + (long)i0 * H, H, 1, a->k + base, 1, H, S, T, qb, T, d, pack, 0); // q·kᵀ
  float* stats = a->stats + ((long)bh * T + i0) * 3;
  for (int i = 0; i < qb; i++) {
    float* row = S + (long)i * T;
    exp_row(row, mask, T, a->qk, stats + 3 * i);
    if (a->probs) { // p = e/sum, for the backward
      float* p = a->probs + ((long)bh * T + i0 + i) * T;
      v128_t vs = splat(stats[3 * i + 1]);
      FOR4(int, j, T, n, store_n(p + j, wasm_f32x4_div(load_n(row + j, n), vs), n);)
    }
    if (a->threshold != 0) {
      unsigned flat = ((unsigned)bh * T + i0 + i) * T;
      FOR4(int, j, T, n, store_n(row + j, dropout4(load_n(row + j, n), flat + j, a->key, a->threshold, a->dscale), n);)
    }
  }
  float* ctx = a->ctx + base + (long)i0 * H;
  gemm(S, T, 1, a->v + base, H, 1, ctx, H, 0, qb, d, T, pack, 0); // (e∘D)·v
  for (int i = 0; i < qb; i++) { // ÷ the row's sum: p = e/sum
    v128_t vs = splat(stats[3 * i + 1]);
    FOR4(int, c, d, n, store_n(ctx + (long)i * H + c, wasm_f32x4_div(load_n(ctx + (long)i * H + c, n), vs), n);)
  }
}

/** Backward of head bh from the saved probabilities: dq, dk, dv of its columns, query block by block (dk and dv summed
 * over the blocks in order). */
static void attention_grad_head(const struct attn_args* a, int bh, float* scratch) {
  int T = a->T, H = a->H, d = a->d;
  long base = (long)(bh / a->nh) * T * H + (long)(bh % a->nh) * d;
  float *pack = scratch, *S = scratch + PACK_FLOATS, *dP = S + ATTN_QB * ATTN_MAX_T;
  for (int i0 = 0; i0 < T; i0 += ATTN_QB) {
    int qb = T - i0 < ATTN_QB ? T - i0 : ATTN_QB;
    const float *q = a->q + base + (long)i0 * H, *dO = a->dctx + base + (long)i0 * H;
    const float* saved = a->probs + ((long)bh * T + i0) * T;
    gemm_wide(dO, H, 1, a->v + base, 1, H, dP, T, qb, T, d, pack, 0); // dctx·vᵀ = d(p∘D)
    for (int i = 0; i < qb; i++) {
      float *p = S + (long)i * T, *dp = dP + (long)i * T;
      const float* c = a->ctx + base + (long)(i0 + i) * H;
      float delta = 0.0f; // rowsum(dP∘p) = dctx·ctx
      for (int x = 0; x < d; x++) delta += dO[(long)i * H + x] * c[x];
      const float* src = saved + (long)i * T; // the probabilities
      unsigned flat = ((unsigned)bh * T + i0 + i) * T;
      v128_t vdelta = splat(delta), vqk = splat(a->qk);
      FOR4(int, j, T, n, // p∘D (for dv) to the scratch, dp ← qk·p∘(dP∘D − delta) (for dq, dk)
        v128_t pj = load_n(src + j, n), g = load_n(dp + j, n);
        if (a->threshold != 0) {
          g = dropout4(g, flat + j, a->key, a->threshold, a->dscale);
          store_n(p + j, dropout4(pj, flat + j, a->key, a->threshold, a->dscale), n);
        }
        store_n(dp + j, wasm_f32x4_mul(wasm_f32x4_mul(pj, wasm_f32x4_sub(g, vdelta)), vqk), n);
      )
    }
    const float* pd = a->threshold == 0 ? saved : S; // p∘D: without dropout the saved probabilities themselves
    gemm(pd, 1, T, dO, H, 1, a->dv + base, H, 0, T, d, qb, pack, i0 > 0); // dv += (p∘D)ᵀ·dctx
    gemm(dP, 1, T, q, H, 1, a->dk + base, H, 0, T, d, qb, pack, i0 > 0); // dk += dSᵀ·q
    gemm(dP, T, 1, a->k + base, H, 1, a->dq + base + (long)i0 * H, H, 0, qb, d, T, pack, 0); // dq = dS·k
  }
}

/** Units [u0, u1) of the attention forward (unit = head·blocks + query block) or backward (unit = head); scratch: the
 * calling thread's (ATTN_SCRATCH_FLOATS). */
__attribute__((export_name("attention_units")))
void attention_units(int backward, const struct attn_args* a, int u0, int u1, float* scratch) {
  int blocks = (a->T + ATTN_QB - 1) / ATTN_QB;
  for (int u = u0; u < u1; u++) {
    if (backward) attention_grad_head(a, u, scratch);
    else attention_block(a, u / blocks, (u % blocks) * ATTN_QB, scratch);
  }
}
