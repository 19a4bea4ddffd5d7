// Upload decoding: sniff, enforce limits from the header, then decode PNG,
// JPEG or the first GIF frame to RGBA with imagescript's wasm decoders, and
// TIFF with our own baseline decoder (imagescript's is broken, see _tiff.ts).
// Every failure becomes one of the typed HTTP errors (400/413/415); nothing
// a client sends can escape as an untyped exception.

import { InvalidImageError, PayloadTooLargeError, ProblemError, UnsupportedMediaTypeError } from "../errors.ts";
import { gifDecoder, jpegDecoder, KeptDecoder, pngDecoder, type PngFrame } from "./_codecs.ts";
import { firstGifFrame, jpegToRgba } from "./_frames.ts";
import { checkComplete, countJpegScans, type HeaderInfo, readHeader, unsupportedMediaType } from "./_headers.ts";
import { sharpDecode } from "./_sharp.ts";
import { decodeTiff } from "./_tiff.ts";
import { checkDecodeWork, DEFAULT_MAX_GIF_FRAMES, DEFAULT_MAX_SCAN_PIXELS } from "./budget.ts";
import type { DecodeLimits, ImageFormat, RgbaImage } from "./types.ts";

/**
 * Default pixel limit, DESIGN.md `MAX_PIXELS` (16 MP).
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_PIXELS } from "./decode.ts";
 * const maxPixels = Number(Deno.env.get("MAX_PIXELS") ?? DEFAULT_MAX_PIXELS);
 * ```
 */
export const DEFAULT_MAX_PIXELS = 16_000_000;

/**
 * Media types `decodeImage` accepts, as listed in 415 responses.
 *
 * @example
 * ```ts
 * import { SUPPORTED_MEDIA_TYPES } from "./decode.ts";
 * console.log(SUPPORTED_MEDIA_TYPES.join(", "));
 * ```
 */
export const SUPPORTED_MEDIA_TYPES: readonly string[] = [
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/tiff",
];

// Non-standard spellings that real clients send for the supported types.
const MEDIA_TYPE_ALIASES: Record<string, string> = {
  "image/jpg": "image/jpeg",
  "image/pjpeg": "image/jpeg",
  "image/x-png": "image/png",
  "image/x-tiff": "image/tiff",
};

/**
 * Most scans a JPEG may hold. A progressive JPEG's decode time grows with
 * scans × image area, and a few KB of empty scans can keep a decoder busy
 * for minutes; real encoders write about 10. The cap matches the one
 * libjpeg-turbo recommends for untrusted input.
 *
 * @example
 * ```ts
 * import { MAX_JPEG_SCANS } from "./decode.ts";
 * console.log(MAX_JPEG_SCANS); // 500
 * ```
 */
export const MAX_JPEG_SCANS = 500;

/** How {@link decodeImage} decodes once the limits are checked. */
export interface DecodeOptions {
  /**
   * JPEG, and PNG over {@link SHARP_PNG_MIN_PIXELS}, through sharp (native; needs --allow-ffi) instead of imagescript's
   * WebAssembly decoders.
   */
  native?: boolean;
  /**
   * Where the RGBA goes: a buffer of exactly `length` bytes, such as one the caller reuses (fresh memory is paid in
   * page faults: _codecs.ts). Any contents are overwritten. PNG, GIF and JPEG write into it (sharp by a copy, its
   * own buffer freed at once: _sharp.ts); TIFF returns its own buffer. Default: a fresh Uint8Array (sharp: its
   * own buffer).
   */
  into?: (length: number) => Uint8Array;
}

/**
 * Pixels above which the native backend decodes PNG with sharp: measured in Deno through this module, into a reused
 * buffer (median of 15, `deno run -A bench/decoders.ts`), imagescript's kept WebAssembly instance wins on small PNGs
 * (sharp's pipeline costs about a millisecond before any pixel: 320×240, 0.6 vs 2.0 ms) and ties at 640×640
 * (2.7 vs 2.6 ms); above, sharp's inflate wins: screenshots of 1–3 megapixels decode 1.3–1.8× faster (1366×768 in
 * 11.0 vs 8.8 ms, 1170×2532 in 32.5 vs 18.6 ms), with the same pixels on every screenshot of bench/eval's pages.
 */
export const SHARP_PNG_MIN_PIXELS = 640 * 640;

/**
 * Whether the native backend decodes an image of this header with sharp (every JPEG, PNG over
 * {@link SHARP_PNG_MIN_PIXELS}) rather than imagescript's decoders.
 *
 * @example
 * ```ts
 * import { nativeDecodes } from "./decode.ts";
 * nativeDecodes({ format: "png", width: 320, height: 240 }); // false
 * ```
 */
export function nativeDecodes(header: { format: ImageFormat; width: number; height: number }): boolean {
  return header.format === "jpeg" || (header.format === "png" && header.width * header.height > SHARP_PNG_MIN_PIXELS);
}

const DECODABLE: ReadonlySet<ImageFormat> = new Set([
  "png",
  "jpeg",
  "gif",
  "tiff",
]);

/**
 * Decode an uploaded image to RGBA, refusing it as early and as cheaply as
 * possible.
 *
 * Order of checks, each before any pixel is decoded:
 * 1. `declaredType` (the request's Content-Type, parameters ignored), when
 *    given and non-empty, must be image/png, image/jpeg, image/gif or
 *    image/tiff (common aliases such as image/jpg accepted), else 415.
 * 2. The header is sniffed; empty, truncated or inconsistent headers → 400.
 * 3. WebP, BMP, AVIF/HEIF, JPEG XL and SVG → 415 listing the supported
 *    types; bytes of no recognisable format → 400.
 * 4. `width * height` (for GIF also the first frame's area) over
 *    `maxPixels` → 413 with `width`, `height`, `pixels`, `max_pixels`.
 * 5. A JPEG with more than `MAX_JPEG_SCANS` scans, or a PNG or GIF cut
 *    short → 400.
 * 6. A JPEG whose pixels × scans is over `limits.maxScanPixels` → 413; a
 *    GIF with more than `limits.maxGifFrames` frames → 400 (budget.ts).
 *
 * When the declared type and the sniffed format disagree, the bytes win:
 * clients mislabel uploads far more often than they send a format we would
 * wrongly accept, and decoding is driven by the bytes anyway.
 *
 * Then PNG and JPEG are decoded with imagescript's decoders (with sharp when
 * `options.native`: every JPEG, and PNG over {@link SHARP_PNG_MIN_PIXELS}
 * pixels; lib/image/_sharp.ts), GIF to its
 * first frame composited on a transparent logical screen, and TIFF (IFD0)
 * by a built-in baseline decoder: uncompressed, LZW, Deflate or PackBits;
 * bilevel, grey, palette, RGB(A) at up to 16 bits. Other TIFF variants
 * (JPEG-compressed, CMYK, YCbCr, floating point) → 415. A PNG that does not
 * reach IEND, a GIF whose first frame is cut short, any decoder failure, or
 * a decoded size that differs from the header → 400. EXIF/TIFF orientation
 * is not applied: the mask aligns with the stored pixels.
 *
 * @throws {InvalidImageError} 400, as above.
 * @throws {PayloadTooLargeError} 413, as above.
 * @throws {UnsupportedMediaTypeError} 415, as above.
 *
 * @example
 * ```ts
 * import { decodeImage } from "./decode.ts";
 * const bytes = new Uint8Array(await Deno.readFile("scene.png"));
 * const img = await decodeImage(bytes, { maxPixels: 4_000_000 }, "image/png");
 * console.log(img.width, img.height, img.data.length); // w, h, w*h*4
 * ```
 */
export async function decodeImage(
  bytes: Uint8Array,
  limits: Partial<DecodeLimits> = {},
  declaredType?: string,
  options: DecodeOptions = {},
): Promise<RgbaImage> {
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  const header = checkImageHeader(bytes, limits, declaredType);
  if (header.format === "jpeg" && countJpegScans(bytes) > MAX_JPEG_SCANS) {
    throw new InvalidImageError(
      `JPEG has more than ${MAX_JPEG_SCANS} scans`,
    );
  }
  checkDecodeWork(header, bytes, {
    maxScanPixels: limits.maxScanPixels ?? DEFAULT_MAX_SCAN_PIXELS,
    maxGifFrames: limits.maxGifFrames ?? DEFAULT_MAX_GIF_FRAMES,
  });
  checkComplete(header, bytes);

  // Loading a decoder can only fail for server reasons (permissions,
  // missing files), which must surface as 500s, not as the client's 400.
  const native = options.native === true && nativeDecodes(header);
  const decode = await decoderFor(header.format, native, maxPixels, options.into);
  let image: RgbaImage;
  try {
    image = await decode(bytes);
  } catch (error) {
    if (error instanceof ProblemError) throw error;
    // A wasm trap ("unreachable", "memory access out of bounds") is a Rust
    // panic or overrun inside the decoder: corrupt data, in client terms.
    const reason = error instanceof WebAssembly.RuntimeError
      ? "the data is corrupt"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new InvalidImageError(
      `${header.format.toUpperCase()} could not be decoded: ${reason}`,
    );
  }
  if (image.width !== header.width || image.height !== header.height) {
    throw new InvalidImageError(
      `decoded size ${image.width}x${image.height} differs from the ` +
        `header's ${header.width}x${header.height}`,
    );
  }
  return image;
}

/**
 * The first checks of {@link decodeImage} (1–4: declared type, header, format, pixel limit), which read the header
 * only: cheap enough for the main thread, so a server can size-check an upload before handing it to a decoder.
 *
 * @throws {InvalidImageError} 400, {@link PayloadTooLargeError} 413, {@link UnsupportedMediaTypeError} 415.
 *
 * @example
 * ```ts
 * import { checkImageHeader } from "./decode.ts";
 * const bytes = new Uint8Array(await Deno.readFile("scene.png"));
 * const { width, height } = checkImageHeader(bytes, { maxPixels: 4_000_000 }, "image/png");
 * ```
 */
export function checkImageHeader(
  bytes: Uint8Array,
  limits: Partial<DecodeLimits> = {},
  declaredType?: string,
): HeaderInfo {
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(maxPixels > 0)) {
    throw new RangeError(`maxPixels must be positive, got ${maxPixels}`);
  }
  if (declaredType !== undefined) checkDeclaredType(declaredType);
  const header = readHeader(bytes);
  checkFormat(header, bytes);
  checkPixels(header, maxPixels);
  return header;
}

function checkDeclaredType(declaredType: string): void {
  const essence = declaredType.split(";")[0].trim().toLowerCase();
  if (essence === "") return;
  const type = MEDIA_TYPE_ALIASES[essence] ?? essence;
  if (!SUPPORTED_MEDIA_TYPES.includes(type)) {
    throw new UnsupportedMediaTypeError(
      `media type ${essence} is not supported; send one of ` +
        SUPPORTED_MEDIA_TYPES.join(", "),
      { media_type: essence, supported: [...SUPPORTED_MEDIA_TYPES] },
    );
  }
}

function checkFormat(header: HeaderInfo, bytes: Uint8Array): void {
  if (DECODABLE.has(header.format)) return;
  const refused = header.format === "unknown" ? unsupportedMediaType(bytes) : `image/${header.format}`;
  if (refused === undefined) {
    throw new InvalidImageError(
      "the body is not a PNG, JPEG, GIF or TIFF image",
    );
  }
  throw new UnsupportedMediaTypeError(
    `${refused} images are not supported; send one of ` +
      SUPPORTED_MEDIA_TYPES.join(", "),
    { media_type: refused, supported: [...SUPPORTED_MEDIA_TYPES] },
  );
}

function checkPixels(header: HeaderInfo, maxPixels: number): void {
  const { width, height, workPixels } = header;
  if (width * height <= maxPixels && workPixels <= maxPixels) return;
  const what = workPixels > width * height
    ? `its first frame has ${workPixels} pixels`
    : `${width}x${height} is ${width * height} pixels`;
  throw new PayloadTooLargeError(
    `image too large: ${what}, over the limit of ${maxPixels}`,
    { width, height, pixels: workPixels, max_pixels: maxPixels },
  );
}

// imagescript's PNG and JPEG decoders, each instance kept across successful decodes (_codecs.ts).
const keptPng = new KeptDecoder(pngDecoder);
const keptJpeg = new KeptDecoder(jpegDecoder);
const area = (f: { width: number; height: number }) => f.width * f.height;
let gifDecodes = 0;

/**
 * How many of this thread's decodes so far may have grown the memory of imagescript's WebAssembly decoders (PNG, GIF,
 * and JPEG unless native), memory only a fresh thread gives back: every GIF (a fresh instance each), and the PNG and
 * JPEG decodes {@link KeptDecoder} counts as `grown`. The decode pool replaces a worker after enough of them; a stream
 * of uploads no larger than earlier ones adds nothing, so it never pays for a replacement (docs/RELIABILITY.md (b)).
 *
 * @example
 * ```ts
 * import { decodeImage, wasmGrowth } from "./decode.ts";
 * const before = wasmGrowth();
 * await decodeImage(await Deno.readFile("tests/fixtures/digits-test-0.png"));
 * wasmGrowth() > before; // true the first time: a fresh instance
 * ```
 */
export function wasmGrowth(): number {
  return keptPng.grown + keptJpeg.grown + gifDecodes;
}

const fresh = (length: number) => new Uint8Array(length);

async function decoderFor(
  format: ImageFormat,
  native: boolean,
  maxPixels: number,
  given: ((length: number) => Uint8Array) | undefined,
): Promise<(bytes: Uint8Array) => RgbaImage | Promise<RgbaImage>> {
  if (native) return (bytes) => sharpDecode(bytes, maxPixels, given);
  const into = given ?? fresh;
  switch (format) {
    case "png": {
      const read = ({ width, height, framebuffer }: PngFrame): RgbaImage => {
        const data = into(framebuffer.length);
        data.set(framebuffer);
        return { width, height, data };
      };
      return (bytes) => keptPng.use((codec) => codec.decode(bytes, read), area, bytes.length);
    }
    case "jpeg":
      return (bytes) =>
        keptJpeg.use((codec) => codec.decode(bytes, (frame) => jpegToRgba(frame, into)), area, bytes.length);
    case "gif": {
      const codec = await gifDecoder();
      gifDecodes++;
      return (bytes) => firstGifFrame(new codec.Decoder(bytes), into);
    }
    case "tiff":
      return decodeTiff;
    default:
      throw new InvalidImageError(`cannot decode ${format}`);
  }
}
