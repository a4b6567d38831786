// Checkpoints in and out: save→load is exact and writes exactly the fixture's keys and shapes; base checkpoints get new
// heads and a transformers-style report; damaged or mismatched files are one-line errors; sharded checkpoints; and
// downloads from a Hub imitation on 127.0.0.1 land in the standard cache layout and load offline afterwards.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { disposeModel, forward } from "../lib/bert";
import { isUserError } from "../lib/errors";
import { readSafetensors, serializeSafetensors, writeSafetensors, type TensorMap } from "../lib/safetensors";
import { loadModel, loadModelDir, modelTensors, saveModel } from "../lib/weights";
import { setDefaultProgressSink, silentSink } from "../lib/progress";

const FIXTURES = path.join(__dirname, "fixtures");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-weights-"));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));
setDefaultProgressSink(silentSink);

function tmpDir(name: string): string {
  const d = path.join(TMP, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** A model directory holding `tensors` and the config of fixture `from` (optionally edited). */
function makeDir(name: string, from: string, tensors: TensorMap, edit?: (cfg: Record<string, unknown>) => void): string {
  const d = tmpDir(name);
  const cfg = JSON.parse(fs.readFileSync(path.join(FIXTURES, from, "config.json"), "utf8"));
  if (edit !== undefined) edit(cfg);
  fs.writeFileSync(path.join(d, "config.json"), JSON.stringify(cfg));
  writeSafetensors(path.join(d, "model.safetensors"), tensors);
  return d;
}

function fixtureTensors(name: string): TensorMap {
  return readSafetensors(path.join(FIXTURES, name, "model.safetensors")).tensors;
}

function userErrorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(isUserError(e), `expected a UserError, got ${(e as Error).stack}`);
    assert.ok(!(e as Error).message.includes("\n"), "one line");
    return (e as Error).message;
  }
  assert.fail("no error");
}

for (const [name, task, arch] of [["tiny-bert-qa", "qa", "BertForQuestionAnswering"], ["tiny-bert-cls", "cls", "BertForSequenceClassification"], ["tiny-distilbert-qa", "qa", "DistilBertForQuestionAnswering"]] as const) {
  test(`${name}: save → load is exact, with the fixture's keys, shapes and a transformers config`, async () => {
    const { model } = loadModelDir(path.join(FIXTURES, name), task);
    const out = path.join(TMP, `saved-${name}`);
    await saveModel(model, out);
    const ref = fixtureTensors(name);
    const saved = readSafetensors(path.join(out, "model.safetensors"));
    assert.deepEqual([...saved.tensors.keys()].sort(), [...ref.keys()].sort());
    for (const [k, t] of ref) {
      assert.deepEqual(saved.tensors.get(k)!.shape, t.shape, k);
      assert.deepEqual(saved.tensors.get(k)!.data, t.data, `${k}: values unchanged`);
    }
    assert.equal(saved.metadata.format, "pt"); // transformers refuses safetensors without format=pt
    const cfg = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8"));
    const refCfg = JSON.parse(fs.readFileSync(path.join(FIXTURES, name, "config.json"), "utf8"));
    assert.deepEqual(cfg.architectures, [arch]);
    // Every field of the reference config that shapes the model is written back under its own name and value.
    const keys = name.includes("distil")
      ? ["model_type", "vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "activation", "dropout", "attention_dropout", "max_position_embeddings", "sinusoidal_pos_embds", "qa_dropout", "seq_classif_dropout", "initializer_range", "pad_token_id"]
      : ["model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "initializer_range", "pad_token_id"];
    for (const k of keys) assert.deepEqual(cfg[k], refCfg[k], `config field ${k}`);
    if (name.includes("distil")) assert.equal(cfg.hidden_size, undefined, "a DistilBERT config uses DistilBERT's names");
    const again = loadModelDir(out, task);
    assert.deepEqual([again.missing, again.unexpected], [[], []]);
    for (const [k, t] of await modelTensors(again.model)) assert.deepEqual(t.data, ref.get(k)!.data, k);
    disposeModel(model);
    disposeModel(again.model);
  });
}

test("a base checkpoint gets a new QA head; pretraining heads are reported unused in transformers' words", () => {
  const tensors = fixtureTensors("tiny-bert-qa");
  tensors.delete("qa_outputs.weight");
  tensors.delete("qa_outputs.bias");
  tensors.set("cls.predictions.bias", { dtype: "float32", shape: [1000], data: new Float32Array(1000) });
  tensors.set("bert.pooler.dense.weight", { dtype: "float32", shape: [32, 32], data: new Float32Array(32 * 32) });
  tensors.set("bert.pooler.dense.bias", { dtype: "float32", shape: [32], data: new Float32Array(32) });
  const dir = makeDir("base", "tiny-bert-qa", tensors);
  const { model, missing, unexpected, report } = loadModelDir(dir, "qa");
  assert.deepEqual(missing, ["qa_outputs.weight", "qa_outputs.bias"]);
  assert.deepEqual(unexpected, ["bert.pooler.dense.bias", "bert.pooler.dense.weight", "cls.predictions.bias"]);
  assert.match(report, new RegExp(`Some weights of BertForQuestionAnswering were not initialized from the model checkpoint at ${dir} and are newly initialized: \\['qa_outputs.weight', 'qa_outputs.bias'\\]`));
  assert.match(report, /were not used when initializing BertForQuestionAnswering: \['bert.pooler.dense.bias', 'bert.pooler.dense.weight', 'cls.predictions.bias'\]/);
  assert.match(report, /You should probably TRAIN this model/);
  const w = Array.from(model.params["qa_outputs.weight"].dataSync());
  const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
  assert.ok(std > 0.005 && std < 0.05, `new head ~ N(0, initializer_range), std ${std}`);
  assert.deepEqual(Array.from(model.params["qa_outputs.bias"].dataSync()), [0, 0]);
  disposeModel(model);
  // Classification from a QA checkpoint: BERT's pooler and the classifier are new, with the requested label count.
  const cls = loadModelDir(path.join(FIXTURES, "tiny-bert-qa"), "cls", { labels: ["neg", "neu", "pos"] });
  assert.deepEqual(cls.missing, ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"]);
  assert.deepEqual(cls.unexpected, ["qa_outputs.bias", "qa_outputs.weight"]);
  assert.deepEqual(cls.model.config.id2label, { 0: "neg", 1: "neu", 2: "pos" });
  disposeModel(cls.model);
});

test("DistilBERT classification (pre_classifier + classifier) runs from a QA checkpoint", () => {
  const { model, missing } = loadModelDir(path.join(FIXTURES, "tiny-distilbert-qa"), "cls");
  assert.deepEqual(missing, ["pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"]);
  const out = forward(model, { inputIds: tf.tensor2d([[2, 5, 7]], undefined, "int32"), attentionMask: tf.tensor2d([[1, 1, 1]], undefined, "int32") });
  assert.deepEqual(out.logits!.shape, [1, 2]);
  disposeModel(model);
});

test("damaged files and mismatched configs are one-line errors naming the file and tensor", () => {
  const good = fs.readFileSync(path.join(FIXTURES, "tiny-bert-qa", "model.safetensors"));
  const cfg = path.join(FIXTURES, "tiny-bert-qa", "config.json");
  const withFile = (name: string, bytes: Buffer) => {
    const d = tmpDir(name);
    fs.copyFileSync(cfg, path.join(d, "config.json"));
    fs.writeFileSync(path.join(d, "model.safetensors"), bytes);
    return d;
  };
  assert.match(userErrorOf(() => loadModelDir(withFile("truncated", good.subarray(0, good.length - 100)), "qa")), /model\.safetensors: tensor '.*' runs past the end of the file/);
  const big = Buffer.from(good);
  big.writeBigUInt64LE(BigInt(good.length * 2), 0);
  assert.match(userErrorOf(() => loadModelDir(withFile("header", big), "qa")), /model\.safetensors: header says \d+ bytes but the file has/);
  const header = JSON.stringify({ "bert.x": { dtype: "Q7", shape: [1], data_offsets: [0, 4] } });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  assert.match(userErrorOf(() => loadModelDir(withFile("dtype", Buffer.concat([len, Buffer.from(header), Buffer.alloc(4)])), "qa")), /tensor 'bert\.x' has unknown dtype 'Q7'/);
  // config.json says hidden 64 / 8 heads but the weights are 32 wide: the first tensor that disagrees is named.
  const wide = makeDir("wide", "tiny-bert-qa", fixtureTensors("tiny-bert-qa"), (c) => { c.hidden_size = 64; c.num_attention_heads = 8; });
  assert.match(userErrorOf(() => loadModelDir(wide, "qa")), /tensor 'bert\.embeddings\.word_embeddings\.weight' has shape \[1000,32\] but config\.json implies \[1000,64\]/);
  const moreLayers = makeDir("layers", "tiny-bert-qa", fixtureTensors("tiny-bert-qa"), (c) => { c.num_hidden_layers = 3; });
  assert.match(userErrorOf(() => loadModelDir(moreLayers, "qa")), /checkpoint lacks 16 tensor\(s\) the config needs, first 'bert\.encoder\.layer\.2\./);
  // A config claiming 10⁹ layers is refused from the file's layer count, before 10⁹ layers are described or allocated.
  const absurd = makeDir("absurd", "tiny-bert-qa", fixtureTensors("tiny-bert-qa"), (c) => { c.num_hidden_layers = 1e9; });
  assert.match(userErrorOf(() => loadModelDir(absurd, "qa")), /checkpoint lacks 15999999968 tensor\(s\) the config needs, first 'bert\.encoder\.layer\.2\.attention\.self\.query\.weight' \(config\.json says num_hidden_layers 1000000000 but the weights hold 2 layer\(s\)/);
  const swapped = makeDir("swapped", "tiny-bert-qa", fixtureTensors("tiny-distilbert-qa"));
  assert.match(userErrorOf(() => loadModelDir(swapped, "qa")), /the weights are a distilbert checkpoint but config\.json says model_type bert/);
  const pt = tmpDir("pt");
  fs.copyFileSync(cfg, path.join(pt, "config.json"));
  fs.writeFileSync(path.join(pt, "pytorch_model.bin"), "not really");
  assert.match(userErrorOf(() => loadModelDir(pt, "qa")), /pytorch_model\.bin: PyTorch pickle checkpoints are not read .*save_file/);
  const noCfg = tmpDir("nocfg");
  assert.match(userErrorOf(() => loadModelDir(noCfg, "qa")), /config\.json: file not found/);
  const badAct = makeDir("act", "tiny-bert-qa", fixtureTensors("tiny-bert-qa"), (c) => { c.hidden_act = "swish"; });
  assert.match(userErrorOf(() => loadModelDir(badAct, "qa")), /config\.json: field 'hidden_act' is 'swish'/);
});

/** Split a checkpoint into two shards plus the index, as save_pretrained(max_shard_size=...) does. */
function writeSharded(dir: string, tensors: TensorMap): void {
  const names = [...tensors.keys()].sort();
  const half = Math.ceil(names.length / 2);
  const weightMap: Record<string, string> = {};
  [names.slice(0, half), names.slice(half)].forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(path.join(dir, file), new Map(part.map((n) => [n, tensors.get(n)!])));
    for (const n of part) weightMap[n] = file;
  });
  fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

test("sharded checkpoints (model.safetensors.index.json) load the same values", async () => {
  const d = tmpDir("sharded");
  fs.copyFileSync(path.join(FIXTURES, "tiny-bert-cls", "config.json"), path.join(d, "config.json"));
  const ref = fixtureTensors("tiny-bert-cls");
  writeSharded(d, ref);
  const { model, missing, unexpected } = loadModelDir(d, "cls");
  assert.deepEqual([missing, unexpected], [[], []]);
  for (const [k, t] of await modelTensors(model)) assert.deepEqual(t.data, ref.get(k)!.data, k);
  disposeModel(model);
  fs.rmSync(path.join(d, "model-00002-of-00002.safetensors"));
  assert.match(userErrorOf(() => loadModelDir(d, "cls")), /model-00002-of-00002\.safetensors: shard listed in model\.safetensors\.index\.json is missing/);
});

test("saveModel copies the tokenizer files, writes each file atomically and leaves files it did not write", async () => {
  const tok = tmpDir("tok");
  fs.writeFileSync(path.join(tok, "vocab.txt"), "[PAD]\n[UNK]\n");
  fs.writeFileSync(path.join(tok, "tokenizer_config.json"), "{}");
  const { model } = loadModelDir(path.join(FIXTURES, "tiny-bert-qa"), "qa");
  const out = path.join(TMP, "with-tok");
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, "stale.txt"), "old");
  await saveModel(model, out, { tokenizerDir: tok });
  assert.deepEqual(fs.readdirSync(out).sort(), ["config.json", "model.safetensors", "stale.txt", "tokenizer_config.json", "vocab.txt"], "a file saveModel did not write stays");
  assert.deepEqual(fs.readdirSync(TMP).filter((f) => f.includes("with-tok.")), [], "no temporary directories left");
  disposeModel(model);
});

// ---------------------------------------------------------------------------------------------------------------
// A Hub imitation: HEAD and GET on /<id>/resolve/<revision>/<file>, with the Hub's headers (test/hub.test.ts covers failures).

const COMMIT = "0123456789abcdef0123456789abcdef01234567";

function fakeHub(repos: Record<string, string>): { server: http.Server; requests: string[]; url: () => string } {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = decodeURIComponent(req.url ?? "");
    const info = url.match(/^\/api\/models\/([^/]+\/[^/]+)\/paths-info\/([^/]+)$/);
    const resolve = url.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    const repoId = info?.[1] ?? resolve?.[1];
    const rev = info?.[2] ?? resolve?.[2];
    const dir = repoId !== undefined ? repos[repoId] : undefined;
    if (dir === undefined) return void res.writeHead(401, { "X-Error-Code": "RepositoryNotFound", "Content-Type": "application/json" }).end(JSON.stringify({ error: "Repository not found" }));
    if (rev !== "main" && rev !== COMMIT) return void res.writeHead(404, { "X-Error-Code": "RevisionNotFound" }).end();
    const etag = (bytes: Buffer) => crypto.createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex"); // git blob id
    if (info !== null && req.method === "POST") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const paths: string[] = JSON.parse(body).paths;
        const found = paths.filter((p) => fs.existsSync(path.join(dir, p))).map((p) => {
          const bytes = fs.readFileSync(path.join(dir, p));
          return { type: "file", path: p, oid: etag(bytes), size: bytes.length, lastCommit: { id: COMMIT, title: "upload", date: "2026-01-01T00:00:00Z" } };
        });
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(found));
      });
      return;
    }
    if (resolve !== null) {
      const file = path.join(dir, resolve[3]);
      if (!fs.existsSync(file)) return void res.writeHead(404, { "X-Error-Code": "EntryNotFound" }).end();
      const bytes = fs.readFileSync(file);
      const headers = { ETag: `"${etag(bytes)}"`, "X-Repo-Commit": COMMIT, "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes" };
      const range = req.headers.range?.match(/bytes=(\d+)-(\d+)/);
      if (range) {
        const [a, b] = [Number(range[1]), Math.min(Number(range[2]), bytes.length - 1)];
        return void res.writeHead(206, { ...headers, "Content-Range": `bytes ${a}-${b}/${bytes.length}`, "Content-Length": b - a + 1 }).end(bytes.subarray(a, b + 1));
      }
      return void res.writeHead(200, { ...headers, "Content-Length": bytes.length }).end(bytes);
    }
    res.writeHead(404).end();
  });
  return { server, requests, url: () => `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

test("loadModel downloads a Hub id into the standard cache (single and sharded), then loads offline", async () => {
  const single = tmpDir("hub-single"), sharded = tmpDir("hub-sharded");
  for (const d of [single, sharded]) {
    fs.copyFileSync(path.join(FIXTURES, "tiny-bert-qa", "config.json"), path.join(d, "config.json"));
    fs.writeFileSync(path.join(d, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n");
  }
  fs.copyFileSync(path.join(FIXTURES, "tiny-bert-qa", "model.safetensors"), path.join(single, "model.safetensors"));
  writeSharded(sharded, fixtureTensors("tiny-bert-qa"));
  const hub = fakeHub({ "test-org/tiny-qa": single, "test-org/tiny-qa-sharded": sharded });
  await new Promise<void>((r) => hub.server.listen(0, "127.0.0.1", r));
  const cacheDir = path.join(TMP, "hf-cache");
  const endpoint = hub.url();
  const shown: string[] = [];
  setDefaultProgressSink((st) => { if (st.finished) shown.push(`${st.label} ${st.done}/${st.total}`); });
  try {
    const ref = fixtureTensors("tiny-bert-qa");
    for (const id of ["test-org/tiny-qa", "test-org/tiny-qa-sharded"]) {
      const { model, dir, missing } = await loadModel(id, "qa", { endpoint, cacheDir });
      assert.deepEqual(missing, []);
      const repo = path.join(cacheDir, `models--${id.replace("/", "--")}`);
      assert.equal(dir, path.join(repo, "snapshots", COMMIT));
      assert.equal(fs.readFileSync(path.join(repo, "refs", "main"), "utf8"), COMMIT);
      assert.ok(fs.lstatSync(path.join(dir, "config.json")).isSymbolicLink(), "snapshot files link into blobs/");
      assert.ok(fs.existsSync(path.join(dir, "vocab.txt")), "tokenizer files come along");
      for (const [k, t] of await modelTensors(model)) assert.deepEqual(t.data, ref.get(k)!.data, k);
      disposeModel(model);
    }
    assert.ok(hub.requests.includes("HEAD /test-org/tiny-qa/resolve/main/config.json"));
    const size = fs.statSync(path.join(single, "model.safetensors")).size;
    assert.ok(shown.includes(`download model.safetensors ${size}/${size}`), `progress shown: ${shown.join("; ")}`);
    await assert.rejects(loadModel("test-org/missing", "qa", { endpoint, cacheDir }), (e: Error) => isUserError(e) && /^Hub model 'test-org\/missing', file config\.json: model not found, or private or gated \(HTTP 401\) \(check the model id.*HF_TOKEN/.test(e.message));
  } finally {
    setDefaultProgressSink(silentSink);
    await new Promise((r) => hub.server.close(r));
  }
  // The server is gone: the cached snapshot is used (HF_HUB_OFFLINE=1 makes that explicit and silent).
  const fallback = await loadModel("test-org/tiny-qa", "qa", { endpoint, cacheDir });
  assert.equal(fallback.dir, path.join(cacheDir, "models--test-org--tiny-qa", "snapshots", COMMIT));
  disposeModel(fallback.model);
  process.env.HF_HUB_OFFLINE = "1";
  try {
    const { model } = await loadModel("test-org/tiny-qa", "qa", { endpoint, cacheDir });
    disposeModel(model);
    await assert.rejects(loadModel("test-org/never-downloaded", "qa", { cacheDir }), /not in the cache .*HF_HUB_OFFLINE=1 forbids downloading/);
  } finally {
    delete process.env.HF_HUB_OFFLINE;
  }
  await assert.rejects(loadModel("./no/such/dir", "qa", { cacheDir }), /no such model directory/);
});
