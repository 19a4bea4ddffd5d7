// A page graph's price (lib/onnx/page_cost.ts): a window counted on the one-slot graph plus its other slots' price per
// pixel is, FLOP for FLOP, the one-window graph with all of the model's slots counted whole, on the real text detector.

import assert from "node:assert/strict";
import { ModelRegistry } from "../../lib/models.ts";
import { CostCounter } from "../../lib/onnx/mod.ts";
import { pageGraph, pageShapes, tailValues } from "../../lib/onnx/page.ts";
import { PageCost } from "../../lib/onnx/page_cost.ts";

const registry = await ModelRegistry.load();
const g = registry.model("text-ppocrv4-det").levels!.graphs;

Deno.test("PageCost: windows of many shapes and tail regions cost what the all-slot graph counts", () => {
  const cost = new PageCost(g);
  assert.ok(cost.bySlot, "the text detector's slots cost the same per pixel");
  const all = CostCounter.fromBytes(pageGraph(g, 1)), none = CostCounter.fromBytes(pageGraph(g, 0));
  // A fixed-seed generator: the same shapes every run.
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let k = 0; k < 40; k++) {
    const h = 32 * (2 + rand(40)), w = 32 * (2 + rand(60)), dims = [1, 3, h, w];
    // 0 to all of the slots, each region a multiple of the tail's 8 px cells inside the window; k = 0: the default.
    const tails = Array.from({ length: rand(g.tail.slots + 1) }, () => [8 * (1 + rand(h / 8)), 8 * (1 + rand(w / 8))]);
    const counted = (t: number[][]) =>
      all.count(pageShapes(g, [dims], 1, 3), tailValues(g, [t])).flops -
      none.count(pageShapes(g, [], 1, 3)).flops;
    if (k === 0) assert.equal(cost.window(dims).flops, counted([dims.slice(2)]));
    else assert.equal(cost.window(dims, tails).flops, counted(tails), `${h}×${w}, ${tails.length} regions`);
  }
  assert.throws(() => cost.window([1, 3, 64, 64], Array(g.tail.slots + 1).fill([8, 8])), /over the model's/);
});
