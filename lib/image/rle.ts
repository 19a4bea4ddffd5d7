// Run-length encoding of class masks: a compact JSON alternative to the mask
// PNG that clients can decode without an image library.

import { checkInt } from "./_shape.ts";
import type { MaskRle } from "./types.ts";

/**
 * Run-length encode a `width × height` class mask, row-major. Unlike COCO's
 * binary RLE, runs carry their own class value, so one encoding serves any
 * number of classes: `values[i]` repeated `counts[i]` times.
 *
 * @example
 * ```ts
 * import { encodeMaskRle } from "./rle.ts";
 * encodeMaskRle(new Uint8Array([0, 0, 1, 1, 1, 2]), 3, 2);
 * // { size: [2, 3], values: [0, 1, 2], counts: [2, 3, 1] }
 * ```
 */
export function encodeMaskRle(
  mask: Uint8Array,
  width: number,
  height: number,
): MaskRle {
  checkInt("width", width);
  checkInt("height", height);
  if (mask.length !== width * height) {
    throw new RangeError(
      `mask has ${mask.length} bytes, expected ${width}x${height}`,
    );
  }
  // Runs go into typed arrays that grow by doubling and become plain
  // arrays once at the end: a noisy 2048x2048 mask has millions of runs,
  // and pushing onto JS arrays costs several times the scan itself.
  const n = mask.length;
  let runValues = new Uint8Array(1024);
  let runCounts = new Uint32Array(1024);
  let runs = 0;
  for (let i = 0; i < n;) {
    const value = mask[i];
    const start = i;
    while (i < n && mask[i] === value) i++;
    if (runs === runValues.length) {
      const grownValues = new Uint8Array(runs * 2);
      const grownCounts = new Uint32Array(runs * 2);
      grownValues.set(runValues);
      grownCounts.set(runCounts);
      runValues = grownValues;
      runCounts = grownCounts;
    }
    runValues[runs] = value;
    runCounts[runs++] = i - start;
  }
  // A plain indexed copy; Array.from on a typed array is far slower here.
  const values = new Array<number>(runs);
  const counts = new Array<number>(runs);
  for (let k = 0; k < runs; k++) {
    values[k] = runValues[k];
    counts[k] = runCounts[k];
  }
  return { size: [height, width], values, counts };
}

/**
 * Expand a `MaskRle` back into a row-major `Uint8Array` of
 * `size[0] * size[1]` class values.
 *
 * @throws {RangeError} when the RLE is malformed: sizes not non-negative
 * integers, mismatched `values`/`counts` lengths, values outside 0..255,
 * non-positive counts, or counts not summing to the mask size.
 *
 * @example
 * ```ts
 * import { decodeMaskRle } from "./rle.ts";
 * decodeMaskRle({ size: [2, 3], values: [0, 1, 2], counts: [2, 3, 1] });
 * // Uint8Array [0, 0, 1, 1, 1, 2]
 * ```
 */
export function decodeMaskRle(rle: MaskRle): Uint8Array {
  const [height, width] = rle.size;
  checkInt("height", height);
  checkInt("width", width);
  const { values, counts } = rle;
  if (values.length !== counts.length) {
    throw new RangeError(
      `RLE has ${values.length} values but ${counts.length} counts`,
    );
  }
  const out = new Uint8Array(height * width);
  let offset = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    const count = counts[i];
    if (!Number.isInteger(value) || value < 0 || value > 255) {
      throw new RangeError(`RLE value ${value} is not a class index 0..255`);
    }
    if (!Number.isInteger(count) || count < 1 || offset + count > out.length) {
      throw new RangeError(
        `RLE count ${count} at run ${i} is invalid or overruns the mask`,
      );
    }
    out.fill(value, offset, offset + count);
    offset += count;
  }
  if (offset !== out.length) {
    throw new RangeError(
      `RLE covers ${offset} pixels, mask has ${out.length}`,
    );
  }
  return out;
}
