// The model's hyper-parameters, named exactly as in Hugging Face `config.json` (snake_case), for BERT and DistilBERT.
// DistilBERT's config uses its own names (dim, n_layers, ...): they are mapped into the one BertConfig on parse and back
// on save, so a saved DistilBERT config.json is a real DistilBERT config that transformers loads.
import { fs } from "./platform";
import { userError } from "./errors";
import { decodeUtf8, parseJsonText } from "./fsutil";

export type ModelType = "bert" | "distilbert";

export interface BertConfig {
  model_type: ModelType;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string; // one of HIDDEN_ACTS
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  max_position_embeddings: number;
  type_vocab_size: number; // 0 for DistilBERT, which has no token types
  layer_norm_eps: number;
  initializer_range: number;
  pad_token_id: number;
  classifier_dropout?: number | null; // BERT classification head; null = hidden_dropout_prob
  qa_dropout?: number; // DistilBERT QA head
  seq_classif_dropout?: number; // DistilBERT classification head
  sinusoidal_pos_embds?: boolean; // DistilBERT: fixed sin/cos position table
  num_labels?: number;
  id2label?: Record<string, string>;
  label2id?: Record<string, number>;
  architectures?: string[];
}

/** Activations we implement; "gelu" is the exact erf form (transformers' default), the others its tanh variants. */
export const HIDDEN_ACTS = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"];

// Defaults of transformers' BertConfig / DistilBertConfig (configuration_bert.py, configuration_distilbert.py).
const BERT_DEFAULTS = {
  vocab_size: 30522, hidden_act: "gelu", hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1,
  max_position_embeddings: 512, type_vocab_size: 2, layer_norm_eps: 1e-12, initializer_range: 0.02, pad_token_id: 0,
};
const DISTILBERT_LAYER_NORM_EPS = 1e-12; // hard-coded in modeling_distilbert.py

/** Parse and validate a config.json object; `file` names the source in error messages. */
export function parseConfig(json: unknown, file = "config.json"): BertConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw userError(file, "config is not a JSON object");
  const j = json as Record<string, unknown>;
  const type = j.model_type ?? (Array.isArray(j.architectures) && String(j.architectures[0]).startsWith("DistilBert") ? "distilbert" : undefined);
  if (type !== "bert" && type !== "distilbert") {
    throw userError(file, `model_type '${String(type)}' is not supported`, "use a BERT or DistilBERT checkpoint (model_type bert or distilbert)");
  }
  const num = (key: string, dflt?: number): number => {
    const v = j[key] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v)) throw userError(file, `field '${key}' must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  let c: BertConfig;
  if (type === "bert") {
    if (j.position_embedding_type !== undefined && j.position_embedding_type !== "absolute") {
      throw userError(file, `position_embedding_type '${String(j.position_embedding_type)}' is not supported`, "only absolute position embeddings are implemented");
    }
    c = {
      model_type: "bert",
      vocab_size: num("vocab_size", BERT_DEFAULTS.vocab_size),
      hidden_size: num("hidden_size", 768),
      num_hidden_layers: num("num_hidden_layers", 12),
      num_attention_heads: num("num_attention_heads", 12),
      intermediate_size: num("intermediate_size", 3072),
      hidden_act: String(j.hidden_act ?? BERT_DEFAULTS.hidden_act),
      hidden_dropout_prob: num("hidden_dropout_prob", BERT_DEFAULTS.hidden_dropout_prob),
      attention_probs_dropout_prob: num("attention_probs_dropout_prob", BERT_DEFAULTS.attention_probs_dropout_prob),
      max_position_embeddings: num("max_position_embeddings", BERT_DEFAULTS.max_position_embeddings),
      type_vocab_size: num("type_vocab_size", BERT_DEFAULTS.type_vocab_size),
      layer_norm_eps: num("layer_norm_eps", BERT_DEFAULTS.layer_norm_eps),
      initializer_range: num("initializer_range", BERT_DEFAULTS.initializer_range),
      pad_token_id: num("pad_token_id", BERT_DEFAULTS.pad_token_id),
      classifier_dropout: j.classifier_dropout === null || j.classifier_dropout === undefined ? null : num("classifier_dropout"),
    };
  } else {
    c = {
      model_type: "distilbert",
      vocab_size: num("vocab_size", BERT_DEFAULTS.vocab_size),
      hidden_size: num("dim", 768),
      num_hidden_layers: num("n_layers", 6),
      num_attention_heads: num("n_heads", 12),
      intermediate_size: num("hidden_dim", 3072),
      hidden_act: String(j.activation ?? "gelu"),
      hidden_dropout_prob: num("dropout", 0.1),
      attention_probs_dropout_prob: num("attention_dropout", 0.1),
      max_position_embeddings: num("max_position_embeddings", 512),
      type_vocab_size: 0,
      layer_norm_eps: DISTILBERT_LAYER_NORM_EPS,
      initializer_range: num("initializer_range", 0.02),
      pad_token_id: num("pad_token_id", 0),
      qa_dropout: num("qa_dropout", 0.1),
      seq_classif_dropout: num("seq_classif_dropout", 0.2),
      sinusoidal_pos_embds: j.sinusoidal_pos_embds === true,
    };
  }
  parseLabels(j, c, file);
  if (Array.isArray(j.architectures)) c.architectures = j.architectures.map(String);
  validateConfig(c, file);
  return c;
}

function parseLabels(j: Record<string, unknown>, c: BertConfig, file: string): void {
  const id2label = j.id2label;
  if (id2label !== undefined && id2label !== null) {
    if (typeof id2label !== "object") throw userError(file, "field 'id2label' must be an object like {\"0\": \"neg\"}");
    c.id2label = Object.fromEntries(Object.entries(id2label as object).map(([k, v]) => [k, String(v)]));
    c.num_labels = Object.keys(c.id2label).length;
    c.label2id = Object.fromEntries(Object.entries(c.id2label).map(([k, v]) => [v, Number(k)]));
  }
  if (typeof j.num_labels === "number") c.num_labels = j.num_labels;
}

/** Check sizes and the activation; every message names the file and the field. */
export function validateConfig(c: BertConfig, file = "config.json"): void {
  const names = c.model_type === "distilbert"
    ? { hidden_size: "dim", num_hidden_layers: "n_layers", num_attention_heads: "n_heads", intermediate_size: "hidden_dim", hidden_act: "activation" }
    : { hidden_size: "hidden_size", num_hidden_layers: "num_hidden_layers", num_attention_heads: "num_attention_heads", intermediate_size: "intermediate_size", hidden_act: "hidden_act" };
  const positive: [keyof BertConfig, string][] = [
    ["vocab_size", "vocab_size"], ["hidden_size", names.hidden_size], ["num_hidden_layers", names.num_hidden_layers],
    ["num_attention_heads", names.num_attention_heads], ["intermediate_size", names.intermediate_size],
    ["max_position_embeddings", "max_position_embeddings"],
  ];
  for (const [key, name] of positive) {
    const v = c[key] as number;
    if (!Number.isInteger(v) || v <= 0) throw userError(file, `field '${name}' must be a positive integer, got ${v}`);
  }
  if (c.model_type === "bert" && (!Number.isInteger(c.type_vocab_size) || c.type_vocab_size <= 0)) {
    throw userError(file, `field 'type_vocab_size' must be a positive integer, got ${c.type_vocab_size}`);
  }
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw userError(file, `field '${names.hidden_size}' (${c.hidden_size}) is not divisible by '${names.num_attention_heads}' (${c.num_attention_heads})`, "each head gets hidden_size / heads dimensions");
  }
  if (!HIDDEN_ACTS.includes(c.hidden_act)) {
    throw userError(file, `field '${names.hidden_act}' is '${c.hidden_act}', which is not implemented`, `use one of ${HIDDEN_ACTS.join(", ")}`);
  }
  for (const key of ["hidden_dropout_prob", "attention_probs_dropout_prob"] as const) {
    if (c[key] < 0 || c[key] >= 1) throw userError(file, `field '${key}' must be in [0, 1), got ${c[key]}`);
  }
  if (!(c.layer_norm_eps > 0)) throw userError(file, `field 'layer_norm_eps' must be > 0, got ${c.layer_norm_eps}`);
  if (!(c.initializer_range > 0)) throw userError(file, `field 'initializer_range' must be > 0, got ${c.initializer_range}`);
  if (c.num_labels !== undefined && (!Number.isInteger(c.num_labels) || c.num_labels < 1)) {
    throw userError(file, `field 'num_labels' must be a positive integer, got ${c.num_labels}`);
  }
}

export function readConfig(file: string): BertConfig {
  if (!fs.existsSync(file)) throw userError(file, "file not found", "a model directory needs config.json beside model.safetensors");
  return parseConfig(parseJsonText(decodeUtf8(fs.readFileSync(file), file), file, "not valid JSON"), file);
}

/** The config.json object transformers expects for this model type (DistilBERT names restored). */
export function configToJson(c: BertConfig, architecture: string): Record<string, unknown> {
  const labels = c.num_labels !== undefined ? labelMaps(c) : {};
  const common = { architectures: [architecture], model_type: c.model_type, vocab_size: c.vocab_size, max_position_embeddings: c.max_position_embeddings, initializer_range: c.initializer_range, pad_token_id: c.pad_token_id, ...labels };
  if (c.model_type === "distilbert") {
    return {
      ...common, dim: c.hidden_size, n_layers: c.num_hidden_layers, n_heads: c.num_attention_heads, hidden_dim: c.intermediate_size,
      activation: c.hidden_act, dropout: c.hidden_dropout_prob, attention_dropout: c.attention_probs_dropout_prob,
      qa_dropout: c.qa_dropout ?? 0.1, seq_classif_dropout: c.seq_classif_dropout ?? 0.2, sinusoidal_pos_embds: c.sinusoidal_pos_embds === true,
      dtype: "float32",
    };
  }
  return {
    ...common, hidden_size: c.hidden_size, num_hidden_layers: c.num_hidden_layers, num_attention_heads: c.num_attention_heads,
    intermediate_size: c.intermediate_size, hidden_act: c.hidden_act, hidden_dropout_prob: c.hidden_dropout_prob,
    attention_probs_dropout_prob: c.attention_probs_dropout_prob, type_vocab_size: c.type_vocab_size, layer_norm_eps: c.layer_norm_eps,
    classifier_dropout: c.classifier_dropout ?? null, position_embedding_type: "absolute", dtype: "float32",
  };
}

function labelMaps(c: BertConfig): { id2label: Record<string, string>; label2id: Record<string, number> } {
  const n = c.num_labels ?? 2;
  const id2label: Record<string, string> = {};
  for (let i = 0; i < n; i++) id2label[String(i)] = c.id2label?.[String(i)] ?? `LABEL_${i}`;
  const label2id = Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)]));
  return { id2label, label2id };
}

export type PresetName = "tiny" | "mini" | "small" | "medium" | "base" | "large";
/** Layers, hidden size and heads of the compact BERTs (Turc et al. 2019, "Well-Read Students Learn Better") and BERT. */
export const PRESETS: Record<PresetName, { layers: number; hidden: number; heads: number }> = {
  tiny: { layers: 2, hidden: 128, heads: 2 },
  mini: { layers: 4, hidden: 256, heads: 4 },
  small: { layers: 4, hidden: 512, heads: 8 },
  medium: { layers: 8, hidden: 512, heads: 8 },
  base: { layers: 12, hidden: 768, heads: 12 },
  large: { layers: 24, hidden: 1024, heads: 16 },
};

/** A config for training from scratch: intermediate = 4 × hidden as in the BERT paper; vocab from the tokenizer. */
export function presetConfig(name: PresetName, opts: { vocabSize?: number; maxPositions?: number; numLabels?: number } = {}): BertConfig {
  const p = PRESETS[name];
  if (p === undefined) throw userError("config", `unknown preset '${name}'`, `use one of ${Object.keys(PRESETS).join(", ")}`);
  const c: BertConfig = {
    model_type: "bert", ...BERT_DEFAULTS,
    vocab_size: opts.vocabSize ?? BERT_DEFAULTS.vocab_size,
    max_position_embeddings: opts.maxPositions ?? BERT_DEFAULTS.max_position_embeddings,
    hidden_size: p.hidden, num_hidden_layers: p.layers, num_attention_heads: p.heads, intermediate_size: 4 * p.hidden,
    classifier_dropout: null,
  };
  if (opts.numLabels !== undefined) c.num_labels = opts.numLabels;
  validateConfig(c, `preset '${name}'`);
  return c;
}

/** The preset a mistyped name most likely meant ("tinyy" → "tiny"): within 2 edits, else undefined. */
export function nearPreset(name: string): PresetName | undefined {
  let best: PresetName | undefined, bestD = 3;
  for (const p of Object.keys(PRESETS) as PresetName[]) {
    const d = editDistance(name.toLowerCase(), p);
    if (d < bestD) [best, bestD] = [p, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}
