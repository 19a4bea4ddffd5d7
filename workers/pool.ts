// WorkerPool: a fixed set of inference workers behind one bounded queue.
// It owns fairness (FIFO), back-pressure (503 when the queue is full),
// timeouts (504) and recovery (a crashed or stuck worker is replaced).

import { TimeoutError, UnavailableError } from "../lib/errors.ts";
import type { Backend, FromWorker, ModelInput, Tensor, ToWorker, WorkerModel } from "./protocol.ts";

/** Options for {@link WorkerPool}. */
export interface WorkerPoolOptions {
  size: number;
  queueLimit: number;
  backend: Backend;
  wasmThreads: number;
  models: WorkerModel[];
}

/** Result of one model execution. */
export interface RunResult {
  /** Every output of the model, by name. */
  outputs: Record<string, Tensor>;
  /** Time inside the worker's session.run. */
  inferMs: number;
  /** Time the job waited for a free worker. */
  queueMs: number;
}

interface Job {
  id: number;
  model: string;
  dims: number[];
  input: ModelInput;
  enqueuedAt: number;
  startedAt: number;
  deadline: number;
  timer?: ReturnType<typeof setTimeout>;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | null;
}

/** Counters exposed for /readyz and metrics. */
export interface PoolStats {
  size: number;
  ready: number;
  busy: number;
  queued: number;
  restarts: number;
  backend: Backend;
}

const WORKER_URL = new URL("./infer.ts", import.meta.url);

/**
 * A pool of onnxruntime-web workers.
 *
 * @example
 * ```ts
 * const pool = new WorkerPool({ size: 2, queueLimit: 16, backend: "wasm-simd", wasmThreads: 1, models });
 * await pool.start();
 * const out = await pool.run("text-ppocrv4-det", [1, 3, 64, 64], new Float32Array(3 * 64 * 64), 10_000);
 * out.outputs; // { [output name]: { dims, data } }
 * ```
 */
export class WorkerPool {
  readonly options: WorkerPoolOptions;
  #slots: Slot[] = [];
  #queue: Job[] = [];
  #nextJob = 1;
  #restarts = 0;
  #backend: Backend;
  #closed = false;

  constructor(options: WorkerPoolOptions) {
    this.options = options;
    this.#backend = options.backend;
  }

  /** Spawns the workers and resolves once every one has its sessions. */
  async start(): Promise<void> {
    const starts: Promise<void>[] = [];
    for (let i = 0; i < this.options.size; i++) starts.push(this.#spawn(i));
    await Promise.all(starts);
  }

  /** The backend the workers actually run on. */
  get backend(): Backend {
    return this.#backend;
  }

  /** Current counters. */
  stats(): PoolStats {
    return {
      size: this.#slots.length,
      ready: this.#slots.filter((s) => s.ready).length,
      busy: this.#slots.filter((s) => s.job).length,
      queued: this.#queue.length,
      restarts: this.#restarts,
      backend: this.#backend,
    };
  }

  /**
   * Runs `model` on an input of shape `dims`: a float32 tensor (its buffer is transferred to the worker; the caller
   * must not reuse it) or windows of a shared image the worker turns into the tensor. Rejects with UnavailableError
   * (503) when the queue is full or the worker dies, TimeoutError (504) after `timeoutMs`.
   */
  run(model: string, dims: number[], input: Float32Array | ModelInput, timeoutMs: number): Promise<RunResult> {
    if (this.#closed) return Promise.reject(new UnavailableError("the server is shutting down"));
    if (this.#queue.length >= this.options.queueLimit) {
      return Promise.reject(
        new UnavailableError(`inference queue is full (${this.options.queueLimit} jobs waiting)`, 1, "queue-full"),
      );
    }
    return new Promise<RunResult>((resolve, reject) => {
      const now = performance.now();
      const job: Job = {
        id: this.#nextJob++,
        model,
        dims,
        input: input instanceof Float32Array ? { kind: "tensor", data: input } : input,
        enqueuedAt: now,
        startedAt: 0,
        deadline: now + timeoutMs,
        resolve,
        reject,
      };
      job.timer = setTimeout(() => this.#expire(job), timeoutMs);
      this.#queue.push(job);
      this.#dispatch();
    });
  }

  /** Terminates every worker and fails queued jobs. */
  close(): void {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) this.#fail(job, new UnavailableError("the server is shutting down"));
    for (const slot of this.#slots) {
      if (slot.job) this.#fail(slot.job, new UnavailableError("the server is shutting down"));
      slot.worker.terminate();
    }
  }

  #spawn(index: number): Promise<void> {
    const worker = new Worker(WORKER_URL, { type: "module" });
    const slot: Slot = { worker, ready: false, job: null };
    this.#slots[index] = slot;
    return new Promise<void>((resolveReady, rejectReady) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const msg = e.data;
        if (msg.type === "ready") {
          slot.ready = true;
          this.#backend = msg.backend;
          resolveReady();
          this.#dispatch();
        } else if (msg.type === "result") {
          const job = slot.job;
          if (!job || job.id !== msg.job) return;
          slot.job = null;
          clearTimeout(job.timer);
          job.resolve({
            outputs: msg.outputs,
            inferMs: msg.ms,
            queueMs: job.startedAt - job.enqueuedAt,
          });
          this.#dispatch();
        } else if (msg.type === "fail") {
          if (msg.job === null) {
            rejectReady(new Error(`worker failed to load models: ${msg.message}`));
            return;
          }
          const job = slot.job;
          if (!job || job.id !== msg.job) return;
          slot.job = null;
          this.#fail(job, new Error(`inference failed: ${msg.message}`));
          this.#dispatch();
        }
      };
      worker.onerror = (e: ErrorEvent) => {
        // Without preventDefault an uncaught worker error would take the
        // whole server down with it.
        e.preventDefault();
        if (!slot.ready) {
          rejectReady(new Error(`worker crashed while loading: ${e.message}`));
          return;
        }
        this.#replace(index, slot, new UnavailableError("the inference worker crashed; retry", 1, "worker-crashed"));
      };
      worker.postMessage(
        {
          type: "init",
          backend: this.options.backend,
          wasmThreads: this.options.wasmThreads,
          models: this.options.models,
        } satisfies ToWorker,
      );
    });
  }

  #replace(index: number, slot: Slot, error: Error) {
    if (this.#slots[index] !== slot) return;
    slot.worker.terminate();
    slot.ready = false;
    if (slot.job) this.#fail(slot.job, error);
    slot.job = null;
    if (this.#closed) return;
    this.#restarts++;
    this.#spawn(index).catch((err) => console.error(`worker ${index} could not restart: ${err}`));
  }

  #expire(job: Job) {
    const queued = this.#queue.indexOf(job);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      job.reject(new TimeoutError("the request timed out waiting for a worker"));
      return;
    }
    const index = this.#slots.findIndex((s) => s.job === job);
    if (index >= 0) {
      // A session.run cannot be interrupted: recycle the worker instead.
      this.#replace(index, this.#slots[index], new TimeoutError("inference exceeded the request timeout"));
    }
  }

  #fail(job: Job, error: Error) {
    clearTimeout(job.timer);
    job.reject(error);
  }

  #dispatch() {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (!slot || !slot.ready || slot.job) continue;
      const job = this.#queue.shift()!;
      slot.job = job;
      job.startedAt = performance.now();
      const transfer = job.input.kind === "tensor" ? [job.input.data.buffer as ArrayBuffer] : [];
      slot.worker.postMessage(
        { type: "run", job: job.id, model: job.model, dims: job.dims, input: job.input } satisfies ToWorker,
        transfer,
      );
    }
  }
}

/**
 * Picks the backend: WebGPU only when the adapter is a real GPU, never the
 * software fallback Deno exposes on GPU-less machines.
 */
export async function detectBackend(preference: "auto" | "wasm" | "webgpu"): Promise<Backend> {
  if (preference === "wasm") return "wasm-simd";
  let real = false;
  try {
    // deno-lint-ignore no-explicit-any
    const adapter: any = await (navigator as any).gpu?.requestAdapter();
    const fallback = adapter?.info?.isFallbackAdapter ?? adapter?.isFallbackAdapter ?? true;
    real = !!adapter && fallback === false;
  } catch {
    real = false;
  }
  if (preference === "webgpu" && !real) {
    console.warn("BACKEND=webgpu but no real GPU adapter was found; using wasm-simd");
  }
  return real ? "webgpu" : "wasm-simd";
}
