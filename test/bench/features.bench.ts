// Features per second: the committed sample data, and a SQuAD v1.1-train-shaped synthetic set (87,599 questions over
// 18,896 contexts of ~150 words, ~30k-entry vocabulary) at max_length 384 / doc_stride 128.
// Target: the SQuAD-shaped set in under 60 s on one core.   Run: node --import tsx test/bench/features.bench.ts [--quick]
import * as fs from "node:fs";
import { prepareFeatures, type QAFeature } from "../../lib/features";
import { parseSquad, type QAExample } from "../../lib/squad";
import { generateSquadSample, makeRng, sampleVocab, SAMPLE_FILES, SAMPLE_SPEC, type Rng } from "../../lib/sample";
import { loadTokenizer, tokenizerFromVocab, type BertTokenizer } from "../../lib/tokenizer";

/** SQuAD v1.1 train: 87,599 questions on 18,896 paragraphs (Rajpurkar et al. 2016, table 1 / the released file). */
const SQUAD_TRAIN_QUESTIONS = 87_599;
const SQUAD_TRAIN_CONTEXTS = 18_896;
const VOCAB_WORDS = 29_000; // + characters and ## pieces ≈ bert-base-uncased's 30,522 entries
const OPTS = { maxLength: 384, docStride: 128, progress: false }; // run_qa.py defaults

/** Wall seconds and CPU seconds (user + system; the work is single-threaded, so this is one core's time). */
function timeIt<T>(f: () => T): { value: T; s: number; cpuS: number } {
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  const value = f();
  const c = process.cpuUsage(c0);
  return { value, s: Number(process.hrtime.bigint() - t0) / 1e9, cpuS: (c.user + c.system) / 1e6 };
}

/** Count the time spent inside tok.encode, to split tokenization from feature building. */
function timedTokenizer(tok: BertTokenizer): { tok: BertTokenizer; encodeS: () => number } {
  let ns = 0n;
  const encode = (text: string) => {
    const t0 = process.hrtime.bigint();
    const e = tok.encode(text);
    ns += process.hrtime.bigint() - t0;
    return e;
  };
  return { tok: { ...tok, encode }, encodeS: () => Number(ns) / 1e9 };
}

// ---- a SQuAD-shaped synthetic set: Zipf-distributed pseudo-words, sentences with punctuation, spans as answers ----
const SYLLABLES = "ka,lo,mi,ne,su,ta,ri,po,an,el,or,ut,ba,de,fi,gu,ho,ja,ve,zo,qua,str,ch,th,en,ing,ed,ly,er,ion".split(",");

function pseudoWord(rng: Rng): string {
  let w = "";
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) w += rng.pick(SYLLABLES);
  return w;
}

function zipfSampler(rng: Rng, n: number): () => number {
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) cdf[i] = acc += 1 / (i + 1);
  return () => {
    const u = rng.next() * acc;
    let lo = 0, hi = n - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cdf[mid] < u) lo = mid + 1; else hi = mid; }
    return lo;
  };
}

export function squadShaped(seed: number): { examples: QAExample[]; vocab: string[] } {
  const rng = makeRng(seed);
  const words = new Set<string>();
  while (words.size < VOCAB_WORDS * 1.3) words.add(pseudoWord(rng)); // 30% of words stay out of the vocabulary
  const lexicon = [...words].map((w, i) => (i % 17 === 0 ? w[0].toUpperCase() + w.slice(1) : i % 101 === 0 ? w + "é" : w));
  const pick = zipfSampler(rng, lexicon.length);
  const examples: QAExample[] = [];
  for (let c = 0; c < SQUAD_TRAIN_CONTEXTS; c++) {
    const nWords = 40 + Math.floor(-Math.log(1 - rng.next()) * 110); // mean ~150, a tail of long paragraphs
    const parts: string[] = [];
    for (let i = 0; i < nWords; i++) {
      parts.push(lexicon[pick()] + (rng.next() < 0.08 ? "," : rng.next() < 0.06 ? "." : ""));
    }
    const context = parts.join(" ");
    const nq = Math.round(((c + 1) * SQUAD_TRAIN_QUESTIONS) / SQUAD_TRAIN_CONTEXTS) - Math.round((c * SQUAD_TRAIN_QUESTIONS) / SQUAD_TRAIN_CONTEXTS);
    for (let q = 0; q < nq; q++) {
      const a = rng.int(nWords - 4), len = 1 + rng.int(4);
      const start = parts.slice(0, a).join(" ").length + (a > 0 ? 1 : 0);
      const text = parts.slice(a, a + len).join(" ");
      const question = ["What", "Who", "When", "Which"][rng.int(4)] + " " + Array.from({ length: 6 + rng.int(8) }, () => lexicon[pick()]).join(" ") + "?";
      examples.push({ id: `s${c}-${q}`, title: "synthetic", context, question, answers: [{ text, answer_start: start }], is_impossible: false });
    }
  }
  const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", "?"];
  const chars = new Set([...lexicon.join("").toLowerCase().normalize("NFD").replace(/\p{Mn}/gu, "")]);
  for (const ch of chars) vocab.push(ch, "##" + ch);
  for (const s of SYLLABLES) vocab.push("##" + s);
  for (const w of [...words].slice(0, VOCAB_WORDS)) vocab.push(w.toLowerCase());
  return { examples, vocab: [...new Set(vocab)] };
}

function report(label: string, examples: QAExample[], tok: BertTokenizer): { features: QAFeature[]; s: number; cpuS: number } {
  const timed = timedTokenizer(tok);
  const { value, s, cpuS } = timeIt(() => prepareFeatures(examples, timed.tok, OPTS));
  const { stats } = value;
  const contexts = new Set(examples.map((e) => e.context)).size;
  console.log(`${label}: ${stats.examples} questions / ${contexts} contexts -> ${stats.features} features in ${s.toFixed(2)} s ` +
    `(${cpuS.toFixed(2)} s CPU) = ${Math.round(stats.features / s)} features/s (tokenizer ${timed.encodeS().toFixed(2)} s, windows+labels ` +
    `${(s - timed.encodeS()).toFixed(2)} s), ${stats.answersLost} answers lost to truncation`);
  return { features: value.features, s, cpuS };
}

function main(): void {
  const quick = process.argv.includes("--quick");
  // 1. The sample data (committed files when present, else generated the same way in memory).
  const haveFiles = fs.existsSync(SAMPLE_FILES.train) && fs.existsSync(SAMPLE_FILES.tokenizerDir);
  const sample = haveFiles
    ? parseSquad(JSON.parse(fs.readFileSync(SAMPLE_FILES.train, "utf8")), SAMPLE_FILES.train)
    : parseSquad(generateSquadSample(SAMPLE_SPEC.squad.train), "squad-sample-train (generated)");
  const sampleTok = haveFiles ? loadTokenizer(SAMPLE_FILES.tokenizerDir) : tokenizerFromVocab(sampleVocab("en"), { lowercase: true });
  report("sample train", sample.examples, sampleTok);
  // 2. SQuAD v1.1 train shape.
  const gen = timeIt(() => squadShaped(20261123));
  const { examples, vocab } = gen.value;
  const subset = quick ? examples.slice(0, 10_000) : examples;
  const words = subset.reduce((n, e, i) => (i === 0 || subset[i - 1].context !== e.context ? n + e.context.split(" ").length : n), 0);
  console.log(`squad-shaped set: generated in ${gen.s.toFixed(1)} s, vocabulary ${vocab.length}, ` +
    `${(words / new Set(subset.map((e) => e.context)).size).toFixed(0)} words per context`);
  const { s, cpuS } = report("squad-shaped", subset, tokenizerFromVocab(vocab, { lowercase: true }));
  if (!quick) {
    console.log(`target: ${SQUAD_TRAIN_QUESTIONS} questions in < 60 s on one core: ${s < 60 ? "met" : "NOT met"} ` +
      `(${s.toFixed(1)} s wall, ${cpuS.toFixed(1)} s CPU)`);
  }
}

if (require.main === module) main();
