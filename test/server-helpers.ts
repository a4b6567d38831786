// For tests that start servers (Jupyter, through npm run lab): a free port on 127.0.0.1, and waiting for one to answer.
import * as net from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    }).on("error", reject);
  });
}

/** `probe()` once it is neither undefined nor false (a throw counts as not yet); `what` is read when it times out. */
export async function waitFor<T>(what: string | (() => string), probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve().then(probe).catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
