// Every `--flag` a message suggests must exist on the command that prints it. Read from the sources: each string in
// lib/ naming a flag is checked against every command whose imports reach that module ("bertqa predict --out" inside
// a string is checked against predict instead). A command that reaches a module but can never print one of its flags
// is listed in NOT_PRINTED with the reason, so a new message, or a new path to an old one, fails here until looked at.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import ts from "typescript";
import { COMMANDS } from "../lib/cli/main";
import type { FlagSpecs } from "../lib/cli/args";

const LIB = path.join(__dirname, "..", "lib");
const FLAG = /(?<![\w-])--([a-z][a-z0-9-]*)(?![\w])/g; // not Python's --do_predict
// "bertqa predict --out x --nbest-out y": the flags of one written-out command line.
const INVOCATION = /bertqa ([a-z]+)((?: +--[a-z][a-z0-9-]*(?:[ =](?!--)[^\s'"`(),;]+)?)*)/g;

/** Imports that use only functions which print no flag: the importer's command does not reach the module through them. */
const QUIET_IMPORTS: Record<string, { module: string; why: string }[]> = {
  "lib/cli/bench.ts": [{ module: "lib/train.ts", why: "outOfMemory only" }],
  "lib/bench.ts": [{ module: "lib/train.ts", why: "readStepStats only" }],
  "lib/cli/ask.ts": [{ module: "lib/cli/predict.ts", why: "selectBackend only (its --backend message: ask has --backend)" }],
  "lib/course/workspace.ts": [{ module: "lib/outdir.ts", why: "LOCK_FILE only (to tell a killed run from a running one)" }],
};

/** Module -> commands that reach it but never print some of the flags its messages name, and why. */
const NOT_PRINTED: Record<string, { commands: string[]; flags: string[]; why: string }[]> = {
  "lib/backend.ts": [{ commands: ["doctor"], flags: ["backend"], why: "doctor's fixes say which --backend to pass to the other commands" }],
  "lib/platform/node-backends.ts": [{ commands: ["doctor"], flags: ["backend"], why: "doctor's fixes say which --backend to pass to the other commands" }],
  "lib/cli/doctor.ts": [{ commands: ["doctor"], flags: ["backend"], why: "'--backend auto uses: X' describes the other commands' flag" }],
  "lib/squad.ts": [
    { commands: ["ask"], flags: ["skip-invalid"], why: "ask reads no SQuAD file (it imports codePointIndex)" },
    { commands: ["demo"], flags: ["skip-invalid"], why: "demo loads the embedded sample, which is valid (test/sample.test.ts)" },
  ],
  "lib/features.ts": [
    { commands: ["ask"], flags: ["skip-invalid"], why: "ask passes skipFlag: null, so its messages name no skip flag" },
    { commands: ["demo"], flags: ["skip-invalid", "max-length", "doc-stride"], why: "demo featurizes the valid embedded sample with fixed windows (DEMO.maxLength/docStride)" },
  ],
  "lib/train.ts": [
    { commands: ["demo"], flags: ["warmup-ratio", "weight-decay", "max-grad-norm", "max-steps", "eval-steps", "grad-accum", "resume", "train", "model", "max-length", "doc-stride", "out", "eval", "tokenizer", "skip-invalid", "epochs", "group-by-length"],
      why: "demo passes fixed, valid settings (DEMO) and the embedded sample (its files are not user paths), its --steps range is its flag's, and it never resumes" },
  ],
  "lib/rundir.ts": [
    { commands: ["demo"], flags: ["train", "tokenizer", "resume", "grad-accum", "epochs", "max-steps", "group-by-length", "model", "max-length", "doc-stride"],
      why: "demo trains on the embedded sample with fixed settings (DEMO) into a folder it overwrites, and never resumes" },
  ],
  "lib/metrics.ts": [{ commands: ["train", "demo"], flags: ["strict"], why: "they score predictions made from their own eval questions, so no prediction has an id outside the data" }],
  "lib/outdir.ts": [{ commands: ["features", "forward", "predict"], flags: ["overwrite-output-dir"], why: "they call checkPaths only; checkOutputDir (a folder to fill) is convert's" }],
  "lib/predict.ts": [{ commands: ["demo"], flags: ["max-length", "tokenizer"], why: "demo predicts with its own model, tokenizer and DEMO.maxLength" }],
  "lib/cli/main.ts": [{ commands: ["*"], flags: ["batch-size", "backend"], why: "memoryError names --batch-size and --backend only for commands that have them" }],
  "lib/cli/bench.ts": [{ commands: ["bench"], flags: ["threads", "shapes"], why: "arguments of test/bench/torch_gemm.py, passed to python, never printed" }],
  "lib/platform/node-workers.ts": [{ commands: ["*"], flags: ["experimental-wasm-relaxed-simd"], why: "a V8 flag the GEMM pool sets for itself on Node 20, never printed" }],
  "lib/model-card.ts": [{ commands: ["push"], flags: ["question", "context"], why: "bertqa ask's flags in the usage example of the model card push uploads, never printed" }],
  "lib/course/grade.ts": [{ commands: ["course"], flags: ["require", "worker"], why: "node's --require and the grading worker's own argument, never printed" }],
  "lib/course/setup.ts": [{ commands: ["course"], flags: ["allow-root", "no-audit", "no-fund", "loglevel", "version"], why: "jupyterhub-singleuser's flag in the config it writes, npm's and the proxy's and jupyterhub's, never printed" }],
};

function relative(file: string): string {
  return path.relative(path.join(LIB, ".."), file).split(path.sep).join("/");
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
}

/** Value imports (import ... from "./x", require("./x")) of one module, resolved to .ts files; type-only imports do not run. */
function imports(file: string): string[] {
  const out: string[] = [];
  const add = (spec: string) => {
    if (!spec.startsWith(".")) return;
    const base = path.resolve(path.dirname(file), spec);
    const found = [base, `${base}.ts`, path.join(base, "index.ts")].find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
    if (found !== undefined && found.endsWith(".ts")) out.push(found);
  };
  const visit = (n: ts.Node) => {
    if (ts.isImportDeclaration(n) && !n.importClause?.isTypeOnly && ts.isStringLiteral(n.moduleSpecifier)) add(n.moduleSpecifier.text);
    if (ts.isExportDeclaration(n) && !n.isTypeOnly && n.moduleSpecifier !== undefined && ts.isStringLiteral(n.moduleSpecifier)) add(n.moduleSpecifier.text);
    if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === "require" && n.arguments.length === 1 && ts.isStringLiteral(n.arguments[0])) add(n.arguments[0].text);
    ts.forEachChild(n, visit);
  };
  visit(parse(file));
  return out;
}

function closure(entry: string): Set<string> {
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length > 0) {
    const f = stack.pop() as string;
    if (seen.has(f)) continue;
    seen.add(f);
    const quiet = (QUIET_IMPORTS[relative(f)] ?? []).map((q) => q.module);
    stack.push(...imports(f).filter((i) => !quiet.includes(relative(i))));
  }
  return seen;
}

/** The texts of all string and template literals of a module (comments excluded), with their line numbers. */
function literals(file: string): { text: string; line: number }[] {
  const src = parse(file);
  const out: { text: string; line: number }[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateHead(n) || ts.isTemplateMiddle(n) || ts.isTemplateTail(n)) {
      if (!(ts.isImportDeclaration(n.parent) || ts.isExportDeclaration(n.parent))) out.push({ text: n.text, line: src.getLineAndCharacterOfPosition(n.getStart()).line + 1 });
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

interface Mention { file: string; line: number; flag: string; command?: string } // command: named in the text itself

/** Flag mentions in a text: those inside "bertqa CMD --a --b" belong to CMD, the rest to whoever prints the text. */
export function mentions(text: string, file: string, line: number): Mention[] {
  const out: Mention[] = [];
  let rest = text;
  for (const m of text.matchAll(INVOCATION)) {
    for (const f of m[2].matchAll(FLAG)) out.push({ file, line, flag: f[1], command: m[1] });
    rest = rest.replace(m[0], " ".repeat(m[0].length));
  }
  for (const f of rest.matchAll(FLAG)) out.push({ file, line, flag: f[1] });
  return out;
}

function exempt(file: string, command: string, flag: string): boolean {
  return (NOT_PRINTED[file] ?? []).some((e) => (e.commands.includes(command) || e.commands.includes("*")) && (e.flags.includes(flag) || e.flags.includes("*")));
}

/** Every (command, flag) a message names that the command does not have, as "file:line --flag (command)". */
export function unknownFlagMentions(): string[] {
  const flagsOf = new Map<string, FlagSpecs>(Object.entries(COMMANDS).map(([name, load]) => [name, load().flags]));
  const has = (command: string, flag: string) => flag === "help" || Object.prototype.hasOwnProperty.call(flagsOf.get(command) ?? {}, flag);
  const reach = new Map<string, string[]>(); // module -> commands that import it
  for (const name of flagsOf.keys()) {
    for (const f of closure(path.join(LIB, "cli", `${name}.ts`))) reach.set(relative(f), [...(reach.get(relative(f)) ?? []), name]);
  }
  reach.set("lib/cli/main.ts", [...flagsOf.keys()]); // the dispatcher prints for every command
  const problems: string[] = [];
  for (const [file, commands] of [...reach].sort()) {
    for (const lit of literals(path.join(LIB, "..", file))) {
      for (const m of mentions(lit.text, file, lit.line)) {
        if (m.command !== undefined) {
          if (!flagsOf.has(m.command)) problems.push(`${file}:${m.line} names 'bertqa ${m.command}', which is not a command`);
          else if (!has(m.command, m.flag)) problems.push(`${file}:${m.line} --${m.flag} (bertqa ${m.command})`);
          continue;
        }
        for (const c of commands) if (!has(c, m.flag) && !exempt(file, c, m.flag)) problems.push(`${file}:${m.line} --${m.flag} (${c})`);
      }
    }
  }
  return problems;
}

test("every --flag named in a message of the CLI or the library exists on the command that prints it", () => {
  assert.deepEqual(unknownFlagMentions(), []);
});

test("flag mentions: a written-out command line is checked against that command, anything else against the printer", () => {
  assert.deepEqual(mentions("write it with bertqa predict --out x.json, then pass --na-prob", "f", 1).map((m) => [m.flag, m.command]),
    [["out", "predict"], ["na-prob", undefined]]);
  assert.deepEqual(mentions("run 'bertqa doctor' to see why, or pick another with --backend", "f", 1).map((m) => [m.flag, m.command]), [["backend", undefined]]);
  assert.deepEqual(mentions("models--org--name and x--y are not flags", "f", 1), []);
});

test("every command that can draw a progress bar (its imports reach lib/progress.ts) has --quiet", () => {
  const lacking = Object.entries(COMMANDS)
    .filter(([name]) => closure(path.join(LIB, "cli", `${name}.ts`)).has(path.join(LIB, "progress.ts")))
    .filter(([, load]) => !Object.prototype.hasOwnProperty.call(load().flags, "quiet"))
    .map(([name]) => name);
  assert.deepEqual(lacking, []);
});
