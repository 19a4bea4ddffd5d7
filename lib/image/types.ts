// Plain data types shared by the image modules: what an upload is, what a
// decoded image looks like, and how a class mask travels as RLE.

/**
 * Container format recognised from an upload's magic bytes. `webp` and `bmp`
 * are recognised only so they can be refused with 415; `unknown` is anything
 * else.
 *
 * @example
 * ```ts
 * import type { ImageFormat } from "./types.ts";
 * const accepted: ImageFormat[] = ["png", "jpeg", "gif", "tiff"];
 * ```
 */
export type ImageFormat =
  | "png"
  | "jpeg"
  | "gif"
  | "tiff"
  | "webp"
  | "bmp"
  | "unknown";

/**
 * What `sniffImage` reads from a header: the format and the size
 * in pixels (0 × 0 when the format carries no readable size).
 *
 * @example
 * ```ts
 * import type { ImageInfo } from "./types.ts";
 * const info: ImageInfo = { format: "png", width: 256, height: 256 };
 * ```
 */
export interface ImageInfo {
  /** Format recognised from the magic bytes. */
  format: ImageFormat;
  /** Width in pixels from the header. */
  width: number;
  /** Height in pixels from the header. */
  height: number;
}

/**
 * A decoded image: 8-bit RGBA, row-major, `width * height * 4` bytes.
 *
 * @example
 * ```ts
 * import type { RgbaImage } from "./types.ts";
 * const onePixel: RgbaImage = {
 *   width: 1,
 *   height: 1,
 *   data: new Uint8Array([255, 0, 0, 255]),
 * };
 * ```
 */
export interface RgbaImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** RGBA bytes, row-major, length `width * height * 4`. */
  data: Uint8ClampedArray | Uint8Array;
}

/**
 * Limits enforced by `decodeImage` before any pixel is decoded.
 *
 * @example
 * ```ts
 * import type { DecodeLimits } from "./types.ts";
 * const limits: DecodeLimits = { maxPixels: 16_000_000 };
 * ```
 */
export interface DecodeLimits {
  /** Largest `width * height` accepted (DESIGN.md `MAX_PIXELS`). */
  maxPixels: number;
  /** Largest pixels × scans of a JPEG (default `DEFAULT_MAX_SCAN_PIXELS`, budget.ts). */
  maxScanPixels?: number;
  /** Most frames a GIF may hold (default `DEFAULT_MAX_GIF_FRAMES`, budget.ts). */
  maxGifFrames?: number;
}

/**
 * How `cropCHW` fills pixels of a window that fall outside the
 * image: `zero` pads with 0, `reflect` mirrors about the edge pixel without
 * repeating it (PyTorch `ReflectionPad2d`), `edge` repeats the edge pixel.
 *
 * @example
 * ```ts
 * import type { PadMode } from "./types.ts";
 * const pad: PadMode = "reflect";
 * ```
 */
export type PadMode = "zero" | "reflect" | "edge";

/**
 * Run-length encoded class mask, row-major. Runs alternate arbitrary class
 * values: `values[i]` repeated `counts[i]` times, the counts summing to
 * `size[0] * size[1]`.
 *
 * @example
 * ```ts
 * import type { MaskRle } from "./types.ts";
 * // A 2×3 mask [[0, 0, 1], [1, 1, 2]]:
 * const rle: MaskRle = { size: [2, 3], values: [0, 1, 2], counts: [2, 3, 1] };
 * ```
 */
export interface MaskRle {
  /** `[height, width]`, the order of numpy/COCO shapes. */
  size: [number, number];
  /** Class value of each run. */
  values: number[];
  /** Length of each run, all positive. */
  counts: number[];
}
