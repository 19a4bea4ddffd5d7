// What an inference worker needs from an ONNX runtime, and nothing more: load a model's bytes into a session, run it
// on one float32 NCHW tensor, get every output by name. workers/runtime_web.ts (onnxruntime-web: WASM-SIMD, WebGPU)
// and workers/runtime_node.ts (onnxruntime-node: native CPU) implement it, so workers/infer.ts is only protocol.

import type { Backend, Feed, Tensor } from "./protocol.ts";

/** One loaded model. */
export interface RuntimeSession {
  /** Runs the model on `data` of shape `dims`; every output of the graph by name (float32, owned by the caller). */
  run(data: Float32Array, dims: number[]): Promise<Record<string, Tensor>>;
  /** Runs the model on named inputs (a graph with several: lib/onnx/page.ts); outputs as {@link run}. */
  runFeeds(feeds: Record<string, Feed>): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}

/** The Tensor constructor both onnxruntime packages export, as far as a {@link Feed} needs it. */
type TensorOf<T> = {
  new (type: "int64", data: BigInt64Array, dims: readonly number[]): T;
  new (type: "float32", data: Float32Array, dims: readonly number[]): T;
};

/** A feed as a tensor of the runtime whose Tensor constructor is `Tensor`: float32, or int64 (BigInt64Array data). */
export const feedTensor = <T>(Tensor: TensorOf<T>, t: Feed): T =>
  t.data instanceof BigInt64Array ? new Tensor("int64", t.data, t.dims) : new Tensor("float32", t.data, t.dims);

/** A runtime a worker creates once at init. */
export interface Runtime {
  /** The backend the sessions really run on (a WebGPU runtime that cannot host a model reports `wasm-simd`). */
  readonly backend: Backend;
  /**
   * Loads a model; `threads` is its intra-op thread count (ignored by WebGPU). `spin: false` keeps this session's idle
   * threads from spinning even where the runtime's do (native: a session whose runs are too small to gain from it).
   */
  load(bytes: Uint8Array, threads: number, opts?: { spin?: boolean }): Promise<RuntimeSession>;
  /** Called after each job: the runtime may give memory back (native: past `ARENA_LIMITS.hardMb`). */
  settle?(): void;
}

/**
 * Makes the runtime for `backend` in this worker (`spin`: see InitMessage.spin in protocol.ts; native only). The native module is imported only when asked for, so a WASM or
 * WebGPU worker never loads a native library and needs no `--allow-ffi`.
 *
 * @example
 * ```ts ignore
 * const runtime = await createRuntime("wasm-simd", 2);
 * const session = await runtime.load(modelBytes, 2);
 * const outputs = await session.run(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);
 * ```
 */
export async function createRuntime(backend: Backend, threads: number, spin = false): Promise<Runtime> {
  if (backend === "native") return (await import("./runtime_node.ts")).nodeRuntime(undefined, spin);
  return await (await import("./runtime_web.ts")).webRuntime(backend, threads);
}
