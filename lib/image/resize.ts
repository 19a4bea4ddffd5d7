// Resampling of planar float tensors (tiles run at reduced scale) and of
// class masks (their results brought back to full resolution).

import { checkInt, checkPlanar } from "./_shape.ts";
import type { RgbaImage } from "./types.ts";

// Beyond this shrink factor bilinear sampling skips source pixels entirely
// and aliases, so the axis switches to area averaging.
const AREA_ABOVE = 2;

/** Per output index, `taps` (index, weight) pairs; unused taps weigh 0. */
interface AxisFilter {
  taps: number;
  index: Int32Array;
  weight: Float64Array;
}

/**
 * Outputs [j0, j1) of one row resampled across by `filter`: the row starts at `src[s]`, its outputs at `out[o]`. Every
 * resampling across (resizeCHW's first pass, stretchRows) sums in this order, so their outputs agree bitwise.
 */
function acrossRow(
  src: Float32Array,
  s: number,
  out: Float32Array,
  o: number,
  j0: number,
  j1: number,
  { taps, index, weight }: AxisFilter,
) {
  if (taps === 2) {
    // Bilinear, spelled out: the same sums in the same order as the loop below, bitwise the same output, in less time
    // (a 624×2532 map stretched across to 1170, as a squeezed or narrow glance's is: 46 → 18–23 ms;
    // `.scratch/rsbench.ts`, `.scratch/rscheck.ts` for the bits).
    for (let j = j0; j < j1; j++) {
      out[o + j] = 0 + src[s + index[2 * j]] * weight[2 * j] + src[s + index[2 * j + 1]] * weight[2 * j + 1];
    }
    return;
  }
  for (let j = j0; j < j1; j++) {
    let acc = 0;
    for (let t = j * taps; t < (j + 1) * taps; t++) acc += src[s + index[t]] * weight[t];
    out[o + j] = acc;
  }
}

function axisFilter(n: number, out: number): AxisFilter {
  const scale = n / out;
  if (scale > AREA_ABOVE) {
    // Output pixel j covers source interval [j*scale, (j+1)*scale); each
    // source pixel weighs its overlap with it, as OpenCV's INTER_AREA.
    const taps = Math.ceil(scale) + 1;
    const index = new Int32Array(out * taps);
    const weight = new Float64Array(out * taps);
    for (let j = 0; j < out; j++) {
      const a = j * scale;
      const b = Math.min(n, (j + 1) * scale);
      let t = 0;
      let sum = 0;
      for (let i = Math.floor(a); i < b && t < taps; i++, t++) {
        const overlap = Math.min(b, i + 1) - Math.max(a, i);
        index[j * taps + t] = i;
        weight[j * taps + t] = overlap;
        sum += overlap;
      }
      // Normalise by the actual total so rounding in j*scale cannot tilt a
      // constant image.
      for (let k = j * taps; k < j * taps + t; k++) weight[k] /= sum;
    }
    return { taps, index, weight };
  }
  // Half-pixel centres (align_corners=false), clamped at the borders, the
  // convention of PyTorch's and ONNX Resize's default linear mode.
  const index = new Int32Array(out * 2);
  const weight = new Float64Array(out * 2);
  for (let j = 0; j < out; j++) {
    const s = Math.max(0, (j + 0.5) * scale - 0.5);
    const i0 = Math.min(Math.floor(s), n - 1);
    const i1 = Math.min(i0 + 1, n - 1);
    const l = i0 === n - 1 ? 0 : s - i0;
    index[2 * j] = i0;
    index[2 * j + 1] = i1;
    weight[2 * j] = 1 - l;
    weight[2 * j + 1] = l;
  }
  return { taps: 2, index, weight };
}

/**
 * Resize planar `(c, h, w)` float data to `(c, outH, outW)`. Each axis is
 * resampled bilinearly with half-pixel centres (align_corners=false), or,
 * when it shrinks by more than 2×, by area averaging so fine detail does not
 * alias. Constant images stay constant; monotone ramps stay monotone.
 *
 * @example
 * ```ts
 * import { resizeCHW } from "./resize.ts";
 * // Run a 64×64 single-channel tile at half scale:
 * const tile = new Float32Array(64 * 64);
 * const half = resizeCHW(tile, 1, 64, 64, 32, 32);
 * half.length; // 32 * 32
 * ```
 */
export function resizeCHW(
  src: Float32Array,
  c: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Float32Array {
  checkPlanar(src.length, c, h, w);
  checkInt("output height", outH);
  checkInt("output width", outW);
  if (outH === 0 || outW === 0) return new Float32Array(0);
  if (h === 0 || w === 0) throw new RangeError("cannot resize an empty image");
  if (outH === h && outW === w) return src.slice();

  // Horizontal pass into (c, h, outW), then vertical pass row by row.
  let wide = src;
  if (outW !== w) {
    const filter = axisFilter(w, outW);
    wide = new Float32Array(c * h * outW);
    for (let row = 0; row < c * h; row++) acrossRow(src, row * w, wide, row * outW, 0, outW, filter);
  }
  if (outH === h) return wide;

  const { taps, index, weight } = axisFilter(h, outH);
  const out = new Float32Array(c * outH * outW);
  const acc = new Float64Array(outW);
  for (let k = 0; k < c; k++) {
    const plane = k * h * outW;
    for (let i = 0; i < outH; i++) {
      if (taps === 2) {
        // Bilinear, spelled out as across (the same sums, in the same order).
        const a = plane + index[2 * i] * outW, b = plane + index[2 * i + 1] * outW, o = (k * outH + i) * outW;
        const wa = weight[2 * i], wb = weight[2 * i + 1];
        for (let j = 0; j < outW; j++) out[o + j] = 0 + wide[a + j] * wa + wide[b + j] * wb;
        continue;
      }
      acc.fill(0);
      for (let t = i * taps; t < (i + 1) * taps; t++) {
        const wt = weight[t];
        if (wt === 0) continue;
        const s = plane + index[t] * outW;
        for (let j = 0; j < outW; j++) acc[j] += wide[s + j] * wt;
      }
      out.set(acc, (k * outH + i) * outW);
    }
  }
  return out;
}

/**
 * One-channel rows `(h, w)` resampled across to `outW` as {@link resizeCHW}`(src, 1, h, w, h, outW)` resamples them,
 * bitwise, for data that is zero outside each row's span: row y holds values only in `[spans[2y], spans[2y + 1])`.
 * Only the outputs whose taps reach the span are computed; the rest are zero. Returns the outputs and each row's span
 * of them (`[out[2y], out[2y + 1])`, empty where the row is), outside which every output is zero. A squeezed cover's
 * map, written near ink only, is stretched back so: on a 2400×1350 page at half its price, the stretch and the count
 * of what it saw took 53 → 15 ms per request (CPU profile of `.scratch/budprof.ts`).
 *
 * @example
 * ```ts
 * import { stretchRows } from "./resize.ts";
 * const { data, spans } = stretchRows(new Float32Array([0, 1, 0, 0]), 1, 4, 8, new Int32Array([1, 2]));
 * spans; // Int32Array [0, 5]: outputs 0–4 may read the second input, the rest are zero
 * data.length; // 8
 * ```
 */
export function stretchRows(
  src: Float32Array,
  h: number,
  w: number,
  outW: number,
  spans: Int32Array,
): { data: Float32Array; spans: Int32Array } {
  checkPlanar(src.length, 1, h, w);
  checkInt("output width", outW);
  if (spans.length !== 2 * h) throw new RangeError(`${spans.length / 2} spans for ${h} rows`);
  const data = new Float32Array(h * outW), out = new Int32Array(2 * h);
  if (outW === 0) return { data, spans: out };
  if (w === 0) throw new RangeError("cannot resize an empty image");
  const filter = axisFilter(w, outW), { taps, index } = filter;
  // An output's taps read from its first tap's index on, at most `taps` px (unused taps: index 0, weight 0), and the
  // first taps' indices never fall with the output's: the first output whose taps may reach x0 and the first whose
  // taps all lie at or past x1.
  const firstAt = (x: number) => {
    let lo = 0, hi = outW;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (index[mid * taps] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  for (let y = 0; y < h; y++) {
    const x0 = Math.max(0, spans[2 * y]), x1 = Math.min(w, spans[2 * y + 1]);
    if (x1 <= x0) continue;
    const j0 = firstAt(x0 - taps + 1), j1 = firstAt(x1);
    out[2 * y] = j0;
    out[2 * y + 1] = j1;
    acrossRow(src, y * w, data, y * outW, j0, j1, filter);
  }
  return { data, spans: out };
}

/**
 * `image` squeezed across to `outW` px, its height kept: each row resampled as {@link resizeCHW} resamples an axis
 * (bilinear, area averaging past 2×), every RGBA channel alike, rounded to bytes. A run of one colour stays that colour.
 * The pixels are in a SharedArrayBuffer when `shared` (workers read them without a copy).
 *
 * @example
 * ```ts
 * import { squeezeWidth } from "./resize.ts";
 * const image = { width: 4, height: 1, data: new Uint8Array([0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255]) };
 * squeezeWidth(image, 2).data; // [0, 0, 0, 255, 255, 255, 255, 255]
 * ```
 */
export function squeezeWidth(image: RgbaImage, outW: number, shared = false): RgbaImage {
  const { width, height, data } = image;
  checkInt("output width", outW);
  if (outW < 1 || outW > width) throw new RangeError(`cannot squeeze ${width} px across to ${outW}`);
  const out = new Uint8Array(shared ? new SharedArrayBuffer(4 * outW * height) : new ArrayBuffer(4 * outW * height));
  const { taps, index, weight } = axisFilter(width, outW);
  // Where the taps read one pixel word (blank page, most of a screenshot), that word: the bytes the weighted sum rounds
  // to. Bilinear (two taps, what a squeeze by up to 2× is) reads words, not bytes. The test pages of 1170×2532
  // squeezed to 0.7: 50–72 ms tap by tap and byte by byte, 13–19 ms so (same bytes; `.scratch/sqvariants.ts`).
  const bytes = data.byteOffset % 4 === 0 ? data : data.slice();
  const src = new Uint32Array(bytes.buffer, bytes.byteOffset, width * height), dst = new Uint32Array(out.buffer);
  for (let y = 0; y < height; y++) {
    const s = y * width, o = y * outW;
    if (taps === 2) {
      for (let j = 0; j < outW; j++) {
        const a = src[s + index[2 * j]], b = src[s + index[2 * j + 1]], wa = weight[2 * j], wb = weight[2 * j + 1];
        if (a === b || wb === 0) {
          dst[o + j] = a;
          continue;
        }
        let word = 0;
        for (let shift = 0; shift < 32; shift += 8) {
          word |= Math.round(((a >>> shift) & 255) * wa + ((b >>> shift) & 255) * wb) << shift;
        }
        dst[o + j] = word >>> 0;
      }
      continue;
    }
    for (let j = 0; j < outW; j++) {
      const t0 = j * taps;
      for (let k = 0; k < 4; k++) {
        let acc = 0;
        for (let t = t0; t < t0 + taps; t++) acc += bytes[4 * (s + index[t]) + k] * weight[t];
        out[4 * (o + j) + k] = Math.round(acc);
      }
    }
  }
  return { width: outW, height, data: out };
}

/**
 * Resize an 8-bit class mask `(h, w)` to `(outH, outW)` by nearest
 * neighbour with half-pixel centres (source = floor((j + 0.5) · n / out)),
 * so values stay valid class indices and integer upscales replicate each
 * pixel exactly.
 *
 * @example
 * ```ts
 * import { resizeMaskNearest } from "./resize.ts";
 * const small = new Uint8Array([0, 1, 2, 1]); // 2×2
 * resizeMaskNearest(small, 2, 2, 4, 4); // each class becomes a 2×2 block
 * ```
 */
export function resizeMaskNearest(
  mask: Uint8Array,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Uint8Array {
  checkPlanar(mask.length, 1, h, w);
  checkInt("output height", outH);
  checkInt("output width", outW);
  const out = new Uint8Array(outH * outW);
  if (out.length === 0) return out;
  if (h === 0 || w === 0) throw new RangeError("cannot resize an empty mask");
  // Integer arithmetic keeps the mapping exact for any sizes.
  const near = (j: number, n: number, m: number) => Math.min(n - 1, Math.floor(((2 * j + 1) * n) / (2 * m)));
  const cols = Int32Array.from({ length: outW }, (_, j) => near(j, w, outW));
  let previous = -1;
  for (let i = 0; i < outH; i++) {
    const r = near(i, h, outH);
    const o = i * outW;
    if (r === previous) {
      // Upscaling repeats source rows; copy the finished row instead.
      out.copyWithin(o, o - outW, o);
      continue;
    }
    const s = r * w;
    for (let j = 0; j < outW; j++) out[o + j] = mask[s + cols[j]];
    previous = r;
  }
  return out;
}
