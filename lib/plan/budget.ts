// The PaSeR planner's rule under a budget, as pure math over per-tile predicted gains and prices (the same rule as
// training/policy.py `plan_under_budget`, documented in each policy's manifest entry).

/**
 * Per tile, the actions are reduced to the upper convex hull of (FLOPs, predicted gain) starting at keep = (0, 0),
 * giving steps keep→a→b… with ratio Δgain/ΔFLOPs (only positive ones). All steps of all tiles are sorted by ratio,
 * highest first (ties: lower tile index, then the step from the cheaper state), and taken when the tile is still in
 * the step's starting state and the extra FLOPs fit. Returns the action index per tile (0 = keep).
 *
 * The steps are ranked at per-tile prices (`costs`, one per action); `price`, when given, is the exact cost of a
 * whole plan (merged windows cost less than the sum of their tiles), and a step is taken when the plan with it still
 * costs ≤ budget.
 *
 * @example
 * ```ts
 * import { planUnderBudget } from "./budget.ts";
 * // Two tiles, actions keep / f1 (cost 1) / f2 (cost 3); gains per action per tile:
 * const gain = [[0, 0], [0.5, 0.1], [0.9, 0.2]];
 * planUnderBudget(gain, [0, 1, 3], 1); // [1, 0]: f1 on the first tile
 * ```
 */
export function planUnderBudget(
  gain: number[][],
  costs: number[],
  budget: number,
  price?: (chosen: number[]) => number,
): number[] {
  const nTiles = gain[0].length;
  const steps: { t: number; from: number; to: number; ratio: number }[] = [];
  for (let t = 0; t < nTiles; t++) {
    let cur = 0;
    for (;;) {
      let next = -1, best = 0;
      for (let a = 1; a < costs.length; a++) {
        const dc = costs[a] - costs[cur];
        if (dc <= 0) continue;
        const r = (gain[a][t] - (cur === 0 ? 0 : gain[cur][t])) / dc;
        if (r > 0 && r >= best) [next, best] = [a, r];
      }
      if (next < 0) break;
      steps.push({ t, from: cur, to: next, ratio: best });
      cur = next;
    }
  }
  steps.sort((p, q) => q.ratio - p.ratio || p.t - q.t || p.from - q.from);
  const chosen = new Array(nTiles).fill(0);
  let left = budget;
  // With exact prices: a plan's exact price is at most the sum of its tiles' prices (merged windows share their
  // halos), so a step whose per-tile sum still fits is taken without pricing the plan; only the others are priced,
  // at most EXACT_CHECKS of them (each costs O(tiles): pricing every step was quadratic in the tiles, hundreds of ms
  // of the main thread on a large image). The final plan is priced once more, and if it does not fit after all, the
  // rule runs again pricing every step.
  let sum = 0, checks = 0;
  for (const { t, from, to } of steps) {
    if (chosen[t] !== from) continue;
    const extra = costs[to] - costs[from];
    if (price) {
      if (sum + extra <= budget) {
        chosen[t] = to;
        sum += extra;
      } else if (checks++ < EXACT_CHECKS) {
        chosen[t] = to;
        if (price(chosen) > budget) chosen[t] = from;
        else sum += extra;
      }
    } else if (extra <= left) {
      chosen[t] = to;
      left -= extra;
    }
  }
  if (price && price(chosen) > budget) return planEveryStep(steps, nTiles, budget, price);
  return chosen;
}

/** Exact checks {@link planUnderBudget} makes for steps whose per-tile prices alone would not fit. */
const EXACT_CHECKS = 256;

function planEveryStep(
  steps: { t: number; from: number; to: number }[],
  nTiles: number,
  budget: number,
  price: (chosen: number[]) => number,
): number[] {
  const chosen = new Array(nTiles).fill(0);
  for (const { t, from, to } of steps) {
    if (chosen[t] !== from) continue;
    chosen[t] = to;
    if (price(chosen) > budget) chosen[t] = from;
  }
  return chosen;
}
