// `adaptive` for a model without a trained policy, with the training-free scale selector (after DANCE): the image is
// cut into a grid of tiles, each carrying a halo of real neighbour pixels; flat tiles are skipped, low-detail tiles
// run at half resolution, detailed tiles at full resolution. Under a budget, tiles are upgraded to full resolution in
// order of detail while the exact plan still fits. When every tile wants full resolution and one whole-image call is
// cheaper than the haloed tiles, the whole image runs instead (same quality, fewer FLOPs).

import { BudgetTooSmallError } from "../errors.ts";
import { toGrey } from "../image/mod.ts";
import type { WindowCall } from "../exec/mod.ts";
import type { LoadedModel } from "../models.ts";
import { MaskCanvas } from "./canvas.ts";
import { regionComplexity } from "./complexity.ts";
import { roundUp, splitAxis } from "./geometry.ts";
import { runWholeImage } from "./fixed.ts";
import type { PlannedTile, Planner, PlannerOptions } from "./types.ts";

/** A grid tile with what the selector measured. */
export interface ScaleTile extends PlannedTile {
  detail: number;
  flat: boolean;
}

/**
 * The tiles of the scale selector: cores and halos are multiples of 2·multiple so the half-scale window is still a
 * valid model input. Pure: no model runs.
 *
 * @example
 * ```ts ignore
 * const { tiles, windowW, windowH } = scaleTiles(model, grey, 640, 480, DEFAULT_PLANNER_OPTIONS);
 * ```
 */
export function scaleTiles(
  model: LoadedModel,
  grey: Float32Array,
  width: number,
  height: number,
  opts: PlannerOptions,
): { tiles: ScaleTile[]; windowW: number; windowH: number } {
  const step = 2 * model.spec.input.multiple;
  const haloR = roundUp(model.spec.tile?.halo ?? 0, step / 2);
  const gx = splitAxis(width, opts.maxTile, step), gy = splitAxis(height, opts.maxTile, step);
  const tiles: ScaleTile[] = [];
  for (let r = 0; r < gy.n; r++) {
    for (let c = 0; c < gx.n; c++) {
      const x = c * gx.core, y = r * gy.core;
      if (x >= width || y >= height) continue;
      const w = Math.min(gx.core, width - x), h = Math.min(gy.core, height - y);
      const cx = regionComplexity(grey, width, height, x, y, w, h);
      const flat = cx.std < opts.flatStd;
      tiles.push({ x, y, w, h, halo: haloR, model: model.spec.id, scale: 1, detail: cx.fineShare, flat });
    }
  }
  return { tiles, windowW: gx.core + 2 * haloR, windowH: gy.core + 2 * haloR };
}

/**
 * The scale-selector planner.
 *
 * @example
 * ```ts ignore
 * const outcome = await scalePlanner(registry.model("text-ppocrv4-det"))(ctx);
 * ```
 */
export function scalePlanner(model: LoadedModel): Planner {
  return async (ctx) => {
    const { exec, options: opts } = ctx;
    const { width, height } = ctx.image;
    const id = model.spec.id;
    const grey = toGrey(ctx.image, model.spec.input.background);
    const { tiles, windowW, windowH } = scaleTiles(model, grey, width, height, opts);

    // The tiles and calls of a choice of full-resolution tiles (the rest run at half scale, flat ones not at all).
    const choose = (full: Set<number>) => {
      const planned: PlannedTile[] = tiles.map((t, i) => ({
        x: t.x,
        y: t.y,
        w: t.w,
        h: t.h,
        halo: t.halo,
        score: Math.round(t.detail * 1e5) / 1e5,
        model: t.flat ? null : id,
        scale: t.flat ? 1 : full.has(i) ? 1 : 0.5,
      }));
      const byScale = new Map<number, number[]>();
      planned.forEach((t, i) => {
        if (t.model === null) return;
        byScale.set(t.scale, [...(byScale.get(t.scale) ?? []), i]);
      });
      const calls: (WindowCall & { tiles: number[] })[] = [...byScale].map(([scale, idx]) => ({
        model,
        scale,
        tiles: idx,
        windows: idx.map((i) => ({
          x: tiles[i].x - tiles[i].halo,
          y: tiles[i].y - tiles[i].halo,
          w: windowW,
          h: windowH,
        })),
      }));
      return { planned, calls, flops: exec.price(calls).flops };
    };

    const wanted = new Set(tiles.flatMap((t, i) => (!t.flat && t.detail >= opts.fullDetail ? [i] : [])));
    const minimal = choose(new Set());
    let plan = choose(wanted);
    if (tiles.every((_t, i) => wanted.has(i)) && opts.wholeImageShortcut) {
      const m = model.spec.input.multiple;
      const whole = roundUp(width, m) * roundUp(height, m);
      if (whole <= opts.maxExecPixels) {
        const wholeFlops = model.counter.count([1, model.spec.input.channels, roundUp(height, m), roundUp(width, m)]);
        if (wholeFlops.flops < plan.flops && exec.fits(wholeFlops.flops)) {
          const r = await runWholeImage(ctx, model);
          return { mode: "adaptive", mask: r.mask, tiles: r.tiles, minFlops: minimal.flops, stitchMs: r.stitchMs };
        }
      }
    }
    if (!exec.fits(plan.flops)) {
      if (!exec.fits(minimal.flops)) throw new BudgetTooSmallError(minimal.flops, exec.budget);
      // Full-resolution upgrades by detail (the value): every upgrade costs the same, so value per FLOP orders
      // like value.
      const order = [...wanted].sort((a, b) => tiles[b].detail - tiles[a].detail);
      const granted = new Set<number>();
      plan = minimal;
      for (const i of order) {
        granted.add(i);
        const next = choose(granted);
        if (!exec.fits(next.flops)) break;
        plan = next;
      }
    }
    const results = await exec.run(plan.calls);
    const canvas = new MaskCanvas(width, height, model.spec.output.threshold ?? 0.5);
    plan.calls.forEach((call, k) => call.tiles.forEach((ti, j) => canvas.write(results[k][j], plan.planned[ti])));
    return {
      mode: "adaptive",
      mask: canvas.mask,
      tiles: plan.planned,
      minFlops: minimal.flops,
      stitchMs: canvas.writeMs,
    };
  };
}
