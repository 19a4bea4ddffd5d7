// The Executor: the one place model executions happen. Planners hand it calls (a model on windows of the image, or on
// a ready tensor); it batches them per model and window size, prices every batch with the model's CostCounter at
// its exact input shape, refuses — before anything reaches a worker — a call that would take the request past its
// integer-FLOP budget or a batch item past the execution-size limit, runs the batches on the pool, and hands each
// window its output. A request's cost is the sum of what the executor ran; nothing else computes it.

import { BudgetExceededError, DeadlineUnreachableError, ExecutionTooLargeError, OverloadedError } from "../errors.ts";
import { resizeCHW, type RgbaImage, type Window } from "../image/mod.ts";
import type { LoadedModel } from "../models.ts";
import { inputPixels } from "./layout.ts";
import type { ModelInput, SharedImage, Tensor } from "../../workers/protocol.ts";
import type { Execution, ExecutorOptions, InferencePool, TensorCall, WindowCall, WindowOutput } from "./calls.ts";

export type {
  Execution,
  ExecutorOptions,
  InferencePool,
  LevelPooling,
  TensorCall,
  WindowCall,
  WindowOutput,
} from "./calls.ts";

/** What the pool answers for one batch. */
type PoolRun = ReturnType<InferencePool["run"]>;

interface Batch {
  call: number;
  dims: number[];
  /** Window indices of the call in this batch (window calls). */
  items: number[];
  flops: number;
  macs: number;
  /** A level-by-level job: the executions it is made of (each window's model run, each level's blank graph). */
  parts?: Execution[];
}

/**
 * Runs one request's model executions.
 *
 * @example
 * ```ts ignore
 * const exec = new Executor(pool, image, { budgetFlops: 2e9, maxExecPixels: 1 << 22, timeoutMs: 60_000 });
 * const cost = exec.price([{ model: f2, windows: [{ x: -8, y: -8, w: 80, h: 80 }] }]);
 * if (exec.fits(cost.flops)) {
 *   const [outs] = await exec.run([{ model: f2, windows: [{ x: -8, y: -8, w: 80, h: 80 }] }]);
 * }
 * ```
 */
export class Executor {
  /** Every execution that ran, in the order it was sent. */
  readonly executions: Execution[] = [];
  /** FLOPs and MACs spent so far (integers). */
  flops = 0;
  macs = 0;
  /** Summed over executions: time waiting for a worker, and time inside session.run (may exceed wall time). */
  queueMs = 0;
  modelMs = 0;
  /** Wall time spent inside {@link run}. */
  wallMs = 0;
  #shared: SharedImage | null = null;
  /** Images the planner derived (a call's `image`), each shared once. */
  #derived = new WeakMap<RgbaImage, SharedImage>();
  /** Jobs of older requests run first: the pool orders by this. */
  readonly #priority = performance.now();
  /** This request's key for the workers' prepared inputs ({@link prepare}). */
  readonly #key = crypto.randomUUID();
  #admitted = false;
  /** The buffers of every output the workers sent back: freed at once by {@link releaseOutputs}. */
  #outputs = new Set<ArrayBuffer>();

  constructor(readonly pool: InferencePool, readonly image: RgbaImage, readonly options: ExecutorOptions) {}

  /** True once something did not fit under the ceiling that would have fit under the budget alone. */
  ceilingBound = false;

  /** The effective budget in FLOPs: the lower of budget and ceiling (Infinity without either). */
  get budget(): number {
    return Math.min(this.options.budgetFlops ?? Infinity, this.options.ceilingFlops ?? Infinity);
  }

  /** FLOPs still available. */
  get left(): number {
    return this.budget - this.flops;
  }

  /** Whether `flops` more would still fit in the budget. */
  fits(flops: number): boolean {
    const after = this.flops + flops;
    if (after <= this.budget) return true;
    if (after <= (this.options.budgetFlops ?? Infinity)) this.ceilingBound = true;
    return false;
  }

  /**
   * Hands a free worker the windows of a level-by-level call this request is about to run (`flops`: about what it
   * costs), for it to build their model input while the planner finishes the call (lib/exec/pool.ts `prepare`). Costs
   * nothing and changes no result: the call's job uses that input only for the same windows of this request.
   */
  prepare(model: LoadedModel, windows: Window[], flops: number): void {
    if (!this.pool.prepare || !model.levels || !windows.length) return;
    const message = { model: model.spec.id, key: this.#key, image: this.#sharedImage(), windows };
    this.pool.prepare(message, levelsDims(model, windows), flops);
  }

  /** Exact cost of running these calls now, batched as {@link run} would batch them. */
  price(calls: (WindowCall | TensorCall)[]): { flops: number; macs: number } {
    return priceCalls(calls, this.options.maxExecPixels);
  }

  /**
   * Runs the calls (all batches in flight at once) and returns, per call, the outputs of its windows in order (window
   * calls) or the model's outputs by name (tensor calls). Throws BudgetExceededError or ExecutionTooLargeError, with
   * nothing sent, when the calls would not fit.
   */
  async run(calls: WindowCall[]): Promise<WindowOutput[][]>;
  async run(calls: TensorCall[]): Promise<Record<string, Tensor>[]>;
  async run(calls: (WindowCall | TensorCall)[]): Promise<(WindowOutput[] | Record<string, Tensor>)[]> {
    const batches = batchCalls(calls, this.options.maxExecPixels);
    const cost = batches.reduce((s, b) => s + b.flops, 0);
    if (!this.fits(cost)) throw new BudgetExceededError(this.flops, cost, this.budget);
    this.#admit(cost);
    const t0 = performance.now();
    for (const b of batches) {
      if (b.parts) this.executions.push(...b.parts);
      else this.executions.push({ model: calls[b.call].model.spec.id, dims: b.dims, flops: b.flops, macs: b.macs });
      this.flops += b.flops;
      this.macs += b.macs;
    }
    // Longest first: a request's jobs enter the pool's queue in this order (FIFO among one request's jobs), so the
    // largest start first and the short ones fill in beside them.
    const order = batches.map((_, k) => k).sort((a, k) => batches[k].flops - batches[a].flops);
    const pending = new Array<PoolRun>(batches.length);
    for (const k of order) pending[k] = this.#send(calls, batches[k]);
    const results = await Promise.all(pending);
    this.wallMs += performance.now() - t0;
    return this.#collect(calls, batches, results);
  }

  /** One batch to the pool: its call's tensor, or its windows of the shared image. */
  #send(calls: (WindowCall | TensorCall)[], b: Batch): PoolRun {
    const call = calls[b.call];
    const input: Float32Array | ModelInput = "data" in call ? call.data : call.levels
      ? {
        kind: "levels",
        image: this.#sharedImage(call.image),
        windows: call.windows,
        ...(call.image ? {} : { key: this.#key }),
        ...call.levels,
      }
      : {
        kind: "windows",
        image: this.#sharedImage(call.image),
        windows: b.items.map((i) => call.windows[i]),
        ...(call.image ? {} : { key: this.#key }),
        ...(call.summary ? { summary: call.summary } : {}),
      };
    return this.pool.run(call.model.spec.id, b.dims, input, this.#timeout(), {
      flops: b.flops,
      priority: this.#priority,
    });
  }

  /** Per call, the outputs of its windows in order (window calls) or by name (tensor calls); see {@link run}. */
  #collect(calls: (WindowCall | TensorCall)[], batches: Batch[], results: Awaited<PoolRun>[]) {
    const out: (WindowOutput[] | Record<string, Tensor>)[] = calls.map((c) => ("data" in c ? {} : []));
    batches.forEach((b, k) => {
      const r = results[k];
      for (const t of Object.values(r.outputs)) {
        if (t.data.buffer instanceof ArrayBuffer) this.#outputs.add(t.data.buffer);
      }
      this.queueMs += r.queueMs;
      this.modelMs += r.inferMs;
      const call = calls[b.call];
      if ("data" in call) {
        out[b.call] = r.outputs;
        return;
      }
      if (call.levels) {
        // Each output covers one of its window's tail regions (the whole window for a model without a tail): the
        // windows' outputs in turn, each window's regions in order.
        out[b.call] = call.levels.tails.flatMap((regions, i) =>
          regions.map((window, j) => {
            const t = r.outputs[`${i}.${j}`];
            return { window, c: t.dims[1], data: t.data };
          })
        );
        return;
      }
      const first = Object.values(r.outputs)[0];
      const [, c, oh, ow] = first.dims;
      const item = c * oh * ow;
      b.items.forEach((wi, n) => {
        const win = call.windows[wi];
        let data = first.data.subarray(n * item, (n + 1) * item);
        if (oh !== win.h || ow !== win.w) data = resizeCHW(data, c, oh, ow, win.h, win.w);
        (out[b.call] as WindowOutput[])[wi] = {
          window: win,
          c,
          data,
          ...(call.summary ? { summarised: call.summary } : {}),
        };
      });
    });
    return out;
  }

  /**
   * Frees the memory of every output the workers sent back so far (their arrays read empty from then on): call once
   * the planner is done with them. Left to the garbage collector, a large output (a text page's probability map at
   * full resolution: 12 MB at 1170×2532) stays allocated until the isolate next collects, so the next request's
   * output is written to fresh memory, paid in page faults (about 10–20 µs per 4 KiB page on the virtual machines
   * measured: lib/libc.ts).
   */
  releaseOutputs(): void {
    for (const b of this.#outputs) if (!b.detached) b.transfer(0);
    this.#outputs.clear();
  }

  /**
   * Sheds the request (503) when its first execution would queue past maxQueueDelayMs, and refuses (504) work that
   * cannot finish by the deadline at the measured throughput — both before anything is sent.
   */
  #admit(flops: number) {
    const { maxQueueDelayMs, deadlineAt } = this.options;
    if (!this.#admitted && maxQueueDelayMs !== undefined && this.pool.expectedWaitMs) {
      const wait = this.pool.expectedWaitMs(this.#priority);
      if (wait > maxQueueDelayMs) throw new OverloadedError(wait, `bound ${Math.round(maxQueueDelayMs)} ms`);
    }
    this.#admitted = true;
    if (deadlineAt !== undefined && this.pool.estimateMs) {
      const eta = this.pool.estimateMs(flops, this.#priority);
      const left = deadlineAt - performance.now();
      if (eta > left) throw new DeadlineUnreachableError(eta, left);
    }
  }

  #timeout(): number {
    const { timeoutMs, deadlineAt } = this.options;
    const left = deadlineAt === undefined ? timeoutMs : Math.min(timeoutMs, deadlineAt - performance.now());
    return Math.max(1, left);
  }

  /**
   * The image (the request's, or one a call derived from it) in a SharedArrayBuffer, made once per request, so workers
   * read the pixels without a copy.
   */
  #sharedImage(derived?: RgbaImage): SharedImage {
    if (derived) {
      let s = this.#derived.get(derived);
      if (!s) this.#derived.set(derived, s = shared(derived));
      return s;
    }
    return this.#shared ??= shared(this.image);
  }
}

/** `image` with its pixels in a SharedArrayBuffer (itself, when they already are). */
function shared(image: RgbaImage): SharedImage {
  const { width, height, data } = image;
  if (data.buffer instanceof SharedArrayBuffer) return image;
  const bytes = new Uint8Array(new SharedArrayBuffer(data.length));
  bytes.set(data);
  return { width, height, data: bytes };
}

/**
 * Exact cost of `calls`, batched as {@link Executor.run} batches them; needs only the calls' shapes, not the image, so
 * a request can be priced and size-checked from its image header before the image is decoded.
 *
 * @throws {ExecutionTooLargeError} when one window or tensor would be over `maxExecPixels` input pixels.
 *
 * @example
 * ```ts ignore
 * priceCalls([{ model: f0, windows: [{ x: 0, y: 0, w: 256, h: 256 }] }], 1 << 22); // { flops: 117047296, macs: … }
 * ```
 */
export function priceCalls(
  calls: (WindowCall | TensorCall)[],
  maxExecPixels: number,
): { flops: number; macs: number } {
  let flops = 0, macs = 0;
  for (const b of batchCalls(calls, maxExecPixels)) {
    flops += b.flops;
    macs += b.macs;
  }
  return { flops, macs };
}

/** Splits calls into batches of one input size, at most maxExecPixels each, and prices them. */
function batchCalls(calls: (WindowCall | TensorCall)[], maxExecPixels: number): Batch[] {
  const out: Batch[] = [];
  calls.forEach((call, ci) => {
    const m = call.model;
    if ("data" in call) {
      if (inputPixels(call.dims) > maxExecPixels) tooLarge(m, call.dims, maxExecPixels);
      out.push({ call: ci, dims: call.dims, items: [], ...m.counter.count(call.dims) });
      return;
    }
    if (call.levels) {
      out.push(levelsBatch(call, ci, maxExecPixels));
      return;
    }
    const scale = call.scale ?? 1, scaleY = call.scaleY ?? scale;
    const bySize = new Map<string, number[]>();
    call.windows.forEach((w, i) => {
      const key = `${w.h}x${w.w}`;
      const list = bySize.get(key);
      if (list) list.push(i);
      else bySize.set(key, [i]);
    });
    for (const [key, items] of bySize) {
      const [wh, ww] = key.split("x").map(Number);
      const inH = Math.round(wh * scaleY), inW = Math.round(ww * scale);
      if (inH * inW > maxExecPixels) tooLarge(m, [1, m.spec.input.channels, inH, inW], maxExecPixels);
      const per = Math.max(1, Math.floor(maxExecPixels / (inH * inW)));
      for (let i = 0; i < items.length; i += per) {
        const part = items.slice(i, i + per);
        const dims = [part.length, m.spec.input.channels, inH, inW];
        out.push({ call: ci, dims, items: part, ...m.counter.count(dims) });
      }
    }
  });
  return out;
}

/** A level-by-level job's shape as the pool sees it: its windows' pixels in a row. */
const levelsDims = (
  m: LoadedModel,
  windows: Window[],
) => [1, m.spec.input.channels, 1, windows.reduce((s, w) => s + w.h * w.w, 0)];

/**
 * A level-by-level call as one job: one run of the model's page graph (lib/onnx/page.ts). Its cost, counted from that
 * graph: each window's part (the whole model's nodes at its shape, and its share of the pools' sums), plus the blank
 * part on one pixel per blank colour.
 */
function levelsBatch(call: WindowCall, ci: number, maxExecPixels: number): Batch {
  const m = call.model, id = m.spec.id, c = m.spec.input.channels;
  if (!m.levels) throw new Error(`${id} is not cut in levels`);
  if ((call.scale ?? 1) !== 1 || (call.scaleY ?? 1) !== 1) throw new Error("level-by-level windows run at scale 1");
  const { cost } = m.levels;
  const parts: Execution[] = call.windows.map((w, i) => {
    const dims = [1, c, w.h, w.w], tails = call.levels!.tails[i].map((t) => [t.h, t.w]);
    if (w.h * w.w > maxExecPixels) tooLarge(m, dims, maxExecPixels);
    const whole = tails.length === 1 && tails[0][0] === w.h && tails[0][1] === w.w;
    return { model: id, dims, ...(whole ? {} : { tails }), ...cost.window(dims, tails) };
  });
  // Without blank colours (no page position left to blank page) the page graph has no blank part.
  const colours = call.levels!.colours.length / 4;
  if (colours) parts.push({ model: `${id}:blank`, dims: [colours, c, 1, 1], ...cost.blank(colours, c) });
  return {
    call: ci,
    dims: levelsDims(m, call.windows),
    items: call.windows.map((_, i) => i),
    flops: parts.reduce((s, p) => s + p.flops, 0),
    macs: parts.reduce((s, p) => s + p.macs, 0),
    parts,
  };
}

function tooLarge(m: LoadedModel, dims: number[], maxExecPixels: number): never {
  const [n, , h, w] = dims;
  throw new ExecutionTooLargeError(
    `${m.spec.id} would run on ${n}×${h}×${w} = ${n * h * w} input pixels in one execution, over this server's ` +
      `limit of ${maxExecPixels}`,
    maxExecPixels,
    { model: m.spec.id, shape: dims },
  );
}
