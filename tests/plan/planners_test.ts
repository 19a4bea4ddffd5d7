// The fixed and scale-selector planners, priced and checked against budgets without running a model (a recording
// pool stands in for the workers; tests/segment_test.ts runs the same planners on the real model).

import assert from "node:assert/strict";
import { ModelRegistry } from "../../lib/models.ts";
import { Executor } from "../../lib/exec/mod.ts";
import {
  DEFAULT_PLANNER_OPTIONS,
  fixedPlanner,
  type Planner,
  type PlannerOptions,
  regionComplexity,
  scalePlanner,
} from "../../lib/plan/mod.ts";
import { UnprocessableError } from "../../lib/errors.ts";
import type { RgbaImage } from "../../lib/image/mod.ts";
import { RecordingPool } from "../_pool.ts";

const registry = await ModelRegistry.load();
const text = registry.model("text-ppocrv4-det");

/** An RGBA image from a grey function in [0, 1]. */
function rgba(width: number, height: number, grey: (x: number, y: number) => number): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = Math.round(grey(x, y) * 255), o = 4 * (y * width + x);
      data[o] = data[o + 1] = data[o + 2] = v;
      data[o + 3] = 255;
    }
  }
  return { width, height, data };
}

/** Runs a planner on a recording pool; returns the outcome, the executor and the jobs the pool saw. */
async function plan(
  planner: Planner,
  image: RgbaImage,
  budgetFlops?: number,
  options: PlannerOptions = DEFAULT_PLANNER_OPTIONS,
) {
  const pool = new RecordingPool();
  const exec = new Executor(pool, image, { budgetFlops, maxExecPixels: options.maxExecPixels, timeoutMs: 1000 });
  const outcome = await planner({ registry, task: registry.task("text"), image, exec, options, budgetFlops });
  return { outcome, exec, jobs: pool.jobs };
}

/** Sum of the counter's FLOPs over the jobs the pool saw, recomputed here. */
function recount(jobs: { model: string; dims: number[] }[]): number {
  return jobs.reduce((s, j) => s + registry.model(j.model).counter.count(j.dims).flops, 0);
}

/** Flat, except a band of 1-px stripes (fine detail) in the top-left 200×100. */
const stripes = (x: number, y: number) => (y >= 20 && y < 120 && x >= 20 && x < 220 && x % 2 ? 0.1 : 0.9);

Deno.test("fixed plan: whole image padded to a multiple of 32, cost from the counter", async () => {
  const { exec, jobs } = await plan(fixedPlanner(text), rgba(500, 300, () => 0.5));
  assert.equal(jobs.length, 1);
  assert.deepEqual(jobs[0].dims, [1, 3, 320, 512]);
  assert.equal(exec.flops, text.counter.count([1, 3, 320, 512]).flops);
  assert.equal(exec.flops, recount(jobs));
});

Deno.test("fixed plan: a budget below its cost is a 422 carrying min_gflops, and nothing runs", async () => {
  const cost = text.counter.count([1, 3, 640, 640]).flops;
  const image = rgba(640, 640, () => 0.5);
  const pool = new RecordingPool();
  const exec = new Executor(pool, image, { budgetFlops: Math.floor(cost / 2), maxExecPixels: 1 << 22, timeoutMs: 1 });
  const ctx = { registry, task: registry.task("text"), image, exec, options: DEFAULT_PLANNER_OPTIONS };
  await assert.rejects(fixedPlanner(text)(ctx), (err: unknown) => {
    assert.ok(err instanceof UnprocessableError);
    assert.equal(err.status, 422);
    assert.ok(Math.abs((err.extra.min_gflops as number) - cost / 1e9) < 1e-3);
    return true;
  });
  assert.equal(pool.jobs.length, 0);
  assert.equal((await plan(fixedPlanner(text), image, cost)).exec.flops, cost);
});

Deno.test("fixed plan refuses images over the per-execution pixel limit", async () => {
  const options = { ...DEFAULT_PLANNER_OPTIONS, maxExecPixels: 1 << 20 };
  await assert.rejects(plan(fixedPlanner(text), rgba(1100, 1000, () => 0), undefined, options), (err: unknown) => {
    assert.ok(err instanceof UnprocessableError);
    assert.equal(err.extra.max_exec_pixels, 1 << 20);
    return true;
  });
});

Deno.test("scale plan: flat tiles are skipped, detailed tiles run at full scale, batched per shape", async () => {
  const w = 640, h = 640;
  const { outcome, exec, jobs } = await plan(scalePlanner(text), rgba(w, h, stripes));
  // Tiles cover the image exactly once.
  const cover = new Uint8Array(w * h);
  for (const t of outcome.tiles) {
    for (let y = t.y; y < t.y + t.h; y++) for (let x = t.x; x < t.x + t.w; x++) cover[y * w + x]++;
  }
  assert.ok(cover.every((v) => v === 1));
  const topLeft = outcome.tiles.find((t) => t.x === 0 && t.y === 0)!;
  assert.equal(topLeft.model, text.spec.id);
  assert.equal(topLeft.scale, 1);
  assert.ok(outcome.tiles.filter((t) => t !== topLeft).every((t) => t.model === null), "flat tiles must be skipped");
  assert.equal(jobs.length, 1);
  assert.equal(exec.flops, recount(jobs));
  // The full-scale window carries a halo and is a valid model input.
  const [, , ih, iw] = jobs[0].dims;
  assert.equal(ih % 32, 0);
  assert.equal(iw % 32, 0);
  assert.equal(ih, topLeft.h + 2 * topLeft.halo);
});

Deno.test("scale plan: never exceeds the budget and upgrades the most detailed tiles first", async () => {
  const w = 640, h = 640;
  // Four tiles with stripes of different periods: finer detail, higher score.
  const periods = [2, 6, 10, 14];
  const image = rgba(w, h, (x, y) => {
    const p = periods[(y >= 320 ? 2 : 0) + (x >= 320 ? 1 : 0)];
    return Math.floor(x / (p / 2)) % 2 ? 0.1 : 0.9;
  });
  const opts = { ...DEFAULT_PLANNER_OPTIONS, wholeImageShortcut: false, fullDetail: 0 };
  const free = await plan(scalePlanner(text), image, undefined, opts);
  assert.ok(free.outcome.tiles.every((t) => t.scale === 1));
  const minimal = free.outcome.minFlops;
  const step = (free.exec.flops - minimal) / 4;
  for (const budget of [minimal, minimal + 1.5 * step, minimal + 2.5 * step, free.exec.flops]) {
    const { outcome, exec, jobs } = await plan(scalePlanner(text), image, Math.floor(budget), opts);
    assert.ok(exec.flops <= budget, `plan ${exec.flops} over budget ${budget}`);
    assert.equal(exec.flops, recount(jobs));
    const upgrades = Math.floor((budget - minimal) / step + 1e-9);
    const full = outcome.tiles.filter((t) => t.scale === 1);
    assert.equal(full.length, upgrades);
    const scores = outcome.tiles.map((t) => t.score!).sort((a, b) => b - a);
    assert.deepEqual(full.map((t) => t.score).sort((a, b) => b! - a!), scores.slice(0, upgrades));
  }
  const finest = (await plan(scalePlanner(text), image, Math.floor(minimal + 1.5 * step), opts)).outcome.tiles
    .find((t) => t.scale === 1)!;
  assert.deepEqual([finest.x, finest.y], [0, 0], "the 1-px stripes are the finest detail");
  await assert.rejects(plan(scalePlanner(text), image, Math.floor(minimal / 2), opts), UnprocessableError);
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
