// Public surface of the ONNX FLOP counter: decode a model, then ask what one
// execution costs at a given input shape (DESIGN.md §3).
//
// @example
// ```ts
// import { CostCounter } from "./lib/onnx/mod.ts";
// const counter = CostCounter.fromBytes(await Deno.readFile("model.onnx"));
// counter.count([1, 3, 640, 640]); // { macs, flops, gmacs, gflops }
// ```

export { CostCounter } from "./counter.ts";
export type { Cost, CostReport, CounterInput, OpTypeCost } from "./counter.ts";
export { OnnxShapeError, UnsupportedOpError } from "./errors.ts";
export { DataType, decodeModel, OnnxDecodeError, tensorValues } from "./proto.ts";
export type { OnnxAttribute, OnnxGraph, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from "./proto.ts";
export { OP_RULES, SOFTMAX_FLOPS } from "./ops.ts";
