// The Segmenter: one request from bytes to class mask. Decodes the upload, picks the planner of the request's task
// and mode, gives it an Executor bounded by the request's budget, deadline and the server's execution-size limit, and
// reports what ran: the mask, the plan, the exact cost (integer FLOPs) and the timings.

import { BadRequestError, OverloadedError, UnprocessableError } from "./errors.ts";
import { type Execution, Executor, type InferencePool, priceCalls } from "./exec/mod.ts";
import { checkImageHeader, decodeImage, type DecodeLimits, type RgbaImage } from "./image/mod.ts";
import type { LoadedModel, ModelRegistry, TaskSpec } from "./models.ts";
import {
  DEFAULT_PLANNER_OPTIONS,
  fixedPlanner,
  focusPlanner,
  glimpsePlanner,
  type Mode,
  paserPlanner,
  type Planner,
  type PlannerOptions,
  type PlanOutcome,
  type Zoo,
  zooOf,
} from "./plan/mod.ts";

export type { InferencePool } from "./exec/mod.ts";

/** Decodes an upload within limits (lib/image `decodeImage`, or the same off the main thread). */
export type Decoder = (bytes: Uint8Array, limits: Partial<DecodeLimits>, contentType?: string) => Promise<RgbaImage>;

/** One segmentation request, already parsed from HTTP. */
export interface SegmentRequest {
  task: string;
  mode: Mode;
  /** Model id (fixed mode only). */
  model?: string;
  /** The client's budget (X-Budget-GFLOPs) in integer FLOPs: it chooses the operating point and caps the cost. */
  budgetFlops?: number;
  /**
   * What the caller can still pay, in FLOPs (a key's remaining credit). Only a ceiling: the plan is the one the
   * budget (or its absence) gives, unless that would cost more than the credit — then the best plan within it, and
   * BudgetTooSmallError when not even the cheapest plan fits.
   */
  creditFlops?: number;
  deadlineMs?: number;
  /** glimpse: stop threshold on the image's mean max-probability. */
  confidence?: number;
  /** The upload. Handed to the decoder, which may take it over (the server's transfers it to its decode worker). */
  bytes: Uint8Array;
  contentType?: string;
}

/** Per-model share of a request's cost. */
export interface CostLine {
  model: string;
  runs: number;
  flops: number;
  macs: number;
}

/** A finished segmentation. */
export interface SegmentResult {
  task: TaskSpec;
  width: number;
  height: number;
  mask: Uint8Array;
  plan: Omit<PlanOutcome, "mask" | "stitchMs"> & { executions: Execution[] };
  /** Integer FLOPs and MACs: the sum over the executions that ran. */
  cost: { flops: number; macs: number; breakdown: CostLine[] };
  backend: string;
  /** The credit, not the budget, limited the plan (the caller got less than an anonymous caller would). */
  creditBound: boolean;
  /**
   * ms. `infer`: wall time inside the executor (queue waits and transfers included); `queue` and `model`: summed over
   * executions (time waiting for a worker, time inside session.run; with several workers they can exceed `infer`);
   * `stitch`: writing outputs into the mask; `plan`: the planners' own time.
   */
  timings: { decode: number; plan: number; queue: number; infer: number; model: number; stitch: number };
}

/** Server limits the Segmenter enforces. */
export interface SegmenterLimits {
  maxPixels: number;
  timeoutMs: number;
  planner: PlannerOptions;
  /**
   * Admission: shed a new request (503) when it would wait longer than this for a worker; 0 = auto, at most one
   * request per worker in flight (default: no admission control).
   */
  maxQueueDelayMs?: number;
}

/**
 * Runs requests end to end.
 *
 * @example
 * ```ts ignore
 * const seg = new Segmenter(registry, pool, { maxPixels: 16e6, timeoutMs: 60_000, planner: DEFAULT_PLANNER_OPTIONS });
 * const result = await seg.segment({ task: "text", mode: "adaptive", bytes });
 * ```
 */
export class Segmenter {
  /** Each task's zoo (or null), found once: the registry does not change while the server runs. */
  #zoos = new Map<string, Zoo | null>();
  /** Requests admitted and not yet answered (decoding, planning or running). */
  #inflight = 0;
  /** Worker time one request takes, ms (exponentially weighted over answered requests; 0 until the first). */
  #workerMsPerRequest = 0;

  constructor(
    readonly registry: ModelRegistry,
    readonly pool: InferencePool,
    readonly limits: SegmenterLimits = { maxPixels: 16_000_000, timeoutMs: 60_000, planner: DEFAULT_PLANNER_OPTIONS },
    /** The decoder: the server passes its DecodePool (lib/image/decode_pool.ts); tests and tools decode in place. */
    readonly decode: Decoder = decodeImage,
    /** Called with each decoded image once its request is answered (the DecodePool reuses its pixels' memory). */
    readonly release: (image: RgbaImage) => void = () => {},
  ) {}

  /** The task's zoo, or null when it has no global and local models. */
  zoo(task: TaskSpec): Zoo | null {
    if (!this.#zoos.has(task.name)) this.#zoos.set(task.name, zooOf(this.registry, task, this.limits.planner.zooHalo));
    return this.#zoos.get(task.name)!;
  }

  /** The planner a request gets: fixed, the zoo's PaSeR / glimpse, or glance → focus. */
  planner(task: TaskSpec, req: Pick<SegmentRequest, "mode" | "model">): Planner {
    if (req.model !== undefined && req.mode !== "fixed") {
      throw new BadRequestError("X-Model is only used with X-Mode: fixed", "bad-header");
    }
    const zoo = this.zoo(task);
    if (req.mode === "fixed") return fixedPlanner(this.#pickModel(task, req.model));
    if (req.mode === "glimpse") {
      if (!zoo) {
        throw new UnprocessableError(
          `glimpse mode needs a global model and local models; task '${task.name}' has neither`,
          "mode-unavailable",
        );
      }
      return glimpsePlanner(zoo);
    }
    return zoo ? paserPlanner(zoo) : focusPlanner(this.#pickModel(task, undefined));
  }

  /**
   * Decodes, plans, runs and stitches one request. `planner` replaces the request's own (the evaluation's baselines).
   */
  async segment(req: SegmentRequest, planner?: Planner): Promise<SegmentResult> {
    const task = this.registry.task(req.task);
    planner ??= this.planner(task, req);
    this.#admit();
    try {
      const result = await this.#segment(task, req, planner);
      const w = result.timings.model;
      this.#workerMsPerRequest = this.#workerMsPerRequest ? 0.8 * this.#workerMsPerRequest + 0.2 * w : w;
      return result;
    } finally {
      this.#inflight--;
    }
  }

  /**
   * The 503 a new request would be shed with now, or null when it would be admitted. The requests already in flight
   * hold about inflight × (worker ms per request) / workers of work ahead of a new one; when that is more than the
   * queue-delay bound, a new request is shed with a Retry-After from that wait. Little's law keeps admitted requests
   * near their unloaded latency; the executor checks the pool's own queue again before each request's first job.
   * `segment` decides for real (admission before any work, decode included); the HTTP route also asks before it
   * counts the request against the caller's rate limit, so a request shed for the server's load does not use up the
   * caller's quota (routes/segment.ts).
   */
  overloaded(): OverloadedError | null {
    const workers = this.pool.workers ?? 1;
    // A new request starts once all but (workers − 1) of those in flight are done.
    const wait = (Math.max(0, this.#inflight + 1 - workers) * this.#workerMsPerRequest) / workers;
    if (this.limits.maxQueueDelayMs === 0) {
      // Auto: at most one request per worker in flight (decoding, planning or running). By Little's law an admitted
      // request then barely waits, whatever its service time — decode and stitch included, which the worker-time
      // estimate does not see. Measured in docs/RELIABILITY.md (b): admitted p50 at the unloaded p50 under 3× load.
      const cap = workers;
      return this.#inflight >= cap ? new OverloadedError(wait, `at most ${cap} requests in flight`) : null;
    }
    const bound = this.#queueDelayBound();
    return bound !== undefined && wait > bound ? new OverloadedError(wait, `bound ${bound} ms`) : null;
  }

  #admit() {
    const shed = this.overloaded();
    if (shed) throw shed;
    this.#inflight++;
  }

  /** The configured queue-delay bound in ms (none in auto mode, where the in-flight cap admits, or until learnt). */
  #queueDelayBound(): number | undefined {
    const set = this.limits.maxQueueDelayMs;
    if (!set || this.#workerMsPerRequest === 0) return undefined;
    return set;
  }

  async #segment(task: TaskSpec, req: SegmentRequest, planner: Planner): Promise<SegmentResult> {
    const started = performance.now();
    const limits = { maxPixels: this.limits.maxPixels };
    if (planner.preflight) {
      // From the header alone, before the upload is handed to a decoder: an image whose mandatory executions (the
      // glance, the policy) could never run is refused (422) without the decode's time or memory.
      const { width, height } = checkImageHeader(req.bytes, limits, req.contentType);
      const calls = planner.preflight({ registry: this.registry, task, width, height, options: this.limits.planner });
      priceCalls(calls, this.limits.planner.maxExecPixels);
    }
    const image = await this.decode(req.bytes, limits, req.contentType);
    const decoded = performance.now();
    try {
      const deadlineAt = req.deadlineMs === undefined ? undefined : started + req.deadlineMs;
      const exec = new Executor(this.pool, image, {
        budgetFlops: req.budgetFlops,
        ceilingFlops: req.creditFlops,
        maxExecPixels: this.limits.planner.maxExecPixels,
        timeoutMs: this.limits.timeoutMs,
        deadlineAt,
        maxQueueDelayMs: this.#queueDelayBound(),
      });
      // Once the planner is done, its outputs' memory is freed at once (Executor.releaseOutputs), for the next
      // request's outputs to reuse.
      const outcome = await planner({
        registry: this.registry,
        task,
        image,
        exec,
        options: this.limits.planner,
        budgetFlops: req.budgetFlops,
        confidence: req.confidence,
        deadlineAt,
      }).finally(() => exec.releaseOutputs());
      const planned = performance.now() - decoded;
      if (exec.flops > exec.budget) throw new Error(`executor bug: spent ${exec.flops} FLOPs over ${exec.budget}`);
      const { mask, stitchMs, ...plan } = outcome;
      return {
        task,
        width: image.width,
        height: image.height,
        mask,
        plan: { ...plan, executions: exec.executions },
        cost: { flops: exec.flops, macs: exec.macs, breakdown: breakdown(exec.executions) },
        backend: this.pool.backend,
        creditBound: exec.ceilingBound,
        timings: {
          decode: decoded - started,
          plan: Math.max(0, planned - exec.wallMs - stitchMs),
          queue: exec.queueMs,
          infer: exec.wallMs,
          model: exec.modelMs,
          stitch: stitchMs,
        },
      };
    } finally {
      this.release(image);
    }
  }

  /** The model a fixed request names, or the task's strongest model (most FLOPs at the reference size). */
  #pickModel(task: TaskSpec, id: string | undefined): LoadedModel {
    if (id !== undefined) {
      const m = this.registry.model(id);
      if (m.spec.task !== task.name) {
        throw new UnprocessableError(
          `model '${id}' belongs to task '${m.spec.task}', not '${task.name}'`,
          "model-task-mismatch",
        );
      }
      if (m.spec.role === "policy") {
        throw new UnprocessableError(`model '${id}' is a routing policy, not a segmentation model`, "bad-model");
      }
      return m;
    }
    const { height, width } = task.reference;
    const price = (m: LoadedModel) => m.counter.count([1, m.spec.input.channels, height, width]).flops;
    return this.registry.modelsOf(task.name).filter((m) => m.spec.role !== "policy")
      .sort((a, b) => price(b) - price(a))[0];
  }
}

/** Per-model runs, FLOPs and MACs, in order of first execution. */
function breakdown(executions: Execution[]): CostLine[] {
  const lines = new Map<string, CostLine>();
  for (const ex of executions) {
    const line = lines.get(ex.model) ?? { model: ex.model, runs: 0, flops: 0, macs: 0 };
    line.runs++;
    line.flops += ex.flops;
    line.macs += ex.macs;
    lines.set(ex.model, line);
  }
  return [...lines.values()];
}
