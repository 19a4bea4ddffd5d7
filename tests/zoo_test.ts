// Adaptive execution on the trained zoos (lib/zoo.ts) with the real models in real onnxruntime-web workers:
// exact cost in every mode, budgets never exceeded, non-cascading routing, glimpse steps, halo tiles.

import assert from "node:assert/strict";
import { ModelRegistry } from "../lib/models.ts";
import { WorkerPool } from "../workers/pool.ts";
import { Segmenter, type SegmentRequest, type SegmentResult } from "../lib/segment.ts";
import { DEFAULT_PLANNER_OPTIONS } from "../lib/plan.ts";
import { decodeImage } from "../lib/image/mod.ts";
import { planUnderBudget, runZoo, zooOf, ZooRunner } from "../lib/zoo.ts";

// Scene 0 of the held-out test split of each task (training/scenes.py), image and label.
const fixture = (name: string) => Deno.readFile(new URL(`./fixtures/${name}`, import.meta.url));
const scenes = {
  digits: { bytes: await fixture("digits-test-0.png"), label: await fixture("digits-test-0-label.png") },
  micrograph: { bytes: await fixture("micrograph-test-0.png"), label: await fixture("micrograph-test-0-label.png") },
};

const registry = await ModelRegistry.load();
const pool = new WorkerPool({
  size: 2,
  queueLimit: 256,
  backend: "wasm-simd",
  wasmThreads: 1,
  models: [...registry.models.values()].filter((m) => m.spec.task !== "text").map((m) => ({
    id: m.spec.id,
    bytes: m.bytes,
  })),
});
await pool.start();
const segmenter = new Segmenter(registry, pool, {
  maxPixels: 16e6,
  timeoutMs: 60_000,
  planner: DEFAULT_PLANNER_OPTIONS,
});
const opts = { sanitizeResources: false, sanitizeOps: false };

async function miou(mask: Uint8Array, labelPng: Uint8Array, classes: number): Promise<number> {
  const label = (await decodeImage(labelPng)).data;
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    let inter = 0, union = 0;
    for (let p = 0; p < mask.length; p++) {
      const a = mask[p] === c, b = label[4 * p] === c;
      if (a && b) inter++;
      if (a || b) union++;
    }
    sum += union ? inter / union : 1;
  }
  return sum / classes;
}

/** The cost is the counter's FLOPs for exactly the executions listed, and they are all there is. */
function assertExactCost(r: SegmentResult) {
  let flops = 0;
  for (const ex of r.plan.executions) {
    const recount = registry.model(ex.model).counter.count(ex.dims).flops;
    assert.equal(ex.flops, recount, `${ex.model} ${ex.dims}`);
    flops += recount;
  }
  assert.equal(r.cost.flops, flops);
  assert.equal(r.cost.gflops, flops / 1e9);
  const byModel = r.cost.breakdown.reduce((s, b) => s + b.gflops, 0);
  assert.ok(Math.abs(byModel - r.cost.gflops) < 1e-9);
}

function segment(task: keyof typeof scenes, req: Omit<SegmentRequest, "task" | "bytes">) {
  return segmenter.segment({ task, bytes: scenes[task].bytes, ...req } as SegmentRequest);
}

for (const task of ["digits", "micrograph"] as const) {
  const zoo = zooOf(registry, registry.task(task))!; // the trained halo (16 px); requests use the served one
  const f0 = zoo.global.spec.id;
  const f2 = zoo.locals[zoo.locals.length - 1].spec.id;
  const nClasses = registry.task(task).classes.length;

  Deno.test({
    ...opts,
    name: `${task}: every mode reports exactly the counter's FLOPs of the executions it ran`,
    async fn() {
      const reqs: Omit<SegmentRequest, "task" | "bytes">[] = [
        { mode: "fixed", model: f0 },
        { mode: "fixed", model: f2 },
        { mode: "adaptive" },
        { mode: "adaptive", budgetGflops: 0.5 },
        { mode: "adaptive", selector: "complexity" },
        { mode: "glimpse", confidence: 1 },
        { mode: "glimpse", confidence: 1, budgetGflops: 1 },
        { mode: "cascade", cascadeConfidence: 1 },
      ];
      for (const req of reqs) {
        const r = await segment(task, req);
        assertExactCost(r);
        assert.equal(r.mask.length, r.width * r.height);
        assert.ok(r.mask.every((v) => v < nClasses));
        if (req.budgetGflops !== undefined) assert.ok(r.cost.flops <= req.budgetGflops * 1e9, JSON.stringify(req));
      }
    },
  });

  Deno.test({
    ...opts,
    name: `${task}: the strongest model's mask matches the label (the fixture and the models are sane)`,
    async fn() {
      const r = await segment(task, { mode: "fixed", model: f2 });
      const q = await miou(r.mask, scenes[task].label, nClasses);
      assert.ok(q > 0.6, `mIoU ${q}`);
    },
  });

  Deno.test({
    ...opts,
    name: `${task}: adaptive never exceeds a budget, runs each tile through at most one local model, 422 below f0`,
    async fn() {
      const free = await segment(task, { mode: "adaptive" });
      const f0Flops = free.plan.executions.find((e) => e.model === f0)!.flops;
      const budgets = [f0Flops / 1e9, (f0Flops / 1e9) * 1.5, free.cost.gflops / 2, free.cost.gflops, 100];
      let last = -1;
      for (const b of budgets) {
        const r = await segment(task, { mode: "adaptive", budgetGflops: b });
        assertExactCost(r);
        assert.ok(r.cost.flops <= b * 1e9, `budget ${b}: spent ${r.cost.gflops}`);
        assert.ok(r.cost.flops >= last, "a larger budget never buys less");
        last = r.cost.flops;
        // Non-cascading: a tile index appears in at most one local execution.
        const seen = new Set<number>();
        for (const ex of r.plan.executions.filter((e) => e.tiles.length)) {
          for (const t of ex.tiles) {
            assert.ok(!seen.has(t), `tile ${t} ran twice`);
            seen.add(t);
          }
        }
        // Windows of one model and size run as one batched call.
        const keys = r.plan.executions.map((e) => `${e.model} ${e.dims.slice(1)}`);
        assert.equal(new Set(keys).size, keys.length);
      }
      await assert.rejects(
        segment(task, { mode: "adaptive", budgetGflops: (f0Flops - 1) / 1e9 }),
        (err: Error & { status?: number; extra?: Record<string, unknown> }) => {
          assert.equal(err.status, 422);
          assert.ok(Number(err.extra?.min_gflops) >= f0Flops / 1e9);
          return true;
        },
      );
    },
  });

  Deno.test({
    ...opts,
    name: `${task}: glimpse lists each step with cumulative GFLOPs and stops on confidence, budget or exhaustion`,
    async fn() {
      // An unreachable target runs every tile (or until the budget is gone).
      const all = await segment(task, { mode: "glimpse", confidence: 1 });
      const g = all.plan.glimpses!;
      assert.equal(g[0].model, f0);
      assert.equal(g[0].tile, null);
      for (let i = 1; i < g.length; i++) assert.ok(g[i].gflops > g[i - 1].gflops);
      assert.ok(Math.abs(g[g.length - 1].gflops - all.cost.gflops) < 1e-12);
      assert.equal(all.plan.stop, "exhausted");
      assert.equal(g.length - 1, all.plan.tiles.length);
      // A reachable target stops as soon as it is met: the confidence before the last step was below it.
      const mid = g[Math.max(1, Math.floor(g.length / 3))].confidence;
      const some = await segment(task, { mode: "glimpse", confidence: mid });
      const s = some.plan.glimpses!;
      assert.equal(some.plan.stop, "confidence");
      assert.ok(s[s.length - 1].confidence >= mid);
      for (const step of s.slice(0, -1)) assert.ok(step.confidence < mid);
      // A budget stops it, never overspent.
      const budget = g[0].gflops + (g[g.length - 1].gflops - g[0].gflops) / 3;
      const capped = await segment(task, { mode: "glimpse", confidence: 1, budgetGflops: budget });
      assert.ok(capped.cost.gflops <= budget);
      assert.equal(capped.plan.stop, "budget");
      // A deadline in the past: the glance only, still a valid mask.
      const late = await segment(task, { mode: "glimpse", confidence: 1, deadlineMs: 1 }).catch((e) => e);
      if (!(late instanceof Error)) assert.equal(late.plan.stop, "deadline");
    },
  });

  Deno.test({
    ...opts,
    name: `${task}: ${f2} on haloed tiles matches ${f2} on the whole image except near tile borders without halo`,
    async fn() {
      const img = await decodeImage(scenes[task].bytes);
      const whole = (await segment(task, { mode: "fixed", model: f2 })).mask;
      const run = (id: string, dims: number[], data: Float32Array) => pool.run(id, dims, data, 60_000);
      const strongest = zoo.locals[zoo.locals.length - 1];
      const differ = async (halo: number, merge: boolean, tiles?: number[]) => {
        const runner = new ZooRunner({ ...zoo, halo }, registry.task(task), img, run, 1 << 22, merge);
        await runner.glance();
        const glance = runner.flops;
        const chosen = tiles ?? runner.grid.map((_t, i) => i);
        await runner.refine(strongest, chosen);
        assert.equal(runner.flops - glance, runner.localFlops(strongest, chosen), "priced = run");
        const m = runner.mask();
        let d = 0, n = 0;
        for (const ti of chosen) {
          const t = runner.grid[ti];
          for (let y = t.y; y < t.y + t.h; y++) {
            for (let x = t.x; x < t.x + t.w; x++, n++) if (m[y * img.width + x] !== whole[y * img.width + x]) d++;
          }
        }
        return { share: d / n, flops: runner.flops - glance };
      };
      const withHalo = await differ(zoo.halo, false);
      const served = DEFAULT_PLANNER_OPTIONS.zooHalo;
      const servedHalo = await differ(served, false);
      const noHalo = await differ(0, false);
      // Merged windows: a 3×2 block of tiles shares one halo.
      const block = [0, 1, 2, 4, 5, 6];
      const merged = await differ(zoo.halo, true, block);
      const separate = await differ(zoo.halo, false, block);
      console.log(
        `${task}: pixels differing from whole-image ${f2}: per-tile halo ${zoo.halo}: ` +
          `${(withHalo.share * 100).toFixed(3)}% at ${
            (withHalo.flops / 1e9).toFixed(3)
          } GFLOPs, halo ${served} (served): ` +
          `${(servedHalo.share * 100).toFixed(3)}% at ${(servedHalo.flops / 1e9).toFixed(3)} GFLOPs, ` +
          `no halo: ${(noHalo.share * 100).toFixed(3)}%; ` +
          `6 tiles merged: ${(merged.share * 100).toFixed(3)}% at ${(merged.flops / 1e9).toFixed(3)} GFLOPs ` +
          `vs ${(separate.flops / 1e9).toFixed(3)} separate`,
      );
      assert.ok(withHalo.share < 0.01, `with halo ${withHalo.share}`);
      assert.ok(noHalo.share > 2 * withHalo.share, `halo should matter: ${noHalo.share} vs ${withHalo.share}`);
      assert.ok(servedHalo.share < 0.01, `served halo ${served}: ${servedHalo.share}`);
      assert.ok(servedHalo.share <= noHalo.share && servedHalo.flops < withHalo.flops);
      assert.ok(merged.share < 0.01, `merged ${merged.share}`);
      assert.ok(merged.flops < separate.flops, "a shared halo costs less");
    },
  });
}

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

Deno.test({
  ...opts,
  name: "runZoo refuses a budget below the glance with min_gflops",
  async fn() {
    const img = await decodeImage(scenes.digits.bytes);
    const zoo = zooOf(registry, registry.task("digits"))!;
    const runner = new ZooRunner(zoo, registry.task("digits"), img, () => {
      throw new Error("nothing may run");
    }, 1 << 22);
    await assert.rejects(runZoo(runner, { mode: "adaptive", budgetGflops: 1e-6 }), /below the cheapest plan/);
    assert.equal(runner.flops, 0);
  },
});

Deno.test({ ...opts, name: "zoo tests: close the pool", fn: () => pool.close() });
