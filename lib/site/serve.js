#!/usr/bin/env node
// `npm run serve`: serve the site `npm run site` built (dist/site) on 127.0.0.1 and print its address. Every response
// carries the headers that make the page cross-origin isolated (COOP same-origin + COEP require-corp, and CORP for
// the files themselves), which SharedArrayBuffer needs: wasm threads for training, and the kernel's stop flag.
// Static hosts that can send these headers serve the site as well (README: "JupyterLab in the browser").
//
//   node lib/site/serve.js [--port N] [--dir DIR]        (port 0, the default, takes a free one)
"use strict";
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..", "..");
const DEFAULT_DIR = path.join(ROOT, "dist", "site");

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".ipynb": "application/x-ipynb+json; charset=utf-8",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".eot": "application/vnd.ms-fontobject",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".safetensors": "application/octet-stream",
};

const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** The file a URL path names under `dir` (a folder's index.html), or undefined if it is outside or absent. */
function resolveFile(dir, urlPath) {
  let rel;
  try {
    rel = decodeURIComponent(urlPath.split("?")[0]);
  } catch {
    return undefined;
  }
  const file = path.join(dir, path.normalize(rel));
  if (file !== dir && !file.startsWith(dir + path.sep)) return undefined;
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (stat?.isDirectory()) return resolveFile(dir, path.posix.join(rel, "index.html"));
  return stat?.isFile() ? { file, size: stat.size } : undefined;
}

/** Start serving `dir`; resolves with the server and its address (http://127.0.0.1:PORT/). */
function startServer({ dir = DEFAULT_DIR, port = 0, host = "127.0.0.1" } = {}) {
  const root = path.resolve(dir);
  const server = http.createServer((req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD", ...ISOLATION }).end();
      return;
    }
    const found = resolveFile(root, new URL(req.url, "http://x").pathname);
    if (found === undefined) {
      res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8", ...ISOLATION }).end(`not found: ${req.url}\n`);
      return;
    }
    res.writeHead(200, {
      "Content-Type": MIME[path.extname(found.file).toLowerCase()] ?? "application/octet-stream",
      "Content-Length": found.size,
      "Cache-Control": "no-cache", // a rebuilt site is seen at once; unchanged files still revalidate cheaply
      "X-Content-Type-Options": "nosniff",
      ...ISOLATION,
    });
    if (req.method === "HEAD") res.end();
    else fs.createReadStream(found.file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      resolve({ server, url: `http://${host}:${p}/` });
    });
  });
}

module.exports = { startServer, MIME, ISOLATION };

if (require.main === module) {
  const args = process.argv.slice(2);
  const flag = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const dir = path.resolve(flag("--dir") ?? DEFAULT_DIR);
  const port = Number(flag("--port") ?? process.env.PORT ?? 0);
  if (!fs.existsSync(path.join(dir, "lab", "index.html"))) {
    process.stderr.write(`serve: ${path.relative(process.cwd(), dir) || dir} holds no site (run npm run site first)\n`);
    process.exit(1);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`serve: --port ${flag("--port")}: not a port number (0-65535; 0 takes a free one)\n`);
    process.exit(1);
  }
  startServer({ dir, port }).then(({ url }) => {
    process.stdout.write(`${url}\n`);
    process.stderr.write("serve: serving dist/site (Ctrl-C stops)\n");
  }, (e) => {
    process.stderr.write(`serve: cannot listen on 127.0.0.1:${port}: ${e.code ?? e.message}\n`);
    process.exit(1);
  });
}
