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
  type LevelsInput,
  type Tensor,
  type ToWorker,
  WORKER_NICE,
  type WorkerModel,
} from "./protocol.ts";
import { createRuntime, type Runtime, type RuntimeSession } from "./runtime.ts";
import { blankPixels, FeedArena, pageFeeds } from "./levels.ts";
import { pageGraph, pageNames, type PageSource, PRELOADED_WINDOWS } from "../lib/onnx/page.ts";

const sessions = new Map<string, RuntimeSession>();
const formats = new Map<string, WorkerModel["input"]>();
// Models run level by level: their page graphs (lib/onnx/page.ts), one per number of windows, with or without a blank
// part, made and loaded at init up to PRELOADED_WINDOWS windows (lib/onnx/page_inputs.ts), others the first time a job
// needs them. Page graphs spin as the worker's sessions do (a spinning pool stops when its run ends:
// workers/runtime_node.ts).
const pageModels = new Map<string, { source: PageSource; sessions: Map<string, Promise<RuntimeSession>> }>();
// Page graphs kept loaded per model (one per number of windows and blank part that jobs asked for): each keeps an
// activation arena of its own.
const PAGE_SESSIONS = 8;
let threads = 1;
// Set at init; after each job the runtime may give memory back (Runtime.settle).
let runtime: Runtime | undefined;
const testHooks = Deno.env.get("THRIFTSEG_TEST_HOOKS") === "1";

// One input buffer reused by every job of this worker (jobs run one at a time; the runtime is done with the input when
// run() resolves). A new 4.9 MB array per 640² job cost 13–19 ms of page faults on this class of machine, more than
// filling it. Batches above the worker's share of INPUT_BUFFERS_BYTES (set at init) get their own array, so an extreme
// request does not pin its memory.
let inputs = new FeedArena(0, 1);

// A page graph job's pooling weights (workers/levels.ts pageFeeds: 3–8 MB on a screenshot, most of it one window's
// weights shifted to each position of a 3×3 kernel at stride 4) live in a second buffer reused the same way, up to the
// same cap. New arrays per job cost their page faults, and the collections their external memory set off, in the
// job's time: pageFeeds took 1.3–24 ms with them, 1.2–5.3 ms so, on the default plan of three test screenshots
// natively in the server's layout (`.scratch/phases.ts native 6 …` with a timing print in runLevelsJob).
let feeds = new FeedArena(0);

// A worker left idle as long as its runtime's arenas are kept (ARENA_LIMITS.idleMs) gives the buffers and its
// isolate's garbage back too (lib/libc.ts idleRelease).
const idle = idleRelease(ARENA_LIMITS.idleMs, () => {
  inputs.release();
  feeds.release();
});

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
  const cap = Math.floor(msg.inputBufferBytes / Float32Array.BYTES_PER_ELEMENT);
  [inputs, feeds] = [new FeedArena(cap, 1), new FeedArena(cap)];
  const rt = runtime = await createRuntime(msg.backend, msg.threads, msg.spin);
  threads = msg.threads;
  for (const m of msg.models) {
    formats.set(m.id, m.input);
    sessions.set(m.id, await rt.load(m.bytes, msg.threads));
    if (m.levels) {
      pageModels.set(m.id, { source: m.levels, sessions: new Map() });
      for (let n = 1; n <= PRELOADED_WINDOWS; n++) await pageSession(m.id, n, true);
      await pageSession(m.id, 1, false);
    }
  }
  post({ type: "ready", backend: rt.backend });
}

/**
 * The model input a {@link prepare} message built (in `inputs`), for the `levels` job of the same key and windows, or
 * the `windows` job of that key on the one window it was built for (a cover of one window over the whole page, where
 * the planner ran the whole image instead); any other job takes the buffer and drops it.
 */
let prepared:
  | { key: string; model: string; windows: string; tensors: { dims: number[]; data: Float32Array }[] }
  | null = null;

/** Every window's model input side by side in one buffer of `inputs`, one tensor each. */
function windowInputs(model: string, image: LevelsInput["image"], wins: LevelsInput["windows"], c: number) {
  const fmt = formats.get(model)!;
  const sizes = wins.map((w) => c * w.h * w.w);
  const buffer = inputs.job()(sizes.reduce((a, b) => a + b, 0), false);
  let at = 0;
  return wins.map((win, i) => {
    const into = buffer.subarray(at, at += sizes[i]);
    return { dims: [1, c, win.h, win.w], data: windowsTensor(image, fmt, [win], win.h, win.w, into) };
  });
}

/** The prepared input where it was built for this job's key, model and windows (null else); the job takes it. */
function takePrepared(model: string, job: { key?: string; windows: unknown[] }) {
  const p = prepared;
  prepared = null;
  return p && p.key === job.key && p.model === model && p.windows === JSON.stringify(job.windows) ? p : null;
}

function prepare(msg: Extract<ToWorker, { type: "prepare" }>) {
  idle.touch();
  const fmt = formats.get(msg.model);
  if (!fmt || !pageModels.has(msg.model)) return;
  const tensors = windowInputs(msg.model, msg.image, msg.windows, fmt.channels);
  prepared = { key: msg.key, model: msg.model, windows: JSON.stringify(msg.windows), tensors };
}

async function run(msg: Extract<ToWorker, { type: "run" }>) {
  idle.touch();
  const session = sessions.get(msg.model);
  if (!session) throw new Error(`model ${msg.model} is not loaded in this worker`);
  const { input } = msg;
  if (input.kind === "levels") return await runLevelsJob(msg, input);
  // Any job takes the prepared buffer; a `windows` one may use it.
  const mine = input.kind === "windows" ? takePrepared(msg.model, input) : null;
  prepared = null;
  const ready = mine && mine.tensors[0].dims.join() === msg.dims.join() ? mine.tensors[0].data : null;
  const [n, c, h, w] = msg.dims;
  const into = input.kind === "tensor" || ready ? undefined : inputs.job()(n * c * h * w, false);
  const data = input.kind === "tensor"
    ? input.data
    : input.kind === "planes"
    ? planesTensor(input, h, w, into)
    : ready ?? windowsTensor(input.image, formats.get(msg.model)!, input.windows, h, w, into);
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

/**
 * Model `id`'s page graph of `n` windows, with or without its `blank` part, loaded. At most {@link PAGE_SESSIONS} stay
 * loaded per model: the one used longest ago goes first.
 */
function pageSession(id: string, n: number, blank: boolean): Promise<RuntimeSession> {
  const m = pageModels.get(id);
  if (!m) throw new Error(`model ${id} is not cut in levels`);
  const key = `${n}${blank ? "" : " without blank"}`;
  let s = m.sessions.get(key);
  if (s) m.sessions.delete(key);
  else {
    s = runtime!.load(pageGraph(m.source, n, [], blank), threads);
    // A failed load is not kept: the next job tries again.
    s.catch(() => m.sessions.delete(key));
  }
  m.sessions.set(key, s);
  for (const [k, old] of m.sessions) {
    if (m.sessions.size <= PAGE_SESSIONS) break;
    // Jobs run one at a time here: none is running on it.
    m.sessions.delete(k);
    old.then((o) => o.release(), () => {});
  }
  return s;
}

/** A `levels` job: every window of one request in one run of the model's page graph (./levels.ts `pageFeeds`). */
async function runLevelsJob(msg: Extract<ToWorker, { type: "run" }>, input: LevelsInput) {
  const { source } = pageModels.get(msg.model) ?? {};
  if (!source) throw new Error(`model ${msg.model} is not cut in levels`);
  const session = await pageSession(msg.model, input.windows.length, input.colours.length > 0);
  const fmt = formats.get(msg.model)!;
  const c = msg.dims[1];
  const windows = takePrepared(msg.model, input)?.tensors ?? windowInputs(msg.model, input.image, input.windows, c);
  const jobFeeds = pageFeeds(source, input, windows, blankPixels(input, { ...fmt, channels: c }), feeds.job());
  const t0 = performance.now();
  const out = await session.runFeeds(jobFeeds);
  const ms = performance.now() - t0;
  const outputs: Record<string, Tensor> = {};
  input.tails.forEach((regions, i) =>
    regions.forEach((_, j) => outputs[`${i}.${j}`] = out[pageNames.output(source, i, j)])
  );
  const buffers = [...new Set(Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer))];
  post({ type: "result", job: msg.job, outputs, ms }, buffers);
}

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === "init") {
    init(msg).catch((err) => post({ type: "fail", job: null, message: String(err?.message ?? err) }));
  } else if (msg.type === "prepare") {
    // A hint: whatever goes wrong here, the job builds its own input.
    try {
      prepare(msg);
    } catch {
      prepared = null;
    }
  } else if (msg.type === "run") {
    if (testHooks && msg.model === CRASH_MODEL) {
      // An uncaught error kills the worker the way a real fault would.
      throw new Error("worker crash requested by test hook");
    }
    run(msg).catch((err) => post({ type: "fail", job: msg.job, message: String(err?.message ?? err) }))
      .finally(() => runtime?.settle?.());
  }
};
