// What a budget below the default plan's price buys (lib/plan/focus.ts): the ink cover at a narrower halo (and smaller
// windows where they let a wider halo fit), or, after a glance, full-resolution focus windows where the glance is least
// sure, as far as the budget allows. The cover of the image squeezed across, between the two: lib/plan/squeeze.ts.

import type { LevelPooling, WindowCall, WindowOutput } from "../exec/mod.ts";
import type { RgbaImage } from "../image/mod.ts";
import { type LoadedModel, PRELOADED_WINDOWS } from "../models.ts";
import type { CellGrid } from "./cover.ts";
import type { Box } from "./geometry.ts";
import {
  coverInk,
  CROSSED_HALO,
  type FocusGeometry,
  type FocusWindow,
  type InkCover,
  type InkCoverOptions,
  inkedCells,
  inkPooling,
  tailGrid,
  withTailParts,
} from "./ink_cover.ts";
import type { PlanContext } from "./types.ts";

/** The calls of a set of focus windows (one call; the executor batches equal window sizes). */
export const focusCalls = (model: LoadedModel, windows: FocusWindow[], levels?: LevelPooling): WindowCall[] =>
  windows.length ? [{ model, windows: windows.map((f) => f.window), ...(levels ? { levels } : {}) }] : [];

/**
 * Per cell of the image's grid: glance pixels ≥ low (may be text) and pixels in [low, high) (unsure), over the region
 * each glance output wrote (its core).
 */
export function glanceCells(
  outs: WindowOutput[],
  cores: Box[],
  width: number,
  height: number,
  cell: number,
  low: number,
  high: number,
) {
  const cols = Math.ceil(width / cell), rows = Math.ceil(height / cell);
  const marked = new Uint32Array(cols * rows), unsure = new Uint32Array(cols * rows);
  outs.forEach(({ data, window: win }, i) => {
    const core = cores[i];
    for (let y = core.y; y < core.y + core.h; y++) {
      const crow = Math.floor(y / cell) * cols, orow = (y - win.y) * win.w - win.x;
      for (let x = core.x; x < core.x + core.w; x++) {
        const p = data[orow + x];
        if (p < low) continue;
        const c = crow + Math.floor(x / cell);
        marked[c]++;
        if (p < high) unsure[c]++;
      }
    }
  });
  return { cols, rows, marked, unsure };
}

/**
 * Per model: FLOPs of its page graph's tail per px of a tail region (linear in the region's area), and the area an
 * unused slot runs on anyway (what a region costs no more than).
 */
const tailRates = new WeakMap<LoadedModel, { rate: number; free: number }>();

/**
 * A floor under the price of `coverInk`'s level-by-level plan (lib/plan/ink_cover.ts) at options `o` (`price`: an
 * executor's), without cutting the tail's regions (most of coverInk's time on a large page): the windows with every
 * tail slot left unused, plus the tail on each window's inked cells of the tail's grid, less the squares the slots run
 * on anyway. Each region of a window holds its inked cells and runs in a slot of its own, so no cut costs less.
 * Infinity where the windows do not pool over the page (the plan is then not level by level). `cover`: that cover
 * without its tail's regions, where the caller has cut it.
 */
export function coverFloor(
  model: LoadedModel,
  image: RgbaImage,
  maxExecPixels: number,
  o: InkCoverOptions,
  ink: CellGrid,
  price: (calls: WindowCall[]) => number,
  cover: InkCover = coverInk(model, image, maxExecPixels, o, ink, false),
): number {
  const { geo, windows } = cover;
  const levels = inkPooling(model, geo, ink, windows, o);
  if (!levels || !model.levels) return Infinity;
  const bare = price([{
    model,
    windows: windows.map((f) => f.window),
    levels: { ...levels, tails: windows.map(() => []) },
  }]);
  const tail = model.levels.graphs.tail;
  if (!tail.halo) return bare;
  let rates = tailRates.get(model);
  if (!rates) {
    const dims = [1, model.spec.input.channels, 64, 64],
      at = (t: number[][]) => model.levels!.cost.window(dims, t).flops;
    const rate = (at([[32, 32]]) - at([[16, 32]])) / 512;
    rates = { rate, free: 1024 - (at([[32, 32]]) - at([])) / rate };
    tailRates.set(model, rates);
  }
  const fine = tailGrid(model, image, o, ink), k = geo.cell / fine.cell;
  let extra = 0;
  for (const { rect: r } of windows) {
    // The window's cells on the tail's grid, which ends where the image does.
    const col = r.col * k, row = r.row * k;
    const cells = inkedCells(fine, {
      col,
      row,
      cols: Math.min(fine.cols, col + r.cols * k) - col,
      rows: Math.min(fine.rows, row + r.rows * k) - row,
    });
    extra += Math.max(0, cells * fine.cell * fine.cell - tail.slots * rates.free);
  }
  return bare + rates.rate * extra;
}

/** A narrower cover's windows, their call and the geometry they were cut on. */
type NarrowerCover = { windows: FocusWindow[]; calls: WindowCall[]; geo: FocusGeometry };

/**
 * Options `o` for the ink cover at `pageHalo` cut with `windowPixels`: one halo on every side, the crossed ones too
 * (lib/plan/ink_cover.ts `crossedHalo`).
 */
export const atHalo = <T extends InkCoverOptions>(o: T, pageHalo: number, windowPixels = o.windowPixels): T => ({
  ...o,
  pageHalo,
  windowPixels,
  crossedHalo: undefined,
});

/**
 * The level-by-level cover of `ink` at options `o` and its price; null where its windows do not pool over the page.
 * `bare`: that cover without its tail's regions, where the caller has cut it (its regions are cut here).
 */
export function pricedCover(
  model: LoadedModel,
  image: RgbaImage,
  maxExec: number,
  o: InkCoverOptions,
  ink: CellGrid,
  exec: PlanContext["exec"],
  bare?: InkCover,
): NarrowerCover & { flops: number } | null {
  const { geo, windows } = bare ? withTailParts(model, image, o, bare) : coverInk(model, image, maxExec, o, ink);
  const levels = inkPooling(model, geo, ink, windows, o);
  if (!levels) return null;
  const calls = focusCalls(model, windows, levels);
  return { windows, calls, geo, flops: exec.price(calls).flops };
}

/**
 * The ink cover pooling over the page at the largest of `o.budgetHalos` (below the page halo) that fits the budget and
 * costs less than the whole image once (`wholeFlops`), cut with the largest per-window cost of `o.budgetWindowPixels`
 * that fits at that halo; null when none does.
 */
export function narrowerCover(
  model: LoadedModel,
  image: RgbaImage,
  maxExec: number,
  o: InkCoverOptions & { budgetHalos: number[]; budgetWindowPixels: number[] },
  ink: CellGrid,
  exec: PlanContext["exec"],
  wholeFlops: number,
): NarrowerCover | null {
  const sizes = [...new Set(o.budgetWindowPixels)].sort((a, b) => b - a);
  const halos = o.budgetHalos.filter((h) => h < o.pageHalo).sort((a, b) => b - a);
  const tried = new Map<string, NarrowerCover | null>();
  const price = (calls: WindowCall[]) => exec.price(calls).flops, cap = Math.min(exec.left, wholeFlops - 1);
  // Per halo, the largest per-window cost whose cover had too many windows: a smaller one's has as many or more.
  const crowded = new Map<number, number>();
  const fitting = (pageHalo: number, windowPixels: number): NarrowerCover | null => {
    const crowd = crowded.get(pageHalo) ?? 0;
    if (windowPixels <= crowd) return fitting(pageHalo, 4 * crowd);
    const key = `${pageHalo}:${windowPixels}`;
    if (tried.has(key)) return tried.get(key)!;
    const cut = atHalo(o, pageHalo, windowPixels);
    // Where even the floor under its price does not fit, the tail's regions are not cut: on a 1170×2532 page where
    // no cover fits, the six covers' cuts took 88 ms (`.scratch/budprof.ts`). Main-thread plan time on the tuning and
    // validation screenshots, mean at 50 / 75 % of full, without and with the floor, two interleaved runs each:
    // 62.4 and 59.3 / 34.2 and 31.5 ms → 36.4 and 53.4 / 31.7 and 33.1 ms (`.scratch/sqtries.ts`). The floor was below
    // the price on all 1065 covers of every screenshot at five halos and three window sizes (`.scratch/floorcheck.ts`).
    const bare = coverInk(model, image, maxExec, cut, ink, false);
    if (coverFloor(model, image, maxExec, cut, ink, price, bare) > cap) {
      tried.set(key, null);
      return null;
    }
    // No more windows than the page graphs a worker keeps ready (`PRELOADED_WINDOWS`): else the same cover cut with a
    // larger per-window cost, so fewer, larger windows. A cover of 5 to 17 small windows made its page graph when it
    // first ran, 0.6–4.2 s more than its later runs on the test screenshots at 50 and 75 % natively (`deno run -A
    // bench/eval/budget_clock.ts`), again in each worker, and again whenever the worker's other page graphs had pushed
    // it out (workers/infer.ts keeps 8). There, with this, the first runs at 50 % took 226 ms on the mean instead of
    // 813 (later runs 203 instead of 190: more pages squeeze), and the mean IoU vs full resolution at 50 % fell from
    // 0.9382 to 0.9363 on the tuning, validation, second validation and test pages (test 0.927 → 0.924; `deno run -A
    // bench/eval/budget_sweep.ts --set tune,val,val2,test --shares 0.5`).
    // (Counted before the tail's regions are cut: a cover of too many windows never runs.)
    const many = bare.windows.length > PRELOADED_WINDOWS;
    if (many) crowded.set(pageHalo, windowPixels);
    const cover = many ? null : pricedCover(model, image, maxExec, cut, ink, exec, bare);
    const plan: NarrowerCover | null = many
      ? (windowPixels < maxExec ? fitting(pageHalo, 4 * windowPixels) : null)
      : cover && cover.flops < wholeFlops && exec.fits(cover.flops)
      ? cover
      : null;
    tried.set(key, plan);
    return plan;
  };
  // Where nothing fits at the halos below CROSSED_HALO, nothing fits at any (nearly always): a window at a wider halo
  // is at least as large as at none (whose sides where text crosses get CROSSED_HALO). Checking those first keeps the
  // budgets that end in a glance from cutting every halo at every size: where no cover fits, on the mean test
  // screenshot, one size at every halo took 16.2 ms, three sizes at every halo 49.6 (up to 119 on a 1170×2532 page),
  // three at 0 and 16 px 16.8 (scratch `.scratch/budplan.ts`, main thread). A halo is tried at every size: smaller
  // windows are not always cheaper (more crossed sides, more unused tail slots).
  const low = halos.filter((h) => h < CROSSED_HALO);
  if (!halos.length || (low.length && low.every((h) => sizes.every((w) => !fitting(h, w))))) return null;
  for (const pageHalo of halos) {
    for (const windowPixels of sizes) {
      const plan = fitting(pageHalo, windowPixels);
      if (plan) return plan;
    }
  }
  return null;
}

/**
 * The focus windows under a cap on their FLOPs: all wanted cells when they fit (`all`: their cover, where the caller
 * has it), else the 4×4-cell blocks where the glance is least sure (most unsure pixels), as many as fit, in that order.
 */
export function chooseFocus(
  exec: PlanContext["exec"],
  model: LoadedModel,
  geo: FocusGeometry,
  wanted: CellGrid,
  unsure: Uint32Array,
  cap: number,
  all: FocusWindow[] = geo.cover(wanted),
): FocusWindow[] {
  const price = (w: FocusWindow[]) => exec.price(focusCalls(model, w)).flops;
  if (price(all) <= cap) return all;
  const B = 4, bcols = Math.ceil(wanted.cols / B), brows = Math.ceil(wanted.rows / B);
  const value = new Float64Array(bcols * brows);
  for (let r = 0; r < wanted.rows; r++) {
    for (let c = 0; c < wanted.cols; c++) {
      if (wanted.on[r * wanted.cols + c]) {
        value[Math.floor(r / B) * bcols + Math.floor(c / B)] += unsure[r * wanted.cols + c] + 1;
      }
    }
  }
  const order = [...value.keys()].filter((b) => value[b] > 0).sort((a, b) => value[b] - value[a] || a - b);
  const upTo = (k: number) => {
    const on = new Uint8Array(wanted.on.length);
    for (const b of order.slice(0, k)) {
      const br = Math.floor(b / bcols), bc = b % bcols;
      for (let r = br * B; r < Math.min(wanted.rows, br * B + B); r++) {
        for (let c = bc * B; c < Math.min(wanted.cols, bc * B + B); c++) {
          on[r * wanted.cols + c] = wanted.on[r * wanted.cols + c];
        }
      }
    }
    return geo.cover({ ...wanted, on });
  };
  // Largest k whose plan fits (plans grow with k, nearly monotonically: search, then step down until it fits).
  let lo = 0, hi = order.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (price(upTo(mid)) <= cap) lo = mid;
    else hi = mid - 1;
  }
  for (let k = lo; k > 0; k--) {
    const w = upTo(k);
    if (price(w) <= cap) return w;
  }
  return [];
}
