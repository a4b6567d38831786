// Tokenizer throughput: `npx tsx test/bench/tokenizer.bench.ts [squad.json] [tokenizer dir]`.
// Without arguments it tokenizes synthetic English paragraphs (SQuAD-sized, with accents, numbers and punctuation)
// with a vocabulary built from them; with a SQuAD file it tokenizes every distinct context and every question.
import * as fs from "node:fs";
import { buildWordPieceVocab, loadTokenizer, tokenizerFromVocab } from "../../lib/tokenizer";

function syntheticParagraphs(n: number): string[] {
  let seed = 42;
  const rnd = (): number => { // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const syllables = ["the", "ar", "in", "ion", "ter", "ed", "con", "pro", "al", "es", "ing", "ment", "ly", "str", "qu",
    "ph", "ough", "ré", "ü", "ka", "to", "mi", "ber", "land", "ville"];
  const words: string[] = [];
  for (let i = 0; i < 30000; i++) {
    let w = "";
    const parts = 1 + Math.floor(rnd() * 4);
    for (let k = 0; k < parts; k++) w += syllables[Math.floor(rnd() * syllables.length)];
    if (rnd() < 0.12) w = w[0].toUpperCase() + w.slice(1);
    if (rnd() < 0.03) w = String(Math.floor(rnd() * 100000)).replace(/\B(?=(\d{3})+$)/g, ",");
    words.push(w);
  }
  const out: string[] = [];
  for (let p = 0; p < n; p++) {
    const ws: string[] = [];
    const len = 80 + Math.floor(rnd() * 300);
    for (let i = 0; i < len; i++) {
      const r = rnd();
      const punct = rnd();
      ws.push(words[Math.floor(r * r * words.length)] + (punct < 0.07 ? "," : punct < 0.12 ? "." : punct < 0.13 ? ")" : ""));
    }
    out.push(ws.join(" "));
  }
  return out;
}

function squadTexts(file: string): string[] {
  const json = JSON.parse(fs.readFileSync(file, "utf8")) as { data: { paragraphs: { context: string; qas: { question: string }[] }[] }[] };
  const texts: string[] = [];
  for (const article of json.data) {
    for (const p of article.paragraphs) {
      texts.push(p.context);
      for (const q of p.qas) texts.push(q.question);
    }
  }
  return texts;
}

function main(): void {
  const [squadFile, tokDir] = process.argv.slice(2);
  const texts = squadFile !== undefined ? squadTexts(squadFile) : syntheticParagraphs(5000);
  let t0 = Date.now();
  const tok = tokDir !== undefined
    ? loadTokenizer(tokDir)
    : tokenizerFromVocab(buildWordPieceVocab(texts.slice(0, 1000), { vocabSize: 30522, lowercase: true }));
  const setupMs = Date.now() - t0;
  const chars = texts.reduce((n, t) => n + t.length, 0);
  for (const pass of ["first pass (word cache filling)", "second pass (warm)"]) {
    t0 = Date.now();
    let tokens = 0;
    for (const t of texts) tokens += tok.encode(t).ids.length;
    const s = (Date.now() - t0) / 1000;
    console.log(JSON.stringify({
      pass, texts: texts.length, mb: +(chars / 1e6).toFixed(2), tokens, seconds: +s.toFixed(2),
      mbPerSecond: +(chars / 1e6 / s).toFixed(2), tokensPerSecond: Math.round(tokens / s), vocab: tok.idToToken.length, setupMs,
    }));
  }
}

main();
