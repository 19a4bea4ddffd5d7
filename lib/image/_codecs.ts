// Typed, lazily loaded handles on imagescript's WebAssembly decoders.
//
// We call imagescript's per-format wasm modules rather than its `Image`
// entry point because that entry point loads a native Node addon (for its
// encoders) at import time, which under Deno needs --allow-ffi in every
// process that merely decodes. The wasm decoders need only read access to
// node_modules and env access to IMAGESCRIPT_WASM_SIMD. (Its TIFF decoder
// is unusable, see _tiff.ts.) Each `init()` makes
// a fresh wasm instance, so a decoder that traps on a hostile file cannot
// poison the next decode.

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
