// onnxruntime-node (native CPU execution provider) behind the worker's Runtime interface: the self-hosting path.
// Deno loads its N-API addon inside the worker; that needs `--allow-ffi`.

import * as ort from "onnxruntime-node";
import type { Tensor } from "./protocol.ts";
import type { Runtime, RuntimeSession } from "./runtime.ts";

/**
 * The native runtime. Each session gets its own intra-op thread pool of `threads` threads; one inter-op thread
 * (the text and zoo graphs are chains, so parallel branches buy nothing). Spinning is off: a pool thread that
 * busy-waits between ops steals the core another worker's session is about to use.
 *
 * @example
 * ```ts ignore
 * const session = await nodeRuntime().load(modelBytes, 2);
 * ```
 */
export function nodeRuntime(): Runtime {
  return {
    backend: "native",
    async load(bytes: Uint8Array, threads: number): Promise<RuntimeSession> {
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: ["cpu"],
        graphOptimizationLevel: "all",
        executionMode: "sequential",
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        extra: { session: { "intra_op.allow_spinning": "0" } },
      });
      return nodeSession(session);
    },
  };
}

/** Inputs above this many floats (about 1 MP of 3 channels) shrink the arena after their run. */
const SHRINK_ABOVE_FLOATS = 3 * 1024 * 1024;

function nodeSession(session: ort.InferenceSession): RuntimeSession {
  const inputName = session.inputNames[0];
  return {
    async run(data, dims) {
      // The CPU arena keeps what a run needed; after a large input it gives the unused part back (shrinking costs a
      // little, so only then): RSS stays bounded without paying fresh allocations on every ordinary run.
      const options = data.length > SHRINK_ABOVE_FLOATS
        ? { extra: { memory: { enable_memory_arena_shrinkage: "cpu:0" } } }
        : {};
      const out = await session.run({ [inputName]: new ort.Tensor("float32", data, dims) }, options);
      const outputs: Record<string, Tensor> = {};
      for (const name of session.outputNames) {
        const t = out[name];
        let data = t.data as Float32Array;
        // The result must be a plain, whole ArrayBuffer the worker can transfer to the main thread without a copy.
        if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = data.slice();
        outputs[name] = { dims: [...t.dims], data };
      }
      return outputs;
    },
    release: () => session.release(),
  };
}
