// onnxruntime-web behind the worker's Runtime interface: WASM-SIMD (the serverless path) or WebGPU on a real adapter.
// Plain `import * as ort` is the import path that works inside Deno module workers (others fail on blob:/base-null
// URLs).

import * as ort from "onnxruntime-web";
import type { Backend, Tensor } from "./protocol.ts";
import type { Runtime, RuntimeSession } from "./runtime.ts";

// Spinning off: with several workers' WASM thread pools on the same cores, a busy-waiting thread steals the core
// another session is about to use.
const OPTIONS: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: "all",
  extra: { session: { "intra_op.allow_spinning": "0" } },
};

/**
 * The onnxruntime-web runtime. WASM threads are one setting per worker (`ort.env.wasm.numThreads`, fixed before the
 * first session), so `threads` here is the worker's; the per-session `threads` of {@link Runtime.load} is ignored.
 *
 * @example
 * ```ts ignore
 * const runtime = webRuntime("wasm-simd", 2);
 * ```
 */
export function webRuntime(backend: Exclude<Backend, "native">, threads: number): Runtime {
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  let actual: Backend = backend;
  return {
    get backend() {
      return actual;
    },
    async load(bytes: Uint8Array): Promise<RuntimeSession> {
      let session: ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(bytes, {
          ...OPTIONS,
          executionProviders: [actual === "webgpu" ? "webgpu" : "wasm"],
        });
      } catch (err) {
        if (actual !== "webgpu") throw err;
        // A WebGPU adapter that cannot host this model: this and later models run on WASM-SIMD, and the worker says so.
        actual = "wasm-simd";
        session = await ort.InferenceSession.create(bytes, { ...OPTIONS, executionProviders: ["wasm"] });
      }
      return webSession(session);
    },
  };
}

function webSession(session: ort.InferenceSession): RuntimeSession {
  const inputName = session.inputNames[0];
  return {
    async run(data, dims) {
      const input = new ort.Tensor("float32", data, dims);
      const out = await session.run({ [inputName]: input });
      input.dispose?.();
      const outputs: Record<string, Tensor> = {};
      for (const name of session.outputNames) {
        // WASM outputs are already copied out of the WASM heap; WebGPU ones are downloaded here.
        const t = out[name];
        const data = (t.location === "cpu" ? t.data : await t.getData(true)) as Float32Array;
        outputs[name] = { dims: [...t.dims], data };
      }
      return outputs;
    },
    release: () => session.release(),
  };
}
