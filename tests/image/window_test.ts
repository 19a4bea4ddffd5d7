// windowsTensor (the workers' one-pass input builder) gives exactly what toCHW / toGrey, the per-channel
// normalisation, cropCHW("zero") and resizeCHW give in separate passes.

import assert from "node:assert/strict";
import { cropCHW, type InputFormat, planesTensor, resizeCHW, toCHW, windowsTensor } from "../../lib/image/mod.ts";

const W = 37, H = 23;
const data = new Uint8Array(W * H * 4);
for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + (i >> 3) * 13) % 256;
for (let i = 0; i < W * H; i += 3) data[4 * i + 3] = 255; // opaque and translucent pixels
for (let i = 0; i < W * H; i += 5) data[4 * i + 1] = data[4 * i + 2] = data[4 * i]; // grey pixels
const img = { width: W, height: H, data };

function separatePasses(fmt: InputFormat): Float32Array {
  const c = fmt.channels as 1 | 3, plane = W * H;
  const full = toCHW(img, c, undefined, fmt.background);
  if (c === 3 && fmt.channel_order === "bgr") {
    const r = full.slice(0, plane);
    full.copyWithin(0, 2 * plane, 3 * plane);
    full.set(r, 2 * plane);
  }
  for (let k = 0; k < c; k++) {
    const m = fmt.mean?.[k] ?? 0, s = fmt.std?.[k] ?? 1;
    for (let i = 0; i < plane; i++) full[k * plane + i] = (full[k * plane + i] - m) / s;
  }
  return full;
}

const FORMATS: InputFormat[] = [
  { channels: 1, channel_order: "grey", background: 0 },
  { channels: 1, channel_order: "grey", background: 255, mean: [0.5], std: [0.25] },
  { channels: 3, channel_order: "bgr", background: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  { channels: 3, channel_order: "rgb", background: 0 },
];

Deno.test("windowsTensor equals toCHW + normalise + cropCHW (+ resizeCHW), bit for bit", () => {
  for (const fmt of FORMATS) {
    const full = separatePasses(fmt);
    const c = fmt.channels;
    const wins = [{ x: -5, y: -3, w: 16, h: 12 }, { x: 30, y: 20, w: 16, h: 8 }, { x: 0, y: 0, w: 37, h: 23 }];
    for (const win of wins) {
      const want = cropCHW(full, c, H, W, win.x, win.y, win.w, win.h, "zero");
      assert.deepEqual(windowsTensor(img, fmt, [win], win.h, win.w), want);
      const half = resizeCHW(want, c, win.h, win.w, win.h >> 1, win.w >> 1);
      assert.deepEqual(windowsTensor(img, fmt, [win], win.h >> 1, win.w >> 1), half);
    }
    // A batch is the items one after the other.
    const a = { x: -5, y: -3, w: 16, h: 12 }, b = { x: 25, y: 14, w: 16, h: 12 };
    const batch = windowsTensor(img, fmt, [a, b], 12, 16);
    assert.deepEqual(batch.subarray(c * 12 * 16), windowsTensor(img, fmt, [b], 12, 16));
  }
});

Deno.test("windowsTensor: a window wholly outside the image is zeros; 2 channels are refused", () => {
  const out = windowsTensor(img, FORMATS[2], [{ x: 100, y: 100, w: 4, h: 4 }], 4, 4);
  assert.ok(out.every((v) => v === 0));
  assert.throws(
    () => windowsTensor(img, { ...FORMATS[0], channels: 2 }, [{ x: 0, y: 0, w: 1, h: 1 }], 1, 1),
    RangeError,
  );
});

Deno.test("windowsTensor into a reused buffer: same values whatever it held, written at its start, too short refused", () => {
  // Past the top and left border; inside; past the right and bottom; across the whole image and past every side;
  // outside it: `into` is zeroed only past the image's border.
  const wins = [
    { x: -5, y: -3, w: 16, h: 12 },
    { x: 4, y: 2, w: 16, h: 12 },
    { x: 30, y: 15, w: 16, h: 12 },
    { x: -2, y: -1, w: 48, h: 32 },
    { x: 100, y: 100, w: 16, h: 12 },
  ];
  for (const fmt of FORMATS) {
    for (const win of wins) {
      const want = windowsTensor(img, fmt, [win], win.h, win.w);
      const into = new Float32Array(want.length + 100).fill(Number.NaN);
      const got = windowsTensor(img, fmt, [win], win.h, win.w, into);
      assert.equal(got.buffer, into.buffer);
      assert.equal(got.byteOffset, 0);
      assert.deepEqual(got, want, JSON.stringify(win));
    }
    // A batch of windows of one size, each in its place.
    const batch = wins.filter((w) => w.w === 16), want = windowsTensor(img, fmt, batch, 12, 16);
    assert.deepEqual(windowsTensor(img, fmt, batch, 12, 16, new Float32Array(want.length).fill(Number.NaN)), want);
    assert.throws(() => windowsTensor(img, fmt, [wins[0]], 12, 16, new Float32Array(16 * 12 - 1)), RangeError);
  }
});

Deno.test("planesTensor: each plane times its scale, zero-padded bottom and right; into a reused buffer alike", () => {
  const best = new Uint8Array([0, 1, 2, 3, 4, 5]), entropy = new Float32Array([0.5, 0.25, 1, 0, 0.125, 0.75]);
  const input = { planes: [{ data: best, scale: 1 / 10 }, { data: entropy, scale: 1 }], h: 2, w: 3 };
  const want = new Float32Array(2 * 3 * 4);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 3; x++) {
      want[y * 4 + x] = best[y * 3 + x] * (1 / 10);
      want[12 + y * 4 + x] = entropy[y * 3 + x];
    }
  }
  assert.deepEqual(planesTensor(input, 3, 4), want);
  const into = new Float32Array(40).fill(7);
  const got = planesTensor(input, 3, 4, into);
  assert.equal(got.buffer, into.buffer);
  assert.deepEqual(got, want);
  assert.throws(() => planesTensor(input, 1, 4), RangeError);
  assert.throws(() => planesTensor({ ...input, w: 2 }, 3, 4), RangeError);
});

Deno.test("windowsTensor reads pixels held anywhere: a shared buffer, or bytes not starting on a 4-byte boundary", () => {
  const shared = new Uint8Array(new SharedArrayBuffer(data.length));
  shared.set(data);
  const odd = new Uint8Array(data.length + 1).subarray(1);
  odd.set(data);
  const win = { x: -5, y: -3, w: 40, h: 30 };
  for (const fmt of FORMATS) {
    const want = windowsTensor(img, fmt, [win], 30, 40);
    assert.deepEqual(windowsTensor({ ...img, data: shared }, fmt, [win], 30, 40), want);
    assert.deepEqual(windowsTensor({ ...img, data: odd }, fmt, [win], 30, 40), want);
  }
});
