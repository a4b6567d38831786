// A student's copy of the workbook on a course's JupyterHub: ~/bert-qa-workbook/ with the student's own notebooks/
// and runs/, and links to the one shared install for everything else (lib/, node_modules/, data/, test/fixtures/).
// The bertqa kernel finds the workspace from the notebook's folder (its package.json, a link, names the project) and
// starts tslab there, so cells import "./lib" from the install and write runs/ into the student's folder.
//
// The notebooks arrive as nbgitpuller delivers a course's files: at every server start the teacher's handout is
// merged in, and a student's edits always win. Per file of the handout:
//   the student has none                 → copied in ("added"; "restored" if it was delivered before and deleted)
//   the student's cells are the teacher's → nothing to do ("unchanged"; outputs the student produced stay)
//   unedited since delivered             → replaced by the teacher's new version ("updated")
//   edited by the student                → kept as it is ("kept"); the teacher's newer version is not applied
// "Edited" means the cells' types and sources: running a notebook (outputs, execution counts) is not an edit.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { userError } from "../errors";
import { ensureDir, writeFileAtomic, writeJsonAtomic } from "../fsutil";
import { LOCK_FILE } from "../platform/lockfile";

/** The workspace's folder name in the student's home. */
export const WORKSPACE_DIR = "bert-qa-workbook";
/** What a student's copy shares with the install, as links (read by the kernel, never written by the notebooks). */
export const SHARED_ENTRIES = ["package.json", "tsconfig.json", "lib", "data", "node_modules", "test/fixtures"];
/** Where a workspace records what the course delivered (each file's sources hash), to tell edits from updates. */
export const MANIFEST = ".bertqa-course.json";

export interface Manifest {
  course: string;
  delivered: Record<string, string>; // notebooks/NAME → hash of the sources delivered last
}

export type SyncAction = "added" | "restored" | "unchanged" | "updated" | "kept";
export interface SyncReport {
  workspace: string;
  notebooks: Record<string, SyncAction>;
  links: Record<string, "linked" | "relinked" | "ok" | "in the way">;
}

/**
 * What the student wrote in a file: for a notebook the cells' types and sources (not outputs, counts or metadata),
 * else the bytes. A notebook that is not valid JSON is compared by its bytes (it differs, so it is kept).
 */
export function contentHash(file: string, bytes: Buffer): string {
  const hash = (s: string | Buffer) => crypto.createHash("sha256").update(s).digest("hex");
  if (!file.endsWith(".ipynb")) return hash(bytes);
  try {
    const nb = JSON.parse(bytes.toString("utf8")) as { cells: { cell_type: string; source: string | string[] }[] };
    return hash(JSON.stringify(nb.cells.map((c) => [c.cell_type, Array.isArray(c.source) ? c.source.join("") : c.source])));
  } catch {
    return hash(bytes);
  }
}

/** Make `home`/bert-qa-workbook link to `install`; a link to another place (the install moved) is redirected. */
export function linkShared(install: string, workspace: string): SyncReport["links"] {
  const links: SyncReport["links"] = {};
  for (const entry of SHARED_ENTRIES) {
    const target = path.join(install, entry), at = path.join(workspace, entry);
    ensureDir(path.dirname(at), "the student's workspace");
    let current: string | undefined;
    try {
      current = fs.lstatSync(at).isSymbolicLink() ? fs.readlinkSync(at) : "";
    } catch {
      current = undefined; // nothing there yet
    }
    if (current === target) links[entry] = "ok";
    else if (current === "") links[entry] = "in the way"; // the student's own file or folder: never removed
    else {
      if (current !== undefined) fs.rmSync(at);
      fs.symlinkSync(target, at);
      links[entry] = current === undefined ? "linked" : "relinked";
    }
  }
  return links;
}

function readManifest(file: string, course: string): Manifest {
  const m = readJson<Manifest>(file);
  // no manifest yet (first login), or one the student broke: every existing file then counts as the student's
  return typeof m?.delivered === "object" && m.delivered !== null ? m : { course, delivered: {} };
}

/** Merge the handout's files into `workspace`/notebooks by the rule at the top of this file. */
export function syncNotebooks(handout: string, workspace: string, course: string): SyncReport["notebooks"] {
  if (!fs.existsSync(handout)) throw userError(handout, "the course has no handout folder", "run bertqa course setup first");
  const manifestFile = path.join(workspace, MANIFEST);
  const manifest = readManifest(manifestFile, course);
  const actions: SyncReport["notebooks"] = {};
  for (const name of fs.readdirSync(handout).filter((f) => !f.startsWith(".")).sort()) {
    const key = `notebooks/${name}`, mine = path.join(workspace, key);
    const teacherBytes = fs.readFileSync(path.join(handout, name));
    const teacher = contentHash(name, teacherBytes);
    let action: SyncAction;
    if (!fs.existsSync(mine)) action = manifest.delivered[key] === undefined ? "added" : "restored";
    else {
      const student = contentHash(name, fs.readFileSync(mine));
      action = student === teacher ? "unchanged" : student === manifest.delivered[key] ? "updated" : "kept";
    }
    if (action === "added" || action === "restored" || action === "updated") writeFileAtomic(mine, teacherBytes, `the notebook ${name}`);
    if (action !== "kept") manifest.delivered[key] = teacher;
    actions[name] = action;
  }
  writeJsonAtomic(manifestFile, { ...manifest, course }, "the course manifest");
  return actions;
}

/** A student's workspace in `home`, created or brought up to date: links to `install`, the handout merged in. */
export function syncWorkspace(install: string, handout: string, home: string, course: string): SyncReport {
  const workspace = path.join(home, WORKSPACE_DIR);
  ensureDir(path.join(workspace, "notebooks"), "the student's notebooks folder");
  const links = linkShared(install, workspace);
  return { workspace, notebooks: syncNotebooks(handout, workspace, course), links };
}

export interface RunState {
  run: string; // runs/NAME
  checkpoint_step: number | null; // the last complete checkpoint (what a resume starts from)
  total_steps: number | null;
  state: "training" | "killed" | "stopped" | "finished" | "no checkpoint";
}

/**
 * The training runs in a workspace and where each stands: a run whose lock names a live process is training; a lock
 * left by a dead process means the run was killed (its kernel died) and resumes from its last checkpoint.
 */
export function runStates(workspace: string, alive: (pid: number) => boolean): RunState[] {
  const runs = path.join(workspace, "runs");
  if (!fs.existsSync(runs)) return [];
  return fs.readdirSync(runs).sort().filter((d) => fs.statSync(path.join(runs, d)).isDirectory()).map((d) => {
    const dir = path.join(runs, d);
    const state = readJson<{ step?: number; total_steps?: number }>(path.join(dir, "checkpoint", "trainer_state.json"));
    const lock = readJson<{ pid?: number }>(path.join(dir, LOCK_FILE));
    const step = state?.step ?? null, total = state?.total_steps ?? null;
    const s: RunState["state"] = lock?.pid !== undefined ? (alive(lock.pid) ? "training" : "killed")
      : step === null ? "no checkpoint" : step === total ? "finished" : "stopped";
    return { run: `runs/${d}`, checkpoint_step: step, total_steps: total, state: s };
  });
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}
