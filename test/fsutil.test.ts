// Reading text as Python does: bytes that are not UTF-8 are an error with the offset Python reports, never U+FFFD.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeUtf8, firstInvalidUtf8 } from "../lib/fsutil";
import { isUserError } from "../lib/errors";

// Reference: Python 3's bytes.decode("utf-8") -> UnicodeDecodeError.start (computed once, listed with its reason).
const CASES: [string, string, number][] = [
  ["7b2261223a2022636166e9227d", "invalid continuation byte (Latin-1 é)", 10],
  ["6162806364", "invalid start byte", 2],
  ["78c0af79", "invalid start byte (overlong)", 1],
  ["7879eda080", "invalid continuation byte (surrogate)", 2],
  ["616263e282", "unexpected end of data", 3],
  ["f4908080", "invalid continuation byte (above U+10FFFF)", 0],
  ["c3a9f09f9880ff", "invalid start byte after valid é and 😀", 6],
  ["e28278", "invalid continuation byte", 0],
  ["61e08080", "invalid continuation byte (overlong 3-byte form)", 1],
  ["f08f8080", "invalid continuation byte (overlong 4-byte form)", 0],
];

test("firstInvalidUtf8 reports the offsets Python's UnicodeDecodeError.start reports", () => {
  for (const [hex, why, at] of CASES) assert.equal(firstInvalidUtf8(Buffer.from(hex, "hex")), at, why);
  assert.equal(firstInvalidUtf8(Buffer.from("plain, é, 😀, 中文", "utf8")), -1);
  assert.equal(firstInvalidUtf8(Buffer.from("e0a080", "hex")), -1); // U+0800, the smallest 3-byte character
});

test("decodeUtf8: text passes unchanged, anything else is one UserError naming the file, byte, offset and line", () => {
  assert.equal(decodeUtf8(Buffer.from("\ufeffé😀\n", "utf8"), "f"), "\ufeffé😀\n"); // the BOM is the caller's business
  assert.throws(() => decodeUtf8(Buffer.from("ok\nab\x80", "latin1"), "data.json"),
    (e: unknown) => isUserError(e) && (e as Error).message === "data.json: is not valid UTF-8: byte 0x80 at offset 5 (line 2) (save it as UTF-8; it may be Latin-1 or binary)");
});
