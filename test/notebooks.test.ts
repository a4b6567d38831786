// Structure checks for notebooks/*.ipynb (valid nbformat, the parameters cell, PROFILE, outputs cleared, imports that
// resolve), and that every library module compiles and loads the way a notebook loads it: through tslab's own
// TypeScript 5.0 with tslab's compiler options. Executing the notebooks is `npm run notebooks` (CI runs it after tests).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const NB_DIR = path.join(ROOT, "notebooks");
const runner = require("../lib/cli/run-notebooks.js") as {
  disableTypeScriptWatchers(): void;
  KERNEL_NAME: string;
  kernelSpec(): { argv: string[]; language: string };
  listNotebooks(only: string[] | null): string[];
  studentCopy(nb: { cells: Cell[] }): number;
};

// The path through the workbook (notebooks/README.md); a rename must update both.
const EXPECTED = [
  "01-load-and-explore-squad", "02-tokenize-and-align", "03-build-the-bert-qa-head", "04-train-on-the-gpu",
  "05-predict-and-exact-match", "06-text-classification", "07-chinese-qa-cmrc2018",
];
const MAX_OUTPUT_BYTES = 20_000; // commit notebooks with outputs cleared: one Plotly chart alone inlines 10 MB
const MAX_CODE_LINES = 30; // "one short code cell" per step (STYLE.md, d2l.ai)

interface Cell { cell_type: string; id?: string; metadata: { tags?: string[] }; source: string | string[]; outputs?: unknown[]; execution_count?: number | null }
interface Notebook { nbformat: number; nbformat_minor: number; metadata: { kernelspec?: { name: string; language: string } }; cells: Cell[] }

const text = (c: Cell) => (Array.isArray(c.source) ? c.source.join("") : c.source);
const notebookFiles = () => fs.readdirSync(NB_DIR).filter((f) => /^\d\d-.*\.ipynb$/.test(f)).sort();
const readNotebook = (f: string) => JSON.parse(fs.readFileSync(path.join(NB_DIR, f), "utf8")) as Notebook;

test("the notebooks are the numbered path of the workbook, and the runner finds all of them in order", () => {
  assert.deepEqual(notebookFiles().map((f) => f.replace(/\.ipynb$/, "")), EXPECTED);
  assert.deepEqual(runner.listNotebooks(null), notebookFiles());
  assert.deepEqual(runner.listNotebooks(["05", "01"]), [EXPECTED[0] + ".ipynb", EXPECTED[4] + ".ipynb"]);
});

for (const file of notebookFiles()) {
  test(`${file}: valid nbformat 4 with the bertqa kernel`, () => {
    const nb = readNotebook(file);
    assert.equal(nb.nbformat, 4);
    assert.ok(nb.nbformat_minor >= 4, "nbformat_minor >= 4");
    assert.equal(nb.metadata.kernelspec?.name, runner.KERNEL_NAME, "kernelspec.name must be the kernel run-notebooks registers");
    assert.equal(nb.metadata.kernelspec?.language, "typescript");
    const ids = new Set<string>();
    for (const [i, c] of nb.cells.entries()) {
      assert.ok(["code", "markdown", "raw"].includes(c.cell_type), `cell ${i}: cell_type ${c.cell_type}`);
      assert.ok(typeof c.source === "string" || Array.isArray(c.source), `cell ${i}: source`);
      if (nb.nbformat_minor >= 5) {
        assert.ok(typeof c.id === "string" && /^[a-zA-Z0-9-_]{1,64}$/.test(c.id), `cell ${i}: id ${c.id}`);
        assert.ok(!ids.has(c.id!), `cell ${i}: duplicate id ${c.id}`);
        ids.add(c.id!);
      }
      if (c.cell_type === "code") assert.ok(Array.isArray(c.outputs), `cell ${i}: code cells need an outputs list`);
    }
  });

  test(`${file}: the first cell is the tagged parameters cell with PROFILE (offline by default, BERTQA_PROFILE overrides)`, () => {
    const nb = readNotebook(file);
    const first = nb.cells[0];
    assert.equal(first.cell_type, "code");
    assert.deepEqual(first.metadata.tags, ["parameters"]);
    const src = text(first);
    assert.match(src, /^(const|let) PROFILE\b.*process\.env\.BERTQA_PROFILE.*"offline"/m);
    assert.match(src, /"full"/, "the parameters cell names the other profile");
    assert.equal(nb.cells.filter((c) => c.metadata.tags?.includes("parameters")).length, 1, "exactly one parameters cell");
    assert.equal(nb.cells[1].cell_type, "markdown", "the story starts right after the parameters");
  });

  test(`${file}: committed without outputs (run \`npm run notebooks\` to see them in notebooks/out/)`, () => {
    const nb = readNotebook(file);
    const bytes = nb.cells.reduce((n, c) => n + JSON.stringify(c.outputs ?? []).length - 2, 0);
    assert.ok(bytes <= MAX_OUTPUT_BYTES, `${bytes} bytes of outputs (clear them: Edit > Clear Outputs of All Cells)`);
  });

  test(`${file}: prose before code, short code cells, and imports that exist`, () => {
    const nb = readNotebook(file);
    const code = nb.cells.filter((c) => c.cell_type === "code");
    const markdown = nb.cells.filter((c) => c.cell_type === "markdown");
    assert.ok(markdown.length * 2 >= code.length, `${markdown.length} markdown cells for ${code.length} code cells`);
    for (const c of code.slice(1)) {
      const lines = text(c).split("\n").length;
      assert.ok(lines <= MAX_CODE_LINES, `a code cell of ${lines} lines: ${text(c).split("\n")[0]}`);
    }
    for (const c of code) {
      for (const m of text(c).matchAll(/from\s+"(\.\/[^"]+)"/g)) {
        const target = path.join(ROOT, m[1]);
        assert.ok([".ts", ".js", "/index.ts"].some((ext) => fs.existsSync(target + ext)), `import "${m[1]}" does not exist`);
      }
      assert.doesNotMatch(text(c), /from\s+"\.\.\//, 'the kernel starts at the repository root: import "./lib", not "../lib"');
    }
  });

  test(`${file}: imports the library once, from its entry point "./lib" (lib/index.ts)`, () => {
    const sources = readNotebook(file).cells.filter((c) => c.cell_type === "code").map(text);
    const deep = sources.flatMap((s) => [...s.matchAll(/from\s+"(\.\/lib\/[^"]+)"/g)].map((m) => m[1]));
    assert.deepEqual(deep, [], 'import from "./lib" (lib/index.ts exports the public API), not from its modules');
    const fromLib = sources.flatMap((s) => [...s.matchAll(/^import\s[^;]*?from\s+"\.\/lib";/gm)]);
    assert.equal(fromLib.length, 1, 'one `import { ... } from "./lib";` per notebook, in its imports cell');
  });
}

test("student copies lose the solution blocks and keep the TODO stub and the check cell", () => {
  const nb = readNotebook("02-tokenize-and-align.ipynb");
  const before = nb.cells.map(text);
  const removed = runner.studentCopy(nb);
  assert.ok(removed >= 1, "notebook 02 has a checked exercise");
  const after = nb.cells.map(text);
  assert.ok(after.every((t) => !t.includes("BEGIN SOLUTION") && !t.includes("END SOLUTION")));
  const i = before.findIndex((t) => t.includes("BEGIN SOLUTION"));
  assert.match(after[i], /function myCharToToken[\s\S]*return undefined; \/\/ TODO/);
  assert.doesNotMatch(after[i], /charIndex < o\[1\]/, "the solution's loop is gone");
  assert.match(after[i + 1], /myCharToToken\(f\.offsets, c\)/, "the check cell stays");
  assert.ok(nb.cells.every((c) => c.cell_type !== "code" || (c.outputs ?? []).length === 0));
});

test("every notebook's student copy loses all its solution blocks and keeps the exercise and check cells", () => {
  for (const file of notebookFiles()) {
    const nb = readNotebook(file);
    const blocks = nb.cells.map(text).join("\n").split("// BEGIN SOLUTION").length - 1;
    const cells = nb.cells.length;
    assert.equal(runner.studentCopy(nb), blocks, `${file}: every // BEGIN SOLUTION … // END SOLUTION block is removed`);
    assert.equal(nb.cells.length, cells);
    assert.ok(nb.cells.every((c) => !text(c).includes("SOLUTION")), `${file}: no solution marker left`);
    if (file !== EXPECTED[1] + ".ipynb") assert.ok(blocks >= 1, `${file} has a checked exercise (issue 19)`);
  }
});

test("notebooks/README.md lists every notebook", () => {
  const readme = fs.readFileSync(path.join(NB_DIR, "README.md"), "utf8");
  for (const name of EXPECTED) assert.ok(readme.includes(name), `README.md does not mention ${name}`);
});

test("the bertqa kernel starts tslab through run-notebooks, from any folder", () => {
  const spec = runner.kernelSpec();
  assert.equal(spec.language, "typescript");
  assert.ok(path.isAbsolute(spec.argv[0]) && path.isAbsolute(spec.argv[1]), "absolute paths: Jupyter starts kernels anywhere");
  assert.deepEqual(spec.argv.slice(2), ["kernel", "--config-path", "{connection_file}"]);
  assert.ok(fs.existsSync(spec.argv[1]));
});

test("every library module compiles with tslab's TypeScript 5.0 and loads the way a notebook cell imports it", async () => {
  // tslab type-checks a cell together with every local .ts file it imports, with its own compiler and options (not our
  // tsconfig.json), and refuses to run the cell on any error. This runs tslab's executor in this process.
  runner.disableTypeScriptWatchers(); // as in the kernel: files may change while this runs
  const { createConverter } = require("tslab/dist/converter.js");
  const { createExecutor } = require("tslab/dist/executor.js");
  const cwd = process.cwd();
  process.chdir(ROOT); // tslab compiles files under its cwd only: the bertqa kernel starts at the repository root
  const conv = createConverter({ isJS: false, isBrowser: false });
  const errors: string[] = [];
  const exec = createExecutor(ROOT, { node: conv, browser: conv, close: () => conv.close() }, {
    log: () => {},
    error: (...a: unknown[]) => errors.push(a.map(String).join(" ")),
  });
  const failures: string[] = [];
  try {
    const modules = fs.readdirSync(path.join(ROOT, "lib")).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3));
    for (const m of modules) {
      const ok = await exec.execute(`import * as m_${m.replace(/\W/g, "_")} from "./lib/${m}";\nObject.keys(m_${m.replace(/\W/g, "_")}).length;`);
      if (!ok) failures.push(`lib/${m}.ts: ${errors.splice(0).join("; ").split("\n")[0]}`);
      errors.length = 0;
    }
    // Each notebook's import from "./lib", compiled alone: a name lib/index.ts does not export fails here.
    for (const file of notebookFiles()) {
      const imports = readNotebook(file).cells.map(text).flatMap((s) => [...s.matchAll(/^import\s[^;]*?from\s+"\.\/lib";/gm)].map((m) => m[0]));
      for (const statement of imports) {
        if (!(await exec.execute(statement))) failures.push(`${file}: ${errors.splice(0).join("; ").split("\n")[0]}`);
        errors.length = 0;
      }
    }
  } finally {
    exec.close();
    process.chdir(cwd);
  }
  assert.deepEqual(failures, [], "modules or names a notebook cannot import (tslab uses TypeScript 5.0, lib es2022, not strict)");
});
