// Native decoding with sharp (libvips: libjpeg-turbo, libspng, over N-API), used only when the native inference
// backend is on (the decode pool is told so by main.ts; it needs --allow-ffi, as onnxruntime-node does), for every JPEG
// and for PNGs over decode.ts's `SHARP_PNG_MIN_PIXELS`. Why: measured in Deno by bench/decoders.ts ("Decoders" in
// docs/BENCHMARKS.md), sharp decodes a 1920×1080 JPEG about 4× faster than imagescript's WebAssembly decoder and
// screenshots of 1–3 megapixels 1.5–1.8× faster, while imagescript's PNG decoder, its instance kept between decodes
// (_codecs.ts), is faster up to 640×640 (sharp's own pipeline costs about a millisecond before any pixel). GIF and
// TIFF stay on imagescript / our own decoder. The header checks of decode.ts (pixels, scans, completeness) run first
// in either case, so no limit depends on which decoder runs.

import type { RgbaImage } from "./types.ts";

type Sharp = typeof import("sharp").default;
let loaded: Promise<Sharp> | null = null;

/** sharp, loaded on first use (its native addon needs --allow-ffi); a failed load is retried next time. */
function load(): Promise<Sharp> {
  loaded ??= import("sharp").then((m) => {
    const sharp = m.default;
    // No libvips operation cache (each upload is decoded once), and one libvips thread per decode: the decode worker
    // runs one image at a time and the cores belong to inference.
    sharp.cache(false);
    sharp.concurrency(1);
    return sharp;
  }).catch((err) => {
    loaded = null;
    throw err;
  });
  return loaded;
}

/** Whether sharp can be loaded in this process (false without --allow-ffi, or where its binaries are missing). */
export async function sharpAvailable(): Promise<boolean> {
  try {
    await load();
    return true;
  } catch {
    return false;
  }
}

/**
 * Decodes a PNG or JPEG into 8-bit RGBA with sharp: grey and palette images expanded, 16-bit samples reduced to 8
 * bits, no rotation from EXIF (as the other decoders). `maxPixels` is passed on as libvips' own input limit, a second
 * fence behind the header check. Errors are libvips' messages (the caller turns them into 400s). With `into`, the RGBA
 * is copied into the buffer it gives and sharp's own is freed at once; without, sharp's buffer is returned.
 */
export async function sharpDecode(
  bytes: Uint8Array,
  maxPixels: number,
  into?: (length: number) => Uint8Array,
): Promise<RgbaImage> {
  const sharp = await load();
  const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, sequentialRead: true })
    .toColourspace("srgb")
    .ensureAlpha()
    .raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 4 || data.length !== info.width * info.height * 4) {
    throw new Error(`sharp returned ${info.channels} channels, ${data.length} bytes`);
  }
  const { width, height } = info;
  if (!into) return { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  const out = into(data.length);
  out.set(data);
  // sharp's buffer is libvips memory, freed by a finalizer once V8 collects the Buffer: until then every decode takes
  // fresh pages, paid in page faults (a 1920×1080 JPEG through the decode pool: ~1,600 faults and 38–39 ms per decode,
  // against 700–1,000 and 11.5 ms with this line). Transferring the ArrayBuffer away detaches it and frees that
  // memory now, for the next decode to reuse.
  (data.buffer as ArrayBuffer).transfer(0);
  return { width, height, data: out };
}
