import assert from "node:assert/strict";
import { ModelRegistry } from "../lib/models.ts";
import { DEFAULT_PLANNER_OPTIONS, type Plan, planComplexity, planFixed } from "../lib/plan.ts";
import { UnprocessableError } from "../lib/errors.ts";
import { regionComplexity } from "../lib/complexity.ts";

const registry = await ModelRegistry.load();
const text = registry.model("text-ppocrv4-det");

/** Sum of the counter's FLOPs over the plan's executions, recomputed here. */
function recount(plan: Plan): number {
  return plan.executions.reduce((s, e) => s + registry.model(e.model).counter.count(e.dims).flops, 0);
}

/** A grey image: flat, except a noisy band of 1-px stripes (fine detail) in the top-left 200×100. */
function stripes(width: number, height: number): Float32Array {
  const g = new Float32Array(width * height).fill(0.9);
  for (let y = 20; y < 120; y++) for (let x = 20; x < 220; x++) g[y * width + x] = x % 2 ? 0.1 : 0.9;
  return g;
}

Deno.test("fixed plan: whole image padded to a multiple of 32, cost from the counter", () => {
  const plan = planFixed(text, 500, 300, undefined);
  assert.equal(plan.executions.length, 1);
  assert.deepEqual(plan.executions[0].dims, [1, 3, 320, 512]);
  assert.equal(plan.flops, text.counter.count([1, 3, 320, 512]).flops);
  assert.equal(plan.flops, recount(plan));
});

Deno.test("fixed plan: a budget below its cost is a 422 carrying min_gflops", () => {
  const cost = text.counter.count([1, 3, 640, 640]).gflops;
  assert.throws(() => planFixed(text, 640, 640, cost / 2), (err: unknown) => {
    assert.ok(err instanceof UnprocessableError);
    assert.equal(err.status, 422);
    assert.ok(Math.abs((err.extra.min_gflops as number) - cost) < 1e-3);
    return true;
  });
  assert.equal(planFixed(text, 640, 640, cost + 1e-6).flops, text.counter.count([1, 3, 640, 640]).flops);
});

Deno.test("fixed plan refuses images over the per-execution pixel limit", () => {
  assert.throws(
    () => planFixed(text, 4000, 4000, undefined, { ...DEFAULT_PLANNER_OPTIONS, maxExecPixels: 1 << 20 }),
    UnprocessableError,
  );
});

Deno.test("complexity plan: flat tiles are skipped, detailed tiles run at full scale, batched per shape", () => {
  const w = 640, h = 640;
  const plan = planComplexity(text, stripes(w, h), w, h, undefined);
  // Tiles cover the image exactly once.
  const cover = new Uint8Array(w * h);
  for (const t of plan.tiles) {
    for (let y = t.y; y < t.y + t.h; y++) for (let x = t.x; x < t.x + t.w; x++) cover[y * w + x]++;
  }
  assert.ok(cover.every((v) => v === 1));
  const topLeft = plan.tiles.find((t) => t.x === 0 && t.y === 0)!;
  assert.equal(topLeft.model, text.spec.id);
  assert.equal(topLeft.scale, 1);
  assert.ok(plan.tiles.filter((t) => t !== topLeft).every((t) => t.model === null), "flat tiles must be skipped");
  assert.equal(plan.executions.length, 1);
  assert.equal(plan.flops, recount(plan));
  // The full-scale window carries a halo and is a valid model input.
  const [, , ih, iw] = plan.executions[0].dims;
  assert.equal(ih % 32, 0);
  assert.equal(iw % 32, 0);
  assert.equal(ih, topLeft.h + 2 * topLeft.halo);
});

Deno.test("complexity plan: never exceeds the budget and upgrades the most detailed tiles first", () => {
  const w = 640, h = 640;
  const g = new Float32Array(w * h);
  // Four tiles with stripes of different periods: finer detail, higher score.
  const periods = [2, 6, 10, 14];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = periods[(y >= 320 ? 2 : 0) + (x >= 320 ? 1 : 0)];
      g[y * w + x] = Math.floor(x / (p / 2)) % 2 ? 0.1 : 0.9;
    }
  }
  const opts = { ...DEFAULT_PLANNER_OPTIONS, wholeImageShortcut: false, fullDetail: 0 };
  const free = planComplexity(text, g, w, h, undefined, opts);
  assert.ok(free.tiles.every((t) => t.scale === 1));
  const minimal = free.minFlops;
  const step = (free.flops - minimal) / 4;
  for (const budget of [minimal, minimal + 1.5 * step, minimal + 2.5 * step, free.flops]) {
    const plan = planComplexity(text, g, w, h, budget / 1e9, opts);
    assert.ok(plan.flops <= budget, `plan ${plan.flops} over budget ${budget}`);
    assert.equal(plan.flops, recount(plan));
    const upgrades = Math.floor((budget - minimal) / step + 1e-9);
    const full = plan.tiles.filter((t) => t.scale === 1);
    assert.equal(full.length, upgrades);
    const scores = plan.tiles.map((t) => t.score!).sort((a, b) => b - a);
    assert.deepEqual(full.map((t) => t.score).sort((a, b) => b! - a!), scores.slice(0, upgrades));
  }
  const finest = planComplexity(text, g, w, h, (minimal + 1.5 * step) / 1e9, opts).tiles.find((t) => t.scale === 1)!;
  assert.deepEqual([finest.x, finest.y], [0, 0], "the 1-px stripes are the finest detail");
  assert.throws(() => planComplexity(text, g, w, h, minimal / 2 / 1e9, opts), UnprocessableError);
});

Deno.test("complexity score: fine stripes score higher than coarse ones; flat is zero", () => {
  const w = 64, h = 64;
  const make = (p: number) => {
    const g = new Float32Array(w * h);
    for (let i = 0; i < g.length; i++) g[i] = Math.floor((i % w) / (p / 2)) % 2;
    return g;
  };
  const fine = regionComplexity(make(2), w, h, 0, 0, w, h);
  const coarse = regionComplexity(make(16), w, h, 0, 0, w, h);
  assert.ok(fine.fineShare > coarse.fineShare);
  const flat = regionComplexity(new Float32Array(w * h).fill(0.5), w, h, 0, 0, w, h);
  assert.equal(flat.std, 0);
  assert.equal(flat.fineShare, 0);
});
