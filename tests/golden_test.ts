// Before/after guard for refactors: a fixed set of requests (every mode, with and without budgets, on every task)
// must give the same mask, cost, plan and executions as recorded in tests/fixtures/golden/golden.json.
// Regenerate (only when a behaviour change is intended): GOLDEN_UPDATE=1 deno test -A tests/golden_test.ts

import assert from "node:assert/strict";
import { ModelRegistry } from "../lib/models.ts";
import { Segmenter, type SegmentRequest } from "../lib/segment.ts";
import { cascadePlanner, DEFAULT_PLANNER_OPTIONS, paserPlanner, type Planner } from "../lib/plan/mod.ts";
import { fromGflops, toGflops } from "../lib/units.ts";
import { startPool } from "./_pool.ts";
import { samplePage, textImage } from "./_util.ts";

const GOLDEN = new URL("./fixtures/golden/golden.json", import.meta.url);

async function hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A request as the golden file names it (GFLOPs budgets, the evaluation's baselines by name). */
interface Case {
  task: string;
  image: string;
  mode: SegmentRequest["mode"] | "cascade";
  model?: string;
  budgetGflops?: number;
  confidence?: number;
  selector?: "complexity";
  cascadeConfidence?: number;
}

const CASES: Case[] = [];
for (const task of ["digits", "micrograph"]) {
  const image = `${task}-test-0.png`;
  CASES.push(
    { task, image, mode: "adaptive" },
    { task, image, mode: "adaptive", budgetGflops: 0.5 },
    { task, image, mode: "adaptive", budgetGflops: 1.5 },
    { task, image, mode: "adaptive", budgetGflops: 4 },
    { task, image, mode: "adaptive", selector: "complexity" },
    { task, image, mode: "adaptive", selector: "complexity", budgetGflops: 1.5 },
    { task, image, mode: "glimpse" },
    { task, image, mode: "glimpse", confidence: 0.995, budgetGflops: 2 },
    { task, image, mode: "cascade", cascadeConfidence: 0.999 },
    { task, image, mode: "fixed", model: `${task}-f0` },
    { task, image, mode: "fixed", model: `${task}-f2` },
    { task, image, mode: "fixed", model: `${task}-f2`, budgetGflops: 10 },
  );
}
CASES.push(
  { task: "text", image: "page-640", mode: "adaptive" },
  { task: "text", image: "page-640", mode: "adaptive", budgetGflops: 3 },
  { task: "text", image: "page-640", mode: "fixed" },
  { task: "text", image: "page-1000x700", mode: "adaptive" },
  { task: "text", image: "page-1000x700", mode: "adaptive", budgetGflops: 6 },
  { task: "text", image: "page-1000x700", mode: "adaptive", budgetGflops: 1.2 },
);

async function imageBytes(name: string): Promise<Uint8Array> {
  if (name === "page-640") return new Uint8Array(await (await samplePage()).image.encode());
  if (name === "page-1000x700") {
    const { image } = await textImage(1000, 700, [
      { text: "Adaptive execution on a wide page", x: 30, y: 40, size: 40 },
      { text: "small print in the lower right corner", x: 560, y: 640, size: 16 },
    ]);
    return new Uint8Array(await image.encode());
  }
  return await Deno.readFile(new URL(`./fixtures/${name}`, import.meta.url));
}

/** What must not change: everything a response carries except timings. */
async function snapshot(seg: Segmenter, c: Case) {
  const { image, budgetGflops, selector, cascadeConfidence, ...rest } = c;
  const task = seg.registry.task(c.task);
  let planner: Planner | undefined;
  if (c.mode === "cascade") planner = cascadePlanner(seg.zoo(task)!, cascadeConfidence!);
  if (selector) planner = paserPlanner(seg.zoo(task)!, { selector });
  const req: SegmentRequest = {
    ...rest,
    mode: c.mode === "cascade" ? "adaptive" : c.mode,
    budgetFlops: budgetGflops === undefined ? undefined : fromGflops(budgetGflops),
    bytes: await imageBytes(image),
  };
  try {
    const r = await seg.segment(req, planner);
    return {
      mask: await hex(r.mask),
      flops: r.cost.flops,
      macs: r.cost.macs,
      breakdown: r.cost.breakdown.map((b) => ({
        model: b.model,
        runs: b.runs,
        gflops: toGflops(b.flops),
        gmacs: toGflops(b.macs),
      })),
      minFlops: r.plan.minFlops,
      tiles: r.plan.tiles,
      executions: r.plan.executions.map((e) => ({ model: e.model, dims: e.dims, flops: e.flops })),
      glimpses: r.plan.glimpses ?? [],
      stop: r.plan.stop ?? null,
    };
  } catch (err) {
    const e = err as Error & { status?: number; slug?: string; extra?: unknown };
    return { error: { status: e.status ?? null, slug: e.slug ?? null, message: e.message, extra: e.extra ?? null } };
  }
}

Deno.test({
  name: "golden: a fixed set of requests gives the recorded masks, costs and plans",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const registry = await ModelRegistry.load();
    const pool = await startPool(registry.workerModels());
    try {
      const seg = new Segmenter(registry, pool, {
        maxPixels: 16e6,
        timeoutMs: 120_000,
        planner: DEFAULT_PLANNER_OPTIONS,
      });
      const got: Record<string, unknown> = {};
      for (const c of CASES) got[JSON.stringify(c)] = JSON.parse(JSON.stringify(await snapshot(seg, c)));
      if (Deno.env.get("GOLDEN_UPDATE") === "1") {
        await Deno.writeTextFile(GOLDEN, JSON.stringify(got, null, 2) + "\n");
        return;
      }
      const want = JSON.parse(await Deno.readTextFile(GOLDEN));
      for (const key of Object.keys(want)) assert.deepEqual(got[key], want[key], key);
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
    } finally {
      pool.close();
    }
  },
});
