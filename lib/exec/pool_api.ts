// What a WorkerPool's callers pass and get back: its options, per-job hints, a job's result, its counters.

import type { LayoutOptions } from "./layout.ts";
import type { Backend, Tensor, WorkerModel } from "../../workers/protocol.ts";

/** Options for `WorkerPool`: its layout (workers, threads, a lone worker: lib/exec/layout.ts) and the rest. */
export interface WorkerPoolOptions extends LayoutOptions {
  queueLimit: number;
  backend: Backend;
  models: WorkerModel[];
  /** A run longer than this is a hang: its worker is replaced (default 60 s). */
  hangMs?: number;
  /**
   * A WASM worker that ran a job over this many input pixels (N·H·W) is replaced once it is done: WebAssembly memory
   * only grows, so this returns what a rare large request took (default 2²¹; native sessions free memory themselves).
   */
  recycleAbovePixels?: number;
  /**
   * At most one recycle per worker slot in this many ms (default lib/exec/recycle.ts `RECYCLE_COOLDOWN_MS`): a large
   * job within it leaves the recycle for when it ends.
   */
  recycleCooldownMs?: number;
}

/** Per-job hints from the executor. */
export interface RunOptions {
  /** FLOPs of the job (feeds the throughput estimate). */
  flops?: number;
  /** Jobs with a lower priority value run first (the executor passes its request's start time); default: now. */
  priority?: number;
}

/** Result of one model execution. */
export interface RunResult {
  /** Every output of the model, by name. */
  outputs: Record<string, Tensor>;
  /** Time inside the worker's session.run. */
  inferMs: number;
  /** Time the job waited for a free worker. */
  queueMs: number;
  /** Threads of the worker that ran it (the lone worker's, or the pool's `threads`). */
  threads: number;
}

/** Counters exposed for /readyz and metrics. */
export interface PoolStats {
  size: number;
  ready: number;
  busy: number;
  queued: number;
  restarts: number;
  /** Workers replaced after a large job to give its memory back. */
  recycled: number;
  backend: Backend;
}
