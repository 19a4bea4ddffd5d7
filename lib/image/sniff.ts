// Format sniffing: which image an upload is and how large it claims to be,
// read from magic bytes and headers only, so size limits can be enforced
// before a decoder allocates anything.

import { readHeader } from "./_headers.ts";
import type { ImageInfo } from "./types.ts";

/**
 * Sniff an upload's format from its magic bytes and read its width and
 * height from the header without decoding pixel data.
 *
 * - PNG: the IHDR chunk (CRC and colour type/bit depth checked).
 * - JPEG: walks the marker segments, skipping fill bytes, to the first
 *   SOF0–SOF15 (C4 DHT, C8 JPG and CC DAC are not frames).
 * - GIF: the logical screen descriptor; the first image descriptor must be
 *   present too.
 * - TIFF: classic (II/MM) and BigTIFF, IFD0's ImageWidth (256) and
 *   ImageLength (257) as SHORT, LONG (or LONG8).
 * - WebP and BMP are recognised; their size is read when present, else 0×0.
 *
 * Bytes matching no signature give `{ format: "unknown", width: 0, height: 0 }`.
 *
 * @throws {InvalidImageError} when the bytes are empty or too short to be an
 * image, or a recognised header is truncated or inconsistent.
 *
 * @example
 * ```ts
 * import { sniffImage } from "./sniff.ts";
 * const bytes = await Deno.readFile("photo.jpg");
 * const { format, width, height } = sniffImage(bytes);
 * console.log(format, width, height); // "jpeg" 640 480
 * ```
 */
export function sniffImage(bytes: Uint8Array): ImageInfo {
  const { format, width, height } = readHeader(bytes);
  return { format, width, height };
}
