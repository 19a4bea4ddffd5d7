// Cell grids over an image and their cover by few rectangles (recursive XY cuts): the geometry of glance → focus.
// A marked cell must end up inside a rectangle; each rectangle runs as one haloed window, so a cut pays off only when
// the area it drops outweighs the halo and per-window cost of the extra window. Which cells hold ink, read from the
// image's pixels: lib/plan/ink_cells.ts. Pure: no models, no workers.

/** A grid of `cell`-px cells over an image, each marked on or off. */
export interface CellGrid {
  cols: number;
  rows: number;
  cell: number;
  on: Uint8Array;
  /**
   * inkCells: each blank cell's colour, RGB, the middle of its range per channel (to ±range/2); a cell with ink holds
   * the middle of what was read of it (its whole range, or its pixels up to the first ink).
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

/** A box's cut: its two halves' tight boxes and their summed cost. */
export interface CellCut {
  halves: [CellRect, CellRect];
  cost: number;
}

/**
 * Where the on-cells of a grid lie along each row and column: for every row, per column x the first on-cell at or
 * after x (`cols` when none) and the last at or before x (-1 when none); the same for every column down its rows.
 * With it a box's first and last on-cell in each of its rows and columns is a lookup, not a scan of the box: the XY
 * cuts of a dense grid (a photo's tail, every 8 px cell with ink) scan nested boxes down to single lines, O(area) each.
 */
interface OnIndex {
  /** Row y, column x at y · (cols + 1) + x; entry cols of a row repeats the row's none. */
  nextInRow: Int32Array;
  prevInRow: Int32Array;
  /** Column x, row y at x · (rows + 1) + y. */
  nextInCol: Int32Array;
  prevInCol: Int32Array;
}

/** The index of the grid a `cuts` memo of coverCells belongs to. */
const indices = new WeakMap<Map<number, CellCut | null>, OnIndex>();

/** The {@link OnIndex} of a grid: four passes over its cells. */
function onIndex({ cols, rows, on }: CellGrid): OnIndex {
  const nextInRow = new Int32Array(rows * (cols + 1)), prevInRow = new Int32Array(rows * (cols + 1));
  const nextInCol = new Int32Array(cols * (rows + 1)), prevInCol = new Int32Array(cols * (rows + 1));
  for (let y = 0; y < rows; y++) {
    const at = y * (cols + 1);
    nextInRow[at + cols] = cols;
    for (let x = cols - 1; x >= 0; x--) nextInRow[at + x] = on[y * cols + x] ? x : nextInRow[at + x + 1];
    for (let x = 0, last = -1; x < cols; x++) prevInRow[at + x] = last = on[y * cols + x] ? x : last;
  }
  for (let x = 0; x < cols; x++) {
    const at = x * (rows + 1);
    nextInCol[at + rows] = rows;
    for (let y = rows - 1; y >= 0; y--) nextInCol[at + y] = on[y * cols + x] ? y : nextInCol[at + y + 1];
    for (let y = 0, last = -1; y < rows; y++) prevInCol[at + y] = last = on[y * cols + x] ? y : last;
  }
  return { nextInRow, prevInRow, nextInCol, prevInCol };
}

/** Tight bounding rectangle of the on-cells of `grid` (`index`: its {@link onIndex}) inside `r`, or null when none. */
function bbox(grid: CellGrid, index: OnIndex, r: CellRect): CellRect | null {
  let c0 = Infinity, c1 = -1, r0 = Infinity, r1 = -1;
  for (let y = r.row; y < r.row + r.rows; y++) {
    const at = y * (grid.cols + 1), first = index.nextInRow[at + r.col];
    if (first >= r.col + r.cols) continue;
    if (first < c0) c0 = first;
    c1 = Math.max(c1, index.prevInRow[at + r.col + r.cols - 1]);
    if (y < r0) r0 = y;
    r1 = y;
  }
  return c1 < 0 ? null : { col: c0, row: r0, cols: c1 - c0 + 1, rows: r1 - r0 + 1 };
}

/**
 * Splits `r` (a tight box) once along the column or row boundary that minimises the summed cost of the two halves'
 * tight boxes; null when no boundary leaves on-cells on both sides. The first such boundary wins a tie, columns first.
 */
function bestCut(grid: CellGrid, index: OnIndex, r: CellRect, cost: (r: CellRect) => number): CellCut | null {
  // Per column the first and last row with an on-cell, per row the first and last column, from the index (first -1
  // where a line has none; its last is then meaningless, and `boxes` reads it only where the first is not -1).
  const n = Math.max(r.cols, r.rows) + 1;
  if (lines < n) {
    lines = Math.max(n, 2 * lines);
    const scratch = new Int32Array(12 * lines);
    views = Array.from({ length: 12 }, (_, k) => scratch.subarray(k * lines, (k + 1) * lines));
    prefixViews = views.slice(4, 8);
    suffixViews = views.slice(8, 12);
  }
  const [colLo, colHi, rowLo, rowHi] = views;
  const { nextInRow, prevInRow, nextInCol, prevInCol } = index;
  for (let y = 0; y < r.rows; y++) {
    const at = (r.row + y) * (grid.cols + 1), first = nextInRow[at + r.col];
    rowLo[y] = first < r.col + r.cols ? first - r.col : -1;
    rowHi[y] = prevInRow[at + r.col + r.cols - 1] - r.col;
  }
  for (let x = 0; x < r.cols; x++) {
    const at = (r.col + x) * (grid.rows + 1), first = nextInCol[at + r.row];
    colLo[x] = first < r.row + r.rows ? first - r.row : -1;
    colHi[x] = prevInCol[at + r.row + r.rows - 1] - r.row;
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
  // A caller passing `cuts` calls again on the same grid: its index is built once.
  let index = cuts && indices.get(cuts);
  if (!index) {
    index = onIndex(grid);
    if (cuts) indices.set(cuts, index);
  }
  // `tight`: the region is already the tight box of its on-cells (bestCut's halves are). `limit`: the caller uses the
  // answer only when it costs less; at or above it, any answer costing at least `limit` does.
  const solve = (region: CellRect, tight = false, limit = Infinity): { rects: CellRect[]; cost: number } => {
    const box = tight ? region : bbox(grid, index, region);
    if (!box) return { rects: [], cost: 0 };
    const whole = cost(box);
    if (box.cols * box.rows === 1) return { rects: [box], cost: whole };
    let cut;
    if (cuts) {
      const key = ((box.col * grid.rows + box.row) * (grid.cols + 1) + box.cols) * (grid.rows + 1) + box.rows;
      cut = cuts.get(key);
      if (cut === undefined) cuts.set(key, cut = bestCut(grid, index, box, cost));
      else if (cut) cut = { halves: cut.halves, cost: cost(cut.halves[0]) + cost(cut.halves[1]) };
    } else cut = bestCut(grid, index, box, cost);
    let halves: [CellRect, CellRect];
    if (whole === Infinity) {
      // Too large for one window: split, at the cheapest cut or else through the middle of the longer side.
      halves = cut && cut.cost < Infinity ? cut.halves : middle(box);
    } else if (!cut || cut.cost >= whole * (1 + lookahead)) {
      // A cut that does not pay at once may still pay after further cuts (an L shape): look `lookahead` deeper.
      return { rects: [box], cost: whole };
    } else halves = cut.halves;
    const exact = cut !== null && halves === cut.halves;
    // The split is kept only below the box's cost and used only below `limit`: its halves' answers matter only below
    // what is left of the lower of the two (costs are not negative).
    const bound = Math.min(whole, limit);
    const a = solve(halves[0], exact, bound);
    if (a.cost >= bound) return { rects: [box], cost: whole };
    const b = solve(halves[1], exact, bound - a.cost);
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
