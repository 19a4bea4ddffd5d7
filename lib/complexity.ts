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
