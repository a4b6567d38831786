// The browser kernel's cell compiler (lib/site/kernel/cell.ts), run here in Node the way the kernel's worker runs it:
// each cell becomes an async function; declarations outlive the cell; a re-run cell declares the same const again;
// the last expression is the cell's value; errors point at the cell's own lines. And its type checker (check.ts),
// against tslab's: the same errors for the same cells, and none in the workbook's notebooks.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { compileCell, isIncomplete, isSyntaxError, sourceLines, type CompiledCell } from "../lib/site/kernel/cell";
import { createChecker, type TypeFiles } from "../lib/site/kernel/check";
import { collectTypes } from "../lib/site/types";

/** A kernel in miniature: the worker's helpers over a scope object standing in for the worker's global object. */
function miniKernel(modules: Record<string, object> = {}) {
  const scope = Object.create(null) as Record<string, unknown>;
  const helpers = {
    import: async (spec: string) => {
      if (!(spec in modules)) throw new Error(`no module ${spec}`);
      return modules[spec];
    },
    decl: (names: string[]) => names.forEach((n) => Object.defineProperty(scope, n, { value: undefined, writable: true, configurable: true, enumerable: true })),
    def: (name: string, value: unknown) => Object.defineProperty(scope, name, { value, writable: true, configurable: true, enumerable: true }),
  };
  let count = 0;
  return {
    scope,
    async run(code: string, env: Record<string, string> = {}): Promise<unknown> {
      const c = compileCell(code);
      if (isSyntaxError(c)) throw new SyntaxError(`${c.message} (line ${c.line}, column ${c.column})`);
      // free identifiers resolve through `scope`, as they resolve through the worker's global object in the browser
      const fn = new Function("scope", `with (scope) { return ${c.js}; }\n//# sourceURL=bertqa-cell-${++count}.js`)(scope);
      return fn(helpers, { env }, () => {});
    },
  };
}

test("declarations persist across cells; a re-run cell may declare the same const again", async () => {
  const k = miniKernel();
  await k.run("const x: number = 6 * 7;\nlet counter = 0;");
  assert.equal(await k.run("counter += 1; x + counter"), 43);
  assert.equal(await k.run("const x = 1; x"), 1); // what a re-run cell does; tslab allows it
  await k.run("function twice(n: number): number { return 2 * n }\nclass Box<T> { constructor(public v: T) {} }");
  assert.equal(await k.run("twice(new Box(21).v)"), 42);
  assert.deepEqual(Object.keys(k.scope).sort(), ["Box", "counter", "twice", "x"]);
});

test("destructuring declarations bind every name, with defaults and rest", async () => {
  const k = miniKernel();
  await k.run("const { features: [first, , third = 'd'], n = 5, ...rest } = { features: [1, 2], a: 1, b: 2 } as any;");
  assert.deepEqual([k.scope.first, k.scope.third, k.scope.n, k.scope.rest], [1, "d", 5, { a: 1, b: 2 }]);
  await k.run("let [p, ...q] = [1, 2, 3], r;");
  assert.deepEqual([k.scope.p, k.scope.q, k.scope.r], [1, [2, 3], undefined]);
});

test("top-level await, and only a final expression is the cell's value", async () => {
  const k = miniKernel();
  assert.equal(await k.run("const v = await Promise.resolve(3);\nv * 2"), 6);
  assert.equal(await k.run("const w = 1;"), undefined);
  assert.equal(await k.run("for (let i = 0; i < 2; i++) {}"), undefined);
  assert.equal(await k.run("enum Color { Red, Green }\nColor.Green"), 1);
});

test("imports bind as declarations; type-only imports vanish", async () => {
  const lib = { loadSquad: () => "loaded", SAMPLE: 7 };
  const k = miniKernel({ "./lib": lib, tslab: { display: 1 }, dflt: { default: "D" } });
  await k.run('import { loadSquad as load, SAMPLE, type QAExample } from "./lib";\nimport * as tslab from "tslab";\nimport d from "dflt";\nimport type { X } from "./lib";');
  assert.deepEqual([(k.scope.load as () => string)(), k.scope.SAMPLE, k.scope.tslab, k.scope.d], ["loaded", 7, { display: 1 }, "D"]);
  assert.equal("QAExample" in k.scope || "X" in k.scope, false);
  await assert.rejects(k.run('import { a } from "nowhere";'), /no module nowhere/);
});

test("process.env reaches the cell through its own parameter", async () => {
  const k = miniKernel();
  assert.equal(await k.run('const PROFILE = (process.env.BERTQA_PROFILE ?? "offline") as "offline" | "full";\nPROFILE', { BERTQA_PROFILE: "full" }), "full");
});

test("a syntax error comes back with the cell's line and column", () => {
  const c = compileCell("const a = 1;\nconst b = ;\n");
  assert.ok(isSyntaxError(c));
  assert.deepEqual([c.line, c.column], [2, 11]);
  assert.equal(isIncomplete("foo(1,\n  2"), true);
  assert.equal(isIncomplete("const s = `abc"), true);
  assert.equal(isIncomplete("const b = ;\nfoo()"), false);
  assert.equal(isIncomplete("foo()"), false);
});

test("a runtime error's stack line maps back to the cell's line through the source map", async () => {
  const code = "// a comment\nconst a: { b?: { c: number } } = {};\n\nfunction f(): number {\n  return a.b!.c;\n}\nf()";
  const k = miniKernel();
  const err = await k.run(code).then(() => undefined, (e: Error) => e);
  assert.ok(err instanceof TypeError);
  // new Function puts two lines ("function anonymous(scope", ") {") before the body
  const frames = [...err.stack!.matchAll(/bertqa-cell-1\.js:(\d+):\d+/g)].map((m) => Number(m[1]) - 2);
  const c = compileCell(code) as CompiledCell;
  assert.deepEqual(frames.map((l) => c.lines[l - 1]), [5, 7]); // in f, then the call
});

test("source map lines decode from Base64 VLQ", () => {
  // "AAAA;AACA,CAAC;;AAEA": line 1 ← 1, line 2 ← 2, line 3 has no mapping, line 4 ← 4
  const map = JSON.stringify({ version: 3, sources: ["cell.ts"], names: [], mappings: "AAAA;AACA,CAAC;;AAEA" });
  assert.deepEqual(sourceLines(map), [1, 2, undefined, 4]);
});

// ---- type checks (check.ts), against tslab's own checker ----

let types: TypeFiles | undefined; // the kernel's type map, collected once (about 5 s)
const kernelTypes = () => (types ??= collectTypes(path.resolve(__dirname, "..")));

/** A session's cells: declarations carried on (a `let` assigned later, a const declared again with another type),
 * the library's and tfjs's types, destructuring, top-level await, and errors of several kinds, chained ones too. */
const SESSION = [
  'import { computeExact, normalizeAnswer } from "./lib";\nimport * as tf from "@tensorflow/tfjs";\nconst x: number = 6 * 7;\nlet counter = 0;',
  "counter += 1;\nx + counter",
  'console.log("ran");\nconst s: string = x;',
  'computeExact("a", 1)',
  'const x = "now a string";\nx.toUpperCase()',
  "x.toFixed(1)",
  "function twice(n: number): number { return 2 * n }\nclass Box<T> { constructor(public v: T) {} }\ninterface Point { a: number }",
  "const p: Point = { a: String(new Box(twice(2)).v) };",
  "const t = tf.tensor([1, 2]);\nconst shape: string = t.shape;",
  'const v = await Promise.resolve(normalizeAnswer("The  Cat"));\nv.length',
  'const { a, b: [c] } = { a: 1, b: ["x"] };\nconst d: number = c;',
  "const f: (n: number) => string = (n: string) => n;",
  "undefinedName + 1",
  "const total = twice(x.length) + counter;",
];

test("a cell's type errors are tslab's: the same messages at the same line and column, with declarations carried on", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createConverter } = require("tslab/dist/converter") as typeof import("tslab/dist/converter");
  const tslab = createConverter(); // resolves "./lib" from the working directory: the repository (npm test runs there)
  const checker = createChecker(kernelTypes());
  let prevDecl = "";
  const failed: number[] = [];
  try {
    for (const [i, cell] of SESSION.entries()) {
      const ref = tslab.convert(prevDecl, cell);
      const want = ref.diagnostics.map((d) => `${d.start.line + 1}:${d.start.character + 1} - ${d.messageText}`);
      if (want.length === 0) prevDecl = ref.declOutput ?? "";
      const mine = checker.check(cell);
      if (mine.ok) checker.commit(mine.decls);
      else failed.push(i);
      assert.deepEqual(mine.ok ? [] : mine.diagnostics.map((d) => `${d.line}:${d.column} - ${d.message}`), want, `cell ${i}:\n${cell}`);
    }
  } finally {
    tslab.close();
  }
  assert.deepEqual(failed, [2, 3, 5, 7, 8, 10, 11, 12], "the cells with errors (so the comparison covers both kinds)");
});

test("every code cell of the seven notebooks type-checks in order, as it does under tslab", () => {
  const files = kernelTypes();
  const notebooks = fs.readdirSync(path.join(__dirname, "..", "notebooks")).filter((f) => f.endsWith(".ipynb")).sort();
  assert.equal(notebooks.length, 7);
  for (const nb of notebooks) {
    const checker = createChecker(files);
    const cells = (JSON.parse(fs.readFileSync(path.join(__dirname, "..", "notebooks", nb), "utf8")) as { cells: { cell_type: string; source: string | string[] }[] }).cells;
    for (const [i, cell] of cells.filter((c) => c.cell_type === "code").entries()) {
      const r = checker.check(Array.isArray(cell.source) ? cell.source.join("") : cell.source);
      assert.ok(r.ok, `${nb}, code cell ${i + 1}: ${r.ok ? "" : r.diagnostics.map((d) => `${d.line}:${d.column} - ${d.message}`).join("; ")}`);
      checker.commit(r.decls);
    }
  }
});

test("Tab and Shift-Tab: completions and quick info are tslab's, for names of earlier cells, the library and tfjs", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createConverter } = require("tslab/dist/converter") as typeof import("tslab/dist/converter");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { printQuickInfo } = require("tslab/dist/inspect") as typeof import("tslab/dist/inspect");
  const tslab = createConverter();
  const checker = createChecker(kernelTypes());
  const first = 'import { computeExact, normalizeAnswer } from "./lib";\nimport * as tf from "@tensorflow/tfjs";\nconst longName = 1;\nfunction twice(n: number): number { return 2 * n }';
  const prevDecl = tslab.convert("", first).declOutput ?? "";
  const r = checker.check(first);
  assert.ok(r.ok);
  checker.commit(r.decls);
  // [cell, cursor]: a name of an earlier cell, the library's, tfjs members, after a dot, in the middle of a name
  const cases: [string, number][] = [["longN", 5], ["computeEx", 9], ["tf.tens", 7], ["tf.tensor([1]).resh", 19], ["tf.", 3],
    ["normalizeAnswer(x)", 3], ["twice(2)", 2], ["const x = longName + 1;\nx.toFi", 30]];
  try {
    for (const [code, pos] of cases) {
      const want = tslab.complete(prevDecl, code, pos);
      const got = checker.complete(code, pos);
      assert.deepEqual([got.start, got.end, got.matches], [want.start, want.end, want.candidates], `complete ${JSON.stringify(code)} at ${pos}`);
      assert.ok(got.matches.length > 0, `something to complete in ${JSON.stringify(code)}`);
      const info = tslab.inspect(prevDecl, code, pos);
      assert.equal(checker.inspect(code, pos), info === undefined ? undefined : printQuickInfo(info), `inspect ${JSON.stringify(code)} at ${pos}`);
    }
  } finally {
    tslab.close();
  }
  assert.match(checker.inspect("normalizeAnswer", 3)!, /^\(alias\) function normalizeAnswer\(s: string\): string\n.*\n\nnormalize_answer: lower case/, "the library's doc comment");
});
