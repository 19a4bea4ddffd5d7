// `adaptive` for any model without a trained policy (the `text` task, any ONNX model a user adds): glance → focus,
// training-free. Blank cells (no ink: every channel flat) cannot hold text and are never run. The model runs at full
// resolution on few large haloed windows covering the cells that may hold text (recursive XY cuts, lib/plan/cover.ts),
// never dearer than one full-resolution run of the whole image. Under a budget too small for that, the same model
// glances at the whole image at the largest resolution the budget allows, narrower before shorter (down to ¼ both
// ways); the glance's mask is the answer everywhere, and what the budget has left buys full resolution where the
// glance is least sure. The outcome reports which share of the image came from full resolution and which share the
// glance saw as text-or-unsure and nobody resolved.

import { BudgetTooSmallError } from "../errors.ts";
import type { WindowCall, WindowOutput } from "../exec/mod.ts";
import type { LoadedModel } from "../models.ts";
import { MaskCanvas } from "./canvas.ts";
import { type CellGrid, type CellRect, coverCells, inkCells } from "./cover.ts";
import { wholeImageCall } from "./fixed.ts";
import { type Box, roundUp, tileGrid } from "./geometry.ts";
import type { Coverage, PlanContext, PlannedTile, Planner } from "./types.ts";

/** Knobs of glance → focus. */
export interface FocusOptions {
  /** Glance probability from which a pixel counts as unsure (below: confidently background). */
  low: number;
  /** Glance probability from which a pixel counts as confidently text (between low and high: unsure). */
  high: number;
  /** A cell is blank when every channel's max − min inside it is at most this (0–255). */
  inkRange: number;
  /** Cost of one more window, in pixels of model input (the per-execution overhead the XY cut weighs). */
  windowPixels: number;
  /** Cell size, px (default: the model's input multiple). */
  cell?: number;
  /** Halo of real neighbour pixels around each focus window, px (default: the model's `tile.halo`). */
  halo?: number;
  /** Which plan runs without a budget: the full-resolution cover of the ink ("ink"), or glance first ("glance"). */
  unbudgeted: "ink" | "glance";
  /**
   * Under a budget, the glance keeps full height and shrinks only the width until its horizontal scale reaches this
   * ratio to its vertical one, then shrinks both at that ratio (text lines survive a narrower glance far better than a
   * shorter one).
   */
  aspect: number;
  /** Threshold of a glance that ran vertically shrunk (its map, scaled back, blurs across each text line's height). */
  shrunkThreshold: number;
}

/**
 * Defaults for {@link FocusOptions}, chosen on the tuning images of bench/eval/render_pages.ts: a large per-window cost
 * (few, large windows) because each window sees only its own image-wide context (the detector's squeeze-excitation
 * blocks pool over the whole input), so many small windows drift from the whole-image mask.
 */
export const DEFAULT_FOCUS_OPTIONS: FocusOptions = {
  low: 0.05,
  high: 0.7,
  inkRange: 8,
  windowPixels: 256 * 256,
  unbudgeted: "ink",
  aspect: 0.6,
  shrunkThreshold: 0.7,
};

/**
 * The glance's resolution factor: ½, or ¼ when even a quarter of the image's short side is at least the model's
 * reference short side (text there is large enough to survive), or when the ½ glance would not fit one execution.
 *
 * @example
 * ```ts
 * import { glanceScale } from "./focus.ts";
 * glanceScale(1366, 768, { width: 640, height: 640 }, 1 << 22); // 0.5
 * glanceScale(4000, 3000, { width: 640, height: 640 }, 1 << 22); // 0.25
 * ```
 */
export function glanceScale(
  width: number,
  height: number,
  reference: { width: number; height: number },
  maxExecPixels: number,
): number {
  const big = Math.min(width, height) / 4 >= Math.min(reference.width, reference.height);
  return big || (width * height) / 4 > maxExecPixels ? 0.25 : 0.5;
}

/**
 * The glance: `model` on the whole image at `scale` (vertically `scaleY`), padded so the scaled input is a multiple of
 * the model's.
 */
export function glanceCall(
  model: LoadedModel,
  width: number,
  height: number,
  scale: number,
  scaleY = scale,
): WindowCall {
  const m = model.spec.input.multiple;
  const qx = Math.round(m / scale), qy = Math.round(m / scaleY);
  const windows = [{ x: 0, y: 0, w: roundUp(width, qx), h: roundUp(height, qy) }];
  return scaleY === scale ? { model, scale, windows } : { model, scale, scaleY, windows };
}

/**
 * The glances a budget chooses from, largest first, as [qx, qy]: scale m/qx across and m/qy down for a model whose
 * input is a multiple of m. Full height while the width shrinks to `aspect` of it, then both at that ratio, ending
 * at the ¼ glance [4m, 4m]; qx and qy never decrease along the path, so neither does the price (up to padding).
 *
 * @example
 * ```ts
 * import { glancePath } from "./focus.ts";
 * const path = glancePath(32, 0.6);
 * [path[0], path.at(-1)]; // [[33, 32], [128, 128]]
 * ```
 */
export function glancePath(m: number, aspect: number): [number, number][] {
  const last = 4 * m, path: [number, number][] = [];
  for (let qx = m + 1; qx < m / aspect; qx++) path.push([qx, m]);
  for (let qy = m + 1; qy <= last; qy++) path.push([Math.min(last, Math.max(qy + 1, Math.round(qy / aspect))), qy]);
  return path;
}

/**
 * The largest glance that fits the executor's budget and one execution: the model on the whole image at scale m/qx
 * across and m/qy down (m: the model's input multiple, so the scaled input stays a multiple of it), the first step of
 * {@link glancePath} that fits. Null when not even its last step, the ¼ glance (the cheapest plan), fits.
 *
 * Under a budget too small for the complete plan, one glance as large as the budget allows beat a ½ glance plus
 * full-resolution focus windows at every budget on the tuning pages (windows see only their own context and pay for
 * their halos; a glance sees the whole page), and a narrow glance beat a uniformly scaled one of the same price: the
 * detector's map survives squeezed characters far better than squeezed lines. Mean IoU vs full resolution at 25 / 50 /
 * 75 % of its price (`deno task eval --text-only --text-set tune`): ½ glance + windows 0.464 / 0.757 / 0.866, uniform
 * glance 0.632 / 0.764 / 0.888, this glance 0.777 / 0.852 / 0.923. `aspect` 0.6 and the shrunk glance's threshold 0.7
 * were chosen there: aspect 0.5 / 0.72 read 0.798 / 0.743 at 25 % but 0.816 / 0.854 at 50 %; threshold 0.5 at aspect
 * 0.6 read 0.755 / 0.847 at 25 / 50 %.
 */
function largestGlance(
  model: LoadedModel,
  width: number,
  height: number,
  exec: PlanContext["exec"],
  maxExecPixels: number,
  aspect: number,
): { scale: number; scaleY: number; call: WindowCall; flops: number } | null {
  const m = model.spec.input.multiple, path = glancePath(m, aspect);
  const at = ([qx, qy]: [number, number]) => {
    if (m * Math.ceil(width / qx) * m * Math.ceil(height / qy) > maxExecPixels) return null;
    const call = glanceCall(model, width, height, m / qx, m / qy);
    const flops = exec.price([call]).flops;
    return exec.fits(flops) ? { scale: m / qx, scaleY: m / qy, call, flops } : null;
  };
  // The price falls along the path (up to padding): a binary search for the first step that fits.
  let lo = 0, hi = path.length - 1, best = null;
  while (lo <= hi) {
    const i = (lo + hi) >> 1;
    const got = at(path[i]);
    if (got) [best, hi] = [got, i - 1];
    else lo = i + 1;
  }
  return best;
}

/** The two glances a focus plan chooses from (its preferred scale, then ¼, the cheapest plan there is). */
function glanceCalls(
  model: LoadedModel,
  width: number,
  height: number,
  { task, options }: Pick<PlanContext, "task" | "options">,
): WindowCall[] {
  const preferred = glanceScale(width, height, task.reference, options.maxExecPixels);
  return [preferred, 0.25].map((s) => glanceCall(model, width, height, s));
}

/** A focus window: a rectangle of cells, the mask region it writes (core) and the model input it runs on (window). */
export interface FocusWindow {
  rect: CellRect;
  core: { x: number; y: number; w: number; h: number };
  window: { x: number; y: number; w: number; h: number };
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
  ) {
    this.padW = roundUp(width, multiple);
    this.padH = roundUp(height, multiple);
  }

  /** The window of a rectangle of cells. */
  window(r: CellRect): FocusWindow {
    const { cell, halo, width, height } = this;
    const x0 = r.col * cell, y0 = r.row * cell;
    const x1 = (r.col + r.cols) * cell, y1 = (r.row + r.rows) * cell;
    // The window: the core plus the halo, clipped to the padded image, its size rounded up to the model's multiple
    // (growing right and down, then left and up where the padded image ends).
    const m = this.multiple;
    const wx0 = Math.max(0, x0 - halo), wy0 = Math.max(0, y0 - halo);
    const ww = Math.min(this.padW, roundUp(Math.min(this.padW, x1 + halo) - wx0, m));
    const wh = Math.min(this.padH, roundUp(Math.min(this.padH, y1 + halo) - wy0, m));
    return {
      rect: r,
      core: { x: x0, y: y0, w: Math.min(width, x1) - x0, h: Math.min(height, y1) - y0 },
      window: { x: Math.min(wx0, this.padW - ww), y: Math.min(wy0, this.padH - wh), w: ww, h: wh },
    };
  }

  /** What the XY cut minimises: input pixels of the rectangle's window plus the per-window cost. */
  readonly cost = (r: CellRect): number => {
    const { window: w } = this.window(r);
    return w.w * w.h > this.maxExecPixels ? Infinity : w.w * w.h + this.windowPixels;
  };

  /** Few windows covering the on-cells of `grid`. */
  cover(grid: CellGrid): FocusWindow[] {
    return coverCells(grid, this.cost).map((r) => this.window(r));
  }
}

/** The calls of a set of focus windows (one call; the executor batches equal window sizes). */
function focusCalls(model: LoadedModel, windows: FocusWindow[]): WindowCall[] {
  return windows.length ? [{ model, windows: windows.map((f) => f.window) }] : [];
}

/** Per cell of `grid`'s geometry: glance pixels ≥ low (may be text) and pixels in [low, high) (unsure). */
function glanceCells(out: WindowOutput, width: number, height: number, cell: number, low: number, high: number) {
  const cols = Math.ceil(width / cell), rows = Math.ceil(height / cell);
  const marked = new Uint32Array(cols * rows), unsure = new Uint32Array(cols * rows);
  const { data, window: win } = out;
  for (let y = 0; y < height; y++) {
    const crow = Math.floor(y / cell) * cols, orow = y * win.w;
    for (let x = 0; x < width; x++) {
      const p = data[orow + x];
      if (p < low) continue;
      const c = crow + Math.floor(x / cell);
      marked[c]++;
      if (p < high) unsure[c]++;
    }
  }
  return { cols, rows, marked, unsure };
}

/** The planned tiles a response reports: the glance (when it ran) and every focus window's core. */
function reportTiles(
  model: LoadedModel,
  width: number,
  height: number,
  glance: { scale: number; scaleY: number } | null,
  focus: FocusWindow[],
  halo: number,
): PlannedTile[] {
  const id = model.spec.id;
  const tiles: PlannedTile[] = glance === null ? [] : [{
    x: 0,
    y: 0,
    w: width,
    h: height,
    model: id,
    scale: glance.scale,
    ...(glance.scaleY !== glance.scale ? { scaleY: glance.scaleY } : {}),
    halo: 0,
  }];
  for (const f of focus) tiles.push({ ...f.core, model: id, scale: 1, halo });
  if (glance === null) {
    // Without a glance, what no focus window covers was skipped (no ink): reported as 128 px blocks, model null.
    const block = 128;
    const hit = (b: Box) =>
      focus.some((f) =>
        f.core.x < b.x + b.w && b.x < f.core.x + f.core.w && f.core.y < b.y + b.h && b.y < f.core.y + f.core.h
      );
    for (const b of tileGrid(width, height, block)) if (!hit(b)) tiles.push({ ...b, model: null, scale: 1, halo: 0 });
  }
  return tiles;
}

/**
 * The glance → focus planner.
 *
 * @example
 * ```ts ignore
 * const outcome = await focusPlanner(registry.model("text-ppocrv4-det"))(ctx);
 * outcome.coverage; // { full_res_share: 0.41, unresolved_share: 0 }
 * ```
 */
export function focusPlanner(model: LoadedModel, options: Partial<FocusOptions> = {}): Planner {
  const o = { ...DEFAULT_FOCUS_OPTIONS, ...options };
  const plan: Planner = async (ctx: PlanContext) => {
    const { exec, image } = ctx;
    const { width, height } = image;
    const area = width * height;
    const m = model.spec.input.multiple;
    const threshold = model.spec.output.threshold ?? 0.5;
    const halo = o.halo ?? roundUp(model.spec.tile?.halo ?? m, m);
    const cell = o.cell ?? m;
    const geo = new FocusGeometry(width, height, cell, halo, m, ctx.options.maxExecPixels, o.windowPixels);

    // Candidates, priced exactly before anything runs.
    let whole: WindowCall | null = null;
    try {
      whole = wholeImageCall(model, width, height, ctx.options.maxExecPixels);
    } catch {
      // Too large for one execution: only windowed plans.
    }
    const wholeFlops = whole ? exec.price([whole]).flops : Infinity;
    const ink = inkCells(image, cell, o.inkRange, model.spec.input.background);
    const inkWindows = geo.cover(ink);
    const inkFlops = exec.price(focusCalls(model, inkWindows)).flops;
    // The glance: at its preferred scale when the budget allows the complete plan (the glance-first variant), else
    // as large as the budget allows; ¼ is the cheapest plan there is.
    const glances = glanceCalls(model, width, height, ctx).map((call) => ({
      scale: call.scale!,
      scaleY: call.scale!,
      call,
      flops: exec.price([call]).flops,
    }));
    const { scale, scaleY, call: glance, flops: glanceFlops } = exec.fits(Math.min(inkFlops, wholeFlops))
      ? glances.find((g) => exec.fits(g.flops)) ?? glances[1]
      : largestGlance(model, width, height, exec, ctx.options.maxExecPixels, o.aspect) ?? glances[1];
    const minFlops = Math.min(glances[1].flops, inkFlops, wholeFlops);
    if (!exec.fits(minFlops)) throw new BudgetTooSmallError(minFlops, exec.budget);

    const canvas = new MaskCanvas(width, height, threshold);
    const finish = (tiles: PlannedTile[], coverage: Coverage) => ({
      mode: "adaptive" as const,
      mask: canvas.mask,
      tiles,
      minFlops,
      coverage: { full_res_share: round(coverage.full_res_share), unresolved_share: round(coverage.unresolved_share) },
      stitchMs: canvas.writeMs,
    });
    const fullShare = (windows: FocusWindow[]) => windows.reduce((s, f) => s + f.core.w * f.core.h, 0) / area;

    // The complete plan (every cell that may hold text at full resolution): the cheaper of the ink cover and the
    // whole image. Without a budget, or with one it fits in, it runs as is (unless the glance-first plan is asked for).
    if (o.unbudgeted === "ink" && exec.fits(Math.min(inkFlops, wholeFlops))) {
      if (inkFlops < wholeFlops) {
        const [outs] = inkWindows.length ? await exec.run(focusCalls(model, inkWindows)) : [[]];
        outs.forEach((out, i) => canvas.write(out, inkWindows[i].core));
        return finish(reportTiles(model, width, height, null, inkWindows, halo), {
          full_res_share: fullShare(inkWindows),
          unresolved_share: 0,
        });
      }
      const [[out]] = await exec.run([whole!]);
      canvas.write(out, { x: 0, y: 0, w: width, h: height });
      return finish([{ x: 0, y: 0, w: width, h: height, model: model.spec.id, scale: 1, halo: 0 }], {
        full_res_share: 1,
        unresolved_share: 0,
      });
    }

    // Glance, then focus where it may see text, as far as the budget (and never-dearer) allows.
    const [[g]] = await exec.run([glance]);
    canvas.write(g, { x: 0, y: 0, w: width, h: height }, scaleY < 1 ? o.shrunkThreshold : threshold);
    const cells = glanceCells(g, width, height, cell, o.low, o.high);
    const wanted = new Uint8Array(cells.marked.length);
    for (let c = 0; c < wanted.length; c++) if (cells.marked[c] && ink.on[c]) wanted[c] = 1;
    // Never dearer than the whole image (the glance already spent), never over the budget.
    const cap = Math.min(exec.left, wholeFlops - glanceFlops - 1);
    const focus = chooseFocus(exec, model, geo, { ...ink, on: wanted }, cells.unsure, cap);
    if (focus.length) {
      const [outs] = await exec.run(focusCalls(model, focus));
      outs.forEach((out, i) => canvas.write(out, focus[i].core));
    }
    // What the glance saw as text or unsure (in cells with ink) and no focus window resolved.
    const covered = new Uint8Array(wanted.length);
    for (const f of focus) {
      for (let r = f.rect.row; r < f.rect.row + f.rect.rows; r++) {
        covered.fill(1, r * cells.cols + f.rect.col, r * cells.cols + f.rect.col + f.rect.cols);
      }
    }
    let unresolved = 0;
    for (let c = 0; c < wanted.length; c++) if (wanted[c] && !covered[c]) unresolved += cells.marked[c];
    return finish(reportTiles(model, width, height, { scale, scaleY }, focus, halo), {
      full_res_share: fullShare(focus),
      unresolved_share: unresolved / area,
    });
  };
  plan.preflight = ({ width, height, task, options }) => glanceCalls(model, width, height, { task, options });
  return plan;
}

/**
 * The focus windows under a cap on their FLOPs: all wanted cells when they fit, else the 4×4-cell blocks where the
 * glance is least sure (most unsure pixels), as many as fit, in that order.
 */
function chooseFocus(
  exec: PlanContext["exec"],
  model: LoadedModel,
  geo: FocusGeometry,
  wanted: CellGrid,
  unsure: Uint32Array,
  cap: number,
): FocusWindow[] {
  const price = (w: FocusWindow[]) => exec.price(focusCalls(model, w)).flops;
  const all = geo.cover(wanted);
  if (price(all) <= cap) return all;
  const B = 4, bcols = Math.ceil(wanted.cols / B), brows = Math.ceil(wanted.rows / B);
  const value = new Float64Array(bcols * brows);
  for (let r = 0; r < wanted.rows; r++) {
    for (let c = 0; c < wanted.cols; c++) {
      if (wanted.on[r * wanted.cols + c]) {
        value[Math.floor(r / B) * bcols + Math.floor(c / B)] += unsure[r * wanted.cols + c] + 1;
      }
    }
  }
  const order = [...value.keys()].filter((b) => value[b] > 0).sort((a, b) => value[b] - value[a] || a - b);
  const upTo = (k: number) => {
    const on = new Uint8Array(wanted.on.length);
    for (const b of order.slice(0, k)) {
      const br = Math.floor(b / bcols), bc = b % bcols;
      for (let r = br * B; r < Math.min(wanted.rows, br * B + B); r++) {
        for (let c = bc * B; c < Math.min(wanted.cols, bc * B + B); c++) {
          on[r * wanted.cols + c] = wanted.on[r * wanted.cols + c];
        }
      }
    }
    return geo.cover({ ...wanted, on });
  };
  // Largest k whose plan fits (plans grow with k, nearly monotonically: search, then step down until it fits).
  let lo = 0, hi = order.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (price(upTo(mid)) <= cap) lo = mid;
    else hi = mid - 1;
  }
  for (let k = lo; k > 0; k--) {
    const w = upTo(k);
    if (price(w) <= cap) return w;
  }
  return [];
}

const round = (v: number) => Math.round(v * 1e4) / 1e4;
