// The files the browser kernel's type checker (kernel/check.ts) reads, collected at build time into one map
// (bertqa/types.json): the library's declarations, emitted here from lib/index.ts; every declaration file that they,
// tfjs, tslab and danfojs-node bring in from node_modules; @types/node (as tslab has it); TypeScript's lib files; and
// the package.json files module resolution reads. The map is what a program over those imports read from the disk,
// so the browser resolves and checks exactly as this program did.
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";
import { CELL_FILE, CHECK_OPTIONS, TS_LIB_DIR, virtualDisk, type TypeFiles } from "./kernel/check";

/** What notebooks import (the modules the kernel's worker offers). */
const IMPORTS = ["./lib", "@tensorflow/tfjs", "tslab", "danfojs-node"];

/** The library's declaration files (lib/**.d.ts, keyed by their path from `root`), as tsc --declaration writes them. */
function libraryDeclarations(root: string): Map<string, string> {
  const config = ts.readConfigFile(path.join(root, "tsconfig.json"), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
  const program = ts.createProgram([path.join(root, "lib", "index.ts")], { ...options, noEmit: false, declaration: true, emitDeclarationOnly: true, rootDir: root, outDir: "/out" });
  const out = new Map<string, string>();
  const result = program.emit(undefined, (file, text) => out.set(path.posix.relative("/out", file), text), undefined, true);
  if (result.diagnostics.length > 0) throw new Error(`the library's declarations: ${ts.flattenDiagnosticMessageText(result.diagnostics[0].messageText, "\n")}`);
  return out;
}

/** The type map for the kernel: "/lib/…" the library's declarations, "/node_modules/…" and "/ts-lib/…" from disk. */
export function collectTypes(root: string): TypeFiles {
  const virtual = new Map<string, string>([...libraryDeclarations(root)].map(([rel, text]) => [`/${rel}`, text]));
  virtual.set(CELL_FILE, IMPORTS.map((m, i) => `import * as m${i} from ${JSON.stringify(m)};`).join("\n"));
  const tsLib = path.dirname(require.resolve("typescript/lib/lib.d.ts"));
  const disk = (p: string): string | undefined =>
    /^\/node_modules(\/|$)/.test(p) ? path.join(root, p) : p.startsWith(`${TS_LIB_DIR}/`) ? path.join(tsLib, p.slice(TS_LIB_DIR.length + 1)) : undefined;
  const isFile = (p: string) => virtual.has(p) || (disk(p) !== undefined && fs.statSync(disk(p)!, { throwIfNoEntry: false })?.isFile() === true);
  const read = new Map<string, string>();
  const readFile = (p: string): string | undefined => {
    const text = virtual.get(p) ?? (isFile(p) ? fs.readFileSync(disk(p)!, "utf8") : undefined);
    if (text !== undefined) read.set(p, text);
    return text;
  };
  const isDir = (p: string) => p === "/" || [...virtual.keys()].some((k) => k.startsWith(`${p}/`)) || (disk(p) !== undefined && fs.statSync(disk(p)!, { throwIfNoEntry: false })?.isDirectory() === true);
  const host: ts.CompilerHost = {
    ...virtualDisk(readFile, isDir),
    getSourceFile: (p, lang) => {
      const text = readFile(p);
      return text === undefined ? undefined : ts.createSourceFile(p, text, lang);
    },
    getDefaultLibLocation: () => TS_LIB_DIR,
    writeFile: () => {},
    getCanonicalFileName: (f) => f,
    getNewLine: () => "\n",
  };
  const program = ts.createProgram([CELL_FILE], { ...CHECK_OPTIONS, noEmit: true }, host);
  const errors = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) throw new Error(`the kernel's types: ${ts.flattenDiagnosticMessageText(errors[0].messageText, "\n")} (${errors[0].file?.fileName ?? "options"})`);
  read.delete(CELL_FILE);
  return Object.fromEntries([...read].sort(([a], [b]) => a.localeCompare(b)));
}
