// Decode work budget, checked from the bytes before any pixel is decoded: a
// progressive JPEG costs about pixels × scans (each scan walks every block;
// 4000×4000 with 499 scans is 6 s of wasm), a GIF's frame count is walked
// without decoding. Pure functions over the upload, like _headers.ts.

import { InvalidImageError, PayloadTooLargeError } from "../errors.ts";
import { countJpegScans, type HeaderInfo } from "./_headers.ts";
import { u8 } from "./_bytes.ts";

/**
 * Default cap on pixels × scans of a JPEG: 64 scans at the default 16 MP
 * `MAX_PIXELS` (encoders write about 10; libjpeg's progressive default is 10
 * for colour).
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_SCAN_PIXELS } from "./budget.ts";
 * console.log(DEFAULT_MAX_SCAN_PIXELS); // 1024000000
 * ```
 */
export const DEFAULT_MAX_SCAN_PIXELS = 64 * 16_000_000;

/**
 * Default cap on the frames of a GIF. Only the first is decoded, but every
 * frame's blocks are walked to check the file.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_GIF_FRAMES } from "./budget.ts";
 * console.log(DEFAULT_MAX_GIF_FRAMES); // 10000
 * ```
 */
export const DEFAULT_MAX_GIF_FRAMES = 10_000;

/** The limits {@link checkDecodeWork} applies. */
export interface DecodeBudget {
  /** Largest pixels × scans of a JPEG. */
  maxScanPixels: number;
  /** Most frames a GIF may hold. */
  maxGifFrames: number;
}

/** What decoding an upload will cost, from its bytes. */
export interface DecodeWork {
  /** Scans of a JPEG (1 for other formats). */
  scans: number;
  /** Frames of a GIF (1 for other formats). */
  frames: number;
  /** Pixels × scans: the unit of the JPEG budget. */
  scanPixels: number;
}

/**
 * Counts the frames of a GIF (image descriptors) by walking its blocks, never
 * its pixel data; stops counting past `stopAfter`.
 *
 * @example
 * ```ts
 * import { countGifFrames } from "./budget.ts";
 * const frames = countGifFrames(await Deno.readFile("anim.gif"));
 * ```
 */
export function countGifFrames(bytes: Uint8Array, stopAfter = Infinity): number {
  const what = "GIF";
  const packed = u8(bytes, 10, what);
  let pos = 13;
  if (packed & 0x80) pos += 3 * (1 << ((packed & 7) + 1));
  let frames = 0;
  const skipSubBlocks = () => {
    for (let size = u8(bytes, pos, what); size !== 0;) {
      pos += size + 1;
      size = u8(bytes, pos, what);
    }
    pos++;
  };
  while (pos < bytes.length && frames <= stopAfter) {
    const introducer = bytes[pos];
    if (introducer === 0x3b) break; // trailer
    if (introducer === 0x21) {
      pos += 2;
      skipSubBlocks();
    } else if (introducer === 0x2c) {
      frames++;
      const local = u8(bytes, pos + 9, what);
      pos += 10;
      if (local & 0x80) pos += 3 * (1 << ((local & 7) + 1));
      pos++; // LZW minimum code size
      skipSubBlocks();
    } else {
      break; // garbage after the frames: the decoder stops here too
    }
  }
  return frames;
}

/** The work decoding `bytes` costs (see {@link DecodeWork}). */
export function decodeWork(header: HeaderInfo, bytes: Uint8Array, stopFramesAfter = Infinity): DecodeWork {
  const scans = header.format === "jpeg" ? countJpegScans(bytes) : 1;
  const frames = header.format === "gif" ? countGifFrames(bytes, stopFramesAfter) : 1;
  return { scans, frames, scanPixels: header.width * header.height * scans };
}

/**
 * Refuses an upload whose decode would cost more than the budget: 413 with
 * the figures when a JPEG's pixels × scans is over `maxScanPixels`, 400 when
 * a GIF has more than `maxGifFrames` frames.
 *
 * @example
 * ```ts
 * import { checkDecodeWork } from "./budget.ts";
 * import { readHeader } from "./_headers.ts";
 * const bytes = await Deno.readFile("docs/examples/text-0.png");
 * checkDecodeWork(readHeader(bytes), bytes, { maxScanPixels: 1e9, maxGifFrames: 1000 });
 * ```
 */
export function checkDecodeWork(header: HeaderInfo, bytes: Uint8Array, budget: DecodeBudget): DecodeWork {
  const work = decodeWork(header, bytes, budget.maxGifFrames);
  if (work.scanPixels > budget.maxScanPixels) {
    throw new PayloadTooLargeError(
      `JPEG too costly to decode: ${header.width}x${header.height} with ${work.scans} scans is ` +
        `${work.scanPixels} pixel-scans, over the limit of ${budget.maxScanPixels}`,
      {
        width: header.width,
        height: header.height,
        scans: work.scans,
        scan_pixels: work.scanPixels,
        max_scan_pixels: budget.maxScanPixels,
      },
    );
  }
  if (work.frames > budget.maxGifFrames) {
    throw new InvalidImageError(`GIF has more than ${budget.maxGifFrames} frames`);
  }
  return work;
}
