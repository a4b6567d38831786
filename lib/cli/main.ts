// Dispatch `bertqa <command>` to lib/cli/<command>.ts. Each command module exports `run(argv): Promise<void>`,
// `summary` and `flags`; user mistakes (UserError) become one line on stderr and exit code 1.
import { isUserError, oneLine, userError } from "../errors";
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
  push: () => require("./push"),
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
  silenceThirdPartyBanners();
  let command: Command | undefined;
  try {
    command = load();
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(helpText(name, command.summary, command.flags));
      return;
    }
    await command.run(rest);
  } catch (e) {
    reportAndExit(memoryError(e, name, command?.flags ?? {}));
  }
}

/** Out of memory in any command: the one line train prints (what ran out, and the fix), never a stack trace. */
export function memoryError(e: unknown, name: string, flags: FlagSpecs): unknown {
  if (isUserError(e)) return e;
  const { outOfMemory } = require("../train") as typeof import("../train"); // loads TensorFlow.js: only on this path
  const oom = outOfMemory(e);
  if (oom === undefined) return e;
  const fix = "batch-size" in flags ? "try a smaller --batch-size" : "backend" in flags ? "use a smaller model or input, or another --backend" : "use a smaller model or input";
  return userError(`bertqa ${name}`, `does not fit in memory: ${oom}`, fix);
}

// Third-party lines that are not ours to print: TensorFlow.js's advice to install tfjs-node (we choose backends on purpose).
const BANNERS = [/looks like you are running TensorFlow\.js in Node\.js/];

/** Drop known third-party banners from console.warn; everything else passes through unchanged. */
export function silenceThirdPartyBanners(): void {
  const warn = console.warn;
  if ((warn as { bertqaFiltered?: boolean }).bertqaFiltered) return;
  const filtered = (...args: unknown[]) => {
    if (args.some((a) => typeof a === "string" && BANNERS.some((b) => b.test(a)))) return;
    warn.apply(console, args);
  };
  console.warn = Object.assign(filtered, { bertqaFiltered: true });
}

/** One line for user errors; a stack trace only for bugs, which are ours to fix. */
export function reportAndExit(e: unknown): never {
  if (isUserError(e)) {
    process.stderr.write(`error: ${oneLine(e.message)}\n`);
    process.exit(1);
  }
  process.stderr.write(`internal error (please report it): ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(2);
}
