// What a budget below the default plan's price buys (lib/plan/focus.ts): the ink cover at a narrower halo (and smaller
// windows where they let a wider halo fit), or, after a glance, full-resolution focus windows where the glance is least
// sure, as far as the budget allows.

import type { LevelPooling, WindowCall, WindowOutput } from "../exec/mod.ts";
import { type RgbaImage, squeezeWidth, stretchRows } from "../image/mod.ts";
import type { LoadedModel } from "../models.ts";
import type { CellGrid } from "./cover.ts";
import type { Box } from "./geometry.ts";
import {
  coverInk,
  CROSSED_HALO,
  type FocusGeometry,
  type FocusWindow,
  type InkCoverOptions,
  inkedCells,
  inkPooling,
  outputCores,
  tailGrid,
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
 * tail slot left unused, plus
 * the tail on each window's inked cells of the tail's grid, less the squares the slots run on anyway. Each region of
 * a window holds its inked cells and runs in a slot of its own, so no cut costs less. Infinity where the windows do
 * not pool over the page (the plan is then not level by level).
 */
export function coverFloor(
  model: LoadedModel,
  image: RgbaImage,
  maxExecPixels: number,
  o: InkCoverOptions,
  ink: CellGrid,
  price: (calls: WindowCall[]) => number,
): number {
  const { geo, windows } = coverInk(model, image, maxExecPixels, o, ink, false);
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
const atHalo = <T extends InkCoverOptions>(o: T, pageHalo: number, windowPixels = o.windowPixels): T => ({
  ...o,
  pageHalo,
  windowPixels,
  crossedHalo: undefined,
});

/** The level-by-level cover of `ink` at options `o` and its price; null where its windows do not pool over the page. */
function pricedCover(
  model: LoadedModel,
  image: RgbaImage,
  maxExec: number,
  o: InkCoverOptions,
  ink: CellGrid,
  exec: PlanContext["exec"],
): NarrowerCover & { flops: number } | null {
  const { geo, windows } = coverInk(model, image, maxExec, o, ink);
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
  const fitting = (pageHalo: number, windowPixels: number) => {
    const key = `${pageHalo}:${windowPixels}`;
    if (tried.has(key)) return tried.get(key)!;
    const cut = atHalo(o, pageHalo, windowPixels);
    // Where even the floor under its price does not fit, the tail's regions are not cut: on a 1170×2532 page where
    // no cover fits, the six covers' cuts took 88 ms (`.scratch/budprof.ts`). Main-thread plan time on the tuning and
    // validation screenshots, mean at 50 / 75 % of full, without and with the floor, two interleaved runs each:
    // 62.4 and 59.3 / 34.2 and 31.5 ms → 36.4 and 53.4 / 31.7 and 33.1 ms (`.scratch/sqtries.ts`). The floor was below
    // the price on all 1065 covers of every screenshot at five halos and three window sizes (`.scratch/floorcheck.ts`).
    if (coverFloor(model, image, maxExec, cut, ink, price) > cap) {
      tried.set(key, null);
      return null;
    }
    const cover = pricedCover(model, image, maxExec, cut, ink, exec);
    const plan = cover && cover.flops < wholeFlops && exec.fits(cover.flops) ? cover : null;
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

/** The default cover of the image squeezed across: that image, the cover's windows, their call, its geometry. */
export type SqueezedCover = { image: RgbaImage; windows: FocusWindow[]; calls: WindowCall[]; geo: FocusGeometry };

/**
 * Where no narrower cover fits the budget: the default cover (page halo, pooling over the page) of the image squeezed
 * across, its full height kept, at the widest width that fits the budget and costs less than the whole image once;
 * where that width is below `o.minSqueeze` of the image's, the same at each of `o.squeezeHalos` in turn (the cover of
 * `ink`, the image's ink grid, priced at that halo first); null where none fits.
 */
export function squeezedCover(
  model: LoadedModel,
  image: RgbaImage,
  maxExec: number,
  o: InkCoverOptions & { minSqueeze: number; squeezeHalos: number[] },
  ink: CellGrid,
  exec: PlanContext["exec"],
  wholeFlops: number,
  coverFlops: number,
): SqueezedCover | null {
  const first = squeezedAt(model, image, maxExec, o, exec, wholeFlops, coverFlops);
  if (first) return first;
  for (const pageHalo of o.squeezeHalos.filter((h) => h < o.pageHalo)) {
    const cut = atHalo(o, pageHalo), cover = pricedCover(model, image, maxExec, cut, ink, exec);
    const plan = cover && squeezedAt(model, image, maxExec, cut, exec, wholeFlops, cover.flops);
    if (plan) return plan;
  }
  return null;
}

/**
 * The cover at options `o` of the image squeezed across to the widest width that fits (see squeezedCover), while that
 * width keeps `o.minSqueeze` of the image's. The cover's price falls about as the width does, so the first width tried
 * is the budget's share of the unsqueezed cover's price (`coverFlops`), then a few narrower ones; the first that fits
 * is then widened once by what the budget leaves (`widerSqueeze`).
 */
function squeezedAt(
  model: LoadedModel,
  image: RgbaImage,
  maxExec: number,
  o: InkCoverOptions & { minSqueeze: number },
  exec: PlanContext["exec"],
  wholeFlops: number,
  coverFlops: number,
): SqueezedCover | null {
  const cap = Math.min(exec.left, wholeFlops - 1);
  const at = (width: number): { plan: SqueezedCover; flops: number } | null => {
    const squeezed = squeezeWidth(image, width, true);
    const { geo, ink, windows } = coverInk(model, squeezed, maxExec, o);
    const levels = inkPooling(model, geo, ink, windows, o);
    if (!levels || !windows.length) return null;
    const calls = focusCalls(model, windows, levels).map((c) => ({ ...c, image: squeezed }));
    return { plan: { image: squeezed, windows, calls, geo }, flops: exec.price(calls).flops };
  };
  const fits = (flops: number) => flops <= cap && exec.fits(flops);
  // The squeezed cover costs a little more than its share of the width (halos keep their px, ink rounds up to whole
  // cells): the first width tried is 0.97 of the cap's share of the unsqueezed cover's price (at 1, the first try
  // missed by 0.2–3.5 % in 27 of the 30 squeezed plans of the tuning and validation pages at 50 and 75 %, each then a
  // second squeeze and cover: 30–40 ms more on a 1170×2532 page); after a miss, `narrowerSqueeze`.
  for (let k = 0, f = Math.min(1, (0.97 * cap) / coverFlops); k < 3 && f >= o.minSqueeze; k++) {
    const width = Math.round(image.width * f);
    if (width >= image.width) {
      f = (image.width - 1) / image.width;
      continue;
    }
    const got = at(width);
    if (!got) return null;
    if (fits(got.flops)) {
      const wider = widerSqueeze(width, image.width, got.flops, cap), more = wider ? at(wider) : null;
      return more && fits(more.flops) ? more.plan : got.plan;
    }
    f = narrowerSqueeze(f, width, image.width, got.flops, cap, o.minSqueeze);
  }
  return null;
}

/**
 * The width (px) a squeezed cover `width` px wide that fits the budget at `flops` of `cap` tries once more: scaled by
 * 0.99 of what the budget leaves, below the image's width (`imageWidth`); null where that is not more than 4 px wider.
 * What the first fitting width leaves unspent buys squeezed pages more of their width: at 50 % of full resolution's
 * price, mean IoU vs full resolution without and with this step (`deno run -A bench/eval/budget_sweep.ts --set
 * tune,val,val2|val3,val4,val5|test --shares 0.5 --plans true`): 0.9388 / 0.9203 / 0.9268 → 0.9398 / 0.9206 / 0.9271;
 * of the 21 pages whose plan changed, 18 read better (up to 0.848 → 0.872) and 3 worse (by 0.006 at most). One more
 * squeeze and cover where it runs.
 *
 * @example
 * ```ts
 * import { widerSqueeze } from "./focus_budget.ts";
 * widerSqueeze(600, 1000, 0.9, 1); // 660: 600 · 0.99 / 0.9
 * widerSqueeze(600, 1000, 0.99, 1); // null: 600 px again
 * ```
 */
export function widerSqueeze(width: number, imageWidth: number, flops: number, cap: number): number | null {
  const wider = Math.min(imageWidth - 1, Math.round((width * 0.99 * cap) / flops));
  return wider > width + 4 ? wider : null;
}

/**
 * The share of the image's width (`imageWidth`) a squeezed cover tries after one at `f` (`width` px) priced `flops`
 * over `cap`: `f` scaled by how far the price missed, by 4 % at least, but not below `least` (the narrowest share
 * allowed, `minSqueeze`) while `width` is wider than that: the last try before a glance is the narrowest squeeze
 * allowed. The price does not always fall with the width (the windows run padded to the model's input multiple, and
 * ink cells and tail regions move): on a 563×398 validation page at half its price, 370 px missed by 2.3 % and 355 px
 * by 5.6 %, the next try (333 px) fell below `minSqueeze` and the plan glanced (IoU 0.749 vs full resolution); 338 px
 * fits (0.863; `deno run -A bench/eval/budget_sweep.ts --set val5 --shares 0.5 --only libxslt1-dev-internals-563x398@1`).
 * Where even that misses, the plan glances after one more squeeze and cover than before (at most three in all, as
 * before: 30–40 ms each on a 1170×2532 page).
 *
 * @example
 * ```ts
 * import { narrowerSqueeze } from "./focus_budget.ts";
 * narrowerSqueeze(0.63, 355, 563, 1.056, 1, 0.6); // 338 / 563: 0.63 · 0.99 / 1.056 ≈ 0.591 is below 0.6
 * ```
 */
export function narrowerSqueeze(
  f: number,
  width: number,
  imageWidth: number,
  flops: number,
  cap: number,
  least: number,
): number {
  const next = f * Math.min(0.96, (0.99 * cap) / flops), narrowest = Math.ceil(imageWidth * least);
  return next < least && width > narrowest ? narrowest / imageWidth : next;
}

/**
 * A squeezed cover's outputs on the image: its text probability map stretched back across to `width` (zero where no
 * tail region wrote), how many pixels of it reach `low` (seen as text or unsure), and its windows' cores on the image
 * with their scale and halo, as a glance's are reported.
 */
export function stretchSqueezed(squeezed: SqueezedCover, outs: WindowOutput[], width: number, low: number) {
  const { image: { width: sw, height }, geo } = squeezed;
  const prob = new Float32Array(sw * height);
  // Each row's span of written pixels: the tail's regions lie near ink, and only what reaches them is stretched.
  const spans = new Int32Array(2 * height);
  for (let y = 0; y < height; y++) spans[2 * y] = sw;
  const written = outputCores(geo, squeezed.windows, squeezed.calls[0].levels);
  outs.forEach(({ window: win, data }, i) => {
    const c = written[i];
    for (let y = c.y; y < c.y + c.h; y++) {
      const at = (y - win.y) * win.w + c.x - win.x;
      prob.set(data.subarray(at, at + c.w), y * sw + c.x);
      spans[2 * y] = Math.min(spans[2 * y], c.x);
      spans[2 * y + 1] = Math.max(spans[2 * y + 1], c.x + c.w);
    }
  });
  const stretched = stretchRows(prob, height, sw, width, spans);
  const probability = stretched.data;
  // Outside the rows' spans every value is 0: seen where 0 reaches `low`.
  let seen = 0;
  for (let y = 0; y < height; y++) {
    const a = stretched.spans[2 * y], b = stretched.spans[2 * y + 1];
    for (let p = y * width + a; p < y * width + b; p++) if (probability[p] >= low) seen++;
    if (low <= 0) seen += width - (b - a);
  }
  const across = (x: number) => Math.min(width, Math.ceil((x * width) / sw));
  const cores = squeezed.windows.map(({ core }) => {
    const x = Math.floor((core.x * width) / sw);
    return { x, y: core.y, w: across(core.x + core.w) - x, h: Math.min(height, core.y + core.h) - core.y };
  });
  const ran = { scale: sw / width, scaleY: 1, cores, halo: Math.round((geo.halo * width) / sw) };
  return { probability, seen, ran };
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
