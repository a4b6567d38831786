// The browser kernel's type checker: each cell is checked before it runs, as tslab checks it, so a cell with a type
// error is one error output in both kernels and runs in neither. tslab's way, with TypeScript's own compiler:
//   - the cell is a module (/__cell__.ts); what earlier cells declared is a declaration file (/__prev__.d.ts), and the
//     cell's syntax tree gets that file as its parent, so a name the cell does not declare is looked up there next
//     (a re-run cell's `const x` shadows the old one instead of clashing with it);
//   - a cell that checks emits its own declarations (.d.ts), which replace the old ones of the same names.
// Tab and Shift-Tab ask the same language service. The library, tfjs, tslab and danfojs types, TypeScript's lib files
// and @types/node come as one map of files (bertqa/types.json, written by lib/site/types.ts at build time) that
// stands in for the disk.
import * as ts from "typescript";
import { boundNames } from "./cell";

/** Virtual path → text: what the checker may read (the site's bertqa/types.json). */
export type TypeFiles = Record<string, string>;

/** One of TypeScript's errors, where it is in the cell (1-based). */
export interface TypeDiagnostic {
  line: number;
  column: number;
  message: string;
}

export type CheckResult = { ok: true; decls: string } | { ok: false; diagnostics: TypeDiagnostic[] };

/** Completions for Jupyter's complete_reply: the names, and the span of the cell (character offsets) they replace. */
export interface Completion {
  start: number;
  end: number;
  matches: string[];
}

export const CELL_FILE = "/__cell__.ts";
const PREV_FILE = "/__prev__.d.ts";
export const TS_LIB_DIR = "/ts-lib"; // TypeScript's lib.*.d.ts in the map

/** tslab's compiler options for a Node kernel (tslab's converter.ts), so a cell checks the same in both kernels. */
export const CHECK_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  lib: ["lib.es2022.d.ts"],
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  esModuleInterop: true,
  resolveJsonModule: true,
  experimentalDecorators: true,
  jsx: ts.JsxEmit.React,
  types: ["node"],
  skipLibCheck: true,
  declaration: true,
  newLine: ts.NewLineKind.LineFeed,
};

const PREFIX = "export {};\n"; // makes a file a module (its names its own), one line before the cell's first

/** What TypeScript reads through a host, from a disk of our own: `read` gives a file's text (undefined: no such file),
 * `isDir` says whether a folder exists. The language service here and the build's compiler (types.ts) share it. */
export function virtualDisk(read: (p: string) => string | undefined, isDir: (p: string) => boolean) {
  return {
    fileExists: (p: string) => read(p) !== undefined,
    readFile: read,
    directoryExists: isDir,
    getDirectories: (): string[] => [],
    realpath: (p: string) => p,
    getDefaultLibFileName: (o: ts.CompilerOptions) => `${TS_LIB_DIR}/${ts.getDefaultLibFileName(o)}`,
    getCurrentDirectory: () => "/",
    useCaseSensitiveFileNames: () => true,
  };
}

/** The names a top-level statement declares (the ones a later cell sees). */
function declaredNames(s: ts.Statement): string[] {
  if (ts.isVariableStatement(s)) return s.declarationList.declarations.flatMap((d) => boundNames(d.name));
  if (ts.isImportDeclaration(s)) {
    const c = s.importClause;
    if (c === undefined) return [];
    const nb = c.namedBindings;
    return [...(c.name ? [c.name.text] : []), ...(nb === undefined ? [] : ts.isNamespaceImport(nb) ? [nb.name.text] : nb.elements.map((e) => e.name.text))];
  }
  if ((ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s) || ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)
    || ts.isEnumDeclaration(s) || ts.isModuleDeclaration(s) || ts.isImportEqualsDeclaration(s)) && s.name !== undefined && ts.isIdentifier(s.name)) {
    return [s.name.text];
  }
  return [];
}

/** The statements of `file` that still declare something not in `gone`, with the names in `gone` taken out. */
function keptStatements(file: ts.SourceFile, gone: Set<string>): string[] {
  const printer = ts.createPrinter({ newLine: ts.NewLineKind.LineFeed });
  const f = ts.factory;
  const out: string[] = [];
  for (const s of file.statements) {
    const names = declaredNames(s);
    if (names.length === 0 || names.every((n) => gone.has(n))) continue; // `export {…}` and fully shadowed ones go
    if (names.every((n) => !gone.has(n))) {
      out.push(s.getText(file));
      continue;
    }
    // some of its names were declared again: keep the rest
    let kept: ts.Statement | undefined;
    if (ts.isVariableStatement(s)) {
      const decls = s.declarationList.declarations.filter((d) => boundNames(d.name).some((n) => !gone.has(n)));
      kept = f.updateVariableStatement(s, s.modifiers, f.updateVariableDeclarationList(s.declarationList, decls));
    } else if (ts.isImportDeclaration(s) && s.importClause !== undefined) {
      const c = s.importClause;
      const nb = c.namedBindings;
      const name = c.name !== undefined && !gone.has(c.name.text) ? c.name : undefined;
      const bindings = nb === undefined ? undefined : ts.isNamespaceImport(nb) ? (gone.has(nb.name.text) ? undefined : nb)
        : f.updateNamedImports(nb, nb.elements.filter((e) => !gone.has(e.name.text)));
      const keepBindings = bindings !== undefined && !(ts.isNamedImports(bindings) && bindings.elements.length === 0) ? bindings : undefined;
      kept = f.updateImportDeclaration(s, s.modifiers, f.updateImportClause(c, c.phaseModifier, name, keepBindings), s.moduleSpecifier, s.attributes);
    }
    if (kept !== undefined) out.push(printer.printNode(ts.EmitHint.Unspecified, kept, file));
  }
  return out;
}

/** A diagnostic as tslab reports it: one entry per message of its chain ("Argument of type…", then why), same place. */
function diagnostics(d: ts.Diagnostic, cellLines: number): TypeDiagnostic[] {
  const pos = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : { line: 1, character: 0 };
  // line 0 is PREFIX; a line past the cell's end is the `export {…}` the checker added (it names the cell's names)
  const at = { line: Math.min(Math.max(pos.line, 1), cellLines), column: pos.character + 1 };
  const chain = (m: string | ts.DiagnosticMessageChain): string[] => typeof m === "string" ? [m] : [m.messageText, ...(m.next ?? []).flatMap(chain)];
  return chain(d.messageText).map((message) => ({ ...at, message }));
}

/** A checker for one kernel: check a cell, and after it ran, commit the declarations the check returned; complete and
 * inspect a name, as tslab does for Tab and Shift-Tab. One language service holds the program from cell to cell, so
 * only the cell and the declarations are parsed again. */
export function createChecker(files: TypeFiles) {
  const own = new Map<string, { text: string; version: number }>(); // the two files that change: PREV_FILE, CELL_FILE
  const setOwn = (p: string, text: string) => own.set(p, { text, version: (own.get(p)?.version ?? 0) + 1 });
  setOwn(PREV_FILE, PREFIX);
  setOwn(CELL_FILE, PREFIX);
  const dirs = new Set<string>(["/"]);
  for (const f of Object.keys(files)) for (let d = f.slice(0, f.lastIndexOf("/")); d !== ""; d = d.slice(0, d.lastIndexOf("/"))) dirs.add(d);
  const read = (p: string) => own.get(p)?.text ?? files[p];
  const service = ts.createLanguageService({
    ...virtualDisk(read, (p) => dirs.has(p.length > 1 ? p.replace(/\/$/, "") : p)),
    getScriptFileNames: () => [PREV_FILE, CELL_FILE],
    getScriptVersion: (p) => String(own.get(p)?.version ?? 0),
    getScriptSnapshot: (p) => {
      const text = read(p);
      return text === undefined ? undefined : ts.ScriptSnapshot.fromString(text);
    },
    getCompilationSettings: () => CHECK_OPTIONS,
  });

  /** The program with `cellText` as the cell, whose names the cell does not declare resolve in the earlier cells'. */
  function programWith(cellText: string) {
    if (own.get(CELL_FILE)!.text !== cellText) setOwn(CELL_FILE, cellText);
    const program = service.getProgram()!;
    const cell = program.getSourceFile(CELL_FILE)!;
    const prev = program.getSourceFile(PREV_FILE)!;
    (cell as { parent: ts.Node }).parent = prev;
    return { program, cell, prev };
  }

  function check(code: string): CheckResult {
    const parsed = ts.createSourceFile(CELL_FILE, code, ts.ScriptTarget.ES2022);
    const names = [...new Set(parsed.statements.flatMap(declaredNames))];
    // exporting every name makes the declaration emit write them all (a module's d.ts has only what it exports)
    const { program, cell, prev } = programWith(PREFIX + code + (names.length > 0 ? `\n;export { ${names.join(", ")} };\n` : "\n"));
    const errors = [...program.getSyntacticDiagnostics(cell), ...program.getSemanticDiagnostics(cell)].filter((d) => d.category === ts.DiagnosticCategory.Error);
    const cellLines = code.split("\n").length;
    if (errors.length > 0) return { ok: false, diagnostics: errors.flatMap((d) => diagnostics(d, cellLines)) };
    let dts = "";
    program.emit(cell, (_name, text) => (dts = text), undefined, true);
    const mine = ts.createSourceFile("/cell.d.ts", dts, ts.ScriptTarget.ES2022, true);
    const decls = [...keptStatements(prev, new Set(names)), ...keptStatements(mine, new Set())];
    return { ok: true, decls: decls.join("\n") + "\n" };
  }

  /** Tab: the names that fit at `pos` (a character offset in `code`), ranked as tslab ranks them, and the span they
   * replace (the identifier being typed). */
  function complete(code: string, pos: number): Completion {
    programWith(PREFIX + code);
    const entries = service.getCompletionsAtPosition(CELL_FILE, pos + PREFIX.length, {})?.entries ?? [];
    // the identifier the cursor is in or just after (what tslab finds as the token at the cursor)
    const before = /[\p{ID_Continue}$\u200c\u200d]*$/u.exec(code.slice(0, pos))![0].replace(/^\p{Nd}+/u, "");
    const after = /^[\p{ID_Continue}$\u200c\u200d]*/u.exec(code.slice(pos))![0];
    if (before + after === "") {
      const names = [...entries].sort((a, b) => a.sortText.localeCompare(b.sortText) || a.name.localeCompare(b.name)).map((e) => e.name);
      return { start: pos, end: pos, matches: names };
    }
    // tslab's ranking: starts with what was typed, then the same ignoring case, then contains it (TypeScript's order within)
    const typed = before + after, lower = typed.toLowerCase();
    const rank = (name: string) => name.startsWith(typed) ? "0" : name.toLowerCase().startsWith(lower) ? "1" : name.toLowerCase().includes(lower) ? "2" : "";
    const ranked = entries.map((e, i) => ({ name: e.name, key: rank(e.name), i, sortText: e.sortText })).filter((e) => e.key !== "");
    ranked.sort((a, b) => (a.key + a.sortText).localeCompare(b.key + b.sortText) || a.i - b.i);
    return { start: pos - before.length, end: pos + after.length, matches: ranked.map((e) => e.name) };
  }

  /** Shift-Tab: what TypeScript knows of the name at `pos` (its type, its documentation), as tslab prints it. */
  function inspect(code: string, pos: number): string | undefined {
    programWith(PREFIX + code);
    const info = service.getQuickInfoAtPosition(CELL_FILE, pos + PREFIX.length);
    if (info === undefined) return undefined;
    const head = ts.displayPartsToString(info.displayParts);
    const docs = (info.documentation ?? []).map((d) => d.text);
    const tags = (info.tags ?? []).map((t) => (t.name === "param" ? "@param " : "") + ts.displayPartsToString(t.text)).filter((t) => t !== "" && t !== "@param ");
    return [head, ...(docs.length + tags.length > 0 ? [""] : []), ...docs, ...tags].join("\n");
  }

  return {
    check,
    complete,
    inspect,
    /** The cell ran: later cells see what it declared (a cell that threw declares nothing for the checker, as in tslab). */
    commit(decls: string): void {
      setOwn(PREV_FILE, PREFIX + decls);
    },
    /** What later cells are checked against (for tests and the curious). */
    declarations: (): string => own.get(PREV_FILE)!.text.slice(PREFIX.length),
  };
}

export type Checker = ReturnType<typeof createChecker>;

