// `bertqa doctor`: which TensorFlow.js backends work on this machine, why the others do not and how to fix them, and
// which one `--backend auto` picks. Readable lines on stderr, one JSON object on stdout; exit 0 if any backend works.
import * as os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { chooseBackend, diagnoseBackends, type BackendDiagnosis } from "../backend";
import { parseFlags, type FlagSpecs } from "./args";

export const summary = "check the TensorFlow.js backends (GPU, libtensorflow, wasm, cpu) and say which one auto picks";

export const flags = {} satisfies FlagSpecs;

export async function run(argv: string[]): Promise<void> {
  parseFlags("doctor", argv, flags);
  const diagnoses = await diagnoseBackends();
  const auto = chooseBackend(diagnoses);
  for (const line of doctorLines(diagnoses, auto.name)) process.stderr.write(line + "\n");
  const ok = diagnoses.some((d) => d.available);
  console.log(JSON.stringify({
    ok, auto: auto.name, node: process.version, tfjs: tf.version.tfjs, cpus: os.cpus().length, platform: `${process.platform}-${process.arch}`,
    backends: diagnoses.map((d) => ({ name: d.name, available: d.available, gpu: d.gpu, detail: d.detail, ...(d.fix !== undefined ? { fix: d.fix } : {}) })),
  }));
  if (!ok) process.exitCode = 1;
}

/** `✓ wasm  XNNPACK ...` / `✗ webgpu  no adapter ... → fix: ...`, then the choice. */
export function doctorLines(diagnoses: BackendDiagnosis[], auto: string): string[] {
  const lines = diagnoses.map((d) => `${d.available ? "✓" : "✗"} ${d.name.padEnd(10)} ${d.detail}${!d.available && d.fix !== undefined ? `\n  → fix: ${d.fix}` : ""}`);
  lines.push(`--backend auto uses: ${auto}`);
  return lines;
}
