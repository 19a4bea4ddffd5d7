import assert from "node:assert/strict";
import { cropCHW, type RgbaImage, summariseBatch, summariseScores, toCHW, toGrey } from "../../lib/image/mod.ts";

function image(width: number, height: number, pixels: number[][]): RgbaImage {
  return { width, height, data: Uint8Array.from(pixels.flat()) };
}

function close(actual: ArrayLike<number>, expected: number[], eps = 1e-6) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= eps,
      `[${i}] ${actual[i]} != ${expected[i]}`,
    );
  }
}

Deno.test("toGrey: BT.601 luma of pure colours", () => {
  const img = image(4, 1, [
    [255, 0, 0, 255],
    [0, 255, 0, 255],
    [0, 0, 255, 255],
    [255, 255, 255, 255],
  ]);
  close(toGrey(img), [0.299, 0.587, 0.114, 1]);
});

Deno.test("toGrey: grey pixels map to exactly v/255", () => {
  const pixels = Array.from({ length: 256 }, (_, v) => [v, v, v, 255]);
  const grey = toGrey(image(256, 1, pixels));
  for (let v = 0; v < 256; v++) assert.equal(grey[v], Math.fround(v / 255));
});

Deno.test("toGrey: alpha composites over black by default, or a given grey", () => {
  const img = image(3, 1, [
    [255, 255, 255, 0],
    [255, 255, 255, 51],
    [0, 0, 0, 51],
  ]);
  close(toGrey(img), [0, 0.2, 0]);
  close(toGrey(img, 255), [1, 1, 0.8]);
  assert.throws(() => toGrey(img, 256), RangeError);
});

Deno.test("toCHW: 1 channel is luma, 3 channels are planar RGB", () => {
  const img = image(2, 1, [
    [255, 0, 0, 255],
    [0, 51, 102, 255],
  ]);
  assert.deepEqual(toCHW(img, 1), toGrey(img));
  close(toCHW(img, 3), [1, 0, 0, 0.2, 0, 0.4]);
});

Deno.test("toCHW: grey uploads replicate across three channels", () => {
  const img = image(3, 1, [[10, 10, 10, 255], [128, 128, 128, 255], [255, 255, 255, 255]]);
  const grey = toGrey(img);
  const chw = toCHW(img, 3);
  for (let c = 0; c < 3; c++) {
    assert.deepEqual(chw.subarray(c * 3, c * 3 + 3), grey);
  }
});

Deno.test("toCHW: per-channel mean/std normalisation and alpha", () => {
  const img = image(1, 2, [[255, 127.5, 0, 255], [255, 255, 255, 0]]);
  const norm = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 2] };
  // Second pixel is fully transparent: black after compositing.
  close(toCHW(img, 3, norm), [1, -1, (127 / 255 - 0.5) / 0.25, -2, -0.25, -0.25]);
  close(toCHW(img, 1, { mean: [0.5], std: [0.5] }), [
    (0.299 + 0.587 * 127 / 255 - 0.5) / 0.5,
    -1,
  ]);
  assert.throws(() => toCHW(img, 3, { mean: [0, 0], std: [1, 1] }), RangeError);
  assert.throws(() => toCHW(img, 3, { mean: [0, 0, 0], std: [1, 0, 1] }), RangeError);
});

Deno.test("toCHW/toGrey: mismatched data length is a RangeError", () => {
  const bad = { width: 2, height: 2, data: new Uint8Array(12) };
  assert.throws(() => toGrey(bad), RangeError);
  assert.throws(() => toCHW(bad, 3), RangeError);
});

// 1 channel, 2 rows x 3 columns:
//   1 2 3
//   4 5 6
const SRC = Float32Array.of(1, 2, 3, 4, 5, 6);

Deno.test("cropCHW: zero padding around a 2x3 image", () => {
  const out = cropCHW(SRC, 1, 2, 3, -2, -1, 6, 4, "zero");
  assert.deepEqual(Array.from(out), [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    2,
    3,
    0,
    0,
    0,
    4,
    5,
    6,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
  // Default pad mode is zero.
  assert.deepEqual(cropCHW(SRC, 1, 2, 3, -2, -1, 6, 4), out);
});

Deno.test("cropCHW: edge padding repeats the border pixel", () => {
  const out = cropCHW(SRC, 1, 2, 3, -2, -1, 6, 4, "edge");
  assert.deepEqual(Array.from(out), [
    1,
    1,
    1,
    2,
    3,
    3,
    1,
    1,
    1,
    2,
    3,
    3,
    4,
    4,
    4,
    5,
    6,
    6,
    4,
    4,
    4,
    5,
    6,
    6,
  ]);
});

Deno.test("cropCHW: reflect padding mirrors without repeating the edge", () => {
  const out = cropCHW(SRC, 1, 2, 3, -2, -1, 6, 4, "reflect");
  assert.deepEqual(Array.from(out), [
    6,
    5,
    4,
    5,
    6,
    5,
    3,
    2,
    1,
    2,
    3,
    2,
    6,
    5,
    4,
    5,
    6,
    5,
    3,
    2,
    1,
    2,
    3,
    2,
  ]);
  // Halos wider than the image keep reflecting (numpy's "reflect").
  const row = Float32Array.of(0, 1, 2);
  assert.deepEqual(
    Array.from(cropCHW(row, 1, 1, 3, -5, 0, 13, 1, "reflect")),
    [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1],
  );
});

Deno.test("cropCHW: interior window, several channels, outside windows", () => {
  // 2 channels of 3x4; channel k holds 100k + 10y + x.
  const c = 2, h = 3, w = 4;
  const src = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) src[(k * h + y) * w + x] = 100 * k + 10 * y + x;
    }
  }
  assert.deepEqual(Array.from(cropCHW(src, c, h, w, 1, 1, 2, 2)), [
    11,
    12,
    21,
    22,
    111,
    112,
    121,
    122,
  ]);
  // Entirely outside: zeros, or the nearest corner with edge padding.
  assert.deepEqual(Array.from(cropCHW(src, c, h, w, 10, 10, 2, 1)), [0, 0, 0, 0]);
  assert.deepEqual(
    Array.from(cropCHW(src, c, h, w, 10, -10, 2, 1, "edge")),
    [3, 3, 103, 103],
  );
  assert.throws(() => cropCHW(src, c, h, w + 1, 0, 0, 1, 1), RangeError);
  assert.throws(() => cropCHW(src, c, h, w, 0.5, 0, 1, 1), RangeError);
});

Deno.test("summariseScores: softmax's top probability, first argmax and normalised entropy, per pixel", () => {
  // Pixels of [C, plane] logits, ties included; the reference is the softmax written out.
  for (const c of [2, 3, 5]) {
    const plane = 7;
    const logits = Float32Array.from({ length: c * plane }, (_v, i) => ((i * 37) % 11) / 2 - 2);
    for (let k = 0; k < c; k++) logits[k * plane + 6] = 1.5; // all classes tie
    const dst = {
      top: new Float32Array(plane + 1),
      best: new Uint8Array(plane + 1),
      entropy: new Float32Array(plane + 1),
    };
    summariseScores(logits, c, plane, 0, plane, dst, 1);
    for (let p = 0; p < plane; p++) {
      const z = Array.from({ length: c }, (_v, k) => logits[k * plane + p]);
      const m = Math.max(...z), e = z.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b);
      const q = e.map((v) => v / s);
      close([dst.top[p + 1], dst.entropy[p + 1]], [
        Math.max(...q),
        -q.reduce((a, v) => a + v * Math.log(v), 0) / Math.log(c),
      ]);
      assert.equal(dst.best[p + 1], z.indexOf(m), `pixel ${p}`);
    }
    assert.equal(dst.top[0], 0); // nothing written before p
  }
});

Deno.test("summariseBatch: per item at the windows' size; 'class' is exactly the class plane of 'all'", () => {
  const [n, c, h, w] = [2, 3, 4, 6];
  const scores = { dims: [n, c, h, w], data: Float32Array.from({ length: n * c * h * w }, (_v, i) => (i * 29) % 13) };
  const all = summariseBatch(scores, h, w, "all"), cls = summariseBatch(scores, h, w, "class");
  assert.deepEqual(all.dims, [n, 3, h, w]);
  assert.deepEqual(cls.dims, [n, 1, h, w]);
  const plane = h * w;
  for (let b = 0; b < n; b++) {
    const dst = { top: new Float32Array(plane), best: new Uint8Array(plane), entropy: new Float32Array(plane) };
    summariseScores(scores.data.subarray(b * c * plane, (b + 1) * c * plane), c, plane, 0, plane, dst, 0);
    assert.deepEqual(all.data.subarray((3 * b) * plane, (3 * b + 1) * plane), dst.top);
    assert.deepEqual(Array.from(all.data.subarray((3 * b + 1) * plane, (3 * b + 2) * plane)), Array.from(dst.best));
    assert.deepEqual(Array.from(cls.data.subarray(b * plane, (b + 1) * plane)), Array.from(dst.best));
  }
  // Scores at another size are resized to the window's first.
  assert.deepEqual(summariseBatch(scores, 2 * h, 2 * w, "class").dims, [n, 1, 2 * h, 2 * w]);
});
