// What planners hand the Executor (lib/exec/executor.ts) and what it hands back: the calls, their outputs, the
// executions a response reports, and what the executor needs from a worker pool.

import type { RgbaImage, SummaryKind, Window } from "../image/mod.ts";
import type { LoadedModel } from "../models.ts";
import type { LevelsInput, ModelInput, PlanesModelInput, PrepareMessage, Tensor } from "../../workers/protocol.ts";

/** What the executor needs from a worker pool (lib/exec/pool.ts `WorkerPool`). */
export interface InferencePool {
  run(
    model: string,
    dims: number[],
    input: Float32Array | ModelInput,
    timeoutMs: number,
    opts?: { flops?: number; priority?: number },
  ): Promise<{ outputs: Record<string, Tensor>; inferMs: number; queueMs: number }>;
  readonly backend: string;
  /** Workers serving jobs side by side (admission divides queued work by it; default 1). */
  readonly workers?: number;
  /** Expected wait (ms) before a job of this priority starts; absent or 0 when unknown. */
  expectedWaitMs?(priority?: number): number;
  /** Expected time (ms) to run `flops` more at this priority; absent or 0 when unknown. */
  estimateMs?(flops: number, priority?: number): number;
  /** Hands a free worker a `levels` job's windows ahead of the job (lib/exec/pool.ts `prepare`). */
  prepare?(message: Omit<PrepareMessage, "type">, dims: number[], flops: number): void;
}

/** A model on windows of the request's image (each cut with zero padding outside it, then scaled by `scale`). */
export interface WindowCall {
  model: LoadedModel;
  windows: Window[];
  /** Resolution factor (1 = full); the model input of a w×h window is round(h·scaleY) × round(w·scale). */
  scale?: number;
  /** Vertical resolution factor, when it differs from `scale` (default: `scale`). */
  scaleY?: number;
  /**
   * The worker returns each window's per-pixel summary of the class scores instead of the scores (lib/image
   * `summariseBatch`): "all" = top probability, class, entropy [3, win.h, win.w] (the softmax runs off the main
   * thread); "class" = the class alone [1, win.h, win.w], for a plan's last write.
   */
  summary?: SummaryKind;
  /**
   * Run the windows level by level (lib/onnx/page.ts), every global average pool averaging over the page instead of
   * each window: one job for all windows. The model must be cut in levels (`LoadedModel.levels`); `scale` is 1.
   */
  levels?: LevelPooling;
  /**
   * The image the windows are of, when not the request's: one the planner derived from it (lib/plan/squeeze.ts
   * `squeezedCover`: the image squeezed across). Its pixels go to the workers once per request, shared.
   */
  image?: RgbaImage;
}

/** What a level-by-level call needs besides its windows: the page, each window's counted region, the blank colours. */
export type LevelPooling = Omit<LevelsInput, "kind" | "image" | "windows">;

/**
 * A model on a tensor the planner built, or on planes the worker builds it from (a routing policy's features); either
 * is transferred to the worker, so its buffers must be the caller's own.
 */
export interface TensorCall {
  model: LoadedModel;
  dims: number[];
  data: Float32Array | PlanesModelInput;
}

/**
 * One window's output: the model's first output for that batch item, [C, win.h, win.w] (scaled back if needed), or
 * its summary [3, win.h, win.w] for a call with `summary`.
 */
export interface WindowOutput {
  window: Window;
  c: number;
  data: Float32Array;
  /** The call's `summary`, when the data is one. */
  summarised?: SummaryKind;
}

/** One batched model execution as it ran (or will run), with its exact cost. */
export interface Execution {
  model: string;
  /** Input shape [N, C, H, W]. */
  dims: number[];
  /**
   * A level-by-level window's tail regions [[H, W], ...] (lib/onnx/tail.ts), where not the whole window; each slot of
   * the model's tail no region uses runs on a 16 px square, priced in `flops` but not listed.
   */
  tails?: number[][];
  flops: number;
  macs: number;
}

/** Limits and budget of one request. */
export interface ExecutorOptions {
  /** Integer FLOPs the request may spend in all (undefined: no budget). */
  budgetFlops?: number;
  /** A second cap, the caller's credit: it bounds spending like the budget, and the executor notes when it binds. */
  ceilingFlops?: number;
  /** Largest model input one batch may take, N·H·W pixels; also the largest single window. */
  maxExecPixels: number;
  /** Server timeout per execution, ms. */
  timeoutMs: number;
  /** Absolute time (performance.now()) by which every execution must be done. */
  deadlineAt?: number;
  /**
   * Admission: a request whose first execution would wait longer than this for a worker is shed with 503 before
   * anything runs (undefined: no bound). Later executions of an admitted request are never shed.
   */
  maxQueueDelayMs?: number;
}
