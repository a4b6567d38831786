// A Hugging Face Hub imitation on 127.0.0.1 for the push tests: it answers the endpoints @huggingface/hub calls to
// share a model (whoami-v2, repos/create, branch, preupload, the LFS batch API with basic and multipart uploads,
// commit) and those the library's download client calls (resolve HEAD/GET, the file store a resolve redirects to).
// It keeps repositories as commits of files, checks what it receives as the Hub does (LFS objects against their
// sha256 and size, part ETags, write access), records every request, and can answer with faults.
import * as crypto from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeUser { name: string; orgs?: string[]; role: "read" | "write" | "fineGrained"; canWrite?: boolean }
export interface StoredFile { data: Buffer; lfs: boolean }
export interface FakeCommit { oid: string; title?: string; files: Map<string, StoredFile> }
export interface FakeRepo { owner: string; private: boolean; branches: Map<string, FakeCommit[]> } // newest last
export interface Recorded { method: string; url: string; auth?: string; body: Buffer }
/** Given a request and how many times its "METHOD path" was seen (1 = first): an HTTP status or "drop" instead of the answer. */
export type FaultHook = (method: string, url: string, n: number) => number | "drop" | undefined;

export interface FakeHub {
  endpoint: string;
  repos: Map<string, FakeRepo>;
  lfs: Map<string, Buffer>; // uploaded LFS objects by sha256
  requests: Recorded[];
  chunkSize: number; // LFS objects larger than this go multipart, in parts of this size
  fault?: FaultHook;
  head(id: string, branch?: string): FakeCommit | undefined;
  addRepo(id: string, owner: string, files: Record<string, string | Buffer>): void;
  close(): Promise<void>;
}

export const sha256 = (b: Buffer): string => crypto.createHash("sha256").update(b).digest("hex");
export const gitSha1 = (b: Buffer): string => crypto.createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
const GITATTRIBUTES = Buffer.from("*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n");
const LFS_OVER = 10 * 1024 * 1024; // the Hub stores text files over 10 MB in LFS too

export async function startFakeHub(users: Record<string, FakeUser>, chunkSize = 64 * 1024): Promise<FakeHub> {
  const seen: Record<string, number> = {};
  let commits = 0;
  const newCommit = (files: Map<string, StoredFile>, title?: string): FakeCommit =>
    ({ oid: crypto.createHash("sha1").update(`commit ${++commits}`).digest("hex"), title, files });
  const parts = new Map<string, Buffer>(); // "oid/n" -> bytes of a multipart upload not yet completed

  const hub: FakeHub = {
    endpoint: "", repos: new Map(), lfs: new Map(), requests: [], chunkSize,
    head: (id, branch = "main") => hub.repos.get(id)?.branches.get(branch)?.at(-1),
    addRepo: (id, owner, files) => {
      const stored = new Map(Object.entries(files).map(([p, d]) => [p, { data: Buffer.from(d), lfs: false }]));
      hub.repos.set(id, { owner, private: false, branches: new Map([["main", [newCommit(stored, "initial commit")]]]) });
    },
    close: () => new Promise((r) => server.close(() => r())),
  };

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
    void res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(JSON.stringify(body));
  const userOf = (req: http.IncomingMessage) => users[(req.headers.authorization ?? "").replace(/^Bearer /, "")];
  /** The Hub's write check: a known token, not read-only, of the owner or a member of the owning organisation. */
  const mayWrite = (user: FakeUser | undefined, namespace: string) =>
    user !== undefined && user.role !== "read" && user.canWrite !== false && [user.name, ...(user.orgs ?? [])].includes(namespace);

  function route(req: http.IncomingMessage, res: http.ServerResponse, url: string, body: Buffer): void {
    const user = userOf(req);
    const method = req.method ?? "";
    if (url.startsWith("/portal/")) return void res.writeHead(200, { "Content-Type": "text/html" }).end("<html>Sign in to the Wi-Fi</html>");
    if (method === "GET" && url === "/api/whoami-v2") {
      if (user === undefined) return json(res, 401, { error: "Invalid credentials in Authorization header" });
      return json(res, 200, { type: "user", name: user.name, orgs: (user.orgs ?? []).map((name) => ({ type: "org", name })), auth: { type: "access_token", accessToken: { displayName: "test token", role: user.role } } });
    }
    if (method === "POST" && url === "/api/repos/create") {
      const b = JSON.parse(body.toString()) as { name: string; organization?: string; private?: boolean; visibility?: string; type: string };
      const namespace = b.organization ?? user?.name ?? "";
      if (user === undefined) return json(res, 401, { error: "Invalid credentials in Authorization header" });
      if (!mayWrite(user, namespace)) return json(res, 403, { error: `You don't have the rights to create a model under the namespace "${namespace}"` });
      const id = `${namespace}/${b.name}`;
      if (hub.repos.has(id)) return json(res, 409, { error: "You already created this model repo", url: `${hub.endpoint}/${id}` });
      hub.repos.set(id, { owner: namespace, private: b.visibility === "private" || b.private === true, branches: new Map([["main", [newCommit(new Map([[".gitattributes", { data: GITATTRIBUTES, lfs: false }]]), "initial commit")]]]) });
      return json(res, 200, { url: `${hub.endpoint}/${id}`, name: id });
    }
    const api = url.match(/^\/api\/models\/([^/]+\/[^/]+)\/(branch|preupload|commit)\/([^/?]+)/);
    if (api !== null) {
      const [, id, kind, rev] = api;
      const repo = hub.repos.get(id);
      if (repo === undefined) return json(res, 404, { error: "Repository not found" }, { "X-Error-Code": "RepoNotFound" });
      if (!mayWrite(user, repo.owner)) return json(res, 403, { error: "You don't have the rights to write to this repository" });
      const branch = decodeURIComponent(rev);
      if (kind === "branch") {
        if (repo.branches.has(branch)) return json(res, 409, { error: "Reference already exists" });
        repo.branches.set(branch, [hub.head(id) as FakeCommit]);
        return json(res, 200, {});
      }
      if (!repo.branches.has(branch)) return json(res, 404, { error: `Invalid rev id: ${branch}` }, { "X-Error-Code": "RevisionNotFound" });
      if (kind === "preupload") {
        const b = JSON.parse(body.toString()) as { files: { path: string; size: number; sample: string }[] };
        return json(res, 200, { files: b.files.map((f) => ({ path: f.path, shouldIgnore: false,
          uploadMode: f.path.endsWith(".safetensors") || f.size > LFS_OVER || Buffer.from(f.sample, "base64").includes(0) ? "lfs" : "regular" })) });
      }
      return commitFiles(res, id, branch, body);
    }
    const batch = url.match(/^\/([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/);
    if (method === "POST" && batch !== null) {
      const repo = hub.repos.get(batch[1]);
      if (repo === undefined || !mayWrite(user, repo.owner)) return json(res, 403, { message: "write access denied" });
      const b = JSON.parse(body.toString()) as { operation: string; transfers: string[]; objects: { oid: string; size: number }[] };
      return json(res, 200, { transfer: "basic", objects: b.objects.map((o) => {
        if (hub.lfs.has(o.oid)) return o; // already stored: no upload action
        if (o.size <= hub.chunkSize) return { ...o, actions: { upload: { href: `${hub.endpoint}/lfs-store/${o.oid}` } } };
        const n = Math.ceil(o.size / hub.chunkSize);
        const header: Record<string, string> = { chunk_size: String(hub.chunkSize) };
        for (let i = 1; i <= n; i++) header[String(i)] = `${hub.endpoint}/lfs-store/${o.oid}/part/${i}`;
        return { ...o, actions: { upload: { href: `${hub.endpoint}/lfs-store/${o.oid}/complete`, header } } };
      }) }, { "Content-Type": "application/vnd.git-lfs+json" });
    }
    const store = url.match(/^\/lfs-store\/([0-9a-f]{64})(?:\/part\/(\d+)|\/(complete))?$/);
    if (store !== null) return lfsStore(res, store[1], store[2], store[3] !== undefined, body);
    const cdn = url.match(/^\/cdn\/([0-9a-f]{64})$/);
    if (cdn !== null && hub.lfs.has(cdn[1])) return void res.writeHead(200, { "Content-Length": hub.lfs.get(cdn[1])!.length }).end(method === "HEAD" ? undefined : hub.lfs.get(cdn[1]));
    const resolve = url.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    if (resolve !== null) return resolveFile(req, res, resolve[1], decodeURIComponent(resolve[2]), resolve[3], user);
    json(res, 404, { error: `no route ${method} ${url}` });
  }

  /** Uploads to the "file store": one object (basic), a part (multipart, answered with its ETag), or the completion. */
  function lfsStore(res: http.ServerResponse, oid: string, part: string | undefined, complete: boolean, body: Buffer): void {
    if (part !== undefined) {
      parts.set(`${oid}/${part}`, body);
      return void res.writeHead(200, { ETag: `"${crypto.createHash("md5").update(body).digest("hex")}"` }).end();
    }
    let data = body;
    if (complete) {
      const b = JSON.parse(body.toString()) as { oid: string; parts: { partNumber: number; etag: string }[] };
      const got = b.parts.map((p) => parts.get(`${oid}/${p.partNumber}`) ?? Buffer.alloc(0));
      if (b.parts.some((p, i) => p.etag !== `"${crypto.createHash("md5").update(got[i]).digest("hex")}"`)) return json(res, 400, { error: "part ETag mismatch" });
      data = Buffer.concat(got);
    }
    if (sha256(data) !== oid) return json(res, 400, { error: `sha256 mismatch: got ${sha256(data)}` });
    hub.lfs.set(oid, data);
    return json(res, 200, {});
  }

  /** The commit API: an NDJSON header, then inline files (base64) and LFS files (already uploaded objects). */
  function commitFiles(res: http.ServerResponse, id: string, branch: string, body: Buffer): void {
    const lines = body.toString().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { key: string; value: Record<string, string | number> });
    const head = hub.head(id, branch) as FakeCommit;
    const files = new Map(head.files);
    let title: string | undefined;
    for (const { key, value } of lines) {
      if (key === "header") title = String(value.summary);
      else if (key === "file") files.set(String(value.path), { data: Buffer.from(String(value.content), "base64"), lfs: false });
      else if (key === "lfsFile") {
        const data = hub.lfs.get(String(value.oid));
        if (data === undefined || data.length !== value.size) return json(res, 422, { error: `LFS object ${value.oid} of ${value.path} was not uploaded` });
        files.set(String(value.path), { data, lfs: true });
      }
    }
    const c = newCommit(files, title);
    hub.repos.get(id)!.branches.get(branch)!.push(c);
    return json(res, 200, { commitOid: c.oid, commitUrl: `${hub.endpoint}/${id}/commit/${c.oid}` });
  }

  /** resolve/<rev>/<file> as the Hub answers it: LFS files redirect to the file store with X-Linked-Etag/Size. */
  function resolveFile(req: http.IncomingMessage, res: http.ServerResponse, id: string, rev: string, file: string, user: FakeUser | undefined): void {
    const repo = hub.repos.get(id);
    if (repo === undefined || (repo.private && user?.name !== repo.owner && !(user?.orgs ?? []).includes(repo.owner))) {
      return void res.writeHead(user === undefined ? 401 : 404, { "X-Error-Code": "RepoNotFound" }).end("Repository not found");
    }
    const commit = repo.branches.get(rev)?.at(-1) ?? [...repo.branches.values()].flat().find((c) => c.oid === rev);
    if (commit === undefined) return void res.writeHead(404, { "X-Error-Code": "RevisionNotFound" }).end("Invalid rev id");
    const f = commit.files.get(decodeURIComponent(file));
    if (f === undefined) return void res.writeHead(404, { "X-Error-Code": "EntryNotFound" }).end("Entry not found");
    if (f.lfs) {
      return void res.writeHead(302, { Location: `${hub.endpoint}/cdn/${sha256(f.data)}`, "X-Repo-Commit": commit.oid, "X-Linked-Etag": `"${sha256(f.data)}"`, "X-Linked-Size": f.data.length, ETag: `"${gitSha1(Buffer.from("pointer"))}"` }).end();
    }
    res.writeHead(200, { "X-Repo-Commit": commit.oid, ETag: `"${gitSha1(f.data)}"`, "Content-Length": f.data.length, "Content-Type": "text/plain" });
    res.end(req.method === "HEAD" ? undefined : f.data);
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = req.url ?? "", body = Buffer.concat(chunks), key = `${req.method} ${url.split("?")[0]}`;
      seen[key] = (seen[key] ?? 0) + 1;
      hub.requests.push({ method: req.method ?? "", url, auth: req.headers.authorization, body });
      const fault = hub.fault?.(req.method ?? "", url.split("?")[0], seen[key]);
      if (fault === "drop") return void req.socket.destroy();
      if (fault !== undefined) return json(res, fault, { error: "the server is having trouble" });
      try {
        route(req, res, url.split("?")[0], body);
      } catch (e) {
        json(res, 500, { error: `fake hub: ${(e as Error).message}` });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  hub.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hub;
}
