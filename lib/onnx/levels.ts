// Level-synchronised pooling: what a windowed plan needs so that every global average pool of a model (the
// squeeze-excitation blocks of the text detector) pools over the whole image while only some windows of it run.
//
// The pooled vectors fall in dependency levels (a level's vectors depend only on earlier levels'). Every other node
// of the model gets the level it runs at: the first at which all its inputs exist (a level-k pooled vector exists from
// level k + 1 on), or later, as late as its readers allow (a pooled map at its pool's level), so that what a level
// leaves for the next is the maps and little else. The page graph (lib/onnx/page.ts) holds one copy of those nodes per
// window and sums each level's maps over all windows and the blank page around them into the level's vectors before
// the next level runs. Every node of the model runs once per window.
//
// The blank graph gives, for a 1×1 input of one colour, the value the feature maps take far inside a page of that
// colour under given pooled vectors: on a constant map a k×k convolution is a 1×1 one with the kernel summed over
// space (stride, padding and dilation only matter at the edges), so the model's graph up to the maps, with every Conv
// kernel summed, run on one pixel, gives it exactly. Near the page's border the whole image's convolutions pad with
// zeros, and the maps there differ from that: the blank strips (a 1-row strip of the colour with kernels summed over
// their height only, and a 1-column one) give what they take there, from each end of a strip (lib/onnx/page.ts
// `STRIP`). A window's convolutions pad all its sides with zeros, so its maps near its sides inside the page read like
// a frame: the pools leave those out (lib/onnx/page.ts `POOL_EDGE`).
//
// Nodes are copied at the protobuf level (lib/onnx/_splice.ts): as the raw bytes of the model file.

import { DataType, decodeModel } from "./proto.ts";
import { planGraph, runGraph } from "./_infer.ts";
import { isKernel, type ModelParts, RawModel, SpliceError } from "./_splice.ts";
import { modelTail, type TailCut } from "./tail.ts";

/**
 * Px of image around a window's core its tail (lib/onnx/tail.ts) runs on. 8 px keeps the text detector's last stride-4
 * convolutions and its head in the tail (its two 3×3 convolutions at stride 4 reach 4 px each; the head's 2×2
 * transposed convolutions at stride 2 reach none), and a multiple of 4 lets its stride-4 maps crop on their own grid.
 * Mean served cost ÷ full (`deno run -A bench/eval/squeeze.ts --set tune|val --halo none --edge-halos 0 --crossed-halo
 * none`): 16 px (when the transposed convolutions were counted as reaching a neighbour) tuning 0.770, validation 0.621;
 * 8 px 0.725, 0.592; the least IoU vs full resolution the same (0.991, 0.983): the tail gives its region's core exactly
 * what the whole window gives.
 */
export const TAIL_HALO = 8;

/**
 * Regions a window's tail runs on, at most: the page graph holds this many copies of the tail per window (lib/onnx/
 * page.ts), each on its own crop of the maps, so that the tail runs near the window's ink only, in a few rectangles
 * (lib/plan/ink_cover.ts), instead of on all of its core. A window with fewer runs the rest on a 16 px square (no
 * smaller page graphs for few regions: lib/onnx/page.ts `slotted`). Mean served cost ÷ full with 10, 16 and
 * 24, the regions cut on 8 px cells, a 16 px tail halo (`deno run -A bench/eval/squeeze.ts --set tune|val --halo none
 * --edge-halos 0 --crossed-halo none`): tuning 0.791, 0.769, 0.763; validation 0.635, 0.620, 0.616 (on 32 px cells, 3,
 * 6, 8, 10 and 16 slots: tuning 0.831, 0.828, 0.826, 0.826, 0.819; validation 0.706, 0.690, 0.682, 0.668, 0.655).
 * Later, with the 8 px tail halo and the crossed halo (the same command without `--crossed-halo none`), 16 → 24 → 32:
 * tuning 0.731 → 0.719 → 0.713 (0.715 at 24 with lib/plan/ink_cover.ts `TAIL_REGION_PIXELS` 1024), validation 0.599 →
 * 0.590 → 0.584 (0.589); least IoU unchanged (0.990–0.991, 0.983). Each slot is a copy of the tail in the page graph:
 * on WASM 32 slots cost more time than they saved (the default's time saving on 12 test laptop and desktop pages, two
 * alternating runs each: 16 → 25.0 / 29.6 %, 32 → 21.9 / 23.1 %), 24 did not (22.4 / 24.5 % → 22.7 / 26.0 %); on the
 * native backend 32 saved time (25.8 / 25.1 % → 29.7 / 26.7 %). Workers start 0.1–0.5 s later with 32 (a scratch script
 * for each).
 */
export const TAIL_SLOTS = 24;

/** One global average pool: its output, the map it averages, its level. */
export interface PooledVector {
  name: string;
  map: string;
  level: number;
  channels: number;
  /** The map's stride: input pixels per map position along each axis. */
  stride: number;
  /**
   * Where the map is made by a convolution of the model's tail (lib/onnx/tail.ts): the page graph sums the pool from
   * the convolution's input, made on the whole window.
   */
  conv?: PooledConv;
}

/** A convolution that keeps its input's size (lib/onnx/tail.ts `sameSizeConv`), as a page graph sums its output. */
export interface PooledConv {
  input: string;
  weight: string;
  bias?: string;
  /** Its kernel's [out channels, in channels, height, width]. */
  kernel: number[];
}

/** A model with global average pools, cut in levels (see the module's comment). */
export interface LevelGraphs {
  /** The model's image input and its (first) output. */
  input: string;
  output: string;
  pools: PooledVector[];
  /** Number of levels of pooled vectors. */
  levels: number;
  /** What a page graph (lib/onnx/page.ts) is spliced from. */
  page: PageParts;
  /**
   * The model's tail (lib/onnx/tail.ts): px of image around a window's core it runs on (0: no tail, every node runs on
   * the whole window), the maps it crops to that region, and how many regions per window a page graph runs it on.
   */
  tail: { halo: number; cuts: TailCut[]; slots: number };
}

/** Encoded nodes, each with the level it belongs to (and, per window, whether it runs on the tail's region). */
export interface LevelNodes {
  nodes: Uint8Array[];
  level: number[];
  tail?: boolean[];
}

/**
 * The raw pieces of a model's page graph: its header and initializers; the nodes computable from weights alone (once
 * per page graph); the nodes that run per window (every other node but the pools, at the level they run); the blank
 * graphs' nodes of all levels (convolutions' kernels summed, without the weights-only nodes).
 */
export interface PageParts extends ModelParts {
  shared: Uint8Array[];
  window: LevelNodes;
  blank: LevelNodes;
  /**
   * The blank graph on a strip of blank page across a border ([rows, columns]): a 1-row strip (convolutions' kernels
   * summed over their height, padding across kept) and a 1-column one. Their maps are the blank page's next to its
   * left and right (top and bottom) border, where the whole image's convolutions pad with zeros
   * (lib/onnx/page.ts `STRIP`).
   */
  strips: [LevelNodes, LevelNodes];
}

/** Ops the blank graph may hold: on a constant input each gives a constant output at any spatial size. */
const BLANK_OPS = new Set([
  "Add",
  "BatchNormalization",
  "Clip",
  "Concat",
  "Constant",
  "Conv",
  "Div",
  "HardSigmoid",
  "HardSwish",
  "Identity",
  "LeakyRelu",
  "Mul",
  "Relu",
  "Resize",
  "Sigmoid",
  "Sub",
  "Tanh",
  "Upsample",
]);

/** Why a model cannot be run level by level. */
export class LevelGraphError extends Error {}

/**
 * Cuts a model in levels and builds its blank graph; null when the model has no global average pool.
 *
 * @example
 * ```ts ignore
 * const g = levelGraphs(await Deno.readFile("det.onnx"));
 * g?.levels; // 4 for PP-OCRv4's detector
 * ```
 * @throws {LevelGraphError} when the model has pools but a node the blank graph cannot hold.
 */
export function levelGraphs(bytes: Uint8Array): LevelGraphs | null {
  const model = decodeModel(bytes);
  const g = model.graph;
  const gapIdx = g.nodes.flatMap((n, i) => (n.opType === "GlobalAveragePool" ? [i] : []));
  if (!gapIdx.length) return null;

  let raw: RawModel;
  try {
    raw = new RawModel(bytes, model);
  } catch (err) {
    throw new LevelGraphError((err as Error).message);
  }
  const { producer, initIdx } = raw;
  const graphInputs = g.inputs.map((v) => v.name).filter((n) => !initIdx.has(n));
  const isGap = new Set(gapIdx);

  // Static: computable from weights alone (initializers, Constants and nodes of them only); once in a page graph,
  // shared by its windows.
  const staticMemo = new Map<number, boolean>();
  const isStaticTensor = (t: string): boolean => {
    if (initIdx.has(t)) return true;
    const p = producer.get(t);
    return p !== undefined && isStaticNode(p);
  };
  const isStaticNode = (i: number): boolean => {
    let v = staticMemo.get(i);
    if (v === undefined) {
      staticMemo.set(i, false);
      v = !isGap.has(i) && g.nodes[i].inputs.every((t) => t === "" || isStaticTensor(t));
      staticMemo.set(i, v);
    }
    return v;
  };

  // Level of each node: the first at which all its inputs exist (a level-L pooled vector exists from L + 1 on).
  const levelMemo = new Map<number, number>();
  const availability = (t: string): number => {
    if (t === "" || isStaticTensor(t)) return 0;
    const p = producer.get(t);
    if (p === undefined) return 0; // a graph input
    return isGap.has(p) ? levelOf(p) + 1 : levelOf(p);
  };
  const levelOf = (i: number): number => {
    let s = levelMemo.get(i);
    if (s === undefined) {
      levelMemo.set(i, 0);
      // A pool's level is its map's.
      s = isGap.has(i) ? availability(g.nodes[i].inputs[0]) : Math.max(0, ...g.nodes[i].inputs.map(availability));
      levelMemo.set(i, s);
    }
    return s;
  };
  // Channels of each pooled vector, from the counter's shape walk at a small input.
  const declared = g.inputs.find((v) => v.name === graphInputs[0])?.dims ?? [];
  const probe = [1, typeof declared[1] === "number" ? declared[1] : 3, 128, 128];
  let shapes: Map<string, { shape: number[] }>;
  try {
    shapes = runGraph(planGraph(model), new Map([[graphInputs[0], { shape: probe, dtype: DataType.FLOAT }]]), false)
      .tensors;
  } catch (err) {
    throw new LevelGraphError(`cannot infer the pooled maps' shapes: ${(err as Error).message}`);
  }
  // A 4-D map's stride at the probe; 0 for a vector.
  const strideOf = (t: string): number | undefined => {
    const s = shapes.get(t)?.shape;
    if (s?.length !== 4) return undefined;
    return s[2] === 1 && s[3] === 1 ? 0 : probe[2] / s[2];
  };
  const runtime = g.nodes.map((_, i) => i).filter((i) => !isStaticNode(i) && !isGap.has(i));
  const tail = modelTail(g, new Set(runtime), (i) => isGap.has(i), producer, strideOf, TAIL_HALO);
  const pools: PooledVector[] = gapIdx.map((i) => {
    const map = g.nodes[i].inputs[0];
    const channels = shapes.get(map)?.shape[1];
    if (!channels) throw new LevelGraphError(`cannot infer the channels of ${map}`);
    const stride = probe[2] / shapes.get(map)!.shape[2];
    const p = producer.get(map)!, n = g.nodes[p];
    const conv = tail.pooled.has(p)
      ? {
        input: n.inputs[0],
        weight: n.inputs[1],
        kernel: shapes.get(n.inputs[1])!.shape,
        bias: n.inputs[2] || undefined,
      }
      : undefined;
    return { name: g.nodes[i].outputs[0], map, level: levelOf(i), channels, stride, ...(conv ? { conv } : {}) };
  });
  const levels = Math.max(...pools.map((p) => p.level)) + 1;

  // The level each node other than the pools runs at: the last it can (as late as its readers allow; a pooled map at
  // its pool's level). Run as early as possible, the detector's neck would also keep its large re-weighted maps alive
  // while the next level's pools wait for every window.
  const readers = new Map<string, number[]>();
  for (const i of runtime.concat(gapIdx)) {
    for (const t of g.nodes[i].inputs) (readers.get(t) ?? readers.set(t, []).get(t)!).push(i);
  }
  const latest = new Map<number, number>();
  const lateOf = (i: number): number => {
    let s = latest.get(i);
    if (s === undefined) {
      s = levels;
      for (const o of g.nodes[i].outputs) {
        for (const r of readers.get(o) ?? []) s = Math.min(s, isGap.has(r) ? levelOf(r) : lateOf(r));
      }
      latest.set(i, s);
    }
    return s;
  };
  const placed = (i: number) => Math.max(levelOf(i), lateOf(i));

  // The blank graph: every node the maps of the pools need, convolutions' kernels summed over space; a node belongs to
  // the first level whose maps need it.
  const blankNodes = (maps: string[]): number[] => {
    const need = new Set<number>();
    const stack = maps.slice();
    while (stack.length) {
      const t = stack.pop()!;
      const p = producer.get(t);
      if (p === undefined || need.has(p) || isGap.has(p)) continue;
      need.add(p);
      // A convolution reads its summed kernel instead of the original.
      stack.push(...g.nodes[p].inputs.filter((x, k) => x !== "" && !isKernel(g.nodes[p], k)));
    }
    const order = [...need].sort((a, b) => a - b);
    const bad = [...new Set(order.map((i) => g.nodes[i].opType).filter((op) => !BLANK_OPS.has(op)))];
    if (bad.length) throw new LevelGraphError(`the pooled maps depend on ops with edge effects: ${bad.join(", ")}`);
    return order;
  };
  const encodeBlank = (i: number, over: "space" | "rows" | "columns"): Uint8Array[] => {
    try {
      const op = g.nodes[i].opType;
      if (op === "Conv") return raw.summedConv(i, over);
      if (over !== "space" && op === "Resize") return raw.stripResize(i, over);
      return [raw.node(i)];
    } catch (err) {
      if (err instanceof SpliceError) throw new LevelGraphError(err.message);
      throw err;
    }
  };
  const levelMaps = (k: number) => pools.filter((p) => p.level === k).map((p) => p.map);
  const blankLevel = new Map<number, number>();
  for (let k = levels - 1; k >= 0; k--) for (const i of blankNodes(levelMaps(k))) blankLevel.set(i, k);
  const blankNodesOver = (over: "space" | "rows" | "columns"): LevelNodes => {
    const out: LevelNodes = { nodes: [], level: [] };
    for (const [i, k] of [...blankLevel].sort((a, b) => a[0] - b[0])) {
      if (isStaticNode(i)) continue;
      for (const n of encodeBlank(i, over)) {
        out.nodes.push(n);
        out.level.push(k);
      }
    }
    return out;
  };
  const page: PageParts = {
    ...raw.parts(g.nodes.map((_, i) => i)),
    shared: g.nodes.flatMap((_, i) => (isStaticNode(i) ? [raw.node(i)] : [])),
    window: {
      nodes: runtime.map((i) => raw.node(i)),
      level: runtime.map(placed),
      tail: runtime.map((i) => tail.nodes.has(i)),
    },
    blank: blankNodesOver("space"),
    strips: [blankNodesOver("rows"), blankNodesOver("columns")],
  };
  const tailPart = tail.nodes.size
    ? { halo: tail.halo, cuts: tail.cuts, slots: TAIL_SLOTS }
    : { halo: 0, cuts: [], slots: 1 };
  return { input: graphInputs[0], output: g.outputs[0].name, pools, levels, page, tail: tailPart };
}
