// Inference worker: holds one onnxruntime-web session per model and runs
// jobs one at a time. Plain `import * as ort` is the import path that works
// inside Deno module workers (others fail on blob:/base-null URLs).

import * as ort from "onnxruntime-web";
import { windowsTensor } from "../lib/image/window.ts";
import {
  type Backend,
  CRASH_MODEL,
  type FromWorker,
  type Tensor,
  type ToWorker,
  type WorkerModel,
} from "./protocol.ts";

const sessions = new Map<string, ort.InferenceSession>();
const formats = new Map<string, WorkerModel["input"]>();
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
    formats.set(m.id, m.input);
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

async function run(msg: Extract<ToWorker, { type: "run" }>) {
  const session = sessions.get(msg.model);
  if (!session) throw new Error(`model ${msg.model} is not loaded in this worker`);
  const [, , h, w] = msg.dims;
  const data = msg.input.kind === "tensor"
    ? msg.input.data
    : windowsTensor(msg.input.image, formats.get(msg.model)!, msg.input.windows, h, w);
  const t0 = performance.now();
  const input = new ort.Tensor("float32", data, msg.dims);
  const out = await session.run({ [session.inputNames[0]]: input });
  const ms = performance.now() - t0;
  input.dispose?.();
  const outputs: Record<string, Tensor> = {};
  for (const name of session.outputNames) {
    outputs[name] = { dims: [...out[name].dims], data: out[name].data as Float32Array };
  }
  const buffers = [...new Set(Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer))];
  post({ type: "result", job: msg.job, outputs, ms }, buffers);
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
