// The page graph: all windows of a level-by-level plan (lib/onnx/levels.ts) in one ONNX graph, so that one run
// computes them, every global average pool averaging over the page inside the graph. Level segments run one by one
// (this project's first way) handed each level's maps out of the runtime to be pooled in JS and back in: through
// onnxruntime-node that crossing cost +11–15 % of a window's model time (a 736×1984 window's first segment alone
// handed out 45 MB); here nothing but the windows' outputs leaves the runtime.
//
// The graph holds one copy of the model's runtime nodes per window (tensor names prefixed `w<i>:`; its tail's,
// lib/onnx/tail.ts, one per tail slot `j` of the window, `w<i>.<j>:`), the nodes computable from weights once, and the
// blank graph's nodes once (prefixed `b:`, run on one pixel per blank colour), and the blank strips' (`bx:`, `by:`,
// run on a strip per blank colour: `STRIP`).
// Each pool becomes a weighted sum over the page: per window, its map (flattened to [1, C, h·w]) times a column of
// weights — 1 ÷ page positions where the window counts the position, 0 elsewhere (workers/levels.ts `pageFeeds`) —
// plus the blank maps ([colours, C]) weighted by each colour's uncovered positions far from the page's border
// ÷ page positions, plus the strips' maps weighted by the uncovered positions near the border at each of their
// positions. The weights are the graph's inputs, one per window and stride, so one graph serves every plan with that
// many windows.
//
// What the blank strips bought, with `POOL_EDGE` 64 and the cover's larger windows (lib/plan/focus_options.ts
// `windowPixels`), default vs full resolution (`deno run -A bench/eval/budget_sweep.ts --set val3|test|val4 --shares
// 1`): the third validation set's least IoU 0.956 → 0.984, the fourth's 0.972 → 0.992, the test screenshots' 0.984 →
// 0.979, for 0.9–1.4 points more of full resolution's price. Padding a window's sides inside the page with blank page
// too (branch pooling-blank-pad) did better still, but onnxruntime ran the pads as ops of their own around every
// padded convolution: the default took longer than full resolution natively.
//
// What the blank part costs (the served, folded page graph; medians of 6 runs on random feeds, a scratch script):
// alone, natively on 2 threads 3.2 / 3.8 / 4.3 ms on one / two / three colours, on 2 WASM threads 8.0 / 14.5 / 17.6 ms;
// a 768×1344 window's page graph natively 67.2 ms with it (two colours), 63.9 without. The default's test screenshots
// run it on one colour (10 of 20), two (2) or not at all (8: one window over the whole page). It cannot be kept from
// one request for the next: its maps read the page's pooled vectors, level after level (the squeeze-excitation blocks),
// so they depend on the windows too, not on the colour alone. Without it and with six slots on real regions, that
// window's page graph took 0.96× (native) and 1.05× (WASM) the whole model's time per FLOP at the same size.

import { lenField, payloadOf, rawFields } from "./_wire.ts";
import { assemble, constantNode, intAttribute, intsAttribute, nodeIo, opNode as node } from "./_splice.ts";
import type { PooledConv, PooledVector } from "./levels.ts";

// The page graph's inputs (names, shapes, shared constants), for the workers, which may import this module only.
export * from "./page_inputs.ts";
import { convShifts, cutStrides, pageNames, type PageSource, poolStrides, STRIP } from "./page_inputs.ts";

/** The page graph's shared shape constants: a map flattened per channel, a vector as a map, a map's spatial axes. */
const FLAT = "page:flat", VECTOR = "page:vector", HW = "page:hw";

/**
 * The page graph of `n` windows: inputs each window's image input, the blank pixels and the pooling weights
 * ({@link pageNames}); outputs each window's model output, and any of its tensors named in `extra` (a test's view).
 * Each window holds `slots` copies of the model's tail (default: its tail slots; fewer only for counting a price,
 * lib/onnx/page_cost.ts). Without `blank` (a plan whose windows leave no page position to blank page: one
 * window over the whole page), the graph has no blank part (no blank pixels, no strips, no inputs of theirs): each
 * pool's sum starts at zero instead of at the blank part's, which is then exactly 0, so every output is the same, and
 * each window's nodes are too.
 */
export function pageGraph(
  g: PageSource,
  n: number,
  extra: string[] = [],
  blank = true,
  slots: number = g.tail.slots,
): Uint8Array {
  const { page } = g;
  const shared = new Set<string>(page.shared.flatMap((b) => nodeIo(b).outputs));
  for (const p of g.pools) shared.add(p.name);
  const keep = (prefix: string) => (t: string) => t === "" || shared.has(t) ? t : prefix + t;
  // Nodes with a sort key: level, then windows before the blank graph and the pools, then their order in the file.
  const entries: Entry[] = [];
  page.shared.forEach((b, j) => entries.push({ bytes: b, key: [-1, 0, j] }));
  // The tail's nodes, once per slot j of a window, read the maps it cuts cropped to that slot's region (`::tail`); what
  // they make is the slot's own (`w<i>.<j>:`).
  const cut = new Map(g.tail.cuts.map((c) => [c.name, c.stride]));
  if (cut.size) entries.push({ bytes: int64Constant(HW, [2, 3]), key: [-1, 1, 2] });
  const isTail = (j: number) => page.window.tail?.[j] ?? false;
  const windowMade = new Set(page.window.nodes.flatMap((b, j) => isTail(j) ? [] : nodeIo(b).outputs));
  const count = page.window.nodes.length;
  for (let i = 0; i < n; i++) {
    const rename = keep(`w${i}:`);
    page.window.nodes.forEach((b, j) => {
      if (!isTail(j)) entries.push({ bytes: renamed(b, rename), key: [page.window.level[j], i, j] });
    });
    for (let k = 0; k < (g.tail.halo ? slots : 0); k++) {
      const slot = pageNames.slot(i, k);
      const renameTail = (t: string) =>
        cut.has(t) ? `${slot}${t}::tail` : shared.has(t) || t === "" ? t : windowMade.has(t) ? rename(t) : slot + t;
      page.window.nodes.forEach((b, j) => {
        if (isTail(j)) {
          entries.push({ bytes: renamed(b, renameTail), key: [page.window.level[j], i, (k + 1) * count + j] });
        }
      });
      for (const [t, s] of cut) {
        const crop = node("Slice", [`w${i}:${t}`, pageNames.tailStarts(s, i, k), pageNames.tailEnds(s, i, k), HW], [
          `${slot}${t}::tail`,
        ]);
        entries.push({ bytes: crop, key: [0, i, -1] });
      }
    }
  }
  if (blank) blankPart(g, n, entries, keep);
  entries.push(
    { bytes: int64Constant(FLAT, [0, 0, -1]), key: [-1, 1, 0] },
    { bytes: int64Constant(VECTOR, [0, 0, 1, 1]), key: [-1, 1, 1] },
  );
  // Each pool's sum runs blank page first, then adds the windows one by one: a window's nodes and their cost are then
  // the same in every page graph (see lib/onnx/page_cost.ts), whatever the number of windows.
  g.pools.forEach((p, j) => {
    const at = (q: number) => ({ key: [p.level, n + 1, g.pools.length * q + j] });
    const acc = (i: number) => (i === n ? p.name : `${p.name}::acc${i}`);
    if (blank) blankSum(p, acc(0)).forEach((bytes) => entries.push({ bytes, ...at(0) }));
    else entries.push({ bytes: zeroVector(acc(0), p.channels), ...at(0) });
    if (p.conv) convStatics(p, p.conv).forEach((bytes, k) => entries.push({ bytes, key: [-1, 2, 16 * j + k] }));
    for (let i = 0; i < n; i++) {
      const m = `w${i}:${p.map}`, weights = pageNames.weights(p.stride, i);
      const sum = p.conv ? convSum(p, p.conv, i, weights, `${m}::sum4`) : [
        node("Reshape", [m, FLAT], [`${m}::flat`]),
        node("MatMul", [`${m}::flat`, weights], [`${m}::sum`]),
        node("Reshape", [`${m}::sum`, VECTOR], [`${m}::sum4`]),
      ];
      for (const bytes of sum) entries.push({ bytes, ...at(i + 1) });
      entries.push({ bytes: node("Add", [acc(i), `${m}::sum4`], [acc(i + 1)]), ...at(i + 1) });
    }
  });
  const nodes = topological(entries);
  const windows = Array.from({ length: n }, (_, i) => i);
  // The crops' positions, int64 as Slice reads them: a Cast of float positions was two more nodes a slot, 48 a window
  // (0.6–1.4 ms of a 1920×1088 page graph's kernels natively, `.scratch/pageprof2.ts`).
  const crops = cutStrides(g).flatMap((s) =>
    windows.flatMap((i) =>
      Array.from({ length: slots }, (_, j) => [pageNames.tailStarts(s, i, j), pageNames.tailEnds(s, i, j)]).flat()
    )
  );
  const inputs = [
    ...windows.map((i) => pageNames.input(g, i)),
    ...(blank ? [pageNames.blank(g), pageNames.stripMask(0), pageNames.stripMask(1)] : []),
    ...poolStrides(g).flatMap((s) => [
      ...windows.map((i) => pageNames.weights(s, i)),
      ...(blank ? [pageNames.blankWeights(s), pageNames.stripWeights(0, s), pageNames.stripWeights(1, s)] : []),
    ]),
    ...convShifts(g).flatMap(({ stride, kernel }) => windows.map((i) => pageNames.shiftedWeights(stride, kernel, i))),
    ...crops,
  ];
  const outputs = [
    ...windows.flatMap((i) => Array.from({ length: g.tail.halo ? slots : 1 }, (_, j) => pageNames.output(g, i, j))),
    ...extra,
  ];
  return assemble({ ...page, nodes }, { inputs, outputs, int64: new Set(crops) });
}

type Entry = { bytes: Uint8Array; key: number[] };

/**
 * The blank part of a page graph of `n` windows: the blank graph on one pixel per blank colour, and the blank strips:
 * each blank pixel expanded to a 1-row and a 1-column strip, through the blank graph summed one way.
 */
function blankPart(g: PageSource, n: number, entries: Entry[], keep: (prefix: string) => (t: string) => string) {
  const { page } = g;
  page.blank.nodes.forEach((b, j) => entries.push({ bytes: renamed(b, keep("b:")), key: [page.blank.level[j], n, j] }));
  page.strips.forEach((strip, axis) => {
    const prefix = stripPrefix(axis), at = page.blank.nodes.length * (axis + 1);
    const shape = `page:strip_shape:${axis}`;
    entries.push(
      { bytes: int64Constant(shape, axis ? [1, 1, STRIP, 1] : [1, 1, 1, STRIP]), key: [-1, 1, 3 + axis] },
      { bytes: node("Expand", [pageNames.blank(g), shape], [`${prefix}${g.input}::strip`]), key: [0, n, at - 2] },
      {
        bytes: node("Mul", [`${prefix}${g.input}::strip`, pageNames.stripMask(axis)], [prefix + g.input]),
        key: [0, n, at - 1],
      },
    );
    strip.nodes.forEach((b, j) => entries.push({ bytes: renamed(b, keep(prefix)), key: [strip.level[j], n, at + j] }));
  });
}

/**
 * A pool's sum over the page's blank part, named `out` ([1, C, 1, 1]): the blank maps weighted by each colour's
 * uncovered positions, and each strip's map by its positions' weights.
 */
function blankSum(p: PooledVector, out: string): Uint8Array[] {
  const b = `b:${p.map}`;
  const nodes = [
    node("ReduceMean", [b], [`${b}::rows`], spatialMean),
    node("MatMul", [pageNames.blankWeights(p.stride), `${b}::rows`], [`${b}::sum`]),
  ];
  // Each strip's map, [colours, C, …, STRIP / stride] (or […, 1]): its mean over the other axis (constant along it,
  // but upsampled to whatever extent), as [colours · positions, C] rows weighted by the strip's weights.
  const strips = [0, 1].map((axis) => {
    const m = `${stripPrefix(axis)}${p.map}`;
    nodes.push(
      node("ReduceMean", [m], [`${m}::line`], lineMean(axis)),
      node("Transpose", [`${m}::line`], [`${m}::lineT`], permLine),
      node("Flatten", [`${m}::lineT`], [`${m}::rows`], [intAttribute("axis", 2)]),
      node("MatMul", [pageNames.stripWeights(axis, p.stride), `${m}::rows`], [`${m}::sum`]),
    );
    return `${m}::sum`;
  });
  nodes.push(
    node("Sum", [`${b}::sum`, ...strips], [`${b}::sums`]),
    node("Reshape", [`${b}::sums`, VECTOR], [out]),
  );
  return nodes;
}

/**
 * The weights-only nodes of a pool whose map a convolution of the tail makes (lib/onnx/tail.ts): its kernel as a
 * [in channels · height · width, out channels] matrix, its bias as [1, out, 1, 1].
 */
function convStatics(p: PooledVector, c: PooledConv): Uint8Array[] {
  const cout = c.kernel[0], pre = `${p.name}::conv`;
  const out = [
    int64Constant(`${pre}:rows`, [cout, -1]),
    node("Reshape", [c.weight, `${pre}:rows`], [`${pre}:w_rows`]),
    node("Transpose", [`${pre}:w_rows`], [`${pre}:w`], perm10),
    int64Constant(`${pre}:row`, [1, -1]),
    int64Constant(`${pre}:planes`, [c.kernel[1], -1]),
  ];
  if (c.bias) {
    out.push(
      int64Constant(`${pre}:b_shape`, [1, cout, 1, 1]),
      node("Reshape", [c.bias, `${pre}:b_shape`], [`${pre}:b`]),
    );
  }
  return out;
}

/**
 * Window `i`'s weighted sum of the map a convolution of the tail makes, from the convolution's input x (made on the
 * whole window), as [1, out channels, 1, 1] named `out`: Σ_p w(p) · conv(x)(p) is, over input channels and kernel
 * positions k, kernel[k] · Σ_p w(p) · x_padded(p + k), plus bias · Σ_p w(p); and Σ_p w(p) · x_padded(p + k) =
 * Σ_q w(q − k + pad) · x(q) over the map's positions q. The shifted sums are one product of the input, flattened, with
 * the window's weights shifted to each kernel position (fed: workers/levels.ts `shiftedWeights`; a convolution with the
 * weights as its kernel computes the same, 17 ms for 44 MFLOPs natively, and padding the input first cost a copy of
 * it, 1.6 ms of a 768×928 window's 90 natively): in channels × kernel positions × map positions MACs, where the
 * convolution itself costs out channels times that.
 */
function convSum(p: PooledVector, c: PooledConv, i: number, weights: string, out: string): Uint8Array[] {
  const pre = `${p.name}::conv`, x = `w${i}:${c.input}`, at = `w${i}:${pre}`;
  const shifted = pageNames.shiftedWeights(p.stride, c.kernel.slice(2), i);
  const nodes = [
    node("Reshape", [x, `${pre}:planes`], [`${at}:flat`]),
    node("Gemm", [`${at}:flat`, shifted], [`${at}:shifted`], transB),
    node("Reshape", [`${at}:shifted`, `${pre}:row`], [`${at}:shifted_row`]),
    node("MatMul", [`${at}:shifted_row`, `${pre}:w`], [`${at}:sum`]),
  ];
  if (!c.bias) return [...nodes, node("Reshape", [`${at}:sum`, VECTOR], [out])];
  return [
    ...nodes,
    node("Reshape", [`${at}:sum`, VECTOR], [`${at}:sum4`]),
    node("ReduceSum", [weights], [`${at}:weight`], noKeepDims),
    node("Mul", [`${pre}:b`, `${at}:weight`], [`${at}:bias`]),
    node("Add", [`${at}:sum4`, `${at}:bias`], [out]),
  ];
}

/**
 * The nodes in an order where each comes after the producers of its inputs: by key where that allows (the levels in
 * turn, so the runtime can free a level's maps early), each node as soon as its inputs exist otherwise.
 */
function topological(entries: Entry[]): Uint8Array[] {
  const cmp = (a: number[], b: number[]) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  const sorted = entries.slice().sort((a, b) => cmp(a.key, b.key)).map((e) => ({
    bytes: e.bytes,
    ...nodeIo(e.bytes),
  }));
  const produced = new Set(sorted.flatMap((e) => e.outputs));
  const have = new Set<string>();
  const out: Uint8Array[] = [];
  let left = sorted;
  while (left.length) {
    const next: typeof left = [];
    for (const e of left) {
      if (e.inputs.every((t) => t === "" || have.has(t) || !produced.has(t))) {
        out.push(e.bytes);
        for (const t of e.outputs) have.add(t);
      } else next.push(e);
    }
    if (next.length === left.length) throw new Error("the page graph has a cycle");
    left = next;
  }
  return out;
}

const decoder = new TextDecoder();

/** A node with its inputs, outputs and name passed through `rename`; its other fields as they were. */
function renamed(bytes: Uint8Array, rename: (t: string) => string): Uint8Array {
  const fields = rawFields(payloadOf({ field: 1, raw: bytes })).map((f) =>
    f.field === 1 || f.field === 2 || f.field === 3 ? lenField(f.field, rename(decoder.decode(payloadOf(f)))) : f.raw
  );
  return lenField(1, fields);
}

/**
 * A blank map's value per colour and channel, [colours, C]: its mean over space (a blank map is constant over space,
 * but its extent is whatever upsampling a 1×1 input got on its way).
 */
const spatialMean = [intsAttribute("axes", [2, 3]), intAttribute("keepdims", 0)];

/** A strip map's mean over the axis it is constant along (`axis` 0: the row strip's height, 1: the column's width). */
const lineMean = (axis: number) => [intsAttribute("axes", [axis ? 3 : 2]), intAttribute("keepdims", 0)];
const permLine = [intsAttribute("perm", [0, 2, 1])];

/** The prefix of a blank strip's tensors in a page graph (`axis` 0: the 1-row strip, 1: the 1-column one). */
const stripPrefix = (axis: number) => (axis ? "by:" : "bx:");

/** Attributes: a Transpose of a matrix, a Gemm's second operand transposed, a reduction to a scalar. */
const perm10 = [intsAttribute("perm", [1, 0])];
const transB = [intAttribute("transB", 1)];
const noKeepDims = [intAttribute("keepdims", 0)];

/** A Constant node holding a 1-D int64 tensor (a Reshape's target shape). */
const int64Constant = (name: string, values: number[]) =>
  constantNode(name, [values.length], BigInt64Array.from(values, BigInt));

/** A Constant node holding zeros as a pool's output, [1, `channels`, 1, 1]. */
const zeroVector = (name: string, channels: number) =>
  constantNode(name, [1, channels, 1, 1], new Float32Array(channels));
