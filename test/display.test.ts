import { test } from "node:test";
import assert from "node:assert/strict";
import * as vm from "node:vm";
import {
  escapeHtml, formatCell, highlightSpans, htmlTable, lineSvg, notebookProgressSink, plotlyHtml, progressHtml,
  resetPlotlyInline, tokensHtml, type HtmlDisplay,
} from "../lib/display";
import { progress } from "../lib/progress";

/** Text content of an HTML fragment (tags removed, entities decoded): what a reader sees. */
function visibleText(html: string): string {
  return html
    .replace(/<[^>]*>/g, "")
    .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, "&");
}

/** Cells of an HTML table as text, row by row (header first). */
function tableCells(html: string): string[][] {
  return [...html.matchAll(/<tr>(.*?)<\/tr>/g)].map((m) => [...m[1].matchAll(/<t[hd][^>]*>(.*?)<\/t[hd]>/g)].map((c) => visibleText(c[1])));
}

test("escapeHtml escapes every character that could open a tag or end an attribute", () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
});

test("formatCell: integers as they are, fractions with 4 significant digits, objects as JSON", () => {
  const cases: [unknown, string][] = [
    [42, "42"], [0.123456, "0.1235"], [1234.5678, "1235"], [null, ""], [undefined, ""], ["x", "x"], [true, "true"],
    [[1, 2], "[1,2]"], [{ a: 1 }, '{"a":1}'], [NaN, "NaN"], [0.0000123, "1.230e-5"],
  ];
  for (const [v, want] of cases) assert.equal(formatCell(v), want, `formatCell(${String(v)})`);
});

test("htmlTable: union of keys as columns, escaped text, a count of the rows left out", () => {
  const rows = Array.from({ length: 25 }, (_, i) => ({ id: i, text: `<b>row ${i}</b>` }));
  rows[3] = { ...rows[3], extra: "only here" } as (typeof rows)[number];
  const html = htmlTable(rows, { maxRows: 5, caption: "Q&A" });
  assert.ok(!html.includes("<b>row"), "cell text must be escaped");
  const cells = tableCells(html);
  assert.deepEqual(cells[0], ["id", "text", "extra"]);
  assert.deepEqual(cells[1], ["0", "<b>row 0</b>", ""]);
  assert.deepEqual(cells[4], ["3", "<b>row 3</b>", "only here"]);
  assert.equal(cells.length, 1 + 5 + 1);
  assert.match(cells[6][0], /20 more rows \(25 in all\)/);
  assert.match(html, /<caption[^>]*>Q&amp;A<\/caption>/);
});

test("htmlTable cuts long text but keeps all of it in the tooltip", () => {
  const long = "word ".repeat(100);
  const html = htmlTable([{ context: long }], { maxChars: 20 });
  const cells = tableCells(html);
  assert.equal(cells[1][0], long.slice(0, 20) + "…");
  assert.ok(html.includes(`title="${long}"`));
});

test("htmlTable renders a danfo DataFrame and Series with their index", () => {
  const dfd = require("danfojs-node");
  const df = new dfd.DataFrame({ question: ["Who <wrote> it?", "When?"], n: [3, 1.5] });
  const cells = tableCells(htmlTable(df));
  assert.deepEqual(cells, [["", "question", "n"], ["0", "Who <wrote> it?", "3"], ["1", "When?", "1.5"]]);
  const counts = df["question"].valueCounts();
  const s = tableCells(htmlTable(counts));
  assert.equal(s.length, 3);
  assert.deepEqual(s.slice(1).map((r) => r[0]).sort(), ["When?", "Who <wrote> it?"]);
  assert.deepEqual(s.slice(1).map((r) => r[1]), ["1", "1"]);
});

/** Run the chart's drawing script against a stand-in page and return what Plotly.newPlot received. */
function drawChart(html: string, withPlotly = true): { calls: unknown[][]; el: { id: string; textContent: string } } {
  const scripts = [...html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  const id = /<div id="([^"]+)"/.exec(html)![1];
  const inner = /<div id="[^"]+"[^>]*>([\s\S]*?)<\/div>/.exec(html)![1];
  const el = { id, textContent: inner.replace(/<[^>]+>/g, "") }; // what the page shows before the script runs
  const calls: unknown[][] = [];
  const window: Record<string, unknown> = {};
  if (withPlotly) window.Plotly = { newPlot: (...args: unknown[]) => calls.push(args) };
  const document = { getElementById: (x: string) => (x === id ? el : null) };
  vm.runInNewContext(scripts[scripts.length - 1], { window, document });
  return { calls, el };
}

test("plotlyHtml inlines plotly.js once, then later charts use window.Plotly", () => {
  resetPlotlyInline();
  const first = plotlyHtml([{ type: "bar", x: ["a"], y: [1] }]);
  const second = plotlyHtml([{ type: "bar", x: ["b"], y: [2] }]);
  assert.ok(first.length > 1_000_000, "the first chart carries plotly.js");
  assert.ok(first.includes("plotly.js v"), "the inlined library is plotly.js");
  assert.ok(second.length < 2_000, `later charts are small (${second.length} chars)`);
  resetPlotlyInline();
  assert.ok(plotlyHtml([]).length > 1_000_000, "resetPlotlyInline() makes the next chart carry it again");
  const ids = new Set([first, second].map((h) => /<div id="([^"]+)"/.exec(h)![1]));
  assert.equal(ids.size, 2, "every chart gets its own element id");
});

test("plotlyHtml passes traces, layout and height to Plotly.newPlot, safely inside <script>", () => {
  plotlyHtml([]); // make sure the library was inlined already, so the chart is small
  const traces = [{ type: "scatter", x: [1, 2], y: [3, 4], name: "</script><script>alert(1)</script>\u2028" }];
  const html = plotlyHtml(traces, { title: { text: "loss" } }, { height: 250 });
  assert.equal((html.match(/<\/script>/g) ?? []).length, 1, "only the real closing tag may appear");
  const { calls, el } = drawChart(html);
  assert.equal(calls.length, 1);
  const [target, data, layout] = calls[0] as [unknown, unknown, Record<string, unknown>];
  assert.equal(target, el);
  assert.deepEqual(JSON.parse(JSON.stringify(data)), traces); // objects made in the vm: compare by value
  assert.deepEqual(JSON.parse(JSON.stringify(layout.title)), { text: "loss" });
  assert.equal(layout.height, 250);
});

test("an untrusted notebook (no scripts run) shows, in the chart's place, that it is not trusted and how to trust it; the chart's script removes it", () => {
  plotlyHtml([]);
  const html = plotlyHtml([{ y: [1] }]);
  const shown = /<div id="[^"]+"[^>]*>([\s\S]*?)<\/div>/.exec(html)![1].replace(/<[^>]+>/g, "");
  assert.match(shown, /not trusted/);
  assert.match(shown, /Trust Notebook/);
  const { calls, el } = drawChart(html);
  assert.equal(calls.length, 1);
  assert.equal(el.textContent, "", "a trusted notebook's chart replaces the note");
});

test("a chart whose page has no Plotly says how to fix it instead of failing silently", () => {
  plotlyHtml([]);
  const { calls, el } = drawChart(plotlyHtml([{ y: [1] }]), false);
  assert.equal(calls.length, 0);
  assert.match(el.textContent, /jupyter trust/);
});

test("highlightSpans marks the answer and leaves the text exactly as it was", () => {
  const context = `Tom & "Jerry" <cartoon> began in 1940.`;
  const start = context.indexOf("1940");
  const html = highlightSpans(context, [{ start, end: start + 4, label: "gold" }]);
  assert.equal(visibleText(html), context);
  assert.deepEqual([...html.matchAll(/<mark[^>]*>(.*?)<\/mark>/g)].map((m) => m[1]), ["1940"]);
  assert.match(html, /title="gold"/);
});

test("highlightSpans: a span at index 0, overlapping spans, and spans outside the text", () => {
  const text = "Paris is the capital";
  const html = highlightSpans(text, [{ start: 0, end: 8, label: "pred" }, { start: 6, end: 12, label: "gold" }]);
  assert.equal(visibleText(html), text);
  const marks = [...html.matchAll(/<mark([^>]*)>(.*?)<\/mark>/g)];
  assert.deepEqual(marks.map((m) => m[2]), ["Paris ", "is", " the"]);
  assert.match(marks[1][1], /outline/, "the overlap is outlined");
  assert.match(marks[1][1], /title="pred \+ gold"/);
  assert.throws(() => highlightSpans(text, [{ start: 5, end: 99 }]), /outside the text/);
  assert.equal(visibleText(highlightSpans(text, [])), text);
});

test("tokensHtml shows each token with its index and offsets and highlights the answer range", () => {
  const tokens = ["[CLS]", "who", "?", "[SEP]", "<b>", "##ob", "[SEP]"];
  const offsets: ([number, number] | null)[] = [null, [0, 3], [3, 4], null, [0, 3], [3, 5], null];
  const html = tokensHtml(tokens, offsets, { start: 4, end: 5 }, { tokenTypeIds: [0, 0, 0, 0, 1, 1, 1] });
  assert.ok(html.includes("&lt;b&gt;") && !html.includes("<b>"), "token text is escaped");
  const boxes = [...html.matchAll(/<span style="display:inline-block[^"]*background:([^;]+);[^>]*>(.*?)<br><span[^>]*>(.*?)<\/span><\/span>/g)];
  assert.equal(boxes.length, tokens.length);
  assert.deepEqual(boxes.map((b) => visibleText(b[2])), tokens);
  assert.deepEqual(boxes.map((b) => b[3]), ["0", "1 · 0-3", "2 · 3-4", "3", "4 · 0-3", "5 · 3-5", "6"]);
  const highlighted = boxes.filter((b) => b[1] === "#ffeb3b").map((b) => visibleText(b[2]));
  assert.deepEqual(highlighted, ["<b>", "##ob"]);
  assert.match(tokensHtml(tokens, null, [0], { maxTokens: 3 }), /… 4 more tokens/);
});

test("lineSvg draws one point per input and labels the range", () => {
  const svg = lineSvg([[0, 2], [1, 1.5], [2, 0.5]], { label: "loss" });
  const points = /points="([^"]+)"/.exec(svg)![1].split(" ");
  assert.equal(points.length, 3);
  assert.match(svg, />loss 2</);
  assert.equal(lineSvg([]), "");
});

test("notebookProgressSink redraws one display per run, with a growing loss curve", () => {
  const displays: string[][] = [];
  const newDisplay = (): HtmlDisplay => {
    const shown: string[] = [];
    displays.push(shown);
    return { html: (s) => shown.push(s) };
  };
  const sink = notebookProgressSink({ newDisplay });
  const state = { label: "train", total: 4, elapsedS: 1, finished: false };
  for (let done = 1; done <= 4; done++) sink({ ...state, done, info: { loss: 5 - done } });
  sink({ ...state, done: 4, info: { loss: 1 }, finished: true });
  sink({ ...state, label: "eval", done: 1, total: 2, info: {} });
  assert.equal(displays.length, 2, "a new label opens a new display");
  const train = displays[0];
  assert.equal(train.length, 5, "every state redraws the same display");
  assert.equal(/points="([^"]+)"/.exec(train[train.length - 1])![1].split(" ").length, 4, "one curve point per step");
  assert.match(visibleText(train[train.length - 1]), /4\/4.*done/);
  assert.match(visibleText(displays[1][0]), /eval.*1\/2/);
  sink({ ...state, label: "eval", done: 0, total: 2, info: {} });
  assert.equal(displays.length, 3, "a counter that starts again is a new run");
});

test("notebookProgressSink works as the sink of lib/progress", () => {
  const shown: string[] = [];
  const p = progress("epoch 1", 3, notebookProgressSink({ newDisplay: () => ({ html: (s) => shown.push(s) }) }));
  p.update(1, { loss: 2.5 });
  p.finish({ loss: 0.75 });
  assert.ok(shown.length >= 2);
  assert.match(visibleText(shown[shown.length - 1]), /epoch 1 +3\/3 .*done.*loss=0\.75/);
  assert.equal(progressHtml({ label: "x", done: 0, total: 0, elapsedS: 0, info: {}, finished: false }).includes("width:"), false);
});
