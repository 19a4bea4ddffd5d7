// ONNX models spliced at the protobuf level for lib/onnx/levels.ts and page.ts: a model's nodes and initializers are
// kept as the raw bytes of the file and copied into new models with at most their tensor names changed; only graph
// inputs and outputs, a convolution rewritten with its kernel summed over space, and the page graph's few nodes of
// its own are encoded new (lib/onnx/_wire.ts writers). Written here rather than
// with a protobuf library: nothing in the npm registry reads and writes ONNX without a generated schema of the whole
// format, and the edit needs six message types.

import { AttributeType, DataType, type OnnxModel, type OnnxNode, type OnnxTensor, tensorValues } from "./proto.ts";
import { concatBytes, lenField, payloadOf, type RawField, rawFields, varintField } from "./_wire.ts";

/** Raised when a model cannot be spliced or rewritten. */
export class SpliceError extends Error {}

/** A decoded model with the raw bytes of its nodes and initializers, in file order. */
export class RawModel {
  /** ModelProto fields other than the graph (IR version, opsets, producer). */
  readonly #header: Uint8Array[];
  readonly #graphName: Uint8Array[];
  readonly #nodes: Uint8Array[];
  readonly #inits: Uint8Array[];
  /** Node index producing each tensor; initializer index by name. */
  readonly producer = new Map<string, number>();
  readonly initIdx: Map<string, number>;

  constructor(bytes: Uint8Array, readonly model: OnnxModel) {
    const top = rawFields(bytes);
    const graph = rawFields(payloadOf(top.find((f) => f.field === 7)!));
    this.#header = top.filter((f) => f.field !== 7).map((f) => f.raw);
    this.#graphName = graph.filter((f) => f.field === 2).map((f) => f.raw);
    this.#nodes = graph.filter((f) => f.field === 1).map((f) => f.raw);
    this.#inits = graph.filter((f) => f.field === 5).map((f) => f.raw);
    const g = model.graph;
    if (this.#nodes.length !== g.nodes.length || this.#inits.length !== g.initializers.length) {
      throw new SpliceError("the graph's raw fields do not match its decoded nodes");
    }
    g.nodes.forEach((n, i) => n.outputs.forEach((o) => this.producer.set(o, i)));
    this.initIdx = new Map(g.initializers.map((t, i) => [t.name, i]));
  }

  /** This model's header, graph name, and the raw initializers the nodes of indices `readers` read. */
  parts(readers: number[]): ModelParts {
    const used = new Set<number>();
    for (const i of readers) {
      for (const t of this.model.graph.nodes[i].inputs) if (this.initIdx.has(t)) used.add(this.initIdx.get(t)!);
    }
    return {
      header: this.#header,
      graphName: this.#graphName,
      inits: [...used].sort((a, b) => a - b).map((i) => this.#inits[i]),
    };
  }

  /** Node `i`'s raw bytes. */
  node(i: number): Uint8Array {
    return this.#nodes[i];
  }

  /**
   * Conv node `i` as two encoded nodes: a Constant holding its kernel summed over space ([O, I/g, 1, 1]) and the
   * convolution reading it as a 1×1 one (stride 1, no padding; its group kept). With `over` "rows" the kernel is summed
   * over its height only ([O, I/g, 1, kw]: a 1-row strip's convolution, its padding, stride and dilation across kept),
   * with "columns" over its width only.
   */
  summedConv(i: number, over: "space" | "rows" | "columns" = "space"): [Uint8Array, Uint8Array] {
    const n = this.model.graph.nodes[i];
    const axes = over === "space" ? [2, 3] : over === "rows" ? [2] : [3];
    const { dims, values } = this.#summedKernel(n.inputs[1], axes);
    const name = `${n.outputs[0]}::summed_kernel${over === "space" ? "" : `_${over}`}`;
    const constant = constantNode(name, dims, values);
    const fields = rawFields(payloadOf({ field: 1, raw: this.#nodes[i] }));
    const kept = fields.filter((f) => f.field !== 1 && f.field !== 5).map((f) => f.raw);
    const group = fields.filter((f) => f.field === 5 && attrName(f) === "group").map((f) => f.raw);
    const inputs = n.inputs.map((t, j) => lenField(1, j === 1 ? name : t));
    const attrs = [...group, intsAttribute("kernel_shape", dims.slice(2))];
    if (over !== "space") {
      const ints = (a: string, fallback: number[]) => n.attributes.get(a)?.ints ?? fallback;
      const autoPad = n.attributes.get("auto_pad")?.s;
      if (autoPad?.length && new TextDecoder().decode(autoPad) !== "NOTSET") {
        throw new SpliceError(`conv ${n.outputs[0]} pads by auto_pad`);
      }
      // The kept axis: 0 for height (a column strip), 1 for width (a row strip).
      const k = over === "rows" ? 1 : 0, one = (v: number[]) => (k === 1 ? [1, v[1]] : [v[0], 1]);
      const [t, l, b, r] = ints("pads", [0, 0, 0, 0]);
      attrs.push(
        intsAttribute("strides", one(ints("strides", [1, 1]))),
        intsAttribute("dilations", one(ints("dilations", [1, 1]))),
        intsAttribute("pads", k === 1 ? [0, l, 0, r] : [t, 0, b, 0]),
      );
    }
    return [constant, lenField(1, [...inputs, ...kept, ...attrs])];
  }

  /**
   * Resize node `i` (scaling by constant `scales`) as two encoded nodes for a strip's blank graph: a Constant holding
   * its scales with the strip's constant axis (height for `over` "rows", width for "columns") kept at 1, and the node
   * reading it, so that the strip's maps stay one row (column) thick.
   */
  stripResize(i: number, over: "rows" | "columns"): [Uint8Array, Uint8Array] {
    const n = this.model.graph.nodes[i];
    const t = n.inputs[2] ? this.constant(n.inputs[2]) : undefined;
    const v = t && t.dataType === DataType.FLOAT ? tensorValues(t) : undefined;
    if (!v || v.length !== 4) throw new SpliceError(`resize ${n.outputs[0]} does not scale by 4 constant scales`);
    const scales = Float32Array.from(v);
    scales[over === "rows" ? 2 : 3] = 1;
    const name = `${n.outputs[0]}::scales_${over}`;
    let k = 0;
    const fields = rawFields(payloadOf({ field: 1, raw: this.#nodes[i] })).map((f) =>
      f.field === 1 && k++ === 2 ? lenField(1, name) : f.raw
    );
    return [constantNode(name, [4], scales), lenField(1, fields)];
  }

  /** The tensor a name holds when it is a constant: an initializer, or the value of a Constant node. */
  constant(name: string): OnnxTensor | undefined {
    const g = this.model.graph;
    const i = this.initIdx.get(name), p = this.producer.get(name);
    return i !== undefined
      ? g.initializers[i]
      : p !== undefined && g.nodes[p].opType === "Constant"
      ? g.nodes[p].attributes.get("value")?.t
      : undefined;
  }

  /** A float kernel (initializer or Constant) summed over `axes` of its spatial ones (2: height, 3: width). */
  #summedKernel(name: string, axes: number[]): { dims: number[]; values: Float32Array } {
    const t = this.constant(name);
    if (!t || t.dataType !== DataType.FLOAT) throw new SpliceError(`conv kernel ${name} is not a float constant`);
    const v = tensorValues(t);
    if (!v || t.dims.length !== 4) throw new SpliceError(`conv kernel ${name} cannot be read`);
    const [o, c, kh, kw] = t.dims;
    const oh = axes.includes(2) ? 1 : kh, ow = axes.includes(3) ? 1 : kw;
    // Summed in doubles, in the kernel's order, then rounded once.
    const sums = new Float64Array(o * c * oh * ow);
    for (let j = 0; j < o * c; j++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          sums[(j * oh + (oh === 1 ? 0 : y)) * ow + (ow === 1 ? 0 : x)] += v[(j * kh + y) * kw + x];
        }
      }
    }
    return { dims: [o, c, oh, ow], values: Float32Array.from(sums) };
  }
}

/** An encoded node (a GraphProto node field) of the default domain, named `name` (default: its first output). */
export function opNode(
  op: string,
  inputs: string[],
  outputs: string[],
  attributes: Uint8Array[] = [],
  name = outputs[0],
): Uint8Array {
  return lenField(1, [
    ...inputs.map((t) => lenField(1, t)),
    ...outputs.map((t) => lenField(2, t)),
    lenField(3, name),
    lenField(4, op),
    ...attributes,
  ]);
}

/** An encoded INT attribute. */
export function intAttribute(name: string, v: number): Uint8Array {
  return lenField(5, [lenField(1, name), varintField(3, v), varintField(20, AttributeType.INT)]);
}

/** An encoded INTS attribute. */
export function intsAttribute(name: string, v: number[]): Uint8Array {
  return lenField(5, [lenField(1, name), ...v.map((x) => varintField(8, x)), varintField(20, AttributeType.INTS)]);
}

/** An encoded FLOAT attribute. */
export function floatAttribute(name: string, v: number): Uint8Array {
  const f = new Uint8Array(5);
  f[0] = 2 * 8 + 5; // field 2, fixed32
  new DataView(f.buffer).setFloat32(1, v, true);
  return lenField(5, [lenField(1, name), f, varintField(20, AttributeType.FLOAT)]);
}

const ioDecoder = new TextDecoder();

/** The op type, inputs and outputs of an encoded node (a GraphProto node field). */
export function nodeIo(node: Uint8Array): { opType: string; inputs: string[]; outputs: string[] } {
  const out = { opType: "", inputs: [] as string[], outputs: [] as string[] };
  for (const f of rawFields(payloadOf({ field: 1, raw: node }))) {
    const s = () => ioDecoder.decode(payloadOf(f));
    if (f.field === 1) out.inputs.push(s());
    else if (f.field === 2) out.outputs.push(s());
    else if (f.field === 4) out.opType = s();
  }
  return out;
}

/**
 * An encoded node (a GraphProto node field) of op Constant holding a float or int64 tensor, named `name` as is its
 * output.
 */
export function constantNode(name: string, dims: number[], values: Float32Array | BigInt64Array): Uint8Array {
  const tensor = [
    ...dims.map((d) => varintField(1, d)),
    varintField(2, values instanceof Float32Array ? DataType.FLOAT : DataType.INT64),
    lenField(9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength)),
  ];
  const value = [lenField(1, "value"), lenField(5, tensor), varintField(20, AttributeType.TENSOR)];
  return lenField(1, [lenField(2, name), lenField(3, name), lenField(4, "Constant"), lenField(5, value)]);
}

/** Raw pieces of a model that new graphs are spliced from (structured-cloneable: they travel to the workers). */
export interface ModelParts {
  /** ModelProto fields other than the graph (IR version, opsets, producer). */
  header: Uint8Array[];
  graphName: Uint8Array[];
  /** Initializers, as raw GraphProto fields. */
  inits: Uint8Array[];
}

/**
 * A model of `parts` with a graph of the encoded `nodes` (in order) and these inputs and outputs (float tensors, but
 * the inputs named in `int64`).
 */
export function assemble(
  parts: ModelParts & { nodes: Uint8Array[] },
  io: { inputs: string[]; outputs: string[]; int64?: Set<string> },
): Uint8Array {
  const type = (t: string) => io.int64?.has(t) ? DataType.INT64 : DataType.FLOAT;
  const graph = [
    ...parts.nodes,
    ...parts.graphName,
    ...parts.inits,
    ...io.inputs.map((t) => lenField(11, valueInfo(t, type(t)))),
    ...io.outputs.map((t) => lenField(12, valueInfo(t))),
  ];
  return concatBytes([...parts.header, lenField(7, graph)]);
}

/** Whether node `n` is a convolution whose input `k` is its kernel. */
export const isKernel = (n: OnnxNode, k: number): boolean => n.opType === "Conv" && k === 1;

function attrName(f: RawField): string {
  const name = rawFields(payloadOf(f)).find((a) => a.field === 1);
  return name ? new TextDecoder().decode(payloadOf(name)) : "";
}

/** A tensor of any shape (the runtime infers shapes from the graph), float unless `type` says otherwise. */
function valueInfo(name: string, type: number = DataType.FLOAT): Uint8Array[] {
  return [lenField(1, name), lenField(2, [lenField(1, [varintField(1, type)])])];
}
