// One notebook cell of TypeScript → JavaScript the kernel's worker runs as the body of an async function, with the
// REPL semantics of tslab: top-level await, declarations that later cells see, a re-run cell that may declare the same
// `const` again, the last expression's value as the cell's result.
//
// TypeScript's own transpileModule strips the types: it is the reference for TypeScript's syntax (enums, namespaces,
// decorators: whatever tslab accepts), reports syntax errors with their position, and its transformer API gives the
// syntax tree the rewrite below needs, with a source map back to the cell's lines for error tracebacks. (sucrase and
// esbuild-wasm strip types too, but neither gives a tree to rewrite declarations on.)
//
// The rewrite, on the JavaScript tree after the types are gone (an "after" transformer):
//   const/let/var x = e          →  __bq.decl(["x"]); x = e;              (patterns too: ({ a, b: [c] } = e))
//   class A {}                   →  __bq.decl(["A"]); A = class A {};
//   function f() {}              →  kept (hoisted), and __bq.def("f", f) first in the cell
//   import { a as b } from "m"   →  const __bq_m1 = await __bq.import("m"); __bq.decl(["b"]); b = __bq_m1.a;
//   last statement `expr;`       →  return expr;
// __bq.decl defines the names as properties of the worker's global object, so later cells, which run as other
// functions, find them as free identifiers, and defining them again (a re-run cell) is allowed.
import * as ts from "typescript";

/** The parameters of the function a cell becomes: the kernel's helpers and the cell's `process` and `require`. */
export const CELL_PARAMS = ["__bq", "process", "require"] as const;

export interface CompiledCell {
  /** `(async function (__bq, process, require) { … })`: evaluate it, call it, await it. Its first line is the cell's. */
  js: string;
  /** The cell's line (1-based) for each line of `js` (index = line of js - 1); undefined where no cell line maps. */
  lines: (number | undefined)[];
}

export interface CellSyntaxError {
  message: string;
  line: number; // 1-based, in the cell
  column: number; // 1-based
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleDetection: ts.ModuleDetectionKind.Force, // every cell is a module: top-level await parses
  verbatimModuleSyntax: true, // keep every import not marked `type`: a cell's imports are for the cells after it
  sourceMap: true,
  removeComments: false,
};

/** Compile one cell; a syntax error comes back as the first error with its position. */
export function compileCell(code: string): CompiledCell | CellSyntaxError {
  const out = ts.transpileModule(code, {
    compilerOptions: COMPILER_OPTIONS,
    fileName: "cell.ts",
    reportDiagnostics: true,
    transformers: { after: [replTransformer] },
  });
  const diag = out.diagnostics?.find((d) => d.category === ts.DiagnosticCategory.Error);
  if (diag !== undefined) {
    const pos = diag.file?.getLineAndCharacterOfPosition(diag.start ?? 0) ?? { line: 0, character: 0 };
    return { message: ts.flattenDiagnosticMessageText(diag.messageText, "\n"), line: pos.line + 1, column: pos.character + 1 };
  }
  const body = out.outputText.replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n");
  // The wrapper's head shares the first line, so line n of `js` is line n of the transpiled body.
  const js = `(async function (${CELL_PARAMS.join(", ")}) { "use strict"; ${body}\n})`;
  return { js, lines: sourceLines(out.sourceMapText ?? "") };
}

export const typescriptVersion = ts.version;

/** Whether `code` stops in the middle of something (an open bracket, string or comment) rather than being wrong. */
export function isIncomplete(code: string): boolean {
  const err = compileCell(code);
  if (!isSyntaxError(err)) return false;
  const lines = code.split("\n");
  return err.line > lines.length || (err.line === lines.length && err.column > lines[lines.length - 1].length);
}

export function isSyntaxError(c: CompiledCell | CellSyntaxError): c is CellSyntaxError {
  return (c as CellSyntaxError).message !== undefined;
}

/** The names a binding (identifier or destructuring pattern) declares. */
export function boundNames(name: ts.BindingName): string[] {
  if (ts.isIdentifier(name)) return [name.text];
  return name.elements.flatMap((el) => (ts.isOmittedExpression(el) ? [] : boundNames(el.name)));
}

/** A declaration's binding as an assignment target: `{ a, b: [c] = d, ...e }` reads the same as an expression. */
function assignmentTarget(f: ts.NodeFactory, name: ts.BindingName): ts.Expression {
  if (ts.isIdentifier(name)) return f.createIdentifier(name.text);
  if (ts.isObjectBindingPattern(name)) {
    return f.createObjectLiteralExpression(name.elements.map((el): ts.ObjectLiteralElementLike => {
      const target = assignmentTarget(f, el.name);
      if (el.dotDotDotToken !== undefined) return f.createSpreadAssignment(target);
      if (el.propertyName === undefined && ts.isIdentifier(el.name)) {
        return f.createShorthandPropertyAssignment(el.name.text, el.initializer);
      }
      const value = el.initializer !== undefined ? f.createAssignment(target, el.initializer) : target;
      return f.createPropertyAssignment(el.propertyName ?? (el.name as ts.Identifier).text, value);
    }));
  }
  return f.createArrayLiteralExpression(name.elements.map((el) => {
    if (ts.isOmittedExpression(el)) return f.createOmittedExpression();
    const target = assignmentTarget(f, el.name);
    if (el.dotDotDotToken !== undefined) return f.createSpreadElement(target);
    return el.initializer !== undefined ? f.createAssignment(target, el.initializer) : target;
  }));
}

const replTransformer: ts.TransformerFactory<ts.SourceFile> = (context) => (file) => {
  const f = context.factory;
  const bq = (method: string, ...args: ts.Expression[]) =>
    f.createCallExpression(f.createPropertyAccessExpression(f.createIdentifier("__bq"), method), undefined, args);
  const names = (list: string[]) => f.createArrayLiteralExpression(list.map((n) => f.createStringLiteral(n)));
  const stmt = (e: ts.Expression, like: ts.Node) => ts.setSourceMapRange(f.createExpressionStatement(e), like);
  const prologue: ts.Statement[] = [];
  let moduleCount = 0;

  const rewrite = (s: ts.Statement, isLast: boolean): ts.Statement[] => {
    if (ts.isVariableStatement(s)) {
      const decls = s.declarationList.declarations;
      const out: ts.Statement[] = [stmt(bq("decl", names(decls.flatMap((d) => boundNames(d.name)))), s)];
      for (const d of decls) {
        const value = d.initializer ?? f.createVoidZero();
        const target = assignmentTarget(f, d.name);
        const assign = f.createAssignment(target, value);
        out.push(stmt(ts.isIdentifier(d.name) ? assign : f.createParenthesizedExpression(assign), d));
      }
      return out;
    }
    if (ts.isClassDeclaration(s) && s.name !== undefined) {
      const expr = f.createClassExpression(undefined, s.name, undefined, s.heritageClauses, s.members);
      return [stmt(bq("decl", names([s.name.text])), s), stmt(f.createAssignment(f.createIdentifier(s.name.text), expr), s)];
    }
    if (ts.isFunctionDeclaration(s) && s.name !== undefined) {
      prologue.push(stmt(bq("def", f.createStringLiteral(s.name.text), f.createIdentifier(s.name.text)), s));
      const mods = s.modifiers?.filter((m) => m.kind === ts.SyntaxKind.AsyncKeyword);
      return [f.updateFunctionDeclaration(s, mods, s.asteriskToken, s.name, undefined, s.parameters, undefined, s.body)];
    }
    if (ts.isImportDeclaration(s)) {
      const load = f.createAwaitExpression(bq("import", s.moduleSpecifier as ts.Expression));
      const clause = s.importClause;
      if (clause === undefined) return [stmt(load, s)];
      const mod = f.createIdentifier(`__bq_m${++moduleCount}`);
      const out: ts.Statement[] = [ts.setSourceMapRange(f.createVariableStatement(undefined,
        f.createVariableDeclarationList([f.createVariableDeclaration(mod, undefined, undefined, load)], ts.NodeFlags.Const)), s)];
      const binds: [string, ts.Expression][] = [];
      if (clause.name !== undefined) binds.push([clause.name.text, f.createPropertyAccessExpression(mod, "default")]);
      const nb = clause.namedBindings;
      if (nb !== undefined && ts.isNamespaceImport(nb)) binds.push([nb.name.text, mod]);
      if (nb !== undefined && ts.isNamedImports(nb)) {
        for (const el of nb.elements) {
          if (el.isTypeOnly) continue;
          const from = el.propertyName ?? el.name;
          binds.push([el.name.text, f.createElementAccessExpression(mod, f.createStringLiteral(ts.isIdentifier(from) ? from.text : from.text))]);
        }
      }
      if (binds.length > 0) out.push(stmt(bq("decl", names(binds.map(([n]) => n))), s));
      for (const [n, v] of binds) out.push(stmt(f.createAssignment(f.createIdentifier(n), v), s));
      return out;
    }
    if (ts.isExportDeclaration(s) || ts.isExportAssignment(s)) {
      return ts.isExportAssignment(s) ? [stmt(s.expression, s)] : [];
    }
    if (isLast && ts.isExpressionStatement(s)) return [ts.setSourceMapRange(f.createReturnStatement(s.expression), s)];
    return [s];
  };

  // TypeScript ends a module without imports with `export {};`: the cell's last statement is the one before
  let last = file.statements.length - 1;
  while (last >= 0 && ts.isExportDeclaration(file.statements[last])) last--;
  const body = file.statements.flatMap((s, i) => rewrite(s, i === last));
  return f.updateSourceFile(file, [...prologue, ...body]);
};

// ---- source map: which cell line each line of the output comes from ----

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Decode a source map's `mappings` (Base64 VLQ) into the first original line (1-based) of each generated line. */
export function sourceLines(sourceMapText: string): (number | undefined)[] {
  if (sourceMapText === "") return [];
  const mappings = (JSON.parse(sourceMapText) as { mappings: string }).mappings;
  const lines: (number | undefined)[] = [];
  let origLine = 0; // VLQ fields are deltas that run on across segments and lines
  for (const genLine of mappings.split(";")) {
    let first: number | undefined;
    for (const seg of genLine.split(",")) {
      if (seg === "") continue;
      const fields = decodeVlq(seg);
      if (fields.length >= 4) {
        origLine += fields[2];
        first ??= origLine + 1;
      }
    }
    lines.push(first);
  }
  return lines;
}

function decodeVlq(seg: string): number[] {
  const out: number[] = [];
  let value = 0, shift = 0;
  for (const ch of seg) {
    const digit = BASE64.indexOf(ch);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
    } else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}
