// The course tooling without a hub (test/course-hub.test.ts runs the hub): a student's copy of the workbook and the
// merge rule for the teacher's updates, the per-student cgroups, JupyterHub's memory notation, grading.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { syncNotebooks, syncWorkspace, linkShared, runStates, SHARED_ENTRIES, WORKSPACE_DIR } from "../lib/course/workspace";
import { cgroupV1Mounts, ownCgroups, prepareStudent, reapStudent, studentPids, studentUsage } from "../lib/course/limits";
import { gradeStudent, gradingSteps } from "../lib/course/grade";
import { parseBytes } from "../lib/cli/course";

const ROOT = path.resolve(__dirname, "..");
const BERTQA = path.join(ROOT, "lib", "cli", "bertqa.js");
const runner = require("../lib/cli/run-notebooks.js") as { studentCopy(nb: unknown): number };
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));

interface Cell { cell_type: string; source: string; metadata: { tags?: string[] }; outputs?: unknown[] }
const notebook = (sources: string[]) => JSON.stringify({ cells: sources.map((s) => ({ cell_type: "code", source: s, metadata: {}, outputs: [] })), metadata: {}, nbformat: 4, nbformat_minor: 5 });
const readNb = (f: string) => JSON.parse(fs.readFileSync(f, "utf8")) as { cells: Cell[] };
const writeNb = (f: string, nb: unknown) => fs.writeFileSync(f, JSON.stringify(nb));

test("a teacher's update reaches a student's copy without overwriting the student's edits (nbgitpuller's rule)", () => {
  const handout = tmp("handout-"), ws = tmp("ws-");
  fs.mkdirSync(path.join(ws, "notebooks"));
  const put = (name: string, sources: string[]) => fs.writeFileSync(path.join(handout, name), notebook(sources));
  put("a.ipynb", ["let x = 1;"]);
  put("b.ipynb", ["let y = 1;"]);
  put("c.ipynb", ["let z = 1;"]);
  assert.deepEqual(syncNotebooks(handout, ws, "/course"), { "a.ipynb": "added", "b.ipynb": "added", "c.ipynb": "added" }, "first login: everything arrives");
  const mine = (n: string) => path.join(ws, "notebooks", n);
  // the student edits a, only runs b (outputs, an execution count), deletes c
  const a = readNb(mine("a.ipynb"));
  a.cells[0].source = "let x = 42; // mine";
  writeNb(mine("a.ipynb"), a);
  const b = readNb(mine("b.ipynb"));
  b.cells[0].outputs = [{ output_type: "stream", name: "stdout", text: "ran\n" }];
  writeNb(mine("b.ipynb"), b);
  fs.rmSync(mine("c.ipynb"));
  assert.deepEqual(syncNotebooks(handout, ws, "/course"), { "a.ipynb": "kept", "b.ipynb": "unchanged", "c.ipynb": "restored" }, "nothing new from the teacher");
  assert.deepEqual(readNb(mine("b.ipynb")).cells[0].outputs, [{ output_type: "stream", name: "stdout", text: "ran\n" }], "outputs of an unchanged notebook stay");
  // the teacher changes a and b and adds d
  put("a.ipynb", ["let x = 2; // teacher's fix"]);
  put("b.ipynb", ["let y = 2; // teacher's fix"]);
  put("d.ipynb", ["let w = 1;"]);
  assert.deepEqual(syncNotebooks(handout, ws, "/course"), { "a.ipynb": "kept", "b.ipynb": "updated", "c.ipynb": "unchanged", "d.ipynb": "added" });
  assert.equal(readNb(mine("a.ipynb")).cells[0].source, "let x = 42; // mine", "the student's edit is kept");
  assert.equal(readNb(mine("b.ipynb")).cells[0].source, "let y = 2; // teacher's fix", "the untouched notebook gets the fix");
  assert.equal(readNb(mine("d.ipynb")).cells[0].source, "let w = 1;", "a new notebook arrives");
  assert.equal(readNb(path.join(handout, "a.ipynb")).cells[0].source, "let x = 2; // teacher's fix", "the teacher's copy is never written");
  // a student who undoes their edit is back on the teacher's track
  const undo = readNb(mine("a.ipynb"));
  undo.cells[0].source = "let x = 1;";
  writeNb(mine("a.ipynb"), undo);
  assert.equal(syncNotebooks(handout, ws, "/course")["a.ipynb"], "updated");
  // a notebook the student broke (not JSON) counts as edited
  fs.writeFileSync(mine("d.ipynb"), "{ not json");
  put("d.ipynb", ["let w = 2;"]);
  assert.equal(syncNotebooks(handout, ws, "/course")["d.ipynb"], "kept");
  assert.equal(fs.readFileSync(mine("d.ipynb"), "utf8"), "{ not json");
});

test("a student's workspace links the install's library and data, holds its own notebooks and runs, and the kernel finds it", () => {
  const home = tmp("home-"), course = tmp("course-");
  fs.mkdirSync(path.join(course, "handout"));
  fs.writeFileSync(path.join(course, "handout", "01-x.ipynb"), notebook(["1"]));
  fs.mkdirSync(path.join(home, WORKSPACE_DIR, "data"), { recursive: true }); // the student's own folder where a link goes
  const r = syncWorkspace(ROOT, path.join(course, "handout"), home, course);
  const ws = path.join(home, WORKSPACE_DIR);
  assert.equal(r.workspace, ws);
  for (const e of SHARED_ENTRIES.filter((e) => e !== "data")) {
    assert.equal(fs.readlinkSync(path.join(ws, e)), path.join(ROOT, e), e);
    assert.equal(r.links[e], "linked");
  }
  assert.equal(r.links.data, "in the way", "a student's own folder is never replaced");
  assert.ok(fs.lstatSync(path.join(ws, "data")).isDirectory() && !fs.lstatSync(path.join(ws, "data")).isSymbolicLink());
  assert.ok(fs.existsSync(path.join(ws, "test", "fixtures", "metrics", "squad-pairs.json")), "notebooks 05 and 07 read test/fixtures/ relative to the root");
  assert.ok(!fs.existsSync(path.join(ws, "test", "course.test.ts")), "only the fixtures, not the tests");
  const findRepoRoot = (require("../lib/cli/run-notebooks.js") as { findRepoRoot(d: string): string | null }).findRepoRoot;
  assert.equal(findRepoRoot(path.join(ws, "notebooks")), ws, "the bertqa kernel starts in the student's copy, not the install");
  // the install moved: links follow on the next sync
  const moved = tmp("install-");
  assert.equal(linkShared(moved, ws).lib, "relinked");
  assert.equal(fs.readlinkSync(path.join(ws, "lib")), path.join(moved, "lib"));
});

test("a run's state for the teacher: training, killed (its lock's process is gone), stopped or finished", () => {
  const ws = tmp("ws-");
  const run = (name: string, step: number | null, total: number, lockPid?: number) => {
    const dir = path.join(ws, "runs", name);
    fs.mkdirSync(path.join(dir, "checkpoint"), { recursive: true });
    if (step !== null) fs.writeFileSync(path.join(dir, "checkpoint", "trainer_state.json"), JSON.stringify({ step, total_steps: total }));
    if (lockPid !== undefined) fs.writeFileSync(path.join(dir, ".bertqa.lock"), JSON.stringify({ pid: lockPid }));
  };
  run("a", 6, 16, 111);
  run("b", 6, 16, 222);
  run("c", 6, 16);
  run("d", 16, 16);
  run("e", null, 16);
  const states = runStates(ws, (pid) => pid === 111);
  assert.deepEqual(states.map((s) => [s.run, s.state, s.checkpoint_step]), [
    ["runs/a", "training", 6], ["runs/b", "killed", 6], ["runs/c", "stopped", 6], ["runs/d", "finished", 16], ["runs/e", "no checkpoint", null]]);
});

test("cgroup v1 mounts and this process's groups are read from /proc as the kernel writes them", () => {
  const mountinfo = [
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
    "35 31 0:32 /process_api /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    "40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
    "41 23 0:38 / /mnt/with\\040space rw - cgroup cgroup rw,pids",
  ].join("\n");
  const m = cgroupV1Mounts(mountinfo);
  assert.deepEqual(m.get("cpu"), { mount: "/sys/fs/cgroup/cpu,cpuacct", root: "/" });
  assert.deepEqual(m.get("memory"), { mount: "/sys/fs/cgroup/memory", root: "/process_api" });
  assert.deepEqual(m.get("pids"), { mount: "/mnt/with space", root: "/" }, "octal escapes in mount points");
  assert.equal(m.has("cgroup2"), false);
  const own = ownCgroups("9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/user.slice\n0::/\n");
  assert.equal(own.get("memory"), "/process_api/abc");
  assert.equal(own.get("cpuacct"), "/user.slice");
  assert.equal(own.has(""), false);
});

test("memory limits in JupyterHub's notation mean what JupyterHub's own parser says", (t) => {
  const values = ["2G", "1536M", "512K", "1.5G", "1T", "4096"]; // a plain number is bytes (JupyterHub: an int, as the hook passes it)
  const py = spawnSync("/usr/bin/python3", ["-c", "import json, sys\nfrom jupyterhub.traitlets import ByteSpecification\n" +
    "print(json.dumps([ByteSpecification().validate(None, int(v) if v.isdigit() else v) for v in sys.argv[1:]]))", ...values], { encoding: "utf8" });
  if (py.status !== 0) return t.skip("JupyterHub is not installed (apt-get install jupyterhub)");
  assert.deepEqual(values.map((v) => parseBytes(v, "mem-limit")), JSON.parse(py.stdout));
  assert.throws(() => parseBytes("2 gigs", "mem-limit"), /'2 gigs' is not an amount of memory \(write e\.g\. 2G/);
});

test("a student's processes are found and ended by the course's reap, with the student's cgroups where the machine has them", async () => {
  const course = tmp("course-"), home = tmp("home-");
  const entry = prepareStudent({ course, student: "dora", home, workspace: path.join(home, WORKSPACE_DIR), memBytes: 512 * 1024 * 1024, cpus: 0.5 });
  const child = spawn("sleep", ["60"], { env: { ...process.env, JUPYTERHUB_USER: "dora", BERTQA_COURSE_DIR: course }, stdio: "ignore" });
  const other = spawn("sleep", ["60"], { env: { ...process.env, JUPYTERHUB_USER: "erin", BERTQA_COURSE_DIR: course }, stdio: "ignore" });
  try {
    if (entry.cgroups.memory !== undefined) {
      fs.writeFileSync(path.join(entry.cgroups.memory, "cgroup.procs"), String(child.pid));
      assert.equal(fs.readFileSync(path.join(entry.cgroups.memory, "memory.limit_in_bytes"), "utf8").trim(), String(512 * 1024 * 1024));
      assert.equal(fs.readFileSync(path.join(entry.cgroups.cpu!, "cpu.cfs_quota_us"), "utf8").trim(), "50000");
      assert.ok(fs.readFileSync(`/proc/${child.pid}/cgroup`, "utf8").includes(`/dora\n`));
      assert.equal(studentUsage(entry).memory_limit_bytes, 512 * 1024 * 1024);
      assert.equal(studentUsage(entry).oom_kills, 0);
    } else {
      assert.ok(entry.not_enforced.length > 0, "where nothing is enforced, the roster says why");
    }
    assert.deepEqual(studentPids(course, entry), [child.pid!], "the student's own, not another student's");
    const exited = new Promise((r) => child.once("exit", r));
    assert.deepEqual(await reapStudent(course, entry, 2000), [child.pid!]);
    await exited;
    assert.equal(other.exitCode, null, "another student's process is left alone");
    for (const dir of Object.values(entry.cgroups)) assert.equal(fs.existsSync(dir), false, `${dir} removed`);
  } finally {
    child.kill("SIGKILL");
    other.kill("SIGKILL");
    await reapStudent(course, entry, 0); // the cgroups go even when an assertion failed
  }
});

test("grading takes the teacher's checks, not the student's: pass, fail, not started, missing, an endless loop timed out", { timeout: 600_000 }, async () => {
  const handout = tmp("handout-"), home = tmp("home-");
  const names = ["01-load-and-explore-squad.ipynb", "02-tokenize-and-align.ipynb", "04-train-on-the-gpu.ipynb", "06-text-classification.ipynb", "07-chinese-qa-cmrc2018.ipynb"];
  const teacher = (n: string) => readNb(path.join(ROOT, "notebooks", n));
  for (const n of names) {
    const nb = teacher(n);
    runner.studentCopy(nb);
    writeNb(path.join(handout, n), nb);
  }
  const ws = syncWorkspace(ROOT, handout, home, "/course").workspace;
  const mine = (n: string) => path.join(ws, "notebooks", n);
  const exerciseOf = (nb: { cells: Cell[] }) => nb.cells.find((c) => (c.metadata.tags ?? []).includes("exercise"))!;
  const checkOf = (nb: { cells: Cell[] }) => nb.cells.find((c) => (c.metadata.tags ?? []).includes("exercise-check"))!;
  const src = (c: Cell) => (Array.isArray(c.source) ? c.source.join("") : c.source);
  fs.rmSync(mine(names[0])); // 01: deleted
  // 04: no warm-up, the check cell replaced by one that always passes, and a printed line that looks like a pass
  const nb04 = readNb(mine(names[2]));
  const fake = JSON.stringify({ notebook: names[2], exercise: "myLearningRate", status: "pass", message: "✔" });
  exerciseOf(nb04).source = `process.stdout.write(${JSON.stringify(fake + "\n")});\n` +
    src(exerciseOf(teacher(names[2]))).replace(/\/\/ BEGIN SOLUTION[\s\S]*\/\/ END SOLUTION/, "lr = baseLr * Math.max(0, totalSteps - step) / Math.max(1, totalSteps);");
  checkOf(nb04).source = 'showHtml("<b>✔ all good</b>");';
  writeNb(mine(names[2]), nb04);
  // 06: an endless loop in the function; 07: the solution, graded in a fresh process after 06's timeout
  const nb06 = readNb(mine(names[3]));
  exerciseOf(nb06).source = "function myScores(matrix: number[][]): { accuracy: number; f1: number } {\n  for (;;) {}\n}";
  writeNb(mine(names[3]), nb06);
  const nb07 = readNb(mine(names[4]));
  exerciseOf(nb07).source = src(exerciseOf(teacher(names[4])));
  writeNb(mine(names[4]), nb07);
  const results = await gradeStudent({ student: "sam", workspace: ws }, handout, names, 20);
  assert.deepEqual(results.map((r) => [r.notebook.slice(0, 2), r.exercise, r.status]), [
    ["01", "myAnswerLengths", "missing"], ["02", "myCharToToken", "not started"], ["04", "myLearningRate", "fail"],
    ["06", "myScores", "fail"], ["07", "myCmrcF1", "pass"]]);
  assert.match(results[2].message, /^myLearningRate\(.*\): expected .*, got /, "the teacher's check ran, not the student's");
  assert.equal(results[3].message, "timed out after 20 s (an endless loop?)");
  assert.match(results[4].message, /^✔ myCmrcF1 agrees/);
});

test("grading steps: the student's exercise found by its tag, else by the function it defines; the rest from the handout", () => {
  const handout = readNb(path.join(ROOT, "notebooks", "05-predict-and-exact-match.ipynb"));
  const student = JSON.parse(JSON.stringify(handout)) as { cells: Cell[] };
  for (const c of student.cells) c.metadata.tags = []; // tags lost (a copy-paste into new cells)
  const exercises = student.cells.filter((c) => /function my(Normalize|F1)\(/.test(Array.isArray(c.source) ? c.source.join("") : c.source));
  exercises.forEach((c, i) => (c.source = `function ${i === 0 ? "myNormalize(s: string): string" : "myF1(gold: string, pred: string): number"} { return ${i === 0 ? "s" : "0"}; }`));
  const steps = gradingSteps(handout as never, student as never);
  const ex = steps.filter((s) => s.kind === "exercise");
  assert.deepEqual(ex.map((s) => s.kind === "exercise" && [s.name, s.student?.includes("return"), /throw new Error/.test(s.check)]), [["myNormalize", true, true], ["myF1", true, true]]);
  assert.ok(steps[0].kind === "setup" && /const PROFILE/.test(steps[0].source), "the parameters cell first");
  assert.ok(steps.some((s) => s.kind === "setup" && /from "\.\/lib"/.test(s.source)), "the import cell");
});

test("bertqa course: a wrong action or a missing password is one line and exit 1", () => {
  const cases: [string[], RegExp][] = [
    [["course", "teach", "--course", "/tmp/x"], /^error: bertqa course: unknown action 'teach' \(use one of setup, status, grade, prepare, sync, reap/],
    [["course", "setup", "--course", tmp("c-"), "--auth", "dummy"], /^error: bertqa course setup: --auth dummy needs --password/],
    [["course", "setup", "--course", tmp("c-"), "--mem-limit", "lots"], /^error: bertqa course: --mem-limit: 'lots' is not an amount of memory/],
    [["course", "grade", "--course", tmp("c-")], /^error: .* is not a course folder \(no handout\/\) \(make it with bertqa course setup/],
  ];
  for (const [argv, want] of cases) {
    const r = spawnSync(process.execPath, [BERTQA, ...argv], { encoding: "utf8" });
    assert.equal(r.status, 1, argv.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
    assert.match(r.stderr.trim(), want);
  }
});
