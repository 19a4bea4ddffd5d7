import assert from "node:assert/strict";
import { resizeCHW, resizeMaskNearest, squeezeWidth, stretchRows } from "../../lib/image/mod.ts";

function close(actual: ArrayLike<number>, expected: number[], eps = 1e-6) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= eps,
      `[${i}] ${actual[i]} != ${expected[i]}`,
    );
  }
}

Deno.test("resizeCHW: a constant image stays constant at any scale", () => {
  const c = 3, h = 37, w = 23;
  const src = new Float32Array(c * h * w).fill(0.7);
  for (const [oh, ow] of [[74, 46], [12, 7], [5, 3], [25, 15], [37, 100], [1, 1], [90, 4]]) {
    const out = resizeCHW(src, c, h, w, oh, ow);
    assert.equal(out.length, c * oh * ow);
    for (const v of out) assert.ok(Math.abs(v - 0.7) < 1e-6, `${oh}x${ow}: ${v}`);
  }
});

Deno.test("resizeCHW: 2x upscale of a ramp is monotone, half-pixel centred", () => {
  const ramp = Float32Array.of(0, 1, 2, 3);
  // PyTorch interpolate(mode="bilinear", align_corners=False) gives these.
  close(resizeCHW(ramp, 1, 1, 4, 1, 8), [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]);
  const h = 16, w = 16;
  const src = new Float32Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) src[y * w + x] = x + 2 * y;
  const out = resizeCHW(src, 1, h, w, 2 * h, 2 * w);
  for (let y = 0; y < 2 * h; y++) {
    for (let x = 1; x < 2 * w; x++) {
      assert.ok(out[y * 2 * w + x] >= out[y * 2 * w + x - 1], `row ${y} col ${x}`);
    }
  }
  for (let x = 0; x < 2 * w; x++) {
    for (let y = 1; y < 2 * h; y++) {
      assert.ok(out[y * 2 * w + x] >= out[(y - 1) * 2 * w + x], `col ${x} row ${y}`);
    }
  }
});

Deno.test("resizeCHW: downscaling averages (bilinear at 2x, area beyond)", () => {
  close(resizeCHW(Float32Array.of(0, 1, 2, 3), 1, 1, 4, 1, 2), [0.5, 2.5]);
  close(resizeCHW(Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7), 1, 1, 8, 1, 2), [1.5, 5.5]);
  // 5 -> 2 (2.5x): fractional coverage of the middle pixel.
  close(resizeCHW(Float32Array.of(0, 1, 2, 3, 4), 1, 1, 5, 1, 2), [0.8, 3.2]);
  // Vertical axis alone, two channels.
  const col = Float32Array.of(0, 1, 2, 3, 10, 11, 12, 13);
  close(resizeCHW(col, 2, 4, 1, 1, 1), [1.5, 11.5]);
});

Deno.test("resizeCHW: shrinking a checkerboard 4x does not alias", () => {
  const n = 64;
  const src = new Float32Array(n * n);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) src[y * n + x] = (x + y) % 2;
  const out = resizeCHW(src, 1, n, n, n / 4, n / 4);
  for (const v of out) assert.ok(Math.abs(v - 0.5) < 1e-6, `${v}`);
});

Deno.test("resizeCHW: same size copies; bad shapes throw", () => {
  const src = Float32Array.of(1, 2, 3, 4);
  const out = resizeCHW(src, 1, 2, 2, 2, 2);
  assert.deepEqual(out, src);
  assert.notEqual(out, src);
  assert.throws(() => resizeCHW(src, 1, 2, 3, 4, 4), RangeError);
  assert.throws(() => resizeCHW(src, 1, 2, 2, -1, 4), RangeError);
});

Deno.test("resizeMaskNearest: integer upscale replicates blocks", () => {
  const out = resizeMaskNearest(Uint8Array.of(0, 1, 2, 1), 2, 2, 4, 4);
  assert.deepEqual(Array.from(out), [
    0,
    0,
    1,
    1,
    0,
    0,
    1,
    1,
    2,
    2,
    1,
    1,
    2,
    2,
    1,
    1,
  ]);
});

Deno.test("resizeMaskNearest: downscale samples pixel centres, odd sizes", () => {
  const row = Uint8Array.of(0, 1, 2, 3);
  assert.deepEqual(Array.from(resizeMaskNearest(row, 1, 4, 1, 2)), [1, 3]);
  assert.deepEqual(Array.from(resizeMaskNearest(Uint8Array.of(0, 1, 2), 1, 3, 1, 5)), [
    0,
    0,
    1,
    2,
    2,
  ]);
  // Only existing class values ever appear.
  const mask = Uint8Array.from({ length: 7 * 5 }, (_, i) => (i * 7) % 3);
  const out = resizeMaskNearest(mask, 7, 5, 19, 11);
  assert.equal(out.length, 19 * 11);
  for (const v of out) assert.ok(v <= 2);
  assert.throws(() => resizeMaskNearest(mask, 7, 4, 2, 2), RangeError);
});

Deno.test("squeezeWidth: each row resampled as resizeCHW resamples an axis; runs of one colour exact; height kept", () => {
  const width = 97, height = 5, data = new Uint8Array(4 * width * height);
  for (let i = 0; i < width * height; i++) {
    const x = i % width;
    data.set(x < 40 ? [250, 250, 250, 255] : [(x * 7) % 256, (x * 13) % 256, 255 - x, 128 + (x % 128)], 4 * i);
  }
  const image = { width, height, data };
  for (const outW of [96, 61, 40, 17]) {
    const out = squeezeWidth(image, outW);
    assert.deepEqual([out.width, out.height], [outW, height]);
    // Channel by channel, the float resampler's rows, rounded.
    for (let k = 0; k < 4; k++) {
      const plane = Float32Array.from({ length: width * height }, (_, i) => data[4 * i + k]);
      const want = resizeCHW(plane, 1, height, width, height, outW);
      want.forEach((v, i) => assert.equal(out.data[4 * i + k], Math.round(v), `${outW} px, channel ${k}, pixel ${i}`));
    }
    // Where the source is one colour throughout the taps, the colour itself.
    assert.deepEqual([...out.data.subarray(0, 4)], [250, 250, 250, 255]);
  }
  assert.ok(squeezeWidth(image, 50, true).data.buffer instanceof SharedArrayBuffer);
  assert.ok(!(squeezeWidth(image, 50).data.buffer instanceof SharedArrayBuffer));
  assert.throws(() => squeezeWidth(image, 0), RangeError);
  assert.throws(() => squeezeWidth(image, 98), RangeError);
  assert.throws(() => squeezeWidth(image, 1.5), RangeError);
});

Deno.test("stretchRows: bitwise resizeCHW's rows where each row is zero outside its span; only the span's reach computed", () => {
  // Deterministic pseudo-random rows (a linear congruential generator), each with values in a span of its own.
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const [h, w, outW] of [[9, 60, 97], [7, 97, 60], [5, 200, 37], [6, 31, 31], [4, 1, 9], [3, 50, 1]]) {
    const src = new Float32Array(h * w), spans = new Int32Array(2 * h);
    for (let y = 0; y < h; y++) {
      if (y === 1) continue; // a row nothing wrote: span [0, 0)
      const a = Math.floor(next() * w), b = Math.min(w, a + 1 + Math.floor(next() * w));
      spans.set([a, b], 2 * y);
      for (let x = a; x < b; x++) src[y * w + x] = 0.1 + next();
    }
    const want = resizeCHW(src, 1, h, w, h, outW);
    const got = stretchRows(src, h, w, outW, spans);
    assert.deepEqual([...got.data], [...want], `${h}×${w} → ${outW}`);
    for (let y = 0; y < h; y++) {
      const [j0, j1] = [got.spans[2 * y], got.spans[2 * y + 1]];
      // Every nonzero output lies in the row's span of outputs; the empty row has none.
      for (let j = 0; j < outW; j++) if (want[y * outW + j] !== 0) assert.ok(j >= j0 && j < j1, `row ${y}: ${j}`);
      if (y === 1) assert.equal(j1 - j0, 0);
    }
  }
  const src = Float32Array.of(0, 1, 0, 0);
  assert.deepEqual([...stretchRows(src, 1, 4, 8, Int32Array.of(1, 2)).spans], [0, 5]);
  assert.throws(() => stretchRows(src, 1, 4, 8, Int32Array.of(0)), RangeError);
  assert.throws(() => stretchRows(src, 2, 4, 8, Int32Array.of(0, 1, 0, 1)), RangeError);
});
