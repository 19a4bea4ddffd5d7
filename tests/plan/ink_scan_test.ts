// The ink scan (lib/plan/ink_scan.ts): its WebAssembly kernel against a plain per-pixel reading, and the ink grids
// built from it (lib/plan/ink_cells.ts) against those read pixel by pixel where the scan does not run.

import assert from "node:assert/strict";
import { compileWat, WASM_MODULES } from "../../bin/wasm.ts";
import { inkScan, SCAN_CELL } from "../../lib/plan/ink_scan.ts";
import { BACKGROUND_PATTERN, inkCells, withoutLines } from "../../lib/plan/ink_cells.ts";
import { rng } from "../../dev/image_fixtures.ts";
import type { RgbaImage } from "../../lib/image/mod.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("every committed WebAssembly binary is its text compiled (deno task wasm)", async () => {
  for (const { text, binary } of WASM_MODULES) {
    const compiled = await compileWat(text, await Deno.readTextFile(new URL(text, ROOT)));
    assert.deepEqual(await Deno.readFile(new URL(binary, ROOT)), compiled, `${binary}: run deno task wasm`);
  }
});

/**
 * A page-like opaque image: a background colour, a faint dither over part of it, rules across and down, boxes,
 * strokes of text (runs of dark pixels with anti-aliased edges), a gradient and a block of noise, from `seed`.
 */
function page(width: number, height: number, seed: number): RgbaImage {
  const rand = rng(seed);
  const data = new Uint8Array(4 * width * height);
  const set = (x: number, y: number, r: number, g: number, b: number) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    data.set([r, g, b, 255], 4 * (y * width + x));
  };
  const bg = 230 + Math.floor(rand() * 26);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // A faint dither (±3) on the left third, a colour band at the top.
      const d = x < width / 3 ? Math.floor(rand() * 7) - 3 : 0;
      if (y < 10) set(x, y, 40, 90, 160);
      else set(x, y, bg + Math.min(0, d), bg + Math.min(0, d), bg);
    }
  }
  for (let k = 0; k < 3; k++) {
    const y = 12 + Math.floor(rand() * (height - 14)), x = Math.floor(rand() * (width - 1));
    for (let i = 0; i < width; i++) set(i, y, 120, 120, 120);
    for (let i = 0; i < height; i++) set(x, i, 200, 60, 60);
  }
  for (let k = 0; k < 40; k++) {
    const x = Math.floor(rand() * width), y = 12 + Math.floor(rand() * (height - 12));
    const w = 1 + Math.floor(rand() * 30), h = 1 + Math.floor(rand() * 9), v = Math.floor(rand() * 120);
    for (let j = 0; j < h; j++) {
      for (let i = 0; i < w; i++) set(x + i, y + j, v, v, v + 10);
      set(x - 1, y + j, (v + bg) >> 1, (v + bg) >> 1, (v + bg) >> 1);
    }
  }
  // A gradient, one step per pixel across and per two down: its cells' spreads lie around every range tested.
  const gx = Math.floor(rand() * width), gy = Math.floor(rand() * height);
  for (let j = 0; j < 24; j++) {
    for (let i = 0; i < 40; i++) set(gx + i, gy + j, 100 + i, 60 + (j >> 1), 90);
  }
  const nx = Math.floor(rand() * width), ny = Math.floor(rand() * height);
  for (let j = 0; j < 20; j++) {
    for (let i = 0; i < 20; i++) set(nx + i, ny + j, rand() * 256, rand() * 256, rand() * 256);
  }
  return { width, height, data };
}

Deno.test("inkScan: per 8 px cell the lowest and highest of each channel, and whether its rows and columns are flat", () => {
  for (const [width, height, seed] of [[203, 97, 1], [64, 64, 2], [9, 3, 3], [1, 17, 4], [333, 8, 5]]) {
    const image = page(width, height, seed);
    for (const range of [0, 3, 6, 7, 8, 40]) {
      const scan = inkScan({ ...image }, range)!;
      assert.ok(scan, `${width}×${height} is opaque`);
      const cols = Math.ceil(width / SCAN_CELL), rows = Math.ceil(height / SCAN_CELL);
      assert.deepEqual([scan.cols, scan.rows, scan.range], [cols, rows, range]);
      for (let cy = 0; cy < rows; cy++) {
        for (let cx = 0; cx < cols; cx++) {
          const x0 = cx * SCAN_CELL, y0 = cy * SCAN_CELL;
          const x1 = Math.min(width, x0 + SCAN_CELL), y1 = Math.min(height, y0 + SCAN_CELL);
          const lo = [255, 255, 255, 255], hi = [0, 0, 0, 0];
          // Whether the channels of the pixels (x, y) for `along` are within `range`.
          const flat = (along: [number, number][]) =>
            [0, 1, 2, 3].every((ch) => {
              const v = along.map(([x, y]) => image.data[4 * (y * width + x) + ch]);
              return Math.max(...v) - Math.min(...v) <= range;
            });
          let rowsFlat = true, colsFlat = true;
          for (let y = y0; y < y1; y++) {
            rowsFlat &&= flat(Array.from({ length: x1 - x0 }, (_, i) => [x0 + i, y]));
            for (let x = x0; x < x1; x++) {
              for (let ch = 0; ch < 4; ch++) {
                lo[ch] = Math.min(lo[ch], image.data[4 * (y * width + x) + ch]);
                hi[ch] = Math.max(hi[ch], image.data[4 * (y * width + x) + ch]);
              }
            }
          }
          for (let x = x0; x < x1; x++) colsFlat &&= flat(Array.from({ length: y1 - y0 }, (_, i) => [x, y0 + i]));
          const c = cy * cols + cx, word = (v: number[]) => (v[0] | (v[1] << 8) | (v[2] << 16) | (v[3] << 24)) >>> 0;
          assert.equal(scan.lo[c], word(lo), `lowest, ${width}×${height} cell ${cx},${cy}`);
          assert.equal(scan.hi[c], word(hi), `highest, ${width}×${height} cell ${cx},${cy}`);
          assert.equal(
            scan.flags[c],
            (rowsFlat ? 1 : 0) | (colsFlat ? 2 : 0),
            `flags, ${width}×${height} cell ${cx},${cy}`,
          );
        }
      }
    }
  }
});

Deno.test("inkScan: none for an image with a pixel that is not opaque; the grids then read its pixels, the same", () => {
  for (const [width, height, seed] of [[203, 97, 11], [640, 360, 12], [130, 250, 13]]) {
    const opaque = page(width, height, seed);
    // The same page with one white pixel at alpha 254: composited over white it is the opaque page's pixel again.
    const translucent = { width, height, data: opaque.data.slice() };
    translucent.data.set([255, 255, 255, 254], 4 * (height * width - 1));
    opaque.data.set([255, 255, 255, 255], 4 * (height * width - 1));
    assert.ok(inkScan(opaque, 8));
    assert.equal(inkScan(translucent, 8), null);
    for (const cell of [8, 16, 32]) {
      const a = inkCells(opaque, cell, 8, 255, undefined, BACKGROUND_PATTERN);
      const b = inkCells(translucent, cell, 8, 255, undefined, BACKGROUND_PATTERN);
      assert.deepEqual(a.on, b.on, `${width}×${height} at ${cell} px`);
      assert.ok(a.on.includes(1) && a.on.includes(0), `${width}×${height} at ${cell} px: ink and blank`);
      for (let c = 0; c < a.on.length; c++) {
        if (!a.on[c]) assert.deepEqual(a.colour!.subarray(3 * c, 3 * c + 3), b.colour!.subarray(3 * c, 3 * c + 3));
      }
      if (cell !== 32) continue;
      const fa = inkCells(opaque, 8, 8, 255, a), fb = inkCells(translucent, 8, 8, 255, b);
      assert.deepEqual(fa.on, fb.on, `${width}×${height}: 8 px within 32 px`);
      const la = withoutLines(opaque, fa, 8, 8), lb = withoutLines(translucent, fb, 8, 8);
      assert.deepEqual(la.on, lb.on, `${width}×${height}: without lines`);
      assert.ok(la.on.filter(Boolean).length < fa.on.filter(Boolean).length, `${width}×${height}: rules removed`);
    }
  }
});
