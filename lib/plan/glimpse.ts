// `glimpse` (after GFNet): f0 glances at the whole image, then each focus step runs the strongest affordable local
// model on the least-confident tile, until the image's confidence reaches X-Confidence, the budget or the deadline
// stops it. The mask so far is always a valid answer.

import type { GlimpseStep, Planner } from "./types.ts";
import { startZoo, zooOutcome } from "./paser.ts";
import type { Zoo } from "./zoo.ts";
import { toGflops } from "../units.ts";

/** Glimpse's default confidence target. */
export const DEFAULT_CONFIDENCE = 0.99;

/**
 * The glimpse planner of a zoo task.
 *
 * @example
 * ```ts ignore
 * const outcome = await glimpsePlanner(zoo)({ ...ctx, confidence: 0.995 });
 * outcome.glimpses; // step 0 = the glance, then one step per focused tile
 * ```
 */
export function glimpsePlanner(zoo: Zoo): Planner {
  return async (ctx) => {
    const { run, minFlops } = await startZoo(ctx, zoo);
    const exec = ctx.exec;
    const target = ctx.confidence ?? DEFAULT_CONFIDENCE;
    const refined = new Set<number>();
    const glimpses: GlimpseStep[] = [];
    const record = (step: number, tile: GlimpseStep["tile"], model: string) =>
      glimpses.push({ step, tile, model, gflops: toGflops(exec.flops), confidence: run.confidence() });
    record(0, null, zoo.global.spec.id);
    let stop: string;
    let lastStepMs = 0;
    for (let step = 1;; step++) {
      if (run.confidence() >= target) {
        stop = "confidence";
        break;
      }
      if (ctx.deadlineAt !== undefined && performance.now() + 1.5 * lastStepMs >= ctx.deadlineAt) {
        stop = "deadline";
        break;
      }
      let worst = -1, worstConf = Infinity;
      run.grid.forEach((t, i) => {
        if (refined.has(i)) return;
        const c = run.confidence(t);
        if (c < worstConf) {
          worstConf = c;
          worst = i;
        }
      });
      if (worst < 0) {
        stop = "exhausted";
        break;
      }
      const model = [...zoo.locals].reverse().find((m) => exec.fits(run.localFlops(m, [worst])));
      if (!model) {
        stop = "budget";
        break;
      }
      const s0 = performance.now();
      await run.refine([{ model, tiles: [worst] }]);
      lastStepMs = performance.now() - s0;
      refined.add(worst);
      record(step, { ...run.grid[worst] }, model.spec.id);
    }
    return zooOutcome(run, minFlops, { mode: "glimpse", glimpses, stop });
  };
}
