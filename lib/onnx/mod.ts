/**
 * The ONNX FLOP counter: decode a model, then ask what one execution costs at
 * a given input shape (DESIGN.md §3). Rules per op are documented in ops.ts.
 *
 * @example
 * ```ts
 * import { CostCounter } from "./mod.ts";
 * const counter = CostCounter.fromBytes(await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx"));
 * counter.count([1, 3, 224, 224]); // { macs, flops, gmacs, gflops }
 * ```
 * @module
 */

export { CostCounter } from "./counter.ts";
export type { Cost, CostReport, CounterInput, OpTypeCost } from "./counter.ts";
export { OnnxShapeError, UnsupportedOpError } from "./errors.ts";
export { AttributeType, DataType, decodeModel, numel, OnnxDecodeError, tensorValues } from "./proto.ts";
export type { OnnxAttribute, OnnxGraph, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from "./proto.ts";
export { SOFTMAX_FLOPS, SUPPORTED_OPS } from "./ops.ts";
