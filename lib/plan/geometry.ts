// Pure tile geometry shared by the planners: rounding to a model's input multiple, the tile grids, and merging
// neighbouring tiles into shared windows. No workers, no models.

/** A rectangle in image pixels. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * `v` rounded up to a multiple of `m`.
 *
 * @example
 * ```ts
 * import { roundUp } from "./geometry.ts";
 * roundUp(65, 32); // 96
 * ```
 */
export function roundUp(v: number, m: number): number {
  return Math.ceil(v / m) * m;
}

/**
 * Splits one axis of length `len` into `n` equal cores, each a multiple of `step`, at most about `maxTile`, covering
 * `len` (the last core may stick out past the end).
 *
 * @example
 * ```ts
 * import { splitAxis } from "./geometry.ts";
 * splitAxis(1000, 320, 64); // { n: 4, core: 256 }
 * ```
 */
export function splitAxis(len: number, maxTile: number, step: number): { n: number; core: number } {
  const n = Math.max(1, Math.ceil(len / maxTile));
  return { n, core: roundUp(Math.ceil(len / n), step) };
}

/**
 * The row-major grid of `tile`-px cores over a width×height image, clipped at the right and bottom edges.
 *
 * @example
 * ```ts
 * import { tileGrid } from "./geometry.ts";
 * tileGrid(100, 64, 64).length; // 2: 64×64 and 36×64
 * ```
 */
export function tileGrid(width: number, height: number, tile: number): Box[] {
  const out: Box[] = [];
  for (let y = 0; y < height; y += tile) {
    for (let x = 0; x < width; x += tile) {
      out.push({ x, y, w: Math.min(tile, width - x), h: Math.min(tile, height - y) });
    }
  }
  return out;
}

/** A rectangle of grid tiles run as one window. */
export interface Rect {
  col: number;
  row: number;
  cols: number;
  rows: number;
  /** Grid indices of the tiles it covers. */
  tiles: number[];
}

/**
 * Rectangles of grid tiles that cover `tileIdx` (indices into a row-major grid of `cols` columns and `count` tiles).
 * With `merge`, neighbouring tiles share one rectangle (run as one window with one halo around it, instead of a halo
 * per tile); rectangles grow greedily in row-major order, right first, then down. Without, one rectangle per tile.
 *
 * @example
 * ```ts
 * import { mergeTiles } from "./geometry.ts";
 * // A 3×2 grid; tiles 0, 1, 3, 4 form one 2×2 rectangle, tile 5 stays alone.
 * mergeTiles([0, 1, 3, 4, 5], 3, 6).map((r) => [r.cols, r.rows]); // [[2, 2], [1, 1]]
 * ```
 */
export function mergeTiles(tileIdx: number[], cols: number, count: number, merge = true): Rect[] {
  const want = new Set(tileIdx);
  const used = new Set<number>();
  const out: Rect[] = [];
  for (const ti of [...tileIdx].sort((a, b) => a - b)) {
    if (used.has(ti)) continue;
    const r0 = Math.floor(ti / cols), c0 = ti % cols;
    let k = 1, rows = 1;
    if (merge) {
      while (c0 + k < cols && want.has(ti + k) && !used.has(ti + k)) k++;
      const rowFree = (r: number) => {
        for (let c = c0; c < c0 + k; c++) {
          const j = r * cols + c;
          if (j >= count || !want.has(j) || used.has(j)) return false;
        }
        return true;
      };
      while (rowFree(r0 + rows)) rows++;
    }
    const tiles: number[] = [];
    for (let r = r0; r < r0 + rows; r++) for (let c = c0; c < c0 + k; c++) tiles.push(r * cols + c);
    tiles.forEach((j) => used.add(j));
    out.push({ col: c0, row: r0, cols: k, rows, tiles });
  }
  return out;
}
