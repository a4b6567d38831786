// `npm run serve [-- DIR] [--port N] [--no-isolation]`: serve a built folder (the JupyterLite site, dist/site, else
// the library bundle and its demo page, dist/browser) on 127.0.0.1 as browsers need it: Cross-Origin-Opener-Policy
// same-origin and Cross-Origin-Embedder-Policy require-corp (so the page is cross-origin isolated and WebAssembly can
// use threads over a SharedArrayBuffer), Cross-Origin-Resource-Policy on every file, and the right MIME types
// (application/wasm for WebAssembly's streaming compile). Prints the address. Tests start it with startServer().
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".json": "application/json; charset=utf-8", ".ipynb": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8", ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png",
  ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8", ".csv": "text/csv; charset=utf-8",
  ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf",
};

export interface Server { url: string; close(): Promise<void> }

/** The headers that make a page cross-origin isolated (COOP, COEP) and let it load each file under COEP (CORP). */
export const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp", "Cross-Origin-Resource-Policy": "same-origin",
};

/** Serve `root` (and `mounts`: URL prefix → folder) on 127.0.0.1:`port` (0: any free port). */
export function startServer(opts: { root: string; port?: number; isolated?: boolean; mounts?: Record<string, string> }): Promise<Server> {
  const isolated = opts.isolated ?? true;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const file = resolveFile(opts.root, opts.mounts ?? {}, decodeURIComponent(url.pathname));
    const headers: Record<string, string> = { "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-cache" };
    if (isolated) Object.assign(headers, ISOLATION_HEADERS);
    if (file === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(file === undefined ? 404 : 405, { ...headers, "Content-Type": "text/plain" });
      res.end(file === undefined ? "not found\n" : "method not allowed\n");
      return;
    }
    const stat = fs.statSync(file);
    res.writeHead(200, { ...headers, "Content-Type": MIME[path.extname(file).toLowerCase()] ?? "application/octet-stream", "Content-Length": String(stat.size) });
    if (req.method === "HEAD") res.end();
    else fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      resolve({ url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) });
    });
  });
}

/** The file a URL path names under its mount, or the folder's index.html; undefined outside it or when missing. */
function resolveFile(root: string, mounts: Record<string, string>, urlPath: string): string | undefined {
  const prefix = Object.keys(mounts).sort((a, b) => b.length - a.length).find((p) => urlPath.startsWith(p));
  const base = path.resolve(prefix !== undefined ? mounts[prefix] : root);
  const rel = prefix !== undefined ? urlPath.slice(prefix.length) : urlPath;
  let file = path.resolve(base, "." + path.posix.normalize("/" + rel));
  if (file !== base && !file.startsWith(base + path.sep)) return undefined; // ../ out of the folder
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
  return fs.existsSync(file) && fs.statSync(file).isFile() ? file : undefined;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const portAt = args.indexOf("--port");
  const port = portAt >= 0 ? Number(args[portAt + 1]) : 8000;
  const dirArg = args.find((a, i) => !a.startsWith("--") && args[i - 1] !== "--port");
  const ROOT = path.resolve(__dirname, "..", "..");
  const dir = dirArg ?? [path.join(ROOT, "dist", "site"), path.join(ROOT, "dist", "browser")].find((d) => fs.existsSync(d));
  if (dir === undefined || !fs.existsSync(dir)) {
    process.stderr.write(`error: serve: ${dirArg ?? "dist/site"}: nothing built to serve (run npm run site, or npm run bundle for the library's demo page)\n`);
    process.exit(1);
  }
  startServer({ root: dir, port, isolated: !args.includes("--no-isolation") }).then((s) => {
    process.stderr.write(`serving ${path.relative(process.cwd(), dir) || "."} (Ctrl-C to stop)${fs.existsSync(path.join(dir, "demo.html")) ? `; the demo page: ${s.url}demo.html` : ""}\n`);
    console.log(s.url);
  }, (e: Error & { code?: string }) => {
    process.stderr.write(`error: serve: port ${port}: ${e.code === "EADDRINUSE" ? "already in use (pass --port N)" : e.message}\n`);
    process.exit(1);
  });
}
