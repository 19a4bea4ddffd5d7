// Baseline TIFF decoder for the first image (IFD0), to RGBA.
//
// imagescript 1.3.1's TIFF decoder cannot be used: its wasm module is built
// with a 16-byte shadow stack and traps ("memory access out of bounds") on
// every TIFF, and its glue reads a zero-length result buffer even when the
// stack is enlarged. This decoder covers what scanners, microscopes and
// image tools write: classic and BigTIFF, either byte order, strips or
// tiles, chunky or planar samples; no compression, LZW, Deflate or
// PackBits, with the horizontal predictor; bilevel, grey (1–16 bit),
// palette, RGB and RGBA (8/16 bit). Anything else is refused with 415.
// All work is bounded by the declared size, which the caller has already
// checked against MAX_PIXELS.

import { inflateSync } from "node:zlib";
import { InvalidImageError, UnsupportedMediaTypeError } from "../errors.ts";
import { u16, u32, u64, u8 } from "./_bytes.ts";
import type { RgbaImage } from "./types.ts";

const WHAT = "TIFF";

const TAG = {
  width: 256,
  height: 257,
  bitsPerSample: 258,
  compression: 259,
  photometric: 262,
  stripOffsets: 273,
  samplesPerPixel: 277,
  rowsPerStrip: 278,
  stripByteCounts: 279,
  planar: 284,
  predictor: 317,
  colorMap: 320,
  tileWidth: 322,
  tileLength: 323,
  tileOffsets: 324,
  tileByteCounts: 325,
  extraSamples: 338,
  sampleFormat: 339,
} as const;

const COMPRESSION_NAMES: Record<number, string> = {
  2: "CCITT RLE",
  3: "CCITT Group 3",
  4: "CCITT Group 4",
  6: "old-style JPEG",
  7: "JPEG",
  34712: "JPEG 2000",
  34925: "LZMA",
  50000: "Zstandard",
  50001: "WebP",
};

const PHOTOMETRIC_WHITE_IS_ZERO = 0;
const PHOTOMETRIC_BLACK_IS_ZERO = 1;
const PHOTOMETRIC_RGB = 2;
const PHOTOMETRIC_PALETTE = 3;

// Bytes per value of each TIFF field type we may read as integers.
const TYPE_SIZES: Record<number, number> = {
  1: 1, // BYTE
  3: 2, // SHORT
  4: 4, // LONG
  13: 4, // IFD
  16: 8, // LONG8
};

function unsupported(what: string): never {
  throw new UnsupportedMediaTypeError(`TIFF with ${what} is not supported`, {
    media_type: "image/tiff",
  });
}

function invalid(what: string): never {
  throw new InvalidImageError(`TIFF ${what}`);
}

/** IFD0's entries, read on demand as integer arrays. */
class Ifd {
  #bytes: Uint8Array;
  #be: boolean;
  #big: boolean;
  #entries = new Map<number, number>(); // tag -> entry offset

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#be = bytes[0] === 0x4d;
    this.#big = u16(bytes, 2, this.#be, WHAT) === 43;
    const offset = this.#big ? u64(bytes, 8, this.#be, WHAT) : u32(bytes, 4, this.#be, WHAT);
    const count = this.#big ? u64(bytes, offset, this.#be, WHAT) : u16(bytes, offset, this.#be, WHAT);
    const first = offset + (this.#big ? 8 : 2);
    const size = this.#big ? 20 : 12;
    if (first + count * size > bytes.length) invalid("IFD0 is truncated");
    for (let i = 0; i < count; i++) {
      const entry = first + i * size;
      this.#entries.set(u16(bytes, entry, this.#be, WHAT), entry);
    }
  }

  get bigEndian(): boolean {
    return this.#be;
  }

  has(tag: number): boolean {
    return this.#entries.has(tag);
  }

  values(tag: number): number[] | undefined {
    const entry = this.#entries.get(tag);
    if (entry === undefined) return undefined;
    const bytes = this.#bytes;
    const be = this.#be;
    const type = u16(bytes, entry + 2, be, WHAT);
    const size = TYPE_SIZES[type];
    if (size === undefined) invalid(`tag ${tag} has non-integer type ${type}`);
    const count = this.#big ? u64(bytes, entry + 4, be, WHAT) : u32(bytes, entry + 4, be, WHAT);
    const inline = this.#big ? 8 : 4;
    const at = entry + (this.#big ? 12 : 8);
    const start = count * size <= inline ? at : this.#big ? u64(bytes, at, be, WHAT) : u32(bytes, at, be, WHAT);
    // Bounds-check once so a huge count cannot drive a long loop.
    if (start + count * size > bytes.length) invalid(`tag ${tag} is truncated`);
    const out = new Array<number>(count);
    for (let i = 0, p = start; i < count; i++, p += size) {
      out[i] = size === 1
        ? u8(bytes, p, WHAT)
        : size === 2
        ? u16(bytes, p, be, WHAT)
        : size === 4
        ? u32(bytes, p, be, WHAT)
        : u64(bytes, p, be, WHAT);
    }
    return out;
  }

  one(tag: number, fallback?: number): number {
    const values = this.values(tag);
    if (values === undefined || values.length === 0) {
      if (fallback === undefined) invalid(`lacks required tag ${tag}`);
      return fallback;
    }
    return values[0];
  }
}

/** Where one strip or tile goes and how its bytes are laid out. */
interface Chunk {
  offset: number;
  byteCount: number;
  x: number;
  y: number;
  width: number;
  rows: number;
  /** Sample index for planar data, -1 for chunky. */
  plane: number;
}

/** Decode IFD0 of a TIFF to RGBA. */
export function decodeTiff(bytes: Uint8Array): RgbaImage {
  const ifd = new Ifd(bytes);
  const width = ifd.one(TAG.width);
  const height = ifd.one(TAG.height);
  const spp = ifd.one(TAG.samplesPerPixel, 1);
  const bitsList = ifd.values(TAG.bitsPerSample) ?? [1];
  const bits = bitsList[0];
  const compression = ifd.one(TAG.compression, 1);
  const planar = ifd.one(TAG.planar, 1) === 2 && spp > 1;
  const predictor = ifd.one(TAG.predictor, 1);
  const photometric = ifd.one(
    TAG.photometric,
    spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_BLACK_IS_ZERO,
  );
  const extra = ifd.values(TAG.extraSamples) ?? [];

  if (width === 0 || height === 0) invalid("declares an empty image");
  if (spp < 1 || spp > 16) invalid(`has ${spp} samples per pixel`);
  if (bitsList.some((b) => b !== bits)) unsupported("mixed bit depths");
  if ((ifd.values(TAG.sampleFormat) ?? [1]).some((f) => f !== 1)) {
    unsupported("signed or floating-point samples");
  }
  if (![1, 2, 4, 8, 16].includes(bits)) unsupported(`${bits}-bit samples`);
  if (![1, 5, 8, 32946, 32773].includes(compression)) {
    unsupported(
      `${COMPRESSION_NAMES[compression] ?? `type ${compression}`} compression`,
    );
  }
  if (predictor !== 1 && !(predictor === 2 && bits >= 8)) {
    unsupported(`predictor ${predictor} at ${bits} bits`);
  }

  let colours: number;
  if (photometric === PHOTOMETRIC_RGB) {
    if (spp < 3 || bits < 8) unsupported(`RGB with ${spp}x${bits}-bit samples`);
    colours = 3;
  } else if (
    photometric === PHOTOMETRIC_WHITE_IS_ZERO ||
    photometric === PHOTOMETRIC_BLACK_IS_ZERO
  ) {
    colours = 1;
  } else if (photometric === PHOTOMETRIC_PALETTE) {
    if (bits > 8) unsupported(`${bits}-bit palette`);
    colours = 1;
  } else {
    unsupported(`photometric interpretation ${photometric}`);
  }
  // ExtraSamples 1 = associated (premultiplied) alpha, 2 = unassociated.
  const alphaKind = spp > colours ? extra[0] ?? 0 : 0;
  const hasAlpha = alphaKind === 1 || alphaKind === 2;

  let palette: Uint8Array | undefined;
  if (photometric === PHOTOMETRIC_PALETTE) {
    const map = ifd.values(TAG.colorMap);
    const entries = 1 << bits;
    if (map === undefined || map.length < 3 * entries) {
      invalid("palette image lacks a complete ColorMap");
    }
    palette = new Uint8Array(entries * 3);
    for (let i = 0; i < entries; i++) {
      for (let c = 0; c < 3; c++) palette[i * 3 + c] = map[c * entries + i] >> 8;
    }
  }

  // Every sample of the image scaled to 8 bits (palette: the raw index),
  // interleaved, filled chunk by chunk.
  const samples = new Uint8Array(width * height * spp);
  for (const chunk of chunks(ifd, width, height, spp, planar)) {
    const perPixel = chunk.plane < 0 ? spp : 1;
    const rowBytes = Math.ceil((chunk.width * perPixel * bits) / 8);
    const raw = decompress(
      bytes,
      chunk,
      compression,
      rowBytes * chunk.rows,
    );
    if (predictor === 2) {
      undoPredictor(raw, rowBytes, chunk.rows, perPixel, bits, ifd.bigEndian);
    }
    place(raw, chunk, rowBytes, perPixel, bits, ifd.bigEndian, {
      samples,
      width,
      height,
      spp,
      scale: photometric !== PHOTOMETRIC_PALETTE,
    });
  }

  const data = new Uint8Array(width * height * 4);
  for (let i = 0, s = 0, o = 0; i < width * height; i++, s += spp, o += 4) {
    const a = hasAlpha ? samples[s + colours] : 255;
    if (palette !== undefined) {
      const p = samples[s] * 3;
      data[o] = palette[p];
      data[o + 1] = palette[p + 1];
      data[o + 2] = palette[p + 2];
    } else if (colours === 3) {
      data[o] = samples[s];
      data[o + 1] = samples[s + 1];
      data[o + 2] = samples[s + 2];
    } else {
      const v = photometric === PHOTOMETRIC_WHITE_IS_ZERO ? 255 - samples[s] : samples[s];
      data[o] = data[o + 1] = data[o + 2] = v;
    }
    if (alphaKind === 1 && a > 0 && a < 255) {
      for (let c = 0; c < 3; c++) {
        data[o + c] = Math.min(255, Math.round((data[o + c] * 255) / a));
      }
    }
    data[o + 3] = a;
  }
  return { width, height, data };
}

function* chunks(
  ifd: Ifd,
  width: number,
  height: number,
  spp: number,
  planar: boolean,
): Generator<Chunk> {
  const planes = planar ? spp : 1;
  const tiled = ifd.has(TAG.tileWidth);
  const cw = tiled ? ifd.one(TAG.tileWidth) : width;
  const ch = tiled ? ifd.one(TAG.tileLength) : Math.min(height, ifd.one(TAG.rowsPerStrip, height) || height);
  if (cw === 0 || ch === 0) invalid("has empty strips or tiles");
  const across = Math.ceil(width / cw);
  const down = Math.ceil(height / ch);
  const perPlane = across * down;
  const offsets = ifd.values(tiled ? TAG.tileOffsets : TAG.stripOffsets);
  const counts = ifd.values(tiled ? TAG.tileByteCounts : TAG.stripByteCounts);
  if (offsets === undefined || offsets.length < perPlane * planes) {
    invalid(`has too few ${tiled ? "tile" : "strip"} offsets`);
  }
  if (counts !== undefined && counts.length < offsets.length) {
    invalid("has too few byte counts");
  }
  for (let plane = 0; plane < planes; plane++) {
    for (let k = 0; k < perPlane; k++) {
      const i = plane * perPlane + k;
      const x = (k % across) * cw;
      const y = Math.floor(k / across) * ch;
      yield {
        offset: offsets[i],
        // Byte counts may be omitted for uncompressed files; the span to
        // the end of the file is then the most the chunk can use.
        byteCount: counts?.[i] ?? Infinity,
        x,
        y,
        width: cw,
        // Tiles are always full size; the last strip is cut at the image.
        rows: tiled ? ch : Math.min(ch, height - y),
        plane: planar ? plane : -1,
      };
    }
  }
}

function decompress(
  bytes: Uint8Array,
  chunk: Chunk,
  compression: number,
  expected: number,
): Uint8Array {
  if (chunk.offset >= bytes.length) invalid("data offset is past the end");
  const data = bytes.subarray(
    chunk.offset,
    Math.min(bytes.length, chunk.offset + chunk.byteCount),
  );
  let out: Uint8Array;
  if (compression === 1) out = data;
  else if (compression === 32773) out = unpackBits(data, expected);
  else if (compression === 5) out = lzw(data, expected);
  else {
    try {
      const inflated = inflateSync(data, { maxOutputLength: expected });
      out = new Uint8Array(
        inflated.buffer,
        inflated.byteOffset,
        inflated.length,
      );
    } catch (error) {
      invalid(`Deflate data is corrupt: ${(error as Error).message}`);
    }
  }
  if (out.length < expected) invalid("image data is truncated");
  // Copy: the predictor works in place and must not touch the upload.
  return out === data ? data.slice(0, expected) : out.subarray(0, expected);
}

function unpackBits(data: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  let i = 0;
  let o = 0;
  while (o < expected && i < data.length) {
    const n = data[i++];
    if (n < 128) {
      const end = Math.min(i + n + 1, data.length);
      const take = Math.min(end - i, expected - o);
      out.set(data.subarray(i, i + take), o);
      o += take;
      i = end;
    } else if (n > 128) {
      if (i >= data.length) break;
      const run = Math.min(257 - n, expected - o);
      out.fill(data[i++], o, o + run);
      o += run;
    }
  }
  return out.subarray(0, o);
}

const LZW_CLEAR = 256;
const LZW_EOI = 257;

/** TIFF LZW: MSB-first codes of 9–12 bits with the "early change" rule. */
function lzw(data: Uint8Array, expected: number): Uint8Array {
  if (data.length >= 2 && data[0] === 0 && data[1] & 1) {
    unsupported("pre-6.0 (LSB-first) LZW");
  }
  const out = new Uint8Array(expected);
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const length = new Uint16Array(4096);
  for (let i = 0; i < 256; i++) {
    prefix[i] = -1;
    suffix[i] = i;
    first[i] = i;
    length[i] = 1;
  }
  let next = 258;
  let width = 9;
  let previous = -1;
  let o = 0;
  let bitBuffer = 0;
  let bitCount = 0;
  let i = 0;
  while (o < expected) {
    while (bitCount < width && i < data.length) {
      bitBuffer = ((bitBuffer << 8) | data[i++]) & 0xffffff;
      bitCount += 8;
    }
    if (bitCount < width) break;
    const code = (bitBuffer >>> (bitCount - width)) & ((1 << width) - 1);
    bitCount -= width;
    if (code === LZW_EOI) break;
    if (code === LZW_CLEAR) {
      next = 258;
      width = 9;
      previous = -1;
      continue;
    }
    let entry: number;
    if (code < next && (code < 256 || code >= 258)) entry = code;
    else if (code === next && previous >= 0) entry = -1; // KwKwK case
    else invalid("LZW data is corrupt");
    if (previous >= 0 && next < 4096) {
      prefix[next] = previous;
      suffix[next] = entry >= 0 ? first[entry] : first[previous];
      first[next] = first[previous];
      length[next] = length[previous] + 1;
      if (entry < 0) entry = next;
      next++;
    } else if (entry < 0) {
      invalid("LZW data is corrupt");
    }
    // Write the string backwards from its last byte, clipped to `expected`.
    const len = length[entry];
    let p = entry;
    for (let k = len - 1; k >= 0; k--) {
      if (o + k < expected) out[o + k] = suffix[p];
      p = prefix[p];
    }
    o += len;
    previous = entry;
    // Early change: widen one code before the table actually fills.
    if (next + 1 >= 1 << width && width < 12) width++;
  }
  return out.subarray(0, Math.min(o, expected));
}

function undoPredictor(
  raw: Uint8Array,
  rowBytes: number,
  rows: number,
  perPixel: number,
  bits: number,
  bigEndian: boolean,
): void {
  if (bits === 8) {
    for (let r = 0; r < rows; r++) {
      const start = r * rowBytes;
      for (let i = start + perPixel; i < start + rowBytes; i++) {
        raw[i] = (raw[i] + raw[i - perPixel]) & 0xff;
      }
    }
    return;
  }
  const hi = bigEndian ? 0 : 1;
  const lo = 1 - hi;
  const step = 2 * perPixel;
  for (let r = 0; r < rows; r++) {
    const start = r * rowBytes;
    for (let i = start + step; i + 1 < start + rowBytes; i += 2) {
      const v = ((raw[i + hi] << 8) | raw[i + lo]) +
        ((raw[i - step + hi] << 8) | raw[i - step + lo]);
      raw[i + hi] = (v >> 8) & 0xff;
      raw[i + lo] = v & 0xff;
    }
  }
}

function place(
  raw: Uint8Array,
  chunk: Chunk,
  rowBytes: number,
  perPixel: number,
  bits: number,
  bigEndian: boolean,
  target: {
    samples: Uint8Array;
    width: number;
    height: number;
    spp: number;
    scale: boolean;
  },
): void {
  const { samples, width, height, spp, scale } = target;
  const maxValue = (1 << bits) - 1;
  const hi = bigEndian ? 0 : 1;
  const xEnd = Math.min(width, chunk.x + chunk.width);
  const firstSample = chunk.plane < 0 ? 0 : chunk.plane;
  for (let r = 0; r < chunk.rows && chunk.y + r < height; r++) {
    const row = r * rowBytes;
    const outRow = (chunk.y + r) * width;
    for (let x = chunk.x; x < xEnd; x++) {
      const px = x - chunk.x;
      for (let s = 0; s < perPixel; s++) {
        const index = px * perPixel + s;
        let v: number;
        if (bits === 8) v = raw[row + index];
        else if (bits === 16) v = raw[row + 2 * index + hi];
        else {
          const bit = index * bits;
          const byte = raw[row + (bit >> 3)];
          const value = (byte >> (8 - bits - (bit & 7))) & maxValue;
          v = scale ? Math.round((value * 255) / maxValue) : value;
        }
        samples[(outRow + x) * spp + firstSample + s] = v;
      }
    }
  }
}
