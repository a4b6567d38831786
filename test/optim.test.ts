// AdamW, the schedule and clipping against PyTorch: one optimiser step from the reference gradients must land on the
// parameters torch.optim.AdamW produced (fixtures), and the schedule/clipping follow the formulas of transformers/torch.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import * as fs from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { readSafetensors } from "../lib/safetensors";
import {
  accumulateGrads, adamwStateToHost, adamwStep, createAdamW, disposeAdamW, disposeGrads, gradClipScale, gradsFinite,
  isNoDecay, linearWarmupFactor, loadAdamWState, scheduledLr, type Grads, type Params,
} from "../lib/optim";

const FIXTURES = ["tiny-bert-qa", "tiny-bert-cls", "tiny-distilbert-qa"].map((n) => path.join(__dirname, "fixtures", n));

function loadParams(file: string): Params {
  const out: Params = {};
  for (const [name, t] of readSafetensors(file).tensors) out[name] = tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape, "float32"), true));
  return out;
}

for (const dir of FIXTURES) {
  test(`one AdamW step matches torch.optim.AdamW (${path.basename(dir)})`, async () => {
    await tf.setBackend("cpu");
    const settings = JSON.parse(fs.readFileSync(path.join(dir, "case.json"), "utf8")).adamw;
    const params = loadParams(path.join(dir, "model.safetensors"));
    const grads: Grads = {};
    for (const [name, t] of readSafetensors(path.join(dir, "grads.safetensors")).tensors) grads[name] = tf.tensor(t.data, t.shape, "float32");
    const expected = readSafetensors(path.join(dir, "after_adamw_step.safetensors")).tensors;
    const opt = createAdamW(params, { lr: settings.lr, betas: settings.betas, eps: settings.eps, weightDecay: settings.weight_decay });
    adamwStep(opt, params, grads);
    assert.equal(opt.step, 1);
    let worst = 0, worstName = "";
    for (const [name, want] of expected) {
      const got = params[name].dataSync();
      for (let i = 0; i < got.length; i++) {
        const d = Math.abs(got[i] - want.data[i]);
        if (d > worst) [worst, worstName] = [d, name];
      }
    }
    assert.ok(worst <= 1e-6, `max |ours - torch| = ${worst} at ${worstName}`);
    // The step must have moved the weights (a no-op optimiser would fail here, since lr*sign(g) ~ 1e-3).
    const before = readSafetensors(path.join(dir, "model.safetensors")).tensors;
    const [someName, someBefore] = [...before].find(([n]) => !isNoDecay(n))!;
    assert.ok(Math.abs(params[someName].dataSync()[0] - someBefore.data[0]) > 1e-5);
    disposeGrads(grads);
    disposeAdamW(opt);
    for (const p of Object.values(params)) p.dispose();
  });
}

test("no-decay rule: biases and LayerNorm weights are exempt, dense and embedding weights are not", () => {
  assert.equal(isNoDecay("bert.encoder.layer.0.attention.self.query.bias"), true);
  assert.equal(isNoDecay("bert.embeddings.LayerNorm.weight"), true);
  assert.equal(isNoDecay("distilbert.transformer.layer.0.sa_layer_norm.weight"), true);
  assert.equal(isNoDecay("bert.encoder.layer.0.attention.self.query.weight"), false);
  assert.equal(isNoDecay("bert.embeddings.word_embeddings.weight"), false);
});

test("linear schedule equals transformers' get_linear_schedule_with_warmup lambda", () => {
  // Hand-computed from lr_lambda: step < warmup ? step/warmup : max(0, (total-step)/(total-warmup)); warmup 10, total 110.
  const table: [number, number][] = [[0, 0], [1, 0.1], [5, 0.5], [10, 1], [11, 0.99], [60, 0.5], [109, 0.01], [110, 0], [200, 0]];
  for (const [step, want] of table) assert.ok(Math.abs(linearWarmupFactor(step, 10, 110) - want) < 1e-12, `step ${step}`);
  // Without warm-up the first update uses the full rate (max(1, 0) guards the division).
  assert.equal(linearWarmupFactor(0, 0, 4), 1);
  assert.equal(linearWarmupFactor(3, 0, 4), 0.25);
  assert.equal(scheduledLr(5e-4, 5, 10, 110), 2.5e-4);
});

test("gradClipScale gives clip_grad_norm_'s norm and coefficient min(1, maxNorm/(norm+1e-6)) in float32, on the device, and leaves the gradients alone", async () => {
  await tf.setBackend("cpu");
  const grads: Grads = { a: tf.tensor([3, 4]), b: tf.tensor([[12]]) }; // global norm sqrt(9+16+144) = 13
  const before = tf.memory().numTensors;
  const { totalNorm, scale } = gradClipScale(grads, 1);
  assert.equal(tf.memory().numTensors, before + 2, "only the two scalars are left");
  assert.equal(totalNorm.dataSync()[0], 13);
  // torch: clip_coef = max_norm / (total_norm + 1e-6) on a float32 tensor, clamped at 1.
  const f = Math.fround;
  assert.equal(scale.dataSync()[0], f(1 / f(13 + f(1e-6))));
  assert.deepEqual([...grads.a.dataSync()], [3, 4]); // untouched: the scaling happens inside the AdamW step
  const small = gradClipScale(grads, 100);
  assert.equal(small.scale.dataSync()[0], 1); // small gradients are left alone
  tf.dispose([totalNorm, scale, small.totalNorm, small.scale]);
  disposeGrads(grads);
});

test("AdamW with gradScale equals clipping first (tf.mul, as clip_grad_norm_ does in place) then a plain step, bit for bit", async () => {
  await tf.setBackend("cpu");
  const mk = (): Params => ({ "w.weight": tf.variable(tf.tensor([[0.5, -0.3], [0.1, 0.2]])), "w.bias": tf.variable(tf.tensor([0.1, -0.1])) });
  const grad = (k: number): Grads => ({ "w.weight": tf.tensor([[3 * k, -2], [1.7, 0.05 * k]]), "w.bias": tf.tensor([0.9 * k, 2.3]) });
  const folded = mk(), optF = createAdamW(folded, { lr: 0.01 });
  const twoStep = mk(), optT = createAdamW(twoStep, { lr: 0.01 });
  for (const k of [1, 2, 3]) {
    const g = grad(k);
    const { totalNorm, scale } = gradClipScale(g, 1);
    assert.ok(scale.dataSync()[0] < 1, "the case must clip");
    const before = tf.memory().numTensors;
    adamwStep(optF, folded, g, 0.01, scale);
    assert.equal(tf.memory().numTensors, before, "tensors leaked by a step with gradScale");
    const clipped: Grads = Object.fromEntries(Object.entries(g).map(([n, t]) => [n, tf.mul(t, scale)])); // the old two-step path
    adamwStep(optT, twoStep, clipped, 0.01);
    disposeGrads(g); disposeGrads(clipped); tf.dispose([totalNorm, scale]);
  }
  for (const n of Object.keys(folded)) {
    assert.deepEqual([...folded[n].dataSync()], [...twoStep[n].dataSync()], `${n}: p`);
    assert.deepEqual([...optF.m[n].dataSync()], [...optT.m[n].dataSync()], `${n}: m`);
    assert.deepEqual([...optF.v[n].dataSync()], [...optT.v[n].dataSync()], `${n}: v`);
  }
  disposeAdamW(optF); disposeAdamW(optT);
  tf.dispose([...Object.values(folded), ...Object.values(twoStep)]);
});

test("gradient accumulation with scale 1/k sums to the mean gradient; finiteness check spots NaN", async () => {
  const g1: Grads = { w: tf.tensor([1, 2]) }, g2: Grads = { w: tf.tensor([3, 6]) };
  let acc = accumulateGrads(undefined, g1, 0.5);
  acc = accumulateGrads(acc, g2, 0.5);
  assert.deepEqual([...acc.w.dataSync()], [2, 4]);
  assert.equal(await gradsFinite(acc), true);
  const bad: Grads = { w: tf.tensor([1, NaN]) };
  assert.equal(await gradsFinite(bad), false);
  disposeGrads(g1); disposeGrads(g2); disposeGrads(acc); disposeGrads(bad);
});

test("optimiser state round-trips: two steps straight equal one step + save/load + one step; no tensor leak per step", async () => {
  await tf.setBackend("cpu");
  const mk = (): Params => ({ "w.weight": tf.variable(tf.tensor([[0.5, -0.3], [0.1, 0.2]])), "w.bias": tf.variable(tf.tensor([0.1, -0.1])) });
  const grad = (k: number): Grads => ({ "w.weight": tf.tensor([[0.1 * k, -0.2], [0.3, 0.05 * k]]), "w.bias": tf.tensor([0.01 * k, 0.02]) });
  const a = mk(), optA = createAdamW(a, { lr: 0.01 });
  for (const k of [1, 2]) { const g = grad(k); adamwStep(optA, a, g, 0.01); disposeGrads(g); }

  const b = mk(), optB = createAdamW(b, { lr: 0.01 });
  const g1 = grad(1); adamwStep(optB, b, g1, 0.01); disposeGrads(g1);
  const saved = await adamwStateToHost(optB);
  disposeAdamW(optB);
  const optC = createAdamW(b, { lr: 0.01 });
  loadAdamWState(optC, saved);
  assert.equal(optC.step, 1);
  const before = tf.memory().numTensors;
  const g2 = grad(2); adamwStep(optC, b, g2, 0.01); disposeGrads(g2);
  assert.equal(tf.memory().numTensors, before, "tensors leaked by one optimiser step");
  for (const n of Object.keys(a)) assert.deepEqual([...b[n].dataSync()], [...a[n].dataSync()]);
  // A state from a different model is refused with a message naming the tensor.
  const other = { "x.weight": tf.variable(tf.zeros([3])) };
  const optX = createAdamW(other, { lr: 0.01 });
  assert.throws(() => loadAdamWState(optX, saved), /m\/x\.weight/);
  for (const t of [...Object.values(a), ...Object.values(b), ...Object.values(other)]) t.dispose();
  disposeAdamW(optA); disposeAdamW(optC); disposeAdamW(optX);
});
