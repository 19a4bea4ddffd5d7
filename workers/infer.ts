// Inference worker: protocol only. It creates the runtime the pool asked for (workers/runtime.ts), holds one session
// per model, turns each job's input into a tensor (windows of the shared image → lib/image/window.ts), runs one job
// at a time and transfers every output back without a copy.

import { planesTensor, windowsTensor } from "../lib/image/window.ts";
import { summariseBatch } from "../lib/image/tensor.ts";
import { idleRelease, niceThisThread } from "../lib/libc.ts";
import {
  ARENA_LIMITS,
  CRASH_MODEL,
  type FromWorker,
  type Tensor,
  type ToWorker,
  WORKER_NICE,
  type WorkerModel,
} from "./protocol.ts";
import { createRuntime, type RuntimeSession } from "./runtime.ts";

const sessions = new Map<string, RuntimeSession>();
const formats = new Map<string, WorkerModel["input"]>();
const testHooks = Deno.env.get("THRIFTSEG_TEST_HOOKS") === "1";

// One input buffer reused by every job of this worker (jobs run one at a time; the runtime is done with the input when
// run() resolves). A new 4.9 MB array per 640² job cost 13–19 ms of page faults on this class of machine, more than
// filling it. Batches above the worker's share of INPUT_BUFFERS_BYTES (set at init) get their own array, so an extreme
// request does not pin its memory.
let scratchCap = 0; // floats
let scratch: Float32Array | null = null;

// A worker left idle as long as its runtime's arenas are kept (ARENA_LIMITS.idleMs) gives the buffer and its isolate's
// garbage back too (lib/libc.ts idleRelease).
const idle = idleRelease(ARENA_LIMITS.idleMs, () => scratch = null);

function inputBuffer(length: number): Float32Array | undefined {
  if (length > scratchCap) return undefined;
  if (!scratch || scratch.length < length) scratch = new Float32Array(Math.min(scratchCap, Math.max(length, 2 ** 20)));
  return scratch;
}

// Typed view of the worker global (the default lib types `self` as Window).
const scope = self as unknown as {
  postMessage(msg: FromWorker, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};

function post(msg: FromWorker, transfer: Transferable[] = []) {
  scope.postMessage(msg, transfer);
}

async function init(msg: Extract<ToWorker, { type: "init" }>) {
  // Before the runtime starts its threads: they inherit it.
  niceThisThread(WORKER_NICE);
  scratchCap = Math.floor(msg.inputBufferBytes / Float32Array.BYTES_PER_ELEMENT);
  const runtime = await createRuntime(msg.backend, msg.threads, msg.spin);
  for (const m of msg.models) {
    formats.set(m.id, m.input);
    sessions.set(m.id, await runtime.load(m.bytes, msg.threads));
  }
  post({ type: "ready", backend: runtime.backend });
}

async function run(msg: Extract<ToWorker, { type: "run" }>) {
  idle.touch();
  const session = sessions.get(msg.model);
  if (!session) throw new Error(`model ${msg.model} is not loaded in this worker`);
  const [n, c, h, w] = msg.dims;
  const { input } = msg;
  const into = input.kind === "tensor" ? undefined : inputBuffer(n * c * h * w);
  const data = input.kind === "tensor"
    ? input.data
    : input.kind === "planes"
    ? planesTensor(input, h, w, into)
    : windowsTensor(input.image, formats.get(msg.model)!, input.windows, h, w, into);
  const t0 = performance.now();
  let outputs: Record<string, Tensor> = await session.run(data, msg.dims);
  const ms = performance.now() - t0;
  if (input.kind === "windows" && input.summary) {
    const win = input.windows[0];
    outputs = { summary: summariseBatch(Object.values(outputs)[0], win.h, win.w, input.summary) };
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
