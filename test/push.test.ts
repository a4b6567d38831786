// `bertqa push` / pushToHub against a Hub imitation on 127.0.0.1 (test/fake-hub.ts) that answers the endpoints
// @huggingface/hub calls (whoami, create-repo, branch, preupload, the LFS batch API with a multipart upload, commit) and
// records what it receives: a trained run goes up as config.json, model.safetensors (LFS, by sha256), the tokenizer
// files and a model card whose YAML front matter has the fields the Hub documents; the library's own download client
// gets it back and predicts exactly the same answers. Each failure is one line, and leaves the repository as it was.
// The tests run in order on one imitation: those after the first build on its push (alice/tiny-qa).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { disposeModel, initModel } from "../lib/bert";
import { presetConfig, readConfig } from "../lib/config";
import { isUserError } from "../lib/errors";
import { CARD_MARKER, modelCard, readTrainingRecord } from "../lib/model-card";
import { predictQA, loadQAModel } from "../lib/predict";
import { silentSink, type ProgressState } from "../lib/progress";
import { pushToHub, type PushOptions } from "../lib/push";
import { SAMPLE_FILES } from "../lib/sample";
import { loadSquad } from "../lib/squad";
import { loadTokenizer } from "../lib/tokenizer";
import { trainQA } from "../lib/train";
import { downloadModel } from "../lib/weights";
import { sha256, startFakeHub, type FakeHub } from "./fake-hub";

const ROOT = path.join(__dirname, "..");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-push-"));
const RUN = path.join(TMP, "run");
const TOKENS = { write: "hf_alice_write", read: "hf_alice_read", scoped: "hf_alice_scoped" };
const dev = loadSquad(SAMPLE_FILES.dev).examples.slice(0, 12);
let hub: FakeHub;

// The fields of the card metadata the Hub documents (huggingface/hub-docs modelcard.md and the Model Cards page:
// pipeline_tag), and those of a model-index result; required ones per the same spec.
const CARD_FIELDS = ["language", "license", "library_name", "pipeline_tag", "tags", "datasets", "metrics", "base_model", "model-index"];
const RESULT_FIELDS = { task: ["type", "name"], dataset: ["type", "name", "config", "split", "revision", "args"], metrics: ["type", "value", "name", "config", "args", "verified"] };

before(async () => {
  // A run as bertqa train leaves it: model, tokenizer, metrics.jsonl, eval.json and checkpoint/trainer_state.json.
  const tok = loadTokenizer(SAMPLE_FILES.tokenizerDir);
  const config = { ...presetConfig("tiny", { vocabSize: tok.idToToken.length, maxPositions: 64 }), hidden_size: 32, num_attention_heads: 2, intermediate_size: 64, num_hidden_layers: 1, pad_token_id: tok.padId };
  const model = initModel(config, "qa", 5);
  try {
    await trainQA({ model, tokenizer: tok, tokenizerDir: SAMPLE_FILES.tokenizerDir, train: loadSquad(SAMPLE_FILES.train).examples.slice(0, 64), eval: dev,
      outDir: RUN, maxLength: 64, docStride: 32, batchSize: 8, lr: 3e-3, maxSteps: 8, evalSteps: 4, logSteps: 2, quiet: true });
  } finally {
    disposeModel(model);
  }
  hub = await startFakeHub({
    [TOKENS.write]: { name: "alice", orgs: ["alice-lab"], role: "write" },
    [TOKENS.read]: { name: "alice", role: "read" },
    [TOKENS.scoped]: { name: "alice", role: "fineGrained", canWrite: false },
  }, 64 * 1024);
  process.env.HF_TOKEN_PATH = path.join(TMP, "no-token-file"); // never a real token from this machine
});
after(async () => {
  await hub.close();
  fs.rmSync(TMP, { recursive: true, force: true });
});

const opts = (extra: PushOptions = {}): PushOptions => ({ endpoint: hub.endpoint, retryBaseMs: 1, sink: silentSink, ...extra });

async function withToken<T>(token: string | undefined, run: () => Promise<T>): Promise<T> {
  const saved = process.env.HF_TOKEN;
  if (token === undefined) delete process.env.HF_TOKEN;
  else process.env.HF_TOKEN = token;
  try {
    return await run();
  } finally {
    if (saved === undefined) delete process.env.HF_TOKEN;
    else process.env.HF_TOKEN = saved;
  }
}

/** The one-line UserError a push ends with, and the requests it made that write (anything but GET/HEAD). */
async function pushFails(token: string | undefined, dir: string, repo: string, extra: PushOptions = {}): Promise<{ msg: string; writes: string[] }> {
  const from = hub.requests.length;
  try {
    await withToken(token, () => pushToHub(dir, repo, opts(extra)));
  } catch (e) {
    assert.ok(isUserError(e), `expected a UserError, got ${String((e as Error).stack ?? e)}`);
    assert.ok(!(e as Error).message.includes("\n"), "one line");
    return { msg: (e as Error).message, writes: hub.requests.slice(from).filter((r) => !["GET", "HEAD"].includes(r.method)).map((r) => `${r.method} ${r.url}`) };
  }
  assert.fail("expected the push to fail");
}

function frontMatter(card: string): Record<string, unknown> {
  const m = card.match(/^---\n([\s\S]*?)\n---\n/);
  assert.ok(m !== null, "the card starts with a YAML front matter block");
  return parseYaml(m[1]) as Record<string, unknown>;
}

const readRun = (f: string) => fs.readFileSync(path.join(RUN, f));

test("push: config, weights (LFS, multipart), tokenizer files and a card in one commit, by the endpoints @huggingface/hub calls", async () => {
  const from = hub.requests.length;
  const shown: ProgressState[] = [];
  const r = await withToken(TOKENS.write, () => pushToHub(RUN, "alice/tiny-qa", opts({ private: true, sink: (st) => shown.push(st) })));
  const sent = hub.requests.slice(from);
  const calls = sent.map((q) => `${q.method} ${q.url.replace(/[0-9a-f]{64}/, "OID")}`);
  const parts = calls.filter((c) => /^PUT \/lfs-store\/OID\/part\/\d+$/.test(c)).length;
  const size = readRun("model.safetensors").length;
  assert.ok(size > 2 * hub.chunkSize, "the weights are large enough to go in several parts");
  assert.equal(parts, Math.ceil(size / hub.chunkSize), "model.safetensors uploaded in chunk_size parts");
  for (const c of ["GET /api/whoami-v2", "POST /api/repos/create", "POST /api/models/alice/tiny-qa/preupload/main",
    "POST /alice/tiny-qa.git/info/lfs/objects/batch", "POST /lfs-store/OID/complete", "POST /api/models/alice/tiny-qa/commit/main"]) {
    assert.ok(calls.includes(c), `${c} in ${calls.join(", ")}`);
  }
  const batch = JSON.parse(sent.find((q) => q.url.endsWith("/objects/batch"))!.body.toString());
  assert.deepEqual(batch.objects, [{ oid: sha256(readRun("model.safetensors")), size }], "the weights announced by sha256 and size");
  assert.ok(sent.filter((q) => q.url.startsWith("/lfs-store/")).every((q) => q.auth === undefined), "the token never goes to the file store");
  assert.ok(hub.repos.get("alice/tiny-qa")!.private, "--private creates a private repository");

  const head = hub.head("alice/tiny-qa")!;
  assert.equal(r.commit, head.oid);
  assert.equal(head.title, "Upload BertForQuestionAnswering");
  const tokenizer = fs.readdirSync(SAMPLE_FILES.tokenizerDir).sort();
  assert.deepEqual([...head.files.keys()].sort(), [".gitattributes", "README.md", "config.json", "model.safetensors", ...tokenizer].sort());
  for (const f of ["config.json", "model.safetensors", ...tokenizer]) assert.ok(head.files.get(f)!.data.equals(readRun(f)), `${f} arrived byte for byte`);
  assert.equal(head.files.get("model.safetensors")!.lfs, true, "the weights are an LFS file");
  assert.deepEqual(r.files.map((f) => [f.path, f.size]).sort(), [...head.files].filter(([p]) => p !== ".gitattributes").map(([p, f]) => [p, f.data.length]).sort());
  assert.equal(r.card, "created");
  assert.equal(r.url, `${hub.endpoint}/alice/tiny-qa`);
  const total = r.files.filter((f) => f.path !== "README.md").reduce((n, f) => n + f.size, 0);
  assert.ok(shown.some((st) => !st.finished && st.done > 0 && st.done < total), "progress while the parts go up");
  assert.deepEqual([shown.at(-1)!.finished, shown.at(-1)!.done, shown.at(-1)!.total], [true, total, total]);
});

test("the card: YAML front matter in the fields the Hub documents, the run's EM/F1 in model-index, hyperparameters and log", async () => {
  await withToken(TOKENS.write, () => pushToHub(RUN, "alice/card-qa", opts({ dataset: "rajpurkar/squad", baseModel: "bert-base-uncased" })));
  const card = hub.head("alice/card-qa")!.files.get("README.md")!.data.toString();
  const meta = frontMatter(card);
  assert.deepEqual(Object.keys(meta).filter((k) => !CARD_FIELDS.includes(k)), [], "only documented fields");
  const evalScores = JSON.parse(readRun("eval.json").toString());
  assert.deepEqual({ ...meta, "model-index": undefined }, {
    library_name: "transformers", pipeline_tag: "question-answering", tags: ["bert-qa-workbook", "question-answering"],
    base_model: "bert-base-uncased", datasets: ["rajpurkar/squad"], metrics: ["exact_match", "f1"], "model-index": undefined,
  });
  const index = meta["model-index"] as { name: string; results: Record<string, unknown>[] }[];
  assert.equal(index.length, 1);
  assert.equal(index[0].name, "card-qa");
  const [result] = index[0].results;
  for (const [part, fields] of Object.entries(RESULT_FIELDS)) {
    const value = result[part] as Record<string, unknown> | Record<string, unknown>[];
    for (const entry of [value].flat()) assert.deepEqual(Object.keys(entry).filter((k) => !fields.includes(k)), [], `${part}: documented fields only`);
  }
  assert.deepEqual(result, {
    task: { type: "question-answering", name: "Question Answering" },
    dataset: { type: "rajpurkar/squad", name: "rajpurkar/squad" },
    metrics: [{ type: "exact_match", value: evalScores.exact, name: "Exact Match" }, { type: "f1", value: evalScores.f1, name: "F1" }],
  });
  assert.ok(card.includes(`<!-- ${CARD_MARKER}`));
  assert.match(card, /pipeline\("question-answering", model="alice\/card-qa"\)/);
  assert.match(card, /bertqa ask --model alice\/card-qa --question /);
  const settings = JSON.parse(readRun(path.join("checkpoint", "trainer_state.json")).toString()).settings;
  for (const [name, key] of [["learning_rate", "lr"], ["train_batch_size", "batch_size"], ["seed", "seed"], ["training_steps", "total_steps"]]) {
    assert.ok(card.includes(`\n- ${name}: ${settings[key]}\n`), `hyperparameter ${name}`);
  }
  const evals = readRun("metrics.jsonl").toString().trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.eval !== undefined);
  assert.equal(evals.length, 2);
  for (const e of evals) assert.ok(card.includes(` | ${e.epoch} | ${e.step} | ${e.eval.exact} | ${e.eval.f1} |`), `the log's evaluation at step ${e.step}`);
});

test("without --dataset the card has no model-index results (as the Trainer's), but still the scores in its text", async () => {
  const card = hub.head("alice/tiny-qa")!.files.get("README.md")!.data.toString();
  const meta = frontMatter(card);
  assert.deepEqual(meta["model-index"], [{ name: "tiny-qa", results: [] }]);
  assert.equal(meta.datasets, undefined);
  assert.match(card, new RegExp(`- exact: ${JSON.parse(readRun("eval.json").toString()).exact}\n`));
});

test("the card's YAML keeps ids that look like numbers, booleans or null as strings", () => {
  const config = readConfig(path.join(RUN, "config.json"));
  const card = modelCard({ repo: "alice/1e3", config, record: readTrainingRecord(RUN), dataset: "on", baseModel: "null", endpoint: "https://huggingface.co" });
  const meta = frontMatter(card);
  assert.deepEqual([meta.base_model, meta.datasets, (meta["model-index"] as { name: unknown }[])[0].name], ["null", ["on"], "1e3"]);
});

test("a pushed model downloads back with the library's Hub client and predicts exactly the same answers", async () => {
  const cacheDir = path.join(TMP, "cache");
  const dir = await withToken(TOKENS.write, () => downloadModel("alice/tiny-qa", { endpoint: hub.endpoint, cacheDir, sink: silentSink })); // private: needs the token
  assert.ok(fs.readFileSync(path.join(dir, "model.safetensors")).equals(readRun("model.safetensors")));
  const predict = async (from: string) => {
    const { model, tok } = await loadQAModel(from);
    try {
      return await predictQA(model, tok, dev, { maxLength: 64, docStride: 32, progress: false });
    } finally {
      disposeModel(model);
    }
  };
  const [local, remote] = [await predict(RUN), await predict(dir)];
  assert.deepEqual(remote.predictions, local.predictions);
  assert.deepEqual(remote.nbest, local.nbest, "same spans and scores");
});

test("pushing again: the repository and the stored weights are reused, a generated card is updated; --revision makes a branch", async () => {
  const before = hub.requests.length;
  const r = await withToken(TOKENS.write, () => pushToHub(RUN, "tiny-qa", opts({ message: "Second push" }))); // a bare name: the user's
  assert.equal(r.repo, "alice/tiny-qa");
  assert.equal(r.card, "updated");
  assert.ok(!hub.requests.slice(before).some((q) => q.url.startsWith("/lfs-store/")), "an object the Hub has is not uploaded again");
  assert.equal(hub.repos.get("alice/tiny-qa")!.branches.get("main")!.length, 3, "initial commit, first push, second push");
  assert.equal(hub.head("alice/tiny-qa")!.title, "Second push");
  const b = await withToken(TOKENS.write, () => pushToHub(RUN, "alice/tiny-qa", opts({ revision: "v2" })));
  assert.equal(b.revision, "v2");
  assert.equal(hub.head("alice/tiny-qa", "v2")!.oid, b.commit);
  assert.equal(hub.head("alice/tiny-qa")!.title, "Second push", "main is left alone");
  assert.match(hub.head("alice/tiny-qa", "v2")!.files.get("README.md")!.data.toString(), /model="alice\/tiny-qa", revision="v2"/);
  const dir = await withToken(TOKENS.write, () => downloadModel("alice/tiny-qa", { endpoint: hub.endpoint, cacheDir: path.join(TMP, "cache-v2"), revision: "v2", sink: silentSink }));
  assert.ok(dir.endsWith(b.commit));
});

test("a model card a person wrote is kept: the push is refused (nothing written) unless overwriteCard", async () => {
  hub.addRepo("alice/handwritten", "alice", { "README.md": "---\nlicense: mit\n---\n# My model\n\nI wrote this.\n" });
  const { msg, writes } = await pushFails(TOKENS.write, RUN, "alice/handwritten");
  assert.match(msg, /^Hub repo 'alice\/handwritten': its README\.md \(revision 'main'\) is a model card written by a person.*pass --overwrite-card/);
  assert.deepEqual(writes, []);
  assert.equal(hub.head("alice/handwritten")!.title, "initial commit");
  // A new branch starts from main, so main's card counts there too.
  assert.deepEqual((await pushFails(TOKENS.write, RUN, "alice/handwritten", { revision: "draft" })).writes, []);
  const r = await withToken(TOKENS.write, () => pushToHub(RUN, "alice/handwritten", opts({ overwriteCard: true })));
  assert.equal(r.card, "replaced");
  assert.ok(hub.head("alice/handwritten")!.files.get("README.md")!.data.toString().includes(CARD_MARKER));
});

test("token problems: none, not a Hub token, invalid (401), read-only, without write access (403): one line, nothing written", async () => {
  const none = await pushFails(undefined, RUN, "alice/t1");
  assert.match(none.msg, /^Hub repo 'alice\/t1': no access token: pushing needs one with write access \(create a token with write access at .*\/settings\/tokens and set HF_TOKEN/);
  assert.match((await pushFails("api_old_style", RUN, "alice/t1")).msg, /HF_TOKEN is not a Hugging Face access token \(those start with hf_\)/);
  const invalid = await pushFails("hf_unknown", RUN, "alice/t1");
  assert.match(invalid.msg, /^Hub repo 'alice\/t1': check the token: the Hub refused the token \(HTTP 401: Invalid credentials in Authorization header\) \(the token is invalid or expired/);
  const read = await pushFails(TOKENS.read, RUN, "alice/t1");
  assert.match(read.msg, /^Hub repo 'alice\/t1': the token 'test token' of alice is read-only \(create a token with write access/);
  const scoped = await pushFails(TOKENS.scoped, RUN, "alice/t1");
  assert.match(scoped.msg, /^Hub repo 'alice\/t1': create the repository: the token may not write to this repository \(HTTP 403: You don't have the rights .*\) \(use a token with write access to 'alice'/);
  for (const r of [none, invalid, read, scoped]) assert.ok(r.writes.every((w) => w === "POST /api/repos/create"), r.writes.join());
  assert.ok(!hub.repos.has("alice/t1"));
});

test("a repository owned by someone else is refused before any write; an organisation of the user is fine", async () => {
  const { msg, writes } = await pushFails(TOKENS.write, RUN, "bob/tiny-qa");
  assert.match(msg, /^Hub repo 'bob\/tiny-qa': 'bob' is not alice or one of their organisations \(alice-lab\), so the repository belongs to someone else \(push to alice\/tiny-qa/);
  assert.deepEqual(writes, []);
  const r = await withToken(TOKENS.write, () => pushToHub(RUN, "alice-lab/tiny-qa", opts()));
  assert.equal(hub.head("alice-lab/tiny-qa")!.oid, r.commit);
});

test("network down, a captive portal, or 5xx: retried with backoff, then one line and no commit; a flaky Hub is retried to success", async () => {
  const dead = await new Promise<string>((resolve) => {
    const s = http.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(`http://127.0.0.1:${port}`));
    });
  });
  const down = await pushFails(TOKENS.write, RUN, "alice/t2", { endpoint: dead, retries: 2 });
  assert.match(down.msg, /^Hub repo 'alice\/t2': cannot reach http:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*; 3 tries\) \(check the network, proxy or HF_ENDPOINT, then push again: nothing was committed\)$/);

  const portal = await pushFails(TOKENS.write, RUN, "alice/t2", { endpoint: `${hub.endpoint}/portal` });
  assert.match(portal.msg, /^Hub repo 'alice\/t2': check the token: http:.*\/portal answered in a form the Hub does not use \(.*JSON.*\) \(a proxy or captive portal may be answering/);

  hub.fault = (method, url) => (method === "POST" && url === "/api/models/alice/t2/commit/main" ? 503 : undefined);
  try {
    const failed = await pushFails(TOKENS.write, RUN, "alice/t2", { retries: 2 });
    assert.match(failed.msg, /^Hub repo 'alice\/t2': .* answered HTTP 503 Service Unavailable \(3 tries\) \(try again later: nothing was committed\)$/);
    assert.equal(failed.writes.filter((w) => w.includes("/commit/")).length, 3);
    assert.equal(hub.head("alice/t2")!.files.has("model.safetensors"), false, "nothing committed");
    hub.fault = (method, url, n) => (method === "PUT" && url.includes("/part/1") && n === 1 ? "drop" : url.endsWith("/preupload/main") && n <= 2 ? 502 : undefined);
    const r = await withToken(TOKENS.write, () => pushToHub(RUN, "alice/t3", opts()));
    assert.ok(hub.head("alice/t3")!.files.get("model.safetensors")!.data.equals(readRun("model.safetensors")));
    assert.equal(hub.head("alice/t3")!.oid, r.commit);
  } finally {
    hub.fault = undefined;
  }
});

test("a folder without a model, without a tokenizer, or of another task, a bad id, HF_HUB_OFFLINE: one line before any request", async () => {
  const empty = path.join(TMP, "empty");
  fs.mkdirSync(empty);
  const before = hub.requests.length;
  assert.match((await pushFails(TOKENS.write, empty, "alice/t4")).msg, /empty: holds no model \(no config\.json, model\.safetensors\) \(pass the folder written by bertqa train --out DIR/);
  const stopped = path.join(TMP, "stopped");
  fs.cpSync(path.join(RUN, "checkpoint"), path.join(stopped, "checkpoint"), { recursive: true });
  assert.match((await pushFails(TOKENS.write, stopped, "alice/t4")).msg, /holds no model .*finish it with bertqa train --resume .*stopped, or push .*stopped\/checkpoint/);
  const noTok = path.join(TMP, "no-tokenizer");
  fs.mkdirSync(noTok);
  for (const f of ["config.json", "model.safetensors"]) fs.copyFileSync(path.join(RUN, f), path.join(noTok, f));
  assert.match((await pushFails(TOKENS.write, noTok, "alice/t4")).msg, /no-tokenizer: holds no tokenizer files/);
  assert.match((await pushFails(TOKENS.write, path.join(ROOT, "test", "fixtures", "tiny-bert-cls"), "alice/t4")).msg, /config\.json: is a BertForSequenceClassification config, not a question-answering model/);
  const invalid: [PushOptions, string, RegExp][] = [
    [{ dataset: "my squad" }, "alice/t4", /^--dataset: 'my squad' is not a Hub id/],
    [{}, "alice/../t4", /^Hub repo 'alice\/\.\.\/t4': is not a repository id/],
  ];
  for (const [extra, repo, want] of invalid) assert.match((await pushFails(TOKENS.write, RUN, repo, extra)).msg, want);
  process.env.HF_HUB_OFFLINE = "1";
  try {
    assert.match((await pushFails(TOKENS.write, RUN, "alice/t4")).msg, /HF_HUB_OFFLINE is set, so nothing may be sent to the Hub \(unset HF_HUB_OFFLINE to push\)$/);
  } finally {
    delete process.env.HF_HUB_OFFLINE;
  }
  assert.equal(hub.requests.length, before, "no request made");
});

test("CLI: bertqa push prints one JSON object; a mistake is one line on stderr and exit code 1", async () => {
  // execFile, not spawnSync: the Hub imitation answers from this process's event loop.
  const bertqa = (env: Record<string, string>, ...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [path.join(ROOT, "lib", "cli", "bertqa.js"), "push", ...args],
      { cwd: ROOT, timeout: 120_000, env: { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN_PATH: path.join(TMP, "no-token-file"), HF_TOKEN: "", ...env } },
      (e, stdout, stderr) => resolve({ code: e === null ? 0 : Number((e as { code?: number }).code), stdout, stderr }));
  });
  const ok = await bertqa({ HF_TOKEN: TOKENS.write }, "--model", RUN, "--repo", "alice/cli-qa", "--dataset", "rajpurkar/squad", "--quiet");
  assert.equal(ok.code, 0, ok.stderr);
  const out = JSON.parse(ok.stdout);
  assert.equal(out.commit, hub.head("alice/cli-qa")!.oid);
  assert.equal(ok.stderr, "");
  const noToken = await bertqa({}, "--model", RUN, "--repo", "alice/cli-qa");
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /^error: Hub repo 'alice\/cli-qa': no access token: .*\n$/);
  const help = await bertqa({}, "--help");
  assert.equal(help.code, 0);
  for (const flag of ["--model", "--repo", "--private", "--revision", "--message", "--overwrite-card", "--dataset", "--base-model"]) assert.ok(help.stdout.includes(flag), flag);
});
