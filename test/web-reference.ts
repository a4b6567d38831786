// The Node side of test/web.test.ts's comparisons, in a process of its own (a backend and its threads per process):
//   node --import tsx test/web-reference.ts demo '<DemoOptions JSON>'        → the demo job's summary (losses too)
//   node --import tsx test/web-reference.ts score DIR '{"backend":..., "maxDev":N}' → EM/F1 of the model in DIR
import { runDemo, DEMO, type DemoOptions } from "../lib/demo";
import { loadModel } from "../lib/weights";
import { loadSquad } from "../lib/squad";
import { loadTokenizer } from "../lib/tokenizer";
import { predictQA } from "../lib/predict";
import { squadEvaluate } from "../lib/metrics";
import { SAMPLE_FILES } from "../lib/sample";
import { useBackend, type BackendName } from "../lib/backend";
import { setDefaultProgressSink, silentSink } from "../lib/progress";

async function score(dir: string, o: { backend: BackendName; maxDev?: number }): Promise<object> {
  await useBackend(o.backend);
  const { model } = await loadModel(dir, "qa");
  const dev = loadSquad(SAMPLE_FILES.dev).examples.slice(0, o.maxDev);
  const pred = await predictQA(model, loadTokenizer(dir), dev, { maxLength: DEMO.maxLength, docStride: DEMO.docStride, batchSize: 64, progress: false });
  const s = squadEvaluate(dev, pred.predictions);
  return { exact: +s.exact.toFixed(2), f1: +s.f1.toFixed(2), predictions: pred.predictions };
}

setDefaultProgressSink(silentSink);
const [what, a, b] = process.argv.slice(2);
(what === "demo" ? runDemo({ quiet: true, ...(JSON.parse(a) as DemoOptions) }) : score(a, JSON.parse(b)))
  .then((r) => console.log(JSON.stringify(r)))
  .catch((e: Error) => { console.error(e.stack); process.exit(1); });
