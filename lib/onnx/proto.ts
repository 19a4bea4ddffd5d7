// Decoding of ONNX model files (protobuf) into plain objects. Only the
// messages a cost counter needs are read: the graph, its nodes, attributes,
// tensors (dims always, contents on request) and declared input/output types.
// Tensor payloads stay as views into the input bytes, so decoding a model with
// megabytes of weights copies none of them. Field numbers follow onnx.proto
// (onnx/onnx, IR version 3-10); unknown fields are skipped, as protobuf requires.

import { WIRE_FIXED32, WireError, WireReader } from "./_wire.ts";

/** Thrown when bytes cannot be decoded as an ONNX ModelProto. */
export class OnnxDecodeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OnnxDecodeError";
  }
}

/** ONNX TensorProto.DataType values used by the counter. */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
} as const;

/** ONNX AttributeProto.AttributeType values. */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

/** A TensorProto: dims and type always; contents in whichever field was used. */
export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian contents (view into the model bytes); empty if unused. */
  rawData: Uint8Array;
  floatData: number[];
  int32Data: number[];
  int64Data: number[];
  doubleData: number[];
  uint64Data: number[];
  /** True when the payload lives in an external file (not supported here). */
  external: boolean;
}

/** One NodeProto attribute; only the field matching `type` is meaningful. */
export interface OnnxAttribute {
  name: string;
  type: number;
  f: number;
  i: number;
  s: Uint8Array;
  t?: OnnxTensor;
  g?: OnnxGraph;
  floats: number[];
  ints: number[];
  strings: Uint8Array[];
  tensors: OnnxTensor[];
  graphs: OnnxGraph[];
}

/** A NodeProto. Omitted optional inputs are empty strings, as in the file. */
export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

/** A declared graph input/output: element type and dims if it is a tensor. */
export interface OnnxValueInfo {
  name: string;
  elemType: number;
  /** dim_value as number, dim_param as string, "?" when neither; undefined if rank unknown. */
  dims?: (number | string)[];
}

/** A GraphProto. */
export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  valueInfo: OnnxValueInfo[];
}

/** A ModelProto. */
export interface OnnxModel {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  opsetImport: { domain: string; version: number }[];
  graph: OnnxGraph;
}

/**
 * Decodes an ONNX model file.
 *
 * @example
 * ```ts
 * const model = decodeModel(await Deno.readFile("model.onnx"));
 * console.log(model.graph.nodes.length, model.opsetImport);
 * ```
 * @throws {OnnxDecodeError} when the bytes are not an ONNX model.
 */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new OnnxDecodeError("not an ONNX model: no bytes");
  }
  let model: OnnxModel | undefined;
  try {
    model = readModel(new WireReader(bytes));
  } catch (e) {
    if (e instanceof WireError) {
      throw new OnnxDecodeError(`not an ONNX model: ${e.message}`, { cause: e });
    }
    throw e;
  }
  if (!model) throw new OnnxDecodeError("not an ONNX model: it has no graph");
  return model;
}

function readModel(r: WireReader): OnnxModel | undefined {
  let irVersion = 0;
  let producerName = "";
  let producerVersion = "";
  const opsetImport: { domain: string; version: number }[] = [];
  let graph: OnnxGraph | undefined;
  while (!r.done) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        irVersion = r.varint();
        break;
      case 2:
        producerName = r.string();
        break;
      case 3:
        producerVersion = r.string();
        break;
      case 7:
        graph = readGraph(r.message());
        break;
      case 8:
        opsetImport.push(readOpset(r.message()));
        break;
      default:
        r.skip(wire);
    }
  }
  // A random byte string can occasionally parse as unknown fields; an ONNX
  // model always has a graph and an IR version, so require both.
  if (!graph || irVersion <= 0) return undefined;
  return { irVersion, producerName, producerVersion, opsetImport, graph };
}

function readOpset(r: WireReader): { domain: string; version: number } {
  let domain = "";
  let version = 0;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) domain = r.string();
    else if (field === 2) version = r.varint();
    else r.skip(wire);
  }
  return { domain, version };
}

function readGraph(r: WireReader): OnnxGraph {
  const g: OnnxGraph = { name: "", nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [] };
  while (!r.done) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        g.nodes.push(readNode(r.message()));
        break;
      case 2:
        g.name = r.string();
        break;
      case 5:
        g.initializers.push(readTensor(r.message()));
        break;
      case 11:
        g.inputs.push(readValueInfo(r.message()));
        break;
      case 12:
        g.outputs.push(readValueInfo(r.message()));
        break;
      case 13:
        g.valueInfo.push(readValueInfo(r.message()));
        break;
      default:
        r.skip(wire);
    }
  }
  return g;
}

function readNode(r: WireReader): OnnxNode {
  const n: OnnxNode = { name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: new Map() };
  while (!r.done) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        n.inputs.push(r.string());
        break;
      case 2:
        n.outputs.push(r.string());
        break;
      case 3:
        n.name = r.string();
        break;
      case 4:
        n.opType = r.string();
        break;
      case 5: {
        const a = readAttribute(r.message());
        n.attributes.set(a.name, a);
        break;
      }
      case 7:
        n.domain = r.string();
        break;
      default:
        r.skip(wire);
    }
  }
  if (n.opType === "") throw new WireError("node without op_type");
  return n;
}

function readAttribute(r: WireReader): OnnxAttribute {
  const a: OnnxAttribute = {
    name: "",
    type: 0,
    f: 0,
    i: 0,
    s: new Uint8Array(0),
    floats: [],
    ints: [],
    strings: [],
    tensors: [],
    graphs: [],
  };
  while (!r.done) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        a.name = r.string();
        break;
      case 2:
        if (wire !== WIRE_FIXED32) throw new WireError("attribute f is not fixed32");
        a.f = r.float32();
        break;
      case 3:
        a.i = r.varint();
        break;
      case 4:
        a.s = r.bytes();
        break;
      case 5:
        a.t = readTensor(r.message());
        break;
      case 6:
        a.g = readGraph(r.message());
        break;
      case 7:
        r.pushFloats(wire, a.floats);
        break;
      case 8:
        r.pushVarints(wire, a.ints);
        break;
      case 9:
        a.strings.push(r.bytes());
        break;
      case 10:
        a.tensors.push(readTensor(r.message()));
        break;
      case 11:
        a.graphs.push(readGraph(r.message()));
        break;
      case 20:
        a.type = r.varint();
        break;
      default:
        r.skip(wire);
    }
  }
  if (a.type === 0) a.type = inferAttributeType(a);
  return a;
}

// IR version 1 files carry no attribute type; guess it from the filled field.
function inferAttributeType(a: OnnxAttribute): number {
  if (a.t) return AttributeType.TENSOR;
  if (a.g) return AttributeType.GRAPH;
  if (a.floats.length) return AttributeType.FLOATS;
  if (a.ints.length) return AttributeType.INTS;
  if (a.strings.length) return AttributeType.STRINGS;
  if (a.s.length) return AttributeType.STRING;
  if (a.f !== 0) return AttributeType.FLOAT;
  return AttributeType.INT;
}

function readTensor(r: WireReader): OnnxTensor {
  const t: OnnxTensor = {
    name: "",
    dims: [],
    dataType: 0,
    rawData: new Uint8Array(0),
    floatData: [],
    int32Data: [],
    int64Data: [],
    doubleData: [],
    uint64Data: [],
    external: false,
  };
  while (!r.done) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        r.pushVarints(wire, t.dims);
        break;
      case 2:
        t.dataType = r.varint();
        break;
      case 4:
        r.pushFloats(wire, t.floatData);
        break;
      case 5:
        r.pushVarints(wire, t.int32Data);
        break;
      case 7:
        r.pushVarints(wire, t.int64Data);
        break;
      case 8:
        t.name = r.string();
        break;
      case 9:
        t.rawData = r.bytes();
        break;
      case 10:
        r.pushDoubles(wire, t.doubleData);
        break;
      case 11:
        r.pushVarints(wire, t.uint64Data);
        break;
      case 14:
        t.external = r.varint() === 1;
        break;
      default:
        r.skip(wire);
    }
  }
  return t;
}

function readValueInfo(r: WireReader): OnnxValueInfo {
  const v: OnnxValueInfo = { name: "", elemType: 0 };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) v.name = r.string();
    else if (field === 2) readType(r.message(), v);
    else r.skip(wire);
  }
  return v;
}

function readType(r: WireReader, v: OnnxValueInfo): void {
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field !== 1) {
      // sequence/map/optional types: the value is not a plain tensor.
      r.skip(wire);
      continue;
    }
    const tt = r.message();
    while (!tt.done) {
      const [f2, w2] = tt.tag();
      if (f2 === 1) v.elemType = tt.varint();
      else if (f2 === 2) v.dims = readShape(tt.message());
      else tt.skip(w2);
    }
  }
}

function readShape(r: WireReader): (number | string)[] {
  const dims: (number | string)[] = [];
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field !== 1) {
      r.skip(wire);
      continue;
    }
    const d = r.message();
    let dim: number | string = "?";
    while (!d.done) {
      const [f2, w2] = d.tag();
      if (f2 === 1) dim = d.varint();
      else if (f2 === 2) dim = d.string();
      else d.skip(w2);
    }
    dims.push(dim);
  }
  return dims;
}

/** Number of elements of a tensor with these dims (1 for a scalar). */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * The contents of a tensor as plain numbers, or undefined when they are not
 * in the file (stripped or external data) or have more than `limit` elements.
 * int64 beyond 2^53 is approximate, which only matters for sentinels like
 * INT64_MAX that are clamped anyway.
 *
 * @example
 * ```ts
 * const shape = tensorValues(initializer, 64); // e.g. [1, -1]
 * ```
 */
export function tensorValues(t: OnnxTensor, limit = Infinity): number[] | undefined {
  const n = numel(t.dims);
  if (n > limit || t.external) return undefined;
  if (n === 0) return [];
  if (t.rawData.length > 0) return rawValues(t.rawData, t.dataType, n);
  let src: number[] | undefined;
  switch (t.dataType) {
    case DataType.FLOAT:
      src = t.floatData;
      break;
    case DataType.INT32:
    case DataType.INT16:
    case DataType.INT8:
    case DataType.UINT16:
    case DataType.UINT8:
    case DataType.BOOL:
      src = t.int32Data;
      break;
    case DataType.FLOAT16:
      src = t.int32Data.map(halfToFloat);
      break;
    case DataType.BFLOAT16:
      src = t.int32Data.map(bfloat16ToFloat);
      break;
    case DataType.INT64:
      src = t.int64Data;
      break;
    case DataType.DOUBLE:
      src = t.doubleData;
      break;
    case DataType.UINT32:
    case DataType.UINT64:
      src = t.uint64Data.map((v) => (v < 0 ? v + 18446744073709551616 : v));
      break;
  }
  if (!src || src.length !== n) return undefined;
  return src.slice();
}

function rawValues(raw: Uint8Array, dataType: number, n: number): number[] | undefined {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const size = ELEMENT_SIZE[dataType];
  if (!size || raw.length !== size * n) return undefined;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const o = i * size;
    switch (dataType) {
      case DataType.FLOAT:
        out[i] = dv.getFloat32(o, true);
        break;
      case DataType.DOUBLE:
        out[i] = dv.getFloat64(o, true);
        break;
      case DataType.FLOAT16:
        out[i] = halfToFloat(dv.getUint16(o, true));
        break;
      case DataType.BFLOAT16:
        out[i] = bfloat16ToFloat(dv.getUint16(o, true));
        break;
      case DataType.INT8:
        out[i] = dv.getInt8(o);
        break;
      case DataType.UINT8:
      case DataType.BOOL:
        out[i] = dv.getUint8(o);
        break;
      case DataType.INT16:
        out[i] = dv.getInt16(o, true);
        break;
      case DataType.UINT16:
        out[i] = dv.getUint16(o, true);
        break;
      case DataType.INT32:
        out[i] = dv.getInt32(o, true);
        break;
      case DataType.UINT32:
        out[i] = dv.getUint32(o, true);
        break;
      case DataType.INT64:
        out[i] = dv.getInt32(o + 4, true) * 4294967296 + dv.getUint32(o, true);
        break;
      case DataType.UINT64:
        out[i] = dv.getUint32(o + 4, true) * 4294967296 + dv.getUint32(o, true);
        break;
      default:
        return undefined;
    }
  }
  return out;
}

const ELEMENT_SIZE: Record<number, number> = {
  [DataType.FLOAT]: 4,
  [DataType.UINT8]: 1,
  [DataType.INT8]: 1,
  [DataType.UINT16]: 2,
  [DataType.INT16]: 2,
  [DataType.INT32]: 4,
  [DataType.INT64]: 8,
  [DataType.BOOL]: 1,
  [DataType.FLOAT16]: 2,
  [DataType.DOUBLE]: 8,
  [DataType.UINT32]: 4,
  [DataType.UINT64]: 8,
  [DataType.BFLOAT16]: 2,
};

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function bfloat16ToFloat(b: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, (b & 0xffff) << 16);
  return dv.getFloat32(0);
}
