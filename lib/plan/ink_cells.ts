// Which cells of an image hold ink, read from its pixels (lib/plan/cover.ts covers them): the cells with any stroke
// (`inkCells`), the same without the ink of long straight lines (`withoutLines`), and the colours of the blank ones
// (`blankColours`). Pure: no models, no workers.

import { pixelWords, type RgbaImage } from "../image/mod.ts";
import type { CellGrid } from "./cover.ts";
import { type InkScan, inkScan, SCAN_CELL } from "./ink_scan.ts";

/**
 * The lowest and highest R, G and B (alpha composited over `background`) of `n` pixel words of `px` from `start`,
 * `step` apart, into `out` as [R, G, B lowest, R, G, B highest]. A run of one colour (most of a page) is read once.
 * `inkCells` keeps this loop inline, in registers: called per cell row, its 32 px pass over the text test screenshots
 * took 4.4 ms instead of 3.0 (8 px: 7.2 instead of 5.0), and widening its cells' ranges in place 4.4–4.7 ms instead of
 * 2.7 (scratch `.scratch/plantime2.ts`, side by side).
 */
function spanRange(px: Uint32Array, start: number, step: number, n: number, background: number, out: Uint8Array) {
  // A leading run of one colour is skipped first, as in `inkCells` (withoutLines: 2.3 → 2.1 ms, the same scratch).
  let k = 1, i = start + step;
  while (k < n && px[i] === px[start]) k++, i += step;
  let r0 = 255, g0 = 255, b0 = 255, r1 = 0, g1 = 0, b1 = 0, last = -1;
  for (k--, i -= step; k < n; k++, i += step) {
    const w = px[i];
    if (w === last) continue;
    last = w;
    const a = w >>> 24;
    let r = w & 255, g = (w >>> 8) & 255, b = (w >>> 16) & 255;
    if (a !== 255) {
      r = Math.round((r * a + background * (255 - a)) / 255);
      g = Math.round((g * a + background * (255 - a)) / 255);
      b = Math.round((b * a + background * (255 - a)) / 255);
    }
    if (r < r0) r0 = r;
    if (r > r1) r1 = r;
    if (g < g0) g0 = g;
    if (g > g1) g1 = g;
    if (b < b0) b0 = b;
    if (b > b1) b1 = b;
  }
  out[0] = r0;
  out[1] = g0;
  out[2] = b0;
  out[3] = r1;
  out[4] = g1;
  out[5] = b1;
}

/**
 * A page's faint background pattern (a texture, a dither) counts as blank: the cells whose largest max − min of R, G or
 * B is at most `range` and whose lowest and highest R, G and B are each the same as those of at least `share` of the
 * grid's cells. A stroke of text on such a page reaches past the pattern's colours, and a faint word shares its colours
 * with few cells. OpenCV's Doxygen pages (the third validation set of bench/eval/render_pages.ts) have margins of
 * channels 238–255: read as ink, the default priced them at 80.9 % of full resolution, 70.9 % with this (least IoU vs
 * full resolution 0.996 → 0.984; `deno run -A bench/eval/budget_sweep.ts --set val3 --shares 1`). The 32 px and 8 px
 * ink grids of every tuning, validation and test page and photo are the same with it and without; at `share` 0.02,
 * seven pages' grids change, at 0.05 none (a scratch script over every evaluation image's grids).
 */
export const BACKGROUND_PATTERN = { range: 32, share: 0.1 };

/**
 * The cells of `image` that hold any ink: the largest max − min of R, G or B (alpha composited over `background`)
 * inside the cell exceeds `range` (0–255). A blank cell holds no stroke, so no text: no model needs to look at it. On an
 * opaque image whose cell is a multiple of {@link SCAN_CELL}, the ranges come from its ink scan (./ink_scan.ts); else
 * a cell is read only until its rows so far show ink. With `within` (a coarser grid of the same image, its cell a multiple
 * of `cell`), the cells inside its blank cells are not read (they count blank) and the grid has no colours. With
 * `pattern` ({@link BACKGROUND_PATTERN}), a faint pattern many cells share counts blank too.
 *
 * @example
 * ```ts
 * import { inkCells } from "./ink_cells.ts";
 * const data = new Uint8Array(4 * 4 * 4).fill(255);
 * data.set([0, 0, 0, 255], 4 * (1 * 4 + 3)); // one black pixel at (3, 1)
 * inkCells({ width: 4, height: 4, data }, 2, 8).on; // Uint8Array [0, 1, 0, 0]
 * ```
 */
export function inkCells(
  image: RgbaImage,
  cell: number,
  range: number,
  background = 255,
  within?: CellGrid,
  pattern?: { range: number; share: number },
): CellGrid {
  const { width, height } = image;
  const cols = Math.ceil(width / cell), rows = Math.ceil(height / cell);
  const lo = new Uint8Array(cols * rows * 3).fill(255), hi = new Uint8Array(cols * rows * 3);
  // Cells not to read: those inside `within`'s blank cells. Marked as if they showed ink, they keep lo > hi, so stay
  // off.
  const skip = new Uint8Array(cols * rows);
  if (within) {
    const k = within.cell / cell;
    if (!Number.isInteger(k)) throw new Error(`inkCells: ${within.cell} px cells are not made of ${cell} px cells`);
    for (let y = 0; y < rows; y++) {
      const parent = Math.floor(y / k) * within.cols;
      for (let x = 0; x < cols; x++) if (!within.on[parent + Math.floor(x / k)]) skip[y * cols + x] = 1;
    }
  }
  const scan = cell % SCAN_CELL === 0 ? inkScan(image, range) : null;
  if (scan) scanRanges(scan, cell / SCAN_CELL, cols, skip, lo, hi);
  // A cell is read to its end while it may still be a faint pattern's.
  else readRanges(image, cell, Math.max(range, pattern?.range ?? 0), background, skip, lo, hi);
  const on = new Uint8Array(cols * rows), colour = new Uint8Array(cols * rows * 3);
  // The faint cells by their lowest and highest R, G and B (six bytes, one number).
  const faint = new Map<number, number[]>();
  for (let c = 0; c < cols * rows; c++) {
    let spread = 0;
    for (let k = 0; k < 3; k++) {
      spread = Math.max(spread, hi[3 * c + k] - lo[3 * c + k]);
      colour[3 * c + k] = (hi[3 * c + k] + lo[3 * c + k]) >> 1;
    }
    if (spread <= range) continue;
    on[c] = 1;
    if (pattern && spread <= pattern.range) {
      const key = ((lo[3 * c] << 16) | (lo[3 * c + 1] << 8) | lo[3 * c + 2]) * 2 ** 24 +
        ((hi[3 * c] << 16) | (hi[3 * c + 1] << 8) | hi[3 * c + 2]);
      const cells = faint.get(key);
      if (cells) cells.push(c);
      else faint.set(key, [c]);
    }
  }
  const shared = (pattern?.share ?? Infinity) * cols * rows;
  for (const cells of faint.values()) if (cells.length >= shared) { for (const c of cells) on[c] = 0; }
  return within ? { cols, rows, cell, on } : { cols, rows, cell, on, colour };
}

/**
 * Each cell's lowest and highest R, G and B (alpha composited over `background`) into `lo` and `hi` (3 bytes per cell),
 * read pixel by pixel: a cell only until its spread passes `stop` (its ranges then hold what was read so far), none of
 * the cells marked in `skip`.
 */
function readRanges(
  image: RgbaImage,
  cell: number,
  stop: number,
  background: number,
  skip: Uint8Array,
  lo: Uint8Array,
  hi: Uint8Array,
): void {
  const { width, height } = image;
  const px = pixelWords(image.data);
  const cols = Math.ceil(width / cell);
  // Cells whose rows so far already show ink: the rest of their rows is not read (a photo's every cell after a row or
  // two, a text line's cells from their first stroke): 3.7–4.9 → 0.1–0.2 ms on a 720×477 photo, 6.4 → 3.1 ms on a
  // 1170×2532 screenshot, on the main thread of every text request (the same cells, and the same colours of the blank
  // ones, on 438 images and grids checked side by side).
  const inked = skip.slice();
  // One word per pixel, each cell's part of a row in registers, a run of equal pixels read once: on the main thread
  // of every text request, 4.8 ms on a 1920×1080 screenshot instead of 17.5 for the per-byte loop it replaced (same
  // cells and colours on random images with and without alpha, checked side by side when it was written).
  for (let y = 0; y < height; y++) {
    const crow = Math.floor(y / cell) * cols, row = y * width;
    for (let cx = 0; cx < cols; cx++) {
      if (inked[crow + cx]) continue;
      const start = row + cx * cell, end = row + Math.min(width, cx * cell + cell), first = px[start];
      // A run of one colour (most of a page) is counted once: a leading run skipped in a loop of its own, then from its
      // last pixel on, a run skipped pixel by pixel. The loop of its own: on the mean text test screenshot, the 32 px
      // pass 3.7 → 2.2 ms, the 8 px pass 3.2 → 2.8 (same grids on every evaluation image; `.scratch/inkcheck.ts`).
      let x = start + 1;
      while (x < end && px[x] === first) x++;
      let r0 = 255, g0 = 255, b0 = 255, r1 = 0, g1 = 0, b1 = 0, last = -1;
      for (x--; x < end; x++) {
        const w = px[x];
        if (w === last) continue;
        last = w;
        const a = w >>> 24;
        let r = w & 255, g = (w >>> 8) & 255, b = (w >>> 16) & 255;
        if (a !== 255) {
          r = Math.round((r * a + background * (255 - a)) / 255);
          g = Math.round((g * a + background * (255 - a)) / 255);
          b = Math.round((b * a + background * (255 - a)) / 255);
        }
        if (r < r0) r0 = r;
        if (r > r1) r1 = r;
        if (g < g0) g0 = g;
        if (g > g1) g1 = g;
        if (b < b0) b0 = b;
        if (b > b1) b1 = b;
      }
      const c = 3 * (crow + cx);
      widen(lo, hi, c, r0, g0, b0, r1, g1, b1);
      if (hi[c] - lo[c] > stop || hi[c + 1] - lo[c + 1] > stop || hi[c + 2] - lo[c + 2] > stop) inked[crow + cx] = 1;
    }
  }
}

/**
 * Each cell's lowest and highest R, G and B into `lo` and `hi` (3 bytes per cell), from the ink scan: a cell of `k` × `k`
 * scan cells (fewer where the image ends) takes their lowest and highest; none of the cells marked in `skip`.
 */
function scanRanges(scan: InkScan, k: number, cols: number, skip: Uint8Array, lo: Uint8Array, hi: Uint8Array): void {
  for (let y = 0; y < scan.rows; y++) {
    const crow = ((y / k) | 0) * cols;
    for (let x = 0, at = y * scan.cols; x < scan.cols; x++, at++) {
      const c = crow + ((x / k) | 0);
      if (skip[c]) continue;
      const a = scan.lo[at], b = scan.hi[at];
      widen(lo, hi, 3 * c, a & 255, (a >>> 8) & 255, (a >>> 16) & 255, b & 255, (b >>> 8) & 255, (b >>> 16) & 255);
    }
  }
}

/** The cell at byte `c` of `lo` and `hi`: its lowest R, G and B lowered to r0, g0, b0, its highest raised to r1, g1, b1. */
function widen(
  lo: Uint8Array,
  hi: Uint8Array,
  c: number,
  r0: number,
  g0: number,
  b0: number,
  r1: number,
  g1: number,
  b1: number,
): void {
  if (r0 < lo[c]) lo[c] = r0;
  if (g0 < lo[c + 1]) lo[c + 1] = g0;
  if (b0 < lo[c + 2]) lo[c + 2] = b0;
  if (r1 > hi[c]) hi[c] = r1;
  if (g1 > hi[c + 1]) hi[c + 1] = g1;
  if (b1 > hi[c + 2]) hi[c + 2] = b1;
}

/**
 * `grid` (an inkCells grid of `image`) without the ink of long straight lines: the on-cells whose rows are each of one
 * colour (to `range`, every channel: a horizontal line or the edge of a box or a coloured band) in a row of at least
 * `run` such cells, likewise with columns, and the on-cells where such lines meet (a corner or a junction: a long
 * horizontal line beside it and a long vertical one above or below). Frames, rules, table borders and the edges of
 * code blocks are not text, and a stroke of text is never that long. Returns a new grid; `grid` is not changed.
 *
 * @example
 * ```ts
 * import { inkCells, withoutLines } from "./ink_cells.ts";
 * // A 1 px rule across a white 64×16 image, and one dark pixel under it.
 * const data = new Uint8Array(4 * 64 * 16).fill(255);
 * for (let x = 0; x < 64; x++) data.set([0, 0, 0, 255], 4 * (4 * 64 + x));
 * data.set([0, 0, 0, 255], 4 * (12 * 64 + 20));
 * const image = { width: 64, height: 16, data };
 * const grid = inkCells(image, 8, 8);
 * grid.on; // the rule's row of 8 cells on, and the cell of the dot
 * withoutLines(image, grid, 8, 8).on; // the dot's cell alone: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
 * ```
 */
export function withoutLines(image: RgbaImage, grid: CellGrid, range: number, run: number, background = 255): CellGrid {
  const { width, height } = image;
  const px = pixelWords(image.data);
  const { cols, rows, cell } = grid;
  // Whether n pixels from `start`, `step` apart, are of one colour to `range`.
  const span = new Uint8Array(6);
  const flat = (start: number, step: number, n: number) => {
    spanRange(px, start, step, n, background, span);
    return span[3] - span[0] <= range && span[4] - span[1] <= range && span[5] - span[2] <= range;
  };
  // Per on-cell: 1 when its rows are flat (horizontal structure), 2 when its columns are (vertical); the ink scan's
  // flags (./ink_scan.ts) where it read the image at these cells and range.
  const scan = cell === SCAN_CELL ? inkScan(image, range) : null;
  const kind = new Uint8Array(cols * rows);
  for (let cy = 0; cy < rows; cy++) {
    for (let cx = 0; cx < cols; cx++) {
      if (!grid.on[cy * cols + cx]) continue;
      if (scan) {
        kind[cy * cols + cx] = scan.flags[cy * cols + cx];
        continue;
      }
      const x0 = cx * cell, y0 = cy * cell, w = Math.min(cell, width - x0), h = Math.min(cell, height - y0);
      let across = true, down = true;
      for (let y = 0; y < h && across; y++) across = flat((y0 + y) * width + x0, 1, w);
      for (let x = 0; x < w && down; x++) down = flat(y0 * width + x0 + x, width, h);
      kind[cy * cols + cx] = (across ? 1 : 0) | (down ? 2 : 0);
    }
  }
  // 1: in a run of at least `run` cells of horizontal structure along its row; 2: of vertical, along its column.
  const line = new Uint8Array(cols * rows);
  const mark = (n: number, at: (k: number) => number, bit: number) => {
    for (let k = 0; k < n;) {
      let e = k;
      while (e < n && kind[at(e)] & bit) e++;
      if (e - k >= run) { for (let j = k; j < e; j++) line[at(j)] |= bit; }
      k = Math.max(e, k + 1);
    }
  };
  for (let cy = 0; cy < rows; cy++) mark(cols, (k) => cy * cols + k, 1);
  for (let cx = 0; cx < cols; cx++) mark(rows, (k) => k * cols + cx, 2);
  const at = (x: number, y: number) => (x >= 0 && y >= 0 && x < cols && y < rows ? line[y * cols + x] : 0);
  const on = grid.on.slice();
  for (let cy = 0; cy < rows; cy++) {
    for (let cx = 0; cx < cols; cx++) {
      const c = cy * cols + cx;
      if (!on[c]) continue;
      const corner = (at(cx - 1, cy) | at(cx + 1, cy)) & 1 && (at(cx, cy - 1) | at(cx, cy + 1)) & 2;
      if (line[c] || corner) on[c] = 0;
    }
  }
  return { ...grid, on };
}

/**
 * `grid` with every gap of at most `cells` blank cells between two cells with ink in one row counted as ink: the text
 * detector's map runs on across a short gap in a line (an icon and its label, a bullet and its item, a row of toolbar
 * icons) and marks text in it. Returns a new grid; `grid` is not changed.
 *
 * @example
 * ```ts
 * import { bridgeRows } from "./ink_cells.ts";
 * const grid = { cols: 8, rows: 1, cell: 8, on: Uint8Array.from([1, 0, 0, 1, 0, 0, 0, 1]) };
 * bridgeRows(grid, 2).on; // Uint8Array [1, 1, 1, 1, 0, 0, 0, 1]
 * ```
 */
export function bridgeRows(grid: CellGrid, cells: number): CellGrid {
  const { cols, rows } = grid, on = grid.on.slice();
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0, last = -1; c < cols; c++) {
      if (!grid.on[row + c]) continue;
      if (last >= 0 && c - last - 1 <= cells) on.fill(1, row + last + 1, row + c);
      last = c;
    }
  }
  return { ...grid, on };
}

/**
 * The colours of the blank cells of an inkCells grid, merged: a colour within `range` (every channel) of a more common
 * one counts as it, and past `max` colours the rest count as the nearest. Returns the colours as opaque RGBA and, per
 * cell, the index of its colour (0 for cells with ink). White alone when no cell is blank.
 *
 * @example
 * ```ts
 * import { blankColours, inkCells } from "./ink_cells.ts";
 * const data = new Uint8Array(4 * 2 * 4).fill(255);
 * for (const x of [2, 3]) for (const y of [0, 1]) data.set([200, 200, 200, 255], 4 * (y * 4 + x));
 * blankColours(inkCells({ width: 4, height: 2, data }, 2, 8), 8, 4); // colours [255,255,255,255, 200,200,200,255]
 * ```
 */
export function blankColours(
  grid: CellGrid,
  range: number,
  max: number,
): { colours: Uint8Array; cellColour: Uint8Array } {
  const { on, colour } = grid;
  if (!colour) throw new Error("blankColours needs the cell colours of inkCells");
  const counts = new Map<number, number>();
  const key = (c: number) => (colour[3 * c] << 16) | (colour[3 * c + 1] << 8) | colour[3 * c + 2];
  for (let c = 0; c < on.length; c++) if (!on[c]) counts.set(key(c), (counts.get(key(c)) ?? 0) + 1);
  const reps: number[] = [];
  const index = new Map<number, number>();
  const dist = (a: number, b: number) =>
    Math.max(
      Math.abs((a >> 16) - (b >> 16)),
      Math.abs(((a >> 8) & 255) - ((b >> 8) & 255)),
      Math.abs((a & 255) - (b & 255)),
    );
  for (const [k] of [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])) {
    let best = -1;
    for (let r = 0; r < reps.length; r++) if (best < 0 || dist(k, reps[r]) < dist(k, reps[best])) best = r;
    if (best < 0 || (dist(k, reps[best]) > range && reps.length < max)) {
      best = reps.length;
      reps.push(k);
    }
    index.set(k, best);
  }
  if (!reps.length) reps.push(0xffffff);
  const cellColour = new Uint8Array(on.length);
  for (let c = 0; c < on.length; c++) if (!on[c]) cellColour[c] = index.get(key(c))!;
  const colours = new Uint8Array(reps.length * 4);
  reps.forEach((k, r) => colours.set([k >> 16, (k >> 8) & 255, k & 255, 255], 4 * r));
  return { colours, cellColour };
}
