// Per-op rules: for each ONNX op type, how output shapes follow from input
// shapes and what one execution of the node costs. Rules are looked up by op
// type; an op without a rule is unknown and is never silently counted as zero.
//
// Cost model (DESIGN.md §3): flops = 2·MACs + other. "out"/"in" = element counts.
//
// | op                                        | MACs                         | other (FLOPs)                  |
// |-------------------------------------------|------------------------------|--------------------------------|
// | Conv                                      | out · Cin/group · prod(k)    | + out if bias                  |
// | ConvTranspose (per input element)         | in · Cout/group · prod(k)    | + out if bias                  |
// | Gemm (alpha/beta folded into the GEMM)    | M·N·K                        | + M·N if C given               |
// | MatMul                                    | batch·M·N·K (broadcast)      |                                |
// | unary/binary elementwise, Clip, Where,    |                              | out                            |
// |   comparisons, CumSum                     |                              |                                |
// | Sum/Mean/Max/Min with n inputs            |                              | out · max(1, n-1)              |
// | BatchNormalization (a fused scale+shift   |                              | out                            |
// |   at inference), Instance/Layer/Group/Lp  |                              |                                |
// | Softmax, LogSoftmax                       |                              | out · SOFTMAX_FLOPS (3: exp,   |
// |                                           |                              |   sum, divide)                 |
// | MaxPool/AveragePool/LpPool                |                              | out · prod(kernel)             |
// | Global*Pool, Reduce*, ArgMax/ArgMin       |                              | in                             |
// | Resize/Upsample                           |                              | out · window: nearest 1,       |
// |                                           |                              |   linear 2^k, cubic 4^k; k =   |
// |                                           |                              |   number of axes resized       |
// | data movement (Reshape, Concat, Pad, ...) |                              | 0                              |
//
// Elementwise ops whose inputs are small known tensors are also evaluated, so
// shape subgraphs (Shape→Gather→Mul→Concat→Reshape) fold to constants.

import { DataType, numel, type OnnxNode, type OnnxTensor, tensorValues } from "./proto.ts";
import { OnnxShapeError } from "./errors.ts";
import {
  broadcastShapes,
  broadcastValues,
  normAxis,
  range,
  selectValues,
  transposeValues,
  type WindowAxis,
  windowOutput,
} from "./_shape.ts";

/** What the counter knows about one tensor at a given input shape. */
export interface TensorInfo {
  shape: number[];
  /** ONNX DataType of the elements. */
  dtype: number;
  /** Row-major contents, only for small tensors whose values are known statically. */
  values?: number[];
}

/** Output tensors and cost of one node execution. */
export interface OpResult {
  outputs: (TensorInfo | undefined)[];
  macs?: number;
  other?: number;
}

/** A rule: shape inference plus cost for one op type. */
export type OpRule = (ctx: NodeContext) => OpResult;

/** Largest tensor whose values are tracked; shape vectors are far smaller. */
export const VALUE_LIMIT = 4096;

/**
 * FLOPs per output element charged for Softmax/LogSoftmax (exp, sum, divide).
 *
 * @example
 * ```ts
 * import { SOFTMAX_FLOPS } from "./mod.ts";
 * const softmaxFlops = SOFTMAX_FLOPS * 1000; // a [1, 1000] softmax
 * ```
 */
export const SOFTMAX_FLOPS = 3;

const utf8 = new TextDecoder();

/** A node's inputs, attributes and opset, with helpers that fail with clear messages. */
export class NodeContext {
  constructor(
    readonly node: OnnxNode,
    readonly opset: number,
    readonly inputs: readonly (TensorInfo | undefined)[],
  ) {}

  /** True when optional input i is present (non-empty name). */
  has(i: number): boolean {
    return this.inputs[i] !== undefined;
  }

  input(i: number): TensorInfo {
    const t = this.inputs[i];
    if (!t) throw new OnnxShapeError(`missing required input ${i}`);
    return t;
  }

  shape(i: number): number[] {
    return this.input(i).shape;
  }

  /** Values of input i; shapes that depend on runtime data cannot be counted. */
  values(i: number, what: string): number[] {
    const t = this.input(i);
    if (!t.values) {
      throw new OnnxShapeError(`${what} (input "${this.node.inputs[i]}") is not known statically`);
    }
    return t.values;
  }

  /** Values of an optional input; undefined when absent or empty. */
  optValues(i: number, what: string): number[] | undefined {
    const t = this.inputs[i];
    if (!t || numel(t.shape) === 0) return undefined;
    return this.values(i, what);
  }

  int(name: string, def: number): number {
    const a = this.node.attributes.get(name);
    return a ? a.i : def;
  }

  ints(name: string): number[] | undefined {
    return this.node.attributes.get(name)?.ints;
  }

  float(name: string, def: number): number {
    const a = this.node.attributes.get(name);
    return a ? a.f : def;
  }

  floats(name: string): number[] | undefined {
    return this.node.attributes.get(name)?.floats;
  }

  str(name: string, def: string): string {
    const a = this.node.attributes.get(name);
    return a ? utf8.decode(a.s) : def;
  }

  tensor(name: string): OnnxTensor | undefined {
    return this.node.attributes.get(name)?.t;
  }
}

function fail(message: string): never {
  throw new OnnxShapeError(message);
}

const INT_TYPES = new Set<number>([
  DataType.UINT8,
  DataType.INT8,
  DataType.UINT16,
  DataType.INT16,
  DataType.INT32,
  DataType.INT64,
  DataType.UINT32,
  DataType.UINT64,
  DataType.BOOL,
]);

/** Rounds to the precision the runtime would store, so folded shape math matches it. */
function cast(v: number, dtype: number): number {
  if (dtype === DataType.BOOL) return v ? 1 : 0;
  if (INT_TYPES.has(dtype)) return Math.trunc(v);
  if (dtype === DataType.FLOAT) return Math.fround(v);
  return v;
}

function tensor(shape: number[], dtype: number, values?: number[]): TensorInfo {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) fail(`inferred invalid shape [${shape.join(",")}]`);
  }
  if (values && values.length !== numel(shape)) values = undefined;
  return values && values.length <= VALUE_LIMIT ? { shape, dtype, values } : { shape, dtype };
}

const same = (t: TensorInfo): TensorInfo => ({ ...t });

// ---------------------------------------------------------------- elementwise

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const UNARY_VALUES: Partial<Record<string, (x: number) => number>> = {
  Relu: (x) => Math.max(0, x),
  Neg: (x) => -x,
  Abs: Math.abs,
  Floor: Math.floor,
  Ceil: Math.ceil,
  Round: roundHalfEven,
  Sqrt: Math.sqrt,
  Reciprocal: (x) => 1 / x,
  Exp: Math.exp,
  Log: Math.log,
  Sign: Math.sign,
  Not: (x) => (x ? 0 : 1),
};

const UNARY_OPS = [
  "Relu",
  "Sigmoid",
  "HardSigmoid",
  "HardSwish",
  "Tanh",
  "Exp",
  "Log",
  "Sqrt",
  "Reciprocal",
  "Neg",
  "Abs",
  "Erf",
  "Elu",
  "Selu",
  "Celu",
  "LeakyRelu",
  "ThresholdedRelu",
  "Softplus",
  "Softsign",
  "Mish",
  "Gelu",
  "Floor",
  "Ceil",
  "Round",
  "Sign",
  "Sin",
  "Cos",
  "Tan",
  "Asin",
  "Acos",
  "Atan",
  "Sinh",
  "Cosh",
  "Asinh",
  "Acosh",
  "Atanh",
  "Not",
  "IsNaN",
  "IsInf",
  "Shrink",
  "BitwiseNot",
  "CumSum",
];

const BOOL_RESULT = new Set(["Not", "IsNaN", "IsInf"]);

const unary: OpRule = (ctx) => {
  const x = ctx.input(0);
  const op = ctx.node.opType;
  const dtype = BOOL_RESULT.has(op) ? DataType.BOOL : x.dtype;
  const fn = UNARY_VALUES[op];
  const values = fn && x.values ? x.values.map((v) => cast(fn(v), dtype)) : undefined;
  return { outputs: [tensor(x.shape.slice(), dtype, values)], other: numel(x.shape) };
};

type Binary = (a: number, b: number, isInt: boolean, ctx: NodeContext) => number;

const BINARY_VALUES: Partial<Record<string, Binary>> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b, isInt) => (isInt ? Math.trunc(a / b) : a / b),
  Pow: (a, b) => a ** b,
  Mod: (a, b, isInt, ctx) => {
    if (ctx.int("fmod", 0) || !isInt) return a % b;
    const r = a % b;
    return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
  },
  Max: (a, b) => Math.max(a, b),
  Min: (a, b) => Math.min(a, b),
  Sum: (a, b) => a + b,
  Equal: (a, b) => (a === b ? 1 : 0),
  Less: (a, b) => (a < b ? 1 : 0),
  LessOrEqual: (a, b) => (a <= b ? 1 : 0),
  Greater: (a, b) => (a > b ? 1 : 0),
  GreaterOrEqual: (a, b) => (a >= b ? 1 : 0),
  And: (a, b) => (a && b ? 1 : 0),
  Or: (a, b) => (a || b ? 1 : 0),
  Xor: (a, b) => ((a ? 1 : 0) ^ (b ? 1 : 0)),
  PRelu: (a, b) => (a < 0 ? a * b : a),
};

const COMPARISONS = new Set(["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor"]);

const BINARY_OPS = [
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Pow",
  "Mod",
  "PRelu",
  "Equal",
  "Less",
  "LessOrEqual",
  "Greater",
  "GreaterOrEqual",
  "And",
  "Or",
  "Xor",
  "BitShift",
  "BitwiseAnd",
  "BitwiseOr",
  "BitwiseXor",
];

/** Elementwise with broadcasting, any arity (Sum/Mean/Max/Min are variadic). */
const broadcasting: OpRule = (ctx) => {
  const ins = ctx.node.inputs.map((_, i) => ctx.input(i));
  const op = ctx.node.opType;
  const shape = broadcastShapes(ins.map((t) => t.shape));
  const dtype = COMPARISONS.has(op) ? DataType.BOOL : ins[0].dtype;
  const n = numel(shape);
  let values: number[] | undefined;
  const fn = BINARY_VALUES[op];
  if ((fn || op === "Mean") && n <= VALUE_LIMIT && ins.every((t) => t.values)) {
    const isInt = INT_TYPES.has(ins[0].dtype);
    const cols = ins.map((t) => broadcastValues(t.shape, t.values!, shape));
    const combine = fn ?? BINARY_VALUES.Sum!;
    values = cols[0].map((v0, i) => {
      let acc = v0;
      for (let k = 1; k < cols.length; k++) acc = combine(acc, cols[k][i], isInt, ctx);
      return cast(op === "Mean" ? acc / cols.length : acc, dtype);
    });
  }
  return { outputs: [tensor(shape, dtype, values)], other: n * Math.max(1, ins.length - 1) };
};

const where: OpRule = (ctx) => {
  const [c, x, y] = [ctx.input(0), ctx.input(1), ctx.input(2)];
  const shape = broadcastShapes([c.shape, x.shape, y.shape]);
  const n = numel(shape);
  let values: number[] | undefined;
  if (n <= VALUE_LIMIT && c.values && x.values && y.values) {
    const [cv, xv, yv] = [c, x, y].map((t) => broadcastValues(t.shape, t.values!, shape));
    values = cv.map((v, i) => (v ? xv[i] : yv[i]));
  }
  return { outputs: [tensor(shape, x.dtype, values)], other: n };
};

const clip: OpRule = (ctx) => {
  const x = ctx.input(0);
  let lo = -Infinity;
  let hi = Infinity;
  if (ctx.opset < 11) {
    lo = ctx.float("min", -Infinity);
    hi = ctx.float("max", Infinity);
  } else {
    // Bounds only matter for folding values; unknown bounds just stop folding.
    lo = ctx.has(1) ? ctx.inputs[1]?.values?.[0] ?? NaN : -Infinity;
    hi = ctx.has(2) ? ctx.inputs[2]?.values?.[0] ?? NaN : Infinity;
  }
  const foldable = !Number.isNaN(lo) && !Number.isNaN(hi);
  const values = foldable ? x.values?.map((v) => Math.min(hi, Math.max(lo, v))) : undefined;
  return { outputs: [tensor(x.shape.slice(), x.dtype, values)], other: numel(x.shape) };
};

// ---------------------------------------------------------------- compute

function spatialAttrs(ctx: NodeContext, n: number, kernelDefault: number[]) {
  const kernel = ctx.ints("kernel_shape") ?? kernelDefault;
  const stride = ctx.ints("strides") ?? new Array(n).fill(1);
  const dilation = ctx.ints("dilations") ?? new Array(n).fill(1);
  const pads = ctx.ints("pads") ?? new Array(2 * n).fill(0);
  if (kernel.length !== n || stride.length !== n || dilation.length !== n || pads.length !== 2 * n) {
    fail(`kernel_shape/strides/dilations/pads do not match ${n} spatial dims`);
  }
  return { kernel, stride, dilation, pads, autoPad: ctx.str("auto_pad", "NOTSET") };
}

function windowAxes(size: number[], a: ReturnType<typeof spatialAttrs>): WindowAxis[] {
  return size.map((s, i) => ({
    size: s,
    kernel: a.kernel[i],
    stride: a.stride[i],
    dilation: a.dilation[i],
    padBegin: a.pads[i],
    padEnd: a.pads[i + size.length],
  }));
}

const conv: OpRule = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  const n = x.length - 2;
  if (n < 1 || w.length !== x.length) fail(`input rank ${x.length} and weight rank ${w.length} do not fit`);
  const group = ctx.int("group", 1);
  if (x[1] !== w[1] * group) fail(`input has ${x[1]} channels, weight expects ${w[1]}·${group} (group ${group})`);
  if (w[0] % group !== 0) fail(`${w[0]} output channels are not divisible by group ${group}`);
  const attrs = spatialAttrs(ctx, n, w.slice(2));
  const spatial = windowAxes(x.slice(2), attrs).map((a) => windowOutput(a, attrs.autoPad, false));
  if (spatial.some((d) => d < 1)) fail(`output spatial size [${spatial}] is empty`);
  const out = [x[0], w[0], ...spatial];
  const outElems = numel(out);
  return {
    outputs: [tensor(out, ctx.input(0).dtype)],
    macs: outElems * w[1] * numel(attrs.kernel),
    other: ctx.has(2) ? outElems : 0,
  };
};

const convTranspose: OpRule = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  const n = x.length - 2;
  if (n < 1 || w.length !== x.length) fail(`input rank ${x.length} and weight rank ${w.length} do not fit`);
  const group = ctx.int("group", 1);
  if (x[1] !== w[0]) fail(`input has ${x[1]} channels, weight expects ${w[0]}`);
  if (w[0] % group !== 0) fail(`${w[0]} input channels are not divisible by group ${group}`);
  const attrs = spatialAttrs(ctx, n, w.slice(2));
  const outputPadding = ctx.ints("output_padding") ?? new Array(n).fill(0);
  const outputShape = ctx.ints("output_shape");
  const spatial = x.slice(2).map((size, i) => {
    if (outputShape && outputShape.length >= n) return outputShape[outputShape.length - n + i];
    if (attrs.autoPad === "SAME_UPPER" || attrs.autoPad === "SAME_LOWER") return size * attrs.stride[i];
    const effective = (attrs.kernel[i] - 1) * attrs.dilation[i] + 1;
    const pads = attrs.autoPad === "VALID" ? 0 : attrs.pads[i] + attrs.pads[i + n];
    return attrs.stride[i] * (size - 1) + outputPadding[i] + effective - pads;
  });
  if (spatial.some((d) => d < 1)) fail(`output spatial size [${spatial}] is empty`);
  const out = [x[0], w[1] * group, ...spatial];
  return {
    outputs: [tensor(out, ctx.input(0).dtype)],
    macs: numel(x) * w[1] * numel(attrs.kernel),
    other: ctx.has(2) ? numel(out) : 0,
  };
};

const gemm: OpRule = (ctx) => {
  const a = ctx.shape(0);
  const b = ctx.shape(1);
  if (a.length !== 2 || b.length !== 2) fail(`Gemm needs 2-D inputs, got [${a}] and [${b}]`);
  const [m, k] = ctx.int("transA", 0) ? [a[1], a[0]] : a;
  const [k2, n] = ctx.int("transB", 0) ? [b[1], b[0]] : b;
  if (k !== k2) fail(`inner dims ${k} and ${k2} differ`);
  if (ctx.has(2)) broadcastShapes([ctx.shape(2), [m, n]]);
  return {
    outputs: [tensor([m, n], ctx.input(0).dtype)],
    macs: m * n * k,
    other: ctx.has(2) ? m * n : 0,
  };
};

const matmul: OpRule = (ctx) => {
  const a0 = ctx.shape(0);
  const b0 = ctx.shape(1);
  if (a0.length === 0 || b0.length === 0) fail("MatMul does not take scalars");
  const a = a0.length === 1 ? [1, a0[0]] : a0;
  const b = b0.length === 1 ? [b0[0], 1] : b0;
  const m = a[a.length - 2];
  const k = a[a.length - 1];
  const n = b[b.length - 1];
  if (k !== b[b.length - 2]) fail(`inner dims ${k} and ${b[b.length - 2]} differ`);
  const batch = broadcastShapes([a.slice(0, -2), b.slice(0, -2)]);
  const out = [...batch];
  if (a0.length > 1) out.push(m);
  if (b0.length > 1) out.push(n);
  return { outputs: [tensor(out, ctx.input(0).dtype)], macs: numel(batch) * m * n * k };
};

// ---------------------------------------------------------------- pooling, normalisation, reductions

const pool: OpRule = (ctx) => {
  const x = ctx.shape(0);
  const n = x.length - 2;
  const kernel = ctx.ints("kernel_shape") ?? fail("kernel_shape is required");
  if (n < 1) fail(`pooling needs a rank >= 3 input, got [${x}]`);
  const attrs = spatialAttrs(ctx, n, kernel);
  const ceil = ctx.int("ceil_mode", 0) === 1;
  const spatial = windowAxes(x.slice(2), attrs).map((a) => windowOutput(a, attrs.autoPad, ceil));
  if (spatial.some((d) => d < 1)) fail(`output spatial size [${spatial}] is empty`);
  const out = [x[0], x[1], ...spatial];
  const outputs = [tensor(out, ctx.input(0).dtype)];
  if (ctx.node.outputs.length > 1) outputs.push(tensor(out.slice(), DataType.INT64));
  return { outputs, other: numel(out) * numel(kernel) };
};

const globalPool: OpRule = (ctx) => {
  const x = ctx.shape(0);
  if (x.length < 3) fail(`global pooling needs a rank >= 3 input, got [${x}]`);
  const out = [x[0], x[1], ...x.slice(2).map(() => 1)];
  return { outputs: [tensor(out, ctx.input(0).dtype)], other: numel(x) };
};

const normalisation: OpRule = (ctx) => {
  const x = ctx.input(0);
  const outputs: (TensorInfo | undefined)[] = [tensor(x.shape.slice(), x.dtype)];
  const op = ctx.node.opType;
  if (op === "BatchNormalization") {
    // Training-mode outputs (running mean/var) have one value per channel.
    for (let i = 1; i < ctx.node.outputs.length; i++) outputs.push(tensor([x.shape[1] ?? 1], x.dtype));
  } else if (op === "LayerNormalization") {
    const axis = normAxis(ctx.int("axis", -1), x.shape.length);
    const stat = x.shape.map((d, i) => (i < axis ? d : 1));
    for (let i = 1; i < ctx.node.outputs.length; i++) outputs.push(tensor(stat.slice(), DataType.FLOAT));
  }
  return { outputs, other: numel(x.shape) };
};

const softmax: OpRule = (ctx) => {
  const x = ctx.input(0);
  return { outputs: [tensor(x.shape.slice(), x.dtype)], other: SOFTMAX_FLOPS * numel(x.shape) };
};

const REDUCE_OPS = [
  "ReduceMean",
  "ReduceSum",
  "ReduceMax",
  "ReduceMin",
  "ReduceProd",
  "ReduceL1",
  "ReduceL2",
  "ReduceSumSquare",
  "ReduceLogSum",
  "ReduceLogSumExp",
];

const reduce: OpRule = (ctx) => {
  const x = ctx.input(0);
  const rank = x.shape.length;
  // Axes moved from attribute to input at opset 13 for ReduceSum, 18 for the rest.
  const axesAsInput = ctx.opset >= (ctx.node.opType === "ReduceSum" ? 13 : 18);
  const axes = axesAsInput ? ctx.optValues(1, "reduction axes") : ctx.ints("axes");
  const keep = ctx.int("keepdims", 1) === 1;
  if ((!axes || axes.length === 0) && ctx.int("noop_with_empty_axes", 0) === 1) {
    return { outputs: [tensor(x.shape.slice(), x.dtype, x.values)], other: 0 };
  }
  const reduced = new Set(axes && axes.length ? axes.map((a) => normAxis(a, rank)) : range(rank));
  const out: number[] = [];
  x.shape.forEach((d, i) => {
    if (!reduced.has(i)) out.push(d);
    else if (keep) out.push(1);
  });
  return { outputs: [tensor(out, x.dtype)], other: numel(x.shape) };
};

const argReduce: OpRule = (ctx) => {
  const x = ctx.input(0);
  const axis = normAxis(ctx.int("axis", 0), x.shape.length);
  const keep = ctx.int("keepdims", 1) === 1;
  const out = x.shape.flatMap((d, i) => (i !== axis ? [d] : keep ? [1] : []));
  return { outputs: [tensor(out, DataType.INT64)], other: numel(x.shape) };
};

// ---------------------------------------------------------------- resize

function interpolationWindow(mode: string, inShape: number[], outShape: number[]): number {
  const k = outShape.filter((d, i) => d !== inShape[i]).length;
  if (mode === "nearest") return 1;
  if (mode === "linear" || mode === "bilinear" || mode === "trilinear") return 2 ** k;
  if (mode === "cubic" || mode === "bicubic") return 4 ** k;
  return fail(`unknown interpolation mode "${mode}"`);
}

function scaled(x: number[], axes: number[], scales: number[], what: string): number[] {
  if (scales.length !== axes.length) fail(`${what} has ${scales.length} entries for ${axes.length} axes`);
  const out = x.slice();
  // The runtime multiplies in float32; fround keeps e.g. 0.1·320 from flooring to 31.
  axes.forEach((a, i) => (out[a] = Math.floor(Math.fround(x[a] * scales[i]))));
  return out;
}

const resize: OpRule = (ctx) => {
  const x = ctx.shape(0);
  const rank = x.length;
  const axes = (ctx.opset >= 18 ? ctx.ints("axes") : undefined)?.map((a) => normAxis(a, rank)) ?? range(rank);
  let out: number[];
  if (ctx.opset < 11) {
    out = scaled(x, axes, ctx.values(1, "Resize scales"), "scales");
  } else {
    const sizes = ctx.optValues(3, "Resize sizes");
    const scales = ctx.optValues(2, "Resize scales");
    if (sizes) {
      if (sizes.length !== axes.length) fail(`sizes has ${sizes.length} entries for ${axes.length} axes`);
      const policy = ctx.str("keep_aspect_ratio_policy", "stretch");
      out = x.slice();
      if (policy === "stretch") {
        axes.forEach((a, i) => (out[a] = sizes[i]));
      } else {
        const ratios = axes.map((a, i) => sizes[i] / x[a]);
        const s = policy === "not_larger" ? Math.min(...ratios) : Math.max(...ratios);
        axes.forEach((a) => (out[a] = Math.round(s * x[a])));
      }
    } else if (scales) {
      out = scaled(x, axes, scales, "scales");
      if (ctx.str("coordinate_transformation_mode", "half_pixel") === "tf_crop_and_resize") {
        const roi = ctx.values(1, "Resize roi");
        axes.forEach((a, i) => (out[a] = Math.floor(Math.fround(x[a] * (roi[i + axes.length] - roi[i]) * scales[i]))));
      }
    } else {
      fail("Resize has neither scales nor sizes");
    }
  }
  return resizeResult(ctx, x, out, ctx.str("mode", "nearest"));
};

const upsample: OpRule = (ctx) => {
  const x = ctx.shape(0);
  const scales = ctx.opset >= 9 ? ctx.values(1, "Upsample scales") : ctx.floats("scales") ?? fail("scales is required");
  return resizeResult(ctx, x, scaled(x, range(x.length), scales, "scales"), ctx.str("mode", "nearest"));
};

function resizeResult(ctx: NodeContext, x: number[], out: number[], mode: string): OpResult {
  if (out.some((d) => d < 1)) fail(`output shape [${out}] is empty`);
  return {
    outputs: [tensor(out, ctx.input(0).dtype)],
    other: numel(out) * interpolationWindow(mode, x, out),
  };
}

// ---------------------------------------------------------------- data movement (zero FLOPs)

const identity: OpRule = (ctx) => {
  const x = ctx.input(0);
  const outputs: (TensorInfo | undefined)[] = [same(x)];
  // Dropout's optional mask.
  if (ctx.node.outputs.length > 1) outputs.push(tensor(x.shape.slice(), DataType.BOOL));
  return { outputs };
};

const castOp: OpRule = (ctx) => {
  const x = ctx.input(0);
  const to = ctx.node.opType === "CastLike" ? ctx.input(1).dtype : ctx.int("to", DataType.FLOAT);
  return { outputs: [tensor(x.shape.slice(), to, x.values?.map((v) => cast(v, to)))] };
};

const shapeOp: OpRule = (ctx) => {
  const x = ctx.shape(0);
  const r = x.length;
  const clampAxis = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
  const start = ctx.opset >= 15 ? clampAxis(ctx.int("start", 0)) : 0;
  const end = ctx.opset >= 15 ? clampAxis(ctx.int("end", r)) : r;
  const values = x.slice(start, Math.max(start, end));
  return { outputs: [tensor([values.length], DataType.INT64, values)] };
};

const sizeOp: OpRule = (ctx) => ({ outputs: [tensor([], DataType.INT64, [numel(ctx.shape(0))])] });

const reshape: OpRule = (ctx) => {
  const x = ctx.input(0);
  const target = ctx.opset < 5 ? ctx.ints("shape") ?? fail("shape is required") : ctx.values(1, "Reshape shape");
  const allowZero = ctx.int("allowzero", 0) === 1;
  let infer = -1;
  const out = target.map((v, i) => {
    if (v === 0 && !allowZero) {
      if (i >= x.shape.length) fail(`shape entry ${i} copies a dim the input [${x.shape}] lacks`);
      return x.shape[i];
    }
    if (v === -1) {
      if (infer >= 0) fail("more than one -1 in Reshape shape");
      infer = i;
      return 1;
    }
    if (v < 0) fail(`invalid Reshape shape entry ${v}`);
    return v;
  });
  const total = numel(x.shape);
  if (infer >= 0) {
    const rest = numel(out);
    if (rest === 0 || total % rest !== 0) fail(`cannot reshape [${x.shape}] to [${target}]`);
    out[infer] = total / rest;
  }
  if (numel(out) !== total) fail(`cannot reshape [${x.shape}] to [${target}]`);
  return { outputs: [tensor(out, x.dtype, x.values)] };
};

const flatten: OpRule = (ctx) => {
  const x = ctx.input(0);
  const r = x.shape.length;
  const axisAttr = ctx.int("axis", 1);
  const axis = axisAttr < 0 ? axisAttr + r : axisAttr;
  if (axis < 0 || axis > r) fail(`axis ${axisAttr} is out of range for rank ${r}`);
  const out = [numel(x.shape.slice(0, axis)), numel(x.shape.slice(axis))];
  return { outputs: [tensor(out, x.dtype, x.values)] };
};

const transpose: OpRule = (ctx) => {
  const x = ctx.input(0);
  const perm = ctx.ints("perm") ?? range(x.shape.length).reverse();
  if (perm.length !== x.shape.length || new Set(perm).size !== perm.length) {
    fail(`perm [${perm}] does not fit [${x.shape}]`);
  }
  const out = perm.map((p) => x.shape[normAxis(p, x.shape.length)]);
  const values = x.values ? transposeValues(x.shape, x.values, perm) : undefined;
  return { outputs: [tensor(out, x.dtype, values)] };
};

function axesOf(ctx: NodeContext, what: string): number[] | undefined {
  return ctx.opset >= 13 ? ctx.optValues(1, what) : ctx.ints("axes");
}

const squeeze: OpRule = (ctx) => {
  const x = ctx.input(0);
  const r = x.shape.length;
  const axes = axesOf(ctx, "Squeeze axes");
  let drop: Set<number>;
  if (axes && axes.length) {
    drop = new Set(axes.map((a) => normAxis(a, r)));
    for (const a of drop) if (x.shape[a] !== 1) fail(`cannot squeeze axis ${a} of size ${x.shape[a]}`);
  } else {
    drop = new Set(range(r).filter((i) => x.shape[i] === 1));
  }
  const out = x.shape.filter((_, i) => !drop.has(i));
  return { outputs: [tensor(out, x.dtype, x.values)] };
};

const unsqueeze: OpRule = (ctx) => {
  const x = ctx.input(0);
  const axes = axesOf(ctx, "Unsqueeze axes") ?? fail("axes is required");
  const r = x.shape.length + axes.length;
  const ins = new Set(axes.map((a) => normAxis(a, r)));
  if (ins.size !== axes.length) fail(`duplicate axes [${axes}]`);
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) out.push(ins.has(i) ? 1 : x.shape[j++]);
  return { outputs: [tensor(out, x.dtype, x.values)] };
};

const concat: OpRule = (ctx) => {
  const ins = ctx.node.inputs.map((_, i) => ctx.input(i));
  const r = ins[0].shape.length;
  const axis = normAxis(ctx.int("axis", 0), r);
  const out = ins[0].shape.slice();
  out[axis] = 0;
  for (const t of ins) {
    if (t.shape.length !== r || t.shape.some((d, i) => i !== axis && d !== out[i])) {
      fail(`cannot concatenate [${ins.map((s) => s.shape.join(",")).join("] [")}] on axis ${axis}`);
    }
    out[axis] += t.shape[axis];
  }
  let values: number[] | undefined;
  if (numel(out) <= VALUE_LIMIT && ins.every((t) => t.values)) {
    values = [];
    const outer = numel(out.slice(0, axis));
    const inner = numel(out.slice(axis + 1));
    for (let o = 0; o < outer; o++) {
      for (const t of ins) {
        const chunk = t.shape[axis] * inner;
        values.push(...t.values!.slice(o * chunk, (o + 1) * chunk));
      }
    }
  }
  return { outputs: [tensor(out, ins[0].dtype, values)] };
};

const gather: OpRule = (ctx) => {
  const data = ctx.input(0);
  const indices = ctx.input(1);
  const axis = normAxis(ctx.int("axis", 0), data.shape.length);
  const dim = data.shape[axis];
  const out = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
  let values: number[] | undefined;
  if (data.values && indices.values && numel(out) <= VALUE_LIMIT) {
    const idx = indices.values.map((i) => {
      const j = i < 0 ? i + dim : i;
      if (j < 0 || j >= dim) fail(`Gather index ${i} is out of range for size ${dim}`);
      return j;
    });
    values = selectValues(data.shape, data.values, data.shape.map((d, a) => (a === axis ? idx : range(d))));
  }
  return { outputs: [tensor(out, data.dtype, values)] };
};

const gatherElements: OpRule = (ctx) => ({ outputs: [tensor(ctx.shape(1).slice(), ctx.input(0).dtype)] });

const gatherND: OpRule = (ctx) => {
  const data = ctx.shape(0);
  const idx = ctx.shape(1);
  const b = ctx.int("batch_dims", 0);
  const last = idx[idx.length - 1];
  return { outputs: [tensor([...idx.slice(0, -1), ...data.slice(b + last)], ctx.input(0).dtype)] };
};

const scatter: OpRule = (ctx) => ({ outputs: [same(ctx.input(0))] });

function sliceIndices(dim: number, start: number, end: number, step: number): number[] {
  if (step === 0) fail("Slice step 0");
  const idx: number[] = [];
  if (step > 0) {
    const s = Math.min(dim, Math.max(0, start < 0 ? start + dim : start));
    const e = Math.min(dim, Math.max(0, end < 0 ? end + dim : end));
    for (let i = s; i < e; i += step) idx.push(i);
  } else {
    const s = Math.min(dim - 1, Math.max(-1, start < 0 ? start + dim : start));
    const e = Math.min(dim - 1, Math.max(-1, end < 0 ? end + dim : end));
    for (let i = s; i > e; i += step) idx.push(i);
  }
  return idx;
}

const slice: OpRule = (ctx) => {
  const x = ctx.input(0);
  const r = x.shape.length;
  let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = ctx.ints("starts") ?? fail("starts is required");
    ends = ctx.ints("ends") ?? fail("ends is required");
    axes = ctx.ints("axes");
  } else {
    starts = ctx.values(1, "Slice starts");
    ends = ctx.values(2, "Slice ends");
    axes = ctx.optValues(3, "Slice axes");
    steps = ctx.optValues(4, "Slice steps");
  }
  if (ends.length !== starts.length) fail("Slice starts and ends differ in length");
  const idx = x.shape.map((d) => range(d));
  starts.forEach((s, i) => {
    const a = normAxis(axes ? axes[i] : i, r);
    idx[a] = sliceIndices(x.shape[a], s, ends[i], steps ? steps[i] : 1);
  });
  const out = idx.map((l) => l.length);
  const values = x.values ? selectValues(x.shape, x.values, idx) : undefined;
  return { outputs: [tensor(out, x.dtype, values)] };
};

const split: OpRule = (ctx) => {
  const x = ctx.input(0);
  const axis = normAxis(ctx.int("axis", 0), x.shape.length);
  const dim = x.shape[axis];
  const nOut = ctx.node.outputs.length;
  let sizes = ctx.opset >= 13 ? ctx.optValues(1, "Split sizes") : ctx.ints("split");
  if (!sizes || sizes.length === 0) {
    const parts = ctx.opset >= 18 ? ctx.int("num_outputs", nOut) : nOut;
    const chunk = Math.ceil(dim / parts);
    sizes = range(parts).map((i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
  }
  if (sizes.reduce((a, b) => a + b, 0) !== dim) fail(`split sizes [${sizes}] do not add up to ${dim}`);
  let offset = 0;
  const outputs = sizes.map((s) => {
    const idx = x.shape.map((d, a) => (a === axis ? range(s).map((i) => i + offset) : range(d)));
    offset += s;
    const shape = idx.map((l) => l.length);
    return tensor(shape, x.dtype, x.values ? selectValues(x.shape, x.values, idx) : undefined);
  });
  return { outputs };
};

const pad: OpRule = (ctx) => {
  const x = ctx.input(0);
  const r = x.shape.length;
  let pads: number[];
  let axes = range(r);
  if (ctx.opset < 11) {
    pads = ctx.ints("pads") ?? ctx.ints("paddings") ?? fail("pads is required");
  } else {
    pads = ctx.values(1, "Pad pads");
    const ax = ctx.opset >= 18 ? ctx.optValues(3, "Pad axes") : undefined;
    if (ax) axes = ax.map((a) => normAxis(a, r));
  }
  if (pads.length !== 2 * axes.length) fail(`pads [${pads}] do not fit ${axes.length} axes`);
  const out = x.shape.slice();
  axes.forEach((a, i) => (out[a] += pads[i] + pads[i + axes.length]));
  return { outputs: [tensor(out, x.dtype)] };
};

const expand: OpRule = (ctx) => {
  const x = ctx.input(0);
  const shape = broadcastShapes([x.shape, ctx.values(1, "Expand shape")]);
  const values = x.values && numel(shape) <= VALUE_LIMIT ? broadcastValues(x.shape, x.values, shape) : undefined;
  return { outputs: [tensor(shape, x.dtype, values)] };
};

const tile: OpRule = (ctx) => {
  const x = ctx.input(0);
  const reps = ctx.values(1, "Tile repeats");
  if (reps.length !== x.shape.length) fail(`repeats [${reps}] do not fit [${x.shape}]`);
  return { outputs: [tensor(x.shape.map((d, i) => d * reps[i]), x.dtype)] };
};

const constant: OpRule = (ctx) => {
  const t = ctx.tensor("value");
  if (t) return { outputs: [fromTensor(t)] };
  const attrs = ctx.node.attributes;
  if (attrs.has("value_float")) return { outputs: [tensor([], DataType.FLOAT, [ctx.float("value_float", 0)])] };
  if (attrs.has("value_int")) return { outputs: [tensor([], DataType.INT64, [ctx.int("value_int", 0)])] };
  const fs = ctx.floats("value_floats");
  if (attrs.has("value_floats") && fs) return { outputs: [tensor([fs.length], DataType.FLOAT, fs.slice())] };
  const is = ctx.ints("value_ints");
  if (attrs.has("value_ints") && is) return { outputs: [tensor([is.length], DataType.INT64, is.slice())] };
  return fail("Constant without a supported value attribute");
};

/** TensorInfo of an initializer or Constant: dims always, values when small and present. */
export function fromTensor(t: OnnxTensor): TensorInfo {
  return tensor(t.dims.slice(), t.dataType, tensorValues(t, VALUE_LIMIT));
}

const constantOfShape: OpRule = (ctx) => {
  const shape = ctx.values(0, "ConstantOfShape shape");
  const t = ctx.tensor("value");
  const dtype = t ? t.dataType : DataType.FLOAT;
  const fill = t ? tensorValues(t, 1)?.[0] ?? 0 : 0;
  const n = numel(shape);
  return { outputs: [tensor(shape.slice(), dtype, n <= VALUE_LIMIT ? new Array(n).fill(fill) : undefined)] };
};

const rangeOp: OpRule = (ctx) => {
  const start = ctx.values(0, "Range start")[0];
  const limit = ctx.values(1, "Range limit")[0];
  const delta = ctx.values(2, "Range delta")[0];
  if (delta === 0) fail("Range delta 0");
  const n = Math.max(Math.ceil((limit - start) / delta), 0);
  const dtype = ctx.input(0).dtype;
  const values = n <= VALUE_LIMIT ? range(n).map((i) => cast(start + i * delta, dtype)) : undefined;
  return { outputs: [tensor([n], dtype, values)] };
};

const depthToSpace: OpRule = (ctx) => {
  const [n, c, h, w] = ctx.shape(0);
  const b = ctx.int("blocksize", 0);
  if (b < 1 || c % (b * b) !== 0) fail(`blocksize ${b} does not divide ${c} channels`);
  return { outputs: [tensor([n, c / (b * b), h * b, w * b], ctx.input(0).dtype)] };
};

const spaceToDepth: OpRule = (ctx) => {
  const [n, c, h, w] = ctx.shape(0);
  const b = ctx.int("blocksize", 0);
  if (b < 1 || h % b !== 0 || w % b !== 0) fail(`blocksize ${b} does not divide ${h}x${w}`);
  return { outputs: [tensor([n, c * b * b, h / b, w / b], ctx.input(0).dtype)] };
};

// ---------------------------------------------------------------- registry

const table: [string[], OpRule][] = [
  [["Conv"], conv],
  [["ConvTranspose"], convTranspose],
  [["Gemm"], gemm],
  [["MatMul"], matmul],
  [UNARY_OPS, unary],
  [BINARY_OPS, broadcasting],
  [["Sum", "Mean", "Max", "Min"], broadcasting],
  [["Where"], where],
  [["Clip"], clip],
  [["BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization"], normalisation],
  [["LpNormalization", "MeanVarianceNormalization"], normalisation],
  [["Softmax", "LogSoftmax"], softmax],
  [["MaxPool", "AveragePool", "LpPool"], pool],
  [["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"], globalPool],
  [REDUCE_OPS, reduce],
  [["ArgMax", "ArgMin"], argReduce],
  [["Resize"], resize],
  [["Upsample"], upsample],
  [["Identity", "Dropout"], identity],
  [["Cast", "CastLike"], castOp],
  [["Shape"], shapeOp],
  [["Size"], sizeOp],
  [["Reshape"], reshape],
  [["Flatten"], flatten],
  [["Transpose"], transpose],
  [["Squeeze"], squeeze],
  [["Unsqueeze"], unsqueeze],
  [["Concat"], concat],
  [["Gather"], gather],
  [["GatherElements"], gatherElements],
  [["GatherND"], gatherND],
  [["ScatterND", "ScatterElements", "Scatter"], scatter],
  [["Slice"], slice],
  [["Split"], split],
  [["Pad"], pad],
  [["Expand"], expand],
  [["Tile"], tile],
  [["Constant"], constant],
  [["ConstantOfShape"], constantOfShape],
  [["Range"], rangeOp],
  [["DepthToSpace"], depthToSpace],
  [["SpaceToDepth"], spaceToDepth],
];

/** Cost and shape rules by op type (default ONNX domain only). */
export const OP_RULES: ReadonlyMap<string, OpRule> = new Map(
  table.flatMap(([names, rule]) => names.map((n) => [n, rule] as [string, OpRule])),
);

/**
 * Op types the counter has a rule for, sorted. Anything else (e.g. NonZero,
 * whose output shape depends on data) makes `count` throw UnsupportedOpError.
 *
 * @example
 * ```ts
 * import { SUPPORTED_OPS } from "./mod.ts";
 * SUPPORTED_OPS.includes("ConvTranspose"); // true
 * ```
 */
export const SUPPORTED_OPS: readonly string[] = Object.freeze([...OP_RULES.keys()].sort());
