// The regions of a window's ink the model's tail runs on (lib/onnx/tail.ts), for the ink cover (lib/plan/ink_cover.ts):
// XY cuts of the window's cells with ink on a grid finer than the cover's, at most the tail's slots, rules and frames
// left out, short gaps in a line bridged.

import type { RgbaImage } from "../image/mod.ts";
import type { LoadedModel } from "../models.ts";
import { type CellCut, type CellGrid, type CellRect, coverCells } from "./cover.ts";
import { bridgeRows, inkCells, withoutLines } from "./ink_cells.ts";
import type { FocusWindow, InkCoverOptions } from "./ink_cover.ts";

/**
 * Per window of a cover of `ink` (its `cell` px cells), the regions `tail` runs on: whole cells with ink of the finer
 * tail grid where that prices less than the cover's own cells, the window's core where every cell has ink.
 */
export function tailRegions(
  model: LoadedModel,
  image: RgbaImage,
  o: InkCoverOptions,
  ink: CellGrid,
  cell: number,
  tail: NonNullable<LoadedModel["levels"]>["graphs"]["tail"],
): (f: FocusWindow) => FocusWindow["window"][] {
  const fine = o.tailCell;
  if (cell % fine || tail.cuts.some((c) => fine % c.stride)) {
    throw new Error(`tail cell ${fine} px: not a divisor of the ${cell} px cell and a multiple of the tail's strides`);
  }
  // The fine grid is read where the cover's cells have ink, once a window needs it, and once per ink grid: the budget
  // paths cover the same ink again at narrower halos.
  let tailInk: CellGrid | undefined;
  const grown = (parts: FocusWindow["window"][]) => parts.reduce((s, p) => s + grownArea(p.w, p.h, tail.halo), 0);
  const cut = (r: CellRect) => {
    // Ink in every cell of the window (a photo): no cut can pay, and exploring them all took 4–5 ms on a 720×477
    // photo. Nor where one window holds the whole page, ink fills nearly all of it (`PHOTO_INK`) and no row or column
    // of cells across it is blank (a band a cut would drop).
    const inked = inkedCells(ink, r), all = r.cols * r.rows;
    const photo = inked >= PHOTO_INK * all && r.cols === ink.cols && r.rows === ink.rows && !blankLine(ink);
    if (inked === all || photo) {
      return [{ x: r.col * cell, y: r.row * cell, w: r.cols * cell, h: r.rows * cell }];
    }
    const coarse = tailParts(ink, r, 1, tail.halo, tail.slots);
    if (fine === cell) return coarse;
    tailInk ??= tailGrid(model, image, o, ink);
    let a = tailParts(tailInk, r, cell / fine, tail.halo, tail.slots);
    if (o.tailGap >= fine) {
      const b = tailParts(bridgedTail(tailInk, o.tailGap), r, cell / fine, tail.halo, tail.slots);
      if (grown(b) <= grown(a) * TAIL_GAP_SLACK) a = b;
    }
    return grown(coarse) < grown(a) ? coarse : a;
  };
  // A window's regions depend on its cells only: the budget paths' covers of the same ink at other halos and window
  // sizes share most of them (a 1170×2532 page at 75 % of its price: plan 139 and 175 → 76 and 103 ms, median of 8
  // requests in two interleaved runs, `.scratch/budmed.ts`).
  let known = tailCuts.get(ink);
  if (!known) tailCuts.set(ink, known = new Map());
  const parts = (f: FocusWindow) => {
    const r = f.rect,
      key = `${model.spec.id} ${fine} ${o.tailLineRun} ${o.tailGap} ${r.col} ${r.row} ${r.cols} ${r.rows}`;
    let p = known.get(key);
    if (!p) known.set(key, p = cut(r));
    return p;
  };
  return parts;
}

/**
 * Share of the cover's cells with ink at or above which a window over the whole page (every cell of the ink grid) runs
 * its tail on all of it, uncut: a photo's few blank cells lie scattered, and the tail's slots cannot carve them out.
 * The evaluation's photos where not every cell has ink have 0.912–0.997 with ink. Cutting their tails' regions took
 * the planner 3–19 ms more (native, the default's median plan time: the 1280×960 and 1004×958 photos 21–23 → 4.5–6.0
 * ms; `.scratch/photoclock.ts`), and the whole image ran anyway, but on one photo, whose cut cover cost 99.8 % of it
 * (`deno run -A bench/eval/budget_sweep.ts --kind photo --set tune,val,test --shares 1,0.75,0.5,0.25`: no other plan
 * changed). A window over a whole screenshot (a dense page) has at most 0.796 with ink, squeezed across to any width
 * the budget's squeezed cover takes (`FocusOptions.minSqueeze`) 0.839 (every evaluation image; `.scratch/inkshare.ts`,
 * `.scratch/sqshare.ts`); a page of dense text blocks with a blank band between them can have more, and its tail's cut
 * drops the band: where a whole row or column of cells is blank, the window is cut as any other. None of the photos
 * has such a line.
 */
const PHOTO_INK = 0.88;

/**
 * What one more region of a window's tail costs, in px of tail region: the XY cut of a window's ink cells into tail
 * regions weighs it against the area a cut saves. 16384 instead of 4096 priced the tuning and validation pages 0.4 and
 * 0.1 points higher; with 24 slots, 1024 instead of 4096 0.4 and 0.1 points lower (lib/onnx/levels.ts `TAIL_SLOTS` has
 * the command).
 */
const TAIL_REGION_PIXELS = 1024;

/**
 * How much dearer than its box a cut of the tail's regions may be and still be explored further (coverCells'
 * `lookahead`): the windows' 0.25 explored dense blocks of 8 px cells cut after cut, for regions of the same total
 * area (0.1: the same on the validation and test pages, 0.3 % less on the tuning ones, in 0.56× the time; 0: 5–8
 * points more area; a scratch script over every page's windows).
 */
const TAIL_LOOKAHEAD = 0.1;

/**
 * Factor the per-region cost of the tail's cut grows by until the cut needs no more than the slots: a finer step ends
 * nearer the slot count. Doubling left a 1170×2532 test page 5 regions for 16 slots at 95.1 % of full; 1.25: 16
 * regions, 86.1 %; mean served cost ÷ full, tuning / validation (`bench/eval/squeeze.ts --crossed-halo none`): 2 →
 * 0.725 / 0.592, 1.25 → 0.721 / 0.588, 1.1 → 0.718 / 0.587 (2.5 ms more planning on a 1170×2532 page at 1.25).
 */
const TAIL_COST_STEP = 1.25;

/**
 * How much more a window's tail regions may cost (their area grown by the tail's halo) with its short gaps bridged
 * (`InkCoverOptions.tailGap`) than without, for the bridged cut to be taken. A gap is a few cells, but bridged to a
 * tall column of ink (the shaded edge of a content box on OpenCV's Doxygen pages) it ties every line to it, and the cut
 * keeps the blank between them: with the bridge taken everywhere (commit 17cebe6, `deno run -A
 * bench/eval/budget_sweep.ts --set val3 --shares 1`) such a page cost 67.5 → 80.2 % of full, for no IoU. Bridged ÷
 * unbridged over the 265 windows of the default covers of every evaluation screenshot (scratch `.scratch/ratios.ts`):
 * median 1.000, 95th percentile 1.039, 5 above 1.1, all on Doxygen pages (1.12–2.15).
 */
const TAIL_GAP_SLACK = 1.1;

/**
 * The rectangles of ink cells of `ink` (a grid `scale` times finer than the cover's) inside the cover's rectangle
 * `rect` a window's tail runs on, at most `slots`: XY cuts of those cells, each rectangle priced at its area grown by
 * the tail's `halo` on every side, plus {@link TAIL_REGION_PIXELS} (grown by {@link TAIL_COST_STEP} until the cut needs
 * no more than `slots`).
 */
function tailParts(
  ink: CellGrid,
  rect: CellRect,
  scale: number,
  halo: number,
  slots: number,
): FocusWindow["window"][] {
  const c = ink.cell, col = rect.col * scale, row = rect.row * scale;
  // The fine grid ends where the image does; the cover's last cells may reach past it (the padded page).
  const cols = Math.min(rect.cols * scale, ink.cols - col), rows = Math.min(rect.rows * scale, ink.rows - row);
  const on = new Uint8Array(cols * rows);
  for (let y = 0; y < rows; y++) {
    on.set(ink.on.subarray((y + row) * ink.cols + col, (y + row) * ink.cols + col + cols), y * cols);
  }
  const sub = { cols, rows, cell: c, on };
  // Each larger per-rectangle cost redoes the cut; the best cut of a box does not depend on it, so it is found once.
  const cuts = new Map<number, CellCut | null>();
  const cost = (extra: number) => (q: CellRect) => grownArea(q.cols * c, q.rows * c, halo) + extra;
  let rects = coverCells(sub, cost(TAIL_REGION_PIXELS), TAIL_LOOKAHEAD, cuts);
  for (let extra = TAIL_REGION_PIXELS * TAIL_COST_STEP; rects.length > slots; extra *= TAIL_COST_STEP) {
    rects = coverCells(sub, cost(extra), TAIL_LOOKAHEAD, cuts);
  }
  return rects.map((q) => ({ x: (q.col + col) * c, y: (q.row + row) * c, w: q.cols * c, h: q.rows * c }));
}

/** Each ink grid's tail regions per window cells (`coverInk`), while the ink grid lives. */
const tailCuts = new WeakMap<CellGrid, Map<string, FocusWindow["window"][]>>();

/** Each ink grid's finer grid for the tail's regions (`coverInk`), while the ink grid lives. */
const fineGrids = new WeakMap<CellGrid, { grid: CellGrid; lineRun: number }>();

/** Each tail grid with its short gaps in a row bridged (`InkCoverOptions.tailGap`), while the tail grid lives. */
const bridgedGrids = new WeakMap<CellGrid, { grid: CellGrid; gap: number }>();

/** `grid` (a tail grid) with its gaps of up to `gap` px in a row counted as ink (ink_cells.ts `bridgeRows`). */
function bridgedTail(grid: CellGrid, gap: number): CellGrid {
  const cached = bridgedGrids.get(grid);
  if (cached?.gap === gap) return cached.grid;
  const bridged = bridgeRows(grid, Math.floor(gap / grid.cell));
  bridgedGrids.set(grid, { grid: bridged, gap });
  return bridged;
}

/** The finer grid of `ink` the tail's regions are cut on: its `o.tailCell` px cells with ink, long lines left out. */
export function tailGrid(model: LoadedModel, image: RgbaImage, o: InkCoverOptions, ink: CellGrid): CellGrid {
  const cached = fineGrids.get(ink);
  if (cached?.grid.cell === o.tailCell && cached.lineRun === o.tailLineRun) return cached.grid;
  const bg = model.spec.input.background;
  let grid = inkCells(image, o.tailCell, o.inkRange, bg, ink);
  if (o.tailLineRun) grid = withoutLines(image, grid, o.inkRange, o.tailLineRun, bg);
  fineGrids.set(ink, { grid, lineRun: o.tailLineRun });
  return grid;
}

/** Px of a w×h rectangle grown by `halo` on every side. */
const grownArea = (w: number, h: number, halo: number) => (w + 2 * halo) * (h + 2 * halo);

/** Whether a whole row or column of `grid`'s cells is blank. */
function blankLine({ cols, rows, on }: CellGrid): boolean {
  const rowInk = new Uint8Array(rows), colInk = new Uint8Array(cols);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      if (on[y * cols + x]) rowInk[y] = colInk[x] = 1;
    }
  }
  return rowInk.includes(0) || colInk.includes(0);
}

/** How many cells of `rect` hold ink. */
export function inkedCells(ink: CellGrid, rect: CellRect): number {
  let n = 0;
  for (let y = rect.row; y < rect.row + rect.rows; y++) {
    for (let x = rect.col; x < rect.col + rect.cols; x++) n += ink.on[y * ink.cols + x];
  }
  return n;
}
