// `adaptive` for any model without a trained policy (the `text` task, any ONNX model a user adds): glance → focus,
// training-free. Blank cells (no ink: every channel flat) cannot hold text and are never run. The model runs at full
// resolution on few large haloed windows covering the cells that may hold text (recursive XY cuts, lib/plan/cover.ts),
// never dearer than one full-resolution run of the whole image. Under a budget too small for that, the same cover with
// a narrower halo (in smaller windows where that lets a wider halo fit) if one fits; else the same model glances at the
// largest resolution the budget allows, narrower before shorter (lib/plan/glance.ts), at the whole image or at the ink
// cover's windows, whichever gets the larger resolution; the glance's mask is the answer everywhere, and what the
// budget has left buys full resolution where the glance is least sure. On a photo (ink in every cell) the ¼ glance
// scouts first, full-resolution windows go where it is sure of text, and the largest glance that fits beside them
// shows the rest (lib/plan/focus_options.ts `scout`). The outcome reports which share of the image
// came from full resolution and which share the glance saw as text-or-unsure and nobody resolved.

import { BudgetTooSmallError } from "../errors.ts";
import type { WindowCall, WindowOutput } from "../exec/mod.ts";
import type { LoadedModel } from "../models.ts";
import { MaskCanvas } from "./canvas.ts";
import { wholeImageCall } from "./fixed.ts";
import { type Box, tileGrid } from "./geometry.ts";
import { chooseFocus, focusCalls, glanceCells, narrowerCover } from "./focus_budget.ts";
import { squeezedCover, stretchSqueezed } from "./squeeze.ts";
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
  coversPage,
  FocusGeometry,
  type FocusWindow,
  inkPooling,
  outputCores,
  withTailParts,
} from "./ink_cover.ts";
import { DEFAULT_FOCUS_OPTIONS, type FocusOptions } from "./focus_options.ts";
import type { Coverage, PlanContext, PlannedTile, Planner } from "./types.ts";

export { DEFAULT_FOCUS_OPTIONS, type FocusOptions } from "./focus_options.ts";

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
    let whole: WindowCall | null = null;
    try {
      whole = wholeImageCall(model, width, height, ctx.options.maxExecPixels);
    } catch {
      // Too large for one execution: only windowed plans.
    }
    const wholeFlops = whole ? exec.price([whole]).flops : Infinity;
    // The cover's windows first: where the plan without a budget may run them (the whole image fits what is left, and
    // they cover less of the page, or are one window over the whole page, the whole image's own input), a free worker
    // builds their model input while their tail regions are cut here (Executor.prepare; its job finds it ready, and so
    // does the whole image's where that runs instead). One window over the whole page is a dense page's cover: 7 of
    // the 20 test screenshots' default jobs, which built their input after the plan before (native, 2.9–13.5 ms each,
    // timed in the worker by a scratch patch).
    const bare = coverInk(model, image, maxExec, o, undefined, false);
    const bareArea = bare.windows.reduce((s, f) => s + f.window.w * f.window.h, 0);
    const runsCover = bareArea < area || coversPage(bare.geo, bare.windows);
    if (o.unbudgeted === "ink" && exec.flops + wholeFlops <= exec.budget && runsCover) {
      exec.prepare(model, bare.windows.map((f) => f.window), wholeFlops);
    }
    const paged = withTailParts(model, image, o, bare);
    const pooling = inkPooling(model, paged.geo, paged.ink, paged.windows, o);
    let aloneCover: typeof paged | undefined;
    const alone = () =>
      aloneCover ??= o.pooling === "page"
        ? coverInk(model, image, maxExec, { ...o, pooling: "window" }, paged.ink)
        : paged;
    const inkPlan = pooling ? paged : alone();

    // Candidates, priced exactly before anything runs.
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

    // The mask's memory is taken once the model runs (`whilePricing`), not before it starts: a new array of the
    // image's size is paid in page faults on the main thread (WASM server, the test screenshots: 1.7 ms per request,
    // timed by a scratch patch).
    let canvasMemo: MaskCanvas | undefined;
    const canvas = () => canvasMemo ??= new MaskCanvas(width, height, threshold);
    const finish = (tiles: PlannedTile[], coverage: Coverage, minFlops: number) => ({
      mode: "adaptive" as const,
      mask: canvas().mask,
      tiles,
      minFlops,
      coverage: { full_res_share: round(coverage.full_res_share), unresolved_share: round(coverage.unresolved_share) },
      stitchMs: canvas().writeMs,
    });
    const fullShare = (windows: FocusWindow[]) => windows.reduce((s, f) => s + f.core.w * f.core.h, 0) / area;
    // The cheapest plan's price is worked out while the model runs: on an image of a new size it prices several
    // shapes never seen (about 1 ms each, lib/onnx/counter.ts), on the request's path before. The pool sends a
    // request's jobs once the code that queued them is done (lib/exec/pool.ts `run`): this waits for that first, or the
    // pricing and the mask's memory would run before the job starts instead of beside it.
    const whilePricing = async (running: Promise<WindowOutput[][]>) => {
      await null;
      let minFlops: number;
      try {
        minFlops = budgeted().minFlops;
        canvas();
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
        outs.forEach((out, i) => canvas().write(out, cores[i]));
        return finish(reportTiles(model, width, height, null, windows, cover!.geo.halo), {
          full_res_share: fullShare(windows),
          unresolved_share: 0,
        }, minFlops);
      }
      canvas().write(outs[0], wholeBox);
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
      canvas().write({ window: wholeBox, c: 1, data: probability }, wholeBox);
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
    // `scoutFocusShare` of what is left (the widest halo that fits; else the widest, the model's halo too, whose windows
    // over every cell it marked fit `scoutCompleteShare`; else the most unsure cells at the model's halo), and the
    // larger glance the rest: a ¼ glance misses a page's small text, which the larger glance sees.
    const blind = scouting && !cells.marked.some((n, c) => n > cells.unsure[c]), sure = scouting && !blind;
    const focusCap = sure ? cap * o.scoutFocusShare : cap, wantedGrid = { ...ink, on: wanted };
    let focus: FocusWindow[] = [], focusHalo = halo;
    // Windows over every cell it marked at halo h, and their price, each cut once.
    const covers = new Map<number, { windows: FocusWindow[]; flops: number }>();
    const coverAt = (h: number) => {
      let c = covers.get(h);
      if (!c) {
        const at = h === halo ? geo : new FocusGeometry(width, height, cell, h, m, maxExec, geo.windowPixels);
        const windows = at.cover(wantedGrid);
        c = { windows, flops: windows.length ? exec.price(focusCalls(model, windows)).flops : 0 };
        covers.set(h, c);
      }
      return c;
    };
    // A sure scout's covers, the widest halo first, at each share in turn (before `chooseFocus`: the cut of the most
    // unsure cells is the dearer search, and a cover that fits makes it moot).
    const tries: [number[], number][] = sure
      ? [[o.scoutHalos, focusCap], [[...new Set([...o.scoutHalos, halo])], cap * o.scoutCompleteShare]]
      : [];
    search: for (const [halos, limit] of tries) {
      for (const h of halos) {
        const { windows, flops } = coverAt(h);
        if (windows.length && flops <= limit) {
          [focus, focusHalo] = [windows, h];
          break search;
        }
      }
    }
    if (!focus.length) focus = chooseFocus(exec, model, geo, wantedGrid, cells.unsure, focusCap, coverAt(halo).windows);
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
    shownOuts.forEach((out, i) =>
      canvas().write(out, shown.cores[i], shown.scaleY < 1 ? o.shrunkThreshold : threshold)
    );
    if (shown !== glance) {
      // What either glance saw as text or unsure.
      const seen = glanceCells(shownOuts, shown.cores, width, height, cell, o.low, o.high);
      for (let c = 0; c < seen.marked.length; c++) seen.marked[c] = Math.max(seen.marked[c], cells.marked[c]);
      cells = seen;
    }
    focusOuts?.forEach((out, i) => canvas().write(out, focus[i].core));
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
