// Cell grids over an image and their cover by few rectangles (recursive XY cuts): the geometry of glance → focus.
// A marked cell must end up inside a rectangle; each rectangle runs as one haloed window, so a cut pays off only when
// the area it drops outweighs the halo and per-window cost of the extra window. Pure: no models, no workers.

import { pixelWords, type RgbaImage } from "../image/mod.ts";

/** A grid of `cell`-px cells over an image, each marked on or off. */
export interface CellGrid {
  cols: number;
  rows: number;
  cell: number;
  on: Uint8Array;
  /**
   * inkCells: each blank cell's colour, RGB, the middle of its range per channel (to ±range/2); a cell with ink holds
   * what its pixels up to the first ink gave.
   */
  colour?: Uint8Array;
}

/** A rectangle of cells: columns [col, col + cols), rows [row, row + rows). */
export interface CellRect {
  col: number;
  row: number;
  cols: number;
  rows: number;
}

/**
 * The lowest and highest R, G and B (alpha composited over `background`) of `n` pixel words of `px` from `start`, `step`
 * apart, into `out` as [R, G, B lowest, R, G, B highest]. A run of one colour (most of a page) is read once. `inkCells`
 * keeps this loop inline, in registers: called per cell row, its 32 px pass over the text test screenshots took 4.4 ms
 * instead of 3.0 (8 px: 7.2 instead of 5.0; a scratch script, side by side).
 */
function spanRange(px: Uint32Array, start: number, step: number, n: number, background: number, out: Uint8Array) {
  let r0 = 255, g0 = 255, b0 = 255, r1 = 0, g1 = 0, b1 = 0, last = -1;
  for (let k = 0, i = start; k < n; k++, i += step) {
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
 * The cells of `image` that hold any ink: the largest max − min of R, G or B (alpha composited over `background`)
 * inside the cell exceeds `range` (0–255). A blank cell holds no stroke, so no text: no model needs to look at it. A
 * cell is read only until its rows so far show ink. With `within` (a coarser grid of the same image, its cell a multiple
 * of `cell`), the cells inside its blank cells are not read (they count blank) and the grid has no colours.
 *
 * @example
 * ```ts
 * import { inkCells } from "./cover.ts";
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
): CellGrid {
  const { width, height } = image;
  const px = pixelWords(image.data);
  const cols = Math.ceil(width / cell), rows = Math.ceil(height / cell);
  const lo = new Uint8Array(cols * rows * 3).fill(255), hi = new Uint8Array(cols * rows * 3);
  // Cells whose rows so far already show ink: the rest of their rows is not read (a photo's every cell after a row or
  // two, a text line's cells from their first stroke): 3.7–4.9 → 0.1–0.2 ms on a 720×477 photo, 6.4 → 3.1 ms on a
  // 1170×2532 screenshot, on the main thread of every text request (the same cells, and the same colours of the blank
  // ones, on 438 images and grids checked side by side).
  const inked = new Uint8Array(cols * rows);
  if (within) {
    // A cell of a blank coarse cell is blank: marked as if it showed ink (not read), it keeps lo > hi, so stays off.
    const k = within.cell / cell;
    if (!Number.isInteger(k)) throw new Error(`inkCells: ${within.cell} px cells are not made of ${cell} px cells`);
    for (let y = 0; y < rows; y++) {
      const parent = Math.floor(y / k) * within.cols;
      for (let x = 0; x < cols; x++) if (!within.on[parent + Math.floor(x / k)]) inked[y * cols + x] = 1;
    }
  }
  // One word per pixel, each cell's part of a row in registers, a run of equal pixels read once: on the main thread
  // of every text request, 4.8 ms on a 1920×1080 screenshot instead of 17.5 for the per-byte loop it replaced (same
  // cells and colours on random images with and without alpha, checked side by side when it was written).
  for (let y = 0; y < height; y++) {
    const crow = Math.floor(y / cell) * cols, row = y * width;
    for (let cx = 0; cx < cols; cx++) {
      if (inked[crow + cx]) continue;
      let r0 = 255, g0 = 255, b0 = 255, r1 = 0, g1 = 0, b1 = 0, last = -1;
      for (let x = cx * cell, end = Math.min(width, x + cell); x < end; x++) {
        const w = px[row + x];
        // A run of one colour (most of a page) is counted once.
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
      if (r0 < lo[c]) lo[c] = r0;
      if (g0 < lo[c + 1]) lo[c + 1] = g0;
      if (b0 < lo[c + 2]) lo[c + 2] = b0;
      if (r1 > hi[c]) hi[c] = r1;
      if (g1 > hi[c + 1]) hi[c + 1] = g1;
      if (b1 > hi[c + 2]) hi[c + 2] = b1;
      if (hi[c] - lo[c] > range || hi[c + 1] - lo[c + 1] > range || hi[c + 2] - lo[c + 2] > range) inked[crow + cx] = 1;
    }
  }
  const on = new Uint8Array(cols * rows), colour = new Uint8Array(cols * rows * 3);
  for (let c = 0; c < cols * rows; c++) {
    for (let k = 0; k < 3; k++) {
      if (hi[3 * c + k] - lo[3 * c + k] > range) on[c] = 1;
      colour[3 * c + k] = (hi[3 * c + k] + lo[3 * c + k]) >> 1;
    }
  }
  return within ? { cols, rows, cell, on } : { cols, rows, cell, on, colour };
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
 * import { inkCells, withoutLines } from "./cover.ts";
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
  // Per on-cell: 1 when its rows are flat (horizontal structure), 2 when its columns are (vertical).
  const kind = new Uint8Array(cols * rows);
  for (let cy = 0; cy < rows; cy++) {
    for (let cx = 0; cx < cols; cx++) {
      if (!grid.on[cy * cols + cx]) continue;
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
 * The colours of the blank cells of an inkCells grid, merged: a colour within `range` (every channel) of a more common
 * one counts as it, and past `max` colours the rest count as the nearest. Returns the colours as opaque RGBA and, per
 * cell, the index of its colour (0 for cells with ink). White alone when no cell is blank.
 *
 * @example
 * ```ts
 * import { blankColours, inkCells } from "./cover.ts";
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

/** A box's cut: its two halves' tight boxes and their summed cost. */
export interface CellCut {
  halves: [CellRect, CellRect];
  cost: number;
}

/** Tight bounding rectangle of the on-cells of `grid` inside `r`, or null when there are none. */
function bbox(grid: CellGrid, r: CellRect): CellRect | null {
  let c0 = Infinity, c1 = -1, r0 = Infinity, r1 = -1;
  for (let y = r.row; y < r.row + r.rows; y++) {
    for (let x = r.col; x < r.col + r.cols; x++) {
      if (!grid.on[y * grid.cols + x]) continue;
      if (x < c0) c0 = x;
      if (x > c1) c1 = x;
      if (y < r0) r0 = y;
      if (y > r1) r1 = y;
    }
  }
  return c1 < 0 ? null : { col: c0, row: r0, cols: c1 - c0 + 1, rows: r1 - r0 + 1 };
}

/**
 * Splits `r` (a tight box) once along the column or row boundary that minimises the summed cost of the two halves'
 * tight boxes; null when no boundary leaves on-cells on both sides. The first such boundary wins a tie, columns first.
 */
function bestCut(grid: CellGrid, r: CellRect, cost: (r: CellRect) => number): CellCut | null {
  // Per column the first and last row with an on-cell, per row the first and last column (-1: none), in one pass.
  const n = Math.max(r.cols, r.rows) + 1;
  if (lines < n) {
    lines = Math.max(n, 2 * lines);
    const scratch = new Int32Array(12 * lines);
    views = Array.from({ length: 12 }, (_, k) => scratch.subarray(k * lines, (k + 1) * lines));
    prefixViews = views.slice(4, 8);
    suffixViews = views.slice(8, 12);
  }
  const [colLo, colHi, rowLo, rowHi] = views;
  colLo.fill(-1, 0, n);
  rowLo.fill(-1, 0, n);
  for (let y = 0; y < r.rows; y++) {
    const at = (r.row + y) * grid.cols + r.col;
    for (let x = 0; x < r.cols; x++) {
      if (!grid.on[at + x]) continue;
      if (colLo[x] < 0) colLo[x] = y;
      colHi[x] = y;
      if (rowLo[y] < 0) rowLo[y] = x;
      rowHi[y] = x;
    }
  }
  let best = Infinity, out: [CellRect, CellRect] | null = null;
  const a = { col: 0, row: 0, cols: 0, rows: 0 }, b = { col: 0, row: 0, cols: 0, rows: 0 };
  for (const axis of [0, 1]) {
    // Lines along the axis (columns for 0, rows for 1) and, per line, the cross extent of its on-cells.
    const lo = axis === 0 ? colLo : rowLo, hi = axis === 0 ? colHi : rowHi, m = axis === 0 ? r.cols : r.rows;
    // The tight box of lines [0, k) and of lines [k, m): first and last line with on-cells, least and most cross index.
    const pre = boxes(lo, hi, 0, m, 1, prefixViews);
    const suf = boxes(lo, hi, m - 1, -1, -1, suffixViews);
    const set = (into: CellRect, first: number, last: number, min: number, max: number) => {
      into.col = axis === 0 ? r.col + first : r.col + min;
      into.row = axis === 0 ? r.row + min : r.row + first;
      into.cols = axis === 0 ? last - first + 1 : max - min + 1;
      into.rows = axis === 0 ? max - min + 1 : last - first + 1;
    };
    // The candidates are priced in two objects reused for every boundary (`cost` must not keep them): on an 8 px grid
    // the tail's cuts price tens of thousands per request.
    for (let k = 1; k < m; k++) {
      if (pre[1][k] < 0 || suf[1][m - k] < 0) continue;
      set(a, pre[0][k], pre[1][k], pre[2][k], pre[3][k]);
      set(b, suf[1][m - k], suf[0][m - k], suf[2][m - k], suf[3][m - k]);
      const c = cost(a) + cost(b);
      if (c < best) {
        best = c;
        out = [{ ...a }, { ...b }];
      }
    }
  }
  return out && { halves: out, cost: best };
}

// bestCut's working memory, kept between calls: the tail's cuts call it thousands of times per request on the main
// thread, mostly on small boxes, where allocating its arrays each time cost more than the scan. Twelve arrays of
// `lines` entries each.
let lines = 0;
let views: Int32Array[] = [], prefixViews: Int32Array[] = [], suffixViews: Int32Array[] = [];

/**
 * Running tight boxes over lines `from`, `from + step`, … (before `to`), into `[first, last, min, max]`: entry j covers
 * the first j lines visited — the first and last of them with on-cells (-1: none yet) and the least and most cross
 * index of those.
 */
function boxes(lo: Int32Array, hi: Int32Array, from: number, to: number, step: number, into: Int32Array[]) {
  const [first, last, min, max] = into;
  first[0] = last[0] = -1;
  for (let j = 0, i = from; i !== to; j++, i += step) {
    let f = first[j], a = min[j], b = max[j];
    if (lo[i] >= 0) {
      if (f < 0) {
        f = i;
        a = lo[i];
        b = hi[i];
      } else {
        if (lo[i] < a) a = lo[i];
        if (hi[i] > b) b = hi[i];
      }
    }
    first[j + 1] = f;
    last[j + 1] = lo[i] >= 0 ? i : last[j];
    min[j + 1] = a;
    max[j + 1] = b;
  }
  return into;
}

/**
 * Few rectangles covering every on-cell of `grid`, chosen by recursive XY cuts: a box is split along the boundary
 * that makes the tight boxes of its two halves cheapest, the halves are covered the same way, and the split is kept
 * when it costs less than the box (always, when the box may not run as one window: `cost` Infinity). A cut is only
 * explored when its two boxes cost less than `1 + lookahead` times the box. `cost` of a rectangle: its window's price
 * (called on objects it must not keep). Rectangles do not overlap. `cuts` keeps each box's best cut for the next call
 * on the same grid whose `cost` differs from this one's by a constant per rectangle (the best cut is the same then).
 *
 * @example
 * ```ts
 * import { coverCells } from "./cover.ts";
 * // Two marked cells far apart in a 10×1 grid: two windows are cheaper than one spanning the gap.
 * const on = new Uint8Array(10);
 * on[0] = on[9] = 1;
 * const cost = (r: { cols: number; rows: number }) => (r.cols + 2) * (r.rows + 2);
 * coverCells({ cols: 10, rows: 1, cell: 32, on }, cost).length; // 2
 * ```
 */
export function coverCells(
  grid: CellGrid,
  cost: (r: CellRect) => number,
  lookahead = 0.25,
  cuts?: Map<number, CellCut | null>,
): CellRect[] {
  // `tight`: the region is already the tight box of its on-cells (bestCut's halves are).
  const solve = (region: CellRect, tight = false): { rects: CellRect[]; cost: number } => {
    const box = tight ? region : bbox(grid, region);
    if (!box) return { rects: [], cost: 0 };
    const whole = cost(box);
    if (box.cols * box.rows === 1) return { rects: [box], cost: whole };
    let cut;
    if (cuts) {
      const key = ((box.col * grid.rows + box.row) * (grid.cols + 1) + box.cols) * (grid.rows + 1) + box.rows;
      cut = cuts.get(key);
      if (cut === undefined) cuts.set(key, cut = bestCut(grid, box, cost));
      else if (cut) cut = { halves: cut.halves, cost: cost(cut.halves[0]) + cost(cut.halves[1]) };
    } else cut = bestCut(grid, box, cost);
    let halves: [CellRect, CellRect];
    if (whole === Infinity) {
      // Too large for one window: split, at the cheapest cut or else through the middle of the longer side.
      halves = cut && cut.cost < Infinity ? cut.halves : middle(box);
    } else if (!cut || cut.cost >= whole * (1 + lookahead)) {
      // A cut that does not pay at once may still pay after further cuts (an L shape): look `lookahead` deeper.
      return { rects: [box], cost: whole };
    } else halves = cut.halves;
    const exact = cut !== null && halves === cut.halves;
    const a = solve(halves[0], exact), b = solve(halves[1], exact);
    const split = a.cost + b.cost;
    return split < whole ? { rects: [...a.rects, ...b.rects], cost: split } : { rects: [box], cost: whole };
  };
  return solve({ col: 0, row: 0, cols: grid.cols, rows: grid.rows }).rects;
}

/**
 * Per rectangle of `rects` (disjoint, covering the on-cells of `grid`), which of its sides [left, top, right, bottom]
 * text crosses: an on-cell on that edge has an on-cell of another rectangle next to it, across the edge.
 *
 * @example
 * ```ts
 * import { crossedSides } from "./cover.ts";
 * // A line of three on-cells cut in two, and a cell apart, in a 6×1 grid.
 * const on = Uint8Array.of(1, 1, 1, 0, 1, 0);
 * const rects = [{ col: 0, row: 0, cols: 2, rows: 1 }, { col: 2, row: 0, cols: 1, rows: 1 }, { col: 4, row: 0, cols: 1, rows: 1 }];
 * crossedSides({ cols: 6, rows: 1, cell: 32, on }, rects); // [[false, false, true, false], [true, false, false, false], [false, false, false, false]]
 * ```
 */
export function crossedSides(grid: CellGrid, rects: CellRect[]): boolean[][] {
  const owner = new Int32Array(grid.on.length).fill(-1);
  rects.forEach((r, k) => {
    for (let y = r.row; y < r.row + r.rows; y++) owner.fill(k, y * grid.cols + r.col, y * grid.cols + r.col + r.cols);
  });
  return rects.map((r, k) => {
    // Whether the on-cell (c, y) of this rectangle has an on-cell of another one at (c + dc, y + dy).
    const across = (c: number, y: number, dc: number, dy: number) => {
      const x = c + dc, w = y + dy;
      if (x < 0 || w < 0 || x >= grid.cols || w >= grid.rows || !grid.on[y * grid.cols + c]) return false;
      const o = owner[w * grid.cols + x];
      return o >= 0 && o !== k && grid.on[w * grid.cols + x] === 1;
    };
    const sides = [false, false, false, false];
    for (let y = r.row; y < r.row + r.rows; y++) {
      sides[0] ||= across(r.col, y, -1, 0);
      sides[2] ||= across(r.col + r.cols - 1, y, 1, 0);
    }
    for (let c = r.col; c < r.col + r.cols; c++) {
      sides[1] ||= across(c, r.row, 0, -1);
      sides[3] ||= across(c, r.row + r.rows - 1, 0, 1);
    }
    return sides;
  });
}

/** `r` cut in two through the middle of its longer side. */
function middle(r: CellRect): [CellRect, CellRect] {
  if (r.cols >= r.rows) {
    const k = Math.floor(r.cols / 2);
    return [{ ...r, cols: k }, { ...r, col: r.col + k, cols: r.cols - k }];
  }
  const k = Math.floor(r.rows / 2);
  return [{ ...r, rows: k }, { ...r, row: r.row + k, rows: r.rows - k }];
}
