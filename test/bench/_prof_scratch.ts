import * as tf from "@tensorflow/tfjs";
import { forward, initModel, qaLoss } from "../../lib/bert";
import { presetConfig } from "../../lib/config";
(async () => {
  const be = process.argv[2] ?? "wasm";
  console.log((await require("../../lib/backend").useBackend(be)).detail);
  const config = presetConfig((process.argv[3] ?? "small") as any, { vocabSize: 30522 });
  const grad = process.argv[4] === "grad";
  const B = Number(process.argv[5] ?? 1), T = Number(process.argv[6] ?? 384);
  const model = initModel(config, "qa", 0);
  const batch = { inputIds: tf.tensor2d(Array.from({ length: B }, () => Array.from({ length: T }, (_, t) => t + 5)), [B, T], "int32"), attentionMask: tf.ones([B, T], "int32") as tf.Tensor2D };
  const pos = tf.tensor1d(new Array(B).fill(3), "int32");
  const step = () => {
    if (!grad) { const o = forward(model, batch); o.startLogits!.dataSync(); tf.dispose(o as any); return; }
    const { value, grads } = tf.variableGrads(() => { const o = forward(model, batch, { training: true, seed: 1 }); return qaLoss(o.startLogits!, o.endLogits!, pos, pos); }, Object.values(model.params));
    value.dataSync(); tf.dispose([value, ...Object.values(grads)]);
  };
  step();
  let t0 = performance.now(); step(); const wall = performance.now() - t0;
  const info = await tf.profile(step);
  const agg = new Map<string, [number, number]>();
  for (const k of info.kernels) { const t = (await k.kernelTimeMs) as number; const a = agg.get(k.name) ?? [0, 0]; a[0] += t; a[1]++; agg.set(k.name, a); }
  console.log("wall ms", wall.toFixed(0), "kernels", info.kernels.length);
  for (const [n, [t, c]] of [...agg].sort((a, b) => b[1][0] - a[1][0]).slice(0, 25)) console.log(n.padEnd(24), t.toFixed(1).padStart(9), c);
})();
