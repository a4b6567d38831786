// The bertqa kernel as JupyterLite runs it: this half lives in the page (JupyterLite's BaseKernel speaks Jupyter's
// protocol to JupyterLab), has each cell type-checked and compiled by one worker (compiler.ts) and runs it in another,
// a module Web Worker beside the library (worker.ts). ■ sets the shared stop flag (STOP_FLAG in lib/stop.ts) and sends
// a message, so library work stops at its next step; Restart disposes this kernel, which ends both workers and their
// memory, and JupyterLite starts a new one.
import { BaseKernel, type IKernel } from "@jupyterlite/services";
import type { KernelMessage } from "@jupyterlab/services";
import type { CompilerRequest, ErrorInfo, FromCompiler, FromPage, MimeBundle, ToCompiler, ToPage } from "./protocol";

export interface SiteUrls {
  worker: string; // kernel/worker.js
  types: string; // bertqa/types.json, what the type checker reads (lib/site/types.ts)
  bundle: string; // the library bundle, bertqa.js
  danfo: string; // danfojs.js
  files: string; // the repository's files as the site serves them (the library's base)
}

export interface BertqaKernelOptions extends IKernel.IOptions {
  urls: SiteUrls;
  env: Record<string, string>; // process.env in the worker
}

type Reply = KernelMessage.IExecuteReplyMsg["content"];
type Outcome = { type: "done"; value?: MimeBundle } | { type: "error"; error: ErrorInfo };

const RED = "\x1b[0;31m", RESET = "\x1b[0m";
const RUN_URL = /bertqa-run-(\d+)\.js:(\d+):\d+/g; // a run's frames in a stack (its sourceURL)

export class BertqaKernel extends BaseKernel {
  private readonly worker: Worker;
  private readonly compiler: Worker; // TypeScript, with this kernel's declarations so far
  private readonly compilerReady: Promise<{ typescriptVersion: string; warning?: string; broken?: ErrorInfo }>;
  private warned = false; // the compiler's warning (no type checks) is said once, in the first cell's output
  private readonly asked = new Map<number, (m: FromCompiler) => void>(); // compiler requests by id
  private nextAsk = 0;
  private readonly stopFlag: Int32Array | undefined;
  private readonly started: Promise<ErrorInfo | undefined>;
  private running: { id: number; settle(o: Outcome): void } | undefined;
  private nextRun = 0;
  private readonly runs = new Map<number, { count: number; source: string[]; lines: (number | undefined)[] }>(); // for tracebacks

  constructor(options: BertqaKernelOptions) {
    super(options);
    const { urls, env } = options;
    this.worker = new Worker(urls.worker, { type: "module", name: `bertqa kernel ${options.id}` });
    // A SharedArrayBuffer exists only when the page is cross-origin isolated (the site's COOP/COEP headers).
    const shared = globalThis.crossOriginIsolated ? new SharedArrayBuffer(4) : undefined;
    this.stopFlag = shared !== undefined ? new Int32Array(shared) : undefined;
    // What keeps every cell from running, as one line: the library or the worker did not load.
    const broken = (message: string): ErrorInfo => ({ name: "Error", message, stack: "", user: true });
    this.started = new Promise((resolve) => {
      this.worker.addEventListener("message", (ev: MessageEvent<ToPage>) => {
        if (ev.data.type !== "ready") this.onWorkerMessage(ev.data);
        else resolve(ev.data.error === undefined ? undefined : broken(`the library did not load: ${ev.data.error.message}`));
      });
      this.worker.addEventListener("error", (ev) => resolve(broken(`the kernel's worker did not start: ${ev.message || urls.worker}`)));
    });
    const init: FromPage = { type: "init", bundleUrl: urls.bundle, danfoUrl: urls.danfo, base: urls.files, env, stopBuffer: shared };
    this.worker.postMessage(init);
    // rspack bundles compiler.ts, with TypeScript, as a worker chunk of its own
    this.compiler = new Worker(new URL("./compiler.ts", import.meta.url), { name: `bertqa compiler ${options.id}` });
    this.compilerReady = new Promise((resolve) => {
      this.compiler.addEventListener("message", (ev: MessageEvent<FromCompiler>) => {
        const m = ev.data;
        if (m.type === "ready") resolve(m);
        else this.asked.get(m.id)?.(m);
      });
      this.compiler.addEventListener("error", (ev) => resolve({ typescriptVersion: "", broken: broken(`the kernel's compiler did not start: ${ev.message || "compiler worker"}`) }));
    });
    this.compiler.postMessage({ type: "init", typesUrl: urls.types } satisfies ToCompiler);
  }

  get ready(): Promise<void> {
    return Promise.all([this.started, this.compilerReady]).then(() => undefined);
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.worker.terminate(); // the worker's memory (model, tensors, wasm heap) goes with it
    this.compiler.terminate();
    this.running?.settle({ type: "error", error: { name: "Restarted", message: "the kernel was restarted", stack: "", user: true } });
    super.dispose();
  }

  /** ■: running library work stops at its next step. The shared flag reaches the worker even while a cell computes;
   * without one (no cross-origin isolation) the message sets the worker's own flag when it next yields. */
  interrupt(): void {
    if (this.stopFlag !== undefined) Atomics.store(this.stopFlag, 0, 1);
    else this.worker.postMessage({ type: "stop" } satisfies FromPage);
  }

  async kernelInfoRequest(): Promise<KernelMessage.IInfoReplyMsg["content"]> {
    const { typescriptVersion } = await this.compilerReady;
    return {
      status: "ok",
      protocol_version: "5.3",
      implementation: "bertqa-browser",
      implementation_version: "0.1.0",
      language_info: {
        name: "typescript", version: typescriptVersion, mimetype: "text/typescript", file_extension: ".ts",
        codemirror_mode: { name: "javascript", typescript: true },
      },
      banner: "TypeScript in the browser: the bertqa workbook's kernel (a Web Worker with the library bundle)",
      help_links: [],
    };
  }

  async executeRequest(content: KernelMessage.IExecuteRequestMsg["content"]): Promise<Reply> {
    const n = this.executionCount;
    const failed = (await this.started) ?? (await this.compilerReady).broken;
    if (failed !== undefined) return this.fail(n, failed);
    const { warning } = await this.compilerReady;
    if (warning !== undefined && !this.warned) this.stream({ name: "stderr", text: `bertqa kernel: ${warning}\n` });
    this.warned = true;
    const c = await this.ask({ type: "compile", code: content.code });
    const source = content.code.split("\n");
    if (c.type === "syntaxError") return this.fail(n, { name: "SyntaxError", message: c.error.message, stack: "", user: false }, [frame(n, c.error.line, source, c.error.column)]);
    if (c.type === "typeErrors") return this.failTypes(n, c.diagnostics.map((d) => `${d.line}:${d.column} - ${d.message}`));
    if (c.type !== "compiled") throw new Error(`the compiler answered ${c.type}`);
    const compiled = c.cell;
    const id = ++this.nextRun;
    this.runs.set(id, { count: n, source, lines: compiled.lines });
    if (this.stopFlag !== undefined) Atomics.store(this.stopFlag, 0, 0); // a ■ from before this cell stops nothing in it
    const outcome = await new Promise<Outcome>((settle) => {
      this.running = { id, settle };
      this.worker.postMessage({ type: "run", id, js: compiled.js, url: `bertqa-run-${id}.js` } satisfies FromPage);
    });
    this.running = undefined;
    if (outcome.type === "error") return this.fail(n, outcome.error, outcome.error.user ? [] : this.cellFrames(outcome.error.stack));
    this.compiler.postMessage({ type: "commit" } satisfies ToCompiler);
    if (outcome.value !== undefined) this.publishExecuteResult({ execution_count: n, data: outcome.value, metadata: {} });
    return { status: "ok", execution_count: n, user_expressions: {}, payload: [] };
  }

  /** Tab: names from the type checker, as tslab completes them. Jupyter counts the cursor in code points. */
  async completeRequest(content: KernelMessage.ICompleteRequestMsg["content"]): Promise<KernelMessage.ICompleteReplyMsg["content"]> {
    const { code, cursor_pos } = content;
    const none = { status: "ok" as const, matches: [], cursor_start: cursor_pos, cursor_end: cursor_pos, metadata: {} };
    if ((await this.compilerReady).broken !== undefined) return none;
    const r = await this.ask({ type: "complete", code, pos: utf16Offset(code, cursor_pos) });
    if (r.type !== "complete") return none;
    const { start, end, matches } = r.completion;
    return { ...none, matches, cursor_start: codePoints(code, start), cursor_end: codePoints(code, end) };
  }

  /** Shift-Tab: the type and documentation of the name at the cursor, as tslab shows them. */
  async inspectRequest(content: KernelMessage.IInspectRequestMsg["content"]): Promise<KernelMessage.IInspectReplyMsg["content"]> {
    const none = { status: "ok" as const, found: false, data: {}, metadata: {} };
    if ((await this.compilerReady).broken !== undefined) return none;
    const r = await this.ask({ type: "inspect", code: content.code, pos: utf16Offset(content.code, content.cursor_pos) });
    return r.type === "inspect" && r.text !== undefined ? { ...none, found: true, data: { "text/plain": r.text } } : none;
  }

  /** A console's Enter runs the input unless it ends inside an unclosed bracket, string or comment. */
  async isCompleteRequest(content: KernelMessage.IIsCompleteRequestMsg["content"]): Promise<KernelMessage.IIsCompleteReplyMsg["content"]> {
    if ((await this.compilerReady).broken !== undefined) return { status: "complete" }; // Enter runs it, and says why it cannot
    const r = await this.ask({ type: "isIncomplete", code: content.code });
    return r.type === "isIncomplete" && r.incomplete ? { status: "incomplete", indent: "" } : { status: "complete" };
  }

  async commInfoRequest(): Promise<KernelMessage.ICommInfoReplyMsg["content"]> {
    return { status: "ok", comms: {} };
  }

  inputReply(): void {}
  async commOpen(): Promise<void> {}
  async commMsg(): Promise<void> {}
  async commClose(): Promise<void> {}

  private onWorkerMessage(m: ToPage): void {
    if (m.type === "stream") this.stream({ name: m.name, text: m.text });
    else if (m.type === "display") {
      if (m.update && m.displayId !== undefined) this.updateDisplayData({ data: m.data, metadata: {}, transient: { display_id: m.displayId } });
      else this.displayData({ data: m.data, metadata: {}, transient: m.displayId !== undefined ? { display_id: m.displayId } : {} });
    } else if ((m.type === "done" || m.type === "error") && this.running?.id === m.id) this.running.settle(m);
  }

  /** One `error` output and the error reply. The library's user errors (and ■'s stop) are one line, as in the CLI. */
  private fail(n: number, e: ErrorInfo, frames: string[] = []): Reply {
    const traceback = e.user ? [e.message] : [`${RED}${e.name}${RESET}: ${e.message}`, ...frames];
    return this.failWith(n, { ename: e.name, evalue: e.message, traceback });
  }

  /** TypeScript's errors as tslab's Node kernel reports them (lib/cli/kernel-protocol.js): "line:column - message". */
  private failTypes(n: number, lines: string[]): Reply {
    return this.failWith(n, { ename: "TSError", evalue: lines.join("\n"), traceback: lines });
  }

  /** The error output, and the reply that carries the same content. */
  private failWith(n: number, content: { ename: string; evalue: string; traceback: string[] }): Reply {
    this.publishExecuteError(content);
    return { status: "error", execution_count: n, ...content };
  }

  /** A request to the compiler worker, answered by the message with its id. */
  private ask(m: CompilerRequest): Promise<FromCompiler> {
    const id = ++this.nextAsk;
    return new Promise((resolve) => {
      this.asked.set(id, (reply) => {
        this.asked.delete(id);
        resolve(reply);
      });
      this.compiler.postMessage({ ...m, id } satisfies ToCompiler);
    });
  }

  /** The stack's frames in cells (this one, or earlier ones through functions they declared); the bundle's are left out. */
  private cellFrames(stack: string): string[] {
    const frames: string[] = [];
    for (const [, id, jsLine] of stack.matchAll(RUN_URL)) {
      const run = this.runs.get(Number(id));
      const line = run?.lines[Number(jsLine) - 1];
      if (run !== undefined && line !== undefined) frames.push(frame(run.count, line, run.source));
    }
    return frames;
  }
}

/** "Cell In[3], line 2" and that line, as ipykernel shows where an error happened (with a caret under a column). */
function frame(count: number, line: number, source: string[], column?: number): string {
  const code = source[line - 1] ?? "";
  const caret = column !== undefined ? `\n${" ".repeat(column + 5)}^` : "";
  return `Cell In[${count}], line ${line}\n----> ${code}${caret}`;
}

/** Jupyter's cursor (code points) as a JavaScript string offset (UTF-16 units), and back. */
function utf16Offset(code: string, codePoints: number): number {
  let i = 0;
  for (let n = 0; n < codePoints && i < code.length; n++) i += code.codePointAt(i)! > 0xffff ? 2 : 1;
  return i;
}

function codePoints(code: string, utf16: number): number {
  return [...code.slice(0, utf16)].length;
}
