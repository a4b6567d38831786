// Multi-head attention, dropout(softmax(q·kᵀ/√d + mask))·v, in one launch forward and two backward, reading each head
// where the Q, K and V layers put it.
import { DROPOUT_WGSL } from "../../dropout";
import { type Args, type Info, type Uniform, record, wroteInPlace } from "./common";

export const ATTENTION = "BertqaAttention";
export const ATTENTION_GRAD_Q = "BertqaAttentionGradQ";
export const ATTENTION_GRAD_KV = "BertqaAttentionGradKV";
/** Longest sequence and widest head of the attention kernels (a thread covers 4 slabs of 32 head columns; T is BERT's
 * 512, which the tests reach, and keeps the dropout's flat index B·nh·T² within u32 for any batch up to 16384 heads). */
export const ATTENTION_MAX_T = 512;
export const ATTENTION_MAX_D = 128;

// --- attention --------------------------------------------------------------------------------------------------------

// Per head (bh < B·nh, b = bh / nh, h = bh % nh) with q, k, v [B, T, H] as the dense layers make them (head h is
// columns h·d … h·d + d − 1: the kernels read and write that layout, so no transposes to and from [B·nh, T, d] around
// them) and mask [B,1,1,T] (additive: 0 or float32 min): s = q·kᵀ·qk + mask (qk = 1/√d, applied to each finished dot
// product, and to dq and dk as they are written), p = softmax(s) by rows, ctx = (p∘D)·v with D the dropout factors (0
// or 1/(1 − rate)) of lib/dropout.ts's mask at the flat index (bh·T + i)·T + j of the composite's [B, nh, T, T] probs;
// threshold 0 and scale 1 (rate 0) keep every p as it is. Values follow the composite's operation order as far as the
// tiling allows (dS = dP∘p − rowsum(dP∘p)·p, dP = (dctx·vᵀ)∘D, every dot product summed in index order), so they stay
// within float32 rounding of it; the forward's softmax is online (exp(s − running max), rescaled as the max grows,
// divided by the sum at the end). The row max and sum saved for the backward pass are those of the undropped softmax.
// Tiling (FlashAttention-2's structure): 256 threads per workgroup, dispatch [⌈T/64⌉, B·nh]; a workgroup takes a block
// of ATTN_BLOCK = 64 query rows (forward, GradQ) or keys (GradKV) of one head and walks the other side in tiles staged
// in workgroup memory (≤ 16 KB, WebGPU's default limit), so k, v (or q, dctx) are read once per block, not per row.
// Global reads per head in units of T·d: forward T/32 + T/32 (24 at T = 384; it was 2T + 1 = 769 with a workgroup per
// row), GradQ T/16 + 3T/64 + 2 (44; was 3T + 2, then 78 with a second key pass for delta), GradKV T/16 + 2 (26; was
// 4T + 2). GradQ's delta = dctx·ctx (FlashAttention-2) from the saved output costs H floats per token per layer.
const ATTN_BLOCK = 64;
const attentionHeader = (outs: string[], ins: string[], decls: string) => `
struct Dims { T : u32, d : u32, nh : u32, key : u32, threshold : u32, scale : f32, qk : f32 };
${outs.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n} : array<f32>;`).join("\n")}
${ins.map((n, i) => `@group(0) @binding(${outs.length + i}) var<storage, read> ${n} : array<f32>;`).join("\n")}
@group(0) @binding(${outs.length + ins.length}) var<uniform> u : Dims;
const WG = 256u;
const LOWEST = bitcast<f32>(0xff7fffffu); // -FLT_MAX
${DROPOUT_WGSL}
fn dropScale(i : u32) -> f32 { return select(0.0, u.scale, dropoutKeep(u.key, u.threshold, i)); } // D at flat index i
${decls}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let T = u.T;
  let d = u.d;
  let H = u.nh * d;
  let bh = wid.y;
  let mBase = (bh / u.nh) * T;
  let base = (bh / u.nh) * T * H + (bh % u.nh) * d; // (row i, column c) of this head in q, k, v, ctx and their
  // gradients is at base + i·H + c
  let ox = tid & 31u; // [64, d] outputs: rows oy + 8m (m < 8), columns ox + 32k (k < 4, ox + 32k < d)
  let oy = tid >> 5u;`;

/** [ctx, stats]: ctx [B, T, H]; stats [B·nh, T, 3] = each score row's max and sum of exp (for the backward pass)
 * and a third column left unwritten, which GradQ fills with delta in place (see ATTENTION_GRAD_Q_WGSL).
 * Per key tile of 32: scores s = q·kᵀ (q and kᵀ staged in chunks of 16 columns; thread (sr, sx) holds s[sr][8sx..8sx+7]),
 * online softmax (row max m, sum l of exp(s − m), ctx accumulator rescaled by exp(m_old − m_new)), exp(s − m)·D to
 * `ps`, then ctx += ps·v with v staged by rows; ctx / l at the end. Workgroup memory 16192 bytes. */
export const ATTENTION_WGSL = `${attentionHeader(["Ctx", "Stats"], ["Q", "K", "V", "M"], `
const BR = 64u; // query rows per workgroup
const BC = 32u; // keys per tile
const DC = 16u; // columns per staged chunk of q and kᵀ
const KS = 1088u; // stage: q chunk [BR][DC + 1] at 0, kᵀ chunk [DC][BC + 1] at KS; then v rows [jn][d] at 0
const PSTR = 33u;
var<workgroup> stage : array<f32, 1616>;
var<workgroup> ps : array<f32, 2112>; // [BR][PSTR]: exp(s − m)·D of the current tile
var<workgroup> red : array<f32, 256>;
var<workgroup> rowf : array<f32, 64>; // per row: the tile's rescale factor, at the end l`)}
  let sr = tid >> 2u; // scores: row sr, keys 8sx + k (k < 8) of the tile
  let sx = tid & 3u;
  let i0 = wid.x * BR;
  let si = i0 + sr;
  let sRow = bh * T + si;
  let jn = min(BC, 1024u / d); // v rows per staged chunk
  var acc = array<f32, 32>(); // ctx[i0 + oy + 8m][ox + 32k] at m * 4 + k
  var mRow = LOWEST;
  var lRow = 0.0;
  for (var j0 = 0u; j0 < T; j0 += BC) {
    var s = array<f32, 8>();
    for (var c0 = 0u; c0 < d; c0 += DC) {
      workgroupBarrier();
      for (var e = tid; e < BR * DC; e += WG) {
        let i = i0 + e / DC;
        let c = c0 + e % DC;
        var x = 0.0;
        if (i < T && c < d) { x = Q[base + i * H + c]; }
        stage[(e / DC) * (DC + 1u) + e % DC] = x;
      }
      for (var e = tid; e < DC * BC; e += WG) { // read along k's rows, stored transposed
        let c = c0 + e % DC;
        let j = j0 + e / DC;
        var x = 0.0;
        if (c < d && j < T) { x = K[base + j * H + c]; }
        stage[KS + (e % DC) * (BC + 1u) + e / DC] = x;
      }
      workgroupBarrier();
      for (var cc = 0u; cc < min(DC, d - c0); cc++) { // not cc < DC: unrolled, lavapipe took ~75 s (not ~20) to compile the 3
        let qv = stage[sr * (DC + 1u) + cc];
        for (var k = 0u; k < 8u; k++) { s[k] += qv * stage[KS + cc * (BC + 1u) + 8u * sx + k]; }
      }
    }
    var tmax = LOWEST;
    for (var k = 0u; k < 8u; k++) {
      let j = j0 + 8u * sx + k;
      if (j < T) { s[k] = s[k] * u.qk + M[mBase + j]; tmax = max(tmax, s[k]); }
    }
    red[tid] = tmax;
    workgroupBarrier();
    let mNew = max(mRow, max(max(red[sr * 4u], red[sr * 4u + 1u]), max(red[sr * 4u + 2u], red[sr * 4u + 3u])));
    let alpha = exp(mRow - mNew);
    var tsum = 0.0;
    for (var k = 0u; k < 8u; k++) {
      let j = j0 + 8u * sx + k;
      var ex = 0.0;
      var pd = 0.0;
      if (j < T) { ex = exp(s[k] - mNew); pd = ex * dropScale(sRow * T + j); }
      tsum += ex;
      ps[sr * PSTR + 8u * sx + k] = pd;
    }
    workgroupBarrier();
    red[tid] = tsum;
    if (sx == 0u) { rowf[sr] = alpha; }
    workgroupBarrier();
    lRow = lRow * alpha + ((red[sr * 4u] + red[sr * 4u + 1u]) + (red[sr * 4u + 2u] + red[sr * 4u + 3u]));
    mRow = mNew;
    for (var m = 0u; m < 8u; m++) {
      let a = rowf[oy + 8u * m];
      for (var k = 0u; k < 4u; k++) { acc[m * 4u + k] *= a; }
    }
    for (var jc = 0u; jc < BC; jc += jn) {
      let n = min(jn, BC - jc);
      workgroupBarrier();
      for (var e = tid; e < n * d; e += WG) {
        let j = j0 + jc + e / d;
        var x = 0.0;
        if (j < T) { x = V[base + j * H + e % d]; }
        stage[e] = x;
      }
      workgroupBarrier();
      for (var jj = 0u; jj < n; jj++) {
        var pr = array<f32, 8>();
        for (var m = 0u; m < 8u; m++) { pr[m] = ps[(oy + 8u * m) * PSTR + jc + jj]; }
        for (var k = 0u; k < 4u; k++) {
          let c = ox + 32u * k;
          if (c < d) {
            let vv = stage[jj * d + c];
            for (var m = 0u; m < 8u; m++) { acc[m * 4u + k] += pr[m] * vv; }
          }
        }
      }
    }
  }
  if (sx == 0u) {
    rowf[sr] = lRow;
    if (si < T) { Stats[sRow * 3u] = mRow; Stats[sRow * 3u + 1u] = lRow; }
  }
  workgroupBarrier();
  for (var m = 0u; m < 8u; m++) {
    let i = i0 + oy + 8u * m;
    let l = rowf[oy + 8u * m];
    for (var k = 0u; k < 4u; k++) {
      let c = ox + 32u * k;
      if (i < T && c < d) { Ctx[base + i * H + c] = acc[m * 4u + k] / l; }
    }
  }
}`;

// The two gradient kernels' staging of one chunk of DC columns (c0 …) of n rows (rows past T and columns past d read as
// zero), read along the rows of the [B, T, H] inputs: q and dctx as [n][DC + 1] at qAt and oAt; k transposed,
// [DC][n + 1] at kAt, and v as [n][DC + 1] at vAt. The +1 strides keep the transposed stores off a single bank.
const GRAD_STAGING = `
fn stageQO(base : u32, i0 : u32, n : u32, c0 : u32, qAt : u32, oAt : u32, tid : u32) {
  for (var e = tid; e < n * DC; e += WG) {
    let i = i0 + e / DC;
    let c = c0 + e % DC;
    var x = 0.0;
    var y = 0.0;
    if (i < u.T && c < u.d) { x = Q[base + i * u.nh * u.d + c]; y = DO[base + i * u.nh * u.d + c]; }
    let at = (e / DC) * (DC + 1u) + e % DC;
    stage[qAt + at] = x;
    stage[oAt + at] = y;
  }
}
fn stageKV(base : u32, j0 : u32, n : u32, c0 : u32, kAt : u32, vAt : u32, tid : u32) {
  for (var e = tid; e < n * DC; e += WG) {
    let j = j0 + e / DC;
    let c = c0 + e % DC;
    var x = 0.0;
    var y = 0.0;
    if (j < u.T && c < u.d) { x = K[base + j * u.nh * u.d + c]; y = V[base + j * u.nh * u.d + c]; }
    stage[kAt + (e % DC) * (n + 1u) + e / DC] = x;
    stage[vAt + (e / DC) * (DC + 1u) + e % DC] = y;
  }
}`;

/** [dq]: dq = dS·k·qk [B, T, H], and the forward's stats [B·nh, T, 3] completed in place to rows = (max, sum, delta) for
 * GradKV. delta = rowsum(dP∘p) = dctx·ctx per row (FlashAttention-2's identity, ctx = (p∘D)·v; equal up to rounding),
 * one T·d pass at the start; then one pass over key tiles of 32 (the forward's score mapping, q, dctx, kᵀ, v staged in
 * chunks of 8 columns) writes dS = dP∘p − delta·p to `ps` and adds dS·k (kᵀ staged) into dq. Bindings: DQ, Rows
 * (stats, read_write) + Q, K, V, M, DO, Ctx = 8 storage buffers, maxStorageBuffersPerShaderStage's default (a separate
 * rows output would make 9). Workgroup memory 15264 bytes. */
export const ATTENTION_GRAD_Q_WGSL = `${attentionHeader(["DQ", "Rows"], ["Q", "K", "V", "M", "DO", "Ctx"], `
const BR = 64u; // query rows per workgroup
const BC = 32u; // keys per tile
const DC = 8u; // columns per staged chunk
const OS = 576u; // stage: q chunk [BR][DC + 1] at 0, dctx chunk at OS, kᵀ chunk [DC][BC + 1] at KS, v chunk [BC][DC + 1] at VS;
const KS = 1152u; // then kᵀ [d][n + 1] at 0
const VS = 1416u;
const PSTR = 33u;
var<workgroup> stage : array<f32, 1704>;
var<workgroup> ps : array<f32, 2112>; // [BR][PSTR]: dS of the current tile
${GRAD_STAGING}`)}
  let sr = tid >> 2u;
  let sx = tid & 3u;
  let i0 = wid.x * BR;
  let si = i0 + sr;
  let sRow = bh * T + si;
  var mStat = 0.0;
  var lStat = 1.0;
  var part = 0.0; // delta's columns sx + 4n of row si
  if (si < T) {
    mStat = Rows[sRow * 3u];
    lStat = Rows[sRow * 3u + 1u];
    for (var c = sx; c < d; c += 4u) { part += DO[base + si * H + c] * Ctx[base + si * H + c]; }
  }
  ps[tid] = part;
  workgroupBarrier();
  let delta = (ps[sr * 4u] + ps[sr * 4u + 1u]) + (ps[sr * 4u + 2u] + ps[sr * 4u + 3u]);
  let jn = min(BC, 1024u / d); // keys per staged chunk of kᵀ
  var acc = array<f32, 32>(); // dq[i0 + oy + 8m][ox + 32k] at m * 4 + k
  for (var j0 = 0u; j0 < T; j0 += BC) {
    // Scores of key tile j0, recomputed from the saved row max and sum: p = exp(q·kᵀ/√d + mask − m) / l and
    // gp = dP∘p = (dctx·vᵀ)·D·p for row si, keys j0 + 8sx + k (k < 8), zero outside [0, T)².
    var s = array<f32, 8>();
    var g = array<f32, 8>();
    for (var c0 = 0u; c0 < d; c0 += DC) {
      workgroupBarrier();
      stageQO(base, i0, BR, c0, 0u, OS, tid);
      stageKV(base, j0, BC, c0, KS, VS, tid);
      workgroupBarrier();
      for (var cc = 0u; cc < min(DC, d - c0); cc++) {
        let qv = stage[sr * (DC + 1u) + cc];
        let ov = stage[OS + sr * (DC + 1u) + cc];
        for (var k = 0u; k < 8u; k++) {
          s[k] += qv * stage[KS + cc * (BC + 1u) + 8u * sx + k];
          g[k] += ov * stage[VS + (8u * sx + k) * (DC + 1u) + cc];
        }
      }
    }
    var p = array<f32, 8>();
    var gp = array<f32, 8>();
    for (var k = 0u; k < 8u; k++) {
      let j = j0 + 8u * sx + k;
      if (si < T && j < T) {
        let sv = s[k] * u.qk + M[mBase + j];
        p[k] = exp(sv - mStat) / lStat;
        gp[k] = g[k] * dropScale(sRow * T + j) * p[k];
      }
    }
    for (var k = 0u; k < 8u; k++) { ps[sr * PSTR + 8u * sx + k] = gp[k] - delta * p[k]; } // dS
    for (var jc = 0u; jc < BC; jc += jn) {
      let n = min(jn, BC - jc);
      workgroupBarrier();
      for (var e = tid; e < n * d; e += WG) {
        let jj = e / d;
        let c = e % d;
        var x = 0.0;
        if (j0 + jc + jj < T) { x = K[base + (j0 + jc + jj) * H + c]; }
        stage[c * (n + 1u) + jj] = x;
      }
      workgroupBarrier();
      for (var jj = 0u; jj < n; jj++) {
        var pr = array<f32, 8>();
        for (var m = 0u; m < 8u; m++) { pr[m] = ps[(oy + 8u * m) * PSTR + jc + jj]; }
        for (var k = 0u; k < 4u; k++) {
          let c = ox + 32u * k;
          if (c < d) {
            let kv = stage[c * (n + 1u) + jj];
            for (var m = 0u; m < 8u; m++) { acc[m * 4u + k] += pr[m] * kv; }
          }
        }
      }
    }
  }
  if (sx == 0u && si < T) { Rows[sRow * 3u + 2u] = delta; }
  for (var m = 0u; m < 8u; m++) {
    let i = i0 + oy + 8u * m;
    for (var k = 0u; k < 4u; k++) {
      let c = ox + 32u * k;
      if (i < T && c < d) { DQ[base + i * H + c] = acc[m * 4u + k] * u.qk; }
    }
  }
}`;

/** [dk, dv]: dk = dSᵀ·q·qk and dv = (p∘D)ᵀ·dctx, both [B, T, H]. Per block of 64 keys, over query tiles of 16: sᵀ = k·qᵀ
 * and (v·dctxᵀ) (k, v, q, dctx staged in chunks of 8 columns; thread (kj, qx) holds queries qx + 4k), p∘D and dS to
 * `pd`, `ds`, then dv += (p∘D)ᵀ·dctx and dk += dSᵀ·q (threads: keys oy + 8m, columns ox + 32k), q and dctx staged by
 * rows. Workgroup memory 14752 bytes. */
export const ATTENTION_GRAD_KV_WGSL = `${attentionHeader(["DK", "DV"], ["Q", "K", "V", "M", "DO", "Rows"], `
const BK = 64u; // keys per workgroup
const BQ = 16u; // query rows per tile
const DC = 8u; // columns per staged chunk
const VS = 520u; // stage: kᵀ chunk [DC][BK + 1] at 0, v chunk [BK][DC + 1] at VS, q and dctx chunks [BQ][DC + 1] at QS, OS;
const QS = 1096u; // then dctx rows [n][d] at 0 and q rows at n·d
const OS = 1240u;
const PSTR = 72u; // ≡ 8 (mod 32): the score threads' stores to pd, ds hit 32 different banks
var<workgroup> stage : array<f32, 1384>;
var<workgroup> pd : array<f32, 1152>; // [BQ][PSTR]: p∘D of the current tile, by query then key
var<workgroup> ds : array<f32, 1152>; // dS likewise
${GRAD_STAGING}`)}
  let kj = tid >> 2u; // scores: key j0 + kj, queries i0 + qx + 4k (k < 4)
  let qx = tid & 3u;
  let j0 = wid.x * BK;
  let j = j0 + kj;
  var mj = 0.0;
  if (j < T) { mj = M[mBase + j]; }
  let qn = min(BQ, 512u / d); // q and dctx rows per staged chunk
  var accV = array<f32, 32>(); // dv[j0 + oy + 8m][ox + 32k] at m * 4 + k
  var accK = array<f32, 32>(); // dk[j0 + oy + 8m][ox + 32k] at m * 4 + k
  for (var i0 = 0u; i0 < T; i0 += BQ) {
    var s = array<f32, 4>();
    var g = array<f32, 4>();
    for (var c0 = 0u; c0 < d; c0 += DC) {
      workgroupBarrier();
      stageKV(base, j0, BK, c0, 0u, VS, tid);
      stageQO(base, i0, BQ, c0, QS, OS, tid);
      workgroupBarrier();
      for (var cc = 0u; cc < min(DC, d - c0); cc++) {
        let kv = stage[cc * (BK + 1u) + kj];
        let vv = stage[VS + kj * (DC + 1u) + cc];
        for (var k = 0u; k < 4u; k++) {
          let q = qx + 4u * k;
          s[k] += stage[QS + q * (DC + 1u) + cc] * kv;
          g[k] += stage[OS + q * (DC + 1u) + cc] * vv;
        }
      }
    }
    for (var k = 0u; k < 4u; k++) {
      let q = qx + 4u * k;
      let i = i0 + q;
      var a = 0.0;
      var b = 0.0;
      if (i < T && j < T) {
        let r = bh * T + i;
        let sv = s[k] * u.qk + mj;
        let p = exp(sv - Rows[r * 3u]) / Rows[r * 3u + 1u];
        let dij = dropScale(r * T + j);
        a = p * dij; // p∘D
        b = g[k] * dij * p - Rows[r * 3u + 2u] * p; // dS
      }
      pd[q * PSTR + kj] = a;
      ds[q * PSTR + kj] = b;
    }
    for (var q0 = 0u; q0 < BQ; q0 += qn) {
      let n = min(qn, BQ - q0);
      workgroupBarrier();
      for (var e = tid; e < n * d; e += WG) {
        let i = i0 + q0 + e / d;
        var x = 0.0;
        var y = 0.0;
        if (i < T) { x = DO[base + i * H + e % d]; y = Q[base + i * H + e % d]; }
        stage[e] = x;
        stage[n * d + e] = y;
      }
      workgroupBarrier();
      for (var qq = 0u; qq < n; qq++) {
        let q = q0 + qq;
        var pr = array<f32, 8>();
        var dr = array<f32, 8>();
        for (var m = 0u; m < 8u; m++) { pr[m] = pd[q * PSTR + oy + 8u * m]; dr[m] = ds[q * PSTR + oy + 8u * m]; }
        for (var k = 0u; k < 4u; k++) {
          let c = ox + 32u * k;
          if (c < d) {
            let ov = stage[qq * d + c];
            let qv = stage[(n + qq) * d + c];
            for (var m = 0u; m < 8u; m++) {
              accV[m * 4u + k] += pr[m] * ov;
              accK[m * 4u + k] += dr[m] * qv;
            }
          }
        }
      }
    }
  }
  for (var m = 0u; m < 8u; m++) {
    let jj = j0 + oy + 8u * m;
    for (var k = 0u; k < 4u; k++) {
      let c = ox + 32u * k;
      if (jj < T && c < d) {
        DV[base + jj * H + c] = accV[m * 4u + k];
        DK[base + jj * H + c] = accK[m * 4u + k] * u.qk;
      }
    }
  }
}`;

/** Inputs q, k, v [B, T, H], mask (B·T numbers, e.g. [B, 1, 1, T]) (+ dctx, ctx, stats / rows for the gradients),
 * attrs nh, the dropout's key, threshold, scale (lib/dropout.ts's dropoutParams; 0, 0, 1 for none) and scoreScale
 * (1/√d; 1 if absent): the attention kernels above. `inPlace` inputs are bound read_write after the new outputs (GradQ
 * writes delta into stats) and not returned. */
export function attentionKernel(label: string, wgsl: string, inputNames: string[], outShapes: (q: Info, heads: number) => number[][], inPlace: string[] = []) {
  return ({ inputs, backend, attrs }: Args): Info[] => {
    const q = inputs.q, [B, T, H] = q.shape, nh = attrs.nh as number, d = H / nh;
    const bound = outShapes(q, B * nh).length + inPlace.length + inputNames.length;
    const limit = backend.device.limits.maxStorageBuffersPerShaderStage as number;
    if (bound > limit) throw new Error(`${label}: ${bound} storage buffers, over the device's maxStorageBuffersPerShaderStage ${limit}`);
    const outs = outShapes(q, B * nh).map((shape) => backend.makeTensorInfo(shape, "float32"));
    const u = (x: number): Uniform => ({ type: "uint32", data: [x] });
    const a = attrs as Record<string, number | undefined>;
    record(backend, label, wgsl, [...outs, ...[...inPlace, ...inputNames].map((n) => inputs[n])],
      [u(T), u(d), u(nh), u(a.key ?? 0), u(a.threshold ?? 0), { type: "float32", data: [a.scale ?? 1] }, { type: "float32", data: [a.scoreScale ?? 1] }],
      [Math.ceil(T / ATTN_BLOCK), B * nh]);
    wroteInPlace(backend, inPlace.map((n) => inputs[n]));
    return outs;
  };
}
