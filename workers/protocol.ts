// The messages between the WorkerPool (main thread) and an inference worker, declared once: what a job asks for
// (a raw tensor, or windows of the request's image that the worker turns into the model's input itself) and what
// comes back (every output of the model, by name).

import type { InputFormat, PlanesInput, RgbaImage, SummaryKind, Window } from "../lib/image/mod.ts";
import type { PageSource } from "../lib/onnx/page.ts";

/**
 * Which runtime a worker runs its sessions on: onnxruntime-node's native CPU provider, or onnxruntime-web on WebGPU
 * or WASM-SIMD. The name appears as is in `X-Backend`, the JSON `backend`, /readyz and /metrics.
 */
export type Backend = "native" | "webgpu" | "wasm-simd";

/** A float32 tensor. */
export interface Tensor {
  dims: number[];
  data: Float32Array;
}

/** A model input: a float32 tensor, or an int64 one (a page graph's crop positions, lib/onnx/page.ts). */
export type Feed = Tensor | { dims: number[]; data: BigInt64Array };

/** An image shared with the workers without copying: its RGBA bytes live in a SharedArrayBuffer. */
export type SharedImage = RgbaImage;

/**
 * What a model runs on: a ready tensor (transferred to the worker); windows of a shared image that the worker cuts,
 * converts to the model's input format (see lib/image/window.ts) and resizes to `dims` itself; or per-pixel planes
 * (transferred) that the worker scales and pads to `dims` (a routing policy's features). The worker builds its
 * input in memory it reuses: a padded tensor built on the main thread cost it page faults for every page of padding.
 */
export type ModelInput =
  | { kind: "tensor"; data: Float32Array }
  | {
    kind: "windows";
    image: SharedImage;
    windows: Window[];
    /** The request's key of a {@link PrepareMessage} sent for these windows, if any (one window: the whole page). */
    key?: string;
    /**
     * Return, instead of the first output's class scores, their per-pixel summary at the windows' size as the output
     * `summary` (lib/image `summariseBatch`: [N, 3, h, w] top probability, class, entropy for "all"; [N, 1, h, w] the
     * class for "class"): the softmax over C classes runs in the worker instead of on the main thread.
     */
    summary?: SummaryKind;
  }
  | PlanesModelInput
  | LevelsInput;

/**
 * Windows of a shared image run level by level (workers/levels.ts): every global average pool of the model averages
 * over the whole padded page — the windows' own feature maps where they cover it, the value of blank page of its
 * colour where they do not — instead of over each window alone. The job's outputs are each window's model output on
 * each of its tail regions, named `<window>.<region>` by their indices.
 */
export interface LevelsInput {
  kind: "levels";
  image: SharedImage;
  windows: Window[];
  /** The request's key of a {@link PrepareMessage} sent for these windows, if any. */
  key?: string;
  /** Per window, the page region it counts first (its core, in whole cells); what halos add is counted after. */
  counted: Window[];
  /**
   * Per window, the regions its model's tail runs on (lib/onnx/tail.ts; up to the model's tail slots; the whole window,
   * alone, for a model without a tail): its outputs cover those regions, one each.
   */
  tails: Window[][];
  /** The page the pools average over: the image padded to the model's multiple. */
  page: { w: number; h: number };
  /**
   * The image's size (the windows' image): the page past it is the model's zero padding, as the whole-image run pads
   * it; the blank strips (lib/onnx/page.ts `STRIP`) end with as much of it.
   */
  size: { w: number; h: number };
  /** Cell size of `cellColour`'s grid, px. */
  cell: number;
  /** RGBA bytes of each blank colour. */
  colours: Uint8Array;
  /** Per cell of the page's grid (row-major), the index of the colour its area counts at where no window covers it. */
  cellColour: Uint8Array;
}

/** Planes a worker turns into a [1, P, H, W] input (lib/image/window.ts `planesTensor`). */
export type PlanesModelInput = { kind: "planes" } & PlanesInput;

/** A model the workers load: its ONNX bytes and how its input is made from pixels. */
export interface WorkerModel {
  id: string;
  bytes: Uint8Array;
  input: InputFormat;
  /** What its page graphs are made from (lib/onnx/page.ts), when it runs level by level. */
  levels?: PageSource;
}

/** main → worker: create sessions for these models. */
export interface InitMessage {
  type: "init";
  backend: Backend;
  /** Intra-op threads of each session (native) or WASM threads of the worker (onnxruntime-web). */
  threads: number;
  /**
   * Native: whether idle intra-op threads spin (busy-wait) for the next operator instead of sleeping. Faster alone
   * (a 576×416 text run: 33 vs 41 ms), but a spinning pool takes the cores another worker's session needs, so the
   * pool asks for it only when it has a single worker.
   */
  spin: boolean;
  /**
   * The most memory this worker keeps for reuse as model input: its share of {@link INPUT_BUFFERS_BYTES}. A page graph
   * job's large feeds (workers/levels.ts `FeedArena`) have a buffer of their own under the same cap.
   */
  inputBufferBytes: number;
  models: WorkerModel[];
}

/** main → worker: run one model on one (batched) input of shape `dims` [N, C, H, W]. */
export interface RunMessage {
  type: "run";
  job: number;
  model: string;
  dims: number[];
  input: ModelInput;
}

/**
 * main → worker: the windows of a `levels` job about to be sent (the same `key`), while the planner still cuts their
 * tail regions: the worker builds their model input now, for the job to find ready. A hint: a worker that runs another
 * job first drops it, and a job with another key builds its own.
 */
export interface PrepareMessage {
  type: "prepare";
  model: string;
  key: string;
  image: SharedImage;
  windows: Window[];
}

/** Any message the main thread sends. */
export type ToWorker = InitMessage | RunMessage | PrepareMessage;

/** Model id that makes a worker throw while holding a job (only with THRIFTSEG_TEST_HOOKS=1). */
export const CRASH_MODEL = "__crash__";

/** worker → main: sessions are ready. */
export interface ReadyMessage {
  type: "ready";
  backend: Backend;
}

/** worker → main: a job finished; every output of the graph, by its name. */
export interface ResultMessage {
  type: "result";
  job: number;
  outputs: Record<string, Tensor>;
  /** Time inside session.run. */
  ms: number;
}

/** worker → main: a job or the init failed. */
export interface FailMessage {
  type: "fail";
  job: number | null;
  message: string;
}

/** Any message a worker sends. */
export type FromWorker = ReadyMessage | ResultMessage | FailMessage;

/**
 * Memory bounds of the native runtime (measured by `deno task soak`, docs/RELIABILITY.md). A worker's sessions share
 * one CPU arena (workers/ort_arena.ts), which keeps the peak of the largest input they have run and never gives it
 * back: onnxruntime-node does not pass run options' `memory.enable_memory_arena_shrinkage` through, and without the
 * arena every run pays fresh allocations (3–4× the model time). A new arena with its sessions recreated does give it
 * back (release + create: about 20 + 50 ms for PP-OCRv4), so that is done once a worker has been idle a while with the
 * process above its baseline, or at once when the process passes a hard limit. The first run of a recreated session
 * pays the arena's growth again (about 2–3× a warm run; `deno task bench` showed it at 1920×1080 when the idle time was
 * 5 s and rounds were 40 s apart): hence a long idle time, one a steady or bursty client does not hit.
 */
export const ARENA_LIMITS = {
  /** Idle time of a worker after which its arena is given back (when over `idleAboveRatio`), ms. */
  idleMs: 60_000,
  /**
   * Where sessions keep arenas of their own, recreate them on idle only when the process RSS is above this multiple
   * of its RSS at this runtime's first run. A worker whose sessions share an arena gives it back on idle whenever it
   * ran since: the arena may hold other workers' growth, and the first worker's trim would keep the rest below this
   * (`deno task soak --quick --only a`: RSS 1,220 before the hostile inputs, peak 1,697, 1,235 after the idle time
   * with this ratio, 869 without it; before the shared arena, 1,190 → 843, peak 2,906).
   */
  idleAboveRatio: 1.25,
  /**
   * Process RSS past which a worker's arena is given back right after the job, MiB. An arena keeps the peak of the
   * largest shape it ran, not of every shape: the server's native pool running fixed and default on all 42 text eval
   * pages (phone 1170×2532 to desktop 2400×1350) in turn levelled off at 2.4 GB RSS with no limit, when each session
   * had an arena of its own (.scratch/rssgrow.ts). Under the limit's old 2048 the large pages' peaks crossed it, every
   * job recreated its sessions, and each next run grew its arenas again: a 2400×1350 page took 2.7× a 1920×1080 one
   * instead of 1.7×, and the default plan's time jumped run to run. Budgets then added the page graphs of other
   * window counts, each with its own arena: fixed, the default and budgets of 75, 50 and 25 % on the 20 test
   * screenshots, three times over (`deno run -A bench/eval/mixed_rss.ts`), swung between 2.4 and 3.1 GB (peak 3.2–3.3)
   * as this limit recreated the sessions: in two runs minutes apart, 5 and 4 of the last 200 requests took over 1 s
   * (up to 2.4 s), p95 698 and 831 ms. With one arena per worker, run beside each: 2.5 GB throughout (peak 2.6), none
   * over 1 s, p95 530 and 732 ms (the mean of fixed 430 → 349 and 566 → 470 ms, of the default 364 → 271 and 413 →
   * 413 ms: the machine's speed moved between the pairs).
   */
  hardMb: 3072,
  /**
   * Growth of the process RSS since a worker last gave its arena back before it does so again past `hardMb`, MiB.
   * Memory other than the arenas (a large upload's buffers, another pool in the same process) can keep the process past
   * the limit: without this, every job then recreated all of the worker's sessions, for nothing. The test suite's
   * process is such a one (over 4 GB): its server tests ran 2–30× slower with the arena given back after every job.
   */
  regrowMb: 512,
};

/**
 * Niceness of the inference and decode workers' threads (and the threads their runtimes start), where the server may
 * set it (native backend, Linux): the main thread answers HTTP and /healthz ahead of them (lib/libc.ts
 * `niceThisThread`).
 */
export const WORKER_NICE = 10;

/**
 * Memory a pool's workers keep for building model inputs in (workers/infer.ts): each worker reuses one buffer of up
 * to its share (an equal one; with a lone worker, all of it there and what the others' jobs need beside it:
 * lib/exec/pool.ts), so inputs up to the default MAX_EXEC_PIXELS (2048², 3 channels: 48 MiB, the largest one execution
 * or one page graph's windows may take) are built without page faults where large jobs run, and the pool's idle
 * footprint stays bounded whatever the worker count. A page graph's pooling weights take a second buffer under the same
 * cap, grown only as its jobs need (3–8 MB on a screenshot: workers/infer.ts). At 32 MiB, a 1170×2532 screenshot's
 * input (36 MB) was built in fresh memory: its windows' inputs took 29–41 ms to build instead of 10–22 (`fixed` alike),
 * natively, in the lone worker (a scratch timing of the worker's levels job).
 */
export const INPUT_BUFFERS_BYTES = 48 * 2 ** 20;
