// A mistake the user can fix (bad file, bad flag). The CLI prints its message on one line, no stack trace, and exits 1.
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/** Build the one-line message every user error follows: where, what is wrong, how to fix it. */
export function userError(where: string, what: string, fix?: string): UserError {
  return new UserError(`${where}: ${what}${fix ? ` (${fix})` : ""}`);
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof Error && e.name === "UserError";
}

/** A short, escaped quotation of user input for a message: quotes, control characters and NULs escaped, long text cut. */
export function excerpt(s: string, max = 40): string {
  return JSON.stringify([...s].length > max ? [...s].slice(0, max).join("") + "…" : s);
}

/** A message made safe for one terminal line: control characters (newlines, NULs, escapes) shown as \u escapes. */
export function oneLine(msg: string): string {
  return msg.replace(/[\x00-\x1f\x7f]/g, (c) => (c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
}

/** The first line of what was thrown (an Error's message, or anything with a message), for a diagnosis. */
export function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e);
  return msg.split("\n")[0].trim();
}
