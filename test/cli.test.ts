// The command-line plumbing every command shares: flag parsing, one-line user errors, and the dispatcher's exit codes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { parseFlags, helpText, type FlagSpecs } from "../lib/cli/args";
import { UserError, userError, isUserError, oneLine } from "../lib/errors";
import { memoryError, silenceThirdPartyBanners } from "../lib/cli/main";

const BERTQA = path.join(__dirname, "..", "lib", "cli", "bertqa.js");
const specs = {
  data: { type: "string", help: "SQuAD JSON file", required: true },
  "max-length": { type: "int", help: "tokens per window", default: 384 },
  lr: { type: "number", help: "learning rate" },
  "skip-invalid": { type: "boolean", help: "skip bad examples" },
} satisfies FlagSpecs;

test("parseFlags reads values, defaults and booleans in both spellings", () => {
  const f = parseFlags("x", ["--data", "a.json", "--lr=3e-5", "--skip-invalid"], specs);
  assert.deepEqual(f, { data: "a.json", "max-length": 384, lr: 3e-5, "skip-invalid": true });
  assert.equal(parseFlags("x", ["--data=b", "--max-length", "128", "--skip-invalid=false"], specs)["skip-invalid"], false);
  assert.equal(parseFlags("x", ["--data=b", "--max-length", "128"], specs)["max-length"], 128);
});

test("parseFlags rejects unknown flags, missing values, bad numbers and missing required flags with one line", () => {
  const cases: [string[], RegExp][] = [
    [["--data", "a", "--epochz", "3"], /unknown flag --epochz \(known: --data, --max-length, --lr, --skip-invalid\)/],
    [["--data"], /--data needs a value/],
    [["--data", "a", "--max-length", "12.5"], /--max-length must be an integer, got '12.5'/],
    [["--data", "a", "--lr", "fast"], /--lr must be a number, got 'fast'/],
    [["--lr", "1"], /missing --data \(SQuAD JSON file\)/],
    [["data.json"], /unexpected argument 'data.json'/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseFlags("train", argv, specs), (e: unknown) => isUserError(e) && re.test((e as Error).message) && !(e as Error).message.includes("\n"));
  }
});

test("helpText lists every flag with its default", () => {
  const text = helpText("features", "make features", specs);
  for (const name of Object.keys(specs)) assert.match(text, new RegExp(`--${name}`));
  assert.match(text, /\(default 384\)/);
  assert.match(text, /\(required\)/);
});

test("userError builds 'where: what (fix)' and is recognised after crossing module boundaries", () => {
  const e = userError("data/train.json", "example q1: empty question", "remove it or pass --skip-invalid");
  assert.equal(e.message, "data/train.json: example q1: empty question (remove it or pass --skip-invalid)");
  assert.ok(isUserError(e) && e instanceof UserError);
  assert.ok(!isUserError(new Error("bug")));
});

test("bertqa: unknown commands and unknown flags exit 1 with one line and no stack trace", () => {
  const unknown = spawnSync(process.execPath, [BERTQA, "fly"], { encoding: "utf8" });
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /unknown command 'fly'/);
  const help = spawnSync(process.execPath, [BERTQA, "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /features/);
  const badFlag = spawnSync(process.execPath, [BERTQA, "evaluate", "--no-such-flag"], { encoding: "utf8" });
  assert.equal(badFlag.status, 1);
  assert.match(badFlag.stderr, /^error: bertqa evaluate: unknown flag --no-such-flag/);
  assert.doesNotMatch(badFlag.stderr, /\n\s+at /);
});

test("numeric flags outside their range: one line naming the flag, the range and the value", () => {
  const ranged = {
    "n-best": { type: "int", help: "candidates", default: 20, min: 1 },
    alternatives: { type: "int", help: "runner-ups", default: 4, min: 0 },
    seed: { type: "int", help: "seed", default: 42, min: 0, max: 2 ** 32 - 1 },
  } satisfies FlagSpecs;
  const cases: [string[], string][] = [
    [["--n-best", "0"], "bertqa predict: --n-best must be ≥ 1, got 0 (candidates)"],
    [["--n-best=-1"], "bertqa predict: --n-best must be ≥ 1, got -1 (candidates)"],
    [["--alternatives", "-1"], "bertqa predict: --alternatives must be ≥ 0, got -1 (runner-ups)"],
    [["--seed", "-1"], "bertqa predict: --seed must be between 0 and 4294967295, got -1 (seed)"],
    [["--seed", "1e300"], "bertqa predict: --seed must be an integer, got '1e300'"], // an integer in JS, but not a safe one
  ];
  for (const [argv, message] of cases) assert.throws(() => parseFlags("predict", argv, ranged), (e: unknown) => isUserError(e) && (e as Error).message === message);
  assert.deepEqual(parseFlags("predict", ["--n-best", "1", "--alternatives", "0", "--seed", "0"], ranged), { "n-best": 1, alternatives: 0, seed: 0 });
});

test("every numeric flag of every command has a lower bound", () => {
  const { COMMANDS } = require("../lib/cli/main") as typeof import("../lib/cli/main");
  // Numbers that may be negative or any size: thresholds compared with score differences and probabilities.
  const UNBOUNDED = new Set(["predict --null-score-diff-threshold", "ask --null-score-diff-threshold", "evaluate --na-prob-thresh",
    "train --lr", "train --warmup-ratio", "train --dropout", "demo --lr", "train --pad-to-multiple-of"]); // checked in train with their own messages (open ranges)
  const missing: string[] = [];
  for (const [name, load] of Object.entries(COMMANDS)) {
    for (const [flag, spec] of Object.entries(load().flags)) {
      if ((spec.type === "int" || spec.type === "number") && spec.min === undefined && !UNBOUNDED.has(`${name} --${flag}`)) missing.push(`${name} --${flag}`);
    }
  }
  assert.deepEqual(missing, []);
});

test("a UserError message with newlines or NULs still prints as one line", () => {
  assert.equal(oneLine("bad id \"a\nb\u0000\""), "bad id \"a\\nb\\u0000\"");
});

test("out of memory in any command becomes train's one line with a fix the command has", () => {
  const oom = new Error("Invalid typed array length: 13107200000");
  const asked = memoryError(oom, "ask", { backend: { type: "string", help: "" } });
  assert.ok(isUserError(asked));
  assert.equal((asked as Error).message, "bertqa ask: does not fit in memory: Invalid typed array length: 13107200000 (use a smaller model or input, or another --backend)");
  assert.match((memoryError(oom, "predict", { "batch-size": { type: "int", help: "" } }) as Error).message, /does not fit in memory: .* \(try a smaller --batch-size\)$/);
  const bug = new TypeError("Cannot read properties of undefined (reading 'map')");
  assert.equal(memoryError(bug, "bench", {}), bug, "other errors stay internal errors");
});

test("TensorFlow.js's Node.js banner is filtered from console.warn; other warnings pass", () => {
  const seen: unknown[][] = [];
  const original = console.warn;
  console.warn = (...a: unknown[]) => { seen.push(a); };
  try {
    silenceThirdPartyBanners();
    console.warn("\n============================\nHi, looks like you are running TensorFlow.js in Node.js. To speed things up dramatically, install our node backend\n============================");
    console.warn("a real warning");
  } finally {
    console.warn = original;
  }
  assert.deepEqual(seen, [["a real warning"]]);
});
