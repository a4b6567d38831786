// `bertqa push`: share a trained QA model on the Hugging Face Hub (lib/push.ts): config.json, model.safetensors, the
// tokenizer files and a generated model card in one commit; prints the repository, the commit and the files as JSON.
import { pushToHub } from "../push";
import { setDefaultProgressSink, silentSink } from "../progress";
import { parseFlags, type FlagSpecs } from "./args";

export const summary = "share a trained QA model on the Hugging Face Hub with a generated model card (JSON: repo, url, commit, files)";

export const flags = {
  model: { type: "string", help: "the run folder (bertqa train --out) or model directory to upload", required: true },
  repo: { type: "string", help: "Hub repository user/name or org/name (created when new; a bare name goes to your account)", required: true },
  private: { type: "boolean", help: "create the repository private (an existing one keeps its visibility)" },
  revision: { type: "string", help: "branch to commit to (a new one starts from main)", default: "main" },
  message: { type: "string", help: "commit message (default: Upload BertForQuestionAnswering)" },
  dataset: { type: "string", help: "Hub id of the dataset it was trained and evaluated on, for the card (e.g. rajpurkar/squad)" },
  "base-model": { type: "string", help: "Hub id of the checkpoint it was fine-tuned from, for the card (e.g. bert-base-uncased)" },
  "overwrite-card": { type: "boolean", help: "replace a README.md on the Hub that a person wrote (a generated one is always replaced)" },
  quiet: { type: "boolean", help: "no upload progress bar" },
} satisfies FlagSpecs;

export async function run(argv: string[]): Promise<void> {
  const f = parseFlags("push", argv, flags);
  if (f.quiet === true) setDefaultProgressSink(silentSink);
  const r = await pushToHub(f.model, f.repo, {
    revision: f.revision, private: f.private === true, message: f.message, overwriteCard: f["overwrite-card"] === true,
    dataset: f.dataset, baseModel: f["base-model"],
  });
  console.log(JSON.stringify(r));
}
