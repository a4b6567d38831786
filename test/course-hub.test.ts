// A class on one JupyterHub (Debian's jupyterhub, npm's configurable-http-proxy), set up by `bertqa course setup`,
// on 127.0.0.1: three students log in through the hub's API and run notebooks 01 and 04 at once over the kernel
// websockets (test/hub_driver.ts). Checked: every cell ran, and only a check cell of an exercise the student did not
// solve failed; each student's kernel ran in their own folder (and cgroup) and wrote only there; the teacher's
// notebooks and handout are unchanged. One student's kernel is killed during training: the other two finish, and that
// student's checkpoint is intact and resumes. Where the machine has cgroups, the same student's runaway cell is ended
// by their memory limit while the others' servers keep answering. Then `bertqa course status` and `grade` (which must
// agree with what the checks printed live), and the hub's shutdown ends every process and cgroup of the course.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { courseProcesses, nodeArgs, ROOT, startHub, stopHub, type Hub } from "./hub_client";
import { PLAN, NOTEBOOKS } from "./hub_driver";
import { cgroupV1Mounts } from "../lib/course/limits";
import type { CheckResult } from "../lib/course/grade";

const STUDENTS = Object.keys(PLAN);
const STEPS = 16; // BERTQA_TRAIN_STEPS: 04 trains 6 steps in section 3, resumes to 16 in section 4
const MEM_LIMIT = "2G"; // a student running 04 peaks near 1 GB (test/bench/course.bench.ts)
const BERTQA = path.join(ROOT, "lib", "cli", "bertqa.js");

const hasHub = spawnSync("jupyterhub", ["--version"], { encoding: "utf8" }).status === 0;
/** Can this process make memory cgroups (cgroup v1 mounted, writable)? Then limits are enforced and tested. */
function memoryCgroups(): boolean {
  const m = cgroupV1Mounts(fs.readFileSync("/proc/self/mountinfo", "utf8")).get("memory");
  if (m === undefined) return false;
  try {
    fs.accessSync(m.mount, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** sha256 of each file under `dir` (the teacher's notebooks and handout must come out as they went in). */
function hashes(dir: string): Record<string, string> {
  if (!fs.existsSync(dir)) return {};
  return Object.fromEntries(fs.readdirSync(dir, { recursive: true }).map(String).sort()
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .map((f) => [f, crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, f))).digest("hex")]));
}

interface CellReport { cell: number; status: string; check: boolean; said: string }
interface StudentReport {
  student: string; kernel_01?: { cwd: string; cgroup: string }; kernel_04?: { cwd: string; cgroup: string };
  "01": { cells: CellReport[] }; "04": { cells: CellReport[]; killed_at_step?: number; stop_at?: number; after_restart?: CellReport[] };
  hog?: { status: string; after: string };
}

test("a class of three on one JupyterHub: notebooks 01 and 04 at once, a kernel killed mid-training resumes, limits, grades, nothing left running",
  { skip: hasHub ? false : "JupyterHub is not installed (apt-get install jupyterhub)", timeout: 15 * 60_000 }, async () => {
    const course = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-course-"));
    const hog = memoryCgroups();
    const teacherBefore = { notebooks: hashes(path.join(ROOT, "notebooks")), runs: hashes(path.join(ROOT, "runs")) };
    const t0 = Date.now();
    let hub: Hub | undefined;
    try {
      hub = await startHub({ course, students: STUDENTS, password: "class-of-3", memLimit: MEM_LIMIT, env: { BERTQA_TRAIN_STEPS: String(STEPS), BERTQA_PROFILE: "offline" } });
      const handoutBefore = hashes(path.join(course, "handout"));
      const driver = spawnSync(process.execPath, [...nodeArgs(), path.join(ROOT, "test", "hub_driver.ts"), hub.url, "class-of-3", String(STEPS), ...(hog ? ["--hog"] : [])],
        { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20, timeout: 12 * 60_000 });
      assert.equal(driver.status, 0, `the driver failed:\n${driver.stderr.slice(-3000)}\nhub log:\n${hub.log().slice(-3000)}`);
      const reports = (JSON.parse(driver.stdout.trim().split("\n").pop()!) as { students: StudentReport[] }).students;
      const byName = Object.fromEntries(reports.map((r) => [r.student, r]));

      // Every cell ran; a failed cell is a check of an exercise left wrong or unstarted, with the check's own message.
      const live: Record<string, Record<string, CellReport>> = {};
      for (const name of STUDENTS) {
        const r = byName[name], plan = PLAN[name];
        live[name] = {};
        for (const key of ["01", "04"] as const) {
          const cells = key === "04" && plan.killed ? r["04"].after_restart! : r[key].cells;
          const nb = JSON.parse(fs.readFileSync(path.join(course, "handout", NOTEBOOKS[key]), "utf8")) as { cells: { cell_type: string }[] };
          if (!(key === "04" && plan.killed)) assert.equal(cells.length, nb.cells.filter((c) => c.cell_type === "code").length, `${name} ${key}: every code cell ran`);
          for (const c of cells.filter((c) => !c.check)) assert.equal(c.status, "ok", `${name} ${key} cell ${c.cell}: ${c.said}`);
          const check = cells.find((c) => c.check)!;
          assert.equal(check.status, plan[key] === "solution" ? "ok" : "error", `${name} ${key}: the check (${plan[key]}): ${check.said}`);
          live[name][key] = check;
        }
        for (const key of ["kernel_01", "kernel_04"] as const) {
          assert.equal(r[key]?.cwd, path.join(course, "students", name, "bert-qa-workbook"), `${name}: the kernel ran in the student's own copy`);
          if (hog) assert.match(r[key]!.cgroup, new RegExp(`/bertqa-course-[0-9a-f]+/${name}$`), `${name}: the kernel is in the student's cgroup`);
        }
      }

      // The killed student: the kernel died mid-way through section 4, the checkpoint of section 3 survived and the
      // resume cell (after the set-up cells) trained to the end from it.
      const carol = STUDENTS.find((n) => PLAN[n].killed)!;
      const k = byName[carol]["04"];
      const died = k.cells[k.cells.length - 1];
      assert.equal(died.status, "died", `${carol}'s kernel was killed in a cell`);
      assert.ok(k.killed_at_step! > k.stop_at! && k.killed_at_step! < STEPS, `killed mid-training (at step ${k.killed_at_step})`);
      const resumed = k.after_restart!.find((c) => c.cell === died.cell)!;
      assert.equal(resumed.status, "ok", `the resume cell after the restart: ${resumed.said}`);
      for (const name of STUDENTS) {
        const ws = path.join(course, "students", name, "bert-qa-workbook");
        const state = JSON.parse(fs.readFileSync(path.join(ws, "runs", "notebook-04-offline", "checkpoint", "trainer_state.json"), "utf8"));
        assert.equal(state.step, STEPS, `${name}: the run reached its last step`);
        const steps = fs.readFileSync(path.join(ws, "runs", "notebook-04-offline", "metrics.jsonl"), "utf8").trim().split("\n")
          .map((l) => JSON.parse(l)).filter((m) => m.loss !== undefined).map((m) => m.step);
        assert.deepEqual(steps, [...new Set(steps)].sort((a, b) => a - b), `${name}: the log has each step once, in order (a resume cuts it back to the checkpoint)`);
        assert.ok(fs.existsSync(path.join(ws, "runs", "notebook-04-offline", "model.safetensors")), `${name}: the trained model is in the student's folder`);
      }

      // The runaway cell: ended by that student's memory limit; the others' kernels were not touched.
      if (hog) {
        assert.equal(byName[carol].hog?.status, "died", "the cell that eats memory ends with the kernel");
        assert.equal(byName[carol].hog?.after, "42", "the restarted kernel runs the next cell");
      }

      // The teacher's view while the servers run
      const status = spawnSync(process.execPath, [BERTQA, "course", "status", "--course", course], { encoding: "utf8" });
      assert.equal(status.status, 0, status.stderr);
      const st = JSON.parse(status.stdout) as { students: { student: string; processes: number[]; oom_kills: number | null; memory_limit_bytes: number | null; memory_peak_bytes: number | null; runs: { state: string; checkpoint_step: number }[] }[] };
      assert.deepEqual(st.students.map((s) => s.student), STUDENTS);
      for (const s of st.students) {
        assert.ok(s.processes.length >= 1, `${s.student}: the server is running`);
        assert.deepEqual(s.runs.map((r) => [r.state, r.checkpoint_step]), [["finished", STEPS]]);
        if (hog) {
          assert.equal(s.memory_limit_bytes, 2 * 1024 ** 3, `${s.student}: the memory limit is applied`);
          assert.equal(s.oom_kills, s.student === carol ? 1 : 0, `${s.student}: OOM kills`);
        }
      }
      process.stderr.write(`course-hub test: status\n${status.stderr}`);

      // Grades: the teacher's checks on each student's saved exercise, as the checks said live
      const graded = spawnSync(process.execPath, [BERTQA, "course", "grade", "--course", course, "--only", "01,04", "--quiet"], { encoding: "utf8" });
      assert.equal(graded.status, 0, graded.stderr);
      const grades = (JSON.parse(graded.stdout) as { students: Record<string, CheckResult[]> }).students;
      const want = { solution: "pass", wrong: "fail", "as handed out": "not started" } as const;
      for (const name of STUDENTS) {
        assert.deepEqual(grades[name].map((g) => [g.notebook.slice(0, 2), g.status]), [["01", want[PLAN[name]["01"]]], ["04", want[PLAN[name]["04"]]]], name);
        for (const g of grades[name].filter((g) => g.status === "pass" || g.status === "fail")) {
          assert.equal(g.message, live[name][g.notebook.slice(0, 2)].said, `${name} ${g.notebook}: the grade says what the check said live`);
        }
      }
      assert.ok(fs.existsSync(path.join(course, "grades.json")) && fs.existsSync(path.join(course, "grades.md")));
      process.stderr.write(`course-hub test: grades\n${graded.stderr}`);

      // Each student's files in their own folder only; the teacher's copy as it was
      assert.deepEqual(hashes(path.join(ROOT, "notebooks")), teacherBefore.notebooks, "the install's notebooks are unchanged");
      assert.deepEqual(hashes(path.join(ROOT, "runs")), teacherBefore.runs, "nothing was trained into the install");
      assert.deepEqual(hashes(path.join(course, "handout")), handoutBefore, "the handout is unchanged");
      for (const name of STUDENTS) {
        const mine = fs.readdirSync(path.join(course, "students", name, "bert-qa-workbook", "runs"));
        assert.deepEqual(mine, ["notebook-04-offline"], `${name}: their run, in their folder`);
        const saved = fs.readFileSync(path.join(course, "students", name, "bert-qa-workbook", "notebooks", NOTEBOOKS["04"]), "utf8");
        assert.equal(saved.includes("step < warmupSteps ? (baseLr * step) / warmupSteps : baseLr"), PLAN[name]["04"] === "wrong", `${name}: only bob's copy holds bob's wrong answer`);
      }
      process.stderr.write(`course-hub test: ${((Date.now() - t0) / 1000).toFixed(0)} s with the hub up\n`);
    } finally {
      // The hub's shutdown stops the servers (their kernels with them) and the proxy; its post_stop_hook ends leftovers.
      const stopped = hub === undefined ? true : await stopHub(hub);
      const left = hub === undefined ? [] : courseProcesses(course, hub.proc.pid);
      for (const pid of left) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
      const cgroups = fs.existsSync(path.join(course, "roster")) ? fs.readdirSync(path.join(course, "roster"))
        .flatMap((f) => Object.values((JSON.parse(fs.readFileSync(path.join(course, "roster", f), "utf8")) as { cgroups: Record<string, string> }).cgroups))
        .filter((d) => fs.existsSync(d)) : [];
      assert.ok(stopped, "the hub stopped on SIGTERM");
      assert.deepEqual(left, [], "no process of the course is left (hub, proxy, servers, kernels)");
      assert.deepEqual(cgroups, [], "the students' cgroups are removed");
      fs.rmSync(course, { recursive: true, force: true });
    }
  });
