// Training-free complexity scores for image regions (after DANCE): how much
// detail a region would lose if it were processed at half resolution.

/** Complexity of one rectangle of a grey image. */
export interface RegionComplexity {
  /** Standard deviation of the grey values (0 = perfectly flat). */
  std: number;
  /**
   * Mean absolute difference between each pixel and the mean of its 2×2
   * block: the detail a 2× downsample throws away. Grey values are in [0,1].
   */
  detail: number;
}

/**
 * Scores the rectangle (x, y, w, h) of a w×h-clipped grey image in one pass.
 *
 * @example
 * ```ts
 * const c = regionComplexity(grey, 640, 480, 0, 0, 320, 240);
 * if (c.detail < 0.01) console.log("half resolution is enough");
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
  let sum = 0, sumSq = 0, n = 0, detail = 0, blocks = 0;
  for (let yy = y; yy < y1; yy += 2) {
    const r0 = yy * width;
    const r1 = (yy + 1 < y1 ? yy + 1 : yy) * width;
    for (let xx = x; xx < x1; xx += 2) {
      const xb = xx + 1 < x1 ? xx + 1 : xx;
      const a = grey[r0 + xx], b = grey[r0 + xb], c = grey[r1 + xx], d = grey[r1 + xb];
      const m = (a + b + c + d) * 0.25;
      detail += Math.abs(a - m) + Math.abs(b - m) + Math.abs(c - m) + Math.abs(d - m);
      blocks++;
      sum += a + b + c + d;
      sumSq += a * a + b * b + c * c + d * d;
      n += 4;
    }
  }
  if (n === 0) return { std: 0, detail: 0 };
  const mean = sum / n;
  return {
    std: Math.sqrt(Math.max(0, sumSq / n - mean * mean)),
    detail: detail / (blocks * 4),
  };
}
