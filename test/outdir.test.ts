// A command writes only what it owns: an output on an input's path, two outputs on one path, a file where a folder
// is meant (or the reverse) are refused before any work; a run's lock names the PID holding it, and a lock whose
// process is gone is taken over with a note.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { checkOutputDir, checkPaths } from "../lib/outdir";
import { lockDir, LOCK_FILE } from "../lib/platform/lockfile";
import { isUserError } from "../lib/errors";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-outdir-"));

function message(f: () => void): string {
  try {
    f();
  } catch (e) {
    assert.ok(isUserError(e), String(e));
    assert.ok(!(e as Error).message.includes("\n"), "one line");
    return (e as Error).message;
  }
  assert.fail("expected a refusal");
}

test("checkPaths: an output on an input (also through ./ and a symlink), two outputs on one path, a folder as file, a file as folder", () => {
  const dir = tmp();
  const data = path.join(dir, "dev.json");
  fs.writeFileSync(data, "{}");
  fs.symlinkSync(data, path.join(dir, "link.json"));
  const inputs = [{ flag: "--data", path: data }];
  assert.match(message(() => checkPaths("predict", inputs, [{ flag: "--out", path: path.join(dir, ".", "dev.json") }])), /^bertqa predict: --out .*dev\.json is also the --data input/);
  assert.match(message(() => checkPaths("predict", inputs, [{ flag: "--out", path: path.join(dir, "link.json") }])), /is also the --data input/);
  const preds = path.join(dir, "preds.json");
  assert.match(message(() => checkPaths("predict", inputs, [{ flag: "--out", path: preds }, { flag: "--nbest-out", path: preds }])), /--out and --nbest-out are the same path .*preds\.json.*give --nbest-out another path/);
  assert.match(message(() => checkPaths("predict", inputs, [{ flag: "--out", path: dir }])), /is a folder, but --out names the file to write/);
  assert.match(message(() => checkPaths("convert", [], [], [{ flag: "--out", path: data }])), /dev\.json: is a file, but --out names the folder to write/);
  checkPaths("predict", inputs, [{ flag: "--out", path: preds }, { flag: "--nbest-out", path: undefined }]); // distinct paths pass
});

test("checkOutputDir: a non-empty folder is refused naming what is there; --overwrite-output-dir lets the command in", () => {
  const dir = tmp();
  checkOutputDir(dir, "--out", false, "config.json and model.safetensors");
  fs.writeFileSync(path.join(dir, "notes.txt"), "mine");
  assert.match(message(() => checkOutputDir(dir, "--out", false, "config.json and model.safetensors")), /is not empty \(notes\.txt\) \(choose a new or empty --out, or pass --overwrite-output-dir to replace only config\.json and model\.safetensors there and keep the rest\)/);
  checkOutputDir(dir, "--out", true, "config.json");
});

test("lockDir: a second lock is refused naming the PID (this process too); a dead PID's lock is taken over with a note", async () => {
  const dir = tmp();
  const lock = lockDir(dir, "training");
  const info = JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), "utf8"));
  assert.equal(info.pid, process.pid);
  assert.match(message(() => lockDir(dir, "training")), new RegExp(`already being written by this process \\(PID ${process.pid}`));
  lock.release();
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)), "released");
  // A live process of someone else: refused with its PID.
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  try {
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: child.pid, hostname: os.hostname(), command: "bertqa train", started: "2026-01-01T00:00:00Z" }));
    assert.match(message(() => lockDir(dir, "training")), new RegExp(`being written by another training run \\(PID ${child.pid}, .*stop it with kill ${child.pid}`));
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
  }
  // The same process gone: the lock is taken over, with a note.
  const notes: string[] = [];
  const taken = lockDir(dir, "training", (m) => notes.push(m));
  assert.equal(notes.length, 1);
  assert.match(notes[0], new RegExp(`took over the lock of PID ${child.pid}, which is no longer running`));
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), "utf8")).pid, process.pid);
  taken.release();
  // A lock cut short as its writer died (empty file) is taken over too.
  fs.writeFileSync(path.join(dir, LOCK_FILE), "");
  lockDir(dir, "training", () => {}).release();
  assert.deepEqual(fs.readdirSync(dir), []);
});
