// Pixels to model input: luma and planar CHW float tensors from RGBA, and
// windows cut out of CHW tensors with padding for halo tiles.

import { checkInt, checkPlanar } from "./_shape.ts";
import type { PadMode, RgbaImage } from "./types.ts";
import { resizeCHW } from "./resize.ts";

// ITU-R BT.601 luma weights; the blue weight is derived so the three sum to
// exactly 1 and grey pixels map to exactly v/255.
/** BT.601 luma weights (red, green, blue): the one definition every grey conversion uses. */
export const LUMA = { r: 0.299, g: 0.587, b: 1 - 0.299 - 0.587 } as const;
const WR = LUMA.r, WG = LUMA.g, WB = LUMA.b;

function checkImage(img: RgbaImage): number {
  checkInt("width", img.width);
  checkInt("height", img.height);
  const n = img.width * img.height;
  if (img.data.length !== n * 4) {
    throw new RangeError(
      `RGBA data has ${img.data.length} bytes, expected ${img.width}x` +
        `${img.height}x4 = ${n * 4}`,
    );
  }
  return n;
}

function checkBackground(background: number): void {
  if (!(background >= 0 && background <= 255)) {
    throw new RangeError(`background must be in [0, 255], got ${background}`);
  }
}

/**
 * Grey (luma, BT.601: 0.299 R + 0.587 G + 0.114 B) in [0, 1], one float per
 * pixel, row-major.
 *
 * Alpha is composited over `background` (default 0, black): the trained
 * tasks' backgrounds are dark, and "transparent = 0" is what most encoders
 * store in fully transparent pixels anyway. Pass 255 for dark-on-light
 * content such as documents with a transparent page.
 *
 * @example
 * ```ts
 * import { toGrey } from "./tensor.ts";
 * const img = { width: 1, height: 1, data: new Uint8Array([255, 0, 0, 255]) };
 * toGrey(img); // Float32Array [0.299…]
 * ```
 */
export function toGrey(img: RgbaImage, background = 0): Float32Array {
  const n = checkImage(img);
  checkBackground(background);
  const data = img.data;
  const out = new Float32Array(n);
  for (let i = 0, o = 0; i < n; i++, o += 4) {
    let y = WR * data[o] + WG * data[o + 1] + WB * data[o + 2];
    const a = data[o + 3];
    // Luma is linear, so compositing the luma equals luma of the composite.
    if (a !== 255) y = (y * a + background * (255 - a)) / 255;
    out[i] = y / 255;
  }
  return out;
}

/**
 * Planar float32 CHW tensor data (one image, no batch axis) for a
 * `channels`-channel model.
 *
 * - `channels = 1`: luma in [0, 1] as `toGrey`.
 * - `channels = 3`: R, G, B planes; grey uploads replicate naturally since
 *   R = G = B.
 *
 * Each value is `(x / 255 - mean[c]) / std[c]` (defaults mean 0, std 1, so
 * plain [0, 1]). Alpha is composited over `background` as in `toGrey`.
 *
 * @example
 * ```ts
 * import { toCHW } from "./tensor.ts";
 * const img = { width: 2, height: 1, data: new Uint8Array(8).fill(255) };
 * const x = toCHW(img, 3, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
 * x.length; // 3 * 1 * 2
 * ```
 */
export function toCHW(
  img: RgbaImage,
  channels: 1 | 3,
  norm?: { mean: number[]; std: number[] },
  background = 0,
): Float32Array {
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`channels must be 1 or 3, got ${channels}`);
  }
  const mean = norm?.mean ?? new Array(channels).fill(0);
  const std = norm?.std ?? new Array(channels).fill(1);
  for (let c = 0; c < channels; c++) {
    if (!Number.isFinite(mean[c]) || !Number.isFinite(std[c]) || std[c] === 0) {
      throw new RangeError(
        `norm needs ${channels} finite means and non-zero stds`,
      );
    }
  }
  if (channels === 1) {
    const grey = toGrey(img, background);
    if (mean[0] !== 0 || std[0] !== 1) {
      for (let i = 0; i < grey.length; i++) {
        grey[i] = (grey[i] - mean[0]) / std[0];
      }
    }
    return grey;
  }
  const n = checkImage(img);
  checkBackground(background);
  // Opaque pixels (nearly all of them) go through a per-channel lookup
  // table; this keeps the hot loop free of divisions.
  const luts = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - mean[c]) / std[c]));
  const data = img.data;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const lut = luts[c];
    const plane = c * n;
    for (let i = 0, o = c; i < n; i++, o += 4) {
      const a = data[o - c + 3];
      if (a === 255) {
        out[plane + i] = lut[data[o]];
      } else {
        const v = (data[o] * a + background * (255 - a)) / 255;
        out[plane + i] = (v / 255 - mean[c]) / std[c];
      }
    }
  }
  return out;
}

// Source index for output coordinate `i` on an axis of length `n`, or -1
// where zero padding applies.
function sourceIndex(i: number, n: number, pad: PadMode): number {
  if (i >= 0 && i < n) return i;
  if (pad === "zero") return -1;
  if (pad === "edge" || n === 1) return i < 0 ? 0 : n - 1;
  // Reflection is periodic with period 2(n-1), so halos wider than the
  // image still land inside it.
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/**
 * Crop the window `[x, y, cw, ch]` (left, top, width, height; may extend
 * past any edge, coordinates may be negative) out of planar `(c, h, w)`
 * float data into a new `(c, ch, cw)` buffer. Pixels outside the image are
 * filled per `pad`: `zero`, `reflect` (mirror without repeating the edge,
 * like PyTorch's ReflectionPad2d) or `edge` (repeat the border pixel).
 *
 * @example
 * ```ts
 * import { cropCHW } from "./tensor.ts";
 * // A 64×64 tile at (0, 0) with a 16-pixel halo of mirrored neighbours:
 * const image = new Float32Array(1 * 256 * 256);
 * const tile = cropCHW(image, 1, 256, 256, -16, -16, 96, 96, "reflect");
 * tile.length; // 96 * 96
 * ```
 */
export function cropCHW(
  src: Float32Array,
  c: number,
  h: number,
  w: number,
  x: number,
  y: number,
  cw: number,
  ch: number,
  pad: PadMode = "zero",
): Float32Array {
  checkPlanar(src.length, c, h, w);
  checkInt("x", x, -Infinity);
  checkInt("y", y, -Infinity);
  checkInt("crop width", cw);
  checkInt("crop height", ch);
  if (pad !== "zero" && pad !== "reflect" && pad !== "edge") {
    throw new RangeError(`unknown pad mode ${pad}`);
  }
  const out = new Float32Array(c * ch * cw);
  if (out.length === 0) return out;
  if (h === 0 || w === 0) {
    if (pad !== "zero") {
      throw new RangeError(`cannot ${pad}-pad an empty image`);
    }
    return out;
  }
  const cols = Int32Array.from({ length: cw }, (_, j) => sourceIndex(x + j, w, pad));
  const rows = Int32Array.from({ length: ch }, (_, i) => sourceIndex(y + i, h, pad));
  // Columns that map 1:1 onto the image are one contiguous copy per row.
  const inFrom = Math.min(cw, Math.max(0, -x));
  const inTo = Math.max(inFrom, Math.min(cw, w - x));
  for (let k = 0; k < c; k++) {
    const srcPlane = k * h * w;
    const outPlane = k * ch * cw;
    for (let i = 0; i < ch; i++) {
      if (rows[i] < 0) continue;
      const srcRow = srcPlane + rows[i] * w;
      const outRow = outPlane + i * cw;
      if (inTo > inFrom) {
        out.set(
          src.subarray(srcRow + x + inFrom, srcRow + x + inTo),
          outRow + inFrom,
        );
      }
      for (let j = 0; j < inFrom; j++) {
        if (cols[j] >= 0) out[outRow + j] = src[srcRow + cols[j]];
      }
      for (let j = inTo; j < cw; j++) {
        if (cols[j] >= 0) out[outRow + j] = src[srcRow + cols[j]];
      }
    }
  }
  return out;
}

/**
 * Per-pixel summaries of class scores: the most probable class, its softmax probability, the entropy / ln C. Without
 * `top` and `entropy`, the class alone (no exp, no logarithm: what a plan's last write needs for the mask).
 */
export interface ScoreSummary {
  top?: Float32Array;
  best: Uint8Array | Float32Array;
  entropy?: Float32Array;
}

/**
 * Summarises `n` consecutive pixels of [C, plane] logits, from pixel `o` of each plane, into `dst` from index `p`:
 * softmax's largest probability, its class (the first on a tie) and the distribution's entropy / ln C (0 sure … 1
 * uniform). One exp per class but the top one, and one logarithm, per pixel. The zoo planners' probability map and
 * the inference workers use this one definition, so a summary made in a worker equals the one made on the main thread.
 *
 * @example
 * ```ts
 * import { summariseScores } from "./tensor.ts";
 * const dst = { top: new Float32Array(1), best: new Uint8Array(1), entropy: new Float32Array(1) };
 * summariseScores(new Float32Array([0, 2]), 2, 1, 0, 1, dst, 0); // dst.best [1], dst.top [0.88…]
 * ```
 */
export function summariseScores(
  logits: Float32Array,
  c: number,
  plane: number,
  o: number,
  n: number,
  dst: ScoreSummary,
  p: number,
): void {
  const { top, best, entropy } = dst;
  const lnC = Math.log(c);
  // Two and three classes (every zoo task so far) unrolled: the same operations in the same order as the general loop
  // below, so the same values, in 0.6–0.75× its time (f0's scores of a 256² digits / 224×256 micrograph scene: 1.7 vs
  // 2.3 ms, 2.1 vs 3.3 ms; `deno bench -A bench/image_bench.ts` times these paths). Most of a zoo glance's time outside
  // its model is this summary.
  if (c === 2) {
    for (let i = 0; i < n; i++, o++, p++) {
      const a = logits[o], b = logits[plane + o], arg = b > a ? 1 : 0;
      best[p] = arg;
      if (!top || !entropy) continue;
      const z = arg ? a - b : b - a, e = Math.exp(z), sum = 1 + e;
      top[p] = 1 / sum;
      entropy[p] = Math.max(0, Math.log(sum) - e * z / sum) / lnC;
    }
    return;
  }
  if (c === 3) {
    for (let i = 0; i < n; i++, o++, p++) {
      const a = logits[o], b = logits[plane + o], d = logits[2 * plane + o];
      // max and its class; x, y the other two logits in class order.
      let max = a, arg = 0, x = b, y = d;
      if (b > max) (max = b, arg = 1, x = a);
      if (d > max) (max = d, arg = 2, x = a, y = b);
      best[p] = arg;
      if (!top || !entropy) continue;
      const zx = x - max, zy = y - max, ex = Math.exp(zx), ey = Math.exp(zy), sum = 1 + ex + ey;
      top[p] = 1 / sum;
      entropy[p] = Math.max(0, Math.log(sum) - (ex * zx + ey * zy) / sum) / lnC;
    }
    return;
  }
  for (let i = 0; i < n; i++, o++, p++) {
    let max = -Infinity, arg = 0;
    for (let k = 0; k < c; k++) {
      if (logits[k * plane + o] > max) {
        max = logits[k * plane + o];
        arg = k;
      }
    }
    best[p] = arg;
    if (!top || !entropy) continue;
    // The largest logit's term is e⁰ = 1 (and 1 · 0 in Σ e z): one exp fewer per pixel.
    let sum = 1, ez = 0;
    for (let k = 0; k < c; k++) {
      if (k === arg) continue;
      const z = logits[k * plane + o] - max, ek = Math.exp(z);
      sum += ek;
      ez += ek * z;
    }
    top[p] = 1 / sum;
    // −Σ q ln q with q = e/sum and ln e = z: ln sum − Σ e z / sum.
    entropy[p] = Math.max(0, Math.log(sum) - ez / sum) / lnC;
  }
}

/** What a summary keeps per pixel: top probability, class and entropy, or the class alone. */
export type SummaryKind = "all" | "class";

/**
 * The per-pixel summary of a batch of class scores [N, C, oh, ow] at the windows' size h×w (scores at another size
 * are resized bilinearly first): [N, 3, h, w] (top, class, entropy) for "all", [N, 1, h, w] for "class". What an
 * inference worker returns for a window call with `summary`.
 *
 * @example
 * ```ts
 * import { summariseBatch } from "./tensor.ts";
 * summariseBatch({ dims: [1, 2, 1, 1], data: new Float32Array([0, 2]) }, 1, 1, "class").data; // Float32Array [1]
 * ```
 */
export function summariseBatch(
  scores: { dims: number[]; data: Float32Array },
  h: number,
  w: number,
  kind: SummaryKind,
): { dims: number[]; data: Float32Array } {
  const [n, c, oh, ow] = scores.dims;
  const item = c * oh * ow, plane = h * w, k = kind === "all" ? 3 : 1;
  const data = new Float32Array(n * k * plane);
  for (let b = 0; b < n; b++) {
    let one = scores.data.subarray(b * item, (b + 1) * item);
    if (oh !== h || ow !== w) one = resizeCHW(one, c, oh, ow, h, w);
    const at = (j: number) => data.subarray((k * b + j) * plane, (k * b + j + 1) * plane);
    const dst = kind === "all" ? { top: at(0), best: at(1), entropy: at(2) } : { best: at(0) };
    summariseScores(one, c, plane, 0, plane, dst, 0);
  }
  return { dims: [n, k, h, w], data };
}
