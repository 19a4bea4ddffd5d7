// The segment use case without workers: credit is a ceiling, never a spending target. The segmenter here is a
// priced stand-in that behaves like PaSeR's planner (no budget: its own route; a budget: spends up to it), so the
// difference between "credit as a cap" and "credit as a budget" shows in the FLOPs; billing is a real Deno KV store.

import assert from "node:assert/strict";
import { BudgetTooSmallError, PaymentRequiredError, UnprocessableError } from "../../lib/errors.ts";
import { MeterStore } from "../../lib/metering/mod.ts";
import type { SegmentRequest, SegmentResult } from "../../lib/segment.ts";
import { type Account, type SegmentCall, serveSegment } from "../../lib/serve_segment.ts";
import { toGflops } from "../../lib/units.ts";

const OWN_ROUTE = 300, MOST = 500, CHEAPEST = 100;

/**
 * Its own route costs 300 FLOPs; under a budget it spends up to the budget (at most 500); 100 is the least. The
 * credit is taken as the Segmenter takes it: a ceiling that only binds when the plan would cost more.
 */
class PricedSegmenter {
  /** [budget, credit] of each call. */
  readonly calls: [number | undefined, number | undefined][] = [];
  segment(req: SegmentRequest): Promise<SegmentResult> {
    this.calls.push([req.budgetFlops, req.creditFlops]);
    const b = req.budgetFlops, credit = req.creditFlops ?? Infinity;
    const cap = Math.min(b ?? Infinity, credit);
    if (cap < CHEAPEST) return Promise.reject(new BudgetTooSmallError(CHEAPEST, cap));
    const wanted = b === undefined ? OWN_ROUTE : Math.min(b, MOST);
    const flops = Math.min(wanted, credit);
    return Promise.resolve({
      task: { name: req.task, classes: ["background", "x"] },
      width: 1,
      height: 1,
      mask: new Uint8Array(1),
      plan: { mode: req.mode, tiles: [], minFlops: CHEAPEST, executions: [] },
      cost: { flops, macs: flops / 2, breakdown: [] },
      backend: "test",
      creditBound: wanted > credit,
      timings: { decode: 0, plan: 0, queue: 0, infer: 0, model: 0, stitch: 0 },
    } as unknown as SegmentResult);
  }
}

const dir = await Deno.makeTempDir({ prefix: "thriftseg-serve-" });
const meter = await MeterStore.open({ path: `${dir}/meter.kv` });
const call: SegmentCall = { task: "digits", mode: "adaptive", bytes: new Uint8Array(1) };

async function account(creditFlops: number | null): Promise<Account> {
  const { key } = await meter.createKey({
    name: "t",
    creditGflops: creditFlops === null ? null : toGflops(creditFlops),
  });
  return { subject: key.id, creditFlops: (await meter.getKey(key.id))!.creditFlops };
}

async function serve(acc: Account, c: SegmentCall = call) {
  const segmenter = new PricedSegmenter();
  const served = await serveSegment({ segmenter, meter }, c, acc, {
    requestId: `req_${crypto.randomUUID()}`,
    render: (r) => ({ status: 200, headers: {}, body: r.mask }),
  });
  return { served, calls: segmenter.calls };
}

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...opts,
  name: "plenty of credit: the plan an anonymous caller gets (no budget), billed once",
  async fn() {
    for (const credit of [null, 10_000]) {
      const acc = await account(credit);
      const { served, calls } = await serve(acc);
      assert.deepEqual(calls, [[undefined, credit ?? undefined]], "one run; the credit is passed as a ceiling only");
      assert.equal(served.result.cost.flops, OWN_ROUTE);
      assert.equal(served.budgetFlops, undefined);
      assert.equal(served.remainingFlops, credit === null ? null : BigInt(credit - OWN_ROUTE));
    }
  },
});

Deno.test({
  ...opts,
  name: "the caller's own budget is kept when the credit covers it",
  async fn() {
    const { served, calls } = await serve(await account(10_000), { ...call, budgetFlops: 450 });
    assert.deepEqual(calls, [[450, 10_000]]);
    assert.equal(served.result.cost.flops, 450);
  },
});

Deno.test({
  ...opts,
  name: "a credit short of the plan caps it in one run; the budget reported is the credit",
  async fn() {
    const acc = await account(200);
    const { served, calls } = await serve(acc);
    assert.deepEqual(calls, [[undefined, 200]]);
    assert.equal(served.result.cost.flops, 200);
    assert.equal(served.budgetFlops, 200);
    assert.equal(served.remainingFlops, 0n);
    const capped = await serve(await account(200), { ...call, budgetFlops: 450 });
    assert.deepEqual(capped.calls, [[450, 200]]);
    assert.equal(capped.served.budgetFlops, 200);
  },
});

Deno.test({
  ...opts,
  name: "402 with min_gflops when not even the cheapest plan fits, or the credit is spent; nothing billed",
  async fn() {
    const poor = await account(50);
    await assert.rejects(() => serve(poor), (err: unknown) => {
      assert.ok(err instanceof PaymentRequiredError);
      assert.equal(err.extra.credit_remaining_gflops, toGflops(50));
      assert.ok((err.extra.min_gflops as number) >= toGflops(CHEAPEST));
      return true;
    });
    assert.equal((await meter.getKey(poor.subject))!.debitedFlops, 0n);
    const spent = await account(0);
    const segmenter = new PricedSegmenter();
    await assert.rejects(
      () =>
        serveSegment({ segmenter, meter }, call, spent, {
          requestId: "req_x",
          render: () => ({ status: 200, headers: {}, body: new Uint8Array() }),
        }),
      PaymentRequiredError,
    );
    assert.deepEqual(segmenter.calls, [], "a spent credit runs nothing");
  },
});

Deno.test({
  ...opts,
  name: "a budget of the caller's own below the cheapest plan stays 422 (the credit is not what is short)",
  async fn() {
    await assert.rejects(
      () => serve({ subject: "anonymous", creditFlops: null }, { ...call, budgetFlops: 50 }),
      (err) => {
        assert.ok(err instanceof UnprocessableError);
        assert.equal(err.slug, "budget-too-small");
        return true;
      },
    );
  },
});

Deno.test({ ...opts, name: "close the store", fn: () => meter.close() });
