// config.json parsing: BERT and DistilBERT names, defaults, validation messages, presets, and writing back.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { configToJson, parseConfig, presetConfig, readConfig, nearPreset, type PresetName } from "../lib/config";
import { isUserError } from "../lib/errors";

const FIXTURES = path.join(__dirname, "fixtures");
const fixtureJson = (name: string) => JSON.parse(fs.readFileSync(path.join(FIXTURES, name, "config.json"), "utf8"));

test("BERT config.json fields are taken verbatim", () => {
  const c = readConfig(path.join(FIXTURES, "tiny-bert-qa", "config.json"));
  assert.deepEqual(
    [c.model_type, c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size, c.hidden_act, c.max_position_embeddings, c.type_vocab_size, c.layer_norm_eps, c.pad_token_id],
    ["bert", 1000, 32, 2, 4, 37, "gelu", 64, 2, 1e-12, 0],
  );
  assert.deepEqual(c.architectures, ["BertForQuestionAnswering"]);
});

test("DistilBERT names map into BertConfig and back out unchanged", () => {
  const raw = fixtureJson("tiny-distilbert-qa");
  const c = parseConfig(raw, "distil/config.json");
  assert.deepEqual([c.model_type, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size, c.hidden_act, c.hidden_dropout_prob, c.attention_probs_dropout_prob, c.type_vocab_size],
    ["distilbert", raw.dim, raw.n_layers, raw.n_heads, raw.hidden_dim, raw.activation, raw.dropout, raw.attention_dropout, 0]);
  const back = configToJson(c, "DistilBertForQuestionAnswering");
  for (const k of ["dim", "n_layers", "n_heads", "hidden_dim", "activation", "dropout", "attention_dropout", "qa_dropout", "seq_classif_dropout", "sinusoidal_pos_embds", "vocab_size", "max_position_embeddings"]) {
    assert.deepEqual(back[k], raw[k], k);
  }
  assert.equal(back.hidden_size, undefined);
  assert.deepEqual(parseConfig(back), { ...c, architectures: ["DistilBertForQuestionAnswering"] });
});

test("labels: id2label sets num_labels; the classification fixture (no id2label) defaults to 2 when used", () => {
  const c = parseConfig({ ...fixtureJson("tiny-bert-cls"), id2label: { 0: "neg", 1: "neu", 2: "pos" } });
  assert.equal(c.num_labels, 3);
  assert.deepEqual(c.label2id, { neg: 0, neu: 1, pos: 2 });
  const json = configToJson(c, "BertForSequenceClassification");
  assert.deepEqual(json.id2label, { 0: "neg", 1: "neu", 2: "pos" });
  assert.equal(parseConfig(fixtureJson("tiny-bert-cls")).num_labels, undefined);
});

const BAD: { name: string; edit: Record<string, unknown>; base?: string; message: RegExp }[] = [
  { name: "heads do not divide hidden", edit: { num_attention_heads: 5 }, message: /cfg\.json: field 'hidden_size' \(32\) is not divisible by 'num_attention_heads' \(5\)/ },
  { name: "DistilBERT names in the message", base: "tiny-distilbert-qa", edit: { n_heads: 5 }, message: /field 'dim' \(32\) is not divisible by 'n_heads' \(5\)/ },
  { name: "zero layers", edit: { num_hidden_layers: 0 }, message: /field 'num_hidden_layers' must be a positive integer, got 0/ },
  { name: "negative vocab", edit: { vocab_size: -3 }, message: /field 'vocab_size' must be a positive integer, got -3/ },
  { name: "string size", edit: { hidden_size: "32" }, message: /field 'hidden_size' must be a number, got "32"/ },
  { name: "unknown activation", edit: { hidden_act: "swish" }, message: /field 'hidden_act' is 'swish', which is not implemented \(use one of gelu, gelu_new, gelu_pytorch_tanh, relu\)/ },
  { name: "unknown model type", edit: { model_type: "roberta" }, message: /model_type 'roberta' is not supported/ },
  { name: "relative positions", edit: { position_embedding_type: "relative_key" }, message: /position_embedding_type 'relative_key' is not supported/ },
  { name: "dropout out of range", edit: { hidden_dropout_prob: 1.5 }, message: /field 'hidden_dropout_prob' must be in \[0, 1\), got 1\.5/ },
];

for (const { name, edit, base, message } of BAD) {
  test(`invalid config: ${name} → one-line error naming file and field`, () => {
    const json = { ...fixtureJson(base ?? "tiny-bert-qa"), ...edit };
    assert.throws(() => parseConfig(json, "cfg.json"), (e: Error) => isUserError(e) && message.test(e.message) && !e.message.includes("\n"));
  });
}

test("a config that is not JSON names the file", () => {
  const file = path.join(fs.mkdtempSync(path.join(require("node:os").tmpdir(), "cfg-")), "config.json");
  fs.writeFileSync(file, "{ not json");
  assert.throws(() => readConfig(file), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not valid JSON`));
});

// Turc et al. 2019 (compact BERTs) and Devlin et al. 2019 (base, large): layers / hidden / heads.
const PRESETS: [PresetName, number, number, number][] = [
  ["tiny", 2, 128, 2], ["mini", 4, 256, 4], ["small", 4, 512, 8], ["medium", 8, 512, 8], ["base", 12, 768, 12], ["large", 24, 1024, 16],
];
for (const [name, L, H, A] of PRESETS) {
  test(`preset ${name}: L${L}/H${H}/A${A}, intermediate 4H`, () => {
    const c = presetConfig(name, { vocabSize: 8000 });
    assert.deepEqual([c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size, c.vocab_size, c.max_position_embeddings, c.hidden_act],
      [L, H, A, 4 * H, 8000, 512, "gelu"]);
  });
}

test("presets take max positions; the default vocabulary is bert-base-uncased's", () => {
  assert.equal(presetConfig("tiny", { maxPositions: 128 }).max_position_embeddings, 128);
  assert.equal(presetConfig("tiny").vocab_size, 30522);
  assert.throws(() => presetConfig("huge" as PresetName), /unknown preset 'huge'/);
});

test("nearPreset: a name within two edits of a preset is that preset; Hub ids and paths are not", () => {
  const table: [string, string | undefined][] = [
    ["tinyy", "tiny"], ["Tiny", "tiny"], ["smal", "small"], ["meduim", "medium"], ["larg", "large"], ["bsae", "base"],
    ["bert-base-uncased", undefined], ["gpt2", undefined], ["org/tiny-model", undefined], ["runs/demo", undefined],
  ];
  for (const [name, want] of table) assert.equal(nearPreset(name), want, name);
});
