// Under a budget no narrower cover fits (lib/plan/focus_budget.ts): the default cover of the image squeezed across, its
// full height kept, and its map stretched back across the image.
//
// What a squeezed page loses is where its thin text kernels sit, not how sure they are: thresholding the stretched map
// at 0.2 / 0.25 / 0.35 / 0.4 instead of the model's 0.3 moved the mean IoU vs full resolution at 50 % by 0.0001 at
// most (tuning + validation 0.9398, test 0.9271; `deno run -A bench/eval/budget_sweep.ts --set tune,val,val2|test
// --shares 0.5` with a scratch patch of focus.ts). The kernels' edges move by a pixel either way along each line, and
// on two of fourteen squeezed phone pages every kernel sits one pixel higher than at full resolution (IoU 0.784 →
// 0.886 and 0.816 → 0.871 with the mask moved down by one): the model run plainly on the squeezed image places them so
// too (`fixed` on it, a scratch script), and the full-resolution kernels' offset from their line's ink varies by page
// (−0.5 to +1 px, median per page), so nothing in the page tells the squeezed run's offset.

import type { WindowCall, WindowOutput } from "../exec/mod.ts";
import { type RgbaImage, squeezeWidth, stretchRows } from "../image/mod.ts";
import { type LoadedModel, PRELOADED_WINDOWS } from "../models.ts";
import type { CellGrid } from "./cover.ts";
import { atHalo, focusCalls, pricedCover } from "./focus_budget.ts";
import {
  coverInk,
  type FocusGeometry,
  type FocusWindow,
  type InkCoverOptions,
  inkPooling,
  outputCores,
  withTailParts,
} from "./ink_cover.ts";
import type { PlanContext } from "./types.ts";

/** The default cover of the image squeezed across: that image, the cover's windows, their call, its geometry. */
export type SqueezedCover = { image: RgbaImage; windows: FocusWindow[]; calls: WindowCall[]; geo: FocusGeometry };

/**
 * Where no narrower cover fits the budget: the default cover (pooling over the page) of the image squeezed across, its
 * full height kept, at the widest width that fits the budget and costs less than the whole image once, while that width
 * keeps `o.minSqueeze` of the image's; null where none fits. The cover is the one at the page halo or at one of
 * `o.squeezeHalos` (the cover of `ink`, the image's ink grid, priced at that halo first): a narrower halo's where its
 * first fitting squeeze is at least `o.squeezeGain` times as wide as the widest before it (the page halo's first, then
 * those halos in turn). Only the cover chosen is then widened by what the budget leaves (`widerSqueeze`).
 */
export function squeezedCover(
  model: LoadedModel,
  image: RgbaImage,
  maxExec: number,
  o: InkCoverOptions & { minSqueeze: number; squeezeHalos: number[]; squeezeGain: number },
  ink: CellGrid,
  exec: PlanContext["exec"],
  wholeFlops: number,
  coverFlops: number,
): SqueezedCover | null {
  let best = squeezedAt(model, image, maxExec, o, exec, wholeFlops, coverFlops);
  for (const pageHalo of o.squeezeHalos.filter((h) => h < o.pageHalo)) {
    // As wide already as a narrower halo's squeeze could usefully be: none is tried (nor priced).
    if (best && best.width * o.squeezeGain >= image.width) break;
    const cut = atHalo(o, pageHalo), cover = pricedCover(model, image, maxExec, cut, ink, exec);
    const fit = cover && squeezedAt(model, image, maxExec, cut, exec, wholeFlops, cover.flops);
    if (fit && (!best || fit.width >= best.width * o.squeezeGain)) best = fit;
  }
  return best?.widen() ?? null;
}

/** The width (px) of a squeezed cover that fits the budget, and that cover widened by what the budget leaves. */
type SqueezeFit = { width: number; widen: () => SqueezedCover };

/**
 * The cover at options `o` of the image squeezed across to the first width that fits (see squeezedCover), while that
 * width keeps `o.minSqueeze` of the image's. The cover's price falls about as the width does, so the first width tried
 * is the budget's share of the unsqueezed cover's price (`coverFlops`), then a few narrower ones; `widen` tries once
 * more, wider by what the budget leaves (`widerSqueeze`).
 */
function squeezedAt(
  model: LoadedModel,
  image: RgbaImage,
  maxExec: number,
  o: InkCoverOptions & { minSqueeze: number },
  exec: PlanContext["exec"],
  wholeFlops: number,
  coverFlops: number,
): SqueezeFit | null {
  const cap = Math.min(exec.left, wholeFlops - 1);
  const at = (width: number): { plan: SqueezedCover; flops: number } | null => {
    const squeezed = squeezeWidth(image, width, true);
    // No more windows than the page graphs a worker keeps ready, as a narrower cover (focus_budget.ts `narrowerCover`):
    // counted before the tail's regions are cut.
    const bare = coverInk(model, squeezed, maxExec, o, undefined, false);
    if (bare.windows.length > PRELOADED_WINDOWS) return null;
    const { geo, ink, windows } = withTailParts(model, squeezed, o, bare);
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
      const widen = () => {
        const wider = widerSqueeze(width, image.width, got.flops, cap), more = wider ? at(wider) : null;
        return more && fits(more.flops) ? more.plan : got.plan;
      };
      return { width, widen };
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
 * import { widerSqueeze } from "./squeeze.ts";
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
 * Where even that misses, the plan glances: at most three squeezes and covers before a glance, four where the last
 * that fits is widened (`widerSqueeze`); 30–40 ms each on a 1170×2532 page.
 *
 * @example
 * ```ts
 * import { narrowerSqueeze } from "./squeeze.ts";
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
