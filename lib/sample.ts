// The embedded sample data: templated facts about fictional towns, people and guilds whose names are built from a
// fixed syllable inventory, so nothing can be known from pretraining and a tiny BERT trained from scratch can learn
// the task in minutes. Deterministic (seeded PRNG); `npm run sample` regenerates everything under data/.
import { fs, path, repoRoot } from "./platform";
import { writeDirAtomic, writeFileAtomic } from "./fsutil";
import { buildWordPieceVocab, saveTokenizer, tokenizerFromVocab } from "./tokenizer";

const DATA_DIR = path.join(repoRoot, "data");
export const SAMPLE_FILES = {
  train: path.join(DATA_DIR, "squad-sample-train.json"),
  dev: path.join(DATA_DIR, "squad-sample-dev.json"),
  trainV2: path.join(DATA_DIR, "squad-sample-v2-train.json"),
  devV2: path.join(DATA_DIR, "squad-sample-v2-dev.json"),
  cmrcTrain: path.join(DATA_DIR, "cmrc-sample-train.json"),
  cmrcDev: path.join(DATA_DIR, "cmrc-sample-dev.json"),
  sentiment: path.join(DATA_DIR, "sentiment.csv"), // training split
  sentimentDev: path.join(DATA_DIR, "sentiment-dev.csv"),
  tokenizerDir: path.join(DATA_DIR, "tokenizer"),
  cmrcTokenizerDir: path.join(DATA_DIR, "tokenizer-zh"),
};

/** The sizes and seeds of the committed files (changing them changes data/; test/sample.test.ts checks they agree). */
export const SAMPLE_SPEC = {
  squad: { train: { seed: 11, n: 6000, split: "train" }, dev: { seed: 12, n: 300, split: "dev" } },
  cmrc: { train: { seed: 21, n: 1500, split: "train" }, dev: { seed: 22, n: 200, split: "dev" } },
  sentiment: { train: { seed: 31, n: 400 }, dev: { seed: 32, n: 100 } },
  vocabSize: { en: 2000, zh: 2000 },
} as const;

// ---- seeded randomness (mulberry32: tiny, fast, good enough for sampling templates) ----

export interface Rng {
  next(): number; // [0, 1)
  int(n: number): number; // 0..n-1
  pick<T>(xs: readonly T[]): T;
}

export function makeRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

function shuffled<T>(rng: Rng, xs: readonly T[]): T[] {
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

// ---- fictional names: one lexicon, each name always of one kind ----

const SYLLABLES = ["ba", "bel", "dor", "fen", "gal", "har", "is", "jor", "ka", "kel", "lan", "lor", "ma", "mir", "nal",
  "nor", "ol", "pen", "quel", "ra", "ros", "sel", "tan", "tor", "ul", "val", "ven", "wen", "yor", "zan"];
const ZH_SYLLABLES = [..."青白云龙凤金石泉桃柳松梅竹兰溪川岭湖阳平安宁丰和华荣嘉永长清明秀文德"];
const ZH_SURNAMES = [..."李王张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"];
const NAME_SEED = 20240611;
const LEXICON_SIZE = 360;
export type Split = "train" | "dev";
export type NameKind = "person" | "town" | "province" | "river" | "guild";

/**
 * The sample's names (English words like "Valmor", Chinese two-character stems) by kind, shared by train and dev. A
 * name always denotes the same kind of thing, as "Paris" is always a place: a pretrained BERT brings that knowledge,
 * a tiny model trained from scratch can only learn it from the training text (with names changing kind from one
 * paragraph to the next, it learned to answer with the question's own town or person). Dev paragraphs are new.
 */
export function nameLexicon(lang: "en" | "zh"): Record<NameKind, string[]> {
  const rng = makeRng(NAME_SEED + (lang === "zh" ? 1 : 0));
  const seen = new Set<string>();
  const make = lang === "en"
    ? () => cap(Array.from({ length: rng.next() < 0.7 ? 2 : 3 }, () => rng.pick(SYLLABLES)).join(""))
    : () => rng.pick(ZH_SYLLABLES) + rng.pick(ZH_SYLLABLES);
  while (seen.size < LEXICON_SIZE) seen.add(make());
  const all = [...seen];
  const kind = (i: number): NameKind => (["person", "person", "person", "person", "town", "town", "province", "river", "guild"] as const)[i % 9];
  const lexicon: Record<NameKind, string[]> = { person: [], town: [], province: [], river: [], guild: [] };
  all.forEach((n, i) => lexicon[kind(i)].push(n));
  return lexicon;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// ---- templates: a topic (town, person, guild) has fact kinds; each kind has sentences and questions per slot ----

type SlotType = "person" | "name" | "river" | "province" | "year" | "count" | "pop" | "product" | "month" | "job" | "work";
interface FactKind {
  key: string;
  slots: Record<string, SlotType>;
  say: string[]; // sentence templates: {slot}, {S} subject, {L} short subject, {N} {K} guild name and kind
  ask: Record<string, string[]>; // answer slot -> paraphrased question templates
}
interface Topic {
  key: string;
  subject: (g: Gen) => Record<string, string>;
  title: (v: Record<string, string>) => string;
  intro: FactKind;
  facts: FactKind[];
}
interface Lang {
  topics: Topic[];
  joiner: string; // between sentences
  values: Record<SlotType, (g: Gen) => string>;
}
interface Gen {
  rng: Rng;
  names: Record<NameKind, string[]>;
  used: Set<string>;
}

const fact = (key: string, slots: Record<string, SlotType>, say: string[], ask: Record<string, string[]>): FactKind =>
  ({ key, slots, say, ask });

const PRODUCTS = ["glass", "wool", "salt", "silver", "clocks", "bells", "paper", "honey", "cheese", "pottery", "lanterns",
  "carpets", "copper", "apples", "boats", "candles", "linen", "olives", "timber", "wine"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
  "November", "December"];
const JOBS = ["painter", "poet", "sailor", "merchant", "engineer", "composer", "architect", "doctor", "weaver", "sculptor"];
const WORK_ADJ = ["Silent", "Golden", "Hidden", "Broken", "Distant", "Quiet", "Red", "Last", "Winter", "Northern"];
const WORK_NOUN = ["Harbor", "Garden", "Bridge", "Tower", "Lantern", "Road", "Island", "Mirror", "Forest", "Song"];

const TOWN: Topic = {
  key: "town",
  subject: (g) => ({ S: freshName(g, "town") }),
  title: (v) => v.S,
  intro: fact("province", { province: "province" },
    ["{S} is a town in the province of {province}.", "{S} is a small town in the province of {province}."],
    { province: ["In which province is {S}?", "{S} is in which province?", "Which province is {S} in?"] }),
  facts: [
    fact("founding", { founder: "person", year: "year" },
      ["It was founded by {founder} in {year}.", "{founder} founded {S} in {year}.", "In {year}, {founder} founded the town."],
      { founder: ["Who founded {S}?", "Who was the founder of {S}?", "{S} was founded by whom?", "By whom was {S} founded?"],
        year: ["When was {S} founded?", "In what year was {S} founded?", "In which year did {founder} found {S}?", "What year was {S} founded in?"] }),
    fact("river", { river: "river" },
      ["The {river} flows through {S}.", "{S} lies on the {river}.", "The town stands on the {river}."],
      { river: ["Which river flows through {S}?", "On which river does {S} lie?", "What river runs through {S}?", "Which river is {S} on?"] }),
    fact("bridges", { count: "count" },
      ["The town has {count} bridges.", "There are {count} bridges in {S}.", "{S} has {count} old bridges."],
      { count: ["How many bridges does {S} have?", "How many bridges are there in {S}?", "What is the number of bridges in {S}?"] }),
    fact("population", { pop: "pop" },
      ["About {pop} people live in {S}.", "The population of {S} is about {pop} people.", "The town is home to about {pop} people."],
      { pop: ["How many people live in {S}?", "What is the population of {S}?", "About how many people live in {S}?"] }),
    fact("known", { product: "product" },
      ["{S} is known for its {product}.", "{S} is famous for its {product}.", "The town is best known for its {product}."],
      { product: ["What is {S} known for?", "What is {S} famous for?", "For what is {S} best known?", "What is {S} best known for?"] }),
    fact("university", { head: "person", uyear: "year" },
      ["Its university was opened by {head} in {uyear}.", "The university of {S} was opened in {uyear} by {head}.",
        "In {uyear}, {head} opened a university in {S}."],
      { head: ["Who opened the university of {S}?", "Who opened the university in {S}?", "The university of {S} was opened by whom?"],
        uyear: ["When was the university of {S} opened?", "In what year did the university of {S} open?", "When did {head} open the university in {S}?"] }),
    fact("mayor", { mayor: "person" },
      ["The current mayor of {S} is {mayor}.", "{mayor} is the mayor of {S}.", "Today the town is led by its mayor, {mayor}."],
      { mayor: ["Who is the mayor of {S}?", "Who is the current mayor of {S}?", "Which person is the mayor of {S}?"] }),
    fact("festival", { month: "month" },
      ["Every year in {month}, the town holds a large festival.", "The festival of {S} is held each year in {month}."],
      { month: ["In which month does {S} hold its festival?", "When is the festival of {S} held?", "In what month is the festival in {S}?"] }),
  ],
};

const PERSON: Topic = {
  key: "person",
  subject: (g) => {
    const first = freshName(g, "person"), last = freshName(g, "person");
    return { S: `${first} ${last}`, L: last };
  },
  title: (v) => v.S,
  intro: fact("job", { job: "job" },
    ["{S} was a well known {job}.", "{S} was a {job} by trade."],
    { job: ["What was the job of {S}?", "What was the profession of {S}?", "What was the occupation of {S}?"] }),
  facts: [
    fact("born", { town: "name", year: "year" },
      ["{L} was born in {town} in {year}.", "{L} was born in {year} in the town of {town}."],
      { town: ["Where was {S} born?", "In which town was {S} born?", "What is the birthplace of {S}?"],
        year: ["When was {S} born?", "In what year was {S} born?", "What year was {S} born in?"] }),
    fact("teacher", { teacher: "person" },
      ["As a young man, {L} studied under {teacher}.", "{L} was a student of {teacher}.", "{teacher} taught {L} for many years."],
      { teacher: ["Who taught {S}?", "Under whom did {S} study?", "Who was the teacher of {S}?"] }),
    fact("work", { work: "work" },
      ["The best known work of {L} is {work}.", "The most famous work by {L} is {work}."],
      { work: ["What is the best known work of {S}?", "What is the most famous work by {S}?", "Which work by {S} is the most famous?"] }),
    fact("died", { dtown: "name", dyear: "year" },
      ["{L} died in {dtown} in {dyear}.", "In {dyear}, {L} died in the town of {dtown}."],
      { dtown: ["Where did {S} die?", "In which town did {S} die?"], dyear: ["When did {S} die?", "In what year did {S} die?"] }),
    fact("children", { count: "count" },
      ["{L} had {count} children.", "{L} and his wife had {count} children."],
      { count: ["How many children did {S} have?", "How many children had {S}?"] }),
    fact("moved", { province: "province" },
      ["Later, {L} moved to the province of {province}.", "In later life {L} moved to the province of {province}."],
      { province: ["To which province did {S} move?", "Where did {S} move later in life?"] }),
  ],
};

const GUILD_KINDS = ["Guild", "Company", "Society", "League", "Council"];
const GUILD: Topic = {
  key: "guild",
  subject: (g) => ({ N: freshName(g, "guild"), K: g.rng.pick(GUILD_KINDS) }),
  title: (v) => `${v.N} ${v.K}`,
  intro: fact("founded", { founder: "person", year: "year" },
    ["The {N} {K} was founded in {year} by {founder}.", "{founder} founded the {N} {K} in {year}."],
    { founder: ["Who founded the {N} {K}?", "Who was the founder of the {N} {K}?"],
      year: ["When was the {N} {K} founded?", "In what year was the {N} {K} founded?"] }),
  facts: [
    fact("hq", { town: "name" },
      ["Its headquarters are in {town}.", "The {K} has its headquarters in {town}."],
      { town: ["Where are the headquarters of the {N} {K}?", "In which town does the {N} {K} have its headquarters?"] }),
    fact("members", { count: "count" },
      ["The {K} has {count} members.", "It has about {count} members."],
      { count: ["How many members does the {N} {K} have?", "How many members are in the {N} {K}?"] }),
    fact("trade", { product: "product" },
      ["It is known for trading {product}.", "The {K} trades mostly in {product}."],
      { product: ["What does the {N} {K} trade?", "What is the {N} {K} known for trading?"] }),
    fact("leader", { leader: "person" },
      ["Its current leader is {leader}.", "The {K} is led by {leader}."],
      { leader: ["Who leads the {N} {K}?", "Who is the leader of the {N} {K}?"] }),
    fact("meets", { month: "month" },
      ["Its members meet every year in {month}.", "The members of the {K} meet each {month}."],
      { month: ["In which month do the members of the {N} {K} meet?", "When do the members of the {N} {K} meet?"] }),
  ],
};

const EN: Lang = {
  topics: [TOWN, TOWN, PERSON, GUILD], // towns twice as often: they have the most fact kinds
  joiner: " ",
  values: {
    person: (g) => freshName(g, "person"),
    name: (g) => freshName(g, "town"),
    river: (g) => `${freshName(g, "river")} River`,
    province: (g) => freshName(g, "province"),
    year: (g) => String(1100 + g.rng.int(880)),
    count: (g) => String(2 + g.rng.int(48)),
    pop: (g) => `${2 + g.rng.int(88)} thousand`,
    product: (g) => g.rng.pick(PRODUCTS),
    month: (g) => g.rng.pick(MONTHS),
    job: (g) => g.rng.pick(JOBS),
    work: (g) => `The ${g.rng.pick(WORK_ADJ)} ${g.rng.pick(WORK_NOUN)}`,
  },
};

const ZH_PRODUCTS = ["丝绸", "茶叶", "瓷器", "纸张", "米酒", "食盐", "铜镜", "木雕", "蜂蜜", "陶器"];
const ZH_JOBS = ["画家", "诗人", "商人", "医生", "工匠", "乐师", "船长", "学者"];
const ZH_TOWN: Topic = {
  key: "town",
  subject: (g) => ({ S: freshName(g, "town") + "镇" }),
  title: (v) => v.S,
  intro: fact("province", { province: "province" },
    ["{S}是{province}的一个小镇。", "{S}位于{province}。"],
    { province: ["{S}位于哪个省？", "{S}在哪个省？", "{S}属于哪个省？"] }),
  facts: [
    fact("founding", { founder: "person", year: "year" },
      ["{S}由{founder}于{year}建立。", "{year}，{founder}建立了{S}。"],
      { founder: ["{S}是谁建立的？", "谁建立了{S}？", "{S}的建立者是谁？"],
        year: ["{S}是哪一年建立的？", "{S}建立于哪一年？", "{founder}在哪一年建立了{S}？"] }),
    fact("river", { river: "river" }, ["{river}流经{S}。", "{S}坐落在{river}边。"],
      { river: ["哪条河流经{S}？", "{S}坐落在哪条河边？"] }),
    fact("bridges", { count: "count" }, ["{S}共有{count}座桥。", "镇上有{count}座古桥。"],
      { count: ["{S}有多少座桥？", "{S}共有几座桥？"] }),
    fact("population", { pop: "pop" }, ["{S}约有{pop}人口。", "{S}的人口约为{pop}。"],
      { pop: ["{S}有多少人口？", "{S}的人口是多少？"] }),
    fact("known", { product: "product" }, ["{S}以{product}闻名。", "{S}出产的{product}很有名。"],
      { product: ["{S}以什么闻名？", "{S}出产的什么很有名？"] }),
    fact("mayor", { mayor: "person" }, ["{S}现任镇长是{mayor}。", "{mayor}是{S}的镇长。"],
      { mayor: ["{S}的镇长是谁？", "谁是{S}的镇长？"] }),
    fact("school", { head: "person", syear: "year" },
      ["{head}于{syear}在{S}创办了一所学校。", "{S}的学校由{head}于{syear}创办。"],
      { head: ["谁在{S}创办了学校？", "{S}的学校是谁创办的？"], syear: ["{S}的学校创办于哪一年？", "{S}的学校是哪一年创办的？"] }),
  ],
};
const ZH_PERSON: Topic = {
  key: "person",
  subject: (g) => ({ S: g.rng.pick(ZH_SURNAMES) + freshName(g, "person") }),
  title: (v) => v.S,
  intro: fact("job", { job: "job" }, ["{S}是一位著名的{job}。", "{S}是一位有名的{job}。"],
    { job: ["{S}的职业是什么？", "{S}是做什么的？"] }),
  facts: [
    fact("born", { town: "name", year: "year" }, ["{S}于{year}出生在{town}。", "{year}，{S}出生于{town}。"],
      { town: ["{S}出生在哪里？", "{S}的出生地是哪里？"], year: ["{S}出生于哪一年？", "{S}是哪一年出生的？"] }),
    fact("teacher", { teacher: "person" }, ["{S}年轻时曾跟随{teacher}学习。", "{teacher}是{S}的老师。"],
      { teacher: ["{S}年轻时跟随谁学习？", "{S}的老师是谁？"] }),
    fact("died", { dtown: "name", dyear: "year" }, ["{S}于{dyear}在{dtown}去世。"],
      { dtown: ["{S}在哪里去世？", "{S}在哪个镇去世？"], dyear: ["{S}于哪一年去世？", "{S}是哪一年去世的？"] }),
    fact("children", { count: "count" }, ["{S}有{count}个孩子。"], { count: ["{S}有几个孩子？", "{S}有多少个孩子？"] }),
  ],
};

const ZH: Lang = {
  topics: [ZH_TOWN, ZH_TOWN, ZH_PERSON],
  joiner: "",
  values: {
    person: (g) => g.rng.pick(ZH_SURNAMES) + freshName(g, "person"),
    name: (g) => freshName(g, "town") + "镇",
    river: (g) => freshName(g, "river") + "河",
    province: (g) => freshName(g, "province") + "省",
    year: (g) => `${1100 + g.rng.int(880)}年`,
    count: (g) => String(2 + g.rng.int(48)),
    pop: (g) => `${2 + g.rng.int(88)}万`,
    product: (g) => g.rng.pick(ZH_PRODUCTS),
    month: (g) => `${1 + g.rng.int(12)}月`,
    job: (g) => g.rng.pick(ZH_JOBS),
    work: (g) => `《${g.rng.pick(ZH_PRODUCTS)}》`,
  },
};

// ---- rendering: fill templates and remember where each answer slot landed ----

function freshName(g: Gen, kind: NameKind): string {
  for (;;) {
    const n = g.rng.pick(g.names[kind]);
    if (!g.used.has(n)) {
      g.used.add(n);
      return n;
    }
  }
}

const NAMED: ReadonlySet<SlotType> = new Set<SlotType>(["person", "name", "river", "province"]);

/** A value not yet used in this paragraph (names are fresh by construction; numbers, products... are redrawn). */
function freshValue(g: Gen, lang: Lang, type: SlotType): string {
  if (NAMED.has(type)) return lang.values[type](g);
  for (let tries = 0; ; tries++) {
    const v = lang.values[type](g);
    if (!g.used.has(v) || tries > 50) {
      g.used.add(v);
      return v;
    }
  }
}

/** Fill `{slot}` placeholders; returns the text and the offset of each slot's first occurrence. */
function fill(template: string, vals: Record<string, string>): { text: string; at: Record<string, number> } {
  let text = "";
  const at: Record<string, number> = {};
  let last = 0;
  for (const m of template.matchAll(/\{(\w+)\}/g)) {
    text += template.slice(last, m.index);
    const v = vals[m[1]];
    if (v === undefined) throw new Error(`template ${JSON.stringify(template)}: no value for {${m[1]}}`);
    if (at[m[1]] === undefined) at[m[1]] = text.length;
    text += v;
    last = (m.index as number) + m[0].length;
  }
  text += template.slice(last);
  return { text: cap(text), at };
}

interface Span { text: string; start: number; type: SlotType }
interface Para {
  title: string;
  context: string;
  qas: { question: string; answer: Span }[];
  impossible: { question: string; plausible?: Span }[];
}

/** One paragraph: the topic's intro plus 2-5 other facts, and a question for most answer slots. */
function makeParagraph(g: Gen, lang: Lang, v2: Gen | undefined): Para {
  const topic = g.rng.pick(lang.topics);
  const subject = topic.subject(g);
  const chosen = [topic.intro, ...shuffled(g.rng, topic.facts).slice(0, 2 + g.rng.int(4))];
  let context = "";
  const qas: Para["qas"] = [], spans: Span[] = [];
  for (const kind of chosen) {
    const vals: Record<string, string> = { ...subject };
    for (const [slot, type] of Object.entries(kind.slots)) vals[slot] = freshValue(g, lang, type);
    const s = fill(g.rng.pick(kind.say), vals);
    if (context !== "") context += lang.joiner;
    const offset = context.length;
    context += s.text;
    for (const [slot, templates] of Object.entries(kind.ask)) {
      const answer: Span = { text: vals[slot], start: offset + s.at[slot], type: kind.slots[slot] };
      spans.push(answer);
      if (g.rng.next() < 0.85) qas.push({ question: fill(g.rng.pick(templates), vals).text, answer });
    }
  }
  const impossible = v2 ? makeUnanswerable({ ...v2, used: g.used }, lang, topic, subject, chosen, spans, qas.length) : [];
  return { title: topic.title(subject), context, qas, impossible };
}

/** SQuAD 2.0 style: ask about fact kinds absent from the paragraph, ~0.3 per answerable question (~20% of all). */
function makeUnanswerable(g: Gen, lang: Lang, topic: Topic, subject: Record<string, string>, chosen: FactKind[],
  spans: Span[], answerable: number): Para["impossible"] {
  const absent = shuffled(g.rng, topic.facts.filter((f) => !chosen.includes(f)));
  const want = Math.min(absent.length, Math.floor(answerable * 0.3 + g.rng.next()));
  return absent.slice(0, want).map((kind) => {
    const vals: Record<string, string> = { ...subject };
    for (const [slot, type] of Object.entries(kind.slots)) vals[slot] = freshValue(g, lang, type);
    const slot = g.rng.pick(Object.keys(kind.ask));
    const question = fill(g.rng.pick(kind.ask[slot]), vals).text;
    const sameType = spans.filter((s) => s.type === kind.slots[slot]); // what a careless reader would answer
    return { question, plausible: sameType.length > 0 ? g.rng.pick(sameType) : undefined };
  });
}

function makeParagraphs(lang: Lang, opts: { seed: number; n: number; v2?: boolean }): Para[] {
  const names = nameLexicon(lang === ZH ? "zh" : "en");
  const rng = makeRng(opts.seed);
  // unanswerable questions draw from their own stream, so the v2 files hold exactly the v1 questions plus extras
  const v2 = opts.v2 ? { rng: makeRng(opts.seed ^ 0x5bd1e995), names, used: new Set<string>() } : undefined;
  const paras: Para[] = [];
  let count = 0;
  while (count < opts.n) {
    const p = makeParagraph({ rng, names, used: new Set() }, lang, v2);
    p.qas = p.qas.slice(0, opts.n - count);
    if (p.qas.length === 0) continue;
    paras.push(p);
    count += p.qas.length;
  }
  return paras;
}

// Python counts answer_start in code points; the files must too.
const codePoints = (s: string, end: number) => Array.from(s.slice(0, end)).length;
const answerJson = (ctx: string, a: Span) => ({ text: a.text, answer_start: codePoints(ctx, a.start) });

/**
 * English SQuAD-format sample: `n` answerable questions (v2 adds ~n/4 unanswerable ones); the seed makes the
 * paragraphs, `split` only names the ids. `generateSquadSample({ seed: 7, n: 20000 })` makes a larger training set.
 */
export function generateSquadSample(opts: { seed: number; n: number; v2?: boolean; split?: Split; idPrefix?: string }) {
  const prefix = opts.idPrefix ?? `${opts.split ?? "train"}${opts.v2 ? "-v2" : ""}`;
  const data = makeParagraphs(EN, opts).map((p, i) => {
    const pid = `${prefix}-${String(i).padStart(4, "0")}`;
    const qas: Record<string, unknown>[] = p.qas.map((q, j) => ({
      id: `${pid}-${j}`, question: q.question, answers: [answerJson(p.context, q.answer)],
      ...(opts.v2 ? { is_impossible: false } : {}),
    }));
    p.impossible.forEach((q, j) => qas.push({
      id: `${pid}-u${j}`, question: q.question, answers: [], is_impossible: true,
      ...(q.plausible ? { plausible_answers: [answerJson(p.context, q.plausible)] } : {}),
    }));
    return { title: p.title, paragraphs: [{ context: p.context, qas }] };
  });
  return { version: opts.v2 ? "v2.0" : "1.1", data };
}

/** Chinese CMRC2018-format sample (paragraph ids, "v1.0"), fictional names from a fixed character set. */
export function generateCmrcSample(opts: { seed: number; n: number; split?: Split }) {
  const prefix = (opts.split ?? "train").toUpperCase();
  const data = makeParagraphs(ZH, opts).map((p, i) => ({
    paragraphs: [{
      id: `${prefix}_${i}`, context: p.context,
      qas: p.qas.map((q, j) => ({ question: q.question, id: `${prefix}_${i}_QUERY_${j}`, answers: [answerJson(p.context, q.answer)] })),
    }],
    id: `${prefix}_${i}`, title: p.title,
  }));
  return { version: "v1.0", data };
}

// ---- sentiment: short reviews, label positive/negative ----

const POS = ["great", "excellent", "wonderful", "lovely", "superb", "fantastic", "pleasant", "delightful", "perfect", "good"];
const NEG = ["terrible", "awful", "poor", "disappointing", "bad", "horrible", "dreadful", "mediocre", "broken", "boring"];
const THINGS = ["the food", "the service", "this phone", "the hotel", "the movie", "the book", "the staff", "the room",
  "this lamp", "the coffee", "the battery", "the delivery", "the price", "the show", "the chair"];
const POS_TEMPLATES = ["{t} was {p}.", "I loved {t}, it was {p}.", "Really {p}: {t} was {p2}.", "{t} was {p} and {t2} was {p2}.",
  "Would buy again, {t} is {p}.", "{t} was not {n} at all, it was {p}.", "Five stars, {t} was {p}!", "Honestly {p}. {t} was {p2}, too."];
const NEG_TEMPLATES = ["{t} was {n}.", "I hated {t}, it was {n}.", "Never again, {t} was {n}.", "{t} was {n} and {t2} was {n2}.",
  "{t} was not {p} at all.", "I wanted to like {t}, but it was {n}.", "One star, {t} was {n}!",
  "The ad said \"{p}\" but {t} was {n}."];

export function generateSentiment(opts: { seed: number; n: number }): { text: string; label: string }[] {
  const rng = makeRng(opts.seed);
  return Array.from({ length: opts.n }, () => {
    const positive = rng.next() < 0.5;
    const vals = { t: rng.pick(THINGS), t2: rng.pick(THINGS), p: rng.pick(POS), p2: rng.pick(POS), n: rng.pick(NEG), n2: rng.pick(NEG) };
    const text = fill(rng.pick(positive ? POS_TEMPLATES : NEG_TEMPLATES), vals).text;
    return { text, label: positive ? "positive" : "negative" };
  });
}

/** RFC 4180: quote fields holding a comma, quote or newline; double inner quotes. */
export function toCsv(rows: { text: string; label: string }[]): string {
  const field = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return ["text,label", ...rows.map((r) => `${field(r.text)},${field(r.label)}`)].join("\n") + "\n";
}

// ---- everything in data/ ----

/** Every text file of data/ except the tokenizers, keyed by path relative to data/. */
export function sampleFileContents(): Record<string, string> {
  const json = (v: unknown) => JSON.stringify(v) + "\n";
  const { squad, cmrc, sentiment } = SAMPLE_SPEC;
  return {
    "squad-sample-train.json": json(generateSquadSample(squad.train)),
    "squad-sample-dev.json": json(generateSquadSample(squad.dev)),
    "squad-sample-v2-train.json": json(generateSquadSample({ ...squad.train, v2: true })),
    "squad-sample-v2-dev.json": json(generateSquadSample({ ...squad.dev, v2: true })),
    "cmrc-sample-train.json": json(generateCmrcSample(cmrc.train)),
    "cmrc-sample-dev.json": json(generateCmrcSample(cmrc.dev)),
    "sentiment.csv": toCsv(generateSentiment(sentiment.train)),
    "sentiment-dev.csv": toCsv(generateSentiment(sentiment.dev)),
  };
}

/** Texts a tokenizer's vocabulary is learnt from: the training splits only. */
export function tokenizerCorpus(lang: "en" | "zh"): string[] {
  const { squad, cmrc, sentiment } = SAMPLE_SPEC;
  const texts: string[] = [];
  for (const a of generateSquadSample({ ...squad.train, v2: true }).data) {
    for (const p of a.paragraphs) texts.push(p.context, ...p.qas.map((q) => q.question as string));
  }
  texts.push(...generateSentiment(sentiment.train).map((r) => r.text));
  if (lang === "zh") {
    for (const a of generateCmrcSample(cmrc.train).data) {
      for (const p of a.paragraphs) texts.push(p.context, ...p.qas.map((q) => q.question));
    }
  }
  return texts;
}

/**
 * WordPiece vocabularies for data/tokenizer (English, lowercase) and data/tokenizer-zh (Chinese chars + English).
 * Every name of the lexicon is one whole-word token, as frequent names are in BERT's vocabulary: a
 * tiny model trained from scratch in minutes cannot also learn where multi-piece names begin and end. Numbers, and
 * names the generator never made, still split into the syllable and digit pieces added after them.
 */
export function sampleVocab(lang: "en" | "zh"): string[] {
  const vocabSize = SAMPLE_SPEC.vocabSize[lang];
  const lexicon = Object.values(nameLexicon("en")).flat();
  const names = new Set(lexicon);
  const numbers = new Set<string>();
  const plain = tokenizerCorpus(lang).map((t) => t.replace(/[A-Za-z]+|\d+/g, (w) => {
    if (/^\d+$/.test(w)) numbers.add(w);
    return names.has(w) || numbers.has(w) ? " " : w;
  }));
  const opts = { lowercase: true, tokenizeChineseChars: true };
  const words = buildWordPieceVocab(plain, { ...opts, vocabSize });
  // each distinct name once: below minFrequency as a whole word, so only its pieces qualify
  const pieces = buildWordPieceVocab([[...names, ...numbers].join(" ")], { ...opts, vocabSize: 100000 });
  const vocab = [...new Set([...words, ...lexicon.map((n) => n.toLowerCase())])];
  const seen = new Set(vocab);
  for (const p of pieces) {
    if (vocab.length >= vocabSize) break;
    if (!seen.has(p)) vocab.push(p);
    seen.add(p);
  }
  return vocab;
}

function writeTokenizer(vocab: string[], dir: string): void {
  const tok = tokenizerFromVocab(vocab, { lowercase: true });
  writeDirAtomic(dir, (d) => saveTokenizer(tok, d));
}

export function main(): void {
  for (const [name, text] of Object.entries(sampleFileContents())) writeFileAtomic(path.join(DATA_DIR, name), text);
  writeTokenizer(sampleVocab("en"), SAMPLE_FILES.tokenizerDir);
  writeTokenizer(sampleVocab("zh"), SAMPLE_FILES.cmrcTokenizerDir);
  console.log(JSON.stringify({ dataDir: DATA_DIR, files: fs.readdirSync(DATA_DIR) }));
}

