// The Planner: turns (mode, image, budget) into a Plan — every model
// execution the request will make, each priced by the CostCounter at the
// exact shape it will run with — before anything runs. A budget is never
// exceeded: when no valid plan fits, the caller gets 422 with `min_gflops`.

import { UnprocessableError } from "./errors.ts";
import type { LoadedModel } from "./models.ts";
import { regionComplexity } from "./complexity.ts";

/** Request modes of DESIGN.md §4. */
export type Mode = "adaptive" | "glimpse" | "fixed";

/** One region of the output mask and how it is produced. */
export interface PlannedTile {
  /** Core region in image pixels; the mask is written here only. */
  x: number;
  y: number;
  w: number;
  h: number;
  /** Model that produces this region, or null when the region is skipped as flat background. */
  model: string | null;
  /** Resolution factor the window is run at (1 = full, 0.5 = half). */
  scale: number;
  /** Real neighbour pixels around the core fed to the model and cropped off after. */
  halo: number;
  /** Complexity score the selector used (adaptive mode). */
  score?: number;
}

/** One batched model call. */
export interface Execution {
  model: string;
  /** Exact input shape [N, C, H, W] of the call. */
  dims: number[];
  /** Indices into Plan.tiles, one per batch item. */
  tiles: number[];
  /** Window size in image pixels, before scaling. */
  windowW: number;
  windowH: number;
  scale: number;
  macs: number;
  flops: number;
}

/** Everything a request will run, and what it costs. */
export interface Plan {
  mode: Mode;
  tiles: PlannedTile[];
  executions: Execution[];
  macs: number;
  flops: number;
  /** Cheapest plan the planner could have made for this image. */
  minFlops: number;
}

/** Knobs of the planner (defaults tuned on the text task, see docs). */
export interface PlannerOptions {
  /** Largest tile core, px (cores are multiples of 2·multiple so half scale stays valid). */
  maxTile: number;
  /** Largest batch a single execution may take, in input pixels (N·H·W). */
  maxExecPixels: number;
  /** Grey std below which a tile is flat background and is not run at all. */
  flatStd: number;
  /** fineShare (see complexity.ts) at or above which a tile runs at full resolution. */
  fullDetail: number;
  /** Allow replacing an all-full-resolution tile plan by one cheaper whole-image call. */
  wholeImageShortcut: boolean;
  /**
   * Halo (px) cut around the tiles of a trained zoo's local models, at most the halo they were trained with
   * (manifest `tile.halo`). Measured in docs/EVAL.md's notes: 8 px costs f2 ~30% fewer FLOPs per tile than 16 px.
   */
  zooHalo: number;
}

/** Defaults for {@link PlannerOptions}. */
export const DEFAULT_PLANNER_OPTIONS: PlannerOptions = {
  maxTile: 320,
  maxExecPixels: 4_194_304,
  flatStd: 0.01,
  fullDetail: 0.66,
  wholeImageShortcut: true,
  zooHalo: 8,
};

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

/** A tile choice before executions are grouped. */
interface Choice {
  tile: PlannedTile;
  windowW: number;
  windowH: number;
}

/** Groups tiles by (model, window, scale) into batched executions and prices them. */
function price(
  mode: Mode,
  choices: Choice[],
  models: Map<string, LoadedModel>,
  opts: PlannerOptions,
  minFlops: number | null,
): Plan {
  const groups = new Map<string, number[]>();
  choices.forEach((c, i) => {
    if (c.tile.model === null) return;
    const key = `${c.tile.model}|${c.windowW}|${c.windowH}|${c.tile.scale}`;
    const list = groups.get(key) ?? [];
    list.push(i);
    groups.set(key, list);
  });
  const executions: Execution[] = [];
  let macs = 0, flops = 0;
  for (const [key, indices] of groups) {
    const [model, ww, wh, s] = key.split("|");
    const m = models.get(model)!;
    const inH = Math.round(Number(wh) * Number(s)), inW = Math.round(Number(ww) * Number(s));
    const perCall = Math.max(1, Math.floor(opts.maxExecPixels / (inH * inW)));
    for (let i = 0; i < indices.length; i += perCall) {
      const batch = indices.slice(i, i + perCall);
      const dims = [batch.length, m.spec.input.channels, inH, inW];
      const cost = m.counter.count(dims);
      executions.push({
        model,
        dims,
        tiles: batch,
        windowW: Number(ww),
        windowH: Number(wh),
        scale: Number(s),
        macs: cost.macs,
        flops: cost.flops,
      });
      macs += cost.macs;
      flops += cost.flops;
    }
  }
  return { mode, tiles: choices.map((c) => c.tile), executions, macs, flops, minFlops: minFlops ?? flops };
}

/** 422 for a budget below the cheapest plan, with `min_gflops` (rounded up to the MFLOP). */
export function budgetError(minFlops: number, budgetGflops: number): UnprocessableError {
  const min = Math.ceil(minFlops / 1e6) / 1e3;
  return new UnprocessableError(
    `X-Budget-GFLOPs ${budgetGflops} is below the cheapest plan for this image (${min} GFLOPs)`,
    "budget-too-small",
    { min_gflops: min, budget_gflops: budgetGflops },
  );
}

/**
 * `fixed` mode: one model on the whole image (padded to its input multiple).
 *
 * @example
 * ```ts
 * const plan = planFixed(model, 640, 480, undefined);
 * ```
 */
export function planFixed(
  model: LoadedModel,
  width: number,
  height: number,
  budgetGflops: number | undefined,
  opts: PlannerOptions = DEFAULT_PLANNER_OPTIONS,
): Plan {
  const m = model.spec.input.multiple;
  const windowW = roundUp(width, m), windowH = roundUp(height, m);
  if (windowW * windowH > opts.maxExecPixels) {
    throw new UnprocessableError(
      `fixed mode runs the whole ${width}×${height} image in one call, over this server's ` +
        `${opts.maxExecPixels}-pixel limit per execution; use X-Mode: adaptive (tiled)`,
      "image-too-large-for-fixed",
      { max_exec_pixels: opts.maxExecPixels },
    );
  }
  const tile: PlannedTile = { x: 0, y: 0, w: width, h: height, model: model.spec.id, scale: 1, halo: 0 };
  const plan = price("fixed", [{ tile, windowW, windowH }], new Map([[model.spec.id, model]]), opts, null);
  if (budgetGflops !== undefined && plan.flops > budgetGflops * 1e9) throw budgetError(plan.flops, budgetGflops);
  return plan;
}

/** Splits one axis into `n` equal cores that are multiples of `step` and cover `len`. */
function grid(len: number, maxTile: number, step: number): { n: number; core: number } {
  const n = Math.max(1, Math.ceil(len / maxTile));
  return { n, core: roundUp(Math.ceil(len / n), step) };
}

/**
 * `adaptive` mode with the training-free complexity selector (DANCE-style):
 * the image is cut into a grid of tiles, each carrying a halo of real
 * neighbour pixels; flat tiles are skipped, low-detail tiles run at half
 * resolution, detailed tiles at full resolution. Under a budget, tiles are
 * upgraded to full resolution in order of detail until the budget is spent.
 * When every tile wants full resolution and one whole-image call is cheaper
 * than the haloed tiles, the whole image is run instead (same quality, fewer
 * FLOPs).
 *
 * @example
 * ```ts
 * const plan = planComplexity(model, grey, 640, 480, 2.0);
 * ```
 */
export function planComplexity(
  model: LoadedModel,
  grey: Float32Array,
  width: number,
  height: number,
  budgetGflops: number | undefined,
  opts: PlannerOptions = DEFAULT_PLANNER_OPTIONS,
): Plan {
  const id = model.spec.id;
  const models = new Map([[id, model]]);
  const halo = model.spec.tile?.halo ?? 0;
  // Cores and halos are multiples of 2·multiple so the half-scale window is
  // still a valid model input.
  const step = 2 * model.spec.input.multiple;
  const haloR = roundUp(halo, step / 2);
  const gx = grid(width, opts.maxTile, step), gy = grid(height, opts.maxTile, step);
  const windowW = gx.core + 2 * haloR, windowH = gy.core + 2 * haloR;

  const tiles: (PlannedTile & { detail: number; flat: boolean })[] = [];
  for (let r = 0; r < gy.n; r++) {
    for (let c = 0; c < gx.n; c++) {
      const x = c * gx.core, y = r * gy.core;
      if (x >= width || y >= height) continue;
      const w = Math.min(gx.core, width - x), h = Math.min(gy.core, height - y);
      const cx = regionComplexity(grey, width, height, x, y, w, h);
      const flat = cx.std < opts.flatStd;
      tiles.push({ x, y, w, h, halo: haloR, model: id, scale: 1, detail: cx.fineShare, flat });
    }
  }
  const choose = (fullSet: Set<number>): Choice[] =>
    tiles.map((t, i) => ({
      tile: {
        x: t.x,
        y: t.y,
        w: t.w,
        h: t.h,
        halo: t.halo,
        score: Math.round(t.detail * 1e5) / 1e5,
        model: t.flat ? null : id,
        scale: t.flat ? 1 : fullSet.has(i) ? 1 : 0.5,
      },
      windowW,
      windowH,
    }));

  const wanted = new Set(tiles.flatMap((t, i) => (!t.flat && t.detail >= opts.fullDetail ? [i] : [])));
  const minimal = price("adaptive", choose(new Set()), models, opts, null);
  let plan = price("adaptive", choose(wanted), models, opts, minimal.flops);

  const everyTileFull = tiles.every((_t, i) => wanted.has(i));
  if (everyTileFull && opts.wholeImageShortcut) {
    const m = model.spec.input.multiple;
    const fw = roundUp(width, m), fh = roundUp(height, m);
    if (fw * fh <= opts.maxExecPixels) {
      const whole = planFixed(model, width, height, undefined, opts);
      if (whole.flops < plan.flops) plan = { ...whole, mode: "adaptive", minFlops: minimal.flops };
    }
  }
  if (budgetGflops === undefined) return plan;
  const budget = budgetGflops * 1e9;
  if (plan.flops <= budget) return plan;
  if (minimal.flops > budget) throw budgetError(minimal.flops, budgetGflops);

  // Grant full-resolution upgrades by detail (the value) — every upgrade
  // costs the same, so value per FLOP orders like value.
  const order = [...wanted].sort((a, b) => tiles[b].detail - tiles[a].detail);
  const granted = new Set<number>();
  let best = minimal;
  for (const i of order) {
    granted.add(i);
    const next = price("adaptive", choose(granted), models, opts, minimal.flops);
    if (next.flops > budget) {
      granted.delete(i);
      break;
    }
    best = next;
  }
  return best;
}
