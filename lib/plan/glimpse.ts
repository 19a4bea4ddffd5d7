// `glimpse` (after GFNet): f0 glances at the whole image, then each focus step sends unsure tiles (mean max-probability
// below X-Confidence) one model up the zoo — the cheapest model not yet tried on them, f1 before f2, ranked by missing
// confidence per FLOP — as few as can close the image's confidence gap, all in one batched call, neighbouring tiles
// sharing one window. It stops as soon as the image's confidence reaches X-Confidence, when no unsure tile has a
// stronger model left, or when the budget or the deadline stops it. Never dearer: the focus steps together never cost
// more than the strongest model once on the whole image (stop "never-dearer"; without this cap an unreachable target
// paid f1 and then f2 on every tile, 1.5x f2's whole-image price on micrograph). The mask so far is always a valid
// answer.

import type { GlimpseStep, Planner } from "./types.ts";
import { startZoo, strongest, zooOutcome } from "./paser.ts";
import { type Zoo, zooPreflight } from "./zoo.ts";
import { toGflops } from "../units.ts";

/** Glimpse's default confidence target. */
export const DEFAULT_CONFIDENCE = 0.99;

/**
 * The glimpse planner of a zoo task.
 *
 * @example
 * ```ts ignore
 * const outcome = await glimpsePlanner(zoo)({ ...ctx, confidence: 0.995 });
 * outcome.glimpses; // step 0 = the glance, then one step per batch of unsure tiles (bounding box, model)
 * ```
 */
export function glimpsePlanner(zoo: Zoo): Planner {
  const plan: Planner = async (ctx) => {
    const { run, minFlops } = await startZoo(ctx, zoo);
    const exec = ctx.exec;
    const target = ctx.confidence ?? DEFAULT_CONFIDENCE;
    // Per tile: index into zoo.locals of the model that produced it (-1 = f0).
    const level = run.grid.map(() => -1);
    const glimpses: GlimpseStep[] = [];
    const record = (step: number, tile: GlimpseStep["tile"], model: string) =>
      glimpses.push({ step, tile, model, gflops: toGflops(exec.flops), confidence: run.confidence() });
    record(0, null, zoo.global.spec.id);
    let stop: string;
    let lastStepMs = 0;
    const perTile = zoo.locals.map((m) => run.localFlops(m, [0]));
    const ceiling = run.wholeFlops(strongest(zoo)) + exec.flops; // the glance is paid either way
    for (let step = 1;; step++) {
      if (run.confidence() >= target) {
        stop = "confidence";
        break;
      }
      if (ctx.deadlineAt !== undefined && performance.now() + 1.5 * lastStepMs >= ctx.deadlineAt) {
        stop = "deadline";
        break;
      }
      // Unsure tiles that have a stronger model left, by expected fix per FLOP: the confidence they lack over the
      // per-tile price of their next model (so f1 on an f0 tile comes before f2 on an f1 tile).
      const conf = run.grid.map((t) => run.confidence(t));
      const unsure = run.grid
        .map((_t, i) => i)
        .filter((i) => conf[i] < target && level[i] < zoo.locals.length - 1)
        .map((i) => ({ i, score: (1 - conf[i]) / perTile[level[i] + 1] }))
        .sort((a, b) => b.score - a.score || a.i - b.i);
      if (unsure.length === 0) {
        stop = "exhausted";
        break;
      }
      // One model per step: the best-scored tile's next one, on as many tiles of that level as it takes to close the
      // image's confidence gap if each refined tile became sure (a tile counts by its area), within the budget.
      const from = level[unsure[0].i];
      const model = zoo.locals[from + 1];
      const area = (i: number) => run.grid[i].w * run.grid[i].h;
      const total = run.grid.reduce((s, _t, i) => s + area(i), 0);
      let gap = (target - run.confidence()) * total;
      const tiles: number[] = [];
      let capped = false;
      for (const { i } of unsure) {
        if (gap <= 0) break;
        if (level[i] !== from) continue;
        tiles.push(i);
        const flops = run.localFlops(model, tiles);
        if (!exec.fits(flops)) tiles.pop();
        else if (exec.flops + flops > ceiling) {
          tiles.pop();
          capped = true;
        } else gap -= (1 - conf[i]) * area(i);
      }
      if (tiles.length === 0) {
        stop = capped ? "never-dearer" : "budget";
        break;
      }
      const s0 = performance.now();
      await run.refine([{ model, tiles }]);
      lastStepMs = performance.now() - s0;
      for (const i of tiles) level[i] = from + 1;
      const boxes = tiles.map((i) => run.grid[i]);
      const x = Math.min(...boxes.map((b) => b.x)), y = Math.min(...boxes.map((b) => b.y));
      const w = Math.max(...boxes.map((b) => b.x + b.w)) - x, h = Math.max(...boxes.map((b) => b.y + b.h)) - y;
      record(step, { x, y, w, h }, model.spec.id);
    }
    return zooOutcome(run, minFlops, { mode: "glimpse", glimpses, stop });
  };
  plan.preflight = zooPreflight(zoo, false);
  return plan;
}
