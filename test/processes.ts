// Which processes a test file started are still running. Every process this one starts from now on (and every process
// those start: Jupyter's kernels, Chromium's helpers) inherits a tag in its environment, so it is found in /proc even
// after its parent died and it was re-parented, which is how processes get left behind. Linux only (/proc); elsewhere
// nothing is found.
import * as fs from "node:fs";

const KEY = "BERTQA_TEST_PROCESSES";

export interface Proc { pid: number; command: string }

/** Tag the processes this test file starts from now on; returns the check for its teardown. */
export function trackProcesses(): { running(): Proc[]; assertNoneLeft(timeoutMs: number): Promise<void> } {
  const tag = `${KEY}=${process.pid}-${Date.now()}`;
  process.env[KEY] = tag.slice(KEY.length + 1);
  const running = () => tagged(tag);
  return {
    running,
    /** Wait up to `timeoutMs` for every tagged process to end; fail naming those left, after killing them. */
    async assertNoneLeft(timeoutMs: number) {
      const end = Date.now() + timeoutMs;
      let left = running();
      while (left.length > 0 && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 250));
        left = running();
      }
      for (const p of left) {
        try {
          process.kill(p.pid, "SIGKILL"); // so that a failed run leaves nothing behind either
        } catch {
          // already gone
        }
      }
      if (left.length > 0) throw new Error(`processes left running:\n${left.map((p) => `  ${p.pid} ${p.command}`).join("\n")}`);
    },
  };
}

/** Live processes (zombies have exited: they only wait to be reaped) whose environment holds `tag`. */
function tagged(tag: string): Proc[] {
  if (!fs.existsSync("/proc/self/environ")) return [];
  const found: Proc[] = [];
  for (const entry of fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      if (!fs.readFileSync(`/proc/${entry}/environ`, "latin1").split("\0").includes(tag)) continue;
      const state = fs.readFileSync(`/proc/${entry}/stat`, "latin1").replace(/^.*\) /s, "")[0];
      if (state === "Z" || state === "X") continue;
      found.push({ pid: Number(entry), command: fs.readFileSync(`/proc/${entry}/cmdline`, "latin1").split("\0").join(" ").trim().slice(0, 200) });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}
