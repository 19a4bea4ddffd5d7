// A page graph's inputs (lib/onnx/page.ts builds the graph): their names and shapes, the values the pricing feeds its
// tail regions, and the constants the workers' feeds share with it (workers/levels.ts). Re-exported by page.ts, which
// workers import.

import type { LevelGraphs } from "./levels.ts";

/** What a page graph is built from (what the workers get of a model's level cut). */
export type PageSource = Pick<LevelGraphs, "input" | "output" | "pools" | "page" | "tail">;

/** The names of a page graph's inputs and outputs. */
export const pageNames = {
  /** Window `i`'s model input. */
  input: (g: PageSource, i: number) => `w${i}:${g.input}`,
  /** What window `i`'s tail makes on its region `j` is named with this prefix (lib/onnx/tail.ts). */
  slot: (i: number, j: number) => `w${i}.${j}:`,
  /** Window `i`'s model output: of its tail on region `j` where the model has a tail. */
  output: (g: PageSource, i: number, j = 0) => (g.tail.halo ? pageNames.slot(i, j) : `w${i}:`) + g.output,
  /** The blank graph's input: one pixel per blank colour, [colours, C, 1, 1]. */
  blank: (g: PageSource) => `b:${g.input}`,
  /** Window `i`'s pooling weights at `stride`: [h·w, 1], its map's positions in row-major order. */
  weights: (stride: number, i: number) => `weights:${stride}:${i}`,
  /** Each blank colour's weight at `stride`: [1, colours]. */
  blankWeights: (stride: number) => `blank_weights:${stride}`,
  /**
   * The weights of the blank strips' map positions at `stride` (`axis` 0: the 1-row strip, 1: the 1-column one):
   * [1, colours · STRIP / stride], colour by colour (see {@link STRIP}).
   */
  stripWeights: (axis: number, stride: number) => `strip_weights:${axis ? "y" : "x"}:${stride}`,
  /**
   * What the blank strips' pixels are multiplied by: 1, and 0 (the model's zero input) over their last px as many as
   * the page pads the image by on that axis: [1, 1, 1, STRIP] (the row strip) or [1, 1, STRIP, 1].
   */
  stripMask: (axis: number) => `strip_mask:${axis ? "y" : "x"}`,
  /**
   * Window `i`'s pooling weights at `stride` as a kernel of `k` = [height, width] shifts them over its map: [kernel
   * positions, map positions] (see `convSum`).
   */
  shiftedWeights: (stride: number, k: number[], i: number) => `shifted_weights:${stride}:${k[0]}x${k[1]}:${i}`,
  /**
   * Where window `i`'s tail region `j` starts and ends in its maps at `stride` ([y, x] in map positions, int64), for
   * the crops of the maps its tail reads (lib/onnx/tail.ts).
   */
  tailStarts: (stride: number, i: number, j: number) => `tail_starts:${stride}:${i}:${j}`,
  tailEnds: (stride: number, i: number, j: number) => `tail_ends:${stride}:${i}:${j}`,
};

/** The distinct strides and kernels ([height, width]) of the pools summed from a convolution's input. */
export function convShifts(g: PageSource): { stride: number; kernel: number[] }[] {
  const seen = new Map<string, { stride: number; kernel: number[] }>();
  for (const p of g.pools) {
    if (p.conv) {
      seen.set(`${p.stride}:${p.conv.kernel[2]}x${p.conv.kernel[3]}`, {
        stride: p.stride,
        kernel: p.conv.kernel.slice(2),
      });
    }
  }
  return [...seen.values()];
}

/** The distinct strides of the maps the tail crops. */
export const cutStrides = (g: PageSource): number[] => [...new Set(g.tail.cuts.map((c) => c.stride))];

/**
 * The input shapes of a page graph of windows whose model inputs have shapes `windows` ([1, C, H, W] each), on
 * `colours` blank pixels of a `channels`-channel input (none: the graph without a blank part, lib/onnx/page.ts), with
 * `slots` tail slots a window (as lib/onnx/page.ts `pageGraph`'s).
 */
export function pageShapes(
  g: PageSource,
  windows: number[][],
  colours: number,
  channels: number,
  slots = g.tail.slots,
): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const s of poolStrides(g)) {
    windows.forEach((d, i) => shapes[pageNames.weights(s, i)] = [mapPositions(d[2], d[3], s), 1]);
  }
  if (colours) {
    shapes[pageNames.blank(g)] = [colours, channels, 1, 1];
    for (const s of poolStrides(g)) {
      shapes[pageNames.blankWeights(s)] = [1, colours];
      for (const axis of [0, 1]) shapes[pageNames.stripWeights(axis, s)] = [1, (colours * STRIP) / s];
    }
    shapes[pageNames.stripMask(0)] = [1, 1, 1, STRIP];
    shapes[pageNames.stripMask(1)] = [1, 1, STRIP, 1];
  }
  for (const { stride: s, kernel: [kh, kw] } of convShifts(g)) {
    windows.forEach((d, i) => {
      shapes[pageNames.shiftedWeights(s, [kh, kw], i)] = [kh * kw, mapPositions(d[2], d[3], s)];
    });
  }
  for (const s of cutStrides(g)) {
    windows.forEach((_, i) => {
      for (let j = 0; j < slots; j++) {
        shapes[pageNames.tailStarts(s, i, j)] = shapes[pageNames.tailEnds(s, i, j)] = [2];
      }
    });
  }
  windows.forEach((d, i) => shapes[pageNames.input(g, i)] = d);
  return shapes;
}

/**
 * Crops that give each window's tail regions their sizes `tails[i]` ([[H, W], ...], up to its `slots`, the model's
 * tail slots by default; the rest at {@link TAIL_DUMMY}), from the window's corner: the values of a page graph's tail
 * inputs a cost count needs (the crops' sizes decide the tail's shapes; where they lie does not).
 */
export function tailValues(g: PageSource, tails: number[][][], slots = g.tail.slots): Record<string, number[]> {
  const values: Record<string, number[]> = {};
  for (const s of cutStrides(g)) {
    tails.forEach((sizes, i) => {
      slotted(g, sizes, [TAIL_DUMMY, TAIL_DUMMY], slots).forEach(([h, w], j) => {
        values[pageNames.tailStarts(s, i, j)] = [0, 0];
        values[pageNames.tailEnds(s, i, j)] = [h / s, w / s];
      });
    });
  }
  return values;
}

/**
 * Page graphs of this many windows or fewer (with their blank part; one window also without) are made and loaded when
 * a worker starts (workers/infer.ts), so a job of up to this many windows finds its graph ready. Making and loading
 * one takes longer the more windows it has: natively 125 ms (1 window), 329 (4), 848 (8), 1864 (13), and the graph
 * itself 70–260 ms more (`.scratch/pagecreate.ts`). The default's covers have at most 3 (every evaluation screenshot);
 * the budget's narrower and squeezed covers are kept to this many (lib/plan/focus_budget.ts `narrowerCover`).
 */
export const PRELOADED_WINDOWS = 3;

/**
 * Px on a side of the square at a window's corner a tail slot no region uses runs on. Not 0: onnxruntime refuses a
 * convolution on an empty map ("Invalid input shape: {0,0}", WASM, tried with the counter's empty-output check
 * relaxed). 4 px (one cell of the stride-4 maps) instead did not read faster: the default's mean model time on the 20
 * test screenshots in the server's native layout, 4 / 16 / 4 / 16 px in turn, 118.7 / 117.4 / 126.6 / 143.3 ms (five
 * pages in its WASM layout: 301.2 vs 302.0 ms; a scratch script over `timings.model`).
 *
 * What an unused slot costs: natively on 2 threads, a one-window page graph (the served, folded one) at 768×1344 with
 * six regions ran in 63.4 ms with 24 slots and 58.3 with 6 (medians of 6 runs, random feeds, no blank part; a scratch
 * script), about 0.28 ms a slot, its dozen small nodes (on 2 WASM threads 221.6 and 216.0 ms: 0.31 ms). Not running
 * them did not pay: each slot behind an If node on a bool input (the window has a region for it; a scratch patch) took
 * an unused slot 16 µs, but a used one ran slower inside the If's subgraph (valgrind-mc-manual-desktop@1's two largest
 * regions 11.3 → 12.7 and 9.3 → 10.8 ms, small ones up to 1.7×, onnxruntime's profiler), and the default's model time
 * per FLOP of full resolution's on four test pages stayed where it was: native 1.125 / 1.148 gated vs 1.126 / 1.070
 * not, WASM 1.123 / 1.135 vs 1.095 / 1.153 (two alternating runs each, the server's layouts, medians of 6 / 4 runs per
 * page).
 */
export const TAIL_DUMMY = 16;

/**
 * Px along a window's sides inside the page (not on the page's border) that its pools do not count (workers/levels.ts
 * `ownership`), counted instead as blank page: windows pad those sides with zeros, so their maps there read like a
 * frame. Before the blank strips, 32 px did best (of 107 tuning, validation and test screenshots below 0.97 vs full
 * resolution 5 → 2, least 0.921 → 0.935; the fourth validation set's least 0.943 → 0.972; 64 and 96 px did worse).
 * With the strips the uncovered page near the border no longer reads as far-blank page, and what that error hid of
 * the frame shows: with the strips and 32 / 64 / 96 px the third validation set's least IoU reads 0.933 / 0.958 /
 * 0.943 at the cover's former window cost, 0.965 / 0.984 at its larger one (`deno run -A bench/eval/budget_sweep.ts
 * --set val3 --shares 1`; branch pooling-blank-pad with its padding switched off, its scratch switches).
 */
export const POOL_EDGE = 64;

/**
 * Px of the blank strips (lib/onnx/levels.ts `PageParts.strips`): each blank colour's 1-row strip this long, and its
 * 1-column one. The whole image's convolutions pad with zeros past its border, so blank page near it does not take
 * the value far inside blank page: its maps there are those of a strip's first half (the page's left or top border)
 * or its last (right or bottom), at the same distance from the strip's end. Half a strip (256 px) reaches past where
 * the detector's border shows in its pooled maps (about 96 px at stride 32, `.scratch`-measured); a multiple of the
 * largest stride, so that the strip's maps align with the page's at both ends.
 */
export const STRIP = 256;

/**
 * `regions` filled up to `slots` (the model's tail slots by default) with `dummy`: a slot always runs, an unused one
 * on a {@link TAIL_DUMMY} px square, 0.6 ms on WASM with 2 threads (24 of them: 14.2 ms; 1.3 ms natively,
 * `.scratch`-measured). Windows with fewer slots, one page graph per combination (tried: 4, 12 or 24), saved that
 * time, but each loaded graph keeps an activation arena of its own: 40 varied screenshots posted in turn to a native
 * server (3 workers) took its RSS from 1.22 to 2.57 GB instead of 2.04 GB, and 8.9 s instead of 6.6 (the graphs' first
 * loads). One packed tail per window (every region on one canvas, a single copy of the tail) would save at most what
 * the slots cost beyond their area: measured again on a 1376×768 window on WASM with 2 threads, 22 line regions in 24
 * slots vs one slot on a region of the same area read −2 to +7 ms of 240–365 ms, 24 dummy slots vs one +4 to +10 ms
 * (natively the former −1 and +3 ms of 110–130 ms; six runs and two, `.scratch/packspike.ts`): 1–3 % of its time, not
 * worth the packing's waste and price rules. What bounds the default's time is the tail's lower time per FLOP (there
 * 38–43 % of the window's WASM time for 47.6 % of its FLOPs).
 */
export function slotted<T>(g: PageSource, regions: T[], dummy: T, slots = g.tail.slots): T[] {
  if (regions.length > slots) {
    throw new Error(`${regions.length} tail regions for a window, over the model's ${slots} slots`);
  }
  return [...regions, ...Array.from({ length: slots - regions.length }, () => dummy)];
}

/** Positions of the map at `stride` of an h×w input: the length of a window's pooling weights there. */
export const mapPositions = (h: number, w: number, stride: number): number => (h / stride) * (w / stride);

/** The distinct strides of a model's pooled maps. */
export const poolStrides = (g: PageSource): number[] => [...new Set(g.pools.map((p) => p.stride))];
