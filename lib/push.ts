// Share a trained model on the Hugging Face Hub, as transformers' push_to_hub does: the files from_pretrained needs
// (config.json, model.safetensors, the tokenizer files) and a generated model card, in one commit made with
// @huggingface/hub (create-repo, preupload, the LFS upload of the weights, commit). All that can be checked is checked
// before the first write: the folder, the token and its role, the namespace, a card the user wrote. A commit is atomic
// on the Hub, so a failure after that leaves the branch as it was. The token (HF_TOKEN or the token file) and
// HF_ENDPOINT come from lib/hub.ts, as for downloads; so do the retries (5xx, 429, dropped connections).
import { fs, path } from "./platform";
import { commit, createBranch, createRepo, HubApiError, InvalidApiResponseFormatError, whoAmI, type CommitOperation } from "@huggingface/hub";
import { readConfig, type BertConfig } from "./config";
import { isUserError, userError, type UserError } from "./errors";
import { backoffMs, causeText, DEFAULT_RETRIES, hubEndpoint, hubOffline, hubToken, isHubId, retryable, sleep } from "./hub";
import { CARD_MARKER, isGeneratedCard, modelCard, readTrainingRecord } from "./model-card";
import { progress, type ProgressSink } from "./progress";
import { taskFromConfig, TOKENIZER_FILES } from "./weights";

export interface PushOptions {
  revision?: string; // the branch to commit to (default main; a new one starts from main, as push_to_hub does)
  private?: boolean; // a new repository is created private (an existing one keeps its visibility)
  message?: string; // the commit title (default "Upload BertForQuestionAnswering", transformers' wording)
  overwriteCard?: boolean; // replace a README.md on the Hub that a person wrote (one without CARD_MARKER)
  dataset?: string; // Hub dataset id it was trained and evaluated on (the card's datasets and model-index)
  baseModel?: string; // Hub id of the checkpoint it was fine-tuned from (the card's base_model)
  endpoint?: string; // default: $HF_ENDPOINT, else https://huggingface.co
  retries?: number; // after a 5xx/429 or a dropped connection (default 5, huggingface_hub's http_backoff)
  retryBaseMs?: number; // first backoff wait (default 1000 ms, doubled up to 8×)
  sink?: ProgressSink; // upload progress (default: stderr or the notebook display)
}

export interface PushResult {
  repo: string;
  url: string; // the repository's page
  revision: string;
  commit: string; // the new commit's id
  files: { path: string; size: number }[];
  card: "created" | "updated" | "replaced"; // no card before, a generated one before, a person's replaced (overwriteCard)
}

/** The files of a model folder that from_pretrained reads: config.json, model.safetensors and the tokenizer's. */
export function filesToPush(dir: string): { config: BertConfig; files: string[] } {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw userError(dir, "no such folder", "pass the folder written by bertqa train --out DIR, or a model directory");
  const missing = ["config.json", "model.safetensors"].filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length > 0) {
    const stopped = fs.existsSync(path.join(dir, "checkpoint", "model.safetensors"));
    throw userError(dir, `holds no model (no ${missing.join(", ")})`, stopped
      ? `the run stopped before its end and its model is in checkpoint/: finish it with bertqa train --resume ${dir}, or push ${path.join(dir, "checkpoint")}`
      : "pass the folder written by bertqa train --out DIR, or a model directory with config.json and model.safetensors");
  }
  const config = readConfig(path.join(dir, "config.json"));
  if (taskFromConfig(config) !== "qa") {
    throw userError(path.join(dir, "config.json"), `is a ${config.architectures?.[0] ?? "base model"} config, not a question-answering model`, "push a model fine-tuned with bertqa train (a *ForQuestionAnswering config)");
  }
  const tokenizer = TOKENIZER_FILES.filter((f) => fs.existsSync(path.join(dir, f)));
  if (tokenizer.length === 0) throw userError(dir, `holds no tokenizer files (${TOKENIZER_FILES.join(", ")})`, "copy the tokenizer the model was trained with into the folder: without it the model cannot be used");
  return { config, files: ["config.json", "model.safetensors", ...tokenizer] };
}

/**
 * Upload a trained QA model and a generated model card to `repo` ("user/name", or "name" in the token's own
 * namespace), creating the repository when it is new. Every failure is one UserError line; nothing is committed then.
 * `await pushToHub("runs/base", "me/bert-base-squad", { dataset: "rajpurkar/squad", baseModel: "bert-base-uncased" })`
 */
export async function pushToHub(dir: string, repo: string, opts: PushOptions = {}): Promise<PushResult> {
  const revision = opts.revision ?? "main";
  const { config, files } = filesToPush(dir);
  const record = readTrainingRecord(dir);
  checkIds(repo, opts);
  const blobs = await Promise.all(files.map(async (f) => ({ path: f, content: await fs.openAsBlob(path.join(dir, f)) }))); // read as uploaded: the weights never whole in memory
  const total = blobs.reduce((n, b) => n + b.content.size, 0);
  const bar = progress(`push ${repo}`, total, opts.sink);
  let uploaded = 0;
  const endpoint = hubEndpoint(opts), accessToken = writeToken(repo, endpoint);
  const hub = hubRequests(repo, accessToken, endpoint, opts, (bytes) => bar.update(Math.min(total, (uploaded += bytes)), { MB: Math.round(uploaded / 1e5) / 10 }));
  const me = await hub.step("check the token", () => whoAmI({ accessToken, hubUrl: endpoint, fetch: hub.fetch }));
  const id = repo.includes("/") ? repo : `${me.name}/${repo}`;
  checkCanWrite(id, me, endpoint);
  const before = await existingCard(id, revision, hub);
  if (before !== undefined && !isGeneratedCard(before) && opts.overwriteCard !== true) {
    throw userError(`Hub repo '${id}'`, `its README.md (revision '${revision}') is a model card written by a person, which the generated card would replace`,
      `edit it on the Hub instead, or pass --overwrite-card to replace it (its history keeps the old one); a card bertqa push wrote carries the comment "${CARD_MARKER}"`);
  }
  const card = modelCard({ repo: id, revision, config, record, dataset: opts.dataset, baseModel: opts.baseModel, endpoint: endpoint });
  await hub.step("create the repository", async () => {
    await ignoreConflict(createRepo({ repo: id, accessToken, hubUrl: endpoint, fetch: hub.fetch, private: opts.private === true }));
    if (revision !== "main") await ignoreConflict(createBranch({ repo: id, branch: revision, accessToken, hubUrl: endpoint, fetch: hub.fetch }));
  });
  const operations: CommitOperation[] = [...blobs.map((b) => ({ operation: "addOrUpdate" as const, ...b })),
    { operation: "addOrUpdate", path: "README.md", content: new Blob([card]) }];
  const done = await hub.step("upload and commit", () => commit({
    repo: id, accessToken, hubUrl: endpoint, fetch: hub.fetch, branch: revision, operations,
    title: opts.message ?? `Upload ${config.architectures?.[0] ?? "BertForQuestionAnswering"}`,
    useXet: false, // the LFS path (multipart for large files), which the Hub accepts from every client and the tests cover
  }));
  bar.finish();
  return {
    repo: id, url: `${endpoint}/${id}`, revision, commit: done?.commit.oid ?? "", // undefined only for buckets
    files: [...blobs.map((b) => ({ path: b.path, size: b.content.size })), { path: "README.md", size: Buffer.byteLength(card) }],
    card: before === undefined ? "created" : isGeneratedCard(before) ? "updated" : "replaced",
  };
}

function checkIds(repo: string, opts: PushOptions): void {
  for (const [flag, id] of [["--dataset", opts.dataset], ["--base-model", opts.baseModel]] as const) {
    if (id !== undefined && !isHubId(id)) throw userError(flag, `'${id}' is not a Hub id`, "give it as on the Hub, e.g. rajpurkar/squad or bert-base-uncased");
  }
  if (!isHubId(repo)) throw userError(`Hub repo '${repo}'`, "is not a repository id", "give it as user/name (letters, digits, '-', '_' and '.')");
  if (hubOffline()) throw userError(`Hub repo '${repo}'`, "HF_HUB_OFFLINE is set, so nothing may be sent to the Hub", "unset HF_HUB_OFFLINE to push");
}

/** The token huggingface_hub would use, checked before any request: a push needs one, and the Hub's start with hf_. */
function writeToken(repo: string, endpoint: string): string {
  const token = hubToken();
  const where = `Hub repo '${repo}'`, get = `create a token with write access at ${endpoint}/settings/tokens`;
  if (token === undefined) throw userError(where, "no access token: pushing needs one with write access", `${get} and set HF_TOKEN to it (or log in with huggingface-cli login)`);
  if (!token.startsWith("hf_")) throw userError(where, "HF_TOKEN is not a Hugging Face access token (those start with hf_)", `${get} and set HF_TOKEN to it`);
  return token;
}

type Me = Awaited<ReturnType<typeof whoAmI>>;

/** A read token, or a namespace that is neither the user nor one of their organisations, is refused before any write. */
function checkCanWrite(id: string, me: Me, endpoint: string): void {
  const where = `Hub repo '${id}'`;
  if (me.auth.accessToken?.role === "read") {
    throw userError(where, `the token '${me.auth.accessToken.displayName}' of ${me.name} is read-only`, `create a token with write access at ${endpoint}/settings/tokens and set HF_TOKEN to it`);
  }
  const namespace = id.split("/")[0];
  const mine = [me.name, ...(me.type === "user" ? me.orgs.map((o) => o.name) : [])];
  if (!mine.includes(namespace)) {
    throw userError(where, `'${namespace}' is not ${me.name} or one of their organisations (${mine.slice(1).join(", ") || "none"}), so the repository belongs to someone else`,
      `push to ${me.name}/${id.split("/")[1]}, or ask the owner of '${namespace}' to add you to it`);
  }
}

/** The README.md the branch has (a new branch starts from main, so main's then); undefined for a new repository. */
async function existingCard(id: string, revision: string, hub: HubRequests): Promise<string | undefined> {
  return hub.step("read the model card", async () => {
    for (const rev of new Set([revision, "main"])) {
      const res = await hub.fetch(`${hub.endpoint}/${id}/resolve/${encodeURIComponent(rev)}/README.md`, { headers: { Authorization: `Bearer ${hub.token}` } });
      if (res.ok) return res.text();
      const code = res.headers.get("x-error-code");
      await res.body?.cancel();
      if (code === "RevisionNotFound") continue;
      if (code === "EntryNotFound" || code === "RepoNotFound") return undefined;
      throw new HubApiError(res.url, res.status, undefined, `${res.status} ${res.statusText}`);
    }
    return undefined;
  });
}

/** createRepo and createBranch answer 409 when the repository or branch exists: pushing into it is the point. */
async function ignoreConflict(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof HubApiError && e.statusCode === 409)) throw e;
  }
}

interface HubRequests {
  endpoint: string;
  token: string;
  fetch: typeof fetch;
  /** Run one step of the push; whatever it throws becomes one line naming the step. */
  step<T>(what: string, run: () => Promise<T>): Promise<T>;
}

/** fetch with huggingface_hub's backoff (5xx, 429, dropped connections), the bytes of each upload to the file store
 * reported to `onUpload`, and the failures of every step as one line each. */
function hubRequests(repo: string, token: string, endpoint: string, opts: PushOptions, onUpload: (bytes: number) => void): HubRequests {
  const retries = opts.retries ?? DEFAULT_RETRIES;
  const nothing = "nothing was committed";
  const hub: HubRequests = {
    endpoint, token,
    fetch: async (input, init) => {
      for (let attempt = 0; ; attempt++) {
        let res: Response;
        try {
          res = await fetch(input, init);
        } catch (e) {
          if (init?.signal?.aborted === true) throw e; // another upload failed and the library stopped this one
          if (attempt < retries) { await sleep(backoffMs(attempt, opts)); continue; }
          throw userError(`Hub repo '${repo}'`, `cannot reach ${endpoint} (${causeText(e)}; ${attempt + 1} tries)`, `check the network, proxy or HF_ENDPOINT, then push again: ${nothing}`);
        }
        if (retryable(res.status) && attempt < retries) {
          await res.body?.cancel();
          await sleep(backoffMs(attempt, opts));
          continue;
        }
        if (retryable(res.status)) {
          throw userError(`Hub repo '${repo}'`, `${endpoint} answered HTTP ${res.status} ${res.statusText}`.trimEnd() + ` (${attempt + 1} tries)`, `try again later: ${nothing}`);
        }
        if (init?.method === "PUT" && res.ok && init.body instanceof Blob) onUpload(init.body.size);
        return res;
      }
    },
    step: async (what, run) => {
      try {
        return await run();
      } catch (e) {
        throw stepError(e, repo, what, endpoint, nothing);
      }
    },
  };
  return hub;
}

/** The Hub's answers as one line: 401 (the token), 403 (no write access), others with the Hub's own message. */
function stepError(e: unknown, repo: string, what: string, endpoint: string, nothing: string): unknown {
  if (isUserError(e)) return e;
  const where = `Hub repo '${repo}'`;
  // A proxy or captive portal answering in the Hub's place: its page is not the JSON the library parses.
  if (e instanceof InvalidApiResponseFormatError || e instanceof SyntaxError) {
    return userError(where, `${what}: ${endpoint} answered in a form the Hub does not use (${e.message.split("\n")[0]})`, `a proxy or captive portal may be answering instead of the Hub: check the network, HF_ENDPOINT and proxy settings; ${nothing}`);
  }
  if (!(e instanceof HubApiError)) return e; // a bug of ours or of the library: the stack trace is for us
  const said = hubMessage(e);
  const tokens = `${endpoint}/settings/tokens`;
  const err = (w: string, fix: string): UserError => userError(where, `${what}: ${w}`, fix);
  if (e.statusCode === 401) return err(`the Hub refused the token (HTTP 401: ${said})`, `the token is invalid or expired: create one with write access at ${tokens} and set HF_TOKEN to it; ${nothing}`);
  if (e.statusCode === 403) return err(`the token may not write to this repository (HTTP 403: ${said})`, `use a token with write access to '${repo.split("/")[0]}' (${tokens}), or push to your own namespace; ${nothing}`);
  return err(`HTTP ${e.statusCode}: ${said}`, nothing);
}

/** The Hub's error text without the library's "URL: ... Request ID: ..." trailer. */
function hubMessage(e: HubApiError): string {
  const data = e.data as { error?: unknown; message?: unknown } | undefined;
  const said = typeof data?.error === "string" ? data.error : typeof data?.message === "string" && data.message !== "" ? data.message : e.message.split(". URL: ")[0];
  return said.replace(/\s+/g, " ").trim().slice(0, 200);
}
