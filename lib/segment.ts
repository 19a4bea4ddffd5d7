// The Segmenter: one request from bytes to class mask. Decodes the upload,
// asks the Planner for a priced Plan, runs its executions on the WorkerPool
// (all batches in flight at once), and stitches the tiles' cores into the
// mask. Cost is the sum of the executions that actually ran.

import { runZoo, type Zoo, zooOf, ZooRunner } from "./zoo.ts";
import { cropCHW, decodeImage, resizeCHW, type RgbaImage, toCHW, toGrey } from "./image/mod.ts";
import { BadRequestError, UnprocessableError } from "./errors.ts";
import type { LoadedModel, ModelRegistry, ModelSpec, TaskSpec } from "./models.ts";
import {
  DEFAULT_PLANNER_OPTIONS,
  type Execution,
  type Mode,
  type Plan,
  planComplexity,
  planFixed,
  type PlannerOptions,
} from "./plan.ts";

/** What the Segmenter needs from a worker pool. */
export interface InferencePool {
  run(
    model: string,
    dims: number[],
    data: Float32Array,
    timeoutMs: number,
  ): Promise<{ dims: number[]; data: Float32Array; inferMs: number; queueMs: number }>;
  readonly backend: string;
}

/** One segmentation request, already parsed from HTTP. */
export interface SegmentRequest {
  task: string;
  /** `cascade` is the evaluation's baseline (f0, then the strongest model when unsure); not an HTTP mode. */
  mode: Mode | "cascade";
  model?: string;
  budgetGflops?: number;
  deadlineMs?: number;
  /** glimpse: stop threshold on the image's mean max-probability. */
  confidence?: number;
  /** adaptive on a zoo task: the tile selector (default: the task's policy). Evaluation only. */
  selector?: "policy" | "complexity";
  /** cascade: f0 confidence below which the strongest model runs. Evaluation only. */
  cascadeConfidence?: number;
  /** complexity selector without a budget: share of tiles sent to the strongest model. Evaluation only. */
  complexityShare?: number;
  bytes: Uint8Array;
  contentType?: string;
}

/** Per-model share of a request's cost. */
export interface CostLine {
  model: string;
  runs: number;
  gflops: number;
  gmacs: number;
}

/** A finished segmentation. */
export interface SegmentResult {
  task: TaskSpec;
  width: number;
  height: number;
  mask: Uint8Array;
  plan: Plan & { glimpses?: import("./zoo.ts").GlimpseStep[]; stop?: string };
  cost: { flops: number; macs: number; gflops: number; gmacs: number; breakdown: CostLine[] };
  backend: string;
  /**
   * ms. `infer` is the wall time of the execution phase (queue wait and
   * transfers included); `model` is the time inside session.run summed over
   * executions (with several workers it can exceed `infer`).
   */
  timings: { decode: number; plan: number; queue: number; infer: number; model: number; stitch: number };
}

/** Server limits the Segmenter enforces. */
export interface SegmenterLimits {
  maxPixels: number;
  timeoutMs: number;
  planner: PlannerOptions;
}

/**
 * Float32 NCHW input for a model: channels in the model's order, normalised
 * with its mean/std (given in that same order).
 */
export function modelInput(img: RgbaImage, spec: ModelSpec): Float32Array {
  const c = spec.input.channels;
  if (c !== 1 && c !== 3) {
    throw new UnprocessableError(`model ${spec.id} takes ${c} channels; images give 1 or 3`, "bad-model");
  }
  const data = toCHW(img, c, undefined, spec.input.background);
  const plane = img.width * img.height;
  if (c === 3 && spec.input.channel_order === "bgr") {
    const r = data.slice(0, plane);
    data.copyWithin(0, 2 * plane, 3 * plane);
    data.set(r, 2 * plane);
  }
  const { mean, std } = spec.input;
  if (mean || std) {
    for (let k = 0; k < c; k++) {
      const m = mean?.[k] ?? 0, s = std?.[k] ?? 1;
      const off = k * plane;
      for (let i = 0; i < plane; i++) data[off + i] = (data[off + i] - m) / s;
    }
  }
  return data;
}

/**
 * Runs requests end to end.
 *
 * @example
 * ```ts
 * const seg = new Segmenter(registry, pool, { maxPixels: 16e6, timeoutMs: 60_000, planner: DEFAULT_PLANNER_OPTIONS });
 * const result = await seg.segment({ task: "text", mode: "adaptive", bytes });
 * ```
 */
export class Segmenter {
  /** Each task's zoo (or null), found once: the registry does not change while the server runs. */
  #zoos = new Map<string, Zoo | null>();

  constructor(
    readonly registry: ModelRegistry,
    readonly pool: InferencePool,
    readonly limits: SegmenterLimits = {
      maxPixels: 16_000_000,
      timeoutMs: 60_000,
      planner: DEFAULT_PLANNER_OPTIONS,
    },
  ) {}

  /** Resolves the model a request runs with (fixed mode) or the task's local model. */
  #pickModel(task: TaskSpec, req: SegmentRequest): LoadedModel {
    if (req.model !== undefined) {
      const m = this.registry.model(req.model);
      if (m.spec.task !== task.name) {
        throw new UnprocessableError(
          `model '${req.model}' belongs to task '${m.spec.task}', not '${task.name}'`,
          "model-task-mismatch",
        );
      }
      if (m.spec.role === "policy") {
        throw new UnprocessableError(`model '${req.model}' is a routing policy, not a segmentation model`, "bad-model");
      }
      return m;
    }
    const candidates = this.registry.modelsOf(task.name).filter((m) => m.spec.role !== "policy");
    // The strongest model is the most expensive one at the reference size.
    const ref = [1, 0, task.reference.height, task.reference.width];
    return candidates.sort((a, b) =>
      b.counter.count([1, b.spec.input.channels, ref[2], ref[3]]).flops -
      a.counter.count([1, a.spec.input.channels, ref[2], ref[3]]).flops
    )[0];
  }

  /** Decodes, plans, runs and stitches one request. */
  async segment(req: SegmentRequest): Promise<SegmentResult> {
    const task = this.registry.task(req.task);
    if (req.model !== undefined && req.mode !== "fixed") {
      throw new BadRequestError("X-Model is only used with X-Mode: fixed", "bad-header");
    }
    if (!this.#zoos.has(task.name)) this.#zoos.set(task.name, zooOf(this.registry, task, this.limits.planner.zooHalo));
    const zoo = this.#zoos.get(task.name)!;
    if (req.mode === "glimpse" && !zoo) {
      throw new UnprocessableError(
        `glimpse mode needs a global model and local models; task '${task.name}' has neither`,
        "mode-unavailable",
      );
    }
    if (req.mode === "cascade" && !zoo) {
      throw new UnprocessableError(`task '${task.name}' has no zoo for a cascade`, "mode-unavailable");
    }
    const model = this.#pickModel(task, req);

    const started = performance.now();
    const t0 = performance.now();
    const img = await decodeImage(req.bytes, { maxPixels: this.limits.maxPixels }, req.contentType);
    const t1 = performance.now();
    const timeoutMs = Math.min(this.limits.timeoutMs, req.deadlineMs ?? Infinity);

    let plan: SegmentResult["plan"];
    let mask: Uint8Array;
    let queueMs = 0, modelMs = 0, t2: number, t3: number;
    if (zoo && req.mode !== "fixed") {
      // Zoo tasks plan stage by stage (the policy needs f0's output); every execution is priced before it is sent.
      t2 = performance.now();
      const deadlineAt = req.deadlineMs === undefined ? undefined : started + req.deadlineMs;
      const runner = new ZooRunner(zoo, task, img, (id, dims, data) => {
        const left = deadlineAt === undefined ? timeoutMs : Math.min(timeoutMs, deadlineAt - performance.now());
        return this.pool.run(id, dims, data, Math.max(1, left));
      }, this.limits.planner.maxExecPixels);
      const out = await runZoo(runner, {
        mode: req.mode,
        selector: req.selector,
        budgetGflops: req.budgetGflops,
        confidence: req.confidence,
        cascadeConfidence: req.cascadeConfidence,
        complexityShare: req.complexityShare,
        deadlineAt,
      });
      t3 = performance.now();
      plan = out.plan;
      mask = out.mask;
      queueMs = out.queueMs;
      modelMs = out.modelMs;
    } else {
      plan = req.mode === "fixed"
        ? planFixed(model, img.width, img.height, req.budgetGflops, this.limits.planner)
        : planComplexity(
          model,
          toGrey(img, model.spec.input.background),
          img.width,
          img.height,
          req.budgetGflops,
          this.limits.planner,
        );
      t2 = performance.now();
      const input = plan.executions.length ? modelInput(img, model.spec) : new Float32Array(0);
      const p = plan;
      const runs = plan.executions.map((ex) =>
        this.pool.run(ex.model, ex.dims, batchInput(input, model.spec.input.channels, img, p, ex), timeoutMs)
      );
      const results = await Promise.all(runs);
      t3 = performance.now();
      mask = new Uint8Array(img.width * img.height);
      plan.executions.forEach((ex, i) => stitch(mask, img.width, p, ex, results[i], model.spec));
      queueMs = results.reduce((m, r) => Math.max(m, r.queueMs), 0);
      modelMs = results.reduce((s, r) => s + r.inferMs, 0);
    }
    const t4 = performance.now();

    const breakdown = new Map<string, CostLine & { flops: number; macs: number }>();
    for (const ex of plan.executions) {
      const line = breakdown.get(ex.model) ?? { model: ex.model, runs: 0, gflops: 0, gmacs: 0, flops: 0, macs: 0 };
      line.runs++;
      line.flops += ex.flops;
      line.macs += ex.macs;
      breakdown.set(ex.model, line);
    }
    return {
      task,
      width: img.width,
      height: img.height,
      mask,
      plan,
      cost: {
        flops: plan.flops,
        macs: plan.macs,
        gflops: plan.flops / 1e9,
        gmacs: plan.macs / 1e9,
        breakdown: [...breakdown.values()].map((l) => ({
          model: l.model,
          runs: l.runs,
          gflops: l.flops / 1e9,
          gmacs: l.macs / 1e9,
        })),
      },
      backend: this.pool.backend,
      timings: {
        decode: t1 - t0,
        plan: t2 - t1,
        queue: queueMs,
        infer: t3 - t2,
        model: modelMs,
        stitch: t4 - t3,
      },
    };
  }
}

/** Cuts every tile window of one execution out of the image and stacks them. */
function batchInput(input: Float32Array, c: number, img: RgbaImage, plan: Plan, ex: Execution): Float32Array {
  const [n, , inH, inW] = ex.dims;
  const out = new Float32Array(n * c * inH * inW);
  ex.tiles.forEach((ti, b) => {
    const t = plan.tiles[ti];
    let win = cropCHW(input, c, img.height, img.width, t.x - t.halo, t.y - t.halo, ex.windowW, ex.windowH, "zero");
    if (inH !== ex.windowH || inW !== ex.windowW) win = resizeCHW(win, c, ex.windowH, ex.windowW, inH, inW);
    out.set(win, b * c * inH * inW);
  });
  return out;
}

/** Writes the cores of one execution's outputs into the mask. */
function stitch(
  mask: Uint8Array,
  width: number,
  plan: Plan,
  ex: Execution,
  result: { dims: number[]; data: Float32Array },
  spec: ModelSpec,
) {
  const [, k, oh, ow] = result.dims;
  const threshold = spec.output.threshold ?? 0.5;
  const item = k * oh * ow;
  ex.tiles.forEach((ti, b) => {
    const t = plan.tiles[ti];
    let out = result.data.subarray(b * item, (b + 1) * item);
    if (oh !== ex.windowH || ow !== ex.windowW) out = resizeCHW(out, k, oh, ow, ex.windowH, ex.windowW);
    const plane = ex.windowH * ex.windowW;
    for (let y = 0; y < t.h; y++) {
      const wy = y + t.halo;
      const row = (t.y + y) * width + t.x;
      for (let x = 0; x < t.w; x++) {
        const p = wy * ex.windowW + x + t.halo;
        if (k === 1) {
          mask[row + x] = out[p] > threshold ? 1 : 0;
        } else {
          let best = 0, bestV = out[p];
          for (let c = 1; c < k; c++) {
            const v = out[c * plane + p];
            if (v > bestV) {
              bestV = v;
              best = c;
            }
          }
          mask[row + x] = best;
        }
      }
    }
  });
}
