// Per-student limits on one machine, with the kernel's control groups: JupyterHub's LocalProcessSpawner and
// SimpleLocalProcessSpawner accept `mem_limit` and `cpu_limit` but only pass them on as $MEM_LIMIT / $CPU_LIMIT
// (JupyterHub: "for use by the humans"). Here the hub's pre_spawn_hook makes one cgroup per student under the hub's own
// (cgroup v1: memory and cpu), writes the limits into it, and the student's server joins it before it starts
// (lib/course/start-student.sh), so the server, its kernels and everything they start share the student's limits:
//   memory: memory.limit_in_bytes; past it the kernel's OOM killer ends the biggest process of that student (their
//           kernel), not another student's or the hub;
//   cpu:    each student's group has an equal cpu.shares, so on a busy machine students get equal CPU time however
//           many threads each runs; cpu_limit adds a hard cap (cpu.cfs_quota_us = cpu_limit × period).
// Where cgroup v1 is not mounted writable (cgroup v2 needs a delegated subtree; no root) nothing is enforced and the
// roster says why. The roster (<course>/roster/<student>.json) is what `bertqa course status`, `reap` and `grade` read.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { writeJsonAtomic } from "../fsutil";

export const CONTROLLERS = ["memory", "cpu"] as const;
type Controller = (typeof CONTROLLERS)[number];
const CFS_PERIOD_US = 100_000; // the kernel's default CFS period (100 ms)

export interface RosterEntry {
  student: string;
  home: string;
  workspace: string;
  cgroups: Partial<Record<Controller, string>>; // the student's cgroup folder per controller
  limits: { mem_bytes: number | null; cpus: number | null };
  enforced: string[]; // e.g. "memory.limit_in_bytes = 2147483648"
  not_enforced: string[]; // what was asked for but is not applied here, and why
  prepared: string; // ISO time of the server start that wrote this
}

/** Where each cgroup v1 controller is mounted, from /proc/self/mountinfo: controller → {mount point, root in the hierarchy}. */
export function cgroupV1Mounts(mountinfo: string): Map<string, { mount: string; root: string }> {
  const out = new Map<string, { mount: string; root: string }>();
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (right === undefined) continue;
    const [fstype, , superOpts] = right.split(" ");
    if (fstype !== "cgroup") continue;
    const fields = left.split(" ");
    for (const opt of (superOpts ?? "").split(",")) out.set(opt, { mount: unescapeMount(fields[4]), root: unescapeMount(fields[3]) });
  }
  return out;
}

const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** This process's cgroup path per v1 controller, from /proc/self/cgroup ("4:memory:/a/b"; "2:cpu,cpuacct:/"). */
export function ownCgroups(procCgroup: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of procCgroup.split("\n")) {
    const m = line.match(/^\d+:([^:]*):(.*)$/);
    if (m && m[1] !== "") for (const c of m[1].split(",")) out.set(c, m[2]);
  }
  return out;
}

/** The folder of this process's own cgroup for `controller` (v1), or a reason why there is none. */
function ownCgroupDir(controller: Controller): string | { reason: string } {
  const mounts = cgroupV1Mounts(readOr("/proc/self/mountinfo", ""));
  const mount = mounts.get(controller);
  if (mount === undefined) {
    const v2 = fs.existsSync("/sys/fs/cgroup/cgroup.controllers");
    return { reason: v2 ? "cgroup v2 only: needs a subtree delegated to the hub (systemd Delegate=yes), not supported by this set-up" : "no cgroup v1 hierarchy is mounted" };
  }
  const own = ownCgroups(readOr("/proc/self/cgroup", "")).get(controller) ?? "/";
  return path.join(mount.mount, path.relative(mount.root, own));
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return fallback;
  }
}

/** One course's cgroups live in one folder per controller, named after the course folder (two courses never share). */
export function courseCgroupName(course: string): string {
  return `bertqa-course-${crypto.createHash("sha256").update(path.resolve(course)).digest("hex").slice(0, 12)}`;
}

export interface PrepareOptions {
  course: string;
  student: string;
  home: string;
  workspace: string;
  memBytes: number | null;
  cpus: number | null;
  owner?: { uid: number; gid: number }; // a real user's server joins its group itself, so it must own cgroup.procs
}

/** Make (or reuse) the student's cgroups with the limits asked for, and write the roster entry. */
export function prepareStudent(o: PrepareOptions): RosterEntry {
  const entry: RosterEntry = {
    student: o.student, home: o.home, workspace: o.workspace, cgroups: {}, limits: { mem_bytes: o.memBytes, cpus: o.cpus },
    enforced: [], not_enforced: [], prepared: new Date().toISOString(),
  };
  for (const controller of CONTROLLERS) {
    const own = ownCgroupDir(controller);
    const asked = controller === "memory" ? o.memBytes !== null : o.cpus !== null;
    if (typeof own !== "string") {
      const what = controller === "memory" ? "mem_limit" : "cpu_limit and fair CPU shares";
      if (asked || controller === "cpu") entry.not_enforced.push(`${what}: ${own.reason}`);
      continue;
    }
    const dir = path.join(own, courseCgroupName(o.course), o.student);
    try {
      fs.mkdirSync(dir, { recursive: true });
      const settings: [string, string][] = controller === "memory"
        ? [["memory.limit_in_bytes", o.memBytes === null ? "-1" : String(o.memBytes)]]
        : [["cpu.cfs_period_us", String(CFS_PERIOD_US)], ["cpu.cfs_quota_us", o.cpus === null ? "-1" : String(Math.round(o.cpus * CFS_PERIOD_US))]];
      for (const [file, value] of settings) fs.writeFileSync(path.join(dir, file), value);
      if (controller === "memory") resetPeak(dir);
      if (o.owner !== undefined) fs.chownSync(path.join(dir, "cgroup.procs"), o.owner.uid, o.owner.gid);
      entry.cgroups[controller] = dir;
      if (controller === "memory" && o.memBytes !== null) entry.enforced.push(`memory.limit_in_bytes = ${o.memBytes}`);
      if (controller === "cpu") entry.enforced.push(o.cpus === null ? "cpu.shares (an equal share per student)" : `cpu.cfs_quota_us = ${Math.round(o.cpus * CFS_PERIOD_US)} of ${CFS_PERIOD_US}`);
    } catch (e) {
      entry.not_enforced.push(`${controller}: cannot set up ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (the hub needs root, or a cgroup it may write)`);
    }
  }
  writeJsonAtomic(rosterFile(o.course, o.student), entry, "the roster entry");
  return entry;
}

function resetPeak(dir: string): void {
  try {
    fs.writeFileSync(path.join(dir, "memory.max_usage_in_bytes"), "0"); // the peak of this server start, not of earlier ones
  } catch {
    // not resettable on this kernel: the peak then covers earlier starts too
  }
}

export const rosterFile = (course: string, student: string) => path.join(course, "roster", `${student}.json`);

/** The students who started a server in this course (their roster entries), by name. */
export function readRoster(course: string): RosterEntry[] {
  const dir = path.join(course, "roster");
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort().map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as RosterEntry);
}

/**
 * The processes of a student: those in the student's cgroups, and those whose environment says they belong to this
 * student of this course (what the spawner sets), which also finds them where no cgroup could be made.
 */
export function studentPids(course: string, entry: RosterEntry): number[] {
  const pids = new Set<number>();
  for (const dir of Object.values(entry.cgroups)) {
    for (const l of readOr(path.join(dir, "cgroup.procs"), "").split("\n")) if (l.trim() !== "") pids.add(Number(l));
  }
  const want = [`JUPYTERHUB_USER=${entry.student}`, `BERTQA_COURSE_DIR=${path.resolve(course)}`];
  for (const p of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    const env = readOr(`/proc/${p}/environ`, "").split("\0");
    if (want.every((w) => env.includes(w))) pids.add(Number(p));
  }
  pids.delete(process.pid);
  return [...pids].sort((a, b) => a - b);
}

export interface Usage {
  memory_bytes: number | null;
  memory_peak_bytes: number | null;
  memory_limit_bytes: number | null;
  oom_kills: number | null; // processes of this student the OOM killer ended (since the cgroup was made)
  cpu_throttled_s: number | null; // time the student's processes waited because of cpu_limit
}

/** What the student's cgroups say now (null where there is no cgroup or the kernel does not report it). */
export function studentUsage(entry: RosterEntry): Usage {
  const mem = entry.cgroups.memory, cpu = entry.cgroups.cpu;
  const num = (dir: string | undefined, file: string) => {
    const v = dir === undefined ? "" : readOr(path.join(dir, file), "").trim();
    return v === "" ? null : Number(v);
  };
  const limit = num(mem, "memory.limit_in_bytes");
  const field = (text: string, key: string) => {
    const m = text.match(new RegExp(`^${key} (\\d+)$`, "m"));
    return m ? Number(m[1]) : null;
  };
  const throttledNs = cpu === undefined ? null : field(readOr(path.join(cpu, "cpu.stat"), ""), "throttled_time");
  return {
    memory_bytes: num(mem, "memory.usage_in_bytes"),
    memory_peak_bytes: num(mem, "memory.max_usage_in_bytes"),
    memory_limit_bytes: limit !== null && limit < 2 ** 62 ? limit : null, // "no limit" is a huge page-rounded number
    oom_kills: mem === undefined ? null : field(readOr(path.join(mem, "memory.oom_control"), ""), "oom_kill"),
    cpu_throttled_s: throttledNs === null ? null : throttledNs / 1e9,
  };
}

/** Is `pid` running (EPERM: it is, as another user)? */
export const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * End what is left of a student's server (kernels orphaned by a server that was killed): SIGTERM, then SIGKILL after
 * `graceMs`; then remove the student's (empty) cgroups. Returns the PIDs that were ended.
 */
export async function reapStudent(course: string, entry: RosterEntry, graceMs = 5000): Promise<number[]> {
  const pids = studentPids(course, entry);
  for (const pid of pids) signal(pid, "SIGTERM");
  for (const deadline = Date.now() + graceMs; pids.some(pidAlive) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(pidAlive)) signal(pid, "SIGKILL");
  for (const deadline = Date.now() + 2000; pids.some(pidAlive) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
  for (const dir of Object.values(entry.cgroups)) removeCgroup(dir);
  return pids;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** rmdir a cgroup (only an empty one can go) and its course folder when that is empty too. */
function removeCgroup(dir: string): void {
  for (const d of [dir, path.dirname(dir)]) {
    try {
      fs.rmdirSync(d);
    } catch {
      return; // still has processes or other students: it stays
    }
  }
}
