// The zoo planners' serving choices, checked without running a model: a scripted pool answers each model with logits
// chosen per tile (sure or unsure), so the tests know which tiles need which model. Covers the per-model halos and the
// default route read from models/serving.json, the never-dearer rule of the adaptive planner, the glimpse planner's
// f1-before-f2 focus steps, and the replay helpers of the evaluation's oracle.

import assert from "node:assert/strict";
import { ModelRegistry } from "../../lib/models.ts";
import { Executor, type InferencePool } from "../../lib/exec/mod.ts";
import {
  DEFAULT_PLANNER_OPTIONS,
  glimpsePlanner,
  haloOf,
  paserPlanner,
  type Planner,
  type Zoo,
  zooOf,
} from "../../lib/plan/mod.ts";
import { type RgbaImage, summariseBatch } from "../../lib/image/mod.ts";
import type { ModelInput, Tensor } from "../../workers/protocol.ts";
import { linearGain, miouOf, spearman } from "../../bench/eval/oracle.ts";
import { rankGains } from "../../lib/plan/ranker.ts";

const registry = await ModelRegistry.load();
const task = registry.task("digits");
const image: RgbaImage = { width: 256, height: 256, data: new Uint8Array(256 * 256 * 4).fill(255) };

/**
 * Answers every model with 2-class logits: for each pixel, `sure(model, x, y)` decides between a confident (logit
 * gap 8) and an unsure (gap 0.05) background. The policy gets fixed gains (f2 best everywhere).
 */
class ScriptedPool implements InferencePool {
  readonly backend = "scripted";
  readonly jobs: { model: string; dims: number[] }[] = [];
  constructor(readonly sure: (model: string, x: number, y: number) => boolean) {}

  run(model: string, dims: number[], input: Float32Array | ModelInput) {
    this.jobs.push({ model, dims });
    const [n, , h, w] = dims;
    const outputs: Record<string, Tensor> = {};
    if (model.endsWith("policy")) {
      const cells = n * (h / 64) * (w / 64);
      const gain = new Float32Array(3 * cells), actions = new Float32Array(3 * cells);
      for (let i = 0; i < cells; i++) [gain[cells + i], gain[2 * cells + i], actions[cells + i]] = [0.1, 1, 1];
      outputs.actions = { dims: [n, 3, h / 64, w / 64], data: actions };
      outputs.gain = { dims: [n, 3, h / 64, w / 64], data: gain };
    } else {
      const wins = input instanceof Float32Array || input.kind !== "windows" ? [{ x: 0, y: 0, w, h }] : input.windows;
      const data = new Float32Array(n * 2 * h * w);
      wins.forEach((win, k) => {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            data[k * 2 * h * w + y * w + x] = this.sure(model, win.x + x, win.y + y) ? 8 : 0.05;
          }
        }
      });
      outputs.logits = { dims: [n, 2, h, w], data };
      // As an inference worker does (workers/infer.ts): summaries of the scores when asked for.
      if (!(input instanceof Float32Array) && input.kind === "windows" && input.summary) {
        const summary = summariseBatch(outputs.logits, h, w, input.summary);
        return Promise.resolve({ outputs: { summary }, inferMs: 0, queueMs: 0 });
      }
    }
    return Promise.resolve({ outputs, inferMs: 0, queueMs: 0 });
  }
}

async function plan(planner: Planner, pool: ScriptedPool, budgetFlops?: number, confidence?: number) {
  const exec = new Executor(pool, image, { budgetFlops, maxExecPixels: 1 << 22, timeoutMs: 1000 });
  const outcome = await planner({
    registry,
    task,
    image,
    exec,
    options: DEFAULT_PLANNER_OPTIONS,
    budgetFlops,
    confidence,
  });
  return { outcome, exec };
}

const f2 = registry.model("digits-f2");
const f2Whole = f2.counter.count([1, 1, 256, 256]).flops;

Deno.test("zooOf: served halos per model from the serving choice, capped by ZOO_HALO; trained halo without one", () => {
  const choice = { halo: { "digits-f1": 0, "digits-f2": 8 }, default_route: null };
  const served = zooOf(registry, task, 4, choice)!;
  assert.equal(haloOf(served, registry.model("digits-f1")), 0);
  assert.equal(haloOf(served, f2), 4);
  assert.equal(served.defaultFraction, undefined);
  const trained = zooOf(registry, task, undefined, choice)!;
  assert.equal(haloOf(trained, f2), 16);
  const withDefault = zooOf(registry, task, 8, {
    halo: {},
    default_route: { rule: "budget", fraction_of_strongest: 0.25 },
  })!;
  assert.equal(withDefault.defaultFraction, 0.25);
  assert.equal(haloOf(withDefault, f2), 8);
});

Deno.test("adaptive without a budget header spends the default fraction of f2's whole-image FLOPs, not more", async () => {
  const zoo: Zoo = {
    ...zooOf(registry, task, 0, { halo: {}, default_route: { rule: "budget", fraction_of_strongest: 0.3 } })!,
  };
  const { exec, outcome } = await plan(paserPlanner(zoo), new ScriptedPool(() => true));
  assert.ok(exec.flops <= 0.3 * f2Whole, `${exec.flops} > ${0.3 * f2Whole}`);
  // It did spend: the policy ranks f2 highest, so some tiles went to f2.
  assert.ok(outcome.tiles.some((t) => t.model === "digits-f2"));
  // The argmax route (no default) sends every tile to f1 here.
  const argmax = await plan(paserPlanner({ ...zoo, defaultFraction: undefined }), new ScriptedPool(() => true));
  assert.ok(argmax.outcome.tiles.every((t) => t.model === "digits-f1"));
});

Deno.test("adaptive never dearer: tiles that would cost more than f2 on the whole image run f2 on the whole image", async () => {
  const flatZoo = zooOf(registry, task, 0, { halo: {}, default_route: null })!;
  // With an 8 px halo, f2 on every tile (one merged 272×272 window) costs more than f2 on the 256×256 image.
  const zoo = zooOf(registry, task, 8, { halo: { "digits-f1": 8, "digits-f2": 8 }, default_route: null })!;
  const pool = new ScriptedPool(() => true);
  const { exec, outcome } = await plan(paserPlanner(zoo), pool, 100e9);
  const ran = pool.jobs.filter((j) => j.model === "digits-f2");
  assert.deepEqual(ran.map((j) => j.dims), [[1, 1, 256, 256]]);
  assert.equal(outcome.stop, "whole-image");
  assert.deepEqual(outcome.tiles.map((t) => t.model), ["digits-f2"]);
  const glance = exec.executions.filter((e) => e.model !== "digits-f2").reduce((s, e) => s + e.flops, 0);
  assert.equal(exec.flops, glance + f2Whole);
  // A plan that sends every tile to one model runs that model once on the whole image when that is no dearer: f1
  // on every tile (an 8 px halo) becomes f1 on the image.
  const f1 = registry.model("digits-f1");
  const allF1 = zooOf(registry, task, 8, { halo: {}, default_route: null, ranker: null })!;
  const pool1 = new ScriptedPool(() => true);
  const argmax = await plan(paserPlanner(allF1), pool1); // the scripted actor's argmax is f1 on every tile
  assert.equal(argmax.outcome.stop, "whole-image");
  assert.deepEqual(pool1.jobs.filter((j) => j.model === "digits-f1").map((j) => j.dims), [[1, 1, 256, 256]]);
  assert.equal(argmax.exec.flops - glance, f1.counter.count([1, 1, 256, 256]).flops);
  // A mixed plan keeps its tiles.
  const mixed = await plan(paserPlanner(flatZoo), new ScriptedPool((m, x) => m !== "digits-f0" || x >= 128), 2e9);
  assert.notEqual(mixed.outcome.stop, "whole-image");
  assert.equal(mixed.outcome.tiles.length, 16);
});

Deno.test("glimpse: unsure tiles go to f1 first, in one batched step; only those f1 leaves unsure go on to f2", async () => {
  // f0 is unsure on the left half (tiles in columns 0-1); f1 is sure except on the top-left tile; f2 is always sure.
  const sure = (model: string, x: number, y: number) =>
    model === "digits-f0" ? x >= 128 : model === "digits-f1" ? !(x < 64 && y < 64) : true;
  const pool = new ScriptedPool(sure);
  const zoo = zooOf(registry, task, 0, { halo: {}, default_route: null })!;
  const { outcome } = await plan(glimpsePlanner(zoo), pool, undefined, 0.99);
  const g = outcome.glimpses!;
  assert.deepEqual(g.map((s) => s.model), ["digits-f0", "digits-f1", "digits-f2"]);
  assert.deepEqual(g[1].tile, { x: 0, y: 0, w: 128, h: 256 });
  assert.deepEqual(g[2].tile, { x: 0, y: 0, w: 64, h: 64 });
  assert.equal(outcome.stop, "confidence");
  // One execution per step: f1 on the left half as one merged window, f2 on one tile.
  assert.deepEqual(pool.jobs.filter((j) => j.model !== "digits-f0").map((j) => [j.model, j.dims]), [
    ["digits-f1", [1, 1, 256, 128]],
    ["digits-f2", [1, 1, 64, 64]],
  ]);
  assert.equal(outcome.tiles.filter((t) => t.model === "digits-f1").length, 7);
  // Early exit (f1 sure everywhere here): a lower target needs only as many of the unsure tiles as close the image's
  // confidence gap.
  // (0.9 − 0.756)·16 tiles ≈ 2.3 tiles of missing confidence, each unsure tile lacks ≈ 0.49: five of them.
  const early = await plan(
    glimpsePlanner(zoo),
    new ScriptedPool((m, x) => m !== "digits-f0" || x >= 128),
    undefined,
    0.9,
  );
  assert.deepEqual(early.outcome.glimpses!.map((s) => s.model), ["digits-f0", "digits-f1"]);
  assert.equal(early.outcome.tiles.filter((t) => t.model === "digits-f1").length, 5);
  assert.equal(early.outcome.stop, "confidence");
  // A budget that fits f1 but not f2 stops after the f1 step.
  const f0f1 = g[1].gflops * 1e9;
  const capped = await plan(glimpsePlanner(zoo), new ScriptedPool(sure), Math.ceil(f0f1) + 1000, 0.99);
  assert.equal(capped.outcome.stop, "budget");
  assert.equal(capped.outcome.glimpses!.length, 2);
});

Deno.test("oracle replay helpers: mIoU of summed counts, linear gain, Spearman", () => {
  // Counts: I_0, I_1, U_0, U_1.
  assert.equal(miouOf(new Float64Array([5, 5, 10, 10])), 0.5);
  const base = new Float64Array([50, 50, 100, 100]);
  const from = new Float64Array([5, 5, 10, 10]);
  assert.ok(linearGain(from, new Float64Array([6, 6, 10, 10]), base) > 0, "more intersection at equal union helps");
  assert.ok(linearGain(from, new Float64Array([5, 5, 11, 11]), base) < 0, "more union at equal intersection hurts");
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 45]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  assert.ok(Math.abs(spearman([1, 1, 2, 2], [1, 2, 1, 2])) < 1e-12);
});

Deno.test("a ranker from the serving choice replaces the critic's gains in the budget ranking", async () => {
  // f0 is unsure on the left half; the ranker gives f1 a gain only where f0 is unsure and f2 none, although the
  // scripted critic prefers f2 everywhere.
  const ranker = { features: [], weights: [[-0.01, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, -1]] };
  const zoo = zooOf(registry, task, 0, { halo: {}, default_route: null, ranker })!;
  const { outcome } = await plan(paserPlanner(zoo), new ScriptedPool((m, x) => m !== "digits-f0" || x >= 128), 4e9);
  assert.deepEqual(
    outcome.tiles.map((t) => t.model),
    outcome.tiles.map((t) => (t.x < 128 ? "digits-f1" : "digits-f0")),
  );
  const features = [[1, 0.5, 0.9, 0.2, 0.1]];
  assert.deepEqual(rankGains(ranker, features, [[0], [7], [3]]), [[0], [0.49], [-3]]);
});
