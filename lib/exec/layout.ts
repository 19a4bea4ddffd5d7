// Which worker of an inference pool runs what: each worker's threads, spinning and input-buffer share, and the choice
// of a worker for the next job. The policy behind lib/config.ts `poolLayout`, kept apart from the pool's mechanics
// (lib/exec/pool.ts: workers, queue, timeouts, recovery).

import { INPUT_BUFFERS_BYTES } from "../../workers/protocol.ts";

/** How many workers run with how many threads (part of lib/exec/pool.ts `WorkerPoolOptions`). */
export interface LayoutOptions {
  size: number;
  /** Intra-op threads per session (native) or WASM threads per worker (onnxruntime-web); lib/config.ts `poolLayout`. */
  threads: number;
  /**
   * Threads of one more worker, the lone worker, that takes a job only when nothing else is running or waiting: a lone
   * request gets every core (its threads spin between operators), a busy pool runs jobs side by side on the `size`
   * others (no spinning). 0 or absent: no lone worker. Measured in docs/BENCHMARKS.md ("Thread policy").
   */
  loneThreads?: number;
  /**
   * With a lone worker: jobs over this many input pixels (N·H·W) run only there (default 2¹⁹, a 724² image). Side by
   * side they gain little (one large run keeps every core busy) and each worker would keep an arena for their shape:
   * three workers' 1920×1088 arenas pushed the process past ARENA_LIMITS.hardMb, and every run then recreated its
   * sessions (`deno task bench`, 1920×1080 at c=4: 1.49 req/s against 2.66 for one worker with every core).
   */
  loneAbovePixels?: number;
}

/** One worker of a layout. */
export interface WorkerSpec {
  threads: number;
  /** Whether its threads spin between operators (pays only for a worker that runs alone). */
  spin: boolean;
  /** Its share of INPUT_BUFFERS_BYTES (workers/protocol.ts). */
  inputBufferBytes: number;
  lone: boolean;
}

/** What {@link WorkerLayout.pick} needs to know of the next job: its input shape and its exact cost (0: unknown). */
export interface JobShape {
  dims: number[];
  flops: number;
}

/** What {@link WorkerLayout.pick} needs to know of a worker (the pool's slots). */
export interface WorkerState {
  ready: boolean;
  job: unknown;
}

/** Input pixels N·H·W of a job of shape [N, C, H, W]. */
export function inputPixels([n = 1, , h = 1, w = 1]: number[]): number {
  return n * h * w;
}

/**
 * Jobs cheaper than this (FLOPs) never run on the lone worker: their runs are too short for a second thread to pay.
 * Measured on onnxruntime-node, one session alone, 1 vs 2 threads: the digits routing policy on a 256² scene (0.018
 * GFLOPs, 0.25 ms) gains nothing; micrograph f0 on a 128² window (0.029 GFLOPs) 1.3×, digits f1 on an 80² tile (0.079
 * GFLOPs) 1.5×, f0 on a whole 256² scene 1.5×, f2 on it 1.9×. Counted in FLOPs, not pixels: an earlier rule by item
 * pixels (over 256²) kept a lone digits or micrograph request on one thread, f2 on a 256² scene included. That rule
 * came from soak phase (b) (a 256² digits scene in adaptive mode), where small jobs on the lone worker ran beside the
 * rest of their request: the pool dispatched a request's first job before the others were queued, so it looked alone
 * (lib/exec/pool.ts now queues them together). Rerun with the server's default layout (`deno run -A bench/soak.ts
 * --quick --only b`, `baseEnv` without WORKERS and THREADS), old rule → this one: admitted p99 58 and 48 → 52 and 49
 * ms over two runs each; in the second, unloaded p50 29 → 24 ms, capacity 24.6 → 25.8 req/s, 517 → 521 answered in 10
 * s of 3× overload.
 */
const LONE_MIN_FLOPS = 2.5e7;

/** Default {@link LayoutOptions.loneAbovePixels}. */
const LONE_ABOVE_PIXELS = 2 ** 19;

/**
 * The workers of a pool and the rule that gives each job one of them.
 *
 * @example
 * ```ts
 * import { WorkerLayout } from "./layout.ts";
 * const layout = new WorkerLayout({ size: 2, threads: 1, loneThreads: 2 });
 * layout.workers.map((w) => w.threads); // [1, 1, 2]
 * const idle = { ready: true, job: null };
 * layout.pick({ dims: [1, 3, 640, 640], flops: 4.8e9 }, 1, [idle, idle, idle]); // 2: alone, on the lone worker
 * ```
 */
export class WorkerLayout {
  readonly workers: WorkerSpec[];
  readonly #lone: number;
  readonly #loneAbove: number;

  constructor({ size, threads, loneThreads = 0, loneAbovePixels = LONE_ABOVE_PIXELS }: LayoutOptions) {
    // Input buffers: an equal share each, except with a lone worker, which keeps all of them (large jobs run there
    // only) while the others keep what their largest job needs (with equal thirds a 1920×1088 input did not fit a
    // worker's buffer and was built in fresh memory: in `deno task bench` 1080p at c=1 spent 40% of its time outside
    // the model, 17–19% in the runs before and after).
    const others = loneThreads
      ? Math.min(INPUT_BUFFERS_BYTES, 3 * Float32Array.BYTES_PER_ELEMENT * loneAbovePixels)
      : Math.floor(INPUT_BUFFERS_BYTES / size);
    this.workers = Array.from({ length: size }, () => ({
      threads,
      // Spinning pays only when no other worker's session competes for the cores.
      spin: size === 1 && !loneThreads,
      inputBufferBytes: others,
      lone: false,
    }));
    if (loneThreads) {
      this.workers.push({ threads: loneThreads, spin: true, inputBufferBytes: INPUT_BUFFERS_BYTES, lone: true });
    }
    this.#lone = loneThreads ? size : -1;
    this.#loneAbove = loneAbovePixels;
  }

  /**
   * The worker for `job`, the first of `waiting` jobs, given the workers' states: the lone worker when a job that is
   * not small ({@link LONE_MIN_FLOPS}; unknown FLOPs count as small) would run alone (nothing running, nothing else
   * waiting), when it is large, or when no other worker is up; else a free one of the others. -1: the job waits.
   */
  pick({ dims, flops }: JobShape, waiting: number, states: (WorkerState | undefined)[]): number {
    const free = (i: number) => i >= 0 && states[i] !== undefined && states[i]!.ready && !states[i]!.job;
    const lone = this.#lone;
    if (free(lone) && flops >= LONE_MIN_FLOPS && waiting === 1 && !states.some((s) => s?.job)) return lone;
    if (lone >= 0 && states[lone]?.ready && inputPixels(dims) > this.#loneAbove) return free(lone) ? lone : -1;
    const size = lone >= 0 ? lone : this.workers.length;
    for (let i = 0; i < size; i++) if (free(i)) return i;
    for (let i = 0; i < size; i++) if (states[i]?.ready) return -1;
    return free(lone) ? lone : -1;
  }
}
