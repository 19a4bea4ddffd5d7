// The evaluation of the `text` task: the default adaptive plan (glance → focus, lib/plan/focus.ts) of the pretrained
// detector against its own full-resolution mask, on screenshots of real documentation rendered by Chromium and on
// photos (bench/eval/render_pages.ts), per image: no budget, budgets of 25/50/75% of full resolution, the glance-first
// plan without a budget, and the old edge-energy scale selector. The test set only; `--text-set tune` shows the
// images the planner's constants were chosen on.

import { Image } from "imagescript";
import { DEFAULT_FOCUS_OPTIONS, focusPlanner, type Planner, scalePlanner } from "../../lib/plan/mod.ts";
import type { Segmenter, SegmentResult } from "../../lib/segment.ts";
import { toGflops } from "../../lib/units.ts";
import { CLOCK_NAMES, type ClockBackend, limits, registry, segmenter, serverSegmenter } from "./_common.ts";
import type { TextClock } from "./clock.ts";
import { decodeImage, type RgbaImage } from "../../lib/image/mod.ts";
import type { LoadedModel } from "../../lib/models.ts";
import { coverInk, coverShare, CROSSED_HALO, inkPooling } from "../../lib/plan/ink_cover.ts";
import { TAIL_HALO, TAIL_SLOTS } from "../../lib/onnx/levels.ts";
import { POOL_EDGE, STRIP, TAIL_DUMMY } from "../../lib/onnx/page.ts";
import { type EvalImage, renderMissing, type TextSet } from "./render_pages.ts";
import { boundSentence, type LayerTime, pct, type SavableShares } from "./bound.ts";
import { iou, median, medianPhases } from "../_bench.ts";

const MODEL = "text-ppocrv4-det";
const BUDGETS = [0.75, 0.5, 0.25];
/** Timed runs of full resolution and of the default per image, interleaved, for the wall-clock line (medians). */
const TIMING_ROUNDS = 3;

/** One plan on one image, against the full-resolution mask. */
export interface TextRun {
  /** IoU of the text class vs full resolution, or null when the request was refused (422). */
  iou: number | null;
  /** Share of the full-resolution cost. */
  cost: number;
  ms: number;
  coverage?: { full_res_share: number; unresolved_share: number };
  /** Full resolution finds text, and this mask has none. */
  emptyWhereText: boolean;
  refused?: string;
}

/** One evaluation image's results. */
export interface TextImageResult {
  image: EvalImage;
  width: number;
  height: number;
  fullGflops: number;
  /**
   * What sets the default's price: shares of the padded page in cells with ink, and in the ink cover's windows with
   * no halo, a 32 px halo and the served page halo (lib/plan/ink_cover.ts `coverInk`), and in the served windows'
   * tail regions (their parts grown by `tailGrow`, inside the window).
   */
  floor: { ink: number; halo0: number; halo32: number; served: number; tail: number };
  /**
   * Wall-clock ms of full resolution and of the default per backend, in the server's default layout there (native:
   * where it loads); measured in processes of their own once every image is done (bench/eval.ts).
   */
  clocks: Partial<Record<ClockBackend, TextClock>>;
  /** IoU of the full-resolution mask of the image with a 64 px white margin vs without (the model's own drift). */
  marginIoU: number;
  runs: Record<string, TextRun>;
}

/** The image with `margin` px of white added right and below, as PNG bytes. */
async function withMargin(bytes: Uint8Array, margin: number): Promise<Uint8Array> {
  const img = await Image.decode(bytes);
  const out = new Image(img.width + margin, img.height + margin).fill(0xffffffff);
  out.composite(img, 0, 0);
  return new Uint8Array(await out.encode());
}

async function timed(bytes: Uint8Array, budgetFlops?: number, planner?: Planner) {
  const t0 = performance.now();
  const r: SegmentResult = await segmenter.segment({ task: "text", mode: "adaptive", bytes, budgetFlops }, planner);
  return { r, ms: performance.now() - t0 };
}

export async function evalText(set: TextSet = "test"): Promise<TextImageResult[]> {
  const model = registry.model(MODEL);
  const images = (await renderMissing()).filter((i) => i.set === set);
  const out: TextImageResult[] = [];
  for (const image of images) {
    const bytes = await Deno.readFile(image.path);
    const ref = await segmenter.segment({ task: "text", mode: "fixed", bytes });
    const full = ref.cost.flops;
    const textAt = ref.mask.includes(1);
    const margined = await segmenter.segment({ task: "text", mode: "fixed", bytes: await withMargin(bytes, 64) });
    const cropped = new Uint8Array(ref.width * ref.height);
    for (let y = 0; y < ref.height; y++) {
      cropped.set(margined.mask.subarray(y * margined.width, y * margined.width + ref.width), y * ref.width);
    }
    const runs: Record<string, TextRun> = {};
    const plans: [string, number | undefined, Planner | undefined][] = [
      ["default", undefined, undefined],
      ...BUDGETS.map((b): [string, number, undefined] => [`budget ${100 * b}%`, Math.floor(full * b), undefined]),
      ["glance-first", undefined, focusPlanner(model, { ...DEFAULT_FOCUS_OPTIONS, unbudgeted: "glance" })],
      ["scale selector", undefined, scalePlanner(model)],
    ];
    for (const [name, budget, planner] of plans) {
      try {
        const { r, ms } = await timed(bytes, budget, planner);
        runs[name] = {
          iou: iou(ref.mask, r.mask),
          cost: r.cost.flops / full,
          ms,
          coverage: r.plan.coverage,
          emptyWhereText: textAt && !r.mask.includes(1),
        };
      } catch (e) {
        runs[name] = { iou: null, cost: 0, ms: 0, emptyWhereText: false, refused: (e as Error).message };
      }
    }
    const res: TextImageResult = {
      floor: priceFloor(model, await decodeImage(bytes)),
      image,
      width: ref.width,
      height: ref.height,
      fullGflops: toGflops(full),
      clocks: {},
      marginIoU: iou(ref.mask, cropped),
      runs,
    };
    out.push(res);
    const d = runs.default;
    console.log(
      `[text] ${image.name}: default IoU ${d.iou?.toFixed(4)} at ${(100 * d.cost).toFixed(1)}% of ` +
        `${res.fullGflops.toFixed(2)} GFLOPs; budget 50% IoU ${runs["budget 50%"].iou?.toFixed(4)}`,
    );
  }
  return out;
}

/**
 * The wall-clock lines of {@link evalText}, per image path, a warm-up run of each first, on `backend` in the server's
 * default layout there (undefined where onnxruntime-node does not load). Run in a process of its own (./clock.ts).
 */
export async function textClock(
  paths: string[],
  backend: ClockBackend,
): Promise<TextClock[] | undefined> {
  const served = await serverSegmenter(backend);
  if (!served) return undefined;
  const out: TextClock[] = [];
  for (const path of paths) {
    out.push({ ...await clock(served.segmenter, await Deno.readFile(path), 1), layout: served.label });
  }
  await served.close();
  return out;
}

/**
 * On a 640² window of the text detector, as shares of the model's own FLOPs: what its tail takes (lib/onnx/tail.ts),
 * and what a window of a page graph adds (the pools' sums).
 */
function windowShares(): { tail: number; sums: number } {
  const m = registry.model("text-ppocrv4-det"), dims = [1, m.spec.input.channels, 640, 640];
  const { cost } = m.levels!, whole = m.counter.count(dims).flops, window = cost.window(dims).flops;
  return { tail: (window - cost.window(dims, [[TAIL_DUMMY, TAIL_DUMMY]]).flops) / whole, sums: window / whole - 1 };
}

/** The shares of {@link TextImageResult.floor} on one image. */
function priceFloor(model: LoadedModel, image: RgbaImage): TextImageResult["floor"] {
  // The served cover first; the others reuse its ink grid and page (the image padded to the model's multiple).
  const served = coverInk(model, image, limits.planner.maxExecPixels, DEFAULT_FOCUS_OPTIONS);
  const { ink, geo } = served;
  const pooling = inkPooling(model, geo, ink, served.windows, DEFAULT_FOCUS_OPTIONS);
  const at = (halo: number) =>
    coverShare(
      geo,
      coverInk(model, image, limits.planner.maxExecPixels, {
        ...DEFAULT_FOCUS_OPTIONS,
        pageHalo: halo,
        crossedHalo: undefined,
      }, ink)
        .windows,
    );
  return {
    ink: (ink.on.reduce((s, v) => s + v, 0) * ink.cell * ink.cell) / (geo.padW * geo.padH),
    halo0: at(0),
    halo32: at(32),
    served: coverShare(geo, served.windows),
    tail: pooling ? pooling.tails.flat().reduce((s, t) => s + t.w * t.h, 0) / (geo.padW * geo.padH) : 0,
  };
}

/**
 * Wall-clock ms of full resolution and of the default on one image: the median of TIMING_ROUNDS runs of each,
 * interleaved, after `warmup` runs of each (one run each read ±5 % apart on this machine, and the default saves ~10 %
 * of the FLOPs).
 */
async function clock(seg: Segmenter, bytes: Uint8Array, warmup = 0): Promise<Omit<TextClock, "layout">> {
  const times = { fixed: [] as number[], adaptive: [] as number[] };
  const timings = { fixed: [] as SegmentResult["timings"][], adaptive: [] as SegmentResult["timings"][] };
  for (let r = 0; r < warmup + TIMING_ROUNDS; r++) {
    for (const mode of ["fixed", "adaptive"] as const) {
      const t = performance.now();
      const res = await seg.segment({ task: "text", mode, bytes });
      if (r < warmup) continue;
      times[mode].push(performance.now() - t);
      timings[mode].push(res.timings);
    }
  }
  return {
    fullMs: median(times.fixed),
    defaultMs: median(times.adaptive),
    phases: { full: medianPhases(timings.fixed), default: medianPhases(timings.adaptive) },
  };
}

const f = (v: number | null | undefined, d = 3) => (v == null ? "—" : v.toFixed(d));
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

/** The report's `text` section. */
export function textSection(results: TextImageResult[], layers: LayerTime[] = []): string[] {
  if (!results.length) return [];
  const names = Object.keys(results[0].runs);
  const shots = results.filter((r) => r.image.kind === "screenshot");
  const cell = (r: TextRun | undefined) =>
    !r ? "—" : r.iou === null ? "422" : `${f(r.iou)} @ ${pct(r.cost)}` +
      (r.coverage?.unresolved_share ? ` (${pct(r.coverage.unresolved_share)} unres.)` : "") +
      (r.emptyWhereText ? " **empty**" : "");
  const summary = (name: string, rows: TextImageResult[]) => {
    const ok = rows.map((r) => r.runs[name]).filter((r) => r.iou !== null);
    const ious = ok.map((r) => r.iou!);
    return {
      meanIoU: mean(ious),
      minIoU: ious.length ? Math.min(...ious) : NaN,
      meanCost: mean(ok.map((r) => r.cost)),
      maxCost: ok.length ? Math.max(...ok.map((r) => r.cost)) : NaN,
      refused: rows.length - ok.length,
      empty: ok.filter((r) => r.emptyWhereText).length,
    };
  };
  const def = summary("default", results), defShots = summary("default", shots);
  const b50 = summary("budget 50%", results), b25 = summary("budget 25%", results);
  const b50Shots = summary("budget 50%", shots);
  const flopSaving = mean(results.map((r) => 1 - r.runs.default.cost));
  const clockLine = (what: string, times: { fullMs: number; defaultMs: number }[]) => {
    const time = mean(times.map((t) => 1 - t.defaultMs / t.fullMs));
    const change = (v: number) => `${v >= 0 ? "−" : "+"}${pct(Math.abs(v))}`;
    return `| ${what} | FLOPs ${change(flopSaving)}, time ${change(time)} (${
      flopSaving > 0 ? pct(time / flopSaving) : "—"
    }) | ${yes(flopSaving > 0 && time >= 0.9 * flopSaving)} |`;
  };
  // Per FLOP, the default's time against full resolution's, on the images where it ran windows.
  const windowed = results.filter((r) => r.runs.default.cost < 0.999);
  const rates = (["wasm", "native"] as const).flatMap((backend) =>
    windowed.length && windowed.every((r) => r.clocks[backend])
      ? [
        `${
          mean(windowed.map((r) => r.clocks[backend]!.defaultMs / r.clocks[backend]!.fullMs / r.runs.default.cost))
            .toFixed(2)
        }× (${CLOCK_NAMES[backend].short})`,
      ]
      : []
  );
  // Where that time goes: the model's own time per FLOP, and the planner's time on the main thread before it runs.
  const phaseRates = (["wasm", "native"] as const).flatMap((backend) => {
    if (!windowed.length || !windowed.every((r) => r.clocks[backend]?.phases)) return [];
    const c = (r: TextImageResult) => r.clocks[backend]!;
    const model = mean(windowed.map((r) => c(r).phases.default.model / c(r).phases.full.model / r.runs.default.cost));
    const plan = mean(windowed.map((r) => c(r).phases.default.plan));
    const share = mean(windowed.map((r) => c(r).phases.default.plan / c(r).fullMs));
    return [
      `on ${CLOCK_NAMES[backend].on}, the model's own time per FLOP ${model.toFixed(2)}× full resolution's, and ` +
      `the planner ${plan.toFixed(1)} ms per image before the model runs (${pct(share)} of full resolution's time)`,
    ];
  });
  // Per backend, where every image's clock ran, the share of full resolution's time a plan could save at all: all of
  // it but decoding the image.
  const savable: SavableShares = Object.fromEntries(
    (["wasm", "native"] as const).flatMap((backend) =>
      results.length && results.every((r) => r.clocks[backend]?.phases)
        ? [[
          backend === "wasm" ? "web" : "node",
          mean(results.map((r) => 1 - r.clocks[backend]!.phases.full.decode / r.clocks[backend]!.fullMs)),
        ]]
        : []
    ),
  );
  const perFlop = rates.length
    ? ` Where the default ran windows (${windowed.length} images), its time per FLOP is, on the mean, ` +
      `${rates.join(" and ")} full resolution's` +
      (phaseRates.length ? `; of that, ${phaseRates.join("; ")}.` : ".")
    : "";
  // Responses a client can get: the default and budgets (the scale selector is an eval-only baseline, never served).
  const served = names.filter((n) => n === "default" || n.startsWith("budget"));
  const coverageAll = results.every((r) => served.every((n) => r.runs[n].iou === null || r.runs[n].coverage));
  const yes = (b: boolean) => (b ? "yes" : "**no**");
  return [
    "## `text`",
    "",
    `The default \`adaptive\` plan of \`${MODEL}\` (glance → focus, \`lib/plan/focus.ts\`) against the ` +
    "full-resolution mask of the same image (`fixed`), on the test images of `bench/eval/render_pages.ts`: " +
    "screenshots of documentation pages Debian ships under /usr/share/doc, taken with Debian's headless Chromium at " +
    "phone (390×844 at 2× and 3×), laptop (1366×768 at 1× and 1.25×) and desktop (1920×1080 at 1× and 1.25×) sizes, " +
    "and two photos. The planner's constants were chosen on other pages (`--text-set tune`). Each cell: IoU of the " +
    "text class vs full resolution @ cost as a share of full resolution; (unres.) the `plan.coverage." +
    "unresolved_share` the response reported; 422 a refused budget. Budgets are `X-Budget-GFLOPs` at that share of " +
    'full resolution. "glance-first" is the glance → focus plan without the ink shortcut; "scale selector" the ' +
    "previous default (edge energy per tile, half resolution for low detail). The last column is the model's own " +
    "drift: its full-resolution mask of the same image with a 64 px white margin added, vs without.",
    "",
    `| image | size | full GFLOPs | ${names.join(" | ")} | full res. + margin |`,
    `|---|---|---:|${names.map(() => "---|").join("")}---:|`,
    ...results.map((r) =>
      `| ${r.image.name} | ${r.width}×${r.height} | ${f(r.fullGflops, 2)} | ${
        names.map((n) => cell(r.runs[n])).join(" | ")
      } | ${f(r.marginIoU)} |`
    ),
    "",
    "| plan | mean IoU | min IoU | mean cost | max cost | refused | empty where full res. finds text |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...names.map((n) => {
      const s = summary(n, results);
      return `| ${n} | ${f(s.meanIoU)} | ${f(s.minIoU)} | ${pct(s.meanCost)} | ${pct(s.maxCost)} | ${s.refused} | ` +
        `${s.empty} |`;
    }),
    ...([["default", defShots], ["budget 50%", b50Shots]] as const).map(([n, s]) =>
      `| ${n}, screenshots only | ${f(s.meanIoU)} | ${f(s.minIoU)} | ${pct(s.meanCost)} | ${pct(s.maxCost)} | ` +
      `${s.refused} | ${s.empty} |`
    ),
    `| full res. + 64 px margin (model drift) | ${f(mean(results.map((r) => r.marginIoU)))} | ` +
    `${f(Math.min(...results.map((r) => r.marginIoU)))} | | | | |`,
    "",
    "How the default stays close to the whole image's mask while it runs windows: the detector's squeeze-excitation " +
    "blocks pool every feature map over the whole input, and a window run alone pools over itself, text without the " +
    "page's blank ([docs/TEXT_DRIFT.md](TEXT_DRIFT.md), `bench/eval/squeeze.ts`: the default's windows pooling alone " +
    "vs fed the whole image's pooled vectors). So the default runs its windows in step, one squeeze-excitation level " +
    "at a time: `lib/onnx/levels.ts` cuts the model in levels, and one run of its page graph (`lib/onnx/page.ts`: " +
    "every window in one ONNX graph) averages each level's maps over the page before the next level runs, the area no " +
    "window covers counted at the value the maps take far inside blank page of its colour (exact, from a 1×1 input " +
    `through the graph with every kernel summed over space), or within ${STRIP / 2} px of the page's border, ` +
    `where the whole image's convolutions pad with zeros, at the maps of a ${STRIP} px strip of that colour ` +
    "at the same distance from its end (a 1-row and a 1-column strip through the graph with kernels summed one way: " +
    "`STRIP`). A window's convolutions pad all its sides with zeros, so its maps read like a frame near its sides " +
    `inside the page: the outer ${POOL_EDGE} px of those count at the far-from-text value too (\`POOL_EDGE\`; ` +
    "without the strips, at 32 px and with windows a third the per-window cost, the least IoU of the third " +
    "validation set's pages read 0.956). Its windows carry a " +
    `${DEFAULT_FOCUS_OPTIONS.pageHalo} px halo (\`pageHalo\`, chosen on the tuning and validation pages; ` +
    `${DEFAULT_FOCUS_OPTIONS.crossedHalo} px on a side where the cover's cut runs through text, \`crossedHalo\`, ` +
    "chosen on the second validation pages), but only " +
    "the model's front runs on all of a window: its tail (`lib/onnx/tail.ts`: the last stride-4 convolutions and the " +
    `head, the nodes whose outputs on a window's core need at most ${TAIL_HALO} px of image around it, ` +
    pct(windowShares().tail) + ` of the detector's FLOPs at 640²) runs near the window's ink only: on up to ` +
    `${TAIL_SLOTS} rectangles of its ${DEFAULT_FOCUS_OPTIONS.tailCell} px cells with ink (finer than the windows' ` +
    "cells, so that a thin line of text is not a whole cell tall; a straight line of ink " +
    `${DEFAULT_FOCUS_OPTIONS.tailLineRun * DEFAULT_FOCUS_OPTIONS.tailCell} px long or longer, a rule, a frame or ` +
    "the edge of a box, counts as none: `tailLineRun`; a gap of up to " +
    `${DEFAULT_FOCUS_OPTIONS.tailGap} px between ink in a row counts as ink, as the map runs on across it: ` +
    `\`tailGap\`), each grown by ${DEFAULT_FOCUS_OPTIONS.tailGrow} px (\`tailGrow\`), on maps the graph crops: ` +
    `there it gives what it gives on the whole window, but for the cells within ${
      TAIL_HALO - DEFAULT_FOCUS_OPTIONS.tailGrow
    } px of a region's edge, which read zeros past it (bitwise at a growth of ${TAIL_HALO} px, for ` +
    "1.7 points more of full resolution's price on the test screenshots; the mask is written there only: a cell " +
    "without ink holds no text); the pool of a map a tail convolution makes is summed from " +
    "the convolution's input (the pools' sums of a 640² window: " + pct(windowShares().sums) + " of the model's " +
    "FLOPs there). The price is what runs: the front on the windows, the " +
    "tail on those regions, the pools' sums, the blank runs (a pixel and two strips per blank colour). What is " +
    "left is the page area near text that no window covers (or its windows' outer edge), counted at the " +
    "far-from-text value.",
    "",
    "What sets the default's price on the screenshots (mean share of the page, `coverInk` in " +
    "`lib/plan/ink_cover.ts`): its " + registry.model(MODEL).spec.input.multiple + " px cells with ink " +
    pct(mean(shots.map((r) => r.floor.ink))) + "; the ink cover's " +
    "windows with no halo " + pct(mean(shots.map((r) => r.floor.halo0))) + ", with a 32 px halo " +
    pct(mean(shots.map((r) => r.floor.halo32))) + ", with the served " + DEFAULT_FOCUS_OPTIONS.pageHalo + " px halo " +
    `(${DEFAULT_FOCUS_OPTIONS.crossedHalo} px where the cut runs through text) ` +
    pct(mean(shots.map((r) => r.floor.served))) + " (where the front runs); the tail's regions " +
    pct(mean(shots.map((r) => r.floor.tail))) + " (where the tail runs): together the default's " +
    pct(mean(shots.map((r) => r.runs.default.cost))) + " (above), the front's share of the FLOPs times the first " +
    "plus the tail's times the second, and the pools' sums. A smaller halo loses the ≥ 0.97 line (`pageHalo` " +
    "above). Exact pooling would not rescue such a halo, nor would padding a window's edges with blank page " +
    "instead of zeros: [docs/TEXT_DRIFT.md](TEXT_DRIFT.md)'s second table feeds the cover's windows the whole image's " +
    "pooled vectors at each halo, their edges padded either way. The windows need the page around them for the " +
    "model's receptive field, not for its padding.",
    "",
    "Under a budget below the default plan's price the answer is the same ink cover with the largest narrower halo " +
    "that fits (of " + DEFAULT_FOCUS_OPTIONS.budgetHalos.join(", ") + " px; at 0 px a window still sees " +
    `${CROSSED_HALO} px past each side where the cover's cut runs through text), cut with the largest per-window ` +
    "cost that fits there (of " + DEFAULT_FOCUS_OPTIONS.budgetWindowPixels.join(", ") + " px: smaller windows skip " +
    "the blank between blocks of text, `budgetWindowPixels`), where one does; else the default cover of the " +
    "image squeezed across, its full height kept, at the widest width that fits, while that width is at least " +
    `${DEFAULT_FOCUS_OPTIONS.minSqueeze} of the image's (\`squeezedCover\` in \`lib/plan/squeeze.ts\`: the ` +
    "model's map stretched back across), at a narrower halo (of " +
    DEFAULT_FOCUS_OPTIONS.squeezeHalos.join(", ") + " px, `squeezeHalos`) where its first squeeze that fits is at " +
    `least ${DEFAULT_FOCUS_OPTIONS.squeezeGain} times as wide as the wider halo's (a squeezed page loses more to ` +
    "its width than to its halo, `squeezeGain`) or where the wider one fits none; else one glance at the " +
    "largest resolution the budget allows, narrower before shorter (`glancePath` in `lib/plan/glance.ts`: full " +
    "height while the width shrinks to " +
    `${DEFAULT_FOCUS_OPTIONS.aspect} of it, then both). On a photo (ink everywhere: the ink cover saves nothing) the ` +
    "¼ glance scouts first, focus windows run at full resolution where it marks text (with as wide a halo as fits, " +
    "of " + DEFAULT_FOCUS_OPTIONS.scoutHalos.join(", ") + " px; where it is sure of some text, on at most " +
    `${DEFAULT_FOCUS_OPTIONS.scoutFocusShare} of what the budget leaves, or up to ` +
    `${DEFAULT_FOCUS_OPTIONS.scoutCompleteShare} where no halo fits that but one, the model's too, covers all it ` +
    "marks within this), and the " +
    "largest glance that fits " +
    "beside them shows the rest (`scout`). Where the model's full-resolution mask rests on text only a few pixels " +
    "tall (the photos' silkscreen), no glance reproduces it.",
    "",
    "The wall-clock lines compare, per image, the median of " + TIMING_ROUNDS + " runs of the default and of full " +
    "resolution (`segment()`: decode, plan, inference, stitch), interleaved, after a warm-up run of each, in three " +
    "processes of their own (as a server runs), the two backends' in turn so that each line's spread over several " +
    "minutes (two-thread native speed comes in phases on this machine: `bench/eval/clock.ts`), per image the " +
    "median of the three; saving = mean over images of 1 − default ÷ full. Each backend runs in the server's " +
    "default layout there: the first line on WASM-SIMD, the last on onnxruntime-node." + perFlop +
    boundSentence(layers, mean(shots.map((r) => r.floor.served)), mean(shots.map((r) => r.floor.tail)), savable),
    "",
    "Targets:",
    "",
    "| target | measured | met |",
    "|---|---|---|",
    `| default: IoU vs full resolution ≥ 0.97 on every image | min ${f(def.minIoU)} | ${yes(def.minIoU >= 0.97)} |`,
    `| default: mean cost ≤ 70% of full on screenshots | ${pct(defShots.meanCost)} | ${
      yes(defShots.meanCost <= 0.7)
    } |`,
    `| default: never > 100% of full | max ${pct(def.maxCost)} | ${yes(def.maxCost <= 1)} |`,
    `| budget 50%: mean IoU ≥ 0.85 | ${f(b50.meanIoU)} | ${yes(b50.meanIoU >= 0.85)} |`,
    `| budget 50%: no empty mask where full resolution finds text | ${b50.empty} empty | ${yes(b50.empty === 0)} |`,
    `| budget 25%: a mask, no 422 | ${b25.refused} refused | ${yes(b25.refused === 0)} |`,
    `| \`plan.coverage\` on every adaptive response (default, budgets) | ${coverageAll ? "all" : "missing on some"} | ${
      yes(coverageAll)
    } |`,
    ...(["wasm", "native"] as const).flatMap((backend) => {
      const times = results.map((r) => r.clocks[backend]!);
      if (!results.length || times.some((t) => !t)) return [];
      return [
        clockLine(
          `wall-clock saving ≥ 90% of the FLOP saving (default vs fixed), ${
            CLOCK_NAMES[backend].long
          }, the server's default layout ` +
            `(${times[0].layout})`,
          times,
        ),
      ];
    }),
    "",
  ];
}
