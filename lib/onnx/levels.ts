// Level-synchronised pooling: the graphs a windowed plan needs so that every global average pool of a model (the
// squeeze-excitation blocks of the text detector) pools over the whole image while only some windows of it run.
//
// The pooled vectors fall in dependency levels (a level's vectors depend only on earlier levels'). The model is cut
// into one segment per level plus a last one: segment k computes, from the image or the tensors earlier segments left,
// everything that needs no pooled vector of level ≥ k — among it the feature maps the level-k pools average. Between
// segments the caller reduces those maps over all windows (and the blank page around them) into the level's vectors
// and feeds them to the later segments. Every node of the model runs once per window: the windows' FLOPs are those
// of the whole model at their shapes.
//
// The blank graph gives, for a 1×1 input of one colour, the value the feature maps take far inside a page of that
// colour under given pooled vectors: on a constant map a k×k convolution is a 1×1 one with the kernel summed over
// space (stride, padding and dilation only matter at the edges), so the model's graph up to the maps, with every Conv
// kernel summed, run on one pixel, gives it exactly.
//
// Graphs are spliced at the protobuf level (lib/onnx/_splice.ts): nodes and initializers are copied as raw bytes.

import { DataType, decodeModel } from "./proto.ts";
import { planGraph, runGraph } from "./_infer.ts";
import { isKernel, type ModelParts, RawModel, SpliceError } from "./_splice.ts";

/** One global average pool: its output (a graph input of later segments), the map it averages, its level. */
export interface PooledVector {
  name: string;
  map: string;
  level: number;
  channels: number;
  /** The map's stride: input pixels per map position along each axis. */
  stride: number;
}

/** One segment: ONNX bytes, its inputs (tensors of the model or pooled vectors) and outputs by name. */
export interface LevelSegment {
  bytes: Uint8Array;
  inputs: string[];
  outputs: string[];
}

/** The segments and the blank graph of a model with global average pools (see the module's comment). */
export interface LevelGraphs {
  /** The model's image input and its (first) output. */
  input: string;
  output: string;
  pools: PooledVector[];
  /** Number of levels; segments has one more. */
  levels: number;
  segments: LevelSegment[];
  /** Per segment: the tensors of earlier segments it is the last to use (the caller may drop them after it). */
  lastUse: string[][];
  /**
   * Per level, the summed-kernel graph of its maps: inputs the model's image input and the (earlier levels') pooled
   * vectors it reads, outputs the level's maps.
   */
  blank: LevelSegment[];
  /** What a page graph (lib/onnx/page.ts) is spliced from. */
  page: PageParts;
}

/** Encoded nodes, each with the level it belongs to. */
export interface LevelNodes {
  nodes: Uint8Array[];
  level: number[];
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
 * Cuts a model into level segments and builds its blank graph; null when the model has no global average pool.
 *
 * @example
 * ```ts ignore
 * const g = levelGraphs(await Deno.readFile("det.onnx"));
 * g?.segments.length; // 5 for PP-OCRv4's detector: 4 levels of pooled vectors
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

  // Static: computable from weights alone (initializers, Constants and nodes of them only); copied into every
  // segment that needs them instead of passed between segments.
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

  // Segment of each node: the first in which all its inputs exist (a level-L pooled vector exists from L + 1 on).
  const segMemo = new Map<number, number>();
  const availability = (t: string): number => {
    if (t === "" || isStaticTensor(t)) return 0;
    const p = producer.get(t);
    if (p === undefined) return 0; // a graph input
    return isGap.has(p) ? segOf(p) + 1 : segOf(p);
  };
  const segOf = (i: number): number => {
    let s = segMemo.get(i);
    if (s === undefined) {
      segMemo.set(i, 0);
      // A pool's level is its map's segment.
      s = isGap.has(i) ? availability(g.nodes[i].inputs[0]) : Math.max(0, ...g.nodes[i].inputs.map(availability));
      segMemo.set(i, s);
    }
    return s;
  };
  // Channels of each pooled vector, from the counter's shape walk at a small input.
  const declared = g.inputs.find((v) => v.name === graphInputs[0])?.dims ?? [];
  const probe = [1, typeof declared[1] === "number" ? declared[1] : 3, 64, 64];
  let shapes: Map<string, { shape: number[] }>;
  try {
    shapes = runGraph(planGraph(model), new Map([[graphInputs[0], { shape: probe, dtype: DataType.FLOAT }]]), false)
      .tensors;
  } catch (err) {
    throw new LevelGraphError(`cannot infer the pooled maps' shapes: ${(err as Error).message}`);
  }
  const pools: PooledVector[] = gapIdx.map((i) => {
    const channels = shapes.get(g.nodes[i].inputs[0])?.shape[1];
    if (!channels) throw new LevelGraphError(`cannot infer the channels of ${g.nodes[i].inputs[0]}`);
    const stride = probe[2] / shapes.get(g.nodes[i].inputs[0])!.shape[2];
    return { name: g.nodes[i].outputs[0], map: g.nodes[i].inputs[0], level: segOf(i), channels, stride };
  });
  const levels = Math.max(...pools.map((p) => p.level)) + 1;
  const poolNames = new Set(pools.map((p) => p.name));
  const graphOutputs = g.outputs.map((v) => v.name);

  // Runtime nodes per segment, and where each runtime tensor is consumed. A node runs in the last segment it can (as
  // late as its readers allow; a pooled map in its level's segment): what passes between segments is then the maps and
  // little else. Run as early as possible, the detector's neck would also pass its large re-weighted maps on (the
  // outputs a segment hands back are copied out of the runtime: on a 1920×1088 page 160 MB, +20 % time).
  const runtime = g.nodes.map((_, i) => i).filter((i) => !isStaticNode(i) && !isGap.has(i));
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
        for (const r of readers.get(o) ?? []) s = Math.min(s, isGap.has(r) ? segOf(r) : lateOf(r));
      }
      latest.set(i, s);
    }
    return s;
  };
  const placed = (i: number) => Math.max(segOf(i), lateOf(i));
  const consumers = new Map<string, Set<number>>(); // tensor → segments that read it (GAP maps: their level)
  const consume = (t: string, seg: number) => {
    if (t === "" || isStaticTensor(t)) return;
    (consumers.get(t) ?? consumers.set(t, new Set()).get(t)!).add(seg);
  };
  for (const i of runtime) for (const t of g.nodes[i].inputs) consume(t, placed(i));
  for (const p of pools) consume(p.map, p.level);
  const segments: LevelSegment[] = [];
  const lastUse: string[][] = Array.from({ length: levels + 1 }, () => []);
  for (const [t, segs] of consumers) {
    if (!poolNames.has(t)) lastUse[Math.max(...segs)].push(t);
  }
  for (let k = 0; k <= levels; k++) {
    const nodes = runtime.filter((i) => placed(i) === k);
    const produced = new Set(nodes.flatMap((i) => g.nodes[i].outputs));
    const inputs = [...new Set(nodes.flatMap((i) => g.nodes[i].inputs))]
      .filter((t) => t !== "" && !isStaticTensor(t) && !produced.has(t));
    const outputs = [...produced].filter((t) =>
      [...(consumers.get(t) ?? [])].some((s) => s > k) ||
      pools.some((p) => p.map === t) ||
      graphOutputs.includes(t)
    );
    segments.push({
      bytes: raw.closure(nodes, inputs, outputs),
      inputs,
      outputs,
    });
  }
  for (const p of pools) {
    if (!segments[p.level].outputs.includes(p.map)) {
      throw new LevelGraphError(`pooled map ${p.map} is not an output of segment ${p.level}`);
    }
  }

  // The blank graphs: per level, every node its maps need, convolutions' kernels summed over space.
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
  const encodeBlank = (i: number): Uint8Array[] => {
    try {
      return g.nodes[i].opType === "Conv" ? raw.summedConv(i) : [raw.node(i)];
    } catch (err) {
      if (err instanceof SpliceError) throw new LevelGraphError(err.message);
      throw err;
    }
  };
  const levelMaps = (k: number) => pools.filter((p) => p.level === k).map((p) => p.map);
  const blank = Array.from({ length: levels }, (_, k): LevelSegment => {
    const maps = levelMaps(k);
    const order = blankNodes(maps);
    const reads = new Set(order.flatMap((i) => g.nodes[i].inputs));
    const inputs = [...graphInputs, ...pools.map((p) => p.name)].filter((t) => reads.has(t));
    return { bytes: raw.splice(order.flatMap(encodeBlank), order, { inputs, outputs: maps }), inputs, outputs: maps };
  });

  // The page graph's parts: a blank node belongs to the first level whose maps need it.
  const blankLevel = new Map<number, number>();
  for (let k = levels - 1; k >= 0; k--) for (const i of blankNodes(levelMaps(k))) blankLevel.set(i, k);
  const pageBlank: LevelNodes = { nodes: [], level: [] };
  for (const [i, k] of [...blankLevel].sort((a, b) => a[0] - b[0])) {
    if (isStaticNode(i)) continue;
    for (const n of encodeBlank(i)) {
      pageBlank.nodes.push(n);
      pageBlank.level.push(k);
    }
  }
  const page: PageParts = {
    ...raw.parts(g.nodes.map((_, i) => i)),
    shared: g.nodes.flatMap((_, i) => (isStaticNode(i) ? [raw.node(i)] : [])),
    window: { nodes: runtime.map((i) => raw.node(i)), level: runtime.map(placed) },
    blank: pageBlank,
  };
  return { input: graphInputs[0], output: graphOutputs[0], pools, levels, segments, lastUse, blank, page };
}
