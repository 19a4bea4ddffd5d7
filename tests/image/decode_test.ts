import assert from "node:assert/strict";
import { GIF, Image } from "imagescript";
import { InvalidImageError, PayloadTooLargeError, ProblemError, UnsupportedMediaTypeError } from "../../lib/errors.ts";
import { decodeImage, encodeMaskPng, MAX_JPEG_SCANS } from "../../lib/image/mod.ts";
import { KEEP_MAX_PIXELS, KeptDecoder } from "../../lib/image/_codecs.ts";
import {
  encodeGif,
  encodeJpeg,
  encodePng,
  gradient,
  jpegHeaderOnly,
  pngHeaderOnly,
  randomBytes,
  rng,
  tiff,
  webpHeader,
} from "../../dev/image_fixtures.ts";

type Status = 400 | 413 | 415;

async function rejectsWith(
  promise: Promise<unknown>,
  status: Status,
  message?: RegExp,
): Promise<ProblemError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ProblemError, `expected ${status}, got ${caught}`);
  assert.equal(caught.status, status, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

const W = 48;
const H = 32;
const PIXELS = gradient(W, H);

Deno.test("decode: PNG round-trip is exact and matches imagescript", async () => {
  const png = await encodePng(PIXELS, W, H);
  const img = await decodeImage(png, {}, "image/png");
  assert.equal(img.width, W);
  assert.equal(img.height, H);
  assert.equal(img.data.length, W * H * 4);
  assert.equal(maxDiff(img.data, PIXELS), 0);
  assert.equal(maxDiff(img.data, (await Image.decode(png)).bitmap), 0);
});

Deno.test("decode: JPEG round-trip is close and matches imagescript", async () => {
  const jpeg = await encodeJpeg(PIXELS, W, H);
  const img = await decodeImage(jpeg, {}, "image/jpeg");
  assert.equal(img.width, W);
  assert.equal(img.height, H);
  assert.ok(maxDiff(img.data, PIXELS) <= 12, `${maxDiff(img.data, PIXELS)}`);
  assert.equal(maxDiff(img.data, (await Image.decode(jpeg)).bitmap), 0);
});

Deno.test("decode: `into` receives the pixels, whatever the buffer held before, for PNG, JPEG and GIF", async () => {
  // A grey JPEG (one channel), an RGB one, a PNG, and a GIF with transparent pixels (which must come out 0, not as
  // whatever the reused buffer held).
  const holes = new Uint8Array(W * H * 4);
  for (let i = 0; i < W * H; i++) holes.set(i % 4 === 0 ? [0, 0, 0, 0] : [255, 0, 0, 255], i * 4);
  const { default: sharp } = await import("sharp");
  const greyJpeg = new Uint8Array(
    await sharp(Uint8Array.from({ length: W * H }, (_, i) => i % 251), { raw: { width: W, height: H, channels: 1 } })
      .toColourspace("b-w").jpeg().toBuffer(),
  );
  assert.equal((await sharp(greyJpeg).metadata()).channels, 1);
  const cases: [string, Uint8Array, boolean][] = [
    ["png", await encodePng(PIXELS, W, H), false],
    ["jpeg", await encodeJpeg(PIXELS, W, H), false],
    ["jpeg", greyJpeg, false],
    ["gif", await encodeGif(holes, W, H), false],
    // sharp (native): copied into the buffer, its own freed (_sharp.ts).
    ["jpeg", await encodeJpeg(PIXELS, W, H), true],
  ];
  for (const [type, bytes, native] of cases) {
    const plain = await decodeImage(bytes, {}, `image/${type}`, { native });
    const dirty = new Uint8Array(new SharedArrayBuffer(W * H * 4 + 64)).fill(0xa5);
    let asked = 0;
    const img = await decodeImage(bytes, {}, `image/${type}`, {
      native,
      into: (n) => (asked = n, dirty.subarray(0, n)),
    });
    assert.equal(asked, W * H * 4, type);
    assert.equal(img.data.buffer, dirty.buffer, `${type}: decoded into the given buffer`);
    assert.deepEqual(img.data, plain.data, type);
  }
});

Deno.test("decode: GIF first frame matches imagescript and the source", async () => {
  // Few colours, so the GIF palette holds them exactly.
  const px = new Uint8Array(W * H * 4);
  for (let i = 0; i < W * H; i++) {
    px.set(i % 3 === 0 ? [255, 0, 0, 255] : [0, 0, 255, 255], i * 4);
  }
  const gif = await encodeGif(px, W, H);
  const img = await decodeImage(gif, {}, "image/gif");
  assert.equal(img.width, W);
  assert.equal(img.height, H);
  assert.equal(maxDiff(img.data, (await GIF.decode(gif, true))[0].bitmap), 0);
  assert.ok(maxDiff(img.data, px) <= 8);
});

Deno.test("decode: TIFF (hand-built, uncompressed)", async () => {
  const grey = Array.from({ length: W * H }, (_, i) => i % 256);
  const img = await decodeImage(
    tiff({ width: W, height: H, channels: 1, pixels: grey }),
    {},
    "image/tiff",
  );
  assert.equal(img.width, W);
  assert.equal(img.height, H);
  assert.deepEqual(
    Array.from(img.data),
    grey.flatMap((v) => [v, v, v, 255]),
  );
});

Deno.test("decode: 8-bit greyscale mask PNG decodes to R=G=B=class", async () => {
  const mask = Uint8Array.from({ length: 35 }, (_, i) => i % 3);
  const img = await decodeImage(encodeMaskPng(mask, 7, 5));
  for (let i = 0; i < mask.length; i++) {
    assert.deepEqual(Array.from(img.data.subarray(i * 4, i * 4 + 4)), [
      mask[i],
      mask[i],
      mask[i],
      255,
    ]);
  }
});

Deno.test("decode: empty body is 400", async () => {
  await rejectsWith(decodeImage(new Uint8Array(0)), 400, /empty/);
});

Deno.test("decode: random bytes are 400", async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const e = await rejectsWith(decodeImage(randomBytes(2000, seed)), 400);
    assert.ok(e instanceof InvalidImageError);
  }
});

Deno.test("decode: truncated PNG is 400 (after IHDR, mid-IDAT, before IEND)", async () => {
  const png = await encodePng(PIXELS, W, H);
  const idat = png.findIndex((_, i) =>
    png[i] === 0x49 && png[i + 1] === 0x44 && png[i + 2] === 0x41 &&
    png[i + 3] === 0x54
  );
  for (const cut of [33, idat + 10, Math.floor((idat + png.length) / 2), png.length - 12, png.length - 1]) {
    await rejectsWith(decodeImage(png.subarray(0, cut)), 400);
  }
});

Deno.test("decode: truncated JPEG is 400 (before SOF, mid-scan, no EOI)", async () => {
  const jpeg = await encodeJpeg(PIXELS, W, H);
  const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
  const sos = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xda);
  await rejectsWith(decodeImage(jpeg.subarray(0, sof)), 400, /truncated/);
  await rejectsWith(decodeImage(jpeg.subarray(0, Math.floor((sos + jpeg.length) / 2))), 400);
  await rejectsWith(decodeImage(jpeg.subarray(0, jpeg.length - 2)), 400);
});

Deno.test("decode: truncated GIF and TIFF are 400", async () => {
  const gif = await encodeGif(PIXELS, W, H);
  await rejectsWith(decodeImage(gif.subarray(0, 20)), 400);
  await rejectsWith(decodeImage(gif.subarray(0, Math.floor(gif.length / 2))), 400);
  const tif = tiff({ width: W, height: H, channels: 3, pixels: new Array(W * H * 3).fill(9) });
  await rejectsWith(decodeImage(tif.subarray(0, 100)), 400);
});

Deno.test("decode: PNG header claiming 100000x100000 is 413 before decoding", async () => {
  const start = performance.now();
  const e = await rejectsWith(decodeImage(pngHeaderOnly(100_000, 100_000)), 413);
  assert.ok(performance.now() - start < 100, "must not decode");
  assert.ok(e instanceof PayloadTooLargeError);
  assert.deepEqual(
    { width: e.extra.width, height: e.extra.height, max_pixels: e.extra.max_pixels },
    { width: 100_000, height: 100_000, max_pixels: 16_000_000 },
  );
});

Deno.test("decode: JPEG header claiming 60000x60000 is 413", async () => {
  const e = await rejectsWith(decodeImage(jpegHeaderOnly(60_000, 60_000)), 413);
  assert.equal(e.extra.width, 60_000);
  assert.equal(e.extra.height, 60_000);
});

Deno.test("decode: GIF and TIFF headers over the limit are 413", async () => {
  // 10x10 screen whose first frame claims 5000x5000.
  const gif = Uint8Array.of(
    0x47,
    0x49,
    0x46,
    0x38,
    0x39,
    0x61,
    10,
    0,
    10,
    0,
    0,
    0,
    0,
    0x2c,
    0,
    0,
    0,
    0,
    0x88,
    0x13,
    0x88,
    0x13,
    0,
    2,
    2,
    0x4c,
    0x01,
    0,
    0x3b,
  );
  const e = await rejectsWith(decodeImage(gif, { maxPixels: 1_000_000 }), 413);
  assert.equal(e.extra.pixels, 25_000_000);
  const tif = tiff({ width: 1000, height: 1001, channels: 1, pixels: [], longDims: true });
  await rejectsWith(decodeImage(tif, { maxPixels: 1_000_000 }), 413);
});

Deno.test("decode: decompression bomb (5000x5000 PNG, few KB) is 413", async () => {
  const bomb = encodeMaskPng(new Uint8Array(5000 * 5000), 5000, 5000);
  assert.ok(bomb.length < 200_000, `bomb is ${bomb.length} bytes`);
  const e = await rejectsWith(decodeImage(bomb, { maxPixels: 1_000_000 }), 413);
  assert.equal(e.extra.max_pixels, 1_000_000);
  // 25 MP is over the default 16 MP too.
  await rejectsWith(decodeImage(bomb), 413);
});

Deno.test("decode: WebP, BMP, AVIF, JPEG XL and SVG are 415", async () => {
  const e = await rejectsWith(decodeImage(webpHeader(64, 64)), 415, /webp/);
  assert.ok(e instanceof UnsupportedMediaTypeError);
  assert.deepEqual(e.extra.supported, ["image/png", "image/jpeg", "image/gif", "image/tiff"]);
  const bmp = new Uint8Array(64);
  bmp.set([0x42, 0x4d]);
  bmp[14] = 40;
  bmp[18] = 4;
  bmp[22] = 4;
  await rejectsWith(decodeImage(bmp), 415, /bmp/);
  const avif = Uint8Array.of(0, 0, 0, 0x1c, 0x66, 0x74, 0x79, 0x70, 0x61, 0x76, 0x69, 0x66, 0, 0, 0, 0);
  await rejectsWith(decodeImage(avif), 415, /avif/);
  await rejectsWith(decodeImage(Uint8Array.of(0xff, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), 415, /jxl/);
  const svg = new TextEncoder().encode(`<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>`);
  await rejectsWith(decodeImage(svg), 415, /svg/);
});

Deno.test("decode: declared Content-Type outside the four is 415, aliases pass", async () => {
  const png = await encodePng(PIXELS, W, H);
  for (const type of ["image/webp", "text/plain", "application/octet-stream", "image/svg+xml"]) {
    await rejectsWith(decodeImage(png, {}, type), 415);
  }
  for (const type of ["image/png", "IMAGE/PNG; charset=binary", "image/x-png", ""]) {
    assert.equal((await decodeImage(png, {}, type)).width, W, type);
  }
  // Declared and sniffed disagree: the bytes win.
  assert.equal((await decodeImage(png, {}, "image/jpeg")).width, W);
  assert.equal((await decodeImage(await encodeJpeg(PIXELS, W, H), {}, "image/jpg")).width, W);
});

Deno.test("decode: a JPEG with too many scans is 400 before decoding", async () => {
  const header = jpegHeaderOnly(16, 16);
  const scans = new Uint8Array((MAX_JPEG_SCANS + 1) * 2);
  for (let i = 0; i < scans.length; i += 2) scans.set([0xff, 0xda], i);
  const bytes = new Uint8Array(header.length + scans.length);
  bytes.set(header.subarray(0, header.length - 2));
  bytes.set(scans, header.length - 2);
  await rejectsWith(decodeImage(bytes), 400, /scans/);
});

Deno.test("decode: invalid maxPixels is a programming error", async () => {
  const png = await encodePng(PIXELS, W, H);
  await assert.rejects(decodeImage(png, { maxPixels: 0 }), RangeError);
  await assert.rejects(decodeImage(png, { maxPixels: Number.NaN }), RangeError);
});

Deno.test("decode: mutated files never escape as untyped errors", async () => {
  // Flip bytes at random in valid files of every format: each decode must
  // either succeed with the header's size or fail with a 400/413/415, and a
  // trap in one decode must not break the next.
  const sources = [
    await encodePng(PIXELS, W, H),
    await encodeJpeg(PIXELS, W, H),
    await encodeGif(PIXELS, W, H),
    tiff({
      width: W,
      height: H,
      channels: 3,
      pixels: Array.from(PIXELS.filter((_, i) => i % 4 !== 3)),
      compression: 5,
    }),
  ];
  const next = rng(42);
  let failures = 0;
  for (const source of sources) {
    for (let trial = 0; trial < 150; trial++) {
      const bytes = source.slice();
      const flips = 1 + Math.floor(next() * 8);
      for (let f = 0; f < flips; f++) {
        bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      }
      try {
        const img = await decodeImage(bytes, { maxPixels: 4_000_000 });
        assert.equal(img.data.length, img.width * img.height * 4);
      } catch (error) {
        failures++;
        assert.ok(
          error instanceof ProblemError && [400, 413, 415].includes(error.status),
          `untyped failure: ${error}`,
        );
      }
    }
    const clean = await decodeImage(source);
    assert.equal(clean.width, W);
  }
  assert.ok(failures > 0);
});

Deno.test("kept decoder: reused after a success, dropped after a failure or a large image", async () => {
  let made = 0;
  const kept = new KeptDecoder(() => Promise.resolve({ id: ++made }));
  const seen: number[] = [];
  const run = (pixels: number, fail = false) =>
    kept.use((codec) => {
      seen.push(codec.id);
      if (fail) throw new Error("trap");
      return pixels;
    }, (p) => p);
  await run(100);
  await run(100); // same instance
  await assert.rejects(run(100, true), /trap/);
  await run(100); // fresh after the failure
  await run(KEEP_MAX_PIXELS + 1);
  await run(100); // fresh after the large image
  assert.deepEqual(seen, [1, 1, 1, 2, 2, 3]);
});

Deno.test("kept decoder: counts as grown a fresh instance, a larger job, a failure; not a job no larger than before", async () => {
  const kept = new KeptDecoder(() => Promise.resolve({}));
  const job = (pixels: number, fail: boolean) => () => {
    if (fail) throw new Error("trap");
    return pixels;
  };
  const run = (pixels: number, bytes: number, fail = false) => kept.use(job(pixels, fail), (p) => p, bytes);
  const grew = async (job: () => Promise<unknown>) => {
    const before = kept.grown;
    await job().catch(() => {});
    return kept.grown - before;
  };
  assert.equal(await grew(() => run(100, 50)), 1, "fresh");
  assert.equal(await grew(() => run(100, 50)), 0, "same size");
  assert.equal(await grew(() => run(50, 10)), 0, "smaller");
  assert.equal(await grew(() => run(100, 51)), 1, "larger input");
  assert.equal(await grew(() => run(101, 47)), 0, "as large in all (input bytes + RGBA out)");
  assert.equal(await grew(() => run(102, 48)), 1, "larger output");
  assert.equal(await grew(() => run(10, 10, true)), 1, "failure");
  assert.equal(await grew(() => run(10, 10)), 1, "fresh after the failure");
  assert.equal(await grew(() => run(10, 10)), 0);
});

Deno.test("decode: PNG and JPEG decodes after a corrupt file are unchanged (the failed instance is not reused)", async () => {
  const png = new Uint8Array(await new Image(64, 48).fill(0x336699ff).encode());
  const jpeg = new Uint8Array(await new Image(64, 48).fill(0x336699ff).encodeJPEG(90));
  for (const [bytes, type] of [[png, "image/png"], [jpeg, "image/jpeg"]] as const) {
    const before = await decodeImage(bytes, {}, type);
    const corrupt = bytes.slice();
    for (let i = Math.floor(bytes.length / 2); i < bytes.length - 12; i += 7) corrupt[i] ^= 0x5a;
    await decodeImage(corrupt, {}, type).catch(() => {});
    const after = await decodeImage(bytes, {}, type);
    assert.deepEqual(after.data, before.data, type);
  }
});
