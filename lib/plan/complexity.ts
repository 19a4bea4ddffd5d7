// Training-free complexity scores for image regions (after DANCE): how much
// of a region's detail would be lost if it were processed at half resolution.

/** Complexity of one rectangle of a grey image. */
export interface RegionComplexity {
  /** Standard deviation of the grey values (0 = perfectly flat). */
  std: number;
  /**
   * Mean absolute difference between each pixel and the mean of its 2×2
   * block: the detail a 2× downsample throws away (grey values in [0,1]).
   */
  fine: number;
  /** The same measure one octave down (2×2 blocks of 2×2 means). */
  coarse: number;
  /**
   * fine / coarse: near or above 1 when most detail lives at the finest
   * scale (small text, thin lines), well below 1 when structures are large
   * enough to survive a 2× downsample. 0 for flat regions.
   */
  fineShare: number;
}

/**
 * Scores the rectangle (x, y, w, h) of a width×height grey image.
 *
 * @example
 * ```ts
 * import { regionComplexity } from "./complexity.ts";
 * const grey = new Float32Array(640 * 480);
 * const c = regionComplexity(grey, 640, 480, 0, 0, 320, 240);
 * if (c.fineShare < 0.5) console.log("half resolution is enough");
 * ```
 */
export function regionComplexity(
  grey: Float32Array,
  width: number,
  height: number,
  x: number,
  y: number,
  w: number,
  h: number,
): RegionComplexity {
  const x1 = Math.min(width, x + w), y1 = Math.min(height, y + h);
  const bw = Math.ceil((x1 - x) / 2), bh = Math.ceil((y1 - y) / 2);
  if (bw <= 0 || bh <= 0) return { std: 0, fine: 0, coarse: 0, fineShare: 0 };
  const means = new Float32Array(bw * bh);
  let sum = 0, sumSq = 0, n = 0, fine = 0;
  for (let by = 0; by < bh; by++) {
    const yy = y + 2 * by;
    const r0 = yy * width, r1 = (yy + 1 < y1 ? yy + 1 : yy) * width;
    for (let bx = 0; bx < bw; bx++) {
      const xx = x + 2 * bx, xb = xx + 1 < x1 ? xx + 1 : xx;
      const a = grey[r0 + xx], b = grey[r0 + xb], c = grey[r1 + xx], d = grey[r1 + xb];
      const m = (a + b + c + d) * 0.25;
      means[by * bw + bx] = m;
      fine += Math.abs(a - m) + Math.abs(b - m) + Math.abs(c - m) + Math.abs(d - m);
      sum += a + b + c + d;
      sumSq += a * a + b * b + c * c + d * d;
      n += 4;
    }
  }
  fine /= n;
  let coarse = 0;
  for (let by = 0; by < bh; by += 2) {
    const r0 = by * bw, r1 = (by + 1 < bh ? by + 1 : by) * bw;
    for (let bx = 0; bx < bw; bx += 2) {
      const xb = bx + 1 < bw ? bx + 1 : bx;
      const a = means[r0 + bx], b = means[r0 + xb], c = means[r1 + bx], d = means[r1 + xb];
      const m = (a + b + c + d) * 0.25;
      coarse += Math.abs(a - m) + Math.abs(b - m) + Math.abs(c - m) + Math.abs(d - m);
    }
  }
  coarse /= Math.ceil(bh / 2) * Math.ceil(bw / 2) * 4;
  const mean = sum / n;
  return {
    std: Math.sqrt(Math.max(0, sumSq / n - mean * mean)),
    fine,
    coarse,
    // The small constant keeps pure 1-px patterns (coarse = 0) finite and flat regions at 0.
    fineShare: fine / (coarse + 1e-4),
  };
}

/**
 * Edge energy of a tile after 4×4 block averaging (so pixel noise does not count as detail): the mean absolute
 * difference between neighbouring blocks. The zoo tasks' complexity selector ranks tiles by it.
 *
 * @example
 * ```ts
 * import { tileEdgeEnergy } from "./complexity.ts";
 * const grey = new Float32Array(64 * 64).map((_v, i) => (i % 64 < 32 ? 0 : 1)); // one vertical edge
 * tileEdgeEnergy(grey, 64, 64, { x: 0, y: 0, w: 64, h: 64 }) > 0; // true
 * ```
 */
export function tileEdgeEnergy(
  grey: Float32Array,
  width: number,
  height: number,
  t: { x: number; y: number; w: number; h: number },
): number {
  const b = 4;
  const bw = Math.max(1, Math.floor(t.w / b)), bh = Math.max(1, Math.floor(t.h / b));
  const blocks = new Float32Array(bw * bh);
  for (let by = 0; by < bh; by++) {
    for (let bx = 0; bx < bw; bx++) {
      let s = 0, n = 0;
      for (let y = t.y + by * b; y < Math.min(t.y + (by + 1) * b, height); y++) {
        for (let x = t.x + bx * b; x < Math.min(t.x + (bx + 1) * b, width); x++) {
          s += grey[y * width + x];
          n++;
        }
      }
      blocks[by * bw + bx] = n ? s / n : 0;
    }
  }
  let e = 0, n = 0;
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      const v = blocks[y * bw + x];
      if (x + 1 < bw) e += Math.abs(blocks[y * bw + x + 1] - v), n++;
      if (y + 1 < bh) e += Math.abs(blocks[(y + 1) * bw + x] - v), n++;
    }
  }
  return n ? e / n : 0;
}
