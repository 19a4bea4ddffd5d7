// The cascade baseline of the evaluation (PaSeR's comparison): f0 on the whole image, then the strongest model on the
// whole image when f0's mean confidence is below a threshold. Not an HTTP mode.

import type { Planner } from "./types.ts";
import { startZoo, strongest, zooOutcome } from "./paser.ts";
import { type Zoo, zooPreflight } from "./zoo.ts";

/**
 * The cascade planner of a zoo task.
 *
 * @example
 * ```ts ignore
 * const outcome = await cascadePlanner(zoo, 0.99)(ctx);
 * ```
 */
export function cascadePlanner(zoo: Zoo, threshold: number): Planner {
  const plan: Planner = async (ctx) => {
    const { run, minFlops } = await startZoo(ctx, zoo);
    const top = strongest(zoo);
    if (run.confidence() < threshold && ctx.exec.fits(run.wholeFlops(top))) await run.whole(top);
    return zooOutcome(run, minFlops);
  };
  plan.preflight = zooPreflight(zoo, false);
  return plan;
}
