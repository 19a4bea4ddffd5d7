// Typed, lazily loaded handles on imagescript's WebAssembly decoders.
//
// PNG and JPEG: we instantiate imagescript's own .wasm files here, with the
// exports its JS wrappers call (walloc, decode, …), rather than through those
// wrappers. The wrappers return every frame as a fresh copy out of the wasm
// memory (`slice`), and a fresh multi-megabyte ArrayBuffer is paid in page
// faults on first touch: 5.9 ms of a 640² PNG's 7.7 ms decode, measured in
// Deno, against 0.1 ms to copy the same pixels into a buffer already in use.
// Here a frame is a view into the wasm memory, read (into the caller's
// buffer) before it is freed. GIF still goes through imagescript's wrapper.
//
// We do not use imagescript's `Image` entry point because it loads a native
// Node addon (for its encoders) at import time, which under Deno needs
// --allow-ffi in every process that merely decodes. The decoders need only
// read access to node_modules. (Its TIFF decoder is unusable, see _tiff.ts.)
// Each instance is fresh; {@link KeptDecoder} reuses one across successful
// decodes only, so a decoder that failed (or trapped) on a hostile file never
// decodes again.

import { createRequire } from "node:module";

/** An RGBA frame from the PNG decoder: `framebuffer` views the decoder's memory, valid only inside `read`. */
export interface PngFrame {
  width: number;
  height: number;
  framebuffer: Uint8Array;
}

/** Pixel layouts the JPEG decoder reports in `format`. */
export const JPEG_GREY = 0;
export const JPEG_RGB = 1;
export const JPEG_CMYK = 2;

/** A frame from the JPEG decoder: grey, RGB or CMYK bytes viewing the decoder's memory, valid only inside `read`. */
export interface JpegFrame {
  width: number;
  height: number;
  format: number;
  buffer: Uint8Array;
}

/** One decoder instance: `read` gets the frame (a view into the instance's memory) and returns what it keeps. */
export interface FrameDecoder<F> {
  decode<R>(bytes: Uint8Array, read: (frame: F) => R): R;
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

// The exports of imagescript 1.3.1's png.wasm and jpeg.wasm that its wrappers (wasm/node/*.js) call.
interface PngExports {
  memory: WebAssembly.Memory;
  walloc(size: number): number;
  wfree(ptr: number): void;
  decode(ptr: number, size: number): number;
  width(): number;
  height(): number;
}
interface JpegExports {
  memory: WebAssembly.Memory;
  walloc(size: number): number;
  wlen(): number;
  decode(ptr: number, size: number, width: number, height: number): number;
  decode_width(ptr: number): number;
  decode_height(ptr: number): number;
  decode_format(ptr: number): number;
  decode_buffer(ptr: number): number;
  decode_free(ptr: number): void;
}

const compiled = new Map<string, Promise<WebAssembly.Module>>();

// Compiles imagescript's `<name>.wasm` once per thread and instantiates it; `imports` as its wrapper passes them.
async function instantiate<E>(name: "png" | "jpeg"): Promise<E> {
  let module = compiled.get(name);
  if (!module) {
    const path = createRequire(import.meta.url).resolve(`imagescript/wasm/any/${name}.wasm`);
    module = Deno.readFile(path).then((bytes) => WebAssembly.compile(bytes));
    compiled.set(name, module);
    module.catch(() => compiled.delete(name));
  }
  // png.wasm tells its host when its memory grows; views are made after each decode, so there is nothing to do.
  const imports = { env: { emscripten_notify_memory_growth() {} } };
  return new WebAssembly.Instance(await module, imports).exports as unknown as E;
}

// Copies `bytes` into the instance's memory and returns where.
function copyIn(memory: WebAssembly.Memory, walloc: (size: number) => number, bytes: Uint8Array): number {
  const ptr = walloc(bytes.length);
  new Uint8Array(memory.buffer, ptr, bytes.length).set(bytes);
  return ptr;
}

/** A fresh PNG decoder instance. */
export async function pngDecoder(): Promise<FrameDecoder<PngFrame>> {
  const wasm = await instantiate<PngExports>("png");
  return {
    decode(bytes, read) {
      const input = copyIn(wasm.memory, wasm.walloc, bytes);
      const at = wasm.decode(input, bytes.length);
      wasm.wfree(input);
      if (at < 0) throw new Error(`png: failed to decode (${at})`);
      const width = wasm.width(), height = wasm.height();
      try {
        return read({ width, height, framebuffer: new Uint8Array(wasm.memory.buffer, at, 4 * width * height) });
      } finally {
        wasm.wfree(at);
      }
    },
  };
}

/** A fresh JPEG decoder instance. */
export async function jpegDecoder(): Promise<FrameDecoder<JpegFrame>> {
  const wasm = await instantiate<JpegExports>("jpeg");
  return {
    decode(bytes, read) {
      // As imagescript's wrapper: the decoder owns the input once called (the wrapper never frees it); 0 × 0 = no
      // scaling.
      const at = wasm.decode(copyIn(wasm.memory, wasm.walloc, bytes), bytes.length, 0, 0);
      if (at === 0) throw new Error("jpg: failed to decode");
      if (at === 1) throw new Error("jpg: failed to scale decoder");
      try {
        return read({
          width: wasm.decode_width(at),
          height: wasm.decode_height(at),
          format: wasm.decode_format(at),
          buffer: new Uint8Array(wasm.memory.buffer, wasm.decode_buffer(at), wasm.wlen()),
        });
      } finally {
        wasm.decode_free(at);
      }
    },
  };
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
 * const dims = await png.use((c) => c.decode(bytes, (f) => [f.width, f.height]), ([w, h]) => w * h, bytes.length);
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
    const area = pixels(result);
    const size = inputBytes + 4 * area;
    if (fresh || size > this.#largest) this.grown++;
    if (area <= KEEP_MAX_PIXELS) {
      this.#instance = instance;
      this.#largest = fresh ? size : Math.max(this.#largest, size);
    } else {
      this.#largest = 0;
    }
    return result;
  }
}
