import * as tf from "@tensorflow/tfjs";
(async () => {
  require("@tensorflow/tfjs-backend-wasm");
  await tf.setBackend("wasm");
  const G = 12, M = 384, K = 384;
  const x = tf.randomNormal([G, M, K]);
  const time = (label: string, f: () => tf.Tensor[]) => {
    tf.dispose(f());
    const t0 = performance.now();
    for (let r = 0; r < 3; r++) tf.dispose(f());
    console.log(label.padEnd(30), ((performance.now() - t0) / 3).toFixed(1), "ms for", G, "pieces");
  };
  time("gather 3d", () => Array.from({ length: G }, (_, i) => tf.tidy(() => tf.gather(x, tf.tensor1d([i], "int32")))));
  time("gather 2d reshaped", () => Array.from({ length: G }, (_, i) => tf.tidy(() => tf.gather(x.reshape([G, M * K]), tf.tensor1d([i], "int32")))));
  time("slice", () => Array.from({ length: G }, (_, i) => tf.slice(x, [i, 0, 0], [1, M, K])));
  time("stridedSlice", () => Array.from({ length: G }, (_, i) => tf.stridedSlice(x, [i, 0, 0], [i + 1, M, K])));
  time("split", () => tf.split(x, G, 0));
  time("unstack", () => tf.unstack(x));
})();
