// Elementwise runs folded away in the graphs the workers load (lib/models.ts `workerModels`): the same function in
// fewer passes over the feature maps. The text detector (PP-OCRv4, exported by paddle2onnx) follows most convolutions
// with a scalar affine (Mul, Add: its learnable affine blocks) and spells every hard-swish as Add → Clip → Mul → Div;
// onnxruntime folds neither (with the Mul's operands swapped either, its outputs bit-identical: `.scratch/swapab.ts`),
// so each is a pass of its own over the map. Measured, the model alone on 640², interleaved: onnxruntime-node 0.86–0.87×
// the time on one thread, onnxruntime-web 0.96–0.97× (the same rewrite in Python, `.scratch/swapab.ts`); `fixed` text
// requests on two screenshots through the server's default pools, alternating processes: native 0.81–0.91×, WASM 0.94×
// (`.scratch/foldab.ts`). What a request costs is still counted on the model's own graph (lib/onnx/counter.ts): this is
// an execution detail, like the runtime's own fusions.
//
//   Conv(X, W, B) → Mul(·, s) → Add(·, b)   ⇒  Conv(X, s·W, s·B + b)     (s, b scalars; either step alone too)
//   Add(x, 3) → Clip(·, 0, 6) → Mul(x, ·) → Div(·, 6)   ⇒  HardSigmoid(x; 1/6, ½) → Mul(x, ·)
//
// Every folded tensor has exactly one reader, so no other node sees a value change. Float rounding differs from the
// unfolded graph in the last bits (a weight scaled before, not a sum after).

import { AttributeType, DataType, decodeModel, numel, type OnnxNode, type OnnxTensor, tensorValues } from "./proto.ts";
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

  g.nodes.forEach((conv, i) => {
    if (conv.opType !== "Conv" || conv.outputs.length !== 1) return;
    const w = constant(conv.inputs[1]), dims = raw.constant(conv.inputs[1])?.dims;
    const b = conv.inputs[2] ? constant(conv.inputs[2]) : [];
    const outChannels = dims?.[0] ?? 0;
    if (!w || !b || !dims || !outChannels || (b.length && b.length !== outChannels)) return;
    let scale = 1, shift = 0, last = conv.outputs[0];
    const folded: number[] = [];
    for (let step = only(last); step && (step.opType === "Mul" || step.opType === "Add"); step = only(last)) {
      const v = scalarWith(step, last);
      if (v === undefined) break;
      if (step.opType === "Mul") (scale *= v, shift *= v);
      else shift += v;
      folded.push(index.get(step)!);
      last = step.outputs[0];
    }
    if (!folded.length) return;
    const key = `${conv.inputs[1]}|${conv.inputs[2] ?? ""}|${scale}|${shift}`;
    let name = made.get(key);
    const out: Uint8Array[] = [];
    if (!name) {
      made.set(key, name = `${last}::folded`);
      const bias = Float32Array.from({ length: outChannels }, (_, o) => (b.length ? b[o] : 0) * scale + shift);
      out.push(
        constantNode(`${name}_w`, dims, w.map((x) => x * scale)),
        constantNode(`${name}_b`, [outChannels], bias),
      );
    }
    replace.set(i, [...out, withIo(raw.node(i), [conv.inputs[0], `${name}_w`, `${name}_b`], [last])]);
    folded.forEach((k) => skip.add(k));
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
