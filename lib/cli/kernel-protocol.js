// The bertqa kernel's side of Jupyter's messaging protocol where tslab leaves it (Jupyter's conformance suite checks it:
// test/kernel-conformance.test.ts). A cell's last value is an execute_result (Out[n]), not stdout text; a failed cell
// sends one `error` message, and its execute_reply carries the same ename, evalue and traceback (nbclient and JupyterLab
// read them there); kernel_info_reply, shutdown_reply and comm_info_reply have their status and type. Tracebacks name
// the cell's lines (`In[n]:line:col`) and lib/*.ts lines instead of tslab's compiled code, through the source maps
// TypeScript writes when asked. Plain JavaScript, like run-notebooks.js, which starts the kernel.
"use strict";
const path = require("node:path");
const util = require("node:util");
const { SourceMap } = require("node:module");

const INLINE_MAP = /\n\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/;
const MAP_COMMENT = /\n\/\/# sourceMappingURL=\S*\s*$/;

/**
 * Have tslab's TypeScript write source maps for the cells and the lib/ files it compiles, and keep them. tslab compiles
 * in two steps (TypeScript to an ES module, then that to CommonJS), so each compiled file has two maps. Must run before
 * tslab's converter is loaded, which keeps the module object it gets: its functions are read-only getters, so the
 * cached module is replaced by a copy with two of them wrapped.
 */
function recordSourceMaps(req) {
  const tsPath = req.resolve("@tslab/typescript-for-tslab", { paths: [path.dirname(req.resolve("tslab/package.json"))] });
  const ts = req(tsPath);
  const pending = []; // compiled by the current convert: { output, first, second }
  const props = Object.getOwnPropertyDescriptors(ts);
  props.createWatchCompilerHost = { enumerable: true, value: (roots, options, ...rest) => ts.createWatchCompilerHost(roots, { ...options, inlineSourceMap: true }, ...rest) };
  props.transpileModule = {
    enumerable: true,
    value: (input, opts) => {
      const inline = INLINE_MAP.exec(input);
      const r = ts.transpileModule(inline ? input.slice(0, inline.index) : input, { ...opts, compilerOptions: { ...opts.compilerOptions, sourceMap: true } });
      const outputText = r.outputText.replace(MAP_COMMENT, "\n");
      if (inline) pending.push({ output: outputText, first: JSON.parse(Buffer.from(inline[1], "base64").toString()), second: JSON.parse(r.sourceMapText) });
      return { ...r, outputText };
    },
  };
  req.cache[tsPath].exports = Object.defineProperties({}, props);
  const maps = new Map(); // a frame's file (a lib/*.js path, or In[n] for a cell) → its maps and the source it maps to
  return {
    tsVersion: ts.version,
    /** Keep the maps of the code compiled as `output`, for stack frames that name `file`. */
    keep(file, output) {
      const found = pending.find((p) => p.output === output);
      if (found === undefined) return;
      const source = file.startsWith("In[") ? file : path.join(path.dirname(file), path.basename(found.first.sources[0]));
      maps.set(file, { first: found.first, second: found.second, source, lines: output.split("\n").length });
    },
    forget: () => (pending.length = 0),
    /** Where line:col (1-based) of compiled `file` comes from; null if unknown, "tslab" past its end (tslab's wrapper). */
    locate(file, line, col) {
      const m = maps.get(file);
      if (m === undefined) return null;
      if (line > m.lines) return "tslab";
      if (!(m.first instanceof SourceMap)) Object.assign(m, { first: new SourceMap(m.first), second: new SourceMap(m.second) });
      const esm = m.second.findEntry(line - 1, col - 1);
      const ts = esm.originalLine === undefined ? {} : m.first.findEntry(esm.originalLine, esm.originalColumn);
      if (ts.originalLine === undefined) return null;
      // tslab puts one line ("export {};") before a cell's code
      return { source: m.source, line: ts.originalLine + (m.source.startsWith("In[") ? 0 : 1), col: ts.originalColumn + 1 };
    },
  };
}

const FRAME = /^(\s+at (?:.*? \()?)(.+?):(\d+):(\d+)(\)?)$/;
const KERNEL_FILES = [__filename, path.join(__dirname, "run-notebooks.js")];

/** A stack's frames, mapped to cells and lib/*.ts lines; tslab's, the kernel's and Node's internal frames left out. */
function cellFrames(stack, { sources, root, tslabDir }) {
  const frames = [];
  for (const line of String(stack).split("\n").filter((l) => /^\s+at /.test(l))) {
    const m = FRAME.exec(line);
    if (m === null) {
      frames.push(line);
      continue;
    }
    const [, head, file, l, c, tail] = m;
    if (/^node:(internal|vm)/.test(file) || file.startsWith(tslabDir + path.sep) || KERNEL_FILES.includes(file)) continue;
    const at = sources.locate(file, Number(l), Number(c));
    if (at === "tslab") continue;
    const where = at === null ? `${file}:${l}:${c}` : `${at.source}:${at.line}:${at.col}`;
    frames.push(`${head}${path.isAbsolute(where) && where.startsWith(root + path.sep) ? path.relative(root, where) : where}${tail}`);
  }
  return frames;
}

/**
 * What a failed cell shows: Jupyter's error content (ename, evalue, traceback) from what tslab's executor reported with
 * console.error (`reports`: each call's arguments). A user mistake (lib/errors.ts, ■'s stop) is one line, as the CLI
 * prints it; a bug keeps its stack, in the cell's lines; TypeScript's diagnostics are listed as tslab prints them.
 */
function errorContent(reports, where) {
  const diagnostics = reports.filter((a) => a[0] === "%s%d:%d - %s").map((a) => util.format(...a));
  if (diagnostics.length > 0) return { ename: "TSError", evalue: diagnostics.join("\n"), traceback: diagnostics };
  const all = reports.flat();
  const err = all.find((a) => a instanceof Error || (a !== null && typeof a === "object" && typeof a.message === "string"));
  const oneLine = (ename, message) => ({ ename, evalue: message, traceback: [message] });
  if (err === undefined) {
    const value = all.map((a) => util.inspect(a)).join(" "); // a thrown string or object: shown as Node shows it
    return { ename: "Error", evalue: value, traceback: [`Uncaught ${value}`] };
  }
  if (err.name === "UserError") return oneLine("UserError", err.message);
  if (err.message === "Interrupted asynchronously") {
    return oneLine("Interrupted", "Interrupted (■): the cell was abandoned; library work it started stops at its next step, anything else it awaited may still finish");
  }
  if (/^Script execution was interrupted/.test(err.message)) return oneLine("Interrupted", "Interrupted (■)");
  const name = String(err.name ?? "Error");
  return { ename: name, evalue: err.message, traceback: [err.message ? `${name}: ${err.message}` : name, ...cellFrames(err.stack, where)] };
}

/**
 * The protocol layer over tslab's kernel (`req` resolves from the served clone `root`): `executorConsole` is the console
 * to give tslab's executor (it reports a cell's last value with log, a failure with error), `converter` wraps tslab's
 * converter so that each cell's code is named In[n] in stack traces, and `install` replaces the handlers of tslab's
 * ZmqServer and JupyterHandlerImpl that stray from the protocol; `reportOutside(args)` prints an error reported while no
 * cell runs. Call it before tslab's converter is loaded (see recordSourceMaps).
 */
function jupyterProtocol(req, root) {
  const sources = recordSourceMaps(req);
  const where = { sources, root, tslabDir: path.dirname(req.resolve("tslab/package.json")) };
  let cell = null; // the running cell: { count, value (its last, if not null or undefined), reports }
  const executorConsole = {
    log: (value) => (cell !== null ? (cell.value = value) : console.log(value)),
    error: (...args) => (cell !== null ? cell.reports.push(args) : reportOutside(args)),
  };

  /** An error while no cell runs (a rejection in the background) goes to stderr, which is the last cell's, as a cell's. */
  function reportOutside(args) {
    const labels = args.filter((a) => typeof a === "string" && a.endsWith(":"));
    console.error([...labels, errorContent([args.filter((a) => !labels.includes(a))], where).traceback.join("\n")].join(" "));
  }

  function converter(conv) {
    const convert = conv.convert;
    conv.convert = (prevDecl, src) => {
      sources.forget();
      const r = convert(prevDecl, src);
      for (const side of r.sideOutputs ?? []) sources.keep(side.path, side.data);
      if (r.output !== undefined && cell !== null) {
        const name = `In[${cell.count}]`;
        sources.keep(name, r.output);
        r.output += `\n//# sourceURL=${name}`; // V8 names the script's frames after this comment
      }
      return r;
    };
    return conv;
  }

  function install(server, handler) {
    const { TaskCanceledError } = req("tslab/dist/util.js");
    const jupyter = req("tslab/dist/jupyter.js");
    const kernelInfo = handler.handleKernel.bind(handler);
    handler.handleKernel = () => {
      const info = kernelInfo();
      return { ...info, status: "ok", language_info: { ...info.language_info, version: sources.tsVersion } };
    };
    handler.handleShutdown = (request) => ({ status: "ok", restart: Boolean(request.restart) });
    server.handleCommInfoRequest = (sock, msg) => sendTo(sock, server, msg, "comm_info_reply", { status: "ok", comms: {} });

    async function runCell(request, send) {
      const count = ++handler.execCount;
      // as tslab: the cell's output (and output printed after it ends) goes to this cell
      process.stdout.write = handler.createWriteToIopub("stdout", (name, text) => send("stream", { name, text }));
      process.stderr.write = handler.createWriteToIopub("stderr", (name, text) => send("stream", { name, text }));
      jupyter.lastWriteDisplayData = (data, update) => send(update ? "update_display_data" : "display_data", data);
      send("execute_input", { code: request.code, execution_count: count });
      const done = (cell = { count, value: undefined, reports: [] });
      let ok;
      try {
        ok = await handler.executor.execute(request.code);
      } finally {
        cell = null;
      }
      if (!ok) {
        const error = errorContent(done.reports, where);
        send("error", error);
        throw Object.assign(new Error(error.evalue), { count, error });
      }
      for (const args of done.reports) reportOutside(args); // diagnostics of a `//%module` cell, which still runs
      if (done.value !== undefined) send("execute_result", { execution_count: count, data: { "text/plain": util.inspect(done.value) }, metadata: {} });
      return count;
    }

    server.handleExecute = async (sock, msg) => {
      const send = (type, content) => sendTo(server.iopub, server, msg, type, content);
      let content;
      try {
        content = { status: "ok", execution_count: await handler.execQueue.add(() => runCell(msg.content, send)), payload: [], user_expressions: {} };
      } catch (e) {
        if (e instanceof TaskCanceledError) {
          content = { status: "abort" }; // queued behind a failed cell (as tslab)
        } else {
          // Run All stops at a failed cell: tslab cancels what is queued within 200 ms, then takes new cells again
          handler.execQueue.reset(200);
          const error = e.error ?? errorContent([[e]], where);
          content = { status: "error", execution_count: e.count ?? handler.execCount, ...error };
        }
      }
      sendTo(sock, server, msg, "execute_reply", content);
    };
  }

  return { executorConsole, converter, install, reportOutside };
}

/** Send a message of `type`, child of `msg`, on `sock`, as tslab's ZmqServer does. */
function sendTo(sock, server, msg, type, content) {
  const out = msg.createReply();
  out.header.msg_type = type;
  out.content = content;
  out.signAndSend(server.connInfo.key, sock);
}

module.exports = { jupyterProtocol };
