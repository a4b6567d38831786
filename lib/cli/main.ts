// Dispatch `bertqa <command>` to lib/cli/<command>.ts. Each command module exports `run(argv): Promise<void>`,
// `summary` and `flags`; user mistakes (UserError) become one line on stderr and exit code 1.
import { isUserError } from "../errors";
import { helpText, type FlagSpecs } from "./args";

export interface Command {
  summary: string;
  flags: FlagSpecs;
  run(argv: string[]): Promise<void>;
}

// The commands, in the order a newcomer meets them. Modules load lazily so `bertqa evaluate` does not load TensorFlow.js.
export const COMMANDS: Record<string, () => Command> = {
  doctor: () => require("./doctor"),
  features: () => require("./features"),
  forward: () => require("./forward"),
  convert: () => require("./convert"),
  train: () => require("./train"),
  predict: () => require("./predict"),
  evaluate: () => require("./evaluate"),
  ask: () => require("./ask"),
  bench: () => require("./bench"),
  demo: () => require("./demo"),
};

function usage(): string {
  return ["usage: bertqa <command> [flags]   (bertqa <command> --help for its flags)", "", "commands:", ...Object.keys(COMMANDS).map((c) => `  ${c}`)].join("\n");
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    console.log(usage());
    return;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`bertqa: unknown command '${name}'\n${usage()}`);
    process.exitCode = 1;
    return;
  }
  try {
    const command = load();
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(helpText(name, command.summary, command.flags));
      return;
    }
    await command.run(rest);
  } catch (e) {
    reportAndExit(e);
  }
}

/** One line for user errors; a stack trace only for bugs, which are ours to fix. */
export function reportAndExit(e: unknown): never {
  if (isUserError(e)) {
    process.stderr.write(`error: ${e.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`internal error (please report it): ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(2);
}
