// Checkpoints in and out: Hugging Face model directories (config.json + model.safetensors, or a sharded index), local
// or downloaded from the Hub into the standard cache. Loading walks the one parameter table of bert.ts, copying
// tensors key by key under their HF names (dense weights transposed from PyTorch's [out, in] to the model's [in, out]
// here and only here: fromHfLayout / toHfTensors), and reports what it left out and what it had to initialise, like
// transformers' from_pretrained.
import { fs, path, stderr } from "./platform";
import * as tf from "@tensorflow/tfjs";
import { configToJson, readConfig, type BertConfig } from "./config";
import { initTensor, isFrozen, layerKeys, modelPrefix, paramSpecs, type BertModel, type ParamSpec, type Task } from "./bert";
import { userError } from "./errors";
import { persisted, writeDirAtomic, writeFileAtomic } from "./fsutil";
import { cachedSnapshot, hubCacheDir, hubDownload, hubFileMeta, hubOffline, isHubError, isHubId, writeRef, type HubFileMeta, type HubOptions } from "./hub";
import { readSafetensors, serializeSafetensors, type HostTensor, type TensorMap } from "./safetensors";

export { cachedSnapshot, hubCacheDir, hubEndpoint, isHubId, type HubOptions } from "./hub";
export interface LoadOptions extends HubOptions {
  numLabels?: number; // classification: overrides config.json (a checkpoint whose classifier has another size is refused)
  labels?: string[]; // classification: names of the labels, index = class id
  seed?: number; // for heads the checkpoint lacks
}
export interface LoadResult { model: BertModel; missing: string[]; unexpected: string[]; report: string; dir: string }

/** The files a tokenizer may consist of; copied beside a saved model so the directory is self-contained. */
export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"];

// Prefixes of tensors that belong to heads we never use: BERT's pretraining heads (MLM + NSP), DistilBERT's MLM head.
const PRETRAINING_PREFIXES = ["cls.", "vocab_transform.", "vocab_layer_norm.", "vocab_projector."];

/** Load a BERT/DistilBERT checkpoint for `task` from a directory or a Hub model id ("org/name"). */
export async function loadModel(pathOrId: string, task: Task, opts: LoadOptions = {}): Promise<LoadResult> {
  return loadModelDir(await resolveModelDir(pathOrId, opts), task, opts);
}

/** A local directory as is; a Hub id downloaded (or found in the cache) first. */
export async function resolveModelDir(pathOrId: string, opts: HubOptions = {}): Promise<string> {
  if (fs.existsSync(pathOrId)) return pathOrId;
  if (!isHubId(pathOrId)) throw userError(pathOrId, "no such model directory", "give a directory with config.json and model.safetensors, or a Hub id like 'org/name'");
  return downloadModel(pathOrId, opts);
}

/** The task a checkpoint was saved for, from config.json's architectures (undefined for base models). */
export function taskFromConfig(c: BertConfig): Task | undefined {
  const arch = c.architectures?.[0] ?? "";
  if (arch.endsWith("ForQuestionAnswering")) return "qa";
  if (arch.endsWith("ForSequenceClassification")) return "cls";
  return undefined;
}

/** Load from a local directory (synchronous: no download). */
export function loadModelDir(dir: string, task: Task, opts: LoadOptions = {}): LoadResult {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw userError(dir, "is a file, not a model directory", "pass the directory that holds config.json");
  const config = readConfig(path.join(dir, "config.json"));
  applyLabelOptions(config, opts);
  const tensors = readCheckpoint(dir);
  return { ...modelFromTensors(config, task, tensors, dir, opts.seed ?? 0), dir };
}

function applyLabelOptions(c: BertConfig, opts: LoadOptions): void {
  if (opts.labels !== undefined) {
    c.num_labels = opts.labels.length;
    c.id2label = Object.fromEntries(opts.labels.map((l, i) => [String(i), l]));
    c.label2id = Object.fromEntries(opts.labels.map((l, i) => [l, i]));
  } else if (opts.numLabels !== undefined && opts.numLabels !== c.num_labels) {
    c.num_labels = opts.numLabels;
    delete c.id2label;
    delete c.label2id;
  }
}

/** All tensors of a model directory, under the names stored in the file(s). */
export function readCheckpoint(dir: string): TensorMap {
  const single = path.join(dir, "model.safetensors");
  const index = path.join(dir, "model.safetensors.index.json");
  let files: string[];
  if (fs.existsSync(single)) files = [single];
  else if (fs.existsSync(index)) files = shardFiles(index);
  else throw missingWeightsError(dir);
  const out: TensorMap = new Map();
  for (const file of files) {
    for (const [name, t] of readSafetensors(file).tensors) {
      if (out.has(name)) throw userError(file, `tensor '${name}' appears in two shards`, "the checkpoint is damaged; download it again");
      out.set(name, t);
    }
  }
  return out;
}

function shardFiles(index: string): string[] {
  const shards = shardNames(index).map((f) => path.join(path.dirname(index), f));
  for (const s of shards) if (!fs.existsSync(s)) throw userError(s, "shard listed in model.safetensors.index.json is missing", "download the checkpoint again");
  return shards;
}

function shardNames(index: string): string[] {
  let json: { weight_map?: Record<string, string> };
  try {
    json = JSON.parse(fs.readFileSync(index, "utf8"));
  } catch (e) {
    throw userError(index, `not valid JSON (${(e as Error).message})`);
  }
  if (json.weight_map === undefined || typeof json.weight_map !== "object") throw userError(index, "has no 'weight_map'", "a sharded checkpoint index maps tensor names to shard files");
  const names = [...new Set(Object.values(json.weight_map))];
  for (const n of names) if (typeof n !== "string" || n.includes("..") || path.isAbsolute(n)) throw userError(index, `shard name ${JSON.stringify(n)} is not a file name`);
  return names;
}

function missingWeightsError(dir: string): Error {
  if (fs.existsSync(path.join(dir, "pytorch_model.bin"))) {
    return userError(path.join(dir, "pytorch_model.bin"), "PyTorch pickle checkpoints are not read (unsafe to unpickle, and not portable)",
      `convert once to safetensors: cd ${dir} && python3 -c "import torch; from safetensors.torch import save_file; sd = torch.load('pytorch_model.bin', map_location='cpu'); save_file({k: v.clone().contiguous() for k, v in sd.items()}, 'model.safetensors', metadata={'format': 'pt'})"`);
  }
  if (fs.existsSync(path.join(dir, "tf_model.h5"))) {
    return userError(path.join(dir, "tf_model.h5"), "TensorFlow .h5 checkpoints are not read",
      "convert with Python transformers: AutoModel.from_pretrained(dir, from_tf=True).save_pretrained(dir) writes model.safetensors");
  }
  return userError(dir, "no model.safetensors or model.safetensors.index.json", "a model directory needs config.json and model.safetensors (save_pretrained writes both)");
}

/** Old checkpoints (converted from Google's TF release) call LayerNorm parameters gamma/beta; some omit the base
 * model prefix. Both map onto today's names; the pretraining heads (`cls.*`) keep theirs and are reported unused. */
export function normaliseKey(name: string, prefix: "bert" | "distilbert"): string {
  const key = name.replace(/\.gamma$/, ".weight").replace(/\.beta$/, ".bias");
  return /^(embeddings|encoder|pooler|transformer)\./.test(key) ? `${prefix}.${key}` : key;
}

/** Rename every tensor to today's HF name; two tensors landing on one name is an error. */
export function normaliseKeys(raw: TensorMap, prefix: "bert" | "distilbert", source: string): TensorMap {
  const out: TensorMap = new Map();
  const from = new Map<string, string>();
  for (const [name, t] of raw) {
    const key = normaliseKey(name, prefix);
    if (out.has(key)) throw userError(source, `tensors '${from.get(key)}' and '${name}' both mean '${key}'`, "the checkpoint mixes key styles; keep one");
    out.set(key, t);
    from.set(key, name);
  }
  return out;
}

/** Build a model from host tensors: shapes must match the config; missing heads are initialised and listed. */
export function modelFromTensors(config: BertConfig, task: Task, raw: TensorMap, source: string, seed = 0): Omit<LoadResult, "dir"> {
  const prefix = modelPrefix(config);
  const tensors = normaliseKeys(raw, prefix, source);
  checkLayerCount(config, tensors, source); // before paramSpecs: a config claiming 1e9 layers must not build 1e9 layers
  const specs = paramSpecs(config, task);
  const expected = new Set(specs.map((s) => s.name));
  const missingBody = specs.filter((s) => !s.head && !tensors.has(s.name)).map((s) => s.name);
  if (missingBody.length > 0) {
    throw userError(source, `checkpoint lacks ${missingBody.length} tensor(s) the config needs, first '${missingBody[0]}'`, mismatchHint(config, tensors));
  }
  for (const s of specs) {
    const t = tensors.get(s.name);
    if (t === undefined) continue;
    if (t.shape.join() !== s.hfShape.join()) {
      throw userError(source, `tensor '${s.name}' has shape [${t.shape}] but config.json implies [${s.hfShape}]`, "config.json and the weights do not belong together (or num_labels differs)");
    }
    if (t.dtype !== "float32") throw userError(source, `tensor '${s.name}' holds integers, expected floats`);
  }
  const params: Record<string, tf.Variable> = {};
  const missing: string[] = [];
  specs.forEach((s, i) => {
    const t = tensors.get(s.name);
    const value = t !== undefined ? tf.tensor(fromHfLayout(s, t.data), s.shape, "float32") : initTensor(config, s, seed * 1000 + i);
    if (t === undefined) missing.push(s.name);
    params[s.name] = tf.variable(value, !isFrozen(config, s.name));
    value.dispose();
  });
  const unexpected = [...tensors.keys()].filter((k) => !expected.has(k)).sort();
  const model: BertModel = { config, task, params };
  return { model, missing, unexpected, report: loadReport(architecture(config, task), source, missing, unexpected) };
}

/** The weights hold layers 0..n-1: config.json may use fewer (from_pretrained loads those and reports the rest unused), not more. */
function checkLayerCount(config: BertConfig, tensors: TensorMap, source: string): void {
  const layerKey = config.model_type === "distilbert" ? /^distilbert\.transformer\.layer\.(\d+)\./ : /^bert\.encoder\.layer\.(\d+)\./;
  let n = 0;
  for (const k of tensors.keys()) {
    const m = layerKey.exec(k);
    if (m !== null) n = Math.max(n, Number(m[1]) + 1);
  }
  // With no layer at all under this model type's prefix, modelFromTensors names the likely cause; unless the config
  // asks for more layers than the file has tensors, which must not be built first.
  if (config.num_hidden_layers > n && (n > 0 || config.num_hidden_layers > tensors.size)) {
    const field = config.model_type === "distilbert" ? "n_layers" : "num_hidden_layers";
    const perLayer = 2 * Object.keys(layerKeys(config, n)).length; // weight + bias of each dense and LayerNorm
    throw userError(source, `checkpoint lacks ${(config.num_hidden_layers - n) * perLayer} tensor(s) the config needs, first '${layerKeys(config, n).query}.weight'`,
      `config.json says ${field} ${config.num_hidden_layers} but the weights hold ${n} layer(s); ${mismatchHint(config, tensors)}`);
  }
}

function mismatchHint(config: BertConfig, tensors: TensorMap): string {
  const other = modelPrefix(config) === "bert" ? "distilbert" : "bert";
  return [...tensors.keys()].some((k) => k.startsWith(`${other}.`))
    ? `the weights are a ${other} checkpoint but config.json says model_type ${config.model_type}`
    : "config.json and the weights do not belong to the same model";
}

/** transformers' from_pretrained wording, so the message reads the same as in Python. */
export function loadReport(arch: string, source: string, missing: string[], unexpected: string[]): string {
  const lines: string[] = [];
  if (unexpected.length > 0) {
    lines.push(`Some weights of the model checkpoint at ${source} were not used when initializing ${arch}: [${unexpected.map((k) => `'${k}'`).join(", ")}]`);
    lines.push(`- This IS expected if you are initializing ${arch} from the checkpoint of a model trained on another task or with another architecture (e.g. from a BertForPreTraining model: ${PRETRAINING_PREFIXES.map((p) => p + "*").join(", ")}).`);
    lines.push(`- This IS NOT expected if you are initializing ${arch} from the checkpoint of a model that you expect to be exactly identical.`);
  }
  if (missing.length > 0) {
    lines.push(`Some weights of ${arch} were not initialized from the model checkpoint at ${source} and are newly initialized: [${missing.map((k) => `'${k}'`).join(", ")}]`);
    lines.push("You should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference.");
  }
  if (lines.length === 0) lines.push(`All weights of ${arch} were initialized from the model checkpoint at ${source}.`);
  return lines.join("\n");
}

export function architecture(c: BertConfig, task: Task): string {
  return `${c.model_type === "distilbert" ? "DistilBert" : "Bert"}For${task === "qa" ? "QuestionAnswering" : "SequenceClassification"}`;
}

// The one place where layouts change: dense weights are [out, in] in checkpoints and [in, out] in the model (bert.ts).

function transposeHost(data: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** Checkpoint values of one parameter in the model's layout. */
export function fromHfLayout(spec: ParamSpec, data: Float32Array | Int32Array): Float32Array {
  return spec.kind === "dense" ? transposeHost(data, spec.hfShape[0], spec.hfShape[1]) : Float32Array.from(data);
}

/** Tensors keyed by parameter name (values, gradients, optimiser moments) as host tensors in the HF checkpoint layout,
 * e.g. to compare gradients with PyTorch's or to save. */
export async function toHfTensors(model: BertModel, tensors: Record<string, tf.Tensor>): Promise<TensorMap> {
  const specs = new Map(paramSpecs(model.config, model.task).map((s) => [s.name, s]));
  const out: TensorMap = new Map();
  for (const [name, t] of Object.entries(tensors)) {
    const spec = specs.get(name);
    if (spec === undefined) throw new Error(`toHfTensors: '${name}' is not a parameter of this model`);
    const data = (await t.data()) as Float32Array; // async: GPU backends cannot read synchronously
    out.set(name, { dtype: "float32", shape: spec.hfShape.slice(), data: spec.kind === "dense" ? transposeHost(data, spec.shape[0], spec.shape[1]) : Float32Array.from(data) });
  }
  return out;
}

/** The model's parameters as host tensors under their HF names, in the HF layout (what model.safetensors holds). */
export function modelTensors(model: BertModel): Promise<TensorMap> {
  return toHfTensors(model, model.params);
}

/** Save as a Hugging Face model directory (config.json + model.safetensors [+ tokenizer files]); other files there stay. */
export async function saveModel(model: BertModel, dir: string, opts: { tokenizerDir?: string } = {}): Promise<void> {
  writeModelFiles(dir, await modelFiles(model, opts));
  await persisted("the model", dir); // in a browser: in storage before this returns
}

/** The files of a Hugging Face model directory (config.json, model.safetensors, tokenizer files), in memory. */
export async function modelFiles(model: BertModel, opts: { tokenizerDir?: string } = {}): Promise<ModelFile[]> {
  const tensors = await modelTensors(model);
  const tokFiles = opts.tokenizerDir !== undefined ? tokenizerFiles(opts.tokenizerDir) : [];
  return [
    { name: "config.json", data: JSON.stringify(configToJson(model.config, architecture(model.config, model.task)), null, 2) + "\n", what: "the model config" },
    { name: "model.safetensors", data: serializeSafetensors(tensors, { format: "pt" }), what: "the model weights" },
    ...tokFiles.map((f) => ({ name: path.basename(f), data: fs.readFileSync(f), what: "a tokenizer file" })), // read first: dir may be the source
  ];
}
export interface ModelFile { name: string; data: string | Uint8Array; what: string }

/** A new folder appears whole (filled beside it, then renamed); into an existing one only these names are written,
 * each atomically, and nothing else there is touched. */
export function writeModelFiles(dir: string, files: ModelFile[]): void {
  if (!fs.existsSync(dir)) {
    writeDirAtomic(dir, (tmp) => { for (const f of files) writeFileAtomic(path.join(tmp, f.name), f.data, f.what); }, "the model folder");
    return;
  }
  for (const f of files) writeFileAtomic(path.join(dir, f.name), f.data, f.what);
}

/** File names a saved model directory may hold (what `--overwrite-output-dir` lets a command replace). */
export const MODEL_FILES = ["config.json", "model.safetensors"];

function tokenizerFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) throw userError(dir, "tokenizer directory not found");
  if (!fs.statSync(dir).isDirectory()) return [dir]; // a single tokenizer.json or vocab.txt
  const files = TOKENIZER_FILES.map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
  if (files.length === 0) throw userError(dir, "holds no tokenizer files", `expected one of ${TOKENIZER_FILES.join(", ")}`);
  return files;
}

/** Host tensor → tf tensor (used by tests and tools that compare against fixtures). */
export function toTensor(t: HostTensor): tf.Tensor {
  return tf.tensor(t.data, t.shape, t.dtype);
}

// ---------------------------------------------------------------------------------------------------------------
// The Hub (lib/hub.ts: requests, cache layout, failures): which files make a checkpoint, as from_pretrained asks for them.

const WEIGHT_FILES = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"]; // first found wins

/**
 * Download a model's files (config, weights, tokenizer) into the Hub cache; returns the snapshot directory.
 * With HF_HUB_OFFLINE=1 the cached snapshot is used; when the Hub cannot be reached (or answers 5xx), the cached
 * snapshot is used with a warning, as transformers does. Every failure is one UserError line.
 * `const dir = await downloadModel("bert-base-uncased")`
 */
export async function downloadModel(id: string, opts: HubOptions = {}): Promise<string> {
  const cached = cachedSnapshot(id, opts), revision = opts.revision ?? "main";
  if (hubOffline()) {
    if (cached !== undefined) return cached;
    throw userError(`Hub model '${id}'`, `not in the cache ${hubCacheDir(opts)} (revision '${revision}'), and HF_HUB_OFFLINE=1 forbids downloading`,
      "unset HF_HUB_OFFLINE to download it, copy a Hugging Face cache that has it there (or point HF_HUB_CACHE / HF_HOME at one), or pass a local model directory");
  }
  try {
    return await downloadSnapshot(id, revision, opts);
  } catch (e) {
    if (cached !== undefined && isHubError(e) && (e.hubFailure === "network" || e.hubFailure === "server")) {
      stderr.write(`warning: ${e.message.split(" (")[0]}; using the cached ${cached}\n`);
      return cached;
    }
    throw e;
  }
}

async function downloadSnapshot(id: string, revision: string, opts: HubOptions): Promise<string> {
  const config = await hubFileMeta(id, "config.json", revision, opts);
  if (config === undefined) throw userError(`Hub model '${id}'`, `has no config.json (revision '${revision}')`, "is this a model repository?");
  const commit = config.commit; // every later file from the same commit, so the snapshot is one consistent version
  let weights: HubFileMeta | undefined;
  for (const f of WEIGHT_FILES) if ((weights = await hubFileMeta(id, f, commit, opts)) !== undefined) break;
  if (weights === undefined) throw userError(`Hub model '${id}'`, "the repository has no model.safetensors", "pick a repository with safetensors weights");
  if (weights.file === "pytorch_model.bin") {
    throw userError(`Hub model '${id}'`, "the repository only has pytorch_model.bin, which this loader does not read", "convert it to model.safetensors with Python (see 'bertqa convert --help') and load that directory");
  }
  const metas = [config, weights];
  for (const f of TOKENIZER_FILES) {
    const m = await hubFileMeta(id, f, commit, opts);
    if (m !== undefined) metas.push(m);
  }
  let dir = "";
  for (const m of metas) dir = path.dirname(await hubDownload(m, opts));
  if (weights.file === "model.safetensors.index.json") {
    for (const shard of shardNames(path.join(dir, weights.file))) {
      const m = await hubFileMeta(id, shard, commit, opts);
      if (m === undefined) throw userError(`Hub model '${id}', file ${shard}`, "listed in model.safetensors.index.json but not in the repository", "the checkpoint is incomplete on the Hub; pick another revision");
      await hubDownload(m, opts);
    }
  }
  writeRef(id, revision, commit, opts);
  await persisted(`the download of '${id}'`, dir); // in a browser: the snapshot is in storage before it is used
  return dir;
}
