// Header parsers behind sniffImage: each reads only the few bytes that fix a
// format's pixel size, never pixel data, so limits are enforced before any
// decoder allocates. Also recognises a few formats we refuse, for 415s.

import { InvalidImageError } from "../errors.ts";
import type { ImageFormat } from "./types.ts";
import { ascii, startsWith, u16, u32, u64, u8 } from "./_bytes.ts";
import { crc32 } from "node:zlib";

/** What the decoders need to know before they run. */
export interface HeaderInfo {
  format: ImageFormat;
  width: number;
  height: number;
  /**
   * Largest pixel area the decoder will allocate. Equals width*height except
   * for GIF, whose first frame may be larger than its logical screen.
   */
  workPixels: number;
  /** GIF only: offset of the first image descriptor. */
  firstFrameAt?: number;
}

// No PNG, JPEG, GIF or TIFF that holds a pixel fits in fewer bytes.
const MIN_IMAGE_BYTES = 12;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const GIF87A = ascii("GIF87a");
const GIF89A = ascii("GIF89a");
const RIFF = ascii("RIFF");
const WEBP = ascii("WEBP");

// PNG's bit depths allowed per colour type (spec table 11.1).
const PNG_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

// BITMAPINFOHEADER and its relatives identify themselves by their size.
const BMP_DIB_SIZES = new Set([12, 40, 52, 56, 64, 108, 124]);

/** Sniff the format and read the header's pixel size. */
export function readHeader(bytes: Uint8Array): HeaderInfo {
  if (bytes.length === 0) throw new InvalidImageError("the body is empty");
  if (bytes.length < MIN_IMAGE_BYTES) {
    throw new InvalidImageError(
      `${bytes.length} bytes is too short to be an image`,
    );
  }
  if (startsWith(bytes, PNG_SIGNATURE)) return readPng(bytes);
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return readJpeg(bytes);
  if (startsWith(bytes, GIF87A) || startsWith(bytes, GIF89A)) {
    return readGif(bytes);
  }
  if (
    startsWith(bytes, [0x49, 0x49]) && (bytes[2] === 42 || bytes[2] === 43) &&
      bytes[3] === 0 ||
    startsWith(bytes, [0x4d, 0x4d]) && bytes[2] === 0 &&
      (bytes[3] === 42 || bytes[3] === 43)
  ) {
    return readTiff(bytes);
  }
  if (startsWith(bytes, RIFF) && startsWith(bytes, WEBP, 8)) {
    return sized("webp", readWebpSize(bytes));
  }
  if (
    startsWith(bytes, ascii("BM")) && bytes.length >= 18 &&
    BMP_DIB_SIZES.has(u32(bytes, 14, false, "BMP header"))
  ) {
    return sized("bmp", readBmpSize(bytes));
  }
  return sized("unknown", [0, 0]);
}

function sized(format: ImageFormat, [width, height]: number[]): HeaderInfo {
  return { format, width, height, workPixels: width * height };
}

function checkSize(format: string, width: number, height: number): void {
  if (width === 0 || height === 0) {
    throw new InvalidImageError(
      `${format} header declares an empty image (${width}x${height})`,
    );
  }
}

function readPng(bytes: Uint8Array): HeaderInfo {
  const what = "PNG header";
  const length = u32(bytes, 8, true, what);
  if (length !== 13 || !startsWith(bytes, ascii("IHDR"), 12)) {
    throw new InvalidImageError("PNG does not start with an IHDR chunk");
  }
  const width = u32(bytes, 16, true, what);
  const height = u32(bytes, 20, true, what);
  const depth = u8(bytes, 24, what);
  const colour = u8(bytes, 25, what);
  const crc = u32(bytes, 29, true, what);
  if (crc !== crc32(bytes.subarray(12, 29))) {
    throw new InvalidImageError("PNG IHDR chunk fails its CRC check");
  }
  if (!PNG_DEPTHS[colour]?.includes(depth)) {
    throw new InvalidImageError(
      `PNG colour type ${colour} with bit depth ${depth} is invalid`,
    );
  }
  // The spec caps both dimensions at 2^31 - 1.
  if (width > 0x7fffffff || height > 0x7fffffff) {
    throw new InvalidImageError("PNG dimensions exceed 2^31 - 1");
  }
  checkSize("PNG", width, height);
  return sized("png", [width, height]);
}

// SOF0..SOF15 are C0..CF, except C4 (DHT), C8 (JPG) and CC (DAC).
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 &&
    marker !== 0xc8 && marker !== 0xcc;
}

function readJpeg(bytes: Uint8Array): HeaderInfo {
  const what = "JPEG header";
  let pos = 2;
  for (;;) {
    // Like libjpeg, tolerate stray bytes between segments, then any number
    // of 0xFF fill bytes before the marker code.
    while (pos < bytes.length && bytes[pos] !== 0xff) pos++;
    while (pos < bytes.length && bytes[pos] === 0xff) pos++;
    const marker = u8(bytes, pos++, what);
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (marker === 0xd9 || marker === 0xda || marker === 0xd8) {
      throw new InvalidImageError(
        `JPEG has marker 0xFF${hex(marker)} before any frame header`,
      );
    }
    const length = u16(bytes, pos, true, what);
    if (length < 2) {
      throw new InvalidImageError(`JPEG segment length ${length} is invalid`);
    }
    if (isStartOfFrame(marker)) {
      if (length < 8) {
        throw new InvalidImageError("JPEG frame header is too short");
      }
      const height = u16(bytes, pos + 3, true, what);
      const width = u16(bytes, pos + 5, true, what);
      if (u8(bytes, pos + 7, what) === 0) {
        throw new InvalidImageError("JPEG frame has no components");
      }
      if (height === 0) {
        // The height would come later in a DNL marker; no decoder we use
        // supports that, and it would defeat the pre-decode size check.
        throw new InvalidImageError("JPEG with a DNL-defined height");
      }
      checkSize("JPEG", width, height);
      return sized("jpeg", [width, height]);
    }
    pos += length;
  }
}

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, "0");
}

function readGif(bytes: Uint8Array): HeaderInfo {
  const what = "GIF header";
  const width = u16(bytes, 6, false, what);
  const height = u16(bytes, 8, false, what);
  const packed = u8(bytes, 10, what);
  checkSize("GIF", width, height);
  let pos = 13;
  if (packed & 0x80) pos += 3 * (1 << ((packed & 7) + 1));
  for (;;) {
    const introducer = u8(bytes, pos, what);
    if (introducer === 0x2c) {
      const frameWidth = u16(bytes, pos + 5, false, what);
      const frameHeight = u16(bytes, pos + 7, false, what);
      return {
        format: "gif",
        width,
        height,
        workPixels: Math.max(width * height, frameWidth * frameHeight),
        firstFrameAt: pos,
      };
    }
    if (introducer === 0x21) {
      pos += 2;
      for (let size = u8(bytes, pos, what); size !== 0;) {
        pos += size + 1;
        size = u8(bytes, pos, what);
      }
      pos++;
      continue;
    }
    if (introducer === 0x3b) {
      throw new InvalidImageError("GIF ends before its first image");
    }
    throw new InvalidImageError(`GIF has an invalid block 0x${hex(introducer)}`);
  }
}

const TIFF_IMAGE_WIDTH = 256;
const TIFF_IMAGE_LENGTH = 257;
const TIFF_SHORT = 3;
const TIFF_LONG = 4;
const TIFF_LONG8 = 16;

function readTiff(bytes: Uint8Array): HeaderInfo {
  const what = "TIFF header";
  const be = bytes[0] === 0x4d;
  const big = u16(bytes, 2, be, what) === 43;
  if (big && (u16(bytes, 4, be, what) !== 8 || u16(bytes, 6, be, what) !== 0)) {
    throw new InvalidImageError("BigTIFF header is invalid");
  }
  const ifd = big ? u64(bytes, 8, be, what) : u32(bytes, 4, be, what);
  const entries = big ? u64(bytes, ifd, be, what) : u16(bytes, ifd, be, what);
  const first = ifd + (big ? 8 : 2);
  const entrySize = big ? 20 : 12;
  if (first + entries * entrySize > bytes.length) {
    throw new InvalidImageError("TIFF IFD0 is truncated");
  }
  let width = -1;
  let height = -1;
  for (let i = 0; i < entries; i++) {
    const entry = first + i * entrySize;
    const tag = u16(bytes, entry, be, what);
    if (tag !== TIFF_IMAGE_WIDTH && tag !== TIFF_IMAGE_LENGTH) continue;
    const type = u16(bytes, entry + 2, be, what);
    const count = big ? u64(bytes, entry + 4, be, what) : u32(bytes, entry + 4, be, what);
    // Values that fit in the entry are stored left-justified in it.
    const at = entry + (big ? 12 : 8);
    let value: number;
    if (count < 1) value = -1;
    else if (type === TIFF_SHORT) value = u16(bytes, at, be, what);
    else if (type === TIFF_LONG) value = u32(bytes, at, be, what);
    else if (type === TIFF_LONG8 && big) value = u64(bytes, at, be, what);
    else value = -1;
    if (value < 0) {
      throw new InvalidImageError(`TIFF tag ${tag} has an invalid type`);
    }
    if (tag === TIFF_IMAGE_WIDTH) width = value;
    else height = value;
  }
  if (width < 0 || height < 0) {
    throw new InvalidImageError("TIFF IFD0 lacks ImageWidth or ImageLength");
  }
  checkSize("TIFF", width, height);
  return sized("tiff", [width, height]);
}

// WebP sizes are informational only (WebP is refused), so any shortfall
// yields 0x0 instead of an error.
function readWebpSize(bytes: Uint8Array): number[] {
  try {
    const chunk = String.fromCharCode(...bytes.subarray(12, 16));
    if (chunk === "VP8 " && startsWith(bytes, [0x9d, 0x01, 0x2a], 23)) {
      return [
        u16(bytes, 26, false, "") & 0x3fff,
        u16(bytes, 28, false, "") & 0x3fff,
      ];
    }
    if (chunk === "VP8L" && u8(bytes, 20, "") === 0x2f) {
      const bits = u32(bytes, 21, false, "");
      return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1];
    }
    if (chunk === "VP8X") {
      const w = u16(bytes, 24, false, "") | (u8(bytes, 26, "") << 16);
      const h = u16(bytes, 27, false, "") | (u8(bytes, 29, "") << 16);
      return [w + 1, h + 1];
    }
  } catch {
    // fall through to "size unknown"
  }
  return [0, 0];
}

function readBmpSize(bytes: Uint8Array): number[] {
  try {
    const dib = u32(bytes, 14, false, "");
    if (dib === 12) {
      return [u16(bytes, 18, false, ""), u16(bytes, 20, false, "")];
    }
    // Height is signed: negative means rows are stored top-down.
    const w = u32(bytes, 18, false, "") | 0;
    const h = u32(bytes, 22, false, "") | 0;
    return [Math.abs(w), Math.abs(h)];
  } catch {
    return [0, 0];
  }
}

/**
 * Media type of a recognisable image format that is neither decoded nor
 * part of ImageFormat (AVIF/HEIF, JPEG XL, SVG), so it can be refused with
 * 415 rather than reported as garbage.
 */
export function unsupportedMediaType(bytes: Uint8Array): string | undefined {
  if (startsWith(bytes, ascii("ftyp"), 4)) {
    const brand = String.fromCharCode(...bytes.subarray(8, 12));
    if (brand === "avif" || brand === "avis") return "image/avif";
    if (/^(hei[cxms]|hev[cxms]|mif1|msf1)$/.test(brand)) return "image/heif";
  }
  if (
    startsWith(bytes, [0xff, 0x0a]) ||
    startsWith(bytes, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])
  ) {
    return "image/jxl";
  }
  const head = new TextDecoder().decode(bytes.subarray(0, 1024));
  if (/^\s*(\ufeff)?\s*</.test(head) && head.includes("<svg")) {
    return "image/svg+xml";
  }
  return undefined;
}

const SOS_MARKER = 0xda;

/**
 * Number of start-of-scan markers in a JPEG. Entropy-coded data never holds
 * 0xFF followed by 0xDA (0xFF is always stuffed as FF 00), so a byte scan
 * counts scans exactly, plus those of any embedded thumbnail.
 */
export function countJpegScans(bytes: Uint8Array): number {
  let scans = 0;
  for (let i = bytes.indexOf(0xff); i >= 0; i = bytes.indexOf(0xff, i + 1)) {
    if (bytes[i + 1] === SOS_MARKER) scans++;
  }
  return scans;
}

/**
 * Reject uploads cut short where a decoder would quietly fill the missing
 * part with zeros: a PNG must reach IEND with every chunk whole, and a
 * GIF's first frame must have all its data sub-blocks. JPEG and TIFF
 * decoders already fail on missing data.
 */
export function checkComplete(header: HeaderInfo, bytes: Uint8Array): void {
  if (header.format === "png") checkPngChunks(bytes);
  if (header.format === "gif" && header.firstFrameAt !== undefined) {
    checkGifFrame(bytes, header.firstFrameAt);
  }
}

function checkPngChunks(bytes: Uint8Array): void {
  let sawData = false;
  for (let pos = 8;;) {
    if (pos + 8 > bytes.length) {
      throw new InvalidImageError("PNG is truncated before its IEND chunk");
    }
    const length = u32(bytes, pos, true, "PNG chunk");
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (length > 0x7fffffff || pos + 12 + length > bytes.length) {
      throw new InvalidImageError(`PNG is truncated in its ${type} chunk`);
    }
    if (type === "IDAT") sawData = true;
    if (type === "IEND") {
      if (!sawData) throw new InvalidImageError("PNG has no image data");
      return;
    }
    pos += 12 + length;
  }
}

function checkGifFrame(bytes: Uint8Array, at: number): void {
  const what = "GIF image data";
  const packed = u8(bytes, at + 9, what);
  let pos = at + 10;
  if (packed & 0x80) pos += 3 * (1 << ((packed & 7) + 1));
  pos++; // LZW minimum code size
  for (let size = u8(bytes, pos, what); size !== 0;) {
    pos += size + 1;
    size = u8(bytes, pos, what);
  }
}
