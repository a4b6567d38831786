// Pthread worker for tfjs-backend-wasm's threaded SIMD build under Node (the library disables threads in Node,
// tensorflow/tfjs#3830, and points workers at a blob: URL that Node cannot load). The published worker file only
// exports the worker's source as a string, so run that source here as the classic worker script it was written as.
"use strict";
globalThis.module = { exports: {} }; // the main script it imports ends with `module.exports.x = ...`
globalThis.require = require;
globalThis.__filename = __filename;
const source = require("@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js").wasmWorkerContents;
// The template literal it came from turned "\n" escapes inside string literals into real newlines: restore them.
(0, eval)(source.replace(/\n/g, "\\n"));
