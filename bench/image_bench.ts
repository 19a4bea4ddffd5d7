// Speed of the per-request image work that is not model compute: mask
// encoding (PNG and RLE) at a typical and a large size, upload decoding,
// turning the decoded upload into a model tensor, and the per-pixel summary of
// a zoo model's class scores.
// Run: deno bench -A bench/image_bench.ts

import { Image } from "imagescript";
import { decodeImage, encodeMaskPng, encodeMaskRle, resizeCHW, summariseBatch, toCHW } from "../lib/image/mod.ts";

/** A mask shaped like real output: 3 classes in overlapping round blobs. */
function blobMask(size: number, seed = 1): Uint8Array {
  const mask = new Uint8Array(size * size);
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let k = 0; k < 40; k++) {
    const cx = next() * size;
    const cy = next() * size;
    const r = (next() * size) / 8 + 4;
    const value = 1 + (k % 2);
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(size, cy + r); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(size, cx + r); x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 < r * r) mask[y * size + x] = value;
      }
    }
  }
  return mask;
}

/** Worst case for both encoders: independent random classes per pixel. */
function noiseMask(size: number): Uint8Array {
  let state = 7;
  return Uint8Array.from(
    { length: size * size },
    () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 16) % 3,
  );
}

/** A photo-like 640x640 test image: gradients plus fine texture. */
function photo(size: number): Image {
  const image = new Image(size, size);
  const data = image.bitmap;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 4;
      data[o] = (x * 255) / size;
      data[o + 1] = (y * 255) / size;
      data[o + 2] = 128 + 60 * Math.sin(x / 3) * Math.cos(y / 5);
      data[o + 3] = 255;
    }
  }
  return image;
}

const masks = {
  640: blobMask(640),
  2048: blobMask(2048),
};
const noise2048 = noiseMask(2048);
const source = photo(640);
const png640 = await source.encode(1);
const jpeg640 = await source.encodeJPEG(90);

for (const size of [640, 2048] as const) {
  Deno.bench(`mask PNG encode ${size}x${size} (blobs)`, {
    group: `encode ${size}`,
    baseline: true,
  }, () => {
    encodeMaskPng(masks[size], size, size);
  });
  Deno.bench(`mask RLE encode ${size}x${size} (blobs)`, {
    group: `encode ${size}`,
  }, () => {
    encodeMaskRle(masks[size], size, size);
  });
}

Deno.bench("mask PNG encode 2048x2048 (noise, worst case)", () => {
  encodeMaskPng(noise2048, 2048, 2048);
});

Deno.bench("mask RLE encode 2048x2048 (noise, worst case)", () => {
  encodeMaskRle(noise2048, 2048, 2048);
});

Deno.bench("decode 640x640 PNG", { group: "decode" }, async () => {
  await decodeImage(png640);
});

Deno.bench("decode 640x640 JPEG q90", { group: "decode" }, async () => {
  await decodeImage(jpeg640);
});

const decoded = await decodeImage(png640);
const tensor = toCHW(decoded, 3);

Deno.bench("toCHW 640x640 RGB", { group: "tensor" }, () => {
  toCHW(decoded, 3);
});

Deno.bench("resizeCHW 3x640x640 -> 320x320", { group: "tensor" }, () => {
  resizeCHW(tensor, 3, 640, 640, 320, 320);
});

Deno.bench("resizeCHW 3x640x640 -> 160x160 (area)", { group: "tensor" }, () => {
  resizeCHW(tensor, 3, 640, 640, 160, 160);
});

/** Class scores shaped like a model's: smooth fields, each class ahead somewhere, confident far from the borders. */
function scores(c: number, size: number): { dims: number[]; data: Float32Array } {
  const data = new Float32Array(c * size * size);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) data[(k * size + y) * size + x] = 6 * Math.sin((x + 40 * k) / 23 + y / 31 + k);
    }
  }
  return { dims: [1, c, size, size], data };
}

for (const c of [2, 3, 4]) {
  const s = scores(c, 256);
  Deno.bench(`summarise ${c}-class scores 256x256 (top, class, entropy)`, { group: "summary" }, () => {
    summariseBatch(s, 256, 256, "all");
  });
}
