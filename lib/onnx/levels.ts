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
// Graphs are spliced at the protobuf level (lib/onnx/_wire.ts): nodes and initializers are copied as raw bytes; only
// inputs, outputs, rewritten convolutions and their summed kernels are encoded new. Written here rather than with a
// protobuf library: nothing in the npm registry reads and writes ONNX without a generated schema of the whole format,
// and the edit needs six message types.

import { AttributeType, DataType, decodeModel, type OnnxNode, tensorValues } from "./proto.ts";
import { planGraph, runGraph } from "./_infer.ts";
import { concatBytes, lenField, payloadOf, type RawField, rawFields, varintField } from "./_wire.ts";

/** One global average pool: its output (a graph input of later segments), the map it averages, its level. */
export interface PooledVector {
  name: string;
  map: string;
  level: number;
  channels: number;
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

  const top = rawFields(bytes);
  const graphField = top.find((f) => f.field === 7)!;
  const graphRaw = rawFields(payloadOf(graphField));
  const nodeRaw = graphRaw.filter((f) => f.field === 1).map((f) => f.raw);
  const initRaw = graphRaw.filter((f) => f.field === 5).map((f) => f.raw);
  if (nodeRaw.length !== g.nodes.length || initRaw.length !== g.initializers.length) {
    throw new LevelGraphError("the graph's raw fields do not match its decoded nodes");
  }
  const header = top.filter((f) => f.field !== 7).map((f) => f.raw);

  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
  const initIdx = new Map(g.initializers.map((t, i) => [t.name, i]));
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
    return { name: g.nodes[i].outputs[0], map: g.nodes[i].inputs[0], level: segOf(i), channels };
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
      bytes: encodeModel(header, graphRaw, nodeRaw, initRaw, g.nodes, nodes, inputs, outputs, initIdx),
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
  const summed = new Map<number, { constant: Uint8Array; conv: Uint8Array }>();
  const blankGraph = (maps: string[]): LevelSegment => {
    const need = new Set<number>();
    const stack = maps.slice();
    while (stack.length) {
      const t = stack.pop()!;
      const p = producer.get(t);
      if (p === undefined || need.has(p) || isGap.has(p)) continue;
      need.add(p);
      const n = g.nodes[p];
      // A convolution reads its summed kernel instead of the original.
      stack.push(...n.inputs.filter((x, k) => x !== "" && !(n.opType === "Conv" && k === 1)));
    }
    const order = [...need].sort((a, b) => a - b);
    const bad = [...new Set(order.map((i) => g.nodes[i].opType).filter((op) => !BLANK_OPS.has(op)))];
    if (bad.length) throw new LevelGraphError(`the pooled maps depend on ops with edge effects: ${bad.join(", ")}`);
    const nodes: Uint8Array[] = [];
    for (const i of order) {
      const n = g.nodes[i];
      if (n.opType !== "Conv") {
        nodes.push(nodeRaw[i]);
        continue;
      }
      let s = summed.get(i);
      if (!s) {
        const kernel = summedKernel(g, producer, initIdx, n.inputs[1]), name = `${n.outputs[0]}::summed_kernel`;
        s = { constant: constantNode(name, kernel.dims, kernel.values), conv: convAs1x1(nodeRaw[i], n, name) };
        summed.set(i, s);
      }
      nodes.push(s.constant, s.conv);
    }
    const reads = new Set(order.flatMap((i) => g.nodes[i].inputs));
    const inputs = [...graphInputs, ...pools.map((p) => p.name)].filter((t) => reads.has(t));
    const bytes = spliceModel(header, graphRaw, nodes, usedInitializers(g.nodes, order, initRaw, initIdx), {
      inputs,
      outputs: maps,
    });
    return { bytes, inputs, outputs: maps };
  };
  const blank = Array.from(
    { length: levels },
    (_, k) => blankGraph(pools.filter((p) => p.level === k).map((p) => p.map)),
  );
  return { input: graphInputs[0], output: graphOutputs[0], pools, levels, segments, lastUse, blank };
}

/**
 * The input shapes of level `k`'s blank graph on `colours` pixels of a `channels`-channel image: the pixels batched,
 * each pooled vector [1, C, 1, 1] (broadcast over the batch).
 */
export function blankShapes(g: LevelGraphs, k: number, colours: number, channels: number): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const name of g.blank[k].inputs) {
    const p = g.pools.find((q) => q.name === name);
    shapes[name] = p ? [1, p.channels, 1, 1] : [colours, channels, 1, 1];
  }
  return shapes;
}

/** A Conv node's kernel summed over its spatial axes: [O, I/g, 1, 1]. */
function summedKernel(
  g: ReturnType<typeof decodeModel>["graph"],
  producer: Map<string, number>,
  initIdx: Map<string, number>,
  name: string,
): { dims: number[]; values: Float32Array } {
  const i = initIdx.get(name);
  const p = producer.get(name);
  const t = i !== undefined
    ? g.initializers[i]
    : p !== undefined && g.nodes[p].opType === "Constant"
    ? g.nodes[p].attributes.get("value")?.t
    : undefined;
  if (!t || t.dataType !== DataType.FLOAT) throw new LevelGraphError(`conv kernel ${name} is not a float constant`);
  const v = tensorValues(t);
  if (!v || t.dims.length !== 4) throw new LevelGraphError(`conv kernel ${name} cannot be read`);
  const [o, c, kh, kw] = t.dims, k = kh * kw;
  const values = new Float32Array(o * c);
  for (let j = 0; j < o * c; j++) {
    let s = 0;
    for (let q = 0; q < k; q++) s += v[j * k + q];
    values[j] = s;
  }
  return { dims: [o, c, 1, 1], values };
}

/** A Constant node holding a float tensor. */
function constantNode(output: string, dims: number[], values: Float32Array): Uint8Array {
  const tensor = [
    ...dims.map((d) => varintField(1, d)),
    varintField(2, DataType.FLOAT),
    lenField(9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength)),
  ];
  const attr = [lenField(1, "value"), lenField(5, tensor), varintField(20, AttributeType.TENSOR)];
  return lenField(1, [lenField(2, output), lenField(3, output), lenField(4, "Constant"), lenField(5, attr)]);
}

/** A Conv node rewritten as a 1×1 convolution (stride 1, no padding) reading `kernel`; its group is kept. */
function convAs1x1(raw: Uint8Array, n: OnnxNode, kernel: string): Uint8Array {
  const fields = rawFields(payloadOf({ field: 1, raw }));
  const kept = fields.filter((f) => f.field !== 1 && f.field !== 5).map((f) => f.raw);
  const inputs = n.inputs.map((t, j) => lenField(1, j === 1 ? kernel : t));
  const group = fields.filter((f) => f.field === 5 && attrName(f) === "group").map((f) => f.raw);
  const kernelShape = lenField(5, [
    lenField(1, "kernel_shape"),
    varintField(8, 1),
    varintField(8, 1),
    varintField(20, AttributeType.INTS),
  ]);
  return lenField(1, [...inputs, ...kept, ...group, kernelShape]);
}

function attrName(f: RawField): string {
  const name = rawFields(payloadOf(f)).find((a) => a.field === 1);
  return name ? new TextDecoder().decode(payloadOf(name)) : "";
}

/** Initializers the nodes read. */
function usedInitializers(
  nodes: OnnxNode[],
  take: number[],
  initRaw: Uint8Array[],
  initIdx: Map<string, number>,
): Uint8Array[] {
  const used = new Set<number>();
  for (const i of take) for (const t of nodes[i].inputs) if (initIdx.has(t)) used.add(initIdx.get(t)!);
  return [...used].sort((a, b) => a - b).map((i) => initRaw[i]);
}

/** A segment's model: its runtime nodes plus the static nodes they need, in file order. */
function encodeModel(
  header: Uint8Array[],
  graphRaw: RawField[],
  nodeRaw: Uint8Array[],
  initRaw: Uint8Array[],
  nodes: OnnxNode[],
  runtime: number[],
  inputs: string[],
  outputs: string[],
  initIdx: Map<string, number>,
): Uint8Array {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
  const take = new Set(runtime);
  const stack = runtime.flatMap((i) => nodes[i].inputs);
  const have = new Set(inputs);
  while (stack.length) {
    const t = stack.pop()!;
    if (t === "" || have.has(t)) continue;
    have.add(t);
    const p = producer.get(t);
    if (p !== undefined && !take.has(p)) {
      take.add(p);
      stack.push(...nodes[p].inputs);
    }
  }
  const order = [...take].sort((a, b) => a - b);
  return spliceModel(header, graphRaw, order.map((i) => nodeRaw[i]), usedInitializers(nodes, order, initRaw, initIdx), {
    inputs,
    outputs,
  });
}

/** A model with the header of the original and a graph of these nodes, initializers, inputs and outputs. */
function spliceModel(
  header: Uint8Array[],
  graphRaw: RawField[],
  nodes: Uint8Array[],
  inits: Uint8Array[],
  io: { inputs: string[]; outputs: string[] },
): Uint8Array {
  const name = graphRaw.filter((f) => f.field === 2).map((f) => f.raw);
  const graph = [
    ...nodes,
    ...name,
    ...inits,
    ...io.inputs.map((t) => lenField(11, valueInfo(t))),
    ...io.outputs.map((t) => lenField(12, valueInfo(t))),
  ];
  return concatBytes([...header, lenField(7, graph)]);
}

/** A float tensor of any shape (the runtime infers shapes from the graph). */
function valueInfo(name: string): Uint8Array[] {
  return [lenField(1, name), lenField(2, [lenField(1, [varintField(1, DataType.FLOAT)])])];
}
