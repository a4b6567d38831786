// The part of lib/kernels/wasm-gemm.ts that its pool threads run too (plain JS, so worker threads load it without
// a TypeScript loader): the job's slots in the shared control array, and taking and computing output tiles.
"use strict";

/** Int32 slots of the control array. NEXT packs the job's tag (12 bits) and the units not yet taken (20 bits). A job
 * is a product (KIND 0: its tiles), a row kernel (KIND 1: blocks of RPU rows; EPS holds a float32's bits) or attention
 * (KIND 2: OP 0 forward, a head's block of query rows per unit, or 1 backward, a head per unit; P0 its arguments). */
const SLOT = { GEN: 0, STOP: 1, NEXT: 2, DONE: 3, TOTAL: 4, A: 5, RSA: 6, CSA: 7, B: 8, RSB: 9, CSB: 10, C: 11, LDC: 12, BIAS: 13,
  M: 14, N: 15, K: 16, SA: 17, SB: 18, SC: 19, MC: 20, NC: 21, UNITS_M: 22, UNITS_N: 23, FAILED: 24,
  KIND: 25, OP: 26, P0: 27, ROWS: 33, COLS: 34, RPU: 35, EPS: 36, SIZE: 37 }; // P0 … P0 + 5: the row kernel's tensors
const TAG_SHIFT = 20, LEFT_MASK = (1 << TAG_SHIFT) - 1, TAG_MASK = 0xfff;

/**
 * Take units of job `tag` until none are left, computing each with the module's gemm_tile, row_kernel or
 * attention_units (`pack`: this thread's scratch). A unit is
 * taken by decrementing NEXT while its tag is still this job's; the job's slots are read only after that, when they
 * cannot change (the main thread writes the next job only once every taken unit is counted in DONE).
 */
function runUnits(ctrl, tag, code, pack) {
  tag &= TAG_MASK;
  for (;;) {
    const v = Atomics.load(ctrl, SLOT.NEXT);
    if ((v >>> TAG_SHIFT) !== tag || (v & LEFT_MASK) === 0) return;
    if (Atomics.compareExchange(ctrl, SLOT.NEXT, v, v - 1) !== v) continue;
    const total = ctrl[SLOT.TOTAL];
    try {
      const kind = ctrl[SLOT.KIND], u = (v & LEFT_MASK) - 1;
      if (kind === 0) runUnit(ctrl, u, code.gemm_tile, pack);
      else if (kind === 1) runRows(ctrl, u, code.row_kernel);
      else code.attention_units(ctrl[SLOT.OP], ctrl[SLOT.P0] >>> 0, u, u + 1, pack);
    } catch {
      Atomics.store(ctrl, SLOT.FAILED, 1); // a trap: the tile still counts as done, so the main thread never waits forever
    }
    if (Atomics.add(ctrl, SLOT.DONE, 1) + 1 === total) Atomics.notify(ctrl, SLOT.DONE);
  }
}

/** Tile u: batch b, rows [m0, m0 + MC), columns [n0, n0 + NC) of C (byte addresses into the heap). */
function runUnit(ctrl, u, gemmTile, pack) {
  const s = SLOT, perBatch = ctrl[s.UNITS_M] * ctrl[s.UNITS_N];
  const b = Math.floor(u / perBatch), r = u % perBatch, mi = Math.floor(r / ctrl[s.UNITS_N]), ni = r % ctrl[s.UNITS_N];
  const m0 = mi * ctrl[s.MC], n0 = ni * ctrl[s.NC];
  const m = Math.min(ctrl[s.MC], ctrl[s.M] - m0), n = Math.min(ctrl[s.NC], ctrl[s.N] - n0);
  const a = (ctrl[s.A] >>> 0) + 4 * (b * ctrl[s.SA] + m0 * ctrl[s.RSA]);
  const bb = (ctrl[s.B] >>> 0) + 4 * (b * ctrl[s.SB] + n0 * ctrl[s.CSB]);
  const c = (ctrl[s.C] >>> 0) + 4 * (b * ctrl[s.SC] + m0 * ctrl[s.LDC] + n0);
  const bias = ctrl[s.BIAS] === 0 ? 0 : (ctrl[s.BIAS] >>> 0) + 4 * n0;
  gemmTile(a, ctrl[s.RSA], ctrl[s.CSA], bb, ctrl[s.RSB], ctrl[s.CSB], c, ctrl[s.LDC], bias, m, n, ctrl[s.K], pack);
}

/** Rows [u·RPU, (u + 1)·RPU) of a row kernel. */
function runRows(ctrl, u, rowKernel) {
  const s = SLOT, r0 = u * ctrl[s.RPU], r1 = Math.min(ctrl[s.ROWS], r0 + ctrl[s.RPU]);
  const p = (i) => ctrl[s.P0 + i] >>> 0;
  const eps = new Float32Array(ctrl.buffer, 4 * s.EPS, 1)[0];
  rowKernel(ctrl[s.OP], p(0), p(1), p(2), p(3), p(4), p(5), ctrl[s.COLS], eps, r0, r1, u);
}

module.exports = { SLOT, TAG_SHIFT, TAG_MASK, runUnits };
