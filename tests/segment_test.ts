// The Segmenter against the real model: haloed tiles stitch without seams,
// and costs are the counter's FLOPs for the executions that ran.

import assert from "node:assert/strict";
import { ModelRegistry } from "../lib/models.ts";
import { Segmenter } from "../lib/segment.ts";
import { DEFAULT_PLANNER_OPTIONS, scalePlanner } from "../lib/plan/mod.ts";
import { startPool } from "./_pool.ts";
import { textImage } from "./_util.ts";

const registry = await ModelRegistry.load();
const text = registry.model("text-ppocrv4-det");

function disagreement(a: Uint8Array, b: Uint8Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d++;
  return d / a.length;
}

Deno.test({
  name: "haloed tiles reproduce the whole-image mask; without a halo, seams appear",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const pool = await startPool([{ id: text.spec.id, bytes: text.bytes, input: text.spec.input }]);
    try {
      // Text that crosses the tile borders at x=320 and y=320.
      const { image } = await textImage(640, 640, [
        { text: "borders must not cut words", x: 60, y: 300, size: 34 },
        { text: "SEAMLESS TILES", x: 200, y: 150, size: 44 },
        { text: "small print across the middle line", x: 150, y: 330, size: 16 },
        { text: "and one more line down here", x: 250, y: 500, size: 24 },
      ]);
      const bytes = new Uint8Array(await image.encode());
      const limits = (halo: number) => ({
        maxPixels: 16e6,
        timeoutMs: 60_000,
        planner: { ...DEFAULT_PLANNER_OPTIONS, fullDetail: 0, wholeImageShortcut: false, maxTile: 320 },
        halo,
      });
      const whole = await new Segmenter(registry, pool).segment({ task: "text", mode: "fixed", bytes });
      const tiled = await new Segmenter(registry, pool, limits(32)).segment(
        { task: "text", mode: "adaptive", bytes },
        scalePlanner(text),
      );
      assert.equal(tiled.plan.tiles.length, 4);
      assert.ok(tiled.plan.tiles.every((t) => t.scale === 1 && t.halo === 32));
      assert.equal(tiled.plan.executions.length, 1, "four same-shape tiles run as one batched call");
      assert.deepEqual(tiled.plan.executions[0].dims, [4, 3, 384, 384]);
      assert.equal(tiled.cost.flops, text.counter.count([4, 3, 384, 384]).flops);

      // Same tiling with the halo removed (a model spec without one).
      const noHaloRegistry = Object.create(registry) as ModelRegistry;
      const bare = { ...text, spec: { ...text.spec, tile: { halo: 0 } } };
      Object.defineProperty(noHaloRegistry, "models", { value: new Map([[text.spec.id, bare]]) });
      const seams = await new Segmenter(noHaloRegistry, pool, limits(0)).segment(
        { task: "text", mode: "adaptive", bytes },
        scalePlanner(bare),
      );
      assert.ok(seams.plan.tiles.every((t) => t.halo === 0));

      const withHalo = disagreement(whole.mask, tiled.mask);
      const withoutHalo = disagreement(whole.mask, seams.mask);
      console.log(
        `pixels differing from the whole-image mask: halo 32 px ${(100 * withHalo).toFixed(3)}%, ` +
          `no halo ${(100 * withoutHalo).toFixed(3)}%`,
      );
      // The residue with a halo comes from the model's image-wide context
      // (global pooling in its squeeze-excitation blocks), which no halo fixes.
      assert.ok(withHalo < 0.006, `halo tiles differ on ${withHalo}`);
      assert.ok(withoutHalo > 3 * withHalo, "without a halo the difference should be clearly larger");
    } finally {
      pool.close();
    }
  },
});
