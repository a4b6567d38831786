// Progress for long work: a bar that redraws in place on a terminal, a line every few seconds in logs and CI, and a
// pluggable sink so notebooks can show the same state in an updating display (see display.ts).
import { stderr, type TextStream } from "./platform";

export interface ProgressState {
  label: string;
  done: number;
  total: number; // 0 when unknown
  elapsedS: number;
  info: Record<string, string | number>; // e.g. { loss: 1.23, "ex/s": 40 }
  finished: boolean;
  stopped?: boolean; // finished early (■, a stop flag): `done` is where it stopped, not the total
}
export type ProgressSink = (s: ProgressState) => void;

export interface Progress {
  update(done: number, info?: Record<string, string | number>): void;
  finish(info?: Record<string, string | number>): void;
  /** End early: the display keeps `done` (where it stopped) and says "stopped". */
  stop(info?: Record<string, string | number>): void;
}

let defaultSink: ProgressSink | undefined;
/** Notebooks call this once so every library loop reports to their display instead of stderr. */
export function setDefaultProgressSink(sink: ProgressSink | undefined): void {
  defaultSink = sink;
}

export function progress(label: string, total: number, sink: ProgressSink = defaultSink ?? terminalSink()): Progress {
  const start = Date.now();
  let last = 0;
  let state: ProgressState = { label, done: 0, total, elapsedS: 0, info: {}, finished: false };
  const emit = (force: boolean) => {
    const now = Date.now();
    if (!force && now - last < 100) return; // redrawing more often than 10 Hz only costs time
    last = now;
    sink(state);
  };
  return {
    update(done, info) {
      state = { ...state, done, elapsedS: (Date.now() - start) / 1000, info: info ?? state.info };
      emit(false);
    },
    finish(info) {
      state = { ...state, done: state.total || state.done, elapsedS: (Date.now() - start) / 1000, info: info ?? state.info, finished: true };
      emit(true);
    },
    stop(info) {
      state = { ...state, elapsedS: (Date.now() - start) / 1000, info: info ?? state.info, finished: true, stopped: true };
      emit(true);
    },
  };
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}:${String(sec).padStart(2, "0")}`;
}

/** Text of one progress line: `label [#####.....] 50/100 0:10<0:10 loss=1.2`. */
export function formatProgress(s: ProgressState, width = 24): string {
  const frac = s.total > 0 ? Math.min(1, s.done / s.total) : 0;
  const bar = s.total > 0 ? `[${"#".repeat(Math.round(frac * width)).padEnd(width, ".")}] ` : "";
  const count = s.total > 0 ? `${s.done}/${s.total}` : `${s.done}`;
  const eta = s.total > 0 && s.done > 0 && !s.finished ? `<${formatDuration((s.elapsedS / s.done) * (s.total - s.done))}` : "";
  const info = Object.entries(s.info).map(([k, v]) => `${k}=${typeof v === "number" ? fmtNum(v) : v}`).join(" ");
  return `${s.label} ${bar}${count} ${formatDuration(s.elapsedS)}${eta}${s.stopped ? " stopped" : ""} ${info}`.trimEnd();
}

function fmtNum(v: number): string {
  return Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4);
}

/** On a TTY redraw one line; elsewhere (CI, pipes) print a line at most every 5 s and at the end. */
export function terminalSink(stream: TextStream = stderr): ProgressSink {
  let lastLine = 0;
  return (s) => {
    if (stream.isTTY) {
      stream.write(`\r\x1b[K${formatProgress(s)}${s.finished ? "\n" : ""}`);
    } else if (s.finished || Date.now() - lastLine > 5000) {
      lastLine = Date.now();
      stream.write(formatProgress(s) + "\n");
    }
  };
}

/** A sink that prints nothing (tests, --quiet). */
export const silentSink: ProgressSink = () => {};
