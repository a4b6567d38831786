// A thread of lib/kernels/wasm-gemm.ts's pool in a browser: the Web Worker twin of lib/kernels/wasm-gemm-worker.cjs.
// It instantiates the GEMM module on the shared tfjs heap, says it is ready, then sleeps until the training thread
// posts a job (a generation bump), takes output tiles until none are left, and sleeps again.
const { SLOT, runUnits } = require("../kernels/wasm-gemm-units.cjs") as {
  SLOT: { GEN: number; STOP: number };
  runUnits(ctrl: Int32Array, tag: number, code: object, pack: number): void;
};

self.onmessage = (e: MessageEvent<{ gemmModule: WebAssembly.Module; memory: WebAssembly.Memory; control: SharedArrayBuffer; pack: number }>) => {
  const { gemmModule, memory, control, pack } = e.data;
  const ctrl = new Int32Array(control);
  const code = new WebAssembly.Instance(gemmModule, { env: { memory } }).exports;
  postMessage("ready");
  for (let gen = Atomics.load(ctrl, SLOT.GEN); ; ) {
    Atomics.wait(ctrl, SLOT.GEN, gen);
    gen = Atomics.load(ctrl, SLOT.GEN);
    if (Atomics.load(ctrl, SLOT.STOP) !== 0) break;
    runUnits(ctrl, gen, code, pack);
  }
  close();
};
