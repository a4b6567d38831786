// What a notebook's kernel holds between cells: models by slot. A cell that builds a model puts it in a slot, which
// releases the model it replaces, so running a model or training cell again does not leave the previous weights
// allocated (440 MB each for bert-base), and the replaced model, used by a stale cell, says which cell to run.
// Slots live on globalThis: tslab may load this module more than once in one kernel.
import { disposeModel, noteModelOrigin, type BertModel } from "./bert";
import { userError } from "./errors";
import { workOwning } from "./stop";

const KEY = Symbol.for("bertqa.modelSlots");

function slots(): Map<string, BertModel> {
  const g = globalThis as unknown as Record<symbol, Map<string, BertModel> | undefined>;
  return (g[KEY] ??= new Map());
}

/**
 * Hold `model` in `slot`, releasing the model that was there; `origin` names the cell that builds it (said when a
 * released model is used). `const model = replaceModel("qa", await freshModel(), "section 3's training cell")`.
 * Refused (and `model` released) while the previous one is still being trained: stop that run first.
 */
export function replaceModel(slot: string, model: BertModel, origin: string): BertModel {
  const old = slots().get(slot);
  if (old !== undefined && old !== model) {
    const busy = workOwning(old);
    if (busy !== undefined) {
      disposeModel(model);
      throw userError(origin, `the previous model is still being trained (step ${busy.done} of ${busy.total})`, "press ■ (interrupt the kernel) to stop that run, then run this cell again");
    }
    disposeModel(old);
  }
  slots().set(slot, model);
  return noteModelOrigin(model, origin);
}

/** Release the model in `slot` (clean-up cells); harmless when it is already released or empty. */
export function releaseModel(slot: string): void {
  const old = slots().get(slot);
  if (old === undefined) return;
  const busy = workOwning(old);
  if (busy !== undefined) throw userError(`model '${slot}'`, `is still being trained (step ${busy.done} of ${busy.total})`, "press ■ (interrupt the kernel) to stop that run first");
  disposeModel(old);
  slots().delete(slot);
}

/** Release every held model (a notebook's last cell). */
export function releaseAllModels(): void {
  for (const slot of [...slots().keys()]) releaseModel(slot);
}
