// Elementwise runs folded away in the graphs the workers load (lib/models.ts `workerModels`): the same function in
// fewer passes over the feature maps. The text detector (PP-OCRv4, exported by paddle2onnx) follows most convolutions
// with a scalar affine (Mul, Add: its learnable affine blocks), spells every hard-swish as Add → Clip → Mul → Div, and
// puts a learnable affine after each hard-swish too; onnxruntime folds none of these (with the Mul's operands swapped
// either, its outputs bit-identical: `.scratch/swapab.ts`), so each is a pass of its own over the map, and on
// onnxruntime-node two more: a scalar Mul or Add has no blocked-layout (NCHWc) kernel, so the map is reordered out of
// that layout and back around it. Measured, the model alone, interleaved (`.scratch/foldtime.ts`, `.scratch/swapab.ts`):
// onnxruntime-node 0.86–0.87× the time at 640² on one thread for the first two rules, and the last two then 0.86× at
// 1088×1920 (0.94× at 640²); onnxruntime-web 0.96–0.97× and 0.99×. What a request costs is still counted on the model's
// own graph (lib/onnx/counter.ts): this is an execution detail, like the runtime's own fusions.
//
//   Conv(X, W, B) → Mul(·, s) → Add(·, b)   ⇒  Conv(X, s·W, s·B + b)     (s, b scalars; either step alone too)
//   Add(x, 3) → Clip(·, 0, 6) → Mul(x, ·) → Div(·, 6)   ⇒  HardSigmoid(x; 1/6, ½) → Mul(x, ·)
//   Mul(x, s) → Add(·, b) → 1×1 Conv(·, W, B), unpadded   ⇒  Conv(x, s·W, B + b·ΣW)   (every reader such a Conv)
//   Mul(x, s) → Add(·, b) → any other Conv   ⇒  depthwise 1×1 Conv(x; s, b) → the Conv   (padding sees 0, not b)
//
// Every folded tensor has exactly one reader (or, in the third rule, only such readers), so no other node sees a value
// change. Float rounding differs from the unfolded graph in the last bits (a weight scaled before, not a sum after).

import {
  AttributeType,
  DataType,
  decodeModel,
  nodeInts,
  nodeText,
  numel,
  type OnnxNode,
  type OnnxTensor,
  tensorValues,
} from "./proto.ts";
import { constantNode, RawModel } from "./_splice.ts";
import { concatBytes, lenField, payloadOf, rawFields, varintField } from "./_wire.ts";

/**
 * `bytes` with the runs above folded, or `bytes` itself when the graph has none.
 *
 * @example
 * ```ts ignore
 * const session = await runtime.load(foldElementwise(modelBytes), threads);
 * ```
 */
export function foldElementwise(bytes: Uint8Array): Uint8Array {
  const model = decodeModel(bytes);
  const raw = new RawModel(bytes, model);
  const g = model.graph;
  const readers = new Map<string, number[]>();
  const reads = (t: string, i: number) => readers.has(t) ? readers.get(t)!.push(i) : readers.set(t, [i]);
  g.nodes.forEach((n, i) => n.inputs.forEach((t) => t && reads(t, i)));
  for (const o of g.outputs) reads(o.name, -1);
  const only = (t: string): OnnxNode | undefined => {
    const r = readers.get(t);
    return r?.length === 1 && r[0] >= 0 ? g.nodes[r[0]] : undefined;
  };
  const index = new Map(g.nodes.map((n, i) => [n, i]));
  const values = new Map<string, Float32Array | undefined>();
  const constant = (t: string): Float32Array | undefined => {
    if (values.has(t)) return values.get(t);
    const tensor = raw.constant(t);
    values.set(t, tensor && tensor.dataType === DataType.FLOAT ? floats(tensor) : undefined);
    return values.get(t);
  };
  /** The scalar operand of a binary node whose other operand is `t`. */
  const scalarWith = (n: OnnxNode, t: string): number | undefined => {
    if (n.inputs.length !== 2 || !n.inputs.includes(t) || n.inputs[0] === n.inputs[1]) return undefined;
    const v = constant(n.inputs[0] === t ? n.inputs[1] : n.inputs[0]);
    return v?.length === 1 ? v[0] : undefined;
  };

  const skip = new Set<number>();
  /** Folded kernels and biases by what they are made of: copies of one layer (a page graph's windows) share them. */
  const made = new Map<string, string>();
  /** Node index → its replacement, encoded (one or more nodes). */
  const replace = new Map<number, Uint8Array[]>();

  /**
   * A run of scalar Mul and Add steps on `t` (from `first`, or from `t`'s only reader), each the only reader of the
   * step before: the affine it makes.
   */
  const affineAfter = (t: string, first = only(t)) => {
    let scale = 1, shift = 0, last = t;
    const steps: number[] = [];
    for (let step = first; step && (step.opType === "Mul" || step.opType === "Add"); step = only(last)) {
      const v = scalarWith(step, last), k = index.get(step)!;
      if (v === undefined || skip.has(k) || replace.has(k)) break;
      if (step.opType === "Mul") (scale *= v, shift *= v);
      else shift += v;
      steps.push(k);
      last = step.outputs[0];
    }
    return { scale, shift, last, steps };
  };
  /** A Conv's float kernel and bias (an empty bias where it has none); undefined when they are not constants. */
  const kernelOf = (conv: OnnxNode) => {
    const w = constant(conv.inputs[1]), dims = raw.constant(conv.inputs[1])?.dims;
    const b = conv.inputs[2] ? constant(conv.inputs[2]) : new Float32Array();
    const outChannels = dims?.[0] ?? 0;
    if (conv.opType !== "Conv" || conv.outputs.length !== 1 || !w || !b || !dims || !outChannels) return undefined;
    return b.length && b.length !== outChannels ? undefined : { w, b, dims, outChannels };
  };
  const unpadded = (n: OnnxNode) =>
    nodeInts(n, "pads").every((p) => p === 0) && ["", "NOTSET", "VALID"].includes(nodeText(n, "auto_pad"));
  /** Per 1×1 convolution, the scalar affine of its input it takes in, and the tensor it then reads instead. */
  const inputAffine = new Map<number, { scale: number; shift: number; from: string }>();
  g.nodes.forEach((n, i) => {
    if ((n.opType !== "Mul" && n.opType !== "Add") || skip.has(i)) return;
    const x = n.inputs.find((t) => scalarWith(n, t) !== undefined);
    const p = x === undefined ? undefined : raw.producer.get(x);
    // A run starts at its first step; one right after a convolution folds into that convolution (below).
    const isStep = (k: number) =>
      ["Mul", "Add"].includes(g.nodes[k].opType) &&
      g.nodes[k].inputs.some((t) => scalarWith(g.nodes[k], t) !== undefined);
    if (x === undefined || (p !== undefined && (isStep(p) || kernelOf(g.nodes[p])))) return;
    const run = affineAfter(x, n), readBy = readers.get(run.last) ?? [];
    const convs = readBy.map((k) => g.nodes[k]);
    if (!run.steps.length || !readBy.length || readBy.some((k) => k < 0) || convs.some((c) => !kernelOf(c))) return;
    if (convs.some((c) => c.inputs[0] !== run.last)) return;
    if (convs.every((c) => kernelOf(c)!.dims.slice(2).every((k) => k === 1) && unpadded(c))) {
      readBy.forEach((k) => inputAffine.set(k, { scale: run.scale, shift: run.shift, from: x }));
      run.steps.forEach((k) => skip.add(k));
      return;
    }
    // Read by a padded convolution (zeros around s·x + t are not zeros around x): one depthwise 1×1 convolution.
    const channels = (convs[0].attributes.get("group")?.i ?? 1) * kernelOf(convs[0])!.dims[1];
    const name = `${run.last}::affine`;
    replace.set(run.steps[0], [
      constantNode(`${name}_w`, [channels, 1, 1, 1], new Float32Array(channels).fill(run.scale)),
      constantNode(`${name}_b`, [channels], new Float32Array(channels).fill(run.shift)),
      depthwise(name, [x, `${name}_w`, `${name}_b`], run.last, channels),
    ]);
    run.steps.slice(1).forEach((k) => skip.add(k));
  });

  g.nodes.forEach((conv, i) => {
    const kernel = kernelOf(conv);
    if (!kernel) return;
    const { w, b, dims, outChannels } = kernel;
    const before = inputAffine.get(i) ?? { scale: 1, shift: 0, from: conv.inputs[0] };
    const { scale, shift, last, steps } = affineAfter(conv.outputs[0]);
    if (!steps.length && !inputAffine.has(i)) return;
    const key = `${conv.inputs[1]}|${conv.inputs[2] ?? ""}|${before.scale}|${before.shift}|${scale}|${shift}`;
    let name = made.get(key);
    const out: Uint8Array[] = [];
    if (!name) {
      made.set(key, name = `${last}::folded`);
      const per = w.length / outChannels;
      const bias = Float32Array.from({ length: outChannels }, (_, o) => {
        let sum = 0;
        if (before.shift) { for (let k = o * per; k < (o + 1) * per; k++) sum += w[k]; }
        return ((b.length ? b[o] : 0) + before.shift * sum) * scale + shift;
      });
      out.push(
        constantNode(`${name}_w`, dims, w.map((x) => x * before.scale * scale)),
        constantNode(`${name}_b`, [outChannels], bias),
      );
    }
    replace.set(i, [...out, withIo(raw.node(i), [before.from, `${name}_w`, `${name}_b`], [last])]);
    steps.forEach((k) => skip.add(k));
  });

  g.nodes.forEach((clip, i) => {
    if (clip.opType !== "Clip" || skip.has(i) || clip.inputs.length !== 3) return;
    const add = raw.producer.get(clip.inputs[0]);
    if (add === undefined || skip.has(add) || g.nodes[add].opType !== "Add") return;
    const x = g.nodes[add].inputs.find((t) => scalarWith(g.nodes[add], t) === 3);
    const [lo, hi] = [constant(clip.inputs[1]), constant(clip.inputs[2])];
    if (!x || only(g.nodes[add].outputs[0]) !== clip || lo?.[0] !== 0 || hi?.[0] !== 6) return;
    const mul = only(clip.outputs[0]);
    if (!mul || mul.opType !== "Mul" || scalarWith(mul, clip.outputs[0]) !== undefined) return;
    if (!mul.inputs.includes(x) || mul.inputs.length !== 2) return;
    const div = only(mul.outputs[0]), six = div && constant(div.inputs[1]);
    if (!div || div.opType !== "Div" || div.inputs[0] !== mul.outputs[0] || six?.length !== 1 || six[0] !== 6) return;
    replace.set(add, [hardSigmoid(x, clip.outputs[0])]);
    replace.set(index.get(mul)!, [withIo(raw.node(index.get(mul)!), [x, clip.outputs[0]], [div.outputs[0]])]);
    skip.add(i).add(index.get(div)!);
  });

  if (!replace.size) return bytes;
  const nodes = g.nodes.flatMap((_, i) => skip.has(i) ? [] : replace.get(i) ?? [raw.node(i)]);
  // Constants and initializers the folded nodes read only are dropped with them.
  const read = new Set<string>(g.outputs.map((o) => o.name));
  const decoded = nodes.map((n) => decodeNodeIo(n));
  decoded.forEach((n) => n.inputs.forEach((t) => read.add(t)));
  const live = nodes.filter((_, k) => decoded[k].opType !== "Constant" || decoded[k].outputs.some((o) => read.has(o)));
  const top = rawFields(bytes);
  const graph = rawFields(payloadOf(top.find((f) => f.field === 7)!));
  const initNames = g.initializers.map((t) => t.name);
  const inits = graph.filter((f) => f.field === 5).filter((_, k) => read.has(initNames[k])).map((f) => f.raw);
  const rest = graph.filter((f) => f.field !== 1 && f.field !== 5 && f.field !== 13).map((f) => f.raw);
  return concatBytes([
    ...top.filter((f) => f.field !== 7).map((f) => f.raw),
    lenField(7, [...live, ...inits, ...rest]),
  ]);
}

/**
 * A float tensor's values, copied straight from its raw bytes where it has them (a kernel as JS numbers took the main
 * thread tens of MB to fold the text detector).
 */
function floats(t: OnnxTensor): Float32Array | undefined {
  if (t.rawData.length === 4 * numel(t.dims)) return new Float32Array(t.rawData.slice().buffer);
  const v = tensorValues(t);
  return v && Float32Array.from(v);
}

/** An encoded HardSigmoid node computing clip(x / 6 + ½, 0, 1). */
function hardSigmoid(x: string, out: string): Uint8Array {
  const attr = (name: string, v: number) =>
    lenField(5, [lenField(1, name), floatField(2, v), varintField(20, AttributeType.FLOAT)]);
  return lenField(1, [
    lenField(1, x),
    lenField(2, out),
    lenField(3, `${out}::hard_sigmoid`),
    lenField(4, "HardSigmoid"),
    attr("alpha", 1 / 6),
    attr("beta", 0.5),
  ]);
}

/** An encoded depthwise Conv node (its kernel's shape, from its weights, 1×1 here). */
function depthwise(name: string, inputs: string[], out: string, group: number): Uint8Array {
  return lenField(1, [
    ...inputs.map((t) => lenField(1, t)),
    lenField(2, out),
    lenField(3, name),
    lenField(4, "Conv"),
    lenField(5, [lenField(1, "group"), varintField(3, group), varintField(20, AttributeType.INT)]),
  ]);
}

/** A fixed32 float field. */
function floatField(field: number, v: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = field * 8 + 5;
  new DataView(out.buffer).setFloat32(1, v, true);
  return out;
}

/** A raw GraphProto node field with its inputs and outputs replaced (name, op, attributes and domain kept). */
function withIo(node: Uint8Array, inputs: string[], outputs: string[]): Uint8Array {
  const fields = rawFields(payloadOf({ field: 1, raw: node })).filter((f) => f.field !== 1 && f.field !== 2);
  return lenField(1, [
    ...inputs.map((t) => lenField(1, t)),
    ...outputs.map((t) => lenField(2, t)),
    ...fields.map((f) => f.raw),
  ]);
}

/** The op type, inputs and outputs of a raw GraphProto node field. */
function decodeNodeIo(node: Uint8Array): { opType: string; inputs: string[]; outputs: string[] } {
  const dec = new TextDecoder();
  const out = { opType: "", inputs: [] as string[], outputs: [] as string[] };
  for (const f of rawFields(payloadOf({ field: 1, raw: node }))) {
    const s = () => dec.decode(payloadOf(f));
    if (f.field === 1) out.inputs.push(s());
    else if (f.field === 2) out.outputs.push(s());
    else if (f.field === 4) out.opType = s();
  }
  return out;
}
