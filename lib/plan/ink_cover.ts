// The ink cover: full-resolution windows over the cells of an image that hold ink, for the glance → focus planner
// (lib/plan/focus.ts). Cells of the model's input multiple; each rectangle of cells (recursive XY cuts,
// lib/plan/cover.ts) grown by a halo of real neighbour pixels and aligned with the whole-image run's stride grid. A
// model with global average pools can run the cover's windows pooling over the page, level by level
// (workers/levels.ts): `inkPooling` gives the job its page, the region each window counts and the blank colours.

import type { LevelPooling } from "../exec/mod.ts";
import type { RgbaImage } from "../image/mod.ts";
import type { LoadedModel } from "../models.ts";
import { type CellGrid, type CellRect, coverCells, crossedSides } from "./cover.ts";
import { BACKGROUND_PATTERN, blankColours, inkCells } from "./ink_cells.ts";
import { tailRegions } from "./tail_regions.ts";
import { roundUp } from "./geometry.ts";

export { inkedCells, tailGrid } from "./tail_regions.ts";

/** The ink cover's knobs (part of lib/plan/focus_options.ts `FocusOptions`; defaults in `DEFAULT_FOCUS_OPTIONS`). */
export interface InkCoverOptions {
  /** A cell is blank when every channel's max − min inside it is at most this (0–255). */
  inkRange: number;
  /** Cost of one more window, in pixels of model input (the per-execution overhead the XY cut weighs). */
  windowPixels: number;
  /** Cell size, px (default: the model's input multiple). */
  cell?: number;
  /** Halo of real neighbour pixels around each focus window, px (default: the model's `tile.halo`). */
  halo?: number;
  /**
   * What the global average pools of the ink cover's windows average over, for a model that has them (the text
   * detector's squeeze-excitation blocks): the page, computed level by level from the windows and the blank page's
   * colours ("page", workers/levels.ts), or each window alone ("window"). On the text test images
   * (docs/TEXT_DRIFT.md, `deno run -A bench/eval/squeeze.ts`), mean / least IoU vs full resolution of the default's
   * windows: pooling alone 0.969 / 0.796, over the page 0.995 / 0.977, fed the whole image's vectors 0.997 / 0.988.
   */
  pooling: "page" | "window";
  /**
   * Halo of the ink cover's windows when they pool over the page, px: the smallest whose least IoU vs full resolution
   * is at least 0.98 on both the tuning and the validation pages (`deno run -A bench/eval/squeeze.ts --set tune|val
   * --halo none --page-halo H --crossed-halo none --out /tmp/t.md`; mean / least IoU, mean cost ÷ full). Tuning: 32 →
   * 0.992 / 0.981, 82.2 %; 64 → 0.996 / 0.989, 84.9 %; 96 → 0.997 / 0.991, 87.2 %. Validation: 32 → 0.990 / 0.966, 68.5
   * %; 64 → 0.994 / 0.975, 72.5 %; 96 → 0.996 / 0.983, 75.5 %; 128 → 0.996 / 0.985, 78.0 %. (64 was chosen first, on
   * the tuning pages alone; it read 0.962 on the test pages, and the validation pages were added.)
   */
  pageHalo: number;
  /**
   * Halo of the sides of the windows pooling over the page where the cover's cut runs through text (ink in the cells
   * just across, covered by another window), px: a window there ends inside a line of text, and its model reads far
   * along it. At least `pageHalo`; the smallest whose least IoU vs full resolution is at least 0.97 on the second
   * validation pages (`deno run -A bench/eval/squeeze.ts --set val2 --halo none --edge-halos 0 --crossed-halo C --out
   * /tmp/t.md`, the served column; mean / least IoU, mean cost ÷ full): 96 (as the other sides) → 0.992 / 0.958,
   * 62.2 %; 160 → 0.993 / 0.973, 63.5 % (fed the whole image's pooled vectors, least 0.972 → 0.986: the halo, not the
   * pooling). Through `focusPlanner(model, { crossedHalo })` (a scratch script, each image against its fixed run):
   * 128 → 0.993 / 0.967, 62.8 %; 192 → 0.994 / 0.973, 64.1 %; tuning pages 96 → 0.997 / 0.991, 72.1 %, 160 → 0.998 /
   * 0.991, 73.1 %; validation 96 → 0.996 / 0.983, 58.8 %, 160 → 0.996 / 0.983, 59.9 %. The cut does not price this
   * halo (priced, it moved the second validation pages' mean cost by −0.2 points and no least IoU). The budget's
   * narrower covers keep one halo on every side (with 160 on their crossed sides: tuning 0.955 → 0.954 at 75 %,
   * validation 0.829 → 0.825 at 25 %).
   */
  crossedHalo?: number;
  /**
   * Where the windows pool over the page: one window over the whole page instead of the cover (no page area left
   * uncovered, no window side inside the page, so each level's averages are the whole image's, exactly; the tail still
   * runs near ink only). Not served: the price of a default without the pools' estimates, for
   * `bench/eval/budget_sweep.ts --whole-page true` (README, "The `text` task").
   */
  wholePage?: boolean;
  /**
   * Cell size of the grid a window's tail regions are cut on, px (lib/onnx/tail.ts): a divisor of the cover's cell
   * and a multiple of every stride the tail crops its maps at, so regions cut on it crop exactly.
   */
  tailCell: number;
  /**
   * Cells of the tail's grid in a row (or column) from which a straight line of ink (a rule, a frame, a table border,
   * the edge of a box) counts as no text, and the tail does not run on it (lib/plan/ink_cells.ts `withoutLines`; 0: it
   * does). The windows stay as they are: only the tail's regions shrink, and the mask is written there only (the model
   * finds no text on a rule). Mean / least IoU vs full resolution and mean cost ÷ full of the default without → with
   * (`deno run -A bench/eval/squeeze.ts --set tune|val --halo none --edge-halos 0 --tail-line-run 0|8 --out
   * /tmp/t.md`, the served column): tuning 0.998 / 0.990, 71.5 % → 0.998 / 0.991, 67.2 %; validation 0.996 / 0.983,
   * 58.9 % → 0.996 / 0.983, 56.7 %. 4 and 16 cells priced the tuning and validation pages within 0.1 point of 8 (a
   * scratch script); 11 screenshots and diagrams the Rust toolchain ships (its books' images: frames, tables, boxes)
   * cost 81.6 → 71.6 % of full, least IoU 0.986 → 0.989. About 2 ms more planning per test screenshot.
   */
  tailLineRun: number;
  /**
   * Px of blank between two of the tail grid's cells with ink in one row up to which the gap counts as ink (whole cells
   * of `tailCell`; 0: none): the detector's map runs on across a short gap in a line (an icon and its label, a bullet
   * and its item, a row of toolbar icons) and marks text in it, where the tail's regions, which hold ink only, wrote
   * nothing. A window's regions bridge where that costs little more (`TAIL_GAP_SLACK`). Mean / least IoU vs full
   * resolution and mean cost ÷ full of the default, 0 → 48 (`deno run -A bench/eval/budget_sweep.ts --set S --shares 1
   * --tail-gap 0`, then without the option): the tuning and both validation sets' pages 0.9934 / 0.974, 60.8 % → 0.9938
   * / 0.974, 60.9 % (at 50 % of full, `--shares 0.5`: 0.9327 / 0.838 → 0.9343 / 0.842); the third validation set 0.9914
   * / 0.935, 64.6 % → 0.9923 / 0.956, 64.7 %; the fourth 0.9950 / 0.972, 67.5 % → 0.9957 / 0.972, 67.7 %; no page
   * lower without a budget. Its value was read off the two pages of the third and fourth sets that gained most
   * (`--set val3,val4 --shares 1 --only rust-edition-guide-introduction-phone@2,nodejs-process-phone@3 --tail-gap G`: a
   * toolbar of icons, bullets before their items), at 0 / 16 / 32 / 48 px: 0.935 / 0.980, 0.939 / 0.981, 0.943 / 0.998,
   * 0.956 / 0.998; the same at 64, 96 and 160 px.
   */
  tailGap: number;
  /**
   * Px each tail region grows by on every side (inside its window) before the tail runs on it: a multiple of the
   * strides the tail crops its maps at. At the tail's own halo (lib/onnx/levels.ts `TAIL_HALO`, 8 px) the tail gives
   * the region's cells bitwise what it gives on the whole window; below it, a cell within halo − grow px of the
   * region's edge reads zeros past it where the window had maps. Mean / least IoU vs full resolution and mean cost ÷
   * full of the default, 8 → 4 (`deno run -A bench/eval/budget_sweep.ts --set S --shares 1 --tail-grow 8|4`): test
   * 0.9971 / 0.979, 66.5 % → 0.9966 / 0.977, 64.8 %; tuning and validation 0.9981 / 0.992, 62.1 % → 0.9972 / 0.991,
   * 60.4 %; second validation 0.9973 / 0.989, 60.8 % → 0.9964 / 0.986, 59.1 %; third 0.984 least, 66.0 → 64.3 %;
   * fourth 0.992 → 0.991, 68.7 → 66.9 %; fifth 0.994 → 0.993, 71.5 → 69.1 %. At 50 % of full the cheaper tail buys
   * wider windows: test screenshots 0.9194 → 0.9268. At 0: least 0.964 on the test pages. The regions' cut prices
   * them grown by the tail's halo still (priced at 4: test 64.3 %, least 0.976, at 50 % 0.9258).
   */
  tailGrow: number;
}

/** A focus window: a rectangle of cells, the mask region it writes (core) and the model input it runs on (window). */
export interface FocusWindow {
  rect: CellRect;
  core: { x: number; y: number; w: number; h: number };
  window: { x: number; y: number; w: number; h: number };
  /**
   * Where the window runs level by level and its model has a tail (lib/onnx/tail.ts): the rectangles of its ink cells
   * (px of the padded page, whole cells) the tail runs on, each grown by `tailGrow`; the mask is written there only
   * (a cell without ink holds no text).
   */
  parts?: { x: number; y: number; w: number; h: number }[];
}

/**
 * The geometry of full-resolution windows over a width×height image: cells of the model's input multiple, and each
 * rectangle of cells grown by `halo` px of real neighbour pixels, clipped to the image padded to the model's multiple
 * (as the whole-image run pads it), so windows stay aligned with the whole-image run's stride grid.
 */
export class FocusGeometry {
  readonly padW: number;
  readonly padH: number;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly cell: number,
    readonly halo: number,
    readonly multiple: number,
    readonly maxExecPixels: number,
    readonly windowPixels: number,
    /** Halo of the sides where the cover's cut runs through text (`crossedSides`). */
    readonly crossedHalo = halo || CROSSED_HALO,
  ) {
    this.padW = roundUp(width, multiple);
    this.padH = roundUp(height, multiple);
  }

  /**
   * The window of a rectangle of cells, grown by the halo on every side, or by `sides` px on each of [left, top, right,
   * bottom].
   */
  window(r: CellRect, sides?: number[]): FocusWindow {
    const { cell, width, height } = this;
    const [left, top, right, bottom] = sides ?? [this.halo, this.halo, this.halo, this.halo];
    const x0 = r.col * cell, y0 = r.row * cell;
    const x1 = (r.col + r.cols) * cell, y1 = (r.row + r.rows) * cell;
    // The window: the core plus the halo, clipped to the padded image, its size rounded up to the model's multiple
    // (growing right and down, then left and up where the padded image ends).
    const ww = this.#span(x0, x1, left, right, this.padW), wh = this.#span(y0, y1, top, bottom, this.padH);
    return {
      rect: r,
      core: { x: x0, y: y0, w: Math.min(width, x1) - x0, h: Math.min(height, y1) - y0 },
      window: {
        x: Math.min(Math.max(0, x0 - left), this.padW - ww),
        y: Math.min(Math.max(0, y0 - top), this.padH - wh),
        w: ww,
        h: wh,
      },
    };
  }

  /** A window's extent along one axis: [a0, a1) grown by `before` and `after`, clipped to `pad`, rounded up. */
  #span(a0: number, a1: number, before: number, after: number, pad: number): number {
    const w0 = Math.max(0, a0 - before);
    return Math.min(pad, roundUp(Math.min(pad, a1 + after) - w0, this.multiple));
  }

  /**
   * What the XY cut minimises: input pixels of the rectangle's window plus the per-window cost. Only the window's size
   * is computed, not the window (the XY cuts price thousands of rectangles per request; building each window took
   * about 12 ms of a 100 ms budget plan on a 1170×2532 page, `.scratch/budmed.ts`). Measured and not kept: pricing each side at `crossedHalo` where
   * text crosses it (from prefix sums of the grid's adjacent on-cells; a scratch patch). Under a budget, at 0 px (`deno
   * run -A bench/eval/budget_sweep.ts --set tune,val,val2|val3,val4,val5|test --shares 0.5 --plans true`): 0.9398 /
   * 0.9206 / 0.9271 → 0.9408 / 0.9204 / 0.9272, least 0.779 → 0.744 on the second three sets, where 7 pages that
   * squeezed now fit a cover at 0 px (0.837 → 0.910 on one, 0.930 → 0.806 on another). The default (`--shares 1`,
   * test): mean cost 64.8 → 65.5 %, least IoU 0.977 unchanged.
   */
  readonly cost = (r: CellRect): number => {
    const { cell, halo } = this;
    const ww = this.#span(r.col * cell, (r.col + r.cols) * cell, halo, halo, this.padW);
    const wh = this.#span(r.row * cell, (r.row + r.rows) * cell, halo, halo, this.padH);
    return ww * wh > this.maxExecPixels ? Infinity : ww * wh + this.windowPixels;
  };

  /**
   * Few windows covering the on-cells of `grid`, each side grown by the halo, or by `crossedHalo` where text crosses
   * it into another window (`crossedSides`).
   */
  cover(grid: CellGrid): FocusWindow[] {
    const rects = coverCells(grid, this.cost);
    if (this.crossedHalo === this.halo) return rects.map((r) => this.window(r));
    const crossed = crossedSides(grid, rects);
    return rects.map((r, k) => this.window(r, crossed[k].map((c) => (c ? this.crossedHalo : this.halo))));
  }
}

/**
 * Px a window of a cover without a halo sees past a side text crosses into another window (where the XY cut cut through
 * text): a window that ends there loses the rest of the text, and the model's receptive field reads far. Mean / least
 * IoU vs full resolution of the cover at no halo pooling over the page, and its mean cost ÷ full, on the validation
 * pages (`deno run -A bench/eval/squeeze.ts --set val --halo none --edge-halos 0 --page-halo 0 --crossed-halo none
 * --out /tmp/v.md`): without this 0.927 / 0.651, 45.7 %; 32 px 0.963 / 0.902, 48.2 %; 64 px 0.967 / 0.915, 50.3 %
 * (tuning pages: least 0.936 in all three). Mean IoU of the budget plans (lib/plan/focus_options.ts `budgetHalos`)
 * at 40 / 50 / 60 / 75 % of full, tuning pages: 32 px 0.873 / 0.904 / 0.902 / 0.955, 64 px 0.866 / 0.897 / 0.902 /
 * 0.952; validation the same but at 60 %: 0.934 / 0.934 (a scratch script over `focusPlanner(model, { budgetHalos })`).
 */
export const CROSSED_HALO = 32;

/** An ink cover: its windows, the geometry they were cut on, and the image's ink grid. */
export type InkCover = { geo: FocusGeometry; ink: CellGrid; windows: FocusWindow[] };

/**
 * The full-resolution windows the plan without a budget runs: the cells with ink (`inkCells`), covered by few haloed
 * windows, each with the regions its tail runs on (without them when not `withParts`). Also what
 * bench/eval/squeeze.ts measures the default's drift on.
 */
export function coverInk(
  model: LoadedModel,
  image: RgbaImage,
  maxExecPixels: number,
  o: InkCoverOptions,
  ink?: CellGrid,
  withParts = true,
): InkCover {
  const m = model.spec.input.multiple;
  const paged = poolsOverPage(model, o);
  const halo = paged ? o.pageHalo : o.halo ?? roundUp(model.spec.tile?.halo ?? m, m);
  const cell = o.cell ?? m;
  const crossed = paged && o.crossedHalo !== undefined ? Math.max(halo, o.crossedHalo) : undefined;
  const geo = new FocusGeometry(image.width, image.height, cell, halo, m, maxExecPixels, o.windowPixels, crossed);
  ink ??= inkCells(image, cell, o.inkRange, model.spec.input.background, undefined, BACKGROUND_PATTERN);
  const windows = paged && o.wholePage
    ? [geo.window({ col: 0, row: 0, cols: ink.cols, rows: ink.rows })]
    : geo.cover(ink);
  return withParts ? withTailParts(model, image, o, { geo, ink, windows }) : { geo, ink, windows };
}

/** A cover of `coverInk` made without its tail's regions, with them (each window's, where the model has a tail). */
export function withTailParts<C extends InkCover>(
  model: LoadedModel,
  image: RgbaImage,
  o: InkCoverOptions,
  cover: C,
): C {
  const tail = poolsOverPage(model, o) ? model.levels!.graphs.tail : undefined;
  if (!tail?.halo) return cover;
  const parts = tailRegions(model, image, o, cover.ink, cover.geo.cell, tail);
  return { ...cover, windows: cover.windows.map((f) => ({ ...f, parts: parts(f) })) };
}

/**
 * The mask region each output of `windows`' run writes, in order: where they ran level by level (`levels`) with a
 * tail, each window's parts (clipped to the image); else each window's core.
 */
export function outputCores(geo: FocusGeometry, windows: FocusWindow[], levels?: LevelPooling): FocusWindow["core"][] {
  return windows.flatMap((f) =>
    levels && f.parts
      ? f.parts.map((p) => ({
        ...p,
        w: Math.min(geo.width, p.x + p.w) - p.x,
        h: Math.min(geo.height, p.y + p.h) - p.y,
      }))
      : [f.core]
  );
}

/** The share of the padded page the windows' model input takes (at most 1): what a cover pays, before any 1×1 runs. */
export function coverShare(geo: FocusGeometry, windows: FocusWindow[]): number {
  return Math.min(1, windows.reduce((s, f) => s + f.window.w * f.window.h, 0) / (geo.padW * geo.padH));
}

/** Most blank colours a level-by-level plan counts the uncovered page at (one blank graph input each). */
const MAX_BLANK_COLOURS = 4;

/** Whether the ink cover's windows pool over the page: asked for, the model is cut in levels, cells on its grid. */
function poolsOverPage(model: LoadedModel, o: InkCoverOptions): boolean {
  return o.pooling === "page" && !!model.levels && (o.cell ?? model.spec.input.multiple) === model.spec.input.multiple;
}

/**
 * Level-by-level pooling of the ink cover (lib/onnx/page.ts), where the model is cut in levels, the cell grid is
 * the model's input multiple (the page's grid) and the windows' pixels together stay within one execution's limit
 * (the job holds all their feature maps at once); undefined otherwise (each window then pools alone).
 */
export function inkPooling(
  model: LoadedModel,
  geo: FocusGeometry,
  ink: CellGrid,
  windows: FocusWindow[],
  o: InkCoverOptions,
): LevelPooling | undefined {
  if (!poolsOverPage(model, o)) return undefined;
  // One job holds every window's feature maps at once: bounded like one execution's input.
  if (windows.reduce((s, f) => s + f.window.w * f.window.h, 0) > geo.maxExecPixels) return undefined;
  const { cell } = geo;
  const counted = windows.map(({ rect: r }) => ({
    x: r.col * cell,
    y: r.row * cell,
    w: r.cols * cell,
    h: r.rows * cell,
  }));
  // The model's tail runs on each of a window's parts (its counted region where it has none) grown by `tailGrow`,
  // inside the window (lib/onnx/tail.ts).
  const { halo, cuts } = model.levels!.graphs.tail, t = o.tailGrow;
  if (halo && cuts.some((c) => t % c.stride)) {
    throw new Error(`tail regions grown by ${t} px: not a multiple of the strides the tail crops its maps at`);
  }
  const tails = windows.map(({ window: w, parts }, i) => {
    if (!halo) return [w];
    return (parts ?? [counted[i]]).map((c) => {
      const x0 = Math.max(w.x, c.x - t), y0 = Math.max(w.y, c.y - t);
      const x1 = Math.min(w.x + w.w, c.x + c.w + t), y1 = Math.min(w.y + w.h, c.y + c.h + t);
      return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
    });
  });
  return {
    page: { w: geo.padW, h: geo.padH },
    size: { w: geo.width, h: geo.height },
    cell,
    counted,
    tails,
    ...(coversPage(geo, windows) ? noBlank() : blankColours(ink, o.inkRange, MAX_BLANK_COLOURS)),
  };
}

/**
 * Whether the windows leave no page position to blank page: one window over the whole page (its sides all on the
 * page's border, so its pools count every position). The page graph then runs without its blank part (lib/onnx/
 * page.ts): no blank colours.
 */
export function coversPage(geo: FocusGeometry, windows: FocusWindow[]): boolean {
  const w = windows.length === 1 ? windows[0].window : undefined;
  return !!w && w.x === 0 && w.y === 0 && w.w === geo.padW && w.h === geo.padH;
}

const noBlank = () => ({ colours: new Uint8Array(0), cellColour: new Uint8Array(0) });
