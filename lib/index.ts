// The public API, one import for notebooks and scripts: `import { loadSquad, trainQA, showTable } from "./lib"`.
// Each concept stays in its own module (read those for the details); internals keep importing each other directly.
// `export *` picks up what a module adds later; a name two modules share is resolved explicitly at the bottom.

// Datasets: SQuAD/CMRC JSON and classification CSV, downloads, the embedded sample.
export * from "./squad";
export * from "./download";
export { SAMPLE_FILES } from "./sample"; // the rest of lib/sample.ts generates data/ (`npm run sample`)

// Tokenizer and model inputs.
export * from "./tokenizer";
export * from "./features";

// The model: config.json, parameters and forward pass, attention, summary, checkpoints.
export * from "./config";
export * from "./bert";
export { attention } from "./fused"; // the multi-head attention forward() runs (notebook 03's exercise checks it)
export * from "./summary";
export * from "./weights";

// Training: the loop, AdamW and its learning-rate schedule; models held by notebook cells, and stopping long work (■).
export * from "./train";
export { DEMO, runDemo, type DemoOptions, type DemoSummary } from "./demo";
export { checkTrainOutDir, newestCheckpoint, type RunDir, type TrainerState } from "./rundir";
export * from "./optim";
export { benchInference, benchTraining, type BenchOptions, type BenchResult } from "./bench"; // timing steps, as bertqa bench does
export * from "./session";
export * from "./stop";

// Prediction and scores.
export * from "./postprocess";
export * from "./predict";
export * from "./metrics";

// Sharing: a trained model and its card on the Hugging Face Hub.
export * from "./push";
export * from "./model-card";

// Where it runs, what it shows, and how mistakes are reported. `fs`, `path` and `env` are Node's fs, path and
// process.env under Node and their browser twins in a page (lib/platform): cells that use them run in both.
export { env, fs, path, platformName } from "./platform";
export * from "./backend";
export * from "./display";
export * from "./progress";
export * from "./errors";

// Names two modules export: loadSquad's options stay `LoadOptions` (as in lib/squad.ts), loadModel's are renamed.
export type { LoadOptions } from "./squad";
export type { LoadOptions as ModelLoadOptions } from "./weights";
