// A training run's folder, owned by one run from its first check to its last file. Before the first step: no output
// path is an input path, the folder holds no other run (unless resuming from it or overwriting, HF's
// overwrite_output_dir), it is locked (a lock file under Node, a Web Lock in a browser) and what a killed run left is
// cleaned up. Then the run writes only through here: metrics.jsonl, checkpoints that survive a kill or a full disk at
// any instant, the final model, eval.json and loss.svg. The same code keeps a run on disk and in the browser's storage
// (lib/platform). train.ts is the loop.
//
// Checkpoints: <out>/checkpoint/ = config.json + model.safetensors (+ tokenizer) + optimizer.safetensors +
// trainer_state.json. A new one is filled in checkpoint.tmp-<pid> and renamed checkpoint.next (complete from then
// on); then checkpoint becomes checkpoint.prev, checkpoint.next becomes checkpoint, and checkpoint.prev is removed.
// At every instant one of them is complete; --resume takes the newest complete one, and the next run in the folder
// finishes an interrupted swap and removes what a killed run left.
import { fs, path, pid, lockFolder, stderr } from "./platform";
import { userError, UserError } from "./errors";
import { appendLine, discard, ensureDir, faultPoint, isWriteError, persisted, renameOrFail, writeFileAtomic, writeJsonAtomic, writeLinesAtomic } from "./fsutil";
import { checkPaths, dirEntries, listNames, samePath, type NamedPath } from "./outdir";
import { workUsing } from "./stop";
import { MODEL_FILES, writeModelFiles, type ModelFile } from "./weights";

/** One line of metrics.jsonl: a logged window of steps, or an evaluation. */
export interface LogRecord {
  step: number;
  epoch: number;
  loss?: number;
  lr?: number;
  grad_norm?: number;
  examples_per_s?: number;
  elapsed_s: number;
  eval?: Record<string, number>;
}

/** trainer_state.json: where the run is, what it trains on and with which settings, its log so far. */
export interface TrainerState {
  format: "bertqa-trainer-state";
  step: number; // optimizer updates done
  epoch: number; // current epoch (0-based)
  position: number; // micro-batches of this epoch already consumed
  total_steps: number;
  seed: number;
  data_fingerprint: string;
  model_fingerprint: string;
  settings: Record<string, number>;
  history: LogRecord[];
}

/** The folder a run holds, and the only way it writes there. */
export interface RunDir {
  dir: string;
  checkpointDir: string; // <dir>/checkpoint: what --resume reads
  /** The newest complete checkpoint (after a kill: checkpoint.next or checkpoint.prev). */
  lastCheckpoint(): CheckpointFound | undefined;
  /** metrics.jsonl from what a checkpoint holds (lines a killed run logged after it would repeat), then one line each. */
  startLog(history: LogRecord[]): void;
  log(rec: LogRecord): void;
  /** A new checkpoint of `files` (model, optimizer) and `state`, swapped in whole and kept in storage before it returns. */
  saveCheckpoint(files: ModelFile[], state: TrainerState): Promise<void>;
  /** The trained model as a Hugging Face folder in the run folder itself, with eval.json when scored. */
  saveModel(files: ModelFile[], scores?: Record<string, number>): Promise<void>;
  saveLossCurve(svg: string): Promise<void>;
}

export interface CheckpointFound { dir: string; state: TrainerState; step: number }

const CHECKPOINT = "checkpoint", NEXT = "checkpoint.next", PREV = "checkpoint.prev";
const CHECKPOINT_FILES = ["config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"];
/** What a killed run leaves: a checkpoint being filled, the final model being moved in, a file being replaced. */
const LEFTOVER = /^(checkpoint\.(tmp|model|old)-.*|\.model-\d+.*|.*\.tmp-\d+-\d+.*)$/;
/** What a training run writes into its folder, besides the tokenizer files copied next to the model. */
const RUN_FILES = [...MODEL_FILES, "metrics.jsonl", "eval.json", "loss.svg", CHECKPOINT, NEXT, PREV];

export interface RunDirOptions { outDir: string; resume?: string; overwriteOutputDir?: boolean; trainFile?: string; tokenizerDir?: string }

/**
 * Run `body` as the owner of opts.outDir: paths checked, the folder checked and locked, leftovers cleaned; a write the
 * environment refuses says which checkpoint is intact. `inputs` are the other files the run reads (for the checks).
 */
export async function withRunDir<T>(opts: RunDirOptions, inputs: NamedPath[], body: (run: RunDir) => Promise<T>): Promise<T> {
  const outDir = opts.outDir;
  checkPaths("train", [{ flag: "--train", path: opts.trainFile }, ...inputs, { flag: "--tokenizer", path: opts.tokenizerDir }], [], [{ flag: "--out", path: outDir }]);
  refuseBusyRunDir(outDir); // a run of this kernel still going says so (and how to stop it) before the lock would
  checkTrainOutDir(outDir, opts);
  const existed = fs.existsSync(outDir);
  ensureDir(outDir, "the output folder");
  const lock = await lockFolder(outDir, "training");
  let done = false;
  try {
    checkTrainOutDir(outDir, opts); // again, now that no other run can write here
    if (opts.overwriteOutputDir === true && !resumesHere(outDir, opts.resume)) {
      for (const e of dirEntries(outDir)) if (RUN_FILES.includes(e) || LEFTOVER.test(e)) fs.rmSync(path.join(outDir, e), { recursive: true, force: true });
    }
    recoverRunDir(outDir);
    const result = await body(runDir(outDir));
    done = true;
    return result;
  } catch (e) {
    if (!isWriteError(e)) throw e;
    const last = newestCheckpoint(outDir);
    throw last !== undefined
      ? e.withNote(`the last checkpoint (step ${last.step}) in ${last.dir} is intact`, `, then continue with --resume ${outDir}`)
      : e.withNote("no checkpoint had been written yet");
  } finally {
    lock.release();
    if (!done && !existed) try { fs.rmdirSync(outDir); } catch { /* not empty: keep what is there */ }
  }
}

function runDir(dir: string): RunDir {
  const metricsFile = path.join(dir, "metrics.jsonl");
  return {
    dir,
    checkpointDir: path.join(dir, CHECKPOINT),
    lastCheckpoint: () => newestCheckpoint(dir),
    startLog: (history) => writeLinesAtomic(metricsFile, history.length, (i) => JSON.stringify(history[i])),
    log: (rec) => appendLine(metricsFile, JSON.stringify(rec)),
    saveCheckpoint: (files, state) => saveCheckpoint(dir, files, state),
    saveModel: async (files, scores) => {
      writeModelFiles(dir, files.map((f) => ({ ...f, what: `${f.what} of the trained model` })));
      if (scores !== undefined) writeJsonAtomic(path.join(dir, "eval.json"), scores);
      await persisted("the trained model", dir);
    },
    saveLossCurve: async (svg) => {
      writeFileAtomic(path.join(dir, "loss.svg"), svg);
      await persisted("the loss curve", path.join(dir, "loss.svg"));
    },
  };
}

/** The training run that writes `outDir` in this process (a notebook cell run again while the first still trains)
 * is refused with one line, so two loops never write one metrics.jsonl. (Across processes: the lock.) */
export function refuseBusyRunDir(outDir: string): void {
  const busy = workUsing(path.resolve(outDir));
  if (busy !== undefined) {
    throw userError(outDir, `is being written by a training run still going in this kernel (step ${busy.done} of ${busy.total})`,
      "wait for it to end, press ■ (interrupt) to stop it, or train into another outDir");
  }
}

function resumesHere(outDir: string, resume: string | undefined): boolean {
  return resume !== undefined && (samePath(resume, outDir) || (path.basename(path.resolve(resume)).startsWith(CHECKPOINT) && samePath(path.dirname(path.resolve(resume)), outDir)));
}

/**
 * Refuse in one line an output folder that holds a model, a checkpoint, a log or anything else, unless the run
 * resumes from it or `overwriteOutputDir` is set (HF's overwrite_output_dir). `bertqa train` calls it before loading.
 */
export function checkTrainOutDir(outDir: string, opts: { resume?: string; overwriteOutputDir?: boolean }): void {
  if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory()) throw userError(outDir, "is a file, but --out names the folder to write", "give the path of a new or empty folder");
  const entries = dirEntries(outDir);
  if (entries.length === 0 || opts.overwriteOutputDir === true || resumesHere(outDir, opts.resume)) return;
  const ckpt = newestCheckpoint(outDir);
  const held = [
    ...(entries.some((e) => MODEL_FILES.includes(e)) ? ["a model"] : []),
    ...(ckpt !== undefined ? [`a checkpoint at step ${ckpt.step}`] : entries.some((e) => e.startsWith(CHECKPOINT)) ? ["an unfinished checkpoint"] : []),
    ...(entries.includes("metrics.jsonl") ? ["a training log (metrics.jsonl)"] : []),
  ];
  if (held.length > 0) {
    throw userError(outDir, `already holds a training run (${held.join(", ")})`,
      ckpt !== undefined ? `continue it with --resume ${outDir}, or start over there with --overwrite-output-dir` : "start over there with --overwrite-output-dir, or choose another --out");
  }
  throw userError(outDir, `is not empty (${listNames(entries)})`, "choose a new or empty --out, or pass --overwrite-output-dir to replace only the files train writes there and keep the rest");
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints.

async function saveCheckpoint(outDir: string, files: ModelFile[], state: TrainerState): Promise<void> {
  const what = `the checkpoint at step ${state.step}`;
  const tmp = path.join(outDir, `${CHECKPOINT}.tmp-${pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    ensureDir(tmp, what);
    for (const f of files) writeFileAtomic(path.join(tmp, f.name), f.data, `${f.what} of ${what}`);
    writeJsonAtomic(path.join(tmp, "trainer_state.json"), state, `the trainer state of ${what}`);
    faultPoint("checkpoint-filled", tmp);
    renameOrFail(tmp, path.join(outDir, NEXT), what);
  } catch (e) {
    discard(tmp);
    throw e;
  }
  finishSwap(outDir);
  await persisted(what, tmp); // in a browser: the checkpoint is in storage (or this throws) before the run goes on
}

/** checkpoint.next (complete) becomes checkpoint, the one it replaces goes; also finishes a swap a kill cut short. */
function finishSwap(outDir: string): void {
  const [ckpt, next, prev] = [CHECKPOINT, NEXT, PREV].map((n) => path.join(outDir, n));
  if (fs.existsSync(next)) {
    if (fs.existsSync(ckpt)) {
      removeQuietly(prev); // only a removal cut short leaves it; checkpoint is newer
      renameOrFail(ckpt, prev, "the previous checkpoint");
      faultPoint("checkpoint-swap", ckpt); // between the two renames: checkpoint.next is the newest complete one
    }
    renameOrFail(next, ckpt, "the new checkpoint");
  }
  if (fs.existsSync(ckpt)) removeQuietly(prev);
}

/** Leftovers are retried by the next run; failing to remove one must not end this one. */
function removeQuietly(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch (e) {
    stderr.write(`warning: could not remove ${p} (${(e as Error).message.split("\n")[0]}); the next run retries\n`);
  }
}

/** Before a run writes into its folder: remove what a killed run left and finish its checkpoint swap. */
function recoverRunDir(outDir: string): void {
  for (const e of dirEntries(outDir)) if (LEFTOVER.test(e)) removeQuietly(path.join(outDir, e));
  finishSwap(outDir);
}

/** The newest complete checkpoint in an output folder (or the folder itself when it is one). A damaged
 * trainer_state.json is a one-line error when `strict`, else that checkpoint is passed over. */
export function newestCheckpoint(where: string, strict = false): CheckpointFound | undefined {
  const named = [CHECKPOINT, NEXT, PREV].includes(path.basename(path.resolve(where)));
  const base = named ? path.dirname(path.resolve(where)) : where;
  const candidates = !named && fs.existsSync(path.join(where, "trainer_state.json")) ? [where] : [NEXT, CHECKPOINT, PREV].map((n) => path.join(base, n));
  let best: CheckpointFound | undefined;
  for (const dir of candidates) {
    if (!CHECKPOINT_FILES.every((f) => fs.existsSync(path.join(dir, f)))) continue;
    let state: TrainerState;
    try {
      state = readTrainerState(path.join(dir, "trainer_state.json"));
    } catch (e) {
      if (strict) throw e;
      continue;
    }
    if (best === undefined || state.step > best.step) best = { dir, state, step: state.step };
  }
  return best;
}

function readTrainerState(file: string): TrainerState {
  let state: TrainerState;
  try {
    state = JSON.parse(fs.readFileSync(file, "utf8")) as TrainerState;
  } catch (e) {
    throw userError(file, `is damaged (${fs.statSync(file).size === 0 ? "empty" : (e as Error).message.split("\n")[0]})`, "resume from another checkpoint, or start over with --overwrite-output-dir");
  }
  if (state === null || typeof state !== "object" || state.format !== "bertqa-trainer-state") throw userError(file, "is not a bertqa trainer state", "resume from a checkpoint written by bertqa train");
  return state;
}

/** The flag that sets each resumable setting, for "resume with the same ..." */
const SETTING_FLAGS: Record<string, string> = { batch_size: "--batch-size", grad_accum: "--grad-accum", seed: "--seed", total_steps: "--epochs and --max-steps", group_by_length: "--group-by-length" };

/** The checkpoint `where` names (a run folder or a checkpoint folder), refused in one line unless it continues
 * `fresh`: the same model, data and resumable settings. */
export function checkpointToResume(where: string, fresh: TrainerState): CheckpointFound {
  const found = newestCheckpoint(where, true);
  if (found === undefined) throw userError(where, `holds no complete checkpoint (${CHECKPOINT_FILES.join(", ")})`, "pass the --out directory of an earlier run, or its checkpoint/ folder");
  const { dir, state } = found;
  if (state.model_fingerprint !== fresh.model_fingerprint) {
    throw userError(dir, "was trained with a different model configuration", "resume with the same --model, or start a fresh run in another --out directory");
  }
  if (state.data_fingerprint !== fresh.data_fingerprint) {
    throw userError(dir, "was trained on different data (or --max-length/--doc-stride/tokenizer)", "resume with the same --train file and settings, or start a fresh run in another --out directory");
  }
  for (const key of Object.keys(SETTING_FLAGS)) {
    if ((state.settings[key] ?? 0) !== fresh.settings[key]) throw userError(dir, `was trained with ${key} ${state.settings[key]}, not ${fresh.settings[key]}`, `resume with the same ${SETTING_FLAGS[key]}`);
  }
  return found;
}

/** Read a checkpoint's file with `read`: one that cannot be read is the user's to know about in one line. */
export function readCheckpointFile<T>(file: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw userError(file, `is damaged (${(e as Error).message.split("\n")[0]})`, "resume from another checkpoint, or start over with --overwrite-output-dir");
  }
}
