// Adaptive execution on the trained zoos (lib/plan/) with the real models in real onnxruntime-web workers:
// exact cost in every mode, budgets never exceeded, non-cascading routing, glimpse steps, halo tiles.

import assert from "node:assert/strict";
import { ModelRegistry } from "../lib/models.ts";

import { Segmenter, type SegmentRequest, type SegmentResult } from "../lib/segment.ts";
import { cascadePlanner, DEFAULT_PLANNER_OPTIONS, paserPlanner, type Planner, zooOf, ZooRun } from "../lib/plan/mod.ts";
import { Executor } from "../lib/exec/mod.ts";
import { decodeImage } from "../lib/image/mod.ts";
import { fromGflops, toGflops } from "../lib/units.ts";
import { RecordingPool, startPool } from "./_pool.ts";

// Scene 0 of the held-out test split of each task (training/scenes.py), image and label.
const fixture = (name: string) => Deno.readFile(new URL(`./fixtures/${name}`, import.meta.url));
const scenes = {
  digits: { bytes: await fixture("digits-test-0.png"), label: await fixture("digits-test-0-label.png") },
  micrograph: { bytes: await fixture("micrograph-test-0.png"), label: await fixture("micrograph-test-0-label.png") },
};

const registry = await ModelRegistry.load();
const pool = await startPool(registry.workerModels().filter((m) => !m.id.startsWith("text")));
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
  assert.equal(r.cost.breakdown.reduce((s, b) => s + b.flops, 0), flops);
}

/** A request as the tests write it: GFLOPs budgets, and the evaluation's baselines by name. */
type Req = Omit<SegmentRequest, "task" | "bytes" | "mode"> & {
  mode: SegmentRequest["mode"] | "cascade";
  budgetGflops?: number;
  selector?: "complexity";
  cascadeConfidence?: number;
};

function segment(task: keyof typeof scenes, req: Req) {
  const { budgetGflops, selector, cascadeConfidence, ...rest } = req;
  const zoo = segmenter.zoo(registry.task(task))!;
  let planner: Planner | undefined;
  if (req.mode === "cascade") planner = cascadePlanner(zoo, cascadeConfidence!);
  if (selector) planner = paserPlanner(zoo, { selector });
  return segmenter.segment({
    ...rest,
    task,
    mode: req.mode === "cascade" ? "adaptive" : req.mode,
    budgetFlops: budgetGflops === undefined ? undefined : fromGflops(budgetGflops),
    bytes: scenes[task].bytes,
  }, planner);
}

/** A ZooRun over a recording pool with the served zoo (its halos): prices windows exactly as a request would. */
async function pricer(task: keyof typeof scenes) {
  const img = await decodeImage(scenes[task].bytes);
  const exec = new Executor(new RecordingPool(), img, { maxExecPixels: 1 << 22, timeoutMs: 1 });
  return new ZooRun(segmenter.zoo(registry.task(task))!, registry.task(task), exec);
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
      const reqs: Req[] = [
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
        if (req.budgetGflops !== undefined) {
          assert.ok(r.cost.flops <= fromGflops(req.budgetGflops), JSON.stringify(req));
        }
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
      const free_ = toGflops(free.cost.flops);
      const budgets = [toGflops(f0Flops), toGflops(f0Flops) * 1.5, free_ / 2, free_, 100];
      let last = -1;
      for (const b of budgets) {
        const r = await segment(task, { mode: "adaptive", budgetGflops: b });
        assertExactCost(r);
        assert.ok(r.cost.flops <= fromGflops(b), `budget ${b}: spent ${r.cost.flops}`);
        assert.ok(r.cost.flops >= last, "a larger budget never buys less");
        last = r.cost.flops;
        // Non-cascading: the local executions cost exactly what running each tile once, through the one model the
        // plan names for it, costs.
        // A plan that would cost at least one local model on the whole image runs that instead (never dearer).
        const run = await pricer(task);
        const ran = r.plan.executions.filter((e) => zoo.locals.some((m) => m.spec.id === e.model));
        if (r.plan.stop === "whole-image") {
          assert.equal(r.plan.tiles.length, 1);
          const m = registry.model(r.plan.tiles[0].model!);
          assert.deepEqual(ran.map((e) => e.flops), [run.exec.price([run.wholeCall(m)]).flops]);
        } else {
          const localFlops = zoo.locals.reduce((f, m) => {
            const tiles = r.plan.tiles.flatMap((t, i) => (t.model === m.spec.id ? [i] : []));
            return f + run.localFlops(m, tiles);
          }, 0);
          assert.equal(ran.reduce((f, e) => f + e.flops, 0), localFlops);
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
    name: `${task}: glimpse lists each step with cumulative GFLOPs and stops on confidence, budget or its ceiling`,
    async fn() {
      // An unreachable target refines until the next step would take the focus steps past f2 once on the whole image.
      const all = await segment(task, { mode: "glimpse", confidence: 1 });
      const g = all.plan.glimpses!;
      assert.equal(g[0].model, f0);
      assert.equal(g[0].tile, null);
      for (let i = 1; i < g.length; i++) assert.ok(g[i].gflops > g[i - 1].gflops);
      assert.ok(Math.abs(g[g.length - 1].gflops - toGflops(all.cost.flops)) < 1e-12);
      assert.equal(all.plan.stop, "never-dearer");
      const [glance, ...focus] = all.plan.executions;
      assert.equal(glance.model, f0);
      const run = await pricer(task);
      const f2Whole = run.exec.price([run.wholeCall(registry.model(f2))]).flops;
      const focusFlops = focus.reduce((s, e) => s + e.flops, 0);
      assert.ok(focusFlops <= f2Whole, `${focusFlops} > ${f2Whole}`);
      // Each step moves unsure tiles one model up (f1 before f2): the ceiling stopped it after some reached f2.
      assert.ok(g.some((s) => s.model === f2), g.map((s) => s.model).join());
      assert.ok(all.plan.tiles.some((t) => t.model !== f2));
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
      assert.ok(capped.cost.flops <= fromGflops(budget));
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
      const strongest = zoo.locals[zoo.locals.length - 1];
      const differ = async (halo: number, merge: boolean, tiles?: number[]) => {
        const exec = new Executor(pool, img, { maxExecPixels: 1 << 22, timeoutMs: 60_000 });
        const run = new ZooRun({ ...zoo, halo }, registry.task(task), exec, merge);
        await run.glance();
        const glance = exec.flops;
        const chosen = tiles ?? run.grid.map((_t, i) => i);
        const priced = run.localFlops(strongest, chosen);
        await run.refine([{ model: strongest, tiles: chosen }]);
        assert.equal(exec.flops - glance, priced, "priced = run");
        const m = run.mask();
        let d = 0, n = 0;
        for (const ti of chosen) {
          const t = run.grid[ti];
          for (let y = t.y; y < t.y + t.h; y++) {
            for (let x = t.x; x < t.x + t.w; x++, n++) if (m[y * img.width + x] !== whole[y * img.width + x]) d++;
          }
        }
        return { share: d / n, flops: exec.flops - glance };
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
          `${(withHalo.share * 100).toFixed(3)}% at ${toGflops(withHalo.flops).toFixed(3)} GFLOPs, ` +
          `halo ${served} (served): ${(servedHalo.share * 100).toFixed(3)}% at ` +
          `${toGflops(servedHalo.flops).toFixed(3)} GFLOPs, no halo: ${(noHalo.share * 100).toFixed(3)}%; ` +
          `6 tiles merged: ${(merged.share * 100).toFixed(3)}% at ${toGflops(merged.flops).toFixed(3)} GFLOPs ` +
          `vs ${toGflops(separate.flops).toFixed(3)} separate`,
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

Deno.test({
  ...opts,
  name: "a zoo request refuses a budget below the glance with min_gflops, and nothing runs",
  async fn() {
    const img = await decodeImage(scenes.digits.bytes);
    const recording = new RecordingPool(2);
    const exec = new Executor(recording, img, { budgetFlops: 1000, maxExecPixels: 1 << 22, timeoutMs: 1 });
    const zoo = zooOf(registry, registry.task("digits"))!;
    const ctx = { registry, task: registry.task("digits"), image: img, exec, options: DEFAULT_PLANNER_OPTIONS };
    await assert.rejects(paserPlanner(zoo)(ctx), /below the cheapest plan/);
    assert.equal(exec.flops, 0);
    assert.equal(recording.jobs.length, 0);
  },
});

Deno.test({ ...opts, name: "zoo tests: close the pool", fn: () => pool.close() });
