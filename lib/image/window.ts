// Model input straight from RGBA pixels: windows of an image (which may reach past its edges) converted to the model's
// channels, order and normalisation in one pass, zero outside the image, stacked into one NCHW batch. This is what an
// inference worker does before session.run; it gives exactly the values of toCHW / toGrey + per-channel normalisation
// + cropCHW("zero") (+ resizeCHW for scaled windows), without materialising the whole image as floats.

import { resizeCHW } from "./resize.ts";
import { LUMA } from "./tensor.ts";
import type { RgbaImage } from "./types.ts";

/** How a model wants its input (the manifest's `input` block). */
export interface InputFormat {
  channels: number;
  channel_order: "rgb" | "bgr" | "grey";
  mean?: number[];
  std?: number[];
  /** Grey level (0–255) transparent pixels are composited over. */
  background: number;
}

/** Per-pixel planes of an h×w image (e.g. a zoo's argmax and entropy maps), each multiplied by its scale. */
export interface PlanesInput {
  planes: { data: Uint8Array | Float32Array; scale: number }[];
  h: number;
  w: number;
}

/** A region of the image fed to a model, in image pixels; it may extend past any edge (zero padding there). */
export interface Window {
  x: number;
  y: number;
  w: number;
  h: number;
}

const WR = LUMA.r, WG = LUMA.g, WB = LUMA.b;

/** Per output channel: source channel (0 r, 1 g, 2 b) and a 256-entry lookup for opaque pixels. */
function channelPlan(fmt: InputFormat) {
  const c = fmt.channels;
  if (c !== 1 && c !== 3) throw new RangeError(`a model input needs 1 or 3 channels, got ${c}`);
  const src = c === 1 ? [0] : fmt.channel_order === "bgr" ? [2, 1, 0] : [0, 1, 2];
  const mean = (k: number) => fmt.mean?.[k] ?? 0, std = (k: number) => fmt.std?.[k] ?? 1;
  // Math.fround twice: the value first exists as a float32 in [0, 1], then is normalised (as toCHW + modelInput did).
  const norm = (k: number, v01: number) => {
    const f = Math.fround(v01);
    return mean(k) === 0 && std(k) === 1 ? f : Math.fround((f - mean(k)) / std(k));
  };
  // Grey: the luma of an opaque grey pixel (v, v, v), computed as for any other pixel.
  const level = (v: number) => c === 1 ? (WR * v + WG * v + WB * v) / 255 : v / 255;
  const luts = src.map((_s, k) => Float32Array.from({ length: 256 }, (_, v) => norm(k, level(v))));
  return { c, src, luts, norm };
}

/**
 * Builds the [N, C, inH, inW] float32 input for `windows` of `img` (every window the same size). A window of
 * `w × h` = `inW × inH` is copied 1:1; any other size is cut at its own size and resized bilinearly to `inH × inW`.
 * With `into` (any contents, at least as long as the batch), the batch is written at its start and that view returned
 * instead of a new array.
 *
 * @example
 * ```ts
 * import { windowsTensor } from "./window.ts";
 * const img = { width: 2, height: 1, data: new Uint8Array([255, 255, 255, 255, 0, 0, 0, 255]) };
 * const grey = { channels: 1, channel_order: "grey" as const, background: 0 };
 * windowsTensor(img, grey, [{ x: -1, y: 0, w: 4, h: 1 }], 1, 4); // Float32Array [0, 1, 0, 0]
 * ```
 */
export function windowsTensor(
  img: RgbaImage,
  fmt: InputFormat,
  windows: Window[],
  inH: number,
  inW: number,
  into?: Float32Array,
): Float32Array {
  const plan = channelPlan(fmt);
  const item = plan.c * inH * inW;
  // `into` is zeroed only where no pixel of the image is written (what lies past its border): zeroing all of it first
  // cost 0.2–0.8 ms more on a test screenshot's windows (5.56 instead of 5.01 ms on a 1920×1080 page's two, 9.27
  // instead of 8.47 on a 1170×2532 one; `.scratch/wtbench.ts`, medians of 41 interleaved, into a reused buffer).
  const out = into ? sized(windows.length * item, into, "windowsTensor") : new Float32Array(windows.length * item);
  windows.forEach((win, b) => {
    if (win.w === inW && win.h === inH) {
      const dst = out.subarray(b * item, (b + 1) * item);
      if (into) clearOutside(img, win, plan.c, dst);
      fill(img, plan, fmt.background, win, dst);
    } else {
      const full = new Float32Array(plan.c * win.h * win.w);
      fill(img, plan, fmt.background, win, full);
      out.set(resizeCHW(full, plan.c, win.h, win.w, inH, inW), b * item);
    }
  });
  return out;
}

/** The first `n` values of `into` (whatever they hold). */
function sized(n: number, into: Float32Array, who: string): Float32Array {
  if (into.length < n) throw new RangeError(`${who}: \`into\` is shorter than the ${n} values it needs`);
  return into.subarray(0, n);
}

/** `n` zeros: the start of `into` (whatever it held) when given, else a new array. */
function zeroed(n: number, into: Float32Array | undefined, who: string): Float32Array {
  return into ? sized(n, into, who).fill(0) : new Float32Array(n);
}

/** Zeroes the positions of window `win`'s `c` planes in `dst` past the image's border (`fill` writes the rest). */
function clearOutside(img: RgbaImage, win: Window, c: number, dst: Float32Array) {
  const x0 = Math.max(0, win.x) - win.x, x1 = Math.min(img.width, win.x + win.w) - win.x;
  const y0 = Math.max(0, win.y) - win.y, y1 = Math.min(img.height, win.y + win.h) - win.y;
  if (x1 <= x0 || y1 <= y0) {
    dst.fill(0);
    return;
  }
  const plane = win.w * win.h;
  for (let k = 0; k < c; k++) {
    const at = k * plane;
    dst.fill(0, at, at + y0 * win.w);
    dst.fill(0, at + y1 * win.w, at + plane);
    if (x0 === 0 && x1 === win.w) continue;
    for (let y = y0; y < y1; y++) {
      dst.fill(0, at + y * win.w, at + y * win.w + x0);
      dst.fill(0, at + y * win.w + x1, at + (y + 1) * win.w);
    }
  }
}

// Pixels are read as one little-endian 32-bit word each (r in the low byte, alpha in the high): one load per pixel
// instead of four, and one pass writing every channel. On a 640² page held in the decoder's shared buffer this built
// the input in 1.1 ms instead of 3.2 (.scratch/wt2.ts, median of 60). Deno runs on little-endian machines only.
if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) {
  throw new Error("lib/image/window.ts assumes a little-endian machine");
}

/**
 * The image's pixels as little-endian words (r in the low byte, alpha in the high); a copy only when its bytes do not
 * start on a 4-byte boundary.
 */
export function pixelWords(data: RgbaImage["data"]): Uint32Array {
  const aligned = data.byteOffset % 4 === 0 ? data : data.slice();
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.length >> 2);
}

/** Writes one window ([C, win.h, win.w]) into `dst`, which must be zero-filled. */
function fill(
  img: RgbaImage,
  plan: ReturnType<typeof channelPlan>,
  background: number,
  win: Window,
  dst: Float32Array,
) {
  const x0 = Math.max(0, win.x), x1 = Math.min(img.width, win.x + win.w);
  const y0 = Math.max(0, win.y), y1 = Math.min(img.height, win.y + win.h);
  if (x1 <= x0 || y1 <= y0) return;
  // Separate loops per channel count keep each one monomorphic when a worker serves grey and colour models.
  (plan.c === 1 ? fillGrey : fillColour)(pixelWords(img.data), img.width, plan, background, win, x0, x1, y0, y1, dst);
}

type Fill = (
  px: Uint32Array,
  width: number,
  plan: ReturnType<typeof channelPlan>,
  background: number,
  win: Window,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  dst: Float32Array,
) => void;

const fillGrey: Fill = (px, width, plan, background, win, x0, x1, y0, y1, dst) => {
  const lut = plan.luts[0];
  for (let y = y0; y < y1; y++) {
    const row = (y - win.y) * win.w - win.x, first = y * width;
    for (let x = x0; x < x1; x++) {
      const p = px[first + x], r = p & 255, a = p >>> 24;
      if (a === 255 && (p & 0xffffff) === r * 0x010101) {
        dst[row + x] = lut[r];
      } else {
        let l = WR * r + WG * ((p >>> 8) & 255) + WB * ((p >>> 16) & 255);
        if (a !== 255) l = (l * a + background * (255 - a)) / 255;
        dst[row + x] = plan.norm(0, l / 255);
      }
    }
  }
};

const fillColour: Fill = (px, width, plan, background, win, x0, x1, y0, y1, dst) => {
  const plane = win.w * win.h;
  const [l0, l1, l2] = plan.luts;
  // Bit shift of each output channel's source byte (r at 0, g at 8, b at 16).
  const [s0, s1, s2] = plan.src.map((s) => 8 * s);
  for (let y = y0; y < y1; y++) {
    const row = (y - win.y) * win.w - win.x, first = y * width;
    for (let x = x0; x < x1; x++) {
      const p = px[first + x], o = row + x;
      if (p >>> 24 === 255) {
        dst[o] = l0[(p >>> s0) & 255];
        dst[plane + o] = l1[(p >>> s1) & 255];
        dst[2 * plane + o] = l2[(p >>> s2) & 255];
      } else {
        const a = p >>> 24;
        for (let k = 0; k < 3; k++) {
          const v = (p >>> (8 * plan.src[k])) & 255;
          dst[k * plane + o] = plan.norm(k, (v * a + background * (255 - a)) / 255 / 255);
        }
      }
    }
  }
};

/**
 * Builds the [1, P, ph, pw] float32 input of P planes of an h×w image, each times its scale, zero-padded at the bottom
 * and right. With `into`, as {@link windowsTensor}.
 *
 * @example
 * ```ts
 * import { planesTensor } from "./window.ts";
 * const planes = [{ data: new Uint8Array([1, 2]), scale: 0.5 }];
 * planesTensor({ planes, h: 1, w: 2 }, 2, 2); // Float32Array [0.5, 1, 0, 0]
 * ```
 */
export function planesTensor(input: PlanesInput, ph: number, pw: number, into?: Float32Array): Float32Array {
  const { planes, h, w } = input;
  if (ph < h || pw < w) throw new RangeError(`planesTensor: ${h}×${w} planes do not fit in ${ph}×${pw}`);
  const n = planes.length * ph * pw;
  const out = zeroed(n, into, "planesTensor");
  planes.forEach(({ data, scale }, k) => {
    if (data.length !== h * w) throw new RangeError(`planesTensor: plane ${k} has ${data.length} values, not ${h * w}`);
    for (let y = 0; y < h; y++) {
      for (let x = 0, p = y * w, o = k * ph * pw + y * pw; x < w; x++, p++, o++) out[o] = data[p] * scale;
    }
  });
  return out;
}
