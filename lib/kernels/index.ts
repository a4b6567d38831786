// Kernels the library adds to TensorFlow.js backends so the model trains fast on them (see each file for why).
import { installWasmExtraKernels } from "./wasm-extra";
import { installWasmFusedKernels } from "./wasm-fused";
import { installWasmMatMul } from "./wasm-matmul";

/** Install our wasm kernels (idempotent). Call after `require("@tensorflow/tfjs-backend-wasm")`. */
export function installWasmKernels(): void {
  installWasmExtraKernels(); // first: the matmul kernels take the Transpose registered at install time
  installWasmMatMul();
  installWasmFusedKernels();
}
