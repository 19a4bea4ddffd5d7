// The trained zoos over real HTTP: adaptive under a budget header, glimpse with its steps, fixed; the cost headers
// equal the JSON cost, which is the counter's FLOPs of the listed executions.

import assert from "node:assert/strict";
import { testServer } from "../_util.ts";
import { SegmentResponse } from "../../routes/schemas.ts";

const server = await testServer({ WORKERS: "2" });
const png = await Deno.readFile(new URL("../fixtures/digits-test-0.png", import.meta.url));

async function segment(headers: Record<string, string>) {
  const res = await fetch(`${server.url}/v1/segment/digits`, {
    method: "POST",
    body: png,
    headers: { "content-type": "image/png", ...headers },
  });
  const body = await res.json();
  return { res, body };
}

Deno.test({
  name: "digits over HTTP: adaptive with a budget, glimpse with steps, fixed; costs exact and within budget",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    try {
      await server.ready;
      const free = await segment({ "x-mode": "adaptive" });
      assert.equal(free.res.status, 200, JSON.stringify(free.body));
      assert.ok(SegmentResponse.safeParse(free.body).success);
      assert.equal(Number(free.res.headers.get("x-cost-gflops")), free.body.cost.gflops);
      const sum = free.body.plan.executions.reduce((s: number, e: { gflops: number }) => s + e.gflops, 0);
      assert.ok(Math.abs(sum - free.body.cost.gflops) < 1e-9);
      assert.equal(free.body.plan.tiles.length, 16);

      const budget = free.body.plan.executions[0].gflops * 1.2;
      const capped = await segment({ "x-mode": "adaptive", "x-budget-gflops": String(budget) });
      assert.equal(capped.res.status, 200);
      assert.ok(capped.body.cost.gflops <= budget);
      assert.equal(capped.body.budget.gflops, budget);

      const glimpse = await segment({ "x-mode": "glimpse", "x-confidence": "1" });
      assert.equal(glimpse.res.status, 200);
      const steps = glimpse.body.plan.glimpses;
      assert.ok(steps.length >= 2);
      assert.equal(steps.at(-1).gflops, glimpse.body.cost.gflops);
      assert.equal(glimpse.body.plan.stop, "never-dearer");

      const fixed = await segment({ "x-mode": "fixed", "x-model": "digits-f0" });
      assert.equal(fixed.res.status, 200);
      assert.equal(fixed.body.cost.gflops, free.body.plan.executions[0].gflops, "f0 on the whole image = the glance");

      const tooSmall = await segment({ "x-mode": "glimpse", "x-budget-gflops": "0.0001" });
      assert.equal(tooSmall.res.status, 422);
      assert.ok(tooSmall.body.min_gflops > 0.0001);
    } finally {
      await server.close();
    }
  },
});
