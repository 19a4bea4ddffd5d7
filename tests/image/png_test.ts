import assert from "node:assert/strict";
import { Image } from "imagescript";
import { decodeImage, encodeMaskPng, sniffImage } from "../../lib/image/mod.ts";
import { rng } from "../../dev/image_fixtures.ts";

function randomMask(width: number, height: number, seed: number): Uint8Array {
  const next = rng(seed);
  return Uint8Array.from({ length: width * height }, () => Math.floor(next() * 3));
}

// In this order, so later masks reuse (lib/image/png.ts) the rows buffer of larger and smaller ones before them.
for (const [width, height] of [[1, 1], [7, 3], [3, 7], [64, 48], [641, 479], [5, 2]]) {
  Deno.test(`encodeMaskPng: ${width}x${height} round-trips`, async () => {
    const mask = randomMask(width, height, width * 1000 + height);
    const png = encodeMaskPng(mask, width, height);
    assert.deepEqual(sniffImage(png), { format: "png", width, height });
    for (const img of [await decodeImage(png), await Image.decode(png)]) {
      const data = "bitmap" in img ? img.bitmap : img.data;
      assert.equal(img.width, width);
      assert.equal(img.height, height);
      for (let i = 0; i < mask.length; i++) {
        if (data[i * 4] !== mask[i] || data[i * 4 + 3] !== 255) {
          assert.fail(`pixel ${i}: ${data[i * 4]} != ${mask[i]}`);
        }
      }
    }
  });
}

Deno.test("encodeMaskPng: 8-bit greyscale IHDR, all byte values survive", async () => {
  const mask = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
  const png = encodeMaskPng(mask, 16, 16);
  assert.deepEqual(Array.from(png.subarray(12, 16)), [0x49, 0x48, 0x44, 0x52]);
  assert.equal(png[24], 8, "bit depth");
  assert.equal(png[25], 0, "colour type grey");
  assert.equal(png[28], 0, "not interlaced");
  const img = await decodeImage(png);
  assert.deepEqual(Array.from(img.data.filter((_, i) => i % 4 === 0)), Array.from(mask));
});

Deno.test("encodeMaskPng: a uniform 2048x2048 mask compresses to a few KB", () => {
  const png = encodeMaskPng(new Uint8Array(2048 * 2048), 2048, 2048);
  assert.ok(png.length < 20_000, `${png.length} bytes`);
});

Deno.test("encodeMaskPng: bad sizes are a RangeError", () => {
  assert.throws(() => encodeMaskPng(new Uint8Array(6), 2, 2), RangeError);
  assert.throws(() => encodeMaskPng(new Uint8Array(0), 0, 0), RangeError);
  assert.throws(() => encodeMaskPng(new Uint8Array(2), 2.5, 1), RangeError);
});
