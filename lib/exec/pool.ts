// WorkerPool: a fixed set of inference workers behind one bounded queue. It owns ordering (oldest request first, so
// an admitted request's later stages do not queue behind newer requests), back-pressure (503 when the queue is full),
// the throughput estimate admission and deadlines are decided from, timeouts (504 without killing the worker),
// recovery (a crashed, failing or hung worker is replaced) and, with a lone worker, threads that follow the load.

import { TimeoutError, UnavailableError } from "../errors.ts";
import { inputPixels, WorkerLayout } from "./layout.ts";
import type { Backend, FromWorker, ModelInput, PrepareMessage, ToWorker } from "../../workers/protocol.ts";
import type { PoolStats, RunOptions, RunResult, WorkerPoolOptions } from "./pool_api.ts";
import { RecycleSchedule } from "./recycle.ts";

export type { PoolStats, RunOptions, RunResult, WorkerPoolOptions } from "./pool_api.ts";

interface Job {
  id: number;
  model: string;
  dims: number[];
  input: ModelInput;
  flops: number;
  priority: number;
  enqueuedAt: number;
  startedAt: number;
  deadline: number;
  timer?: ReturnType<typeof setTimeout>;
  hangTimer?: ReturnType<typeof setTimeout>;
  /** Its caller was answered (504) while it ran; the worker finishes it and the result is dropped. */
  abandoned?: boolean;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | null;
  /** A replacement is loading (a recycle): this worker serves until it is ready. */
  renewing?: boolean;
  /** It ran a job over the recycle size: its WebAssembly memory grew. */
  grown?: boolean;
  /** Set once the replacement is ready: hands the slot over when this worker's job is done. */
  retire?: () => void;
}

const WORKER_URL = new URL("../../workers/infer.ts", import.meta.url);

/**
 * A pool of inference workers (onnxruntime-node or onnxruntime-web, per `backend`).
 *
 * @example
 * ```ts
 * import { ModelRegistry } from "../models.ts";
 * const models = (await ModelRegistry.load()).workerModels();
 * const pool = new WorkerPool({ size: 2, queueLimit: 16, backend: "wasm-simd", threads: 1, models });
 * await pool.start();
 * const out = await pool.run("text-ppocrv4-det", [1, 3, 64, 64], new Float32Array(3 * 64 * 64), 10_000);
 * out.outputs; // { [output name]: { dims, data } }
 * ```
 */
export class WorkerPool {
  readonly options: WorkerPoolOptions;
  readonly #layout: WorkerLayout;
  #slots: Slot[] = [];
  #queue: Job[] = [];
  #nextJob = 1;
  #restarts = 0;
  #recycled = 0;
  #backend: Backend;
  #closed = false;
  #dispatchQueued = false;
  /** Replacements loading for recycled workers (terminated on close). */
  #loading = new Set<Worker>();
  readonly #recycles: RecycleSchedule;
  /** Throughput of one worker, FLOPs per ms (exponentially weighted; 0 until a job with FLOPs has run). */
  #rate = 0;

  constructor(options: WorkerPoolOptions) {
    this.options = options;
    this.#layout = new WorkerLayout(options);
    this.#backend = options.backend;
    this.#recycles = new RecycleSchedule(options.recycleCooldownMs);
  }

  /** Spawns the workers and resolves once every one has its sessions. */
  async start(): Promise<void> {
    const starts: Promise<void>[] = [];
    for (let i = 0; i < this.#layout.workers.length; i++) starts.push(this.#spawn(i));
    await Promise.all(starts);
  }

  /** Jobs the pool runs side by side (its workers, the lone worker not counted). */
  get workers(): number {
    return this.options.size;
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
      recycled: this.#recycled,
      backend: this.#backend,
    };
  }

  /**
   * Runs `model` on an input of shape `dims`: a float32 tensor (its buffer is transferred to the worker; the caller
   * must not reuse it) or windows of a shared image the worker turns into the tensor. Rejects with UnavailableError
   * (503) when the queue is full or the worker dies, TimeoutError (504) after `timeoutMs`.
   */
  run(
    model: string,
    dims: number[],
    input: Float32Array | ModelInput,
    timeoutMs: number,
    opts: RunOptions = {},
  ): Promise<RunResult> {
    if (this.#closed) return Promise.reject(new UnavailableError("the server is shutting down"));
    // Jobs not dispatched yet (see below) go to free workers first: only jobs that would wait count against the limit.
    if (this.#queue.length >= this.options.queueLimit) this.#dispatch();
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
        flops: opts.flops ?? 0,
        priority: opts.priority ?? now,
        enqueuedAt: now,
        startedAt: 0,
        deadline: now + timeoutMs,
        resolve,
        reject,
      };
      job.timer = setTimeout(() => this.#expire(job), timeoutMs);
      // Oldest request first; FIFO among equals.
      let at = this.#queue.length;
      while (at > 0 && this.#queue[at - 1].priority > job.priority) at--;
      this.#queue.splice(at, 0, job);
      // Dispatched once the caller's synchronous code is done: the jobs a request sends at once are all queued when a
      // worker is picked, so the first of them does not look alone to the lone worker (WorkerLayout.pick) and then run
      // beside the others with its threads spinning.
      if (!this.#dispatchQueued) {
        this.#dispatchQueued = true;
        queueMicrotask(() => {
          this.#dispatchQueued = false;
          this.#dispatch();
        });
      }
    });
  }

  /** A `levels` job's windows ahead of it (PrepareMessage) to the worker that would start it now; none under load. */
  prepare(message: Omit<PrepareMessage, "type">, dims: number[], flops: number): void {
    if (this.#closed || this.#queue.length) return;
    const index = this.#layout.pick({ dims, flops }, 1, this.#slots);
    if (index >= 0) this.#slots[index].worker.postMessage({ type: "prepare", ...message } satisfies ToWorker);
  }

  /** Measured throughput of one worker, FLOPs per ms (0 before the first measured job). */
  get flopsPerMs(): number {
    return this.#rate;
  }

  /**
   * Expected wait, ms, before a job of this priority would start: the work queued ahead of it and what is left of the
   * running jobs, spread over the ready workers, at the measured throughput (0 before anything was measured).
   */
  expectedWaitMs(priority = performance.now()): number {
    const ready = this.#slots.filter((s) => s?.ready).length;
    if (!this.#rate || !ready) return 0;
    const now = performance.now();
    let flops = 0;
    for (const job of this.#queue) if (job.priority <= priority) flops += job.flops;
    for (const slot of this.#slots) {
      if (slot?.job) flops += Math.max(0, slot.job.flops - (now - slot.job.startedAt) * this.#rate);
    }
    return flops / (this.#rate * ready);
  }

  /** Expected time, ms, to run `flops` more for a request of this priority: the wait plus the work itself. */
  estimateMs(flops: number, priority?: number): number {
    return this.#rate ? this.expectedWaitMs(priority) + flops / this.#rate : 0;
  }

  /** Terminates every worker and fails queued jobs. */
  close(): void {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) this.#fail(job, new UnavailableError("the server is shutting down"));
    for (const slot of this.#slots) {
      if (slot.job) this.#fail(slot.job, new UnavailableError("the server is shutting down"));
      slot.worker.terminate();
    }
    for (const worker of this.#loading) worker.terminate();
    this.#recycles.close();
  }

  /**
   * Starts a worker for slot `index`: at once in its place, or, replacing the healthy worker `old` (a recycle), beside
   * it: `old` keeps serving while the new one loads (onnxruntime-web takes seconds), then hands over once idle.
   */
  #spawn(index: number, old?: Slot): Promise<void> {
    const { threads, spin, inputBufferBytes } = this.#layout.workers[index];
    const worker = new Worker(WORKER_URL, { type: "module" });
    const slot: Slot = { worker, ready: false, job: null };
    if (old) this.#loading.add(worker);
    else this.#slots[index] = slot;
    const ready = new Promise<void>((resolveReady, rejectReady) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const msg = e.data;
        if (msg.type === "ready") {
          slot.ready = true;
          this.#backend = msg.backend;
          if (old) this.#takeOver(index, old, slot);
          resolveReady();
          this.#dispatch();
        } else if (msg.type === "result") {
          const job = slot.job;
          if (!job || job.id !== msg.job) return;
          slot.job = null;
          clearTimeout(job.timer);
          clearTimeout(job.hangTimer);
          if (job.flops > 0 && msg.ms > 0) {
            const r = job.flops / msg.ms;
            this.#rate = this.#rate ? 0.8 * this.#rate + 0.2 * r : r;
          }
          if (this.#backend !== "native" && inputPixels(job.dims) > (this.options.recycleAbovePixels ?? 2 ** 21)) {
            slot.grown = true;
            this.#recycles.ask(index, () => this.#renew(index, this.#slots[index]));
          }
          slot.retire?.();
          if (job.abandoned) {
            this.#dispatch();
            return;
          }
          job.resolve({
            outputs: msg.outputs,
            inferMs: msg.ms,
            queueMs: job.startedAt - job.enqueuedAt,
            threads,
          });
          this.#dispatch();
        } else if (msg.type === "fail") {
          if (msg.job === null) {
            rejectReady(new Error(`worker failed to load models: ${msg.message}`));
            return;
          }
          const job = slot.job;
          if (!job || job.id !== msg.job) return;
          // A runtime failure may leave the session in a bad state: answer 503 (safe to retry, nothing billed) and
          // start a fresh worker. The message stays in the log, not in the response.
          console.error(`inference failed in worker ${index} (${job.model} ${job.dims.join("x")}): ${msg.message}`);
          this.#replace(
            index,
            slot,
            new UnavailableError("the inference runtime failed on this request; retry", 1, "inference-failed"),
          );
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
          threads,
          spin,
          inputBufferBytes,
          models: this.options.models,
        } satisfies ToWorker,
      );
    });
    // A replacement that fails to load is not left running.
    if (old) ready.catch(() => (this.#loading.delete(worker), worker.terminate()));
    return ready;
  }

  #replace(index: number, slot: Slot, error: Error) {
    if (this.#slots[index] !== slot) return;
    slot.worker.terminate();
    slot.ready = false;
    if (slot.job) {
      clearTimeout(slot.job.hangTimer);
      if (!slot.job.abandoned) this.#fail(slot.job, error);
    }
    slot.job = null;
    if (this.#closed) return;
    this.#restarts++;
    // A recycled worker whose replacement has loaded already: the replacement takes over.
    if (slot.retire) return slot.retire();
    this.#spawn(index).catch((err) => console.error(`worker ${index} could not restart: ${err}`));
  }

  /**
   * Recycles a healthy worker whose WebAssembly memory grew (it only grows): the replacement loads beside it, so a pool
   * of one worker never stops serving for the seconds onnxruntime-web takes to start. Says whether it started one.
   */
  #renew(index: number, slot: Slot | undefined): boolean {
    if (!slot?.grown || slot.renewing || this.#closed) return false;
    slot.renewing = true;
    this.#recycled++;
    this.#spawn(index, slot).catch((err) => {
      slot.renewing = false; // a later large job tries again
      console.error(`worker ${index} could not be recycled: ${err}`);
    });
    return true;
  }

  /** The replacement `next` of the recycled worker `old` is ready: it takes the slot as soon as `old` is idle. */
  #takeOver(index: number, old: Slot, next: Slot) {
    this.#loading.delete(next.worker);
    if (this.#closed || this.#slots[index] !== old) {
      // Closed, or `old` crashed meanwhile and was replaced already.
      next.worker.terminate();
      return;
    }
    old.ready = false; // no new jobs
    old.retire = () => {
      old.retire = undefined;
      this.#slots[index] = next;
      old.worker.terminate();
      this.#dispatch();
    };
    if (!old.job) old.retire();
  }

  #expire(job: Job) {
    const queued = this.#queue.indexOf(job);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      job.reject(new TimeoutError("the request timed out waiting for a worker"));
      return;
    }
    if (this.#slots.some((s) => s.job === job)) {
      // A session.run cannot be interrupted. Answer now and let the worker finish (the result is dropped): killing
      // and respawning a worker per late request would cost far more than the run. Hangs are the hang timer's job.
      job.abandoned = true;
      job.reject(new TimeoutError("inference exceeded the request's deadline"));
    }
  }

  #fail(job: Job, error: Error) {
    clearTimeout(job.timer);
    job.reject(error);
  }

  #dispatch() {
    for (;;) {
      if (this.#queue.length === 0) return;
      const index = this.#layout.pick(this.#queue[0], this.#queue.length, this.#slots);
      if (index < 0) return;
      const slot = this.#slots[index];
      const job = this.#queue.shift()!;
      slot.job = job;
      job.startedAt = performance.now();
      const hangMs = this.options.hangMs ?? 60_000;
      job.hangTimer = setTimeout(() => {
        // The client gets a TimeoutError; the operator's log says which backend, model and shape hung.
        console.error(
          `inference hung in worker ${index} (${this.#backend}, ${job.model} ${job.dims.join("x")}, ${job.input.kind}` +
            ` input) for ${hangMs} ms; replacing the worker`,
        );
        this.#replace(index, slot, new TimeoutError("inference hung; the worker was replaced"));
      }, hangMs);
      const { input } = job;
      const transfer = input.kind === "tensor"
        ? [input.data.buffer as ArrayBuffer]
        : input.kind === "planes"
        ? input.planes.map((p) => p.data.buffer as ArrayBuffer)
        : [];
      slot.worker.postMessage(
        { type: "run", job: job.id, model: job.model, dims: job.dims, input: job.input } satisfies ToWorker,
        transfer,
      );
    }
  }
}
