// The probability map of the zoo planners: per pixel of the whole image, what the softmax of the model output written
// there last says — its most probable class, that class's probability and the distribution's entropy. Glimpse's
// confidence, the policy's and the ranker's features and the final argmax mask are read from these three planes.

import type { PlanesModelInput, WindowOutput } from "../exec/mod.ts";
import type { Box } from "./geometry.ts";
import { summariseScores } from "../image/mod.ts";

/**
 * Per-pixel summaries of the class probabilities of the whole image, kept up to date as tiles are refined.
 *
 * @example
 * ```ts
 * import { ProbMap } from "./probmap.ts";
 * const probs = new ProbMap(2, 1, 2);
 * const window = { x: 0, y: 0, w: 2, h: 1 };
 * probs.write({ window, c: 2, data: new Float32Array([0, 0, 5, -5]) }, window); // logits [C=2, 1, 2]
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
  #classOnly = false;
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
   * Writes the image region `core` from one window output (lib/exec `WindowOutput`): its class scores [C, win.h,
   * win.w], or, when `summarised`, their summary as an inference worker made it (lib/image `summariseBatch`, the same
   * definition as here). A "class" summary updates the class alone: after it, the map's top probability and entropy
   * no longer describe the image, and reading them (confidence, the policy's planes) throws.
   */
  write(out: WindowOutput, core: Box) {
    const t0 = performance.now();
    const { window: win, data, summarised } = out;
    const plane = win.w * win.h, { x, w } = core;
    if (summarised === "class") this.#classOnly = true;
    for (let y = core.y; y < core.y + core.h; y++) {
      const o = (y - win.y) * win.w + x - win.x, p = y * this.w + x;
      if (summarised === "class") {
        this.best.set(data.subarray(o, o + w), p);
      } else if (summarised === "all") {
        this.top.set(data.subarray(o, o + w), p);
        this.best.set(data.subarray(plane + o, plane + o + w), p);
        this.entropy.set(data.subarray(2 * plane + o, 2 * plane + o + w), p);
      } else {
        summariseScores(data, this.c, plane, o, w, this, p);
      }
    }
    this.writeMs += performance.now() - t0;
  }

  /**
   * {@link write} in bands of rows with the event loop running in between: a large image's softmax takes the main
   * thread for hundreds of ms in one go otherwise (measured: ~0.5 s per MP with 11 classes).
   */
  async writeBanded(out: WindowOutput, core: Box): Promise<void> {
    const rows = Math.max(1, Math.floor(BAND_PIXELS / Math.max(1, core.w)));
    const end = core.y + core.h;
    for (let y = core.y; y < end; y += rows) {
      this.write(out, { ...core, y, h: Math.min(rows, end - y) });
      if (y + rows < end) await yieldToLoop();
    }
  }

  /** Mean over the region of the per-pixel max probability. */
  confidence(x = 0, y = 0, w = this.w, h = this.h): number {
    this.#current();
    const { top } = this;
    let s = 0;
    for (let yy = y; yy < y + h; yy++) {
      for (let p = yy * this.w + x, end = p + w; p < end; p++) s += top[p];
    }
    return s / (w * h);
  }

  #current(): void {
    if (this.#classOnly) {
      throw new Error('ProbMap: a class-only write left top and entropy stale; write "all" summaries');
    }
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
    this.#current();
    return {
      kind: "planes",
      planes: [{ data: this.best.slice(), scale: 1 / (this.c - 1) }, { data: this.entropy.slice(), scale: 1 }],
      h: this.h,
      w: this.w,
    };
  }
}
