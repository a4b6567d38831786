// The notebooks' checked exercises, run the way the bertqa kernel runs them (tslab's executor, in this process) but
// only their own cells: the parameters cell, the cell that imports "./lib", then the cells tagged `exercise-setup`,
// `exercise` (the student's function, solution between // BEGIN SOLUTION and // END SOLUTION) and `exercise-check`.
// Each check must pass with the solution and fail, with a message naming what was expected and what came back, both
// with the student's copy (`run-notebooks.js --student`) and with a plausible wrong solution: no check passes by accident.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const NB_DIR = path.join(ROOT, "notebooks");
const runner = require("../lib/cli/run-notebooks.js") as {
  disableTypeScriptWatchers(): void;
  studentCopy(nb: { cells: Cell[] }): number;
};

interface Cell { cell_type: string; metadata: { tags?: string[] }; source: string | string[] }
interface Notebook { cells: Cell[] }
const text = (c: Cell) => (Array.isArray(c.source) ? c.source.join("") : c.source);
const tagged = (c: Cell, tag: string) => c.cell_type === "code" && (c.metadata.tags ?? []).includes(tag);
const SOLUTION = /^[ \t]*\/\/ BEGIN SOLUTION[^\n]*\n[\s\S]*?^[ \t]*\/\/ END SOLUTION[^\n]*\n/m;

// Mistakes a student could make, one per exercise function: each must make its check throw.
const WRONG: Record<string, string> = {
  // counts unanswerable questions as answers of 0 words
  myAnswerLengths: `for (const e of examples) {
    const n = (e.answers[0]?.text ?? "").split(/\\s+/).filter((w) => w !== "").length;
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }`,
  // the token that contains charIndex, but [start, end] closed: the character after a token is given to it
  myCharToToken: `for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i];
    if (o !== null && o[0] <= charIndex && charIndex <= o[1]) return i;
  }`,
  // forgets the 1/√d scaling
  myAttention: `const padding = tf.tensor1d(mask.map((m) => (m === 1 ? 0 : -1e9)));
  ctx = tf.matMul(tf.softmax(tf.matMul(q, k, false, true).add(padding)), v);`,
  // no warm-up: decays from baseLr at step 0
  myLearningRate: "lr = baseLr * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps));",
  // keeps the articles
  myNormalize: `const PUNCT = new Set("!\\"#$%&'()*+,-./:;<=>?@[\\\\]^_\`{|}~");
  out = [...s.toLowerCase()].filter((c) => !PUNCT.has(c)).join("").split(/\\s+/).filter((w) => w !== "").join(" ");`,
  // counts a repeated predicted word once per occurrence even when the gold answer has it fewer times
  myF1: `const g = normalizeAnswer(gold).split(" ").filter((t) => t !== ""), p = normalizeAnswer(pred).split(" ").filter((t) => t !== "");
  const same = p.filter((t) => g.includes(t)).length;
  if (g.length === 0 || p.length === 0) f1 = g.length === p.length ? 1 : 0;
  else if (same > 0) f1 = (2 * (same / p.length) * (same / g.length)) / (same / p.length + same / g.length);`,
  // macro-F1 averaged over the labels that occur, not over all labels
  myScores: `const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const tp = matrix.map((row, c) => row[c]), occurs = matrix.map((row, c) => sum(row) + sum(matrix.map((r) => r[c])) > 0);
  accuracy = (100 * sum(tp)) / sum(matrix.map(sum));
  const f1s = tp.map((t, c) => (occurs[c] ? (2 * t) / (sum(matrix[c]) + sum(matrix.map((r) => r[c]))) : 0));
  f1 = (100 * sum(f1s)) / occurs.filter((o) => o).length;`,
  // the longest common subsequence (tokens in order, gaps allowed) instead of the longest common substring
  myCmrcF1: `const L = gold.map(() => new Array<number>(pred.length + 1).fill(0));
  L.push(new Array<number>(pred.length + 1).fill(0));
  for (let i = 1; i <= gold.length; i++) for (let j = 1; j <= pred.length; j++) {
    L[i][j] = gold[i - 1] === pred[j - 1] ? L[i - 1][j - 1] + 1 : Math.max(L[i - 1][j], L[i][j - 1]);
  }
  const lcs = L[gold.length][pred.length];
  if (lcs > 0) f1 = (2 * (lcs / pred.length) * (lcs / gold.length)) / (lcs / pred.length + lcs / gold.length);`,
};

const notebooks = fs.readdirSync(NB_DIR).filter((f) => /^\d\d-.*\.ipynb$/.test(f)).sort();
const readNotebook = (f: string) => JSON.parse(fs.readFileSync(path.join(NB_DIR, f), "utf8")) as Notebook;
const exerciseFunction = (src: string) => src.match(/function (my\w+)\(/)?.[1];

test("notebooks 01 to 07 each end with a checked exercise: a function to write, then a cell that checks it", () => {
  for (const file of notebooks) {
    const cells = readNotebook(file).cells;
    const i = cells.findIndex((c) => tagged(c, "exercise") && SOLUTION.test(text(c)));
    assert.ok(i >= 0, `${file}: no cell tagged "exercise" with a // BEGIN SOLUTION … // END SOLUTION block`);
    assert.ok(tagged(cells[i + 1], "exercise-check"), `${file}: the cell after the exercise must be its check (tag "exercise-check")`);
    for (const c of cells.filter((c) => tagged(c, "exercise"))) {
      const name = exerciseFunction(text(c));
      if (SOLUTION.test(text(c))) assert.ok(name !== undefined && WRONG[name] !== undefined, `${file}: add a wrong solution for ${name} to this test`);
    }
  }
});

/** tslab's executor over one shared compiler (compiling lib/ once), each notebook in a fresh set of cell variables. */
function tslabSession() {
  runner.disableTypeScriptWatchers();
  const { createConverter } = require("tslab/dist/converter.js");
  const { createExecutor } = require("tslab/dist/executor.js");
  require("tslab/dist/jupyter.js").lastWriteDisplayData = () => {}; // show*() outputs go nowhere
  const conv = createConverter({ isJS: false, isBrowser: false });
  const errors: string[] = [];
  const newExecutor = () => createExecutor(ROOT, { node: conv, browser: conv, close: () => {} }, {
    log: () => {},
    error: (...a: unknown[]) => errors.push(a.map(String).join(" ")),
  }) as { execute(src: string): Promise<boolean>; close(): void };
  return { newExecutor, errors, close: () => conv.close() };
}

test("each check passes with the solution and fails with the student's copy and with a wrong solution", { timeout: 600_000 }, async () => {
  const cwd = process.cwd();
  process.chdir(ROOT); // tslab compiles files under its cwd; the bertqa kernel starts at the repository root
  const session = tslabSession();
  const outcomes: string[] = [];
  try {
    for (const file of notebooks) {
      const nb = readNotebook(file);
      const student = readNotebook(file);
      runner.studentCopy(student);
      const exec = session.newExecutor();
      const run = async (src: string, what: string, expectOk: boolean) => {
        session.errors.length = 0;
        const ok = await exec.execute(src);
        const error = session.errors.join("\n");
        if (expectOk) assert.ok(ok, `${file}, ${what}: failed\n${error.split("\n").slice(0, 8).join("\n")}`);
        return { ok, error };
      };
      const importCells = nb.cells.filter((c) => c.cell_type === "code" && /from "\.\/lib"/.test(text(c)));
      const exerciseCells = nb.cells.map((c, i) => ({ c, i })).filter(({ c }) => ["exercise-setup", "exercise", "exercise-check"].some((t) => tagged(c, t)));
      if (exerciseCells.length === 0) continue;
      await run(text(nb.cells[0]), "the parameters cell", true);
      for (const c of importCells) await run(text(c), "the import cell", true);
      for (const [n, { c, i }] of exerciseCells.entries()) {
        await run(text(c), `cell ${i}`, true);
        if (!tagged(c, "exercise") || !SOLUTION.test(text(c))) continue;
        const checks = exerciseCells.slice(n + 1).filter((x) => tagged(x.c, "exercise-check"));
        const check = checks[0];
        assert.ok(check !== undefined, `${file}: cell ${i} has no check cell after it`);
        await run(text(check.c), `the check (cell ${check.i}) with the solution`, true);
        const name = exerciseFunction(text(c))!;
        const wrong = text(c).replace(SOLUTION, `// BEGIN SOLUTION\n  ${WRONG[name]}\n  // END SOLUTION\n`);
        for (const [variant, src] of [["the student's copy", text(student.cells[i])], [`a wrong ${name}`, wrong]]) {
          await run(src, `cell ${i} (${variant})`, true);
          const r = await run(text(check.c), `the check with ${variant}`, false);
          assert.equal(r.ok, false, `${file}: the check of ${name} passes with ${variant}`);
          assert.match(r.error, /Error: .*expected[\s\S]*got /, `${file}: the check of ${name} fails without saying what it expected and got:\n${r.error.slice(0, 500)}`);
          outcomes.push(`${file} ${name} with ${variant}: ${r.error.split("\n").find((l) => l.startsWith("Error: "))}`);
        }
        await run(text(c), `cell ${i} (the solution again)`, true); // later exercises may call this one
      }
      exec.close();
    }
  } finally {
    session.close();
    process.chdir(cwd);
  }
  if (process.env.BERTQA_SHOW_EXERCISE_ERRORS) console.log(outcomes.join("\n"));
  assert.ok(outcomes.length >= 14, `${outcomes.length} failing variants checked`);
});
