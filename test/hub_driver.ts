// Three students on a course's hub at once, as their browsers would: each logs in through the hub's API, starts a
// server, writes (or not) the checked exercises of notebooks 01 and 04 and saves them, then runs every cell of 01 and
// of 04 over the kernel websocket. One student's kernel is killed (SIGKILL) while it trains; that student restarts
// from the notebook's resume cell, as after any kernel death. With --hog, that student then runs a cell that eats
// memory without end, which the student's memory limit must stop. Prints one JSON report on stdout.
//
//   node --experimental-websocket --import tsx test/hub_driver.ts HUB_URL PASSWORD STEPS [--hog]
// Run by test/course-hub.test.ts, which starts and ends the hub.
import * as fs from "node:fs";
import * as path from "node:path";
import { firstLine } from "../lib/course/grade";
import {
  cellSource, closeKernel, kernelProcess, login, openKernel, readNotebook, ROOT, runCell, saveNotebook, startServer, waitReady,
  type CellResult, type JupyterMessage, type Kernel, type Notebook, type Student,
} from "./hub_client";

type Exercise = "solution" | "wrong" | "as handed out";
/** What each student does: their exercise in 01 and 04, and whether their kernel dies during 04's training. */
export const PLAN: Record<string, { "01": Exercise; "04": Exercise; killed: boolean }> = {
  alice: { "01": "solution", "04": "solution", killed: false },
  bob: { "01": "solution", "04": "wrong", killed: false },
  carol: { "01": "as handed out", "04": "solution", killed: true },
};
export const NOTEBOOKS = { "01": "01-load-and-explore-squad.ipynb", "04": "04-train-on-the-gpu.ipynb" } as const;
const DIR = "bert-qa-workbook/notebooks";

const tagged = (c: Notebook["cells"][number], tag: string) => c.cell_type === "code" && (c.metadata.tags ?? []).includes(tag);
const SOLUTION = /^[ \t]*\/\/ BEGIN SOLUTION[^\n]*\n[\s\S]*?^[ \t]*\/\/ END SOLUTION[^\n]*\n/m;
// A plausible mistake in 04's exercise: the warm-up, but no decay after it.
const WRONG_LR = "// BEGIN SOLUTION\n  lr = step < warmupSteps ? (baseLr * step) / warmupSteps : baseLr;\n  // END SOLUTION\n";

/** The student edits the exercise cell of their copy: the teacher's solution, a wrong one, or nothing. */
function edit(nb: Notebook, nbKey: "01" | "04", what: Exercise): Notebook {
  if (what === "as handed out") return nb;
  const teacher = JSON.parse(fs.readFileSync(path.join(ROOT, "notebooks", NOTEBOOKS[nbKey]), "utf8")) as Notebook;
  const solution = cellSource(teacher.cells.find((c) => tagged(c, "exercise"))!);
  const cell = nb.cells.find((c) => tagged(c, "exercise"))!;
  cell.source = what === "solution" ? solution : solution.replace(SOLUTION, WRONG_LR);
  return nb;
}

interface CellReport { cell: number; status: CellResult["status"]; check: boolean; said: string; seconds: number }
/** What a cell said, as the grader reads it: a check's ✔ line, else the error's first line. */
const said = (r: CellResult) => firstLine(r.outputs.filter((o) => r.status === "ok" ? o.type === "display" : o.type === "error" || o.type === "stderr").map((o) => o.text).join("\n"));

/** Run `cells` in order; each report says how it ended. Stops after a cell that died. */
async function runCells(k: Kernel, nb: Notebook, indices: number[], onMessage?: (i: number, m: JupyterMessage) => void): Promise<CellReport[]> {
  const out: CellReport[] = [];
  for (const i of indices) {
    const r = await runCell(k, cellSource(nb.cells[i]), onMessage && ((m) => onMessage(i, m)));
    const check = tagged(nb.cells[i], "exercise-check");
    out.push({ cell: i, status: r.status, check, said: r.status === "ok" && !check ? "" : said(r), seconds: r.seconds });
    if (r.status === "died") break;
  }
  return out;
}

const codeCells = (nb: Notebook) => nb.cells.map((c, i) => (c.cell_type === "code" ? i : -1)).filter((i) => i >= 0);

async function student(hub: string, password: string, name: string, steps: number, hog: boolean) {
  const plan = PLAN[name];
  const report: Record<string, unknown> = { student: name, plan };
  const t0 = Date.now();
  const s: Student = await login(hub, name, password);
  await startServer(s);
  report.login_s = (Date.now() - t0) / 1000;
  for (const key of ["01", "04"] as const) {
    const file = `${DIR}/${NOTEBOOKS[key]}`;
    const nb = edit(await readNotebook(s, file), key, plan[key]);
    await saveNotebook(s, file, nb);
    const k = await openKernel(s, file);
    const proc = kernelProcess(k.id);
    report[`kernel_${key}`] = proc && { cwd: proc.cwd, cgroup: proc.cgroup };
    const cells = codeCells(nb);
    const t1 = Date.now();
    if (key === "04" && plan.killed) report["04"] = await killAndResume(k, nb, cells, steps, proc?.pid);
    else report[key] = { cells: await runCells(k, nb, cells) };
    (report[key] as { seconds: number }).seconds = (Date.now() - t1) / 1000;
    if (key === "04" && hog) report.hog = await runaway(k);
    await closeKernel(k);
  }
  return report;
}

/** 04 with the kernel killed in the resume cell once training is 2 steps past the first run's stop; then the resume. */
async function killAndResume(k: Kernel, nb: Notebook, cells: number[], steps: number, pid: number | undefined) {
  const stopAt = Math.round(0.375 * steps); // STOP_AT in 04's parameters cell
  const resumeCell = cells.find((i) => cellSource(nb.cells[i]).includes("resume: OUT_DIR"))!;
  let killedAt: number | undefined;
  const onMessage = (i: number, m: JupyterMessage) => {
    const html = ((m.content.data as Record<string, string> | undefined) ?? {})["text/html"] ?? "";
    const done = html.match(/<b>train<\/b>.*?\b(\d+)\/\d+ /s);
    if (i === resumeCell && killedAt === undefined && done && Number(done[1]) >= stopAt + 2 && pid !== undefined) {
      killedAt = Number(done[1]);
      process.kill(pid, "SIGKILL"); // as the OOM killer or a crash would end it
    }
  };
  const before = await runCells(k, nb, cells, onMessage);
  await waitReady(k); // the server restarts a kernel that died; the student runs the set-up cells, then section 4
  const setupCells = cells.filter((i) => i < cells[4]); // parameters, imports, backend, data and model recipe
  // from the resume cell on, but not section 5's chart: it marks where section 3's run (gone with the kernel) stopped
  const rest = cells.filter((i) => i >= resumeCell && !/\bfirst\./.test(cellSource(nb.cells[i])));
  const after = await runCells(k, nb, [...setupCells, ...rest]);
  return { cells: before, killed_at_step: killedAt, stop_at: stopAt, after_restart: after };
}

/** A cell that allocates memory without end: only the student's memory limit stops it (the kernel is killed). */
async function runaway(k: Kernel) {
  const r = await runCell(k, "const hog: Buffer[] = [];\nfor (;;) hog.push(Buffer.alloc(64 * 1024 * 1024, 1));", undefined, 120_000);
  await waitReady(k);
  return { status: r.status, seconds: r.seconds, after: (await runCell(k, "console.log(6 * 7)", undefined, 60_000)).outputs.map((o) => o.text).join("").trim() };
}

async function main() {
  const [hub, password, steps] = process.argv.slice(2);
  const hog = process.argv.includes("--hog");
  const students = await Promise.all(Object.keys(PLAN).map((n) => student(hub, password, n, Number(steps), hog && PLAN[n].killed)));
  console.log(JSON.stringify({ students }));
}

if (require.main === module) {
  main().then(() => process.exit(0), (e) => {
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  });
}
