// Typed errors of the FLOP counter (decode errors live with the decoder in
// proto.ts). The HTTP layer maps them; nothing here knows about HTTP.

/**
 * The graph uses op types that have no cost rule. Counting them as zero would
 * under-bill silently, so the counter refuses instead.
 *
 * @example
 * ```ts
 * import { CostCounter, UnsupportedOpError } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * try {
 *   CostCounter.fromBytes(bytes).count([1, 3, 224, 224]);
 * } catch (e) {
 *   if (e instanceof UnsupportedOpError) console.error(e.ops); // e.g. ["Einsum"]
 * }
 * ```
 */
export class UnsupportedOpError extends Error {
  /** Every distinct op type without a rule, sorted. */
  readonly ops: string[];

  /** Builds the message from the op types; duplicates are dropped. */
  constructor(ops: string[]) {
    const sorted = [...new Set(ops)].sort();
    super(`unsupported ONNX op type${sorted.length === 1 ? "" : "s"} (no cost rule): ${sorted.join(", ")}`);
    this.name = "UnsupportedOpError";
    this.ops = sorted;
  }
}

/**
 * Shapes could not be inferred: bad input shape, inconsistent graph, or a
 * shape that depends on data the counter cannot know statically.
 *
 * @example
 * ```ts
 * import { CostCounter, OnnxShapeError } from "./mod.ts";
 * const bytes = await Deno.readFile("tests/fixtures/onnx/resnet18.nodata.onnx");
 * try {
 *   CostCounter.fromBytes(bytes).count([1, 4, 224, 224]); // the model fixes 3 channels
 * } catch (e) {
 *   if (!(e instanceof OnnxShapeError)) throw e;
 * }
 * ```
 */
export class OnnxShapeError extends Error {
  /** Builds the error; the counter prefixes the failing node. */
  constructor(message: string) {
    super(message);
    this.name = "OnnxShapeError";
  }
}
