// Forward latency of a randomly initialised model on one input, per backend: the median of a few runs after a warm-up.
// Usage: node --import tsx test/bench/forward.bench.ts [--config base] [--seq-len 384] [--batch 1] [--runs 3] [--warmup 1]
//        [--backends cpu,wasm] [--grad]      (--grad times forward + backward of the QA loss instead)
// Prints one JSON object per backend. Not a test: timings depend on the machine and its load.
import * as tf from "@tensorflow/tfjs";
import { forward, initModel, qaLoss, disposeModel } from "../../lib/bert";
import { presetConfig, type PresetName } from "../../lib/config";
import { useBackend, type BackendName } from "../../lib/backend";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
}


async function main(): Promise<void> {
  const preset = arg("config", "base") as PresetName;
  const T = Number(arg("seq-len", "384")), B = Number(arg("batch", "1")), runs = Number(arg("runs", "3"));
  const grad = process.argv.includes("--grad");
  const warmup = Number(arg("warmup", "1"));
  for (const backend of arg("backends", "wasm,cpu").split(",")) {
    const choice = await useBackend(backend as BackendName); // as the CLI does: wasm gets the project's kernels and threads
    const config = presetConfig(preset, { vocabSize: 30522 });
    const model = initModel(config, "qa", 0);
    const ids = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (t * 7919 + b * 31 + 1) % config.vocab_size));
    const batch = { inputIds: tf.tensor2d(ids, [B, T], "int32"), attentionMask: tf.ones([B, T], "int32") as tf.Tensor2D, tokenTypeIds: tf.zeros([B, T], "int32") as tf.Tensor2D };
    const positions = tf.tensor1d(new Array(B).fill(1), "int32");
    const once = (): number => {
      const t0 = performance.now();
      if (grad) {
        const { value, grads } = tf.variableGrads(() => {
          const o = forward(model, batch, { training: true, seed: 1 });
          return qaLoss(o.startLogits!, o.endLogits!, positions, positions);
        }, Object.values(model.params));
        value.dataSync();
        tf.dispose([value, ...Object.values(grads)]);
      } else {
        const out = forward(model, batch);
        out.startLogits!.dataSync();
        tf.dispose(out as unknown as tf.Tensor[]);
      }
      return performance.now() - t0;
    };
    for (let i = 0; i < warmup; i++) once(); // warm-up: kernel setup, weight packing
    const times = Array.from({ length: runs }, once).sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    console.log(JSON.stringify({ backend, detail: choice.detail, config: preset, batch: B, seq_len: T, mode: grad ? "forward+backward" : "forward", median_ms: Math.round(median), runs_ms: times.map(Math.round) }));
    disposeModel(model);
    tf.dispose([batch.inputIds, batch.attentionMask, batch.tokenTypeIds, positions]);
  }
}

// Exit explicitly: the threaded wasm build's worker threads would keep the process alive.
main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
