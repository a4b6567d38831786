// A small typed flag parser: every command declares its flags once, so unknown flags and bad values are caught up front.
import { UserError } from "../errors";

export type FlagType = "string" | "number" | "int" | "boolean";
export interface FlagSpec {
  type: FlagType;
  help: string;
  default?: string | number | boolean;
  required?: boolean;
  min?: number; // numbers: smallest accepted value (checked with the type, one line outside it)
  max?: number;
}
export type FlagSpecs = Record<string, FlagSpec>;
type ValueOf<S extends FlagSpec> = S["type"] extends "boolean" ? boolean : S["type"] extends "string" ? string : number;
export type Flags<S extends FlagSpecs> = { [K in keyof S]: S[K]["required"] extends true ? ValueOf<S[K]> : ValueOf<S[K]> | undefined };

/** Parse `--name value`, `--name=value` and `--flag` (booleans) against `specs`; kebab-case names stay as declared. */
export function parseFlags<S extends FlagSpecs>(command: string, argv: string[], specs: S): Flags<S> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) if (spec.default !== undefined) out[name] = spec.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new UserError(`bertqa ${command}: unexpected argument '${arg}' (flags start with --; see 'bertqa ${command} --help')`);
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = specs[name];
    if (!spec) {
      throw new UserError(`bertqa ${command}: unknown flag --${name} (known: ${Object.keys(specs).map((k) => "--" + k).join(", ")})`);
    }
    if (spec.type === "boolean") {
      out[name] = eq >= 0 ? !["false", "0", "no"].includes(arg.slice(eq + 1)) : true;
      continue;
    }
    const raw = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UserError(`bertqa ${command}: --${name} needs a value (${spec.help})`);
    out[name] = convert(command, name, spec, raw);
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.required && out[name] === undefined) throw new UserError(`bertqa ${command}: missing --${name} (${spec.help})`);
  }
  return out as Flags<S>;
}

function convert(command: string, name: string, spec: FlagSpec, raw: string): string | number {
  if (spec.type === "string") return raw;
  const n = Number(raw);
  const ok = raw.trim() !== "" && Number.isFinite(n) && (spec.type !== "int" || Number.isSafeInteger(n));
  if (!ok) throw new UserError(`bertqa ${command}: --${name} must be ${spec.type === "int" ? "an integer" : "a number"}, got '${raw}'`);
  if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
    throw new UserError(`bertqa ${command}: --${name} must be ${rangeText(spec)}, got ${raw} (${spec.help})`);
  }
  return n;
}

function rangeText(spec: FlagSpec): string {
  if (spec.min !== undefined && spec.max !== undefined) return `between ${spec.min} and ${spec.max}`;
  return spec.min !== undefined ? `≥ ${spec.min}` : `≤ ${spec.max}`;
}

/** The text of `bertqa CMD --help`, built from the same specs. */
export function helpText(command: string, summary: string, specs: FlagSpecs): string {
  const lines = [`bertqa ${command}: ${summary}`, "", "flags:"];
  for (const [name, s] of Object.entries(specs)) {
    const value = s.type === "boolean" ? "" : ` <${s.type}>`;
    const extra = s.required ? " (required)" : s.default !== undefined ? ` (default ${s.default})` : "";
    lines.push(`  --${name}${value}`.padEnd(30) + s.help + extra);
  }
  return lines.join("\n");
}

/** Largest --seed: numpy's np.random.seed accepts 0 ... 2**32 - 1, so a seed written down for Python works here too. */
export const SEED_MAX = 2 ** 32 - 1;
