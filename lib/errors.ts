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
