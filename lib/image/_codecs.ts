// Typed, lazily loaded handles on imagescript's WebAssembly decoders.
//
// We call imagescript's per-format wasm modules rather than its `Image`
// entry point because that entry point loads a native Node addon (for its
// encoders) at import time, which under Deno needs --allow-ffi in every
// process that merely decodes. The wasm decoders need only read access to
// node_modules and env access to IMAGESCRIPT_WASM_SIMD. (Its TIFF decoder
// is unusable, see _tiff.ts.) Each `init()` makes a fresh wasm instance;
// {@link KeptDecoder} reuses one across successful decodes only, so a
// decoder that failed (or trapped) on a hostile file never decodes again.

/** RGBA frame from the PNG decoder. */
export interface PngFrame {
  width: number;
  height: number;
  framebuffer: Uint8Array;
}

/** Pixel layouts the JPEG decoder reports in `format`. */
export const JPEG_GREY = 0;
export const JPEG_RGB = 1;
export const JPEG_CMYK = 2;

/** Frame from the JPEG decoder: grey, RGB or CMYK bytes. */
export interface JpegFrame {
  width: number;
  height: number;
  format: number;
  buffer: Uint8Array;
}

/** One GIF frame: RGBA `width*height`, placed at (x, y) on the screen. */
export interface GifFrame {
  x: number;
  y: number;
  width: number;
  height: number;
  buffer: Uint8Array;
}

/** Streaming GIF decoder over one file. */
export interface GifDecoder {
  /** Logical screen width. */
  width: number;
  /** Logical screen height. */
  height: number;
  /** Next frame, or null after the last. */
  frame(): GifFrame | null;
  free(): void;
}

interface Loader<T> {
  init(): Promise<T>;
}

interface CjsModule {
  default: unknown;
}

async function load<T>(module: Promise<CjsModule>): Promise<T> {
  return await ((await module).default as Loader<T>).init();
}

/** A fresh PNG decoder instance. */
export function pngDecoder(): Promise<{ decode(b: Uint8Array): PngFrame }> {
  return load(import("imagescript/wasm/node/png.js"));
}

/** A fresh JPEG decoder instance. */
export function jpegDecoder(): Promise<{ decode(b: Uint8Array): JpegFrame }> {
  return load(import("imagescript/wasm/node/jpeg.js"));
}

/** A fresh GIF decoder instance. */
export function gifDecoder(): Promise<
  { Decoder: new (bytes: Uint8Array) => GifDecoder }
> {
  return load(import("imagescript/wasm/node/gif.js"));
}

/** Decoded images over this many pixels (2048², a 16 MiB RGBA frame) drop the instance that decoded them. */
export const KEEP_MAX_PIXELS = 4_194_304;

/**
 * One wasm decoder instance kept for the next decode. A fresh instance's memory grows from nothing at every decode:
 * measured in Deno, a 640×640 PNG takes 19.5 ms with a fresh instance and 7.4 ms with a kept one (1920×1080: 92 vs
 * 36 ms). The instance is dropped, and the next decode gets a fresh one, after any failure (a trap or an error can
 * leave its memory inconsistent) and after an image over {@link KEEP_MAX_PIXELS}, so one large upload does not pin
 * its memory. The decode pool also replaces its workers now and then (decode_pool.ts), which frees whatever is kept.
 *
 * `grown` counts the decodes that may have left memory behind: those on a fresh instance, those larger (input bytes
 * plus RGBA bytes out) than any the kept instance did before (its memory only grows, to its largest job), and those
 * whose instance was dropped (its memory waits for a collection). A stream of uploads no larger than earlier ones
 * reuses memory the instance already has and leaves `grown` as it was: the decode pool then has nothing to recycle.
 *
 * @example
 * ```ts ignore
 * const png = new KeptDecoder(pngDecoder);
 * const frame = await png.use((codec) => codec.decode(bytes), (f) => f.width * f.height, bytes.length);
 * ```
 */
export class KeptDecoder<T> {
  #instance: Promise<T> | null = null;
  /** The largest job the kept instance did: input bytes + RGBA bytes out. */
  #largest = 0;
  /** Decodes that may have grown this decoder's memory (see above). */
  grown = 0;

  constructor(readonly make: () => Promise<T>) {}

  /** Runs `decode` on the kept (or a fresh) instance; `pixels` says how large the result is, `inputBytes` the input. */
  async use<R>(decode: (codec: T) => R, pixels: (result: R) => number, inputBytes = 0): Promise<R> {
    const fresh = this.#instance === null;
    const instance = this.#instance ?? this.make();
    this.#instance = null;
    let result: R;
    try {
      result = decode(await instance);
    } catch (err) {
      this.grown++;
      this.#largest = 0;
      throw err;
    }
    const size = inputBytes + 4 * pixels(result);
    if (fresh || size > this.#largest) this.grown++;
    if (pixels(result) <= KEEP_MAX_PIXELS) {
      this.#instance = instance;
      this.#largest = fresh ? size : Math.max(this.#largest, size);
    } else {
      this.#largest = 0;
    }
    return result;
  }
}
