// Adaptive execution for tasks with a trained zoo (a global f0, local models such as f1/f2 run on haloed tiles, and a
// PaSeR routing policy): the `adaptive`, `glimpse` and baseline plans. Every model execution is priced by the
// CostCounter at its exact input shape before it is sent to a worker, and none is sent if it would take the request
// past its budget; the request's cost is the sum over the executions that ran.
//
//   adaptive (PaSeR): f0 on the whole image → the policy on f0's argmax + entropy → one local model (or none) per
//     tile; non-cascading (a tile runs f1 or f2, never both); under a budget, (tile, action) pairs are granted in
//     order of the policy's predicted gain per FLOP.
//   adaptive with the complexity selector (DANCE-style baseline): tiles ranked by a cheap edge-energy score.
//   glimpse (GFNet): f0 glance, then focus steps on the least-confident tile with the strongest affordable model,
//     until the image's confidence reaches X-Confidence, the budget or the deadline stops it.
//   cascade (PaSeR's baseline, used by the evaluation): f0, then the strongest model on the whole image when f0's
//     mean confidence is below a threshold.

import { UnprocessableError } from "./errors.ts";
import { cropCHW, type RgbaImage, toGrey } from "./image/mod.ts";
import type { LoadedModel, ModelRegistry, TaskSpec } from "./models.ts";
import { budgetError, type Execution, type Plan, type PlannedTile } from "./plan.ts";

/** Runs one batched model call (the Segmenter's pool with the request's timeout). */
export type RunFn = (
  model: string,
  dims: number[],
  data: Float32Array,
) => Promise<{ dims: number[]; data: Float32Array; inferMs: number; queueMs: number }>;

/** What a zoo request asks for. */
export interface ZooRequest {
  mode: "adaptive" | "glimpse" | "cascade";
  /** Tile selector of adaptive mode (default: the task's, i.e. the policy). */
  selector?: "policy" | "complexity";
  budgetGflops?: number;
  /** glimpse: stop once the image's confidence reaches this (default {@link DEFAULT_CONFIDENCE}). */
  confidence?: number;
  /** cascade: run the strongest model when f0's mean confidence is below this. */
  cascadeConfidence?: number;
  /** complexity selector without a budget: share of tiles (most complex first) sent to the strongest model. */
  complexityShare?: number;
  /** Absolute time (performance.now()) by which glimpse must return its best mask so far. */
  deadlineAt?: number;
}

/** One focus step of glimpse mode. */
export interface GlimpseStep {
  step: number;
  tile: { x: number; y: number; w: number; h: number } | null;
  model: string;
  /** Cumulative GFLOPs after this step. */
  gflops: number;
  /** Mean max-probability over the image after this step. */
  confidence: number;
}

/** A zoo request's outcome: the mask and the plan as it ran. */
export interface ZooResult {
  mask: Uint8Array;
  plan: Plan & { glimpses: GlimpseStep[]; stop?: string };
  queueMs: number;
  modelMs: number;
}

/** Glimpse's default confidence target. */
export const DEFAULT_CONFIDENCE = 0.99;
/** Complexity selector's default share of tiles upgraded when there is no budget. */
export const DEFAULT_COMPLEXITY_SHARE = 0.35;

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

/** The models of a zoo task, found by role. */
export interface Zoo {
  global: LoadedModel;
  /** Local models, cheapest first. */
  locals: LoadedModel[];
  policy: LoadedModel | null;
  /** Policy action index → model id (null = keep f0). */
  actions: (string | null)[];
  tile: number;
  halo: number;
}

/** A rectangle of grid tiles run as one window. */
export interface Rect {
  col: number;
  row: number;
  cols: number;
  rows: number;
  /** Grid indices of the tiles it covers. */
  tiles: number[];
}

/**
 * Finds a task's zoo in the registry, or null when the task has no global model. `servedHalo` (px) cuts tiles with
 * less context than the local models were trained with (their manifest `tile.halo`, also the upper limit).
 */
export function zooOf(registry: ModelRegistry, task: TaskSpec, servedHalo?: number): Zoo | null {
  const models = registry.modelsOf(task.name);
  const global = models.find((m) => m.spec.role === "global");
  const locals = models.filter((m) => m.spec.role === "local");
  if (!global || locals.length === 0) return null;
  const tile = locals[0].spec.tile?.size ?? 64;
  const trained = locals[0].spec.tile?.halo ?? 0;
  const halo = servedHalo === undefined ? trained : Math.min(Math.max(0, Math.round(servedHalo)), trained);
  for (const m of locals) {
    if ((m.spec.tile?.size ?? 64) !== tile || (m.spec.tile?.halo ?? 0) !== trained) {
      throw new Error(`task ${task.name}: local models must share one tile size and halo`);
    }
  }
  const window = [1, global.spec.input.channels, tile + 2 * halo, tile + 2 * halo];
  locals.sort((a, b) => a.counter.count(window).flops - b.counter.count(window).flops);
  const policy = models.find((m) => m.spec.role === "policy") ?? null;
  const declared = policy?.spec.policy?.actions;
  const actions = declared
    ? declared.map((a) => a.model === global.spec.id ? null : a.model)
    : [null, ...locals.map((m) => m.spec.id)];
  return { global, locals, policy, actions, tile, halo };
}

/** Class probabilities of the whole image, [C, H, W], kept up to date as tiles are refined. */
class ProbMap {
  readonly data: Float32Array;
  constructor(readonly c: number, readonly h: number, readonly w: number) {
    this.data = new Float32Array(c * h * w);
  }

  /**
   * Writes softmax(logits) for a region: `out` is one item [C, oh, ow] of a model output whose pixel (0, 0) sits at
   * image pixel (ox, oy); only the image region (x, y, w, h) is written.
   */
  write(out: Float32Array, oh: number, ow: number, ox: number, oy: number, x: number, y: number, w: number, h: number) {
    const { c, data } = this;
    const plane = this.h * this.w, oplane = oh * ow;
    const e = new Float64Array(c);
    for (let yy = y; yy < y + h; yy++) {
      const orow = (yy - oy) * ow - ox, row = yy * this.w;
      for (let xx = x; xx < x + w; xx++) {
        const o = orow + xx;
        let max = -Infinity;
        for (let k = 0; k < c; k++) if (out[k * oplane + o] > max) max = out[k * oplane + o];
        let sum = 0;
        for (let k = 0; k < c; k++) sum += e[k] = Math.exp(out[k * oplane + o] - max);
        const p = row + xx;
        for (let k = 0; k < c; k++) data[k * plane + p] = e[k] / sum;
      }
    }
  }

  /** Mean over the region of the per-pixel max probability. */
  confidence(x = 0, y = 0, w = this.w, h = this.h): number {
    const { c, data } = this;
    const plane = this.h * this.w;
    let s = 0;
    for (let yy = y; yy < y + h; yy++) {
      for (let xx = x; xx < x + w; xx++) {
        const p = yy * this.w + xx;
        let m = 0;
        for (let k = 0; k < c; k++) m = Math.max(m, data[k * plane + p]);
        s += m;
      }
    }
    return s / (w * h);
  }

  /** Per-pixel argmax. */
  argmax(): Uint8Array {
    const { c, data } = this;
    const plane = this.h * this.w;
    const mask = new Uint8Array(plane);
    for (let p = 0; p < plane; p++) {
      let best = 0, v = data[p];
      for (let k = 1; k < c; k++) {
        if (data[k * plane + p] > v) {
          v = data[k * plane + p];
          best = k;
        }
      }
      mask[p] = best;
    }
    return mask;
  }

  /** PaSeR's policy input, [2, H', W'] zero-padded to (ph, pw): argmax / (C−1) and entropy / ln C. */
  features(ph: number, pw: number): Float32Array {
    const { c, data, h, w } = this;
    const plane = h * w;
    const out = new Float32Array(2 * ph * pw);
    const lnC = Math.log(c);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = y * w + x;
        let best = 0, v = data[p], ent = 0;
        for (let k = 0; k < c; k++) {
          const q = data[k * plane + p];
          if (q > v) {
            v = q;
            best = k;
          }
          if (q > 0) ent -= q * Math.log(q);
        }
        out[y * pw + x] = best / (c - 1);
        out[ph * pw + y * pw + x] = ent / lnC;
      }
    }
    return out;
  }
}

/** The tile grid of a zoo task over an image (cores of `tile` px, clipped at the border). */
function tileGrid(width: number, height: number, tile: number): { x: number; y: number; w: number; h: number }[] {
  const out = [];
  for (let y = 0; y < height; y += tile) {
    for (let x = 0; x < width; x += tile) {
      out.push({ x, y, w: Math.min(tile, width - x), h: Math.min(tile, height - y) });
    }
  }
  return out;
}

/** Edge energy of a tile after 4×4 block averaging (so pixel noise does not count as detail). */
export function tileEdgeEnergy(
  grey: Float32Array,
  width: number,
  height: number,
  t: { x: number; y: number; w: number; h: number },
): number {
  const b = 4;
  const bw = Math.max(1, Math.floor(t.w / b)), bh = Math.max(1, Math.floor(t.h / b));
  const blocks = new Float32Array(bw * bh);
  for (let by = 0; by < bh; by++) {
    for (let bx = 0; bx < bw; bx++) {
      let s = 0, n = 0;
      for (let y = t.y + by * b; y < Math.min(t.y + (by + 1) * b, height); y++) {
        for (let x = t.x + bx * b; x < Math.min(t.x + (bx + 1) * b, width); x++) {
          s += grey[y * width + x];
          n++;
        }
      }
      blocks[by * bw + bx] = n ? s / n : 0;
    }
  }
  let e = 0, n = 0;
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      const v = blocks[y * bw + x];
      if (x + 1 < bw) e += Math.abs(blocks[y * bw + x + 1] - v), n++;
      if (y + 1 < bh) e += Math.abs(blocks[(y + 1) * bw + x] - v), n++;
    }
  }
  return n ? e / n : 0;
}

/** Runs a zoo request on a decoded image. */
export class ZooRunner {
  readonly executions: Execution[] = [];
  readonly tiles: PlannedTile[] = [];
  flops = 0;
  macs = 0;
  queueMs = 0;
  modelMs = 0;
  readonly #input: Float32Array;
  readonly #probs: ProbMap;
  readonly #grid: { x: number; y: number; w: number; h: number }[];

  constructor(
    readonly zoo: Zoo,
    readonly task: TaskSpec,
    readonly img: RgbaImage,
    readonly run: RunFn,
    readonly maxExecPixels: number,
    /** Merge neighbouring tiles of one model into shared windows (see {@link windows}). */
    readonly merge = true,
  ) {
    this.#input = toGrey(img, zoo.global.spec.input.background);
    this.#probs = new ProbMap(task.classes.length, img.height, img.width);
    this.#grid = tileGrid(img.width, img.height, zoo.tile);
  }

  /** Exact FLOPs and MACs of one model call. */
  static price(model: LoadedModel, dims: number[]) {
    return model.counter.count(dims);
  }

  #globalDims(): number[] {
    const m = this.zoo.global.spec.input.multiple;
    return [1, 1, roundUp(this.img.height, m), roundUp(this.img.width, m)];
  }

  #policyDims(): number[] {
    const m = Math.max(this.zoo.policy!.spec.input.multiple, this.zoo.tile);
    return [1, 2, roundUp(this.img.height, m), roundUp(this.img.width, m)];
  }

  /** FLOPs of the glance (f0 on the whole image): the cheapest valid plan. */
  globalFlops(): number {
    return this.zoo.global.counter.count(this.#globalDims()).flops;
  }

  /**
   * Windows that cover a set of grid tiles: with `merge`, neighbouring tiles routed to the same model share one
   * window (a rectangle of tiles plus one halo around it) instead of each carrying its own halo — the same pixels
   * of context for fewer FLOPs. Rectangles are grown greedily in row-major order: right first, then down.
   */
  windows(tileIdx: number[], merge = this.merge): Rect[] {
    const cols = Math.ceil(this.img.width / this.zoo.tile);
    const want = new Set(tileIdx);
    const used = new Set<number>();
    const out: Rect[] = [];
    for (const ti of [...tileIdx].sort((a, b) => a - b)) {
      if (used.has(ti)) continue;
      const r0 = Math.floor(ti / cols), c0 = ti % cols;
      let k = 1, rows = 1;
      if (merge) {
        while (c0 + k < cols && want.has(ti + k) && !used.has(ti + k)) k++;
        const rowFree = (r: number) => {
          for (let c = c0; c < c0 + k; c++) {
            const j = r * cols + c;
            if (j >= this.#grid.length || !want.has(j) || used.has(j)) return false;
          }
          return true;
        };
        while (rowFree(r0 + rows)) rows++;
      }
      const tiles: number[] = [];
      for (let r = r0; r < r0 + rows; r++) for (let c = c0; c < c0 + k; c++) tiles.push(r * cols + c);
      tiles.forEach((j) => used.add(j));
      out.push({ col: c0, row: r0, cols: k, rows, tiles });
    }
    return out;
  }

  /** Input size [h, w] of a rectangle's window for `model` (tiles + halo, rounded up to its multiple). */
  #windowSize(model: LoadedModel, r: Rect): [number, number] {
    const m = model.spec.input.multiple;
    const { tile, halo } = this.zoo;
    return [roundUp(r.rows * tile + 2 * halo, m), roundUp(r.cols * tile + 2 * halo, m)];
  }

  /** Groups windows of one size into batched calls of at most maxExecPixels each. */
  #batches(model: LoadedModel, rects: Rect[]): { dims: number[]; rects: Rect[] }[] {
    const bySize = new Map<string, Rect[]>();
    for (const r of rects) {
      const key = this.#windowSize(model, r).join("x");
      bySize.set(key, [...(bySize.get(key) ?? []), r]);
    }
    const out = [];
    for (const [key, list] of bySize) {
      const [h, w] = key.split("x").map(Number);
      const per = Math.max(1, Math.floor(this.maxExecPixels / (h * w)));
      for (let i = 0; i < list.length; i += per) {
        const batch = list.slice(i, i + per);
        out.push({ dims: [batch.length, 1, h, w], rects: batch });
      }
    }
    return out;
  }

  /** Exact FLOPs of running `model` on these grid tiles, as {@link refine} would run them. */
  localFlops(model: LoadedModel, tileIdx: number[]): number {
    return this.#batches(model, this.windows(tileIdx)).reduce((f, b) => f + model.counter.count(b.dims).flops, 0);
  }

  async #exec(model: LoadedModel, dims: number[], data: Float32Array, tiles: number[], window: number) {
    const cost = model.counter.count(dims);
    this.executions.push({
      model: model.spec.id,
      dims,
      tiles,
      windowW: window || dims[3],
      windowH: window || dims[2],
      scale: 1,
      macs: cost.macs,
      flops: cost.flops,
    });
    this.flops += cost.flops;
    this.macs += cost.macs;
    const r = await this.run(model.spec.id, dims, data);
    this.queueMs += r.queueMs;
    this.modelMs += r.inferMs;
    return r;
  }

  /** f0 on the whole image (zero-padded to its multiple); fills the probability map. */
  async glance(): Promise<void> {
    const dims = this.#globalDims();
    const { width: w, height: h } = this.img;
    const data = cropCHW(this.#input, 1, h, w, 0, 0, dims[3], dims[2], "zero");
    const r = await this.#exec(this.zoo.global, dims, data, [], 0);
    this.#probs.write(r.data, r.dims[2], r.dims[3], 0, 0, 0, 0, w, h);
    for (const t of this.#grid) {
      this.tiles.push({ ...t, model: this.zoo.global.spec.id, scale: 1, halo: 0 });
    }
  }

  /** Runs `model` on grid tiles (haloed windows, batched by size) and writes their cores into the probability map. */
  async refine(model: LoadedModel, tileIdx: number[]): Promise<void> {
    if (tileIdx.length === 0) return;
    const { tile, halo } = this.zoo;
    const { width: w, height: h } = this.img;
    const calls = this.#batches(model, this.windows(tileIdx)).map(({ dims, rects }) => {
      const [, , wh, ww] = dims;
      const data = new Float32Array(rects.length * wh * ww);
      rects.forEach((r, b) => {
        data.set(cropCHW(this.#input, 1, h, w, r.col * tile - halo, r.row * tile - halo, ww, wh, "zero"), b * wh * ww);
        for (const ti of r.tiles) this.tiles[ti] = { ...this.#grid[ti], model: model.spec.id, scale: 1, halo };
      });
      const tiles = rects.flatMap((r) => r.tiles);
      return this.#exec(model, dims, data, tiles, 0).then((res) => ({ res, rects }));
    });
    for (const { res, rects } of await Promise.all(calls)) {
      const [, c, oh, ow] = res.dims;
      rects.forEach((r, b) => {
        const item = res.data.subarray(b * c * oh * ow, (b + 1) * c * oh * ow);
        const x = r.col * tile, y = r.row * tile;
        const cw = Math.min(r.cols * tile, w - x), ch = Math.min(r.rows * tile, h - y);
        this.#probs.write(item, oh, ow, x - halo, y - halo, x, y, cw, ch);
      });
    }
  }

  /** Policy outputs per tile: action logits and predicted gains, [A][tiles]. */
  async policy(): Promise<{ logits: number[][]; gain: number[][] }> {
    const p = this.zoo.policy!;
    const dims = this.#policyDims();
    const feats = this.#probs.features(dims[2], dims[3]);
    const r = await this.#exec(p, dims, feats, [], 0);
    // Two outputs come back concatenated along channels: [actions(A), gain(A)] (see workers/infer.ts).
    const [, ch, gh, gw] = r.dims;
    const a = ch / 2;
    const logits: number[][] = [], gain: number[][] = [];
    for (let k = 0; k < a; k++) {
      logits.push([]);
      gain.push([]);
    }
    for (const t of this.#grid) {
      const cell = Math.floor(t.y / this.zoo.tile) * gw + Math.floor(t.x / this.zoo.tile);
      for (let k = 0; k < a; k++) {
        logits[k].push(r.data[k * gh * gw + cell]);
        gain[k].push(r.data[(a + k) * gh * gw + cell]);
      }
    }
    return { logits, gain };
  }

  get grid() {
    return this.#grid;
  }

  confidence(t?: { x: number; y: number; w: number; h: number }): number {
    return t ? this.#probs.confidence(t.x, t.y, t.w, t.h) : this.#probs.confidence();
  }

  mask(): Uint8Array {
    return this.#probs.argmax();
  }

  /** The whole image through one model (cascade's second stage); replaces the probability map. */
  async whole(model: LoadedModel): Promise<void> {
    const m = model.spec.input.multiple;
    const { width: w, height: h } = this.img;
    const dims = [1, 1, roundUp(h, m), roundUp(w, m)];
    const data = cropCHW(this.#input, 1, h, w, 0, 0, dims[3], dims[2], "zero");
    const r = await this.#exec(model, dims, data, [], 0);
    this.#probs.write(r.data, r.dims[2], r.dims[3], 0, 0, 0, 0, w, h);
    this.tiles.splice(0, this.tiles.length, { x: 0, y: 0, w, h, model: model.spec.id, scale: 1, halo: 0 });
  }
}

/**
 * The planner's rule under a budget (the same as training/policy.py `plan_under_budget`, documented in the policy's
 * manifest entry): per tile, the actions are reduced to the upper convex hull of (FLOPs, predicted gain) starting at
 * keep = (0, 0), giving steps keep→a→b… with ratio Δgain/ΔFLOPs (only positive ones). All steps of all tiles are sorted
 * by ratio, highest first (ties: lower tile index, then the step from the cheaper state), and taken when the tile is
 * still in the step's starting state and the extra FLOPs fit. Returns the action index per tile (0 = keep).
 *
 * The steps are ranked at per-tile prices (`costs`); `price`, when given, is the exact cost of a whole plan (merged
 * windows cost less than the sum of their tiles), and a step is taken when the plan with it still costs ≤ budget.
 */
export function planUnderBudget(
  gain: number[][],
  costs: number[],
  budget: number,
  price?: (chosen: number[]) => number,
): number[] {
  const nTiles = gain[0].length;
  const steps: { t: number; from: number; to: number; ratio: number }[] = [];
  for (let t = 0; t < nTiles; t++) {
    let cur = 0;
    for (;;) {
      let next = -1, best = 0;
      for (let a = 1; a < costs.length; a++) {
        const dc = costs[a] - costs[cur];
        if (dc <= 0) continue;
        const r = (gain[a][t] - (cur === 0 ? 0 : gain[cur][t])) / dc;
        if (r > 0 && r >= best) [next, best] = [a, r];
      }
      if (next < 0) break;
      steps.push({ t, from: cur, to: next, ratio: best });
      cur = next;
    }
  }
  steps.sort((p, q) => q.ratio - p.ratio || p.t - q.t || p.from - q.from);
  const chosen = new Array(nTiles).fill(0);
  let left = budget;
  for (const { t, from, to } of steps) {
    if (chosen[t] !== from) continue;
    if (price) {
      chosen[t] = to;
      if (price(chosen) > budget) chosen[t] = from;
    } else if (costs[to] - costs[from] <= left) {
      chosen[t] = to;
      left -= costs[to] - costs[from];
    }
  }
  return chosen;
}

/** Runs one zoo request: adaptive (policy or complexity), glimpse or cascade. */
export async function runZoo(runner: ZooRunner, req: ZooRequest): Promise<ZooResult> {
  const { zoo } = runner;
  const budget = req.budgetGflops === undefined ? Infinity : req.budgetGflops * 1e9;
  const minFlops = runner.globalFlops();
  if (minFlops > budget) throw budgetError(minFlops, req.budgetGflops!);
  const glimpses: GlimpseStep[] = [];
  let stop: string | undefined;
  await runner.glance();

  // Cost of running action a (index into zoo.actions) on one tile, and its model.
  const actionModels = zoo.actions.map((id) => (id === null ? null : zoo.locals.find((m) => m.spec.id === id)!));
  const perTile = actionModels.map((m) => (m ? runner.localFlops(m, [0]) : 0));

  if (req.mode === "cascade") {
    const strongest = zoo.locals[zoo.locals.length - 1];
    const threshold = req.cascadeConfidence ?? DEFAULT_CONFIDENCE;
    if (runner.confidence() < threshold) {
      const m = strongest.spec.input.multiple;
      const cost = strongest.counter.count([1, 1, roundUp(runner.img.height, m), roundUp(runner.img.width, m)]).flops;
      if (runner.flops + cost <= budget) await runner.whole(strongest);
    }
  } else if (req.mode === "glimpse") {
    const target = req.confidence ?? DEFAULT_CONFIDENCE;
    const refined = new Set<number>();
    let lastStepMs = 0;
    glimpses.push({
      step: 0,
      tile: null,
      model: zoo.global.spec.id,
      gflops: runner.flops / 1e9,
      confidence: runner.confidence(),
    });
    for (let step = 1;; step++) {
      if (runner.confidence() >= target) {
        stop = "confidence";
        break;
      }
      if (req.deadlineAt !== undefined && performance.now() + 1.5 * lastStepMs >= req.deadlineAt) {
        stop = "deadline";
        break;
      }
      let worst = -1, worstConf = Infinity;
      runner.grid.forEach((t, i) => {
        if (refined.has(i)) return;
        const c = runner.confidence(t);
        if (c < worstConf) {
          worstConf = c;
          worst = i;
        }
      });
      if (worst < 0) {
        stop = "exhausted";
        break;
      }
      const model = [...zoo.locals].reverse().find((m) => runner.flops + runner.localFlops(m, [worst]) <= budget);
      if (!model) {
        stop = "budget";
        break;
      }
      const s0 = performance.now();
      await runner.refine(model, [worst]);
      lastStepMs = performance.now() - s0;
      refined.add(worst);
      const t = runner.grid[worst];
      glimpses.push({
        step,
        tile: { ...t },
        model: model.spec.id,
        gflops: runner.flops / 1e9,
        confidence: runner.confidence(),
      });
    }
  } else {
    const selector = req.selector ?? (zoo.policy ? "policy" : "complexity");
    let chosen: number[];
    if (selector === "policy") {
      if (!zoo.policy) {
        throw new UnprocessableError(`task ${runner.task.name} has no routing policy`, "mode-unavailable");
      }
      const policyFlops = zoo.policy.counter.count(
        [1, 2, roundUp(runner.img.height, zoo.tile), roundUp(runner.img.width, zoo.tile)],
      ).flops;
      if (runner.flops + policyFlops > budget) {
        // Not even the router fits: the glance alone is the plan.
        stop = "budget";
        chosen = runner.grid.map(() => 0);
      } else {
        const out = await runner.policy();
        if (budget === Infinity) {
          // The policy's own route: the argmax action per tile.
          chosen = runner.grid.map((_t, i) => {
            let best = 0;
            for (let a = 1; a < out.logits.length; a++) if (out.logits[a][i] > out.logits[best][i]) best = a;
            return best;
          });
        } else {
          // PaSeR's budget mode: upgrades ranked by predicted gain per FLOP at per-tile prices, each taken while the
          // exact plan (merged windows, batches) still fits.
          const price = (plan: number[]) => planFlops(runner, actionModels, plan);
          chosen = planUnderBudget(out.gain, perTile, budget - runner.flops, price);
        }
      }
    } else {
      const grey = toGrey(runner.img, zoo.global.spec.input.background);
      const scores = runner.grid.map((t) => tileEdgeEnergy(grey, runner.img.width, runner.img.height, t));
      const top = actionModels.length - 1;
      const order = scores.map((_s, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
      chosen = runner.grid.map(() => 0);
      if (budget === Infinity) {
        const share = req.complexityShare ?? DEFAULT_COMPLEXITY_SHARE;
        for (const i of order.slice(0, Math.round(share * order.length))) chosen[i] = top;
      } else {
        for (const i of order) {
          chosen[i] = top;
          if (runner.flops + planFlops(runner, actionModels, chosen) > budget) {
            chosen[i] = 0;
            break;
          }
        }
      }
      scores.forEach((s, i) => (runner.tiles[i] = { ...runner.tiles[i], score: Math.round(s * 1e5) / 1e5 }));
    }
    await Promise.all(actionModels.map((m, a) => {
      if (!m) return;
      return runner.refine(m, chosen.flatMap((c, i) => (c === a ? [i] : [])));
    }));
  }
  if (runner.flops > budget) throw new Error(`planner bug: spent ${runner.flops} FLOPs over a budget of ${budget}`);
  return {
    mask: runner.mask(),
    plan: {
      mode: req.mode === "cascade" ? "adaptive" : req.mode,
      tiles: runner.tiles,
      executions: runner.executions,
      macs: runner.macs,
      flops: runner.flops,
      minFlops,
      glimpses,
      ...(stop ? { stop } : {}),
    },
    queueMs: runner.queueMs,
    modelMs: runner.modelMs,
  };
}

/** Exact FLOPs of running the chosen actions (batched per model). */
function planFlops(runner: ZooRunner, models: (LoadedModel | null)[], chosen: number[]): number {
  let f = 0;
  models.forEach((m, a) => {
    if (!m) return;
    const tiles = chosen.flatMap((c, i) => (c === a ? [i] : []));
    if (tiles.length) f += runner.localFlops(m, tiles);
  });
  return f;
}
