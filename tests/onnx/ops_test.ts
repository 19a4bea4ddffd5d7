// Hand-computed shapes and costs of small graphs, one op family at a time.
// Each expected number is worked out in the comment above its assertion.

import assert from "node:assert/strict";
import { CostCounter, OnnxShapeError, SOFTMAX_FLOPS, UnsupportedOpError } from "../../lib/onnx/mod.ts";
import { type AttrValue, GraphBuilder, T } from "./_builder.ts";

function counterOf(b: GraphBuilder): CostCounter {
  return CostCounter.fromBytes(b.build());
}

/** One-node graph: input x, given initializers, node, output y. */
function single(
  op: string,
  xDims: number[],
  extra: (b: GraphBuilder) => string[],
  attrs: Record<string, AttrValue> = {},
  opset = 13,
) {
  const b = new GraphBuilder({ opset }).input("x", xDims);
  const inputs = ["x", ...extra(b)];
  b.node(op, inputs, ["y"], attrs).output("y");
  return counterOf(b).report({});
}

Deno.test("Conv with groups, dilation, stride and asymmetric pads", () => {
  // ek = (3-1)*2+1 = 5; H: floor((10+1+1-5)/2)+1 = 4; W: floor((10+2+2-5)/2)+1 = 5
  // out [1,6,4,5] = 120 elements; MACs = 120 * (4/2) * 9 = 2160; bias adds 120 FLOPs.
  const r = single("Conv", [1, 4, 10, 10], (b) => {
    b.initializer("w", { dims: [6, 2, 3, 3] }).initializer("b", { dims: [6] });
    return ["w", "b"];
  }, { group: 2, dilations: [2, 2], strides: [2, 2], pads: [1, 2, 1, 2] });
  assert.deepEqual(r.outputShapes.y, [1, 6, 4, 5]);
  assert.equal(r.macs, 2160);
  assert.equal(r.flops, 2 * 2160 + 120);
  assert.equal(r.gmacs, 2160 / 1e9);
});

Deno.test("Conv auto_pad SAME_UPPER, SAME_LOWER and VALID", () => {
  const conv = (autoPad: string, extra: Record<string, AttrValue> = {}) =>
    single("Conv", [1, 3, 7, 7], (b) => {
      b.initializer("w", { dims: [8, 3, 3, 3] });
      return ["w"];
    }, { auto_pad: autoPad, ...extra });
  // SAME: ceil(7/2) = 4 → 8*4*4 = 128 outputs * 27 MACs.
  for (const mode of ["SAME_UPPER", "SAME_LOWER"]) {
    const r = conv(mode, { strides: [2, 2] });
    assert.deepEqual(r.outputShapes.y, [1, 8, 4, 4], mode);
    assert.equal(r.macs, 128 * 27, mode);
  }
  // VALID ignores pads: floor((7-3)/2)+1 = 3.
  const valid = conv("VALID", { strides: [2, 2], pads: [5, 5, 5, 5] });
  assert.deepEqual(valid.outputShapes.y, [1, 8, 3, 3]);
  assert.equal(valid.macs, 72 * 27);
  // SAME keeps the size at stride 1 even with dilation.
  assert.deepEqual(conv("SAME_UPPER", { dilations: [2, 2] }).outputShapes.y, [1, 8, 7, 7]);
});

Deno.test("depthwise Conv costs Cin/group = 1 MAC per tap", () => {
  // out [2,8,16,16] = 4096 elements, 9 taps, one input channel per group.
  const depthwise = single("Conv", [2, 8, 16, 16], (b) => {
    b.initializer("w", { dims: [8, 1, 3, 3] });
    return ["w"];
  }, { group: 8, pads: [1, 1, 1, 1] });
  assert.deepEqual(depthwise.outputShapes.y, [2, 8, 16, 16]);
  assert.equal(depthwise.macs, 4096 * 9);
  assert.equal(depthwise.flops, 2 * 4096 * 9);
  const dense = single("Conv", [2, 8, 16, 16], (b) => {
    b.initializer("w", { dims: [8, 8, 3, 3] });
    return ["w"];
  }, { pads: [1, 1, 1, 1] });
  assert.equal(dense.macs, 8 * depthwise.macs);
});

Deno.test("Conv rejects a weight that does not fit the input channels", () => {
  assert.throws(
    () =>
      single("Conv", [1, 4, 8, 8], (b) => {
        b.initializer("w", { dims: [8, 3, 3, 3] });
        return ["w"];
      }),
    (e) => e instanceof OnnxShapeError && /4 channels/.test(e.message) && /Conv node/.test(e.message),
  );
});

Deno.test("ConvTranspose: pads, output_padding, output_shape, groups, SAME", () => {
  // out = 2*(5-1) + 1 + 3 - 2 = 10; MACs per input element: in 1*4*5*5 = 100 · Cout 3 · 9 taps.
  const ct = (attrs: Record<string, AttrValue>, w = [4, 3, 3, 3], bias = true) =>
    single("ConvTranspose", [1, 4, 5, 5], (b) => {
      b.initializer("w", { dims: w });
      if (!bias) return ["w"];
      b.initializer("b", { dims: [w[1] * ((attrs.group as number) ?? 1)] });
      return ["w", "b"];
    }, attrs);
  const r = ct({ strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] });
  assert.deepEqual(r.outputShapes.y, [1, 3, 10, 10]);
  assert.equal(r.macs, 100 * 3 * 9);
  assert.equal(r.flops, 2 * 2700 + 300);
  // output_shape wins over pads, full or spatial-only.
  assert.deepEqual(ct({ strides: [2, 2], output_shape: [1, 3, 10, 9] }).outputShapes.y, [1, 3, 10, 9]);
  assert.deepEqual(ct({ strides: [2, 2], output_shape: [11, 11] }).outputShapes.y, [1, 3, 11, 11]);
  // SAME: in * stride.
  assert.deepEqual(ct({ strides: [2, 2], auto_pad: "SAME_UPPER" }).outputShapes.y, [1, 3, 10, 10]);
  // group 2: weight [Cin=4, Cout/g=2, 2, 2] → Cout 4, out 2*4+2 = 10; MACs 100 * 2 * 4.
  const g = ct({ strides: [2, 2], group: 2 }, [4, 2, 2, 2], false);
  assert.deepEqual(g.outputShapes.y, [1, 4, 10, 10]);
  assert.equal(g.macs, 800);
  assert.equal(g.flops, 1600);
});

Deno.test("Gemm with transposes and bias", () => {
  // [4,8] x [8,16] (B stored [16,8], transB) → [4,16]; MACs 4*16*8 = 512; bias +64.
  const r = single("Gemm", [4, 8], (b) => {
    b.initializer("w", { dims: [16, 8] }).initializer("c", { dims: [16] });
    return ["w", "c"];
  }, { transB: 1 });
  assert.deepEqual(r.outputShapes.y, [4, 16]);
  assert.equal(r.macs, 512);
  assert.equal(r.flops, 1088);
  const t = single("Gemm", [8, 4], (b) => {
    b.initializer("w", { dims: [8, 16] });
    return ["w"];
  }, { transA: 1 });
  assert.deepEqual(t.outputShapes.y, [4, 16]);
  assert.equal(t.flops, 1024);
});

Deno.test("MatMul broadcasts batch dims and handles vectors", () => {
  // [2,1,5,3] @ [4,3,7] → [2,4,5,7]; MACs = 2*4 * 5*7*3 = 840.
  const r = single("MatMul", [2, 1, 5, 3], (b) => {
    b.initializer("w", { dims: [4, 3, 7] });
    return ["w"];
  });
  assert.deepEqual(r.outputShapes.y, [2, 4, 5, 7]);
  assert.equal(r.macs, 840);
  assert.equal(r.flops, 1680);
  // [3] @ [3,4] → [4], 12 MACs.
  const v = single("MatMul", [3], (b) => {
    b.initializer("w", { dims: [3, 4] });
    return ["w"];
  });
  assert.deepEqual(v.outputShapes.y, [4]);
  assert.equal(v.macs, 12);
  assert.throws(() => single("MatMul", [2, 3], (b) => (b.initializer("w", { dims: [4, 5] }), ["w"])), OnnxShapeError);
});

Deno.test("pooling with ceil_mode, pads and auto_pad; global pooling", () => {
  // floor((6-3)/2)+1 = 2; ceil mode: ceil(3/2)+1 = 3 → [1,2,3,3] = 18 outputs * 9 taps.
  const floor = single("MaxPool", [1, 2, 6, 6], () => [], { kernel_shape: [3, 3], strides: [2, 2] });
  assert.deepEqual(floor.outputShapes.y, [1, 2, 2, 2]);
  assert.equal(floor.flops, 8 * 9);
  const ceil = single("MaxPool", [1, 2, 6, 6], () => [], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 });
  assert.deepEqual(ceil.outputShapes.y, [1, 2, 3, 3]);
  assert.equal(ceil.flops, 18 * 9);
  assert.equal(ceil.macs, 0);
  // k2 s2 pad 1 on 5: ceil((5+2-2)/2)+1 = 4, but the 4th window would start in the end padding
  // (3*2 >= 5+1), so 3 — what torch.nn.MaxPool2d(2, 2, padding=1, ceil_mode=True) returns.
  const padded = single("MaxPool", [1, 1, 5, 5], () => [], {
    kernel_shape: [2, 2],
    strides: [2, 2],
    pads: [1, 1, 1, 1],
    ceil_mode: 1,
  });
  assert.deepEqual(padded.outputShapes.y, [1, 1, 3, 3]);
  const same = single("AveragePool", [1, 1, 7, 7], () => [], {
    kernel_shape: [3, 3],
    strides: [2, 2],
    auto_pad: "SAME_UPPER",
  });
  assert.deepEqual(same.outputShapes.y, [1, 1, 4, 4]);
  assert.equal(same.flops, 16 * 9);
  // GlobalAveragePool reads every input element once: 2*8*7*7 = 784.
  const global = single("GlobalAveragePool", [2, 8, 7, 7], () => []);
  assert.deepEqual(global.outputShapes.y, [2, 8, 1, 1]);
  assert.equal(global.flops, 784);
});

Deno.test("Resize nearest by scales, linear/cubic by sizes; Upsample", () => {
  // opset 13, roi and sizes omitted by empty names: [1,3,4,6] * [1,1,2,2] → [1,3,8,12] = 288, 1 tap.
  const nearest = single("Resize", [1, 3, 4, 6], (b) => (b.floats("s", [1, 1, 2, 2]), ["", "s"]), {
    mode: "nearest",
  });
  assert.deepEqual(nearest.outputShapes.y, [1, 3, 8, 12]);
  assert.equal(nearest.flops, 288);
  // sizes [1,3,8,8]: 192 outputs, bilinear = 2^2 taps.
  const linear = single("Resize", [1, 3, 4, 4], (b) => (b.ints("sz", [1, 3, 8, 8]), ["", "", "sz"]), {
    mode: "linear",
  });
  assert.deepEqual(linear.outputShapes.y, [1, 3, 8, 8]);
  assert.equal(linear.flops, 192 * 4);
  const cubic = single("Resize", [1, 3, 4, 4], (b) => (b.ints("sz", [1, 3, 8, 8]), ["", "", "sz"]), {
    mode: "cubic",
  });
  assert.equal(cubic.flops, 192 * 16);
  // opset 11 as exported by paddle2onnx: an empty roi tensor and scales.
  const ppocr = single(
    "Resize",
    [1, 8, 5, 5],
    (b) => (b.floats("roi", []).floats("s", [1, 1, 2, 2]), ["roi", "s"]),
    { mode: "nearest", coordinate_transformation_mode: "asymmetric" },
    11,
  );
  assert.deepEqual(ppocr.outputShapes.y, [1, 8, 10, 10]);
  // Upsample (opset 9) takes scales as an input.
  const up = single("Upsample", [1, 3, 4, 4], (b) => (b.floats("s", [1, 1, 2, 2]), ["s"]), { mode: "linear" }, 9);
  assert.deepEqual(up.outputShapes.y, [1, 3, 8, 8]);
  assert.equal(up.flops, 192 * 4);
});

Deno.test("Reshape fed by a Shape→Gather→Unsqueeze→Concat subgraph follows the batch", () => {
  // x [N,2,3,4] → reshape to [N, -1] = [N, 24] → MatMul [24,10] → N*10*24 MACs.
  const b = new GraphBuilder({ opset: 13 })
    .input("x", ["N", 2, 3, 4])
    .ints("zero", [0], [])
    .ints("axes0", [0])
    .ints("minus1", [-1])
    .initializer("w", { dims: [24, 10] })
    .node("Shape", ["x"], ["shape"])
    .node("Gather", ["shape", "zero"], ["n"], { axis: 0 })
    .node("Unsqueeze", ["n", "axes0"], ["n1"])
    .node("Concat", ["n1", "minus1"], ["target"], { axis: 0 })
    .node("Reshape", ["x", "target"], ["flat"])
    .node("MatMul", ["flat", "w"], ["y"])
    .output("y");
  const c = counterOf(b);
  for (const n of [1, 5]) {
    const r = c.report({ x: [n, 2, 3, 4] });
    assert.deepEqual(r.outputShapes.y, [n, 10]);
    assert.equal(r.macs, n * 240);
    assert.equal(r.flops, 2 * n * 240);
  }
  assert.throws(() => c.count({}), (e) => e instanceof OnnxShapeError && /symbolic/.test(e.message));
});

Deno.test("Resize sizes computed from Shape→Slice→Cast→Mul→Cast→Concat (interpolate export)", () => {
  // x [1,3,5,7] → sizes = concat(shape[0:2], int(float(shape[2:4]) * 2)) = [1,3,10,14] → 420 outputs.
  const b = new GraphBuilder({ opset: 13 })
    .input("x", [1, 3, "H", "W"])
    .ints("s0", [0])
    .ints("s2", [2])
    .ints("s4", [4])
    .ints("big", [9223372036854775807])
    .floats("two", [2])
    .node("Shape", ["x"], ["shape"])
    .node("Slice", ["shape", "s0", "s2"], ["nc"])
    .node("Slice", ["shape", "s2", "big"], ["hw"])
    .node("Cast", ["hw"], ["hwf"], { to: T.FLOAT })
    .node("Mul", ["hwf", "two"], ["hw2f"])
    .node("Cast", ["hw2f"], ["hw2"], { to: T.INT64 })
    .node("Concat", ["nc", "hw2"], ["sizes"], { axis: 0 })
    .node("Resize", ["x", "", "", "sizes"], ["y"], { mode: "nearest" })
    .output("y");
  const r = counterOf(b).report({ x: [1, 3, 5, 7] });
  assert.deepEqual(r.outputShapes.y, [1, 3, 10, 14]);
  // Mul over the 2-element shape vector costs 2 FLOPs; Resize nearest 420.
  assert.equal(r.flops, 420 + 2);
});

Deno.test("opset-dependent operands: attributes before, inputs after", () => {
  // Squeeze/Unsqueeze axes: attribute at opset 11, input at 13.
  const sq11 = single("Unsqueeze", [3, 4], () => [], { axes: [0, -1] }, 11);
  assert.deepEqual(sq11.outputShapes.y, [1, 3, 4, 1]);
  const sq13 = single("Squeeze", [1, 3, 1, 4], (b) => (b.ints("a", [2]), ["a"]));
  assert.deepEqual(sq13.outputShapes.y, [1, 3, 4]);
  assert.deepEqual(single("Squeeze", [1, 3, 1, 4], () => []).outputShapes.y, [3, 4]);
  // Slice: attributes at opset 9, inputs with negative steps at 13.
  const sl9 = single("Slice", [10, 20], () => [], { starts: [2], ends: [-2], axes: [1] }, 9);
  assert.deepEqual(sl9.outputShapes.y, [10, 16]);
  const sl13 = single("Slice", [10, 20], (b) => {
    b.ints("st", [-1]).ints("en", [-9223372036854775807]).ints("ax", [0]).ints("sp", [-3]);
    return ["st", "en", "ax", "sp"];
  });
  assert.deepEqual(sl13.outputShapes.y, [4, 20]); // rows 9, 6, 3, 0
  // Pad: pads attribute at opset 2, input at 11.
  assert.deepEqual(single("Pad", [1, 3, 4, 4], () => [], { pads: [0, 0, 1, 2, 0, 0, 3, 4] }, 2).outputShapes.y, [
    1,
    3,
    8,
    10,
  ]);
  assert.deepEqual(
    single("Pad", [1, 3, 4, 4], (b) => (b.ints("p", [0, 0, 1, 2, 0, 0, 3, 4]), ["p"]), {}, 11).outputShapes.y,
    [1, 3, 8, 10],
  );
  // Clip bounds as inputs (opset 11+) cost one FLOP per element like the attribute form.
  const clip = single("Clip", [2, 5], (b) => (b.floats("lo", [0], []).floats("hi", [6], []), ["lo", "hi"]), {}, 11);
  assert.equal(clip.flops, 10);
  assert.equal(single("Clip", [2, 5], () => [], { min: { f: 0 }, max: { f: 6 } }, 6).flops, 10);
});

Deno.test("Split by attribute, by input and evenly", () => {
  const split = (opset: number, extra: (b: GraphBuilder) => string[], attrs: Record<string, AttrValue>) => {
    const b = new GraphBuilder({ opset }).input("x", [2, 10]);
    b.node("Split", ["x", ...extra(b)], ["a", "c"], attrs).output("a").output("c");
    return counterOf(b).report({}).outputShapes;
  };
  assert.deepEqual(split(11, () => [], { axis: 1, split: [3, 7] }), { a: [2, 3], c: [2, 7] });
  assert.deepEqual(split(13, (b) => (b.ints("s", [4, 6]), ["s"]), { axis: 1 }), { a: [2, 4], c: [2, 6] });
  assert.deepEqual(split(13, () => [], { axis: -1 }), { a: [2, 5], c: [2, 5] });
});

Deno.test("elementwise, normalisation and softmax costs", () => {
  // Broadcast [2,3,4] + [4] → 24 outputs, 1 FLOP each.
  const add = single("Add", [2, 3, 4], (b) => (b.initializer("b", { dims: [4] }), ["b"]));
  assert.deepEqual(add.outputShapes.y, [2, 3, 4]);
  assert.equal(add.flops, 24);
  // Sum of three inputs: two additions per element.
  const sum = single("Sum", [2, 3], (b) => {
    b.initializer("p", { dims: [3] }).initializer("q", { dims: [2, 1] });
    return ["p", "q"];
  });
  assert.equal(sum.flops, 12);
  const bn = single("BatchNormalization", [1, 3, 4, 4], (b) => {
    for (const n of ["s", "b", "m", "v"]) b.initializer(n, { dims: [3] });
    return ["s", "b", "m", "v"];
  });
  assert.equal(bn.flops, 48);
  assert.equal(single("Softmax", [2, 10], () => [], { axis: -1 }).flops, SOFTMAX_FLOPS * 20);
  assert.equal(single("HardSwish", [1, 16, 2, 2], () => []).flops, 64);
  // Reductions read each input element once.
  const mean = single("ReduceMean", [2, 3, 4], () => [], { axes: [-1], keepdims: 0 });
  assert.deepEqual(mean.outputShapes.y, [2, 3]);
  assert.equal(mean.flops, 24);
  assert.throws(
    () => single("Add", [2, 3], (b) => (b.initializer("b", { dims: [4] }), ["b"])),
    (e) => e instanceof OnnxShapeError && /broadcast/.test(e.message),
  );
});

Deno.test("data movement costs nothing", () => {
  const b = new GraphBuilder({ opset: 13 })
    .input("x", [2, 3, 4, 5])
    .ints("shape", [0, 12, -1])
    .node("Transpose", ["x"], ["t"], { perm: [0, 2, 3, 1] })
    .node("Reshape", ["t", "shape"], ["r"])
    .node("Flatten", ["r"], ["f"], { axis: 1 })
    .node("Identity", ["f"], ["i"])
    .node("Concat", ["i", "i"], ["y"], { axis: 0 })
    .output("y");
  const r = counterOf(b).report({});
  assert.deepEqual(r.outputShapes.y, [4, 60]);
  assert.equal(r.flops, 0);
  assert.equal(r.byOpType.length, 5);
  assert.ok(r.byOpType.every((row) => row.count === 1 && row.flops === 0));
});

Deno.test("unknown ops: count throws UnsupportedOpError naming each, report lists them", () => {
  const b = new GraphBuilder({ opset: 13 })
    .input("x", [1, 3, 4, 4])
    .node("Relu", ["x"], ["r"])
    .node("Einsum", ["r"], ["e"], { equation: "bchw->bhwc" })
    .node("FusedConv", ["e"], ["f"], {}, { domain: "com.microsoft" })
    .node("Einsum", ["f"], ["g"], { equation: "bhwc->bchw" })
    .node("Sigmoid", ["g"], ["y"])
    .output("y");
  const c = counterOf(b);
  assert.deepEqual(c.unknownOps, ["Einsum", "com.microsoft:FusedConv"]);
  assert.throws(
    () => c.count([1, 3, 4, 4]),
    (e) =>
      e instanceof UnsupportedOpError && e.ops.join() === "Einsum,com.microsoft:FusedConv" &&
      e.message.includes("Einsum") && e.message.includes("com.microsoft:FusedConv"),
  );
  const r = c.report([1, 3, 4, 4]);
  assert.deepEqual(r.unknownOps, ["Einsum", "com.microsoft:FusedConv"]);
  // Only Relu could be counted; Sigmoid sits behind the unknown ops.
  assert.equal(r.flops, 48);
  assert.deepEqual(r.outputShapes, {});
  assert.equal(r.byOpType.find((row) => row.op === "Einsum")?.count, 2);
});

Deno.test("data-dependent shapes are reported, not guessed", () => {
  // Reshape whose target comes from a runtime input cannot be counted statically.
  const b = new GraphBuilder({ opset: 13 })
    .input("x", [2, 6])
    .input("target", [2], T.INT64)
    .node("Reshape", ["x", "target"], ["y"])
    .output("y");
  assert.throws(
    () => counterOf(b).count({ target: [2] }),
    (e) => e instanceof OnnxShapeError && /not known statically/.test(e.message),
  );
});

Deno.test("input shapes are validated and results cached per shape", () => {
  const c = counterOf(
    new GraphBuilder()
      .input("x", ["N", 3, "H", "W"])
      .initializer("w", { dims: [4, 3, 1, 1] })
      .node("Conv", ["x", "w"], ["y"])
      .output("y"),
  );
  assert.deepEqual(c.inputs, [{ name: "x", dims: ["N", 3, "H", "W"] }]);
  assert.deepEqual(c.outputs, [{ name: "y" }]);
  assert.deepEqual(c.opTypes, ["Conv"]);
  assert.throws(() => c.count([1, 3, 8]), (e) => e instanceof OnnxShapeError && /rank 3/.test(e.message));
  assert.throws(() => c.count([1, 4, 8, 8]), (e) => e instanceof OnnxShapeError && /fixes it at 3/.test(e.message));
  assert.throws(() => c.count([1, 3, 0, 8]), OnnxShapeError);
  assert.throws(() => c.count({ y: [1] }), (e) => e instanceof OnnxShapeError && /unknown input "y"/.test(e.message));
  const a = c.report([2, 3, 8, 8]);
  assert.equal(a.macs, 2 * 4 * 64 * 3);
  assert.equal(c.report({ x: [2, 3, 8, 8] }), a, "same shape key must hit the cache");
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.byOpType), "cached reports are immutable");
  assert.deepEqual(c.count([2, 3, 8, 8]), { macs: a.macs, flops: a.flops, gmacs: a.gmacs, gflops: a.gflops });
  assert.equal(c.count([4, 3, 8, 8]).macs, 2 * a.macs);
});
