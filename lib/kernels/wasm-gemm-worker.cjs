// A thread of lib/kernels/wasm-gemm.ts's pool: instantiate the GEMM module on the shared tfjs heap, then sleep until
// the main thread posts a job (a generation bump), take output tiles until none are left, and sleep again.
"use strict";
const { parentPort, workerData } = require("node:worker_threads");

const { gemmModule, memory, control, pack } = workerData;
const ctrl = new Int32Array(control);
const code = new WebAssembly.Instance(gemmModule, { env: { memory } }).exports; // gemm_tile, row_kernel
const { SLOT, runUnits } = require("./wasm-gemm-units.cjs");
const { GEN, STOP } = SLOT;
parentPort.postMessage("ready");
let gen = Atomics.load(ctrl, GEN);
for (;;) {
  Atomics.wait(ctrl, GEN, gen);
  gen = Atomics.load(ctrl, GEN);
  if (Atomics.load(ctrl, STOP) !== 0) break;
  runUnits(ctrl, gen, code, pack);
}
