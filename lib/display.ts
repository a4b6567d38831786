// Rich output for the notebooks: HTML tables (rows or a danfo DataFrame), Plotly charts, answer spans highlighted in
// their context, token strips, and a progress display with a live loss curve that updates in place.
// Everything returns an HTML string; show*() sends it to the tslab kernel. Nothing happens at import: tslab and
// plotly.js are required only when first used, so the library and its tests load without a kernel.
import { notebookDisplay, packageFileText } from "./platform";
import type { ProgressSink, ProgressState } from "./progress";
import { formatDuration } from "./progress";

/** The part of tslab's Display we use (tslab.display, tslab.newDisplay()); tests pass a recorder instead. */
export interface HtmlDisplay {
  html(s: string): void;
}

/** A danfo.js DataFrame or Series, by the fields we read (danfojs-node prints only ASCII tables in Node). */
export interface FrameLike {
  columns: string[];
  values: unknown[] | unknown[][];
  index: (string | number)[];
}

export interface TableOptions {
  maxRows?: number; // rows shown; the rest are counted in a last row ("… 80 more rows")
  columns?: string[]; // which columns, in this order (default: all, in order of first appearance)
  caption?: string;
  maxChars?: number; // longer cell text is cut with "…" (the full text stays in the cell's tooltip)
  index?: boolean; // show a DataFrame's index as the first column
}

const DEFAULT_MAX_ROWS = 20;
const DEFAULT_MAX_CHARS = 160;

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escape text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/** A number as people read it in a table: integers as they are, others with 4 significant digits. */
export function formatCell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(3) : String(Number(v.toPrecision(4)));
  }
  if (typeof v === "string") return v;
  if (typeof v === "boolean" || typeof v === "bigint") return String(v);
  return JSON.stringify(v) ?? String(v);
}

function isFrameLike(x: unknown): x is FrameLike {
  const f = x as FrameLike;
  return typeof x === "object" && x !== null && !Array.isArray(x) && Array.isArray(f.columns) && Array.isArray(f.values);
}

/** Rows and columns of a DataFrame (values is 2-D) or a Series (values is 1-D, one column named by `columns[0]`). */
function frameRows(df: FrameLike, withIndex: boolean): { rows: Record<string, unknown>[]; columns: string[] } {
  const is2d = df.values.length > 0 ? Array.isArray(df.values[0]) : df.columns.length !== 1;
  const names = is2d ? df.columns : [df.columns[0] || "value"];
  const indexKey = names.includes("") ? "(index)" : "";
  // columns are passed explicitly: objects list integer-like keys ("0") first, whatever order they were added in
  const columns = withIndex ? [indexKey, ...names] : names;
  const rows = df.values.map((v, r) => {
    const row: Record<string, unknown> = withIndex ? { [indexKey]: df.index[r] } : {};
    if (is2d) (v as unknown[]).forEach((cell, c) => (row[names[c]] = cell));
    else row[names[0]] = v;
    return row;
  });
  return { rows, columns };
}

/** Table rows: any objects (interfaces need no index signature), one key per column. */
export type Rows = readonly object[];

/** An HTML table of `rows` (objects: one key per column) or of a danfo DataFrame/Series. Text is escaped. */
export function htmlTable(data: Rows | FrameLike, opts: TableOptions = {}): string {
  const frame = isFrameLike(data) ? frameRows(data, opts.index ?? true) : undefined;
  const rows = frame !== undefined ? frame.rows : (data as readonly Record<string, unknown>[]);
  const maxRows = opts.maxRows ?? DEFAULT_MAX_ROWS;
  const maxChars = opts.maxChars ?? DEFAULT_MAX_CHARS;
  let columns = opts.columns ?? frame?.columns;
  if (columns === undefined) {
    const seen = new Set<string>();
    for (const row of rows) for (const k of Object.keys(row)) seen.add(k);
    columns = [...seen];
  }
  const cell = (v: unknown) => {
    const text = formatCell(v);
    const numeric = typeof v === "number";
    const style = numeric ? ' style="text-align:right;font-variant-numeric:tabular-nums"' : ' style="text-align:left"';
    if (text.length <= maxChars) return `<td${style}>${escapeHtml(text)}</td>`;
    return `<td${style} title="${escapeHtml(text)}">${escapeHtml(text.slice(0, maxChars))}…</td>`;
  };
  const head = columns.map((c) => `<th style="text-align:left">${escapeHtml(c)}</th>`).join("");
  const body = rows.slice(0, maxRows).map((row) => `<tr>${columns!.map((c) => cell(row[c])).join("")}</tr>`);
  if (rows.length > maxRows) {
    body.push(`<tr><td colspan="${columns.length}" style="text-align:left;color:#777">… ${rows.length - maxRows} more rows (${rows.length} in all)</td></tr>`);
  }
  const caption = opts.caption !== undefined ? `<caption style="text-align:left;font-weight:bold">${escapeHtml(opts.caption)}</caption>` : "";
  return `<table class="bertqa-table">${caption}<thead><tr>${head}</tr></thead><tbody>${body.join("")}</tbody></table>`;
}

// ---- Plotly ---------------------------------------------------------------------------------------------------

export type PlotlyTrace = Record<string, unknown>;
export type PlotlyLayout = Record<string, unknown>;
export interface PlotOptions {
  height?: number; // pixels
  config?: Record<string, unknown>; // Plotly config, e.g. { displayModeBar: false }
}

const DEFAULT_PLOT_HEIGHT = 360;
// Shown in a chart's place until its script removes it: Jupyter runs no scripts in a notebook that is not trusted (one
// received, or opened from another machine), and without this the chart is blank space with no hint.
const UNTRUSTED_NOTE =
  `<p class="bertqa-untrusted" style="color:#b71c1c;font-family:sans-serif">This chart is not drawn: the notebook is not ` +
  `trusted, so Jupyter does not run its scripts. Trust it (JupyterLab: Command Palette, "Trust Notebook"; classic ` +
  `Notebook: File, Trust Notebook; or <code>jupyter trust NOTEBOOK.ipynb</code>), then run the cell again.</p>`;
let plotlyInlined = false; // plotly.js (10 MB, unminified) goes into the first chart's output only; later charts use window.Plotly

/** Inline plotly.js again with the next chart (after clearing the output that carried it). */
export function resetPlotlyInline(): void {
  plotlyInlined = false;
}

/** JSON that is safe inside a <script> element (no "</script>", no line separators that end a JS string). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

function plotlyScript(): string {
  return packageFileText("plotly.js-dist/plotly.js").replace(/<\/script/gi, "<\\/script");
}

/**
 * HTML (a div and a script) that draws a Plotly chart. The first call in a kernel session also inlines plotly.js,
 * so the chart works offline, in `jupyter nbconvert --to html` and in JupyterLab (trusted notebooks run scripts).
 * Example: `showHtml(plotlyHtml([{ type: "bar", x: ["a", "b"], y: [3, 5] }], { title: { text: "counts" } }))`
 */
export function plotlyHtml(traces: PlotlyTrace[], layout: PlotlyLayout = {}, opts: PlotOptions = {}): string {
  const height = opts.height ?? DEFAULT_PLOT_HEIGHT;
  const id = `bertqa-plot-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  const fullLayout = { height, margin: { t: 40, r: 20, b: 50, l: 60 }, ...layout };
  const config = { responsive: true, displaylogo: false, ...opts.config };
  const library = plotlyInlined ? "" : `<script type="text/javascript">${plotlyScript()}</script>`;
  plotlyInlined = true;
  const missing =
    "plotly.js is not loaded in this page: trust the notebook (jupyter trust notebooks/*.ipynb) " +
    "or run resetPlotlyInline() and this cell again.";
  const draw =
    `(function(){var el=document.getElementById(${scriptJson(id)});` +
    `if(!window.Plotly){el.textContent=${scriptJson(missing)};return;}` +
    `el.textContent="";` + // the script runs: the notebook is trusted, the note below goes
    `window.Plotly.newPlot(el,${scriptJson(traces)},${scriptJson(fullLayout)},${scriptJson(config)});})();`;
  return `${library}<div id="${id}" class="bertqa-plot" style="width:100%;min-height:${height}px">${UNTRUSTED_NOTE}</div><script type="text/javascript">${draw}</script>`;
}

// ---- spans and tokens -------------------------------------------------------------------------------------------

export interface Span {
  start: number; // UTF-16 index into the text, half-open [start, end)
  end: number;
  label?: string; // shown as a tooltip
  color?: string; // CSS colour; default yellow
}

const SPAN_COLORS = ["#fff59d", "#a5d6a7", "#90caf9", "#f48fb1", "#ffcc80"];

/**
 * `text` as HTML with each span marked (overlaps allowed: the overlap gets the later span's colour and an outline).
 * Example: `highlightSpans(ex.context, [{ start: a.answer_start, end: a.answer_start + a.text.length, label: "gold" }])`
 */
export function highlightSpans(text: string, spans: Span[]): string {
  for (const s of spans) {
    if (!(s.start >= 0 && s.end >= s.start && s.end <= text.length)) {
      throw new RangeError(`highlightSpans: span [${s.start}, ${s.end}) is outside the text (length ${text.length})`);
    }
  }
  const cuts = [...new Set([0, text.length, ...spans.flatMap((s) => [s.start, s.end])])].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [a, b] = [cuts[i], cuts[i + 1]];
    const piece = escapeHtml(text.slice(a, b));
    const covering = spans.map((s, k) => ({ s, k })).filter(({ s }) => s.start <= a && b <= s.end);
    if (covering.length === 0) {
      parts.push(piece);
      continue;
    }
    const { s, k } = covering[covering.length - 1];
    const color = s.color ?? SPAN_COLORS[k % SPAN_COLORS.length];
    const title = covering.map(({ s: c }) => c.label).filter((l) => l !== undefined).join(" + ");
    const outline = covering.length > 1 ? ";outline:2px solid #e65100" : "";
    parts.push(`<mark style="background:${color};padding:0 1px${outline}"${title !== "" ? ` title="${escapeHtml(title)}"` : ""}>${piece}</mark>`);
  }
  return `<div class="bertqa-spans" style="white-space:pre-wrap;line-height:1.6;font-family:Georgia,serif">${parts.join("")}</div>`;
}

/** Which tokens to highlight: an inclusive token range, or a list of token indices. */
export type TokenHighlight = { start: number; end: number; color?: string } | number[];

export interface TokensOptions {
  tokenTypeIds?: number[]; // segment B (the context) gets a tinted box
  maxTokens?: number; // show at most this many (default 512)
  showOffsets?: boolean; // print [start, end) under each token (default true when offsets are given)
}

const SPECIAL_TOKEN = /^\[(CLS|SEP|PAD|UNK|MASK)\]$/;

/**
 * A strip of boxes, one per token, with its index and character offsets; highlighted tokens (e.g. the answer) are
 * yellow, special tokens grey, the second segment tinted. `offsets[i]` may be null (special tokens, the question).
 */
export function tokensHtml(
  tokens: string[],
  offsets?: ([number, number] | null)[] | null,
  highlight?: TokenHighlight,
  opts: TokensOptions = {},
): string {
  const marked = new Set<number>();
  if (Array.isArray(highlight)) highlight.forEach((i) => marked.add(i));
  else if (highlight !== undefined) for (let i = highlight.start; i <= highlight.end; i++) marked.add(i);
  const markColor = !Array.isArray(highlight) && highlight?.color !== undefined ? highlight.color : "#ffeb3b";
  const limit = Math.min(tokens.length, opts.maxTokens ?? 512);
  const showOffsets = opts.showOffsets ?? (offsets !== undefined && offsets !== null);
  const boxes: string[] = [];
  for (let i = 0; i < limit; i++) {
    const tok = tokens[i];
    const off = offsets?.[i] ?? null;
    const special = SPECIAL_TOKEN.test(tok);
    const bg = marked.has(i) ? markColor : special ? "#e0e0e0" : opts.tokenTypeIds?.[i] === 1 ? "#e3f2fd" : "#fafafa";
    const border = marked.has(i) ? "#f57f17" : "#bdbdbd";
    const sub = showOffsets && off !== null ? `${i} · ${off[0]}-${off[1]}` : `${i}`;
    boxes.push(
      `<span style="display:inline-block;margin:2px;padding:1px 4px;border:1px solid ${border};border-radius:3px;` +
        `background:${bg};text-align:center;font-family:monospace;vertical-align:top">${escapeHtml(tok)}` +
        `<br><span style="font-size:70%;color:#666">${sub}</span></span>`,
    );
  }
  if (tokens.length > limit) boxes.push(`<span style="color:#777">… ${tokens.length - limit} more tokens</span>`);
  return `<div class="bertqa-tokens" style="line-height:1.2">${boxes.join("")}</div>`;
}

// ---- showing and progress ---------------------------------------------------------------------------------------

function tslabDisplay(): HtmlDisplay {
  return notebookDisplay().display;
}

function tslabNewDisplay(): HtmlDisplay {
  return notebookDisplay().newDisplay();
}

/** Show HTML as this cell's output (in a tslab kernel). */
export function showHtml(html: string, display: HtmlDisplay = tslabDisplay()): void {
  display.html(html);
}

/** Shorthands: show a table / a chart. */
export function showTable(data: Rows | FrameLike, opts?: TableOptions): void {
  showHtml(htmlTable(data, opts));
}
export function showPlot(traces: PlotlyTrace[], layout?: PlotlyLayout, opts?: PlotOptions): void {
  showHtml(plotlyHtml(traces, layout, opts));
}

/** An inline SVG line chart of (x, y) points: light enough to redraw on every progress update. */
export function lineSvg(points: [number, number][], opts: { width?: number; height?: number; label?: string } = {}): string {
  const width = opts.width ?? 480, height = opts.height ?? 140, pad = 34;
  const finite = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (finite.length === 0) return "";
  const xs = finite.map((p) => p[0]), ys = finite.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - pad - 8);
  const sy = (y: number) => height - 18 - ((y - y0) / (y1 - y0 || 1)) * (height - 30);
  const path = finite.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
  const label = opts.label ?? "";
  const text = (x: number, y: number, s: string, anchor = "start") =>
    `<text x="${x}" y="${y}" font-size="10" fill="#555" text-anchor="${anchor}">${escapeHtml(s)}</text>`;
  return (
    `<svg width="${width}" height="${height}" style="background:#fff;border:1px solid #ddd">` +
    `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${path}"/>` +
    text(2, 12, `${label} ${formatCell(y1)}`) + text(2, height - 20, formatCell(y0)) +
    text(pad, height - 4, formatCell(x0)) + text(width - 8, height - 4, formatCell(x1), "end") +
    `</svg>`
  );
}

const MAX_CURVE_POINTS = 400; // keep each redraw small: older points are thinned, the newest kept

export interface NotebookSinkOptions {
  curves?: string[]; // numeric info keys to plot against `done` (default ["loss"])
  newDisplay?: () => HtmlDisplay; // default tslab.newDisplay
}

/** HTML for one progress state and its curves: a bar, counts, elapsed/remaining time, info, and line charts. */
export function progressHtml(s: ProgressState, curves: Record<string, [number, number][]> = {}): string {
  const frac = s.total > 0 ? Math.min(1, s.done / s.total) : 0;
  const eta = s.total > 0 && s.done > 0 && !s.finished ? ` · ${formatDuration((s.elapsedS / s.done) * (s.total - s.done))} left` : "";
  const count = s.total > 0 ? `${s.done}/${s.total}` : `${s.done}`;
  const info = Object.entries(s.info).map(([k, v]) => `${escapeHtml(k)}=<b>${escapeHtml(formatCell(v))}</b>`).join(" ");
  const bar =
    s.total > 0
      ? `<div style="display:inline-block;width:240px;height:10px;background:#eee;border-radius:5px;vertical-align:middle">` +
        `<div style="width:${(frac * 100).toFixed(1)}%;height:100%;background:${s.stopped ? "#fb8c00" : s.finished ? "#43a047" : "#1e88e5"};border-radius:5px"></div></div> `
      : "";
  const charts = Object.entries(curves).map(([k, pts]) => lineSvg(pts, { label: k })).filter((h) => h !== "").join(" ");
  return (
    `<div class="bertqa-progress" style="font-family:monospace">` +
    `<b>${escapeHtml(s.label)}</b> ${bar}${count} · ${formatDuration(s.elapsedS)}${eta}${s.stopped ? ` · <b style="color:#e65100">stopped at ${s.done}</b>` : s.finished ? " · done" : ""}` +
    `<br>${info}${charts !== "" ? `<br>${charts}` : ""}</div>`
  );
}

/**
 * A progress sink for notebooks: each progress run (label) gets its own output that is redrawn in place, with a live
 * chart of the numeric info keys in `curves`. Use: `setDefaultProgressSink(notebookProgressSink())`.
 */
export function notebookProgressSink(opts: NotebookSinkOptions = {}): ProgressSink {
  const curveKeys = opts.curves ?? ["loss"];
  const open = opts.newDisplay ?? tslabNewDisplay;
  let current: { label: string; display: HtmlDisplay; lastDone: number; curves: Record<string, [number, number][]> } | undefined;
  return (s) => {
    // a new run: another label, a counter that went back, or the previous run finished
    if (current === undefined || current.label !== s.label || s.done < current.lastDone) {
      current = { label: s.label, display: open(), lastDone: s.done, curves: {} };
    }
    for (const k of curveKeys) {
      const v = s.info[k];
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      const pts = (current.curves[k] ??= []);
      if (pts.length === 0 || pts[pts.length - 1][0] !== s.done) pts.push([s.done, v]);
      if (pts.length > MAX_CURVE_POINTS) current.curves[k] = pts.filter((_, i) => i % 2 === 0 || i === pts.length - 1);
    }
    current.lastDone = s.done;
    current.display.html(progressHtml(s, current.curves));
    if (s.finished) current = undefined;
  };
}
