// Inference worker: holds one onnxruntime-web session per model and runs
// jobs one at a time. Plain `import * as ort` is the import path that works
// inside Deno module workers (others fail on blob:/base-null URLs).

import * as ort from "onnxruntime-web";
import { type Backend, CRASH_MODEL, type FromWorker, type ToWorker } from "./protocol.ts";

const sessions = new Map<string, ort.InferenceSession>();
const testHooks = Deno.env.get("THRIFTSEG_TEST_HOOKS") === "1";

// Typed view of the worker global (the default lib types `self` as Window).
const scope = self as unknown as {
  postMessage(msg: FromWorker, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};

function post(msg: FromWorker, transfer: Transferable[] = []) {
  scope.postMessage(msg, transfer);
}

async function init(msg: Extract<ToWorker, { type: "init" }>) {
  ort.env.wasm.numThreads = msg.wasmThreads;
  ort.env.logLevel = "error";
  let backend: Backend = msg.backend;
  for (const m of msg.models) {
    const providers = backend === "webgpu" ? ["webgpu"] : ["wasm"];
    try {
      sessions.set(
        m.id,
        await ort.InferenceSession.create(m.bytes, {
          executionProviders: providers,
          graphOptimizationLevel: "all",
        }),
      );
    } catch (err) {
      if (backend !== "webgpu") throw err;
      // A WebGPU adapter that cannot host the model: fall back for all models.
      backend = "wasm-simd";
      sessions.clear();
      return init({ ...msg, backend });
    }
  }
  post({ type: "ready", backend });
}

/**
 * A model with several outputs (e.g. a routing policy's `actions` and `gain`, both [N, A, h, w]) answers with them
 * concatenated along axis 1 in the graph's output order; they must agree on every other axis.
 */
function joinOutputs(tensors: ort.Tensor[]): { dims: number[]; data: Float32Array } {
  if (tensors.length === 1) return { dims: [...tensors[0].dims], data: tensors[0].data as Float32Array };
  const [n, , ...rest] = tensors[0].dims;
  const inner = rest.reduce((a, b) => a * b, 1);
  for (const t of tensors) {
    if (t.dims.length !== tensors[0].dims.length || t.dims[0] !== n || t.dims.slice(2).some((d, i) => d !== rest[i])) {
      throw new Error(
        `outputs of different shapes cannot be joined: ${tensors.map((x) => x.dims.join("x")).join(", ")}`,
      );
    }
  }
  const channels = tensors.reduce((s, t) => s + t.dims[1], 0);
  const data = new Float32Array(n * channels * inner);
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (const t of tensors) {
      const len = t.dims[1] * inner;
      data.set((t.data as Float32Array).subarray(b * len, (b + 1) * len), o);
      o += len;
    }
  }
  return { dims: [n, channels, ...rest], data };
}

async function run(msg: Extract<ToWorker, { type: "run" }>) {
  const session = sessions.get(msg.model);
  if (!session) throw new Error(`model ${msg.model} is not loaded in this worker`);
  const t0 = performance.now();
  const input = new ort.Tensor("float32", msg.data, msg.dims);
  const out = await session.run({ [session.inputNames[0]]: input });
  const { dims, data } = joinOutputs(session.outputNames.map((name) => out[name]));
  const ms = performance.now() - t0;
  input.dispose?.();
  post({ type: "result", job: msg.job, dims, data, ms }, [data.buffer as ArrayBuffer]);
}

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === "init") {
    init(msg).catch((err) => post({ type: "fail", job: null, message: String(err?.message ?? err) }));
  } else if (msg.type === "run") {
    if (testHooks && msg.model === CRASH_MODEL) {
      // An uncaught error kills the worker the way a real fault would.
      throw new Error("worker crash requested by test hook");
    }
    run(msg).catch((err) => post({ type: "fail", job: msg.job, message: String(err?.message ?? err) }));
  }
};
