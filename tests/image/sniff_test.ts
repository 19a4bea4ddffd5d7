import assert from "node:assert/strict";
import { InvalidImageError } from "../../lib/errors.ts";
import { sniffImage } from "../../lib/image/mod.ts";
import {
  encodeGif,
  encodeJpeg,
  encodePng,
  gradient,
  jpegHeaderOnly,
  pngHeaderOnly,
  randomBytes,
  tiff,
  webpHeader,
} from "../../dev/image_fixtures.ts";

function concat(...parts: ArrayLike<number>[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => Array.from(p)));
}

Deno.test("sniff: PNG, JPEG and GIF from imagescript's encoders", async () => {
  const px = gradient(31, 17);
  assert.deepEqual(sniffImage(await encodePng(px, 31, 17)), {
    format: "png",
    width: 31,
    height: 17,
  });
  assert.deepEqual(sniffImage(await encodeJpeg(px, 31, 17)), {
    format: "jpeg",
    width: 31,
    height: 17,
  });
  assert.deepEqual(sniffImage(await encodeGif(px, 31, 17)), {
    format: "gif",
    width: 31,
    height: 17,
  });
});

Deno.test("sniff: PNG header claiming 100000x100000 reads instantly", () => {
  const start = performance.now();
  assert.deepEqual(sniffImage(pngHeaderOnly(100_000, 100_000)), {
    format: "png",
    width: 100_000,
    height: 100_000,
  });
  assert.ok(performance.now() - start < 50);
});

Deno.test("sniff: JPEG walks fill bytes and every SOFn, skips DHT/JPG/DAC", () => {
  for (const sof of [0xc0, 0xc1, 0xc2, 0xc3, 0xc9, 0xcb, 0xcd, 0xcf]) {
    assert.deepEqual(
      sniffImage(jpegHeaderOnly(60_000, 300, { sof, fill: 3 })),
      { format: "jpeg", width: 60_000, height: 300 },
      `SOF 0x${sof.toString(16)}`,
    );
  }
  // DHT (C4), JPG (C8) and DAC (CC) segments whose bodies look like a
  // frame header must be skipped, not read as the image size.
  const fake = [0x00, 0x0b, 0x08, 0x00, 0x07, 0x00, 0x07, 0x01, 0x01, 0x11, 0x00];
  const real = jpegHeaderOnly(40, 30);
  for (const marker of [0xc4, 0xc8, 0xcc]) {
    const bytes = concat([0xff, 0xd8, 0xff, marker], fake, real.subarray(2));
    assert.deepEqual(sniffImage(bytes), {
      format: "jpeg",
      width: 40,
      height: 30,
    });
  }
  // Restart markers and TEM are standalone (no length).
  const standalone = concat([0xff, 0xd8, 0xff, 0xd3, 0xff, 0x01], real.subarray(2));
  assert.equal(sniffImage(standalone).width, 40);
});

Deno.test("sniff: GIF needs its first image descriptor", async () => {
  const gif = await encodeGif(gradient(8, 8), 8, 8);
  assert.throws(() => sniffImage(gif.subarray(0, 13)), InvalidImageError);
  // A GIF with no image at all (header, screen descriptor, trailer).
  const empty = concat(
    [0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 8, 0, 8, 0, 0, 0, 0, 0x3b],
  );
  assert.throws(() => sniffImage(empty), /before its first image/);
});

Deno.test("sniff: TIFF in both byte orders, SHORT/LONG dims, BigTIFF", () => {
  const px = new Array(300 * 2).fill(0);
  for (
    const options of [{}, { bigEndian: true }, { longDims: true }, { bigTiff: true }, {
      bigTiff: true,
      bigEndian: true,
    }]
  ) {
    const bytes = tiff({ width: 300, height: 2, channels: 1, pixels: px, ...options });
    assert.deepEqual(sniffImage(bytes), {
      format: "tiff",
      width: 300,
      height: 2,
    }, JSON.stringify(options));
  }
});

Deno.test("sniff: WebP and BMP are recognised, with their sizes", () => {
  assert.deepEqual(sniffImage(webpHeader(320, 200)), {
    format: "webp",
    width: 320,
    height: 200,
  });
  const bmp = new Uint8Array(54);
  const view = new DataView(bmp.buffer);
  bmp.set([0x42, 0x4d]);
  view.setUint32(14, 40, true);
  view.setInt32(18, 12, true);
  view.setInt32(22, -9, true); // top-down
  assert.deepEqual(sniffImage(bmp), { format: "bmp", width: 12, height: 9 });
});

Deno.test("sniff: unrecognised bytes are unknown, 0x0", () => {
  assert.deepEqual(sniffImage(randomBytes(4096, 7)), {
    format: "unknown",
    width: 0,
    height: 0,
  });
});

Deno.test("sniff: empty, tiny, truncated or inconsistent headers throw 400", async () => {
  const png = await encodePng(gradient(4, 4), 4, 4);
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["tiny", Uint8Array.of(0x89, 0x50, 0x4e, 0x47)],
    ["PNG cut inside IHDR", png.subarray(0, 20)],
    ["PNG without IHDR CRC", png.subarray(0, 30)],
    ["JPEG cut before SOF", jpegHeaderOnly(10, 10).subarray(0, 20)],
    ["JPEG scan before SOF", Uint8Array.of(0xff, 0xd8, 0xff, 0xda, 0, 2, 0, 0, 0, 0, 0, 0)],
    ["JPEG zero height", jpegHeaderOnly(10, 0)],
    ["TIFF IFD past the end", Uint8Array.of(0x49, 0x49, 42, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0)],
  ];
  const badCrc = png.slice();
  badCrc[20] ^= 1; // height byte, CRC no longer matches
  cases.push(["PNG IHDR CRC mismatch", badCrc]);
  for (const [name, bytes] of cases) {
    assert.throws(
      () => sniffImage(bytes),
      (e: unknown) => e instanceof InvalidImageError && e.status === 400,
      name,
    );
  }
});
