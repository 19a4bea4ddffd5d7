// The probability map of the zoo planners: per pixel of the whole image, what the softmax of the model output written
// there last says — its most probable class, that class's probability and the distribution's entropy. Glimpse's
// confidence, the policy's and the ranker's features and the final argmax mask are read from these three planes.

import type { PlanesModelInput } from "../exec/mod.ts";
import { summariseScores } from "../image/mod.ts";

/**
 * Per-pixel summaries of the class probabilities of the whole image, kept up to date as tiles are refined.
 *
 * @example
 * ```ts
 * import { ProbMap } from "./probmap.ts";
 * const probs = new ProbMap(2, 1, 2);
 * probs.write(new Float32Array([0, 0, 5, -5]), 1, 2, 0, 0, 0, 0, 2, 1); // logits [C=2, 1, 2]
 * probs.argmax(); // Uint8Array [1, 0]
 * ```
 */
/** Pixels of per-pixel work between two turns of the event loop (about 30 ms of softmax over 11 classes). */
const BAND_PIXELS = 1 << 16;

/** Lets the event loop run (HTTP, /healthz) between bands of per-pixel work on a large image. */
const yieldToLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class ProbMap {
  /** Time spent in {@link write}, ms. */
  writeMs = 0;
  /** Per pixel: the largest class probability. */
  readonly top: Float32Array;
  /** Per pixel: the most probable class (the first on a tie). */
  readonly best: Uint8Array;
  /** Per pixel: the entropy of the class distribution / ln C (0 sure … 1 uniform). */
  readonly entropy: Float32Array;

  // The per-pixel summaries are kept as tiles are written (one logarithm per pixel, from the logits) rather than
  // derived from the probabilities when read (C logarithms per pixel, per read): on a large image the policy's
  // features and the ranker's were the main thread's longest tasks (a CPU profile of `deno task soak`'s inputs).
  // The probabilities themselves are not kept: nothing reads them, and C floats per pixel of fresh memory cost the
  // main thread page faults (a 1 MP image with 11 classes: 44 MB) and the process that much memory.
  constructor(readonly c: number, readonly h: number, readonly w: number) {
    this.top = new Float32Array(h * w);
    this.best = new Uint8Array(h * w);
    this.entropy = new Float32Array(h * w);
  }

  /**
   * Writes a region: `out` is one item of a model output whose pixel (0, 0) sits at image pixel (ox, oy), either its
   * logits [C, oh, ow] or (`summarised`) their summary [3, oh, ow] as an inference worker made it (top, best,
   * entropy: lib/image `summariseScores`, the same definition as here); only the image region (x, y, w, h) is written.
   */
  write(
    out: Float32Array,
    oh: number,
    ow: number,
    ox: number,
    oy: number,
    x: number,
    y: number,
    w: number,
    h: number,
    summarised = false,
  ) {
    const t0 = performance.now();
    const oplane = oh * ow;
    for (let yy = y; yy < y + h; yy++) {
      const o = (yy - oy) * ow + x - ox, p = yy * this.w + x;
      if (summarised) {
        this.top.set(out.subarray(o, o + w), p);
        this.best.set(out.subarray(oplane + o, oplane + o + w), p);
        this.entropy.set(out.subarray(2 * oplane + o, 2 * oplane + o + w), p);
      } else {
        summariseScores(out, this.c, oplane, o, w, this, p);
      }
    }
    this.writeMs += performance.now() - t0;
  }

  /**
   * {@link write} in bands of rows with the event loop running in between: a large image's softmax takes the main
   * thread for hundreds of ms in one go otherwise (measured: ~0.5 s per MP with 11 classes).
   */
  async writeBanded(
    out: Float32Array,
    oh: number,
    ow: number,
    ox: number,
    oy: number,
    x: number,
    y: number,
    w: number,
    h: number,
    summarised = false,
  ): Promise<void> {
    const rows = Math.max(1, Math.floor(BAND_PIXELS / Math.max(1, w)));
    for (let yy = y; yy < y + h; yy += rows) {
      this.write(out, oh, ow, ox, oy, x, yy, w, Math.min(rows, y + h - yy), summarised);
      if (yy + rows < y + h) await yieldToLoop();
    }
  }

  /** Mean over the region of the per-pixel max probability. */
  confidence(x = 0, y = 0, w = this.w, h = this.h): number {
    const { top } = this;
    let s = 0;
    for (let yy = y; yy < y + h; yy++) {
      for (let p = yy * this.w + x, end = p + w; p < end; p++) s += top[p];
    }
    return s / (w * h);
  }

  /** Per-pixel argmax. */
  argmax(): Uint8Array {
    return this.best.slice();
  }

  /**
   * PaSeR's policy input as planes for a worker to pad into [1, 2, H', W'] (lib/image `planesTensor`): argmax / (C−1)
   * and entropy / ln C, copies of this map's own.
   */
  policyPlanes(): PlanesModelInput {
    return {
      kind: "planes",
      planes: [{ data: this.best.slice(), scale: 1 / (this.c - 1) }, { data: this.entropy.slice(), scale: 1 }],
      h: this.h,
      w: this.w,
    };
  }
}
