// How many students one machine holds for notebook 04: a course's hub (bertqa course setup, dummy accounts, 127.0.0.1)
// with N students who each run all of notebook 04 at the same moment over the kernel websockets, for each N given.
// Per N: wall time per student, CPU seconds of each student's kernel (load-independent), each student's peak memory
// (sampled RSS of all their processes; and their cgroup's peak, page cache included, where there are cgroups).
//
//   node --experimental-websocket --import tsx test/bench/course.bench.ts 1 3 1      (Node 22+: no flag)
//   BERTQA_TRAIN_STEPS=16 ... for a shorter run (default: the notebook's 80 steps)
// Prints one JSON line per N. Run the "1" before and after the others: on a shared machine it is the reference.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { closeKernel, kernelProcess, login, openKernel, readNotebook, runCell, startServer, startHub, stopHub, courseProcesses, cellSource } from "../hub_client";
import { readRoster, studentPids, studentUsage } from "../../lib/course/limits";

const FILE = "bert-qa-workbook/notebooks/04-train-on-the-gpu.ipynb";
const PAGE = 4096;

const rssOf = (pid: number) => {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * PAGE;
  } catch {
    return 0;
  }
};
const cpuSecondsOf = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks (USER_HZ = 100 on Linux)
};

async function classOf(n: number) {
  const course = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-bench-course-"));
  const names = Array.from({ length: n }, (_, i) => `student${i + 1}`);
  const hub = await startHub({ course, students: names, password: "bench", memLimit: "8G", env: { BERTQA_PROFILE: "offline" } });
  const peaks = new Map<string, number>();
  try {
    const students = await Promise.all(names.map(async (name) => {
      const s = await login(hub.url, name, "bench");
      await startServer(s);
      return s;
    }));
    const sampler = setInterval(() => {
      for (const e of readRoster(course)) {
        const rss = studentPids(course, e).reduce((sum, pid) => sum + rssOf(pid), 0);
        peaks.set(e.student, Math.max(peaks.get(e.student) ?? 0, rss));
      }
    }, 500);
    const load0 = os.loadavg()[0];
    const t0 = Date.now();
    const runs = await Promise.all(students.map(async (s) => {
      const nb = await readNotebook(s, FILE);
      const k = await openKernel(s, FILE);
      const t1 = Date.now();
      const cells = nb.cells.filter((c) => c.cell_type === "code" && !(c.metadata.tags ?? []).includes("exercise-check"));
      const failed: string[] = [];
      for (const c of cells) {
        const r = await runCell(k, cellSource(c));
        if (r.status !== "ok") failed.push(cellSource(c).split("\n")[0]);
      }
      const seconds = (Date.now() - t1) / 1000;
      const cpu = cpuSecondsOf(kernelProcess(k.id)!.pid);
      await closeKernel(k);
      return { student: s.name, seconds, kernel_cpu_s: cpu, failed };
    }));
    clearInterval(sampler);
    const usage = Object.fromEntries(readRoster(course).map((e) => [e.student, studentUsage(e).memory_peak_bytes]));
    const gb = (b: number | null | undefined) => (b == null ? null : +(b / 1e9).toFixed(2));
    return {
      students: n, wall_s: (Date.now() - t0) / 1000, cores: os.availableParallelism(), load_before: +load0.toFixed(1), load_after: +os.loadavg()[0].toFixed(1),
      per_student: runs.map((r) => ({ ...r, peak_rss_gb: gb(peaks.get(r.student)), cgroup_peak_gb: gb(usage[r.student]) })),
    };
  } finally {
    await stopHub(hub);
    for (const pid of courseProcesses(course, hub.proc.pid)) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
    fs.rmSync(course, { recursive: true, force: true });
  }
}

async function main() {
  const sizes = process.argv.slice(2).map(Number);
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1)) {
    console.error("usage: course.bench.ts N [N ...]   (students at once, e.g. 1 3 1)");
    process.exit(1);
  }
  for (const n of sizes) console.log(JSON.stringify(await classOf(n)));
}

main().then(() => process.exit(0), (e) => {
  console.error(e instanceof Error ? e.stack : String(e));
  process.exit(1);
});
