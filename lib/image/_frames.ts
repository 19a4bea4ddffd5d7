// The WebAssembly decoders' frames to RGBA (lib/image/decode.ts): JPEG's grey, RGB or CMYK, and a GIF's first frame
// on its logical screen, each written into the buffer the caller gives.

import { InvalidImageError } from "../errors.ts";
import { type GifDecoder, JPEG_CMYK, JPEG_GREY, JPEG_RGB, type JpegFrame } from "./_codecs.ts";
import type { RgbaImage } from "./types.ts";

// Channels per pixel to RGBA (written into `into`'s buffer): grey, grey+alpha, RGB or RGBA input.
function expand(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  into: (length: number) => Uint8Array,
): Uint8Array {
  const n = width * height;
  if (src.length < n * channels) {
    throw new InvalidImageError("decoder returned too few pixels");
  }
  const out = into(n * 4);
  if (channels === 4) {
    out.set(src.subarray(0, n * 4));
    return out;
  }
  const grey = channels < 3;
  for (let i = 0, j = 0, o = 0; i < n; i++, j += channels, o += 4) {
    out[o] = src[j];
    out[o + 1] = grey ? src[j] : src[j + 1];
    out[o + 2] = grey ? src[j] : src[j + 2];
    out[o + 3] = channels === 2 ? src[j + 1] : 255;
  }
  return out;
}

// The decoder's grey, RGB or CMYK frame (a view into its memory) to RGBA in `into`'s buffer.
export function jpegToRgba(frame: JpegFrame, into: (length: number) => Uint8Array): RgbaImage {
  const { width, height, format, buffer } = frame;
  if (format === JPEG_GREY) {
    return { width, height, data: expand(buffer, width, height, 1, into) };
  }
  if (format === JPEG_RGB) {
    return { width, height, data: expand(buffer, width, height, 3, into) };
  }
  if (format === JPEG_CMYK) {
    const n = width * height;
    if (buffer.length < n * 4) {
      throw new InvalidImageError("decoder returned too few pixels");
    }
    // The decoder has already undone Adobe's inversion, so 0 means no ink.
    const out = into(n * 4);
    for (let o = 0; o < n * 4; o += 4) {
      const white = 255 - buffer[o + 3];
      out[o] = Math.round((255 - buffer[o]) * white / 255);
      out[o + 1] = Math.round((255 - buffer[o + 1]) * white / 255);
      out[o + 2] = Math.round((255 - buffer[o + 2]) * white / 255);
      out[o + 3] = 255;
    }
    return { width, height, data: out };
  }
  throw new InvalidImageError(`JPEG pixel format ${format} is not supported`);
}

/** A GIF decoder's first frame, composited on its transparent logical screen, in `into`'s buffer. */
export function firstGifFrame(decoder: GifDecoder, into: (length: number) => Uint8Array): RgbaImage {
  const width = decoder.width;
  const height = decoder.height;
  const frame = decoder.frame();
  decoder.free();
  if (frame === null) throw new InvalidImageError("GIF has no frames");
  if (frame.buffer.length < frame.width * frame.height * 4) {
    throw new InvalidImageError("decoder returned too few pixels");
  }
  // Before the first frame the canvas is transparent; transparent frame
  // pixels leave it so, and parts outside the logical screen are clipped.
  const data = into(width * height * 4).fill(0);
  const x0 = Math.max(0, frame.x);
  const x1 = Math.min(width, frame.x + frame.width);
  for (let y = Math.max(0, frame.y); y < Math.min(height, frame.y + frame.height); y++) {
    for (let x = x0; x < x1; x++) {
      const s = ((y - frame.y) * frame.width + (x - frame.x)) * 4;
      if (frame.buffer[s + 3] === 0) continue;
      const d = (y * width + x) * 4;
      data[d] = frame.buffer[s];
      data[d + 1] = frame.buffer[s + 1];
      data[d + 2] = frame.buffer[s + 2];
      data[d + 3] = frame.buffer[s + 3];
    }
  }
  return { width, height, data };
}
