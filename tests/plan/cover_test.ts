// The cell grids of glance → focus: which cells hold ink (lib/plan/ink_cells.ts), and their cover by few rectangles
// (lib/plan/cover.ts).

import assert from "node:assert/strict";
import { type CellCut, type CellGrid, type CellRect, coverCells, crossedSides } from "../../lib/plan/cover.ts";
import { BACKGROUND_PATTERN, bridgeRows, inkCells, withoutLines } from "../../lib/plan/ink_cells.ts";
import { stripedPage } from "../_util.ts";

/** A deterministic pseudo-random source in [0, 1). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

Deno.test("inkCells marks the cells with strokes; coverCells covers every marked cell once, in few rectangles", () => {
  const image = stripedPage(640, 480, [{ x: 40, y: 40, w: 200, h: 60 }, { x: 500, y: 400, w: 100, h: 40 }]);
  const grid = inkCells(image, 32, 8);
  assert.equal(grid.cols, 20);
  assert.equal(grid.rows, 15);
  assert.equal(grid.on[0], 0);
  assert.equal(grid.on[1 * 20 + 1], 1);
  const rects = coverCells(grid, (r) => (r.cols + 2) * (r.rows + 2));
  assert.equal(rects.length, 2, "two blocks far apart run as two windows");
  const seen = new Uint8Array(grid.on.length);
  for (const r of rects) {
    for (let y = r.row; y < r.row + r.rows; y++) for (let x = r.col; x < r.col + r.cols; x++) seen[y * 20 + x]++;
  }
  assert.ok(seen.every((v) => v <= 1), "rectangles overlap");
  assert.ok(grid.on.every((v, i) => !v || seen[i] === 1), "a marked cell is left out");
  // A box that may not run as one window (cost Infinity) is always split.
  const capped = coverCells(grid, (r) => (r.cols > 4 ? Infinity : (r.cols + 2) * (r.rows + 2)));
  assert.ok(capped.every((r) => r.cols <= 4));
});

Deno.test("inkCells: transparent pixels are composited over the background; each cell's colour is its mid-range", () => {
  // 4×2 px, cells of 2: cell 0 white with one fully transparent black pixel (white over a white background: blank),
  // cell 1 white with one half-transparent black pixel (grey: ink).
  const data = new Uint8Array(4 * 2 * 4).fill(255);
  data.set([0, 0, 0, 0], 0);
  data.set([0, 0, 0, 128], 4 * 2);
  const grid = inkCells({ width: 4, height: 2, data }, 2, 8, 255);
  assert.deepEqual([...grid.on], [0, 1]);
  assert.deepEqual([...grid.colour!.subarray(0, 3)], [255, 255, 255]);
  assert.deepEqual([...grid.colour!.subarray(3, 6)], [191, 191, 191], "mid-range of 127 and 255");
  // Over a black background the transparent pixel is black: ink.
  assert.deepEqual([...inkCells({ width: 4, height: 2, data }, 2, 8, 0).on], [1, 1]);
});

Deno.test("inkCells: the runs it skips and the cells it stops reading change nothing (vs reading every pixel)", () => {
  // Every cell's range read pixel by pixel, composited over `bg`: what the shortcuts must reproduce.
  const reference = (
    image: { width: number; height: number; data: Uint8Array },
    cell: number,
    bg: number,
    pattern?: typeof BACKGROUND_PATTERN,
  ) => {
    const cols = Math.ceil(image.width / cell), rows = Math.ceil(image.height / cell);
    const lo = new Array(cols * rows * 3).fill(255), hi = new Array(cols * rows * 3).fill(0);
    for (let y = 0; y < image.height; y++) {
      for (let x = 0; x < image.width; x++) {
        const p = 4 * (y * image.width + x), a = image.data[p + 3];
        const c = 3 * (Math.floor(y / cell) * cols + Math.floor(x / cell));
        for (let k = 0; k < 3; k++) {
          const v = Math.round((image.data[p + k] * a + bg * (255 - a)) / 255);
          lo[c + k] = Math.min(lo[c + k], v);
          hi[c + k] = Math.max(hi[c + k], v);
        }
      }
    }
    const spread = (c: number) => Math.max(...[0, 1, 2].map((k) => hi[3 * c + k] - lo[3 * c + k]));
    const on = Array.from({ length: cols * rows }, (_, c) => spread(c) > 8 ? 1 : 0);
    if (!pattern) return on;
    // The faint cells whose lowest and highest colours a share of the grid's cells have count blank.
    const key = (c: number) => [0, 1, 2].map((k) => `${lo[3 * c + k]}/${hi[3 * c + k]}`).join();
    const faint = on.map((v, c) => v && spread(c) <= pattern.range ? key(c) : "");
    const count = (k: string) => faint.filter((f) => f === k).length;
    return on.map((v, c) => faint[c] && count(faint[c]) >= pattern.share * cols * rows ? 0 : v);
  };
  const rnd = random(11);
  for (let n = 0; n < 60; n++) {
    const width = 1 + Math.floor(rnd() * 90),
      height = 1 + Math.floor(rnd() * 50),
      data = new Uint8Array(width * height * 4);
    // Runs of one colour (a page), broken at random: a run may start at any pixel of a cell's row, last one pixel,
    // or hold a translucent colour; a faint colour (within the range) keeps a cell blank.
    let colour = [255, 255, 255, 255];
    for (let i = 0; i < width * height; i++) {
      const r = rnd();
      if (r < 0.02) colour = [0, 0, 0, 255];
      else if (r < 0.04) colour = [255, 255, 255, 255];
      else if (r < 0.05) colour = [250, 251, 249, 255];
      else if (r < 0.06) colour = [20, 200, 90, Math.floor(rnd() * 256)];
      data.set(colour, 4 * i);
    }
    const image = { width, height, data };
    for (const [cell, bg] of [[8, 255], [32, 255], [4, 0]]) {
      assert.deepEqual(
        [...inkCells(image, cell, 8, bg).on],
        reference(image, cell, bg),
        `image ${n}, ${cell} px cells`,
      );
      // Faint cells (one channel of a translucent colour) read whole, some of them in a pattern many cells share.
      assert.deepEqual(
        [...inkCells(image, cell, 8, bg, undefined, BACKGROUND_PATTERN).on],
        reference(image, cell, bg, BACKGROUND_PATTERN),
        `image ${n}, ${cell} px cells, background pattern`,
      );
    }
  }
});

Deno.test("inkCells: a faint pattern across the page counts blank (BACKGROUND_PATTERN); text, a faint word not", () => {
  // A 256×256 page textured with faint diagonal stripes (blue 238–255, period 6 px: every 32 px cell holds all of
  // them), a line of black text at (40, 40) and a faint grey word (range 20 < 32) at (160, 200) on plain white.
  const width = 256, height = 256, data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([255, 255, 238 + 17 * Number((x + y) % 6 < 3), 255], 4 * (y * width + x));
  }
  const text = stripedPage(width, height, [{ x: 40, y: 40, w: 150, h: 14 }]);
  for (let i = 0; i < width * height; i++) if (text.data[4 * i] === 0) data.set([0, 0, 0], 4 * i);
  for (let y = 192; y < 224; y++) data.fill(255, 4 * y * width + 4 * 160, 4 * y * width + 4 * 192);
  for (let y = 200; y < 210; y++) for (let x = 164; x < 186; x += 3) data.set([235, 235, 235], 4 * (y * width + x));
  const image = { width, height, data };
  const cell = (x: number, y: number) => Math.floor(y / 32) * 8 + Math.floor(x / 32);
  const plain = inkCells(image, 32, 8), patterned = inkCells(image, 32, 8, 255, undefined, BACKGROUND_PATTERN);
  assert.equal(plain.on.reduce((s, v) => s + v, 0), 64, "without it, the texture is ink everywhere");
  const ink = [...patterned.on.keys()].filter((c) => patterned.on[c]);
  assert.deepEqual(ink, [cell(40, 40), cell(72, 40), cell(104, 40), cell(136, 40), cell(168, 40), cell(164, 200)]);
});

Deno.test("inkCells within a coarser grid: the same cells as reading every fine cell, the blank coarse ones unread", () => {
  const rnd = random(7);
  for (let n = 0; n < 20; n++) {
    const width = 40 + Math.floor(rnd() * 300), height = 40 + Math.floor(rnd() * 300);
    const boxes = Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => ({
      x: Math.floor(rnd() * width),
      y: Math.floor(rnd() * height),
      w: 1 + Math.floor(rnd() * 60),
      h: 1 + Math.floor(rnd() * 20),
    }));
    const image = stripedPage(width, height, boxes);
    // A faint gradient: coarse cells it spans may show ink while none of their fine cells does.
    for (let i = 0; i < width * height; i++) if (image.data[4 * i] === 255) image.data[4 * i] = 255 - (i % width) % 12;
    const coarse = inkCells(image, 32, 8);
    const within = inkCells(image, 8, 8, 255, coarse);
    assert.deepEqual(within.on, inkCells(image, 8, 8).on, `image ${n}`);
    assert.equal(within.colour, undefined);
  }
  assert.throws(
    () => inkCells(stripedPage(64, 64, []), 12, 8, 255, inkCells(stripedPage(64, 64, []), 32, 8)),
    /not made of/,
  );
});

Deno.test("coverCells: best cuts kept for a cost larger by a constant per rectangle give the same cover", () => {
  const rnd = random(11);
  for (let n = 0; n < 50; n++) {
    const cols = 1 + Math.floor(rnd() * 40), rows = 1 + Math.floor(rnd() * 40), p = rnd() * 0.3;
    const grid: CellGrid = { cols, rows, cell: 8, on: Uint8Array.from({ length: cols * rows }, () => +(rnd() < p)) };
    const cuts = new Map<number, CellCut | null>();
    for (let extra = 64; extra <= 4096; extra *= 4) {
      const cost = (r: CellRect) => (r.cols * 8 + 32) * (r.rows * 8 + 32) + extra;
      assert.deepEqual(coverCells(grid, cost, undefined, cuts), coverCells(grid, cost), `grid ${n}, extra ${extra}`);
    }
  }
});

/**
 * Recursive XY cuts as coverCells defines them, read the plain way: each box's tight box and its best cut from a scan of
 * every cell, both halves always solved. What coverCells' lookups and pruning must reproduce.
 */
function plainCover(grid: CellGrid, cost: (r: CellRect) => number, lookahead: number): CellRect[] {
  const on = (x: number, y: number) => grid.on[y * grid.cols + x] === 1;
  const tight = (r: CellRect): CellRect | null => {
    let c0 = Infinity, c1 = -1, r0 = Infinity, r1 = -1;
    for (let y = r.row; y < r.row + r.rows; y++) {
      for (let x = r.col; x < r.col + r.cols; x++) {
        if (on(x, y)) [c0, c1, r0, r1] = [Math.min(c0, x), Math.max(c1, x), Math.min(r0, y), Math.max(r1, y)];
      }
    }
    return c1 < 0 ? null : { col: c0, row: r0, cols: c1 - c0 + 1, rows: r1 - r0 + 1 };
  };
  const halves = (r: CellRect, axis: number, k: number): [CellRect, CellRect] =>
    axis === 0
      ? [{ ...r, cols: k }, { ...r, col: r.col + k, cols: r.cols - k }]
      : [{ ...r, rows: k }, { ...r, row: r.row + k, rows: r.rows - k }];
  const solve = (region: CellRect): { rects: CellRect[]; cost: number } => {
    const box = tight(region);
    if (!box) return { rects: [], cost: 0 };
    const whole = cost(box);
    if (box.cols * box.rows === 1) return { rects: [box], cost: whole };
    let best = Infinity, cut: [CellRect, CellRect] | null = null;
    for (const axis of [0, 1]) {
      for (let k = 1; k < (axis === 0 ? box.cols : box.rows); k++) {
        const [a, b] = halves(box, axis, k).map(tight);
        if (!a || !b) continue;
        const c = cost(a) + cost(b);
        if (c < best) [best, cut] = [c, [a, b]];
      }
    }
    if (!cut || best >= whole * (1 + lookahead)) return { rects: [box], cost: whole };
    const a = solve(cut[0]), b = solve(cut[1]);
    return a.cost + b.cost < whole
      ? { rects: [...a.rects, ...b.rects], cost: a.cost + b.cost }
      : { rects: [box], cost: whole };
  };
  return solve({ col: 0, row: 0, cols: grid.cols, rows: grid.rows }).rects;
}

Deno.test("coverCells: the same cover as plain recursive XY cuts, on sparse and dense grids", () => {
  const rnd = random(23);
  for (let n = 0; n < 120; n++) {
    const cols = 1 + Math.floor(rnd() * 30), rows = 1 + Math.floor(rnd() * 30), p = [0.05, 0.3, 0.8, 0.97][n % 4];
    const grid: CellGrid = { cols, rows, cell: 8, on: Uint8Array.from({ length: cols * rows }, () => +(rnd() < p)) };
    const halo = [0, 8, 32][n % 3], extra = [0, 1024][n % 2], lookahead = [0, 0.1, 0.25][(n >> 2) % 3];
    const cost = (r: CellRect) => (r.cols * 8 + 2 * halo) * (r.rows * 8 + 2 * halo) + extra;
    assert.deepEqual(coverCells(grid, cost, lookahead), plainCover(grid, cost, lookahead), `grid ${n}`);
  }
  // A full 12×10 block and one cell beside it: the cut pays by one column, its first half costing 0.92 of the box.
  const on = new Uint8Array(13 * 10);
  for (let y = 0; y < 10; y++) on.fill(1, y * 13, y * 13 + 12);
  on[12] = 1;
  const area = (r: CellRect) => r.cols * r.rows;
  const cover = coverCells({ cols: 13, rows: 10, cell: 8, on }, area, 0);
  assert.deepEqual(cover, [{ col: 0, row: 0, cols: 12, rows: 10 }, { col: 12, row: 0, cols: 1, rows: 1 }]);
});

Deno.test("crossedSides: the sides of a cover's rectangles that text crosses into another rectangle", () => {
  // A 6×3 grid: an L of on-cells (row 0, columns 0–3, and column 0, rows 1–2) cut into its bar and its stem, and a
  // cell apart (row 2, column 5) next to nothing.
  const on = Uint8Array.from([1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
  const grid: CellGrid = { cols: 6, rows: 3, cell: 32, on };
  const bar = { col: 0, row: 0, cols: 4, rows: 1 }, stem = { col: 0, row: 1, cols: 1, rows: 2 };
  const apart = { col: 5, row: 2, cols: 1, rows: 1 };
  // [left, top, right, bottom]: the bar's bottom and the stem's top; nothing for the cell apart.
  assert.deepEqual(crossedSides(grid, [bar, stem, apart]), [
    [false, false, false, true],
    [false, true, false, false],
    [false, false, false, false],
  ]);
  // Blank cells across an edge do not count: the bar's bottom row under columns 1–3 is blank, so a stem moved there
  // (on-cells nowhere next to the bar's) is crossed by nothing.
  const gap = Uint8Array.from([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
  assert.deepEqual(
    crossedSides({ ...grid, on: gap }, [bar, { col: 2, row: 2, cols: 1, rows: 1 }]),
    [[false, false, false, false], [false, false, false, false]],
  );
});

Deno.test("withoutLines: long lines, box edges and their corners leave the grid; strokes and short dashes stay", () => {
  const width = 256, height = 128;
  const data = new Uint8Array(width * height * 4).fill(255);
  const paint = (x0: number, y0: number, x1: number, y1: number, v: number) => {
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) data.fill(v, 4 * (y * width + x), 4 * (y * width + x) + 3);
    }
  };
  paint(0, 10, 256, 11, 0); // a 1 px rule across the image (cell row 1)
  paint(200, 20, 202, 128, 90); // a 2 px vertical line (cell column 25, rows 2–15)
  paint(0, 60, 150, 128, 200); // a grey box: its top edge in cell row 7, its right edge in cell column 18
  paint(100, 40, 120, 41, 0); // a dash of 20 px (3 cells): shorter than a line
  const rnd = random(3);
  for (let y = 28; y < 46; y++) for (let x = 40; x < 80; x++) if (rnd() < 0.3) paint(x, y, x + 1, y + 1, 0); // "text"
  const image = { width, height, data };
  const grid = inkCells(image, 8, 8);
  const kept = withoutLines(image, grid, 8, 8);
  const at = (g: CellGrid, col: number, row: number) => g.on[row * g.cols + col];
  assert.ok(kept.on.every((v, i) => !v || grid.on[i]), "only removes cells");
  assert.notEqual(kept.on, grid.on, "a new grid");
  for (let col = 0; col < 32; col++) assert.equal(at(grid, col, 1) - at(kept, col, 1), 1, `rule, cell ${col}`);
  for (let row = 3; row < 16; row++) assert.equal(at(kept, 25, row), 0, `vertical line, row ${row}`);
  for (let col = 0; col < 18; col++) assert.equal(at(kept, col, 7), 0, `box's top edge, cell ${col}`);
  for (let row = 8; row < 16; row++) assert.equal(at(kept, 18, row), 0, `box's right edge, row ${row}`);
  assert.equal(at(grid, 18, 7), 1);
  assert.equal(at(kept, 18, 7), 0, "the box's corner");
  for (const col of [12, 13, 14]) assert.equal(at(kept, col, 5), 1, `dash, cell ${col}`);
  for (let row = 4; row < 6; row++) {
    for (let col = 5; col < 10; col++) assert.equal(at(kept, col, row), at(grid, col, row), `text, ${col}, ${row}`);
  }
  assert.ok([5, 6, 7, 8, 9].some((col) => at(kept, col, 4)), "the text has ink");
  // No run that long: nothing leaves.
  assert.deepEqual(withoutLines(image, grid, 8, 64).on, grid.on);
});

Deno.test("bridgeRows: a short gap between ink in a row counts as ink; a long one, columns and the edges do not", () => {
  const gaps = [0, 1, 0, 0, 1, 0, 0, 0, 1, 0]; // gaps of 2 and 3 cells
  const start = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // ink at the start of a row only: nothing to bridge to
  const below = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]; // under the first row's ink: a gap down a column, not bridged
  const on = Uint8Array.from([...gaps, ...start, ...below]);
  const grid = { cols: 10, rows: 3, cell: 8, on };
  const two = bridgeRows(grid, 2);
  assert.deepEqual([...two.on.subarray(0, 10)], [0, 1, 1, 1, 1, 0, 0, 0, 1, 0]);
  assert.deepEqual([...two.on.subarray(10)], [...on.subarray(10)]);
  assert.deepEqual([...bridgeRows(grid, 3).on.subarray(0, 10)], [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
  assert.deepEqual(bridgeRows(grid, 0).on, on);
  assert.notEqual(two.on, on, "a new grid");
  assert.deepEqual([...on.subarray(0, 10)], [0, 1, 0, 0, 1, 0, 0, 0, 1, 0], "the grid is not changed");
});
