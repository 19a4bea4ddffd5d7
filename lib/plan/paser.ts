// `adaptive` on a trained zoo (after PaSeR): f0 glances at the whole image, a selector picks per tile one local model
// or none (non-cascading: a tile runs f1 or f2, never both), the chosen tiles run batched per model.
//   policy selector (default): the routing policy on f0's argmax + entropy; the upgrades ranked by predicted gain per
//     FLOP (budget.ts), each taken while the exact plan still fits the budget — the request's, or without one the
//     default operating point chosen on validation (models/serving.json; its argmax route when none is chosen).
// A plan whose tiles would cost more than the strongest model once on the whole image runs that instead.
//   complexity selector (DANCE-style baseline, evaluation): tiles ranked by edge energy.

import { BudgetTooSmallError, UnprocessableError } from "../errors.ts";
import { toGrey } from "../image/mod.ts";
import type { LoadedModel } from "../models.ts";
import { planUnderBudget } from "./budget.ts";
import { tileEdgeEnergy } from "./complexity.ts";
import { rankGains, tileFeatures } from "./ranker.ts";
import type { PlanContext, Planner, PlanOutcome } from "./types.ts";
import { policyShapeCall, type Zoo, zooPreflight, ZooRun } from "./zoo.ts";

/** Complexity selector's default share of tiles upgraded when there is no budget. */
export const DEFAULT_COMPLEXITY_SHARE = 0.35;

/** Options of {@link paserPlanner}. */
export interface PaserOptions {
  /** Tile selector (default: the policy when the zoo has one). */
  selector?: "policy" | "complexity";
  /** Complexity selector without a budget: share of tiles (most complex first) sent to the strongest model. */
  complexityShare?: number;
}

/** Starts a zoo request: refuses a budget below the glance (422 with min_gflops), then runs the glance. */
export async function startZoo(ctx: PlanContext, zoo: Zoo): Promise<{ run: ZooRun; minFlops: number }> {
  const run = new ZooRun(zoo, ctx.task, ctx.exec);
  const minFlops = run.glanceFlops();
  if (!ctx.exec.fits(minFlops)) throw new BudgetTooSmallError(minFlops, ctx.exec.budget);
  await run.glance();
  return { run, minFlops };
}

/** The zoo's outcome once its planner is done. */
export function zooOutcome(run: ZooRun, minFlops: number, extra: Partial<PlanOutcome> = {}): PlanOutcome {
  const mask = run.mask();
  return { mode: "adaptive", mask, tiles: run.tiles, minFlops, stitchMs: run.probs.writeMs, ...extra };
}

/**
 * The adaptive planner of a zoo task.
 *
 * @example
 * ```ts ignore
 * const outcome = await paserPlanner(zoo)(ctx); // f0, policy, then f1/f2 on the tiles it picked
 * ```
 */
export function paserPlanner(zoo: Zoo, opts: PaserOptions = {}): Planner {
  const selector = opts.selector ?? (zoo.policy ? "policy" : "complexity");
  const plan: Planner = async (ctx) => {
    const { run, minFlops } = await startZoo(ctx, zoo);
    const exec = ctx.exec;
    const actionModels = zoo.actions.map((id) => (id === null ? null : zoo.locals.find((m) => m.spec.id === id)!));
    // Exact FLOPs of the chosen actions, batched per model as refine runs them.
    const planFlops = (chosen: number[]) =>
      actionModels.reduce((f, m, a) => (m ? f + run.localFlops(m, indicesOf(chosen, a)) : f), 0);
    let chosen: number[] = run.grid.map(() => 0);
    let stop: string | undefined;
    if (selector === "policy") {
      if (!zoo.policy) throw new UnprocessableError(`task ${ctx.task.name} has no routing policy`, "mode-unavailable");
      const policyFlops = exec.price([policyShapeCall(zoo, run.image.width, run.image.height)]).flops;
      if (!exec.fits(policyFlops)) {
        stop = "budget"; // not even the router fits: the glance alone is the plan
      } else {
        const out = await run.policy();
        const route = () => run.grid.map((_t, i) => argmax(out.logits.map((l) => l[i])));
        // Without a budget header the policy's own route, as long as the cap (a key's credit) leaves room for it.
        if (ctx.budgetFlops === undefined && zoo.defaultFraction === undefined && exec.fits(planFlops(route()))) {
          chosen = route();
        } else {
          // Without a budget header, the operating point chosen on the validation split: the same ranking under a
          // budget of a fixed fraction of what the strongest model costs on this image.
          // A key's credit only ever lowers this (a ceiling, never a spending target).
          const want = ctx.budgetFlops === undefined && zoo.defaultFraction !== undefined
            ? zoo.defaultFraction * run.wholeFlops(strongest(zoo)) - exec.flops
            : Infinity;
          const cap = exec.fits(want) ? want : exec.left;
          const perTile = actionModels.map((m) => (m ? run.localFlops(m, [0]) : 0));
          const gain = zoo.ranker ? rankGains(zoo.ranker, tileFeatures(run.probs, run.grid), out.gain) : out.gain;
          chosen = planUnderBudget(gain, perTile, cap, planFlops);
        }
      }
    } else {
      const grey = toGrey(run.image, zoo.global.spec.input.background);
      const { width, height } = run.image;
      const scores = run.grid.map((t) => tileEdgeEnergy(grey, width, height, t));
      const top = actionModels.length - 1;
      const order = scores.map((_s, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
      const share = opts.complexityShare ?? DEFAULT_COMPLEXITY_SHARE;
      for (const i of order.slice(0, Math.round(share * order.length))) chosen[i] = top;
      if (ctx.budgetFlops !== undefined || !exec.fits(planFlops(chosen))) {
        chosen = run.grid.map(() => 0);
        for (const i of order) {
          chosen[i] = top;
          if (!exec.fits(planFlops(chosen))) {
            chosen[i] = 0;
            break;
          }
        }
      }
      run.tiles = run.tiles.map((t, i) => ({ ...t, score: Math.round(scores[i] * 1e5) / 1e5 }));
    }
    // Never dearer: tiles that would cost more than the strongest model once on the whole image run that instead;
    // so does a plan that sends every tile to one model (that model once on the whole image: no seams, no halos).
    const top = strongest(zoo);
    const only = chosen.every((a) => a === chosen[0]) ? actionModels[chosen[0]] : null;
    for (const m of only && only !== top ? [only, top] : [top]) {
      const whole = run.wholeFlops(m);
      if (planFlops(chosen) > whole || (m === only && planFlops(chosen) === whole)) {
        if (!exec.fits(whole)) continue;
        await run.whole(m, "class");
        return zooOutcome(run, minFlops, { stop: "whole-image" });
      }
    }
    // The last step: the mask needs each pixel's class only (no softmax in the workers).
    await run.refine(actionModels.flatMap((m, a) => (m ? [{ model: m, tiles: indicesOf(chosen, a) }] : [])), "class");
    return zooOutcome(run, minFlops, stop ? { stop } : {});
  };
  plan.preflight = zooPreflight(zoo, selector === "policy");
  return plan;
}

/** Tiles whose chosen action is `a`. */
function indicesOf(chosen: number[], a: number): number[] {
  return chosen.flatMap((c, i) => (c === a ? [i] : []));
}

/** Index of the largest value (ties: the lowest index). */
function argmax(values: number[]): number {
  let best = 0;
  for (let a = 1; a < values.length; a++) if (values[a] > values[best]) best = a;
  return best;
}

/** The strongest local model of a zoo. */
export function strongest(zoo: Zoo): LoadedModel {
  return zoo.locals[zoo.locals.length - 1];
}
