// Progress reporting and atomic writes: the two promises long work makes to the user.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatProgress, formatDuration, progress, setDefaultProgressSink, type ProgressState } from "../lib/progress";
import { writeDirAtomic, writeFileAtomic } from "../lib/fsutil";

test("formatProgress shows the bar, counts, elapsed, ETA and info", () => {
  const s: ProgressState = { label: "train", done: 50, total: 100, elapsedS: 10, info: { loss: 1.23456, "ex/s": 320.4 }, finished: false };
  assert.equal(formatProgress(s, 10), "train [#####.....] 50/100 0:10<0:10 loss=1.235 ex/s=320");
  assert.equal(formatProgress({ ...s, total: 0, done: 7, info: {} }), "train 7 0:10");
  assert.equal(formatDuration(3725), "1h02m");
});

test("progress sends updates to the default sink and always sends the final state", () => {
  const seen: ProgressState[] = [];
  setDefaultProgressSink((st) => seen.push(st));
  try {
    const p = progress("features", 3);
    p.update(1);
    p.update(2); // within 100 ms of the first: throttled
    p.finish({ features: 3 });
  } finally {
    setDefaultProgressSink(undefined);
  }
  assert.equal(seen[0].done, 1);
  const last = seen[seen.length - 1];
  assert.deepEqual([last.done, last.finished, last.info.features], [3, true, 3]);
});

test("writeFileAtomic leaves no temporary file and replaces the old content whole", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "atomic-"));
  const f = path.join(dir, "sub", "x.json");
  writeFileAtomic(f, "one");
  writeFileAtomic(f, "two");
  assert.equal(fs.readFileSync(f, "utf8"), "two");
  assert.deepEqual(fs.readdirSync(path.dirname(f)), ["x.json"]);
});

test("writeDirAtomic keeps the old directory when filling the new one fails", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "atomic-"));
  const ckpt = path.join(dir, "checkpoint");
  writeDirAtomic(ckpt, (tmp) => fs.writeFileSync(path.join(tmp, "model"), "good"));
  assert.throws(() => writeDirAtomic(ckpt, (tmp) => {
    fs.writeFileSync(path.join(tmp, "model"), "half");
    throw new Error("interrupted");
  }));
  assert.equal(fs.readFileSync(path.join(ckpt, "model"), "utf8"), "good");
  writeDirAtomic(ckpt, (tmp) => fs.writeFileSync(path.join(tmp, "model"), "better"));
  assert.equal(fs.readFileSync(path.join(ckpt, "model"), "utf8"), "better");
  assert.deepEqual(fs.readdirSync(dir), ["checkpoint"]);
});
