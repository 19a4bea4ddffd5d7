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

Deno.test("planUnderBudget with exact prices: same plans as pricing every step, a bounded number of pricings", () => {
  // The rule as it reads: every step priced exactly.
  const everyStep = (gain: number[][], costs: number[], budget: number, price: (c: number[]) => number) => {
    const steps: { t: number; from: number; to: number; r: number }[] = [];
    for (let t = 0; t < gain[0].length; t++) {
      for (let cur = 0;;) {
        let next = -1, best = 0;
        for (let a = 1; a < costs.length; a++) {
          const dc = costs[a] - costs[cur];
          const r = dc > 0 ? (gain[a][t] - (cur === 0 ? 0 : gain[cur][t])) / dc : 0;
          if (r > 0 && r >= best) [next, best] = [a, r];
        }
        if (next < 0) break;
        steps.push({ t, from: cur, to: next, r: best });
        cur = next;
      }
    }
    steps.sort((p, q) => q.r - p.r || p.t - q.t || p.from - q.from);
    const chosen = new Array(gain[0].length).fill(0);
    for (const { t, from, to } of steps) {
      if (chosen[t] !== from) continue;
      chosen[t] = to;
      if (price(chosen) > budget) chosen[t] = from;
    }
    return chosen;
  };
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const costs = [0, 1, 4];
  // Shared windows: each further tile of an action costs 60% of the first (never more than the per-tile sum).
  const shared = (c: number[]) =>
    [1, 2].reduce((f, a) => {
      const k = c.filter((x) => x === a).length;
      return f + (k ? costs[a] * (1 + 0.6 * (k - 1)) : 0);
    }, 0);
  for (let trial = 0; trial < 40; trial++) {
    const n = 3 + Math.floor(rand() * 40);
    const g1 = Array.from({ length: n }, () => rand()), g2 = g1.map((v) => v + rand());
    const gain = [new Array(n).fill(0), g1, g2];
    const budget = rand() * 2 * n;
    assert.deepEqual(planUnderBudget(gain, costs, budget, shared), everyStep(gain, costs, budget, shared));
  }
  // 3000 tiles: pricing every step would price ~6000 plans; the rule prices at most 256 + 1.
  const n = 3000;
  const g1 = Array.from({ length: n }, () => rand()), g2 = g1.map((v) => v + rand());
  let calls = 0;
  const counted = (c: number[]) => (calls++, shared(c));
  const plan = planUnderBudget([new Array(n).fill(0), g1, g2], costs, 1000, counted);
  assert.ok(calls <= 257, `${calls} pricings`);
  assert.ok(shared(plan) <= 1000);
  // A price above the per-tile sum (not how windows behave, but possible in principle): still never over budget.
  const dearer = (c: number[]) => 1.5 * c.reduce((s, a) => s + costs[a], 0);
  for (const b of [1, 5, 20]) {
    assert.ok(dearer(planUnderBudget([new Array(n).fill(0), g1, g2], costs, b, dearer)) <= b);
  }
});
