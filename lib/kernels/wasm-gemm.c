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
  for (int k = 0; k < kc; k++, dst += NR) {
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

/**
 * C[m × n] = A[m × K] · B[K × n] (+ bias[n]) with A(i, k) = A[i·rsa + k·csa], B(k, j) = B[k·rsb + j·csb],
 * C(i, j) = C[i·ldc + j]. pack: scratch of KC × round_up(n, NR) floats. Sums over k run in blocks of KC, each block's
 * sum added to C in order, so the result does not depend on how the caller splits rows and columns into tiles.
 */
__attribute__((export_name("gemm_tile")))
void gemm_tile(const float* A, int rsa, int csa, const float* B, int rsb, int csb, float* C, int ldc, const float* bias, int m, int n, int K, float* pack) {
  for (int k0 = 0; k0 < K; k0 += KC) {
    int kc = K - k0 < KC ? K - k0 : KC;
    int first = k0 == 0, last = k0 + kc == K;
    const float* bb = last ? bias : 0;
    for (int j0 = 0; j0 < n; j0 += NR) {
      int cols = n - j0 < NR ? n - j0 : NR;
      pack_b(B + k0 * rsb + j0 * csb, rsb, csb, kc, cols, pack + j0 * KC);
    }
    const float* ak = A + k0 * csa;
    int i = 0;
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
