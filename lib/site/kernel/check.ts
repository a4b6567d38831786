// The browser kernel's type checker: each cell is checked before it runs, as tslab checks it, so a cell with a type
// error is one error output in both kernels and runs in neither. tslab's way, with TypeScript's own compiler:
//   - the cell is a module (/__cell__.ts); what earlier cells declared is a declaration file (/__prev__.d.ts), and the
//     cell's syntax tree gets that file as its parent, so a name the cell does not declare is looked up there next
//     (a re-run cell's `const x` shadows the old one instead of clashing with it);
//   - a cell that checks emits its own declarations (.d.ts), which replace the old ones of the same names.
// The library, tfjs, tslab and danfojs types, TypeScript's lib files and @types/node come as one map of files
// (types.json, written by lib/site/types.ts at build time) that stands in for the disk.
import * as ts from "typescript";

/** Virtual path → text: what the checker may read (the site's kernel/types.json). */
export type TypeFiles = Record<string, string>;

/** One of TypeScript's errors, where it is in the cell (1-based). */
export interface TypeDiagnostic {
  line: number;
  column: number;
  message: string;
}

export type CheckResult = { ok: true; decls: string } | { ok: false; diagnostics: TypeDiagnostic[] };

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

/** A compiler host over a disk of our own: `read` gives a file's text (undefined: no such file), `isDir` says whether a
 * folder exists. Parsed files are kept across programs, but for the `changing` ones (the cell and the declarations). */
export function virtualHost(read: (p: string) => string | undefined, isDir: (p: string) => boolean, changing: ReadonlySet<string> = new Set()): ts.CompilerHost {
  const parsed = new Map<string, ts.SourceFile>();
  return {
    fileExists: (p) => read(p) !== undefined,
    readFile: read,
    directoryExists: isDir,
    getDirectories: () => [],
    realpath: (p) => p,
    getSourceFile: (p, lang) => {
      const text = read(p);
      if (text === undefined) return undefined;
      if (changing.has(p)) return ts.createSourceFile(p, text, lang, true);
      if (!parsed.has(p)) parsed.set(p, ts.createSourceFile(p, text, lang));
      return parsed.get(p);
    },
    getDefaultLibFileName: (o) => `${TS_LIB_DIR}/${ts.getDefaultLibFileName(o)}`,
    getDefaultLibLocation: () => TS_LIB_DIR,
    writeFile: () => {},
    getCurrentDirectory: () => "/",
    getCanonicalFileName: (f) => f,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => "\n",
  };
}

/** The names a top-level statement declares (the ones a later cell sees). */
function declaredNames(s: ts.Statement): string[] {
  const bound = (n: ts.BindingName): string[] => ts.isIdentifier(n) ? [n.text] : n.elements.flatMap((e) => ts.isOmittedExpression(e) ? [] : bound(e.name));
  if (ts.isVariableStatement(s)) return s.declarationList.declarations.flatMap((d) => bound(d.name));
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
      const decls = s.declarationList.declarations.filter((d) => declaredNames(f.createVariableStatement(undefined, f.createVariableDeclarationList([d]))).some((n) => !gone.has(n)));
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

/** A checker for one kernel: check a cell, and after it ran, commit the declarations the check returned. */
export function createChecker(files: TypeFiles) {
  const own = new Map<string, string>([[PREV_FILE, PREFIX]]);
  const dirs = new Set<string>(["/"]);
  for (const f of Object.keys(files)) for (let d = f.slice(0, f.lastIndexOf("/")); d !== ""; d = d.slice(0, d.lastIndexOf("/"))) dirs.add(d);
  const host = virtualHost((p) => own.get(p) ?? files[p], (p) => dirs.has(p.length > 1 ? p.replace(/\/$/, "") : p), new Set(own.keys()).add(CELL_FILE));
  let program: ts.Program | undefined;

  function check(code: string): CheckResult {
    const parsed = ts.createSourceFile(CELL_FILE, code, ts.ScriptTarget.ES2022);
    const names = [...new Set(parsed.statements.flatMap(declaredNames))];
    // exporting every name makes the declaration emit write them all (a module's d.ts has only what it exports)
    own.set(CELL_FILE, PREFIX + code + (names.length > 0 ? `\n;export { ${names.join(", ")} };\n` : "\n"));
    program = ts.createProgram({ rootNames: [PREV_FILE, CELL_FILE], options: CHECK_OPTIONS, host, oldProgram: program });
    const cell = program.getSourceFile(CELL_FILE)!;
    const prev = program.getSourceFile(PREV_FILE)!;
    (cell as { parent: ts.Node }).parent = prev; // names the cell does not declare resolve in the earlier cells' declarations
    const errors = [...program.getSyntacticDiagnostics(cell), ...program.getSemanticDiagnostics(cell)].filter((d) => d.category === ts.DiagnosticCategory.Error);
    const cellLines = code.split("\n").length;
    if (errors.length > 0) return { ok: false, diagnostics: errors.flatMap((d) => diagnostics(d, cellLines)) };
    let dts = "";
    program.emit(cell, (_name, text) => (dts = text), undefined, true);
    const mine = ts.createSourceFile("/cell.d.ts", dts, ts.ScriptTarget.ES2022, true);
    const decls = [...keptStatements(prev, new Set(names)), ...keptStatements(mine, new Set())];
    return { ok: true, decls: decls.join("\n") + "\n" };
  }

  return {
    check,
    /** The cell ran: later cells see what it declared (a cell that threw declares nothing for the checker, as in tslab). */
    commit(decls: string): void {
      own.set(PREV_FILE, PREFIX + decls);
    },
    /** What later cells are checked against (for tests and the curious). */
    declarations: (): string => own.get(PREV_FILE)!.slice(PREFIX.length),
  };
}

export type Checker = ReturnType<typeof createChecker>;

