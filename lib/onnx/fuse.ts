// Elementwise runs folded away in the graphs the workers load (lib/models.ts `workerModels`): the same function in
// fewer passes over the feature maps. The text detector (PP-OCRv4, exported by paddle2onnx) follows most convolutions
// with a scalar affine (Mul, Add: its learnable affine blocks), spells every hard-swish as Add → Clip → Mul → Div, puts
// a learnable affine after each hard-swish too, adds its head's biases and batch norms after transposed convolutions
// and writes its squeeze-excitation residuals as x + x·v; onnxruntime folds none of these (with the Mul's operands
// swapped either, its outputs bit-identical: `.scratch/swapab.ts`), so each is a pass of its own over the map, and on
// onnxruntime-node two more around a scalar Mul or Add, which has no blocked-layout (NCHWc) kernel: the map is
// reordered out of that layout and back. Measured, the model alone, interleaved (`.scratch/swapab.ts`,
// `.scratch/foldtime.ts`): the first two rules 0.86–0.87× the time at 640² on one thread natively, 0.96–0.97× on
// onnxruntime-web; the next two then 0.86× at 1088×1920 (0.94× at 640²) natively, 0.99× on the web; the last two then
// 0.95× (0.97×) natively, 0.98× on the web. What a request costs is still counted on the model's own graph
// (lib/onnx/counter.ts): this is an execution detail, like the runtime's own fusions.
//
//   Conv(X, W, B) → Mul(·, s) → Add(·, b)   ⇒  Conv(X, s·W, s·B + b)     (s, b scalars; either step alone too)
//   Add(x, 3) → Clip(·, 0, 6) → Mul(x, ·) → Div(·, 6)   ⇒  HardSigmoid(x; 1/6, ½) → Mul(x, ·)
//   Mul(x, s) → Add(·, b) → 1×1 Conv(·, W, B), unpadded   ⇒  Conv(x, s·W, B + b·ΣW)   (every reader such a Conv)
//   Mul(x, s) → Add(·, b) → any other Conv   ⇒  depthwise 1×1 Conv(x; s, b) → the Conv   (padding sees 0, not b)
//   ConvTranspose or Conv → Mul, Add by one value per channel, BatchNormalization   ⇒  the convolution, rescaled
//   Add(x, Mul(x, v))   ⇒  Mul(x, Add(v, 1))
//
// Every folded tensor has exactly one reader (or, in the third rule, only such readers), so no other node sees a value
// change. Float rounding differs from the unfolded graph in the last bits (a weight scaled before, not a sum after).

import {
  DataType,
  decodeModel,
  nodeInts,
  nodeText,
  numel,
  type OnnxNode,
  type OnnxTensor,
  tensorValues,
} from "./proto.ts";
import { constantNode, floatAttribute, intAttribute, nodeIo, opNode, RawModel } from "./_splice.ts";
import { concatBytes, lenField, payloadOf, rawFields } from "./_wire.ts";

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
    const v = channelsWith(n, t);
    return v?.length === 1 ? v[0] : undefined;
  };
  /**
   * The constant operand of a binary node whose other operand is `t`, when it is one value for all of a 4-D map or
   * one per channel ([1, C, 1, 1] or [C, 1, 1]).
   */
  const channelsWith = (n: OnnxNode, t: string): Float32Array | undefined => {
    if (n.inputs.length !== 2 || !n.inputs.includes(t) || n.inputs[0] === n.inputs[1]) return undefined;
    const other = n.inputs[0] === t ? n.inputs[1] : n.inputs[0];
    const v = constant(other), dims = raw.constant(other)?.dims ?? [];
    const perChannel = (dims.length === 4 && dims[0] === 1 || dims.length === 3) &&
      dims.slice(-2).every((d) => d === 1);
    return v && (v.length === 1 || perChannel) ? v : undefined;
  };
  /** An inference BatchNormalization reading `t` as the per-channel affine it is: [scale, shift]. */
  const batchNorm = (n: OnnxNode, t: string): [Float32Array, Float32Array] | undefined => {
    if (n.opType !== "BatchNormalization" || n.inputs[0] !== t || n.outputs.length !== 1) return undefined;
    const [gamma, beta, mean, variance] = n.inputs.slice(1).map(constant);
    if (!gamma || !beta || !mean || !variance) return undefined;
    const eps = n.attributes.get("epsilon")?.f ?? 1e-5;
    const scale = gamma.map((v, c) => v / Math.sqrt(variance[c] + eps));
    return [scale, beta.map((v, c) => v - mean[c] * scale[c])];
  };

  /** Channel `c` of a per-channel value (length 1: the same for every channel). */
  const at = (x: Float32Array, c: number) => x[x.length > 1 ? c : 0];
  /** A Mul or Add by a scalar constant. */
  const isStep = (k: number) =>
    ["Mul", "Add"].includes(g.nodes[k].opType) &&
    g.nodes[k].inputs.some((t) => scalarWith(g.nodes[k], t) !== undefined);

  const skip = new Set<number>();
  /** Folded kernels and biases by what they are made of: copies of one layer (a page graph's windows) share them. */
  const made = new Map<string, string>();
  /** Node index → its replacement, encoded (one or more nodes). */
  const replace = new Map<number, Uint8Array[]>();

  /**
   * A run of Mul, Add (by a scalar, or by one value per channel where `perChannel`) and BatchNormalization steps on
   * `t` (from `first`, or from `t`'s only reader), each the only reader of the step before: the affine it makes, per
   * channel (length 1: the same for every channel).
   */
  const affineAfter = (t: string, perChannel: boolean, first = only(t)) => {
    let scale = Float32Array.of(1), shift = Float32Array.of(0), last = t;
    const steps: number[] = [];
    for (let step = first; step; step = only(last)) {
      const k = index.get(step)!;
      if (skip.has(k) || replace.has(k)) break;
      const bn = perChannel ? batchNorm(step, last) : undefined;
      const v = bn || step.opType !== "Mul" && step.opType !== "Add" ? undefined : channelsWith(step, last);
      if (!bn && (!v || (!perChannel && v.length !== 1))) break;
      const [s, b] = bn ?? (step.opType === "Mul" ? [v!, Float32Array.of(0)] : [Float32Array.of(1), v!]);
      const n = Math.max(scale.length, s.length, b.length);
      if ([scale, s, b].some((x) => x.length !== 1 && x.length !== n)) break;
      [scale, shift] = [
        Float32Array.from({ length: n }, (_, c) => at(scale, c) * at(s, c)),
        Float32Array.from({ length: n }, (_, c) => at(shift, c) * at(s, c) + at(b, c)),
      ];
      steps.push(k);
      last = step.outputs[0];
    }
    return { scale, shift, last, steps };
  };
  /**
   * A Conv's or (one group) ConvTranspose's float kernel and bias (empty where it has none), and the output channel
   * of each kernel value; undefined when they are not constants.
   */
  const kernelOf = (conv: OnnxNode) => {
    const w = constant(conv.inputs[1]), dims = raw.constant(conv.inputs[1])?.dims;
    const b = conv.inputs[2] ? constant(conv.inputs[2]) : new Float32Array();
    if (conv.outputs.length !== 1 || !w || !b || dims?.length !== 4) return undefined;
    const transposed = conv.opType === "ConvTranspose";
    if (!transposed && conv.opType !== "Conv") return undefined;
    if (transposed && (conv.attributes.get("group")?.i ?? 1) !== 1) return undefined;
    // Conv: [out, in ÷ group, h, w]; ConvTranspose: [in, out, h, w].
    const outChannels = transposed ? dims[1] : dims[0], area = dims[2] * dims[3];
    const channelOf = (k: number) =>
      transposed ? Math.floor(k / area) % outChannels : Math.floor(k / (w.length / outChannels));
    return !outChannels || (b.length && b.length !== outChannels) ? undefined : { w, b, dims, outChannels, channelOf };
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
    if (x === undefined || (p !== undefined && (isStep(p) || kernelOf(g.nodes[p])))) return;
    const run = affineAfter(x, false, n), readBy = readers.get(run.last) ?? [];
    const [scale, shift] = [run.scale[0], run.shift[0]];
    const convs = readBy.map((k) => g.nodes[k]);
    if (!run.steps.length || !readBy.length || readBy.some((k) => k < 0)) return;
    if (convs.some((c) => c.opType !== "Conv" || !kernelOf(c) || c.inputs[0] !== run.last)) return;
    if (convs.every((c) => kernelOf(c)!.dims.slice(2).every((k) => k === 1) && unpadded(c))) {
      readBy.forEach((k) => inputAffine.set(k, { scale, shift, from: x }));
      run.steps.forEach((k) => skip.add(k));
      return;
    }
    // Read by a padded convolution (zeros around s·x + t are not zeros around x): one depthwise 1×1 convolution.
    const channels = (convs[0].attributes.get("group")?.i ?? 1) * kernelOf(convs[0])!.dims[1];
    const name = `${run.last}::affine`;
    replace.set(run.steps[0], [
      constantNode(`${name}_w`, [channels, 1, 1, 1], new Float32Array(channels).fill(scale)),
      constantNode(`${name}_b`, [channels], new Float32Array(channels).fill(shift)),
      opNode("Conv", [x, `${name}_w`, `${name}_b`], [run.last], [intAttribute("group", channels)], name),
    ]);
    run.steps.slice(1).forEach((k) => skip.add(k));
  });

  g.nodes.forEach((conv, i) => {
    const kernel = kernelOf(conv);
    if (!kernel) return;
    const { w, b, dims, outChannels, channelOf } = kernel;
    const before = inputAffine.get(i) ?? { scale: 1, shift: 0, from: conv.inputs[0] };
    let { scale, shift, last, steps } = affineAfter(conv.outputs[0], true);
    // An affine with another channel count stays (the input's affine, taken in already, still folds).
    if (scale.length !== 1 && scale.length !== outChannels) {
      [scale, shift, last, steps] = [Float32Array.of(1), Float32Array.of(0), conv.outputs[0], []];
    }
    if (!steps.length && !inputAffine.has(i)) return;
    const key = `${conv.inputs[1]}|${conv.inputs[2] ?? ""}|${before.scale}|${before.shift}|${scale}|${shift}`;
    let name = made.get(key);
    const out: Uint8Array[] = [];
    if (!name) {
      made.set(key, name = `${last}::folded`);
      const sums = new Float64Array(outChannels);
      if (before.shift) w.forEach((v, k) => sums[channelOf(k)] += v);
      const bias = Float32Array.from(
        { length: outChannels },
        (_, o) => ((b.length ? b[o] : 0) + before.shift * sums[o]) * at(scale, o) + at(shift, o),
      );
      out.push(
        constantNode(`${name}_w`, dims, w.map((x, k) => x * before.scale * at(scale, channelOf(k)))),
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
    const hardSigmoid = [floatAttribute("alpha", 1 / 6), floatAttribute("beta", 0.5)];
    replace.set(add, [opNode("HardSigmoid", [x], [clip.outputs[0]], hardSigmoid, `${clip.outputs[0]}::hard_sigmoid`)]);
    replace.set(index.get(mul)!, [withIo(raw.node(index.get(mul)!), [x, clip.outputs[0]], [div.outputs[0]])]);
    skip.add(i).add(index.get(div)!);
  });

  // A residual of a re-weighted map (the squeeze-excitation blocks): x + x·v = x·(1 + v), one pass over the map less.
  g.nodes.forEach((add, i) => {
    if (add.opType !== "Add" || skip.has(i) || replace.has(i) || add.inputs.length !== 2) return;
    for (const [x, other] of [add.inputs, [...add.inputs].reverse()]) {
      const m = raw.producer.get(other), mul = m === undefined ? undefined : g.nodes[m];
      if (!mul || mul.opType !== "Mul" || skip.has(m!) || replace.has(m!) || only(other) !== add) continue;
      if (mul.inputs.length !== 2 || mul.inputs[0] === mul.inputs[1] || !mul.inputs.includes(x)) continue;
      const v = mul.inputs.find((t) => t !== x)!, name = `${add.outputs[0]}::plus_one`;
      replace.set(m!, [
        constantNode(`${name}_1`, [], Float32Array.of(1)),
        opNode("Add", [v, `${name}_1`], [name]),
        withIo(raw.node(m!), [x, name], [add.outputs[0]]),
      ]);
      skip.add(i);
      return;
    }
  });

  if (!replace.size) return bytes;
  const nodes = g.nodes.flatMap((_, i) => skip.has(i) ? [] : replace.get(i) ?? [raw.node(i)]);
  // Constants and initializers the folded nodes read only are dropped with them.
  const read = new Set<string>(g.outputs.map((o) => o.name));
  const decoded = nodes.map(nodeIo);
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

/** A raw GraphProto node field with its inputs and outputs replaced (name, op, attributes and domain kept). */
function withIo(node: Uint8Array, inputs: string[], outputs: string[]): Uint8Array {
  const fields = rawFields(payloadOf({ field: 1, raw: node })).filter((f) => f.field !== 1 && f.field !== 2);
  return lenField(1, [
    ...inputs.map((t) => lenField(1, t)),
    ...outputs.map((t) => lenField(2, t)),
    ...fields.map((f) => f.raw),
  ]);
}
