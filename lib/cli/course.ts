// `bertqa course <action>`: the workbook for a class on one JupyterHub (README, "Teaching a course").
//   setup    the course folder: the hub's config, the handout, the kernel spec, the proxy (lib/course/setup.ts)
//   status   each student: their server's processes, memory now/peak/limit, OOM kills, training runs
//   grade    each student's checked exercises against the teacher's checks (lib/course/grade.ts)
// and what the hub runs for each student (lib/course/hub_hooks.py, start-student.sh):
//   prepare  before a server starts: the student's cgroups with the spawner's limits, the roster entry
//   sync     as the server starts: the student's copy of the workbook, with the teacher's updates merged in
//   reap     after a server stopped: end what it left running
// Results are one JSON object on stdout; status and grade also print a table on stderr.
import * as fs from "node:fs";
import * as path from "node:path";
import { userError } from "../errors";
import { formatBytes, writeFileAtomic, writeJsonAtomic } from "../fsutil";
import { progress, silentSink } from "../progress";
import { gradeStudent, gradeTable, type CheckResult } from "../course/grade";
import { pidAlive, prepareStudent, readRoster, reapStudent, rosterFile, studentPids, studentUsage, type RosterEntry } from "../course/limits";
import { setupCourse } from "../course/setup";
import { runStates, syncWorkspace, WORKSPACE_DIR } from "../course/workspace";
import { parseFlags, type FlagSpecs } from "./args";

const INSTALL = path.resolve(__dirname, "..", "..");
const DEFAULT_MEM_LIMIT = "2G";

export const summary = "a course on JupyterHub: setup | status | grade (and prepare | sync | reap, run by the hub)";

export const flags = {
  course: { type: "string", help: "the course folder (setup makes it)", required: true },
  auth: { type: "string", help: "setup: pam (the machine's Unix accounts) or dummy (one shared password; to try it out)", default: "pam" },
  password: { type: "string", help: "setup --auth dummy: the password of every account" },
  students: { type: "string", help: "setup: the user names allowed to log in, comma-separated (none: anyone the authenticator accepts); grade: only these" },
  teacher: { type: "string", help: "setup: the hub's admin user", default: "teacher" },
  "mem-limit": { type: "string", help: `setup: memory per student, JupyterHub's notation (2G, 1536M; default ${DEFAULT_MEM_LIMIT}); prepare: bytes` },
  "cpu-limit": { type: "number", help: "setup, prepare: cores per student at most (none: an equal share of all cores when busy)", min: 0.01 },
  ip: { type: "string", help: "setup: the address students connect to (default: all interfaces)" },
  port: { type: "int", help: "setup: the port students connect to", default: 8000, min: 1, max: 65535 },
  "hub-port": { type: "int", help: "setup: the hub's own port (127.0.0.1)", default: 8081, min: 1, max: 65535 },
  "proxy-api-port": { type: "int", help: "setup: the proxy's API port (127.0.0.1)", default: 8001, min: 1, max: 65535 },
  solutions: { type: "boolean", help: "setup: hand out the notebooks with their solutions" },
  student: { type: "string", help: "prepare, reap: the student's user name" },
  home: { type: "string", help: "prepare, sync: the student's home folder (sync: default $HOME)" },
  owner: { type: "string", help: "prepare: uid:gid of a real user's server, which joins its cgroups itself" },
  only: { type: "string", help: "grade: notebooks whose number or name starts with these, comma-separated (01,04)" },
  timeout: { type: "int", help: "grade: seconds a student's exercise and its check may run (an endless loop fails)", default: 60, min: 1 },
  jobs: { type: "int", help: "grade: students graded at once", default: 2, min: 1, max: 64 },
  quiet: { type: "boolean", help: "grade: no progress bar" },
} satisfies FlagSpecs;

type Parsed = ReturnType<typeof parseFlags<typeof flags>>;
const ACTIONS: Record<string, (f: Parsed) => Promise<unknown>> = { setup, status, grade, prepare, sync, reap };

export async function run(argv: string[]): Promise<void> {
  const [action, ...rest] = argv;
  const act = action === undefined ? undefined : ACTIONS[action];
  if (act === undefined) throw userError("bertqa course", action === undefined ? "no action given" : `unknown action '${action}'`, `use one of ${Object.keys(ACTIONS).join(", ")}; see bertqa course --help`);
  const f = parseFlags(`course ${action}`, rest, flags);
  console.log(JSON.stringify(await act(f)));
}

/** JupyterHub's ByteSpecification: a number of bytes with an optional K, M, G or T suffix (powers of 1024). */
export function parseBytes(s: string, flag: string): number {
  const m = s.trim().match(/^(\d+(?:\.\d+)?)\s*([KMGT]?)$/i);
  if (!m) throw userError(`bertqa course: --${flag}`, `'${s}' is not an amount of memory`, "write e.g. 2G, 1536M or a number of bytes");
  return Math.round(Number(m[1]) * 1024 ** " KMGT".indexOf((m[2] || " ").toUpperCase()));
}

const need = (value: string | undefined, flag: string, action: string) => {
  if (value === undefined || value === "") throw userError(`bertqa course ${action}`, `missing --${flag}`, `see bertqa course --help`);
  return value;
};
const list = (s: string | undefined) => (s ?? "").split(",").map((x) => x.trim()).filter((x) => x !== "");

async function setup(f: Parsed) {
  if (f.auth !== "pam" && f.auth !== "dummy") throw userError("bertqa course setup", `--auth ${f.auth} is not pam or dummy`, "use --auth pam for a class, --auth dummy to try it out");
  const memLimit = f["mem-limit"] ?? DEFAULT_MEM_LIMIT;
  parseBytes(memLimit, "mem-limit"); // checked here, written in JupyterHub's own notation
  return setupCourse({
    course: f.course, auth: f.auth, password: f.password, students: list(f.students), teacher: f.teacher!, memLimit: memLimit,
    cpuLimit: f["cpu-limit"], ip: f.ip ?? "", port: f.port!, hubPort: f["hub-port"]!, proxyApiPort: f["proxy-api-port"]!, solutions: f.solutions ?? false,
  });
}

function handoutOf(course: string): string {
  const handout = path.join(course, "handout");
  if (!fs.existsSync(handout)) throw userError(course, "is not a course folder (no handout/)", "make it with bertqa course setup --course " + course);
  return handout;
}

async function prepare(f: Parsed) {
  const student = need(f.student, "student", "prepare"), home = need(f.home, "home", "prepare");
  const owner = f.owner === undefined ? undefined : f.owner.match(/^(\d+):(\d+)$/);
  if (owner === null) throw userError("bertqa course prepare", `--owner ${f.owner} is not uid:gid`, "pass e.g. --owner 1001:1001");
  return prepareStudent({
    course: f.course, student, home, workspace: path.join(home, WORKSPACE_DIR),
    memBytes: f["mem-limit"] === undefined ? null : parseBytes(f["mem-limit"], "mem-limit"),
    cpus: f["cpu-limit"] ?? null, owner: owner === undefined ? undefined : { uid: Number(owner[1]), gid: Number(owner[2]) },
  });
}

async function sync(f: Parsed) {
  const home = f.home ?? process.env.HOME;
  if (!home) throw userError("bertqa course sync", "no --home and no $HOME", "pass the student's home folder with --home");
  return syncWorkspace(INSTALL, handoutOf(f.course), home, path.resolve(f.course));
}

function rosterEntry(course: string, student: string): RosterEntry {
  const file = rosterFile(course, student);
  if (!fs.existsSync(file)) throw userError(file, `no roster entry for ${student}`, "the hub writes it when the student's server starts");
  return JSON.parse(fs.readFileSync(file, "utf8")) as RosterEntry;
}

async function reap(f: Parsed) {
  const student = need(f.student, "student", "reap");
  return { student, ended: await reapStudent(f.course, rosterEntry(f.course, student)) };
}

async function status(f: Parsed) {
  const students = readRoster(f.course).map((e) => ({
    student: e.student, workspace: e.workspace, processes: studentPids(f.course, e), ...studentUsage(e),
    enforced: e.enforced, not_enforced: e.not_enforced, runs: runStates(e.workspace, pidAlive),
  }));
  const mb = (n: number | null) => (n === null ? "-" : formatBytes(n));
  const rows = students.map((s) => [s.student, s.processes.length > 0 ? `running (${s.processes.length} processes)` : "stopped",
    `${mb(s.memory_bytes)} / ${mb(s.memory_peak_bytes)} / ${mb(s.memory_limit_bytes)}`, String(s.oom_kills ?? "-"),
    s.runs.map((r) => `${r.run}: ${r.state}${r.checkpoint_step !== null ? ` (checkpoint at step ${r.checkpoint_step} of ${r.total_steps})` : ""}`).join("; ") || "-"]);
  process.stderr.write(table(["student", "server", "memory now / peak / limit", "OOM kills", "runs"], rows));
  return { course: path.resolve(f.course), students };
}

function table(header: string[], rows: string[][]): string {
  return [header, header.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n") + "\n";
}

async function grade(f: Parsed) {
  const handout = handoutOf(f.course);
  const only = list(f.only);
  const notebooks = fs.readdirSync(handout).filter((n) => /^\d\d-.*\.ipynb$/.test(n) && (only.length === 0 || only.some((o) => n.startsWith(o)))).sort();
  if (notebooks.length === 0) throw userError(handout, `no notebook matches --only ${f.only}`, "name notebooks by number, e.g. --only 01,04");
  const wanted = list(f.students);
  const roster = readRoster(f.course).filter((e) => wanted.length === 0 || wanted.includes(e.student));
  const missing = wanted.filter((w) => !roster.some((e) => e.student === w));
  if (missing.length > 0) throw userError(f.course, `no roster entry for ${missing.join(", ")}`, "they have not started a server yet");
  const bar = progress("grade", roster.length, f.quiet ? silentSink : undefined);
  const grades: Record<string, CheckResult[]> = {};
  let next = 0, done = 0;
  const worker = async () => {
    for (let i = next++; i < roster.length; i = next++) {
      grades[roster[i].student] = await gradeStudent({ student: roster[i].student, workspace: roster[i].workspace }, handout, notebooks, f.timeout!);
      bar.update(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(f.jobs!, roster.length) }, worker));
  bar.finish();
  const sorted = Object.fromEntries(roster.map((e) => [e.student, grades[e.student]]));
  const report = { course: path.resolve(f.course), graded: new Date().toISOString(), notebooks, students: sorted };
  writeJsonAtomic(path.join(f.course, "grades.json"), report, "the grades");
  const text = gradeTable(sorted);
  writeFileAtomic(path.join(f.course, "grades.md"), text, "the grades table");
  process.stderr.write(text);
  return report;
}
