// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}}, then the raw little-endian bytes. Parsed here directly:
// it is small, and a hand parser can name exactly what is wrong with a damaged file.
import { fs } from "./platform";
import { userError } from "./errors";
import { writeFileAtomic } from "./fsutil";

/** A tensor on the host: floats of any width become float32, integers become int32 (range-checked). */
export interface HostTensor {
  dtype: "float32" | "int32";
  shape: number[];
  data: Float32Array | Int32Array;
}
export type TensorMap = Map<string, HostTensor>;

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export function readSafetensors(file: string): { tensors: TensorMap; metadata: Record<string, string> } {
  if (!fs.existsSync(file)) throw userError(file, "file not found");
  return parseSafetensors(fs.readFileSync(file), file);
}

export function parseSafetensors(buf: Uint8Array, file = "<buffer>"): { tensors: TensorMap; metadata: Record<string, string> } {
  if (buf.length < 8) throw userError(file, `not a safetensors file: only ${buf.length} bytes`, "the download or copy was cut short; fetch the file again");
  const headerLen = Number(new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true));
  if (headerLen > buf.length - 8) {
    throw userError(file, `header says ${headerLen} bytes but the file has ${buf.length - 8} after the length field`, "the file is truncated or not safetensors; fetch it again");
  }
  let header: Record<string, any>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLen)));
  } catch {
    throw userError(file, "the safetensors header is not valid JSON", "the file is damaged; fetch it again");
  }
  const dataStart = 8 + headerLen;
  const tensors: TensorMap = new Map();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = info as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const width = DTYPE_BYTES[dtype];
    if (width === undefined) throw userError(file, `tensor '${name}' has unknown dtype '${dtype}'`, `supported: ${Object.keys(DTYPE_BYTES).join(", ")}`);
    const [begin, end] = data_offsets;
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * width) throw userError(file, `tensor '${name}' has ${end - begin} bytes but shape [${shape}] of ${dtype} needs ${count * width}`);
    if (dataStart + end > buf.length) throw userError(file, `tensor '${name}' runs past the end of the file (truncated?)`, "fetch the file again");
    tensors.set(name, decode(buf.subarray(dataStart + begin, dataStart + end), dtype, shape, name, file));
  }
  return { tensors, metadata };
}

function decode(bytes: Uint8Array, dtype: string, shape: number[], name: string, file: string): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const b = bytes.slice(); // copy: aligned, and independent of the file buffer
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dtype === "F32") return { dtype: "float32", shape, data: new Float32Array(b.buffer, b.byteOffset, n) };
  if (dtype === "F64" || dtype === "F16" || dtype === "BF16") {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = dtype === "F64" ? view.getFloat64(i * 8, true) : dtype === "F16" ? f16ToF32(view.getUint16(i * 2, true)) : bf16ToF32(view.getUint16(i * 2, true));
    }
    return { dtype: "float32", shape, data: out };
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    if (dtype === "I64") {
      const big = view.getBigInt64(i * 8, true);
      if (big > 2147483647n || big < -2147483648n) throw userError(file, `tensor '${name}' holds an int64 value ${big} outside the int32 range`);
      v = Number(big);
    } else v = dtype === "I32" ? view.getInt32(i * 4, true) : dtype === "I16" ? view.getInt16(i * 2, true) : dtype === "I8" ? view.getInt8(i) : view.getUint8(i);
    out[i] = v;
  }
  return { dtype: "int32", shape, data: out };
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function bf16ToF32(h: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, h << 16, true);
  return v.getFloat32(0, true);
}

/** Serialise tensors (float32 → F32, int32 → I64 as PyTorch stores token ids) in sorted key order, as HF does. */
export function serializeSafetensors(tensors: TensorMap, metadata: Record<string, string> = { format: "pt" }): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const name of names) {
    const t = tensors.get(name)!;
    const bytes = new Uint8Array(t.dtype === "float32" ? new Float32Array(t.data).buffer : BigInt64Array.from(t.data, (x) => BigInt(x)).buffer);
    header[name] = { dtype: t.dtype === "float32" ? "F32" : "I64", shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const json = new Uint8Array(raw.length + ((8 - (raw.length % 8)) % 8)).fill(0x20); // the spec allows trailing spaces; 8-byte alignment helps mmap readers
  json.set(raw);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function writeSafetensors(file: string, tensors: TensorMap, metadata?: Record<string, string>, what?: string): void {
  writeFileAtomic(file, serializeSafetensors(tensors, metadata), what);
}
