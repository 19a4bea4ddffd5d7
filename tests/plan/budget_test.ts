// The PaSeR budget ranking (lib/plan/budget.ts), as pure math: no models, no workers.

import assert from "node:assert/strict";
import { planUnderBudget } from "../../lib/plan/mod.ts";

Deno.test("planUnderBudget: convex-hull steps by gain per FLOP, one action per tile, never over budget", () => {
  // 3 tiles, actions keep/f1/f2 with costs 0/1/3; gains relative to keep.
  // Tile 0: keep→f1 at 0.5, then f1→f2 at 0.4/2 = 0.2. Tile 1: f1 is below the hull, keep→f2 at 0.2.
  // Tile 2: f1 loses, keep→f2 at 0.2/3. Order: t0 keep→f1, t0 f1→f2 (tie with t1, lower tile first), t1, t2.
  const gain = [[0, 0, 0], [0.5, 0.1, -1], [0.9, 0.6, 0.2]];
  const costs = [0, 1, 3];
  assert.deepEqual(planUnderBudget(gain, costs, 0), [0, 0, 0]);
  assert.deepEqual(planUnderBudget(gain, costs, 1), [1, 0, 0]);
  assert.deepEqual(planUnderBudget(gain, costs, 2), [1, 0, 0]); // f1→f2 needs 2 more
  assert.deepEqual(planUnderBudget(gain, costs, 3), [2, 0, 0]);
  assert.deepEqual(planUnderBudget(gain, costs, 6), [2, 2, 0]);
  assert.deepEqual(planUnderBudget(gain, costs, 100), [2, 2, 2]);
  // A tile whose every gain is ≤ 0 is never upgraded, whatever the budget.
  assert.deepEqual(planUnderBudget([[0, 0], [-0.1, 0.2], [-0.2, 0.1]], costs, 100), [0, 1]);
  for (const b of [0, 0.5, 1, 2, 3.5, 5, 7, 9]) {
    const chosen = planUnderBudget(gain, costs, b);
    assert.ok(chosen.reduce((s, a) => s + costs[a], 0) <= b);
  }
  // Exact pricing of the whole plan: tiles of one action share a window, so each extra tile of an action costs less.
  const shared = (chosen: number[]) =>
    [1, 2].reduce((f, a) => {
      const k = chosen.filter((c) => c === a).length;
      return f + (k ? costs[a] * (1 + 0.5 * (k - 1)) : 0);
    }, 0);
  // Per-tile prices would stop at [2, 0, 0] for a budget of 4.5 (tile 1's f2 needs 3 more); shared windows let it in.
  assert.deepEqual(planUnderBudget(gain, costs, 4.5), [2, 0, 0]);
  assert.deepEqual(planUnderBudget(gain, costs, 4.5, shared), [2, 2, 0]);
  for (const b of [0, 0.5, 1, 2, 3.5, 4.5, 6, 9]) assert.ok(shared(planUnderBudget(gain, costs, b, shared)) <= b);
});
