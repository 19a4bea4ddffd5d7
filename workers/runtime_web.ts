// onnxruntime-web behind the worker's Runtime interface: WASM-SIMD (the serverless path) or WebGPU on a real adapter.
// The package is imported by its bare name (resolved by Deno, as a static import would be): paths that make
// onnxruntime-web fetch its own modules fail inside Deno module workers on blob:/base-null URLs.

import type * as OrtModule from "onnxruntime-web";
import type { Backend, Feed, Tensor } from "./protocol.ts";
import { feedTensor, type Runtime, type RuntimeSession } from "./runtime.ts";

// Spinning off: with several workers' WASM thread pools on the same cores, a busy-waiting thread steals the core
// another session is about to use.
const OPTIONS: OrtModule.InferenceSession.SessionOptions = {
  graphOptimizationLevel: "all",
  extra: { session: { "intra_op.allow_spinning": "0" } },
};

/**
 * The onnxruntime-web runtime. WASM threads are one setting per worker (`ort.env.wasm.numThreads`, fixed before the
 * first session), so `threads` here is the worker's; the per-session `threads` of {@link Runtime.load} is ignored.
 *
 * @example
 * ```ts ignore
 * const runtime = await webRuntime("wasm-simd", 2);
 * ```
 */
export async function webRuntime(backend: Exclude<Backend, "native">, threads: number): Promise<Runtime> {
  // Deno resolves the bare `onnxruntime-web` through the package's "node" export condition, to its Node build, which
  // has no WebGPU backend ("[webgpu] backend not found"): every WebGPU session used to fall back to WASM. A WebGPU
  // worker loads the package's WebGPU build (`onnxruntime-web/webgpu`: WebGPU plus the WASM CPU backend).
  const ort: typeof OrtModule = backend === "webgpu" ? await importWebGpuBuild() : await import("onnxruntime-web");
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  let actual: Backend = backend;
  return {
    get backend() {
      return actual;
    },
    async load(bytes: Uint8Array): Promise<RuntimeSession> {
      let session: OrtModule.InferenceSession;
      try {
        session = await ort.InferenceSession.create(bytes, {
          ...OPTIONS,
          executionProviders: [actual === "webgpu" ? "webgpu" : "wasm"],
        });
      } catch (err) {
        if (actual !== "webgpu") throw err;
        // A WebGPU adapter that cannot host this model: this and later models run on WASM-SIMD, and the worker says so.
        console.warn(`WebGPU cannot host a model (${(err as Error).message.split("\n")[0]}); using WASM-SIMD`);
        actual = "wasm-simd";
        session = await ort.InferenceSession.create(bytes, { ...OPTIONS, executionProviders: ["wasm"] });
      }
      return webSession(ort, session);
    },
  };
}

/**
 * `onnxruntime-web/webgpu`, imported inside a Deno worker. At module evaluation that build resolves its own URL against
 * `location.origin` when a `location` exists; a Deno worker's location is its file: URL, whose origin is "null", and
 * the import throws ("Invalid URL … with base 'null'"). The main thread has no `location`, and the import works there:
 * the worker hides its `location` for the duration of the import, then puts it back. The build's WebAssembly file is
 * read from disk and handed over, so nothing is fetched relative to that URL later.
 */
async function importWebGpuBuild(): Promise<typeof OrtModule> {
  const own = Object.getOwnPropertyDescriptor(globalThis, "location");
  Object.defineProperty(globalThis, "location", { value: undefined, configurable: true, writable: true });
  let ort: typeof OrtModule;
  try {
    ort = await import("onnxruntime-web/webgpu");
  } finally {
    if (own) Object.defineProperty(globalThis, "location", own);
    else delete (globalThis as { location?: unknown }).location;
  }
  const dist = new URL("./", import.meta.resolve("onnxruntime-web/webgpu"));
  ort.env.wasm.wasmBinary = await Deno.readFile(new URL("ort-wasm-simd-threaded.asyncify.wasm", dist));
  return ort;
}

function webSession(ort: typeof OrtModule, session: OrtModule.InferenceSession): RuntimeSession {
  const inputName = session.inputNames[0];
  const runFeeds = async (feeds: Record<string, Feed>) => {
    const inputs: Record<string, OrtModule.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) inputs[name] = feedTensor(ort.Tensor, t);
    const out = await session.run(inputs);
    for (const t of Object.values(inputs)) t.dispose?.();
    const outputs: Record<string, Tensor> = {};
    for (const name of session.outputNames) {
      // WASM outputs are already copied out of the WASM heap; WebGPU ones are downloaded here.
      const t = out[name];
      const data = (t.location === "cpu" ? t.data : await t.getData(true)) as Float32Array;
      outputs[name] = { dims: [...t.dims], data };
    }
    return outputs;
  };
  return {
    run: (data, dims) => runFeeds({ [inputName]: { data, dims } }),
    runFeeds,
    release: () => session.release(),
  };
}
