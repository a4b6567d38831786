// Grading a course: each student's checked exercises (notebooks/README.md, "For teachers") run against the teacher's
// checks, as nbgrader's autograde does: the cells come from the handout (parameters, the import of "./lib", the cells
// tagged `exercise-setup` and `exercise-check`), only the cells tagged `exercise` come from the student's notebook,
// so editing a check cannot make it pass. The same tags and `// BEGIN SOLUTION` markers as nbgrader's conventions,
// not its metadata (no nbgrader install needed).
//
// Each student's notebooks run in a child process of their own (as the owner of the workspace when run as root, in
// that workspace, as the bertqa kernel would), so one student's code cannot change another's result; an exercise whose
// code runs past the timeout (an endless loop) fails with "timed out", and the next notebook starts in a fresh process.
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn } from "node:child_process";

export type CheckStatus = "pass" | "fail" | "not started" | "missing" | "error";
export interface CheckResult {
  notebook: string;
  exercise: string; // the function the student writes
  status: CheckStatus; // pass: the check's ✔ line; fail: what the check said; not started: the handout's placeholder
  message: string; //   as handed out; missing: no such notebook or cell; error: the teacher's own cells failed
}

interface Cell { cell_type: string; metadata?: { tags?: string[] }; source: string | string[] }
interface Notebook { cells: Cell[] }
const text = (c: Cell) => (Array.isArray(c.source) ? c.source.join("") : c.source);
const tagged = (c: Cell, tag: string) => c.cell_type === "code" && (c.metadata?.tags ?? []).includes(tag);
const exerciseName = (src: string) => src.match(/function (my\w+)\(/)?.[1] ?? "exercise";

/** One step of grading a notebook: a teacher's cell, or the student's k-th exercise followed by the teacher's check. */
export type GradingStep =
  | { kind: "setup"; source: string }
  | { kind: "exercise"; name: string; handout: string; student: string | undefined; check: string };

/**
 * The cells to run for one notebook, in order: the handout's parameters cell, its import cells and its
 * `exercise-setup` cells, and for each `exercise` cell the student's version (the k-th tagged cell, else the cell that
 * defines the same function) with the handout's `exercise-check` after it.
 */
export function gradingSteps(handout: Notebook, student: Notebook | undefined): GradingStep[] {
  const steps: GradingStep[] = [];
  const code = handout.cells.filter((c) => c.cell_type === "code");
  if (code.length === 0) return steps;
  const studentExercises = (student?.cells ?? []).filter((c) => tagged(c, "exercise"));
  let k = 0;
  handout.cells.forEach((c, i) => {
    if (c === code[0] || (c.cell_type === "code" && /from "\.\/lib"/.test(text(c))) || tagged(c, "exercise-setup")) {
      steps.push({ kind: "setup", source: text(c) });
    } else if (tagged(c, "exercise")) {
      const name = exerciseName(text(c));
      const check = handout.cells.slice(i + 1).find((x) => tagged(x, "exercise-check"));
      const byTag = studentExercises[k++];
      const mine = byTag !== undefined && exerciseName(text(byTag)) === name ? byTag : student?.cells.find((x) => x.cell_type === "code" && exerciseName(text(x)) === name);
      if (check !== undefined) steps.push({ kind: "exercise", name, handout: text(c), student: mine === undefined ? undefined : text(mine), check: text(check) });
    }
  });
  return steps;
}

/** The first line worth showing of a check's HTML output or error: tags and "Error: " dropped, at most 200 characters. */
export function firstLine(s: string): string {
  const lines = s.replace(/<[^>]+>/g, "").split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const line = lines.find((l) => /^(\w*Error|✔)/.test(l)) ?? lines[0] ?? "";
  const cut = line.replace(/^\w*Error: /, "");
  return cut.length > 200 ? cut.slice(0, 199) + "…" : cut;
}

type WorkerLine = CheckResult | { start: string } | { exercise: string } | { done: true };
// The worker reports on a file descriptor of its own: what a student's code prints to stdout cannot pass for a result.
const RESULTS_FD = 3;

/** Run the grading steps of `notebooks` inside `workspace` (this process's cwd), printing one JSON line per check. */
async function gradeHere(handoutDir: string, notebooks: string[]): Promise<void> {
  const runner = require("../cli/run-notebooks.js") as { disableTypeScriptWatchers(): void };
  runner.disableTypeScriptWatchers();
  const jupyter = require("tslab/dist/jupyter.js") as { lastWriteDisplayData: unknown };
  const { createConverter } = require("tslab/dist/converter.js");
  const { createExecutor } = require("tslab/dist/executor.js");
  const conv = createConverter({ isJS: false, isBrowser: false });
  const out: string[] = [];
  jupyter.lastWriteDisplayData = (d: { data: Record<string, string> }) => out.push(d.data["text/html"] ?? d.data["text/plain"] ?? "");
  const emit = (r: WorkerLine) => fs.writeSync(RESULTS_FD, JSON.stringify(r) + "\n");
  for (const nb of notebooks) {
    emit({ start: nb });
    const handout = JSON.parse(fs.readFileSync(path.join(handoutDir, nb), "utf8")) as Notebook;
    const mineFile = path.join("notebooks", nb);
    const student = fs.existsSync(mineFile) ? (JSON.parse(fs.readFileSync(mineFile, "utf8")) as Notebook) : undefined;
    const exec = createExecutor(process.cwd(), { node: conv, browser: conv, close: () => {} }, {
      log: (...a: unknown[]) => out.push(a.map(String).join(" ")),
      error: (...a: unknown[]) => out.push(a.map((x) => (x instanceof Error ? `${x.name}: ${x.message}` : String(x))).join(" ")),
    }) as { execute(src: string): Promise<boolean>; close(): void };
    const run = async (src: string) => {
      out.length = 0;
      const ok = await exec.execute(src);
      return { ok, said: firstLine(out.join("\n")) };
    };
    let setupFailed: string | undefined;
    for (const step of gradingSteps(handout, student)) {
      if (step.kind === "setup") {
        if (setupFailed === undefined) {
          const r = await run(step.source);
          if (!r.ok) setupFailed = r.said;
        }
        continue;
      }
      const result = (status: CheckStatus, message: string) => emit({ notebook: nb, exercise: step.name, status, message });
      if (student === undefined) result("missing", `no ${mineFile} in the student's folder`);
      else if (step.student === undefined) result("missing", `no cell defines ${step.name} in ${mineFile}`);
      else if (setupFailed !== undefined) result("error", `the teacher's cells before the check failed: ${setupFailed}`);
      else if (step.student.trim() === step.handout.trim()) result("not started", "the cell is as handed out");
      else {
        emit({ exercise: step.name }); // the student's code runs from here to the result: the timeout counts
        const cell = await run(step.student);
        if (!cell.ok) result("fail", `the exercise cell does not run: ${cell.said}`);
        else {
          const check = await run(step.check);
          result(check.ok ? "pass" : "fail", check.said);
        }
      }
    }
    exec.close();
  }
  conv.close();
  emit({ done: true });
}

export interface StudentToGrade { student: string; workspace: string }

/**
 * Grade one student's `notebooks` in a child process (a fresh one after a notebook that timed out or ended the
 * process); as the owner of the workspace when this process is root. Results in notebook order, one per exercise.
 */
export async function gradeStudent(s: StudentToGrade, handoutDir: string, notebooks: string[], timeoutS: number): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  let todo = [...notebooks];
  while (todo.length > 0) {
    const w = await runWorker(s.workspace, handoutDir, todo, timeoutS);
    results.push(...w.results);
    if (w.ended === undefined) break;
    // the exercise in progress timed out or ended the process: it fails, the rest of its notebook is not graded
    const current = w.started[w.started.length - 1] ?? todo[0];
    const handout = JSON.parse(fs.readFileSync(path.join(handoutDir, current), "utf8")) as Notebook;
    let first = true;
    for (const step of gradingSteps(handout, undefined)) {
      if (step.kind === "exercise" && !results.some((r) => r.notebook === current && r.exercise === step.name)) {
        results.push({ notebook: current, exercise: step.name, status: "fail", message: first ? w.ended : `not graded: an exercise before it ${w.ended}` });
        first = false;
      }
    }
    todo = todo.slice(todo.indexOf(current) + 1);
  }
  return results;
}

/**
 * One grading process; `ended` says why it stopped before the end (undefined: it graded every notebook). The timeout
 * runs while a student's code does (their exercise cell and the check that calls it), not while the library compiles.
 */
function runWorker(workspace: string, handoutDir: string, notebooks: string[], timeoutS: number) {
  return new Promise<{ results: CheckResult[]; started: string[]; ended?: string }>((resolve) => {
    const st = fs.statSync(workspace);
    const asOwner = process.getuid?.() === 0 && st.uid !== 0 ? { uid: st.uid, gid: st.gid } : {};
    const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), __filename, "--worker", handoutDir, ...notebooks], {
      cwd: workspace, stdio: ["ignore", "ignore", "pipe", "pipe"], ...asOwner,
    });
    const reports = child.stdio[RESULTS_FD] as NodeJS.ReadableStream;
    const results: CheckResult[] = [], started: string[] = [];
    let buffered = "", stderr = "", finished = false, timedOut = false, timer: NodeJS.Timeout | undefined;
    reports.on("data", (d) => {
      buffered += d;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines.filter((l) => l.startsWith("{"))) {
        const msg = JSON.parse(line) as WorkerLine;
        clearTimeout(timer);
        if ("exercise" in msg && !("status" in msg)) {
          timer = setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, timeoutS * 1000);
        } else if ("start" in msg) started.push(msg.start);
        else if ("done" in msg) finished = true;
        else results.push(msg);
      }
    });
    child.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      const last = stderr.trim().split("\n").slice(-1)[0];
      const ended = finished ? undefined : timedOut ? `timed out after ${timeoutS} s (an endless loop?)`
        : `the grading process ended during this notebook (${last || (sig ?? `exit code ${code}`)})`;
      resolve({ results, started, ended });
    });
  });
}

/** A table a teacher reads: one row per student, one column per exercise (✔ pass, ✘ fail, · not started, – missing). */
export function gradeTable(grades: Record<string, CheckResult[]>): string {
  const mark: Record<CheckStatus, string> = { pass: "✔", fail: "✘", "not started": "·", missing: "–", error: "!" };
  const columns = [...new Map(Object.values(grades).flat().map((r) => [`${r.notebook.slice(0, 2)} ${r.exercise}`, 0])).keys()];
  const header = ["student", ...columns, "passed"];
  const rows = Object.entries(grades).map(([student, results]) => {
    const by = new Map(results.map((r) => [`${r.notebook.slice(0, 2)} ${r.exercise}`, r]));
    return [student, ...columns.map((c) => (by.has(c) ? mark[by.get(c)!.status] : "")), `${results.filter((r) => r.status === "pass").length}/${results.length}`];
  });
  return [header, header.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n") +
    "\n\n✔ passes its check, ✘ fails it (grades.json says how), · not started, – missing, ! the teacher's cells failed\n";
}

if (require.main === module && process.argv[2] === "--worker") {
  gradeHere(process.argv[3], process.argv.slice(4)).then(() => process.exit(0), (e) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
