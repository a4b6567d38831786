// A Keras-style model summary: one row per building block (embeddings, each layer's attention and feed-forward,
// pooler, head) with its output shape and parameter count, as text for a terminal and as rows for an HTML table.
import type { BertModel } from "./bert";
import { layerKeys, modelPrefix } from "./bert";
import { architecture } from "./weights";

export interface SummaryRow {
  name: string; // HF module path, e.g. "bert.encoder.layer.0.attention"
  type: string; // what the block is
  output_shape: string; // "[batch, 384, 768]"
  params: number;
  trainable: number;
}

/** The rows of the summary for inputs of `seqLen` tokens (the batch size stays symbolic). */
export function summaryRows(model: BertModel, seqLen = 384): SummaryRow[] {
  const c = model.config, H = c.hidden_size, T = seqLen;
  const used = new Set<string>();
  const row = (name: string, type: string, shape: (string | number)[], prefixes: string[]): SummaryRow => {
    let params = 0, trainable = 0;
    for (const [key, v] of Object.entries(model.params)) {
      if (!prefixes.some((p) => key.startsWith(`${p}.`)) || used.has(key)) continue;
      used.add(key);
      params += v.size;
      if (v.trainable) trainable += v.size;
    }
    return { name, type, output_shape: `[${shape.join(", ")}]`, params, trainable };
  };
  const prefix = modelPrefix(c);
  const rows: SummaryRow[] = [row(`${prefix}.embeddings`, c.model_type === "bert" ? "Embeddings (word+position+type, LayerNorm)" : "Embeddings (word+position, LayerNorm)", ["batch", T, H], [`${prefix}.embeddings`])];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const k = layerKeys(c, i);
    rows.push(row(k.query.replace(/\.(self\.query|q_lin)$/, ""), `SelfAttention (${c.num_attention_heads} heads) + LayerNorm`, ["batch", T, H], [k.query, k.key, k.value, k.attnOut, k.attnNorm]));
    rows.push(row(k.ffnIn.replace(/\.(intermediate\.dense|ffn\.lin1)$/, c.model_type === "bert" ? ".intermediate+output" : ".ffn"), `FeedForward (${c.intermediate_size}, ${c.hidden_act}) + LayerNorm`, ["batch", T, H], [k.ffnIn, k.ffnOut, k.ffnNorm]));
  }
  if (model.task === "qa") {
    rows.push(row("qa_outputs", "Dense → start/end logits", ["batch", T, 2], ["qa_outputs"]));
  } else {
    const labels = model.params["classifier.bias"].size;
    if (c.model_type === "bert") rows.push(row("bert.pooler", "Pooler (dense + tanh on [CLS])", ["batch", H], ["bert.pooler"]));
    else rows.push(row("pre_classifier", "Dense + ReLU on [CLS]", ["batch", H], ["pre_classifier"]));
    rows.push(row("classifier", "Dense → label logits", ["batch", labels], ["classifier"]));
  }
  const rest = Object.keys(model.params).filter((k) => !used.has(k));
  if (rest.length > 0) rows.push(row("(other)", "other parameters", ["-"], rest.map((k) => k.replace(/\.[^.]+$/, ""))));
  return rows;
}

/** The summary as text, Keras-style: rows, then total / trainable / non-trainable parameter counts. */
export function modelSummary(model: BertModel, seqLen = 384): string {
  const rows = summaryRows(model, seqLen);
  const total = rows.reduce((s, r) => s + r.params, 0), trainable = rows.reduce((s, r) => s + r.trainable, 0);
  const cols = [Math.max(32, ...rows.map((r) => r.name.length + r.type.length + 4)), 18, 12];
  const width = cols.reduce((a, b) => a + b, 0) + 2;
  const fmt = (a: string, b: string, c: string) => ` ${a.padEnd(cols[0])}${b.padEnd(cols[1])}${c.padStart(cols[2])}`;
  const c = model.config;
  const lines = [
    `Model: "${architecture(c, model.task)}" (${c.model_type}: ${c.num_hidden_layers} layers, hidden ${c.hidden_size}, ${c.num_attention_heads} heads, vocab ${c.vocab_size}; sequence length ${seqLen})`,
    "_".repeat(width),
    fmt("Layer (type)", "Output Shape", "Param #"),
    "=".repeat(width),
    ...rows.flatMap((r, i) => [fmt(`${r.name} (${r.type})`, r.output_shape, r.params.toLocaleString("en-US")), i < rows.length - 1 ? "" : null]).filter((l): l is string => l !== null),
    "=".repeat(width),
    `Total params: ${total.toLocaleString("en-US")} (${(total * 4 / 2 ** 20).toFixed(2)} MB as float32)`,
    `Trainable params: ${trainable.toLocaleString("en-US")}`,
    `Non-trainable params: ${(total - trainable).toLocaleString("en-US")}`,
    "_".repeat(width),
  ];
  return lines.join("\n");
}
