// The mask canvas of the planners that write model outputs straight into the class mask (fixed, the scale selector,
// glance → focus): each window's core is thresholded (one-channel probability outputs) or argmaxed (class scores).

import type { WindowOutput } from "../exec/mod.ts";
import type { Box } from "./geometry.ts";

/**
 * A class mask being stitched from window outputs.
 *
 * @example
 * ```ts
 * import { MaskCanvas } from "./canvas.ts";
 * const canvas = new MaskCanvas(2, 1, 0.5);
 * const window = { x: 0, y: 0, w: 2, h: 1 };
 * canvas.write({ window, c: 1, data: new Float32Array([0.9, 0.1]) }, { x: 0, y: 0, w: 2, h: 1 });
 * canvas.mask; // Uint8Array [1, 0]
 * ```
 */
export class MaskCanvas {
  readonly mask: Uint8Array;
  /** Time spent in {@link write}, ms. */
  writeMs = 0;

  constructor(readonly width: number, readonly height: number, readonly threshold = 0.5) {
    this.mask = new Uint8Array(width * height);
  }

  /**
   * Writes the image region `core` (inside `out.window`) of one window output into the mask; a one-channel output is
   * thresholded at `threshold` (default: the canvas's).
   */
  write(out: WindowOutput, core: Box, threshold = this.threshold): void {
    const t0 = performance.now();
    const { window: win, c: k, data } = out;
    const plane = win.w * win.h;
    const { mask, width } = this;
    for (let y = core.y; y < core.y + core.h; y++) {
      const row = y * width;
      const wrow = (y - win.y) * win.w - win.x;
      if (k === 1) {
        for (let x = core.x; x < core.x + core.w; x++) mask[row + x] = data[wrow + x] > threshold ? 1 : 0;
        continue;
      }
      for (let x = core.x; x < core.x + core.w; x++) {
        const p = wrow + x;
        let best = 0, bestV = data[p];
        for (let c = 1; c < k; c++) {
          const v = data[c * plane + p];
          if (v > bestV) {
            bestV = v;
            best = c;
          }
        }
        mask[row + x] = best;
      }
    }
    this.writeMs += performance.now() - t0;
  }
}
