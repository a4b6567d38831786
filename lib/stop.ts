// Cooperative stop for long work, and the runs going on in this process. Jupyter's stop button (■) reaches the bertqa
// kernel as SIGINT; the kernel turns it into requestStop() while long work is running, and the work ends at its next
// step instead of being abandoned in the background (what tslab alone does: the cell ends, the loop keeps going).
// The state lives on globalThis, not in this module: tslab compiles lib/ for the cells apart from the kernel's own
// copy (lib/cli/run-notebooks.js reads the same object), and a re-compiled module must see the same runs.
import { UserError } from "./errors";
import { yieldToEvents } from "./platform";

export interface ActiveWork {
  id: number;
  label: string; // "train", "predict", "features"
  key?: string; // what only one run may use at a time: a training run's output folder
  owner?: object; // e.g. the model being trained, so it is not released under the loop
  done: number; // progress, for messages
  total: number;
  stopRequested: boolean; // set by requestStop(): the work ends at its next step
  nested: boolean; // started while a training run was going (its evaluation): ■ stops the run, which ends it
}

interface StopState {
  nextId: number;
  active: Map<number, ActiveWork>;
}

const KEY = Symbol.for("bertqa.stop");

function state(): StopState {
  const g = globalThis as unknown as Record<symbol, StopState | undefined>;
  return (g[KEY] ??= { nextId: 1, active: new Map() });
}

/** Ask the long work running now to stop at its next step (the kernel calls this on ■ / SIGINT); work started
 * later is not affected. Returns how many were asked. */
export function requestStop(): number {
  const outer = [...state().active.values()].filter((w) => !w.nested);
  for (const w of outer) w.stopRequested = true;
  return outer.length;
}

/** The long work running now (what ■ would stop). */
export function activeWork(): ActiveWork[] {
  return [...state().active.values()];
}

/** Register long work; call the returned end() when it finishes, however it finishes. */
export function beginWork(label: string, total: number, extra: { key?: string; owner?: object } = {}): ActiveWork & { end(): void } {
  const s = state();
  const nested = [...s.active.values()].some((w) => w.label === "train");
  const work: ActiveWork = { id: s.nextId++, label, total, done: 0, stopRequested: false, nested, ...extra };
  s.active.set(work.id, work);
  return Object.assign(work, { end: () => void s.active.delete(work.id) });
}

/** The training run that writes `key` (an output folder, resolved), if one is going on in this process. */
export function workUsing(key: string): ActiveWork | undefined {
  return activeWork().find((w) => w.key === key);
}

/** The long work that uses `owner` (e.g. a model being trained), if any. */
export function workOwning(owner: object): ActiveWork | undefined {
  return activeWork().find((w) => w.owner === owner);
}

/** What ended a run that ■ stopped: one line for the cell (the kernel prints user errors without a stack). */
export class StoppedError extends UserError {
  readonly stopped = true; // UserError's name is kept: the kernel and the CLI print it as one line, no stack
}

export function isStopped(e: unknown): e is StoppedError {
  return e instanceof Error && (e as Partial<StoppedError>).stopped === true;
}

/** ■ from a host that cannot reach this thread while it computes (a page driving a Web Worker): it sets element 0 of
 * this shared flag to 1; the next poll takes it (back to 0) as one requestStop(). */
export const STOP_FLAG = Symbol.for("bertqa.stopFlag");

function takeHostStop(): void {
  const flag = (globalThis as unknown as Record<symbol, Int32Array | undefined>)[STOP_FLAG];
  if (flag !== undefined && Atomics.exchange(flag, 0, 0) === 1) requestStop();
}

let lastYield = 0;
/**
 * Let the event loop run (a SIGINT handler, a notebook display, a worker's message) at most every `everyMs`, then say
 * whether `work` was asked to stop. Synchronous loops never see a signal; long loops await this between items.
 */
export async function pollStop(work: ActiveWork, everyMs = 100): Promise<boolean> {
  const now = Date.now();
  if (now - lastYield >= everyMs) {
    lastYield = now;
    await yieldToEvents();
  }
  takeHostStop();
  return work.stopRequested;
}
