// `adaptive` for any model without a trained policy (the `text` task, any ONNX model a user adds): glance → focus,
// training-free. Blank cells (no ink: every channel flat) cannot hold text and are never run. The model runs at full
// resolution on few large haloed windows covering the cells that may hold text (recursive XY cuts, lib/plan/cover.ts),
// never dearer than one full-resolution run of the whole image. Under a budget too small for that, the same cover with
// a narrower halo (in smaller windows where that lets a wider halo fit) if one fits; else the same model glances at the
// largest resolution the budget allows, narrower before shorter (lib/plan/glance.ts), at the whole image or at the ink
// cover's windows, whichever gets the larger resolution; the glance's mask is the answer everywhere, and what the
// budget has left buys full resolution where the glance is least sure. The outcome reports which share of the image
// came from full resolution and which share the glance saw as text-or-unsure and nobody resolved.

import { BudgetTooSmallError } from "../errors.ts";
import type { WindowCall, WindowOutput } from "../exec/mod.ts";
import type { LoadedModel } from "../models.ts";
import { MaskCanvas } from "./canvas.ts";
import { wholeImageCall } from "./fixed.ts";
import { type Box, tileGrid } from "./geometry.ts";
import { chooseFocus, focusCalls, glanceCells, narrowerCover, squeezedCover, stretchSqueezed } from "./focus_budget.ts";
import {
  type Glance,
  glanceCall,
  glancePath,
  glanceScale,
  type GlanceTarget,
  largestGlance,
  scaledCall,
} from "./glance.ts";
import {
  coverInk,
  FocusGeometry,
  type FocusWindow,
  type InkCoverOptions,
  inkPooling,
  outputCores,
} from "./ink_cover.ts";
import type { Coverage, PlanContext, PlannedTile, Planner } from "./types.ts";

/** Knobs of glance → focus (the ink cover's own: lib/plan/ink_cover.ts). */
export interface FocusOptions extends InkCoverOptions {
  /** Glance probability from which a pixel counts as unsure (below: confidently background). */
  low: number;
  /** Glance probability from which a pixel counts as confidently text (between low and high: unsure). */
  high: number;
  /** Which plan runs without a budget: the full-resolution cover of the ink ("ink"), or glance first ("glance"). */
  unbudgeted: "ink" | "glance";
  /**
   * Under a budget the complete plan does not fit in, the ink cover pooling over the page with the largest of these
   * halos (px, below `pageHalo`) that fits runs instead of a glance (at 0, its windows still see past the sides where
   * text crosses into another: lib/plan/ink_cover.ts `CROSSED_HALO`). Mean IoU vs full resolution at 75 / 60 / 50 / 40
   * / 25 % of its price, [64, 32, 16] → [64, 32, 16, 0]: tuning pages (`render_pages.ts` set `tune`) 0.946 / 0.897 /
   * 0.897 / 0.866 / 0.797 → 0.955 / 0.902 / 0.904 / 0.873 / 0.797; validation 0.971 / 0.924 / 0.925 / 0.895 / 0.829 →
   * 0.971 / 0.934 / 0.925 / 0.895 / 0.829; least IoU unchanged on both (a scratch script over `focusPlanner(model, {
   * budgetHalos })`). Without the crossed sides' halo, a cover at 0 read 0.651 on a 1708×960 validation page where the
   * glance read 0.846. Earlier, [64, 32, 16] instead of none: validation 0.8937 → 0.9045 at 50 %.
   */
  budgetHalos: number[];
  /**
   * The per-window costs (px, `windowPixels`) a narrower cover under a budget is cut with, largest first at each of
   * `budgetHalos`: smaller windows skip more blank between blocks of text, so a wider halo fits the same budget. Mean
   * IoU vs full resolution at 50 / 75 % of its price, [65536] → [65536, 16384, 4096] (`deno run -A
   * bench/eval/budget_sweep.ts --set tune,val|val2 --budget-window-pixels 65536`, then without the option): tuning +
   * validation pages 0.9143 / 0.9765 → 0.9191 / 0.9785; second validation pages 0.9199 / 0.9779 → 0.9223 / 0.9806;
   * least IoU unchanged on both. Adding 1024 changed nothing on the tuning and validation pages.
   */
  budgetWindowPixels: number[];
  /**
   * Under a budget, the glance keeps full height and shrinks only the width until its horizontal scale reaches this
   * ratio to its vertical one, then shrinks both at that ratio (lib/plan/glance.ts `glancePath`). Chosen on the tuning
   * pages, mean IoU vs full resolution at 25 / 50 / 75 % of its price: 0.6 → 0.797 / 0.880 / 0.926 (`deno task eval
   * --text-only --text-set tune`); 0.5 → 0.809 / 0.856 / 0.926 and 0.72 → 0.781 / 0.883 / 0.921 (the same images and
   * budgets through `focusPlanner(model, { aspect })`, a scratch script). A uniformly shrunk glance of the whole image
   * read 0.632 / 0.764 / 0.888, and the ½ glance plus focus windows 0.464 / 0.757 / 0.866 (the eval command in turn
   * 11: one glance as large as the budget allows sees the whole page; windows see only their own context and pay for
   * their halos).
   */
  aspect: number;
  /**
   * Under a budget no narrower cover fits, the default cover of the image squeezed across (full height) runs instead
   * of a glance while its width keeps at least this share of the image's (lib/plan/focus_budget.ts `squeezedCover`);
   * 1: never. It pools over the page as the default does, where a glance on the ink cover's windows pools over each,
   * and keeps the lines' height, which the text detector's map needs more than the characters' width. Mean IoU vs full
   * resolution at 50 / 75 % of its price (`deno run -A bench/eval/budget_sweep.ts --set tune,val|val2 --min-squeeze
   * 1`, then without the option): tuning + validation pages 0.9191 / 0.9785 → 0.9309 / 0.9829 (least 0.826 / 0.891 →
   * 0.826 / 0.923; 25 % unchanged, 0.8137); second validation pages 0.9223 / 0.9806 → 0.9323 / 0.9844. At 50 %, 0.5
   * read 0.9290 on tuning + validation and 0.9319 on the second validation pages, 0.6 0.9299 and 0.9322 (both before
   * the first width tried became 0.97 of the estimate), 0.7 0.9239 (fixed 4 % width steps then). Tried before the
   * narrower covers where it keeps 75 or 85 % of the width: 0.9218 at 50 % (a temporary patch): a narrower halo at
   * full resolution reads better where it fits.
   */
  minSqueeze: number;
  /**
   * Halos (px, below `pageHalo`, tried in this order) of the squeezed cover where the default's (at the page halo)
   * would be narrower than `minSqueeze`: a narrower halo buys a wider squeeze before the plan falls to a glance (the
   * dense phone pages at half their price). Mean / least IoU vs full resolution at 50 % (`deno run -A
   * bench/eval/budget_sweep.ts --set tune,val|val2 --shares 0.25,0.5,0.75 --squeeze-halos ''`, then without the
   * option): tuning + validation pages 0.9309 / 0.826 → 0.9343 / 0.857; second validation pages 0.9323 / 0.826 →
   * 0.9338 / 0.837 (five pages that glanced gain 0.013–0.031, one loses 0.001). At 25 %: 0.8137 → 0.8292 and 0.8212 →
   * 0.8251; 75 % unchanged. [64, 32, 16, 0] at 50 %: 0.9339 / 0.857 and 0.9338 / 0.837.
   */
  squeezeHalos: number[];
  /**
   * Threshold of a glance that ran vertically shrunk (its map, scaled back, blurs across each text line's height):
   * 0.5 instead of 0.7 read 0.755 / 0.847 at 25 / 50 % on the tuning pages before glances ran on ink windows, 0.6 /
   * 0.8 read 0.790 / 0.880 and 0.799 / 0.876 after (0.7: 0.797 / 0.880; same scratch script as `aspect`).
   */
  shrunkThreshold: number;
  /**
   * Under a budget, on an image whose ink cover saves nothing (a photo: ink everywhere), the ¼ glance first scouts
   * where text is, focus windows run at full resolution on what it marks (most unsure first; `scoutHalos`,
   * `scoutFocusShare`), and what the budget leaves buys the largest glance of the whole image beside them, which
   * replaces the scout's mask; false: one glance as large as the budget allows, then focus windows with what is left.
   * Below, as first built (the larger glance only where the scout is sure of no text, no `scoutHalos`). Mean IoU vs
   * full resolution at 75 / 50 / 25 % of its price on the tuning and validation photos (`deno run -A
   * bench/eval/budget_sweep.ts --kind photo --set tune,val --shares 0.75,0.5,0.25 --scout-halos '' --scout
   * false|true`): false 0.708 / 0.672 / 0.576 at a mean cost of 72.7 / 48.0 / 23.6 % of full; true 0.749 / 0.700 /
   * 0.642 at 45.8 / 31.5 / 19.3 % (scene text 0.78–0.90 → 0.81–0.96 at 50 %; a circuit board's silkscreen 0.011 → 0,
   * found by neither; the two test photos, boards too, 0.084 / 0.113 → 0.051 / 0.059 in docs/EVAL.md). With the
   * larger glance also where the scout is sure of text: 0.753 / 0.693 / 0.644 at 72.8 / 48.2 / 23.5 % (its false
   * text outside the focus windows: a scene 0.930 → 0.820 at 50 %).
   */
  scout: boolean;
  /**
   * Halos (px, widest first) the scout's focus windows (`scout`) take where it is sure of some text: the widest whose
   * windows over every cell it marked fit their share of the budget; none fitting, the model's halo, the most unsure
   * cells first. Scene text is large: a window at the model's 32 px halo sees too little around a sign. Mean IoU vs
   * full resolution at 75 / 50 / 25 % of its price on the tuning and validation photos, the focus windows taking all
   * that is left (`deno run -A bench/eval/budget_sweep.ts --kind photo --set tune,val --shares 0.75,0.5,0.25
   * --scout-focus-share 1 --scout-halos …`): none 0.749 / 0.700 / 0.642 at a mean cost of 45.8 / 31.5 / 19.3 % of
   * full; 128, 96, 64: 0.772 / 0.723 / 0.662 at 53.6 / 38.3 / 21.4 %; from 256: 0.780 / 0.725 / 0.662 at 64.2 / 43.7 /
   * 21.4 % (the five scenes 0.81–0.96 → 0.92–0.98 at 50 %); from 512: 0.782 / 0.725 / 0.662 at 68.9 / 43.7 / 21.4 %.
   */
  scoutHalos: number[];
  /**
   * Share of what the budget leaves after the scout that its focus windows may take where it is sure of some text;
   * the largest glance of the whole image that fits takes the rest (its mask under theirs). The ¼ scout sees a sign
   * but not a page's small text: a screenshot on a textured background (every cell ink, so it takes this path)
   * needs the larger glance. Mean IoU vs full resolution at 75 / 50 / 25 % on the tuning and validation photos
   * (`deno run -A bench/eval/budget_sweep.ts --kind photo --set tune,val --shares 0.75,0.5,0.25 --scout-focus-share
   * S`), and on a tuning screenshot with ±20 of noise on every channel at 50 / 25 % (the same with `--set tune --kind
   * screenshot --only valgrind-quick-start-desktop@1 --noise 20 --shares 0.5,0.25`): 1 (no larger glance) 0.780 /
   * 0.725 / 0.662, screenshot 0.340 / 0.339; 0.5: 0.775 / 0.724 / 0.625, 0.772 / 0.532; 0.3: 0.773 / 0.711 / 0.597,
   * 0.811 / 0.696; without the scout (one glance as large as the budget allows): 0.708 / 0.672 / 0.576, 0.850 / 0.701.
   */
  scoutFocusShare: number;
}

/**
 * Defaults for {@link FocusOptions}, chosen on the tuning images of bench/eval/render_pages.ts (the page halo also on
 * the validation images): a large per-window cost (few, large windows), because a window that pools alone (the
 * budgeted paths) sees only its own image-wide context, so many small windows drift from the whole-image mask.
 */
export const DEFAULT_FOCUS_OPTIONS: FocusOptions = {
  low: 0.05,
  high: 0.7,
  inkRange: 8,
  windowPixels: 256 * 256,
  unbudgeted: "ink",
  budgetHalos: [64, 32, 16, 0],
  budgetWindowPixels: [256 * 256, 128 * 128, 64 * 64],
  pooling: "page",
  pageHalo: 96,
  crossedHalo: 160,
  tailCell: 8,
  tailLineRun: 8,
  aspect: 0.6,
  minSqueeze: 0.6,
  squeezeHalos: [32, 0],
  shrunkThreshold: 0.7,
  scout: true,
  scoutHalos: [256, 192, 128, 96, 64],
  scoutFocusShare: 0.3,
};

/** The two glances a focus plan chooses from (its preferred scale, then ¼, the cheapest plan there is). */
function glanceCalls(
  model: LoadedModel,
  width: number,
  height: number,
  { task, options }: Pick<PlanContext, "task" | "options">,
): WindowCall[] {
  const preferred = glanceScale(width, height, task.reference, options.maxExecPixels);
  return [preferred, 0.25].map((s) => glanceCall(model, width, height, s));
}

/**
 * The planned tiles a response reports: the glance's windows (when it ran), every focus window's core, and what none
 * of them covers, skipped (no ink), as 128 px blocks with model null.
 */
function reportTiles(
  model: LoadedModel,
  width: number,
  height: number,
  glance: Pick<Glance, "scale" | "scaleY" | "cores" | "halo"> | null,
  focus: FocusWindow[],
  halo: number,
): PlannedTile[] {
  const id = model.spec.id;
  const tiles: PlannedTile[] = [];
  if (glance) {
    const { scale, scaleY } = glance;
    for (const c of glance.cores) {
      tiles.push({ ...c, model: id, scale, ...(scaleY !== scale ? { scaleY } : {}), halo: glance.halo });
    }
  }
  for (const f of focus) tiles.push({ ...f.core, model: id, scale: 1, halo });
  const ran = tiles.slice();
  const hit = (b: Box) => ran.some((t) => t.x < b.x + b.w && b.x < t.x + t.w && t.y < b.y + b.h && b.y < t.y + t.h);
  for (const b of tileGrid(width, height, 128)) if (!hit(b)) tiles.push({ ...b, model: null, scale: 1, halo: 0 });
  return tiles;
}

/**
 * The glance → focus planner.
 *
 * @example
 * ```ts ignore
 * const outcome = await focusPlanner(registry.model("text-ppocrv4-det"))(ctx);
 * outcome.coverage; // { full_res_share: 0.41, unresolved_share: 0 }
 * ```
 */
export function focusPlanner(model: LoadedModel, options: Partial<FocusOptions> = {}): Planner {
  const o = { ...DEFAULT_FOCUS_OPTIONS, ...options };
  const plan: Planner = async (ctx: PlanContext) => {
    const { exec, image } = ctx;
    const { width, height } = image;
    const area = width * height;
    const m = model.spec.input.multiple;
    const threshold = model.spec.output.threshold ?? 0.5;
    // The plan without a budget: the ink cover, pooling over the page where it can (with its own halo). What runs
    // under a budget (a glance on the ink cover's windows, focus windows) pools over each window: it uses the cover at
    // the model's halo, made when needed.
    const maxExec = ctx.options.maxExecPixels;
    const paged = coverInk(model, image, maxExec, o);
    const pooling = inkPooling(model, paged.geo, paged.ink, paged.windows, o);
    let aloneCover: typeof paged | undefined;
    const alone = () =>
      aloneCover ??= o.pooling === "page"
        ? coverInk(model, image, maxExec, { ...o, pooling: "window" }, paged.ink)
        : paged;
    const inkPlan = pooling ? paged : alone();

    // Candidates, priced exactly before anything runs.
    let whole: WindowCall | null = null;
    try {
      whole = wholeImageCall(model, width, height, ctx.options.maxExecPixels);
    } catch {
      // Too large for one execution: only windowed plans.
    }
    const wholeFlops = whole ? exec.price([whole]).flops : Infinity;
    const inkCalls = focusCalls(model, inkPlan.windows, pooling);
    const inkFlops = exec.price(inkCalls).flops;
    const wholeBox = { x: 0, y: 0, w: width, h: height };
    const onImage: GlanceTarget = { regions: [wholeBox], cores: [wholeBox], halo: 0 };
    // What a budget chooses from, and the cheapest plan there is (every answer reports its price). The glance: at its
    // preferred scale when the budget allows the complete plan (the glance-first variant). Else as large as the budget
    // allows, on the whole image or on the ink cover's windows, whichever runs at the larger resolution (windows skip
    // blank area, so the same budget buys them more); ¼ is the cheapest plan there is.
    const budgeted = () => {
      const glances = glanceCalls(model, width, height, ctx).map((call): Glance => ({
        ...onImage,
        step: -1,
        scale: call.scale!,
        scaleY: call.scale!,
        call,
        flops: exec.price([call]).flops,
      }));
      const { geo, windows: inkWindows } = alone();
      const coverFlops = pooling ? exec.price(focusCalls(model, inkWindows)).flops : inkFlops;
      const inkCover: GlanceTarget | null = inkWindows.length && coverFlops < wholeFlops
        ? { regions: inkWindows.map((f) => f.window), cores: inkWindows.map((f) => f.core), halo: geo.halo }
        : null;
      const quarterInk = inkCover ? exec.price([scaledCall(model, inkCover.regions, 4 * m, 4 * m)]).flops : Infinity;
      return { glances, inkCover, minFlops: Math.min(glances[1].flops, quarterInk, inkFlops, wholeFlops) };
    };

    const canvas = new MaskCanvas(width, height, threshold);
    const finish = (tiles: PlannedTile[], coverage: Coverage, minFlops: number) => ({
      mode: "adaptive" as const,
      mask: canvas.mask,
      tiles,
      minFlops,
      coverage: { full_res_share: round(coverage.full_res_share), unresolved_share: round(coverage.unresolved_share) },
      stitchMs: canvas.writeMs,
    });
    const fullShare = (windows: FocusWindow[]) => windows.reduce((s, f) => s + f.core.w * f.core.h, 0) / area;
    // The cheapest plan's price is worked out while the model runs: on an image of a new size it prices several
    // shapes never seen (about 1 ms each, lib/onnx/counter.ts), on the request's path before.
    const whilePricing = async (running: Promise<WindowOutput[][]>) => {
      let minFlops: number;
      try {
        minFlops = budgeted().minFlops;
      } catch (err) {
        await running.catch(() => {});
        throw err;
      }
      return { outs: (await running)[0], minFlops };
    };

    // The complete plan (every cell that may hold text at full resolution): the cheaper of the ink cover and the
    // whole image. Without a budget, or with one it fits in, it runs as is (unless the glance-first plan is asked for).
    // Under a smaller budget, the same cover with the largest narrower halo that fits, if any.
    const complete = o.unbudgeted === "ink" && exec.fits(Math.min(inkFlops, wholeFlops));
    const cover = complete
      ? (inkFlops < wholeFlops ? { windows: inkPlan.windows, calls: inkCalls, geo: inkPlan.geo } : null)
      : o.unbudgeted === "ink" && pooling
      ? narrowerCover(model, image, maxExec, o, paged.ink, exec, wholeFlops)
      : null;
    if (complete || cover) {
      const windows = cover?.windows ?? null;
      const { outs, minFlops } = await whilePricing(
        cover ? (cover.windows.length ? exec.run(cover.calls) : Promise.resolve([[]])) : exec.run([whole!]),
      );
      if (windows) {
        const cores = outputCores(cover!.geo, windows, cover!.calls[0]?.levels);
        outs.forEach((out, i) => canvas.write(out, cores[i]));
        return finish(reportTiles(model, width, height, null, windows, cover!.geo.halo), {
          full_res_share: fullShare(windows),
          unresolved_share: 0,
        }, minFlops);
      }
      canvas.write(outs[0], wholeBox);
      return finish([{ ...wholeBox, model: model.spec.id, scale: 1, halo: 0 }], {
        full_res_share: 1,
        unresolved_share: 0,
      }, minFlops);
    }

    const squeezed = o.unbudgeted === "ink" && pooling && inkFlops < wholeFlops
      ? squeezedCover(model, image, maxExec, o, paged.ink, exec, wholeFlops, inkFlops)
      : null;
    if (squeezed) {
      const { outs, minFlops } = await whilePricing(exec.run(squeezed.calls));
      const { probability, seen, ran } = stretchSqueezed(squeezed, outs, width, o.low);
      canvas.write({ window: wholeBox, c: 1, data: probability }, wholeBox);
      // All it saw as text or unsure ran below full resolution: what a glance would report unresolved.
      return finish(
        reportTiles(model, width, height, ran, [], 0),
        { full_res_share: 0, unresolved_share: seen / area },
        minFlops,
      );
    }

    const { glances, inkCover, minFlops } = budgeted();
    const path = glancePath(m, o.aspect);
    let glance = glances.find((g) => exec.fits(g.flops)) ?? glances[1];
    const scouting = o.scout && inkFlops >= wholeFlops && !exec.fits(wholeFlops);
    if (scouting) glance = glances[1];
    else if (!exec.fits(Math.min(inkFlops, wholeFlops))) {
      const onWhole = largestGlance(model, onImage, path, exec, maxExec);
      const onInk = inkCover && largestGlance(model, inkCover, path, exec, maxExec);
      glance = (onInk && (!onWhole || onInk.step < onWhole.step) ? onInk : onWhole) ?? glances[1];
    }
    if (!exec.fits(minFlops)) throw new BudgetTooSmallError(minFlops, exec.budget);
    const { geo, ink } = alone();
    const { cell, halo } = geo;

    // Glance, then focus where it may see text, as far as the budget (and never-dearer) allows.
    const [outs] = await exec.run([glance.call]);
    let cells = glanceCells(outs, glance.cores, width, height, cell, o.low, o.high);
    const wanted = new Uint8Array(cells.marked.length);
    for (let c = 0; c < wanted.length; c++) if (cells.marked[c] && ink.on[c]) wanted[c] = 1;
    // Never dearer than the whole image (the glance already spent), never over the budget.
    const cap = Math.min(exec.left, wholeFlops - glance.flops - 1);
    // Whether the scout is sure of no text (what it marks, it is unsure of): the budget then goes to a larger glance
    // beside the focus windows on what it is unsure of. Where it is sure of some, its focus windows take at most
    // `scoutFocusShare` of what is left (the widest halo that fits, else the most unsure cells at the model's halo),
    // and the larger glance the rest: a ¼ glance misses a page's small text, which the larger glance sees.
    const blind = scouting && !cells.marked.some((n, c) => n > cells.unsure[c]);
    const focusCap = scouting && !blind ? cap * o.scoutFocusShare : cap;
    let focus = chooseFocus(exec, model, geo, { ...ink, on: wanted }, cells.unsure, focusCap), focusHalo = halo;
    if (scouting && !blind && focus.length) {
      // The scout's focus windows over every cell it marked, with the widest halo that fits.
      for (const h of o.scoutHalos) {
        const all = new FocusGeometry(width, height, cell, h, m, maxExec, geo.windowPixels).cover({
          ...ink,
          on: wanted,
        });
        if (exec.price(focusCalls(model, all)).flops <= focusCap) {
          [focus, focusHalo] = [all, h];
          break;
        }
      }
    }
    const focusCall = focusCalls(model, focus);
    // The largest glance of the whole image that fits beside the focus windows (larger than the scout) shows the rest.
    const focusFlops = focus.length ? exec.price(focusCall).flops : 0;
    const view = scouting
      ? largestGlance(
        model,
        onImage,
        path,
        { price: (c) => exec.price(c), fits: (f) => exec.fits(f + focusFlops) },
        maxExec,
      )
      : null;
    const shown = view && view.scale * view.scaleY > glance.scale * glance.scaleY ? view : glance;
    const calls = [...(shown !== glance ? [shown.call] : []), ...focusCall];
    const ran = calls.length ? await exec.run(calls) : [];
    const [shownOuts, focusOuts] = shown !== glance ? ran : [outs, ran[0]];
    shownOuts.forEach((out, i) => canvas.write(out, shown.cores[i], shown.scaleY < 1 ? o.shrunkThreshold : threshold));
    if (shown !== glance) {
      // What either glance saw as text or unsure.
      const seen = glanceCells(shownOuts, shown.cores, width, height, cell, o.low, o.high);
      for (let c = 0; c < seen.marked.length; c++) seen.marked[c] = Math.max(seen.marked[c], cells.marked[c]);
      cells = seen;
    }
    focusOuts?.forEach((out, i) => canvas.write(out, focus[i].core));
    // What a glance saw as text or unsure (in cells with ink) and no focus window resolved.
    const covered = new Uint8Array(wanted.length);
    for (const f of focus) {
      for (let r = f.rect.row; r < f.rect.row + f.rect.rows; r++) {
        covered.fill(1, r * cells.cols + f.rect.col, r * cells.cols + f.rect.col + f.rect.cols);
      }
    }
    let unresolved = 0;
    for (let c = 0; c < wanted.length; c++) if (ink.on[c] && !covered[c]) unresolved += cells.marked[c];
    return finish(reportTiles(model, width, height, shown, focus, focusHalo), {
      full_res_share: fullShare(focus),
      unresolved_share: unresolved / area,
    }, minFlops);
  };
  plan.preflight = ({ width, height, task, options }) => glanceCalls(model, width, height, { task, options });
  return plan;
}

const round = (v: number) => Math.round(v * 1e4) / 1e4;
