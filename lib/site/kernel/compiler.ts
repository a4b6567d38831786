// The kernel's compiler, a Web Worker of its own (one per kernel), so that TypeScript's work never holds up
// JupyterLab's page: it reads the types once when the kernel starts (about a second), then checks each cell as tslab
// does (check.ts), compiles it for the cell worker (cell.ts), and answers Tab and Shift-Tab from the same types.
// rspack bundles it with TypeScript inside.
import { compileCell, isIncomplete, isSyntaxError, typescriptVersion } from "./cell";
import { createChecker, type Checker, type TypeFiles } from "./check";
import type { FromCompiler, ToCompiler } from "./protocol";

const scope = globalThis as unknown as { postMessage(m: FromCompiler): void; addEventListener(t: "message", f: (ev: MessageEvent<ToCompiler>) => void): void };
let checker: Checker | undefined;
let pending: string | undefined; // the declarations of the cell compiled last, once it has run

async function init(typesUrl: string): Promise<void> {
  try {
    const res = await fetch(typesUrl);
    if (!res.ok) throw new Error(`${typesUrl}: HTTP ${res.status}`);
    checker = createChecker((await res.json()) as TypeFiles);
    checker.check(""); // parse the types now, while the library loads, not when the first cell runs
    scope.postMessage({ type: "ready", typescriptVersion });
  } catch (e) {
    checker = undefined;
    scope.postMessage({ type: "ready", typescriptVersion, warning: `cells run without type checks: ${e instanceof Error ? e.message : String(e)}` });
  }
}

function compile(id: number, code: string): FromCompiler {
  pending = undefined;
  const cell = compileCell(code);
  if (isSyntaxError(cell)) return { type: "syntaxError", id, error: cell };
  try {
    const checked = checker?.check(code);
    if (checked?.ok === false) return { type: "typeErrors", id, diagnostics: checked.diagnostics };
    pending = checked?.decls;
  } catch (e) {
    console.warn("bertqa kernel: the type checker failed on this cell; it runs unchecked", e); // TypeScript's own bug
  }
  return { type: "compiled", id, cell };
}

scope.addEventListener("message", (ev) => {
  const m = ev.data;
  if (m.type === "init") void init(m.typesUrl);
  else if (m.type === "compile") scope.postMessage(compile(m.id, m.code));
  else if (m.type === "commit" && pending !== undefined) {
    checker?.commit(pending);
    pending = undefined;
  }
  else if (m.type === "isIncomplete") scope.postMessage({ type: "isIncomplete", id: m.id, incomplete: isIncomplete(m.code) });
  else if (m.type === "complete") scope.postMessage({ type: "complete", id: m.id, completion: checker?.complete(m.code, m.pos) ?? { start: m.pos, end: m.pos, matches: [] } });
  else if (m.type === "inspect") scope.postMessage({ type: "inspect", id: m.id, text: checker?.inspect(m.code, m.pos) });
});
