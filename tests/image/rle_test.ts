import assert from "node:assert/strict";
import { decodeMaskRle, encodeMaskRle } from "../../lib/image/mod.ts";
import { rng } from "../../dev/image_fixtures.ts";

Deno.test("encodeMaskRle: runs alternate arbitrary class values, row-major", () => {
  const mask = Uint8Array.of(0, 0, 1, 1, 1, 2);
  assert.deepEqual(encodeMaskRle(mask, 3, 2), {
    size: [2, 3],
    values: [0, 1, 2],
    counts: [2, 3, 1],
  });
  // Runs continue across row ends.
  assert.deepEqual(encodeMaskRle(new Uint8Array(6).fill(2), 2, 3), {
    size: [3, 2],
    values: [2],
    counts: [6],
  });
});

Deno.test("encodeMaskRle/decodeMaskRle: round-trips, including empty and 1x1", () => {
  const next = rng(3);
  for (const [w, h] of [[0, 0], [1, 1], [7, 3], [128, 96]]) {
    // Blocky random masks: runs of random length and value.
    const mask = new Uint8Array(w * h);
    for (let i = 0; i < mask.length;) {
      const run = 1 + Math.floor(next() * 20);
      mask.fill(Math.floor(next() * 3), i, i + run);
      i += run;
    }
    const rle = encodeMaskRle(mask, w, h);
    assert.equal(rle.counts.reduce((a, b) => a + b, 0), w * h);
    for (let i = 1; i < rle.values.length; i++) {
      assert.notEqual(rle.values[i], rle.values[i - 1]);
    }
    assert.deepEqual(decodeMaskRle(rle), mask);
    // It survives JSON, the way clients receive it.
    assert.deepEqual(decodeMaskRle(JSON.parse(JSON.stringify(rle))), mask);
  }
});

Deno.test("decodeMaskRle: malformed RLE is a RangeError", () => {
  const bad = [
    { size: [1, 3], values: [0, 1], counts: [1] },
    { size: [1, 3], values: [0], counts: [2] },
    { size: [1, 3], values: [0, 1], counts: [2, 2] },
    { size: [1, 3], values: [256], counts: [3] },
    { size: [1, 3], values: [0, 1], counts: [3, 0] },
    { size: [1, 3], values: [0], counts: [2.5] },
    { size: [-1, 3], values: [], counts: [] },
  ];
  for (const rle of bad) {
    assert.throws(
      () => decodeMaskRle(rle as { size: [number, number]; values: number[]; counts: number[] }),
      RangeError,
      JSON.stringify(rle),
    );
  }
  assert.throws(() => encodeMaskRle(new Uint8Array(5), 2, 2), RangeError);
});
