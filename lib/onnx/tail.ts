// The tail of a model: the nodes whose outputs, where a window's mask is written, need only a few pixels of the image
// around them. A window of a level-by-level plan (lib/onnx/page.ts) runs the rest of the model on the whole window, its
// wide halo included, and its tail on the window's core grown by `halo` px only: the page graph crops the maps that
// cross into the tail. The text detector's tail is its neck's and head's last stride-4 convolutions and the two
// transposed convolutions: 47.6 % of its FLOPs at 640² (computed in docs/EVAL.md's text section, `deno task eval`).
//
// How much of the image a node's output needs around the core (its *need*, in input pixels) runs backwards from the
// model's output (0): a reader that looks r px around each output position (a k×k convolution at input stride s:
// (k − 1) ÷ 2 · dilation · s) needs its inputs r px further out. A node is in the tail when its need plus its own
// reach stays within the halo: the core's outputs then come out of the tail exactly as out of the whole window. Ops
// whose reach is not known here (anything that mixes positions otherwise) reach without bound; a pool's reach is not
// counted (its vector is the same everywhere). A global average pool sums its map over the whole window (and the page
// around it), so a node whose output a pool reads stays out of the tail, unless it is a convolution that keeps the
// map's size (stride 1, one group, padded by half its kernel): the page graph then sums the pool from the
// convolution's input instead (its weighted sum over the window is the kernel applied to the input's weighted sums,
// shifted by each kernel position: lib/onnx/page.ts), and that input is made on the whole window.

import { nodeInts, nodeText, type OnnxGraph, type OnnxNode } from "./proto.ts";

/** Ops that map each output position from the same position of their inputs (per channel or across channels). */
const POINTWISE = new Set([
  "Abs",
  "Add",
  "BatchNormalization",
  "Cast",
  "Clip",
  "Div",
  "Exp",
  "HardSigmoid",
  "HardSwish",
  "Identity",
  "LeakyRelu",
  "Max",
  "Min",
  "Mul",
  "Neg",
  "PRelu",
  "Pow",
  "Relu",
  "Sigmoid",
  "Sqrt",
  "Sub",
  "Sum",
  "Tanh",
]);

/** A map the tail reads from the rest of the model: cropped to each window's tail region in the page graph. */
export interface TailCut {
  name: string;
  /** Input pixels per map position. */
  stride: number;
}

/** The tail of a model at one halo. */
export interface Tail {
  /** Px of image around the core the tail runs on. */
  halo: number;
  /** Indices (in the graph's node list) of the tail's nodes. */
  nodes: Set<number>;
  /** The maps it reads from the rest of the model. */
  cuts: TailCut[];
  /** Its convolutions whose outputs pools read (their inputs are made on the whole window). */
  pooled: Set<number>;
}

/**
 * The tail of `g` at `halo` px, among `runtime` nodes (those that run per window); empty when none qualifies.
 * `strideOf` gives a 4-D map's input pixels per position, 0 for a vector ([N, C, 1, 1]: read as it is, whatever its
 * region), undefined for anything else.
 */
export function modelTail(
  g: OnnxGraph,
  runtime: Set<number>,
  isPool: (i: number) => boolean,
  producer: Map<string, number>,
  strideOf: (t: string) => number | undefined,
  halo: number,
): Tail {
  const weights = new Set(g.initializers.map((w) => w.name));
  const readers = new Map<string, number[]>();
  g.nodes.forEach((n, i) => n.inputs.forEach((t) => (readers.get(t) ?? readers.set(t, []).get(t)!).push(i)));
  const output = g.outputs[0].name;
  // Need of each node's outputs, readers before writers.
  const need = new Map<number, number>();
  const needOf = (i: number): number => {
    let v = need.get(i);
    if (v !== undefined) return v;
    need.set(i, Infinity); // a cycle reaches without bound
    v = g.nodes[i].outputs.includes(output) ? 0 : -Infinity;
    for (const t of g.nodes[i].outputs) {
      for (const r of readers.get(t) ?? []) {
        v = Math.max(v, isPool(r) ? needOf(r) : needOf(r) + reach(g.nodes[r], strideOf, halo));
      }
    }
    need.set(i, v);
    return v;
  };
  const nodes = new Set(
    [...runtime].filter((i) => !isPool(i) && needOf(i) + reach(g.nodes[i], strideOf, halo) <= halo),
  );
  // What the tail reads from outside must be a pooled vector, a weight, or a map the crop can cut on its own grid (the
  // tail region's edges lie `halo` px off the cells' grid); a pool's map is made on the whole window, or the input of
  // the convolution that makes it is. A node that breaks a rule leaves the tail with every tail node it reads from;
  // the input of a pooled convolution leaves it the same way; until no rule is broken.
  const pooled = (i: number) => g.nodes[i].outputs.some((t) => (readers.get(t) ?? []).some(isPool));
  const leave = (i: number) => {
    const drop = [i];
    while (drop.length) {
      const k = drop.pop()!;
      if (!nodes.delete(k)) continue;
      for (const t of g.nodes[k].inputs) {
        const p = producer.get(t);
        if (p !== undefined && nodes.has(p)) drop.push(p);
      }
    }
  };
  const outside = (t: string) => {
    const p = producer.get(t);
    return p === undefined ? !weights.has(t) : !nodes.has(p) && runtime.has(p) && !isPool(p);
  };
  const croppable = (t: string) => {
    const s = strideOf(t);
    return s === 0 || (s !== undefined && halo % s === 0);
  };
  for (let changed = true; changed;) {
    changed = false;
    for (const i of nodes) {
      if (pooled(i)) {
        if (!sameSizeConv(g.nodes[i])) {
          leave(i);
          changed = true;
          continue;
        }
        const p = producer.get(g.nodes[i].inputs[0]);
        if (p !== undefined && nodes.has(p)) {
          leave(p);
          changed = true;
        }
      }
      if (g.nodes[i].inputs.every((t) => t === "" || !outside(t) || croppable(t))) continue;
      leave(i);
      changed = true;
    }
  }
  const cuts = new Map<string, number>();
  for (const i of nodes) {
    for (const t of g.nodes[i].inputs) if (t !== "" && outside(t) && strideOf(t)) cuts.set(t, strideOf(t)!);
  }
  const tailPooled = new Set([...nodes].filter(pooled));
  return { halo, nodes, cuts: [...cuts].map(([name, stride]) => ({ name, stride })), pooled: tailPooled };
}

/** A convolution whose output has its input's size and grid: stride 1, dilation 1, one group, padded by half its kernel. */
export function sameSizeConv(n: OnnxNode): boolean {
  if (n.opType !== "Conv" || (n.attributes.get("group")?.i ?? 1) !== 1) return false;
  const kernel = nodeInts(n, "kernel_shape"), pads = nodeInts(n, "pads"), autoPad = nodeText(n, "auto_pad");
  if (kernel.length !== 2 || (autoPad !== "" && autoPad !== "NOTSET")) return false;
  if (nodeInts(n, "strides").some((v) => v !== 1) || nodeInts(n, "dilations").some((v) => v !== 1)) return false;
  return kernel.every((k, a) => k % 2 === 1 && pads[a] === (k - 1) / 2 && pads[a + 2] === (k - 1) / 2);
}

/** How far around an output position a node reads its first input, in input pixels (Infinity when not known; 0 on a
 * vector), for regions whose edges lie `halo` px off a grid of the cells. */
function reach(n: OnnxNode, strideOf: (t: string) => number | undefined, halo: number): number {
  if (POINTWISE.has(n.opType)) return 0;
  if (n.opType === "Concat") return n.attributes.get("axis")?.i === 1 ? 0 : Infinity;
  const s = strideOf(n.inputs[0]);
  if (s === undefined) return Infinity;
  if (s === 0) return 0;
  const kernel = nodeInts(n, "kernel_shape");
  const dilation = Math.max(1, ...nodeInts(n, "dilations"));
  switch (n.opType) {
    case "Conv":
    case "MaxPool":
    case "AveragePool":
      if (!kernel.length) return Infinity;
      return Math.ceil(((Math.max(...kernel) - 1) / 2) * dilation) * s;
    case "ConvTranspose": {
      // Output o reads inputs i with i · stride + k · dilation = o + pad: within ⌈(kernel − 1) · dilation ÷ stride⌉
      // inputs of ⌊o ÷ stride⌋, counted from both sides. With a kernel no larger than the stride, no padding and no
      // dilation, o reads input ⌊o ÷ stride⌋ alone (the text detector's head: 2×2 at stride 2): a region whose edges
      // lie on the input's grid (the tail's do, `modelTail`) gets there exactly what the whole map gives.
      const stride = Math.max(1, ...nodeInts(n, "strides"));
      if (!kernel.length) return Infinity;
      const unpadded = nodeInts(n, "pads").every((p) => p === 0) && nodeInts(n, "output_padding").every((p) => !p);
      if (Math.max(...kernel) <= stride && dilation === 1 && unpadded && halo % s === 0) return 0;
      return Math.max(1, Math.ceil(((Math.max(...kernel) - 1) * dilation) / stride)) * s;
    }
    case "Resize":
    case "Upsample": {
      return (nodeText(n, "mode") === "cubic" ? 2 : 1) * s;
    }
    default:
      return Infinity;
  }
}
