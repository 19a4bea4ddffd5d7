// Per-tile outcomes of a zoo on labelled scenes and what they tell: every local model run on every tile (one window
// per tile, at chosen halos), f0 and the strongest model on the whole image, the critic's predicted gains. From them,
// routes are replayed without running anything more: the oracle (each tile's action chosen by its real gain against
// the label, ranked by gain per FLOP under the budget, priced exactly with merged windows), the policy's ranking on
// the same outcomes, the cost of tiling, and the critic's rank correlation with the real gains. Used by the
// evaluation (test split) and by bench/tune_zoo.ts (validation split).

import { Executor, type InferencePool } from "../../lib/exec/mod.ts";
import { decodeImage } from "../../lib/image/mod.ts";
import type { LoadedModel, TaskSpec } from "../../lib/models.ts";
import { haloOf, planUnderBudget, type Zoo, ZooRun } from "../../lib/plan/mod.ts";
import { rankGains, tileFeatures } from "../../lib/plan/ranker.ts";

/** A labelled scene: the PNG a client would upload and the class index per pixel. */
export interface LabelledScene {
  bytes: Uint8Array;
  label: Uint8Array;
}

/** Confusion sums of one region: intersections I_c then unions U_c, per class. */
export type Counts = Float64Array;

/** What a zoo does on one scene's tiles. */
export interface SceneOutcome {
  /** The served geometry (merged windows, served halos): prices plans, runs nothing more. */
  run: ZooRun;
  glanceFlops: number;
  policyFlops: number;
  /** FLOPs of each local model once on the whole image. */
  wholeFlops: Record<string, number>;
  /** f0 (the glance), per tile. */
  keep: Counts[];
  /** `${model id}@${halo}` → per tile, the model on that tile alone (one window with that halo). */
  tiles: Record<string, Counts[]>;
  /** Model id → per tile, the model on the whole image. */
  whole: Record<string, Counts[]>;
  /** The critic's predicted gain per action per tile (null without a policy). */
  gain: number[][] | null;
  /** What the glance tells about each tile (lib/plan/ranker.ts `tileFeatures`). */
  features: number[][];
}

/** Key of a (model, halo) variant in {@link SceneOutcome.tiles}. */
export const variant = (m: LoadedModel, halo: number) => `${m.spec.id}@${halo}`;

/** Adds the confusion of `mask` against `label` over a tile into per-tile counts. */
function countTile(
  pred: (x: number, y: number) => number,
  label: Uint8Array,
  width: number,
  t: { x: number; y: number; w: number; h: number },
  C: number,
): Counts {
  const c = new Float64Array(2 * C);
  for (let y = t.y; y < t.y + t.h; y++) {
    for (let x = t.x; x < t.x + t.w; x++) {
      const a = pred(x, y), b = label[y * width + x];
      c[C + a]++;
      if (a === b) c[a]++;
      else c[C + b]++;
    }
  }
  return c;
}

/** Argmax over C channels of item data [C, h, w] at (x - ox, y - oy). */
function argmaxAt(data: Float32Array, C: number, h: number, w: number, ox: number, oy: number) {
  const plane = h * w;
  return (x: number, y: number) => {
    const p = (y - oy) * w + (x - ox);
    let best = 0;
    for (let k = 1; k < C; k++) if (data[k * plane + p] > data[best * plane + p]) best = k;
    return best;
  };
}

/**
 * Runs the zoo on every scene: the glance and policy as served, each (model, halo) of `variants` on every tile alone,
 * and `wholeModels` on the whole image.
 */
export async function collect(
  pool: InferencePool,
  spec: TaskSpec,
  list: LabelledScene[],
  zoo: Zoo,
  variants: { model: LoadedModel; halo: number }[],
  wholeModels: LoadedModel[],
): Promise<SceneOutcome[]> {
  const C = spec.classes.length;
  const out: SceneOutcome[] = [];
  for (const s of list) {
    const image = await decodeImage(s.bytes);
    const exec = new Executor(pool, image, { maxExecPixels: 1 << 22, timeoutMs: 600_000 });
    const run = new ZooRun(zoo, spec, exec);
    await run.glance();
    const glanceFlops = exec.flops;
    const mask = run.mask();
    const features = tileFeatures(run.probs, run.grid);
    const keep = run.grid.map((t) => countTile((x, y) => mask[y * image.width + x], s.label, image.width, t, C));
    let gain: number[][] | null = null;
    if (zoo.policy) gain = (await run.policy()).gain;
    const policyFlops = exec.flops - glanceFlops;
    const all = run.grid.map((_t, i) => i);
    const runs = variants.map(({ model, halo }) =>
      new ZooRun({ ...zoo, halos: { ...zoo.halos, [model.spec.id]: halo } }, spec, exec, false)
    );
    const results = await exec.run([
      ...variants.map(({ model }, k) => runs[k].localCall(model, all)),
      ...wholeModels.map((m) => run.wholeCall(m)),
    ]);
    const tiles: Record<string, Counts[]> = {};
    variants.forEach(({ model, halo }, k) => {
      tiles[variant(model, halo)] = run.grid.map((t, i) => {
        const o = results[k][i];
        return countTile(
          argmaxAt(o.data, C, o.window.h, o.window.w, o.window.x, o.window.y),
          s.label,
          image.width,
          t,
          C,
        );
      });
    });
    const whole: Record<string, Counts[]> = {};
    const wholeFlops: Record<string, number> = {};
    wholeModels.forEach((m, k) => {
      const o = results[variants.length + k][0];
      const pred = argmaxAt(o.data, C, o.window.h, o.window.w, 0, 0);
      whole[m.spec.id] = run.grid.map((t) => countTile(pred, s.label, image.width, t, C));
      wholeFlops[m.spec.id] = exec.price([run.wholeCall(m)]).flops;
    });
    out.push({ run, glanceFlops, policyFlops, wholeFlops, keep, tiles, whole, gain, features });
  }
  return out;
}

/** Dataset-level mIoU of summed counts (classes that never occur are skipped). */
export function miouOf(total: Counts): number {
  const C = total.length / 2;
  let s = 0, n = 0;
  for (let c = 0; c < C; c++) {
    if (total[C + c]) {
      s += total[c] / total[C + c];
      n++;
    }
  }
  return s / n;
}

function add(into: Counts, c: Counts): Counts {
  for (let i = 0; i < c.length; i++) into[i] += c[i];
  return into;
}

/**
 * A tile's first-order contribution to the dataset-level mIoU when its counts change from `from` to `to`, at the
 * dataset totals `base` (as training/evaluate.py `tile_gain`): additive over tiles, so gain per FLOP ranks upgrades.
 */
export function linearGain(from: Counts, to: Counts, base: Counts): number {
  const C = base.length / 2;
  let g = 0;
  for (let c = 0; c < C; c++) {
    const I = base[c], U = base[C + c];
    if (!U) continue;
    g += (to[c] - from[c]) / U - (I * (to[C + c] - from[C + c])) / (U * U);
  }
  return g / C;
}

/** A route replayed on the outcomes: mIoU and mean GFLOPs per image. */
export interface Replay {
  miou: number;
  gflops: number;
  /** Share of tiles per action, and of images sent to the strongest model whole. */
  share: number[];
  wholeShare: number;
}

/**
 * Replays per-scene action choices (0 = keep, a ≥ 1 = `locals[a-1]` at its served halo): mIoU from the per-tile
 * outcomes, cost priced exactly on the served geometry (glance + policy + merged windows). A plan dearer than the
 * strongest model on the whole image runs that instead, as the planner does.
 */
export function replay(
  outcomes: SceneOutcome[],
  zoo: Zoo,
  choose: (o: SceneOutcome, si: number) => number[],
  withPolicy = true,
): Replay {
  const C = outcomes[0].keep[0].length / 2;
  const total = new Float64Array(2 * C);
  const top = zoo.locals[zoo.locals.length - 1];
  let flops = 0, wholeN = 0, nTiles = 0;
  const share = new Array(zoo.locals.length + 1).fill(0);
  outcomes.forEach((o, si) => {
    const chosen = choose(o, si);
    const local = planPrice(o, zoo, chosen);
    flops += o.glanceFlops + (withPolicy ? o.policyFlops : 0);
    const only = chosen.every((a) => a === chosen[0]) && chosen[0] > 0 ? zoo.locals[chosen[0] - 1] : null;
    for (const m of only && only !== top ? [only, top] : [top]) {
      const whole = o.wholeFlops[m.spec.id];
      if (whole === undefined || !(local > whole || (m === only && local === whole))) continue;
      flops += whole;
      wholeN++;
      o.whole[m.spec.id].forEach((c) => add(total, c));
      return;
    }
    flops += local;
    chosen.forEach((a, t) => {
      share[a]++;
      nTiles++;
      add(total, a === 0 ? o.keep[t] : o.tiles[variant(zoo.locals[a - 1], haloOf(zoo, zoo.locals[a - 1]))][t]);
    });
  });
  return {
    miou: miouOf(total),
    gflops: flops / outcomes.length / 1e9,
    share: share.map((s) => s / Math.max(1, nTiles)),
    wholeShare: wholeN / outcomes.length,
  };
}

const priced = new WeakMap<Zoo, Map<string, number>>();
const pricers = new WeakMap<SceneOutcome, Map<Zoo, ZooRun>>();

/** Exact FLOPs of the local calls of a per-tile action choice on `zoo`'s geometry (merged windows, its halos). */
export function planPrice(o: SceneOutcome, zoo: Zoo, chosen: number[]): number {
  const { width, height } = o.run.image;
  const key = `${width}x${height}:${chosen.join("")}`;
  let memo = priced.get(zoo);
  if (!memo) priced.set(zoo, memo = new Map());
  const hit = memo.get(key);
  if (hit !== undefined) return hit;
  let runs = pricers.get(o);
  if (!runs) pricers.set(o, runs = new Map());
  let run = runs.get(zoo);
  if (!run) runs.set(zoo, run = o.run.zoo === zoo ? o.run : new ZooRun(zoo, o.run.task, o.run.exec));
  const flops = zoo.locals.reduce((f, m, k) => {
    const tiles = chosen.flatMap((a, t) => (a === k + 1 ? [t] : []));
    return f + run.localFlops(m, tiles);
  }, 0);
  memo.set(key, flops);
  return flops;
}

/** Dataset totals of f0 (the base the linear gains are taken at). */
export function keepTotals(outcomes: SceneOutcome[]): Counts {
  const C = outcomes[0].keep[0].length / 2;
  const base = new Float64Array(2 * C);
  for (const o of outcomes) o.keep.forEach((c) => add(base, c));
  return base;
}

/** Real gain per action per tile of one scene ([A][tiles], action 0 = 0), at the served halos. */
export function realGains(o: SceneOutcome, zoo: Zoo, base: Counts): number[][] {
  return [
    o.keep.map(() => 0),
    ...zoo.locals.map((m) => o.tiles[variant(m, haloOf(zoo, m))].map((c, t) => linearGain(o.keep[t], c, base))),
  ];
}

/** The budget ranking (budget.ts) with given gains, under `fraction` of the strongest model's whole-image FLOPs. */
export function rankedRoute(o: SceneOutcome, zoo: Zoo, gains: number[][], fraction: number, withPolicy = true) {
  const top = zoo.locals[zoo.locals.length - 1];
  const left = fraction * o.wholeFlops[top.spec.id] - o.glanceFlops - (withPolicy ? o.policyFlops : 0);
  const perTile = [0, ...zoo.locals.map((_m, k) => planPrice(o, zoo, o.keep.map((_c, t) => (t === 0 ? k + 1 : 0))))];
  if (left < 0) return o.keep.map(() => 0);
  return planUnderBudget(gains, perTile, left, (chosen) => planPrice(o, zoo, chosen));
}

/** Spearman's rank correlation (average ranks for ties). */
export function spearman(a: number[], b: number[]): number {
  const rank = (v: number[]) => {
    const idx = v.map((_x, i) => i).sort((i, j) => v[i] - v[j]);
    const r = new Array(v.length).fill(0);
    for (let i = 0; i < idx.length;) {
      let j = i;
      while (j + 1 < idx.length && v[idx[j + 1]] === v[idx[i]]) j++;
      for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(a), rb = rank(b);
  const n = a.length, ma = (n - 1) / 2;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (ra[i] - ma) * (rb[i] - ma);
    saa += (ra[i] - ma) ** 2;
    sbb += (rb[i] - ma) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** The gains the served ranking uses: the zoo's ranker over the critic, or the critic's own. */
export function servedGains(o: SceneOutcome, zoo: Zoo): number[][] {
  return zoo.ranker ? rankGains(zoo.ranker, o.features, o.gain!) : o.gain!;
}

/** Spearman correlation of predicted gains with the real gain, per local action, pooled over all tiles. */
export function gainCorrelation(
  outcomes: SceneOutcome[],
  zoo: Zoo,
  predicted: (o: SceneOutcome) => number[][] = (o) => o.gain!,
): number[] {
  const base = keepTotals(outcomes);
  return zoo.locals.map((_m, k) => {
    const pred: number[] = [], real: number[] = [];
    for (const o of outcomes) {
      if (!o.gain) continue;
      const g = realGains(o, zoo, base);
      pred.push(...predicted(o)[k + 1]);
      real.push(...g[k + 1]);
    }
    return pred.length ? spearman(pred, real) : NaN;
  });
}

/** Writes outcomes to a JSON file (the runs are rebuilt from the image size on load). */
export async function saveOutcomes(path: URL, outcomes: SceneOutcome[]): Promise<void> {
  const plain = outcomes.map(({ run, keep, tiles, whole, ...rest }) => ({
    width: run.image.width,
    height: run.image.height,
    keep: keep.map((c) => [...c]),
    tiles: Object.fromEntries(Object.entries(tiles).map(([k, v]) => [k, v.map((c) => [...c])])),
    whole: Object.fromEntries(Object.entries(whole).map(([k, v]) => [k, v.map((c) => [...c])])),
    ...rest,
  }));
  await Deno.writeTextFile(path, JSON.stringify(plain));
}

/** Reads outcomes written by {@link saveOutcomes}; their runs price on `zoo`'s geometry and run nothing. */
export async function loadOutcomes(path: URL, zoo: Zoo, spec: TaskSpec): Promise<SceneOutcome[]> {
  const refuse: InferencePool = {
    backend: "none",
    run: () => Promise.reject(new Error("outcomes loaded from a file cannot run models")),
  };
  // deno-lint-ignore no-explicit-any
  const plain: any[] = JSON.parse(await Deno.readTextFile(path));
  const counts = (v: number[][]) => v.map((c) => Float64Array.from(c));
  const byKey = (r: Record<string, number[][]>) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, counts(v)]));
  return plain.map(({ width, height, keep, tiles, whole, ...rest }) => {
    const image = { width, height, data: new Uint8Array(0) };
    const exec = new Executor(refuse, image, { maxExecPixels: 1 << 22, timeoutMs: 1 });
    return { run: new ZooRun(zoo, spec, exec), keep: counts(keep), tiles: byKey(tiles), whole: byKey(whole), ...rest };
  });
}
