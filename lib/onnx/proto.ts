// Decoding of ONNX model files (protobuf) into plain objects. Only the
// messages a cost counter needs are read: the graph, its nodes, attributes,
// tensors (dims always, contents on request) and declared input/output types.
// Tensor payloads stay as views into the input bytes, so decoding a model with
// megabytes of weights copies none of them. Field numbers follow onnx.proto
// (onnx/onnx, IR version 3-10); unknown fields are skipped, as protobuf requires.

import { WIRE_FIXED32, WireError, WireReader } from "./_wire.ts";

/**
 * Thrown when bytes cannot be decoded as an ONNX ModelProto.
 *
 * @example
 * ```ts
 * import { decodeModel, OnnxDecodeError } from "./mod.ts";
 * try {
 *   decodeModel(new TextEncoder().encode("not a model"));
 * } catch (e) {
 *   if (e instanceof OnnxDecodeError) console.error(e.message);
 * }
 * ```
 */
export class OnnxDecodeError extends Error {
  /** Builds the error; `options.cause` keeps the low-level wire error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OnnxDecodeError";
  }
}

/**
 * ONNX TensorProto.DataType values.
 *
 * @example
 * ```ts
 * import { DataType, decodeModel, tensorValues } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * for (const t of decodeModel(bytes).graph.initializers) {
 *   if (t.dataType === DataType.INT64) console.log(t.name, tensorValues(t));
 * }
 * ```
 */
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

/**
 * ONNX AttributeProto.AttributeType values.
 *
 * @example
 * ```ts
 * import { AttributeType, decodeModel } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const attr = decodeModel(bytes).graph.nodes.find((n) => n.opType === "Conv")!.attributes.get("pads")!;
 * const ints = attr.type === AttributeType.INTS ? attr.ints : []; // [3, 3, 3, 3]
 * ```
 */
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

/**
 * A TensorProto: dims and type always; contents in whichever field the writer used.
 *
 * @example
 * ```ts
 * import { decodeModel, type OnnxTensor, tensorValues } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const t: OnnxTensor = decodeModel(bytes).graph.initializers[0];
 * console.log(t.name, t.dims, tensorValues(t, 16));
 * ```
 */
export interface OnnxTensor {
  /** Tensor name (empty for attribute tensors). */
  name: string;
  /** Dimensions; [] for a scalar. */
  dims: number[];
  /** A DataType value. */
  dataType: number;
  /** Little-endian contents (view into the model bytes); empty if unused. */
  rawData: Uint8Array;
  /** float_data: FLOAT (and COMPLEX64) contents. */
  floatData: number[];
  /** int32_data: INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16 bits. */
  int32Data: number[];
  /** int64_data: INT64 contents. */
  int64Data: number[];
  /** double_data: DOUBLE contents. */
  doubleData: number[];
  /** uint64_data: UINT32 and UINT64 contents. */
  uint64Data: number[];
  /** True when the payload lives in an external file (not read here). */
  external: boolean;
}

/**
 * One NodeProto attribute; only the field matching `type` is meaningful.
 *
 * @example
 * ```ts
 * import { decodeModel, type OnnxAttribute } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const conv = decodeModel(bytes).graph.nodes.find((n) => n.opType === "Conv")!;
 * const pads: OnnxAttribute | undefined = conv.attributes.get("pads");
 * console.log(pads?.ints ?? [0, 0, 0, 0]); // [3, 3, 3, 3]
 * ```
 */
export interface OnnxAttribute {
  /** Attribute name, e.g. "kernel_shape". */
  name: string;
  /** An AttributeType value. */
  type: number;
  /** FLOAT value. */
  f: number;
  /** INT value. */
  i: number;
  /** STRING value as bytes. */
  s: Uint8Array;
  /** TENSOR value. */
  t?: OnnxTensor;
  /** GRAPH value (If/Loop bodies). */
  g?: OnnxGraph;
  /** FLOATS value. */
  floats: number[];
  /** INTS value. */
  ints: number[];
  /** STRINGS value as bytes. */
  strings: Uint8Array[];
  /** TENSORS value. */
  tensors: OnnxTensor[];
  /** GRAPHS value. */
  graphs: OnnxGraph[];
}

/**
 * A NodeProto. Omitted optional inputs are empty strings, as in the file.
 *
 * @example
 * ```ts
 * import { decodeModel, type OnnxNode } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const nodes: OnnxNode[] = decodeModel(bytes).graph.nodes;
 * for (const n of nodes) console.log(n.opType, n.inputs, n.outputs);
 * ```
 */
export interface OnnxNode {
  /** Node name (may be empty). */
  name: string;
  /** Operator, e.g. "Conv". */
  opType: string;
  /** Operator set domain; "" is the default ONNX domain. */
  domain: string;
  /** Input tensor names; "" marks an omitted optional input. */
  inputs: string[];
  /** Output tensor names. */
  outputs: string[];
  /** Attributes by name. */
  attributes: Map<string, OnnxAttribute>;
}

/**
 * A declared graph input/output: element type and dims if it is a tensor.
 *
 * @example
 * ```ts
 * import { decodeModel, type OnnxValueInfo } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const { name, dims }: OnnxValueInfo = decodeModel(bytes).graph.inputs[0]; // "input", [1, 3, 224, 224]
 * ```
 */
export interface OnnxValueInfo {
  /** Tensor name. */
  name: string;
  /** DataType of the elements; 0 when not a tensor. */
  elemType: number;
  /** dim_value as number, dim_param as string, "?" when neither; undefined if the rank is unknown. */
  dims?: (number | string)[];
}

/**
 * A GraphProto.
 *
 * @example
 * ```ts
 * import { decodeModel, type OnnxGraph } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const g: OnnxGraph = decodeModel(bytes).graph;
 * console.log(g.nodes.length, g.initializers.length);
 * ```
 */
export interface OnnxGraph {
  /** Graph name. */
  name: string;
  /** Nodes in file order. */
  nodes: OnnxNode[];
  /** Weights and constants stored as initializers. */
  initializers: OnnxTensor[];
  /** Declared inputs (older IR versions also list initializers here). */
  inputs: OnnxValueInfo[];
  /** Declared outputs. */
  outputs: OnnxValueInfo[];
  /** Optional shape annotations of intermediate tensors. */
  valueInfo: OnnxValueInfo[];
}

/**
 * A ModelProto.
 *
 * @example
 * ```ts
 * import { decodeModel, type OnnxModel } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const { irVersion, opsetImport, graph }: OnnxModel = decodeModel(bytes);
 * ```
 */
export interface OnnxModel {
  /** IR version of the file format. */
  irVersion: number;
  /** Exporter name, e.g. "pytorch". */
  producerName: string;
  /** Exporter version. */
  producerVersion: string;
  /** Operator sets used; the default domain is "" (or "ai.onnx"). */
  opsetImport: { domain: string; version: number }[];
  /** The main graph. */
  graph: OnnxGraph;
}

/**
 * Decodes an ONNX model file.
 *
 * @example
 * ```ts
 * import { decodeModel } from "./mod.ts";
 * const model = decodeModel(await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx"));
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

/**
 * Number of elements of a tensor with these dims (1 for a scalar).
 *
 * @example
 * ```ts
 * import { numel } from "./mod.ts";
 * numel([1, 3, 224, 224]); // 150528
 * ```
 */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A node's INTS attribute, empty when it has none. */
export const nodeInts = (n: OnnxNode, name: string): number[] => n.attributes.get(name)?.ints ?? [];

/** A node's STRING attribute as text, empty when it has none. */
export const nodeText = (n: OnnxNode, name: string): string =>
  new TextDecoder().decode(n.attributes.get(name)?.s ?? new Uint8Array());

/**
 * The contents of a tensor as plain numbers, or undefined when they are not
 * in the file (stripped or external data) or have more than `limit` elements.
 * int64 beyond 2^53 is approximate, which only matters for sentinels like
 * INT64_MAX that are clamped anyway.
 *
 * @example
 * ```ts
 * import { decodeModel, tensorValues } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const [weight] = decodeModel(bytes).graph.initializers;
 * tensorValues(weight, 64); // undefined: too large (and stripped in this fixture)
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
