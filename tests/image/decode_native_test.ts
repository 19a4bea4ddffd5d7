// Decoding with the native backend's options (sharp for JPEG and for PNG over SHARP_PNG_MIN_PIXELS, imagescript for
// smaller PNG): PNG exact and JPEG close to imagescript's, and the same typed errors for everything hostile, since the
// header checks run before either decoder.
import assert from "node:assert/strict";
import { ProblemError } from "../../lib/errors.ts";
import { decodeImage, encodeMaskPng } from "../../lib/image/mod.ts";
import { SHARP_PNG_MIN_PIXELS, wasmGrowth } from "../../lib/image/decode.ts";
import { DecodePool } from "../../lib/image/decode_pool.ts";
import { encodeJpeg, encodePng, gradient, pngHeaderOnly, rng } from "../../dev/image_fixtures.ts";

const W = 48, H = 32;
const PIXELS = gradient(W, H);
const native = { native: true };

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    assert.ok(err instanceof ProblemError, `untyped failure: ${err}`);
    return err.status;
  }
}

Deno.test("decode native: PNG is exact, JPEG within 3 levels of imagescript", async () => {
  const png = await encodePng(PIXELS, W, H);
  const n = await decodeImage(png, {}, "image/png", native);
  assert.equal(n.width, W);
  assert.equal(n.height, H);
  assert.equal(maxDiff(n.data, PIXELS), 0);
  const jpeg = await encodeJpeg(PIXELS, W, H);
  assert.ok(maxDiff((await decodeImage(jpeg, {}, "image/jpeg", native)).data, (await decodeImage(jpeg)).data) <= 3);
});

Deno.test("decode native: greyscale PNGs and one-pixel-high images come back as RGBA", async () => {
  const mask = Uint8Array.from({ length: 35 }, (_, i) => i % 3);
  const img = await decodeImage(encodeMaskPng(mask, 7, 5), {}, undefined, native);
  assert.equal(img.data.length, 35 * 4);
  for (let i = 0; i < mask.length; i++) {
    assert.deepEqual(Array.from(img.data.subarray(i * 4, i * 4 + 4)), [mask[i], mask[i], mask[i], 255]);
  }
  const row = Uint8Array.from({ length: 1000 }, (_, x) => x % 256);
  const line = await decodeImage(encodeMaskPng(row, 1000, 1), {}, undefined, native);
  assert.deepEqual([line.width, line.height, line.data[4 * 300]], [1000, 1, 300 % 256]);
});

Deno.test("decode native: limits are checked before decoding, with the same statuses", async () => {
  assert.equal(await status(decodeImage(pngHeaderOnly(100_000, 100_000), {}, undefined, native)), 413);
  assert.equal(
    await status(
      decodeImage(encodeMaskPng(new Uint8Array(3000 * 3000), 3000, 3000), { maxPixels: 1_000_000 }, undefined, native),
    ),
    413,
  );
  const png = await encodePng(PIXELS, W, H);
  for (const cut of [33, Math.floor(png.length / 2), png.length - 1]) {
    assert.equal(await status(decodeImage(png.subarray(0, cut), {}, undefined, native)), 400);
  }
});

Deno.test("decode native: mutated PNG and JPEG files fail as 400/413/415 or decode at the header's size", async () => {
  const next = rng(7);
  const sources = [await encodePng(PIXELS, W, H), await encodeJpeg(PIXELS, W, H)];
  const seen = new Set<number>();
  for (const source of sources) {
    for (let trial = 0; trial < 120; trial++) {
      const bytes = source.slice();
      for (let f = 0, n = 1 + Math.floor(next() * 8); f < n; f++) {
        bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      }
      const s = await status(
        decodeImage(bytes, { maxPixels: 4_000_000 }, undefined, native).then((img) => {
          assert.equal(img.data.length, img.width * img.height * 4);
        }),
      );
      assert.ok([200, 400, 413, 415].includes(s), String(s));
      seen.add(s);
    }
  }
  assert.ok(seen.has(400) && seen.has(200));
});

// A PNG just over the size from which the native backend decodes PNG with sharp.
const BIG = Math.floor(Math.sqrt(SHARP_PNG_MIN_PIXELS)) + 1;

Deno.test("decode native: a PNG over SHARP_PNG_MIN_PIXELS goes through sharp, exactly as imagescript decodes it", async () => {
  const pixels = gradient(BIG, BIG);
  for (let i = 3; i < pixels.length; i += 4 * 7) pixels[i] = i % 256; // some alpha too
  const png = await encodePng(pixels, BIG, BIG);
  // No test here decodes a PNG this large with imagescript first: had it decoded this one, that would count as growth.
  const before = wasmGrowth();
  const n = await decodeImage(png, {}, "image/png", native);
  assert.equal(wasmGrowth(), before, "sharp grows no WebAssembly memory");
  assert.deepEqual([n.width, n.height], [BIG, BIG]);
  assert.equal(maxDiff(n.data, pixels), 0);
  const small = await encodePng(gradient(BIG - 1, BIG - 1), BIG - 1, BIG - 1);
  assert.ok((BIG - 1) ** 2 <= SHARP_PNG_MIN_PIXELS);
  await decodeImage(small, {}, "image/png", native);
  await decodeImage(await encodePng(gradient(BIG + 2, BIG + 2), BIG + 2, BIG + 2), {}, "image/png", native);
  const grown = wasmGrowth();
  await decodeImage(await encodePng(gradient(2 * BIG, BIG), 2 * BIG, BIG), {}, "image/png");
  assert.equal(wasmGrowth(), grown + 1, "a larger PNG on imagescript counts as growth");
});

Deno.test("decode native: mutated large PNGs (sharp) fail as 400 or decode at the header's size", async () => {
  const next = rng(11);
  const source = await encodePng(gradient(BIG, BIG), BIG, BIG);
  const seen = new Set<number>();
  for (let trial = 0; trial < 40; trial++) {
    const bytes = source.slice();
    for (let f = 0, n = 1 + Math.floor(next() * 8); f < n; f++) {
      // Past the signature and IHDR: the header's checks are the small-PNG test's; here the pixels' stream is hit.
      bytes[33 + Math.floor(next() * (bytes.length - 33))] = Math.floor(next() * 256);
    }
    const s = await status(
      decodeImage(bytes, { maxPixels: 4_000_000 }, undefined, native).then((img) => {
        assert.equal(img.data.length, img.width * img.height * 4);
      }),
    );
    assert.ok([200, 400].includes(s), String(s));
    seen.add(s);
  }
  assert.ok(seen.has(400));
});

Deno.test("decode native: the decode pool decodes JPEG with sharp when told to", async () => {
  const pool = new DecodePool({ native: true });
  try {
    const jpeg = await encodeJpeg(PIXELS, W, H);
    const img = await pool.decode(jpeg, {});
    assert.deepEqual([...img.data], [...(await decodeImage(jpeg, {}, "image/jpeg", native)).data]);
    assert.ok(img.data.buffer instanceof SharedArrayBuffer);
  } finally {
    pool.close();
  }
});
