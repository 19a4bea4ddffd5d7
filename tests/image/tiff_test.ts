import assert from "node:assert/strict";
import { decodeImage } from "../../lib/image/mod.ts";
import { tiff, type TiffOptions } from "../../dev/image_fixtures.ts";

// A 37×23 test card: odd sizes so strips, tiles and bit packing all have
// ragged edges.
const W = 37;
const H = 23;

function card(channels: number, max = 255): number[] {
  const out: number[] = [];
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < channels; c++) {
        out.push(Math.round(((x * 7 + y * 13 + c * 50) % 256) * max / 255));
      }
    }
  }
  return out;
}

/** Expected RGBA from interleaved 8-bit samples. */
function rgba(samples: number[], channels: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < samples.length; i += channels) {
    const s = samples.slice(i, i + channels);
    if (channels <= 2) out.push(s[0], s[0], s[0], channels === 2 ? s[1] : 255);
    else out.push(s[0], s[1], s[2], channels === 4 ? s[3] : 255);
  }
  return out;
}

async function decoded(options: TiffOptions): Promise<number[]> {
  const img = await decodeImage(tiff(options));
  assert.equal(img.width, options.width);
  assert.equal(img.height, options.height);
  return Array.from(img.data);
}

const base = { width: W, height: H };

Deno.test("tiff: 8-bit grey, little-endian, SHORT dims", async () => {
  const px = card(1);
  assert.deepEqual(
    await decoded({ ...base, channels: 1, pixels: px }),
    rgba(px, 1),
  );
});

Deno.test("tiff: 8-bit RGB, big-endian, LONG dims, 5-row strips", async () => {
  const px = card(3);
  const options = {
    ...base,
    channels: 3,
    pixels: px,
    bigEndian: true,
    longDims: true,
    rowsPerStrip: 5,
  };
  assert.deepEqual(await decoded(options), rgba(px, 3));
});

Deno.test("tiff: RGBA with unassociated alpha, and grey+alpha", async () => {
  const px4 = card(4);
  assert.deepEqual(
    await decoded({ ...base, channels: 4, pixels: px4, extraSamples: 2 }),
    rgba(px4, 4),
  );
  const px2 = card(2);
  assert.deepEqual(
    await decoded({ ...base, channels: 2, pixels: px2, extraSamples: 2 }),
    rgba(px2, 2),
  );
});

Deno.test("tiff: BigTIFF", async () => {
  const px = card(3);
  assert.deepEqual(
    await decoded({ ...base, channels: 3, pixels: px, bigTiff: true }),
    rgba(px, 3),
  );
});

Deno.test("tiff: 16-bit grey keeps the high byte, both byte orders", async () => {
  const px16 = card(1, 65535);
  const want = rgba(px16.map((v) => v >> 8), 1);
  for (const bigEndian of [false, true]) {
    assert.deepEqual(
      await decoded({ ...base, channels: 1, pixels: px16, bits: 16, bigEndian }),
      want,
    );
  }
});

Deno.test("tiff: bilevel rows are padded to whole bytes", async () => {
  const px = card(1).map((v) => (v > 127 ? 1 : 0));
  assert.deepEqual(
    await decoded({ ...base, channels: 1, pixels: px, bits: 1 }),
    rgba(px.map((v) => v * 255), 1),
  );
  // WhiteIsZero inverts.
  assert.deepEqual(
    await decoded({ ...base, channels: 1, pixels: px, bits: 1, photometric: 0 }),
    rgba(px.map((v) => 255 - v * 255), 1),
  );
});

Deno.test("tiff: 4-bit palette", async () => {
  const px = card(1).map((v) => v % 16);
  const colorMap = [
    ...Array.from({ length: 16 }, (_, i) => i * 4096), // red
    ...Array.from({ length: 16 }, (_, i) => (15 - i) * 4096), // green
    ...Array.from({ length: 16 }, () => 0x8000), // blue
  ];
  const want = px.flatMap((i) => [i * 16, (15 - i) * 16, 128, 255]);
  assert.deepEqual(
    await decoded({
      ...base,
      channels: 1,
      pixels: px,
      bits: 4,
      photometric: 3,
      colorMap,
    }),
    want,
  );
});

Deno.test("tiff: LZW, Deflate and PackBits, with and without predictor", async () => {
  // 96×96 of varied content overflows the 4096-entry LZW table, so the
  // decoder must follow Clear codes and all code widths.
  const size = { width: 96, height: 96 };
  const px: number[] = [];
  for (let i = 0; i < 96 * 96 * 3; i++) px.push((i * 2654435761 >>> 24) ^ (i % 7));
  const want = rgba(px, 3);
  for (const compression of [5, 8, 32773]) {
    for (const predictor of [1, 2] as const) {
      const got = await decodeImage(
        tiff({ ...size, channels: 3, pixels: px, compression, predictor, rowsPerStrip: 17 }),
      );
      assert.deepEqual(Array.from(got.data), want, `compression ${compression} predictor ${predictor}`);
    }
  }
});

Deno.test("tiff: 16-bit Deflate with predictor, big-endian", async () => {
  const px16 = card(3, 65535);
  assert.deepEqual(
    await decoded({
      ...base,
      channels: 3,
      pixels: px16,
      bits: 16,
      compression: 8,
      predictor: 2,
      bigEndian: true,
    }),
    rgba(px16.map((v) => v >> 8), 3),
  );
});

Deno.test("tiff: tiles with ragged edges, chunky and planar", async () => {
  const px = card(3);
  for (const planar of [false, true]) {
    assert.deepEqual(
      await decoded({ ...base, channels: 3, pixels: px, tile: 16, planar, compression: 5 }),
      rgba(px, 3),
      `planar ${planar}`,
    );
  }
  assert.deepEqual(
    await decoded({ ...base, channels: 3, pixels: px, planar: true, rowsPerStrip: 4 }),
    rgba(px, 3),
  );
});

Deno.test("tiff: unsupported variants are 415, broken data 400", async () => {
  const px = card(1);
  await assert.rejects(
    decodeImage(tiff({ ...base, channels: 1, pixels: px, compression: 7 })),
    (e: Error & { status?: number }) => e.status === 415 && /JPEG/.test(e.message),
  );
  await assert.rejects(
    decodeImage(tiff({ ...base, channels: 4, pixels: card(4), photometric: 5 })),
    (e: Error & { status?: number }) => e.status === 415,
  );
  // A file cut anywhere loses its IFD (written last) or strip data.
  const whole = tiff({ ...base, channels: 1, pixels: px });
  for (const cut of [20, W * H, whole.length - 20]) {
    await assert.rejects(
      decodeImage(whole.subarray(0, cut)),
      (e: Error & { status?: number }) => e.status === 400,
      `cut at ${cut}`,
    );
  }
  // A strip offset pointing 10 bytes before the end leaves the strip short.
  const short = whole.slice();
  const view = new DataView(short.buffer);
  const ifd = view.getUint32(4, true);
  for (let i = 0; i < view.getUint16(ifd, true); i++) {
    const entry = ifd + 2 + i * 12;
    if (view.getUint16(entry, true) === 273) {
      view.setUint32(entry + 8, short.length - 10, true);
    }
  }
  await assert.rejects(
    decodeImage(short),
    (e: Error & { status?: number }) => e.status === 400 && /truncated/.test(e.message),
  );
  // Corrupt LZW stream.
  const lzw = tiff({ ...base, channels: 1, pixels: px, compression: 5 });
  lzw.fill(0xff, 8, 40);
  await assert.rejects(decodeImage(lzw), (e: Error & { status?: number }) => e.status === 400);
});

// Files written by Pillow/libtiff (tests/fixtures/image/pil_*.tif), each
// beside a PNG of the pixels Pillow holds, check the decoder against an
// independent encoder, notably libtiff's LZW.
const fixtures = new URL("../fixtures/image/", import.meta.url);
const read = (name: string) => Deno.readFile(new URL(name, fixtures));

for (
  const [tif, png] of [
    ["pil_rgb_lzw.tif", "pil_rgb.png"],
    ["pil_rgb_deflate.tif", "pil_rgb.png"],
    ["pil_rgb_packbits.tif", "pil_rgb.png"],
    ["pil_rgba_lzw.tif", "pil_rgba.png"],
    ["pil_palette.tif", "pil_palette.png"],
    ["pil_bilevel.tif", "pil_bilevel.png"],
    ["pil_grey16.tif", "pil_grey16.png"],
  ]
) {
  Deno.test(`tiff: ${tif} from Pillow matches its PNG`, async () => {
    const got = await decodeImage(await read(tif));
    const want = await decodeImage(await read(png));
    assert.equal(got.width, want.width);
    assert.equal(got.height, want.height);
    assert.deepEqual(Array.from(got.data), Array.from(want.data));
  });
}

Deno.test("tiff: Pillow's JPEG, Group 4 and CMYK TIFFs are 415", async () => {
  for (const name of ["pil_rgb_jpeg.tif", "pil_bilevel_g4.tif", "pil_cmyk.tif"]) {
    await assert.rejects(
      decodeImage(await read(name)),
      (e: Error & { status?: number }) => e.status === 415,
      name,
    );
  }
});
