// The few internals of tfjs-backend-wasm 4.22 (dist/backend_wasm.js) that our kernels use: the heap, the table from
// tensor dataId to {id, memoryOffset}, and tensor registration. Views are tensors registered on memory another tensor
// owns, so C++ kernels can work on part of a buffer without a copy; they are unregistered (never freed) after use.

export interface Info {
  dataId: object;
  shape: number[];
  dtype: "float32" | "int32" | "bool" | "string" | "complex64";
}

export interface WasmModule {
  cwrap(name: string, ret: string | null, args: string[]): (...args: unknown[]) => unknown;
  HEAPU8: Uint8Array;
  tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
}

export interface WasmBackend {
  wasm: WasmModule;
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: string): Info;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
  typedArrayFromHeap(info: Info): Float32Array | Int32Array | Uint8Array;
}

export function sizeOf(shape: number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

// tfjs-backend-wasm src/kernels/types.ts FusableActivation (must match cc/fusable_activations.h).
const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, sigmoid: 5, elu: 6 };

/** The C++ code of a fusable activation we pass through unchanged (prelu/leakyrelu need extra inputs: not here). */
export function activationCode(name: string): number | undefined {
  return ACTIVATIONS[name];
}

/** Register float32 views [offset in bytes, element count] for the duration of `f`, then unregister them. */
export function withViews<T>(backend: WasmBackend, views: [number, number][], f: (ids: number[]) => T): T {
  const ids = views.map(([offset, size]) => {
    const id = backend.dataIdNextNumber++;
    backend.wasm.tfjs.registerTensor(id, size, offset);
    return id;
  });
  try {
    return f(ids);
  } finally {
    for (const id of ids) backend.wasm.tfjs.disposeData(id); // C++ bookkeeping only (and any XNNPACK operator cached on it)
  }
}
