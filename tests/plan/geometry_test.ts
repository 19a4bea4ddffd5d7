// Tile geometry (lib/plan/geometry.ts): grids, axis splits and merged windows, without models or workers.

import assert from "node:assert/strict";
import { mergeTiles, roundUp, splitAxis, tileGrid } from "../../lib/plan/mod.ts";

Deno.test("roundUp and splitAxis: cores are multiples of the step and cover the axis", () => {
  assert.equal(roundUp(65, 32), 96);
  assert.equal(roundUp(64, 32), 64);
  for (const len of [1, 63, 64, 320, 321, 1000, 1629, 1920]) {
    for (const step of [2, 32, 64]) {
      const { n, core } = splitAxis(len, 320, step);
      assert.equal(core % step, 0);
      assert.ok(n * core >= len, `${len}/${step}: ${n}×${core}`);
      assert.ok((n - 1) * core < len, "no empty last tile");
      assert.ok(core <= roundUp(320, step) + step);
    }
  }
});

Deno.test("tileGrid: row-major, clipped at the right and bottom, covers every pixel once", () => {
  const w = 150, h = 70;
  const grid = tileGrid(w, h, 64);
  assert.equal(grid.length, 3 * 2);
  assert.deepEqual(grid[2], { x: 128, y: 0, w: 22, h: 64 });
  assert.deepEqual(grid[5], { x: 128, y: 64, w: 22, h: 6 });
  const cover = new Uint8Array(w * h);
  for (const t of grid) for (let y = t.y; y < t.y + t.h; y++) for (let x = t.x; x < t.x + t.w; x++) cover[y * w + x]++;
  assert.ok(cover.every((v) => v === 1));
});

Deno.test("mergeTiles: neighbours share rectangles, every wanted tile is covered once, nothing else", () => {
  // 4×3 grid:  0  1  2  3
  //            4  5  6  7
  //            8  9 10 11
  const want = [0, 1, 4, 5, 8, 3, 7, 10];
  const rects = mergeTiles(want, 4, 12);
  assert.deepEqual(rects.map((r) => [r.col, r.row, r.cols, r.rows]), [[0, 0, 2, 2], [3, 0, 1, 2], [0, 2, 1, 1], [
    2,
    2,
    1,
    1,
  ]]);
  const covered = rects.flatMap((r) => r.tiles).sort((a, b) => a - b);
  assert.deepEqual(covered, [...want].sort((a, b) => a - b));
  // Without merging: one rectangle per tile.
  assert.equal(mergeTiles(want, 4, 12, false).length, want.length);
  // A last row shorter than the grid (count < rows·cols) is never reached past its end.
  assert.deepEqual(mergeTiles([8, 9], 4, 10).map((r) => r.cols), [2]);
});
