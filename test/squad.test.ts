import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isUserError } from "../lib/errors";
import {
  codePointToUtf16, loadSquad, locateAnswer, parseCsv, parseSquad, readClassificationCsv, codePointIndex,
} from "../lib/squad";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bertqa-squad-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
function writeTmp(name: string, text: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}

// Python's len() / str.index(): what the SQuAD files count in.
const cpIndex = (s: string, sub: string) => Array.from(s.slice(0, s.indexOf(sub))).length;

const V1 = {
  version: "1.1",
  data: [{
    title: "Valmor",
    paragraphs: [{
      context: "Valmor is a town on the Sulan River. It was founded by Tavo Lerin in 1421.",
      qas: [
        { id: "q1", question: "Who founded Valmor?", answers: [{ text: "Tavo Lerin", answer_start: 55 }] },
        { id: "q2", question: "When?", answers: [{ text: "1421", answer_start: 69 }, { text: "in 1421", answer_start: 66 }] },
      ],
    }],
  }],
};

const V2 = {
  version: "v2.0",
  data: [{
    title: "Valmor",
    paragraphs: [{
      context: "Valmor has 14 bridges.",
      qas: [
        { id: "a", question: "How many bridges?", answers: [{ text: "14", answer_start: 11 }], is_impossible: false },
        { id: "b", question: "How many towers?", answers: [], is_impossible: true,
          plausible_answers: [{ text: "14", answer_start: 11 }] },
      ],
    }],
  }],
};

/** Run `fn`, expect a UserError, return its message. */
function userErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(isUserError(e), `expected a UserError, got ${String(e)}`);
    return (e as Error).message;
  }
  assert.fail("expected an error");
}

/** A v1.1 file with one paragraph and the given qas (and context). */
function oneParagraph(qas: unknown[], context = "Valmor has 14 bridges."): unknown {
  return { version: "1.1", data: [{ title: "T", paragraphs: [{ context, qas }] }] };
}

test("SQuAD v1.1: flattened examples keep title, context, answers", () => {
  const ds = parseSquad(V1, "v1.json");
  assert.equal(ds.version, "1.1");
  assert.equal(ds.examples.length, 2);
  const [a, b] = ds.examples;
  assert.deepEqual(a, {
    id: "q1", title: "Valmor", context: V1.data[0].paragraphs[0].context, question: "Who founded Valmor?",
    answers: [{ text: "Tavo Lerin", answer_start: 55 }], is_impossible: false,
  });
  for (const ans of [...a.answers, ...b.answers]) {
    assert.equal(a.context.slice(ans.answer_start, ans.answer_start + ans.text.length), ans.text);
  }
  assert.equal(b.answers.length, 2);
  assert.equal(ds.skipped, 0);
  assert.equal(ds.corrected, 0);
});

test("SQuAD v2.0: is_impossible and plausible_answers", () => {
  const ds = parseSquad(V2, "v2.json");
  assert.equal(ds.version, "v2.0");
  const [a, b] = ds.examples;
  assert.equal(a.is_impossible, false);
  assert.equal(a.plausible_answers, undefined);
  assert.equal(b.is_impossible, true);
  assert.deepEqual(b.answers, []);
  assert.deepEqual(b.plausible_answers, [{ text: "14", answer_start: 11 }]);
});

test("CMRC2018 layout: no version, no title, paragraph ids, Chinese text", () => {
  const context = "青禾镇位于云川省。青禾镇由李明于1421年建立。";
  const cmrc = {
    data: [{ id: "TRAIN_0", paragraphs: [{ id: "TRAIN_0", context, qas: [
      { question: "青禾镇是谁建立的？", id: "TRAIN_0_QUERY_0", answers: [{ text: "李明", answer_start: cpIndex(context, "李明") }] },
    ] }] }],
  };
  const ds = parseSquad(cmrc, "cmrc.json");
  assert.equal(ds.version, "unknown");
  assert.equal(ds.examples[0].title, "");
  assert.equal(ds.examples[0].id, "TRAIN_0_QUERY_0");
  const ans = ds.examples[0].answers[0];
  assert.equal(context.slice(ans.answer_start, ans.answer_start + 2), "李明");
});

test("answer_start counted in code points (Python) becomes a UTF-16 index", () => {
  const context = "Fans 🎉🎉 cheered when 𝒜lice scored for Valmor.";
  const qas = [
    { id: "e1", question: "Who scored?", answers: [{ text: "𝒜lice", answer_start: cpIndex(context, "𝒜lice") }] },
    { id: "e2", question: "For whom?", answers: [{ text: "Valmor", answer_start: cpIndex(context, "Valmor") }] },
  ];
  assert.equal(qas[1].answers[0].answer_start, context.indexOf("Valmor") - 3); // three astral chars before it
  const ds = parseSquad(oneParagraph(qas, context), "emoji.json");
  assert.equal(ds.corrected, 0);
  assert.equal(ds.examples[0].answers[0].answer_start, context.indexOf("𝒜lice"));
  assert.equal(ds.examples[1].answers[0].answer_start, context.indexOf("Valmor"));
});

test("codePointToUtf16 and codePointIndex are inverse on character boundaries", () => {
  const s = "a🎉b𝒜c";
  const toU = codePointToUtf16(s);
  const toCp = codePointIndex(s);
  const cps = Array.from(s);
  let u = 0;
  for (let cp = 0; cp <= cps.length; cp++) {
    assert.equal(toU(cp), u);
    assert.equal(toCp[u], cp);
    u += cp < cps.length ? cps[cp].length : 0;
  }
  assert.equal(codePointToUtf16("plain ascii")(4), 4);
});

test("locateAnswer: exact, within ±2 (nearest first), or undefined", () => {
  const ctx = "the cat sat on the mat";
  const cases: [string, number, number | undefined][] = [
    ["cat", 4, 4], ["cat", 3, 4], ["cat", 5, 4], ["cat", 2, 4], ["cat", 6, 4], ["cat", 7, undefined], ["cat", 1, undefined],
    ["the", 1, 0], ["the", 16, 15], ["dog", 4, undefined], ["", 0, undefined],
  ];
  for (const [text, start, want] of cases) assert.equal(locateAnswer(ctx, text, start), want, `${text}@${start}`);
});

test("answer_start off by one or two is corrected and counted", () => {
  const ds = parseSquad(oneParagraph([
    { id: "x1", question: "How many?", answers: [{ text: "14", answer_start: 12 }] },
    { id: "x2", question: "Which town?", answers: [{ text: "Valmor", answer_start: 2 }] },
    { id: "x3", question: "Bridges?", answers: [{ text: "bridges", answer_start: 14 }] },
  ]), "quirk.json");
  assert.deepEqual(ds.examples.map((e) => e.answers[0].answer_start), [11, 0, 14]);
  assert.equal(ds.corrected, 2);
});

test("every bad input names the file and the example, and says how to fix it", () => {
  const cases: [string, unknown, RegExp][] = [
    ["answer too far from answer_start", oneParagraph([{ id: "far1", question: "Q?", answers: [{ text: "14", answer_start: 0 }] }]),
      /far1.*"14" is not at answer_start 0.*correct answer_start, or pass --skip-invalid/],
    ["answer text absent", oneParagraph([{ id: "abs1", question: "Q?", answers: [{ text: "towers", answer_start: 3 }] }]), /abs1/],
    ["empty context", oneParagraph([{ id: "ctx1", question: "Q?", answers: [] }], "  "), /ctx1: empty context/],
    ["empty question", oneParagraph([{ id: "qq1", question: " ", answers: [{ text: "14", answer_start: 11 }] }]), /qq1: empty question/],
    ["no answers in v1", oneParagraph([{ id: "na1", question: "Q?", answers: [] }]), /na1: answerable question has no answers/],
    ["duplicate ids", oneParagraph([
      { id: "dup", question: "Q?", answers: [{ text: "14", answer_start: 11 }] },
      { id: "dup", question: "Q2?", answers: [{ text: "14", answer_start: 11 }] }]), /dup: duplicate id/],
    ["bad answer entry", oneParagraph([{ id: "ae1", question: "Q?", answers: [{ text: "14" }] }]), /ae1.*answer_start/],
    ["bad plausible answer", oneParagraph([{ id: "pl1", question: "Q?", answers: [], is_impossible: true,
      plausible_answers: [{ text: "99", answer_start: 11 }] }]), /pl1/],
  ];
  for (const [name, json, re] of cases) {
    const msg = userErrorOf(() => parseSquad(json, "bad.json"));
    assert.match(msg, /^bad\.json: /, name);
    assert.match(msg, re, name);
    assert.match(msg, /pass --skip-invalid\)$/, name);
  }
});

test("files that are not SQuAD-shaped say which key is missing", () => {
  const cases: [unknown, RegExp][] = [
    [[1, 2], /missing top-level "data" array/],
    [{ version: "1.1" }, /missing top-level "data" array/],
    [{ data: [{ title: "T" }] }, /data\[0\] is missing "paragraphs"/],
    [{ data: [{ paragraphs: [{ qas: [] }] }] }, /data\[0\]\.paragraphs\[0\] is missing "context"/],
    [{ data: [{ paragraphs: [{ context: "c" }] }] }, /data\[0\]\.paragraphs\[0\] is missing "qas"/],
  ];
  for (const [json, re] of cases) {
    const msg = userErrorOf(() => parseSquad(json, "shape.json"));
    assert.match(msg, /^shape\.json: not a SQuAD-style file/);
    assert.match(msg, re);
  }
});

test("malformed JSON names the file and the line", () => {
  const f = writeTmp("broken.json", '{\n  "version": "1.1",\n  "data": [ {"title": "T",, } ]\n}\n');
  const msg = userErrorOf(() => loadSquad(f));
  assert.ok(msg.startsWith(`${f}: malformed JSON at line 3`), msg);
  assert.match(userErrorOf(() => loadSquad(path.join(tmp, "missing.json"))), /missing\.json: cannot read file/);
});

test("loadSquad reads a file (with a BOM) like parseSquad", () => {
  const f = writeTmp("v1.json", "\ufeff" + JSON.stringify(V1));
  assert.deepEqual(loadSquad(f).examples, parseSquad(V1, f).examples);
});

test("skipInvalid skips bad examples, counts them and warns about each", () => {
  const json = oneParagraph([
    { id: "good", question: "How many?", answers: [{ text: "14", answer_start: 11 }] },
    { id: "bad1", question: "How many?", answers: [{ text: "14", answer_start: 0 }] },
    { id: "bad2", question: "", answers: [{ text: "14", answer_start: 11 }] },
    { id: "good", question: "Again?", answers: [{ text: "14", answer_start: 11 }] },
  ]);
  const warnings: string[] = [];
  const ds = parseSquad(json, "mixed.json", { skipInvalid: true, warn: (m) => warnings.push(m) });
  assert.deepEqual(ds.examples.map((e) => e.id), ["good"]);
  assert.equal(ds.skipped, 3);
  assert.equal(warnings.length, 3);
  for (const [w, id] of warnings.map((w, i) => [w, ["bad1", "bad2", "good"][i]])) {
    assert.match(w, new RegExp(`^mixed\\.json: skipped example ${id}`));
  }
  assert.equal(parseSquad(json, "mixed.json", { skipInvalid: true }).skipped, 3); // warn is optional
});

test("readClassificationCsv: RFC 4180 quotes, commas and newlines inside quotes, CRLF", () => {
  const f = writeTmp("cls.csv", 'text,label\r\nplain text,positive\r\n"good, cheap",positive\r\n' +
    '"she said ""no""",negative\n"two\nlines",negative\n\n"",negative\n');
  assert.deepEqual(readClassificationCsv(f), [
    { text: "plain text", label: "positive" },
    { text: "good, cheap", label: "positive" },
    { text: 'she said "no"', label: "negative" },
    { text: "two\nlines", label: "negative" },
    { text: "", label: "negative" },
  ]);
  const swapped = writeTmp("swapped.csv", "label,text,source\nnegative,bad,web\n");
  assert.deepEqual(readClassificationCsv(swapped), [{ text: "bad", label: "negative" }]);
  assert.deepEqual(parseCsv("a,b", "x.csv"), [{ fields: ["a", "b"], line: 1 }]);
});

test("readClassificationCsv errors name the file and the line", () => {
  const cases: [string, RegExp][] = [
    ['text,label\nok,positive\n"two\nlines",negative\ngood, cheap,positive\n', /^f\d\.csv:5: expected 2 fields, found 3 \(quote fields/],
    ['text,label\nok,positive\n"never closed,negative\n', /^f\d\.csv:3: unterminated quoted field/],
    ["words,label\nok,positive\n", /^f\d\.csv:1: header must name columns "text" and "label"/],
    ["text,label\nok,\n", /^f\d\.csv:2: empty label/],
    ['text,label\n"a"b,positive\n', /^f\d\.csv:2: text after a closing quote/],
    ['text,label\na"b,positive\n', /^f\d\.csv:2: a quote inside an unquoted field/],
    ["", /^f\d\.csv: empty CSV/],
  ];
  cases.forEach(([text, re], i) => {
    const f = writeTmp(`f${i}.csv`, text);
    assert.match(userErrorOf(() => readClassificationCsv(f)).replace(tmp + path.sep, ""), re);
  });
});

test("checkAnswerStarts: false keeps every question for scoring, answers as given (as the official scripts read them)", () => {
  const json = { version: "v1.0", data: [{ paragraphs: [{ context: "长江是中国最长的河流。", qas: [
    { id: "ok", question: "最长的河流是哪条？", answers: [{ text: "长江", answer_start: 0 }] },
    { id: "off", question: "哪里？", answers: [{ text: "黄河", answer_start: -1 }, { text: "中国", answer_start: 3 }] },
  ] }] }] };
  assert.throws(() => parseSquad(json, "cmrc_dev.json"), /cmrc_dev.json: example off: answer "黄河" is not at answer_start -1/);
  const ds = parseSquad(json, "cmrc_dev.json", { checkAnswerStarts: false });
  assert.deepEqual(ds.examples.map((e) => e.id), ["ok", "off"]);
  assert.deepEqual(ds.examples[1].answers, [{ text: "黄河", answer_start: -1 }, { text: "中国", answer_start: 3 }]);
});

// ---- issue 24: inputs at the edges ----

test("ignoreAnswers (prediction): unlabelled questions load, gold answers are not read or checked", () => {
  const data = { version: "1.1", data: [{ title: "t", paragraphs: [{ context: "Tavo Lerin founded Valmor.", qas: [
    { id: "u1", question: "Who founded Valmor?" }, // no answers key at all
    { id: "u2", question: "What?", answers: [] },
    { id: "u3", question: "When?", answers: [{ text: "nowhere", answer_start: 42.5 }] }, // wrong and fractional: unused
  ] }] }] };
  const ds = parseSquad(data, "test.json", { ignoreAnswers: true });
  assert.deepEqual(ds.examples.map((e) => [e.id, e.answers.length]), [["u1", 0], ["u2", 0], ["u3", 0]]);
  assert.throws(() => parseSquad(data, "test.json"), /example u1: answerable question has no answers/); // training still needs them
});

test("answer_start must be an integer where answers are used (42.5 would make the answer one token too long)", () => {
  const data = { version: "1.1", data: [{ title: "t", paragraphs: [{ context: "Tavo Lerin founded Valmor in 1421.", qas: [
    { id: "f1", question: "Who?", answers: [{ text: "Tavo Lerin", answer_start: 0.5 }] },
  ] }] }] };
  assert.throws(() => parseSquad(data, "t.json"), (e: unknown) => isUserError(e) && /t\.json: example f1: answer_start 0\.5 of "Tavo Lerin" is not an integer/.test((e as Error).message));
  assert.equal(locateAnswer("Tavo Lerin", "Tavo", 0.5), undefined);
});

test("skipped questions' ids are kept, so evaluate can drop their predictions too", () => {
  const data = { version: "1.1", data: [{ title: "t", paragraphs: [{ context: "Valmor.", qas: [
    { id: "ok", question: "Where?", answers: [{ text: "Valmor", answer_start: 0 }] }, { id: "bad", question: "" },
  ] }] }] };
  const ds = parseSquad(data, "t.json", { skipInvalid: true });
  assert.deepEqual([ds.skipped, ds.skippedIds, ds.examples.map((e) => e.id)], [1, ["bad"], ["ok"]]);
});

test("a file that is not UTF-8 is refused with the byte and its offset, as Python's json.load refuses it", () => {
  const f = path.join(tmp, "latin1.json");
  fs.writeFileSync(f, Buffer.concat([Buffer.from('{"version": "1.1", "data": [{"title": "caf'), Buffer.from([0xe9]), Buffer.from('", "paragraphs": []}]}')]));
  const msg = (() => { try { loadSquad(f); } catch (e) { return (e as Error).message; } return ""; })();
  assert.equal(msg, `${f}: is not valid UTF-8: byte 0xE9 at offset 42 (line 1) (save it as UTF-8; it may be Latin-1 or binary)`);
});

test("malformed JSON: one line, the position, and only a short escaped excerpt of the bad bytes", () => {
  const junk = "\u0000\u0001\nrm -rf\r\n" + "x".repeat(5000);
  const f = writeTmp("junk.json", `{"version": "1.1",\n "data": ${junk}}`);
  const msg = (() => { try { loadSquad(f); } catch (e) { return (e as Error).message; } return ""; })();
  assert.ok(msg.startsWith(`${f}: malformed JSON at line 2, column 10: unexpected "\\u0000\\u0001\\nrm -rf\\r\\nxxxxxxxxx"`), msg);
  assert.ok(!/[\x00-\x1f]/.test(msg) && msg.length < f.length + 200, msg);
  const cut = writeTmp("cut.json", '{"version": "1.1", "data": [');
  assert.match((() => { try { loadSquad(cut); } catch (e) { return (e as Error).message; } return ""; })(), /cut\.json: malformed JSON at line 1, column 29: the text ends too early/);
});
