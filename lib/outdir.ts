// A command writes only what it owns. Before any work: no output path may be an input path or another output's path,
// an output file may not be a folder (nor an output folder a file), and a folder that already holds something is not
// written into unless the user says so (HF's --overwrite-output-dir). (While a run writes its folder it holds the
// folder's lock: lib/rundir.ts.)
import { fs, path, LOCK_FILE } from "./platform";
import { userError } from "./errors";

/** A path a command reads or writes, with the flag that named it (for messages). */
export interface NamedPath { flag: string; path: string | undefined }

/** The same file or folder? Resolved, and through symlinks where the path exists. */
export function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    const abs = path.resolve(p);
    try { return fs.realpathSync(abs); } catch { return abs; }
  };
  return real(a) === real(b);
}

/**
 * Refuse, before any work, an output on an input's path, two outputs on one path, an output file that is a folder
 * and an output folder that is a file. `checkPaths("predict", [{flag: "--data", path: f.data}], [{flag: "--out", path: f.out}])`
 */
export function checkPaths(command: string, inputs: NamedPath[], files: NamedPath[], dirs: NamedPath[] = []): void {
  const outs = [...files, ...dirs].filter((o): o is { flag: string; path: string } => o.path !== undefined);
  for (const o of outs) {
    for (const i of inputs) {
      if (i.path !== undefined && samePath(o.path, i.path)) throw userError(`bertqa ${command}`, `${o.flag} ${o.path} is also the ${i.flag} input; writing it would destroy the input`, `give ${o.flag} another path`);
    }
  }
  outs.forEach((o, k) => {
    const twin = outs.slice(k + 1).find((p) => samePath(o.path, p.path));
    if (twin !== undefined) throw userError(`bertqa ${command}`, `${o.flag} and ${twin.flag} are the same path ${o.path}; the second would replace the first`, `give ${twin.flag} another path`);
  });
  for (const f of files) {
    if (f.path !== undefined && fs.existsSync(f.path) && fs.statSync(f.path).isDirectory()) throw userError(f.path, `is a folder, but ${f.flag} names the file to write`, `give a file name, e.g. ${path.join(f.path, "out.json")}`);
  }
  for (const d of dirs) {
    if (d.path !== undefined && fs.existsSync(d.path) && !fs.statSync(d.path).isDirectory()) throw userError(d.path, `is a file, but ${d.flag} names the folder to write`, "give the path of a new or empty folder");
  }
}

/** The entries of `dir` (none if it does not exist), without our lock file. */
export function dirEntries(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n !== LOCK_FILE).sort();
}

/** "a, b, c and 4 more" for messages. */
export function listNames(names: string[], max = 3): string {
  return names.length <= max ? names.join(", ") : `${names.slice(0, max).join(", ")} and ${names.length - max} more`;
}

/**
 * A folder to fill with a command's own files (`own` says which, for the message): refused when it holds anything,
 * unless `overwrite`; the command then replaces only its own names and leaves everything else. (`convert --out`.)
 */
export function checkOutputDir(dir: string, flag: string, overwrite: boolean, own: string): void {
  const entries = dirEntries(dir);
  if (entries.length === 0 || overwrite) return;
  throw userError(dir, `is not empty (${listNames(entries)})`, `choose a new or empty ${flag}, or pass --overwrite-output-dir to replace only ${own} there and keep the rest`);
}
