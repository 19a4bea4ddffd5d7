// Same answer on every backend: the same requests through the Segmenter on onnxruntime-web WASM-SIMD and on
// onnxruntime-node give identical costs and executions (FLOPs never depend on the runtime) and masks that agree
// (IoU ≥ 0.999 per class; float rounding differs between the runtimes' kernels, so a pixel whose probability sits on
// the threshold may flip).

import assert from "node:assert/strict";
import { ModelRegistry } from "../lib/models.ts";
import { DEFAULT_PLANNER_OPTIONS } from "../lib/plan/mod.ts";
import { Segmenter, type SegmentRequest } from "../lib/segment.ts";
import { fromGflops } from "../lib/units.ts";
import { WorkerPool } from "../lib/exec/pool.ts";
import type { Backend } from "../workers/protocol.ts";
import { samplePage, textImage } from "./_util.ts";

const registry = await ModelRegistry.load();
const fixture = (name: string) => Deno.readFile(new URL(`./fixtures/${name}`, import.meta.url));
const page = new Uint8Array(await (await samplePage()).image.encode());
const wide = new Uint8Array(
  await (await textImage(1000, 700, [
    { text: "Adaptive execution on a wide page", x: 30, y: 40, size: 40 },
    { text: "small print in the lower right corner", x: 560, y: 640, size: 16 },
  ])).image.encode(),
);

const CASES: (Omit<SegmentRequest, "bytes"> & { bytes: Uint8Array; name: string })[] = [
  { name: "text fixed 640²", task: "text", mode: "fixed", bytes: page },
  { name: "text adaptive 1000×700", task: "text", mode: "adaptive", bytes: wide },
  { name: "digits adaptive", task: "digits", mode: "adaptive", bytes: await fixture("digits-test-0.png") },
  {
    name: "micrograph adaptive, budget 1.5",
    task: "micrograph",
    mode: "adaptive",
    budgetFlops: fromGflops(1.5),
    bytes: await fixture("micrograph-test-0.png"),
  },
  { name: "micrograph glimpse", task: "micrograph", mode: "glimpse", bytes: await fixture("micrograph-test-0.png") },
];

/** Lowest per-class IoU of two masks (classes present in neither are skipped). */
function minIoU(a: Uint8Array, b: Uint8Array): number {
  const classes = new Set([...new Set(a), ...new Set(b)]);
  let worst = 1;
  for (const k of classes) {
    let inter = 0, union = 0;
    for (let i = 0; i < a.length; i++) {
      const x = a[i] === k, y = b[i] === k;
      if (x && y) inter++;
      if (x || y) union++;
    }
    worst = Math.min(worst, inter / union);
  }
  return worst;
}

async function withSegmenter<T>(backend: Backend, fn: (seg: Segmenter) => Promise<T>): Promise<T> {
  const pool = new WorkerPool({ size: 1, queueLimit: 64, backend, threads: 2, models: registry.workerModels() });
  await pool.start();
  assert.equal(pool.backend, backend);
  try {
    return await fn(
      new Segmenter(registry, pool, { maxPixels: 16e6, timeoutMs: 120_000, planner: DEFAULT_PLANNER_OPTIONS }),
    );
  } finally {
    pool.close();
  }
}

Deno.test({
  name: "backends: native and WASM-SIMD give the same cost, the same executions and masks with IoU ≥ 0.999",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const run = (backend: Backend) =>
      withSegmenter(backend, async (seg) => {
        const out = [];
        for (const { name: _, ...req } of CASES) out.push(await seg.segment(req));
        return out;
      });
    const wasm = await run("wasm-simd");
    const native = await run("native");
    for (const [i, c] of CASES.entries()) {
      await t.step(c.name, () => {
        const a = wasm[i], b = native[i];
        assert.equal(a.backend, "wasm-simd");
        assert.equal(b.backend, "native");
        assert.equal(b.cost.flops, a.cost.flops);
        assert.equal(b.cost.macs, a.cost.macs);
        assert.deepEqual(b.plan.executions, a.plan.executions);
        assert.deepEqual(b.plan.tiles, a.plan.tiles);
        const iou = minIoU(a.mask, b.mask);
        assert.ok(iou >= 0.999, `${c.name}: lowest per-class IoU ${iou}`);
      });
    }
  },
});
