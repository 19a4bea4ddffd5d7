// The probability map of the zoo planners: softmax of every model output written so far, per pixel, over the whole
// image — what glimpse's confidence, the policy's features and the final argmax mask are read from.

/**
 * Class probabilities of the whole image, [C, H, W], kept up to date as tiles are refined.
 *
 * @example
 * ```ts
 * import { ProbMap } from "./probmap.ts";
 * const probs = new ProbMap(2, 1, 2);
 * probs.write(new Float32Array([0, 0, 5, -5]), 1, 2, 0, 0, 0, 0, 2, 1); // logits [C=2, 1, 2]
 * probs.argmax(); // Uint8Array [1, 0]
 * ```
 */
export class ProbMap {
  /** Time spent in {@link write}, ms. */
  writeMs = 0;
  readonly data: Float32Array;
  constructor(readonly c: number, readonly h: number, readonly w: number) {
    this.data = new Float32Array(c * h * w);
  }

  /**
   * Writes softmax(logits) for a region: `out` is one item [C, oh, ow] of a model output whose pixel (0, 0) sits at
   * image pixel (ox, oy); only the image region (x, y, w, h) is written.
   */
  write(out: Float32Array, oh: number, ow: number, ox: number, oy: number, x: number, y: number, w: number, h: number) {
    const t0 = performance.now();
    const { c, data } = this;
    const plane = this.h * this.w, oplane = oh * ow;
    const e = new Float64Array(c);
    for (let yy = y; yy < y + h; yy++) {
      const orow = (yy - oy) * ow - ox, row = yy * this.w;
      for (let xx = x; xx < x + w; xx++) {
        const o = orow + xx;
        let max = -Infinity;
        for (let k = 0; k < c; k++) if (out[k * oplane + o] > max) max = out[k * oplane + o];
        let sum = 0;
        for (let k = 0; k < c; k++) sum += e[k] = Math.exp(out[k * oplane + o] - max);
        const p = row + xx;
        for (let k = 0; k < c; k++) data[k * plane + p] = e[k] / sum;
      }
    }
    this.writeMs += performance.now() - t0;
  }

  /** Mean over the region of the per-pixel max probability. */
  confidence(x = 0, y = 0, w = this.w, h = this.h): number {
    const { c, data } = this;
    const plane = this.h * this.w;
    let s = 0;
    for (let yy = y; yy < y + h; yy++) {
      for (let xx = x; xx < x + w; xx++) {
        const p = yy * this.w + xx;
        let m = 0;
        for (let k = 0; k < c; k++) m = Math.max(m, data[k * plane + p]);
        s += m;
      }
    }
    return s / (w * h);
  }

  /** Per-pixel argmax. */
  argmax(): Uint8Array {
    const { c, data } = this;
    const plane = this.h * this.w;
    const mask = new Uint8Array(plane);
    for (let p = 0; p < plane; p++) {
      let best = 0, v = data[p];
      for (let k = 1; k < c; k++) {
        if (data[k * plane + p] > v) {
          v = data[k * plane + p];
          best = k;
        }
      }
      mask[p] = best;
    }
    return mask;
  }

  /** PaSeR's policy input, [2, H', W'] zero-padded to (ph, pw): argmax / (C−1) and entropy / ln C. */
  features(ph: number, pw: number): Float32Array {
    const { c, data, h, w } = this;
    const plane = h * w;
    const out = new Float32Array(2 * ph * pw);
    const lnC = Math.log(c);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = y * w + x;
        let best = 0, v = data[p], ent = 0;
        for (let k = 0; k < c; k++) {
          const q = data[k * plane + p];
          if (q > v) {
            v = q;
            best = k;
          }
          if (q > 0) ent -= q * Math.log(q);
        }
        out[y * pw + x] = best / (c - 1);
        out[ph * pw + y * pw + x] = ent / lnC;
      }
    }
    return out;
  }
}
