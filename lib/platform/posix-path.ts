// Node's path.posix for the browser side, where paths name files in the page's storage: "/" is the root of the
// repository's files (data/, test/fixtures/) and of runs/ and the caches; the working folder is "/".
import type { PathApi } from "./types";

function normalizeParts(parts: string[], absolute: boolean): string[] {
  const out: string[] = [];
  for (const p of parts) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else out.push(p);
  }
  return out;
}

function normalize(p: string): string {
  if (p === "") return ".";
  const absolute = p.startsWith("/");
  const body = normalizeParts(p.split("/"), absolute).join("/") + (p.endsWith("/") && p.length > 1 ? "/" : "");
  return absolute ? "/" + body : body === "" ? "." : body;
}

export const posixPath: PathApi = {
  sep: "/",
  normalize,
  isAbsolute: (p) => p.startsWith("/"),
  join: (...parts) => normalize(parts.filter((p) => p !== "").join("/")),
  resolve: (...parts) => {
    let at = "";
    for (const p of parts) at = p.startsWith("/") ? p : `${at}/${p}`;
    return "/" + normalizeParts(at.split("/"), true).join("/");
  },
  dirname: (p) => {
    const trimmed = p.length > 1 ? p.replace(/\/+$/, "") : p;
    const i = trimmed.lastIndexOf("/");
    return i < 0 ? "." : i === 0 ? "/" : trimmed.slice(0, i);
  },
  basename: (p, ext) => {
    const base = p.replace(/\/+$/, "").split("/").pop() ?? "";
    return ext !== undefined && base.endsWith(ext) && base !== ext ? base.slice(0, -ext.length) : base;
  },
  extname: (p) => {
    const base = p.replace(/\/+$/, "").split("/").pop() ?? "";
    const i = base.lastIndexOf(".");
    return i <= 0 ? "" : base.slice(i);
  },
  relative: (from, to) => {
    const a = posixPath.resolve(from).split("/").filter((s) => s !== ""), b = posixPath.resolve(to).split("/").filter((s) => s !== "");
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
  },
};
