// The command-line plumbing every command shares: flag parsing, one-line user errors, and the dispatcher's exit codes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { parseFlags, helpText, type FlagSpecs } from "../lib/cli/args";
import { UserError, userError, isUserError } from "../lib/errors";

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
