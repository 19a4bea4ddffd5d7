// A trained zoo (a global f0, local models run on haloed tiles, a PaSeR routing policy) and the state its planners
// share while they run: the probability map, the tile grid and what produced each tile. Every model call goes through
// the request's Executor; this module only cuts windows and writes results.

import type { Executor, TensorCall, WindowCall } from "../exec/mod.ts";
import type { RgbaImage, SummaryKind } from "../image/mod.ts";
import type { LoadedModel, ModelRegistry, TaskSpec } from "../models.ts";
import { type Box, mergeTiles, type Rect, roundUp, tileGrid } from "./geometry.ts";
import { ProbMap } from "./probmap.ts";
import type { RankerWeights } from "./ranker.ts";
import type { PlannedTile, PreflightContext } from "./types.ts";
import { paddedWholeCall } from "./fixed.ts";
import SERVING from "../../models/serving.json" with { type: "json" };

/** The models of a zoo task, found by role. */
export interface Zoo {
  global: LoadedModel;
  /** Local models, cheapest first. */
  locals: LoadedModel[];
  policy: LoadedModel | null;
  /** Policy action index → model id (null = keep f0). */
  actions: (string | null)[];
  tile: number;
  /** Halo (px) of every local model, unless {@link halos} names the model's own. */
  halo: number;
  /** Per-model halos (model id → px), chosen on the validation split (models/serving.json). */
  halos?: Record<string, number>;
  /**
   * The route without a budget header: the budget ranking at this fraction of the strongest model's whole-image
   * FLOPs on the request's image (models/serving.json). Absent: the policy's argmax route.
   */
  defaultFraction?: number;
  /** Ranks upgrades instead of the critic's raw gains (models/serving.json). */
  ranker?: RankerWeights;
}

/** What bench/tune_zoo.ts chose on the validation split for one task (models/serving.json). */
export interface ServingChoice {
  halo: Record<string, number>;
  /** null: the policy's argmax route. */
  default_route: { rule: "budget"; fraction_of_strongest: number } | null;
  /** Gains for the budget ranking; null or absent: the critic's. */
  ranker?: RankerWeights | null;
}

/** models/serving.json's choices per task. */
export const SERVING_CHOICES: Record<string, ServingChoice> = (SERVING as { tasks: Record<string, ServingChoice> })
  .tasks;

/** The halo (px) a zoo cuts around `model`'s tiles. */
export function haloOf(zoo: Zoo, model: LoadedModel): number {
  return zoo.halos?.[model.spec.id] ?? zoo.halo;
}

/**
 * Finds a task's zoo in the registry, or null when the task has no global model. Without `servedHalo`, tiles are cut
 * with the halo the local models were trained with (their manifest `tile.halo`, also the upper limit). With it (the
 * server's `ZOO_HALO`), each local model gets the halo chosen for it on the validation split (`choice.halo`), capped
 * at `servedHalo`. `choice` also carries the default route.
 *
 * @example
 * ```ts ignore
 * const zoo = zooOf(registry, registry.task("digits"), 8);
 * zoo?.locals.map((m) => m.spec.id); // ["digits-f1", "digits-f2"]
 * ```
 */
export function zooOf(
  registry: ModelRegistry,
  task: TaskSpec,
  servedHalo?: number,
  choice: ServingChoice | undefined = SERVING_CHOICES[task.name],
): Zoo | null {
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
  const zoo: Zoo = { global, locals, policy, actions, tile, halo };
  if (servedHalo !== undefined && choice) {
    zoo.halos = Object.fromEntries(
      locals.map((m) => [m.spec.id, Math.min(halo, Math.max(0, Math.round(choice.halo[m.spec.id] ?? halo)))]),
    );
  }
  if (choice?.ranker) zoo.ranker = choice.ranker;
  if (choice?.default_route) zoo.defaultFraction = choice.default_route.fraction_of_strongest;
  return zoo;
}

/** The routing policy's input shape for a width×height image: rounded up to the policy's multiple and the tile size. */
export function policyDimsOf(zoo: Zoo, width: number, height: number): number[] {
  const m = Math.max(zoo.policy!.spec.input.multiple, zoo.tile);
  return [1, 2, roundUp(height, m), roundUp(width, m)];
}

/** The routing policy's call on a width×height image, shape only (no input data): for pricing and size checks. */
export function policyShapeCall(zoo: Zoo, width: number, height: number): TensorCall {
  return { model: zoo.policy!, dims: policyDimsOf(zoo, width, height), data: new Float32Array(0) };
}

/**
 * A zoo planner's preflight (types.ts `Planner.preflight`): f0 on the whole image, and with `policy` the routing
 * policy's input, which every request of that planner runs whatever the image holds.
 */
export function zooPreflight(zoo: Zoo, policy: boolean): (ctx: PreflightContext) => (WindowCall | TensorCall)[] {
  return ({ width, height }) => [
    paddedWholeCall(zoo.global, width, height),
    ...(policy && zoo.policy ? [policyShapeCall(zoo, width, height)] : []),
  ];
}

/** One zoo request in progress: the glance, the refinements and the probability map they fill. */
export class ZooRun {
  /** What produced each grid tile so far (the plan's tiles). */
  tiles: PlannedTile[] = [];
  readonly grid: Box[];
  readonly probs: ProbMap;
  readonly #cols: number;

  constructor(
    readonly zoo: Zoo,
    readonly task: TaskSpec,
    readonly exec: Executor,
    /** Merge neighbouring tiles of one model into shared windows (see geometry.ts `mergeTiles`). */
    readonly merge = true,
  ) {
    const { width, height } = exec.image;
    this.grid = tileGrid(width, height, zoo.tile);
    this.#cols = Math.ceil(width / zoo.tile);
    this.probs = new ProbMap(task.classes.length, height, width);
  }

  get image(): RgbaImage {
    return this.exec.image;
  }

  /** A model on the whole image, zero-padded at the bottom/right to its input multiple. */
  wholeCall(model: LoadedModel): WindowCall {
    return paddedWholeCall(model, this.image.width, this.image.height);
  }

  /** The policy's input shape: the image rounded up to the policy's multiple and the tile size. */
  policyDims(): number[] {
    return policyDimsOf(this.zoo, this.image.width, this.image.height);
  }

  /** Rectangles of grid tiles that run as one window each. */
  rects(tileIdx: number[], merge = this.merge): Rect[] {
    return mergeTiles(tileIdx, this.#cols, this.grid.length, merge);
  }

  /** `model` on these grid tiles: one haloed window per rectangle, sized to the model's input multiple. */
  localCall(model: LoadedModel, tileIdx: number[]): WindowCall {
    const m = model.spec.input.multiple;
    const { tile } = this.zoo;
    const halo = haloOf(this.zoo, model);
    const windows = this.rects(tileIdx).map((r) => ({
      x: r.col * tile - halo,
      y: r.row * tile - halo,
      w: roundUp(r.cols * tile + 2 * halo, m),
      h: roundUp(r.rows * tile + 2 * halo, m),
    }));
    return { model, windows };
  }

  /** Exact FLOPs of `model` once on the whole image, as {@link whole} runs it. */
  wholeFlops(model: LoadedModel): number {
    return this.exec.price([this.wholeCall(model)]).flops;
  }

  /** Exact FLOPs of the glance (f0 on the whole image): the cheapest valid plan. */
  glanceFlops(): number {
    return this.wholeFlops(this.zoo.global);
  }

  /** Exact FLOPs of running `model` on these grid tiles, as {@link refine} runs them. */
  localFlops(model: LoadedModel, tileIdx: number[]): number {
    return tileIdx.length ? this.exec.price([this.localCall(model, tileIdx)]).flops : 0;
  }

  /** f0 on the whole image; fills the probability map. */
  async glance(): Promise<void> {
    await this.whole(this.zoo.global);
    this.tiles = this.grid.map((t) => ({ ...t, model: this.zoo.global.spec.id, scale: 1, halo: 0 }));
  }

  /**
   * One model on the whole image; replaces the probability map and the tiles (cascade's second stage). `summary`
   * "class" when nothing reads the map's probabilities afterwards (a plan's last step: the mask needs the class only).
   */
  async whole(model: LoadedModel, summary: SummaryKind = "all"): Promise<void> {
    const [[out]] = await this.exec.run([{ ...this.wholeCall(model), summary }]);
    const { width: w, height: h } = this.image;
    await this.probs.writeBanded(out, { x: 0, y: 0, w, h });
    this.tiles = [{ x: 0, y: 0, w, h, model: model.spec.id, scale: 1, halo: 0 }];
  }

  /**
   * Runs each model on its grid tiles (all in flight at once) and writes the tiles' cores into the probability map;
   * `summary` as for {@link whole}.
   */
  async refine(jobs: { model: LoadedModel; tiles: number[] }[], summary: SummaryKind = "all"): Promise<void> {
    const todo = jobs.filter((j) => j.tiles.length > 0);
    if (todo.length === 0) return;
    // Summaries, not class scores: the softmax runs in the workers.
    const calls = todo.map((j) => ({ ...this.localCall(j.model, j.tiles), summary }));
    const results = await this.exec.run(calls);
    const { tile } = this.zoo;
    const { width: w, height: h } = this.image;
    for (const [k, job] of todo.entries()) {
      const halo = haloOf(this.zoo, job.model);
      for (const [i, r] of this.rects(job.tiles).entries()) {
        const out = results[k][i];
        const x = r.col * tile, y = r.row * tile;
        const cw = Math.min(r.cols * tile, w - x), ch = Math.min(r.rows * tile, h - y);
        await this.probs.writeBanded(out, { x, y, w: cw, h: ch });
        for (const ti of r.tiles) this.tiles[ti] = { ...this.grid[ti], model: job.model.spec.id, scale: 1, halo };
      }
    }
  }

  /** The policy's outputs per grid tile: action logits and predicted gains, [A][tiles]. */
  async policy(): Promise<{ logits: number[][]; gain: number[][] }> {
    const p = this.zoo.policy!;
    const dims = this.policyDims();
    const [out] = await this.exec.run([{ model: p, dims, data: this.probs.policyPlanes() }]);
    const read = (name: string) => {
      const t = out[name];
      if (!t) throw new Error(`policy ${p.spec.id} has no output '${name}' (has ${Object.keys(out).join(", ")})`);
      const [, a, gh, gw] = t.dims;
      const perAction: number[][] = [];
      for (let k = 0; k < a; k++) {
        perAction.push(
          this.grid.map((b) => t.data[k * gh * gw + Math.floor(b.y / this.zoo.tile) * gw + b.x / this.zoo.tile]),
        );
      }
      return perAction;
    };
    return { logits: read("actions"), gain: read("gain") };
  }

  confidence(t?: Box): number {
    return t ? this.probs.confidence(t.x, t.y, t.w, t.h) : this.probs.confidence();
  }

  mask(): Uint8Array {
    return this.probs.argmax();
  }
}
