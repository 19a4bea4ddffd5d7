// The ink scan: per 8×8 px cell of an opaque image, its lowest and highest R, G and B and whether its rows and its
// columns are each of one colour, read by a WebAssembly SIMD kernel (./ink_scan.wat, four pixels per instruction).
// lib/plan/ink_cells.ts builds its grids from it where it can. Written here because no library reads per-block ranges
// of an RGBA buffer, and the JavaScript reads it replaces (kept for images with transparency) ran on the main thread
// of every text request: the 32 px and 8 px ink grids and the tail's line test took 5.1–5.4 ms on the mean evaluation
// image, 2.1 ms from the scan (the same grids on all 242 images and on each squeezed to 0.7 of its width; warm,
// medians of 7, scratch `.scratch/inkeq.ts`, two runs). The default plan's planning on the test and fourth validation
// screenshots, each once, natively: mean 15.0 / 14.7 / 14.2 → 11.5 / 12.4 / 10.0 ms, median 12.7 / 12.7 / 12.2 → 10.0 /
// 10.9 / 7.8 (`deno run -A bench/eval/plan_time.ts --set test,val4`, three runs each, alternating). Pure: no models,
// no workers.

import { pixelWords, type RgbaImage } from "../image/mod.ts";
import { band, memory } from "./ink_scan.wasm";

/** Side of the scan's cells, px: one segment of the kernel, 32 bytes of RGBA. */
export const SCAN_CELL = 8;

/** What the scan read of an image: row-major cells of {@link SCAN_CELL} px, the last ones cut where the image ends. */
export interface InkScan {
  cols: number;
  rows: number;
  /** The `range` its flags were read at. */
  range: number;
  /** Per cell, the lowest R, G, B and A of its pixels as one little-endian word (R in the low byte). */
  lo: Uint32Array;
  /** Per cell, the highest, likewise. */
  hi: Uint32Array;
  /** Per cell: 1 where every row of it is flat (to `range`, every channel), 2 where every column is, 3 both. */
  flags: Uint8Array;
}

/** Each image's scan (null: it has pixels that are not opaque), while the image lives. */
const scans = new WeakMap<RgbaImage, InkScan | null>();

/**
 * The ink scan of `image` at `range` (0–255: the largest max − min of a channel along a row or column that is still
 * flat), or null where any of its pixels is not opaque: compositing them over a background is left to the
 * JavaScript reads of lib/plan/ink_cells.ts. Read once per image and range.
 *
 * @example
 * ```ts
 * import { inkScan } from "./ink_scan.ts";
 * const data = new Uint8Array(4 * 16 * 8).fill(255);
 * data.set([0, 0, 0, 255], 4 * (2 * 16 + 11)); // one black pixel at (11, 2)
 * const scan = inkScan({ width: 16, height: 8, data }, 8)!;
 * [scan.cols, scan.rows]; // [2, 1]
 * scan.lo[1].toString(16); // "ff000000": the second cell's lowest R, G and B are 0, its alpha 255
 * scan.flags[0]; // 3: the first cell's rows and columns are flat
 * ```
 */
export function inkScan(image: RgbaImage, range: number): InkScan | null {
  const known = scans.get(image);
  if (known === null || known?.range === range) return known;
  const scan = read(image, range);
  scans.set(image, scan);
  return scan;
}

/** The kernel over every band of 8 rows of `image` (see {@link inkScan}). */
function read(image: RgbaImage, range: number): InkScan | null {
  const { width, height } = image;
  const px = pixelWords(image.data);
  const cols = Math.ceil(width / SCAN_CELL), rows = Math.ceil(height / SCAN_CELL);
  // A band's rows padded to whole segments, then the kernel's output for the band (lowest, highest, flags).
  const padded = cols * SCAN_CELL, stride = 4 * padded, outAt = SCAN_CELL * stride;
  const need = outAt + 9 * cols;
  if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
  const words = new Uint32Array(memory.buffer);
  const bandLo = new Uint32Array(memory.buffer, outAt, cols),
    bandHi = new Uint32Array(memory.buffer, outAt + 4 * cols, cols);
  const bandFlags = new Uint8Array(memory.buffer, outAt + 8 * cols, cols);
  const lo = new Uint32Array(cols * rows), hi = new Uint32Array(cols * rows), flags = new Uint8Array(cols * rows);
  for (let r = 0; r < rows; r++) {
    const n = Math.min(SCAN_CELL, height - r * SCAN_CELL);
    for (let k = 0; k < n; k++) {
      const from = (r * SCAN_CELL + k) * width;
      words.set(px.subarray(from, from + width), k * padded);
      // The row's last pixel repeated into the padding: a cut cell's ranges and flatness stay those of its pixels.
      if (padded > width) words.fill(px[from + width - 1], k * padded + width, (k + 1) * padded);
    }
    band(stride, n, cols, range, outAt);
    // A pixel that is not opaque: the JavaScript reads take the image, from the band it shows up in on.
    for (let c = 0; c < cols; c++) if (bandLo[c] >>> 24 !== 255) return null;
    lo.set(bandLo, r * cols);
    hi.set(bandHi, r * cols);
    flags.set(bandFlags, r * cols);
  }
  return { cols, rows, range, lo, hi, flags };
}
