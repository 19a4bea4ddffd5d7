// Folding elementwise runs before a runtime loads a graph (lib/onnx/fuse.ts): fewer nodes, the same outputs to float
// rounding, nothing folded that another node or the caller reads; on the real text detector and its page graphs too.

import assert from "node:assert/strict";
import { decodeImage, windowsTensor } from "../../lib/image/mod.ts";
import { ModelRegistry } from "../../lib/models.ts";
import { decodeModel } from "../../lib/onnx/mod.ts";
import { foldElementwise } from "../../lib/onnx/fuse.ts";
import { pageGraph, pageNames } from "../../lib/onnx/page.ts";
import { blankPixels, pageFeeds } from "../../workers/levels.ts";
import { nodeRuntime } from "../../workers/runtime_node.ts";
import type { Tensor } from "../../workers/protocol.ts";
import { GraphBuilder } from "./_builder.ts";
import { textImage } from "../_util.ts";
import { uniformJob } from "./_page.ts";

const registry = await ModelRegistry.load();
const text = registry.model("text-ppocrv4-det");
const ops = (bytes: Uint8Array) => decodeModel(bytes).graph.nodes.map((n) => n.opType);
const count = (list: string[], op: string) => list.filter((o) => o === op).length;

/** Largest absolute difference between two runs' outputs of the same names. */
function maxDiff(a: Record<string, Tensor>, b: Record<string, Tensor>, names = Object.keys(a)): number {
  let d = 0;
  for (const k of names) {
    assert.deepEqual(b[k].dims, a[k].dims, k);
    for (let i = 0; i < a[k].data.length; i++) d = Math.max(d, Math.abs(a[k].data[i] - b[k].data[i]));
  }
  return d;
}

/** Runs `bytes` and its folded graph on the same feeds (native runtime, one thread). */
async function both(bytes: Uint8Array, feeds: Record<string, Tensor>) {
  const rt = nodeRuntime();
  const folded = foldElementwise(bytes);
  const [a, b] = [await rt.load(bytes, 1), await rt.load(folded, 1)];
  try {
    return { folded, before: await a.runFeeds(feeds), after: await b.runFeeds(feeds) };
  } finally {
    await a.release();
    await b.release();
  }
}

const random = (n: number, seed = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 1.5);

/** A test that runs onnxruntime-node, whose sessions keep native resources past the test. */
function ortTest(name: string, fn: () => Promise<void> | void) {
  Deno.test({ name, sanitizeResources: false, sanitizeOps: false, fn });
}

ortTest(
  "fold: a convolution's scalar affine and a spelled-out hard-swish fold; what is read elsewhere stays",
  async () => {
    const w = { dims: [4, 2, 3, 3], values: [...random(72, 2)] };
    const bytes = new GraphBuilder({ opset: 11 })
      .input("x", [1, 2, 8, 8])
      .initializer("w", w)
      .floats("bias", [0.1, -0.2, 0.3, 0.05])
      .floats("s", [1.7], [])
      .floats("b", [-0.4], [1])
      .floats("three", [3], [])
      .floats("zero", [0], [])
      .floats("six", [6], [])
      .node("Conv", ["x", "w", "bias"], ["c"], { pads: [1, 1, 1, 1] })
      .node("Mul", ["s", "c"], ["cs"])
      .node("Add", ["cs", "b"], ["y"])
      .node("Add", ["y", "three"], ["y3"])
      .node("Clip", ["y3", "zero", "six"], ["yc"])
      .node("Mul", ["y", "yc"], ["ym"])
      .node("Div", ["ym", "six"], ["z"])
      // A second convolution whose output the caller reads too: its Mul must not fold into it.
      .node("Conv", ["x", "w"], ["c2"], { pads: [1, 1, 1, 1] })
      .node("Mul", ["c2", "s"], ["z2"])
      .output("z")
      .output("c2")
      .output("z2")
      .build();
    const { folded, before, after } = await both(bytes, { x: { dims: [1, 2, 8, 8], data: random(128) } });
    assert.deepEqual(ops(folded), ["Constant", "Constant", "Conv", "HardSigmoid", "Mul", "Conv", "Mul"]);
    assert.ok(maxDiff(before, after) < 1e-5, `${maxDiff(before, after)}`);
    // Nothing to fold: the very same bytes back.
    const plain = new GraphBuilder().input("x", [1, 1, 4, 4]).node("Relu", ["x"], ["y"]).output("y").build();
    assert.equal(foldElementwise(plain), plain);
  },
);

ortTest(
  "fold: a scalar affine before 1×1 convolutions folds into them; before a padded one it is one depthwise Conv",
  async () => {
    const bytes = new GraphBuilder({ opset: 11 })
      .input("x", [1, 3, 6, 6])
      .initializer("p1", { dims: [4, 3, 1, 1], values: [...random(12, 3)] })
      .initializer("p2", { dims: [2, 3, 1, 1], values: [...random(6, 4)] })
      .initializer("k", { dims: [3, 1, 3, 3], values: [...random(27, 5)] })
      .floats("bias", [0.1, -0.2, 0.3, 0.05])
      .floats("s", [1.7], [])
      .floats("t", [-0.4], [1])
      .floats("u", [0.6], [])
      .node("Relu", ["x"], ["r"])
      // Read by two 1×1 convolutions: into both.
      .node("Mul", ["r", "s"], ["rs"])
      .node("Add", ["t", "rs"], ["a"])
      .node("Conv", ["a", "p1", "bias"], ["y1"])
      .node("Conv", ["a", "p2"], ["y2"])
      // Read by a depthwise 3×3 convolution padded by 1: the affine stays, as one node.
      .node("Add", ["r", "u"], ["ru"])
      .node("Mul", ["ru", "s"], ["d"])
      .node("Conv", ["d", "k"], ["y3"], { pads: [1, 1, 1, 1], group: 3 })
      // Read by a 1×1 convolution and by the caller: nothing folds.
      .node("Mul", ["r", "u"], ["e"])
      .node("Conv", ["e", "p2"], ["y4"])
      .output("y1")
      .output("y2")
      .output("y3")
      .output("y4")
      .output("e")
      .build();
    const { folded, before, after } = await both(bytes, { x: { dims: [1, 3, 6, 6], data: random(108) } });
    assert.deepEqual(ops(folded).filter((o) => o !== "Constant"), [
      "Relu",
      "Conv",
      "Conv",
      "Conv",
      "Conv",
      "Mul",
      "Conv",
    ]);
    const dw = decodeModel(folded).graph.nodes.filter((n) => n.opType === "Conv" && n.attributes.get("group")?.i === 3);
    assert.equal(dw.length, 2, "the depthwise affine and the depthwise 3×3");
    assert.ok(maxDiff(before, after) < 1e-5, `${maxDiff(before, after)}`);
  },
);

ortTest("fold: per-channel steps and a batch norm after a transposed convolution; x + x·v as x·(1 + v)", async () => {
  const bytes = new GraphBuilder({ opset: 11 })
    .input("x", [1, 2, 5, 5])
    .input("v", [1, 3, 1, 1])
    .initializer("w", { dims: [2, 3, 2, 2], values: [...random(24, 6)] })
    .floats("bias", [0.2, -0.1, 0.4], [3])
    .floats("c", [0.3, -0.5, 0.25], [1, 3, 1, 1])
    .floats("gamma", [1.2, 0.7, -0.9], [3])
    .floats("beta", [0.1, 0.2, -0.3], [3])
    .floats("mean", [0.05, -0.4, 0.6], [3])
    .floats("var", [0.8, 1.5, 0.3], [3])
    .node("ConvTranspose", ["x", "w", "bias"], ["t"], { strides: [2, 2] })
    .node("Add", ["t", "c"], ["tc"])
    .node("BatchNormalization", ["tc", "gamma", "beta", "mean", "var"], ["y"], { epsilon: { f: 1e-3 } })
    .node("Mul", ["y", "v"], ["yv"])
    .node("Add", ["yv", "y"], ["z"])
    .output("z")
    .build();
  const { folded, before, after } = await both(bytes, {
    x: { dims: [1, 2, 5, 5], data: random(50) },
    v: { dims: [1, 3, 1, 1], data: random(3, 7) },
  });
  assert.deepEqual(ops(folded).filter((o) => o !== "Constant"), ["ConvTranspose", "Add", "Mul"]);
  assert.ok(maxDiff(before, after) < 1e-5, `${maxDiff(before, after)}`);
});

ortTest(
  "fold: the text detector and a page graph of its windows run the same in fewer nodes; zoo models unchanged",
  async () => {
    const original = ops(text.bytes);
    const H = 96, W = 160;
    const { folded, before, after } = await both(text.bytes, {
      [text.levels!.graphs.input]: { dims: [1, 3, H, W], data: random(3 * H * W) },
    });
    const now = ops(folded);
    // 24 hard-swishes (4 nodes each → 2) and the scalar affines after 28 convolutions (2 nodes each → 0).
    assert.equal(count(original, "Div"), 24);
    assert.equal(count(now, "Div"), 0);
    assert.equal(count(now, "HardSigmoid"), count(original, "HardSigmoid") + 24);
    assert.ok(now.length < original.length - 150, `${original.length} → ${now.length}`);
    assert.ok(maxDiff(before, after) < 1e-5, `${maxDiff(before, after)}`);

    // The workers' page graphs are spliced from the folded model's level cut: the same maps as the model's own.
    const exec = registry.workerModels().find((m) => m.id === text.spec.id)!;
    assert.equal(ops(exec.bytes).length, now.length);
    const doc = await textImage(320, 192, [{ text: "Folded, not changed", x: 16, y: 40, size: 24 }]);
    const img = await decodeImage(new Uint8Array(await doc.image.encode()));
    const win = { x: 0, y: 0, w: 320, h: 192 }, g = text.levels!.graphs;
    const job = uniformJob([win], 320, 192, [255, 255, 255, 255]);
    const input = { dims: [1, 3, 192, 320], data: windowsTensor(img, text.spec.input, [win], 192, 320) };
    const rt = nodeRuntime();
    const outs: Record<string, Tensor>[] = [];
    for (const source of [g, exec.levels!]) {
      const s = await rt.load(pageGraph(source, 1), 1);
      outs.push(await s.runFeeds(pageFeeds(source, job, [input], blankPixels(job, text.spec.input))));
      await s.release();
    }
    // The pools' weighted sums carry the last bits further: 2.3e-5 measured, on probabilities thresholded at 0.3.
    const name = pageNames.output(g, 0);
    assert.ok(maxDiff(outs[0], outs[1], [name]) < 1e-4, `${maxDiff(outs[0], outs[1], [name])}`);

    for (const m of registry.models.values()) {
      if (!m.levels) assert.equal(foldElementwise(m.bytes), m.bytes, `${m.spec.id} has nothing to fold`);
    }
  },
);
