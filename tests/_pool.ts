// A stand-in for the WorkerPool in tests that check planning and pricing without running a model: it records every
// job it is sent and answers with an all-zero output of the job's spatial size.

import type { InferencePool } from "../lib/exec/mod.ts";
import { WorkerPool } from "../lib/exec/pool.ts";
import type { ModelInput, Tensor, WorkerModel } from "../workers/protocol.ts";

/** One job the pool was sent. */
export interface RecordedJob {
  model: string;
  dims: number[];
  input: Float32Array | ModelInput;
}

/** Records jobs; every output has `channels` channels (default 1) at the input's height and width. */
export class RecordingPool implements InferencePool {
  readonly backend = "recording";
  readonly jobs: RecordedJob[] = [];
  /** The windows handed to it ahead of their jobs (`prepare`), with their key. */
  readonly prepared: { key: string; windows: { x: number; y: number; w: number; h: number }[] }[] = [];

  constructor(readonly channels = 1) {}

  prepare({ key, windows }: { key: string; windows: { x: number; y: number; w: number; h: number }[] }): void {
    this.prepared.push({ key, windows });
  }

  run(model: string, dims: number[], input: Float32Array | ModelInput): Promise<{
    outputs: Record<string, Tensor>;
    inferMs: number;
    queueMs: number;
  }> {
    this.jobs.push({ model, dims, input });
    if (!(input instanceof Float32Array) && input.kind === "levels") {
      // A level-by-level job answers each of a window's tail regions, named `<window>.<region>`.
      const outputs = Object.fromEntries(input.tails.flatMap((regions, i) =>
        regions.map((r, j) => [`${i}.${j}`, {
          dims: [1, this.channels, r.h, r.w],
          data: new Float32Array(this.channels * r.h * r.w),
        }])
      ));
      return Promise.resolve({ outputs, inferMs: 0, queueMs: 0 });
    }
    const [n, , h, w] = dims;
    const out = { dims: [n, this.channels, h, w], data: new Float32Array(n * this.channels * h * w) };
    return Promise.resolve({ outputs: { out }, inferMs: 0, queueMs: 0 });
  }
}

/**
 * A started WASM-SIMD pool of real workers for these models (1 thread each): what the tests that run real inference
 * share. Close it when done.
 */
export async function startPool(models: WorkerModel[], size = 2, queueLimit = 256): Promise<WorkerPool> {
  const pool = new WorkerPool({ size, queueLimit, backend: "wasm-simd", threads: 1, models });
  await pool.start();
  return pool;
}
