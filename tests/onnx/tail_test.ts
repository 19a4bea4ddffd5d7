// The tail of a model (lib/onnx/tail.ts): which nodes run on a window's core grown by a few pixels, how a page graph
// crops the maps they read, and what that saves.

import assert from "node:assert/strict";
import { decodeImage, windowsTensor } from "../../lib/image/mod.ts";
import { ModelRegistry } from "../../lib/models.ts";
import { AttributeType, type OnnxAttribute, type OnnxGraph, type OnnxNode } from "../../lib/onnx/proto.ts";
import { modelTail } from "../../lib/onnx/tail.ts";
import { pageGraph, pageNames } from "../../lib/onnx/page.ts";
import { TAIL_HALO } from "../../lib/onnx/levels.ts";
import { blankPixels, pageFeeds } from "../../workers/levels.ts";
import { nodeRuntime } from "../../workers/runtime_node.ts";
import { textImage } from "../_util.ts";
import { uniformJob } from "./_page.ts";

const ints = (name: string, v: number[]): [string, OnnxAttribute] => [
  name,
  { name, type: AttributeType.INTS, f: 0, i: 0, s: new Uint8Array(), ints: v } as unknown as OnnxAttribute,
];
const op = (opType: string, inputs: string[], output: string, attrs: [string, OnnxAttribute][] = []): OnnxNode =>
  ({ name: output, opType, domain: "", inputs, outputs: [output], attributes: new Map(attrs) }) as OnnxNode;

Deno.test("tail: the nodes whose output needs at most the halo around the core, and the maps they cut", () => {
  // x → a: 5×5 conv → b: 3×3 conv → c: Relu → y, all at stride 1; s: a stride-32 map the last node also reads.
  const g = {
    nodes: [
      op("Conv", ["x", "wa"], "a", [ints("kernel_shape", [5, 5])]),
      op("Conv", ["a", "wb"], "b", [ints("kernel_shape", [3, 3])]),
      op("Relu", ["b"], "c"),
      op("Add", ["c", "s"], "y"),
      op("Transpose", ["x"], "s"),
    ],
    initializers: [{ name: "wa" }, { name: "wb" }],
    inputs: [{ name: "x" }],
    outputs: [{ name: "y" }],
  } as unknown as OnnxGraph;
  const producer = new Map(g.nodes.map((n, i) => [n.outputs[0], i]));
  const tail = (halo: number, sStride: number) =>
    modelTail(g, new Set([0, 1, 2, 3, 4]), () => false, producer, (t) => (t === "s" ? sStride : 1), halo);
  // b reaches 1 px, a 2 px more: at a halo of 1 or 2 the tail starts at b and cuts a's map; at 3, at a, cutting x.
  assert.deepEqual([...tail(2, 1).nodes].sort(), [1, 2, 3]);
  assert.deepEqual(tail(2, 1).cuts.map((c) => c.name).sort(), ["a", "s"]);
  assert.deepEqual([...tail(3, 1).nodes].sort(), [0, 1, 2, 3]);
  assert.deepEqual(tail(3, 1).cuts.map((c) => c.name).sort(), ["s", "x"]);
  // A map whose grid the halo does not fall on cannot be cropped: its reader leaves the tail, with every tail node it
  // reads from. A transpose reaches without bound: never in a tail.
  assert.equal(tail(16, 32).nodes.size, 0);
  assert.ok(!tail(16, 1).nodes.has(4));
});

Deno.test("tail: a transposed convolution no larger than its stride reads one input position, on the halo's grid", () => {
  // x (stride 4) → a: 3×3 conv → u: 2×2 transposed conv at stride 2 → y (stride 2).
  const graph = (pads: number[]) =>
    ({
      nodes: [
        op("Conv", ["x", "wa"], "a", [ints("kernel_shape", [3, 3])]),
        op("ConvTranspose", ["a", "wu"], "y", [
          ints("kernel_shape", [2, 2]),
          ints("strides", [2, 2]),
          ints("pads", pads),
        ]),
      ],
      initializers: [{ name: "wa" }, { name: "wu" }],
      inputs: [{ name: "x" }],
      outputs: [{ name: "y" }],
    }) as unknown as OnnxGraph;
  const tail = (pads: number[], halo: number) => {
    const g = graph(pads);
    const producer = new Map(g.nodes.map((n, i) => [n.outputs[0], i]));
    return [...modelTail(g, new Set([0, 1]), () => false, producer, (t) => (t === "y" ? 2 : 4), halo).nodes].sort();
  };
  // The conv reaches 4 px, the transposed one none: both fit a halo of 4 (a multiple of the stride-4 input).
  assert.deepEqual(tail([0, 0, 0, 0], 4), [0, 1]);
  // Padded, it reads a neighbour too (4 px more): the conv no longer fits.
  assert.deepEqual(tail([1, 1, 1, 1], 4), [1]);
  // Its input at stride 8 (a 1×1 conv at stride 2 first): regions 4 px off that grid would split its cells, so there
  // it reaches 8 px and leaves a 4 px tail; an 8 px halo takes both.
  const strided = (halo: number) => {
    const g = graph([0, 0, 0, 0]);
    g.nodes[0] = op("Conv", ["x", "wa"], "a", [ints("kernel_shape", [1, 1]), ints("strides", [2, 2])]);
    const producer = new Map(g.nodes.map((n, i) => [n.outputs[0], i]));
    const stride = (t: string) => ({ x: 4, a: 8, y: 4 })[t];
    return [...modelTail(g, new Set([0, 1]), () => false, producer, stride, halo).nodes].sort();
  };
  assert.deepEqual(strided(4), []);
  assert.deepEqual(strided(8), [0, 1]);
});

const registry = await ModelRegistry.load();
const text = registry.model("text-ppocrv4-det");
const g = text.levels!.graphs;

Deno.test("tail: the detector's last stride-4 convolutions and its head, near half of its FLOPs", () => {
  assert.equal(g.tail.halo, TAIL_HALO);
  assert.ok(g.tail.cuts.length >= 1 && g.tail.cuts.every((c) => c.stride === 4), JSON.stringify(g.tail.cuts));
  // One pool reads a map the tail makes: a 3×3 convolution, its pool summed from the convolution's input.
  const pooled = g.pools.filter((p) => p.conv);
  assert.deepEqual(pooled.map((p) => [p.stride, p.conv!.kernel]), [[4, [24, 96, 3, 3]]]);
  assert.ok(g.tail.cuts.some((c) => c.name === pooled[0].conv!.input));
  // A window's price falls with its tail region's area.
  const dims = [1, 3, 640, 640], whole = text.counter.count(dims).flops;
  const full = text.levels!.cost.window(dims).flops, half = text.levels!.cost.window(dims, [[320, 640]]).flops;
  const share = (full - half) / (whole / 2);
  assert.ok(share > 0.4 && share < 0.55, `tail share ${share}`);
});

Deno.test({
  name: "tail: a window's tail cropped to its core gives the core the output of the tail run on the whole window",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const doc = await textImage(640, 480, [
      { text: "The tail runs on the core", x: 160, y: 200, size: 22 },
      { text: "and a few pixels more.", x: 160, y: 240, size: 22 },
    ]);
    const img = await decodeImage(new Uint8Array(await doc.image.encode()));
    const win = { x: 0, y: 0, w: 640, h: 480 }, core = { x: 128, y: 160, w: 384, h: 128 };
    const h = TAIL_HALO, inset = { x: core.x - h, y: core.y - h, w: core.w + 2 * h, h: core.h + 2 * h };
    const input = { dims: [1, 3, 480, 640], data: windowsTensor(img, text.spec.input, [win], 480, 640) };
    const rt = nodeRuntime();
    // The maps the tail reads, as it reads them, besides the output; the pools of maps the tail makes, and the maps.
    // (What the tail makes and reads is its region's own: here the first region's.)
    const first = pageNames.slot(0, 0), cuts = g.tail.cuts.map((c) => `${first}${c.name}::tail`);
    const pooled = g.pools.filter((p) => p.conv);
    const extra = [...cuts, ...pooled.flatMap((p) => [p.name, first + p.map])];
    // The window's slots that no region below uses run on dummy squares.
    const s = await rt.load(pageGraph(g, 1, extra), 2);
    const run = async (...tails: (typeof win)[]) => {
      const j = uniformJob([win], 640, 480, [255, 255, 255, 255], { counted: [core], tails: [tails] });
      return await s.runFeeds(pageFeeds(g, j, [input], blankPixels(j, text.spec.input)));
    };
    // The core in two halves, each with its own region (two of the tail's slots): the same again on each half.
    const halves = [{ ...core, w: core.w / 2 }, { ...core, x: core.x + core.w / 2, w: core.w / 2 }];
    const grown = halves.map((c) => ({ x: c.x - h, y: c.y - h, w: c.w + 2 * h, h: c.h + 2 * h }));
    const whole = await run(win), cropped = await run(inset), split = await run(...grown);
    await s.release();
    // Each cut map cropped to the region, exactly: what the rest of the model made there, at the map's stride.
    g.tail.cuts.forEach((c, k) => {
      const full = whole[cuts[k]], part = cropped[cuts[k]], st = c.stride, C = full.dims[1];
      const [fh, fw] = full.dims.slice(2), [ph, pw] = [inset.h / st, inset.w / st];
      assert.deepEqual(part.dims, [1, C, ph, pw]);
      for (let ch = 0; ch < C; ch++) {
        for (let y = 0; y < ph; y++) {
          for (let x = 0; x < pw; x++) {
            const want = full.data[(ch * fh + y + inset.y / st) * fw + x + inset.x / st];
            const got = part.data[(ch * ph + y) * pw + x];
            if (got !== want) assert.fail(`${c.name}[${ch}, ${y}, ${x}]: ${got} vs ${want}`);
          }
        }
      }
    });
    // Where the window covers the page, its pool is the map's mean (summed from the convolution's input).
    for (const p of pooled) {
      const map = whole[first + p.map], [, C, mh, mw] = map.dims, plane = mh * mw;
      for (let ch = 0; ch < C; ch++) {
        let sum = 0;
        for (let k = 0; k < plane; k++) sum += map.data[ch * plane + k];
        const got = whole[p.name].data[ch];
        assert.ok(
          Math.abs(got - sum / plane) < 1e-4 * (1 + Math.abs(got)),
          `${p.name}[${ch}]: ${got} vs ${sum / plane}`,
        );
      }
    }
    const out = pageNames.output(g, 0);
    assert.deepEqual(cropped[out].dims, [1, 1, inset.h, inset.w]);
    // The core's output, read from each at its place: the same.
    const compare = (c: typeof core, region: typeof core, got: Float32Array) => {
      let worst = 0, inked = 0;
      for (let y = 0; y < c.h; y++) {
        for (let x = 0; x < c.w; x++) {
          const p = whole[out].data[(c.y + y) * win.w + c.x + x];
          const q = got[(c.y - region.y + y) * region.w + c.x - region.x + x];
          worst = Math.max(worst, Math.abs(p - q));
          if (p > 0.3) inked++;
        }
      }
      return { worst, inked };
    };
    const one = compare(core, inset, cropped[out].data);
    assert.ok(one.inked > 1000, `${one.inked} text pixels in the core`);
    assert.ok(one.worst < 1e-5, `largest difference ${one.worst}`);
    halves.forEach((c, j) => {
      const { worst, inked } = compare(c, grown[j], split[pageNames.output(g, 0, j)].data);
      assert.ok(inked > 300 && worst < 1e-5, `half ${j}: ${inked} text pixels, largest difference ${worst}`);
    });
  },
});
