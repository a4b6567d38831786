// Fine-tuning loops: question answering (trainQA) and sequence classification (trainClassifier), as the Hugging Face
// Trainer does it — seeded shuffling and dropout, AdamW with linear warm-up/decay, clipping, gradient accumulation,
// evaluation every N steps and at each epoch end — plus what a long run on a laptop needs: checkpoints that resume
// bit-for-bit, a stop flag checked every step, a NaN guard, progress, metrics.jsonl and a loss curve. The run's folder
// (its checks, lock, log and crash-safe checkpoints, on disk or in a browser's storage) is lib/rundir.ts.
import * as tf from "@tensorflow/tfjs";
import { createHash, path, stderr } from "./platform";
import { assertModelLive, forward, qaLoss, clsLoss, type BertModel } from "./bert";
import { configToJson } from "./config";
import { batchLength, prepareFeatures, prepareFeaturesAsync, padBatch, type QAFeature } from "./features";
import type { QAExample } from "./squad";
import type { BertTokenizer } from "./tokenizer";
import { predictQA } from "./predict";
import { squadEvaluate, cmrcEvaluate, detectMetric } from "./metrics";
import { architecture, loadModelDir, modelFiles, type ModelFile } from "./weights";
import { readSafetensors, serializeSafetensors } from "./safetensors";
import { checkpointToResume, readCheckpointFile, refuseBusyRunDir, withRunDir, type CheckpointFound, type LogRecord, type RunDir, type TrainerState } from "./rundir";
import { progress as makeProgress, type ProgressSink } from "./progress";
import { userError, UserError } from "./errors";
import { beginWork, pollStop, StoppedError, type ActiveWork } from "./stop";
import { checkTrainingFits, gpuPoolKeeper, padMultiple } from "./backend";
import { webgpuDeviceLost } from "./kernels/webgpu/device";
import { variableGrads } from "./grad";
import {
  adamwStep, adamwStateToHost, createAdamW, disposeAdamW, disposeGrads, gradClipScale, loadAdamWState, scheduledLr,
  accumulateGrads, type AdamW, type Grads,
} from "./optim";

/** Settings shared by both tasks; defaults follow HF run_qa.py / Trainer unless noted. */
export interface TrainSettings {
  epochs?: number; // 2 (run_qa.py README); ignored when maxSteps is set
  batchSize?: number; // 12 in the BERT SQuAD recipe; 16 here
  lr?: number; // 3e-5 for pretrained BERT; ~1e-3 for a tiny model from scratch
  warmupRatio?: number; // 0.1 (fraction of optimizer steps with linearly rising lr)
  weightDecay?: number; // 0.01
  gradAccum?: number; // micro-batches per optimizer step
  maxGradNorm?: number; // 1.0 (Trainer default); 0 disables clipping
  seed?: number; // 42 (Trainer default)
  groupByLength?: boolean; // batch features of similar length together (HF's group_by_length): less padding, same data
  padToMultipleOf?: number; // pad each batch to a multiple of this many tokens (HF's pad_to_multiple_of); default: 64 on webgpu, else 1
  evalSteps?: number; // evaluate every N optimizer steps (0: only at epoch ends)
  saveSteps?: number; // checkpoint every N steps (default: whenever evaluating)
  maxSteps?: number; // stop after this many optimizer steps
  logSteps?: number; // a metrics.jsonl line every N steps (10)
  evalBatchSize?: number;
  resume?: string; // a checkpoint directory, or an output directory holding one
  overwriteOutputDir?: boolean; // HF's overwrite_output_dir: replace the run already in outDir (other files stay)
  shouldStop?: (step: number) => boolean; // checked before every step with the steps done; true stops cleanly (stopped: "interrupted")
  signal?: AbortSignal;
  progress?: ProgressSink; // default: terminal bar on stderr (or the notebook sink set globally)
  lrSchedule?: (step: number, total: number) => number; // overrides the linear schedule (0-based update index)
  quiet?: boolean; // no progress output
}

export interface QATrainOptions extends TrainSettings {
  model: BertModel;
  tokenizer: BertTokenizer;
  tokenizerDir?: string; // copied next to the saved model
  train: QAExample[];
  trainFile?: string;
  eval?: QAExample[];
  evalFile?: string;
  outDir: string;
  maxLength?: number; // 384
  docStride?: number; // 128
  version2?: boolean; // SQuAD 2.0: allow "no answer" predictions
  metric?: "squad" | "cmrc"; // default: detected from the eval data
}

export interface TrainResult {
  steps: number;
  epoch: number; // epochs completed, fractional
  stopped: "done" | "max_steps" | "interrupted";
  loss: number; // mean loss of the last logged window
  eval?: Record<string, number>;
  outDir: string;
  checkpoint: string;
  seconds: number;
  history: LogRecord[];
}

export type { LogRecord } from "./rundir";

/** What the loop needs from a task: its examples as padded tensors, its loss and its evaluation. */
interface TaskHooks<F extends { inputIds: number[] }> {
  kind: "qa" | "cls";
  features: F[];
  toBatch(batch: F[], length: number): { inputs: { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D; tokenTypeIds: tf.Tensor2D }; labels: tf.Tensor1D[] };
  loss(model: BertModel, batch: ReturnType<TaskHooks<F>["toBatch"]>, seed: number): tf.Scalar;
  evaluate?: () => Promise<Record<string, number>>;
  headline: string; // the eval key shown in progress, e.g. "f1"
  dataFingerprint: string;
}

const DEFAULTS = { groupByLength: false, epochs: 2, batchSize: 16, lr: 5e-5, warmupRatio: 0.1, weightDecay: 0.01, gradAccum: 1, maxGradNorm: 1, seed: 42, evalSteps: 0, logSteps: 10 };

// ---------------------------------------------------------------------------------------------------------------
// Question answering.

/** Fine-tune `opts.model` (task "qa") on SQuAD-style examples; writes the model, metrics.jsonl and eval.json. */
export async function trainQA(opts: QATrainOptions): Promise<TrainResult> {
  if (opts.model.task !== "qa") throw userError("model", `is a '${opts.model.task}' model`, "train question answering with a task 'qa' model");
  return withRunDir(opts, [{ flag: "--eval", path: opts.evalFile }], (run) => trainQAIn(opts, run));
}

async function trainQAIn(opts: QATrainOptions, run: RunDir): Promise<TrainResult> {
  const maxLength = opts.maxLength ?? Math.min(384, opts.model.config.max_position_embeddings);
  const docStride = opts.docStride ?? Math.min(128, Math.floor(maxLength / 2));
  assertModelLive(opts.model, "trainQA");
  if (maxLength > opts.model.config.max_position_embeddings) {
    throw userError("--max-length", `${maxLength} is more than the model's ${opts.model.config.max_position_embeddings} positions`, `use --max-length ${opts.model.config.max_position_embeddings} or less`);
  }
  const { features, stats } = await prepareFeaturesAsync(opts.train, opts.tokenizer, { maxLength, docStride, file: opts.trainFile });
  if (features.length === 0) throw userError(opts.trainFile ?? "training data", "holds no examples", "pass a SQuAD-format file with questions");
  if (opts.eval !== undefined) checkEvalSet(opts.eval, opts.tokenizer, maxLength, docStride, opts.evalFile);
  const padId = opts.tokenizer.padId;
  const evalExamples = opts.eval;
  const metric = opts.metric ?? (evalExamples !== undefined ? detectMetric("", evalExamples) : "squad");
  const hooks: TaskHooks<QAFeature> = {
    kind: "qa",
    features,
    toBatch: (batch, length) => {
      const p = padBatch(batch, padId, length);
      return {
        inputs: { inputIds: tf.tensor2d(p.inputIds, undefined, "int32"), attentionMask: tf.tensor2d(p.attentionMask, undefined, "int32"), tokenTypeIds: tf.tensor2d(p.tokenTypeIds, undefined, "int32") },
        labels: [tf.tensor1d(batch.map((f) => f.startPosition), "int32"), tf.tensor1d(batch.map((f) => f.endPosition), "int32")],
      };
    },
    loss: (model, b, seed) => {
      const out = forward(model, b.inputs, { training: true, seed });
      return qaLoss(out.startLogits!, out.endLogits!, b.labels[0], b.labels[1]);
    },
    evaluate: evalExamples === undefined ? undefined : async () => {
      const r = await predictQA(opts.model, opts.tokenizer, evalExamples, { maxLength, docStride, batchSize: opts.evalBatchSize ?? 32, version2: opts.version2, progress: false, file: opts.evalFile });
      if (metric === "cmrc") {
        const s = cmrcEvaluate(evalExamples, r.predictions, { warn: () => {} });
        return { exact: s.EM, f1: s.F1, total: s.TOTAL };
      }
      return squadEvaluate(evalExamples, r.predictions);
    },
    headline: "f1",
    dataFingerprint: fingerprint([opts.train.map((e) => [e.id, e.question, e.context, e.answers.map((a) => [a.text, a.answer_start]), e.is_impossible]), maxLength, docStride, opts.tokenizer.idToToken.length]),
  };
  if (stats.answersLost > 0 && !opts.quiet) stderr.write(`train: ${stats.answersLost} answers fall outside every window of ${maxLength} tokens (those windows train as "no answer")\n`);
  return runTraining(opts.model, hooks, opts, run);
}

/** "where: what (fix (detail))" without its final "(fix)": the training file's fixes do not apply to the eval file. */
function withoutFix(message: string): string {
  if (!message.endsWith(")")) return message;
  let depth = 0;
  for (let i = message.length - 1; i > 0; i--) {
    depth += message[i] === ")" ? 1 : message[i] === "(" ? -1 : 0;
    if (depth === 0) return message[i - 1] === " " ? message.slice(0, i - 1) : message;
  }
  return message;
}

/** The eval set through the featurization that predictQA will give it, so a bad question stops the run before its
 * first step rather than at the first evaluation, an epoch later. */
function checkEvalSet(examples: QAExample[], tok: BertTokenizer, maxLength: number, docStride: number, file?: string): void {
  const bad: string[] = [];
  prepareFeatures(examples, tok, { maxLength, docStride, file, skipInvalid: true, progress: false, warn: (m) => bad.push(withoutFix(m.replace(/^skipped: /, ""))) });
  if (bad.length > 0) {
    throw userError(file ?? "eval data", `${bad.length} question(s) cannot be scored; the first: ${bad[0]}`, "fix them in the eval file before training; every eval question is scored, so --skip-invalid does not apply to it");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sequence classification.

export interface ClsExample { text: string; label: string }
export interface ClsTrainOptions extends TrainSettings {
  model: BertModel; // task "cls", config.label2id set for the labels
  tokenizer: BertTokenizer;
  tokenizerDir?: string;
  train: ClsExample[];
  trainFile?: string;
  eval?: ClsExample[];
  outDir: string;
  maxLength?: number; // 128
}
interface ClsFeature { inputIds: number[]; label: number }

/** Encode `[CLS] text [SEP]`, truncated to maxLength; labels through config.label2id (unknown label: an error). */
export function clsFeatures(examples: ClsExample[], tok: BertTokenizer, label2id: Record<string, number>, maxLength: number, file = "data"): ClsFeature[] {
  return examples.map((e, i) => {
    const label = Object.prototype.hasOwnProperty.call(label2id, e.label) ? label2id[e.label] : undefined; // a label "constructor" is data, not Object's
    if (label === undefined) throw userError(file, `row ${i + 1} has label '${e.label}', which the model does not know`, `labels: ${Object.keys(label2id).join(", ")}`);
    const ids = tok.encode(e.text).ids.slice(0, maxLength - 2);
    return { inputIds: [tok.clsId, ...ids, tok.sepId], label };
  });
}

/** Predicted label ids for `examples` (inference mode, batched). */
export async function predictClasses(model: BertModel, tok: BertTokenizer, examples: ClsExample[], maxLength = 128, batchSize = 32): Promise<number[]> {
  const feats = clsFeatures(examples.map((e) => ({ ...e, label: Object.keys(model.config.label2id ?? {})[0] ?? "0" })), tok, model.config.label2id ?? { "0": 0 }, maxLength);
  const out: number[] = [];
  const keepPool = gpuPoolKeeper();
  const work = beginWork("predict", feats.length);
  try {
    for (let b = 0; b < feats.length; b += batchSize) {
      const slice = feats.slice(b, b + batchSize);
      const batch = clsBatch(slice, tok.padId, batchLength(slice, padMultiple(), model.config.max_position_embeddings));
      keepPool(batch.inputs.inputIds.shape);
      const pred = tf.tidy(() => forward(model, batch.inputs, { training: false }).logits!.argMax(1));
      out.push(...(await pred.data()));
      pred.dispose();
      tf.dispose([batch.inputs.inputIds, batch.inputs.attentionMask, batch.inputs.tokenTypeIds, ...batch.labels]);
      if (await pollStop(work)) throw new StoppedError(`prediction stopped (■) after ${out.length} of ${feats.length} texts; nothing was kept: run the cell again`);
    }
  } finally {
    work.end();
  }
  return out;
}

function clsBatch(batch: ClsFeature[], padId: number, T = batchLength(batch)) {
  const ids = batch.map((f) => [...f.inputIds, ...new Array<number>(T - f.inputIds.length).fill(padId)]);
  const mask = batch.map((f) => f.inputIds.map(() => 1).concat(new Array<number>(T - f.inputIds.length).fill(0)));
  return {
    inputs: { inputIds: tf.tensor2d(ids, undefined, "int32"), attentionMask: tf.tensor2d(mask, undefined, "int32"), tokenTypeIds: tf.zeros([batch.length, T], "int32") as tf.Tensor2D },
    labels: [tf.tensor1d(batch.map((f) => f.label), "int32")],
  };
}

/** Accuracy and macro-F1 in percent (sklearn's f1_score(average="macro")). */
export function classificationScores(gold: number[], pred: number[], numLabels: number): { accuracy: number; f1: number; total: number } {
  let correct = 0;
  const tp = new Array<number>(numLabels).fill(0), fp = tp.slice(), fn = tp.slice();
  gold.forEach((g, i) => {
    if (pred[i] === g) { correct++; tp[g]++; } else { fp[pred[i]]++; fn[g]++; }
  });
  const f1s = tp.map((t, c) => (2 * t + fp[c] + fn[c] > 0 ? (2 * t) / (2 * t + fp[c] + fn[c]) : 0));
  return { accuracy: (100 * correct) / Math.max(1, gold.length), f1: (100 * f1s.reduce((a, b) => a + b, 0)) / numLabels, total: gold.length };
}

/** Fine-tune a ForSequenceClassification model on text,label rows; evaluation reports accuracy and macro-F1. */
export async function trainClassifier(opts: ClsTrainOptions): Promise<TrainResult> {
  if (opts.model.task !== "cls") throw userError("model", `is a '${opts.model.task}' model`, "train classification with a task 'cls' model");
  return withRunDir(opts, [], (run) => trainClassifierIn(opts, run));
}

async function trainClassifierIn(opts: ClsTrainOptions, run: RunDir): Promise<TrainResult> {
  const label2id = opts.model.config.label2id;
  if (label2id === undefined) throw userError("model config", "has no label2id", "create the model with the dataset's labels (num_labels, id2label, label2id)");
  const maxLength = opts.maxLength ?? Math.min(128, opts.model.config.max_position_embeddings);
  const features = clsFeatures(opts.train, opts.tokenizer, label2id, maxLength, opts.trainFile);
  const evalSet = opts.eval;
  if (evalSet !== undefined) clsFeatures(evalSet, opts.tokenizer, label2id, maxLength, "eval data"); // before step 1, not at the first evaluation
  const hooks: TaskHooks<ClsFeature> = {
    kind: "cls",
    features,
    toBatch: (batch, length) => clsBatch(batch, opts.tokenizer.padId, length),
    loss: (model, b, seed) => clsLoss(forward(model, b.inputs, { training: true, seed }).logits!, b.labels[0]),
    evaluate: evalSet === undefined ? undefined : async () => {
      const gold = evalSet.map((e, i) => {
        const id = Object.prototype.hasOwnProperty.call(label2id, e.label) ? label2id[e.label] : undefined;
        if (id === undefined) throw userError("eval data", `row ${i + 1} has label '${e.label}', which the model does not know`);
        return id;
      });
      return classificationScores(gold, await predictClasses(opts.model, opts.tokenizer, evalSet, maxLength), Object.keys(label2id).length);
    },
    headline: "accuracy",
    dataFingerprint: fingerprint([opts.train.map((e) => [e.text, e.label]), maxLength]),
  };
  return runTraining(opts.model, hooks, opts, run);
}

// ---------------------------------------------------------------------------------------------------------------
// The loop.

async function runTraining<F extends { inputIds: number[] }>(model: BertModel, task: TaskHooks<F>, opts: TrainSettings & { tokenizerDir?: string }, run: RunDir): Promise<TrainResult> {
  const s = { ...DEFAULTS, ...definedOnly(opts) };
  checkSettings(s);
  assertModelLive(model, "trainQA/trainClassifier");
  const t0 = Date.now();
  const n = task.features.length;
  const batchesPerEpoch = Math.ceil(n / s.batchSize);
  const stepsPerEpoch = Math.ceil(batchesPerEpoch / s.gradAccum);
  const totalSteps = opts.maxSteps !== undefined ? opts.maxSteps : stepsPerEpoch * s.epochs;
  const warmupSteps = Math.ceil(totalSteps * s.warmupRatio); // Trainer.get_warmup_steps: ceil(total * ratio)
  const params = trainableParams(model);
  checkTrainingFits(Object.values(params).reduce((n, v) => n + v.size, 0));
  const byVariable = new Map(Object.entries(params).map(([name, v]) => [v.name, name]));
  const work = claimRun(run.dir, model, totalSteps);
  const opt = createAdamW(params, { lr: s.lr, weightDecay: s.weightDecay });
  const modelFp = fingerprint(configToJson(model.config, architecture(model.config, model.task)));
  const settings = { lr: s.lr, batch_size: s.batchSize, grad_accum: s.gradAccum, warmup_ratio: s.warmupRatio, weight_decay: s.weightDecay, max_grad_norm: s.maxGradNorm, seed: s.seed, total_steps: totalSteps, group_by_length: s.groupByLength ? 1 : 0 };
  let state: TrainerState = { format: "bertqa-trainer-state", step: 0, epoch: 0, position: 0, total_steps: totalSteps, seed: s.seed, data_fingerprint: task.dataFingerprint, model_fingerprint: modelFp, settings, history: [] };
  try {
    return await trainLoop(model, task, opts, run, s, work, { t0, n, batchesPerEpoch, stepsPerEpoch, totalSteps, warmupSteps, params, byVariable, opt, state });
  } finally {
    work.end();
  }
}

/** ■ stops this run (stop.ts), and its folder is taken in this process while it trains. */
function claimRun(outDir: string, model: BertModel, totalSteps: number): ActiveWork & { end(): void } {
  refuseBusyRunDir(outDir);
  return beginWork("train", totalSteps, { key: path.resolve(outDir), owner: model });
}

/** The one line that ends a run stopped by ■: where it stopped, its checkpoint, and how to go on. */
function stoppedMessage(step: number, total: number, outDir: string, checkpointDir: string): StoppedError {
  if (step === 0) return new StoppedError(`training stopped (■) before its first step: nothing was written to ${outDir}; run the cell again to start`);
  return new StoppedError(`training stopped (■) at step ${step} of ${total}: checkpoint in ${checkpointDir}; ` +
    `to continue, train again with resume: "${outDir}" (bertqa train --resume ${outDir}), or run the cell again to start over`);
}

interface LoopSetup {
  t0: number; n: number; batchesPerEpoch: number; stepsPerEpoch: number; totalSteps: number; warmupSteps: number;
  params: Record<string, tf.Variable>; byVariable: Map<string, string>; opt: AdamW; state: TrainerState;
}

async function trainLoop<F extends { inputIds: number[] }>(model: BertModel, task: TaskHooks<F>, opts: TrainSettings & { tokenizerDir?: string }, run: RunDir,
  s: typeof DEFAULTS & TrainSettings, work: ActiveWork, setup: LoopSetup): Promise<TrainResult> {
  const { t0, n, batchesPerEpoch, stepsPerEpoch, totalSteps, warmupSteps, params, byVariable, opt } = setup;
  let state = setup.state;
  const checkpointDir = run.checkpointDir;
  if (opts.resume !== undefined) state = restore(checkpointToResume(opts.resume, state), model, opt);
  run.startLog(state.history);
  const bar = opts.quiet ? undefined : makeProgress("train", totalSteps, opts.progress);
  let windowLoss: number[] = [], windowExamples = 0, windowStart = Date.now(), lastNorm = 0, lastEval: Record<string, number> | undefined;
  if (opts.resume !== undefined) lastEval = [...state.history].reverse().find((r) => r.eval !== undefined)?.eval; // a resumed run reports the scores it has
  let stopped: TrainResult["stopped"] = "done";
  let byKernel = false; // stopped by ■ (the kernel's stop request), not by shouldStop/signal
  let order: number[] = [], orderEpoch = -1;
  const keepPool = gpuPoolKeeper(); // webgpu: one batch shape's buffers pooled at a time
  let pending: StepStats | undefined; // the last step's losses and norm, on their way to the host
  /** Check a step's numbers once they have arrived (a NaN stops the run before anything is saved) and log them. */
  const settle = (step: StepStats, values: Float32Array) => {
    const losses = Array.from(values.subarray(0, step.micro));
    const bad = losses.find((l) => !Number.isFinite(l));
    if (bad !== undefined) throw diverged(step.step, `loss is ${bad}`, run.lastCheckpoint());
    if (step.clipped) {
      lastNorm = values[step.micro];
      if (!Number.isFinite(lastNorm)) throw diverged(step.step, `gradient norm is ${lastNorm}`, run.lastCheckpoint());
    }
    windowLoss.push(losses.reduce((a, b) => a + b, 0) / step.micro);
  };
  const log = (rec: LogRecord) => {
    state.history.push(rec);
    run.log(rec);
  };
  const evaluate = async () => {
    if (task.evaluate === undefined) return;
    lastEval = roundScores(await task.evaluate());
    log({ step: state.step, epoch: +(state.step / stepsPerEpoch).toFixed(3), elapsed_s: (Date.now() - t0) / 1000, eval: lastEval });
  };
  const save = async () => run.saveCheckpoint([...await modelFiles(model, { tokenizerDir: opts.tokenizerDir }), await optimizerFile(opt)], state);

  try {
    while (state.step < totalSteps) {
      work.done = state.step;
      byKernel = await pollStop(work, 0);
      if (byKernel || opts.shouldStop?.(state.step) === true || opts.signal?.aborted === true) {
        stopped = "interrupted";
        break;
      }
      if (orderEpoch !== state.epoch) [order, orderEpoch] = [s.groupByLength ? lengthGroupedOrder(task.features.map((f) => f.inputIds.length), s.batchSize * s.gradAccum, s.seed, state.epoch) : epochOrder(n, s.seed, state.epoch), state.epoch];
      // One update = gradAccum micro-batches, or what is left of the epoch (averaged over what it really has).
      const count = Math.min(s.gradAccum, batchesPerEpoch - state.position);
      let acc: Grads | undefined;
      const losses: tf.Scalar[] = [];
      for (let micro = 0; micro < count; micro++) {
        const idx = order.slice(state.position * s.batchSize, (state.position + 1) * s.batchSize);
        const batch = idx.map((i) => task.features[i]);
        const length = batchLength(batch, s.padToMultipleOf ?? padMultiple(), model.config.max_position_embeddings);
        keepPool([batch.length, length]);
        const { loss, grads, examples } = microStep(model, task, batch, length, byVariable, dropoutSeed(s.seed, state.step, micro), s, state.step);
        state.position++;
        losses.push(loss);
        windowExamples += examples;
        if (count === 1) acc = grads;
        else {
          acc = accumulateGrads(acc, grads, 1 / count);
          disposeGrads(grads);
        }
      }
      if (acc === undefined) throw new Error("no micro-batch in a training step"); // count >= 1 by construction
      const grads = acc;
      // clip_grad_norm_'s coefficient stays on the device and is applied inside the AdamW update (no clipped copy).
      const clip = s.maxGradNorm > 0 ? gradClipScale(grads, s.maxGradNorm) : undefined;
      const lr = opts.lrSchedule !== undefined ? opts.lrSchedule(state.step, totalSteps) : scheduledLr(s.lr, state.step, warmupSteps, totalSteps);
      adamwStep(opt, params, grads, lr, clip?.scale);
      disposeGrads(grads);
      state.step++;
      // The step's losses and norm reach the host while the next step runs; only then are they checked and logged.
      const previous = pending;
      pending = readStepStats(state.step, losses, clip);
      if (previous !== undefined) settle(previous, await previous.values);
      const epochEnd = state.position >= batchesPerEpoch;
      if (epochEnd) { state.epoch++; state.position = 0; }
      const logNow = state.step % s.logSteps === 0 || epochEnd || state.step === totalSteps;
      const evalNow = (s.evalSteps > 0 && state.step % s.evalSteps === 0) || epochEnd || state.step === totalSteps;
      const saveNow = opts.saveSteps !== undefined ? state.step % opts.saveSteps === 0 || state.step === totalSteps : evalNow;
      if (logNow || evalNow || saveNow) {
        settle(pending, await pending.values); // nothing is logged, scored or saved past a step not yet checked
        pending = undefined;
      }
      if (logNow) {
        const secs = (Date.now() - windowStart) / 1000;
        log({ step: state.step, epoch: +(state.step / stepsPerEpoch).toFixed(3), loss: mean(windowLoss), lr, grad_norm: +lastNorm.toFixed(4), examples_per_s: +(windowExamples / Math.max(secs, 1e-3)).toFixed(1), elapsed_s: (Date.now() - t0) / 1000 });
        bar?.update(state.step, { loss: mean(windowLoss), "ex/s": +(windowExamples / Math.max(secs, 1e-3)).toFixed(1), ...(lastEval?.[task.headline] !== undefined ? { [task.headline]: lastEval[task.headline] } : {}) });
        windowLoss = [];
        windowExamples = 0;
        windowStart = Date.now();
      }
      if (evalNow) await evaluate();
      if (saveNow) {
        if (!(await paramsFinite(params))) throw diverged(state.step, "the weights are no longer finite", run.lastCheckpoint());
        await save();
      }
    }
    if (pending !== undefined) settle(pending, await pending.values);
    if (stopped !== "interrupted" && opts.maxSteps !== undefined && state.step >= opts.maxSteps) stopped = "max_steps";
    if (stopped === "interrupted" && state.step > 0) await save();
    const finalInfo = lastEval?.[task.headline] !== undefined ? { [task.headline]: lastEval[task.headline] } : undefined;
    if (stopped === "interrupted") {
      bar?.update(state.step);
      bar?.stop(finalInfo);
    } else bar?.finish(finalInfo);
  } catch (e) {
    throw (await deviceLostError(run, state.step)) ?? asMemoryError(e, s.batchSize, s.gradAccum);
  } finally {
    disposeAdamW(opt);
  }
  if (stopped !== "interrupted") await run.saveModel(await modelFiles(model, { tokenizerDir: opts.tokenizerDir }), lastEval);
  await run.saveLossCurve(lossCurveSvg(state.history));
  if (byKernel) throw stoppedMessage(state.step, totalSteps, run.dir, checkpointDir);
  const last = [...state.history].reverse().find((r) => r.loss !== undefined);
  return { steps: state.step, epoch: +(state.step / stepsPerEpoch).toFixed(3), stopped, loss: last?.loss ?? NaN, eval: lastEval, outDir: run.dir, checkpoint: checkpointDir, seconds: (Date.now() - t0) / 1000, history: state.history };
}

/** Forward + backward on one micro-batch: the loss (left on the device) and the gradients keyed by parameter name. */
function microStep<F extends { inputIds: number[] }>(model: BertModel, task: TaskHooks<F>, batch: F[], length: number, byVariable: Map<string, string>, seed: number,
  s: { batchSize: number }, step: number): { loss: tf.Scalar; grads: Grads; examples: number } {
  const b = task.toBatch(batch, length);
  try {
    const vars = [...byVariable.keys()].map((n) => model.params[byVariable.get(n)!]);
    const { value, grads } = variableGrads(() => task.loss(model, b, seed), vars);
    const named: Grads = {};
    for (const [varName, g] of Object.entries(grads)) named[byVariable.get(varName)!] = g;
    return { loss: value, grads: named, examples: batch.length };
  } catch (e) {
    throw asMemoryError(e, s.batchSize, 1, step);
  } finally {
    tf.dispose([b.inputs.inputIds, b.inputs.attentionMask, b.inputs.tokenTypeIds, ...b.labels]);
  }
}

/** A finished step's numbers for the log: [loss of each micro-batch, gradient norm if clipped], being read back. */
export interface StepStats { step: number; micro: number; clipped: boolean; values: Promise<Float32Array> }

/** Start reading a step's losses and norm (one small read; GPU backends can only read asynchronously) without waiting
 * for it, so the host queues the next step while this one runs. Takes ownership of the scalars. */
export function readStepStats(step: number, losses: tf.Scalar[], clip: { totalNorm: tf.Scalar; scale: tf.Scalar } | undefined): StepStats {
  const packed = tf.stack(clip === undefined ? losses : [...losses, clip.totalNorm]);
  tf.dispose([...losses, ...(clip === undefined ? [] : [clip.totalNorm, clip.scale])]);
  const values = (packed.data() as Promise<Float32Array>).finally(() => packed.dispose());
  values.catch(() => undefined); // awaited later; marked handled so an error in between cannot crash the process first
  return { step, micro: losses.length, clipped: clip !== undefined, values };
}

function trainableParams(model: BertModel): Record<string, tf.Variable> {
  return Object.fromEntries(Object.entries(model.params).filter(([, v]) => v.trainable));
}

/** The data order of `epoch`: a permutation from a seeded PRNG, so a resumed run sees the same batches. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rng = mulberry32((seed * 1_000_003 + epoch * 7919) >>> 0);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * HF's LengthGroupedSampler: the epoch's permutation cut into mega-batches of 50 batches, each sorted longest first,
 * so a batch holds features of similar length (dynamic padding then pads little) while the order stays random.
 */
export function lengthGroupedOrder(lengths: number[], batchSize: number, seed: number, epoch: number): number[] {
  const order = epochOrder(lengths.length, seed, epoch), mega = 50 * batchSize, out: number[] = [];
  for (let i = 0; i < order.length; i += mega) out.push(...order.slice(i, i + mega).sort((a, b) => lengths[b] - lengths[a]));
  return out;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Dropout seed for (step, micro-batch): a function of the run's seed only, so resuming reproduces the masks. */
function dropoutSeed(seed: number, step: number, micro: number): number {
  return (seed * 92821 + step * 131 + micro) % 2147483647;
}

async function paramsFinite(params: Record<string, tf.Variable>): Promise<boolean> {
  const bad = tf.tidy(() => tf.addN(Object.values(params).map((p) => tf.logicalNot(tf.isFinite(p)).sum().cast("float32"))));
  const n = (await bad.data())[0];
  bad.dispose();
  return n === 0;
}

function diverged(step: number, what: string, last: CheckpointFound | undefined): UserError {
  const kept = last !== undefined ? `the last good checkpoint (step ${last.step}) is in ${last.dir}` : "no checkpoint was written yet";
  return userError(`training step ${step}`, `diverged: ${what}; ${kept}`, "lower --lr, keep --max-grad-norm 1, or resume from the checkpoint with --resume");
}

/** A lost WebGPU device (a driver reset, a GPU taken away) fails every later call, wherever the step was: the run
 * ends in one line that says so, which checkpoint is intact, and how to go on elsewhere. */
async function deviceLostError(run: RunDir, step: number): Promise<UserError | undefined> {
  const lost = tf.getBackend() === "webgpu" ? await webgpuDeviceLost() : undefined;
  if (lost === undefined) return undefined;
  const last = run.lastCheckpoint();
  return userError(`training step ${step + 1}`, `the GPU device was lost (${lost}); ${last !== undefined ? `the last checkpoint (step ${last.step}) in ${last.dir} is intact` : "no checkpoint was written yet"}`,
    `continue on another backend: train again with resume: "${run.dir}" and the wasm backend (bertqa train --resume ${run.dir} --backend wasm), or reload the page to get the GPU back`);
}

/** The first line of an allocation failure (wasm's 4 GB heap running out shows as "memory access out of bounds"). */
export function outOfMemory(e: unknown): string | undefined {
  if (e instanceof UserError) return undefined;
  const msg = e instanceof Error ? e.message : String(e);
  return /out of memory|OOM|allocation failed|Cannot allocate|Array buffer allocation|Maximum memory size|could not allocate|Invalid typed array length|memory access out of bounds|^Aborted\(\)/i.test(msg) ? msg.split("\n")[0] : undefined;
}

/** Allocation failures become one line with the fix; other errors pass through. */
function asMemoryError(e: unknown, batchSize: number, gradAccum: number, step?: number): unknown {
  const oom = outOfMemory(e);
  if (oom === undefined) return e;
  return userError(`batch size ${batchSize}`, `does not fit in memory${step !== undefined ? ` (step ${step + 1})` : ""}: ${oom}`, `try --batch-size ${Math.max(1, Math.floor(batchSize / 2))} --grad-accum ${gradAccum * 2}`);
}

// ---------------------------------------------------------------------------------------------------------------
// What a checkpoint holds besides the model: the optimizer's state; resuming puts both back.

async function optimizerFile(opt: AdamW): Promise<ModelFile> {
  const { tensors, metadata } = await adamwStateToHost(opt);
  return { name: "optimizer.safetensors", data: serializeSafetensors(tensors, metadata), what: "the optimizer state" };
}

/** Load `found`'s weights into `model` and its moments into `opt`; returns the state to go on from. */
function restore(found: CheckpointFound, model: BertModel, opt: AdamW): TrainerState {
  const { dir, state } = found;
  const saved = readCheckpointFile(path.join(dir, "model.safetensors"), () => loadModelDir(dir, model.task));
  for (const [name, v] of Object.entries(model.params)) v.assign(saved.model.params[name]);
  for (const v of Object.values(saved.model.params)) v.dispose();
  const optFile = path.join(dir, "optimizer.safetensors");
  readCheckpointFile(optFile, () => loadAdamWState(opt, readSafetensors(optFile), optFile));
  if (opt.step !== state.step) throw userError(dir, `optimizer state is at step ${opt.step} but trainer state at ${state.step}`, "the checkpoint is damaged; start a fresh run");
  return state;
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers.

function checkSettings(s: typeof DEFAULTS & TrainSettings): void {
  const positiveInt = { epochs: s.epochs, batchSize: s.batchSize, gradAccum: s.gradAccum, logSteps: s.logSteps };
  for (const [k, v] of Object.entries(positiveInt)) if (!(Number.isInteger(v) && v > 0)) throw userError(`--${kebab(k)}`, `must be a positive integer, got ${v}`);
  if (!(s.lr > 0)) throw userError("--lr", `must be positive, got ${s.lr}`, "e.g. 5e-5 for pretrained BERT, 1e-3 for a tiny model from scratch");
  if (!(s.warmupRatio >= 0 && s.warmupRatio < 1)) throw userError("--warmup-ratio", `must be in [0, 1), got ${s.warmupRatio}`);
  if (!(s.weightDecay >= 0)) throw userError("--weight-decay", `must be ≥ 0, got ${s.weightDecay}`);
  if (!(s.maxGradNorm >= 0)) throw userError("--max-grad-norm", `must be ≥ 0 (0 disables clipping), got ${s.maxGradNorm}`);
  if (s.maxSteps !== undefined && !(Number.isInteger(s.maxSteps) && s.maxSteps > 0)) throw userError("--max-steps", `must be a positive integer, got ${s.maxSteps}`);
  if (!(Number.isInteger(s.evalSteps) && s.evalSteps >= 0)) throw userError("--eval-steps", `must be an integer ≥ 0, got ${s.evalSteps}`);
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** `o` without its undefined fields, so that spreading it over defaults keeps the defaults. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function fingerprint(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

function mean(xs: number[]): number {
  return xs.length === 0 ? NaN : +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(5);
}

function roundScores(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "number" ? +v.toFixed(4) : v]));
}

/** A standalone SVG of the training loss (and eval F1/accuracy on a second axis when present). */
export function lossCurveSvg(history: LogRecord[], width = 640, height = 300): string {
  const pts = history.filter((r) => r.loss !== undefined && Number.isFinite(r.loss)).map((r) => [r.step, r.loss!] as [number, number]);
  const evals = history.filter((r) => r.eval !== undefined).map((r) => [r.step, r.eval!.f1 ?? r.eval!.accuracy ?? NaN] as [number, number]).filter(([, y]) => Number.isFinite(y));
  const pad = { l: 50, r: 50, t: 20, b: 35 };
  const maxX = Math.max(1, ...pts.map((p) => p[0]), ...evals.map((p) => p[0]));
  const maxY = Math.max(1e-9, ...pts.map((p) => p[1]));
  const sx = (x: number) => pad.l + (x / maxX) * (width - pad.l - pad.r);
  const sy = (y: number, top: number) => height - pad.b - (y / top) * (height - pad.t - pad.b);
  const line = (p: [number, number][], top: number) => p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y, top).toFixed(1)}`).join(" ");
  const text = (x: number, y: number, s: string, extra = "") => `<text x="${x}" y="${y}" font-size="11" font-family="sans-serif" ${extra}>${s}</text>`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<line x1="${pad.l}" y1="${height - pad.b}" x2="${width - pad.r}" y2="${height - pad.b}" stroke="#888"/>`,
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${height - pad.b}" stroke="#888"/>`,
    text(pad.l - 45, pad.t + 4, maxY.toPrecision(3)), text(pad.l - 15, height - pad.b, "0"),
    text(width / 2 - 20, height - 8, `step (max ${maxX})`), text(pad.l + 5, pad.t + 4, "training loss", 'fill="#1f77b4"'),
    pts.length > 0 ? `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${line(pts, maxY)}"/>` : "",
    evals.length > 0 ? `<polyline fill="none" stroke="#d62728" stroke-width="1.5" points="${line(evals, 100)}"/>` + text(width - pad.r + 4, pad.t + 4, "100") + text(width - pad.r - 120, pad.t + 4, "eval F1 / accuracy (%)", 'fill="#d62728"') : "",
    `</svg>`,
  ].join("\n");
}
