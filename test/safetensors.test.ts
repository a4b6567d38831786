// safetensors: reading the reference checkpoints, writing files Python can read, and naming what is wrong with bad ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors, type TensorMap } from "../lib/safetensors";
import { isUserError } from "../lib/errors";

const FIXTURE = path.join(__dirname, "fixtures", "tiny-bert-qa", "model.safetensors");

/** Build a safetensors buffer by hand from a header object and raw bytes, independent of the writer under test. */
function handMade(header: Record<string, unknown>, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

test("reads the reference checkpoint written by Hugging Face (names, shapes, values)", () => {
  const { tensors, metadata } = readSafetensors(FIXTURE);
  assert.equal(metadata.format, "pt");
  const emb = tensors.get("bert.embeddings.word_embeddings.weight")!;
  assert.deepEqual(emb.shape, [1000, 32]);
  // The raw bytes of the first float, read straight from the file at the offset the header gives.
  const buf = fs.readFileSync(FIXTURE);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString());
  const begin = header["bert.embeddings.word_embeddings.weight"].data_offsets[0];
  assert.equal(emb.data[0], buf.readFloatLE(8 + headerLen + begin));
  assert.equal(emb.data[31 * 1000 + 5], buf.readFloatLE(8 + headerLen + begin + (31 * 1000 + 5) * 4));
});

test("decodes F16, BF16, F64, I64 and U8 into float32/int32", () => {
  const data = Buffer.alloc(2 * 2 + 2 * 2 + 8 + 8 * 2 + 2);
  let o = 0;
  data.writeUInt16LE(0x3c00, o); o += 2; // f16 1.0
  data.writeUInt16LE(0xc000, o); o += 2; // f16 -2.0
  data.writeUInt16LE(0x3fc0, o); o += 2; // bf16 1.5
  data.writeUInt16LE(0x4049, o); o += 2; // bf16 ~3.140625
  data.writeDoubleLE(0.25, o); o += 8;
  data.writeBigInt64LE(7n, o); o += 8;
  data.writeBigInt64LE(-3n, o); o += 8;
  data.writeUInt8(200, o); data.writeUInt8(1, o + 1);
  const buf = handMade({
    h: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
    b: { dtype: "BF16", shape: [2], data_offsets: [4, 8] },
    d: { dtype: "F64", shape: [1], data_offsets: [8, 16] },
    i: { dtype: "I64", shape: [2], data_offsets: [16, 32] },
    u: { dtype: "U8", shape: [2], data_offsets: [32, 34] },
  }, data);
  const { tensors } = parseSafetensors(buf);
  assert.deepEqual([...tensors.get("h")!.data], [1, -2]);
  assert.deepEqual([...tensors.get("b")!.data], [1.5, 3.140625]);
  assert.deepEqual([...tensors.get("d")!.data], [0.25]);
  assert.deepEqual([...tensors.get("i")!.data], [7, -3]);
  assert.equal(tensors.get("i")!.dtype, "int32");
  assert.deepEqual([...tensors.get("u")!.data], [200, 1]);
});

test("write then read is exact, keys sorted, header 8-byte aligned, atomic (no temp file left)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "st-"));
  const t: TensorMap = new Map([
    ["z.weight", { dtype: "float32", shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 1e-20, -0, 7]) }],
    ["a.ids", { dtype: "int32", shape: [3], data: Int32Array.from([0, 101, 30521]) }],
  ]);
  const file = path.join(dir, "m.safetensors");
  writeSafetensors(file, t);
  assert.deepEqual(fs.readdirSync(dir), ["m.safetensors"]);
  const buf = fs.readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  assert.equal(headerLen % 8, 0);
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString());
  assert.deepEqual(Object.keys(header), ["__metadata__", "a.ids", "z.weight"]);
  assert.equal(header["a.ids"].dtype, "I64");
  const back = readSafetensors(file).tensors;
  assert.deepEqual([...back.get("z.weight")!.data], [...t.get("z.weight")!.data]);
  assert.deepEqual([...back.get("a.ids")!.data], [0, 101, 30521]);
  const again = serializeSafetensors(readSafetensors(FIXTURE).tensors);
  assert.equal(readSafetensors(FIXTURE).tensors.size, parseSafetensors(again).tensors.size);
});

test("damaged files give one-line errors naming the file and the tensor", () => {
  const good = fs.readFileSync(FIXTURE);
  const cases: [Buffer, RegExp][] = [
    [good.subarray(0, 5), /only 5 bytes/],
    [good.subarray(0, 100), /header says \d+ bytes but the file has 92/],
    [good.subarray(0, good.length - 10), /runs past the end of the file/],
    [handMade({ x: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1)), /tensor 'x' has unknown dtype 'Q4'/],
    [handMade({ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8)), /tensor 'x' has 8 bytes but shape \[3\] of F32 needs 12/],
    [Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{{{{")]), /not valid JSON/],
  ];
  for (const [buf, re] of cases) {
    assert.throws(() => parseSafetensors(buf, "ckpt/model.safetensors"), (e: unknown) => {
      const m = (e as Error).message;
      return isUserError(e) && m.startsWith("ckpt/model.safetensors: ") && re.test(m) && !m.includes("\n");
    });
  }
  assert.throws(() => readSafetensors("/no/such/model.safetensors"), /\/no\/such\/model.safetensors: file not found/);
});
