// `bertqa course setup`: one course folder for a JupyterHub on this machine, from the workbook installed once here.
//   <course>/jupyterhub_config.py   JupyterHub's own settings (written once, then the teacher's to edit)
//   <course>/handout/               the notebooks students get (solutions removed), merged into their copies at login
//   <course>/jupyter/kernels/bertqa the kernel every student's server finds (JUPYTER_PATH), started from this install
//   <course>/roster/, students/     written by the hub: each student's limits, and their homes under the "dummy" set-up
// Run again after editing the notebooks: the handout is refreshed (students get it at their next server start);
// the config file is left as it is.
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { userError } from "../errors";
import { writeFileAtomic } from "../fsutil";

const INSTALL = path.resolve(__dirname, "..", "..");
const COURSE_TOOLS = path.join(INSTALL, "lib", "course");
export const PROXY_BIN = path.join(COURSE_TOOLS, "node_modules", ".bin", "configurable-http-proxy");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require("../cli/run-notebooks.js") as {
  listNotebooks(only: string[] | null): string[];
  studentCopy(nb: unknown): number;
  writeKernelSpec(dataDir: string): string;
};

export interface SetupOptions {
  course: string;
  auth: "pam" | "dummy";
  password?: string; // dummy: the one password of every account
  students: string[]; // allowed users (empty: anyone the authenticator accepts)
  teacher: string; // admin on the hub
  memLimit: string; // JupyterHub's notation: "2G"
  cpuLimit?: number;
  ip: string;
  port: number;
  hubPort: number;
  proxyApiPort: number;
  solutions: boolean; // hand out the notebooks with their solutions
}

const py = (s: string) => JSON.stringify(s); // a Python string literal (JSON's escapes are Python's)
const pySet = (xs: string[]) => (xs.length === 0 ? "set()" : `{${xs.map(py).join(", ")}}`);

/** The jupyterhub_config.py of a course: JupyterHub's own settings, with why in a comment where it is not obvious. */
export function hubConfig(o: SetupOptions, node = process.execPath): string {
  const dir = path.resolve(o.course);
  const dummy = o.auth === "dummy";
  const root = process.getuid?.() === 0;
  return `# JupyterHub for a bert-qa-workbook course, written by \`bertqa course setup\`; it is yours to edit (setup never
# overwrites it). Start the hub from this folder:  cd ${dir} && jupyterhub
import sys
sys.path.insert(0, ${py(COURSE_TOOLS)})
from hub_hooks import Course

course = Course(course_dir=${py(dir)}, install=${py(INSTALL)}, node=${py(node)})
c = get_config()  # noqa: F821 (JupyterHub defines it)

# Where students connect (the proxy), where the hub and the proxy's API listen, the hub's own files
c.JupyterHub.ip = ${py(o.ip)}
c.JupyterHub.port = ${o.port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = ${o.hubPort}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:${o.proxyApiPort}"
c.ConfigurableHTTPProxy.command = [${py(PROXY_BIN)}]  # npm's 5.3: Debian's does not start on Node 20
c.JupyterHub.db_url = ${py(`sqlite:///${path.join(dir, "jupyterhub.sqlite")}`)}
c.JupyterHub.cookie_secret_file = ${py(path.join(dir, "jupyterhub_cookie_secret"))}
c.JupyterHub.pid_file = ${py(path.join(dir, "jupyterhub.pid"))}

# Who logs in${dummy ? `: anyone allowed below, with one password ("dummy" is for trying the set-up out;
# for a class use "pam", the Unix accounts of this machine, with c.JupyterHub.spawner_class = "localprocess")
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = ${py(o.password ?? "")}` : `: the Unix accounts of this machine (useradd one per student)
c.JupyterHub.authenticator_class = "pam"`}
c.Authenticator.allowed_users = ${pySet(o.students)}
c.Authenticator.admin_users = ${pySet([o.teacher])}

# Each student's server: ${dummy ? "all run as the hub's user (no isolation between students' files), homes below" : "a process of the student's own Unix user, in their home"}
c.JupyterHub.spawner_class = ${dummy ? `"simple"
c.SimpleLocalProcessSpawner.home_dir_template = ${py(path.join(dir, "students", "{username}"))}` : `"localprocess"`}
c.Spawner.cmd = ["/bin/sh", ${py(path.join(COURSE_TOOLS, "start-student.sh"))}, "jupyterhub-singleuser"]  # limits, then the copy of the workbook
${dummy && root ? `c.Spawner.args = ["--allow-root"]  # the hub runs as root, so do the students' servers\n` : ""}c.Spawner.default_url = "/tree/bert-qa-workbook/notebooks"
c.Spawner.environment = course.environment()  # the bertqa kernel (JUPYTER_PATH), the course, and the hub's BERTQA_* settings
c.Spawner.http_timeout = 60

# Per student (enforced with cgroups where the machine allows: \`bertqa course status\` says what is)
c.Spawner.mem_limit = ${/^\d+$/.test(o.memLimit) ? o.memLimit : py(o.memLimit)}
c.Spawner.cpu_limit = ${o.cpuLimit === undefined ? "None  # no cap: each student gets an equal share of the cores when all are busy" : o.cpuLimit}
c.Spawner.pre_spawn_hook = course.pre_spawn_hook
c.Spawner.post_stop_hook = course.post_stop_hook
`;
}

/** npm's configurable-http-proxy in lib/course/node_modules (a dependency of the course, not of the demo). */
export function installProxy(): string {
  if (!fs.existsSync(PROXY_BIN)) {
    const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: COURSE_TOOLS, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) throw userError(COURSE_TOOLS, `npm ci failed (${r.error?.message ?? `exit code ${r.status}`})`, "check the network and that this folder is writable");
  }
  return spawnSync(process.execPath, [PROXY_BIN, "--version"], { encoding: "utf8" }).stdout.trim();
}

/** Write the notebooks students get into `handout`; returns each one's change since the last setup. */
export function writeHandout(handout: string, solutions: boolean): Record<string, "new" | "changed" | "same"> {
  const changes: Record<string, "new" | "changed" | "same"> = {};
  for (const name of runner.listNotebooks(null)) {
    const nb = JSON.parse(fs.readFileSync(path.join(INSTALL, "notebooks", name), "utf8")) as unknown;
    if (!solutions) runner.studentCopy(nb);
    const text = JSON.stringify(nb, null, 1) + "\n";
    const file = path.join(handout, name);
    const before = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
    changes[name] = before === undefined ? "new" : before === text ? "same" : "changed";
    if (changes[name] !== "same") writeFileAtomic(file, text, "a notebook of the handout");
  }
  return changes;
}

/** The installed JupyterHub's version, or null when `jupyterhub` is not on PATH. */
function jupyterhubVersion(): string | null {
  const r = spawnSync("jupyterhub", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

export function setupCourse(o: SetupOptions) {
  const dir = path.resolve(o.course);
  if (o.auth === "dummy" && !o.password) throw userError("bertqa course setup", "--auth dummy needs --password", "choose the one password students log in with");
  const proxy = installProxy();
  const kernel = runner.writeKernelSpec(path.join(dir, "jupyter"));
  const handout = writeHandout(path.join(dir, "handout"), o.solutions);
  const configFile = path.join(dir, "jupyterhub_config.py");
  const config = fs.existsSync(configFile) ? "kept" : "written";
  if (config === "written") writeFileAtomic(configFile, hubConfig(o), "the hub's configuration");
  const jupyterhub = jupyterhubVersion();
  const missing = o.auth === "pam" ? [o.teacher, ...o.students].filter((u) => spawnSync("id", ["-u", u]).status !== 0) : [];
  if (missing.length > 0) process.stderr.write(`note: no Unix account for ${missing.join(", ")} yet: PAM logs in only existing accounts (useradd -m NAME; passwd NAME)\n`);
  return {
    course: dir, config: configFile, config_file: config, handout, kernel, proxy: `configurable-http-proxy ${proxy}`,
    jupyterhub: jupyterhub ?? "not installed (Debian: apt-get install jupyterhub)", accounts_missing: missing,
    start: `cd ${dir} && jupyterhub`,
  };
}
