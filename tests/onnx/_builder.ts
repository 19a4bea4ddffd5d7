// A tiny ONNX encoder for tests: writes ModelProto bytes for small hand-built
// graphs so that expected shapes and costs can be computed by hand. It is the
// mirror of lib/onnx/proto.ts and deliberately shares no code with it, so a
// misread field number shows up as a failing test instead of cancelling out.

/** ONNX TensorProto.DataType values used in tests. */
export const T = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

/** A tensor for initializers and Constant attributes. */
export interface TensorSpec {
  dims: number[];
  dataType?: number;
  /** Omit for a weight whose contents do not matter (dims only, like a stripped model). */
  values?: number[];
  /** Write values into raw_data (default) or the typed repeated field. */
  encoding?: "raw" | "typed";
}

/**
 * Attribute values: integer → INT, string → STRING, number[] → INTS,
 * string[] → STRINGS, and explicit wrappers for floats and tensors.
 */
export type AttrValue =
  | number
  | string
  | number[]
  | string[]
  | { f: number }
  | { floats: number[] }
  | { t: TensorSpec };

class Writer {
  #bytes: number[] = [];

  varint(n: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(n));
    while (v >= 0x80n) {
      this.#bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#bytes.push(Number(v));
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  int(field: number, n: number): this {
    return this.tag(field, 0).varint(n);
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    for (const x of b) this.#bytes.push(x);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }

  float(field: number, f: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, f, true);
    this.tag(field, 5);
    for (const x of b) this.#bytes.push(x);
    return this;
  }

  packedVarints(field: number, ns: number[]): this {
    const inner = new Writer();
    for (const n of ns) inner.varint(int64(n));
    return this.message(field, inner);
  }

  packedFloats(field: number, fs: number[]): this {
    const b = new Uint8Array(4 * fs.length);
    const dv = new DataView(b.buffer);
    fs.forEach((f, i) => dv.setFloat32(4 * i, f, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    return new Uint8Array(this.#bytes);
  }
}

// 9223372036854775807 (INT64_MAX, the "to the end" sentinel) is not a double;
// it rounds up to 2^63, which would wrap to INT64_MIN. Saturate like exporters do.
function int64(x: number): bigint {
  const v = BigInt(x);
  const max = (1n << 63n) - 1n;
  return v > max ? max : v < -max - 1n ? -max - 1n : v;
}

function encodeTensor(name: string, spec: TensorSpec): Writer {
  const w = new Writer();
  const dataType = spec.dataType ?? T.FLOAT;
  // Unpacked dims on purpose: the decoder must accept both encodings.
  for (const d of spec.dims) w.int(1, d);
  w.int(2, dataType);
  if (name) w.string(8, name);
  const v = spec.values;
  if (!v) return w;
  if (spec.encoding === "typed") {
    if (dataType === T.FLOAT) w.packedFloats(4, v);
    else if (dataType === T.INT64) w.packedVarints(7, v);
    else w.packedVarints(5, v);
    return w;
  }
  const size = { [T.FLOAT]: 4, [T.INT64]: 8, [T.INT32]: 4, [T.UINT8]: 1, [T.BOOL]: 1, [T.DOUBLE]: 8 }[dataType];
  if (!size) throw new Error(`builder cannot write raw data of type ${dataType}`);
  const raw = new Uint8Array(size * v.length);
  const dv = new DataView(raw.buffer);
  v.forEach((x, i) => {
    if (dataType === T.FLOAT) dv.setFloat32(4 * i, x, true);
    else if (dataType === T.DOUBLE) dv.setFloat64(8 * i, x, true);
    else if (dataType === T.INT64) dv.setBigInt64(8 * i, int64(x), true);
    else if (dataType === T.INT32) dv.setInt32(4 * i, x, true);
    else dv.setUint8(i, x);
  });
  return w.bytes(9, raw);
}

function encodeAttribute(name: string, value: AttrValue): Writer {
  const w = new Writer().string(1, name);
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { f } for floats`);
    return w.int(3, value).int(20, 2);
  }
  if (typeof value === "string") return w.string(4, value).int(20, 3);
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === "string")) {
      for (const s of value as string[]) w.string(9, s);
      return w.int(20, 8);
    }
    return w.packedVarints(8, value as number[]).int(20, 7);
  }
  if ("f" in value) return w.float(2, value.f).int(20, 1);
  if ("floats" in value) return w.packedFloats(7, value.floats).int(20, 6);
  return w.message(5, encodeTensor("", value.t)).int(20, 4);
}

function encodeValueInfo(name: string, elemType: number, dims?: (number | string)[]): Writer {
  const w = new Writer().string(1, name);
  const tensorType = new Writer().int(1, elemType);
  if (dims) {
    const shape = new Writer();
    for (const d of dims) {
      const dim = typeof d === "number" ? new Writer().int(1, d) : new Writer().string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  return w.message(2, new Writer().message(1, tensorType));
}

/**
 * Builds a single-graph ONNX model.
 *
 * @example
 * ```ts
 * const bytes = new GraphBuilder({ opset: 13 })
 *   .input("x", [1, 3, 8, 8])
 *   .initializer("w", { dims: [4, 3, 3, 3] })
 *   .node("Conv", ["x", "w"], ["y"], { pads: [1, 1, 1, 1] })
 *   .output("y")
 *   .build();
 * ```
 */
export class GraphBuilder {
  readonly #opset: number;
  readonly #nodes: Writer[] = [];
  readonly #initializers: Writer[] = [];
  readonly #inputs: Writer[] = [];
  readonly #outputs: Writer[] = [];
  #count = 0;

  constructor(opts: { opset?: number } = {}) {
    this.#opset = opts.opset ?? 13;
  }

  /** A graph input; dims may be symbolic strings; omit dims for unknown rank. */
  input(name: string, dims?: (number | string)[], elemType: number = T.FLOAT): this {
    this.#inputs.push(encodeValueInfo(name, elemType, dims));
    return this;
  }

  output(name: string, dims?: (number | string)[], elemType: number = T.FLOAT): this {
    this.#outputs.push(encodeValueInfo(name, elemType, dims));
    return this;
  }

  initializer(name: string, spec: TensorSpec): this {
    this.#initializers.push(encodeTensor(name, spec));
    return this;
  }

  /** An int64 initializer with values (shape vectors, axes, pads ...). */
  ints(name: string, values: number[], dims: number[] = [values.length]): this {
    return this.initializer(name, { dims, dataType: T.INT64, values });
  }

  /** A float initializer with values (scales ...). */
  floats(name: string, values: number[], dims: number[] = [values.length]): this {
    return this.initializer(name, { dims, dataType: T.FLOAT, values });
  }

  node(
    op: string,
    inputs: string[],
    outputs: string[],
    attrs: Record<string, AttrValue> = {},
    opts: { name?: string; domain?: string } = {},
  ): this {
    const w = new Writer();
    for (const i of inputs) w.string(1, i);
    for (const o of outputs) w.string(2, o);
    w.string(3, opts.name ?? `${op}_${this.#count++}`);
    w.string(4, op);
    for (const [k, v] of Object.entries(attrs)) w.message(5, encodeAttribute(k, v));
    if (opts.domain) w.string(7, opts.domain);
    this.#nodes.push(w);
    return this;
  }

  build(): Uint8Array {
    const g = new Writer();
    for (const n of this.#nodes) g.message(1, n);
    g.string(2, "test");
    for (const t of this.#initializers) g.message(5, t);
    for (const i of this.#inputs) g.message(11, i);
    for (const o of this.#outputs) g.message(12, o);
    return new Writer()
      .int(1, 8)
      .string(2, "thriftseg-tests")
      .message(7, g)
      .message(8, new Writer().string(1, "").int(2, this.#opset))
      .finish();
  }
}
