// Gradients of a scalar loss with respect to the model's variables: tf.variableGrads, with the memory behaviour of
// PyTorch's autograd. TensorFlow.js 4.22 runs the whole backward pass in one tidy scope, so every activation gradient
// and every temporary of every gradient function (the transposed inputs of each dense layer's weight gradient, ...)
// stays alive until the last node is done: on `mini` at 384 tokens that measured ~58 floats per token, layer and unit
// of hidden size, about 3× what the forward pass saves. Here each node's gradient runs in its own scope that keeps only
// the input gradients, and once a node is done its output gradients and its saved activations are freed, as autograd
// frees a graph while it walks it. The operations and their order are tfjs's own (engine.gradients, tape.ts), so the
// gradients are bit-identical to tf.variableGrads.
import * as tf from "@tensorflow/tfjs";

/** One recorded operation of tfjs's tape (tfjs-core tape.ts TapeNode). */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

/** The engine internals used (tfjs-core 4.22 engine.ts): the tape and its recording scope. */
interface TapeEngine {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

/** The nodes on a path from `xs` to `y`, each with its inputs pruned to those that depend on `xs` (tape.ts's
 * getFilteredNodesXToY): gradients flow only there, and never into ids, masks or other constants. */
function nodesFromXToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodeFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodeToY.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  return tape.filter((n) => nodeFromX.has(n.id) && nodeToY.has(n.id)).map((n) => ({
    ...n, inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))),
  }));
}

/**
 * `f()`'s value and its gradient with respect to each variable in `vars`, keyed by variable name (tf.variableGrads'
 * result), freeing the backward pass's tensors as it goes. Not for higher-order gradients (it must not be nested).
 */
export function variableGrads(f: () => tf.Scalar, vars: tf.Variable[]): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const engine = tf.engine() as unknown as TapeEngine;
  if (engine.state.gradientDepth !== 0) throw new Error("variableGrads: nested gradient computations are not supported");
  const y = engine.scopedRun(() => engine.startTape(), () => engine.endTape(), () => engine.tidy("forward", f));
  const tape = engine.state.activeTape ?? [];
  const nodes = nodesFromXToY(tape, vars, y);
  if (nodes.length === 0) throw new Error("variableGrads: the loss does not depend on any of the variables");
  try {
    const grads = engine.tidy("backward", () => {
      const acc = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
      for (let i = nodes.length - 1; i >= 0; i--) {
        const node = nodes[i];
        if (node.gradient === undefined) throw new Error(`variableGrads: no gradient for ${node.kernelName}`);
        const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
        const names = Object.keys(node.inputs);
        // One scope per node: its gradient function's temporaries die here, only the input gradients leave.
        const dxs = tf.tidy(() => {
          const g = node.gradient!(dys);
          return names.map((n) => {
            if (!(n in g)) throw new Error(`variableGrads: ${node.kernelName} has no gradient for input '${n}'`);
            return g[n]();
          });
        });
        names.forEach((n, k) => {
          const x = node.inputs[n], dx = dxs[k];
          if (dx.shape.join() !== x.shape.join()) throw new Error(`variableGrads: the gradient of ${node.kernelName}'s '${n}' has shape [${dx.shape}], not [${x.shape}]`);
          const prev = acc.get(x.id);
          if (prev === undefined) acc.set(x.id, dx);
          else {
            acc.set(x.id, tf.add(prev, dx));
            prev.dispose();
            if (!dys.includes(dx)) dx.dispose();
          }
        });
        // Done with this node: nothing earlier on the tape needs its output gradients or its saved activations.
        for (const [k, o] of node.outputs.entries()) {
          const dy = dys[k];
          acc.delete(o.id);
          if (dy !== null && !dxs.includes(dy)) dy.dispose();
        }
        for (const t of node.saved ?? []) t.dispose();
      }
      // A variable the loss does not reach gets no entry, as in tf.variableGrads (the optimizer then skips it, like
      // torch's p.grad is None).
      const out: Record<string, tf.Tensor> = {};
      for (const v of vars) {
        const g = acc.get(v.id);
        if (g !== undefined) out[v.name] = g;
      }
      return out;
    });
    return { value: y, grads };
  } finally {
    for (const node of tape) for (const t of node.saved ?? []) t.dispose(); // nodes off the path, or after an error
    engine.state.activeTape = null;
  }
}
